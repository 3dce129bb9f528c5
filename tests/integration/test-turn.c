/* SPDX-License-Identifier: GPL-3.0-or-later */
/* TURN credentials from parley-server, used on a real coturn started with
 * --use-auth-secret: the allocation succeeds with them and fails without. */
#define G_LOG_DOMAIN "test-turn"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "parley-test-util.h"

#define TURN_SECRET "parley-test-turn-secret"

typedef struct {
  char *dir;
  GSubprocess *process;
  guint port;
} Coturn;

static guint
free_port (void)
{
  g_autoptr (GSocket) udp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                          G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  g_socket_bind (udp, any, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (udp, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static Coturn *
coturn_start (void)
{
  Coturn *turn = g_new0 (Coturn, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *port = NULL, *db = NULL, *pid = NULL, *min_port = NULL, *max_port = NULL;
  guint relay_base = 40000 + g_random_int_range (0, 200) * 100;
  g_autofree char *program = g_find_program_in_path ("turnserver");
  char *line;

  if (program == NULL) {
    g_free (turn);
    return NULL;
  }
  turn->dir = g_dir_make_tmp ("parley-turn-XXXXXX", &error);
  g_assert_no_error (error);
  turn->port = free_port ();
  port = g_strdup_printf ("--listening-port=%u", turn->port);
  db = g_strdup_printf ("--db=%s/turndb", turn->dir);
  pid = g_strdup_printf ("--pidfile=%s/turn.pid", turn->dir);
  min_port = g_strdup_printf ("--min-port=%u", relay_base);
  max_port = g_strdup_printf ("--max-port=%u", relay_base + 99);
  turn->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                    G_SUBPROCESS_FLAGS_STDERR_MERGE, &error, "turnserver", "-n",
                                    "--listening-ip=127.0.0.1",
                                    "--relay-ip=127.0.0.1", port, "--use-auth-secret",
                                    "--static-auth-secret=" TURN_SECRET, "--realm=parley.test",
                                    "--no-tls", "--no-dtls", "--no-tcp-relay",
                                    "--allow-loopback-peers", "--no-cli", db, pid, min_port,
                                    max_port, "--log-file=stdout", "--simple-log", NULL);
  g_assert_no_error (error);

  /* Ready once its listeners and database are up. */
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (turn->process));
  while ((line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error))) {
    gboolean ready = strstr (line, "SQLite DB connection success") != NULL;

    g_free (line);
    if (ready)
      break;
  }
  g_assert_no_error (error);
  g_assert_nonnull (g_subprocess_get_identifier (turn->process));
  return turn;
}

static void
coturn_stop (Coturn *turn)
{
  g_autofree char *db = g_strdup_printf ("%s/turndb", turn->dir);
  g_autofree char *pid = g_strdup_printf ("%s/turn.pid", turn->dir);

  g_subprocess_force_exit (turn->process);
  g_subprocess_wait (turn->process, NULL, NULL);
  g_object_unref (turn->process);
  g_unlink (db);
  g_unlink (pid);
  g_rmdir (turn->dir);
  g_free (turn->dir);
  g_free (turn);
}

/* HMAC-SHA1 computed by openssl, independently of the server's code. */
static char *
openssl_turn_password (const char *username)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) out = NULL;
  g_autofree char *script = g_strdup_printf ("printf '%%s' '%s' | openssl dgst -binary -sha1 "
                                             "-hmac '%s' | base64", username, TURN_SECRET);
  gsize len = 0;
  const char *data;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "sh", "-c", script, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate (proc, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (out, &len);
  return g_strstrip (g_strndup (data, len));
}

/* Allocates on the relay and sends a few packets between two allocations. */
static gboolean
uclient (Coturn     *turn,
         const char *username,
         const char *password,
         char      **output)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *port = g_strdup_printf ("%u", turn->port);

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                           &error, "turnutils_uclient", "-y", "-n", "3", "-z", "5", "-u", username,
                           "-w", password, "-p", port, "127.0.0.1", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, output, NULL, &error);
  g_assert_no_error (error);
  return g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 0;
}

static void
test_credentials_allocate (void)
{
  Coturn *turn = coturn_start ();
  g_autoptr (ParleyTestServer) server = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *uris_env = NULL;
  g_autofree char *token = NULL;
  g_autofree char *user_id = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *output = NULL;
  g_autofree char *bad_output = NULL;
  g_autofree char *forged = NULL;
  g_autoptr (JsonObject) creds = NULL;
  const char *env[] = { "PARLEY_TURN_SECRET=" TURN_SECRET, NULL, NULL };
  const char *username, *password;
  JsonArray *uris;
  g_auto (GStrv) parts = NULL;
  gint64 expiry, now = g_get_real_time () / G_USEC_PER_SEC;
  guint status = 0;

  if (turn == NULL) {
    g_test_skip ("coturn (turnserver) is not installed");
    return;
  }
  uri = g_strdup_printf ("turn:127.0.0.1:%u?transport=udp", turn->port);
  uris_env = g_strconcat ("PARLEY_TURN_URIS=", uri, NULL);
  env[1] = uris_env;
  server = parley_test_server_new ("[turn]\nttl=600\n", env);
  token = parley_test_register_login (server, "carol", &user_id);

  creds = parley_test_http (server, "GET", "/api/turn/credentials", NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 401);
  g_clear_pointer (&creds, json_object_unref);
  creds = parley_test_http (server, "GET", "/api/turn/credentials", token, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  username = json_object_get_string_member (creds, "username");
  password = json_object_get_string_member (creds, "password");
  g_assert_cmpint (json_object_get_int_member (creds, "ttl"), ==, 600);
  uris = json_object_get_array_member (creds, "uris");
  g_assert_cmpuint (json_array_get_length (uris), ==, 1);
  g_assert_cmpstr (json_array_get_string_element (uris, 0), ==, uri);

  parts = g_strsplit (username, ":", 2);
  g_assert_cmpstr (parts[1], ==, user_id);
  expiry = g_ascii_strtoll (parts[0], NULL, 10);
  g_assert_cmpint (expiry, >=, now + 600 - 5);
  g_assert_cmpint (expiry, <=, now + 600 + 5);
  expected = openssl_turn_password (username);
  g_assert_cmpstr (password, ==, expected);
  g_assert_null (strstr (json_object_get_string_member (creds, "password"), TURN_SECRET));

  g_assert_true (uclient (turn, username, password, &output));
  g_assert_nonnull (strstr (output, "Total lost packets 0"));

  /* The relay really checks: a wrong password is refused. */
  forged = g_strdup (password);
  forged[0] = forged[0] == 'A' ? 'B' : 'A';
  g_assert_false (uclient (turn, username, forged, &bad_output));

  coturn_stop (turn);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/turn/credentials-allocate", test_credentials_allocate);
  return g_test_run ();
}
