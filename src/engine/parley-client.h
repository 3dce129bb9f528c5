/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "parley-account.h"
#include "parley-cache.h"
#include "parley-contact.h"
#include "parley-conversation.h"
#include "parley-message.h"
#include "parley-types.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_CLIENT (parley_client_get_type ())

G_DECLARE_FINAL_TYPE (ParleyClient, parley_client, PARLEY, CLIENT, GObject)

ParleyClient       *parley_client_new                (const char          *server_url,
                                                      const char          *profile_dir,
                                                      GError             **error);
ParleyClientState   parley_client_get_state          (ParleyClient        *self);
const char         *parley_client_get_user_id        (ParleyClient        *self);
const char         *parley_client_get_username       (ParleyClient        *self);
gboolean            parley_client_get_logged_in      (ParleyClient        *self);
gboolean            parley_client_get_synced         (ParleyClient        *self);
ParleyAccount      *parley_client_get_account        (ParleyClient        *self);
ParleyCache        *parley_client_get_cache          (ParleyClient        *self);
guint               parley_client_get_n_pending      (ParleyClient        *self);

void                parley_client_connect            (ParleyClient        *self);
void                parley_client_disconnect         (ParleyClient        *self);
void                parley_client_check_connection   (ParleyClient        *self);

void                parley_client_register_async     (ParleyClient        *self,
                                                      const char          *username,
                                                      const char          *password,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
char               *parley_client_register_finish    (ParleyClient        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
void                parley_client_login_async        (ParleyClient        *self,
                                                      const char          *username,
                                                      const char          *password,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
gboolean            parley_client_login_finish       (ParleyClient        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
void                parley_client_logout_async       (ParleyClient        *self,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
gboolean            parley_client_logout_finish      (ParleyClient        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);

ParleyMessage      *parley_client_send_message       (ParleyClient        *self,
                                                      const char          *recipient_id,
                                                      const char          *text,
                                                      GError             **error);
gboolean            parley_client_send_typing        (ParleyClient        *self,
                                                      const char          *recipient_id,
                                                      gboolean             active);
gboolean            parley_client_mark_read          (ParleyClient        *self,
                                                      const char          *peer_id,
                                                      GError             **error);
gboolean            parley_client_send_call_signal   (ParleyClient        *self,
                                                      const char          *type,
                                                      JsonObject          *frame);

GListModel         *parley_client_get_conversations  (ParleyClient        *self);
ParleyConversation *parley_client_lookup_conversation (ParleyClient       *self,
                                                       const char         *peer_id);

void                parley_client_search_users_async (ParleyClient        *self,
                                                      const char          *query,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
GPtrArray          *parley_client_search_users_finish (ParleyClient       *self,
                                                       GAsyncResult       *result,
                                                       GError            **error);
void                parley_client_resolve_user_async (ParleyClient        *self,
                                                      const char          *username,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
char               *parley_client_resolve_user_finish (ParleyClient       *self,
                                                       GAsyncResult       *result,
                                                       GError            **error);
void                parley_client_add_contact_async  (ParleyClient        *self,
                                                      const char          *user_id,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
gboolean            parley_client_add_contact_finish (ParleyClient        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
void                parley_client_list_contacts_async (ParleyClient       *self,
                                                       GCancellable       *cancellable,
                                                       GAsyncReadyCallback callback,
                                                       gpointer            user_data);
GPtrArray          *parley_client_list_contacts_finish (ParleyClient      *self,
                                                        GAsyncResult      *result,
                                                        GError           **error);
void                parley_client_get_turn_credentials_async  (ParleyClient        *self,
                                                               GCancellable        *cancellable,
                                                               GAsyncReadyCallback  callback,
                                                               gpointer             user_data);
JsonObject         *parley_client_get_turn_credentials_finish (ParleyClient        *self,
                                                               GAsyncResult        *result,
                                                               GError             **error);

G_END_DECLS
