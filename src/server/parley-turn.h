/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void parley_turn_credentials (const char  *secret,
                              const char  *user_id,
                              gint64       now,
                              guint        ttl,
                              char       **out_username,
                              char       **out_password);

G_END_DECLS
