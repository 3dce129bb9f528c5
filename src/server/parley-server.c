/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-server"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <unistd.h>

#include "parley-http-api.h"
#include "parley-sched.h"
#include "parley-server.h"
#include "parley-store.h"
#include "parley-token.h"
#include "parley-ws-server.h"

struct _ParleyServer {
  ParleyConfig *config;
  ParleyStore *store;
  ParleyWsServer *ws;
  ParleyHttpApi *api;
  SoupServer *soup;
  GSocket *listener;
  guint port;
};

typedef struct {
  ParleyServer *server;
  char *user_id;
} Upgrade;

static void
upgrade_free (gpointer data,
              GClosure *closure)
{
  Upgrade *upgrade = data;

  g_free (upgrade->user_id);
  g_free (upgrade);
}

static void
send_json_error (SoupServerMessage *msg,
                 guint              status,
                 const char        *code,
                 const char        *message)
{
  g_autofree char *body = g_strdup_printf ("{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                                           code, message);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body,
                                    strlen (body));
}

/* The 101 answer went out: take the socket away from libsoup and give it to
 * the network thread. */
static void
upgrade_wrote_informational_cb (SoupServerMessage *msg,
                                Upgrade           *upgrade)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  g_autoptr (GIOStream) stream = NULL;
  int fd;

  if (socket == NULL || (fd = fcntl (g_socket_get_fd (socket), F_DUPFD_CLOEXEC, 3)) < 0) {
    g_warning ("Cannot take over an upgraded connection: %s", g_strerror (errno));
    return;
  }
  stream = soup_server_message_steal_connection (msg);
  g_io_stream_close (stream, NULL, NULL);
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
  parley_ws_server_adopt (upgrade->server->ws, fd, upgrade->user_id);
}

static void
ws_handler_cb (SoupServer        *soup,
               SoupServerMessage *msg,
               const char        *path,
               GHashTable        *query,
               gpointer           user_data)
{
  ParleyServer *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *authorization = soup_message_headers_get_one (headers, "Authorization");
  g_autofree char *user_id = NULL;
  g_autoptr (GError) error = NULL;
  Upgrade *upgrade;

  if (authorization != NULL) {
    if (g_ascii_strncasecmp (authorization, "Bearer ", 7) == 0)
      user_id = parley_token_verify (self->config->token_key, PARLEY_TOKEN_KEY_LEN,
                                     authorization + 7, g_get_real_time () / G_USEC_PER_SEC,
                                     &error);
    if (user_id == NULL) {
      g_debug ("WebSocket upgrade refused: %s", error ? error->message : "not a bearer token");
      send_json_error (msg, SOUP_STATUS_UNAUTHORIZED, "invalid-token",
                       "Invalid or expired access token");
      return;
    }
  }

  /* No extensions: frames stay plain so the relay can splice them. */
  if (!soup_websocket_server_process_handshake (msg, NULL, NULL, NULL, NULL))
    return;

  upgrade = g_new0 (Upgrade, 1);
  upgrade->server = self;
  upgrade->user_id = g_steal_pointer (&user_id);
  g_signal_connect_data (msg, "wrote-informational", G_CALLBACK (upgrade_wrote_informational_cb),
                         upgrade, upgrade_free, 0);
}

static void
health_handler_cb (SoupServer        *soup,
                   SoupServerMessage *msg,
                   const char        *path,
                   GHashTable        *query,
                   gpointer           user_data)
{
  ParleyServer *self = user_data;
  ParleyWsStats stats;
  g_autofree char *body = NULL;

  parley_ws_server_get_stats (self->ws, &stats);
  body = g_strdup_printf ("{\"status\":\"ok\",\"connections\":%u,\"usersOnline\":%u}",
                          stats.connections, stats.users_online);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body,
                                    strlen (body));
}

/* libsoup 3.2 does not notice that a client closed an idle keep-alive
 * connection and keeps its socket open forever; the API is not chatty
 * enough to need keep-alive, so every answer closes its connection. The
 * WebSocket handshake replaces the header with "Upgrade". */
static void
request_started_cb (SoupServer        *soup,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                "close");
}

static GSocket *
listen_socket (const ParleyConfig *config,
               GError            **error)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (config->listen_address);
  g_autoptr (GSocketAddress) sockaddr = NULL;
  g_autoptr (GSocket) socket = NULL;

  if (address == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "Not an IP address to listen on: %s", config->listen_address);
    return NULL;
  }
  socket = g_socket_new (g_inet_address_get_family (address), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return NULL;
  sockaddr = g_inet_socket_address_new (address, config->port);
  if (!g_socket_bind (socket, sockaddr, TRUE, error))
    return NULL;
  /* GLib's default backlog of 10 drops connection bursts. */
  g_socket_set_listen_backlog (socket, config->listen_backlog);
  if (!g_socket_listen (socket, error))
    return NULL;
  return g_steal_pointer (&socket);
}

/**
 * parley_server_new:
 * @config: (transfer full): the configuration
 * @error: return location for a #GError
 *
 * Opens the store and starts listening.
 *
 * Returns: (transfer full) (nullable): the running server
 */
ParleyServer *
parley_server_new (ParleyConfig *config,
                   GError      **error)
{
  g_autoptr (ParleyServer) self = g_new0 (ParleyServer, 1);
  g_autoptr (GSocketAddress) local = NULL;

  self->config = config;
  if (!parley_config_ensure_token_key (config, error))
    return NULL;

  self->ws = parley_ws_server_new (config, error);
  if (self->ws == NULL)
    return NULL;
  parley_sched_set_background_cpus (config->background_cpus);
  self->store = parley_store_open (config->db_path, parley_ws_server_store_done, self->ws, error);
  if (self->store == NULL)
    return NULL;
  parley_ws_server_start (self->ws, self->store);

  self->api = parley_http_api_new (config, self->store);
  parley_http_api_set_online_func (self->api, parley_ws_server_is_online, self->ws);

  self->soup = soup_server_new ("server-header", "parley-server/" PACKAGE_VERSION, NULL);
  g_signal_connect (self->soup, "request-started", G_CALLBACK (request_started_cb), NULL);
  parley_http_api_add_handlers (self->api, self->soup);
  soup_server_add_handler (self->soup, "/ws", ws_handler_cb, self, NULL);
  soup_server_add_handler (self->soup, "/healthz", health_handler_cb, self, NULL);

  self->listener = listen_socket (config, error);
  if (self->listener == NULL)
    return NULL;
  if (!soup_server_listen_socket (self->soup, self->listener, 0, error))
    return NULL;
  local = g_socket_get_local_address (self->listener, error);
  if (local == NULL)
    return NULL;
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  return g_steal_pointer (&self);
}

guint
parley_server_get_port (ParleyServer *self)
{
  return self->port;
}

/**
 * parley_server_free:
 *
 * Stops listening, closes every WebSocket, commits what the store still
 * has queued and frees everything.
 */
void
parley_server_free (ParleyServer *self)
{
  if (self == NULL)
    return;
  if (self->soup) {
    soup_server_disconnect (self->soup);
    g_clear_object (&self->soup);
  }
  g_clear_object (&self->listener);
  if (self->ws)
    parley_ws_server_stop (self->ws);
  /* The API's worker threads may still use the store: free it first. */
  g_clear_pointer (&self->api, parley_http_api_free);
  g_clear_pointer (&self->store, parley_store_close);
  g_clear_pointer (&self->ws, parley_ws_server_free);
  g_clear_pointer (&self->config, parley_config_free);
  g_free (self);
}

/* Logging: one logfmt line per record on stderr. Messages never carry
 * passwords, tokens or message content; callers log ids and routes only. */
static GLogWriterOutput
log_writer (GLogLevelFlags   level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  const char *domain = NULL;
  const char *message = NULL;
  const char *level_name;
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *stamp = NULL;
  g_autoptr (GString) line = NULL;

  for (gsize i = 0; i < n_fields; i++) {
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
      domain = fields[i].value;
    else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  }
  if (g_log_writer_default_would_drop (level, domain))
    return G_LOG_WRITER_HANDLED;

  switch (level & G_LOG_LEVEL_MASK) {
    case G_LOG_LEVEL_ERROR: level_name = "error"; break;
    case G_LOG_LEVEL_CRITICAL: level_name = "critical"; break;
    case G_LOG_LEVEL_WARNING: level_name = "warning"; break;
    case G_LOG_LEVEL_MESSAGE: level_name = "notice"; break;
    case G_LOG_LEVEL_INFO: level_name = "info"; break;
    default: level_name = "debug"; break;
  }

  now = g_date_time_new_now_utc ();
  stamp = g_date_time_format_iso8601 (now);
  line = g_string_new (NULL);
  g_string_append_printf (line, "time=%s level=%s domain=%s msg=\"", stamp, level_name,
                          domain ? domain : "parley");
  for (const char *p = message ? message : ""; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c (line, '\\');
    if (*p == '\n')
      g_string_append (line, "\\n");
    else
      g_string_append_c (line, *p);
  }
  g_string_append (line, "\"\n");
  fputs (line->str, stderr);
  fflush (stderr);
  if (level & (G_LOG_FLAG_FATAL | G_LOG_LEVEL_ERROR))
    return g_log_writer_default (level, fields, n_fields, user_data);
  return G_LOG_WRITER_HANDLED;
}

void
parley_log_init (void)
{
  g_log_set_writer_func (log_writer, NULL, NULL);
}
