/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-peer"

#include "config.h"

#include <glib/gi18n-lib.h>

#define GST_USE_UNSTABLE_API

#include "parley-peer.h"

#include <agent.h>
#include <gst/app/gstappsink.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>
#include <string.h>

#include "parley-engine-enums.h"
#include "parley-media.h"
#include "parley-sched.h"

#define DEFAULT_RESTART_TIMEOUT_MS 2000
#define DEFAULT_STATS_INTERVAL_MS 1000
#define WATCHDOG_INTERVAL_MS 200
#define MAX_AUTO_RENEGOTIATIONS 2
/* How long a call's teardown waits for its relays' TURN servers to confirm
 * that its allocations are gone (see conn_close_agent()). */
#define AGENT_CLOSE_TIMEOUT_MS 500

/* The payload types of our own offers (Chromium's numbers); answers and later
 * offers use the numbers the far side's offer gave Opus and VP8. */
#define AUDIO_PT 111
#define VIDEO_PT 96
#define AUDIO_CAPS "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS, " \
                   "payload=(int)%d, clock-rate=(int)48000, encoding-params=(string)2"
#define VIDEO_CAPS "application/x-rtp, media=(string)video, encoding-name=(string)VP8, " \
                   "payload=(int)%d, clock-rate=(int)90000, rtcp-fb-nack-pli=(boolean)true"
#define UNRELIABLE_OPTIONS "application/data-channel, ordered=(boolean)false, " \
                           "max-retransmits=(int)0"

enum {
  PROP_0,
  PROP_POLITE,
  PROP_SETTINGS,
  PROP_STATE,
  PROP_SIGNALING_STATE,
  PROP_ICE_CONNECTION_STATE,
  PROP_GENERATION,
  PROP_AUDIO,
  PROP_VIDEO,
  PROP_AUDIO_MUTED,
  PROP_VIDEO_MUTED,
  PROP_RELAY_ONLY,
  PROP_RESTART_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_LOCAL_DESCRIPTION,
  SIGNAL_LOCAL_CANDIDATE,
  SIGNAL_STATE_CHANGED,
  SIGNAL_FIRST_REMOTE_FRAME,
  SIGNAL_MEDIA_REPORT,
  SIGNAL_REMOTE_VIDEO_SAMPLE,
  SIGNAL_STATS,
  SIGNAL_DATA_CHANNEL,
  SIGNAL_NEGOTIATED,
  SIGNAL_ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* One webrtcbin pipeline of one generation. Streaming threads only hold
 * references to it and post events to the peer's main context; the peer
 * drops events of a connection that is no longer its current one. */
typedef struct {
  gatomicrefcount      ref_count;
  GWeakRef             peer;
  GMainContext        *context;
  ParleyMediaSettings *settings;
  guint                generation;

  GstElement          *pipeline;
  GstElement          *webrtc;
  GstElement          *audio_source;
  GstElement          *video_source;
  GstElement          *video_encoder;
  GstPad              *audio_pad;
  GstPad              *video_pad;
  GSource             *bus_source;
  GObject             *agent;

  /* Main context only. */
  gboolean             has_remote_description;
  gboolean             negotiated;
  gboolean             first_frame[2];

  /* Any thread. */
  gint                 rtp_in;
  gint                 n_src_pads;
  GMutex               lock;
  GPtrArray           *promises;      /* pending, one reference each */
  GstSample           *pending_sample;
  gboolean             sample_scheduled;
} Conn;

typedef enum {
  STEP_CREATE_OFFER,
  STEP_SET_LOCAL_OFFER,
  STEP_APPLY_OWN_OFFER,
  STEP_SET_REMOTE_ANSWER,
  STEP_SET_REMOTE_OFFER,
  STEP_CREATE_ANSWER,
  STEP_SET_LOCAL_ANSWER,
  STEP_GET_STATS,
} Step;

typedef enum {
  EVENT_PROMISE,
  EVENT_ICE_CANDIDATE,
  EVENT_SIGNALING_STATE,
  EVENT_CONNECTION_STATE,
  EVENT_ICE_CONNECTION_STATE,
  EVENT_DATA_CHANNEL,
  EVENT_FIRST_FRAME,
  EVENT_SAMPLE,
  EVENT_SELECTED_PAIR,
} EventType;

typedef struct {
  Conn         *conn;
  EventType     type;
  Step          step;
  guint         serial;
  guint         number;
  char         *text;
  char         *text2;
  GstStructure *reply;
  GObject      *object;
} Event;

typedef struct {
  char  *candidate;
  char  *sdp_mid;
  int    sdp_mline_index;
  guint  generation;
} PendingCandidate;

struct _ParleyPeer {
  GObject parent_instance;

  GMainContext        *context;
  ParleyMediaSettings *settings;
  gboolean             polite;
  ParleyPeerState      state;
  char                *signaling_state;
  char                *ice_connection_state;
  guint                generation;
  gboolean             audio;
  gboolean             video;
  gboolean             audio_muted;
  gboolean             video_muted;
  gboolean             relay_only;
  guint                restart_timeout;
  char                *stun_url;
  GPtrArray           *turn_urls;
  char                *relay_host;    /* the first UDP TURN server, for links */
  char                *relay_name;    /* its host name, when given by name */
  GCancellable        *relay_lookup;  /* resolving relay_name */
  guint                relay_port;
  char                *relay_username;
  char                *relay_password;

  gboolean             started;
  gboolean             closed;
  Conn                *conn;

  /* Perfect Negotiation. */
  gboolean             making_offer;
  gboolean             awaiting_answer;
  gboolean             setting_remote_answer_pending;
  gboolean             ignore_offer;
  gboolean             answering;
  gboolean             remote_offer_failed;
  gboolean             needs_negotiation;
  gboolean             negotiated_once;
  guint                offer_serial;
  guint                auto_renegotiations;
  guint                offer_retries;
  GSource             *offer_retry_source;
  GstWebRTCSessionDescription *pending_offer;
  GstWebRTCSessionDescription *local_answer;
  GstWebRTCSessionDescription *queued_remote_offer;
  GQueue               pending_candidates;

  /* Data channels: our own (re-created on every restart) and the far side's. */
  GPtrArray           *channels;
  GPtrArray           *remote_channels;

  /* Stats and restart watchdog. */
  ParleyPeerStats     *stats;
  guint                stats_interval;
  GSource             *stats_source;
  GSource             *watchdog_source;
  char                *local_candidate_type;
  char                *remote_candidate_type;
  gboolean             ever_connected;
  guint                restarts;
  gint64               last_ok_us;
  gint64               last_restart_us;
  gint                 last_rtp_in;
};

G_DEFINE_FINAL_TYPE (ParleyPeer, parley_peer, G_TYPE_OBJECT)

static void peer_negotiate_internal (ParleyPeer *self,
                                     gboolean    automatic);
static void peer_restart_internal   (ParleyPeer *self,
                                     guint       generation,
                                     gboolean    offer);
static void peer_handle_remote_offer (ParleyPeer                  *self,
                                      GstWebRTCSessionDescription *offer);

/* Connections. */

static Conn *
conn_ref (Conn *conn)
{
  g_atomic_ref_count_inc (&conn->ref_count);
  return conn;
}

static void
conn_unref (Conn *conn)
{
  if (!g_atomic_ref_count_dec (&conn->ref_count))
    return;

  g_weak_ref_clear (&conn->peer);
  g_clear_pointer (&conn->context, g_main_context_unref);
  g_clear_object (&conn->settings);
  g_clear_object (&conn->audio_pad);
  g_clear_object (&conn->video_pad);
  g_clear_object (&conn->agent);
  g_clear_object (&conn->webrtc);
  g_clear_object (&conn->pipeline);
  g_clear_pointer (&conn->pending_sample, gst_sample_unref);
  g_clear_pointer (&conn->promises, g_ptr_array_unref);
  g_mutex_clear (&conn->lock);
  g_free (conn);
}

static void
conn_closure_notify (gpointer  data,
                     GClosure *closure)
{
  conn_unref (data);
}

static void
event_free (gpointer data)
{
  Event *event = data;

  conn_unref (event->conn);
  g_free (event->text);
  g_free (event->text2);
  g_clear_pointer (&event->reply, gst_structure_free);
  g_clear_object (&event->object);
  g_free (event);
}

static Event *
event_new (Conn      *conn,
           EventType  type)
{
  Event *event = g_new0 (Event, 1);

  event->conn = conn_ref (conn);
  event->type = type;
  return event;
}

static gboolean dispatch_event_cb (gpointer data);

/* Always deferred through an idle source, so that events keep their order and
 * nothing runs re-entrantly inside a webrtcbin call made on the main context. */
static void
event_post (Event *event)
{
  g_autoptr(GSource) source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, dispatch_event_cb, event, event_free);
  g_source_set_static_name (source, "[parley] peer event");
  g_source_attach (source, event->conn->context);
}

typedef struct {
  Conn  *conn;
  Step   step;
  guint  serial;
} PromiseData;

static void
promise_data_free (gpointer data)
{
  PromiseData *pd = data;

  conn_unref (pd->conn);
  g_free (pd);
}

static void
promise_changed_cb (GstPromise *promise,
                    gpointer    user_data)
{
  PromiseData *pd = user_data;
  Conn *conn = pd->conn;
  const GstStructure *reply = NULL;
  gboolean owned;
  Event *event;

  if (gst_promise_wait (promise) == GST_PROMISE_RESULT_REPLIED)
    reply = gst_promise_get_reply (promise);

  event = event_new (conn, EVENT_PROMISE);
  event->step = pd->step;
  event->serial = pd->serial;
  event->reply = reply != NULL ? gst_structure_copy (reply) : NULL;
  event_post (event);

  g_mutex_lock (&conn->lock);
  owned = g_ptr_array_remove_fast (conn->promises, promise);
  g_mutex_unlock (&conn->lock);
  if (owned)
    gst_promise_unref (promise);
}

static GstPromise *
conn_promise (Conn  *conn,
              Step   step,
              guint  serial)
{
  PromiseData *pd = g_new0 (PromiseData, 1);

  pd->conn = conn_ref (conn);
  pd->step = step;
  pd->serial = serial;
  return gst_promise_new_with_change_func (promise_changed_cb, pd, promise_data_free);
}

/* Emits a webrtcbin action signal that takes a promise; the reply comes back
 * as an EVENT_PROMISE on the main context. The connection keeps the promise
 * until it is replied: webrtcbin 1.22 drops queued operations on shutdown
 * without interrupting their promises, so conn_teardown() does. */
static void
conn_emit_with_promise (Conn       *conn,
                        const char *signal,
                        gpointer    arg,
                        Step        step,
                        guint       serial)
{
  GstPromise *promise = conn_promise (conn, step, serial);

  g_mutex_lock (&conn->lock);
  g_ptr_array_add (conn->promises, promise);
  g_mutex_unlock (&conn->lock);
  g_signal_emit_by_name (conn->webrtc, signal, arg, promise);
}

/* Returns the description in @field of a promise reply, or sets @error. */
static GstWebRTCSessionDescription *
reply_get_description (const GstStructure  *reply,
                       gboolean             offer,
                       GError             **error)
{
  GstWebRTCSessionDescription *desc = NULL;

  if (reply == NULL) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                         offer ? _("Creating the offer got no reply")
                               : _("Creating the answer got no reply"));
    return NULL;
  }
  if (gst_structure_has_field (reply, "error")) {
    g_autoptr(GError) reply_error = NULL;
    const char *detail;

    gst_structure_get (reply, "error", G_TYPE_ERROR, &reply_error, NULL);
    detail = reply_error != NULL ? reply_error->message : _("unknown error");
    if (offer)
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not create the offer: %s"),
                   detail);
    else
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not create the answer: %s"),
                   detail);
    return NULL;
  }
  if (!gst_structure_get (reply, offer ? "offer" : "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
                          &desc, NULL) ||
      desc == NULL || desc->sdp == NULL) {
    if (desc != NULL)
      gst_webrtc_session_description_free (desc);
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                         offer ? _("The offer is empty") : _("The answer is empty"));
    return NULL;
  }
  return desc;
}

/* A NULL reply is not a success (see the 1.22 notes); an empty structure is.
 * @failed: the translated sentence that says what failed. */
static gboolean
reply_check (const GstStructure  *reply,
             const char          *failed,
             GError             **error)
{
  g_autoptr(GError) reply_error = NULL;

  if (reply == NULL) {
    /* set-*-description reply with no structure when they succeed. */
    return TRUE;
  }
  if (!gst_structure_has_field (reply, "error"))
    return TRUE;

  gst_structure_get (reply, "error", G_TYPE_ERROR, &reply_error, NULL);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", failed,
               reply_error != NULL ? reply_error->message : _("unknown error"));
  return FALSE;
}

/* Streaming-thread callbacks. */

static void
on_ice_candidate_cb (GstElement *webrtc,
                     guint       mline_index,
                     const char *candidate,
                     gpointer    user_data)
{
  Event *event = event_new (user_data, EVENT_ICE_CANDIDATE);

  event->number = mline_index;
  event->text = g_strdup (candidate);
  event_post (event);
}

static void
on_notify_cb (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  EventType type;
  Event *event;

  if (g_str_equal (pspec->name, "signaling-state"))
    type = EVENT_SIGNALING_STATE;
  else if (g_str_equal (pspec->name, "connection-state"))
    type = EVENT_CONNECTION_STATE;
  else
    type = EVENT_ICE_CONNECTION_STATE;

  event = event_new (user_data, type);
  event_post (event);
}

static void
on_data_channel_cb (GstElement *webrtc,
                    GObject    *channel,
                    gpointer    user_data)
{
  Event *event = event_new (user_data, EVENT_DATA_CHANNEL);

  event->object = g_object_ref (channel);
  event_post (event);
}

static void
on_selected_pair_cb (NiceAgent     *agent,
                     guint          stream_id,
                     guint          component_id,
                     NiceCandidate *local,
                     NiceCandidate *remote,
                     gpointer       user_data)
{
  Event *event = event_new (user_data, EVENT_SELECTED_PAIR);

  event->text = g_strdup (nice_candidate_type_to_string (local->type));
  event->text2 = g_strdup (nice_candidate_type_to_string (remote->type));
  event_post (event);
}

static GstPadProbeReturn
rtp_probe_cb (GstPad          *pad,
              GstPadProbeInfo *info,
              gpointer         user_data)
{
  Conn *conn = user_data;

  g_atomic_int_inc (&conn->rtp_in);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
first_frame_probe_cb (GstPad          *pad,
                      GstPadProbeInfo *info,
                      gpointer         user_data)
{
  Conn *conn = user_data;
  const char *kind = g_object_get_data (G_OBJECT (pad), "parley-kind");
  Event *event = event_new (conn, EVENT_FIRST_FRAME);

  event->text = g_strdup (kind);
  event_post (event);
  return GST_PAD_PROBE_REMOVE;
}

static GstFlowReturn
on_new_sample_cb (GstElement *appsink,
                  gpointer    user_data)
{
  Conn *conn = user_data;
  GstSample *sample = NULL;
  gboolean schedule = FALSE;

  g_signal_emit_by_name (appsink, "pull-sample", &sample);
  if (sample == NULL)
    return GST_FLOW_OK;

  g_mutex_lock (&conn->lock);
  g_clear_pointer (&conn->pending_sample, gst_sample_unref);
  conn->pending_sample = sample;
  if (!conn->sample_scheduled)
    schedule = conn->sample_scheduled = TRUE;
  g_mutex_unlock (&conn->lock);

  if (schedule)
    event_post (event_new (conn, EVENT_SAMPLE));
  return GST_FLOW_OK;
}

/* A stream we cannot play still has to go somewhere. */
static void
conn_discard_stream (Conn   *conn,
                     GstPad *pad)
{
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);
  g_autoptr(GstPad) sink_pad = NULL;

  g_object_set (sink, "async", FALSE, "sync", FALSE, NULL);
  gst_bin_add (GST_BIN (conn->pipeline), sink);
  gst_element_sync_state_with_parent (sink);
  sink_pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_link (pad, sink_pad);
}

/* webrtcbin 1.22 can attach a receive pad to the transceiver of the other
 * kind (seen in about half the video calls, when video arrives before
 * audio): when it later builds an offer, it asks the pad's peer for caps
 * with that transceiver's codec preferences as the filter, which this
 * stream's depayloader cannot accept, so every renegotiation of the call
 * fails ("Caps negotiation on pad src_0 failed"). A caps query whose filter
 * has nothing of this stream's media is answered with the filter itself,
 * which leaves that transceiver's preferences as they are. */
static GstPadProbeReturn
receive_caps_query_cb (GstPad          *pad,
                       GstPadProbeInfo *info,
                       gpointer         user_data)
{
  const char *media = user_data;
  GstQuery *query = GST_PAD_PROBE_INFO_QUERY (info);
  GstCaps *filter = NULL;

  if (GST_QUERY_TYPE (query) != GST_QUERY_CAPS)
    return GST_PAD_PROBE_OK;
  gst_query_parse_caps (query, &filter);
  if (filter == NULL || gst_caps_is_any (filter) || gst_caps_is_empty (filter))
    return GST_PAD_PROBE_OK;
  for (guint i = 0; i < gst_caps_get_size (filter); i++) {
    const char *kind = gst_structure_get_string (gst_caps_get_structure (filter, i), "media");

    if (kind == NULL || g_str_equal (kind, media))
      return GST_PAD_PROBE_OK;
  }
  gst_query_set_caps_result (query, filter);
  return GST_PAD_PROBE_HANDLED;
}

static void
on_pad_added_cb (GstElement *webrtc,
                 GstPad     *pad,
                 gpointer    user_data)
{
  Conn *conn = user_data;
  g_autoptr(GstCaps) caps = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GstPad) bin_sink = NULL;
  g_autoptr(GstPad) dec_src = NULL;
  g_autoptr(GstElement) decoder = NULL;
  GstStructure *s;
  GstElement *decode_bin;
  GstElement *sink;
  const char *media;
  const char *encoding;
  gboolean video;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;

  caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (caps == NULL || gst_caps_is_empty (caps))
    return;

  s = gst_caps_get_structure (caps, 0);
  media = gst_structure_get_string (s, "media");
  encoding = gst_structure_get_string (s, "encoding-name");
  video = g_strcmp0 (media, "video") == 0;
  if (!video && g_strcmp0 (media, "audio") != 0) {
    g_debug ("Ignoring a remote stream of media %s", media);
    conn_discard_stream (conn, pad);
    return;
  }
  if (encoding != NULL &&
      g_ascii_strcasecmp (encoding, video ? "VP8" : "OPUS") != 0) {
    g_debug ("Ignoring a remote %s stream in %s", media, encoding);
    conn_discard_stream (conn, pad);
    return;
  }

  decode_bin = gst_parse_bin_from_description (video
                                               ? "queue ! rtpvp8depay request-keyframe=true "
                                                 "wait-for-keyframe=true ! vp8dec name=dec"
                                               : "queue ! rtpopusdepay ! opusdec name=dec",
                                               TRUE, &error);
  if (decode_bin == NULL) {
    g_debug ("Could not build a decoder: %s", error->message);
    conn_discard_stream (conn, pad);
    return;
  }
  sink = video ? parley_media_create_video_sink (conn->settings, &error)
               : parley_media_create_audio_sink_for_source (conn->settings, conn->audio_source,
                                                            &error);
  if (sink == NULL) {
    g_debug ("Could not build a media sink: %s", error->message);
    gst_object_unref (gst_object_ref_sink (decode_bin));
    conn_discard_stream (conn, pad);
    return;
  }

  gst_bin_add_many (GST_BIN (conn->pipeline), decode_bin, sink, NULL);
  if (!gst_element_link (decode_bin, sink))
    g_debug ("Could not link the %s decoder to its sink", media);

  if (video && GST_IS_BIN (sink)) {
    g_autoptr(GstElement) appsink = gst_bin_get_by_name (GST_BIN (sink), "video-appsink");
    /* Frames are converted for a view only if someone listens to remote-video-sample
     * when the stream arrives (a user interface connects before the call connects). */
    g_autoptr(ParleyPeer) peer = g_weak_ref_get (&conn->peer);
    gboolean view = peer != NULL &&
                    g_signal_has_handler_pending (peer, signals[SIGNAL_REMOTE_VIDEO_SAMPLE], 0,
                                                  TRUE);

    parley_media_video_sink_set_view (sink, view);

    if (appsink != NULL) {
      g_object_set (appsink, "emit-signals", TRUE, NULL);
      g_signal_connect_data (appsink, "new-sample", G_CALLBACK (on_new_sample_cb),
                             conn_ref (conn), conn_closure_notify, 0);
    }
  }

  decoder = gst_bin_get_by_name (GST_BIN (decode_bin), "dec");
  dec_src = gst_element_get_static_pad (decoder, "src");
  g_object_set_data (G_OBJECT (dec_src), "parley-kind", (gpointer) (video ? "video" : "audio"));
  gst_pad_add_probe (dec_src, GST_PAD_PROBE_TYPE_BUFFER, first_frame_probe_cb,
                     conn_ref (conn), (GDestroyNotify) conn_unref);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                     rtp_probe_cb, conn_ref (conn), (GDestroyNotify) conn_unref);

  gst_element_sync_state_with_parent (sink);
  gst_element_sync_state_with_parent (decode_bin);

  bin_sink = gst_element_get_static_pad (decode_bin, "sink");
  gst_pad_add_probe (bin_sink, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM, receive_caps_query_cb,
                     (gpointer) (video ? "video" : "audio"), NULL);
  if (gst_pad_link (pad, bin_sink) != GST_PAD_LINK_OK) {
    g_debug ("Could not link the remote %s stream", media);
  } else {
    g_debug ("%s: receiving %s on %s", GST_OBJECT_NAME (conn->pipeline), media,
             GST_PAD_NAME (pad));
    g_atomic_int_inc (&conn->n_src_pads);
  }
}

/* Main-context helpers. */

/* A new receiver (after connecting, a restart or an upgrade) needs a keyframe
 * now rather than at the next periodic one. */
static void
conn_request_keyframe (Conn *conn)
{
  if (conn->video_encoder == NULL)
    return;
  gst_element_send_event (conn->video_encoder,
                          gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE,
                                                                       TRUE, 0));
}

static void
peer_emit_error (ParleyPeer   *self,
                 const GError *error)
{
  g_debug ("Peer %p (%s): error: %s", self, self->polite ? "polite" : "impolite", error->message);
  g_signal_emit (self, signals[SIGNAL_ERROR], 0, error);
}

static void
peer_set_state (ParleyPeer      *self,
                ParleyPeerState  state)
{
  ParleyPeerState old = self->state;

  if (old == state)
    return;

  g_debug ("Peer %p (%s): %s → %s", self, self->polite ? "polite" : "impolite",
           parley_peer_state_to_string (old), parley_peer_state_to_string (state));
  self->state = state;
  if (state == PARLEY_PEER_STATE_CONNECTED) {
    self->ever_connected = TRUE;
    self->last_ok_us = g_get_monotonic_time ();
  }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state, old);
}

static void
peer_set_string (ParleyPeer  *self,
                 char       **field,
                 const char  *value,
                 guint        prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return;

  g_free (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

static const char *
enum_nick (GType type,
           gint  value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *ev = g_enum_get_value (klass, value);

  return ev != NULL ? ev->value_nick : "unknown";
}

/* The codec of @kind under payload type @pt, or under our default one when
 * @pt is negative. */
static GstCaps *
caps_for_kind (GstWebRTCKind kind,
               int           pt)
{
  g_autofree char *text = NULL;

  if (kind == GST_WEBRTC_KIND_VIDEO)
    text = g_strdup_printf (VIDEO_CAPS, pt >= 0 ? pt : VIDEO_PT);
  else
    text = g_strdup_printf (AUDIO_CAPS, pt >= 0 ? pt : AUDIO_PT);
  return gst_caps_from_string (text);
}

static const char *
kind_encoding (GstWebRTCKind kind)
{
  return kind == GST_WEBRTC_KIND_VIDEO ? "VP8" : "OPUS";
}

static const char *
kind_media (GstWebRTCKind kind)
{
  return kind == GST_WEBRTC_KIND_VIDEO ? "video" : "audio";
}

/* The payload type that @media gives @encoding (an a=rtpmap of one of its
 * formats, compared without case), or -1. */
static int
media_payload_type (const GstSDPMedia *media,
                    const char        *encoding)
{
  gsize encoding_len = strlen (encoding);

  for (guint i = 0; i < gst_sdp_media_attributes_len (media); i++) {
    const GstSDPAttribute *attr = gst_sdp_media_get_attribute (media, i);
    const char *value = attr->value;
    char *end = NULL;
    guint64 pt;

    if (g_strcmp0 (attr->key, "rtpmap") != 0 || value == NULL)
      continue;
    pt = g_ascii_strtoull (value, &end, 10);
    if (end == value || *end != ' ' || pt > 127)
      continue;
    while (*end == ' ')
      end++;
    if (g_ascii_strncasecmp (end, encoding, encoding_len) != 0 || end[encoding_len] != '/')
      continue;
    /* Only a format the m-line lists counts. */
    for (guint f = 0; f < gst_sdp_media_formats_len (media); f++) {
      const char *format = gst_sdp_media_get_format (media, f);

      if (format != NULL && g_ascii_strtoull (format, NULL, 10) == pt &&
          g_ascii_isdigit (format[0]))
        return (int) pt;
    }
  }
  return -1;
}

static const GstSDPMedia *
sdp_media_for_mid (const GstSDPMessage *sdp,
                   const char          *mid)
{
  for (guint i = 0; mid != NULL && i < gst_sdp_message_medias_len (sdp); i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (sdp, i);

    if (g_strcmp0 (gst_sdp_media_get_attribute_val (media, "mid"), mid) == 0)
      return media;
  }
  return NULL;
}

/* The payload type the current remote description gives the codec of @kind on
 * the m-line @mid, or -1. */
static int
conn_remote_payload_type (Conn          *conn,
                          const char    *mid,
                          GstWebRTCKind  kind)
{
  GstWebRTCSessionDescription *desc = NULL;
  int pt = -1;

  if (mid == NULL)
    return -1;
  g_object_get (conn->webrtc, "current-remote-description", &desc, NULL);
  if (desc == NULL)
    g_object_get (conn->webrtc, "remote-description", &desc, NULL);
  if (desc != NULL && desc->sdp != NULL) {
    const GstSDPMedia *media = sdp_media_for_mid (desc->sdp, mid);

    if (media != NULL)
      pt = media_payload_type (media, kind_encoding (kind));
  }
  g_clear_pointer (&desc, gst_webrtc_session_description_free);
  return pt;
}

/* After a remote offer created recvonly transceivers, webrtcbin cannot make an
 * offer of its own unless every transceiver has codec preferences. They name
 * the payload type that m-line already uses, so that a later offer keeps it. */
static void
conn_fix_codec_preferences (Conn *conn)
{
  g_autoptr(GArray) transceivers = NULL;

  g_signal_emit_by_name (conn->webrtc, "get-transceivers", &transceivers);
  if (transceivers == NULL)
    return;

  for (guint i = 0; i < transceivers->len; i++) {
    GstWebRTCRTPTransceiver *trans = g_array_index (transceivers, GstWebRTCRTPTransceiver *, i);
    g_autoptr(GstCaps) prefs = NULL;
    g_autofree char *mid = NULL;
    GstWebRTCKind kind = GST_WEBRTC_KIND_UNKNOWN;

    g_object_get (trans, "codec-preferences", &prefs, "kind", &kind, "mid", &mid, NULL);
    if (prefs != NULL || kind == GST_WEBRTC_KIND_UNKNOWN)
      continue;

    prefs = caps_for_kind (kind, conn_remote_payload_type (conn, mid, kind));
    g_object_set (trans, "codec-preferences", prefs, NULL);
  }
}

/* The RTP payloader that feeds webrtcbin's sink pad @pad (the last element of
 * the encoder bin linked to it). */
static GstElement *
sender_payloader (GstPad *pad)
{
  g_autoptr(GstPad) peer = gst_pad_get_peer (pad);
  g_autoptr(GstPad) target = NULL;

  if (peer == NULL || !GST_IS_GHOST_PAD (peer))
    return NULL;
  target = gst_ghost_pad_get_target (GST_GHOST_PAD (peer));
  return target != NULL ? gst_pad_get_parent_element (target) : NULL;
}

/* Before answering @offer: our senders take the payload types the offer gives
 * Opus and VP8 on the m-lines they will be matched with (webrtcbin matches a
 * transceiver to an m-line only when its codec preferences, payload type
 * included, fit the offer), so that the answer and the RTP we send use the
 * offerer's numbers. Browsers other than Chromium use other numbers, and a
 * browser may renumber on a later offer. */
static void
conn_adopt_payload_types (Conn                *conn,
                          const GstSDPMessage *offer)
{
  GstPad *pads[] = { conn->audio_pad, conn->video_pad };
  GstWebRTCKind kinds[] = { GST_WEBRTC_KIND_AUDIO, GST_WEBRTC_KIND_VIDEO };
  g_autoptr(GArray) transceivers = NULL;

  g_signal_emit_by_name (conn->webrtc, "get-transceivers", &transceivers);

  for (guint k = 0; k < G_N_ELEMENTS (pads); k++) {
    g_autoptr(GstWebRTCRTPTransceiver) trans = NULL;
    g_autoptr(GstElement) payloader = NULL;
    g_autoptr(GstCaps) prefs = NULL;
    g_autofree char *mid = NULL;
    const GstSDPMedia *media = NULL;
    int pt, current = -1;

    if (pads[k] == NULL)
      continue;
    g_object_get (pads[k], "transceiver", &trans, NULL);
    if (trans == NULL)
      continue;
    g_object_get (trans, "mid", &mid, "codec-preferences", &prefs, NULL);

    if (mid != NULL) {
      media = sdp_media_for_mid (offer, mid);
    } else {
      /* Not associated yet: webrtcbin takes the first m-line of this kind that
       * no other transceiver owns. */
      for (guint i = 0; media == NULL && i < gst_sdp_message_medias_len (offer); i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media (offer, i);
        const char *m_mid = gst_sdp_media_get_attribute_val (m, "mid");
        gboolean owned = FALSE;

        if (g_strcmp0 (gst_sdp_media_get_media (m), kind_media (kinds[k])) != 0 ||
            gst_sdp_media_get_port (m) == 0)
          continue;
        for (guint t = 0; transceivers != NULL && t < transceivers->len && !owned; t++) {
          GstWebRTCRTPTransceiver *other = g_array_index (transceivers,
                                                          GstWebRTCRTPTransceiver *, t);
          g_autofree char *other_mid = NULL;

          g_object_get (other, "mid", &other_mid, NULL);
          owned = other_mid != NULL && g_strcmp0 (other_mid, m_mid) == 0;
        }
        if (!owned)
          media = m;
      }
    }
    if (media == NULL)
      continue;
    pt = media_payload_type (media, kind_encoding (kinds[k]));
    if (pt < 0)
      continue;

    if (prefs != NULL && gst_caps_get_size (prefs) > 0)
      gst_structure_get_int (gst_caps_get_structure (prefs, 0), "payload", &current);
    if (pt == current)
      continue;

    g_debug ("Sending %s as payload type %d (was %d), as the offer has it",
             kind_encoding (kinds[k]), pt, current);
    g_clear_pointer (&prefs, gst_caps_unref);
    prefs = caps_for_kind (kinds[k], pt);
    g_object_set (trans, "codec-preferences", prefs, NULL);
    payloader = sender_payloader (pads[k]);
    if (payloader != NULL)
      g_object_set (payloader, "pt", (guint) pt, NULL);
  }
}

static gboolean
conn_pad_negotiated (GstPad *pad)
{
  g_autoptr(GstWebRTCRTPTransceiver) trans = NULL;
  g_autofree char *mid = NULL;

  if (pad == NULL)
    return TRUE;

  g_object_get (pad, "transceiver", &trans, NULL);
  if (trans == NULL)
    return FALSE;
  g_object_get (trans, "mid", &mid, NULL);
  return mid != NULL;
}

static gboolean
description_has_application (GstWebRTCSessionDescription *desc)
{
  if (desc == NULL || desc->sdp == NULL)
    return FALSE;

  for (guint i = 0; i < gst_sdp_message_medias_len (desc->sdp); i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (desc->sdp, i);

    if (g_strcmp0 (gst_sdp_media_get_media (media), "application") == 0 &&
        gst_sdp_media_get_port (media) != 0)
      return TRUE;
  }
  return FALSE;
}

static gboolean
conn_has_application (Conn *conn)
{
  GstWebRTCSessionDescription *desc = NULL;
  gboolean result;

  g_object_get (conn->webrtc, "current-local-description", &desc, NULL);
  result = description_has_application (desc);
  g_clear_pointer (&desc, gst_webrtc_session_description_free);
  return result;
}

/* Whether something we send is not part of the negotiated session yet. */
static gboolean
peer_has_unnegotiated_changes (ParleyPeer *self)
{
  Conn *conn = self->conn;

  if (conn == NULL)
    return FALSE;
  if (!conn_pad_negotiated (conn->audio_pad) || !conn_pad_negotiated (conn->video_pad))
    return TRUE;
  if (self->channels->len > 0 && !conn_has_application (conn))
    return TRUE;
  return FALSE;
}

static char *
conn_mid_for_mline (Conn       *conn,
                    const char *property,
                    guint       mline_index)
{
  GstWebRTCSessionDescription *desc = NULL;
  char *mid = NULL;

  g_object_get (conn->webrtc, property, &desc, NULL);
  if (desc != NULL && desc->sdp != NULL && mline_index < gst_sdp_message_medias_len (desc->sdp)) {
    const GstSDPMedia *media = gst_sdp_message_get_media (desc->sdp, mline_index);

    mid = g_strdup (gst_sdp_media_get_attribute_val (media, "mid"));
  }
  g_clear_pointer (&desc, gst_webrtc_session_description_free);

  if (mid == NULL) {
    g_autoptr(GstWebRTCRTPTransceiver) trans = NULL;

    g_signal_emit_by_name (conn->webrtc, "get-transceiver", (gint) mline_index, &trans);
    if (trans != NULL)
      g_object_get (trans, "mid", &mid, NULL);
  }
  return mid;
}

static int
conn_mline_for_mid (Conn       *conn,
                    const char *mid)
{
  GstWebRTCSessionDescription *desc = NULL;
  int index = -1;

  g_object_get (conn->webrtc, "remote-description", &desc, NULL);
  if (desc != NULL && desc->sdp != NULL) {
    for (guint i = 0; i < gst_sdp_message_medias_len (desc->sdp); i++) {
      const GstSDPMedia *media = gst_sdp_message_get_media (desc->sdp, i);

      if (g_strcmp0 (gst_sdp_media_get_attribute_val (media, "mid"), mid) == 0) {
        index = i;
        break;
      }
    }
  }
  g_clear_pointer (&desc, gst_webrtc_session_description_free);
  return index;
}

static const char *
description_setup (GstWebRTCSessionDescription *desc)
{
  if (desc == NULL || desc->sdp == NULL)
    return NULL;

  for (guint i = 0; i < gst_sdp_message_medias_len (desc->sdp); i++) {
    const char *setup = gst_sdp_media_get_attribute_val (gst_sdp_message_get_media (desc->sdp, i),
                                                         "setup");

    if (setup != NULL)
      return setup;
  }
  return NULL;
}

/* webrtcbin 1.22 answers every offer with a=setup:active, so the side that made
 * the first offer (the DTLS server) becomes the client when it answers a
 * renegotiation. The DTLS connection keeps its roles, but an SCTP association
 * set up by that answer follows the new ones and never opens: keep the roles in
 * an answer that brings the first data channel. (Doing so for every answer makes
 * webrtcbin 1.22 refuse later answers that add media.) */
static void
conn_keep_dtls_role (Conn                        *conn,
                     GstWebRTCSessionDescription *answer)
{
  GstWebRTCSessionDescription *local = NULL;
  GstWebRTCSessionDescription *remote = NULL;
  const char *local_setup, *remote_setup;
  const char *keep = NULL;

  if (!description_has_application (answer) || conn_has_application (conn))
    return;

  g_object_get (conn->webrtc, "current-local-description", &local,
                "current-remote-description", &remote, NULL);
  local_setup = description_setup (local);
  remote_setup = description_setup (remote);
  if (g_strcmp0 (local_setup, "active") == 0 || g_strcmp0 (local_setup, "passive") == 0)
    keep = local_setup;
  else if (g_strcmp0 (local_setup, "actpass") == 0 && g_strcmp0 (remote_setup, "active") == 0)
    keep = "passive";
  else if (g_strcmp0 (local_setup, "actpass") == 0 && g_strcmp0 (remote_setup, "passive") == 0)
    keep = "active";

  for (guint i = 0; keep != NULL && i < gst_sdp_message_medias_len (answer->sdp); i++) {
    GstSDPMedia *media = (GstSDPMedia *) gst_sdp_message_get_media (answer->sdp, i);

    for (guint j = 0; j < gst_sdp_media_attributes_len (media); j++) {
      const GstSDPAttribute *attr = gst_sdp_media_get_attribute (media, j);

      if (g_strcmp0 (attr->key, "setup") == 0 && g_strcmp0 (attr->value, keep) != 0) {
        GstSDPAttribute replacement;

        gst_sdp_attribute_set (&replacement, "setup", keep);
        gst_sdp_media_replace_attribute (media, j, &replacement);
      }
    }
  }

  g_clear_pointer (&local, gst_webrtc_session_description_free);
  g_clear_pointer (&remote, gst_webrtc_session_description_free);
}

static void
pending_candidate_free (gpointer data)
{
  PendingCandidate *pc = data;

  g_free (pc->candidate);
  g_free (pc->sdp_mid);
  g_free (pc);
}

static void
conn_add_candidate (Conn       *conn,
                    const char *candidate,
                    const char *sdp_mid,
                    int         sdp_mline_index)
{
  if (sdp_mline_index < 0 && sdp_mid != NULL)
    sdp_mline_index = conn_mline_for_mid (conn, sdp_mid);
  if (sdp_mline_index < 0) {
    g_debug ("Dropping a candidate for unknown mid %s", sdp_mid);
    return;
  }
  g_signal_emit_by_name (conn->webrtc, "add-ice-candidate", (guint) sdp_mline_index, candidate);
}

/* Applies the buffered candidates of the current generation. */
static void
peer_flush_candidates (ParleyPeer *self)
{
  GList *l = self->pending_candidates.head;

  if (self->conn == NULL || !self->conn->has_remote_description)
    return;

  while (l != NULL) {
    GList *next = l->next;
    PendingCandidate *pc = l->data;

    if (pc->generation <= self->generation) {
      if (pc->generation == self->generation)
        conn_add_candidate (self->conn, pc->candidate, pc->sdp_mid, pc->sdp_mline_index);
      g_queue_delete_link (&self->pending_candidates, l);
      pending_candidate_free (pc);
    }
    l = next;
  }
}

static void
peer_reset_negotiation (ParleyPeer *self)
{
  self->making_offer = FALSE;
  self->awaiting_answer = FALSE;
  self->setting_remote_answer_pending = FALSE;
  self->ignore_offer = FALSE;
  self->answering = FALSE;
  self->remote_offer_failed = FALSE;
  self->needs_negotiation = FALSE;
  self->auto_renegotiations = 0;
  self->offer_serial++;
  g_clear_pointer (&self->pending_offer, gst_webrtc_session_description_free);
  g_clear_pointer (&self->local_answer, gst_webrtc_session_description_free);
  g_clear_pointer (&self->queued_remote_offer, gst_webrtc_session_description_free);
}

/* An offer/answer exchange is over and the signaling state is stable. */
static void
peer_negotiation_done (ParleyPeer *self)
{
  gboolean first = !self->negotiated_once;

  /* A handler of the signal that got here may have closed the peer. */
  if (self->conn == NULL || self->closed)
    return;

  self->negotiated_once = TRUE;
  self->conn->negotiated = TRUE;
  self->offer_retries = 0;
  conn_fix_codec_preferences (self->conn);
  if (self->state == PARLEY_PEER_STATE_NEW || self->state == PARLEY_PEER_STATE_RESTARTING)
    peer_set_state (self, PARLEY_PEER_STATE_CONNECTING);

  g_debug ("Peer %p: negotiated (generation %u%s)", self, self->generation,
           first ? ", first" : "");
  if (self->state == PARLEY_PEER_STATE_CONNECTED)
    conn_request_keyframe (self->conn);
  g_signal_emit (self, signals[SIGNAL_NEGOTIATED], 0);

  if (self->conn == NULL || self->closed)
    return;

  if (self->queued_remote_offer != NULL) {
    GstWebRTCSessionDescription *offer = g_steal_pointer (&self->queued_remote_offer);

    peer_handle_remote_offer (self, offer);
    gst_webrtc_session_description_free (offer);
    return;
  }

  if (self->needs_negotiation) {
    peer_negotiate_internal (self, FALSE);
  } else if (peer_has_unnegotiated_changes (self)) {
    if (self->auto_renegotiations < MAX_AUTO_RENEGOTIATIONS) {
      self->auto_renegotiations++;
      peer_negotiate_internal (self, TRUE);
    } else {
      g_debug ("Peer %p: giving up renegotiating unanswered changes", self);
    }
  } else {
    self->auto_renegotiations = 0;
  }
}

static GSource *peer_add_timeout (ParleyPeer  *self,
                                  guint        interval_ms,
                                  GSourceFunc  func,
                                  const char  *name);

/* Renegotiation offers that webrtcbin refuses while a sender's caps are in
 * flux are tried again after 150, 300, 600, 1200 and 2400 ms. */
#define OFFER_RETRIES 5
#define OFFER_RETRY_MS 150

static gboolean
offer_retry_cb (gpointer user_data)
{
  ParleyPeer *self = user_data;

  g_clear_pointer (&self->offer_retry_source, g_source_unref);
  if (!self->closed)
    peer_negotiate_internal (self, FALSE);
  return G_SOURCE_REMOVE;
}

static void
peer_negotiation_failed (ParleyPeer   *self,
                         const GError *error)
{
  gboolean retry = self->needs_negotiation;

  if (error != NULL)
    peer_emit_error (self, error);
  self->making_offer = FALSE;
  self->awaiting_answer = FALSE;
  self->setting_remote_answer_pending = FALSE;
  self->answering = FALSE;
  self->needs_negotiation = FALSE;
  g_clear_pointer (&self->pending_offer, gst_webrtc_session_description_free);
  if (retry)
    peer_negotiate_internal (self, FALSE);
}

static void
peer_emit_local_description (ParleyPeer                  *self,
                             GstWebRTCSessionDescription *desc)
{
  g_autofree char *text = gst_sdp_message_as_text (desc->sdp);
  const char *type = gst_webrtc_sdp_type_to_string (desc->type);

  g_debug ("Peer %p (%s): local %s, generation %u", self, self->polite ? "polite" : "impolite",
           type, self->generation);
  g_signal_emit (self, signals[SIGNAL_LOCAL_DESCRIPTION], 0, type, text, self->generation);
}

static void
handle_promise (ParleyPeer *self,
                Event      *event)
{
  Conn *conn = self->conn;
  g_autoptr(GError) error = NULL;

  switch (event->step) {
  case STEP_CREATE_OFFER: {
    GstWebRTCSessionDescription *offer;

    if (event->serial != self->offer_serial) {
      g_debug ("Peer %p: dropping an offer overtaken by a remote offer", self);
      return;
    }
    offer = reply_get_description (event->reply, TRUE, &error);
    if (offer == NULL && self->negotiated_once &&
        (self->offer_retry_source != NULL || self->offer_retries < OFFER_RETRIES)) {
      /* A renegotiation of a working connection: webrtcbin refuses an offer while a sender's
       * caps are in flux (seen right after a glare); the call goes on, so try again shortly
       * instead of failing it. Another offer of the same renegotiation that fails while a
       * retry is already due leaves it to that retry. */
      self->making_offer = FALSE;
      if (self->offer_retry_source == NULL) {
        guint delay_ms = OFFER_RETRY_MS << self->offer_retries;

        g_debug ("Peer %p: %s; offering again in %u ms", self, error->message, delay_ms);
        self->offer_retries++;
        self->offer_retry_source = peer_add_timeout (self, delay_ms, offer_retry_cb,
                                                     "[parley] peer offer retry");
      }
      return;
    }
    if (offer == NULL) {
      peer_negotiation_failed (self, error);
      return;
    }
    if (self->polite) {
      /* Deferred: applied only when its answer comes. */
      self->making_offer = FALSE;
      self->awaiting_answer = TRUE;
      g_clear_pointer (&self->pending_offer, gst_webrtc_session_description_free);
      self->pending_offer = offer;
      peer_set_string (self, &self->signaling_state, "stable", PROP_SIGNALING_STATE);
      peer_emit_local_description (self, offer);
    } else {
      g_clear_pointer (&self->pending_offer, gst_webrtc_session_description_free);
      self->pending_offer = offer;
      conn_emit_with_promise (conn, "set-local-description", offer, STEP_SET_LOCAL_OFFER,
                              event->serial);
    }
    break;
  }

  case STEP_SET_LOCAL_OFFER:
    if (event->serial != self->offer_serial)
      return;
    self->making_offer = FALSE;
    if (!reply_check (event->reply, _("Could not apply the local offer"), &error)) {
      peer_negotiation_failed (self, error);
      return;
    }
    self->awaiting_answer = TRUE;
    if (self->pending_offer != NULL)
      peer_emit_local_description (self, self->pending_offer);
    g_clear_pointer (&self->pending_offer, gst_webrtc_session_description_free);
    break;

  case STEP_APPLY_OWN_OFFER:
    if (!reply_check (event->reply, _("Could not apply the deferred local offer"), &error))
      peer_emit_error (self, error);
    break;

  case STEP_SET_REMOTE_ANSWER:
    self->setting_remote_answer_pending = FALSE;
    self->awaiting_answer = FALSE;
    if (!reply_check (event->reply, _("Could not apply the remote answer"), &error)) {
      peer_negotiation_failed (self, error);
      return;
    }
    conn->has_remote_description = TRUE;
    peer_flush_candidates (self);
    peer_negotiation_done (self);
    break;

  case STEP_SET_REMOTE_OFFER:
    if (!reply_check (event->reply, _("Could not apply the remote offer"), &error)) {
      /* The create-answer queued behind it fails as well and ends the exchange;
       * this error is the one worth reporting. */
      self->remote_offer_failed = TRUE;
      peer_emit_error (self, error);
      return;
    }
    conn->has_remote_description = TRUE;
    peer_flush_candidates (self);
    break;

  case STEP_CREATE_ANSWER: {
    GstWebRTCSessionDescription *answer = reply_get_description (event->reply, FALSE, &error);

    if (answer == NULL) {
      if (self->remote_offer_failed)
        g_clear_error (&error);
      self->remote_offer_failed = FALSE;
      peer_negotiation_failed (self, error);
      return;
    }
    conn_keep_dtls_role (conn, answer);
    conn_emit_with_promise (conn, "set-local-description", answer, STEP_SET_LOCAL_ANSWER,
                            0);
    g_clear_pointer (&self->local_answer, gst_webrtc_session_description_free);
    self->local_answer = answer;
    break;
  }

  case STEP_SET_LOCAL_ANSWER:
    self->answering = FALSE;
    if (!reply_check (event->reply, _("Could not apply the local answer"), &error)) {
      g_clear_pointer (&self->local_answer, gst_webrtc_session_description_free);
      peer_negotiation_failed (self, error);
      return;
    }
    if (self->local_answer != NULL)
      peer_emit_local_description (self, self->local_answer);
    g_clear_pointer (&self->local_answer, gst_webrtc_session_description_free);
    peer_negotiation_done (self);
    break;

  case STEP_GET_STATS: {
    g_autoptr(ParleyPeerStats) stats = parley_peer_stats_new ();

    if (event->reply == NULL || gst_structure_has_field (event->reply, "error"))
      return;
    parley_peer_stats_update_from_structure (stats, event->reply, self->stats);
    if (self->local_candidate_type != NULL)
      parley_peer_stats_set_candidate_types (stats, self->local_candidate_type,
                                             self->remote_candidate_type);
    g_clear_pointer (&self->stats, parley_peer_stats_free);
    self->stats = g_steal_pointer (&stats);
    g_signal_emit (self, signals[SIGNAL_STATS], 0, self->stats);
    break;
  }

  default:
    g_assert_not_reached ();
  }
}

static ParleyDataChannel *
peer_find_channel (GPtrArray  *channels,
                   const char *label)
{
  for (guint i = 0; i < channels->len; i++) {
    ParleyDataChannel *channel = g_ptr_array_index (channels, i);

    if (g_strcmp0 (parley_data_channel_get_label (channel), label) == 0)
      return channel;
  }
  return NULL;
}

/* A new channel of this peer, its delivering thread raised as the settings
 * say ([property@MediaSettings:realtime]). */
static ParleyDataChannel *
peer_new_channel (ParleyPeer *self,
                  const char *label,
                  gboolean    reliable)
{
  ParleyDataChannel *channel = parley_data_channel_new (label, reliable);

  parley_data_channel_set_realtime (channel, parley_media_settings_get_realtime (self->settings));
  return channel;
}

static void
handle_remote_data_channel (ParleyPeer *self,
                            GObject    *gst_channel)
{
  g_autofree char *label = NULL;
  gint max_retransmits = -1;
  gboolean ordered = TRUE;
  ParleyDataChannel *channel;

  g_object_get (gst_channel, "label", &label, "ordered", &ordered,
                "max-retransmits", &max_retransmits, NULL);

  /* After a restart the far side re-creates its channels: re-bind ours. */
  channel = peer_find_channel (self->remote_channels, label);
  if (channel != NULL) {
    parley_data_channel_bind (channel, gst_channel);
    return;
  }

  channel = peer_new_channel (self, label, ordered && max_retransmits != 0);
  g_ptr_array_add (self->remote_channels, channel);
  parley_data_channel_bind (channel, gst_channel);
  g_signal_emit (self, signals[SIGNAL_DATA_CHANNEL], 0, channel);
}

static void
handle_connection_state (ParleyPeer *self)
{
  GstWebRTCPeerConnectionState state = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;

  g_object_get (self->conn->webrtc, "connection-state", &state, NULL);
  g_debug ("Peer %p: connection %s", self,
           enum_nick (GST_TYPE_WEBRTC_PEER_CONNECTION_STATE, state));

  switch (state) {
  case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTING:
    if (self->state != PARLEY_PEER_STATE_RESTARTING || self->negotiated_once)
      peer_set_state (self, PARLEY_PEER_STATE_CONNECTING);
    break;
  case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED:
    conn_request_keyframe (self->conn);
    peer_set_state (self, PARLEY_PEER_STATE_CONNECTED);
    if (self->needs_negotiation)
      peer_negotiate_internal (self, TRUE);
    break;
  case GST_WEBRTC_PEER_CONNECTION_STATE_DISCONNECTED:
    peer_set_state (self, PARLEY_PEER_STATE_DISCONNECTED);
    break;
  case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED:
    /* At most one restart per restart-timeout; the watchdog retries later. */
    if (g_get_monotonic_time () - self->last_restart_us >= (gint64) self->restart_timeout * 1000)
      peer_restart_internal (self, self->generation + 1, TRUE);
    else
      peer_set_state (self, PARLEY_PEER_STATE_DISCONNECTED);
    break;
  case GST_WEBRTC_PEER_CONNECTION_STATE_NEW:
  case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED:
  default:
    break;
  }
}

static gboolean
dispatch_event_cb (gpointer data)
{
  Event *event = data;
  Conn *conn = event->conn;
  g_autoptr(ParleyPeer) self = g_weak_ref_get (&conn->peer);

  if (self == NULL || self->conn != conn || self->closed)
    return G_SOURCE_REMOVE;

  switch (event->type) {
  case EVENT_PROMISE:
    handle_promise (self, event);
    break;

  case EVENT_ICE_CANDIDATE: {
    g_autofree char *mid = conn_mid_for_mline (conn, "local-description", event->number);

    g_signal_emit (self, signals[SIGNAL_LOCAL_CANDIDATE], 0, event->text, mid,
                   (int) event->number, conn->generation);
    break;
  }

  case EVENT_SIGNALING_STATE: {
    GstWebRTCSignalingState state = GST_WEBRTC_SIGNALING_STATE_STABLE;

    g_object_get (conn->webrtc, "signaling-state", &state, NULL);
    peer_set_string (self, &self->signaling_state,
                     enum_nick (GST_TYPE_WEBRTC_SIGNALING_STATE, state), PROP_SIGNALING_STATE);
    break;
  }

  case EVENT_CONNECTION_STATE:
    handle_connection_state (self);
    break;

  case EVENT_ICE_CONNECTION_STATE: {
    GstWebRTCICEConnectionState state = GST_WEBRTC_ICE_CONNECTION_STATE_NEW;

    g_object_get (conn->webrtc, "ice-connection-state", &state, NULL);
    peer_set_string (self, &self->ice_connection_state,
                     enum_nick (GST_TYPE_WEBRTC_ICE_CONNECTION_STATE, state),
                     PROP_ICE_CONNECTION_STATE);
    break;
  }

  case EVENT_DATA_CHANNEL:
    handle_remote_data_channel (self, event->object);
    break;

  case EVENT_FIRST_FRAME: {
    guint index = g_strcmp0 (event->text, "video") == 0 ? 1 : 0;

    if (!conn->first_frame[index]) {
      conn->first_frame[index] = TRUE;
      g_signal_emit (self, signals[SIGNAL_FIRST_REMOTE_FRAME], 0, event->text);
    }
    break;
  }

  case EVENT_SAMPLE: {
    GstSample *sample;

    g_mutex_lock (&conn->lock);
    sample = g_steal_pointer (&conn->pending_sample);
    conn->sample_scheduled = FALSE;
    g_mutex_unlock (&conn->lock);
    if (sample != NULL) {
      g_signal_emit (self, signals[SIGNAL_REMOTE_VIDEO_SAMPLE], 0, sample);
      gst_sample_unref (sample);
    }
    break;
  }

  case EVENT_SELECTED_PAIR:
    g_free (self->local_candidate_type);
    g_free (self->remote_candidate_type);
    self->local_candidate_type = g_steal_pointer (&event->text);
    self->remote_candidate_type = g_steal_pointer (&event->text2);
    break;

  default:
    g_assert_not_reached ();
  }

  return G_SOURCE_REMOVE;
}

static gboolean
bus_message_cb (GstBus     *bus,
                GstMessage *message,
                gpointer    user_data)
{
  Conn *conn = user_data;
  g_autoptr(ParleyPeer) self = g_weak_ref_get (&conn->peer);

  if (self == NULL || self->conn != conn || self->closed)
    return G_SOURCE_CONTINUE;

  switch (GST_MESSAGE_TYPE (message)) {
  case GST_MESSAGE_ELEMENT: {
    const GstStructure *s = gst_message_get_structure (message);

    if (gst_structure_has_name (s, "parley-audio-report"))
      g_signal_emit (self, signals[SIGNAL_MEDIA_REPORT], 0, "audio", s);
    else if (gst_structure_has_name (s, "parley-video-report"))
      g_signal_emit (self, signals[SIGNAL_MEDIA_REPORT], 0, "video", s);
    break;
  }

  case GST_MESSAGE_ERROR: {
    g_autoptr(GError) error = NULL;
    g_autofree char *debug = NULL;

    gst_message_parse_error (message, &error, &debug);
    g_debug ("Pipeline error from %s: %s (%s)", GST_OBJECT_NAME (GST_MESSAGE_SRC (message)),
             error->message, debug);
    /* Transport errors (ICE, DTLS) show in the connection state, which restarts
     * the connection; only media errors are worth reporting. */
    if (!gst_object_has_as_ancestor (GST_MESSAGE_SRC (message), GST_OBJECT (conn->webrtc)))
      peer_emit_error (self, error);
    break;
  }

  case GST_MESSAGE_LATENCY:
    /* Receivers are added while playing; their latency changes the pipeline's. */
    gst_bin_recalculate_latency (GST_BIN (conn->pipeline));
    break;

  case GST_MESSAGE_WARNING: {
    g_autoptr(GError) error = NULL;
    g_autofree char *debug = NULL;

    gst_message_parse_warning (message, &error, &debug);
    g_debug ("Pipeline warning from %s: %s (%s)", GST_OBJECT_NAME (GST_MESSAGE_SRC (message)),
             error->message, debug);
    break;
  }

  default:
    break;
  }

  return G_SOURCE_CONTINUE;
}

/* Whether @element's streaming thread carries data channel messages or
 * incoming packets (webrtcbin 1.22's transport and SCTP elements): nicesrc,
 * the queue behind it, DTLS and SCTP in both directions, and the appsrc of
 * each data channel. The media pipelines' threads (sources, encoders,
 * jitterbuffers, decoders) are not. */
static gboolean
is_data_path_element (GstElement *webrtc,
                      GstElement *element)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  const char *name = factory != NULL ? GST_OBJECT_NAME (factory) : "";
  g_autoptr(GstObject) parent = gst_object_get_parent (GST_OBJECT (element));

  if (g_str_equal (name, "nicesrc") || g_str_equal (name, "dtlsenc") ||
      g_str_equal (name, "sctpenc") || g_str_equal (name, "sctpdec"))
    return TRUE;
  if (g_str_equal (name, "appsrc"))
    return gst_object_has_as_ancestor (GST_OBJECT (element), GST_OBJECT (webrtc));
  if (g_str_equal (name, "queue"))
    return parent != NULL && g_str_equal (G_OBJECT_TYPE_NAME (parent), "TransportReceiveBin");
  return FALSE;
}

/* Runs on the thread that posts the message: a streaming thread entering
 * its task asks for its priority here (see parley_sched_realtime()).
 * @user_data is the webrtcbin, which the pipeline owns as long as it has
 * elements to post messages. */
static GstBusSyncReply
bus_sync_cb (GstBus     *bus,
             GstMessage *message,
             gpointer    user_data)
{
  GstElement *webrtc = user_data;
  GstStreamStatusType type;
  GstElement *owner = NULL;

  if (GST_MESSAGE_TYPE (message) != GST_MESSAGE_STREAM_STATUS)
    return GST_BUS_PASS;
  gst_message_parse_stream_status (message, &type, &owner);
  if (owner == NULL)
    return GST_BUS_PASS;
  /* Streaming threads come from a pool shared by every pipeline: one that
   * leaves a data path task, or that enters another one still raised,
   * goes back to normal. */
  if (type == GST_STREAM_STATUS_TYPE_ENTER && is_data_path_element (webrtc, owner))
    parley_sched_realtime (GST_OBJECT_NAME (owner));
  else if (type == GST_STREAM_STATUS_TYPE_ENTER || type == GST_STREAM_STATUS_TYPE_LEAVE)
    parley_sched_reset (GST_OBJECT_NAME (owner));
  return GST_BUS_PASS;
}

/* Building and tearing down connections. */

static gboolean
conn_add_sender (Conn        *conn,
                 gboolean     video,
                 gboolean     muted,
                 GError     **error)
{
  g_autofree char *description = NULL;
  g_autoptr(GstWebRTCRTPTransceiver) trans = NULL;
  g_autoptr(GstCaps) prefs = NULL;
  g_autoptr(GstPad) encoder_src = NULL;
  GstElement *source;
  GstElement *encoder;
  GstPad *pad;

  source = video ? parley_media_create_video_source (conn->settings, error)
                 : parley_media_create_audio_source (conn->settings, error);
  if (source == NULL)
    return FALSE;

  if (video) {
    guint width = 640, height = 480, framerate = 30;
    guint64 bitrate;
    guint threads;

    parley_media_settings_get_video_format (conn->settings, &width, &height, &framerate);
    bitrate = (guint64) 1000000 * width * height / (640 * 480);
    bitrate = CLAMP (bitrate, 150000, 4000000);
    /* One encoder thread up to 640x480: libvpx's threads wait for each
     * other by spinning, and with both CPUs of a small machine busy (the
     * other peer, the decoder) a second thread cost a video call 66-73 %
     * of a CPU per peer against 24-25 % with one, and slowed everything
     * else in the process (data channel round trip p50 2.9-4.1 against
     * 1.1 ms). Larger pictures get a second thread where there are more
     * than two CPUs. */
    threads = width * height > 640 * 480 && g_get_num_processors () > 2 ? 2 : 1;
    description = g_strdup_printf ("queue max-size-buffers=2 leaky=downstream ! videoconvert ! "
                                   "vp8enc deadline=1 cpu-used=8 threads=%u end-usage=cbr "
                                   "lag-in-frames=0 error-resilient=partitions "
                                   "keyframe-max-dist=60 target-bitrate=%" G_GUINT64_FORMAT " ! "
                                   "rtpvp8pay pt=%d picture-id-mode=15-bit", threads, bitrate,
                                   VIDEO_PT);
  } else {
    description = g_strdup_printf ("queue max-size-time=200000000 leaky=downstream ! "
                                   "audioconvert ! audioresample ! opusenc ! "
                                   "rtpopuspay pt=%d", AUDIO_PT);
  }

  encoder = gst_parse_bin_from_description (description, TRUE, error);
  if (encoder == NULL) {
    gst_object_unref (gst_object_ref_sink (source));
    return FALSE;
  }

  parley_media_source_set_muted (source, muted);
  gst_bin_add_many (GST_BIN (conn->pipeline), source, encoder, NULL);
  if (!gst_element_link (source, encoder)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not link the %s source"),
                 video ? "video" : "audio");
    return FALSE;
  }

  pad = gst_element_request_pad_simple (conn->webrtc, "sink_%u");
  if (pad == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("webrtcbin gave no sink pad"));
    return FALSE;
  }
  /* Concrete codec preferences make the offer independent of when the encoder's
   * caps arrive, and let webrtcbin reuse transceivers on later offers. */
  g_object_get (pad, "transceiver", &trans, NULL);
  if (trans != NULL) {
    prefs = caps_for_kind (video ? GST_WEBRTC_KIND_VIDEO : GST_WEBRTC_KIND_AUDIO, -1);
    g_object_set (trans, "codec-preferences", prefs, NULL);
  }

  encoder_src = gst_element_get_static_pad (encoder, "src");
  if (gst_pad_link (encoder_src, pad) != GST_PAD_LINK_OK) {
    gst_element_release_request_pad (conn->webrtc, pad);
    gst_object_unref (pad);
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not link the %s encoder"),
                 video ? "video" : "audio");
    return FALSE;
  }

  if (video) {
    conn->video_source = source;
    conn->video_encoder = encoder;
    conn->video_pad = pad;
  } else {
    conn->audio_source = source;
    conn->audio_pad = pad;
  }

  gst_element_sync_state_with_parent (encoder);
  gst_element_sync_state_with_parent (source);
  return TRUE;
}

static void
conn_create_channel (Conn              *conn,
                     ParleyDataChannel *channel)
{
  g_autoptr(GstStructure) options = NULL;
  GObject *gst_channel = NULL;

  if (!parley_data_channel_get_reliable (channel))
    options = gst_structure_from_string (UNRELIABLE_OPTIONS, NULL);

  g_signal_emit_by_name (conn->webrtc, "create-data-channel",
                         parley_data_channel_get_label (channel), options, &gst_channel);
  if (gst_channel == NULL) {
    g_debug ("webrtcbin created no channel %s", parley_data_channel_get_label (channel));
    return;
  }
  parley_data_channel_bind (channel, gst_channel);
  g_object_unref (gst_channel);
}

/* Closing webrtcbin's ICE agent: shared by the teardown, which waits for
 * it a while, and the thread that closes the agent, which keeps webrtcbin
 * (and with it its ICE object, whose thread runs the agent and which calls
 * back into webrtcbin) until the close is done. */
typedef struct {
  gatomicrefcount ref_count;
  GstElement     *webrtc;
  GObject        *agent;
  GMutex          lock;
  GCond           cond;
  gboolean        done;
} AgentClose;

static void
agent_close_unref (AgentClose *job)
{
  if (!g_atomic_ref_count_dec (&job->ref_count))
    return;
  g_clear_object (&job->agent);
  g_clear_object (&job->webrtc);
  g_mutex_clear (&job->lock);
  g_cond_clear (&job->cond);
  g_free (job);
}

static void
agent_closed_cb (GObject      *agent,
                 GAsyncResult *result,
                 gpointer      data)
{
  AgentClose *job = data;

  g_mutex_lock (&job->lock);
  job->done = TRUE;
  g_cond_signal (&job->cond);
  g_mutex_unlock (&job->lock);
}

static gpointer
agent_close_thread (gpointer data)
{
  AgentClose *job = data;
  GMainContext *context = g_main_context_new ();
  gboolean done = FALSE;

  g_main_context_push_thread_default (context);
  nice_agent_close_async (NICE_AGENT (job->agent), agent_closed_cb, job);
  while (!done) {
    g_main_context_iteration (context, TRUE);
    g_mutex_lock (&job->lock);
    done = job->done;
    g_mutex_unlock (&job->lock);
  }
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  /* When the teardown gave up waiting, webrtcbin and its agent end here,
   * once the servers answered or the agent gave up on them. */
  agent_close_unref (job);
  return NULL;
}

/* webrtcbin 1.22 lets its ICE agent go without closing it, so the TURN
 * allocations of a call's relayed candidates stayed on their servers until
 * they expired (and libnice warned: "We still have alive TURN refreshes").
 * At the end of a call, closes the agent while the pipeline still runs
 * (its sources read the servers' answers), and waits
 * AGENT_CLOSE_TIMEOUT_MS at most: a server that does not answer must not
 * hold up the hangup. Not at a restart: an agent closed then, its old path
 * often gone, kept the new connection from recovering (the netns calls
 * test); its allocations expire as before. */
static void
conn_close_agent (Conn *conn)
{
  AgentClose *job;
  GThread *thread;
  gint64 deadline;
  g_autoptr (GError) error = NULL;

  if (conn->agent == NULL || conn->webrtc == NULL)
    return;
  job = g_new0 (AgentClose, 1);
  g_atomic_ref_count_init (&job->ref_count);
  g_mutex_init (&job->lock);
  g_cond_init (&job->cond);
  job->webrtc = gst_object_ref (conn->webrtc);
  job->agent = g_object_ref (conn->agent);

  g_atomic_ref_count_inc (&job->ref_count);
  thread = g_thread_try_new ("parley-ice-close", agent_close_thread, job, &error);
  if (thread == NULL) {
    g_debug ("Cannot close the ICE agent: %s", error->message);
    agent_close_unref (job);
    agent_close_unref (job);
    return;
  }
  g_thread_unref (thread);

  deadline = g_get_monotonic_time () + AGENT_CLOSE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  g_mutex_lock (&job->lock);
  while (!job->done && g_cond_wait_until (&job->cond, &job->lock, deadline))
    ;
  if (!job->done)
    g_debug ("The ICE agent's servers did not answer within %d ms", AGENT_CLOSE_TIMEOUT_MS);
  g_mutex_unlock (&job->lock);
  agent_close_unref (job);
}

/* @closing: the call ends (else a restart follows); see conn_close_agent(). */
static void
conn_teardown (Conn     *conn,
               gboolean  closing)
{
  GPtrArray *promises;

  if (conn->bus_source != NULL) {
    g_source_destroy (conn->bus_source);
    g_clear_pointer (&conn->bus_source, g_source_unref);
  }
  if (conn->agent != NULL)
    g_signal_handlers_disconnect_by_data (conn->agent, conn);
  if (conn->webrtc != NULL)
    g_signal_handlers_disconnect_by_data (conn->webrtc, conn);
  if (closing)
    conn_close_agent (conn);
  if (conn->pipeline != NULL)
    gst_element_set_state (conn->pipeline, GST_STATE_NULL);

  g_mutex_lock (&conn->lock);
  promises = g_steal_pointer (&conn->promises);
  conn->promises = g_ptr_array_new ();
  g_mutex_unlock (&conn->lock);
  for (guint i = 0; i < promises->len; i++) {
    gst_promise_interrupt (g_ptr_array_index (promises, i));
    gst_promise_unref (g_ptr_array_index (promises, i));
  }
  g_ptr_array_unref (promises);

  /* Pad probes and appsink handlers hold references on @conn: dropping the
   * pipeline here breaks that cycle. */
  conn->audio_source = conn->video_source = conn->video_encoder = NULL;
  g_clear_object (&conn->audio_pad);
  g_clear_object (&conn->video_pad);
  g_clear_object (&conn->agent);
  g_clear_object (&conn->webrtc);
  g_clear_object (&conn->pipeline);
}

static Conn *
peer_build_conn (ParleyPeer  *self,
                 GError     **error)
{
  Conn *conn = g_new0 (Conn, 1);
  g_autofree char *name = g_strdup_printf ("parley-peer-%s-%u",
                                           self->polite ? "polite" : "impolite",
                                           self->generation);
  g_autoptr(GstBus) bus = NULL;
  GObject *ice = NULL;

  g_atomic_ref_count_init (&conn->ref_count);
  g_weak_ref_init (&conn->peer, self);
  g_mutex_init (&conn->lock);
  conn->promises = g_ptr_array_new ();
  conn->context = g_main_context_ref (self->context);
  conn->settings = g_object_ref (self->settings);
  conn->generation = self->generation;

  conn->pipeline = gst_object_ref_sink (gst_pipeline_new (name));
  conn->webrtc = gst_element_factory_make ("webrtcbin", NULL);
  if (conn->webrtc == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("webrtcbin is not installed"));
    conn_unref (conn);
    return NULL;
  }
  gst_object_ref_sink (conn->webrtc);
  gst_bin_add (GST_BIN (conn->pipeline), conn->webrtc);

  g_object_set (conn->webrtc,
                "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE,
                "latency", parley_media_settings_get_jitter_latency (self->settings),
                "ice-transport-policy", self->relay_only ? GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY
                                                         : GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL,
                NULL);
  if (self->stun_url != NULL)
    g_object_set (conn->webrtc, "stun-server", self->stun_url, NULL);
  for (guint i = 0; i < self->turn_urls->len; i++) {
    gboolean added = FALSE;

    g_signal_emit_by_name (conn->webrtc, "add-turn-server",
                           g_ptr_array_index (self->turn_urls, i), &added);
    if (!added)
      g_debug ("webrtcbin refused a TURN server");
  }

  g_signal_connect_data (conn->webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate_cb),
                         conn_ref (conn), conn_closure_notify, 0);
  g_signal_connect_data (conn->webrtc, "notify::signaling-state", G_CALLBACK (on_notify_cb),
                         conn_ref (conn), conn_closure_notify, 0);
  g_signal_connect_data (conn->webrtc, "notify::connection-state", G_CALLBACK (on_notify_cb),
                         conn_ref (conn), conn_closure_notify, 0);
  g_signal_connect_data (conn->webrtc, "notify::ice-connection-state",
                         G_CALLBACK (on_notify_cb),
                         conn_ref (conn), conn_closure_notify, 0);
  g_signal_connect_data (conn->webrtc, "on-data-channel", G_CALLBACK (on_data_channel_cb),
                         conn_ref (conn), conn_closure_notify, 0);
  g_signal_connect_data (conn->webrtc, "pad-added", G_CALLBACK (on_pad_added_cb),
                         conn_ref (conn), conn_closure_notify, 0);

  g_object_get (conn->webrtc, "ice-agent", &ice, NULL);
  if (ice != NULL && g_object_class_find_property (G_OBJECT_GET_CLASS (ice), "agent") != NULL) {
    g_object_get (ice, "agent", &conn->agent, NULL);
    /* UPnP port mapping only delays gathering and chatters on the LAN. */
    if (conn->agent != NULL && g_object_class_find_property (G_OBJECT_GET_CLASS (conn->agent),
                                                             "upnp") != NULL)
      g_object_set (conn->agent, "upnp", FALSE, NULL);
    if (conn->agent != NULL)
      g_signal_connect_data (conn->agent, "new-selected-pair-full",
                             G_CALLBACK (on_selected_pair_cb),
                             conn_ref (conn), conn_closure_notify, 0);
  }
  g_clear_object (&ice);

  if ((self->audio && !conn_add_sender (conn, FALSE, self->audio_muted, error)) ||
      (self->video && !conn_add_sender (conn, TRUE, self->video_muted, error))) {
    conn_teardown (conn, FALSE);
    conn_unref (conn);
    return NULL;
  }

  bus = gst_pipeline_get_bus (GST_PIPELINE (conn->pipeline));
  if (parley_media_settings_get_realtime (conn->settings))
    gst_bus_set_sync_handler (bus, bus_sync_cb, conn->webrtc, NULL);
  conn->bus_source = gst_bus_create_watch (bus);
  g_source_set_callback (conn->bus_source, (GSourceFunc) G_CALLBACK (bus_message_cb),
                         conn_ref (conn), (GDestroyNotify) conn_unref);
  g_source_attach (conn->bus_source, self->context);

  if (gst_element_set_state (conn->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not start the call pipeline"));
    conn_teardown (conn, FALSE);
    conn_unref (conn);
    return NULL;
  }

  for (guint i = 0; i < self->channels->len; i++)
    conn_create_channel (conn, g_ptr_array_index (self->channels, i));

  return conn;
}

/* @closing: the call ends (else a restart builds a new connection next). */
static void
peer_drop_conn (ParleyPeer *self,
                gboolean    closing)
{
  Conn *conn = g_steal_pointer (&self->conn);
  gint64 start_us;

  for (guint i = 0; i < self->channels->len; i++)
    parley_data_channel_bind (g_ptr_array_index (self->channels, i), NULL);
  for (guint i = 0; i < self->remote_channels->len; i++)
    parley_data_channel_bind (g_ptr_array_index (self->remote_channels, i), NULL);

  if (conn == NULL)
    return;
  start_us = g_get_monotonic_time ();
  conn_teardown (conn, closing);
  conn_unref (conn);
  g_debug ("Peer %p: connection of generation %u torn down in %" G_GINT64_FORMAT " ms", self,
           self->generation, (g_get_monotonic_time () - start_us) / 1000);
}

/* Perfect Negotiation. */

static void
peer_negotiate_internal (ParleyPeer *self,
                         gboolean    automatic)
{
  Conn *conn = self->conn;

  if (conn == NULL || self->closed)
    return;

  if (!automatic)
    self->auto_renegotiations = 0;

  if (self->making_offer || self->awaiting_answer || self->answering) {
    g_debug ("Peer %p: negotiation busy, offering later", self);
    self->needs_negotiation = TRUE;
    return;
  }

  /* A renegotiation can swap the DTLS roles (the answerer becomes the offerer):
   * harmless once the handshake is done, fatal during it. */
  if (conn->negotiated && self->state != PARLEY_PEER_STATE_CONNECTED) {
    g_debug ("Peer %p: renegotiating once connected", self);
    self->needs_negotiation = TRUE;
    return;
  }

  self->needs_negotiation = FALSE;
  self->making_offer = TRUE;
  self->offer_serial++;
  conn_emit_with_promise (conn, "create-offer", NULL, STEP_CREATE_OFFER, self->offer_serial);
}

static void
peer_handle_remote_offer (ParleyPeer                  *self,
                          GstWebRTCSessionDescription *offer)
{
  Conn *conn = self->conn;
  gboolean collision;

  if (self->answering) {
    /* Answer the latest offer once the current exchange is over. */
    g_clear_pointer (&self->queued_remote_offer, gst_webrtc_session_description_free);
    self->queued_remote_offer = gst_webrtc_session_description_copy (offer);
    return;
  }

  collision = self->making_offer ||
              (self->awaiting_answer && !self->setting_remote_answer_pending);
  self->ignore_offer = !self->polite && collision;
  if (self->ignore_offer) {
    g_debug ("Peer %p (impolite): ignoring a colliding offer", self);
    return;
  }

  if (collision) {
    /* Polite: our offer was never applied; drop it. Whatever the remote offer does
     * not cover is offered again once it is answered (peer_negotiation_done). */
    g_debug ("Peer %p (polite): dropping the own offer for the remote one", self);
    self->offer_serial++;
    self->making_offer = FALSE;
    self->awaiting_answer = FALSE;
    self->needs_negotiation = FALSE;
    g_clear_pointer (&self->pending_offer, gst_webrtc_session_description_free);
  }

  self->answering = TRUE;
  if (self->state == PARLEY_PEER_STATE_NEW)
    peer_set_state (self, PARLEY_PEER_STATE_CONNECTING);

  if (offer->sdp != NULL)
    conn_adopt_payload_types (conn, offer->sdp);

  /* webrtcbin runs its operations in order, so the answer is created right after
   * the offer is applied. */
  conn_emit_with_promise (conn, "set-remote-description", offer, STEP_SET_REMOTE_OFFER, 0);
  conn_emit_with_promise (conn, "create-answer", NULL, STEP_CREATE_ANSWER, 0);
}

static void
peer_handle_remote_answer (ParleyPeer                  *self,
                           GstWebRTCSessionDescription *answer)
{
  Conn *conn = self->conn;

  self->setting_remote_answer_pending = TRUE;
  if (self->polite && self->pending_offer != NULL) {
    GstWebRTCSessionDescription *offer = g_steal_pointer (&self->pending_offer);

    conn_emit_with_promise (conn, "set-local-description", offer, STEP_APPLY_OWN_OFFER, 0);
    gst_webrtc_session_description_free (offer);
  }
  conn_emit_with_promise (conn, "set-remote-description", answer, STEP_SET_REMOTE_ANSWER, 0);
}

/* Restart and watchdog. */

static void
peer_restart_internal (ParleyPeer *self,
                       guint       generation,
                       gboolean    offer)
{
  g_autoptr(GError) error = NULL;

  if (!self->started || self->closed)
    return;

  g_debug ("Peer %p (%s): restarting with generation %u", self,
           self->polite ? "polite" : "impolite", generation);

  peer_drop_conn (self, FALSE);
  peer_reset_negotiation (self);
  self->restarts++;
  self->last_restart_us = self->last_ok_us = g_get_monotonic_time ();
  self->last_rtp_in = 0;
  if (self->generation != generation) {
    self->generation = generation;
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_GENERATION]);
  }
  g_clear_pointer (&self->local_candidate_type, g_free);
  g_clear_pointer (&self->remote_candidate_type, g_free);
  peer_set_string (self, &self->signaling_state, "stable", PROP_SIGNALING_STATE);
  peer_set_string (self, &self->ice_connection_state, "new", PROP_ICE_CONNECTION_STATE);
  peer_set_state (self, PARLEY_PEER_STATE_RESTARTING);

  self->conn = peer_build_conn (self, &error);
  if (self->conn == NULL) {
    peer_emit_error (self, error);
    peer_set_state (self, PARLEY_PEER_STATE_FAILED);
    return;
  }

  /* Drop candidates of older generations. */
  for (GList *l = self->pending_candidates.head; l != NULL;) {
    GList *next = l->next;
    PendingCandidate *pc = l->data;

    if (pc->generation < self->generation) {
      g_queue_delete_link (&self->pending_candidates, l);
      pending_candidate_free (pc);
    }
    l = next;
  }

  if (offer)
    peer_negotiate_internal (self, FALSE);
}

static gboolean
watchdog_cb (gpointer user_data)
{
  ParleyPeer *self = user_data;
  gint64 now = g_get_monotonic_time ();
  gboolean ok = FALSE;

  if (self->conn == NULL)
    return G_SOURCE_CONTINUE;

  if (self->state == PARLEY_PEER_STATE_CONNECTED) {
    gint rtp_in = g_atomic_int_get (&self->conn->rtp_in);
    gboolean expect_rtp = g_atomic_int_get (&self->conn->n_src_pads) > 0;

    ok = !expect_rtp || rtp_in != self->last_rtp_in;
    self->last_rtp_in = rtp_in;
  }

  if (ok) {
    self->last_ok_us = now;
  } else if ((self->ever_connected || self->restarts > 0) &&
             now - self->last_ok_us >= (gint64) self->restart_timeout * 1000) {
    g_debug ("Peer %p: no working connection for %u ms", self, self->restart_timeout);
    peer_restart_internal (self, self->generation + 1, TRUE);
  }

  return G_SOURCE_CONTINUE;
}

static gboolean
stats_cb (gpointer user_data)
{
  ParleyPeer *self = user_data;

  if (self->conn != NULL)
    conn_emit_with_promise (self->conn, "get-stats", NULL, STEP_GET_STATS, 0);
  return G_SOURCE_CONTINUE;
}

static GSource *
peer_add_timeout (ParleyPeer  *self,
                  guint        interval_ms,
                  GSourceFunc  func,
                  const char  *name)
{
  GSource *source = g_timeout_source_new (interval_ms);

  g_source_set_callback (source, func, self, NULL);
  g_source_set_static_name (source, name);
  g_source_attach (source, self->context);
  return source;
}

static void
peer_clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static void
peer_update_stats_timer (ParleyPeer *self)
{
  peer_clear_source (&self->stats_source);
  if (self->started && !self->closed && self->stats_interval > 0)
    self->stats_source = peer_add_timeout (self, self->stats_interval, stats_cb,
                                           "[parley] peer stats");
}

/* GObject. */

static void
parley_peer_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  ParleyPeer *self = PARLEY_PEER (object);

  switch (prop_id) {
  case PROP_POLITE:
    g_value_set_boolean (value, self->polite);
    break;
  case PROP_SETTINGS:
    g_value_set_object (value, self->settings);
    break;
  case PROP_STATE:
    g_value_set_enum (value, self->state);
    break;
  case PROP_SIGNALING_STATE:
    g_value_set_string (value, self->signaling_state);
    break;
  case PROP_ICE_CONNECTION_STATE:
    g_value_set_string (value, self->ice_connection_state);
    break;
  case PROP_GENERATION:
    g_value_set_uint (value, self->generation);
    break;
  case PROP_AUDIO:
    g_value_set_boolean (value, self->audio);
    break;
  case PROP_VIDEO:
    g_value_set_boolean (value, self->video);
    break;
  case PROP_AUDIO_MUTED:
    g_value_set_boolean (value, self->audio_muted);
    break;
  case PROP_VIDEO_MUTED:
    g_value_set_boolean (value, self->video_muted);
    break;
  case PROP_RELAY_ONLY:
    g_value_set_boolean (value, self->relay_only);
    break;
  case PROP_RESTART_TIMEOUT:
    g_value_set_uint (value, self->restart_timeout);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_peer_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  ParleyPeer *self = PARLEY_PEER (object);

  switch (prop_id) {
  case PROP_POLITE:
    self->polite = g_value_get_boolean (value);
    break;
  case PROP_SETTINGS:
    self->settings = g_value_dup_object (value);
    break;
  case PROP_AUDIO_MUTED:
    parley_peer_set_audio_muted (self, g_value_get_boolean (value));
    break;
  case PROP_VIDEO_MUTED:
    parley_peer_set_video_muted (self, g_value_get_boolean (value));
    break;
  case PROP_RELAY_ONLY:
    parley_peer_set_relay_only (self, g_value_get_boolean (value));
    break;
  case PROP_RESTART_TIMEOUT: {
    guint timeout = g_value_get_uint (value);

    if (timeout != self->restart_timeout) {
      self->restart_timeout = timeout;
      g_object_notify_by_pspec (object, pspec);
    }
    break;
  }
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_peer_constructed (GObject *object)
{
  ParleyPeer *self = PARLEY_PEER (object);

  G_OBJECT_CLASS (parley_peer_parent_class)->constructed (object);

  if (self->settings == NULL)
    self->settings = parley_media_settings_new ();
}

/* Stops resolving the relay's name, if that is going on. */
static void
relay_lookup_cancel (ParleyPeer *self)
{
  if (self->relay_lookup)
    g_cancellable_cancel (self->relay_lookup);
  g_clear_object (&self->relay_lookup);
}

static void
parley_peer_dispose (GObject *object)
{
  ParleyPeer *self = PARLEY_PEER (object);

  parley_peer_close (self);
  relay_lookup_cancel (self);
  g_clear_pointer (&self->channels, g_ptr_array_unref);
  g_clear_pointer (&self->remote_channels, g_ptr_array_unref);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (parley_peer_parent_class)->dispose (object);
}

static void
parley_peer_finalize (GObject *object)
{
  ParleyPeer *self = PARLEY_PEER (object);

  g_queue_clear_full (&self->pending_candidates, pending_candidate_free);
  g_clear_pointer (&self->pending_offer, gst_webrtc_session_description_free);
  g_clear_pointer (&self->local_answer, gst_webrtc_session_description_free);
  g_clear_pointer (&self->queued_remote_offer, gst_webrtc_session_description_free);
  g_clear_pointer (&self->stats, parley_peer_stats_free);
  g_clear_pointer (&self->turn_urls, g_ptr_array_unref);
  g_free (self->relay_host);
  g_free (self->relay_name);
  g_free (self->relay_username);
  g_free (self->relay_password);
  g_free (self->stun_url);
  g_free (self->signaling_state);
  g_free (self->ice_connection_state);
  g_free (self->local_candidate_type);
  g_free (self->remote_candidate_type);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (parley_peer_parent_class)->finalize (object);
}

static void
parley_peer_class_init (ParleyPeerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = parley_peer_get_property;
  object_class->set_property = parley_peer_set_property;
  object_class->constructed = parley_peer_constructed;
  object_class->dispose = parley_peer_dispose;
  object_class->finalize = parley_peer_finalize;

  properties[PROP_POLITE] =
    g_param_spec_boolean ("polite", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SETTINGS] =
    g_param_spec_object ("settings", NULL, NULL, PARLEY_TYPE_MEDIA_SETTINGS,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, PARLEY_TYPE_PEER_STATE, PARLEY_PEER_STATE_NEW,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SIGNALING_STATE] =
    g_param_spec_string ("signaling-state", NULL, NULL, "stable",
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_ICE_CONNECTION_STATE] =
    g_param_spec_string ("ice-connection-state", NULL, NULL, "new",
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_GENERATION] =
    g_param_spec_uint ("generation", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_AUDIO] =
    g_param_spec_boolean ("audio", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_VIDEO] =
    g_param_spec_boolean ("video", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_AUDIO_MUTED] =
    g_param_spec_boolean ("audio-muted", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_VIDEO_MUTED] =
    g_param_spec_boolean ("video-muted", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_RELAY_ONLY] =
    g_param_spec_boolean ("relay-only", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_RESTART_TIMEOUT] =
    g_param_spec_uint ("restart-timeout", NULL, NULL, 100, G_MAXUINT, DEFAULT_RESTART_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyPeer::local-description:
   * @self: the peer
   * @type: "offer" or "answer"
   * @sdp: the description
   * @generation: the connection generation it belongs to
   *
   * A description to send to the far side.
   */
  signals[SIGNAL_LOCAL_DESCRIPTION] =
    g_signal_new ("local-description", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3,
                  G_TYPE_STRING, G_TYPE_STRING, G_TYPE_UINT);
  /**
   * ParleyPeer::local-candidate:
   * @self: the peer
   * @candidate: the candidate line ("candidate:...")
   * @sdp_mid: (nullable): the mid of its m-line
   * @sdp_mline_index: the index of its m-line
   * @generation: the connection generation it belongs to
   *
   * A trickled ICE candidate to send to the far side.
   */
  signals[SIGNAL_LOCAL_CANDIDATE] =
    g_signal_new ("local-candidate", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 4,
                  G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT, G_TYPE_UINT);
  /**
   * ParleyPeer::state-changed:
   * @self: the peer
   * @state: the new state
   * @old_state: the previous state
   */
  signals[SIGNAL_STATE_CHANGED] =
    g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                  PARLEY_TYPE_PEER_STATE, PARLEY_TYPE_PEER_STATE);
  /**
   * ParleyPeer::first-remote-frame:
   * @self: the peer
   * @kind: "audio" or "video"
   *
   * The first decoded remote buffer of @kind, once per generation.
   */
  signals[SIGNAL_FIRST_REMOTE_FRAME] =
    g_signal_new ("first-remote-frame", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * ParleyPeer::media-report:
   * @self: the peer
   * @kind: "audio" or "video"
   * @report: the media sink's report (see parley-media.h)
   */
  signals[SIGNAL_MEDIA_REPORT] =
    g_signal_new ("media-report", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                  G_TYPE_STRING, GST_TYPE_STRUCTURE | G_SIGNAL_TYPE_STATIC_SCOPE);
  /**
   * ParleyPeer::remote-video-sample:
   * @self: the peer
   * @sample: the latest decoded remote video frame (RGBA)
   */
  signals[SIGNAL_REMOTE_VIDEO_SAMPLE] =
    g_signal_new ("remote-video-sample", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, GST_TYPE_SAMPLE);
  /**
   * ParleyPeer::stats:
   * @self: the peer
   * @stats: the latest sample
   */
  signals[SIGNAL_STATS] =
    g_signal_new ("stats", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                  PARLEY_TYPE_PEER_STATS | G_SIGNAL_TYPE_STATIC_SCOPE);
  /**
   * ParleyPeer::data-channel:
   * @self: the peer
   * @channel: a channel the far side opened
   */
  signals[SIGNAL_DATA_CHANNEL] =
    g_signal_new ("data-channel", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, PARLEY_TYPE_DATA_CHANNEL);
  /**
   * ParleyPeer::negotiated:
   * @self: the peer
   *
   * An offer/answer exchange completed; the signaling state is stable.
   */
  signals[SIGNAL_NEGOTIATED] =
    g_signal_new ("negotiated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /**
   * ParleyPeer::error:
   * @self: the peer
   * @error: what went wrong
   */
  signals[SIGNAL_ERROR] =
    g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
parley_peer_init (ParleyPeer *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->state = PARLEY_PEER_STATE_NEW;
  self->signaling_state = g_strdup ("stable");
  self->ice_connection_state = g_strdup ("new");
  self->restart_timeout = DEFAULT_RESTART_TIMEOUT_MS;
  self->stats_interval = DEFAULT_STATS_INTERVAL_MS;
  self->turn_urls = g_ptr_array_new_with_free_func (g_free);
  self->channels = g_ptr_array_new_with_free_func (g_object_unref);
  self->remote_channels = g_ptr_array_new_with_free_func (g_object_unref);
  g_queue_init (&self->pending_candidates);
}

/* Public API. */

/**
 * parley_peer_new:
 * @settings: (nullable): the media settings (a default object when %NULL)
 * @polite: whether this is the polite peer of Perfect Negotiation (the callee)
 *
 * Creates a peer. Its signals are emitted on the thread-default main context
 * of the caller.
 *
 * Returns: (transfer full): a new peer
 */
ParleyPeer *
parley_peer_new (ParleyMediaSettings *settings,
                 gboolean             polite)
{
  g_return_val_if_fail (settings == NULL || PARLEY_IS_MEDIA_SETTINGS (settings), NULL);

  return g_object_new (PARLEY_TYPE_PEER, "settings", settings, "polite", polite, NULL);
}

/**
 * parley_peer_get_polite:
 * @self: a peer
 *
 * Returns: whether @self is the polite peer
 */
gboolean
parley_peer_get_polite (ParleyPeer *self)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), FALSE);

  return self->polite;
}

/**
 * parley_peer_get_state:
 * @self: a peer
 *
 * Returns: the state of @self
 */
ParleyPeerState
parley_peer_get_state (ParleyPeer *self)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), PARLEY_PEER_STATE_CLOSED);

  return self->state;
}

/**
 * parley_peer_get_signaling_state:
 * @self: a peer
 *
 * Returns: webrtcbin's signaling state, like "stable" or "have-local-offer"
 */
const char *
parley_peer_get_signaling_state (ParleyPeer *self)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), NULL);

  return self->signaling_state;
}

/**
 * parley_peer_get_generation:
 * @self: a peer
 *
 * Returns: the generation of the current connection (0 until the first restart)
 */
guint
parley_peer_get_generation (ParleyPeer *self)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), 0);

  return self->generation;
}

/* Splits "turn[s]:[//][USER@]HOST:PORT[?transport=…]" into its scheme
 * ("turn" or "turns"), "HOST:PORT" and whether the transport is TCP.
 * Returns FALSE for anything else. */
static gboolean
turn_uri_split (const char  *uri,
                const char **scheme,
                char       **hostport,
                gboolean    *tcp)
{
  const char *rest, *query, *at;

  if (g_str_has_prefix (uri, "turns:")) {
    *scheme = "turns";
    rest = uri + strlen ("turns:");
  } else if (g_str_has_prefix (uri, "turn:")) {
    *scheme = "turn";
    rest = uri + strlen ("turn:");
  } else {
    return FALSE;
  }
  if (g_str_has_prefix (rest, "//"))
    rest += 2;
  at = strchr (rest, '@');
  query = strchr (rest, '?');
  if (at != NULL && (query == NULL || at < query))
    rest = at + 1;
  *hostport = query != NULL ? g_strndup (rest, query - rest) : g_strdup (rest);
  if (**hostport == '\0' || strchr (*hostport, '/') != NULL) {
    g_clear_pointer (hostport, g_free);
    return FALSE;
  }
  *tcp = query != NULL && strstr (query, "transport=tcp") != NULL;
  return TRUE;
}

/**
 * parley_peer_build_turn_url:
 * @uri: a TURN URI, "turn:host:port?transport=udp" (or turns:, with or without
 *   "//" and a user part, which is replaced)
 * @username: (nullable): the TURN user name
 * @password: (nullable): the TURN password
 *
 * Builds the turn(s)://USER:PASS@host:port form webrtcbin wants, with USER and
 * PASS percent-encoded (webrtcbin fails silently on raw ':', '+', '/', '=').
 * A transport other than UDP is kept as "?transport=tcp".
 *
 * Returns: (transfer full) (nullable): the URL, or %NULL if @uri is not a TURN URI
 */
char *
parley_peer_build_turn_url (const char *uri,
                            const char *username,
                            const char *password)
{
  g_autofree char *escaped_user = g_uri_escape_string (username != NULL ? username : "",
                                                       NULL, FALSE);
  g_autofree char *escaped_pass = g_uri_escape_string (password != NULL ? password : "",
                                                       NULL, FALSE);
  g_autofree char *hostport = NULL;
  const char *scheme;
  gboolean tcp;

  g_return_val_if_fail (uri != NULL, NULL);

  if (!turn_uri_split (uri, &scheme, &hostport, &tcp))
    return NULL;
  return g_strdup_printf ("%s://%s:%s@%s%s", scheme, escaped_user, escaped_pass, hostport,
                          tcp ? "?transport=tcp" : "");
}

static void
relay_resolved_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);
  ParleyPeer *self = user_data;
  GInetAddress *chosen = NULL;

  /* Cancelled: the peer may be gone. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_object (&self->relay_lookup);
  if (addresses == NULL) {
    g_debug ("Peer %p: cannot resolve the TURN server %s: %s", self, self->relay_name,
             error->message);
    return;
  }
  /* IPv4 first, as the relay's own candidates mostly are. */
  for (GList *l = addresses; l && chosen == NULL; l = l->next)
    if (g_inet_address_get_family (l->data) == G_SOCKET_FAMILY_IPV4)
      chosen = l->data;
  if (chosen == NULL)
    chosen = addresses->data;
  g_free (self->relay_host);
  self->relay_host = g_inet_address_to_string (chosen);
  g_resolver_free_addresses (addresses);
}

/* Keeps a "turn:" (not "turns:") server over UDP for parley_peer_get_relay(),
 * resolving its host first unless it is an IP address (IPv6 in brackets).
 * Returns FALSE for another kind of URI. */
static gboolean
peer_parse_udp_relay (ParleyPeer *self,
                      const char *uri,
                      const char *username,
                      const char *password)
{
  g_autofree char *hostport = NULL;
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(GResolver) resolver = NULL;
  const char *scheme, *host;
  gboolean tcp;

  if (!turn_uri_split (uri, &scheme, &hostport, &tcp) || !g_str_equal (scheme, "turn") || tcp)
    return FALSE;
  address = g_network_address_parse (hostport, 3478, NULL);
  host = address ? g_network_address_get_hostname (G_NETWORK_ADDRESS (address)) : NULL;
  if (host == NULL)
    return FALSE;
  self->relay_port = g_network_address_get_port (G_NETWORK_ADDRESS (address));
  g_free (self->relay_username);
  g_free (self->relay_password);
  self->relay_username = g_strdup (username);
  self->relay_password = g_strdup (password);
  if (g_hostname_is_ip_address (host)) {
    g_free (self->relay_host);
    self->relay_host = g_strdup (host);
    g_clear_pointer (&self->relay_name, g_free);
    return TRUE;
  }
  /* The same name as before keeps its address (fresh credentials only). */
  if (g_strcmp0 (host, self->relay_name) == 0 &&
      (self->relay_host != NULL || self->relay_lookup != NULL))
    return TRUE;
  g_free (self->relay_name);
  self->relay_name = g_strdup (host);
  g_clear_pointer (&self->relay_host, g_free);
  relay_lookup_cancel (self);
  self->relay_lookup = g_cancellable_new ();
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, host, self->relay_lookup, relay_resolved_cb, self);
  return TRUE;
}

/**
 * parley_peer_set_ice_servers:
 * @self: a peer
 * @stun_uri: (nullable): a STUN server, "stun:host:port"
 * @turn_uris: (nullable) (array zero-terminated=1): TURN servers,
 *   "turn:host:port?transport=udp"
 * @turn_username: (nullable): the TURN user name
 * @turn_password: (nullable): the TURN password
 *
 * Sets the ICE servers of the next connection (the first one, or the next
 * after a restart). Malformed URIs are skipped.
 */
void
parley_peer_set_ice_servers (ParleyPeer         *self,
                             const char         *stun_uri,
                             const char * const *turn_uris,
                             const char         *turn_username,
                             const char         *turn_password)
{
  gboolean relay_taken = FALSE;

  g_return_if_fail (PARLEY_IS_PEER (self));

  g_clear_pointer (&self->stun_url, g_free);
  if (stun_uri != NULL && g_str_has_prefix (stun_uri, "stun:")) {
    const char *rest = stun_uri + strlen ("stun:");

    if (g_str_has_prefix (rest, "//"))
      rest += 2;
    if (*rest != '\0')
      self->stun_url = g_strdup_printf ("stun://%s", rest);
  } else if (stun_uri != NULL) {
    g_debug ("Ignoring STUN server %s", stun_uri);
  }

  g_ptr_array_set_size (self->turn_urls, 0);
  for (guint i = 0; turn_uris != NULL && turn_uris[i] != NULL; i++) {
    char *url = parley_peer_build_turn_url (turn_uris[i], turn_username, turn_password);

    if (url != NULL)
      g_ptr_array_add (self->turn_urls, url);
    else
      g_debug ("Ignoring TURN server %s", turn_uris[i]);
    /* The first one that can serve a link. */
    if (url != NULL && !relay_taken && turn_username && turn_password)
      relay_taken = peer_parse_udp_relay (self, turn_uris[i], turn_username, turn_password);
  }
  if (!relay_taken) {
    relay_lookup_cancel (self);
    g_clear_pointer (&self->relay_host, g_free);
    g_clear_pointer (&self->relay_name, g_free);
  }
}

/**
 * parley_peer_get_relay:
 * @self: a peer
 * @host: (out) (transfer none): the relay's IP address
 * @port: (out): its port
 * @username: (out) (transfer none): the TURN user name
 * @password: (out) (transfer none): the TURN password
 *
 * The first TURN server given to parley_peer_set_ice_servers(), if it is
 * one over UDP, with its address (a name is resolved in the background),
 * for a #ParleyLink beside the call.
 *
 * Returns: %FALSE if there is none
 */
gboolean
parley_peer_get_relay (ParleyPeer  *self,
                       const char **host,
                       guint       *port,
                       const char **username,
                       const char **password)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), FALSE);

  if (self->relay_host == NULL)
    return FALSE;
  *host = self->relay_host;
  *port = self->relay_port;
  *username = self->relay_username;
  *password = self->relay_password;
  return TRUE;
}

/**
 * parley_peer_set_relay_only:
 * @self: a peer
 * @relay_only: whether to use TURN relays only (hides the local addresses)
 *
 * Applies to the next connection (the first one, or the next after a restart).
 */
void
parley_peer_set_relay_only (ParleyPeer *self,
                            gboolean    relay_only)
{
  g_return_if_fail (PARLEY_IS_PEER (self));

  relay_only = !!relay_only;
  if (self->relay_only == relay_only)
    return;
  self->relay_only = relay_only;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RELAY_ONLY]);
}

/**
 * parley_peer_start:
 * @self: a peer
 * @audio: whether to send audio
 * @video: whether to send video
 * @error: return location for a #GError
 *
 * Builds the connection and starts it. Does not offer by itself.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_peer_start (ParleyPeer  *self,
                   gboolean     audio,
                   gboolean     video,
                   GError     **error)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->closed) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("The peer is closed"));
    return FALSE;
  }
  if (self->started) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, _("The peer is already started"));
    return FALSE;
  }

  self->audio = !!audio;
  self->video = !!video;
  self->conn = peer_build_conn (self, error);
  if (self->conn == NULL)
    return FALSE;

  self->started = TRUE;
  self->last_ok_us = g_get_monotonic_time ();
  if (self->audio)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AUDIO]);
  if (self->video)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VIDEO]);

  self->watchdog_source = peer_add_timeout (self, WATCHDOG_INTERVAL_MS, watchdog_cb,
                                            "[parley] peer watchdog");
  peer_update_stats_timer (self);
  return TRUE;
}

/**
 * parley_peer_negotiate:
 * @self: a peer
 *
 * Makes an offer now, or as soon as the current exchange is over.
 */
void
parley_peer_negotiate (ParleyPeer *self)
{
  g_return_if_fail (PARLEY_IS_PEER (self));

  peer_negotiate_internal (self, FALSE);
}

static gboolean
parse_sdp_type (const char         *type,
                GstWebRTCSDPType   *sdp_type,
                GError            **error)
{
  if (g_strcmp0 (type, "offer") == 0) {
    *sdp_type = GST_WEBRTC_SDP_TYPE_OFFER;
    return TRUE;
  }
  if (g_strcmp0 (type, "answer") == 0) {
    *sdp_type = GST_WEBRTC_SDP_TYPE_ANSWER;
    return TRUE;
  }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               _("Unknown session description type “%s”"), type != NULL ? type : "(null)");
  return FALSE;
}

/**
 * parley_peer_set_remote_description:
 * @self: a peer
 * @type: "offer" or "answer"
 * @sdp: the description
 * @generation: its connection generation
 * @error: return location for a #GError
 *
 * Applies a description from the far side under Perfect Negotiation rules.
 * A colliding offer that the impolite peer ignores, or a description of an
 * older generation, is not an error. A description of a newer generation
 * makes the peer restart and adopt it.
 *
 * Returns: %FALSE with @error for a malformed description, an unknown type, or
 *   an answer with no offer pending
 */
gboolean
parley_peer_set_remote_description (ParleyPeer  *self,
                                    const char  *type,
                                    const char  *sdp,
                                    guint        generation,
                                    GError     **error)
{
  GstWebRTCSDPType sdp_type;
  GstSDPMessage *message = NULL;
  GstWebRTCSessionDescription *desc;

  g_return_val_if_fail (PARLEY_IS_PEER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!parse_sdp_type (type, &sdp_type, error))
    return FALSE;

  if (sdp == NULL || !g_str_has_prefix (sdp, "v=0") ||
      gst_sdp_message_new_from_text (sdp, &message) != GST_SDP_OK ||
      gst_sdp_message_medias_len (message) == 0 ||
      gst_sdp_message_get_origin (message) == NULL ||
      gst_sdp_message_get_origin (message)->sess_id == NULL) {
    g_clear_pointer (&message, gst_sdp_message_free);
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 _("The remote %s is not a valid session description"), type);
    return FALSE;
  }

  if (self->closed || !self->started) {
    gst_sdp_message_free (message);
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, _("The peer is not running"));
    return FALSE;
  }

  if (generation < self->generation) {
    g_debug ("Peer %p: ignoring a %s of old generation %u", self, type, generation);
    gst_sdp_message_free (message);
    return TRUE;
  }

  if (generation > self->generation) {
    if (sdp_type != GST_WEBRTC_SDP_TYPE_OFFER) {
      g_debug ("Peer %p: ignoring an answer of unknown generation %u", self, generation);
      gst_sdp_message_free (message);
      return TRUE;
    }
    peer_restart_internal (self, generation, FALSE);
    if (self->conn == NULL) {
      gst_sdp_message_free (message);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not rebuild the connection"));
      return FALSE;
    }
  }

  if (sdp_type == GST_WEBRTC_SDP_TYPE_ANSWER &&
      (!self->awaiting_answer || self->setting_remote_answer_pending)) {
    gst_sdp_message_free (message);
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 _("Got an answer but no offer is pending"));
    return FALSE;
  }

  desc = gst_webrtc_session_description_new (sdp_type, message);
  if (sdp_type == GST_WEBRTC_SDP_TYPE_OFFER)
    peer_handle_remote_offer (self, desc);
  else
    peer_handle_remote_answer (self, desc);
  gst_webrtc_session_description_free (desc);
  return TRUE;
}

/* "candidate:foundation component transport priority address port typ type ..." */
static gboolean
candidate_is_valid (const char *candidate)
{
  g_auto(GStrv) fields = NULL;
  guint64 value;

  if (g_str_has_prefix (candidate, "a="))
    candidate += 2;
  if (!g_str_has_prefix (candidate, "candidate:"))
    return FALSE;

  fields = g_strsplit (candidate + strlen ("candidate:"), " ", -1);
  if (g_strv_length (fields) < 8)
    return FALSE;
  if (!g_ascii_string_to_unsigned (fields[1], 10, 1, 256, &value, NULL) ||
      !g_ascii_string_to_unsigned (fields[3], 10, 0, G_MAXUINT32, &value, NULL) ||
      !g_ascii_string_to_unsigned (fields[5], 10, 0, 65535, &value, NULL))
    return FALSE;
  if (g_ascii_strcasecmp (fields[2], "udp") != 0 && g_ascii_strcasecmp (fields[2], "tcp") != 0)
    return FALSE;
  if (*fields[4] == '\0' || !g_str_equal (fields[6], "typ"))
    return FALSE;
  return g_str_equal (fields[7], "host") || g_str_equal (fields[7], "srflx") ||
         g_str_equal (fields[7], "prflx") || g_str_equal (fields[7], "relay");
}

/**
 * parley_peer_add_remote_candidate:
 * @self: a peer
 * @candidate: a candidate line ("candidate:..."); empty ends the far side's gathering
 * @sdp_mid: (nullable): the mid of its m-line
 * @sdp_mline_index: the index of its m-line, or -1 to use @sdp_mid
 * @generation: its connection generation
 * @error: return location for a #GError
 *
 * Adds a candidate of the far side, or keeps it until the remote description
 * of its generation is set. Candidates of older generations are dropped.
 *
 * Returns: %FALSE with @error for a malformed candidate
 */
gboolean
parley_peer_add_remote_candidate (ParleyPeer  *self,
                                  const char  *candidate,
                                  const char  *sdp_mid,
                                  int          sdp_mline_index,
                                  guint        generation,
                                  GError     **error)
{
  PendingCandidate *pc;

  g_return_val_if_fail (PARLEY_IS_PEER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (candidate == NULL || *candidate == '\0')
    return TRUE;

  if (!candidate_is_valid (candidate)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("Malformed ICE candidate"));
    return FALSE;
  }
  if (sdp_mline_index < 0 && (sdp_mid == NULL || *sdp_mid == '\0')) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 _("An ICE candidate needs an m-line index or a mid"));
    return FALSE;
  }
  if (sdp_mline_index > 64) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 _("ICE candidate m-line index %d is out of range"), sdp_mline_index);
    return FALSE;
  }

  if (generation < self->generation || self->closed)
    return TRUE;

  if (generation == self->generation && self->conn != NULL &&
      self->conn->has_remote_description) {
    conn_add_candidate (self->conn, candidate, sdp_mid, sdp_mline_index);
    return TRUE;
  }

  pc = g_new0 (PendingCandidate, 1);
  pc->candidate = g_strdup (candidate);
  pc->sdp_mid = g_strdup (sdp_mid);
  pc->sdp_mline_index = sdp_mline_index;
  pc->generation = generation;
  g_queue_push_tail (&self->pending_candidates, pc);
  return TRUE;
}

/**
 * parley_peer_add_video:
 * @self: a peer
 * @error: return location for a #GError
 *
 * Starts sending video and renegotiates. Does nothing if video is sent already.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_peer_add_video (ParleyPeer  *self,
                       GError     **error)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->video)
    return TRUE;
  if (self->closed) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("The peer is closed"));
    return FALSE;
  }

  if (self->conn != NULL) {
    conn_fix_codec_preferences (self->conn);
    if (!conn_add_sender (self->conn, TRUE, self->video_muted, error))
      return FALSE;
  }

  self->video = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VIDEO]);
  if (self->conn != NULL && self->negotiated_once)
    peer_negotiate_internal (self, FALSE);
  return TRUE;
}

/**
 * parley_peer_set_audio_muted:
 * @self: a peer
 * @muted: whether to send silence
 *
 * Mutes the microphone without renegotiating.
 */
void
parley_peer_set_audio_muted (ParleyPeer *self,
                             gboolean    muted)
{
  g_return_if_fail (PARLEY_IS_PEER (self));

  muted = !!muted;
  if (self->audio_muted == muted)
    return;
  self->audio_muted = muted;
  if (self->conn != NULL && self->conn->audio_source != NULL)
    parley_media_source_set_muted (self->conn->audio_source, muted);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AUDIO_MUTED]);
}

/**
 * parley_peer_set_video_muted:
 * @self: a peer
 * @muted: whether to send black frames
 *
 * Mutes the camera without renegotiating.
 */
void
parley_peer_set_video_muted (ParleyPeer *self,
                             gboolean    muted)
{
  g_return_if_fail (PARLEY_IS_PEER (self));

  muted = !!muted;
  if (self->video_muted == muted)
    return;
  self->video_muted = muted;
  if (self->conn != NULL && self->conn->video_source != NULL)
    parley_media_source_set_muted (self->conn->video_source, muted);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VIDEO_MUTED]);
}

/**
 * parley_peer_create_data_channel:
 * @self: a peer
 * @label: the channel label
 * @reliable: ordered and retransmitted when %TRUE; unordered without
 *   retransmissions otherwise
 *
 * Creates a channel. Channels created before the first negotiation go into the
 * first offer; later ones renegotiate when the session has no data channel yet.
 *
 * Returns: (transfer none): the channel, owned by @self
 */
ParleyDataChannel *
parley_peer_create_data_channel (ParleyPeer *self,
                                 const char *label,
                                 gboolean    reliable)
{
  ParleyDataChannel *channel;

  g_return_val_if_fail (PARLEY_IS_PEER (self), NULL);
  g_return_val_if_fail (label != NULL, NULL);

  channel = peer_new_channel (self, label, reliable);
  g_ptr_array_add (self->channels, channel);

  if (self->conn != NULL && !self->closed) {
    gboolean had_application = conn_has_application (self->conn);

    conn_create_channel (self->conn, channel);
    if (self->negotiated_once && !had_application)
      peer_negotiate_internal (self, FALSE);
  }
  return channel;
}

/**
 * parley_peer_restart:
 * @self: a peer
 *
 * Throws the connection away and negotiates a new one under the next
 * generation.
 */
void
parley_peer_restart (ParleyPeer *self)
{
  g_return_if_fail (PARLEY_IS_PEER (self));

  peer_restart_internal (self, self->generation + 1, TRUE);
}

/**
 * parley_peer_get_stats:
 * @self: a peer
 *
 * Returns: (nullable) (transfer none): the latest stats sample
 */
const ParleyPeerStats *
parley_peer_get_stats (ParleyPeer *self)
{
  g_return_val_if_fail (PARLEY_IS_PEER (self), NULL);

  return self->stats;
}

/**
 * parley_peer_set_stats_interval:
 * @self: a peer
 * @interval_ms: how often to sample stats, 0 to stop
 */
void
parley_peer_set_stats_interval (ParleyPeer *self,
                                guint       interval_ms)
{
  g_return_if_fail (PARLEY_IS_PEER (self));

  if (self->stats_interval == interval_ms)
    return;
  self->stats_interval = interval_ms;
  peer_update_stats_timer (self);
}

/**
 * parley_peer_close:
 * @self: a peer
 *
 * Stops the connection for good. Idempotent.
 */
void
parley_peer_close (ParleyPeer *self)
{
  g_return_if_fail (PARLEY_IS_PEER (self));

  if (self->closed)
    return;

  self->closed = TRUE;
  peer_clear_source (&self->watchdog_source);
  peer_clear_source (&self->offer_retry_source);
  peer_clear_source (&self->stats_source);
  peer_drop_conn (self, TRUE);
  peer_reset_negotiation (self);
  for (guint i = 0; self->channels != NULL && i < self->channels->len; i++)
    parley_data_channel_close (g_ptr_array_index (self->channels, i));
  for (guint i = 0; self->remote_channels != NULL && i < self->remote_channels->len; i++)
    parley_data_channel_close (g_ptr_array_index (self->remote_channels, i));
  peer_set_state (self, PARLEY_PEER_STATE_CLOSED);
}
