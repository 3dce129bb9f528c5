/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define PARLEY_TYPE_ACCOUNT (parley_account_get_type ())

G_DECLARE_FINAL_TYPE (ParleyAccount, parley_account, PARLEY, ACCOUNT, GObject)

ParleyAccount *parley_account_new               (SoupSession          *session,
                                                 const char           *server_url,
                                                 const char           *profile_dir);
const char    *parley_account_get_user_id       (ParleyAccount        *self);
const char    *parley_account_get_username      (ParleyAccount        *self);
gboolean       parley_account_get_logged_in     (ParleyAccount        *self);
const char    *parley_account_get_access_token  (ParleyAccount        *self);
gboolean       parley_account_has_valid_token   (ParleyAccount        *self);
const char    *parley_account_get_server_url    (ParleyAccount        *self);

void           parley_account_register_async    (ParleyAccount        *self,
                                                 const char           *username,
                                                 const char           *password,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
char          *parley_account_register_finish   (ParleyAccount        *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
void           parley_account_login_async       (ParleyAccount        *self,
                                                 const char           *username,
                                                 const char           *password,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
gboolean       parley_account_login_finish      (ParleyAccount        *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
void           parley_account_logout_async      (ParleyAccount        *self,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
gboolean       parley_account_logout_finish     (ParleyAccount        *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
void           parley_account_refresh_async     (ParleyAccount        *self,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
gboolean       parley_account_refresh_finish    (ParleyAccount        *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
void           parley_account_request_async     (ParleyAccount        *self,
                                                 const char           *method,
                                                 const char           *path,
                                                 JsonNode             *body,
                                                 gboolean              authenticated,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
JsonNode      *parley_account_request_finish    (ParleyAccount        *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);

G_END_DECLS
