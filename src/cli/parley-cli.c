/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-cli"

#include "config.h"

#include <glib/gi18n-lib.h>

#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "parley-cli.h"
#include "parley-cli-private.h"
#include "parley-client.h"
#include "parley-error.h"

/* How long `history` and `conversations` wait for the sync before printing the cache. */
#define SYNC_WAIT_S 10


void
cli_finish (Cli *cli,
        int  exit_code)
{
  if (cli->finished)
    return;
  cli->finished = TRUE;
  cli->exit_code = exit_code;
  g_main_loop_quit (cli->loop);
}

int
cli_exit_code_for (const GError *error)
{
  if (error->domain == PARLEY_ERROR && error->code == PARLEY_ERROR_NETWORK)
    return PARLEY_CLI_EXIT_NETWORK;
  return PARLEY_CLI_EXIT_SERVER;
}

void
cli_fail (Cli          *cli,
      const char   *what,
      const GError *error)
{
  g_printerr ("parley-cli: %s: %s\n", what, error->message);
  cli_finish (cli, cli_exit_code_for (error));
}

void
cli_print_json (JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = json_to_string (root, FALSE);

  g_print ("%s\n", text);
  fflush (stdout);
}

JsonBuilder *
cli_begin_event (const char *event)
{
  JsonBuilder *builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "t");
  json_builder_add_int_value (builder, g_get_monotonic_time () / 1000);
  json_builder_set_member_name (builder, "event");
  json_builder_add_string_value (builder, event);
  return builder;
}

void
cli_add_string (JsonBuilder *builder,
            const char  *name,
            const char  *value)
{
  json_builder_set_member_name (builder, name);
  if (value)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

void
cli_add_int (JsonBuilder *builder,
         const char  *name,
         gint64       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

void
cli_end_and_print (JsonBuilder *builder)
{
  json_builder_end_object (builder);
  cli_print_json (builder);
  g_object_unref (builder);
}

/* Adds "<name>" (user name, if known) and "<name>Id" for a user. */
void
cli_add_user (Cli         *cli,
          JsonBuilder *builder,
          const char  *name,
          const char  *user_id)
{
  g_autofree char *username = parley_cache_lookup_username (parley_client_get_cache (cli->client),
                                                            user_id);
  g_autofree char *id_name = g_strconcat (name, "Id", NULL);

  cli_add_string (builder, name, username);
  cli_add_string (builder, id_name, user_id);
}

static void
add_message_fields (Cli           *cli,
                    JsonBuilder   *builder,
                    ParleyMessage *message)
{
  cli_add_user (cli, builder, "from", parley_message_get_sender_id (message));
  cli_add_user (cli, builder, "to", parley_message_get_recipient_id (message));
  cli_add_string (builder, "id", parley_message_get_id (message));
  cli_add_string (builder, "body", parley_message_get_body (message));
  cli_add_int (builder, "seq", parley_message_get_seq (message));
  cli_add_int (builder, "timestamp", parley_message_get_timestamp (message));
  cli_add_string (builder, "state",
              parley_message_state_to_string (parley_message_get_state (message)));
  if (parley_message_get_unsupported (message)) {
    json_builder_set_member_name (builder, "unsupported");
    json_builder_add_boolean_value (builder, TRUE);
  }
}

/* Password: $PARLEY_PASSWORD, else one line of stdin (without echo on a terminal). */
static char *
read_password (void)
{
  const char *env = g_getenv ("PARLEY_PASSWORD");
  char buffer[1100];
  struct termios saved, quiet;
  gboolean tty = isatty (STDIN_FILENO);
  gboolean echo_off = FALSE;
  char *line;

  if (env != NULL)
    return g_strdup (env);

  if (tty) {
    g_printerr (_("Password: "));
    if (tcgetattr (STDIN_FILENO, &saved) == 0) {
      quiet = saved;
      quiet.c_lflag &= ~(tcflag_t) ECHO;
      echo_off = tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
  }
  line = fgets (buffer, sizeof buffer, stdin);
  if (echo_off) {
    tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved);
    g_printerr ("\n");
  }
  if (line == NULL)
    return NULL;
  buffer[strcspn (buffer, "\r\n")] = '\0';
  line = g_strdup (buffer);
  memset (buffer, 0, sizeof buffer);
  return line;
}

/* register / login */

static void
register_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *user_id = parley_client_register_finish (cli->client, result, &error);
  JsonBuilder *builder;

  if (user_id == NULL) {
    cli_fail (cli, _("registration failed"), error);
    return;
  }
  builder = json_builder_new ();
  json_builder_begin_object (builder);
  cli_add_string (builder, "userId", user_id);
  cli_add_string (builder, "username", cli->args[0]);
  cli_end_and_print (builder);
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

static void
login_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;
  JsonBuilder *builder;

  if (!parley_client_login_finish (cli->client, result, &error)) {
    cli_fail (cli, _("login failed"), error);
    return;
  }
  builder = json_builder_new ();
  json_builder_begin_object (builder);
  cli_add_string (builder, "userId", parley_client_get_user_id (cli->client));
  cli_add_string (builder, "username", parley_client_get_username (cli->client));
  cli_end_and_print (builder);
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

static void
logout_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;

  if (!parley_client_logout_finish (cli->client, result, &error)) {
    g_printerr (_("parley-cli: logged out locally, "
                  "but the server did not revoke the session: %s\n"),
                error->message);
    cli_finish (cli, cli_exit_code_for (error));
    return;
  }
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

/* send */

static void
send_state_cb (ParleyClient      *client,
               ParleyClientState  new_state,
               ParleyClientState  old_state,
               Cli               *cli)
{
  if (new_state == PARLEY_CLIENT_STATE_RECONNECTING && cli->message_id != NULL) {
    g_printerr (_("parley-cli: cannot reach the server; the message is queued and will be sent "
                "by the next parley-cli command that connects\n"));
    cli_finish (cli, PARLEY_CLI_EXIT_NETWORK);
  } else if (new_state == PARLEY_CLIENT_STATE_DISCONNECTED && !cli->finished) {
    g_printerr (_("parley-cli: disconnected\n"));
    cli_finish (cli, PARLEY_CLI_EXIT_SERVER);
  }
}

static void
send_message_state_cb (ParleyClient  *client,
                       ParleyMessage *message,
                       Cli           *cli)
{
  ParleyMessageState state = parley_message_get_state (message);
  JsonBuilder *builder;

  if (g_strcmp0 (parley_message_get_id (message), cli->message_id) != 0 ||
      !parley_message_get_outgoing (message) || state == PARLEY_MESSAGE_STATE_SENDING)
    return;

  if (state == PARLEY_MESSAGE_STATE_FAILED) {
    g_printerr (_("parley-cli: the server refused the message\n"));
    cli_finish (cli, PARLEY_CLI_EXIT_SERVER);
    return;
  }

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  add_message_fields (cli, builder, message);
  cli_end_and_print (builder);
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

static void
send_error_cb (ParleyClient *client,
               const char   *code,
               const char   *message,
               Cli          *cli)
{
  if (g_str_equal (code, "logged-out")) {
    g_printerr ("parley-cli: %s\n", message);
    cli_finish (cli, PARLEY_CLI_EXIT_SERVER);
  } else if (message != NULL && cli->message_id != NULL && strstr (message, cli->message_id)) {
    g_printerr ("parley-cli: %s\n", message);
  }
}

static void
send_resolved_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyMessage) message = NULL;

  cli->peer_id = parley_client_resolve_user_finish (cli->client, result, &error);
  if (cli->peer_id == NULL) {
    cli_fail (cli, _("cannot send"), error);
    return;
  }

  message = parley_client_send_message (cli->client, cli->peer_id, cli->args[1], &error);
  if (message == NULL) {
    cli_fail (cli, _("cannot send"), error);
    return;
  }
  cli->message_id = g_strdup (parley_message_get_id (message));

  g_signal_connect (cli->client, "state-changed", G_CALLBACK (send_state_cb), cli);
  g_signal_connect (cli->client, "message-state-changed", G_CALLBACK (send_message_state_cb), cli);
  g_signal_connect (cli->client, "error", G_CALLBACK (send_error_cb), cli);
  parley_client_connect (cli->client);
}

/* listen */

static void
listen_state_cb (ParleyClient      *client,
                 ParleyClientState  new_state,
                 ParleyClientState  old_state,
                 Cli               *cli)
{
  cli_end_and_print (cli_begin_event (parley_client_state_to_string (new_state)));
}

static void
listen_message_cb (ParleyClient  *client,
                   ParleyMessage *message,
                   Cli           *cli)
{
  JsonBuilder *builder = cli_begin_event ("message");

  add_message_fields (cli, builder, message);
  cli_end_and_print (builder);

  if (!parley_message_get_outgoing (message) && cli->count > 0 && ++cli->received >= cli->count)
    cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

static void
listen_message_state_cb (ParleyClient  *client,
                         ParleyMessage *message,
                         Cli           *cli)
{
  const char *event;
  JsonBuilder *builder;

  switch (parley_message_get_state (message)) {
  case PARLEY_MESSAGE_STATE_STORED: event = "ack"; break;
  case PARLEY_MESSAGE_STATE_DELIVERED: event = "delivered"; break;
  case PARLEY_MESSAGE_STATE_READ: event = "read-state"; break;
  case PARLEY_MESSAGE_STATE_FAILED: event = "failed"; break;
  case PARLEY_MESSAGE_STATE_SENDING:
  default:
    return;
  }
  builder = cli_begin_event (event);
  add_message_fields (cli, builder, message);
  cli_end_and_print (builder);
}

static void
listen_typing_cb (ParleyClient *client,
                  const char   *user_id,
                  gboolean      active,
                  Cli          *cli)
{
  JsonBuilder *builder = cli_begin_event ("typing");

  cli_add_user (cli, builder, "from", user_id);
  cli_add_string (builder, "state", active ? "active" : "paused");
  cli_end_and_print (builder);
}

static void
listen_read_cb (ParleyClient *client,
                const char   *user_id,
                const char   *message_id,
                Cli          *cli)
{
  JsonBuilder *builder = cli_begin_event ("read");

  cli_add_user (cli, builder, "from", user_id);
  cli_add_string (builder, "messageId", message_id);
  cli_end_and_print (builder);
}

static void
listen_presence_cb (ParleyClient *client,
                    const char   *user_id,
                    gboolean      online,
                    Cli          *cli)
{
  JsonBuilder *builder = cli_begin_event ("presence");

  cli_add_user (cli, builder, "user", user_id);
  cli_add_string (builder, "state", online ? "online" : "offline");
  cli_end_and_print (builder);
}

static void
listen_call_cb (ParleyClient *client,
                const char   *type,
                JsonObject   *frame,
                Cli          *cli)
{
  JsonBuilder *builder = cli_begin_event ("call-signal");
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), frame);

  cli_add_string (builder, "type", type);
  json_builder_set_member_name (builder, "frame");
  json_builder_add_value (builder, g_steal_pointer (&node));
  cli_end_and_print (builder);
}

static void
listen_error_cb (ParleyClient *client,
                 const char   *code,
                 const char   *message,
                 Cli          *cli)
{
  JsonBuilder *builder = cli_begin_event ("error");

  cli_add_string (builder, "code", code);
  cli_add_string (builder, "message", message);
  cli_end_and_print (builder);

  if (g_str_equal (code, "logged-out") || g_str_equal (code, "not-logged-in"))
    cli_finish (cli, PARLEY_CLI_EXIT_SERVER);
}

/* history / conversations */

static void
print_history (Cli *cli)
{
  g_autoptr(GPtrArray) messages = NULL;

  messages = parley_cache_list_messages (parley_client_get_cache (cli->client), cli->peer_id, 0);
  for (guint i = 0; i < messages->len; i++) {
    JsonBuilder *builder = json_builder_new ();

    json_builder_begin_object (builder);
    add_message_fields (cli, builder, g_ptr_array_index (messages, i));
    cli_end_and_print (builder);
  }
}

static void
print_conversations (Cli *cli)
{
  GListModel *model = parley_client_get_conversations (cli->client);

  for (guint i = 0; i < g_list_model_get_n_items (model); i++) {
    g_autoptr(ParleyConversation) conversation = g_list_model_get_item (model, i);
    JsonBuilder *builder = json_builder_new ();

    json_builder_begin_object (builder);
    cli_add_user (cli, builder, "peer", parley_conversation_get_peer_id (conversation));
    cli_add_string (builder, "lastMessage", parley_conversation_get_last_message (conversation));
    cli_add_int (builder, "lastTimestamp", parley_conversation_get_last_timestamp (conversation));
    cli_add_int (builder, "unread", parley_conversation_get_unread_count (conversation));
    cli_end_and_print (builder);
  }
}

/* The call log, newest first. */
static void
print_calls (Cli *cli)
{
  g_autoptr(GPtrArray) calls = parley_cache_list_calls (parley_client_get_cache (cli->client),
                                                        NULL, 1000);

  for (guint i = 0; calls != NULL && i < calls->len; i++) {
    const ParleyCallRecord *record = g_ptr_array_index (calls, i);
    JsonBuilder *builder = json_builder_new ();

    json_builder_begin_object (builder);
    cli_add_string (builder, "callId", record->call_id);
    cli_add_string (builder, "peer", record->peer_name);
    cli_add_string (builder, "peerId", record->peer_id);
    cli_add_string (builder, "direction", record->outgoing ? "outgoing" : "incoming");
    json_builder_set_member_name (builder, "video");
    json_builder_add_boolean_value (builder, record->video);
    cli_add_int (builder, "createdAt", record->created_at / 1000);
    cli_add_int (builder, "answeredAt", record->answered_at / 1000);
    cli_add_int (builder, "endedAt", record->ended_at / 1000);
    cli_add_string (builder, "reason", parley_call_end_reason_to_string (record->end_reason));
    cli_add_int (builder, "duration", record->duration);
    cli_end_and_print (builder);
  }
}

static void
print_after_sync (Cli     *cli,
                  gboolean synced)
{
  if (cli->finished)
    return;
  if (g_str_equal (cli->command, "history"))
    print_history (cli);
  else
    print_conversations (cli);

  if (!synced)
    g_printerr (_("parley-cli: cannot reach the server; showing the local copy\n"));
  cli_finish (cli, synced ? PARLEY_CLI_EXIT_OK : PARLEY_CLI_EXIT_NETWORK);
}

static void
sync_synced_cb (ParleyClient *client,
                Cli          *cli)
{
  print_after_sync (cli, TRUE);
}

static void
sync_state_cb (ParleyClient      *client,
               ParleyClientState  new_state,
               ParleyClientState  old_state,
               Cli               *cli)
{
  if (new_state == PARLEY_CLIENT_STATE_RECONNECTING ||
      new_state == PARLEY_CLIENT_STATE_DISCONNECTED)
    print_after_sync (cli, FALSE);
}

static gboolean
sync_timeout_cb (gpointer user_data)
{
  print_after_sync (user_data, FALSE);
  return G_SOURCE_REMOVE;
}

static void
start_sync_then_print (Cli *cli)
{
  g_signal_connect (cli->client, "synced", G_CALLBACK (sync_synced_cb), cli);
  g_signal_connect (cli->client, "state-changed", G_CALLBACK (sync_state_cb), cli);
  g_timeout_add_seconds (SYNC_WAIT_S, sync_timeout_cb, cli);
  parley_client_connect (cli->client);
}

static void
history_resolved_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;

  cli->peer_id = parley_client_resolve_user_finish (cli->client, result, &error);
  if (cli->peer_id == NULL) {
    cli_fail (cli, _("cannot show the history"), error);
    return;
  }
  start_sync_then_print (cli);
}

/* contacts / search / add-contact / turn-credentials */

static void
print_users (GPtrArray *users,
             gboolean   with_presence)
{
  for (guint i = 0; i < users->len; i++) {
    ParleyContact *contact = g_ptr_array_index (users, i);
    JsonBuilder *builder = json_builder_new ();

    json_builder_begin_object (builder);
    cli_add_string (builder, "userId", parley_contact_get_user_id (contact));
    cli_add_string (builder, "username", parley_contact_get_username (contact));
    if (with_presence) {
      json_builder_set_member_name (builder, "online");
      json_builder_add_boolean_value (builder, parley_contact_get_online (contact));
    }
    cli_end_and_print (builder);
  }
}

static void
contacts_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) contacts = parley_client_list_contacts_finish (cli->client, result, &error);

  if (contacts == NULL) {
    cli_fail (cli, _("cannot list the contacts"), error);
    return;
  }
  print_users (contacts, TRUE);
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

static void
search_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) users = parley_client_search_users_finish (cli->client, result, &error);

  if (users == NULL) {
    cli_fail (cli, _("search failed"), error);
    return;
  }
  print_users (users, FALSE);
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

static void
contact_added_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;

  if (!parley_client_add_contact_finish (cli->client, result, &error)) {
    cli_fail (cli, _("cannot add the contact"), error);
    return;
  }
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

static void
add_contact_resolved_cb (GObject      *object,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;

  cli->peer_id = parley_client_resolve_user_finish (cli->client, result, &error);
  if (cli->peer_id == NULL) {
    cli_fail (cli, _("cannot add the contact"), error);
    return;
  }
  parley_client_add_contact_async (cli->client, cli->peer_id, NULL, contact_added_cb, cli);
}

static void
turn_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) credentials = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *text = NULL;

  credentials = parley_client_get_turn_credentials_finish (cli->client, result, &error);
  if (credentials == NULL) {
    cli_fail (cli, _("cannot get TURN credentials"), error);
    return;
  }
  node = json_node_init_object (json_node_alloc (), credentials);
  text = json_to_string (node, FALSE);
  g_print ("%s\n", text);
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

/* Dispatch */

typedef struct {
  const char *name;
  int         n_args;
  gboolean    needs_login;
  const char *usage;
} Command;

static const Command commands[] = {
  { "register", 1, FALSE, N_("register USER") },
  { "login", 1, FALSE, N_("login USER") },
  { "logout", 0, TRUE, N_("logout") },
  { "send", 2, TRUE, N_("send USER TEXT") },
  { "listen", 0, TRUE, N_("listen [--count N] [--timeout S]") },
  { "history", 1, TRUE, N_("history USER") },
  { "conversations", 0, TRUE, N_("conversations") },
  { "contacts", 0, TRUE, N_("contacts") },
  { "calls", 0, TRUE, N_("calls") },
  { "add-contact", 1, TRUE, N_("add-contact USER") },
  { "search", 1, TRUE, N_("search PREFIX") },
  { "turn-credentials", 0, TRUE, N_("turn-credentials") },
  { "call", 1, TRUE,
    N_("call USER [--audio-only] [--test-media] [--relay-only] [--duration S]") },
  { "hangup", 0, FALSE, N_("hangup") },
  { "call-control", 1, FALSE,
    N_("call-control accept|reject|mute|unmute|camera-off|camera-on|video|renegotiate|restart|"
    "'call USER'") },
};

static gboolean
quit_signal_cb (gpointer user_data)
{
  cli_finish (user_data, PARLEY_CLI_EXIT_OK);
  return G_SOURCE_CONTINUE;
}

static gboolean
timeout_cb (gpointer user_data)
{
  cli_finish (user_data, PARLEY_CLI_EXIT_OK);
  return G_SOURCE_REMOVE;
}

static int
start_command (Cli *cli)
{
  const char *command = cli->command;
  g_autofree char *password = NULL;

  if (g_str_equal (command, "register") || g_str_equal (command, "login")) {
    password = read_password ();
    if (password == NULL) {
      g_printerr (_("parley-cli: no password given "
                    "(set PARLEY_PASSWORD or write it to stdin)\n"));
      return PARLEY_CLI_EXIT_USAGE;
    }
    if (g_str_equal (command, "register"))
      parley_client_register_async (cli->client, cli->args[0], password, NULL, register_cb, cli);
    else
      parley_client_login_async (cli->client, cli->args[0], password, NULL, login_cb, cli);
  } else if (g_str_equal (command, "logout")) {
    parley_client_logout_async (cli->client, NULL, logout_cb, cli);
  } else if (g_str_equal (command, "send")) {
    parley_client_resolve_user_async (cli->client, cli->args[0], NULL, send_resolved_cb, cli);
  } else if (g_str_equal (command, "call") || g_str_equal (command, "listen")) {
    g_autoptr(GError) error = NULL;

    if (!cli_calls_setup (cli, &error)) {
      g_printerr ("parley-cli: %s\n", error->message);
      return PARLEY_CLI_EXIT_USAGE;
    }
    if (cli->timeout_s > 0)
      g_timeout_add_seconds ((guint) cli->timeout_s, timeout_cb, cli);
    if (g_str_equal (command, "call")) {
      cli_call_start (cli);
      return -1;
    }
    g_signal_connect (cli->client, "state-changed", G_CALLBACK (listen_state_cb), cli);
    g_signal_connect (cli->client, "message-received", G_CALLBACK (listen_message_cb), cli);
    g_signal_connect (cli->client, "message-state-changed",
                      G_CALLBACK (listen_message_state_cb), cli);
    g_signal_connect (cli->client, "typing", G_CALLBACK (listen_typing_cb), cli);
    g_signal_connect (cli->client, "read", G_CALLBACK (listen_read_cb), cli);
    g_signal_connect (cli->client, "presence", G_CALLBACK (listen_presence_cb), cli);
    g_signal_connect (cli->client, "call-signal", G_CALLBACK (listen_call_cb), cli);
    g_signal_connect (cli->client, "error", G_CALLBACK (listen_error_cb), cli);
    parley_client_connect (cli->client);
  } else if (g_str_equal (command, "history")) {
    parley_client_resolve_user_async (cli->client, cli->args[0], NULL, history_resolved_cb, cli);
  } else if (g_str_equal (command, "conversations")) {
    start_sync_then_print (cli);
  } else if (g_str_equal (command, "contacts")) {
    parley_client_list_contacts_async (cli->client, NULL, contacts_cb, cli);
  } else if (g_str_equal (command, "add-contact")) {
    parley_client_resolve_user_async (cli->client, cli->args[0], NULL, add_contact_resolved_cb,
                                      cli);
  } else if (g_str_equal (command, "search")) {
    parley_client_search_users_async (cli->client, cli->args[0], NULL, search_cb, cli);
  } else if (g_str_equal (command, "turn-credentials")) {
    parley_client_get_turn_credentials_async (cli->client, NULL, turn_cb, cli);
  } else if (g_str_equal (command, "calls")) {
    print_calls (cli);
    return PARLEY_CLI_EXIT_OK;
  } else if (g_str_equal (command, "hangup")) {
    cli_control_send (cli, "hangup");
  } else if (g_str_equal (command, "call-control")) {
    cli_control_send (cli, cli->args[0]);
  }
  return -1;
}

static void
print_usage (void)
{
  g_printerr (_("Usage: parley-cli [--server URL] [--profile DIR] COMMAND ...\nCommands:\n"));
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_printerr ("  %s\n", _(commands[i].usage));
}

/**
 * parley_cli_run:
 * @argc: the argument count
 * @argv: the arguments
 *
 * Runs one `parley-cli` command.
 *
 * Returns: the process exit code (see #ParleyCliExit)
 */
int
parley_cli_run (int    argc,
                char **argv)
{
  g_autofree char *server = NULL;
  g_autofree char *profile = NULL;
  int count = 0, timeout_s = 0;
  Cli cli = { .stats_interval_ms = 1000, .ping_interval_ms = 20 };
  GOptionEntry entries[] = {
    { "server", 's', 0, G_OPTION_ARG_STRING, &server, N_("Server URL"), N_("URL") },
    { "profile", 'p', 0, G_OPTION_ARG_FILENAME, &profile, N_("Profile directory"), N_("DIR") },
    { "count", 'n', 0, G_OPTION_ARG_INT, &count, N_("listen: stop after N messages"), N_("N") },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_s,
      N_("listen, call: stop after S seconds"), N_("S") },
    { "audio-only", 0, 0, G_OPTION_ARG_NONE, &cli.audio_only, N_("call: without video"), NULL },
    { "test-media", 0, 0, G_OPTION_ARG_NONE, &cli.test_media,
      N_("call, listen: send a test tone and pattern, analyse what arrives, play nothing"), NULL },
    { "tone", 0, 0, G_OPTION_ARG_DOUBLE, &cli.tone_hz, N_("test media: tone frequency"),
      N_("HZ") },
    { "pattern", 0, 0, G_OPTION_ARG_STRING, &cli.pattern,
      N_("test media: videotestsrc pattern (smpte, red, blue, ...)"), N_("NAME") },
    { "relay-only", 0, 0, G_OPTION_ARG_NONE, &cli.relay_only,
      N_("call, listen: connect through the TURN relay only (hides the IP address)"), NULL },
    { "no-realtime", 0, 0, G_OPTION_ARG_NONE, &cli.no_realtime,
      N_("call, listen: the data path's threads ask for no real-time priority"), NULL },
    { "no-echo-cancel", 0, 0, G_OPTION_ARG_NONE, &cli.no_echo_cancel,
      N_("call, listen: no echo cancellation and noise suppression"), NULL },
    { "duration", 0, 0, G_OPTION_ARG_INT, &cli.duration_s,
      N_("call, listen: hang up S seconds after the call connected"), N_("S") },
    { "auto-answer", 0, 0, G_OPTION_ARG_NONE, &cli.auto_answer, N_("listen: answer every call"),
      NULL },
    { "calls", 0, 0, G_OPTION_ARG_INT, &cli.max_calls, N_("listen: stop after N ended calls"),
      N_("N") },
    { "ring-timeout", 0, 0, G_OPTION_ARG_INT, &cli.ring_timeout_s,
      N_("call, listen: seconds before an unanswered call is missed"), N_("S") },
    { "ping", 0, 0, G_OPTION_ARG_INT, &cli.ping_count,
      N_("call: measure N data channel round trips once connected"), N_("N") },
    { "ping-link", 0, 0, G_OPTION_ARG_NONE, &cli.ping_on_link,
      N_("call: send the --ping round trips over the call's direct data link"), NULL },
    { "ping-interval", 0, 0, G_OPTION_ARG_INT, &cli.ping_interval_ms,
      N_("call, listen: milliseconds between two pings (20)"), N_("MS") },
    { "stats-interval", 0, 0, G_OPTION_ARG_INT, &cli.stats_interval_ms,
      N_("call, listen: print connection statistics every MS (0: never)"), N_("MS") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (N_("COMMAND ..."));
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(ParleyClient) client = NULL;
  g_autoptr(GString) summary = NULL;
  const Command *command = NULL;
  guint sigint_id, sigterm_id;
  int code;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  summary = g_string_new (_("The headless Parley client. Commands:"));
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (summary, "\n  %s", _(commands[i].usage));
  g_string_append_printf (summary, "\n%s",
                          _("Passwords come from $PARLEY_PASSWORD or one line of stdin."));
  g_option_context_set_summary (context, summary->str);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("parley-cli: %s\n", error->message);
    return PARLEY_CLI_EXIT_USAGE;
  }

  if (argc < 2) {
    print_usage ();
    return PARLEY_CLI_EXIT_USAGE;
  }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (argv[1], commands[i].name))
      command = &commands[i];
  if (command == NULL) {
    g_printerr (_("parley-cli: unknown command %s\n"), argv[1]);
    print_usage ();
    return PARLEY_CLI_EXIT_USAGE;
  }
  if (argc - 2 != command->n_args) {
    g_printerr (_("Usage: parley-cli %s\n"), _(command->usage));
    return PARLEY_CLI_EXIT_USAGE;
  }
  if (count < 0 || timeout_s < 0 || cli.duration_s < 0 || cli.max_calls < 0 ||
      cli.ring_timeout_s < 0 || cli.stats_interval_ms < 0 || cli.ping_count < 0 ||
      cli.ping_interval_ms < 1 || cli.tone_hz < 0 || cli.tone_hz > 20000) {
    g_printerr (_("parley-cli: --count, --timeout, --duration, --calls, --ring-timeout, "
                "--stats-interval, --ping must not be negative, --ping-interval must be "
                "positive, --tone must be 0–20000 Hz\n"));
    return PARLEY_CLI_EXIT_USAGE;
  }

  if (server == NULL)
    server = g_strdup ("http://127.0.0.1:8421");
  if (profile == NULL)
    profile = g_build_filename (g_get_user_data_dir (), "parley-cli", NULL);

  client = parley_client_new (server, profile, &error);
  if (client == NULL) {
    g_printerr (_("parley-cli: cannot open the profile %s: %s\n"), profile, error->message);
    return PARLEY_CLI_EXIT_USAGE;
  }
  if (command->needs_login && !parley_client_get_logged_in (client)) {
    g_printerr (_("parley-cli: not logged in (run parley-cli login USER first)\n"));
    return PARLEY_CLI_EXIT_SERVER;
  }

  loop = g_main_loop_new (NULL, FALSE);
  cli.loop = loop;
  cli.client = client;
  cli.command = command->name;
  cli.args = argv + 2;
  cli.n_args = argc - 2;
  cli.count = count;
  cli.timeout_s = timeout_s;
  cli.profile_dir = profile;

  code = start_command (&cli);
  if (code >= 0)
    return code;

  sigint_id = g_unix_signal_add (SIGINT, quit_signal_cb, &cli);
  sigterm_id = g_unix_signal_add (SIGTERM, quit_signal_cb, &cli);
  if (!cli.finished)
    g_main_loop_run (loop);
  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);

  cli_calls_cleanup (&cli);
  g_signal_handlers_disconnect_by_data (client, &cli);
  parley_client_disconnect (client);
  g_clear_pointer (&cli.pattern, g_free);
  g_clear_pointer (&cli.peer_id, g_free);
  g_clear_pointer (&cli.message_id, g_free);
  return cli.exit_code;
}
