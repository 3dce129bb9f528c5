/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-peer-stats"

#include <math.h>

#define GST_USE_UNSTABLE_API
#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include "parley-engine-test.h"
#include "parley-peer-stats.h"

#define TIMEOUT_MS 10000
#define UNKNOWN_COUNT G_MAXUINT64

/* Adds one stats entry, keyed by @id, to a get-stats reply. */
static void
add_stats (GstStructure       *reply,
           const char         *id,
           GstWebRTCStatsType  type,
           double              timestamp_ms,
           const char         *first_field,
           ...)
{
  GstStructure *s = gst_structure_new ("stats",
                                       "type", GST_TYPE_WEBRTC_STATS_TYPE, type,
                                       "timestamp", G_TYPE_DOUBLE, timestamp_ms,
                                       "id", G_TYPE_STRING, id,
                                       NULL);
  va_list args;

  if (first_field != NULL) {
    va_start (args, first_field);
    gst_structure_set_valist (s, first_field, args);
    va_end (args);
  }
  gst_structure_set (reply, id, GST_TYPE_STRUCTURE, s, NULL);
  gst_structure_free (s);
}

typedef struct {
  double  timestamp_ms;
  guint64 audio_bytes_in;
  guint64 video_bytes_in;
  guint64 audio_bytes_out;
  guint64 video_bytes_out;
  guint64 audio_packets_in;
  guint64 video_packets_in;
  gint64  audio_lost;
  gint64  video_lost;
} Sample;

#define LOCAL_ID "ice-candidate-local_1_192.0.2.10_5000"
#define REMOTE_ID "ice-candidate-remote_1_2001:db8::1_6000"

/* A reply shaped like the one of webrtcbin 1.22.0 for an audio + video call,
 * with its swapped candidate type labels. */
static GstStructure *
make_reply (const Sample *sample)
{
  GstStructure *reply = gst_structure_new_empty ("application/x-webrtc-stats");
  double ts = sample->timestamp_ms;

  add_stats (reply, "peer-connection-stats", GST_WEBRTC_STATS_PEER_CONNECTION, ts,
             "data-channels-opened", G_TYPE_UINT, 0, NULL);
  add_stats (reply, "codec-stats-sink_0", GST_WEBRTC_STATS_CODEC, ts,
             "mime-type", G_TYPE_STRING, "audio/OPUS", "clock-rate", G_TYPE_UINT, 48000,
             "payload-type", G_TYPE_UINT, 96, NULL);
  add_stats (reply, "codec-stats-sink_1", GST_WEBRTC_STATS_CODEC, ts,
             "mime-type", G_TYPE_STRING, "video/VP8", "clock-rate", G_TYPE_UINT, 90000, NULL);
  /* 1.22.0 knows no mime type for the codecs of received streams. */
  add_stats (reply, "codec-stats-src_0", GST_WEBRTC_STATS_CODEC, ts, NULL);
  add_stats (reply, "codec-stats-src_1", GST_WEBRTC_STATS_CODEC, ts, NULL);

  add_stats (reply, "rtp-inbound-stream-stats_1", GST_WEBRTC_STATS_INBOUND_RTP, ts,
             "kind", G_TYPE_STRING, "audio", "codec-id", G_TYPE_STRING, "codec-stats-src_0",
             "bytes-received", G_TYPE_UINT64, sample->audio_bytes_in,
             "packets-received", G_TYPE_UINT64, sample->audio_packets_in,
             "packets-lost", G_TYPE_INT64, sample->audio_lost,
             "jitter", G_TYPE_DOUBLE, 0.004, NULL);
  add_stats (reply, "rtp-inbound-stream-stats_2", GST_WEBRTC_STATS_INBOUND_RTP, ts,
             "kind", G_TYPE_STRING, "video", "codec-id", G_TYPE_STRING, "codec-stats-src_1",
             "bytes-received", G_TYPE_UINT64, sample->video_bytes_in,
             "packets-received", G_TYPE_UINT64, sample->video_packets_in,
             "packets-lost", G_TYPE_INT64, sample->video_lost,
             "jitter", G_TYPE_DOUBLE, 0.010, NULL);
  /* What the far side says it sent must not count as received or sent here. */
  add_stats (reply, "rtp-remote-outbound-stream-stats_1", GST_WEBRTC_STATS_REMOTE_OUTBOUND_RTP,
             ts, "bytes-sent", G_TYPE_UINT, 777777, NULL);

  add_stats (reply, "rtp-outbound-stream-stats_3", GST_WEBRTC_STATS_OUTBOUND_RTP, ts,
             "kind", G_TYPE_STRING, "audio", "codec-id", G_TYPE_STRING, "codec-stats-sink_0",
             "bytes-sent", G_TYPE_UINT64, sample->audio_bytes_out, NULL);
  add_stats (reply, "rtp-outbound-stream-stats_4", GST_WEBRTC_STATS_OUTBOUND_RTP, ts,
             "kind", G_TYPE_STRING, "video", "codec-id", G_TYPE_STRING, "codec-stats-sink_1",
             "bytes-sent", G_TYPE_UINT64, sample->video_bytes_out, NULL);
  add_stats (reply, "rtp-remote-inbound-stream-stats_3", GST_WEBRTC_STATS_REMOTE_INBOUND_RTP, ts,
             "round-trip-time", G_TYPE_DOUBLE, 0.020, "packets-lost", G_TYPE_INT64,
             (gint64) -1, NULL);
  add_stats (reply, "rtp-remote-inbound-stream-stats_4", GST_WEBRTC_STATS_REMOTE_INBOUND_RTP, ts,
             "round-trip-time", G_TYPE_DOUBLE, 0.030, NULL);

  /* The local candidate is labelled remote and the other way round. */
  add_stats (reply, LOCAL_ID, GST_WEBRTC_STATS_REMOTE_CANDIDATE, ts,
             "candidate-type", G_TYPE_STRING, "srflx", "address", G_TYPE_STRING, "192.0.2.10",
             "port", G_TYPE_UINT, 5000, "protocol", G_TYPE_STRING, "udp",
             "url", G_TYPE_STRING, "", NULL);
  add_stats (reply, REMOTE_ID, GST_WEBRTC_STATS_LOCAL_CANDIDATE, ts,
             "candidate-type", G_TYPE_STRING, "relay", "address", G_TYPE_STRING, "2001:db8::1",
             "port", G_TYPE_UINT, 6000, "protocol", G_TYPE_STRING, "udp", NULL);
  add_stats (reply, "ice-candidate-pair_webrtcnicetransport0", GST_WEBRTC_STATS_CANDIDATE_PAIR, ts,
             "local-candidate-id", G_TYPE_STRING, LOCAL_ID,
             "remote-candidate-id", G_TYPE_STRING, REMOTE_ID, NULL);
  add_stats (reply, "transport-stats_webrtcdtlstransport0", GST_WEBRTC_STATS_TRANSPORT, ts,
             "selected-candidate-pair-id", G_TYPE_STRING,
             "ice-candidate-pair_webrtcnicetransport0", NULL);
  return reply;
}

static const Sample first_sample = {
  .timestamp_ms = 1000,
  .audio_bytes_in = 10000, .video_bytes_in = 20000,
  .audio_bytes_out = 5000, .video_bytes_out = 5000,
  .audio_packets_in = 200, .video_packets_in = 300,
  .audio_lost = 2, .video_lost = 3,
};

static void
test_parse_full_reply (void)
{
  g_autoptr(GstStructure) reply = make_reply (&first_sample);
  g_autoptr(ParleyPeerStats) stats = parley_peer_stats_new ();

  parley_peer_stats_update_from_structure (stats, reply, NULL);

  g_assert_cmpint (stats->timestamp_us, ==, 1000 * 1000);
  g_assert_cmpuint (stats->bytes_received, ==, 10000 + 20000);
  g_assert_cmpuint (stats->bytes_sent, ==, 5000 + 5000);
  g_assert_cmpuint (stats->packets_received, ==, 200 + 300);
  g_assert_cmpint (stats->packets_lost, ==, 2 + 3);
  /* Audio jitter wins over video's; the round trip is the mean of both reports. */
  g_assert_cmpfloat_with_epsilon (stats->jitter_ms, 4.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (stats->rtt_ms, 25.0, 1e-9);
  g_assert_cmpstr (stats->audio_codec, ==, "opus");
  g_assert_cmpstr (stats->video_codec, ==, "VP8");
  /* Following the type labels would give "relay" for the local side. */
  g_assert_cmpstr (stats->local_candidate_type, ==, "srflx");
  g_assert_cmpstr (stats->remote_candidate_type, ==, "relay");
  g_assert_cmpstr (stats->local_address, ==, "192.0.2.10:5000");
  g_assert_cmpstr (stats->remote_address, ==, "[2001:db8::1]:6000");
  /* No previous sample: no rates. */
  g_assert_cmpfloat (stats->bitrate_in_kbps, ==, -1);
  g_assert_cmpfloat (stats->bitrate_out_kbps, ==, -1);
  g_assert_cmpfloat (stats->packet_loss, ==, -1);
}

static void
test_rates_against_previous (void)
{
  Sample later = first_sample;
  g_autoptr(GstStructure) first_reply = make_reply (&first_sample);
  g_autoptr(GstStructure) later_reply = NULL;
  g_autoptr(ParleyPeerStats) previous = parley_peer_stats_new ();
  g_autoptr(ParleyPeerStats) stats = parley_peer_stats_new ();

  /* Two seconds later: 250000 bytes more in (1 Mbit/s), 125000 more out
   * (500 kbit/s); 90 packets received and 10 lost since (10 %). */
  later.timestamp_ms = 3000;
  later.audio_bytes_in += 50000;
  later.video_bytes_in += 200000;
  later.audio_bytes_out += 25000;
  later.video_bytes_out += 100000;
  later.audio_packets_in += 40;
  later.video_packets_in += 50;
  later.audio_lost += 4;
  later.video_lost += 6;
  later_reply = make_reply (&later);

  parley_peer_stats_update_from_structure (previous, first_reply, NULL);
  parley_peer_stats_update_from_structure (stats, later_reply, previous);

  g_assert_cmpfloat_with_epsilon (stats->bitrate_in_kbps, 1000.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (stats->bitrate_out_kbps, 500.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (stats->packet_loss, 0.1, 1e-9);

  /* Counters that went backwards (a new connection) give no rate. */
  parley_peer_stats_update_from_structure (previous, later_reply, NULL);
  previous->timestamp_us = 0;
  parley_peer_stats_update_from_structure (stats, first_reply, previous);
  g_assert_cmpfloat (stats->bitrate_in_kbps, ==, -1);
  g_assert_cmpfloat (stats->bitrate_out_kbps, ==, -1);
  g_assert_cmpfloat (stats->packet_loss, ==, -1);

  /* Nor does a sample that is not older. */
  parley_peer_stats_update_from_structure (previous, first_reply, NULL);
  parley_peer_stats_update_from_structure (stats, first_reply, previous);
  g_assert_cmpfloat (stats->bitrate_in_kbps, ==, -1);
}

static void
assert_all_unknown (const ParleyPeerStats *stats)
{
  g_autoptr(JsonObject) json = parley_peer_stats_to_json (stats);

  g_assert_cmpfloat (stats->rtt_ms, ==, -1);
  g_assert_cmpfloat (stats->jitter_ms, ==, -1);
  g_assert_cmpfloat (stats->packet_loss, ==, -1);
  g_assert_cmpint (stats->packets_lost, ==, -1);
  g_assert_cmpfloat (stats->bitrate_in_kbps, ==, -1);
  g_assert_cmpfloat (stats->bitrate_out_kbps, ==, -1);
  g_assert_cmpuint (stats->bytes_received, ==, UNKNOWN_COUNT);
  g_assert_cmpuint (stats->bytes_sent, ==, UNKNOWN_COUNT);
  g_assert_null (stats->audio_codec);
  g_assert_null (stats->video_codec);
  g_assert_null (stats->local_candidate_type);
  g_assert_null (stats->remote_candidate_type);
  g_assert_null (stats->local_address);
  g_assert_null (stats->remote_address);
  g_assert_cmpuint (json_object_get_size (json), ==, 0);
}

static void
test_hostile_replies (void)
{
  g_autoptr(ParleyPeerStats) stats = parley_peer_stats_new ();
  g_autoptr(ParleyPeerStats) previous = parley_peer_stats_new ();
  g_autoptr(GstStructure) empty = gst_structure_new_empty ("application/x-webrtc-stats");
  g_autoptr(GstStructure) odd = gst_structure_new_empty ("application/x-webrtc-stats");
  g_autoptr(GstStructure) untyped = gst_structure_new_empty ("something-else");
  GstStructure *no_type = gst_structure_new ("stats", "bytes-received", G_TYPE_UINT64,
                                             (guint64) 5, NULL);

  assert_all_unknown (stats);
  parley_peer_stats_update_from_structure (stats, empty, NULL);
  assert_all_unknown (stats);

  /* Every field of the wrong type, ids pointing nowhere or at non-structures. */
  gst_structure_set (odd, "a-number", G_TYPE_INT, 3, "a-string", G_TYPE_STRING, "x", NULL);
  add_stats (odd, "in", GST_WEBRTC_STATS_INBOUND_RTP, 1000,
             "kind", G_TYPE_INT, 1, "codec-id", G_TYPE_INT, 7,
             "bytes-received", G_TYPE_STRING, "12",
             "packets-received", G_TYPE_BOOLEAN, TRUE,
             "packets-lost", G_TYPE_INT64, (gint64) -1,
             "jitter", G_TYPE_DOUBLE, NAN, NULL);
  add_stats (odd, "in2", GST_WEBRTC_STATS_INBOUND_RTP, 1000,
             "codec-id", G_TYPE_STRING, "nowhere", "jitter", G_TYPE_DOUBLE, -3.0,
             "bytes-received", G_TYPE_DOUBLE, 12.0, NULL);
  add_stats (odd, "out", GST_WEBRTC_STATS_OUTBOUND_RTP, 1000,
             "bytes-sent", G_TYPE_INT64, (gint64) -5, "codec-id", G_TYPE_STRING, "a-number",
             NULL);
  add_stats (odd, "codec", GST_WEBRTC_STATS_CODEC, 1000,
             "mime-type", G_TYPE_INT, 5, NULL);
  add_stats (odd, "codec2", GST_WEBRTC_STATS_CODEC, 1000,
             "mime-type", G_TYPE_STRING, "audio/", NULL);
  add_stats (odd, "rin", GST_WEBRTC_STATS_REMOTE_INBOUND_RTP, 1000,
             "round-trip-time", G_TYPE_STRING, "0.1", NULL);
  add_stats (odd, "rin2", GST_WEBRTC_STATS_REMOTE_INBOUND_RTP, 1000,
             "round-trip-time", G_TYPE_DOUBLE, INFINITY, NULL);
  add_stats (odd, "transport", GST_WEBRTC_STATS_TRANSPORT, 1000,
             "selected-candidate-pair-id", G_TYPE_STRING, "a-string", NULL);
  add_stats (odd, "pair", GST_WEBRTC_STATS_CANDIDATE_PAIR, 1000,
             "local-candidate-id", G_TYPE_INT, 4,
             "remote-candidate-id", G_TYPE_STRING, "missing", NULL);
  add_stats (odd, "ice-candidate-local_x", GST_WEBRTC_STATS_LOCAL_CANDIDATE, 1000,
             "candidate-type", G_TYPE_INT, 1, "address", G_TYPE_INT, 2, NULL);
  gst_structure_set (odd, "no-type", GST_TYPE_STRUCTURE, no_type, NULL);
  gst_structure_free (no_type);
  add_stats (odd, "string-type", 0, 1000, NULL);
  gst_structure_set (odd, "string-type", G_TYPE_STRING, "inbound-rtp", NULL);

  previous->timestamp_us = 0;
  previous->bytes_received = 1;
  previous->packets_lost = 0;
  previous->packets_received = 0;
  parley_peer_stats_update_from_structure (stats, odd, previous);
  assert_all_unknown (stats);

  /* A structure of another name is read the same way, and gives nothing here. */
  parley_peer_stats_update_from_structure (stats, untyped, NULL);
  assert_all_unknown (stats);
}

static void
test_odd_candidate (void)
{
  g_autoptr(GstStructure) reply = gst_structure_new_empty ("application/x-webrtc-stats");
  g_autoptr(ParleyPeerStats) stats = parley_peer_stats_new ();

  /* A candidate whose port is not a number, and no pair: found by id. */
  add_stats (reply, "ice-candidate-local_1", GST_WEBRTC_STATS_REMOTE_CANDIDATE, 5,
             "candidate-type", G_TYPE_STRING, "host", "address", G_TYPE_STRING, "10.0.0.1",
             "port", G_TYPE_STRING, "80", NULL);
  add_stats (reply, "ice-candidate-remote_1", GST_WEBRTC_STATS_LOCAL_CANDIDATE, 5,
             "candidate-type", G_TYPE_STRING, "prflx", "port", G_TYPE_UINT, 9, NULL);
  parley_peer_stats_update_from_structure (stats, reply, NULL);
  g_assert_cmpstr (stats->local_candidate_type, ==, "host");
  g_assert_cmpstr (stats->local_address, ==, "10.0.0.1");
  g_assert_cmpstr (stats->remote_candidate_type, ==, "prflx");
  g_assert_null (stats->remote_address);
}

static void
test_json_copy_and_override (void)
{
  Sample later = first_sample;
  g_autoptr(GstStructure) first_reply = make_reply (&first_sample);
  g_autoptr(GstStructure) later_reply = NULL;
  g_autoptr(ParleyPeerStats) previous = parley_peer_stats_new ();
  g_autoptr(ParleyPeerStats) stats = parley_peer_stats_new ();
  g_autoptr(ParleyPeerStats) copy = NULL;
  g_autoptr(JsonObject) json = NULL;
  const char *members[] = {
    "rttMs", "jitterMs", "packetLoss", "packetsLost", "bitrateInKbps", "bitrateOutKbps",
    "bytesReceived", "bytesSent", "audioCodec", "videoCodec", "localCandidateType",
    "remoteCandidateType", "localAddress", "remoteAddress",
  };

  later.timestamp_ms = 2000;
  later.audio_bytes_in += 1000;
  later.audio_bytes_out += 1000;
  later.audio_packets_in += 10;
  later_reply = make_reply (&later);
  parley_peer_stats_update_from_structure (previous, first_reply, NULL);
  parley_peer_stats_update_from_structure (stats, later_reply, previous);

  parley_peer_stats_set_candidate_types (stats, "relay", NULL);
  g_assert_cmpstr (stats->local_candidate_type, ==, "relay");
  g_assert_cmpstr (stats->remote_candidate_type, ==, "relay");
  parley_peer_stats_set_candidate_types (stats, NULL, "host");
  g_assert_cmpstr (stats->local_candidate_type, ==, "relay");
  g_assert_cmpstr (stats->remote_candidate_type, ==, "host");

  copy = g_boxed_copy (PARLEY_TYPE_PEER_STATS, stats);
  g_assert_true (copy->audio_codec != stats->audio_codec);
  g_assert_cmpstr (copy->audio_codec, ==, stats->audio_codec);
  g_assert_cmpstr (copy->remote_address, ==, stats->remote_address);
  g_assert_cmpuint (copy->bytes_received, ==, stats->bytes_received);

  json = parley_peer_stats_to_json (copy);
  g_assert_cmpuint (json_object_get_size (json), ==, G_N_ELEMENTS (members));
  for (guint i = 0; i < G_N_ELEMENTS (members); i++)
    g_assert_true (json_object_has_member (json, members[i]));
  g_assert_cmpint (json_object_get_int_member (json, "bytesReceived"), ==,
                   (gint64) copy->bytes_received);
  g_assert_cmpint (json_object_get_int_member (json, "packetsLost"), ==, 5);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (json, "rttMs"), 25.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (json, "packetLoss"), 0.0, 1e-9);
  g_assert_cmpstr (json_object_get_string_member (json, "videoCodec"), ==, "VP8");
  g_assert_cmpstr (json_object_get_string_member (json, "localCandidateType"), ==, "relay");
  g_assert_cmpstr (json_object_get_string_member (json, "remoteAddress"), ==,
                   "[2001:db8::1]:6000");
}

/* A real audio call between two webrtcbins in this process. */

#define AUDIO_SRC \
  "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! " \
  "rtpopuspay pt=96 ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS," \
  "payload=96,clock-rate=48000\""

#define AUDIO_SINK "queue ! rtpopusdepay ! opusdec ! fakesink name=sink async=false sync=false"

typedef struct {
  GstElement *pipe;
  GstElement *webrtc;
  gint        decoded;   /* atomic: decoded audio buffers */
} Side;

static gboolean
set_true_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static GstPadProbeReturn
decoded_probe_cb (GstPad          *pad,
                  GstPadProbeInfo *info,
                  gpointer         data)
{
  Side *side = data;

  g_atomic_int_inc (&side->decoded);
  g_main_context_wakeup (NULL);
  return GST_PAD_PROBE_OK;
}

static void
pad_added_cb (GstElement *webrtc,
              GstPad     *pad,
              Side       *side)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GstPad) sink_pad = NULL;
  g_autoptr(GstPad) probe_pad = NULL;
  g_autoptr(GstElement) sink = NULL;
  GstElement *bin;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  bin = gst_parse_bin_from_description (AUDIO_SINK, TRUE, &error);
  g_assert_no_error (error);
  gst_bin_add (GST_BIN (side->pipe), bin);
  sink = gst_bin_get_by_name (GST_BIN (bin), "sink");
  probe_pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (probe_pad, GST_PAD_PROBE_TYPE_BUFFER, decoded_probe_cb, side, NULL);
  gst_element_sync_state_with_parent (bin);
  sink_pad = gst_element_get_static_pad (bin, "sink");
  g_assert_cmpint (gst_pad_link (pad, sink_pad), ==, GST_PAD_LINK_OK);
}

static void
on_ice_candidate_cb (GstElement *webrtc,
                     guint       mline,
                     const char *candidate,
                     Side       *other)
{
  g_signal_emit_by_name (other->webrtc, "add-ice-candidate", mline, candidate);
}

static void
side_init (Side       *side,
           const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GstPad) src_pad = NULL;
  g_autoptr(GstPad) sink_pad = NULL;
  GstElement *source;

  side->pipe = gst_pipeline_new (name);
  side->webrtc = gst_element_factory_make ("webrtcbin", NULL);
  g_assert_nonnull (side->webrtc);
  g_object_set (side->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, NULL);
  parley_engine_test_disable_upnp (side->webrtc);
  gst_bin_add (GST_BIN (side->pipe), side->webrtc);
  g_signal_connect (side->webrtc, "pad-added", G_CALLBACK (pad_added_cb), side);

  source = gst_parse_bin_from_description (AUDIO_SRC, TRUE, &error);
  g_assert_no_error (error);
  gst_bin_add (GST_BIN (side->pipe), source);
  src_pad = gst_element_get_static_pad (source, "src");
  sink_pad = gst_element_request_pad_simple (side->webrtc, "sink_%u");
  g_assert_cmpint (gst_pad_link (src_pad, sink_pad), ==, GST_PAD_LINK_OK);
}

static void
negotiate (Side *offerer,
           Side *answerer)
{
  GstWebRTCSessionDescription *offer, *answer;

  offer = parley_engine_test_create_description (offerer->webrtc, "create-offer", "offer");
  parley_engine_test_set_description (offerer->webrtc, "set-local-description", offer);
  parley_engine_test_set_description (answerer->webrtc, "set-remote-description", offer);
  answer = parley_engine_test_create_description (answerer->webrtc, "create-answer", "answer");
  parley_engine_test_set_description (answerer->webrtc, "set-local-description", answer);
  parley_engine_test_set_description (offerer->webrtc, "set-remote-description", answer);
  gst_webrtc_session_description_free (offer);
  gst_webrtc_session_description_free (answer);
}

static void
sample_stats (Side                  *side,
              ParleyPeerStats       *stats,
              const ParleyPeerStats *previous)
{
  GstPromise *promise = gst_promise_new ();
  const GstStructure *reply;

  g_signal_emit_by_name (side->webrtc, "get-stats", NULL, promise);
  g_assert_cmpint (gst_promise_wait (promise), ==, GST_PROMISE_RESULT_REPLIED);
  reply = gst_promise_get_reply (promise);
  g_assert_nonnull (reply);
  parley_peer_stats_update_from_structure (stats, reply, previous);
  gst_promise_unref (promise);
}

static void
test_real_audio_session (void)
{
  Side a = { 0 }, b = { 0 };
  g_autoptr(ParleyPeerStats) first = parley_peer_stats_new ();
  g_autoptr(ParleyPeerStats) second = parley_peer_stats_new ();
  gboolean timed_out = FALSE;
  gboolean interval_over = FALSE;
  guint timeout_id;

  side_init (&a, "a");
  side_init (&b, "b");
  g_signal_connect (a.webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate_cb), &b);
  g_signal_connect (b.webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate_cb), &a);
  g_assert_cmpint (gst_element_set_state (a.pipe, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  g_assert_cmpint (gst_element_set_state (b.pipe, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  negotiate (&a, &b);

  /* Wait until both sides decode audio. */
  timeout_id = g_timeout_add (TIMEOUT_MS, set_true_cb, &timed_out);
  while ((g_atomic_int_get (&a.decoded) == 0 || g_atomic_int_get (&b.decoded) == 0) &&
         !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (timed_out);
  g_source_remove (timeout_id);

  sample_stats (&a, first, NULL);

  /* The sampling interval of the rates. */
  g_timeout_add (1500, set_true_cb, &interval_over);
  while (!interval_over)
    g_main_context_iteration (NULL, TRUE);

  sample_stats (&a, second, first);
  g_test_message ("bytes in %" G_GUINT64_FORMAT " out %" G_GUINT64_FORMAT
                  ", %.1f/%.1f kbit/s, rtt %.2f ms, jitter %.2f ms, loss %.3f, %s %s -> %s %s",
                  second->bytes_received, second->bytes_sent, second->bitrate_in_kbps,
                  second->bitrate_out_kbps, second->rtt_ms, second->jitter_ms,
                  second->packet_loss, second->local_candidate_type, second->local_address,
                  second->remote_candidate_type, second->remote_address);

  g_assert_cmpuint (second->bytes_received, >, 0);
  g_assert_cmpuint (second->bytes_received, !=, UNKNOWN_COUNT);
  g_assert_cmpuint (second->bytes_sent, >, 0);
  g_assert_cmpuint (second->bytes_sent, !=, UNKNOWN_COUNT);
  g_assert_cmpuint (second->bytes_received, >, first->bytes_received);
  g_assert_cmpstr (second->audio_codec, ==, "opus");
  g_assert_null (second->video_codec);
  g_assert_cmpstr (second->local_candidate_type, ==, "host");
  g_assert_cmpstr (second->remote_candidate_type, ==, "host");
  g_assert_nonnull (second->local_address);
  g_assert_nonnull (second->remote_address);
  g_assert_cmpstr (second->local_address, !=, second->remote_address);
  /* Opus at its default 64 kbit/s flows both ways. The bounds are loose: on
   * a loaded machine (or under a sanitizer) the live source falls behind and
   * catches up in bursts. */
  g_assert_cmpfloat (second->bitrate_in_kbps, >, 0);
  g_assert_cmpfloat (second->bitrate_in_kbps, <, 1000);
  g_assert_cmpfloat (second->bitrate_out_kbps, >, 0);
  g_assert_cmpfloat (second->bitrate_out_kbps, <, 1000);
  g_assert_cmpfloat (second->packet_loss, >=, 0);
  g_assert_cmpfloat (second->packet_loss, <=, 1);
  g_assert_cmpfloat (second->jitter_ms, >=, 0);
  g_assert_cmpint (second->packets_lost, >=, 0);

  gst_element_set_state (a.pipe, GST_STATE_NULL);
  gst_element_set_state (b.pipe, GST_STATE_NULL);
  gst_object_unref (a.pipe);
  gst_object_unref (b.pipe);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/peer-stats/parse-full-reply", test_parse_full_reply);
  g_test_add_func ("/peer-stats/rates-against-previous", test_rates_against_previous);
  g_test_add_func ("/peer-stats/hostile-replies", test_hostile_replies);
  g_test_add_func ("/peer-stats/odd-candidate", test_odd_candidate);
  g_test_add_func ("/peer-stats/json-copy-and-override", test_json_copy_and_override);
  g_test_add_func ("/peer-stats/real-audio-session", test_real_audio_session);

  return g_test_run ();
}
