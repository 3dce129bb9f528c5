/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyRouter:
 *
 * Knows which devices (connections) of which user are online in this
 * process. The network thread adds, removes and looks up devices without
 * locks; only the set of online users is shared (under a mutex) so that
 * other threads can ask whether someone is online. A multi-node deployment
 * replaces this with a router that also publishes to other nodes.
 */
typedef struct _ParleyRouter ParleyRouter;

ParleyRouter    *parley_router_new       (void);
void             parley_router_free      (ParleyRouter *self);
gboolean         parley_router_add       (ParleyRouter *self,
                                          const char   *user_id,
                                          gpointer      device);
gboolean         parley_router_remove    (ParleyRouter *self,
                                          const char   *user_id,
                                          gpointer      device);
const GPtrArray *parley_router_lookup    (ParleyRouter *self,
                                          const char   *user_id,
                                          gsize         user_id_len);
gboolean         parley_router_is_online (ParleyRouter *self,
                                          const char   *user_id);
guint            parley_router_n_users   (ParleyRouter *self);

G_END_DECLS
