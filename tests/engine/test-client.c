/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-client"

#include <glib/gstdio.h>

#include "parley-client.h"
#include "parley-engine-test.h"
#include "parley-error.h"
#include "parley-session.h"

/* Tests of the client façade that need no server: the outbox while the
 * server is unreachable, and what a new process finds in the profile. */

typedef struct {
  char *dir;
  char *server_url;
} Fixture;

static guint16
unused_port (void)
{
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autoptr(GError) error = NULL;
  guint16 port = g_socket_listener_add_any_inet_port (listener, NULL, &error);

  g_assert_no_error (error);
  g_socket_listener_close (listener);
  return port;
}

static void
setup (Fixture       *fixture,
       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleySession) session = NULL;
  g_autofree char *path = NULL;

  fixture->dir = g_dir_make_tmp ("parley-client-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->server_url = g_strdup_printf ("http://127.0.0.1:%u", unused_port ());

  /* A logged-in profile with an access token good for an hour. */
  path = g_build_filename (fixture->dir, "session.json", NULL);
  session = parley_session_new ("me", "me_name", "access", "refresh",
                                g_get_real_time () / G_USEC_PER_SEC + 3600);
  g_assert_true (parley_session_save (session, path, &error));
}

static void
teardown (Fixture       *fixture,
          gconstpointer  data)
{
  parley_engine_test_remove_tree (fixture->dir);
  g_free (fixture->dir);
  g_free (fixture->server_url);
}

static gboolean
timeout_cb (gpointer user_data)
{
  g_error ("Timed out waiting for the client");
  return G_SOURCE_REMOVE;
}

static void
state_cb (ParleyClient      *client,
          ParleyClientState  new_state,
          ParleyClientState  old_state,
          GMainLoop         *loop)
{
  if (new_state == PARLEY_CLIENT_STATE_RECONNECTING)
    g_main_loop_quit (loop);
}

static void
test_outbox_offline_and_restart (Fixture       *fixture,
                                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyClient) client = NULL;
  g_autoptr(ParleyMessage) message = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(ParleyConversation) conversation = NULL;
  g_autoptr(ParleyMessage) reloaded = NULL;
  g_autofree char *id = NULL;
  GListModel *conversations;
  GListModel *messages;
  guint timeout_id;

  client = parley_client_new (fixture->server_url, fixture->dir, &error);
  g_assert_no_error (error);
  g_assert_true (parley_client_get_logged_in (client));
  g_assert_cmpstr (parley_client_get_user_id (client), ==, "me");
  g_assert_cmpint (parley_client_get_state (client), ==, PARLEY_CLIENT_STATE_DISCONNECTED);

  message = parley_client_send_message (client, "bob", "queued while offline", &error);
  g_assert_no_error (error);
  id = g_strdup (parley_message_get_id (message));
  g_assert_true (g_uuid_string_is_valid (id));
  g_assert_cmpint (parley_message_get_state (message), ==, PARLEY_MESSAGE_STATE_SENDING);
  g_assert_cmpuint (parley_client_get_n_pending (client), ==, 1);

  conversations = parley_client_get_conversations (client);
  g_assert_cmpuint (g_list_model_get_n_items (conversations), ==, 1);

  /* The server is unreachable: the client goes on to reconnect, the message waits. */
  g_signal_connect (client, "state-changed", G_CALLBACK (state_cb), loop);
  timeout_id = g_timeout_add_seconds (20, timeout_cb, NULL);
  parley_client_connect (client);
  g_main_loop_run (loop);
  g_source_remove (timeout_id);
  g_assert_cmpint (parley_client_get_state (client), ==, PARLEY_CLIENT_STATE_RECONNECTING);
  g_assert_cmpint (parley_message_get_state (message), ==, PARLEY_MESSAGE_STATE_SENDING);

  g_signal_handlers_disconnect_by_data (client, loop);
  parley_client_disconnect (client);
  g_assert_cmpint (parley_client_get_state (client), ==, PARLEY_CLIENT_STATE_DISCONNECTED);
  g_clear_object (&message);
  g_assert_finalize_object (g_steal_pointer (&client));

  /* A new process with the same profile still has the message queued. */
  client = parley_client_new (fixture->server_url, fixture->dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (parley_client_get_n_pending (client), ==, 1);
  conversations = parley_client_get_conversations (client);
  g_assert_cmpuint (g_list_model_get_n_items (conversations), ==, 1);
  conversation = g_list_model_get_item (conversations, 0);
  g_assert_cmpstr (parley_conversation_get_peer_id (conversation), ==, "bob");
  g_assert_cmpstr (parley_conversation_get_last_message (conversation), ==,
                   "queued while offline");
  g_assert_cmpuint (parley_conversation_get_unread_count (conversation), ==, 0);
  messages = parley_conversation_get_messages (conversation);
  g_assert_cmpuint (g_list_model_get_n_items (messages), ==, 1);
  reloaded = g_list_model_get_item (messages, 0);
  g_assert_cmpstr (parley_message_get_id (reloaded), ==, id);
  g_assert_cmpint (parley_message_get_state (reloaded), ==, PARLEY_MESSAGE_STATE_SENDING);
  g_assert_true (parley_message_get_outgoing (reloaded));
}

static void
test_conversation_model_follows_sends (Fixture       *fixture,
                                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyClient) client = parley_client_new (fixture->server_url, fixture->dir, &error);
  g_autoptr(ParleyMessage) m1 = NULL;
  g_autoptr(ParleyMessage) m2 = NULL;
  g_autoptr(ParleyMessage) m3 = NULL;
  ParleyConversation *bob;
  GListModel *messages;
  GListModel *conversations;
  g_autoptr(ParleyConversation) top = NULL;

  g_assert_no_error (error);
  m1 = parley_client_send_message (client, "bob", "one", &error);
  bob = parley_client_lookup_conversation (client, "bob");
  g_assert_nonnull (bob);
  messages = parley_conversation_get_messages (bob);
  g_assert_cmpuint (g_list_model_get_n_items (messages), ==, 1);

  m2 = parley_client_send_message (client, "bob", "two", &error);
  g_assert_cmpuint (g_list_model_get_n_items (messages), ==, 2);
  g_assert_cmpstr (parley_conversation_get_last_message (bob), ==, "two");

  m3 = parley_client_send_message (client, "carol", "three", &error);
  g_assert_no_error (error);
  conversations = parley_client_get_conversations (client);
  g_assert_cmpuint (g_list_model_get_n_items (conversations), ==, 2);
  top = g_list_model_get_item (conversations, 0);
  /* Carol's conversation has the newest message unless both got the same millisecond. */
  if (parley_message_get_timestamp (m3) > parley_message_get_timestamp (m2))
    g_assert_cmpstr (parley_conversation_get_peer_id (top), ==, "carol");
  g_assert_cmpuint (parley_client_get_n_pending (client), ==, 3);
}

static void
test_invalid_input (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyClient) client = parley_client_new (fixture->server_url, fixture->dir, &error);
  g_autoptr(ParleyMessage) bad_recipient = NULL;
  g_autoptr(ParleyMessage) bad_text = NULL;

  g_assert_no_error (error);
  bad_recipient = parley_client_send_message (client, "no spaces/allowed", "x", &error);
  g_assert_null (bad_recipient);
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);

  bad_text = parley_client_send_message (client, "bob", "\xff\xfe", &error);
  g_assert_null (bad_text);
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_assert_cmpuint (parley_client_get_n_pending (client), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/client/outbox-offline-and-restart", Fixture, NULL, setup,
              test_outbox_offline_and_restart, teardown);
  g_test_add ("/client/conversation-model", Fixture, NULL, setup,
              test_conversation_model_follows_sends, teardown);
  g_test_add ("/client/invalid-input", Fixture, NULL, setup, test_invalid_input, teardown);

  return g_test_run ();
}
