/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

#include "parley-config.h"
#include "parley-store.h"

G_BEGIN_DECLS

/**
 * ParleyWsServer:
 *
 * Runs every established WebSocket of the server on one network thread:
 * one epoll instance, large reads, RFC 6455 framing, a validating scanner
 * instead of a JSON parser on the relay path, and writes coalesced per
 * connection once per loop iteration. Idle connections cost the loop
 * nothing. The HTTP side hands over upgraded sockets with
 * parley_ws_server_adopt(); the store's writer thread hands back committed
 * batches with parley_ws_server_store_done().
 */
typedef struct _ParleyWsServer ParleyWsServer;

typedef struct {
  guint connections;
  guint authenticated;
  guint users_online;
  guint64 frames_in;
  guint64 frames_out;
  guint64 bytes_in;
  guint64 bytes_out;
} ParleyWsStats;

ParleyWsServer *parley_ws_server_new        (const ParleyConfig *config,
                                             GError            **error);
void            parley_ws_server_start      (ParleyWsServer     *self,
                                             ParleyStore        *store);
void            parley_ws_server_stop       (ParleyWsServer     *self);
void            parley_ws_server_free       (ParleyWsServer     *self);
void            parley_ws_server_adopt      (ParleyWsServer     *self,
                                             int                 fd,
                                             const char         *user_id);
void            parley_ws_server_store_done (ParleyStoreOp     **ops,
                                             guint               n_ops,
                                             gpointer            user_data);
gboolean        parley_ws_server_is_online  (const char         *user_id,
                                             gpointer            user_data);
void            parley_ws_server_get_stats  (ParleyWsServer     *self,
                                             ParleyWsStats      *stats);

G_END_DECLS
