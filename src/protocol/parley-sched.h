/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What a thread got from the kernel, worst first. */
typedef enum {
  PARLEY_SCHED_NORMAL,
  PARLEY_SCHED_SHORT_SLICE,
  PARLEY_SCHED_REALTIME,
} ParleySchedGrant;

ParleySchedGrant parley_sched_latency_critical    (const char       *what);
ParleySchedGrant parley_sched_realtime            (const char       *what);
void             parley_sched_reset               (const char       *what);
ParleySchedGrant parley_sched_best_grant          (void);
const char      *parley_sched_grant_to_string     (ParleySchedGrant  grant);
void             parley_sched_deferrable          (const char       *what);
void             parley_sched_give_way            (void);
guint            parley_sched_cpus_with_main      (void);
gboolean         parley_sched_parse_cpus          (const char       *list,
                                                   guint64          *cpus,
                                                   GError          **error);
void             parley_sched_set_background_cpus (guint64           cpus);

G_END_DECLS
