/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-account"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "parley-account.h"
#include "parley-error.h"
#include "parley-session.h"

/* Refresh a token this long before it expires at the latest, in seconds. */
#define TOKEN_MARGIN_S 30
/* After a failed background refresh, try again this much later, in seconds. */
#define REFRESH_RETRY_S 30

/**
 * ParleyAccount:
 *
 * The account on a Parley server: registration, login and logout, and the
 * tokens. The tokens live in `PROFILE/session.json` (mode 0600); the access
 * token is refreshed at about 80 % of its lifetime and whenever the server
 * refuses it, and each rotated refresh token replaces the old one at once.
 * Authenticated HTTP requests go through parley_account_request_async().
 */
struct _ParleyAccount {
  GObject        parent_instance;

  SoupSession   *http;
  char          *server_url;
  char          *session_path;
  ParleySession *session;

  GCancellable  *cancellable;
  GPtrArray     *refresh_waiters;   /* GTask, while a refresh is in flight. */
  guint          refresh_timer_id;
};

G_DEFINE_FINAL_TYPE (ParleyAccount, parley_account, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_USER_ID,
  PROP_USERNAME,
  PROP_LOGGED_IN,
  N_PROPS
};

enum {
  SIGNAL_LOGGED_OUT,
  SIGNAL_TOKENS_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

typedef struct {
  char     *method;
  char     *path;
  GBytes   *body;
  gboolean  authenticated;
  gboolean  retried;
} Request;

static void
request_free (Request *request)
{
  g_free (request->method);
  g_free (request->path);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_free (request);
}

static void send_request (GTask *task);
static void schedule_refresh (ParleyAccount *self, guint seconds);

static void
notify_identity (ParleyAccount *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USER_ID]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USERNAME]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOGGED_IN]);
}

static void
forget_session (ParleyAccount *self)
{
  g_autoptr(GError) error = NULL;

  g_clear_handle_id (&self->refresh_timer_id, g_source_remove);
  if (!parley_session_delete (self->session_path, &error))
    g_warning ("%s", error->message);
  if (self->session != NULL) {
    g_clear_pointer (&self->session, parley_session_free);
    notify_identity (self);
  }
}

static const char *
friendly_message (const char *code,
                  const char *message)
{
  static const struct { const char *code; const char *text; } table[] = {
    { "invalid-credentials", N_("invalid user name or password") },
    { "username-taken", N_("this user name is already taken") },
    { "rate-limited", N_("too many attempts, try again later") },
    { "invalid-token", N_("the session has expired, please log in again") },
    { "token-reused", N_("the session was revoked, please log in again") },
    { "unknown-user", N_("no such user") },
  };

  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    if (g_strcmp0 (code, table[i].code) == 0)
      return _(table[i].text);
  return message ? message : code;
}

/* Turns an HTTP answer into a JSON node or a #GError. A 204 yields a null node. */
static JsonNode *
parse_answer (SoupMessage  *msg,
              GBytes       *bytes,
              GError      **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  guint status = soup_message_get_status (msg);
  gsize length = 0;
  const char *data = bytes ? g_bytes_get_data (bytes, &length) : NULL;
  gboolean parsed = FALSE;
  JsonNode *root = NULL;

  if (length > 0)
    parsed = json_parser_load_from_data (parser, data, (gssize) length, NULL);
  if (parsed)
    root = json_parser_get_root (parser);

  if (status >= 200 && status < 300) {
    if (length == 0 || status == SOUP_STATUS_NO_CONTENT)
      return json_node_new (JSON_NODE_NULL);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_PROTOCOL,
                   _("The server sent an answer that is not a JSON object"));
      return NULL;
    }
    return json_node_copy (root);
  } else {
    const char *code = NULL, *message = NULL;
    ParleyError kind = PARLEY_ERROR_SERVER;

    if (root != NULL && JSON_NODE_HOLDS_OBJECT (root)) {
      JsonObject *error_object = json_object_get_object_member (json_node_get_object (root),
                                                                "error");
      if (error_object != NULL) {
        code = json_object_get_string_member_with_default (error_object, "code", NULL);
        message = json_object_get_string_member_with_default (error_object, "message", NULL);
      }
    }
    if (status == SOUP_STATUS_UNAUTHORIZED)
      kind = PARLEY_ERROR_AUTH;
    else if (status == SOUP_STATUS_NOT_FOUND)
      kind = PARLEY_ERROR_NOT_FOUND;

    g_set_error (error, PARLEY_ERROR, kind, "%s",
                 code || message ? friendly_message (code, message)
                                 : soup_status_get_phrase (status));
    return NULL;
  }
}

static void
refresh_done (ParleyAccount *self,
              const GError  *error)
{
  g_autoptr(GPtrArray) waiters = g_steal_pointer (&self->refresh_waiters);

  for (guint i = 0; i < waiters->len; i++) {
    GTask *task = g_ptr_array_index (waiters, i);

    if (error)
      g_task_return_error (task, g_error_copy (error));
    else
      g_task_return_boolean (task, TRUE);
  }
}

static gboolean
take_tokens (ParleyAccount  *self,
             JsonNode       *node,
             GError        **error)
{
  JsonObject *object = json_node_get_object (node);
  const char *user_id = json_object_get_string_member_with_default (object, "userId", NULL);
  const char *username = json_object_get_string_member_with_default (object, "username", NULL);
  const char *access = json_object_get_string_member_with_default (object, "accessToken", NULL);
  const char *refresh = json_object_get_string_member_with_default (object, "refreshToken", NULL);
  gint64 expires_in = json_object_get_int_member_with_default (object, "expiresIn", 0);
  gboolean identity_changed;
  g_autoptr(ParleySession) session = NULL;

  if (user_id == NULL || access == NULL || refresh == NULL || expires_in <= 0) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_PROTOCOL,
                 _("The server's token answer is incomplete"));
    return FALSE;
  }
  if (username == NULL && self->session != NULL)
    username = self->session->username;

  session = parley_session_new (user_id, username ? username : "", access, refresh,
                                g_get_real_time () / G_USEC_PER_SEC + expires_in);

  identity_changed = self->session == NULL ||
                     g_strcmp0 (self->session->user_id, session->user_id) != 0 ||
                     g_strcmp0 (self->session->username, session->username) != 0;

  /* The rotated refresh token is the only valid one now: store it before anything else. */
  if (!parley_session_save (session, self->session_path, error))
    return FALSE;

  g_clear_pointer (&self->session, parley_session_free);
  self->session = g_steal_pointer (&session);
  schedule_refresh (self, (guint) MAX (1, expires_in * 8 / 10));

  if (identity_changed)
    notify_identity (self);
  g_signal_emit (self, signals[SIGNAL_TOKENS_CHANGED], 0);
  return TRUE;
}

static void
refresh_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(ParleyAccount) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;

  node = parley_account_request_finish (self, result, &error);
  if (node != NULL)
    take_tokens (self, node, &error);

  if (error != NULL) {
    g_debug ("Token refresh failed: %s", error->message);
    if (g_error_matches (error, PARLEY_ERROR, PARLEY_ERROR_AUTH)) {
      /* The refresh token is dead (expired, revoked or reused): log out locally. */
      forget_session (self);
      g_signal_emit (self, signals[SIGNAL_LOGGED_OUT], 0, error);
    } else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
               self->session != NULL) {
      schedule_refresh (self, REFRESH_RETRY_S);
    }
  }

  refresh_done (self, error);
}

static gboolean
refresh_timer_cb (gpointer user_data)
{
  ParleyAccount *self = user_data;

  self->refresh_timer_id = 0;
  g_debug ("Refreshing the access token ahead of its expiry");
  parley_account_refresh_async (self, NULL, NULL, NULL);
  return G_SOURCE_REMOVE;
}

static void
schedule_refresh (ParleyAccount *self,
                  guint          seconds)
{
  g_clear_handle_id (&self->refresh_timer_id, g_source_remove);
  self->refresh_timer_id = g_timeout_add_seconds (seconds, refresh_timer_cb, self);
}

static void
request_sent_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ParleyAccount *self = g_task_get_source_object (task);
  Request *request = g_task_get_task_data (task);
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  JsonNode *node;

  bytes = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);
  if (bytes == NULL) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      g_task_return_error (task, g_steal_pointer (&error));
    else
      g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_NETWORK,
                               _("cannot reach the server: %s"), error->message);
    return;
  }

  if (request->authenticated && !request->retried &&
      soup_message_get_status (msg) == SOUP_STATUS_UNAUTHORIZED) {
    /* The access token may have expired early or been refused: refresh once and retry. */
    request->retried = TRUE;
    g_debug ("%s %s: 401, refreshing the token", request->method, request->path);
    parley_account_refresh_async (self, g_task_get_cancellable (task),
                                  (GAsyncReadyCallback) NULL, NULL);
    /* The retry waits for the same refresh through the waiters list. */
    send_request (g_steal_pointer (&task));
    return;
  }

  node = parse_answer (msg, bytes, &error);
  if (node == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, node, (GDestroyNotify) json_node_unref);
}

static void
send_now (GTask *task)
{
  ParleyAccount *self = g_task_get_source_object (task);
  Request *request = g_task_get_task_data (task);
  g_autofree char *uri = g_strconcat (self->server_url, request->path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (request->method, uri);

  if (msg == NULL) {
    g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                             _("invalid server address %s"), self->server_url);
    g_object_unref (task);
    return;
  }

  if (request->authenticated) {
    g_autofree char *bearer = NULL;

    if (self->session == NULL) {
      g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_NOT_LOGGED_IN, _("not logged in"));
      g_object_unref (task);
      return;
    }
    bearer = g_strconcat ("Bearer ", self->session->access_token, NULL);
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                  bearer);
  }
  if (request->body != NULL)
    soup_message_set_request_body_from_bytes (msg, "application/json", request->body);

  soup_session_send_and_read_async (self->http, msg, G_PRIORITY_DEFAULT,
                                    g_task_get_cancellable (task), request_sent_cb, task);
}

static void
refreshed_then_send_cb (GObject      *object,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(GError) error = NULL;

  if (!parley_account_refresh_finish (PARLEY_ACCOUNT (object), result, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    g_object_unref (task);
    return;
  }
  send_now (task);
}

/* Sends the request, refreshing the access token first when it is about to expire
 * or a refresh is already under way. Takes the reference to @task. */
static void
send_request (GTask *task)
{
  ParleyAccount *self = g_task_get_source_object (task);
  Request *request = g_task_get_task_data (task);

  if (request->authenticated && self->session != NULL &&
      (self->refresh_waiters != NULL || !parley_account_has_valid_token (self))) {
    parley_account_refresh_async (self, g_task_get_cancellable (task), refreshed_then_send_cb,
                                  task);
    return;
  }
  send_now (task);
}

static void
parley_account_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  ParleyAccount *self = PARLEY_ACCOUNT (object);

  switch (prop_id) {
  case PROP_USER_ID: g_value_set_string (value, parley_account_get_user_id (self)); break;
  case PROP_USERNAME: g_value_set_string (value, parley_account_get_username (self)); break;
  case PROP_LOGGED_IN: g_value_set_boolean (value, self->session != NULL); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_account_dispose (GObject *object)
{
  ParleyAccount *self = PARLEY_ACCOUNT (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->refresh_timer_id, g_source_remove);
  g_clear_object (&self->http);

  G_OBJECT_CLASS (parley_account_parent_class)->dispose (object);
}

static void
parley_account_finalize (GObject *object)
{
  ParleyAccount *self = PARLEY_ACCOUNT (object);

  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->session, parley_session_free);
  g_free (self->server_url);
  g_free (self->session_path);

  G_OBJECT_CLASS (parley_account_parent_class)->finalize (object);
}

static void
parley_account_class_init (ParleyAccountClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = parley_account_get_property;
  object_class->dispose = parley_account_dispose;
  object_class->finalize = parley_account_finalize;

  /** ParleyAccount:user-id: the logged-in user's id */
  properties[PROP_USER_ID] = g_param_spec_string ("user-id", NULL, NULL, NULL, flags);
  /** ParleyAccount:username: the logged-in user's name */
  properties[PROP_USERNAME] = g_param_spec_string ("username", NULL, NULL, NULL, flags);
  /** ParleyAccount:logged-in: whether tokens are stored */
  properties[PROP_LOGGED_IN] = g_param_spec_boolean ("logged-in", NULL, NULL, FALSE, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyAccount::logged-out:
   * @error: why the server ended the session
   *
   * The server refused the refresh token; the local tokens are gone.
   */
  signals[SIGNAL_LOGGED_OUT] =
    g_signal_new ("logged-out", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);

  /**
   * ParleyAccount::tokens-changed:
   *
   * A login or refresh produced a new access token.
   */
  signals[SIGNAL_TOKENS_CHANGED] =
    g_signal_new ("tokens-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
parley_account_init (ParleyAccount *self)
{
  self->cancellable = g_cancellable_new ();
}

/**
 * parley_account_new:
 * @session: the HTTP session to use
 * @server_url: the server's base URL, such as `http://127.0.0.1:8421`
 * @profile_dir: the profile directory holding `session.json`
 *
 * Creates the account object and loads stored tokens, if any.
 *
 * Returns: (transfer full): a new account
 */
ParleyAccount *
parley_account_new (SoupSession *session,
                    const char  *server_url,
                    const char  *profile_dir)
{
  ParleyAccount *self = g_object_new (PARLEY_TYPE_ACCOUNT, NULL);
  g_autoptr(GError) error = NULL;

  self->http = g_object_ref (session);
  self->server_url = g_strdup (server_url);
  while (g_str_has_suffix (self->server_url, "/"))
    self->server_url[strlen (self->server_url) - 1] = '\0';
  self->session_path = g_build_filename (profile_dir, "session.json", NULL);

  self->session = parley_session_load (self->session_path, &error);
  if (self->session != NULL) {
    gint64 left = self->session->expires_at - g_get_real_time () / G_USEC_PER_SEC;

    schedule_refresh (self, (guint) CLAMP (left * 8 / 10, 1, G_MAXINT32));
  } else if (!g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    g_debug ("Ignoring the stored session: %s", error->message);
  }

  return self;
}

/** parley_account_get_user_id: @self: an account. Returns: (nullable): the user id */
const char *
parley_account_get_user_id (ParleyAccount *self)
{
  g_return_val_if_fail (PARLEY_IS_ACCOUNT (self), NULL);
  return self->session ? self->session->user_id : NULL;
}

/** parley_account_get_username: @self: an account. Returns: (nullable): the user name */
const char *
parley_account_get_username (ParleyAccount *self)
{
  g_return_val_if_fail (PARLEY_IS_ACCOUNT (self), NULL);
  return self->session ? self->session->username : NULL;
}

/** parley_account_get_logged_in: @self: an account. Returns: whether tokens are stored */
gboolean
parley_account_get_logged_in (ParleyAccount *self)
{
  g_return_val_if_fail (PARLEY_IS_ACCOUNT (self), FALSE);
  return self->session != NULL;
}

/** parley_account_get_access_token: @self: an account. Returns: (nullable): the access token */
const char *
parley_account_get_access_token (ParleyAccount *self)
{
  g_return_val_if_fail (PARLEY_IS_ACCOUNT (self), NULL);
  return self->session ? self->session->access_token : NULL;
}

/** parley_account_get_server_url: @self: an account. Returns: the server's base URL */
const char *
parley_account_get_server_url (ParleyAccount *self)
{
  g_return_val_if_fail (PARLEY_IS_ACCOUNT (self), NULL);
  return self->server_url;
}

/**
 * parley_account_has_valid_token:
 * @self: an account
 *
 * Returns: whether the access token is good for at least a little while longer
 */
gboolean
parley_account_has_valid_token (ParleyAccount *self)
{
  g_return_val_if_fail (PARLEY_IS_ACCOUNT (self), FALSE);

  return self->session != NULL && self->session->access_token != NULL &&
         self->session->access_token[0] != '\0' &&
         self->session->expires_at - g_get_real_time () / G_USEC_PER_SEC > TOKEN_MARGIN_S;
}

static JsonNode *
credentials_body (const char *username,
                  const char *password)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "username");
  json_builder_add_string_value (builder, username);
  json_builder_set_member_name (builder, "password");
  json_builder_add_string_value (builder, password);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static void
register_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  const char *user_id;

  node = parley_account_request_finish (PARLEY_ACCOUNT (object), result, &error);
  if (node == NULL) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  user_id = JSON_NODE_HOLDS_OBJECT (node)
            ? json_object_get_string_member_with_default (json_node_get_object (node),
                                                          "userId", NULL)
            : NULL;
  if (user_id == NULL)
    g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_PROTOCOL,
                             _("The server's answer has no userId"));
  else
    g_task_return_pointer (task, g_strdup (user_id), g_free);
}

/**
 * parley_account_register_async:
 * @self: an account
 * @username: the wanted user name
 * @password: the password
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Creates an account on the server (it does not log in).
 */
void
parley_account_register_async (ParleyAccount       *self,
                               const char          *username,
                               const char          *password,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(JsonNode) body = credentials_body (username, password);

  g_task_set_source_tag (task, parley_account_register_async);
  parley_account_request_async (self, "POST", "/api/register", body, FALSE, cancellable,
                                register_cb, task);
}

/**
 * parley_account_register_finish:
 * @self: an account
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the new user id, or %NULL with @error set
 */
char *
parley_account_register_finish (ParleyAccount  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
login_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ParleyAccount *self = PARLEY_ACCOUNT (object);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;

  node = parley_account_request_finish (self, result, &error);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node)) {
    if (error == NULL)
      g_set_error (&error, PARLEY_ERROR, PARLEY_ERROR_PROTOCOL, _("Empty login answer"));
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  if (!take_tokens (self, node, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * parley_account_login_async:
 * @self: an account
 * @username: the user name
 * @password: the password
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Logs in and stores the tokens.
 */
void
parley_account_login_async (ParleyAccount       *self,
                            const char          *username,
                            const char          *password,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(JsonNode) body = credentials_body (username, password);

  g_task_set_source_tag (task, parley_account_login_async);
  parley_account_request_async (self, "POST", "/api/login", body, FALSE, cancellable,
                                login_cb, task);
}

/**
 * parley_account_login_finish:
 * @self: an account
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: %TRUE when logged in
 */
gboolean
parley_account_login_finish (ParleyAccount  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
logout_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;

  node = parley_account_request_finish (PARLEY_ACCOUNT (object), result, &error);
  /* An unknown or already revoked token is as good as a revoked one. */
  if (node == NULL && !g_error_matches (error, PARLEY_ERROR, PARLEY_ERROR_AUTH))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * parley_account_logout_async:
 * @self: an account
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Wipes the local tokens at once and asks the server to revoke the refresh
 * token. The finish function reports whether the server confirmed it.
 */
void
parley_account_logout_async (ParleyAccount       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;

  g_task_set_source_tag (task, parley_account_logout_async);

  if (self->session == NULL) {
    g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_NOT_LOGGED_IN, _("not logged in"));
    g_object_unref (task);
    return;
  }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "refreshToken");
  json_builder_add_string_value (builder, self->session->refresh_token);
  json_builder_end_object (builder);
  body = json_builder_get_root (builder);

  forget_session (self);
  parley_account_request_async (self, "POST", "/api/logout", body, FALSE, cancellable,
                                logout_cb, task);
}

/**
 * parley_account_logout_finish:
 * @self: an account
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the server revoked the token
 */
gboolean
parley_account_logout_finish (ParleyAccount  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * parley_account_refresh_async:
 * @self: an account
 * @cancellable: (nullable): a #GCancellable
 * @callback: (nullable): called when done
 * @user_data: data for @callback
 *
 * Trades the refresh token for new tokens. Concurrent calls share one
 * request, so a rotated token is never used twice.
 */
void
parley_account_refresh_async (ParleyAccount       *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  GTask *task = NULL;
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonNode) body = NULL;

  if (callback != NULL) {
    task = g_task_new (self, cancellable, callback, user_data);
    g_task_set_source_tag (task, parley_account_refresh_async);
  }

  if (self->session == NULL) {
    if (task) {
      g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_NOT_LOGGED_IN, _("not logged in"));
      g_object_unref (task);
    }
    return;
  }

  if (self->refresh_waiters != NULL) {
    if (task)
      g_ptr_array_add (self->refresh_waiters, task);
    return;
  }

  self->refresh_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  if (task)
    g_ptr_array_add (self->refresh_waiters, task);

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "refreshToken");
  json_builder_add_string_value (builder, self->session->refresh_token);
  json_builder_end_object (builder);
  body = json_builder_get_root (builder);

  parley_account_request_async (self, "POST", "/api/refresh", body, FALSE, self->cancellable,
                                refresh_cb, g_object_ref (self));
}

/**
 * parley_account_refresh_finish:
 * @self: an account
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: %TRUE when new tokens are stored
 */
gboolean
parley_account_refresh_finish (ParleyAccount  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * parley_account_request_async:
 * @self: an account
 * @method: the HTTP method
 * @path: the path and query, such as `/api/users?query=al`
 * @body: (nullable): a JSON body
 * @authenticated: whether to send the access token (refreshing it as needed)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Makes a JSON request to the server. An authenticated request refused
 * with 401 is retried once after a token refresh.
 */
void
parley_account_request_async (ParleyAccount       *self,
                              const char          *method,
                              const char          *path,
                              JsonNode            *body,
                              gboolean             authenticated,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  GTask *task;
  Request *request;

  g_return_if_fail (PARLEY_IS_ACCOUNT (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, parley_account_request_async);

  request = g_new0 (Request, 1);
  request->method = g_strdup (method);
  request->path = g_strdup (path);
  request->authenticated = authenticated;
  if (body != NULL) {
    g_autofree char *text = json_to_string (body, FALSE);
    gsize length = strlen (text);

    request->body = g_bytes_new_take (g_steal_pointer (&text), length);
  }
  g_task_set_task_data (task, request, (GDestroyNotify) request_free);

  send_request (task);
}

/**
 * parley_account_request_finish:
 * @self: an account
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the answer (a null node for an empty answer),
 *   or %NULL with @error set
 */
JsonNode *
parley_account_request_finish (ParleyAccount  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
