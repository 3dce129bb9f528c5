/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void     parley_sched_latency_critical     (const char  *what);
void     parley_sched_deferrable           (const char  *what);
gboolean parley_sched_parse_cpus           (const char  *list,
                                            guint64     *cpus,
                                            GError     **error);
void     parley_sched_set_background_cpus  (guint64      cpus);

G_END_DECLS
