/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-client-sync"

#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "parley-client.h"
#include "parley-content.h"
#include "parley-test-util.h"

/* The client engine against a real parley-server: history sync when the
 * history is longer than one sync page and stored messages are replayed to
 * the connecting device at the same time; and the link check that finds a
 * connection dead without a word. */

#define TEST_PASSWORD "correct horse battery"
#define HISTORY 1500            /* more than a sync page (1,000) */
#define WAIT_MS 60000

static gboolean
client_synced (gpointer data)
{
  return parley_client_get_synced (data);
}

typedef struct {
  GObject *source;
  GAsyncResult *result;
} AsyncWait;

static void
async_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  AsyncWait *wait = user_data;

  wait->result = g_object_ref (result);
}

static gboolean
async_done (gpointer data)
{
  return ((AsyncWait *) data)->result != NULL;
}

/* A device of @username (registered) with a profile of its own in the
 * server's directory, logged in, connected and synced. */
static ParleyClient *
connected_device (ParleyTestServer *server,
                  const char       *username,
                  const char       *device)
{
  g_autofree char *dir = g_build_filename (server->dir, device, NULL);
  g_autoptr(GError) error = NULL;
  ParleyClient *client;
  AsyncWait wait = { 0 };

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  client = parley_client_new (server->base_url, dir, &error);
  g_assert_no_error (error);
  parley_client_login_async (client, username, TEST_PASSWORD, NULL, async_cb, &wait);
  g_assert_true (parley_test_wait_until (async_done, &wait, WAIT_MS));
  g_assert_true (parley_client_login_finish (client, wait.result, &error));
  g_assert_no_error (error);
  g_clear_object (&wait.result);
  parley_client_connect (client);
  g_assert_true (parley_test_wait_until (client_synced, client, WAIT_MS));
  return client;
}

/* Bob's first device sent a long history (his own messages, so none of them
 * is pending for him); then, while none of his devices is online, Alice
 * sends him one more, which waits to be replayed. A second device with an
 * empty cache connects: it gets the pending message replayed while it pages
 * through the history, and must end with all of it. (It used to resume
 * paging after the highest seq it had seen, the replayed message's, and
 * skipped the rest of the history.) */
static void
test_long_history_with_replay (void)
{
  g_autoptr(ParleyTestServer) server =
    parley_test_server_new ("[ws]\nrate=100000\nrate-burst=100000\nreplay-batch=1\n", NULL);
  g_autofree char *alice_id = NULL, *bob_id = NULL;
  g_autofree char *alice_token = NULL, *bob_token = NULL;
  g_autofree char *content = parley_content_encode ("hello");
  g_autoptr(GString) escaped = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyClient) client = NULL;
  g_autoptr(GPtrArray) messages = NULL;
  gboolean seen_pending = FALSE;
  guint n_own = 0;

  alice_token = parley_test_register_login (server, "alice", &alice_id);
  bob_token = parley_test_register_login (server, "bob", &bob_id);
  for (const char *p = content; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c (escaped, '\\');
    g_string_append_c (escaped, *p);
  }

  {
    g_autoptr(ParleyTestWs) bob1 = parley_test_ws_connect (server, bob_token, &error);

    g_assert_no_error (error);
    json_object_unref (parley_test_ws_expect (bob1, "hello"));
    for (guint i = 0; i < HISTORY; i++) {
      g_autofree char *ref = g_strdup_printf ("h%u", i);

      parley_test_ws_send (bob1, "{\"type\":\"message\",\"id\":\"%s\",\"recipientId\":\"%s\","
                           "\"encryptedContent\":\"%s\"}", ref, alice_id, escaped->str);
      if (i % 100 == 99 || i == HISTORY - 1)
        json_object_unref (parley_test_ws_expect_ref (bob1, "ack", ref));
    }
  }
  {
    g_autoptr(ParleyTestWs) alice = parley_test_ws_connect (server, alice_token, &error);
    g_autoptr(JsonObject) ack = NULL;

    g_assert_no_error (error);
    json_object_unref (parley_test_ws_expect (alice, "hello"));
    parley_test_ws_send (alice, "{\"type\":\"message\",\"id\":\"late\",\"recipientId\":\"%s\","
                         "\"encryptedContent\":\"%s\"}", bob_id, escaped->str);
    ack = parley_test_ws_expect_ref (alice, "ack", "late");
    g_assert_cmpstr (json_object_get_string_member (ack, "status"), ==, "stored");
  }

  client = connected_device (server, "bob", "bob-device-2");

  messages = parley_cache_list_messages (parley_client_get_cache (client), alice_id, 0);
  for (guint i = 0; i < messages->len; i++) {
    ParleyMessage *m = g_ptr_array_index (messages, i);

    if (g_str_equal (parley_message_get_id (m), "late"))
      seen_pending = TRUE;
    else if (g_str_equal (parley_message_get_sender_id (m), bob_id))
      n_own++;
  }
  g_assert_true (seen_pending);
  g_assert_cmpuint (n_own, ==, HISTORY);
  g_assert_cmpint (parley_cache_get_last_seq (parley_client_get_cache (client)), ==, HISTORY + 1);

  g_clear_object (&client);
}

static gboolean
client_reconnecting (gpointer data)
{
  return parley_client_get_state (data) == PARLEY_CLIENT_STATE_RECONNECTING;
}

static gboolean
client_connected (gpointer data)
{
  return parley_client_get_state (data) == PARLEY_CLIENT_STATE_CONNECTED;
}

/* Whether every thread of the server process is stopped (state T in
 * /proc/PID/task/TID/stat): SIGSTOP takes effect asynchronously. */
static gboolean
server_stopped (gpointer data)
{
  ParleyTestServer *server = data;
  g_autofree char *dir = g_strdup_printf ("/proc/%s/task",
                                          g_subprocess_get_identifier (server->process));
  g_autoptr(GDir) tasks = g_dir_open (dir, 0, NULL);
  const char *tid;

  if (tasks == NULL)
    return FALSE;
  while ((tid = g_dir_read_name (tasks)) != NULL) {
    g_autofree char *path = g_build_filename (dir, tid, "stat", NULL);
    g_autofree char *text = NULL;
    const char *end;

    if (!g_file_get_contents (path, &text, NULL, NULL) || (end = strrchr (text, ')')) == NULL ||
        end[1] != ' ' || end[2] != 'T')
      return FALSE;
  }
  return TRUE;
}

/* A server that stops answering (SIGSTOP: its socket stays open, as a link
 * whose address went away) is given up within seconds of a link check, not
 * after the 35 s of silence that would otherwise tell; the client is back
 * once the server answers again. */
static void
test_link_check (void)
{
  g_autoptr(ParleyTestServer) server = parley_test_server_new (NULL, NULL);
  g_autofree char *token = parley_test_register_login (server, "alice", NULL);
  g_autoptr(ParleyClient) client = connected_device (server, "alice", "alice-device");
  gint64 start;
  double elapsed_s;

  g_subprocess_send_signal (server->process, SIGSTOP);
  g_assert_true (parley_test_wait_until (server_stopped, server, WAIT_MS));
  start = g_get_monotonic_time ();
  parley_client_check_connection (client);
  g_assert_true (parley_test_wait_until (client_reconnecting, client, 20000));
  elapsed_s = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  g_test_message ("gave the silent link up after %.1f s", elapsed_s);
  g_assert_cmpfloat (elapsed_s, >=, 2.5);
  g_assert_cmpfloat (elapsed_s, <, 10);

  g_subprocess_send_signal (server->process, SIGCONT);
  g_assert_true (parley_test_wait_until (client_connected, client, WAIT_MS));

  g_clear_object (&client);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/client-sync/long-history-with-replay", test_long_history_with_replay);
  g_test_add_func ("/client-sync/link-check", test_link_check);
  return g_test_run ();
}
