/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-call-manager"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>
#include <gst/gst.h>

#include "parley-call-manager.h"
#include "parley-call-private.h"
#include "parley-engine-test.h"
#include "parley-error.h"

/* Calls between ParleyCallManagers of several ParleyClients in one process,
 * through a real parley-server ($PARLEY_SERVER) and real media connections
 * with test sources. Every wait is on an event, with a timeout. */

#define PASSWORD        "correct horse battery"
#define WAIT_MS         20000
#define SHORT_WAIT_MS   10000

typedef struct {
  char        *dir;
  GSubprocess *process;
  char        *base_url;
} Server;

static Server *server;
static guint user_counter;

typedef struct {
  char              *dir;
  char              *name;
  char              *user_id;
  ParleyClient      *client;
  ParleyCallManager *manager;
  GPtrArray         *started;   /* of ParleyCall, every call-started */
  GPtrArray         *incoming;  /* of ParleyCall, every incoming-call */
  GPtrArray         *ended;     /* of ParleyCall, every call-ended */
} Party;

/* In the server's process before exec: die with the test, so that a failed
 * assertion does not leave a server holding the test's output open. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
server_start (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *config = NULL;
  g_autofree char *db = NULL;
  g_autofree char *line = NULL;
  const char *binary = g_getenv ("PARLEY_SERVER");
  const char *prefix = "parley-server listening on port ";

  g_assert_nonnull (binary);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  server = g_new0 (Server, 1);
  server->dir = g_dir_make_tmp ("parley-calls-XXXXXX", &error);
  g_assert_no_error (error);
  config = g_build_filename (server->dir, "parley.conf", NULL);
  db = g_build_filename (server->dir, "parley.db", NULL);
  /* Cheap password hashing and no login limits: many users register here. */
  g_file_set_contents (config, "[auth]\nargon2-ops=1\nargon2-mem-kib=8\n"
                               "login-limit-user=100000\nlogin-limit-address=100000\n",
                       -1, &error);
  g_assert_no_error (error);

  g_subprocess_launcher_unsetenv (launcher, "PARLEY_TURN_SECRET");
  server->process = g_subprocess_launcher_spawn (launcher, &error, binary, "--port", "0",
                                                 "--config", config, "--database", db, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server->process));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, prefix));
  server->base_url = g_strdup_printf ("http://127.0.0.1:%s", line + strlen (prefix));
}

static void
server_stop (void)
{
  g_subprocess_send_signal (server->process, SIGTERM);
  g_subprocess_wait (server->process, NULL, NULL);
  g_object_unref (server->process);
  parley_engine_test_remove_tree (server->dir);
  g_free (server->dir);
  g_free (server->base_url);
  g_clear_pointer (&server, g_free);
}

static gboolean
flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main context until @done holds, failing the test after @timeout_ms. */
#define WAIT_FOR(cond, timeout_ms) \
  G_STMT_START { \
    gboolean timed_out_ = FALSE; \
    guint timer_ = g_timeout_add (timeout_ms, flag_cb, &timed_out_); \
    while (!(cond) && !timed_out_) \
      g_main_context_iteration (NULL, TRUE); \
    if (!timed_out_) \
      g_source_remove (timer_); \
    if (!(cond)) \
      g_error ("Timed out waiting for %s", #cond); \
  } G_STMT_END

/* Runs the main loop for @ms (a call that lasts, not a synchronisation). */
static void
run_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, flag_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

typedef struct {
  gboolean  done;
  GObject  *source;
  GAsyncResult *result;
} AsyncWait;

static void
async_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  AsyncWait *wait = user_data;

  wait->result = g_object_ref (result);
  wait->done = TRUE;
}

static void
call_started_cb (ParleyCallManager *manager,
                 ParleyCall        *call,
                 Party             *party)
{
  g_ptr_array_add (party->started, g_object_ref (call));
}

static void
incoming_call_cb (ParleyCallManager *manager,
                  ParleyCall        *call,
                  Party             *party)
{
  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_INCOMING_RINGING);
  g_ptr_array_add (party->incoming, g_object_ref (call));
}

static void
call_ended_cb (ParleyCallManager *manager,
               ParleyCall        *call,
               Party             *party)
{
  g_autoptr(GPtrArray) log = NULL;

  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_ENDED);
  g_assert_true (parley_call_manager_get_active_call (manager) != call);
  /* Announced only after it was logged (unless it lost a glare). */
  log = parley_cache_list_calls (parley_client_get_cache (party->client), NULL, 0);
  if (!parley_call_get_superseded (call)) {
    gboolean found = FALSE;

    for (guint i = 0; i < log->len; i++)
      found |= g_str_equal (((ParleyCallRecord *) g_ptr_array_index (log, i))->call_id,
                            parley_call_get_call_id (call));
    g_assert_true (found);
  }
  g_ptr_array_add (party->ended, g_object_ref (call));
}

/* A new user, or with @same_user another device (its own profile) of that
 * party's user. */
static Party *
party_new_full (gboolean  connect,
                Party    *same_user)
{
  Party *party = g_new0 (Party, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyMediaSettings) settings = parley_media_settings_new ();
  AsyncWait wait = { 0 };

  party->dir = g_dir_make_tmp ("parley-call-party-XXXXXX", &error);
  g_assert_no_error (error);
  party->client = parley_client_new (server->base_url, party->dir, &error);
  g_assert_no_error (error);

  if (same_user != NULL) {
    party->name = g_strdup (same_user->name);
    party->user_id = g_strdup (same_user->user_id);
  } else {
    party->name = g_strdup_printf ("user%u_%u", (guint) getpid () % 10000, ++user_counter);
    parley_client_register_async (party->client, party->name, PASSWORD, NULL, async_cb, &wait);
    WAIT_FOR (wait.done, SHORT_WAIT_MS);
    party->user_id = parley_client_register_finish (party->client, wait.result, &error);
    g_assert_no_error (error);
    g_clear_object (&wait.result);
    wait.done = FALSE;
  }
  parley_client_login_async (party->client, party->name, PASSWORD, NULL, async_cb, &wait);
  WAIT_FOR (wait.done, SHORT_WAIT_MS);
  g_assert_true (parley_client_login_finish (party->client, wait.result, &error));
  g_assert_no_error (error);
  g_clear_object (&wait.result);

  parley_media_settings_set_test_media (settings, TRUE);
  party->manager = parley_call_manager_new (party->client, settings);
  g_assert_true (parley_call_manager_get_settings (party->manager) == settings);
  party->started = g_ptr_array_new_with_free_func (g_object_unref);
  party->incoming = g_ptr_array_new_with_free_func (g_object_unref);
  party->ended = g_ptr_array_new_with_free_func (g_object_unref);
  g_signal_connect (party->manager, "call-started", G_CALLBACK (call_started_cb), party);
  g_signal_connect (party->manager, "incoming-call", G_CALLBACK (incoming_call_cb), party);
  g_signal_connect (party->manager, "call-ended", G_CALLBACK (call_ended_cb), party);

  if (connect) {
    parley_client_connect (party->client);
    WAIT_FOR (parley_client_get_synced (party->client), SHORT_WAIT_MS);
  }
  return party;
}

static Party *
party_new (gboolean connect)
{
  return party_new_full (connect, NULL);
}

static void
party_free (Party *party)
{
  g_signal_handlers_disconnect_by_data (party->manager, party);
  g_ptr_array_unref (party->started);
  g_ptr_array_unref (party->incoming);
  g_ptr_array_unref (party->ended);
  g_assert_finalize_object (party->manager);
  parley_client_disconnect (party->client);
  /* Not asserted finalized: a request of the client may still be under way. */
  g_object_unref (party->client);
  parley_engine_test_remove_tree (party->dir);
  g_free (party->dir);
  g_free (party->name);
  g_free (party->user_id);
  g_free (party);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Party, party_free)

static ParleyCall *
last_call (GPtrArray *calls)
{
  g_assert_cmpuint (calls->len, >, 0);
  return g_ptr_array_index (calls, calls->len - 1);
}

static ParleyCallRecord *
logged_call (Party      *party,
             const char *call_id)
{
  g_autoptr(GPtrArray) log = parley_cache_list_calls (parley_client_get_cache (party->client),
                                                      NULL, 0);

  for (guint i = 0; i < log->len; i++) {
    ParleyCallRecord *entry = g_ptr_array_index (log, i);

    if (g_str_equal (entry->call_id, call_id))
      return parley_call_record_copy (entry);
  }
  g_error ("Call %s is not in the log of %s", call_id, party->name);
  return NULL;
}

static guint
log_length (Party *party)
{
  g_autoptr(GPtrArray) log = parley_cache_list_calls (parley_client_get_cache (party->client),
                                                      NULL, 0);
  return log->len;
}

/* Checks the log entry of an ended call against the call object. */
static void
assert_logged (Party               *party,
               ParleyCall          *call,
               ParleyCallEndReason  reason)
{
  g_autoptr(ParleyCallRecord) entry = logged_call (party, parley_call_get_call_id (call));

  g_assert_cmpint (parley_call_get_end_reason (call), ==, reason);
  g_assert_cmpint (entry->end_reason, ==, reason);
  g_assert_cmpstr (entry->peer_id, ==, parley_call_get_peer_id (call));
  g_assert_cmpint (entry->outgoing, ==, parley_call_get_outgoing (call));
  g_assert_cmpint (entry->video, ==, parley_call_get_video (call));
  g_assert_cmpint (entry->created_at, ==, parley_call_get_created_at (call));
  g_assert_cmpint (entry->answered_at, ==, parley_call_get_answered_at (call));
  g_assert_cmpint (entry->ended_at, ==, parley_call_get_ended_at (call));
  g_assert_cmpint (entry->ended_at, >=, entry->created_at);
  if (entry->answered_at != 0)
    g_assert_cmpint (entry->duration, ==, (entry->ended_at - entry->answered_at) / G_USEC_PER_SEC);
  else
    g_assert_cmpint (entry->duration, ==, 0);
}

static gboolean
is_state (ParleyCall      *call,
          ParleyCallState  state)
{
  return call != NULL && parley_call_get_state (call) == state;
}

/* A calls B and B accepts; returns once both are active. */
static void
connect_call (Party       *a,
              Party       *b,
              gboolean     video,
              ParleyCall **out_a,
              ParleyCall **out_b)
{
  g_autoptr(GError) error = NULL;
  ParleyCall *call_a, *call_b;

  call_a = parley_call_manager_call (a->manager, b->user_id, video, &error);
  g_assert_no_error (error);
  g_assert_nonnull (call_a);
  g_assert_true (parley_call_manager_get_active_call (a->manager) == call_a);
  g_assert_cmpint (parley_call_get_state (call_a), ==, PARLEY_CALL_STATE_OUTGOING_RINGING);
  g_assert_true (parley_call_get_outgoing (call_a));
  g_assert_cmpstr (parley_call_get_peer_id (call_a), ==, b->user_id);

  WAIT_FOR (b->incoming->len == 1, WAIT_MS);
  call_b = last_call (b->incoming);
  g_assert_cmpstr (parley_call_get_call_id (call_b), ==, parley_call_get_call_id (call_a));
  g_assert_cmpstr (parley_call_get_peer_id (call_b), ==, a->user_id);
  g_assert_false (parley_call_get_outgoing (call_b));
  g_assert_cmpint (parley_call_get_video (call_b), ==, video);
  g_assert_true (parley_call_manager_get_active_call (b->manager) == call_b);

  g_assert_true (parley_call_accept (call_b, &error));
  g_assert_no_error (error);
  WAIT_FOR (is_state (call_a, PARLEY_CALL_STATE_ACTIVE) &&
            is_state (call_b, PARLEY_CALL_STATE_ACTIVE), WAIT_MS);
  g_assert_nonnull (parley_call_get_peer (call_a));
  g_assert_true (parley_peer_get_polite (parley_call_get_peer (call_b)));
  g_assert_false (parley_peer_get_polite (parley_call_get_peer (call_a)));
  g_assert_cmpint (parley_call_get_answered_at (call_a), >, 0);
  g_assert_cmpint (parley_call_get_answered_at (call_b), >, 0);
  *out_a = call_a;
  *out_b = call_b;
}

static void
test_call_and_hangup (gconstpointer data)
{
  gboolean callee_hangs_up = GPOINTER_TO_INT (data);
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  ParleyCall *call_a, *call_b;

  connect_call (a, b, callee_hangs_up, &call_a, &call_b);
  g_assert_cmpint (parley_call_get_video (call_a), ==, callee_hangs_up);
  g_assert_cmpint (parley_call_get_video (call_b), ==, callee_hangs_up);

  /* Let the call last over a second, so that it has a duration. */
  run_for (1200);
  g_assert_true (is_state (call_a, PARLEY_CALL_STATE_ACTIVE));
  g_assert_true (is_state (call_b, PARLEY_CALL_STATE_ACTIVE));

  parley_call_hangup (callee_hangs_up ? call_b : call_a);
  WAIT_FOR (a->ended->len == 1 && b->ended->len == 1, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_HANGUP);
  assert_logged (b, call_b, PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpint (parley_call_get_duration (call_a), >=, 1);
  g_assert_cmpint (parley_call_get_duration (call_b), >=, 1);
  g_assert_null (parley_call_manager_get_active_call (a->manager));
  g_assert_null (parley_call_manager_get_active_call (b->manager));
  g_assert_cmpuint (a->started->len, ==, 1);
  g_assert_cmpuint (b->started->len, ==, 1);
  g_assert_cmpuint (log_length (a), ==, 1);
  g_assert_cmpuint (log_length (b), ==, 1);
}

static void
test_reject (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  g_autoptr(GError) error = NULL;
  ParleyCall *call_a, *call_b;

  call_a = parley_call_manager_call (a->manager, b->user_id, FALSE, &error);
  g_assert_no_error (error);
  WAIT_FOR (b->incoming->len == 1, WAIT_MS);
  call_b = last_call (b->incoming);
  g_assert_true (parley_call_reject (call_b, &error));
  g_assert_no_error (error);

  WAIT_FOR (a->ended->len == 1 && b->ended->len == 1, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_REJECTED);
  assert_logged (b, call_b, PARLEY_CALL_END_REASON_REJECTED);
  g_assert_cmpint (parley_call_get_answered_at (call_a), ==, 0);
  g_assert_null (parley_call_get_peer (call_b));
}

/* The callee has two devices: both ring; when one answers, the other stops
 * ringing (answered elsewhere, in its log too) and the call goes on between
 * the caller and the device that answered. */
/* A calls the user of B1 and B2 (two devices); returns once both ring. */
static ParleyCall *
ring_two_devices (Party       *a,
                  Party       *b1,
                  Party       *b2,
                  gboolean     video,
                  ParleyCall **out_b1,
                  ParleyCall **out_b2)
{
  g_autoptr(GError) error = NULL;
  ParleyCall *call_a = parley_call_manager_call (a->manager, b1->user_id, video, &error);

  g_assert_no_error (error);
  WAIT_FOR (b1->incoming->len == 1 && b2->incoming->len == 1, WAIT_MS);
  *out_b1 = last_call (b1->incoming);
  *out_b2 = last_call (b2->incoming);
  g_assert_cmpstr (parley_call_get_call_id (*out_b1), ==, parley_call_get_call_id (call_a));
  g_assert_cmpstr (parley_call_get_call_id (*out_b2), ==, parley_call_get_call_id (call_a));
  return call_a;
}

static void
test_other_device_answers (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b1 = party_new (TRUE);
  g_autoptr(Party) b2 = party_new_full (TRUE, b1);
  g_autoptr(GError) error = NULL;
  ParleyCall *call_b1, *call_b2;
  ParleyCall *call_a = ring_two_devices (a, b1, b2, FALSE, &call_b1, &call_b2);

  g_assert_true (parley_call_accept (call_b1, &error));
  g_assert_no_error (error);
  WAIT_FOR (b2->ended->len == 1, WAIT_MS);
  g_assert_true (last_call (b2->ended) == call_b2);
  assert_logged (b2, call_b2, PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE);
  g_assert_null (parley_call_manager_get_active_call (b2->manager));
  g_assert_null (parley_call_get_peer (call_b2));

  WAIT_FOR (is_state (call_a, PARLEY_CALL_STATE_ACTIVE) &&
            is_state (call_b1, PARLEY_CALL_STATE_ACTIVE), WAIT_MS);
  run_for (500);
  g_assert_true (is_state (call_a, PARLEY_CALL_STATE_ACTIVE));
  g_assert_cmpuint (a->ended->len, ==, 0);

  parley_call_hangup (call_a);
  WAIT_FOR (a->ended->len == 1 && b1->ended->len == 1, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_HANGUP);
  assert_logged (b1, call_b1, PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpuint (b2->ended->len, ==, 1);
  g_assert_cmpuint (log_length (b2), ==, 1);
}

static void
record_state_cb (ParleyCall      *call,
                 ParleyCallState  state,
                 ParleyCallState  old,
                 GArray          *states)
{
  g_array_append_val (states, state);
}

/* Both devices accept at the same moment: the caller keeps the first accept's
 * device and tells the other one, which stops as answered elsewhere; the
 * call never goes back and forth between the two. */
static void
test_both_devices_answer (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b1 = party_new (TRUE);
  g_autoptr(Party) b2 = party_new_full (TRUE, b1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (ParleyCallState));
  ParleyCall *call_b1, *call_b2, *winner, *loser;
  Party *won, *lost;
  ParleyCall *call_a = ring_two_devices (a, b1, b2, FALSE, &call_b1, &call_b2);

  g_signal_connect (call_a, "state-changed", G_CALLBACK (record_state_cb), states);
  g_assert_true (parley_call_accept (call_b1, &error));
  g_assert_true (parley_call_accept (call_b2, &error));
  g_assert_no_error (error);

  WAIT_FOR (b1->ended->len + b2->ended->len == 1, WAIT_MS);
  won = b1->ended->len == 0 ? b1 : b2;
  lost = won == b1 ? b2 : b1;
  winner = won == b1 ? call_b1 : call_b2;
  loser = won == b1 ? call_b2 : call_b1;
  g_assert_true (last_call (lost->ended) == loser);
  assert_logged (lost, loser, PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE);
  g_assert_null (parley_call_get_peer (loser));

  WAIT_FOR (is_state (call_a, PARLEY_CALL_STATE_ACTIVE) &&
            is_state (winner, PARLEY_CALL_STATE_ACTIVE), WAIT_MS);
  run_for (1500);
  g_assert_true (is_state (call_a, PARLEY_CALL_STATE_ACTIVE));
  g_assert_true (is_state (winner, PARLEY_CALL_STATE_ACTIVE));
  for (guint i = 0; i < states->len; i++)
    g_assert_cmpint (g_array_index (states, ParleyCallState, i), !=,
                     PARLEY_CALL_STATE_RECONNECTING);
  g_assert_cmpuint (a->ended->len, ==, 0);
  g_assert_cmpuint (lost->ended->len, ==, 1);

  parley_call_hangup (call_a);
  WAIT_FOR (a->ended->len == 1 && won->ended->len == 1, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_HANGUP);
  assert_logged (won, winner, PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpuint (log_length (lost), ==, 1);
  g_signal_handlers_disconnect_by_data (call_a, states);
}

/* Declining on one device declines the call on all of them. */
static void
test_other_device_declines (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b1 = party_new (TRUE);
  g_autoptr(Party) b2 = party_new_full (TRUE, b1);
  g_autoptr(GError) error = NULL;
  ParleyCall *call_b1, *call_b2;
  ParleyCall *call_a = ring_two_devices (a, b1, b2, TRUE, &call_b1, &call_b2);

  g_assert_true (parley_call_reject (call_b2, &error));
  g_assert_no_error (error);
  WAIT_FOR (a->ended->len == 1 && b1->ended->len == 1 && b2->ended->len == 1, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_REJECTED);
  assert_logged (b1, call_b1, PARLEY_CALL_END_REASON_REJECTED);
  assert_logged (b2, call_b2, PARLEY_CALL_END_REASON_REJECTED);
}

static void
test_busy_and_cancelled (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  g_autoptr(Party) c = party_new (TRUE);
  g_autoptr(GError) error = NULL;
  ParleyCall *call_a, *call_b, *call_c, *busy_b;

  call_a = parley_call_manager_call (a->manager, b->user_id, FALSE, &error);
  g_assert_no_error (error);
  WAIT_FOR (b->incoming->len == 1, WAIT_MS);
  call_b = last_call (b->incoming);

  /* B's own manager refuses a second call while one runs. */
  g_assert_null (parley_call_manager_call (b->manager, c->user_id, FALSE, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_BUSY);
  g_clear_error (&error);

  /* C calls B, who is in a call: busy for C, a missed call for B. */
  call_c = parley_call_manager_call (c->manager, b->user_id, FALSE, &error);
  g_assert_no_error (error);
  WAIT_FOR (c->ended->len == 1 && b->ended->len == 1, WAIT_MS);
  assert_logged (c, call_c, PARLEY_CALL_END_REASON_BUSY);
  busy_b = last_call (b->ended);
  g_assert_cmpstr (parley_call_get_call_id (busy_b), ==, parley_call_get_call_id (call_c));
  assert_logged (b, busy_b, PARLEY_CALL_END_REASON_MISSED);
  g_assert_cmpuint (b->incoming->len, ==, 1);
  g_assert_true (is_state (call_b, PARLEY_CALL_STATE_INCOMING_RINGING));
  g_assert_true (parley_call_manager_get_active_call (b->manager) == call_b);

  /* A gives up before B answers. */
  parley_call_hangup (call_a);
  g_assert_true (is_state (call_a, PARLEY_CALL_STATE_ENDED));
  WAIT_FOR (b->ended->len == 2, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_CANCELLED);
  assert_logged (b, call_b, PARLEY_CALL_END_REASON_MISSED);
  g_assert_cmpuint (log_length (b), ==, 2);
}

static void
test_missed (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  g_autoptr(GError) error = NULL;
  ParleyCall *call_a, *call_b;
  gint64 start;

  parley_call_manager_set_ring_timeout (a->manager, 1);
  parley_call_manager_set_ring_timeout (b->manager, 1);
  start = g_get_monotonic_time ();
  call_a = parley_call_manager_call (a->manager, b->user_id, TRUE, &error);
  g_assert_no_error (error);
  WAIT_FOR (a->ended->len == 1 && b->ended->len == 1, WAIT_MS);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC / 2);
  call_b = last_call (b->ended);
  g_assert_cmpuint (b->incoming->len, ==, 1);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_MISSED);
  assert_logged (b, call_b, PARLEY_CALL_END_REASON_MISSED);
  g_assert_true (parley_call_get_video (call_b));
}

static void
test_offline (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) d = party_new (FALSE);
  g_autoptr(GError) error = NULL;
  ParleyCall *call_a;

  call_a = parley_call_manager_call (a->manager, d->user_id, FALSE, &error);
  g_assert_no_error (error);
  WAIT_FOR (a->ended->len == 1, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_OFFLINE);
  g_assert_null (parley_call_manager_get_active_call (a->manager));
}

static void
test_glare (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  g_autoptr(GError) error = NULL;
  ParleyCall *first_a, *first_b, *active_a, *active_b;
  const char *survivor;

  /* Both call at once: neither has seen the other's offer yet. */
  first_a = parley_call_manager_call (a->manager, b->user_id, FALSE, &error);
  g_assert_no_error (error);
  first_b = parley_call_manager_call (b->manager, a->user_id, FALSE, &error);
  g_assert_no_error (error);
  g_object_ref (first_a);
  g_object_ref (first_b);
  survivor = strcmp (parley_call_get_call_id (first_a), parley_call_get_call_id (first_b)) < 0
             ? parley_call_get_call_id (first_a) : parley_call_get_call_id (first_b);

#define ACTIVE_ON(p) parley_call_manager_get_active_call ((p)->manager)
  WAIT_FOR (is_state (ACTIVE_ON (a), PARLEY_CALL_STATE_ACTIVE) &&
            is_state (ACTIVE_ON (b), PARLEY_CALL_STATE_ACTIVE), WAIT_MS);
  active_a = ACTIVE_ON (a);
  active_b = ACTIVE_ON (b);
#undef ACTIVE_ON
  g_assert_cmpstr (parley_call_get_call_id (active_a), ==, survivor);
  g_assert_cmpstr (parley_call_get_call_id (active_b), ==, survivor);
  g_assert_cmpint (parley_call_get_outgoing (active_a), !=, parley_call_get_outgoing (active_b));

  /* Exactly one of the first calls was dropped, silently: no ringing for anyone. */
  g_assert_cmpuint ((first_a == active_a) + (first_b == active_b), ==, 1);
  g_assert_cmpuint (a->ended->len + b->ended->len, ==, 1);
  g_assert_true (parley_call_get_superseded (last_call (a->ended->len ? a->ended : b->ended)));
  g_assert_cmpuint (a->incoming->len + b->incoming->len, ==, 0);

  parley_call_hangup (active_a);
  WAIT_FOR (is_state (active_b, PARLEY_CALL_STATE_ENDED), WAIT_MS);
  /* Only the surviving call is in the logs. */
  g_assert_cmpuint (log_length (a), ==, 1);
  g_assert_cmpuint (log_length (b), ==, 1);
  assert_logged (a, active_a, PARLEY_CALL_END_REASON_HANGUP);
  assert_logged (b, active_b, PARLEY_CALL_END_REASON_HANGUP);
  g_object_unref (first_a);
  g_object_unref (first_b);
}

/* The call ids of the call-hangup frames a client received. */
static void
record_hangup_cb (ParleyClient *client,
                  const char   *type,
                  JsonObject   *frame,
                  GPtrArray    *hangups)
{
  if (g_str_equal (type, "call-hangup"))
    g_ptr_array_add (hangups, g_strdup (json_object_get_string_member_with_default (frame,
                                                                                     "callId",
                                                                                     "")));
}

static gboolean
has_string (GPtrArray  *array,
            const char *text)
{
  for (guint i = 0; i < array->len; i++)
    if (g_str_equal (g_ptr_array_index (array, i), text))
      return TRUE;
  return FALSE;
}

/* Glare while the callee has a second device: if the caller's offer went out,
 * that device rings for it, and must stop whichever call survives (as
 * answered elsewhere: the two users talk on the first device). Rounds run
 * until the second device rang once with each side's call surviving (the
 * smaller random call id wins). */
static void
test_glare_other_device (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b1 = party_new (TRUE);
  g_autoptr(Party) b2 = party_new_full (TRUE, b1);
  g_autoptr(GPtrArray) hangups = g_ptr_array_new_with_free_func (g_free);
  guint rang_a_survived = 0, rang_b_survived = 0;

  g_signal_connect (b2->client, "call-signal", G_CALLBACK (record_hangup_cb), hangups);
  for (guint round = 0; round < 30 && (rang_a_survived == 0 || rang_b_survived == 0); round++) {
    g_autoptr(GError) error = NULL;
    guint b2_rang = b2->incoming->len, b2_ended = b2->ended->len, b1_ended = b1->ended->len;
    ParleyCall *first_a, *first_b, *active_a, *active_b;
    g_autofree char *id_a = NULL;
    g_autofree char *id_active = NULL;
    gboolean a_survives;

    first_a = parley_call_manager_call (a->manager, b1->user_id, FALSE, &error);
    g_assert_no_error (error);
    first_b = parley_call_manager_call (b1->manager, a->user_id, FALSE, &error);
    g_assert_no_error (error);
    id_a = g_strdup (parley_call_get_call_id (first_a));
    a_survives = strcmp (id_a, parley_call_get_call_id (first_b)) < 0;

    WAIT_FOR (is_state (parley_call_manager_get_active_call (a->manager),
                        PARLEY_CALL_STATE_ACTIVE) &&
              is_state (parley_call_manager_get_active_call (b1->manager),
                        PARLEY_CALL_STATE_ACTIVE), WAIT_MS);
    active_a = parley_call_manager_get_active_call (a->manager);
    active_b = parley_call_manager_get_active_call (b1->manager);
    id_active = g_strdup (parley_call_get_call_id (active_a));
    g_assert_cmpstr (id_active, ==, parley_call_get_call_id (active_b));

    /* The hangup is the last frame of the round: once the second device has
     * it, it has everything the caller sent before. */
    parley_call_hangup (active_a);
    WAIT_FOR (b1->ended->len > b1_ended && is_state (active_b, PARLEY_CALL_STATE_ENDED) &&
              has_string (hangups, id_active), WAIT_MS);

    g_assert_null (parley_call_manager_get_active_call (b2->manager));
    g_assert_cmpuint (b2->incoming->len - b2_rang, <=, 1);
    g_assert_cmpuint (b2->ended->len - b2_ended, ==, b2->incoming->len - b2_rang);
    if (b2->incoming->len > b2_rang) {
      ParleyCall *rang = last_call (b2->ended);

      g_assert_cmpstr (parley_call_get_call_id (rang), ==, id_a);
      assert_logged (b2, rang, PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE);
      if (a_survives)
        rang_a_survived++;
      else
        rang_b_survived++;
    }
  }
  g_test_message ("%u/%u rounds rang with the caller's call surviving/losing", rang_a_survived,
                  rang_b_survived);
  g_assert_cmpuint (rang_a_survived, >, 0);
  g_assert_cmpuint (rang_b_survived, >, 0);
  g_signal_handlers_disconnect_by_data (b2->client, hangups);
}

static void
test_call_back_accepts (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  g_autoptr(GError) error = NULL;
  ParleyCall *call_a, *call_b, *returned;

  /* Calling someone whose call rings here answers that call. */
  call_a = parley_call_manager_call (a->manager, b->user_id, FALSE, &error);
  g_assert_no_error (error);
  WAIT_FOR (b->incoming->len == 1, WAIT_MS);
  call_b = last_call (b->incoming);
  returned = parley_call_manager_call (b->manager, a->user_id, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (returned == call_b);
  WAIT_FOR (is_state (call_a, PARLEY_CALL_STATE_ACTIVE) &&
            is_state (call_b, PARLEY_CALL_STATE_ACTIVE), WAIT_MS);
  g_assert_cmpuint (b->started->len, ==, 1);
}

static void
test_reconnect (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  ParleyCall *call_a, *call_b;

  connect_call (a, b, FALSE, &call_a, &call_b);
  /* This is about the call, not the peers' restart timers: give slow (sanitized)
   * builds time to finish one restart before another begins. */
  g_object_set (parley_call_get_peer (call_a), "restart-timeout", 15000, NULL);
  g_object_set (parley_call_get_peer (call_b), "restart-timeout", 15000, NULL);
  parley_peer_restart (parley_call_get_peer (call_a));
  WAIT_FOR (is_state (call_a, PARLEY_CALL_STATE_RECONNECTING), WAIT_MS);
  WAIT_FOR (is_state (call_a, PARLEY_CALL_STATE_ACTIVE) &&
            is_state (call_b, PARLEY_CALL_STATE_ACTIVE) &&
            parley_peer_get_generation (parley_call_get_peer (call_b)) > 0, WAIT_MS);
  /* Still the same call on both sides. */
  g_assert_cmpuint (a->started->len, ==, 1);
  g_assert_cmpuint (b->started->len, ==, 1);
  g_assert_cmpuint (a->ended->len + b->ended->len, ==, 0);
  parley_call_hangup (call_b);
  WAIT_FOR (a->ended->len == 1, WAIT_MS);
  assert_logged (a, call_a, PARLEY_CALL_END_REASON_HANGUP);
}

static void
send_raw (Party      *from,
          const char *type,
          const char *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, json, -1, &error);
  g_assert_no_error (error);
  parley_client_send_call_signal (from->client, type,
                                  json_node_get_object (json_parser_get_root (parser)));
}

static void
test_hostile_frames (void)
{
  g_autoptr(Party) a = party_new (TRUE);
  g_autoptr(Party) b = party_new (TRUE);
  g_autoptr(Party) c = party_new (TRUE);
  g_autoptr(GError) error = NULL;
  const char *types[] = { "call-offer", "call-answer", "call-ice-candidate", "call-accept",
                          "call-reject", "call-hangup", "call-weird" };
  const char *bodies[] = {
    "{}",
    "{\"callId\":7}",
    "{\"callId\":\"h1\"}",
    "{\"callId\":\"h1\",\"sdp\":null,\"gen\":\"zero\"}",
    "{\"callId\":\"h1\",\"sdp\":\"\"}",
    "{\"callId\":\"h1\",\"sdp\":{\"type\":\"offer\"}}",
    "{\"callId\":\"h1\",\"sdp\":\"v=0\",\"gen\":-1}",
    "{\"callId\":\"h1\",\"sdp\":\"v=0\",\"gen\":1e300}",
    "{\"callId\":\"h1\",\"candidate\":[],\"gen\":0}",
    "{\"callId\":\"h1\",\"candidate\":{\"candidate\":null,\"sdpMLineIndex\":\"0\"}}",
    "{\"callId\":\"h1\",\"reason\":{}}",
    /* Offers that would ring but for their device members. */
    "{\"callId\":\"h1\",\"sdp\":\"v=0\",\"gen\":0,\"device\":7}",
    "{\"callId\":\"h1\",\"sdp\":\"v=0\",\"gen\":0,\"device\":\"not a tag\"}",
    "{\"callId\":\"h1\",\"sdp\":\"v=0\",\"gen\":0,\"toDevice\":[]}",
    "{\"callId\":\"h1\",\"sdp\":\"v=0\",\"gen\":0,\"toDevice\":\"another-device\"}",
  };
  ParleyCall *call_a, *call_b, *hostile_b;
  g_autofree char *spoof = NULL;

  /* Junk of every type: no call appears on B, nothing crashes. */
  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    for (guint i = 0; i < G_N_ELEMENTS (bodies); i++) {
      gboolean empty = g_str_equal (bodies[i], "{}");
      g_autofree char *json = g_strdup_printf ("{\"recipientId\":\"%s\"%s%s", b->user_id,
                                               empty ? "" : ",", bodies[i] + 1);

      send_raw (c, types[t], json);
    }

  /* A real call from A rings B after all that. */
  call_a = parley_call_manager_call (a->manager, b->user_id, FALSE, &error);
  g_assert_no_error (error);
  WAIT_FOR (b->incoming->len == 1, WAIT_MS);
  call_b = last_call (b->incoming);
  g_assert_cmpstr (parley_call_get_peer_id (call_b), ==, a->user_id);
  g_assert_cmpuint (b->started->len, ==, 1);
  g_assert_cmpuint (b->ended->len, ==, 0);

  /* C cannot end or answer A's call by naming its call id. */
  spoof = g_strdup_printf ("{\"recipientId\":\"%s\",\"callId\":\"%s\",\"reason\":\"hangup\"}",
                           b->user_id, parley_call_get_call_id (call_b));
  send_raw (c, "call-hangup", spoof);
  g_free (spoof);
  spoof = g_strdup_printf ("{\"recipientId\":\"%s\",\"callId\":\"%s\"}", a->user_id,
                           parley_call_get_call_id (call_a));
  send_raw (c, "call-accept", spoof);
  send_raw (c, "call-reject", spoof);

  /* C's well-formed offer with an unusable SDP is busy-rejected while B rings. */
  g_free (spoof);
  spoof = g_strdup_printf ("{\"recipientId\":\"%s\",\"callId\":\"hostile-1\",\"sdp\":\"nonsense\","
                           "\"media\":\"hologram\"}", b->user_id);
  send_raw (c, "call-offer", spoof);
  WAIT_FOR (b->ended->len == 1, WAIT_MS);
  g_assert_cmpstr (parley_call_get_call_id (last_call (b->ended)), ==, "hostile-1");
  g_assert_true (is_state (call_b, PARLEY_CALL_STATE_INCOMING_RINGING));
  g_assert_true (is_state (call_a, PARLEY_CALL_STATE_OUTGOING_RINGING));

  /* Once B is free, that offer rings; accepting it fails cleanly. */
  parley_call_hangup (call_a);
  WAIT_FOR (b->ended->len == 2, WAIT_MS);
  assert_logged (b, call_b, PARLEY_CALL_END_REASON_MISSED);
  g_free (spoof);
  spoof = g_strdup_printf ("{\"recipientId\":\"%s\",\"callId\":\"hostile-2\",\"sdp\":\"nonsense\","
                           "\"gen\":0}", b->user_id);
  send_raw (c, "call-offer", spoof);
  WAIT_FOR (b->incoming->len == 2, WAIT_MS);
  hostile_b = last_call (b->incoming);
  g_assert_cmpstr (parley_call_get_call_id (hostile_b), ==, "hostile-2");
  g_assert_false (parley_call_get_video (hostile_b));
  g_assert_true (parley_call_accept (hostile_b, &error));
  g_assert_no_error (error);
  WAIT_FOR (b->ended->len == 3, WAIT_MS);
  assert_logged (b, hostile_b, PARLEY_CALL_END_REASON_FAILED);

  /* Late frames for ended calls are ignored. */
  send_raw (c, "call-offer", spoof);
  send_raw (c, "call-hangup", spoof);
  /* A round trip through the server proves B processed them. */
  call_a = parley_call_manager_call (a->manager, b->user_id, FALSE, &error);
  g_assert_no_error (error);
  WAIT_FOR (b->incoming->len == 3, WAIT_MS);
  g_assert_cmpstr (parley_call_get_peer_id (last_call (b->incoming)), ==, a->user_id);
  parley_call_hangup (call_a);
  WAIT_FOR (b->ended->len == 4, WAIT_MS);
}

int
main (int argc, char **argv)
{
  int status;

  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/call-manager/caller-hangs-up", GINT_TO_POINTER (FALSE),
                        test_call_and_hangup);
  g_test_add_data_func ("/call-manager/callee-hangs-up-video", GINT_TO_POINTER (TRUE),
                        test_call_and_hangup);
  g_test_add_func ("/call-manager/reject", test_reject);
  g_test_add_func ("/call-manager/other-device-answers", test_other_device_answers);
  g_test_add_func ("/call-manager/both-devices-answer", test_both_devices_answer);
  g_test_add_func ("/call-manager/other-device-declines", test_other_device_declines);
  g_test_add_func ("/call-manager/busy-and-cancelled", test_busy_and_cancelled);
  g_test_add_func ("/call-manager/missed", test_missed);
  g_test_add_func ("/call-manager/offline", test_offline);
  g_test_add_func ("/call-manager/glare", test_glare);
  g_test_add_func ("/call-manager/glare-other-device", test_glare_other_device);
  g_test_add_func ("/call-manager/call-back-accepts", test_call_back_accepts);
  g_test_add_func ("/call-manager/reconnect", test_reconnect);
  g_test_add_func ("/call-manager/hostile-frames", test_hostile_frames);

  server_start ();
  status = g_test_run ();
  server_stop ();
  return status;
}
