/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "parley-account.h"
#include "parley-backoff.h"
#include "parley-types.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_CONNECTION (parley_connection_get_type ())

G_DECLARE_FINAL_TYPE (ParleyConnection, parley_connection, PARLEY, CONNECTION, GObject)

ParleyConnection  *parley_connection_new        (SoupSession      *session,
                                                 ParleyAccount    *account);
ParleyClientState  parley_connection_get_state  (ParleyConnection *self);
void               parley_connection_start      (ParleyConnection *self);
void               parley_connection_stop       (ParleyConnection *self);
void               parley_connection_reconnect_now (ParleyConnection *self);
void               parley_connection_check      (ParleyConnection *self);
gboolean           parley_connection_send       (ParleyConnection *self,
                                                 JsonObject       *frame);
void               parley_connection_set_random_func (ParleyConnection *self,
                                                      ParleyRandomFunc  func,
                                                      gpointer          data);

G_END_DECLS
