/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define PARLEY_TYPE_SESSION (parley_session_get_type ())

/**
 * ParleySession:
 * @user_id: the account's user id
 * @username: the account's user name
 * @access_token: the current access token
 * @refresh_token: the current (newest) refresh token
 * @expires_at: wall-clock expiry of @access_token, in seconds since the epoch
 *
 * The tokens of a logged-in account, as kept in `PROFILE/session.json`.
 */
typedef struct {
  char   *user_id;
  char   *username;
  char   *access_token;
  char   *refresh_token;
  gint64  expires_at;
} ParleySession;

GType          parley_session_get_type (void) G_GNUC_CONST;
ParleySession *parley_session_new      (const char           *user_id,
                                        const char           *username,
                                        const char           *access_token,
                                        const char           *refresh_token,
                                        gint64                expires_at);
ParleySession *parley_session_copy     (const ParleySession  *session);
void           parley_session_free     (ParleySession        *session);
ParleySession *parley_session_load     (const char           *path,
                                        GError              **error);
gboolean       parley_session_save     (const ParleySession  *session,
                                        const char           *path,
                                        GError              **error);
gboolean       parley_session_delete   (const char           *path,
                                        GError              **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleySession, parley_session_free)

G_END_DECLS
