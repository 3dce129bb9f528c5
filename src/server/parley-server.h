/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

#include "parley-config.h"

G_BEGIN_DECLS

/**
 * ParleyServer:
 *
 * The whole parley-server: the store, the HTTP API on libsoup, and the
 * WebSocket network thread, wired together and listening.
 */
typedef struct _ParleyServer ParleyServer;

ParleyServer *parley_server_new      (ParleyConfig  *config,
                                      GError       **error);
guint         parley_server_get_port (ParleyServer  *self);
void          parley_server_free     (ParleyServer  *self);

void          parley_log_init        (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyServer, parley_server_free)

G_END_DECLS
