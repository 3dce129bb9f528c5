/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-session"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "parley-error.h"
#include "parley-session.h"

G_DEFINE_BOXED_TYPE (ParleySession, parley_session, parley_session_copy, parley_session_free)

/**
 * parley_session_new:
 * @user_id: the user id
 * @username: the user name
 * @access_token: the access token
 * @refresh_token: the refresh token
 * @expires_at: expiry of @access_token in seconds since the epoch
 *
 * Returns: (transfer full): a new session
 */
ParleySession *
parley_session_new (const char *user_id,
                    const char *username,
                    const char *access_token,
                    const char *refresh_token,
                    gint64      expires_at)
{
  ParleySession *session = g_new0 (ParleySession, 1);

  session->user_id = g_strdup (user_id);
  session->username = g_strdup (username);
  session->access_token = g_strdup (access_token);
  session->refresh_token = g_strdup (refresh_token);
  session->expires_at = expires_at;

  return session;
}

/**
 * parley_session_copy:
 * @session: a session
 *
 * Returns: (transfer full): a copy of @session
 */
ParleySession *
parley_session_copy (const ParleySession *session)
{
  return parley_session_new (session->user_id, session->username, session->access_token,
                             session->refresh_token, session->expires_at);
}

/**
 * parley_session_free:
 * @session: a session
 *
 * Frees @session, wiping the tokens from memory first.
 */
void
parley_session_free (ParleySession *session)
{
  if (session == NULL)
    return;

  if (session->access_token)
    memset (session->access_token, 0, strlen (session->access_token));
  if (session->refresh_token)
    memset (session->refresh_token, 0, strlen (session->refresh_token));
  g_free (session->user_id);
  g_free (session->username);
  g_free (session->access_token);
  g_free (session->refresh_token);
  g_free (session);
}

static const char *
get_string (JsonObject *object,
            const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/**
 * parley_session_load:
 * @path: the session file
 * @error: return location for a #GError
 *
 * Reads a session file. A missing file fails with %G_FILE_ERROR_NOENT.
 *
 * Returns: (transfer full): the session, or %NULL with @error set
 */
ParleySession *
parley_session_load (const char  *path,
                     GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *contents = NULL;
  gsize length = 0;
  JsonNode *root;
  JsonObject *object;
  JsonNode *expires;
  const char *user_id, *username, *access_token, *refresh_token;

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;

  if (!json_parser_load_from_data (parser, contents, (gssize) length, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("%s is not a session file"), path);
    return NULL;
  }
  object = json_node_get_object (root);

  user_id = get_string (object, "userId");
  username = get_string (object, "username");
  access_token = get_string (object, "accessToken");
  refresh_token = get_string (object, "refreshToken");
  expires = json_object_get_member (object, "expiresAt");
  if (user_id == NULL || username == NULL || refresh_token == NULL || expires == NULL ||
      !JSON_NODE_HOLDS_VALUE (expires) || json_node_get_value_type (expires) != G_TYPE_INT64) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("%s is incomplete"), path);
    return NULL;
  }

  return parley_session_new (user_id, username, access_token, refresh_token,
                             json_node_get_int (expires));
}

/**
 * parley_session_save:
 * @session: a session
 * @path: the session file
 * @error: return location for a #GError
 *
 * Writes @session atomically (a crash leaves either the old or the new file)
 * and readable by the owner only (mode 0600).
 *
 * Returns: %TRUE on success
 */
gboolean
parley_session_save (const ParleySession  *session,
                     const char           *path,
                     GError              **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *dir = g_path_get_dirname (path);
  gboolean ok;

  if (g_mkdir_with_parents (dir, 0700) != 0) {
    int saved_errno = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                 _("Cannot create %s: %s"), dir, g_strerror (saved_errno));
    return FALSE;
  }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "userId");
  json_builder_add_string_value (builder, session->user_id);
  json_builder_set_member_name (builder, "username");
  json_builder_add_string_value (builder, session->username);
  json_builder_set_member_name (builder, "accessToken");
  json_builder_add_string_value (builder, session->access_token ? session->access_token : "");
  json_builder_set_member_name (builder, "refreshToken");
  json_builder_add_string_value (builder, session->refresh_token);
  json_builder_set_member_name (builder, "expiresAt");
  json_builder_add_int_value (builder, session->expires_at);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  text = json_to_string (root, FALSE);

  ok = g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
  memset (text, 0, strlen (text));
  return ok;
}

/**
 * parley_session_delete:
 * @path: the session file
 * @error: return location for a #GError
 *
 * Removes the session file; a missing file is not an error.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_session_delete (const char  *path,
                       GError     **error)
{
  if (g_unlink (path) != 0 && errno != ENOENT) {
    int saved_errno = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                 _("Cannot remove %s: %s"), path, g_strerror (saved_errno));
    return FALSE;
  }
  return TRUE;
}
