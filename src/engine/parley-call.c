/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-call"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "parley-call.h"
#include "parley-call-private.h"
#include "parley-engine-enums.h"
#include "parley-error.h"

/* Candidates kept for a callee that has not answered yet, at most. */
#define MAX_PENDING_CANDIDATES 256

/**
 * ParleyCall:
 *
 * One 1:1 call: a state machine over the call's signaling frames and its
 * #ParleyPeer. Calls are created by #ParleyCallManager. The caller builds its
 * peer at once and sends the first `call-offer`; the callee keeps that offer
 * (and early candidates) while it rings and builds its peer when the user
 * accepts. The caller is the impolite peer of Perfect Negotiation, the
 * callee the polite one.
 */
struct _ParleyCall {
  GObject              parent_instance;

  ParleyClient        *client;
  ParleyMediaSettings *settings;
  ParleyPeer          *peer;

  char                *call_id;
  char                *peer_id;
  char                *peer_name;
  char                *offer_ref;

  /* Which device of each side the call runs between: the peer's is bound by
   * its first call-offer (incoming) or call-accept (outgoing); %NULL while it
   * is not known, or for peers that do not tag their frames. */
  char                *device;
  char                *peer_device;

  ParleyCallState      state;
  ParleyCallEndReason  end_reason;
  gint64               created_at;
  gint64               answered_at;
  gint64               ended_at;

  gboolean             outgoing;
  gboolean             video;
  gboolean             answered;
  gboolean             superseded;
  gboolean             first_offer_sent;
  gboolean             audio_muted;
  gboolean             video_muted;
  gboolean             relay_only;

  /* ICE servers, known once has_ice is set. */
  gboolean             has_ice;
  char                *stun_uri;
  char               **turn_uris;
  char                *turn_username;
  char                *turn_password;

  /* The remote offer a ringing callee keeps, and candidates that came early. */
  char                *offer_sdp;
  guint                offer_generation;
  GPtrArray           *pending_candidates;

  guint                ring_timeout_id;
  guint                ring_seconds;
  guint                ring_grace_s;
  guint                connect_timeout_id;
  guint                reconnect_timeout_s;
};

G_DEFINE_FINAL_TYPE (ParleyCall, parley_call, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_CALL_ID,
  PROP_PEER_ID,
  PROP_PEER_NAME,
  PROP_OUTGOING,
  PROP_VIDEO,
  PROP_STATE,
  PROP_END_REASON,
  PROP_CREATED_AT,
  PROP_ANSWERED_AT,
  PROP_ENDED_AT,
  PROP_DURATION,
  PROP_PEER,
  PROP_AUDIO_MUTED,
  PROP_VIDEO_MUTED,
  N_PROPS
};

enum {
  SIGNAL_STATE_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

typedef struct {
  char  *candidate;
  char  *sdp_mid;
  int    sdp_mline_index;
  guint  generation;
} PendingCandidate;

static void
pending_candidate_free (PendingCandidate *pending)
{
  g_free (pending->candidate);
  g_free (pending->sdp_mid);
  g_free (pending);
}

/**
 * parley_call_frame_get_string:
 * @frame: an untrusted frame
 * @member: a member name
 *
 * Returns: (nullable): the member's value if it is a string
 */
const char *
parley_call_frame_get_string (JsonObject *frame,
                              const char *member)
{
  JsonNode *node = json_object_get_member (frame, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/**
 * parley_call_frame_get_uint:
 * @frame: an untrusted frame
 * @member: a member name
 * @out: (out): the value; left alone when the member is missing
 *
 * Returns: %FALSE if the member exists but is not an integer from 0 to
 *   %G_MAXINT32 (a missing member is fine)
 */
gboolean
parley_call_frame_get_uint (JsonObject *frame,
                            const char *member,
                            guint      *out)
{
  JsonNode *node = json_object_get_member (frame, member);
  gint64 value;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  value = json_node_get_int (node);
  if (value < 0 || value > G_MAXINT32)
    return FALSE;
  *out = (guint) value;
  return TRUE;
}

/**
 * parley_call_id_is_valid:
 * @id: (nullable): an identifier from the wire
 *
 * Returns: whether @id has 1–64 characters of `[A-Za-z0-9_.:-]`
 */
gboolean
parley_call_id_is_valid (const char *id)
{
  gsize length;

  if (id == NULL)
    return FALSE;
  length = strlen (id);
  if (length < 1 || length > 64)
    return FALSE;
  for (const char *p = id; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("_.:-", *p) == NULL)
      return FALSE;
  return TRUE;
}

/* Sends @frame to the peer's device @to_device (%NULL: all its devices). */
static gboolean
send_frame_to (ParleyCall *self,
               const char *type,
               JsonObject *frame,
               const char *to_device)
{
  json_object_set_string_member (frame, "recipientId", self->peer_id);
  json_object_set_string_member (frame, "callId", self->call_id);
  if (self->device != NULL)
    json_object_set_string_member (frame, "device", self->device);
  if (to_device != NULL)
    json_object_set_string_member (frame, "toDevice", to_device);
  if (!parley_client_send_call_signal (self->client, type, frame)) {
    g_debug ("Call %s: cannot send %s, not connected", self->call_id, type);
    return FALSE;
  }
  return TRUE;
}

static gboolean
send_frame (ParleyCall *self,
            const char *type,
            JsonObject *frame)
{
  return send_frame_to (self, type, frame, self->peer_device);
}

static void
send_reason (ParleyCall *self,
             const char *type,
             const char *reason)
{
  g_autoptr(JsonObject) frame = json_object_new ();

  json_object_set_string_member (frame, "reason", reason);
  send_frame (self, type, frame);
}

static void
set_state (ParleyCall      *self,
           ParleyCallState  state)
{
  ParleyCallState old = self->state;

  if (old == state)
    return;
  g_debug ("Call %s: %s -> %s", self->call_id, parley_call_state_to_string (old),
           parley_call_state_to_string (state));
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state, old);
}

static void
set_video (ParleyCall *self,
           gboolean    video)
{
  video = !!video;
  if (self->video == video)
    return;
  self->video = video;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VIDEO]);
}

static void
close_peer (ParleyCall *self)
{
  g_autoptr(ParleyPeer) peer = NULL;

  if (self->peer == NULL)
    return;
  /* Keep the (closed) peer readable, but hear nothing more from it. */
  peer = g_object_ref (self->peer);
  g_signal_handlers_disconnect_by_data (peer, self);
  parley_peer_close (peer);
}

static void
end_call (ParleyCall          *self,
          ParleyCallEndReason  reason)
{
  g_autoptr(ParleyCall) hold = NULL;

  if (self->state == PARLEY_CALL_STATE_ENDED)
    return;

  hold = g_object_ref (self);
  g_clear_handle_id (&self->ring_timeout_id, g_source_remove);
  g_clear_handle_id (&self->connect_timeout_id, g_source_remove);
  g_ptr_array_set_size (self->pending_candidates, 0);
  close_peer (self);

  self->ended_at = g_get_real_time ();
  self->end_reason = reason;
  g_debug ("Call %s ended: %s", self->call_id, parley_call_end_reason_to_string (reason));

  g_object_freeze_notify (G_OBJECT (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_END_REASON]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ENDED_AT]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DURATION]);
  g_object_thaw_notify (G_OBJECT (self));
  set_state (self, PARLEY_CALL_STATE_ENDED);
}

/* Ends a call that is past ringing because the connection failed, and tells the other side. */
static void
fail (ParleyCall *self,
      const char *why)
{
  if (self->state == PARLEY_CALL_STATE_ENDED)
    return;
  g_debug ("Call %s failed: %s", self->call_id, why);
  send_reason (self, "call-hangup", "failed");
  end_call (self, PARLEY_CALL_END_REASON_FAILED);
}

static gboolean
connect_timeout_cb (gpointer user_data)
{
  ParleyCall *self = user_data;

  self->connect_timeout_id = 0;
  if (self->state == PARLEY_CALL_STATE_CONNECTING ||
      self->state == PARLEY_CALL_STATE_RECONNECTING)
    fail (self, "the connection was not made in time");
  return G_SOURCE_REMOVE;
}

static void
start_connect_timer (ParleyCall *self)
{
  if (self->connect_timeout_id != 0)
    return;
  self->connect_timeout_id = g_timeout_add_seconds (self->reconnect_timeout_s,
                                                    connect_timeout_cb, self);
}

static void
mark_answered (ParleyCall *self)
{
  if (self->answered)
    return;
  self->answered = TRUE;
  self->answered_at = g_get_real_time ();
  g_clear_handle_id (&self->ring_timeout_id, g_source_remove);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ANSWERED_AT]);
  set_state (self, PARLEY_CALL_STATE_CONNECTING);
  start_connect_timer (self);
}

static gboolean ring_timeout_cb (gpointer user_data);

static void
peer_local_description_cb (ParleyPeer *peer,
                           const char *type,
                           const char *sdp,
                           guint       generation,
                           gpointer    user_data)
{
  ParleyCall *self = user_data;
  g_autoptr(JsonObject) frame = json_object_new ();

  if (self->state == PARLEY_CALL_STATE_ENDED || sdp == NULL)
    return;

  json_object_set_string_member (frame, "sdp", sdp);
  json_object_set_int_member (frame, "gen", generation);

  if (g_strcmp0 (type, "offer") == 0) {
    if (self->outgoing && !self->first_offer_sent) {
      /* The first offer rings the callee; its id lets recipient-offline end the call. */
      json_object_set_string_member (frame, "id", self->offer_ref);
      json_object_set_string_member (frame, "media", self->video ? "video" : "audio");
      self->first_offer_sent = TRUE;
      /* The callee rings from now on. */
      if (self->state == PARLEY_CALL_STATE_OUTGOING_RINGING && self->ring_seconds > 0) {
        g_clear_handle_id (&self->ring_timeout_id, g_source_remove);
        self->ring_timeout_id = g_timeout_add (self->ring_seconds * 1000, ring_timeout_cb, self);
      }
    }
    send_frame (self, "call-offer", frame);
  } else if (g_strcmp0 (type, "answer") == 0) {
    send_frame (self, "call-answer", frame);
  } else {
    g_debug ("Call %s: ignoring a local description of type %s", self->call_id, type);
  }
}

static void
peer_local_candidate_cb (ParleyPeer *peer,
                         const char *candidate,
                         const char *sdp_mid,
                         int         sdp_mline_index,
                         guint       generation,
                         gpointer    user_data)
{
  ParleyCall *self = user_data;
  g_autoptr(JsonObject) frame = NULL;
  g_autoptr(JsonObject) init = NULL;

  if (self->state == PARLEY_CALL_STATE_ENDED)
    return;

  init = json_object_new ();
  json_object_set_string_member (init, "candidate", candidate ? candidate : "");
  if (sdp_mid != NULL)
    json_object_set_string_member (init, "sdpMid", sdp_mid);
  else
    json_object_set_null_member (init, "sdpMid");
  json_object_set_int_member (init, "sdpMLineIndex", MAX (sdp_mline_index, 0));

  frame = json_object_new ();
  json_object_set_object_member (frame, "candidate", g_steal_pointer (&init));
  json_object_set_int_member (frame, "gen", generation);
  send_frame (self, "call-ice-candidate", frame);
}

static void
peer_state_changed_cb (ParleyPeer      *peer,
                       ParleyPeerState  state,
                       ParleyPeerState  old_state,
                       gpointer         user_data)
{
  ParleyCall *self = user_data;

  g_debug ("Call %s: peer %s -> %s", self->call_id, parley_peer_state_to_string (old_state),
           parley_peer_state_to_string (state));

  switch (state) {
  case PARLEY_PEER_STATE_CONNECTED:
    if (self->state == PARLEY_CALL_STATE_OUTGOING_RINGING)
      mark_answered (self);
    if (self->state == PARLEY_CALL_STATE_CONNECTING ||
        self->state == PARLEY_CALL_STATE_RECONNECTING) {
      g_clear_handle_id (&self->connect_timeout_id, g_source_remove);
      set_state (self, PARLEY_CALL_STATE_ACTIVE);
    }
    break;
  case PARLEY_PEER_STATE_DISCONNECTED:
  case PARLEY_PEER_STATE_RESTARTING:
    if (self->state == PARLEY_CALL_STATE_ACTIVE) {
      set_state (self, PARLEY_CALL_STATE_RECONNECTING);
      start_connect_timer (self);
      /* The restart needs signaling; if the network changed, the connection
       * to the server may be dead without a word. */
      parley_client_check_connection (self->client);
    }
    break;
  case PARLEY_PEER_STATE_FAILED:
    if (self->answered)
      fail (self, "the media connection failed");
    break;
  case PARLEY_PEER_STATE_NEW:
  case PARLEY_PEER_STATE_CONNECTING:
  case PARLEY_PEER_STATE_CLOSED:
  default:
    break;
  }
}

static void
peer_error_cb (ParleyPeer   *peer,
               const GError *error,
               gpointer      user_data)
{
  ParleyCall *self = user_data;
  g_autofree char *why = g_strdup_printf ("peer error: %s", error ? error->message : "unknown");

  if (self->state == PARLEY_CALL_STATE_OUTGOING_RINGING) {
    /* The callee was already rung; tell it the call is gone. */
    send_reason (self, "call-hangup", "failed");
    g_debug ("Call %s: %s", self->call_id, why);
    end_call (self, PARLEY_CALL_END_REASON_FAILED);
    return;
  }
  fail (self, why);
}

static void
peer_notify_video_cb (ParleyPeer *peer,
                      GParamSpec *pspec,
                      gpointer    user_data)
{
  ParleyCall *self = user_data;
  gboolean video = FALSE;

  g_object_get (peer, "video", &video, NULL);
  if (video)
    set_video (self, TRUE);
}

static gboolean
apply_offer (ParleyCall *self,
             const char *sdp,
             guint       generation)
{
  g_autoptr(GError) error = NULL;

  if (!parley_peer_set_remote_description (self->peer, "offer", sdp, generation, &error)) {
    g_debug ("Call %s: the remote offer was refused: %s", self->call_id, error->message);
    return FALSE;
  }
  return TRUE;
}

static void
flush_candidates (ParleyCall *self)
{
  g_autoptr(GPtrArray) pending = g_steal_pointer (&self->pending_candidates);

  self->pending_candidates =
    g_ptr_array_new_with_free_func ((GDestroyNotify) pending_candidate_free);
  for (guint i = 0; i < pending->len && self->peer != NULL; i++) {
    PendingCandidate *c = g_ptr_array_index (pending, i);
    g_autoptr(GError) error = NULL;

    if (!parley_peer_add_remote_candidate (self->peer, c->candidate, c->sdp_mid,
                                           c->sdp_mline_index, c->generation, &error))
      g_debug ("Call %s: a kept candidate was refused: %s", self->call_id, error->message);
  }
}

/* Builds the peer once its ICE servers are known: at once for the caller, after
 * the accept for the callee. */
static void
maybe_start_media (ParleyCall *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyPeer) peer = NULL;

  if (self->peer != NULL || !self->has_ice)
    return;
  if (self->state == PARLEY_CALL_STATE_ENDED || self->state == PARLEY_CALL_STATE_INCOMING_RINGING)
    return;
  if (!self->outgoing && self->offer_sdp == NULL)
    return;

  peer = parley_peer_new (self->settings, !self->outgoing);
  parley_peer_set_ice_servers (peer, self->stun_uri, (const char * const *) self->turn_uris,
                               self->turn_username, self->turn_password);
  parley_peer_set_relay_only (peer, self->relay_only);
  parley_peer_set_audio_muted (peer, self->audio_muted);
  parley_peer_set_video_muted (peer, self->video_muted);

  g_signal_connect (peer, "local-description", G_CALLBACK (peer_local_description_cb), self);
  g_signal_connect (peer, "local-candidate", G_CALLBACK (peer_local_candidate_cb), self);
  g_signal_connect (peer, "state-changed", G_CALLBACK (peer_state_changed_cb), self);
  g_signal_connect (peer, "error", G_CALLBACK (peer_error_cb), self);
  g_signal_connect (peer, "notify::video", G_CALLBACK (peer_notify_video_cb), self);
  self->peer = g_steal_pointer (&peer);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PEER]);

  if (!parley_peer_start (self->peer, TRUE, self->video, &error)) {
    g_autofree char *why = g_strdup_printf ("cannot start the media: %s", error->message);

    if (self->state == PARLEY_CALL_STATE_OUTGOING_RINGING) {
      g_debug ("Call %s: %s", self->call_id, why);
      end_call (self, PARLEY_CALL_END_REASON_FAILED);
    } else {
      fail (self, why);
    }
    return;
  }

  if (self->outgoing) {
    parley_peer_negotiate (self->peer);
  } else {
    g_autofree char *sdp = g_steal_pointer (&self->offer_sdp);

    /* Without the caller's first offer there is nothing to answer. */
    if (!apply_offer (self, sdp, self->offer_generation)) {
      fail (self, "the caller's offer is unusable");
      return;
    }
  }
  if (self->peer != NULL && self->state != PARLEY_CALL_STATE_ENDED)
    flush_candidates (self);
}

static gboolean
ring_timeout_cb (gpointer user_data)
{
  ParleyCall *self = user_data;

  self->ring_timeout_id = 0;
  if (self->state == PARLEY_CALL_STATE_OUTGOING_RINGING) {
    g_debug ("Call %s: nobody answered", self->call_id);
    send_reason (self, "call-hangup", "missed");
    end_call (self, PARLEY_CALL_END_REASON_MISSED);
  } else if (self->state == PARLEY_CALL_STATE_INCOMING_RINGING) {
    g_debug ("Call %s: the caller went silent", self->call_id);
    end_call (self, PARLEY_CALL_END_REASON_MISSED);
  }
  return G_SOURCE_REMOVE;
}

static void
handle_offer (ParleyCall *self,
              JsonObject *frame)
{
  const char *sdp = parley_call_frame_get_string (frame, "sdp");
  guint generation = 0;

  if (sdp == NULL || *sdp == '\0' || !parley_call_frame_get_uint (frame, "gen", &generation)) {
    g_debug ("Call %s: ignoring a malformed call-offer", self->call_id);
    return;
  }

  if (self->peer != NULL) {
    apply_offer (self, sdp, generation);
  } else if (!self->outgoing && generation >= self->offer_generation) {
    /* Still ringing (or waiting for ICE servers): keep the newest offer. */
    g_free (self->offer_sdp);
    self->offer_sdp = g_strdup (sdp);
    self->offer_generation = generation;
  } else {
    g_debug ("Call %s: ignoring a call-offer in state %s", self->call_id,
             parley_call_state_to_string (self->state));
  }
}

static void
handle_answer (ParleyCall *self,
               JsonObject *frame)
{
  const char *sdp = parley_call_frame_get_string (frame, "sdp");
  guint generation = 0;
  g_autoptr(GError) error = NULL;

  if (sdp == NULL || *sdp == '\0' || !parley_call_frame_get_uint (frame, "gen", &generation)) {
    g_debug ("Call %s: ignoring a malformed call-answer", self->call_id);
    return;
  }
  if (self->peer == NULL || (!self->outgoing && !self->answered)) {
    g_debug ("Call %s: ignoring a call-answer in state %s", self->call_id,
             parley_call_state_to_string (self->state));
    return;
  }

  /* A peer that answers without a call-accept (a browser page) has accepted. */
  if (self->state == PARLEY_CALL_STATE_OUTGOING_RINGING)
    mark_answered (self);
  if (!parley_peer_set_remote_description (self->peer, "answer", sdp, generation, &error))
    g_debug ("Call %s: the remote answer was refused: %s", self->call_id, error->message);
}

static void
handle_candidate (ParleyCall *self,
                  JsonObject *frame)
{
  JsonNode *node = json_object_get_member (frame, "candidate");
  JsonObject *init;
  const char *candidate, *sdp_mid;
  guint mline = 0, generation = 0;
  g_autoptr(GError) error = NULL;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node) ||
      !parley_call_frame_get_uint (frame, "gen", &generation)) {
    g_debug ("Call %s: ignoring a malformed call-ice-candidate", self->call_id);
    return;
  }
  init = json_node_get_object (node);
  candidate = parley_call_frame_get_string (init, "candidate");
  sdp_mid = parley_call_frame_get_string (init, "sdpMid");
  if (candidate == NULL || !parley_call_frame_get_uint (init, "sdpMLineIndex", &mline) ||
      mline > 1024) {
    g_debug ("Call %s: ignoring a malformed candidate", self->call_id);
    return;
  }

  if (self->peer != NULL) {
    if (!parley_peer_add_remote_candidate (self->peer, candidate, sdp_mid, (int) mline,
                                           generation, &error))
      g_debug ("Call %s: a remote candidate was refused: %s", self->call_id, error->message);
  } else if (self->pending_candidates->len < MAX_PENDING_CANDIDATES) {
    PendingCandidate *pending = g_new0 (PendingCandidate, 1);

    pending->candidate = g_strdup (candidate);
    pending->sdp_mid = g_strdup (sdp_mid);
    pending->sdp_mline_index = (int) mline;
    pending->generation = generation;
    g_ptr_array_add (self->pending_candidates, pending);
  } else {
    g_debug ("Call %s: too many early candidates, dropping one", self->call_id);
  }
}

static void
handle_hangup (ParleyCall *self,
               JsonObject *frame)
{
  const char *reason_text = parley_call_frame_get_string (frame, "reason");
  ParleyCallEndReason reason = parley_call_end_reason_from_string (reason_text);

  if (!self->outgoing && reason == PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE) {
    /* Another device of ours accepted too, and first (see accept_from_device()), or
     * the call lost a glare against a call from another device of ours. */
  } else if (self->outgoing) {
    /* Only the caller cancels; the callee's side of anything else is a hangup. */
    if (reason != PARLEY_CALL_END_REASON_FAILED && reason != PARLEY_CALL_END_REASON_MISSED)
      reason = PARLEY_CALL_END_REASON_HANGUP;
  } else if (reason == PARLEY_CALL_END_REASON_CANCELLED ||
             reason == PARLEY_CALL_END_REASON_MISSED ||
             (!self->answered && reason != PARLEY_CALL_END_REASON_FAILED)) {
    /* The caller gave up before we talked: a missed call here. */
    reason = PARLEY_CALL_END_REASON_MISSED;
  } else if (reason != PARLEY_CALL_END_REASON_FAILED) {
    reason = PARLEY_CALL_END_REASON_HANGUP;
  }
  end_call (self, reason);
}

/* Whether a frame from the peer's @device (%NULL: untagged) is for this call.
 * A callee may answer on several devices at once: the first call-accept binds
 * the call to its device; frames from the peer's other devices are dropped,
 * and a late call-accept gets a call-hangup `answered-elsewhere` addressed to
 * its device alone, so that device stops instead of fighting over the call. */
static gboolean
accept_from_device (ParleyCall *self,
                    const char *type,
                    const char *device)
{
  if (device == NULL || g_strcmp0 (device, self->peer_device) == 0)
    return TRUE;
  if (self->peer_device == NULL) {
    if (self->outgoing && self->state == PARLEY_CALL_STATE_OUTGOING_RINGING &&
        g_str_equal (type, "call-accept")) {
      self->peer_device = g_strdup (device);
      g_debug ("Call %s: answered on device %s", self->call_id, device);
    }
    return TRUE;
  }
  g_debug ("Call %s: ignoring %s from device %s, the call is with %s", self->call_id, type,
           device, self->peer_device);
  if (self->outgoing && g_str_equal (type, "call-accept")) {
    g_autoptr(JsonObject) frame = json_object_new ();

    json_object_set_string_member (frame, "reason", "answered-elsewhere");
    send_frame_to (self, "call-hangup", frame, device);
  }
  return FALSE;
}

/**
 * parley_call_handle_frame:
 * @self: a call
 * @type: the frame type
 * @frame: an untrusted frame from the call's peer
 *
 * Feeds a signaling frame into the state machine. Frames that make no sense
 * in the current state are ignored.
 */
void
parley_call_handle_frame (ParleyCall *self,
                          const char *type,
                          JsonObject *frame)
{
  g_autoptr(ParleyCall) hold = NULL;

  g_return_if_fail (PARLEY_IS_CALL (self));
  g_return_if_fail (type != NULL && frame != NULL);

  if (self->state == PARLEY_CALL_STATE_ENDED) {
    g_debug ("Call %s: ignoring %s after the end", self->call_id, type);
    return;
  }
  hold = g_object_ref (self);

  if (!accept_from_device (self, type, parley_call_frame_get_string (frame, "device")))
    return;

  if (g_str_equal (type, "call-offer")) {
    handle_offer (self, frame);
  } else if (g_str_equal (type, "call-answer")) {
    handle_answer (self, frame);
  } else if (g_str_equal (type, "call-ice-candidate")) {
    handle_candidate (self, frame);
  } else if (g_str_equal (type, "call-accept")) {
    if (self->outgoing && self->state == PARLEY_CALL_STATE_OUTGOING_RINGING)
      mark_answered (self);
    else
      g_debug ("Call %s: ignoring call-accept in state %s", self->call_id,
               parley_call_state_to_string (self->state));
  } else if (g_str_equal (type, "call-reject")) {
    const char *reason = parley_call_frame_get_string (frame, "reason");

    if (self->outgoing && self->state == PARLEY_CALL_STATE_OUTGOING_RINGING)
      end_call (self, g_strcmp0 (reason, "busy") == 0 ? PARLEY_CALL_END_REASON_BUSY
                                                      : PARLEY_CALL_END_REASON_REJECTED);
    else
      g_debug ("Call %s: ignoring call-reject in state %s", self->call_id,
               parley_call_state_to_string (self->state));
  } else if (g_str_equal (type, "call-hangup")) {
    handle_hangup (self, frame);
  } else {
    g_debug ("Call %s: ignoring a frame of type %s", self->call_id, type);
  }
}

/**
 * parley_call_handle_request_error:
 * @self: a call
 * @code: the server's error code
 * @message: (nullable): its explanation
 *
 * The server refused the call's first offer: `recipient-offline` ends the call
 * as offline, anything else as failed.
 */
void
parley_call_handle_request_error (ParleyCall *self,
                                  const char *code,
                                  const char *message)
{
  g_return_if_fail (PARLEY_IS_CALL (self));

  if (self->state != PARLEY_CALL_STATE_OUTGOING_RINGING) {
    g_debug ("Call %s: ignoring error %s in state %s", self->call_id, code,
             parley_call_state_to_string (self->state));
    return;
  }
  g_debug ("Call %s: the server refused the offer: %s (%s)", self->call_id, code,
           message ? message : "");
  end_call (self, g_strcmp0 (code, "recipient-offline") == 0 ? PARLEY_CALL_END_REASON_OFFLINE
                                                             : PARLEY_CALL_END_REASON_FAILED);
}

static void
parley_call_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  ParleyCall *self = PARLEY_CALL (object);

  switch (prop_id) {
  case PROP_CALL_ID: g_value_set_string (value, self->call_id); break;
  case PROP_PEER_ID: g_value_set_string (value, self->peer_id); break;
  case PROP_PEER_NAME: g_value_set_string (value, self->peer_name); break;
  case PROP_OUTGOING: g_value_set_boolean (value, self->outgoing); break;
  case PROP_VIDEO: g_value_set_boolean (value, self->video); break;
  case PROP_STATE: g_value_set_enum (value, self->state); break;
  case PROP_END_REASON: g_value_set_enum (value, self->end_reason); break;
  case PROP_CREATED_AT: g_value_set_int64 (value, self->created_at); break;
  case PROP_ANSWERED_AT: g_value_set_int64 (value, self->answered_at); break;
  case PROP_ENDED_AT: g_value_set_int64 (value, self->ended_at); break;
  case PROP_DURATION: g_value_set_int64 (value, parley_call_get_duration (self)); break;
  case PROP_PEER: g_value_set_object (value, self->peer); break;
  case PROP_AUDIO_MUTED: g_value_set_boolean (value, self->audio_muted); break;
  case PROP_VIDEO_MUTED: g_value_set_boolean (value, self->video_muted); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_call_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  ParleyCall *self = PARLEY_CALL (object);

  switch (prop_id) {
  case PROP_AUDIO_MUTED: parley_call_set_audio_muted (self, g_value_get_boolean (value)); break;
  case PROP_VIDEO_MUTED: parley_call_set_video_muted (self, g_value_get_boolean (value)); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_call_dispose (GObject *object)
{
  ParleyCall *self = PARLEY_CALL (object);

  g_clear_handle_id (&self->ring_timeout_id, g_source_remove);
  g_clear_handle_id (&self->connect_timeout_id, g_source_remove);
  close_peer (self);
  g_clear_object (&self->peer);
  g_clear_object (&self->settings);
  g_clear_object (&self->client);

  G_OBJECT_CLASS (parley_call_parent_class)->dispose (object);
}

static void
parley_call_finalize (GObject *object)
{
  ParleyCall *self = PARLEY_CALL (object);

  g_free (self->call_id);
  g_free (self->peer_id);
  g_free (self->peer_name);
  g_free (self->offer_ref);
  g_free (self->device);
  g_free (self->peer_device);
  g_free (self->stun_uri);
  g_strfreev (self->turn_uris);
  g_free (self->turn_username);
  if (self->turn_password != NULL)
    memset (self->turn_password, 0, strlen (self->turn_password));
  g_free (self->turn_password);
  g_free (self->offer_sdp);
  g_clear_pointer (&self->pending_candidates, g_ptr_array_unref);

  G_OBJECT_CLASS (parley_call_parent_class)->finalize (object);
}

static void
parley_call_class_init (ParleyCallClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = parley_call_get_property;
  object_class->set_property = parley_call_set_property;
  object_class->dispose = parley_call_dispose;
  object_class->finalize = parley_call_finalize;

  /** ParleyCall:call-id: the call's id on the wire */
  properties[PROP_CALL_ID] = g_param_spec_string ("call-id", NULL, NULL, NULL, ro);
  /** ParleyCall:peer-id: the other party's user id */
  properties[PROP_PEER_ID] = g_param_spec_string ("peer-id", NULL, NULL, NULL, ro);
  /** ParleyCall:peer-name: the other party's user name, if known */
  properties[PROP_PEER_NAME] = g_param_spec_string ("peer-name", NULL, NULL, NULL, ro);
  /** ParleyCall:outgoing: whether this side called */
  properties[PROP_OUTGOING] = g_param_spec_boolean ("outgoing", NULL, NULL, FALSE, ro);
  /** ParleyCall:video: whether video is sent or received */
  properties[PROP_VIDEO] = g_param_spec_boolean ("video", NULL, NULL, FALSE, ro);
  /** ParleyCall:state: where the call is */
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, PARLEY_TYPE_CALL_STATE,
                                              PARLEY_CALL_STATE_OUTGOING_RINGING, ro);
  /** ParleyCall:end-reason: why the call ended, or none */
  properties[PROP_END_REASON] = g_param_spec_enum ("end-reason", NULL, NULL,
                                                   PARLEY_TYPE_CALL_END_REASON,
                                                   PARLEY_CALL_END_REASON_NONE, ro);
  /** ParleyCall:created-at: when the call started ringing, µs since the epoch */
  properties[PROP_CREATED_AT] = g_param_spec_int64 ("created-at", NULL, NULL, 0, G_MAXINT64, 0,
                                                    ro);
  /** ParleyCall:answered-at: when it was answered, µs since the epoch, or 0 */
  properties[PROP_ANSWERED_AT] = g_param_spec_int64 ("answered-at", NULL, NULL, 0, G_MAXINT64,
                                                     0, ro);
  /** ParleyCall:ended-at: when it ended, µs since the epoch, or 0 */
  properties[PROP_ENDED_AT] = g_param_spec_int64 ("ended-at", NULL, NULL, 0, G_MAXINT64, 0, ro);
  /** ParleyCall:duration: the answered part in seconds (so far, while running) */
  properties[PROP_DURATION] = g_param_spec_int64 ("duration", NULL, NULL, 0, G_MAXINT64, 0, ro);
  /** ParleyCall:peer: the media connection, once it exists */
  properties[PROP_PEER] = g_param_spec_object ("peer", NULL, NULL, PARLEY_TYPE_PEER, ro);
  /** ParleyCall:audio-muted: whether the microphone is muted */
  properties[PROP_AUDIO_MUTED] = g_param_spec_boolean ("audio-muted", NULL, NULL, FALSE, rw);
  /** ParleyCall:video-muted: whether the camera is off */
  properties[PROP_VIDEO_MUTED] = g_param_spec_boolean ("video-muted", NULL, NULL, FALSE, rw);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyCall::state-changed:
   * @new_state: the new #ParleyCallState
   * @old_state: the previous one
   */
  signals[SIGNAL_STATE_CHANGED] =
    g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, PARLEY_TYPE_CALL_STATE,
                  PARLEY_TYPE_CALL_STATE);
}

static void
parley_call_init (ParleyCall *self)
{
  self->pending_candidates =
    g_ptr_array_new_with_free_func ((GDestroyNotify) pending_candidate_free);
  self->reconnect_timeout_s = PARLEY_CALL_RECONNECT_TIMEOUT_S;
  self->ring_grace_s = PARLEY_CALL_CALLEE_GRACE_S;
  self->created_at = g_get_real_time ();
}

static ParleyCall *
call_new (ParleyClient        *client,
          ParleyMediaSettings *settings,
          const char          *call_id,
          const char          *peer_id,
          const char          *peer_name,
          gboolean             outgoing,
          gboolean             video)
{
  ParleyCall *self = g_object_new (PARLEY_TYPE_CALL, NULL);

  self->client = g_object_ref (client);
  self->settings = g_object_ref (settings);
  self->call_id = g_strdup (call_id);
  self->peer_id = g_strdup (peer_id);
  self->peer_name = g_strdup (peer_name);
  self->offer_ref = g_strconcat ("call-", call_id, NULL);
  self->outgoing = outgoing;
  self->video = !!video;
  self->state = outgoing ? PARLEY_CALL_STATE_OUTGOING_RINGING
                         : PARLEY_CALL_STATE_INCOMING_RINGING;
  return self;
}

/**
 * parley_call_new_outgoing:
 * @client: the client that sends the frames
 * @settings: the media settings
 * @call_id: a fresh call id
 * @peer_id: the callee
 * @peer_name: (nullable): the callee's name
 * @video: whether to send video
 *
 * Returns: (transfer full): a call in outgoing-ringing; it offers once it has
 *   its ICE servers
 */
ParleyCall *
parley_call_new_outgoing (ParleyClient        *client,
                          ParleyMediaSettings *settings,
                          const char          *call_id,
                          const char          *peer_id,
                          const char          *peer_name,
                          gboolean             video)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (client), NULL);
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (settings), NULL);
  g_return_val_if_fail (call_id != NULL && peer_id != NULL, NULL);

  return call_new (client, settings, call_id, peer_id, peer_name, TRUE, video);
}

/**
 * parley_call_new_incoming:
 * @client: the client that sends the frames
 * @settings: the media settings
 * @call_id: the caller's call id
 * @peer_id: the caller
 * @peer_name: (nullable): the caller's name
 * @offer_sdp: the caller's first offer
 * @offer_generation: its generation
 * @video: whether the caller asked for video
 *
 * Returns: (transfer full): a call in incoming-ringing
 */
ParleyCall *
parley_call_new_incoming (ParleyClient        *client,
                          ParleyMediaSettings *settings,
                          const char          *call_id,
                          const char          *peer_id,
                          const char          *peer_name,
                          const char          *offer_sdp,
                          guint                offer_generation,
                          gboolean             video)
{
  ParleyCall *self;

  g_return_val_if_fail (PARLEY_IS_CLIENT (client), NULL);
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (settings), NULL);
  g_return_val_if_fail (call_id != NULL && peer_id != NULL && offer_sdp != NULL, NULL);

  self = call_new (client, settings, call_id, peer_id, peer_name, FALSE, video);
  self->offer_sdp = g_strdup (offer_sdp);
  self->offer_generation = offer_generation;
  return self;
}

/**
 * parley_call_start_ringing:
 * @self: a ringing call
 * @seconds: the ring timeout
 *
 * Starts the ring timer. The caller's @seconds count from its first offer (the
 * moment the callee starts ringing), with a grace period for building the media
 * connection before; the callee waits @seconds plus the grace period, since the
 * caller normally ends the ringing itself.
 */
void
parley_call_start_ringing (ParleyCall *self,
                           guint       seconds)
{
  g_return_if_fail (PARLEY_IS_CALL (self));

  if (self->state != PARLEY_CALL_STATE_OUTGOING_RINGING &&
      self->state != PARLEY_CALL_STATE_INCOMING_RINGING)
    return;
  seconds = MAX (seconds, 1);
  self->ring_seconds = seconds;
  if (!self->outgoing || !self->first_offer_sent)
    seconds += self->ring_grace_s;
  g_clear_handle_id (&self->ring_timeout_id, g_source_remove);
  self->ring_timeout_id = g_timeout_add (seconds * 1000, ring_timeout_cb, self);
}

/**
 * parley_call_set_ring_grace:
 * @self: a call
 * @seconds: the grace period of parley_call_start_ringing()
 *
 * Takes effect at the next parley_call_start_ringing().
 */
void
parley_call_set_ring_grace (ParleyCall *self,
                            guint       seconds)
{
  g_return_if_fail (PARLEY_IS_CALL (self));
  self->ring_grace_s = seconds;
}

/**
 * parley_call_set_relay_only:
 * @self: a call
 * @relay_only: whether to use TURN relays only
 *
 * Applies to the call's peer when it is built.
 */
void
parley_call_set_relay_only (ParleyCall *self,
                            gboolean    relay_only)
{
  g_return_if_fail (PARLEY_IS_CALL (self));
  self->relay_only = !!relay_only;
}

/**
 * parley_call_set_devices:
 * @self: a call
 * @device: (nullable): this device's tag, put in every frame the call sends
 * @peer_device: (nullable): the peer's device the call is with, if known
 *   (the device of an incoming call's offer)
 *
 * Set by the manager when it creates the call.
 */
void
parley_call_set_devices (ParleyCall *self,
                         const char *device,
                         const char *peer_device)
{
  g_return_if_fail (PARLEY_IS_CALL (self));
  g_free (self->device);
  self->device = g_strdup (device);
  g_free (self->peer_device);
  self->peer_device = g_strdup (peer_device);
}

/**
 * parley_call_set_reconnect_timeout:
 * @self: a call
 * @seconds: how long connecting or reconnecting may take
 */
void
parley_call_set_reconnect_timeout (ParleyCall *self,
                                   guint       seconds)
{
  g_return_if_fail (PARLEY_IS_CALL (self));
  self->reconnect_timeout_s = MAX (seconds, 1);
}

/**
 * parley_call_set_ice_servers:
 * @self: a call
 * @stun_uri: (nullable): a STUN server
 * @turn_uris: (nullable) (array zero-terminated=1): TURN servers
 * @turn_username: (nullable): the TURN user name
 * @turn_password: (nullable): the TURN password
 *
 * Gives the call its ICE servers; the caller then builds its peer and offers,
 * an accepted callee builds its peer and answers. Given again (fresh TURN
 * credentials), they serve the next connection after a restart.
 */
void
parley_call_set_ice_servers (ParleyCall         *self,
                             const char         *stun_uri,
                             const char * const *turn_uris,
                             const char         *turn_username,
                             const char         *turn_password)
{
  g_autoptr(ParleyCall) hold = NULL;

  g_return_if_fail (PARLEY_IS_CALL (self));

  g_free (self->stun_uri);
  self->stun_uri = g_strdup (stun_uri);
  g_strfreev (self->turn_uris);
  self->turn_uris = g_strdupv ((char **) turn_uris);
  g_free (self->turn_username);
  self->turn_username = g_strdup (turn_username);
  g_free (self->turn_password);
  self->turn_password = g_strdup (turn_password);
  self->has_ice = TRUE;

  /* A running call keeps them for its next connection (after a restart). */
  if (self->peer != NULL)
    parley_peer_set_ice_servers (self->peer, self->stun_uri,
                                 (const char * const *) self->turn_uris, self->turn_username,
                                 self->turn_password);
  hold = g_object_ref (self);
  maybe_start_media (self);
}

/** parley_call_get_has_ice_servers: @self: a call. Returns: whether ICE servers were given */
gboolean
parley_call_get_has_ice_servers (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);
  return self->has_ice;
}

/** parley_call_get_offer_ref: @self: a call. Returns: the `id` of the call's first offer */
const char *
parley_call_get_offer_ref (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), NULL);
  return self->offer_ref;
}

/**
 * parley_call_reject_busy:
 * @self: an incoming call that rings while another call runs
 *
 * Tells the caller this device is busy; the call itself stays as it is.
 */
void
parley_call_reject_busy (ParleyCall *self)
{
  g_return_if_fail (PARLEY_IS_CALL (self));
  send_reason (self, "call-reject", "busy");
}

/**
 * parley_call_end_silently:
 * @self: a call
 * @reason: why it ends
 *
 * Ends the call without sending anything.
 */
void
parley_call_end_silently (ParleyCall          *self,
                          ParleyCallEndReason  reason)
{
  g_return_if_fail (PARLEY_IS_CALL (self));
  end_call (self, reason);
}

/**
 * parley_call_supersede:
 * @self: an outgoing ringing call
 *
 * Drops the call that lost a call glare: it ends without frames and is not
 * logged, since the surviving call replaces it.
 */
void
parley_call_supersede (ParleyCall *self)
{
  g_return_if_fail (PARLEY_IS_CALL (self));

  self->superseded = TRUE;
  /* The peer's device that called us drops this call by itself; its other
   * devices ring for it and must stop: the users talk on another device. */
  if (self->outgoing && self->first_offer_sent)
    send_reason (self, "call-hangup", "answered-elsewhere");
  end_call (self, PARLEY_CALL_END_REASON_CANCELLED);
}

/** parley_call_get_superseded: @self: a call. Returns: whether it lost a call glare */
gboolean
parley_call_get_superseded (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);
  return self->superseded;
}

/** parley_call_get_answered: @self: a call. Returns: whether the call was answered */
gboolean
parley_call_get_answered (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);
  return self->answered;
}

/**
 * parley_call_to_record:
 * @self: a call
 *
 * Returns: (transfer full): the call as an entry of the call log
 */
ParleyCallRecord *
parley_call_to_record (ParleyCall *self)
{
  ParleyCallRecord *record;

  g_return_val_if_fail (PARLEY_IS_CALL (self), NULL);

  record = parley_call_record_new (self->call_id, self->peer_id);
  record->peer_name = g_strdup (self->peer_name);
  record->outgoing = self->outgoing;
  record->video = self->video;
  record->created_at = self->created_at;
  record->answered_at = self->answered_at;
  record->ended_at = self->ended_at;
  record->end_reason = self->end_reason;
  record->duration = parley_call_get_duration (self);
  return record;
}

/** parley_call_get_call_id: @self: a call. Returns: the call id */
const char *
parley_call_get_call_id (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), NULL);
  return self->call_id;
}

/** parley_call_get_peer_id: @self: a call. Returns: the other party's user id */
const char *
parley_call_get_peer_id (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), NULL);
  return self->peer_id;
}

/** parley_call_get_peer_name: @self: a call. Returns: (nullable): the other party's name */
const char *
parley_call_get_peer_name (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), NULL);
  return self->peer_name;
}

/** parley_call_get_outgoing: @self: a call. Returns: whether this side called */
gboolean
parley_call_get_outgoing (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);
  return self->outgoing;
}

/** parley_call_get_video: @self: a call. Returns: whether video is sent or received */
gboolean
parley_call_get_video (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);
  return self->video;
}

/** parley_call_get_state: @self: a call. Returns: the call's state */
ParleyCallState
parley_call_get_state (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), PARLEY_CALL_STATE_ENDED);
  return self->state;
}

/** parley_call_get_end_reason: @self: a call. Returns: why it ended, or none */
ParleyCallEndReason
parley_call_get_end_reason (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), PARLEY_CALL_END_REASON_NONE);
  return self->end_reason;
}

/** parley_call_get_created_at: @self: a call. Returns: when it started, µs since the epoch */
gint64
parley_call_get_created_at (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), 0);
  return self->created_at;
}

/** parley_call_get_answered_at: @self: a call. Returns: when it was answered, or 0 */
gint64
parley_call_get_answered_at (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), 0);
  return self->answered_at;
}

/** parley_call_get_ended_at: @self: a call. Returns: when it ended, or 0 */
gint64
parley_call_get_ended_at (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), 0);
  return self->ended_at;
}

/**
 * parley_call_get_duration:
 * @self: a call
 *
 * Returns: the seconds from the answer to the end (or to now while the call
 *   runs), 0 for a call that was never answered
 */
gint64
parley_call_get_duration (ParleyCall *self)
{
  gint64 end;

  g_return_val_if_fail (PARLEY_IS_CALL (self), 0);

  if (self->answered_at == 0)
    return 0;
  end = self->ended_at != 0 ? self->ended_at : g_get_real_time ();
  return MAX (end - self->answered_at, 0) / G_USEC_PER_SEC;
}

/** parley_call_get_peer: @self: a call. Returns: (transfer none) (nullable): the peer */
ParleyPeer *
parley_call_get_peer (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), NULL);
  return self->peer;
}

/**
 * parley_call_accept:
 * @self: an incoming ringing call
 * @error: return location for a #GError
 *
 * Answers the call: tells the caller, builds the media connection and answers
 * the caller's offer.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_call_accept (ParleyCall  *self,
                    GError     **error)
{
  g_autoptr(JsonObject) frame = json_object_new ();
  g_autoptr(ParleyCall) hold = NULL;

  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);

  if (self->state != PARLEY_CALL_STATE_INCOMING_RINGING) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, _("Cannot accept a call in state %s"),
                 parley_call_state_to_string (self->state));
    return FALSE;
  }
  if (!send_frame (self, "call-accept", frame)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_NETWORK,
                 _("Cannot accept the call: not connected to the server"));
    return FALSE;
  }

  hold = g_object_ref (self);
  mark_answered (self);
  maybe_start_media (self);
  return TRUE;
}

/**
 * parley_call_reject:
 * @self: an incoming ringing call
 * @error: return location for a #GError
 *
 * Declines the call.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_call_reject (ParleyCall  *self,
                    GError     **error)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);

  if (self->state != PARLEY_CALL_STATE_INCOMING_RINGING) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, _("Cannot reject a call in state %s"),
                 parley_call_state_to_string (self->state));
    return FALSE;
  }
  send_reason (self, "call-reject", "rejected");
  end_call (self, PARLEY_CALL_END_REASON_REJECTED);
  return TRUE;
}

/**
 * parley_call_hangup:
 * @self: a call
 *
 * Ends the call from this side: cancels an outgoing ringing call, rejects an
 * incoming one and hangs up otherwise. Does nothing once the call ended.
 */
void
parley_call_hangup (ParleyCall *self)
{
  g_return_if_fail (PARLEY_IS_CALL (self));

  switch (self->state) {
  case PARLEY_CALL_STATE_OUTGOING_RINGING:
    send_reason (self, "call-hangup", "cancelled");
    end_call (self, PARLEY_CALL_END_REASON_CANCELLED);
    break;
  case PARLEY_CALL_STATE_INCOMING_RINGING:
    parley_call_reject (self, NULL);
    break;
  case PARLEY_CALL_STATE_CONNECTING:
  case PARLEY_CALL_STATE_ACTIVE:
  case PARLEY_CALL_STATE_RECONNECTING:
    send_reason (self, "call-hangup", "hangup");
    end_call (self, PARLEY_CALL_END_REASON_HANGUP);
    break;
  case PARLEY_CALL_STATE_ENDED:
  default:
    break;
  }
}

/**
 * parley_call_set_audio_muted:
 * @self: a call
 * @muted: whether to mute the microphone
 */
void
parley_call_set_audio_muted (ParleyCall *self,
                             gboolean    muted)
{
  g_return_if_fail (PARLEY_IS_CALL (self));

  muted = !!muted;
  if (self->audio_muted == muted)
    return;
  self->audio_muted = muted;
  if (self->peer != NULL)
    parley_peer_set_audio_muted (self->peer, muted);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AUDIO_MUTED]);
}

/** parley_call_get_audio_muted: @self: a call. Returns: whether the microphone is muted */
gboolean
parley_call_get_audio_muted (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);
  return self->audio_muted;
}

/**
 * parley_call_set_video_muted:
 * @self: a call
 * @muted: whether to turn the camera off (without renegotiation)
 */
void
parley_call_set_video_muted (ParleyCall *self,
                             gboolean    muted)
{
  g_return_if_fail (PARLEY_IS_CALL (self));

  muted = !!muted;
  if (self->video_muted == muted)
    return;
  self->video_muted = muted;
  if (self->peer != NULL)
    parley_peer_set_video_muted (self->peer, muted);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VIDEO_MUTED]);
}

/** parley_call_get_video_muted: @self: a call. Returns: whether the camera is off */
gboolean
parley_call_get_video_muted (ParleyCall *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);
  return self->video_muted;
}

/**
 * parley_call_add_video:
 * @self: a call that has not ended
 * @error: return location for a #GError
 *
 * Upgrades an audio call to video, or sends our video after the other side
 * upgraded. Before the media connection exists, the call simply starts with video.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_call_add_video (ParleyCall  *self,
                       GError     **error)
{
  g_return_val_if_fail (PARLEY_IS_CALL (self), FALSE);

  if (self->state == PARLEY_CALL_STATE_ENDED) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, _("The call has ended"));
    return FALSE;
  }
  if (self->peer != NULL && !parley_peer_add_video (self->peer, error))
    return FALSE;
  set_video (self, TRUE);
  return TRUE;
}

/**
 * parley_call_renegotiate:
 * @self: a call
 *
 * Makes a fresh offer on the running connection.
 */
void
parley_call_renegotiate (ParleyCall *self)
{
  g_return_if_fail (PARLEY_IS_CALL (self));

  if (self->peer != NULL && self->state != PARLEY_CALL_STATE_ENDED)
    parley_peer_negotiate (self->peer);
}
