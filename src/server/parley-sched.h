/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void parley_sched_latency_critical (const char *what);
void parley_sched_deferrable       (const char *what);

G_END_DECLS
