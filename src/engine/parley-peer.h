/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>

#include "parley-call-types.h"
#include "parley-data-channel.h"
#include "parley-media-settings.h"
#include "parley-peer-stats.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_PEER (parley_peer_get_type ())

G_DECLARE_FINAL_TYPE (ParleyPeer, parley_peer, PARLEY, PEER, GObject)

/*
 * One WebRTC peer connection: a pipeline with a webrtcbin, media sources and
 * encoders (opus, vp8), decoders and media sinks (parley-media.h), data
 * channels. It implements Perfect Negotiation (MDN semantics) on GStreamer
 * 1.22, which has no rollback and no ICE restart (../shared/docs/webrtcbin-1.22.md):
 *
 * - The polite peer defers its own offers: it emits the offer but keeps its
 *   webrtcbin stable; on the answer it applies its offer and then the answer;
 *   on a colliding remote offer it drops its offer, answers, and negotiates
 *   its pending changes afterwards. The impolite peer applies its offers at once
 *   and ignores colliding remote offers.
 * - makingOffer / ignoreOffer / isSettingRemoteAnswerPending as in MDN.
 * - Remote candidates are buffered until the remote description is set; candidates
 *   of an older generation are dropped.
 * - No offer is sent or applied from a NULL or failed promise reply.
 * - webrtcbin's spurious on-negotiation-needed at PLAYING is not an offer trigger;
 *   adding media or a data channel after the first negotiation is.
 * - Restart: a fresh webrtcbin (same media, same data channels re-bound) under a new
 *   generation. The peer restarts by itself when the connection fails, or stays
 *   disconnected (or receives no RTP/RTCP while it should) for
 *   #ParleyPeer:restart-timeout ms, and again every restart-timeout while not connected;
 *   a remote description of a newer generation makes it restart and adopt that
 *   generation. Descriptions of an older generation are ignored.
 *
 * Every signal is emitted on the main context the peer was created in.
 *
 * Properties (read-only unless noted):
 *   polite (gboolean, construct-only), settings (ParleyMediaSettings*, construct-only),
 *   state (ParleyPeerState), signaling-state (string, e.g. "stable", "have-local-offer"),
 *   ice-connection-state (string), generation (guint), audio (gboolean), video (gboolean),
 *   audio-muted (gboolean, rw), video-muted (gboolean, rw), relay-only (gboolean, rw before
 *   start), restart-timeout (guint ms, rw, default 2000).
 *
 * Signals:
 *   "local-description" (const char *type "offer"|"answer", const char *sdp, guint generation)
 *   "local-candidate"   (const char *candidate, const char *sdp_mid, int sdp_mline_index,
 *                        guint generation)
 *   "state-changed"     (ParleyPeerState new, ParleyPeerState old)
 *   "first-remote-frame" (const char *kind "audio"|"video") once per generation
 *   "media-report"      (const char *kind "audio"|"video", GstStructure *report) the sinks'
 *                        parley-audio-report / parley-video-report messages
 *   "remote-video-sample" (GstSample *sample) the latest decoded remote frame (RGBA),
 *                        at most one pending at a time (older ones are dropped)
 *   "stats"             (ParleyPeerStats *stats) every stats interval while started
 *   "data-channel"      (ParleyDataChannel *channel) the remote side opened a channel; it is
 *                        bound on the main context, so messages the far side sends in the
 *                        same instant as it opens may be missed (send after a first reply)
 *   "negotiated"        () an offer/answer exchange completed (signaling stable again)
 *   "error"             (const GError *error) something the call may want to show or end on:
 *                        a media element failed, or webrtcbin refused a description. ICE and
 *                        DTLS failures are not errors: they restart the connection.
 *
 * Renegotiations (but not the first exchange of a generation) wait until the connection
 * is connected: a swap of the DTLS roles during the handshake breaks it on 1.22.
 */

ParleyPeer        *parley_peer_new                 (ParleyMediaSettings *settings,
                                                    gboolean             polite);
gboolean           parley_peer_get_polite          (ParleyPeer          *self);
ParleyPeerState    parley_peer_get_state           (ParleyPeer          *self);
const char        *parley_peer_get_signaling_state (ParleyPeer          *self);
guint              parley_peer_get_generation      (ParleyPeer          *self);

/* ICE servers: call before parley_peer_start() (also fine between restarts: the next
 * webrtcbin uses them). @stun_uri like "stun:host:port" (nullable). @turn_uris like
 * "turn:host:port?transport=udp"; the peer builds webrtcbin's
 * turn://USER:PASS@host:port URLs with USER and PASS percent-encoded. */
void               parley_peer_set_ice_servers     (ParleyPeer          *self,
                                                    const char          *stun_uri,
                                                    const char * const  *turn_uris,
                                                    const char          *turn_username,
                                                    const char          *turn_password);
void               parley_peer_set_relay_only      (ParleyPeer          *self,
                                                    gboolean             relay_only);
/* The first TURN server if it is one over UDP, once its address is known (for a
 * ParleyLink beside the call). */
gboolean           parley_peer_get_relay           (ParleyPeer          *self,
                                                    const char         **host,
                                                    guint               *port,
                                                    const char         **username,
                                                    const char         **password);

/* Builds the pipeline with the given media (either may be FALSE: a data-channel-only
 * connection) and sets it PLAYING. Does not offer by itself. */
gboolean           parley_peer_start               (ParleyPeer          *self,
                                                    gboolean             audio,
                                                    gboolean             video,
                                                    GError             **error);
/* Makes an offer now (the caller at call start, or to renegotiate). */
void               parley_peer_negotiate           (ParleyPeer          *self);
/* Applies a remote offer or answer (Perfect Negotiation rules apply). Returns FALSE
 * with @error for an unparsable description or unknown type; ignoring a colliding offer
 * or a stale generation is not an error. */
gboolean           parley_peer_set_remote_description (ParleyPeer       *self,
                                                       const char       *type,
                                                       const char       *sdp,
                                                       guint             generation,
                                                       GError          **error);
gboolean           parley_peer_add_remote_candidate (ParleyPeer         *self,
                                                     const char         *candidate,
                                                     const char         *sdp_mid,
                                                     int                 sdp_mline_index,
                                                     guint               generation,
                                                     GError            **error);

/* Adds a video source (upgrade of an audio call) and renegotiates. Also used by the side
 * that received video to send its own. No-op if video is already sent. */
gboolean           parley_peer_add_video           (ParleyPeer          *self,
                                                    GError             **error);
void               parley_peer_set_audio_muted     (ParleyPeer          *self,
                                                    gboolean             muted);
void               parley_peer_set_video_muted     (ParleyPeer          *self,
                                                    gboolean             muted);

/* Creates a channel now (or after start); it opens when connected and is re-created
 * with the same label on every restart. The far side gets ParleyPeer::data-channel. */
ParleyDataChannel *parley_peer_create_data_channel (ParleyPeer          *self,
                                                    const char          *label,
                                                    gboolean             reliable);

/* Forces a restart under a new generation (see above). */
void               parley_peer_restart             (ParleyPeer          *self);
/* Latest stats sample (nullable); stats are polled every @interval_ms (0 stops). */
const ParleyPeerStats *parley_peer_get_stats       (ParleyPeer          *self);
void               parley_peer_set_stats_interval  (ParleyPeer          *self,
                                                    guint                interval_ms);
/* Stops the pipeline; state goes to CLOSED. Idempotent. */
void               parley_peer_close               (ParleyPeer          *self);

/* The webrtcbin TURN URL for @uri ("turn:host:port?transport=udp", also turns:) with
 * @username and @password percent-encoded; NULL if @uri is not a TURN URI. Exposed for
 * unit tests. */
char              *parley_peer_build_turn_url      (const char          *uri,
                                                    const char          *username,
                                                    const char          *password);

G_END_DECLS
