/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gst/gst.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/**
 * ParleyPeerStats:
 *
 * One sample of a peer connection's statistics, read from webrtcbin's
 * `get-stats` (and the ICE agent for candidate types). Rates are computed
 * against the previous sample. Unknown values are -1 (numbers; for the
 * unsigned counters `(guint64) -1`, that is %G_MAXUINT64) or %NULL.
 */
typedef struct {
  gint64  timestamp_us;          /* g_get_monotonic_time () of the sample */
  double  rtt_ms;                /* round-trip time (RTCP or ICE), -1 if unknown */
  double  jitter_ms;             /* inbound audio jitter (video if no audio) */
  double  packet_loss;           /* fraction 0..1 of inbound packets lost since the last sample */
  gint64  packets_lost;          /* cumulative inbound packets lost */
  double  bitrate_in_kbps;       /* all inbound RTP */
  double  bitrate_out_kbps;      /* all outbound RTP */
  guint64 bytes_received;        /* cumulative inbound RTP bytes */
  guint64 bytes_sent;            /* cumulative outbound RTP bytes */
  char   *audio_codec;           /* "opus" */
  char   *video_codec;           /* "VP8" */
  char   *local_candidate_type;  /* "host", "srflx", "prflx" or "relay" */
  char   *remote_candidate_type;
  char   *local_address;         /* "ip:port" of the selected local candidate */
  char   *remote_address;
  guint64 packets_received;      /* cumulative inbound RTP packets (for packet_loss) */
} ParleyPeerStats;

#define PARLEY_TYPE_PEER_STATS (parley_peer_stats_get_type ())

GType            parley_peer_stats_get_type (void) G_GNUC_CONST;
ParleyPeerStats *parley_peer_stats_new      (void);
ParleyPeerStats *parley_peer_stats_copy     (const ParleyPeerStats *stats);
void             parley_peer_stats_free     (ParleyPeerStats       *stats);

/* Fills @stats from a webrtcbin `get-stats` reply (application/x-webrtc-stats);
 * @previous (nullable) gives the rates. Works around 1.22.0 quirks (swapped
 * candidate type labels; no gst_structure_to_string on relay stats). */
void             parley_peer_stats_update_from_structure (ParleyPeerStats       *stats,
                                                          const GstStructure    *reply,
                                                          const ParleyPeerStats *previous);
/* Candidate types from the ICE agent's selected pair override the report's. */
void             parley_peer_stats_set_candidate_types   (ParleyPeerStats       *stats,
                                                          const char            *local_type,
                                                          const char            *remote_type);
JsonObject      *parley_peer_stats_to_json               (const ParleyPeerStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyPeerStats, parley_peer_stats_free)

G_END_DECLS
