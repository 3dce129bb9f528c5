/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-connection"

#include <string.h>

#include "parley-connection.h"
#include "parley-engine-enums.h"

#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000
/* Ask libsoup to ping this often; the server answers with pongs. */
#define KEEPALIVE_S 20
/* Liveness: after this much silence send a protocol ping ... */
#define IDLE_PING_S 20
/* ... and without a frame after this much silence give the link up as dead. */
#define DEAD_S 35
/* The server must say hello within this time after the upgrade. */
#define HELLO_TIMEOUT_S 10
/* After a network change, or when a call loses its media path, the link is
 * checked: some frame must arrive within this time, or it is given up. */
#define CHECK_TIMEOUT_S 3

/**
 * ParleyConnection:
 *
 * The one WebSocket of this device to the server's `/ws`. It authenticates
 * with the account's access token, waits for `hello`, reconnects after any
 * loss with exponential backoff and full jitter (0.5 s doubling to 30 s,
 * reset after a successful connection) and detects dead links with its own
 * ping timeout. Incoming frames are emitted as parsed JSON objects.
 */
struct _ParleyConnection {
  GObject                  parent_instance;

  SoupSession             *http;
  ParleyAccount           *account;
  char                    *ws_url;

  ParleyClientState        state;
  SoupWebsocketConnection *ws;
  GCancellable            *cancellable;
  ParleyBackoff            backoff;
  guint                    retry_id;
  guint                    liveness_id;
  gint64                   last_rx_us;
  gint64                   opened_us;
  gboolean                 got_hello;
  gint64                   ping_deadline_us;   /* of the ping that is out, or 0 */
  gboolean                 auth_retried;
  gboolean                 running;
  gboolean                 watching_network;
};

G_DEFINE_FINAL_TYPE (ParleyConnection, parley_connection, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_STATE,
  N_PROPS
};

enum {
  SIGNAL_STATE_CHANGED,
  SIGNAL_HELLO,
  SIGNAL_FRAME,
  SIGNAL_AUTH_FAILED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void connect_now (ParleyConnection *self);
static void refresh_then_connect (ParleyConnection *self);

/* Addresses or routes changed: the socket may be bound to an address that
 * is gone. */
static void
network_changed_cb (GNetworkMonitor  *monitor,
                    gboolean          available,
                    ParleyConnection *self)
{
  if (available)
    parley_connection_check (self);
}

static void
set_state (ParleyConnection  *self,
           ParleyClientState  state)
{
  ParleyClientState old = self->state;

  if (old == state)
    return;
  self->state = state;
  g_debug ("State %s → %s", parley_client_state_to_string (old),
           parley_client_state_to_string (state));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state, old);
}

static void
drop_socket (ParleyConnection *self)
{
  g_clear_handle_id (&self->liveness_id, g_source_remove);
  if (self->ws != NULL) {
    g_signal_handlers_disconnect_by_data (self->ws, self);
    if (soup_websocket_connection_get_state (self->ws) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (self->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
    g_clear_object (&self->ws);
  }
}

static gboolean
retry_cb (gpointer user_data)
{
  ParleyConnection *self = user_data;

  self->retry_id = 0;
  connect_now (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_reconnect (ParleyConnection *self)
{
  guint delay;

  drop_socket (self);
  if (!self->running)
    return;

  delay = parley_backoff_next_ms (&self->backoff);
  g_debug ("Reconnecting in %u ms", delay);
  set_state (self, PARLEY_CLIENT_STATE_RECONNECTING);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_id = g_timeout_add (delay, retry_cb, self);
}

static void
handle_text (ParleyConnection *self,
             const char       *data,
             gsize             length)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *frame;
  const char *type;

  if (!json_parser_load_from_data (parser, data, (gssize) length, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_debug ("Ignoring a frame that is not a JSON object");
    return;
  }
  frame = json_node_get_object (root);
  type = json_object_get_string_member_with_default (frame, "type", NULL);
  if (type == NULL) {
    g_debug ("Ignoring a frame without type");
    return;
  }

  if (g_str_equal (type, "hello")) {
    self->got_hello = TRUE;
    self->auth_retried = FALSE;
    parley_backoff_reset (&self->backoff);
    set_state (self, PARLEY_CLIENT_STATE_CONNECTED);
    g_signal_emit (self, signals[SIGNAL_HELLO], 0, frame);
  } else if (g_str_equal (type, "pong")) {
    /* Liveness is tracked on every frame; nothing else to do. */
  } else if (self->got_hello) {
    g_signal_emit (self, signals[SIGNAL_FRAME], 0, type, frame);
  } else if (g_str_equal (type, "error")) {
    g_debug ("Error before hello: %s",
             json_object_get_string_member_with_default (frame, "code", "?"));
  }
}

static void
message_cb (SoupWebsocketConnection *ws,
            int                      type,
            GBytes                  *message,
            gpointer                 user_data)
{
  ParleyConnection *self = user_data;
  gsize length = 0;
  const char *data = g_bytes_get_data (message, &length);

  self->last_rx_us = g_get_monotonic_time ();
  self->ping_deadline_us = 0;

  if (type != SOUP_WEBSOCKET_DATA_TEXT) {
    g_debug ("Ignoring a binary frame");
    return;
  }
  /* The handlers may drop the socket; keep it alive until we return. */
  g_object_ref (ws);
  handle_text (self, data, length);
  g_object_unref (ws);
}

static void
closed_cb (SoupWebsocketConnection *ws,
           gpointer                 user_data)
{
  ParleyConnection *self = user_data;
  gushort code = soup_websocket_connection_get_close_code (ws);

  g_debug ("WebSocket closed (code %u, %s)", code,
           soup_websocket_connection_get_close_data (ws) ?: "");

  if (!self->got_hello && !self->auth_retried) {
    /* Closed before hello: most likely the token was refused; refresh it first. */
    self->auth_retried = TRUE;
    g_signal_emit (self, signals[SIGNAL_AUTH_FAILED], 0);
    refresh_then_connect (self);
    return;
  }
  schedule_reconnect (self);
}

static void
ws_error_cb (SoupWebsocketConnection *ws,
             GError                  *error,
             gpointer                 user_data)
{
  g_debug ("WebSocket error: %s", error->message);
}

/* Sends a ping that some frame must follow within @timeout_s seconds; with
 * a ping already out, only the earlier of the two deadlines counts. */
static void
send_ping (ParleyConnection *self,
           guint             timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;

  if (self->ping_deadline_us == 0)
    soup_websocket_connection_send_text (self->ws, "{\"type\":\"ping\"}");
  if (self->ping_deadline_us == 0 || deadline < self->ping_deadline_us)
    self->ping_deadline_us = deadline;
}

static gboolean
liveness_cb (gpointer user_data)
{
  ParleyConnection *self = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 idle_s = (now - self->last_rx_us) / G_USEC_PER_SEC;

  if (!self->got_hello && (now - self->opened_us) / G_USEC_PER_SEC >= HELLO_TIMEOUT_S) {
    g_debug ("No hello from the server");
    self->liveness_id = 0;
    schedule_reconnect (self);
    return G_SOURCE_REMOVE;
  }

  if (self->ping_deadline_us != 0 && now >= self->ping_deadline_us) {
    g_debug ("No frame for %" G_GINT64_FORMAT " s, nor since a ping: the link is dead", idle_s);
    self->liveness_id = 0;
    schedule_reconnect (self);
    return G_SOURCE_REMOVE;
  }

  if (idle_s >= IDLE_PING_S && self->got_hello)
    send_ping (self, DEAD_S - IDLE_PING_S);

  return G_SOURCE_CONTINUE;
}

static void
websocket_connect_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  ParleyConnection *self = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  g_autoptr(GError) error = NULL;
  SoupWebsocketConnection *ws;

  ws = soup_session_websocket_connect_finish (SOUP_SESSION (object), result, &error);
  if (ws == NULL) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      return;
    g_debug ("WebSocket connection failed: %s", error->message);
    if (msg != NULL && soup_message_get_status (msg) == SOUP_STATUS_UNAUTHORIZED &&
        !self->auth_retried) {
      self->auth_retried = TRUE;
      g_signal_emit (self, signals[SIGNAL_AUTH_FAILED], 0);
      refresh_then_connect (self);
      return;
    }
    schedule_reconnect (self);
    return;
  }

  self->ws = ws;
  self->got_hello = FALSE;
  self->ping_deadline_us = 0;
  self->opened_us = self->last_rx_us = g_get_monotonic_time ();
  soup_websocket_connection_set_keepalive_interval (ws, KEEPALIVE_S);
  soup_websocket_connection_set_max_incoming_payload_size (ws, 1024 * 1024);
  g_signal_connect (ws, "message", G_CALLBACK (message_cb), self);
  g_signal_connect (ws, "closed", G_CALLBACK (closed_cb), self);
  g_signal_connect (ws, "error", G_CALLBACK (ws_error_cb), self);
  self->liveness_id = g_timeout_add_seconds (1, liveness_cb, self);
}

static void
refreshed_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  ParleyConnection *self = user_data;
  g_autoptr(GError) error = NULL;

  if (!parley_account_refresh_finish (PARLEY_ACCOUNT (object), result, &error)) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      return;
    g_debug ("Cannot refresh the access token: %s", error->message);
    if (!parley_account_get_logged_in (self->account)) {
      parley_connection_stop (self);
      return;
    }
    schedule_reconnect (self);
    return;
  }
  connect_now (self);
}

static void
refresh_then_connect (ParleyConnection *self)
{
  drop_socket (self);
  if (!self->running)
    return;
  set_state (self, PARLEY_CLIENT_STATE_RECONNECTING);
  parley_account_refresh_async (self->account, self->cancellable, refreshed_cb, self);
}

static void
connect_now (ParleyConnection *self)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autofree char *bearer = NULL;

  drop_socket (self);
  if (!self->running)
    return;

  if (!parley_account_get_logged_in (self->account)) {
    parley_connection_stop (self);
    return;
  }
  if (!parley_account_has_valid_token (self->account)) {
    parley_account_refresh_async (self->account, self->cancellable, refreshed_cb, self);
    return;
  }

  msg = soup_message_new ("GET", self->ws_url);
  if (msg == NULL) {
    g_debug ("Invalid WebSocket URL %s", self->ws_url);
    parley_connection_stop (self);
    return;
  }
  bearer = g_strconcat ("Bearer ", parley_account_get_access_token (self->account), NULL);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", bearer);
  soup_session_websocket_connect_async (self->http, msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                        self->cancellable, websocket_connect_cb, self);
}

static void
parley_connection_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  ParleyConnection *self = PARLEY_CONNECTION (object);

  switch (prop_id) {
  case PROP_STATE: g_value_set_enum (value, self->state); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_connection_dispose (GObject *object)
{
  ParleyConnection *self = PARLEY_CONNECTION (object);

  self->running = FALSE;
  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  drop_socket (self);
  g_clear_object (&self->account);
  g_clear_object (&self->http);

  G_OBJECT_CLASS (parley_connection_parent_class)->dispose (object);
}

static void
parley_connection_finalize (GObject *object)
{
  ParleyConnection *self = PARLEY_CONNECTION (object);

  g_clear_object (&self->cancellable);
  g_free (self->ws_url);

  G_OBJECT_CLASS (parley_connection_parent_class)->finalize (object);
}

static void
parley_connection_class_init (ParleyConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = parley_connection_get_property;
  object_class->dispose = parley_connection_dispose;
  object_class->finalize = parley_connection_finalize;

  /** ParleyConnection:state: the connection state */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, PARLEY_TYPE_CLIENT_STATE,
                       PARLEY_CLIENT_STATE_DISCONNECTED,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyConnection::state-changed:
   * @new_state: the new state
   * @old_state: the previous state
   */
  signals[SIGNAL_STATE_CHANGED] =
    g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2,
                  PARLEY_TYPE_CLIENT_STATE, PARLEY_TYPE_CLIENT_STATE);

  /**
   * ParleyConnection::hello:
   * @frame: the `hello` frame
   *
   * The server accepted the connection.
   */
  signals[SIGNAL_HELLO] =
    g_signal_new ("hello", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, JSON_TYPE_OBJECT);

  /**
   * ParleyConnection::frame:
   * @type: the frame's `type`
   * @frame: the frame
   *
   * A frame arrived after `hello`.
   */
  signals[SIGNAL_FRAME] =
    g_signal_new ("frame", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, JSON_TYPE_OBJECT);

  /**
   * ParleyConnection::auth-failed:
   *
   * The server refused the access token; a refresh is under way.
   */
  signals[SIGNAL_AUTH_FAILED] =
    g_signal_new ("auth-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
parley_connection_init (ParleyConnection *self)
{
  self->cancellable = g_cancellable_new ();
  parley_backoff_init (&self->backoff, BACKOFF_BASE_MS, BACKOFF_MAX_MS, NULL, NULL);
}

/**
 * parley_connection_new:
 * @session: the HTTP session
 * @account: the account whose tokens authenticate the socket
 *
 * Returns: (transfer full): a new, stopped connection
 */
ParleyConnection *
parley_connection_new (SoupSession   *session,
                       ParleyAccount *account)
{
  ParleyConnection *self = g_object_new (PARLEY_TYPE_CONNECTION, NULL);
  const char *url = parley_account_get_server_url (account);

  self->http = g_object_ref (session);
  self->account = g_object_ref (account);
  if (g_str_has_prefix (url, "https://"))
    self->ws_url = g_strconcat ("wss://", url + strlen ("https://"), "/ws", NULL);
  else if (g_str_has_prefix (url, "http://"))
    self->ws_url = g_strconcat ("ws://", url + strlen ("http://"), "/ws", NULL);
  else
    self->ws_url = g_strconcat (url, "/ws", NULL);

  return self;
}

/**
 * parley_connection_set_random_func:
 * @self: a connection
 * @func: (nullable): the random source for the backoff jitter
 * @data: data for @func
 *
 * Replaces the backoff's random source, for tests.
 */
void
parley_connection_set_random_func (ParleyConnection *self,
                                   ParleyRandomFunc  func,
                                   gpointer          data)
{
  g_return_if_fail (PARLEY_IS_CONNECTION (self));
  parley_backoff_init (&self->backoff, BACKOFF_BASE_MS, BACKOFF_MAX_MS, func, data);
}

/** parley_connection_get_state: @self: a connection. Returns: the state */
ParleyClientState
parley_connection_get_state (ParleyConnection *self)
{
  g_return_val_if_fail (PARLEY_IS_CONNECTION (self), PARLEY_CLIENT_STATE_DISCONNECTED);
  return self->state;
}

/**
 * parley_connection_start:
 * @self: a connection
 *
 * Connects, and keeps reconnecting until parley_connection_stop().
 */
void
parley_connection_start (ParleyConnection *self)
{
  g_return_if_fail (PARLEY_IS_CONNECTION (self));

  if (self->running)
    return;
  self->running = TRUE;
  self->auth_retried = FALSE;
  if (!self->watching_network) {
    g_signal_connect_object (g_network_monitor_get_default (), "network-changed",
                             G_CALLBACK (network_changed_cb), self, 0);
    self->watching_network = TRUE;
  }
  g_cancellable_reset (self->cancellable);
  parley_backoff_reset (&self->backoff);
  set_state (self, PARLEY_CLIENT_STATE_CONNECTING);
  connect_now (self);
}

/**
 * parley_connection_stop:
 * @self: a connection
 *
 * Closes the socket and stops reconnecting.
 */
void
parley_connection_stop (ParleyConnection *self)
{
  g_return_if_fail (PARLEY_IS_CONNECTION (self));

  self->running = FALSE;
  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  drop_socket (self);
  set_state (self, PARLEY_CLIENT_STATE_DISCONNECTED);
}

/**
 * parley_connection_reconnect_now:
 * @self: a connection
 *
 * Skips the remaining backoff delay, for example when the network came back.
 */
void
parley_connection_reconnect_now (ParleyConnection *self)
{
  g_return_if_fail (PARLEY_IS_CONNECTION (self));

  if (self->running && self->retry_id != 0) {
    g_clear_handle_id (&self->retry_id, g_source_remove);
    connect_now (self);
  }
}

/**
 * parley_connection_check:
 * @self: a connection
 *
 * Checks the link now instead of after minutes of silence, for when it may
 * have died without a word (the network changed, a call lost its media
 * path): a ping goes out, and without any frame back within
 * %CHECK_TIMEOUT_S seconds the socket is dropped and a new one opened. A
 * pending reconnection skips its remaining backoff delay.
 */
void
parley_connection_check (ParleyConnection *self)
{
  g_return_if_fail (PARLEY_IS_CONNECTION (self));

  if (!self->running)
    return;
  if (self->retry_id != 0) {
    parley_connection_reconnect_now (self);
    return;
  }
  if (self->ws == NULL || !self->got_hello ||
      soup_websocket_connection_get_state (self->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  g_debug ("Checking the link");
  send_ping (self, CHECK_TIMEOUT_S);
}

/**
 * parley_connection_send:
 * @self: a connection
 * @frame: the frame to send
 *
 * Returns: %TRUE if the frame was handed to the socket, %FALSE when not connected
 */
gboolean
parley_connection_send (ParleyConnection *self,
                        JsonObject       *frame)
{
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *text = NULL;

  g_return_val_if_fail (PARLEY_IS_CONNECTION (self), FALSE);

  if (self->ws == NULL || !self->got_hello ||
      soup_websocket_connection_get_state (self->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return FALSE;

  node = json_node_init_object (json_node_alloc (), frame);
  text = json_to_string (node, FALSE);
  soup_websocket_connection_send_text (self->ws, text);
  return TRUE;
}
