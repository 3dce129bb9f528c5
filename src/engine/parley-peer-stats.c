/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-peer-stats"

#include <math.h>

#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>

#include "parley-peer-stats.h"

#define UNKNOWN_COUNT G_MAXUINT64

G_DEFINE_BOXED_TYPE (ParleyPeerStats, parley_peer_stats,
                     parley_peer_stats_copy, parley_peer_stats_free)

/* Every value of a `get-stats` reply is read with a check of its type: the
 * reply is built by code that changed between releases (packets-lost was an
 * int, then an int64; bytes-sent is a uint in remote stats and a uint64 in
 * local ones), and it is never turned into a string (1.22.0 can crash
 * printing relay candidate stats). */

static const GstStructure *
get_structure (const GstStructure *s,
               const char         *field)
{
  const GValue *value;

  if (field == NULL)
    return NULL;
  value = gst_structure_get_value (s, field);
  if (value == NULL || !GST_VALUE_HOLDS_STRUCTURE (value))
    return NULL;
  return gst_value_get_structure (value);
}

static const char *
get_string (const GstStructure *s,
            const char         *field)
{
  const GValue *value = gst_structure_get_value (s, field);

  if (value == NULL || !G_VALUE_HOLDS_STRING (value))
    return NULL;
  return g_value_get_string (value);
}

/* Reads any numeric field as a double; FALSE if missing, not a number or not finite. */
static gboolean
get_number (const GstStructure *s,
            const char         *field,
            double             *out)
{
  const GValue *value = gst_structure_get_value (s, field);
  double number;

  if (value == NULL)
    return FALSE;
  switch (G_VALUE_TYPE (value)) {
  case G_TYPE_INT:
    number = g_value_get_int (value);
    break;
  case G_TYPE_UINT:
    number = g_value_get_uint (value);
    break;
  case G_TYPE_LONG:
    number = g_value_get_long (value);
    break;
  case G_TYPE_ULONG:
    number = g_value_get_ulong (value);
    break;
  case G_TYPE_INT64:
    number = g_value_get_int64 (value);
    break;
  case G_TYPE_UINT64:
    number = g_value_get_uint64 (value);
    break;
  case G_TYPE_FLOAT:
    number = g_value_get_float (value);
    break;
  case G_TYPE_DOUBLE:
    number = g_value_get_double (value);
    break;
  default:
    return FALSE;
  }
  if (!isfinite (number))
    return FALSE;
  *out = number;
  return TRUE;
}

/* Reads a non-negative integer field of any integer type. */
static gboolean
get_count (const GstStructure *s,
           const char         *field,
           guint64            *out)
{
  const GValue *value = gst_structure_get_value (s, field);
  gint64 signed_value;

  if (value == NULL)
    return FALSE;
  switch (G_VALUE_TYPE (value)) {
  case G_TYPE_UINT:
    *out = g_value_get_uint (value);
    return TRUE;
  case G_TYPE_ULONG:
    *out = g_value_get_ulong (value);
    return TRUE;
  case G_TYPE_UINT64:
    *out = g_value_get_uint64 (value);
    return *out != UNKNOWN_COUNT;
  case G_TYPE_INT:
    signed_value = g_value_get_int (value);
    break;
  case G_TYPE_LONG:
    signed_value = g_value_get_long (value);
    break;
  case G_TYPE_INT64:
    signed_value = g_value_get_int64 (value);
    break;
  default:
    return FALSE;
  }
  /* webrtcbin reports -1 for values it does not know. */
  if (signed_value < 0)
    return FALSE;
  *out = (guint64) signed_value;
  return TRUE;
}

static gboolean
get_stats_type (const GstStructure *s,
                GstWebRTCStatsType *out)
{
  const GValue *value = gst_structure_get_value (s, "type");

  if (value == NULL)
    return FALSE;
  if (G_VALUE_HOLDS_ENUM (value))
    *out = g_value_get_enum (value);
  else if (G_VALUE_HOLDS_INT (value))
    *out = g_value_get_int (value);
  else
    return FALSE;
  return TRUE;
}

typedef enum {
  KIND_UNKNOWN,
  KIND_AUDIO,
  KIND_VIDEO,
} Kind;

static Kind
kind_from_string (const char *kind)
{
  if (kind == NULL)
    return KIND_UNKNOWN;
  if (g_str_has_prefix (kind, "audio"))
    return KIND_AUDIO;
  if (g_str_has_prefix (kind, "video"))
    return KIND_VIDEO;
  return KIND_UNKNOWN;
}

/* The kind of an RTP stream: its own "kind" (1.22) or its codec's mime type. */
static Kind
stream_kind (const GstStructure *reply,
             const GstStructure *stream)
{
  Kind kind = kind_from_string (get_string (stream, "kind"));
  const GstStructure *codec;

  if (kind != KIND_UNKNOWN)
    return kind;
  codec = get_structure (reply, get_string (stream, "codec-id"));
  if (codec == NULL)
    return KIND_UNKNOWN;
  return kind_from_string (get_string (codec, "mime-type"));
}

/* "audio/OPUS" → "opus", "video/vp8" → "VP8": the names browsers report. */
static char *
codec_name (const char *mime_type,
            Kind        kind)
{
  const char *slash = strchr (mime_type, '/');
  const char *name = slash != NULL ? slash + 1 : mime_type;

  if (*name == '\0')
    return NULL;
  return kind == KIND_AUDIO ? g_ascii_strdown (name, -1) : g_ascii_strup (name, -1);
}

static char *
format_address (const GstStructure *candidate)
{
  const char *address = get_string (candidate, "address");
  double port;

  if (address == NULL || *address == '\0')
    return NULL;
  if (!get_number (candidate, "port", &port) || port < 0 || port > 65535)
    return g_strdup (address);
  if (strchr (address, ':') != NULL)
    return g_strdup_printf ("[%s]:%u", address, (guint) port);
  return g_strdup_printf ("%s:%u", address, (guint) port);
}

static void
reset (ParleyPeerStats *stats)
{
  g_clear_pointer (&stats->audio_codec, g_free);
  g_clear_pointer (&stats->video_codec, g_free);
  g_clear_pointer (&stats->local_candidate_type, g_free);
  g_clear_pointer (&stats->remote_candidate_type, g_free);
  g_clear_pointer (&stats->local_address, g_free);
  g_clear_pointer (&stats->remote_address, g_free);
  stats->timestamp_us = g_get_monotonic_time ();
  stats->rtt_ms = -1;
  stats->jitter_ms = -1;
  stats->packet_loss = -1;
  stats->packets_lost = -1;
  stats->bitrate_in_kbps = -1;
  stats->bitrate_out_kbps = -1;
  stats->bytes_received = UNKNOWN_COUNT;
  stats->bytes_sent = UNKNOWN_COUNT;
  stats->packets_received = UNKNOWN_COUNT;
}

static void
add_count (guint64 *total,
           guint64  value)
{
  *total = *total == UNKNOWN_COUNT ? value : *total + value;
}

/* Where a codec was seen: a codec of a received stream names what we hear. */
enum {
  CODEC_OF_INBOUND,
  CODEC_OF_OUTBOUND,
  CODEC_UNREFERENCED,
};

typedef struct {
  GHashTable *codec_rank;       /* codec id → CODEC_OF_* + 1 */
  double      audio_jitter;
  double      video_jitter;
  double      rtt_sum;
  guint       rtt_count;
  gboolean    have_lost;
  guint64     lost;
  const char *pair_id;          /* From the transport's selected pair. */
  const char *first_pair_id;
  double      timestamp_ms;
} Scan;

static void
note_codec (Scan       *scan,
            const char *codec_id,
            int         rank)
{
  gpointer old;

  if (codec_id == NULL)
    return;
  old = g_hash_table_lookup (scan->codec_rank, codec_id);
  if (old == NULL || GPOINTER_TO_INT (old) - 1 > rank)
    g_hash_table_insert (scan->codec_rank, (gpointer) codec_id, GINT_TO_POINTER (rank + 1));
}

static void
scan_inbound (ParleyPeerStats    *stats,
              Scan               *scan,
              const GstStructure *reply,
              const GstStructure *s)
{
  guint64 count;
  double jitter;

  if (get_count (s, "bytes-received", &count))
    add_count (&stats->bytes_received, count);
  if (get_count (s, "packets-received", &count))
    add_count (&stats->packets_received, count);
  if (get_count (s, "packets-lost", &count)) {
    scan->lost += count;
    scan->have_lost = TRUE;
  }
  if (get_number (s, "jitter", &jitter) && jitter >= 0) {
    switch (stream_kind (reply, s)) {
    case KIND_AUDIO:
      scan->audio_jitter = MAX (scan->audio_jitter, jitter);
      break;
    case KIND_VIDEO:
    case KIND_UNKNOWN:
    default:
      scan->video_jitter = MAX (scan->video_jitter, jitter);
      break;
    }
  }
  note_codec (scan, get_string (s, "codec-id"), CODEC_OF_INBOUND);
}

static void
scan_one (ParleyPeerStats    *stats,
          Scan               *scan,
          const GstStructure *reply,
          const GstStructure *s)
{
  GstWebRTCStatsType type;
  guint64 count;
  double number;

  if (!get_stats_type (s, &type))
    return;
  if (scan->timestamp_ms < 0 && get_number (s, "timestamp", &number) && number >= 0)
    scan->timestamp_ms = number;

  switch (type) {
  case GST_WEBRTC_STATS_INBOUND_RTP:
    scan_inbound (stats, scan, reply, s);
    break;
  case GST_WEBRTC_STATS_OUTBOUND_RTP:
    if (get_count (s, "bytes-sent", &count))
      add_count (&stats->bytes_sent, count);
    note_codec (scan, get_string (s, "codec-id"), CODEC_OF_OUTBOUND);
    break;
  case GST_WEBRTC_STATS_REMOTE_INBOUND_RTP:
    /* A round trip of 0 means no receiver report has been matched yet. */
    if (get_number (s, "round-trip-time", &number) && number > 0) {
      scan->rtt_sum += number;
      scan->rtt_count++;
    }
    break;
  case GST_WEBRTC_STATS_TRANSPORT:
    if (scan->pair_id == NULL)
      scan->pair_id = get_string (s, "selected-candidate-pair-id");
    break;
  case GST_WEBRTC_STATS_CANDIDATE_PAIR:
    if (scan->first_pair_id == NULL)
      scan->first_pair_id = get_string (s, "id");
    break;
  case GST_WEBRTC_STATS_CODEC:
  case GST_WEBRTC_STATS_REMOTE_OUTBOUND_RTP:
  case GST_WEBRTC_STATS_PEER_CONNECTION:
  case GST_WEBRTC_STATS_DATA_CHANNEL:
  case GST_WEBRTC_STATS_STREAM:
  case GST_WEBRTC_STATS_CSRC:
  case GST_WEBRTC_STATS_LOCAL_CANDIDATE:
  case GST_WEBRTC_STATS_REMOTE_CANDIDATE:
  case GST_WEBRTC_STATS_CERTIFICATE:
  default:
    break;
  }
}

static void
pick_codecs (ParleyPeerStats    *stats,
             Scan               *scan,
             const GstStructure *reply)
{
  int audio_rank = G_MAXINT, video_rank = G_MAXINT;
  int n = gst_structure_n_fields (reply);

  for (int i = 0; i < n; i++) {
    const char *id = gst_structure_nth_field_name (reply, i);
    const GstStructure *s = get_structure (reply, id);
    GstWebRTCStatsType type;
    const char *mime_type;
    gpointer seen;
    int rank;
    Kind kind;

    if (s == NULL || !get_stats_type (s, &type) || type != GST_WEBRTC_STATS_CODEC)
      continue;
    mime_type = get_string (s, "mime-type");
    kind = kind_from_string (mime_type);
    if (kind == KIND_UNKNOWN)
      continue;
    seen = g_hash_table_lookup (scan->codec_rank, id);
    rank = seen != NULL ? GPOINTER_TO_INT (seen) - 1 : CODEC_UNREFERENCED;
    if (kind == KIND_AUDIO && rank < audio_rank) {
      g_free (stats->audio_codec);
      stats->audio_codec = codec_name (mime_type, kind);
      audio_rank = rank;
    } else if (kind == KIND_VIDEO && rank < video_rank) {
      g_free (stats->video_codec);
      stats->video_codec = codec_name (mime_type, kind);
      video_rank = rank;
    }
  }
}

/* The candidate stats with @prefix in their id, for replies without a pair. */
static const GstStructure *
find_candidate_by_prefix (const GstStructure *reply,
                          const char         *prefix)
{
  int n = gst_structure_n_fields (reply);

  for (int i = 0; i < n; i++) {
    const char *id = gst_structure_nth_field_name (reply, i);
    const GstStructure *s = get_structure (reply, id);

    if (s != NULL && g_str_has_prefix (id, prefix) && get_string (s, "candidate-type") != NULL)
      return s;
  }
  return NULL;
}

static void
read_candidate (const GstStructure  *candidate,
                char               **type,
                char               **address)
{
  const char *candidate_type;

  if (candidate == NULL)
    return;
  candidate_type = get_string (candidate, "candidate-type");
  if (candidate_type != NULL && *candidate_type != '\0')
    *type = g_strdup (candidate_type);
  *address = format_address (candidate);
}

static void
pick_candidates (ParleyPeerStats    *stats,
                 Scan               *scan,
                 const GstStructure *reply)
{
  const GstStructure *pair = get_structure (reply, scan->pair_id);
  const GstStructure *local = NULL;
  const GstStructure *remote = NULL;

  if (pair == NULL)
    pair = get_structure (reply, scan->first_pair_id);

  /* 1.22.0 labels local candidate stats as remote and the other way round,
   * but the ids are right: follow the pair's ids, never the type labels. */
  if (pair != NULL) {
    local = get_structure (reply, get_string (pair, "local-candidate-id"));
    remote = get_structure (reply, get_string (pair, "remote-candidate-id"));
  } else {
    local = find_candidate_by_prefix (reply, "ice-candidate-local");
    remote = find_candidate_by_prefix (reply, "ice-candidate-remote");
  }
  read_candidate (local, &stats->local_candidate_type, &stats->local_address);
  read_candidate (remote, &stats->remote_candidate_type, &stats->remote_address);
}

static void
compute_rates (ParleyPeerStats       *stats,
               const ParleyPeerStats *previous)
{
  gint64 elapsed_us;

  if (previous == NULL)
    return;
  elapsed_us = stats->timestamp_us - previous->timestamp_us;
  if (elapsed_us <= 0)
    return;

  /* Counters that went backwards belong to a new connection: no rate. */
  if (stats->bytes_received != UNKNOWN_COUNT && previous->bytes_received != UNKNOWN_COUNT &&
      stats->bytes_received >= previous->bytes_received)
    stats->bitrate_in_kbps = (stats->bytes_received - previous->bytes_received) * 8.0 * 1000.0 /
                             elapsed_us;
  if (stats->bytes_sent != UNKNOWN_COUNT && previous->bytes_sent != UNKNOWN_COUNT &&
      stats->bytes_sent >= previous->bytes_sent)
    stats->bitrate_out_kbps = (stats->bytes_sent - previous->bytes_sent) * 8.0 * 1000.0 /
                              elapsed_us;

  if (stats->packets_lost >= 0 && previous->packets_lost >= 0 &&
      stats->packets_received != UNKNOWN_COUNT && previous->packets_received != UNKNOWN_COUNT &&
      stats->packets_received >= previous->packets_received) {
    /* Late duplicates can make the loss count shrink; count that as no loss. */
    double lost = MAX (0, stats->packets_lost - previous->packets_lost);
    double received = stats->packets_received - previous->packets_received;

    stats->packet_loss = lost + received > 0 ? lost / (lost + received) : 0;
  }
}

/**
 * parley_peer_stats_new:
 *
 * Creates a sample with every value unknown.
 *
 * Returns: (transfer full): a new #ParleyPeerStats
 */
ParleyPeerStats *
parley_peer_stats_new (void)
{
  ParleyPeerStats *stats = g_new0 (ParleyPeerStats, 1);

  reset (stats);
  return stats;
}

/**
 * parley_peer_stats_copy:
 * @stats: a #ParleyPeerStats
 *
 * Returns: (transfer full): a deep copy of @stats
 */
ParleyPeerStats *
parley_peer_stats_copy (const ParleyPeerStats *stats)
{
  ParleyPeerStats *copy;

  g_return_val_if_fail (stats != NULL, NULL);

  copy = g_memdup2 (stats, sizeof *stats);
  copy->audio_codec = g_strdup (stats->audio_codec);
  copy->video_codec = g_strdup (stats->video_codec);
  copy->local_candidate_type = g_strdup (stats->local_candidate_type);
  copy->remote_candidate_type = g_strdup (stats->remote_candidate_type);
  copy->local_address = g_strdup (stats->local_address);
  copy->remote_address = g_strdup (stats->remote_address);
  return copy;
}

/**
 * parley_peer_stats_free:
 * @stats: (nullable): a #ParleyPeerStats
 *
 * Frees @stats and its strings.
 */
void
parley_peer_stats_free (ParleyPeerStats *stats)
{
  if (stats == NULL)
    return;
  g_free (stats->audio_codec);
  g_free (stats->video_codec);
  g_free (stats->local_candidate_type);
  g_free (stats->remote_candidate_type);
  g_free (stats->local_address);
  g_free (stats->remote_address);
  g_free (stats);
}

/**
 * parley_peer_stats_update_from_structure:
 * @stats: the sample to fill
 * @reply: the reply of webrtcbin's `get-stats` (application/x-webrtc-stats)
 * @previous: (nullable): the previous sample of the same connection
 *
 * Replaces every value of @stats with what @reply holds. Fields that are
 * missing or of an unexpected type stay unknown. The sample's time is the
 * time webrtcbin took the statistics at (monotonic), so rates do not depend
 * on how long the reply took to arrive.
 *
 * Bytes, packets and loss add up all RTP streams; jitter is that of the
 * received audio (video if there is none); the round trip is the mean of
 * what the receiver reports give; codecs are those of received streams,
 * else of sent ones; candidates are those of the selected pair.
 */
void
parley_peer_stats_update_from_structure (ParleyPeerStats       *stats,
                                         const GstStructure    *reply,
                                         const ParleyPeerStats *previous)
{
  Scan scan = {
    .audio_jitter = -1,
    .video_jitter = -1,
    .timestamp_ms = -1,
  };
  int n;

  g_return_if_fail (stats != NULL);
  g_return_if_fail (reply != NULL);
  g_return_if_fail (stats != previous);

  reset (stats);
  if (!gst_structure_has_name (reply, "application/x-webrtc-stats"))
    g_debug ("Reading stats from a structure named %s", gst_structure_get_name (reply));

  scan.codec_rank = g_hash_table_new (g_str_hash, g_str_equal);
  n = gst_structure_n_fields (reply);
  for (int i = 0; i < n; i++) {
    const GstStructure *s = get_structure (reply, gst_structure_nth_field_name (reply, i));

    if (s != NULL)
      scan_one (stats, &scan, reply, s);
  }

  if (scan.timestamp_ms >= 0 && scan.timestamp_ms < (double) G_MAXINT64 / 1000)
    stats->timestamp_us = (gint64) (scan.timestamp_ms * 1000 + 0.5);
  if (scan.have_lost)
    stats->packets_lost = (gint64) MIN (scan.lost, (guint64) G_MAXINT64);
  if (scan.rtt_count > 0)
    stats->rtt_ms = scan.rtt_sum / scan.rtt_count * 1000;
  if (scan.audio_jitter >= 0)
    stats->jitter_ms = scan.audio_jitter * 1000;
  else if (scan.video_jitter >= 0)
    stats->jitter_ms = scan.video_jitter * 1000;

  pick_codecs (stats, &scan, reply);
  pick_candidates (stats, &scan, reply);
  compute_rates (stats, previous);

  g_hash_table_unref (scan.codec_rank);
}

/**
 * parley_peer_stats_set_candidate_types:
 * @stats: a #ParleyPeerStats
 * @local_type: (nullable): the local candidate type, or %NULL to keep it
 * @remote_type: (nullable): the remote candidate type, or %NULL to keep it
 *
 * Overrides the candidate types of the report with those of the ICE
 * agent's selected pair.
 */
void
parley_peer_stats_set_candidate_types (ParleyPeerStats *stats,
                                       const char      *local_type,
                                       const char      *remote_type)
{
  g_return_if_fail (stats != NULL);

  if (local_type != NULL) {
    g_free (stats->local_candidate_type);
    stats->local_candidate_type = g_strdup (local_type);
  }
  if (remote_type != NULL) {
    g_free (stats->remote_candidate_type);
    stats->remote_candidate_type = g_strdup (remote_type);
  }
}

/**
 * parley_peer_stats_to_json:
 * @stats: a #ParleyPeerStats
 *
 * Gives the sample as a flat object (rttMs, jitterMs, packetLoss,
 * packetsLost, bitrateInKbps, bitrateOutKbps, bytesReceived, bytesSent,
 * audioCodec, videoCodec, localCandidateType, remoteCandidateType,
 * localAddress, remoteAddress); unknown values are left out.
 *
 * Returns: (transfer full): a new #JsonObject
 */
JsonObject *
parley_peer_stats_to_json (const ParleyPeerStats *stats)
{
  JsonObject *object;
  const struct {
    const char *name;
    double      value;
  } doubles[] = {
    { "rttMs", stats != NULL ? stats->rtt_ms : -1 },
    { "jitterMs", stats != NULL ? stats->jitter_ms : -1 },
    { "packetLoss", stats != NULL ? stats->packet_loss : -1 },
    { "bitrateInKbps", stats != NULL ? stats->bitrate_in_kbps : -1 },
    { "bitrateOutKbps", stats != NULL ? stats->bitrate_out_kbps : -1 },
  };

  g_return_val_if_fail (stats != NULL, NULL);

  object = json_object_new ();
  for (guint i = 0; i < G_N_ELEMENTS (doubles); i++) {
    if (doubles[i].value >= 0 && isfinite (doubles[i].value))
      json_object_set_double_member (object, doubles[i].name, doubles[i].value);
  }
  if (stats->packets_lost >= 0)
    json_object_set_int_member (object, "packetsLost", stats->packets_lost);
  if (stats->bytes_received != UNKNOWN_COUNT && stats->bytes_received <= G_MAXINT64)
    json_object_set_int_member (object, "bytesReceived", (gint64) stats->bytes_received);
  if (stats->bytes_sent != UNKNOWN_COUNT && stats->bytes_sent <= G_MAXINT64)
    json_object_set_int_member (object, "bytesSent", (gint64) stats->bytes_sent);
  if (stats->audio_codec != NULL)
    json_object_set_string_member (object, "audioCodec", stats->audio_codec);
  if (stats->video_codec != NULL)
    json_object_set_string_member (object, "videoCodec", stats->video_codec);
  if (stats->local_candidate_type != NULL)
    json_object_set_string_member (object, "localCandidateType", stats->local_candidate_type);
  if (stats->remote_candidate_type != NULL)
    json_object_set_string_member (object, "remoteCandidateType", stats->remote_candidate_type);
  if (stats->local_address != NULL)
    json_object_set_string_member (object, "localAddress", stats->local_address);
  if (stats->remote_address != NULL)
    json_object_set_string_member (object, "remoteAddress", stats->remote_address);
  return object;
}
