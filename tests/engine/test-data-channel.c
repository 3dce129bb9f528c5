/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-data-channel"

#define GST_USE_UNSTABLE_API
#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include "parley-data-channel.h"
#include "parley-engine-test.h"
#include "parley-error.h"

#define TIMEOUT_MS 10000

static GThread *main_thread;

/* Iterates the default main context until @cond holds or TIMEOUT_MS pass. */
#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    gboolean timed_out_ = FALSE; \
    guint timeout_id_ = g_timeout_add (TIMEOUT_MS, set_true_cb, &timed_out_); \
    while (!(cond) && !timed_out_) \
      g_main_context_iteration (NULL, TRUE); \
    if (!timed_out_) \
      g_source_remove (timeout_id_); \
    if (!(cond)) \
      g_error ("Timed out waiting for %s", #cond); \
  } G_STMT_END

static gboolean
set_true_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs whatever the main context has ready, without blocking. */
static void
drain_main_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* Two webrtcbins in one process, each in its own pipeline. */
typedef struct {
  GstElement *pipe;
  GstElement *webrtc;
  GMutex      lock;
  GPtrArray  *received;   /* GstWebRTCDataChannel from on-data-channel */
} Side;

typedef struct {
  Side a;
  Side b;
} Pair;

static void
on_ice_candidate_cb (GstElement *webrtc,
                     guint       mline,
                     const char *candidate,
                     Side       *other)
{
  g_signal_emit_by_name (other->webrtc, "add-ice-candidate", mline, candidate);
}

static void
on_data_channel_cb (GstElement *webrtc,
                    GObject    *channel,
                    Side       *side)
{
  g_mutex_lock (&side->lock);
  g_ptr_array_add (side->received, g_object_ref (channel));
  g_mutex_unlock (&side->lock);
  g_main_context_wakeup (NULL);
}

static void
side_init (Side       *side,
           const char *name)
{
  side->pipe = gst_pipeline_new (name);
  side->webrtc = gst_element_factory_make ("webrtcbin", NULL);
  g_assert_nonnull (side->webrtc);
  g_object_set (side->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, NULL);
  parley_engine_test_disable_upnp (side->webrtc);
  gst_bin_add (GST_BIN (side->pipe), side->webrtc);
  g_mutex_init (&side->lock);
  side->received = g_ptr_array_new_with_free_func (g_object_unref);
  g_signal_connect (side->webrtc, "on-data-channel", G_CALLBACK (on_data_channel_cb), side);
}

static void
side_clear (Side *side)
{
  gst_element_set_state (side->pipe, GST_STATE_NULL);
  g_clear_object (&side->pipe);
  g_clear_pointer (&side->received, g_ptr_array_unref);
  g_mutex_clear (&side->lock);
}

static Pair *
pair_new (void)
{
  Pair *pair = g_new0 (Pair, 1);

  side_init (&pair->a, "a");
  side_init (&pair->b, "b");
  g_signal_connect (pair->a.webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate_cb), &pair->b);
  g_signal_connect (pair->b.webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate_cb), &pair->a);
  g_assert_cmpint (gst_element_set_state (pair->a.pipe, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  g_assert_cmpint (gst_element_set_state (pair->b.pipe, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  return pair;
}

static void
pair_free (Pair *pair)
{
  /* Stop both before freeing either: candidates cross between them. */
  gst_element_set_state (pair->a.pipe, GST_STATE_NULL);
  gst_element_set_state (pair->b.pipe, GST_STATE_NULL);
  side_clear (&pair->a);
  side_clear (&pair->b);
  g_free (pair);
}

static void
negotiate (Pair *pair)
{
  GstWebRTCSessionDescription *offer, *answer;

  offer = parley_engine_test_create_description (pair->a.webrtc, "create-offer", "offer");
  parley_engine_test_set_description (pair->a.webrtc, "set-local-description", offer);
  parley_engine_test_set_description (pair->b.webrtc, "set-remote-description", offer);
  answer = parley_engine_test_create_description (pair->b.webrtc, "create-answer", "answer");
  parley_engine_test_set_description (pair->b.webrtc, "set-local-description", answer);
  parley_engine_test_set_description (pair->a.webrtc, "set-remote-description", answer);
  gst_webrtc_session_description_free (offer);
  gst_webrtc_session_description_free (answer);
}

static GObject *
create_gst_channel (Side       *side,
                    const char *label,
                    gboolean    reliable)
{
  g_autoptr(GstStructure) options = NULL;
  GObject *channel = NULL;

  if (reliable)
    options = gst_structure_new ("application/data-channel", "ordered", G_TYPE_BOOLEAN, TRUE, NULL);
  else
    options = gst_structure_new ("application/data-channel", "ordered", G_TYPE_BOOLEAN, FALSE,
                                 "max-retransmits", G_TYPE_INT, 0, NULL);
  g_signal_emit_by_name (side->webrtc, "create-data-channel", label, options, &channel);
  g_assert_nonnull (channel);
  return channel;
}

static guint
received_count (Side *side)
{
  guint n;

  g_mutex_lock (&side->lock);
  n = side->received->len;
  g_mutex_unlock (&side->lock);
  return n;
}

/* Returns (transfer full) the channel @side received with @label. */
static GObject *
find_received (Side       *side,
               const char *label)
{
  GObject *found = NULL;

  g_mutex_lock (&side->lock);
  for (guint i = 0; i < side->received->len && found == NULL; i++) {
    GObject *channel = g_ptr_array_index (side->received, i);
    g_autofree char *channel_label = NULL;

    g_object_get (channel, "label", &channel_label, NULL);
    if (g_strcmp0 (channel_label, label) == 0)
      found = g_object_ref (channel);
  }
  g_mutex_unlock (&side->lock);
  g_assert_nonnull (found);
  return found;
}

/* What a ParleyDataChannel emitted, checked to come on the main thread. */
typedef struct {
  GPtrArray *binary;    /* GBytes */
  GPtrArray *text;      /* char * */
  GArray    *states;    /* ParleyDataChannelState, each new state in order */
} Recorder;

static void
assert_main_thread (void)
{
  g_assert_true (g_thread_self () == main_thread);
  g_assert_true (g_main_context_is_owner (g_main_context_default ()));
}

static void
message_cb (ParleyDataChannel *channel,
            GBytes            *data,
            Recorder          *recorder)
{
  assert_main_thread ();
  g_ptr_array_add (recorder->binary, g_bytes_ref (data));
}

static void
message_string_cb (ParleyDataChannel *channel,
                   const char        *text,
                   Recorder          *recorder)
{
  assert_main_thread ();
  g_ptr_array_add (recorder->text, g_strdup (text));
}

static void
state_changed_cb (ParleyDataChannel      *channel,
                  ParleyDataChannelState  new_state,
                  ParleyDataChannelState  old_state,
                  Recorder               *recorder)
{
  assert_main_thread ();
  g_assert_cmpint (new_state, !=, old_state);
  g_assert_cmpint (parley_data_channel_get_state (channel), ==, new_state);
  if (recorder->states->len > 0)
    g_assert_cmpint (g_array_index (recorder->states, int, recorder->states->len - 1), ==,
                     old_state);
  else
    g_assert_cmpint (old_state, ==, PARLEY_DATA_CHANNEL_STATE_CONNECTING);
  g_array_append_val (recorder->states, new_state);
}

static Recorder *
recorder_new (ParleyDataChannel *channel)
{
  Recorder *recorder = g_new0 (Recorder, 1);

  recorder->binary = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  recorder->text = g_ptr_array_new_with_free_func (g_free);
  recorder->states = g_array_new (FALSE, FALSE, sizeof (int));
  g_signal_connect (channel, "message", G_CALLBACK (message_cb), recorder);
  g_signal_connect (channel, "message-string", G_CALLBACK (message_string_cb), recorder);
  g_signal_connect (channel, "state-changed", G_CALLBACK (state_changed_cb), recorder);
  return recorder;
}

static void
recorder_free (Recorder *recorder)
{
  g_ptr_array_unref (recorder->binary);
  g_ptr_array_unref (recorder->text);
  g_array_unref (recorder->states);
  g_free (recorder);
}

/* A ParleyDataChannel bound to each end of one webrtcbin channel. */
typedef struct {
  ParleyDataChannel *local;
  ParleyDataChannel *remote;
  Recorder          *local_rec;
  Recorder          *remote_rec;
} Ends;

static void
ends_init (Ends       *ends,
           const char *label,
           gboolean    reliable)
{
  ends->local = parley_data_channel_new (label, reliable);
  ends->remote = parley_data_channel_new (label, reliable);
  ends->local_rec = recorder_new (ends->local);
  ends->remote_rec = recorder_new (ends->remote);
}

static void
ends_bind (Ends    *ends,
           GObject *local,
           GObject *remote)
{
  parley_data_channel_bind (ends->local, local);
  parley_data_channel_bind (ends->remote, remote);
}

static void
ends_clear (Ends *ends)
{
  parley_data_channel_bind (ends->local, NULL);
  parley_data_channel_bind (ends->remote, NULL);
  /* Queued events hold references until they are dispatched. */
  drain_main_context ();
  g_assert_finalize_object (ends->local);
  g_assert_finalize_object (ends->remote);
  recorder_free (ends->local_rec);
  recorder_free (ends->remote_rec);
}

static gboolean
ends_open (Ends *ends)
{
  return parley_data_channel_get_state (ends->local) == PARLEY_DATA_CHANNEL_STATE_OPEN &&
         parley_data_channel_get_state (ends->remote) == PARLEY_DATA_CHANNEL_STATE_OPEN;
}

static GBytes *
make_payload (gsize size,
              guint seed)
{
  guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) ((i * 31 + seed * 7 + (i >> 8)) & 0xff);
  return g_bytes_new_take (data, size);
}

static char *
make_text (gsize size,
           guint seed)
{
  char *text = g_malloc (size + 1);

  for (gsize i = 0; i < size; i++)
    text[i] = (char) ('a' + (i * 7 + seed) % 26);
  text[size] = '\0';
  return text;
}

/* Sends 1 B, 1 KiB and 64 KiB, binary and text, from @from; checks @to_rec gets them intact. */
static void
exchange (ParleyDataChannel *from,
          Recorder          *to_rec,
          guint              seed)
{
  const gsize sizes[] = { 1, 1024, 65536 };
  guint binary_before = to_rec->binary->len;
  guint text_before = to_rec->text->len;

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    g_autoptr(GBytes) payload = make_payload (sizes[i], seed + i);
    g_autofree char *text = make_text (sizes[i], seed + i);
    g_autoptr(GError) error = NULL;

    g_assert_true (parley_data_channel_send_bytes (from, payload, &error));
    g_assert_no_error (error);
    g_assert_true (parley_data_channel_send_string (from, text, &error));
    g_assert_no_error (error);
  }

  WAIT_UNTIL (to_rec->binary->len == binary_before + G_N_ELEMENTS (sizes) &&
              to_rec->text->len == text_before + G_N_ELEMENTS (sizes));

  /* An unordered channel may deliver them in any order: match by size. */
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    g_autoptr(GBytes) payload = make_payload (sizes[i], seed + i);
    g_autofree char *text = make_text (sizes[i], seed + i);
    gboolean binary_found = FALSE, text_found = FALSE;

    for (guint j = binary_before; j < to_rec->binary->len; j++) {
      GBytes *got = g_ptr_array_index (to_rec->binary, j);

      if (g_bytes_get_size (got) == sizes[i]) {
        g_assert_true (g_bytes_equal (got, payload));
        binary_found = TRUE;
      }
    }
    for (guint j = text_before; j < to_rec->text->len; j++) {
      const char *got = g_ptr_array_index (to_rec->text, j);

      if (strlen (got) == sizes[i]) {
        g_assert_cmpstr (got, ==, text);
        text_found = TRUE;
      }
    }
    g_assert_true (binary_found);
    g_assert_true (text_found);
  }
}

static void
test_messages_both_ways (void)
{
  Pair *pair = pair_new ();
  g_autoptr(GObject) a_rel = create_gst_channel (&pair->a, "a-rel", TRUE);
  g_autoptr(GObject) a_unrel = create_gst_channel (&pair->a, "a-unrel", FALSE);
  g_autoptr(GObject) b_rel = create_gst_channel (&pair->b, "b-rel", TRUE);
  g_autoptr(GObject) b_unrel = create_gst_channel (&pair->b, "b-unrel", FALSE);
  g_autoptr(GObject) b_got_rel = NULL;
  g_autoptr(GObject) b_got_unrel = NULL;
  g_autoptr(GObject) a_got_rel = NULL;
  g_autoptr(GObject) a_got_unrel = NULL;
  Ends ends[4];

  negotiate (pair);
  WAIT_UNTIL (received_count (&pair->a) == 2 && received_count (&pair->b) == 2);
  b_got_rel = find_received (&pair->b, "a-rel");
  b_got_unrel = find_received (&pair->b, "a-unrel");
  a_got_rel = find_received (&pair->a, "b-rel");
  a_got_unrel = find_received (&pair->a, "b-unrel");

  /* Created on a and received on b, then the other way round. */
  ends_init (&ends[0], "a-rel", TRUE);
  ends_bind (&ends[0], a_rel, b_got_rel);
  ends_init (&ends[1], "a-unrel", FALSE);
  ends_bind (&ends[1], a_unrel, b_got_unrel);
  ends_init (&ends[2], "b-rel", TRUE);
  ends_bind (&ends[2], b_rel, a_got_rel);
  ends_init (&ends[3], "b-unrel", FALSE);
  ends_bind (&ends[3], b_unrel, a_got_unrel);

  for (guint i = 0; i < G_N_ELEMENTS (ends); i++) {
    WAIT_UNTIL (ends_open (&ends[i]));
    g_assert_true (parley_data_channel_get_reliable (ends[i].local) == (i % 2 == 0));
    exchange (ends[i].local, ends[i].remote_rec, i * 10);
    exchange (ends[i].remote, ends[i].local_rec, i * 10 + 5);
  }

  for (guint i = 0; i < G_N_ELEMENTS (ends); i++)
    ends_clear (&ends[i]);
  pair_free (pair);
}

static void
test_unordered_options_reach_far_side (void)
{
  Pair *pair = pair_new ();
  g_autoptr(GObject) rel = create_gst_channel (&pair->a, "rel", TRUE);
  g_autoptr(GObject) unrel = create_gst_channel (&pair->a, "unrel", FALSE);
  g_autoptr(GObject) got_rel = NULL;
  g_autoptr(GObject) got_unrel = NULL;
  gboolean ordered = FALSE;
  int max_retransmits = 0;

  negotiate (pair);
  WAIT_UNTIL (received_count (&pair->b) == 2);
  got_rel = find_received (&pair->b, "rel");
  got_unrel = find_received (&pair->b, "unrel");

  g_object_get (got_unrel, "ordered", &ordered, "max-retransmits", &max_retransmits, NULL);
  g_assert_false (ordered);
  g_assert_cmpint (max_retransmits, ==, 0);
  g_object_get (got_rel, "ordered", &ordered, "max-retransmits", &max_retransmits, NULL);
  g_assert_true (ordered);
  g_assert_cmpint (max_retransmits, !=, 0);

  pair_free (pair);
}

static void
test_send_refused (void)
{
  Pair *pair = pair_new ();
  g_autoptr(GObject) gst_channel = create_gst_channel (&pair->a, "refuse", TRUE);
  g_autoptr(GObject) got = NULL;
  g_autoptr(ParleyDataChannel) unbound = parley_data_channel_new ("refuse", TRUE);
  g_autoptr(GBytes) small = g_bytes_new_static ("x", 1);
  g_autoptr(GBytes) big = make_payload (65537, 1);
  g_autofree char *big_text = make_text (65537, 1);
  g_autoptr(GError) error = NULL;
  Ends ends;

  /* Not bound at all. */
  g_assert_false (parley_data_channel_send_bytes (unbound, small, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (parley_data_channel_send_string (unbound, "x", &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);

  /* Bound, but the connection is not negotiated yet. */
  ends_init (&ends, "refuse", TRUE);
  parley_data_channel_bind (ends.local, gst_channel);
  g_assert_cmpint (parley_data_channel_get_state (ends.local), ==,
                   PARLEY_DATA_CHANNEL_STATE_CONNECTING);
  g_assert_false (parley_data_channel_send_bytes (ends.local, small, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);

  negotiate (pair);
  WAIT_UNTIL (received_count (&pair->b) == 1);
  got = find_received (&pair->b, "refuse");
  parley_data_channel_bind (ends.remote, got);
  WAIT_UNTIL (ends_open (&ends));

  /* Open, but too large. */
  g_assert_false (parley_data_channel_send_bytes (ends.local, big, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (parley_data_channel_send_string (ends.local, big_text, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (parley_data_channel_send_string (ends.local, "\xff\xfe", &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);

  /* The channel still works, and nothing of the refused messages arrived. */
  g_assert_true (parley_data_channel_send_string (ends.local, "after", &error));
  g_assert_no_error (error);
  WAIT_UNTIL (ends.remote_rec->text->len == 1);
  g_assert_cmpstr (g_ptr_array_index (ends.remote_rec->text, 0), ==, "after");
  g_assert_cmpuint (ends.remote_rec->binary->len, ==, 0);

  ends_clear (&ends);
  pair_free (pair);
}

/* Signalled from a streaming thread when a raw channel has closed. */
typedef struct {
  GMutex   lock;
  GCond    cond;
  gboolean closed;
} CloseWait;

static void
raw_on_close_cb (GObject   *channel,
                 CloseWait *wait)
{
  g_mutex_lock (&wait->lock);
  wait->closed = TRUE;
  g_cond_signal (&wait->cond);
  g_mutex_unlock (&wait->lock);
}

static void
test_rebind_after_restart (void)
{
  Pair *first = pair_new ();
  Pair *second = NULL;
  g_autoptr(GObject) first_local = create_gst_channel (&first->a, "game", FALSE);
  g_autoptr(GObject) first_remote = NULL;
  g_autoptr(GObject) second_local = NULL;
  g_autoptr(GObject) second_remote = NULL;
  CloseWait wait = { 0 };
  gint64 deadline;
  Ends ends;
  const int expected_states[] = {
    PARLEY_DATA_CHANNEL_STATE_OPEN,
    PARLEY_DATA_CHANNEL_STATE_CONNECTING,
    PARLEY_DATA_CHANNEL_STATE_OPEN,
  };

  negotiate (first);
  WAIT_UNTIL (received_count (&first->b) == 1);
  first_remote = find_received (&first->b, "game");
  ends_init (&ends, "game", FALSE);
  ends_bind (&ends, first_local, first_remote);
  WAIT_UNTIL (ends_open (&ends));
  exchange (ends.local, ends.remote_rec, 1);

  /* The old connection closes on a streaming thread while the main context
   * is not running: its events are queued, then the peer unbinds. They must
   * be dropped, not close the channel. */
  g_mutex_init (&wait.lock);
  g_cond_init (&wait.cond);
  g_signal_connect (first_local, "on-close", G_CALLBACK (raw_on_close_cb), &wait);
  gst_webrtc_data_channel_close (GST_WEBRTC_DATA_CHANNEL (first_local));
  deadline = g_get_monotonic_time () + TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  g_mutex_lock (&wait.lock);
  while (!wait.closed && g_cond_wait_until (&wait.cond, &wait.lock, deadline))
    ;
  g_assert_true (wait.closed);
  g_mutex_unlock (&wait.lock);
  g_signal_handlers_disconnect_by_data (first_local, &wait);

  ends_bind (&ends, NULL, NULL);
  g_assert_cmpint (parley_data_channel_get_state (ends.local), ==,
                   PARLEY_DATA_CHANNEL_STATE_CONNECTING);
  g_assert_cmpint (parley_data_channel_get_state (ends.remote), ==,
                   PARLEY_DATA_CHANNEL_STATE_CONNECTING);
  pair_free (first);
  drain_main_context ();
  g_assert_cmpint (parley_data_channel_get_state (ends.local), ==,
                   PARLEY_DATA_CHANNEL_STATE_CONNECTING);
  g_assert_cmpint (parley_data_channel_get_state (ends.remote), ==,
                   PARLEY_DATA_CHANNEL_STATE_CONNECTING);

  /* The restarted connection: the same label on a new webrtcbin pair. */
  second = pair_new ();
  second_local = create_gst_channel (&second->a, "game", FALSE);
  parley_data_channel_bind (ends.local, second_local);
  negotiate (second);
  WAIT_UNTIL (received_count (&second->b) == 1);
  second_remote = find_received (&second->b, "game");
  parley_data_channel_bind (ends.remote, second_remote);
  WAIT_UNTIL (ends_open (&ends));

  g_assert_cmpuint (ends.local_rec->states->len, ==, G_N_ELEMENTS (expected_states));
  g_assert_cmpuint (ends.remote_rec->states->len, ==, G_N_ELEMENTS (expected_states));
  for (guint i = 0; i < G_N_ELEMENTS (expected_states); i++) {
    g_assert_cmpint (g_array_index (ends.local_rec->states, int, i), ==, expected_states[i]);
    g_assert_cmpint (g_array_index (ends.remote_rec->states, int, i), ==, expected_states[i]);
  }

  exchange (ends.local, ends.remote_rec, 2);
  exchange (ends.remote, ends.local_rec, 3);

  ends_clear (&ends);
  pair_free (second);
  g_mutex_clear (&wait.lock);
  g_cond_clear (&wait.cond);
}

static void
test_close (void)
{
  Pair *pair = pair_new ();
  g_autoptr(GObject) local = create_gst_channel (&pair->a, "bye", TRUE);
  g_autoptr(GObject) remote = NULL;
  g_autoptr(GError) error = NULL;
  int ready_state = 0;
  Ends ends;

  negotiate (pair);
  WAIT_UNTIL (received_count (&pair->b) == 1);
  remote = find_received (&pair->b, "bye");
  ends_init (&ends, "bye", TRUE);
  ends_bind (&ends, local, remote);
  WAIT_UNTIL (ends_open (&ends));

  parley_data_channel_close (ends.local);
  g_assert_cmpint (parley_data_channel_get_state (ends.local), ==,
                   PARLEY_DATA_CHANNEL_STATE_CLOSED);
  WAIT_UNTIL (parley_data_channel_get_state (ends.remote) == PARLEY_DATA_CHANNEL_STATE_CLOSED);
  g_object_get (remote, "ready-state", &ready_state, NULL);
  /* The far side's channel is closing or closed: both mean closed here. */
  g_assert_cmpint (ready_state, >=, GST_WEBRTC_DATA_CHANNEL_STATE_CLOSING);

  g_assert_false (parley_data_channel_send_string (ends.local, "late", &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (parley_data_channel_send_string (ends.remote, "late", &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);

  /* Closed for good: binding again is ignored. */
  parley_data_channel_bind (ends.local, local);
  g_assert_cmpint (parley_data_channel_get_state (ends.local), ==,
                   PARLEY_DATA_CHANNEL_STATE_CLOSED);
  g_assert_cmpuint (ends.local_rec->states->len, ==, 2);
  g_assert_cmpint (g_array_index (ends.local_rec->states, int, 1), ==,
                   PARLEY_DATA_CHANNEL_STATE_CLOSED);

  ends_clear (&ends);
  pair_free (pair);
}

typedef struct {
  ParleyDataChannel *channel;
  GThread           *thread;   /* Where the bind happened. */
} StreamingBind;

static void
bind_on_data_channel_cb (GstElement    *webrtc,
                         GObject       *channel,
                         StreamingBind *bind)
{
  /* webrtcbin emits this on one of its own threads. */
  bind->thread = g_thread_self ();
  parley_data_channel_bind (bind->channel, channel);
}

static void
test_bind_from_streaming_thread (void)
{
  Pair *pair = pair_new ();
  g_autoptr(GObject) local = create_gst_channel (&pair->a, "threads", TRUE);
  StreamingBind bind = { 0 };
  Ends ends;

  ends_init (&ends, "threads", TRUE);
  bind.channel = ends.remote;
  g_signal_connect (pair->b.webrtc, "on-data-channel", G_CALLBACK (bind_on_data_channel_cb),
                    &bind);
  parley_data_channel_bind (ends.local, local);
  negotiate (pair);

  /* The state change of a bind on another thread arrives on the main thread. */
  WAIT_UNTIL (ends_open (&ends));
  g_assert_nonnull (bind.thread);
  g_assert_true (bind.thread != main_thread);
  g_assert_cmpuint (ends.remote_rec->states->len, ==, 1);
  exchange (ends.remote, ends.local_rec, 7);

  g_signal_handlers_disconnect_by_data (pair->b.webrtc, &bind);
  ends_clear (&ends);
  pair_free (pair);
}

static void
test_reopen_after_far_close (void)
{
  Pair *first = pair_new ();
  Pair *second = pair_new ();
  g_autoptr(GObject) first_local = create_gst_channel (&first->a, "chat", TRUE);
  g_autoptr(GObject) second_local = create_gst_channel (&second->a, "chat", TRUE);
  g_autoptr(GObject) first_remote = NULL;
  g_autoptr(GObject) second_remote = NULL;
  Ends ends;

  negotiate (first);
  WAIT_UNTIL (received_count (&first->b) == 1);
  first_remote = find_received (&first->b, "chat");
  ends_init (&ends, "chat", TRUE);
  ends_bind (&ends, first_local, first_remote);
  WAIT_UNTIL (ends_open (&ends));

  /* The connection closes the channel, not Parley: both ends see it closed. */
  gst_webrtc_data_channel_close (GST_WEBRTC_DATA_CHANNEL (first_local));
  WAIT_UNTIL (parley_data_channel_get_state (ends.local) == PARLEY_DATA_CHANNEL_STATE_CLOSED &&
              parley_data_channel_get_state (ends.remote) == PARLEY_DATA_CHANNEL_STATE_CLOSED);

  /* Unbinding leaves a closed channel closed... */
  ends_bind (&ends, NULL, NULL);
  g_assert_cmpint (parley_data_channel_get_state (ends.local), ==,
                   PARLEY_DATA_CHANNEL_STATE_CLOSED);

  /* ...and a new connection opens it again. */
  negotiate (second);
  WAIT_UNTIL (received_count (&second->b) == 1);
  second_remote = find_received (&second->b, "chat");
  ends_bind (&ends, second_local, second_remote);
  WAIT_UNTIL (ends_open (&ends));
  exchange (ends.local, ends.remote_rec, 9);

  ends_clear (&ends);
  pair_free (first);
  pair_free (second);
}

static void
buffered_amount_cb (ParleyDataChannel *channel,
                    GParamSpec        *pspec,
                    guint             *notified)
{
  assert_main_thread ();
  (*notified)++;
}

static void
test_buffered_amount (void)
{
  Pair *pair = pair_new ();
  g_autoptr(GObject) local = create_gst_channel (&pair->a, "bulk", TRUE);
  g_autoptr(GObject) remote = NULL;
  g_autoptr(GBytes) chunk = make_payload (65536, 3);
  guint notified = 0;
  guint64 peak = 0;
  Ends ends;

  negotiate (pair);
  WAIT_UNTIL (received_count (&pair->b) == 1);
  remote = find_received (&pair->b, "bulk");
  ends_init (&ends, "bulk", TRUE);
  ends_bind (&ends, local, remote);
  WAIT_UNTIL (ends_open (&ends));
  g_signal_connect (ends.local, "notify::buffered-amount", G_CALLBACK (buffered_amount_cb),
                    &notified);

  /* A burst queues inside webrtcbin faster than SCTP takes it. */
  for (guint i = 0; i < 64; i++) {
    g_autoptr(GError) error = NULL;

    g_assert_true (parley_data_channel_send_bytes (ends.local, chunk, &error));
    g_assert_no_error (error);
    peak = MAX (peak, parley_data_channel_get_buffered_amount (ends.local));
  }
  g_assert_cmpuint (peak, >, 0);
  g_assert_cmpuint (notified, >, 0);

  /* Everything arrives, and the queue drains. */
  WAIT_UNTIL (ends.remote_rec->binary->len == 64);
  WAIT_UNTIL (parley_data_channel_get_buffered_amount (ends.local) == 0);
  for (guint i = 0; i < 64; i++)
    g_assert_true (g_bytes_equal (g_ptr_array_index (ends.remote_rec->binary, i), chunk));

  ends_clear (&ends);
  pair_free (pair);
}

/* What a message function saw; filled on a streaming thread. */
typedef struct {
  GMutex     lock;
  GPtrArray *binary;
  GPtrArray *text;
  gboolean   off_main_thread;
  gboolean   echo;
  gboolean   echo_failed;
  guint      destroyed;
} FuncLog;

static FuncLog *
func_log_new (gboolean echo)
{
  FuncLog *log = g_new0 (FuncLog, 1);

  g_mutex_init (&log->lock);
  log->binary = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  log->text = g_ptr_array_new_with_free_func (g_free);
  log->off_main_thread = TRUE;
  log->echo = echo;
  return log;
}

static void
func_log_free (FuncLog *log)
{
  g_ptr_array_unref (log->binary);
  g_ptr_array_unref (log->text);
  g_mutex_clear (&log->lock);
  g_free (log);
}

static void
func_log_destroyed (gpointer data)
{
  FuncLog *log = data;

  g_mutex_lock (&log->lock);
  log->destroyed++;
  g_mutex_unlock (&log->lock);
}

static guint
func_log_count (FuncLog *log)
{
  guint count;

  g_mutex_lock (&log->lock);
  count = log->binary->len + log->text->len;
  g_mutex_unlock (&log->lock);
  return count;
}

static void
log_message_func (ParleyDataChannel *channel,
                  GBytes            *data,
                  const char        *text,
                  gpointer           user_data)
{
  FuncLog *log = user_data;
  gboolean echoed = TRUE;

  /* Exactly one of them, and echoing works from here. */
  g_assert_true ((data == NULL) != (text == NULL));
  if (log->echo && data != NULL)
    echoed = parley_data_channel_send_bytes (channel, data, NULL);
  else if (log->echo)
    echoed = parley_data_channel_send_string (channel, text, NULL);

  g_mutex_lock (&log->lock);
  if (g_thread_self () == main_thread)
    log->off_main_thread = FALSE;
  if (!echoed)
    log->echo_failed = TRUE;
  if (data != NULL)
    g_ptr_array_add (log->binary, g_bytes_ref (data));
  else
    g_ptr_array_add (log->text, g_strdup (text));
  g_mutex_unlock (&log->lock);
}

/* Opens one unreliable channel from a to b and binds both ends. */
static Pair *
open_ends (Ends       *ends,
           const char *label,
           GObject   **local_out,
           GObject   **remote_out)
{
  Pair *pair = pair_new ();

  *local_out = create_gst_channel (&pair->a, label, FALSE);
  negotiate (pair);
  WAIT_UNTIL (received_count (&pair->b) == 1);
  *remote_out = find_received (&pair->b, label);
  ends_init (ends, label, FALSE);
  ends_bind (ends, *local_out, *remote_out);
  WAIT_UNTIL (ends_open (ends));
  return pair;
}

static void
test_message_func_echo (void)
{
  g_autoptr(GObject) local = NULL;
  g_autoptr(GObject) remote = NULL;
  FuncLog *log = func_log_new (TRUE);
  Ends ends;
  Pair *pair = open_ends (&ends, "echo", &local, &remote);

  parley_data_channel_set_message_func (ends.remote, log_message_func, log, func_log_destroyed);

  /* The far end gets them on a streaming thread, not as signals, and its
   * echo from there comes back to the main context as signals. */
  for (guint i = 0; i < 20; i++) {
    g_autoptr(GBytes) payload = make_payload (16 + i, i);
    g_autofree char *text = make_text (8 + i, i);

    g_assert_true (parley_data_channel_send_bytes (ends.local, payload, NULL));
    g_assert_true (parley_data_channel_send_string (ends.local, text, NULL));
  }
  WAIT_UNTIL (ends.local_rec->binary->len == 20 && ends.local_rec->text->len == 20);
  g_assert_cmpuint (func_log_count (log), ==, 40);
  g_assert_true (log->off_main_thread);
  g_assert_false (log->echo_failed);
  g_assert_cmpuint (ends.remote_rec->binary->len, ==, 0);
  g_assert_cmpuint (ends.remote_rec->text->len, ==, 0);

  /* Each echo is what was sent (unordered: match by size). */
  for (guint i = 0; i < 20; i++) {
    g_autoptr(GBytes) payload = make_payload (16 + i, i);
    g_autofree char *text = make_text (8 + i, i);
    guint found = 0;

    for (guint j = 0; j < 20; j++) {
      GBytes *got = g_ptr_array_index (ends.local_rec->binary, j);
      const char *got_text = g_ptr_array_index (ends.local_rec->text, j);

      if (g_bytes_get_size (got) == 16 + i && g_bytes_equal (got, payload))
        found++;
      if (strlen (got_text) == 8 + i && g_str_equal (got_text, text))
        found++;
    }
    g_assert_cmpuint (found, ==, 2);
  }

  /* Without a function, messages are signals on the main context again. */
  parley_data_channel_set_message_func (ends.remote, NULL, NULL, NULL);
  g_assert_cmpuint (log->destroyed, ==, 1);
  g_assert_true (parley_data_channel_send_string (ends.local, "signal again", NULL));
  WAIT_UNTIL (ends.remote_rec->text->len == 1);
  g_assert_cmpstr (g_ptr_array_index (ends.remote_rec->text, 0), ==, "signal again");
  g_assert_cmpuint (func_log_count (log), ==, 40);

  ends_clear (&ends);
  g_assert_cmpuint (log->destroyed, ==, 1);
  func_log_free (log);
  pair_free (pair);
}

/* Counts messages of a raw webrtcbin channel, on its streaming thread. */
static void
count_raw_cb (GObject    *channel,
              const char *text,
              int        *count)
{
  g_atomic_int_inc (count);
  g_main_context_wakeup (NULL);
}

static void
test_message_func_replaced_and_disposed (void)
{
  g_autoptr(GObject) local = NULL;
  g_autoptr(GObject) remote = NULL;
  FuncLog *first = func_log_new (FALSE);
  FuncLog *second = func_log_new (FALSE);
  int raw_count = 0;
  Ends ends;
  Pair *pair = open_ends (&ends, "replace", &local, &remote);

  parley_data_channel_set_message_func (ends.remote, log_message_func, first, func_log_destroyed);
  g_assert_true (parley_data_channel_send_string (ends.local, "one", NULL));
  WAIT_UNTIL (func_log_count (first) == 1);

  /* Replacing frees the old data at once; later messages go to the new one. */
  parley_data_channel_set_message_func (ends.remote, log_message_func, second,
                                        func_log_destroyed);
  g_assert_cmpuint (first->destroyed, ==, 1);
  g_assert_true (parley_data_channel_send_string (ends.local, "two", NULL));
  WAIT_UNTIL (func_log_count (second) == 1);
  g_assert_cmpstr (g_ptr_array_index (second->text, 0), ==, "two");
  g_assert_cmpuint (func_log_count (first), ==, 1);
  g_assert_cmpstr (g_ptr_array_index (first->text, 0), ==, "one");

  /* A message that arrives while the channel is unbound is not handed on. */
  g_signal_connect (remote, "on-message-string", G_CALLBACK (count_raw_cb), &raw_count);
  parley_data_channel_bind (ends.remote, NULL);
  g_assert_true (parley_data_channel_send_string (ends.local, "unbound", NULL));
  WAIT_UNTIL (g_atomic_int_get (&raw_count) == 1);
  g_assert_cmpuint (func_log_count (second), ==, 1);

  /* The function stays set across a bind, and goes with the channel. */
  parley_data_channel_bind (ends.remote, remote);
  WAIT_UNTIL (parley_data_channel_get_state (ends.remote) == PARLEY_DATA_CHANNEL_STATE_OPEN);
  g_assert_true (parley_data_channel_send_string (ends.local, "three", NULL));
  WAIT_UNTIL (func_log_count (second) == 2);
  g_assert_cmpstr (g_ptr_array_index (second->text, 1), ==, "three");
  g_assert_cmpint (g_atomic_int_get (&raw_count), ==, 2);
  g_signal_handlers_disconnect_by_func (remote, count_raw_cb, &raw_count);
  g_assert_cmpuint (second->destroyed, ==, 0);
  g_assert_cmpuint (ends.remote_rec->text->len, ==, 0);
  ends_clear (&ends);
  g_assert_cmpuint (second->destroyed, ==, 1);
  g_assert_cmpuint (first->destroyed, ==, 1);

  func_log_free (first);
  func_log_free (second);
  pair_free (pair);
}

/* Sends from a thread of its own, as a message function would. */
typedef struct {
  ParleyDataChannel *channel;
  gboolean           sent;
  GError            *error;
} OtherThreadSend;

static gpointer
send_from_other_thread (gpointer data)
{
  OtherThreadSend *send = data;
  g_autoptr(GBytes) payload = g_bytes_new_static ("other thread", 12);

  send->sent = parley_data_channel_send_bytes (send->channel, payload, &send->error);
  return NULL;
}

static void
test_send_from_other_thread (void)
{
  g_autoptr(GObject) local = NULL;
  g_autoptr(GObject) remote = NULL;
  OtherThreadSend send = { 0 };
  Ends ends;
  Pair *pair = open_ends (&ends, "threads", &local, &remote);

  send.channel = ends.local;
  g_thread_join (g_thread_new ("sender", send_from_other_thread, &send));
  g_assert_no_error (send.error);
  g_assert_true (send.sent);
  WAIT_UNTIL (ends.remote_rec->binary->len == 1);

  /* Unbound, it refuses from another thread too. */
  parley_data_channel_bind (ends.local, NULL);
  send.sent = TRUE;
  g_thread_join (g_thread_new ("sender", send_from_other_thread, &send));
  g_assert_false (send.sent);
  g_assert_error (send.error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&send.error);

  ends_clear (&ends);
  pair_free (pair);
}

static void
test_properties (void)
{
  g_autoptr(ParleyDataChannel) channel = parley_data_channel_new ("props", FALSE);
  g_autofree char *label = NULL;
  gboolean reliable = TRUE;
  ParleyDataChannelState state = PARLEY_DATA_CHANNEL_STATE_CLOSED;
  guint64 amount = 1;

  g_object_get (channel, "label", &label, "reliable", &reliable, "state", &state,
                "buffered-amount", &amount, NULL);
  g_assert_cmpstr (label, ==, "props");
  g_assert_false (reliable);
  g_assert_cmpint (state, ==, PARLEY_DATA_CHANNEL_STATE_CONNECTING);
  g_assert_cmpuint (amount, ==, 0);
  g_assert_cmpstr (parley_data_channel_get_label (channel), ==, "props");
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  main_thread = g_thread_self ();

  g_test_add_func ("/data-channel/properties", test_properties);
  g_test_add_func ("/data-channel/messages-both-ways", test_messages_both_ways);
  g_test_add_func ("/data-channel/unordered-options", test_unordered_options_reach_far_side);
  g_test_add_func ("/data-channel/send-refused", test_send_refused);
  g_test_add_func ("/data-channel/rebind-after-restart", test_rebind_after_restart);
  g_test_add_func ("/data-channel/close", test_close);
  g_test_add_func ("/data-channel/bind-from-streaming-thread", test_bind_from_streaming_thread);
  g_test_add_func ("/data-channel/reopen-after-far-close", test_reopen_after_far_close);
  g_test_add_func ("/data-channel/buffered-amount", test_buffered_amount);
  g_test_add_func ("/data-channel/message-func-echo", test_message_func_echo);
  g_test_add_func ("/data-channel/message-func-replaced-and-disposed",
                   test_message_func_replaced_and_disposed);
  g_test_add_func ("/data-channel/send-from-other-thread", test_send_from_other_thread);

  return g_test_run ();
}
