/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-test"

#include "config.h"

#include <signal.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "parley-test-util.h"

#define WAIT_TIMEOUT_MS 10000
#define TEST_PASSWORD "correct horse battery"

static gboolean
timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/**
 * parley_test_wait_until:
 *
 * Iterates the default main context until @done returns %TRUE or the
 * timeout passes. Returns whether @done became true.
 */
gboolean
parley_test_wait_until (gboolean (*done) (gpointer data),
                        gpointer data,
                        guint    timeout_ms)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (timeout_ms, timeout_cb, &timed_out);

  while (!done (data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  return done (data);
}

ParleyTestServer *
parley_test_server_new (const char        *extra_config,
                        const char *const *extra_env)
{
  ParleyTestServer *server = g_new0 (ParleyTestServer, 1);
  g_autoptr (GError) error = NULL;
  g_autofree char *config = NULL;

  server->dir = g_dir_make_tmp ("parley-test-XXXXXX", &error);
  g_assert_no_error (error);
  server->db_path = g_build_filename (server->dir, "parley.db", NULL);
  server->config_path = g_build_filename (server->dir, "parley.conf", NULL);
  /* Cheapest Argon2id parameters: the tests are about behaviour, not cost. */
  config = g_strdup_printf ("[auth]\nargon2-ops=1\nargon2-mem-kib=8\n%s\n",
                            extra_config ? extra_config : "");
  g_file_set_contents (server->config_path, config, -1, &error);
  g_assert_no_error (error);
  server->extra_env = g_strdupv ((char **) extra_env);
  parley_test_server_start (server);
  return server;
}

/* In the server's process before exec: die with the test, so that a failed
 * assertion does not leave a server holding the test's output open. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/**
 * parley_test_server_start:
 *
 * Starts (or restarts) the server on its database and waits for the line
 * that names its port.
 */
void
parley_test_server_start (ParleyTestServer *server)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  const char *binary = g_getenv ("PARLEY_SERVER");
  const char *prefix = "parley-server listening on port ";

  g_assert_nonnull (binary);
  g_assert_null (server->process);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  g_subprocess_launcher_unsetenv (launcher, "PARLEY_TURN_SECRET");
  for (guint i = 0; server->extra_env && server->extra_env[i]; i++) {
    g_auto (GStrv) kv = g_strsplit (server->extra_env[i], "=", 2);

    g_subprocess_launcher_setenv (launcher, kv[0], kv[1] ? kv[1] : "", TRUE);
  }
  server->process = g_subprocess_launcher_spawn (launcher, &error, binary, "--port", "0",
                                                 "--config", server->config_path,
                                                 "--database", server->db_path, NULL);
  g_assert_no_error (error);

  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server->process));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, prefix));
  server->port = atoi (line + strlen (prefix));
  g_assert_cmpuint (server->port, >, 0);
  g_free (server->base_url);
  server->base_url = g_strdup_printf ("http://127.0.0.1:%u", server->port);
}

/**
 * parley_test_server_kill:
 * @signum: SIGKILL for a crash, SIGTERM for a clean shutdown
 */
void
parley_test_server_kill (ParleyTestServer *server,
                         int               signum)
{
  g_autoptr (GError) error = NULL;

  if (server->process == NULL)
    return;
  g_subprocess_send_signal (server->process, signum);
  g_subprocess_wait (server->process, NULL, &error);
  g_assert_no_error (error);
  if (signum == SIGTERM)
    g_assert_true (g_subprocess_get_if_exited (server->process) &&
                   g_subprocess_get_exit_status (server->process) == 0);
  g_clear_object (&server->process);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree char *child = g_build_filename (path, name, NULL);

    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      remove_tree (child);
    else
      g_unlink (child);
  }
  g_rmdir (path);
}

void
parley_test_server_free (ParleyTestServer *server)
{
  if (server == NULL)
    return;
  parley_test_server_kill (server, SIGTERM);
  remove_tree (server->dir);
  g_free (server->dir);
  g_free (server->db_path);
  g_free (server->config_path);
  g_free (server->base_url);
  g_strfreev (server->extra_env);
  g_free (server);
}

char *
parley_test_server_url (ParleyTestServer *server,
                        const char       *path)
{
  return g_strconcat (server->base_url, path, NULL);
}

/**
 * parley_test_http:
 *
 * Returns: (transfer full) (nullable): the JSON object answered, if any
 */
JsonObject *
parley_test_http (ParleyTestServer *server,
                  const char       *method,
                  const char       *path,
                  const char       *token,
                  const char       *body,
                  guint            *status)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree char *url = parley_test_server_url (server, path);
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  g_autoptr (GBytes) reply = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  const char *data;

  g_assert_nonnull (msg);
  if (token) {
    g_autofree char *value = g_strconcat ("Bearer ", token, NULL);

    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
  }
  if (body) {
    g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));

    soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  }
  reply = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  if (status)
    *status = soup_message_get_status (msg);
  data = g_bytes_get_data (reply, &len);
  if (len == 0 || !json_parser_load_from_data (parser, data, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/**
 * parley_test_register_login:
 *
 * Registers @username and logs in.
 *
 * Returns: (transfer full): an access token
 */
char *
parley_test_register_login (ParleyTestServer *server,
                            const char       *username,
                            char            **out_user_id)
{
  g_autofree char *body = g_strdup_printf ("{\"username\":\"%s\",\"password\":\"%s\"}", username,
                                           TEST_PASSWORD);
  g_autoptr (JsonObject) reply = NULL;
  guint status = 0;

  reply = parley_test_http (server, "POST", "/api/register", NULL, body, &status);
  g_assert_cmpuint (status, ==, 201);
  g_clear_pointer (&reply, json_object_unref);
  reply = parley_test_http (server, "POST", "/api/login", NULL, body, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (reply);
  if (out_user_id)
    *out_user_id = g_strdup (json_object_get_string_member (reply, "userId"));
  return g_strdup (json_object_get_string_member (reply, "accessToken"));
}

static void
ws_message_cb (SoupWebsocketConnection *conn,
               gint                     type,
               GBytes                  *message,
               ParleyTestWs            *ws)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *data = g_bytes_get_data (message, &len);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_TEXT);
  json_parser_load_from_data (parser, data, len, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  g_queue_push_tail (&ws->frames,
                     json_object_ref (json_node_get_object (json_parser_get_root (parser))));
}

static void
ws_closed_cb (SoupWebsocketConnection *conn,
              ParleyTestWs            *ws)
{
  ws->closed = TRUE;
  ws->close_code = soup_websocket_connection_get_close_code (conn);
}

typedef struct {
  GAsyncResult *result;
} Pending;

static void
connect_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  ((Pending *) data)->result = g_object_ref (result);
}

static gboolean
pending_done (gpointer data)
{
  return ((Pending *) data)->result != NULL;
}

/**
 * parley_test_ws_connect:
 * @token: (nullable): sent as `Authorization: Bearer`, or nothing
 *
 * Returns: (transfer full) (nullable): a connected client
 */
ParleyTestWs *
parley_test_ws_connect (ParleyTestServer *server,
                        const char       *token,
                        GError          **error)
{
  g_autoptr (ParleyTestWs) ws = g_new0 (ParleyTestWs, 1);
  g_autofree char *url = g_strdup_printf ("ws://127.0.0.1:%u/ws", server->port);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  Pending pending = { NULL };

  g_queue_init (&ws->frames);
  ws->session = soup_session_new ();
  if (token) {
    g_autofree char *value = g_strconcat ("Bearer ", token, NULL);

    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
  }
  soup_session_websocket_connect_async (ws->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                        connect_done_cb, &pending);
  g_assert_true (parley_test_wait_until (pending_done, &pending, WAIT_TIMEOUT_MS));
  ws->conn = soup_session_websocket_connect_finish (ws->session, pending.result, error);
  g_object_unref (pending.result);
  if (ws->conn == NULL)
    return NULL;
  soup_websocket_connection_set_max_incoming_payload_size (ws->conn, 0);
  g_signal_connect (ws->conn, "message", G_CALLBACK (ws_message_cb), ws);
  g_signal_connect (ws->conn, "closed", G_CALLBACK (ws_closed_cb), ws);
  return g_steal_pointer (&ws);
}

void
parley_test_ws_send (ParleyTestWs *ws,
                     const char   *format,
                     ...)
{
  va_list args;
  g_autofree char *text = NULL;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  soup_websocket_connection_send_text (ws->conn, text);
}

void
parley_test_ws_send_raw (ParleyTestWs *ws,
                         const char   *text,
                         gsize         len)
{
  g_autoptr (GBytes) bytes = g_bytes_new (text, len);

  soup_websocket_connection_send_message (ws->conn, SOUP_WEBSOCKET_DATA_TEXT, bytes);
}

typedef struct {
  ParleyTestWs *ws;
  const char *type;
  const char *ref;
  GList *found;
} Search;

static gboolean
search_frames (gpointer data)
{
  Search *search = data;

  for (GList *l = search->ws->frames.head; l; l = l->next) {
    JsonObject *frame = l->data;

    if (g_strcmp0 (json_object_get_string_member_with_default (frame, "type", ""), search->type))
      continue;
    if (search->ref &&
        g_strcmp0 (json_object_get_string_member_with_default (frame, "ref", ""), search->ref))
      continue;
    search->found = l;
    return TRUE;
  }
  return search->ws->closed;
}

/**
 * parley_test_ws_expect_ref:
 * @ref: (nullable): the `ref` the frame must carry
 *
 * Waits for the first frame of @type (and @ref) and takes it out of the
 * queue; other frames stay. Fails the test after a timeout.
 *
 * Returns: (transfer full): the frame
 */
JsonObject *
parley_test_ws_expect_ref (ParleyTestWs *ws,
                           const char   *type,
                           const char   *ref)
{
  Search search = { ws, type, ref, NULL };
  JsonObject *frame;

  parley_test_wait_until (search_frames, &search, WAIT_TIMEOUT_MS);
  if (search.found == NULL)
    g_error ("No \"%s\" frame (ref %s) arrived", type, ref ? ref : "any");
  frame = search.found->data;
  g_queue_delete_link (&ws->frames, search.found);
  return frame;
}

JsonObject *
parley_test_ws_expect (ParleyTestWs *ws,
                       const char   *type)
{
  return parley_test_ws_expect_ref (ws, type, NULL);
}

/**
 * parley_test_ws_settle:
 *
 * Round-trips a ping through the server, so that everything the server
 * sent before has arrived.
 */
void
parley_test_ws_settle (ParleyTestWs *ws)
{
  JsonObject *pong;

  parley_test_ws_send (ws, "{\"type\":\"ping\"}");
  pong = parley_test_ws_expect (ws, "pong");
  json_object_unref (pong);
}

guint
parley_test_ws_count (ParleyTestWs *ws,
                      const char   *type)
{
  guint n = 0;

  for (GList *l = ws->frames.head; l; l = l->next)
    n += g_strcmp0 (json_object_get_string_member_with_default (l->data, "type", ""), type) == 0;
  return n;
}

static gboolean
is_closed (gpointer data)
{
  return ((ParleyTestWs *) data)->closed;
}

gboolean
parley_test_ws_wait_closed (ParleyTestWs *ws)
{
  return parley_test_wait_until (is_closed, ws, WAIT_TIMEOUT_MS);
}

void
parley_test_ws_free (ParleyTestWs *ws)
{
  if (ws == NULL)
    return;
  if (ws->conn) {
    g_signal_handlers_disconnect_by_data (ws->conn, ws);
    if (soup_websocket_connection_get_state (ws->conn) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (ws->conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
    g_object_unref (ws->conn);
  }
  g_queue_clear_full (&ws->frames, (GDestroyNotify) json_object_unref);
  g_clear_object (&ws->session);
  g_free (ws);
}
