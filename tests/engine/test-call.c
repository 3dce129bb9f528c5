/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-call"

#include <glib/gstdio.h>
#include <gst/gst.h>

#include "parley-cache.h"
#include "parley-call-private.h"
#include "parley-engine-test.h"
#include "parley-error.h"
#include "parley-session.h"

/* Unit checks of the call's helpers, the call log in the cache and the call
 * state machine on signaling frames alone. No server runs and no ICE servers
 * are given, so no media connection is ever built: frames go nowhere and the
 * state machine is driven by hand. */

static JsonObject *
parse_object (const char *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, json, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static void
test_reason_strings (void)
{
  /* Every reason but none survives the wire and the log. */
  for (guint r = PARLEY_CALL_END_REASON_HANGUP; r <= PARLEY_CALL_END_REASON_OFFLINE; r++) {
    const char *text = parley_call_end_reason_to_string (r);

    g_assert_cmpstr (text, !=, "unknown");
    g_assert_cmpint (parley_call_end_reason_from_string (text), ==, r);
  }
  g_assert_cmpstr (parley_call_end_reason_to_string (PARLEY_CALL_END_REASON_BUSY), ==, "busy");
  g_assert_cmpstr (parley_call_end_reason_to_string (PARLEY_CALL_END_REASON_CANCELLED), ==,
                   "cancelled");
  /* A missing or strange reason is a plain hangup. */
  g_assert_cmpint (parley_call_end_reason_from_string (NULL), ==, PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpint (parley_call_end_reason_from_string ("none"), ==,
                   PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpint (parley_call_end_reason_from_string ("BUSY"), ==,
                   PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpstr (parley_call_end_reason_to_string (99), ==, "unknown");
  g_assert_cmpstr (parley_call_state_to_string (PARLEY_CALL_STATE_INCOMING_RINGING), ==,
                   "incoming-ringing");
  g_assert_cmpstr (parley_call_state_to_string (PARLEY_CALL_STATE_RECONNECTING), ==,
                   "reconnecting");
  g_assert_cmpstr (parley_call_state_to_string (42), ==, "unknown");
  g_assert_cmpstr (parley_peer_state_to_string (PARLEY_PEER_STATE_RESTARTING), ==, "restarting");
}

static void
test_frame_readers (void)
{
  g_autoptr(JsonObject) frame =
    parse_object ("{\"s\":\"x\",\"n\":7,\"neg\":-1,\"big\":9999999999,\"f\":1.5,\"str\":\"3\","
                  "\"null\":null,\"obj\":{},\"arr\":[1]}");
  guint value = 42;

  g_assert_cmpstr (parley_call_frame_get_string (frame, "s"), ==, "x");
  g_assert_null (parley_call_frame_get_string (frame, "n"));
  g_assert_null (parley_call_frame_get_string (frame, "obj"));
  g_assert_null (parley_call_frame_get_string (frame, "arr"));
  g_assert_null (parley_call_frame_get_string (frame, "null"));
  g_assert_null (parley_call_frame_get_string (frame, "missing"));

  g_assert_true (parley_call_frame_get_uint (frame, "missing", &value));
  g_assert_cmpuint (value, ==, 42);
  g_assert_true (parley_call_frame_get_uint (frame, "null", &value));
  g_assert_cmpuint (value, ==, 42);
  g_assert_true (parley_call_frame_get_uint (frame, "n", &value));
  g_assert_cmpuint (value, ==, 7);
  for (guint i = 0; i < 5; i++) {
    const char *bad[] = { "neg", "big", "f", "str", "obj" };

    value = 42;
    g_assert_false (parley_call_frame_get_uint (frame, bad[i], &value));
    g_assert_cmpuint (value, ==, 42);
  }

  g_assert_true (parley_call_id_is_valid ("a"));
  g_assert_true (parley_call_id_is_valid ("A-z_0.9:x"));
  g_assert_false (parley_call_id_is_valid (NULL));
  g_assert_false (parley_call_id_is_valid (""));
  g_assert_false (parley_call_id_is_valid ("a b"));
  g_assert_false (parley_call_id_is_valid ("é"));
  {
    g_autofree char *long_id = g_strnfill (65, 'a');

    g_assert_false (parley_call_id_is_valid (long_id));
    long_id[64] = '\0';
    g_assert_true (parley_call_id_is_valid (long_id));
  }
}

/* The call log. */

typedef struct {
  char        *dir;
  char        *path;
  ParleyCache *cache;
} CacheFixture;

static void
cache_setup (CacheFixture  *fixture,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("parley-call-log-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->path = g_build_filename (fixture->dir, "cache.db", NULL);
  fixture->cache = parley_cache_new (fixture->path, &error);
  g_assert_no_error (error);
  g_assert_true (parley_cache_bind_user (fixture->cache, "me", &error));
}

static void
cache_teardown (CacheFixture  *fixture,
                gconstpointer  data)
{
  g_assert_finalize_object (fixture->cache);
  parley_engine_test_remove_tree (fixture->dir);
  g_free (fixture->path);
  g_free (fixture->dir);
}

static void
record (ParleyCache         *cache,
        const char          *call_id,
        const char          *peer_id,
        gint64               created_at,
        ParleyCallEndReason  reason,
        gint64               duration)
{
  g_autoptr(ParleyCallRecord) entry = parley_call_record_new (call_id, peer_id);
  g_autoptr(GError) error = NULL;

  entry->outgoing = created_at % 2 == 0;
  entry->video = created_at % 3 == 0;
  entry->created_at = created_at;
  entry->answered_at = duration > 0 ? created_at + 1000 : 0;
  entry->ended_at = created_at + 1000 + duration * G_USEC_PER_SEC;
  entry->end_reason = reason;
  entry->duration = duration;
  g_assert_true (parley_cache_record_call (cache, entry, &error));
  g_assert_no_error (error);
}

static void
test_call_log (CacheFixture  *fixture,
               gconstpointer  data)
{
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GPtrArray) bob = NULL;
  g_autoptr(GPtrArray) limited = NULL;
  g_autoptr(GPtrArray) after = NULL;
  g_autoptr(ParleyCallRecord) copy = NULL;
  g_autoptr(ParleyCallRecord) bad = parley_call_record_new ("", "bob");
  g_autoptr(GError) error = NULL;
  ParleyCallRecord *r;

  g_assert_true (parley_cache_set_contact (fixture->cache, "bob", "bobby", TRUE, NULL));
  record (fixture->cache, "c1", "bob", 3000000, PARLEY_CALL_END_REASON_HANGUP, 12);
  record (fixture->cache, "c2", "carol", 2000000, PARLEY_CALL_END_REASON_MISSED, 0);
  record (fixture->cache, "c3", "bob", 1000000, PARLEY_CALL_END_REASON_BUSY, 0);

  all = parley_cache_list_calls (fixture->cache, NULL, 0);
  g_assert_cmpuint (all->len, ==, 3);
  /* The newest first. */
  r = g_ptr_array_index (all, 0);
  g_assert_cmpstr (r->call_id, ==, "c1");
  g_assert_cmpstr (r->peer_id, ==, "bob");
  g_assert_cmpstr (r->peer_name, ==, "bobby");
  g_assert_true (r->outgoing);
  g_assert_true (r->video);
  g_assert_cmpint (r->created_at, ==, 3000000);
  g_assert_cmpint (r->answered_at, ==, 3001000);
  g_assert_cmpint (r->ended_at, ==, 3001000 + 12 * G_USEC_PER_SEC);
  g_assert_cmpint (r->end_reason, ==, PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpint (r->duration, ==, 12);
  r = g_ptr_array_index (all, 1);
  g_assert_cmpstr (r->call_id, ==, "c2");
  g_assert_null (r->peer_name);
  g_assert_false (r->video);
  g_assert_cmpint (r->end_reason, ==, PARLEY_CALL_END_REASON_MISSED);
  g_assert_cmpint (r->answered_at, ==, 0);
  r = g_ptr_array_index (all, 2);
  g_assert_cmpstr (r->call_id, ==, "c3");
  g_assert_cmpint (r->end_reason, ==, PARLEY_CALL_END_REASON_BUSY);

  bob = parley_cache_list_calls (fixture->cache, "bob", 0);
  g_assert_cmpuint (bob->len, ==, 2);
  g_assert_cmpstr (((ParleyCallRecord *) g_ptr_array_index (bob, 0))->call_id, ==, "c1");
  g_assert_cmpstr (((ParleyCallRecord *) g_ptr_array_index (bob, 1))->call_id, ==, "c3");

  limited = parley_cache_list_calls (fixture->cache, NULL, 2);
  g_assert_cmpuint (limited->len, ==, 2);
  g_assert_cmpstr (((ParleyCallRecord *) g_ptr_array_index (limited, 1))->call_id, ==, "c2");

  copy = parley_call_record_copy (g_ptr_array_index (all, 0));
  g_assert_cmpstr (copy->peer_name, ==, "bobby");
  g_assert_cmpint (copy->duration, ==, 12);

  /* The same call logged again replaces its entry. */
  record (fixture->cache, "c3", "bob", 1000000, PARLEY_CALL_END_REASON_REJECTED, 0);
  after = parley_cache_list_calls (fixture->cache, "bob", 0);
  g_assert_cmpuint (after->len, ==, 2);
  g_assert_cmpint (((ParleyCallRecord *) g_ptr_array_index (after, 1))->end_reason, ==,
                   PARLEY_CALL_END_REASON_REJECTED);

  g_assert_false (parley_cache_record_call (fixture->cache, bad, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
}

static void
test_call_log_survives_and_wipes (CacheFixture  *fixture,
                                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) reopened = NULL;
  g_autoptr(GPtrArray) wiped = NULL;

  record (fixture->cache, "c1", "bob", 1000000, PARLEY_CALL_END_REASON_OFFLINE, 0);
  g_assert_finalize_object (fixture->cache);

  fixture->cache = parley_cache_new (fixture->path, &error);
  g_assert_no_error (error);
  reopened = parley_cache_list_calls (fixture->cache, NULL, 0);
  g_assert_cmpuint (reopened->len, ==, 1);
  g_assert_cmpint (((ParleyCallRecord *) g_ptr_array_index (reopened, 0))->end_reason, ==,
                   PARLEY_CALL_END_REASON_OFFLINE);

  /* Another user on the same profile does not see the first user's calls. */
  g_assert_true (parley_cache_bind_user (fixture->cache, "someone-else", &error));
  wiped = parley_cache_list_calls (fixture->cache, NULL, 0);
  g_assert_cmpuint (wiped->len, ==, 0);
}

/* The state machine on frames, with a client that is not connected. */

typedef struct {
  char                *dir;
  ParleyClient        *client;
  ParleyMediaSettings *settings;
  GArray              *transitions;   /* of ParleyCallState pairs (new, old) */
} CallFixture;

static void
call_setup (CallFixture   *fixture,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleySession) session = NULL;
  g_autofree char *path = NULL;

  fixture->dir = g_dir_make_tmp ("parley-call-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (fixture->dir, "session.json", NULL);
  session = parley_session_new ("me", "me_name", "access", "refresh",
                                g_get_real_time () / G_USEC_PER_SEC + 3600);
  g_assert_true (parley_session_save (session, path, &error));
  fixture->client = parley_client_new ("http://127.0.0.1:9", fixture->dir, &error);
  g_assert_no_error (error);
  fixture->settings = parley_media_settings_new ();
  parley_media_settings_set_test_media (fixture->settings, TRUE);
  fixture->transitions = g_array_new (FALSE, FALSE, sizeof (ParleyCallState));
}

static void
call_teardown (CallFixture   *fixture,
               gconstpointer  data)
{
  g_assert_finalize_object (fixture->client);
  g_assert_finalize_object (fixture->settings);
  g_array_unref (fixture->transitions);
  parley_engine_test_remove_tree (fixture->dir);
  g_free (fixture->dir);
}

static void
state_changed_cb (ParleyCall      *call,
                  ParleyCallState  state,
                  ParleyCallState  old_state,
                  CallFixture     *fixture)
{
  g_assert_cmpint (state, !=, old_state);
  g_assert_cmpint (state, ==, parley_call_get_state (call));
  g_array_append_val (fixture->transitions, state);
}

static ParleyCall *
incoming (CallFixture *fixture,
          gboolean     video)
{
  ParleyCall *call = parley_call_new_incoming (fixture->client, fixture->settings, "call-1",
                                               "bob", "bobby", "v=0\r\n", 0, video);

  g_signal_connect (call, "state-changed", G_CALLBACK (state_changed_cb), fixture);
  return call;
}

static ParleyCall *
outgoing (CallFixture *fixture)
{
  ParleyCall *call = parley_call_new_outgoing (fixture->client, fixture->settings, "call-2",
                                               "bob", NULL, FALSE);

  g_signal_connect (call, "state-changed", G_CALLBACK (state_changed_cb), fixture);
  return call;
}

static void
feed (ParleyCall *call,
      const char *type,
      const char *json)
{
  g_autoptr(JsonObject) frame = parse_object (json);

  parley_call_handle_frame (call, type, frame);
}

static void
test_incoming_hostile_frames (CallFixture   *fixture,
                              gconstpointer  data)
{
  g_autoptr(ParleyCall) call = incoming (fixture, TRUE);
  const char *hostile[][2] = {
    { "call-offer", "{}" },
    { "call-offer", "{\"sdp\":17}" },
    { "call-offer", "{\"sdp\":\"v=0\",\"gen\":\"x\"}" },
    { "call-offer", "{\"sdp\":\"v=0\",\"gen\":-4}" },
    { "call-answer", "{\"sdp\":null}" },
    { "call-answer", "{\"sdp\":\"v=0\",\"gen\":0}" },
    { "call-ice-candidate", "{}" },
    { "call-ice-candidate", "{\"candidate\":\"candidate:1\"}" },
    { "call-ice-candidate", "{\"candidate\":{\"candidate\":5}}" },
    { "call-ice-candidate", "{\"candidate\":{\"candidate\":\"c\",\"sdpMLineIndex\":-1}}" },
    { "call-ice-candidate", "{\"candidate\":{\"candidate\":\"c\"},\"gen\":[1]}" },
    { "call-accept", "{}" },
    { "call-reject", "{\"reason\":\"busy\"}" },
    { "call-unheard-of", "{\"reason\":\"busy\"}" },
  };

  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_INCOMING_RINGING);
  g_assert_true (parley_call_get_video (call));
  g_assert_false (parley_call_get_outgoing (call));
  g_assert_cmpstr (parley_call_get_peer_name (call), ==, "bobby");
  g_assert_cmpint (parley_call_get_created_at (call), >, 0);

  /* Nonsense and frames meant for the other direction change nothing. */
  for (guint i = 0; i < G_N_ELEMENTS (hostile); i++)
    feed (call, hostile[i][0], hostile[i][1]);
  /* Well-formed early candidates are kept for later. */
  feed (call, "call-ice-candidate",
        "{\"candidate\":{\"candidate\":\"candidate:1 1 UDP 1 127.0.0.1 9 typ host\","
        "\"sdpMid\":\"0\",\"sdpMLineIndex\":0},\"gen\":0}");
  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_INCOMING_RINGING);
  g_assert_cmpuint (fixture->transitions->len, ==, 0);
  g_assert_null (parley_call_get_peer (call));

  /* The caller gives up: a missed call here, whatever the caller called it. */
  feed (call, "call-hangup", "{\"reason\":\"cancelled\"}");
  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_ENDED);
  g_assert_cmpint (parley_call_get_end_reason (call), ==, PARLEY_CALL_END_REASON_MISSED);
  g_assert_cmpint (parley_call_get_answered_at (call), ==, 0);
  g_assert_cmpint (parley_call_get_duration (call), ==, 0);
  g_assert_cmpint (parley_call_get_ended_at (call), >=, parley_call_get_created_at (call));
  g_assert_cmpuint (fixture->transitions->len, ==, 1);

  /* Frames after the end are ignored, and so is a second hangup. */
  feed (call, "call-hangup", "{\"reason\":\"failed\"}");
  parley_call_hangup (call);
  g_assert_cmpint (parley_call_get_end_reason (call), ==, PARLEY_CALL_END_REASON_MISSED);
  g_assert_cmpuint (fixture->transitions->len, ==, 1);
}

static void
test_incoming_accept_and_reject (CallFixture   *fixture,
                                 gconstpointer  data)
{
  g_autoptr(ParleyCall) call = incoming (fixture, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyCallRecord) entry = NULL;

  /* Not connected: the accept cannot reach the caller, so the call keeps ringing. */
  g_assert_false (parley_call_accept (call, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_NETWORK);
  g_clear_error (&error);
  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_INCOMING_RINGING);

  g_assert_true (parley_call_reject (call, &error));
  g_assert_no_error (error);
  g_assert_cmpint (parley_call_get_end_reason (call), ==, PARLEY_CALL_END_REASON_REJECTED);

  g_assert_false (parley_call_reject (call, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (parley_call_accept (call, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (parley_call_add_video (call, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);

  entry = parley_call_to_record (call);
  g_assert_cmpstr (entry->call_id, ==, "call-1");
  g_assert_cmpstr (entry->peer_id, ==, "bob");
  g_assert_false (entry->outgoing);
  g_assert_cmpint (entry->end_reason, ==, PARLEY_CALL_END_REASON_REJECTED);
  g_assert_cmpint (entry->ended_at, ==, parley_call_get_ended_at (call));
}

static void
test_outgoing_accept_then_hangup (CallFixture   *fixture,
                                  gconstpointer  data)
{
  g_autoptr(ParleyCall) call = outgoing (fixture);
  g_autoptr(GError) error = NULL;
  ParleyCallState expected[] = { PARLEY_CALL_STATE_CONNECTING, PARLEY_CALL_STATE_ENDED };

  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_OUTGOING_RINGING);
  g_assert_cmpstr (parley_call_get_offer_ref (call), ==, "call-call-2");
  g_assert_false (parley_call_accept (call, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);

  /* A reject that arrives after the accept is too late to matter. */
  feed (call, "call-accept", "{}");
  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_CONNECTING);
  g_assert_cmpint (parley_call_get_answered_at (call), >=, parley_call_get_created_at (call));
  feed (call, "call-reject", "{\"reason\":\"rejected\"}");
  feed (call, "call-accept", "{}");
  parley_call_handle_request_error (call, "recipient-offline", "gone");
  g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_CONNECTING);

  /* Mute and video flags are kept for the media connection to come. */
  parley_call_set_audio_muted (call, TRUE);
  g_assert_true (parley_call_get_audio_muted (call));
  g_assert_true (parley_call_add_video (call, NULL));
  g_assert_true (parley_call_get_video (call));

  feed (call, "call-hangup", "{\"reason\":\"cancelled\"}");
  g_assert_cmpint (parley_call_get_end_reason (call), ==, PARLEY_CALL_END_REASON_HANGUP);
  g_assert_cmpint (parley_call_get_duration (call), ==,
                   (parley_call_get_ended_at (call) - parley_call_get_answered_at (call)) /
                   G_USEC_PER_SEC);
  g_assert_cmpuint (fixture->transitions->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_cmpint (g_array_index (fixture->transitions, ParleyCallState, i), ==, expected[i]);
}

static void
test_outgoing_endings (CallFixture   *fixture,
                       gconstpointer  data)
{
  struct {
    const char          *type;
    const char          *json;
    ParleyCallEndReason  reason;
  } cases[] = {
    { "call-reject", "{\"reason\":\"busy\"}", PARLEY_CALL_END_REASON_BUSY },
    { "call-reject", "{\"reason\":\"rejected\"}", PARLEY_CALL_END_REASON_REJECTED },
    { "call-reject", "{\"reason\":[\"busy\"]}", PARLEY_CALL_END_REASON_REJECTED },
    { "call-hangup", "{\"reason\":\"failed\"}", PARLEY_CALL_END_REASON_FAILED },
    { NULL, "recipient-offline", PARLEY_CALL_END_REASON_OFFLINE },
    { NULL, "unknown-recipient", PARLEY_CALL_END_REASON_FAILED },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(ParleyCall) call = outgoing (fixture);

    if (cases[i].type != NULL)
      feed (call, cases[i].type, cases[i].json);
    else
      parley_call_handle_request_error (call, cases[i].json, NULL);
    g_assert_cmpint (parley_call_get_state (call), ==, PARLEY_CALL_STATE_ENDED);
    g_assert_cmpint (parley_call_get_end_reason (call), ==, cases[i].reason);
    g_assert_cmpint (parley_call_get_answered_at (call), ==, 0);
  }

  /* Hanging up before an answer cancels. */
  {
    g_autoptr(ParleyCall) call = outgoing (fixture);

    parley_call_hangup (call);
    g_assert_cmpint (parley_call_get_end_reason (call), ==, PARLEY_CALL_END_REASON_CANCELLED);
  }
}

static void
ended_cb (ParleyCall *call,
          GParamSpec *pspec,
          gboolean   *ended)
{
  if (parley_call_get_state (call) == PARLEY_CALL_STATE_ENDED)
    *ended = TRUE;
}

static gboolean
give_up_cb (gpointer user_data)
{
  g_error ("The ring timer did not fire");
  return G_SOURCE_REMOVE;
}

static void
test_ring_timeout (CallFixture   *fixture,
                   gconstpointer  data)
{
  g_autoptr(ParleyCall) call = outgoing (fixture);
  gboolean ended = FALSE;
  gint64 start = g_get_monotonic_time ();
  guint give_up;

  g_signal_connect (call, "notify::state", G_CALLBACK (ended_cb), &ended);
  /* No offer goes out here, so the timer runs for the ring time plus the grace period. */
  parley_call_set_ring_grace (call, 1);
  parley_call_start_ringing (call, 1);
  give_up = g_timeout_add_seconds (10, give_up_cb, NULL);
  while (!ended)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (give_up);

  g_assert_cmpint (parley_call_get_end_reason (call), ==, PARLEY_CALL_END_REASON_MISSED);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC * 3 / 2);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/call/reason-strings", test_reason_strings);
  g_test_add_func ("/call/frame-readers", test_frame_readers);
  g_test_add ("/call/log", CacheFixture, NULL, cache_setup, test_call_log, cache_teardown);
  g_test_add ("/call/log-survives-and-wipes", CacheFixture, NULL, cache_setup,
              test_call_log_survives_and_wipes, cache_teardown);
  g_test_add ("/call/incoming-hostile-frames", CallFixture, NULL, call_setup,
              test_incoming_hostile_frames, call_teardown);
  g_test_add ("/call/incoming-accept-and-reject", CallFixture, NULL, call_setup,
              test_incoming_accept_and_reject, call_teardown);
  g_test_add ("/call/outgoing-accept-then-hangup", CallFixture, NULL, call_setup,
              test_outgoing_accept_then_hangup, call_teardown);
  g_test_add ("/call/outgoing-endings", CallFixture, NULL, call_setup, test_outgoing_endings,
              call_teardown);
  g_test_add ("/call/ring-timeout", CallFixture, NULL, call_setup, test_ring_timeout,
              call_teardown);

  return g_test_run ();
}
