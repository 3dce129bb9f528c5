/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-peer-link.c: negotiates a ParleyLink over a data channel of a
 * ParleyPeer (see parley-peer-link.h for the messages). */

#define G_LOG_DOMAIN "parley-peer-link"

#include "config.h"

#include "parley-peer-link.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "parley-call-private.h"
#include "parley-data-channel.h"
#include "parley-media-settings.h"

#define CONTROL_LABEL "parley-link"
#define MAX_CONTROL_MESSAGE (16 * 1024)

struct _ParleyPeerLink {
  GObject parent_instance;

  GWeakRef peer;
  gboolean polite;
  gboolean realtime;
  gboolean relay_only;
  ParleyDataChannel *channel;   /* the control channel, ours or the peer's */
  gboolean channel_is_ours;
  gboolean want_open;           /* parley_peer_link_open() was called */
  ParleyLink *link;
  char *link_id;                /* the offer's id, both sides */
  gboolean offering;            /* link is ours, waiting for the answer */
  guint generation;             /* the peer's connection the link was offered in */
};

enum {
  SIGNAL_LINK,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ParleyPeerLink, parley_peer_link, G_TYPE_OBJECT)

static void
send_control (ParleyPeerLink *self,
              const char     *kind,
              const char     *field,
              const char     *value)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  if (self->channel == NULL)
    return;
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "link");
  json_builder_add_string_value (builder, kind);
  if (self->link_id && !g_str_equal (kind, "ready")) {
    json_builder_set_member_name (builder, "id");
    json_builder_add_string_value (builder, self->link_id);
  }
  if (field) {
    json_builder_set_member_name (builder, field);
    if (value)
      json_builder_add_string_value (builder, value);
    else
      json_builder_add_null_value (builder);
  }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  if (!parley_data_channel_send_string (self->channel, text, &error))
    g_debug ("Cannot send link %s: %s", kind, error->message);
}

static void
link_candidate_cb (ParleyLink     *link,
                   const char     *candidate,
                   ParleyPeerLink *self)
{
  if (link == self->link)
    send_control (self, "candidate", "candidate", candidate);
}

static ParleyLink *
make_link (ParleyPeerLink *self,
           gboolean        offerer)
{
  ParleyLink *link = parley_link_new (offerer);
  g_autoptr(ParleyPeer) peer = g_weak_ref_get (&self->peer);
  const char *host, *username, *password;
  guint port;

  parley_link_set_realtime (link, self->realtime);
  /* The call's TURN server, with the credentials the call got. */
  if (peer && parley_peer_get_relay (peer, &host, &port, &username, &password))
    parley_link_set_relay (link, host, port, username, password);
  /* A relay-only call's link offers relay candidates only (without a TURN
   * server it does not connect: this host's addresses stay hidden). */
  parley_link_set_relay_only (link, self->relay_only);
  g_signal_connect_object (link, "local-candidate", G_CALLBACK (link_candidate_cb), self, 0);
  return link;
}

static void
drop_link (ParleyPeerLink *self)
{
  if (self->link) {
    g_signal_handlers_disconnect_by_data (self->link, self);
    parley_link_close (self->link);
    g_clear_object (&self->link);
  }
  g_clear_pointer (&self->link_id, g_free);
  self->offering = FALSE;
}

/* Sends the new link's description (its offer or answer), starts it and
 * hands it out. */
static void
publish_link (ParleyPeerLink *self,
              const char     *kind)
{
  g_autofree char *sdp = parley_link_get_local_description (self->link);

  if (sdp == NULL) {
    g_debug ("The link failed before its %s", kind);
    drop_link (self);
    return;
  }
  send_control (self, kind, "sdp", sdp);
  parley_link_start (self->link);
  g_signal_emit (self, signals[SIGNAL_LINK], 0, self->link);
}

static void
make_offer (ParleyPeerLink *self)
{
  g_autoptr(ParleyPeer) peer = g_weak_ref_get (&self->peer);

  if (peer == NULL)
    return;
  /* A link offered in an earlier connection of the call is replaced: the
   * call restarted because its path broke (a network change, a lost link),
   * and the link's own path most likely broke with it. */
  if (self->link != NULL && self->generation == parley_peer_get_generation (peer))
    return;
  drop_link (self);
  self->generation = parley_peer_get_generation (peer);
  self->link = make_link (self, TRUE);
  self->link_id = g_uuid_string_random ();
  self->offering = TRUE;
  publish_link (self, "offer");
}

static void
answer_offer (ParleyPeerLink *self,
              const char     *id,
              const char     *sdp)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyLink) link = NULL;

  /* Both sides offered: the impolite side's offer wins. */
  if (self->link != NULL && self->offering && !self->polite) {
    g_debug ("Ignoring a colliding link offer");
    return;
  }
  /* An offer that does not work leaves the link there is alone. */
  link = make_link (self, FALSE);
  if (!parley_link_set_remote_description (link, sdp, &error)) {
    g_debug ("Refusing a link offer: %s", error->message);
    parley_link_close (link);
    return;
  }
  if (self->link != NULL)
    g_debug ("%s", self->offering ? "Dropping the own link offer for the peer's"
                                  : "The peer starts a new link");
  drop_link (self);
  self->link = g_steal_pointer (&link);
  self->link_id = g_strdup (id);
  publish_link (self, "answer");
}

/* The control channel's messages, on the main context. */
static void
control_message_cb (ParleyDataChannel *channel,
                    const char        *text,
                    ParleyPeerLink    *self)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *o;
  const char *kind, *id;

  if (strlen (text) > MAX_CONTROL_MESSAGE ||
      !json_parser_load_from_data (parser, text, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_debug ("Ignoring a malformed link message");
    return;
  }
  o = json_node_get_object (json_parser_get_root (parser));
  /* Members of another type count as missing: the peer's messages are
   * checked like the server's frames. */
  kind = parley_call_frame_get_string (o, "link");
  id = parley_call_frame_get_string (o, "id");
  if (kind == NULL) {
    g_debug ("Ignoring a link message without a kind");
    return;
  }

  if (g_str_equal (kind, "ready")) {
    if (self->want_open && self->channel_is_ours)
      make_offer (self);
    return;
  }
  if (id == NULL || strlen (id) > 64) {
    g_debug ("Ignoring a link message without an id");
    return;
  }
  if (g_str_equal (kind, "offer")) {
    const char *sdp = parley_call_frame_get_string (o, "sdp");

    if (sdp)
      answer_offer (self, id, sdp);
    return;
  }
  if (self->link == NULL || g_strcmp0 (id, self->link_id) != 0) {
    g_debug ("Ignoring a %s for another link", kind);
    return;
  }
  if (g_str_equal (kind, "answer") && self->offering) {
    const char *sdp = parley_call_frame_get_string (o, "sdp");

    self->offering = FALSE;
    if (sdp == NULL || !parley_link_set_remote_description (self->link, sdp, &error))
      g_debug ("Refusing a link answer: %s", error ? error->message : "no sdp");
  } else if (g_str_equal (kind, "candidate") && json_object_has_member (o, "candidate")) {
    JsonNode *c = json_object_get_member (o, "candidate");

    if (JSON_NODE_HOLDS_NULL (c))
      parley_link_add_remote_candidate (self->link, NULL, NULL);
    else if (json_node_get_value_type (c) == G_TYPE_STRING &&
             !parley_link_add_remote_candidate (self->link, json_node_get_string (c), &error))
      g_debug ("Refusing a link candidate: %s", error->message);
  }
}

static void
control_state_cb (ParleyDataChannel      *channel,
                  ParleyDataChannelState  state,
                  ParleyDataChannelState  old,
                  ParleyPeerLink         *self)
{
  if (state == PARLEY_DATA_CHANNEL_STATE_CLOSED) {
    drop_link (self);
  } else if (state == PARLEY_DATA_CHANNEL_STATE_OPEN && !self->channel_is_ours &&
             old == PARLEY_DATA_CHANNEL_STATE_CONNECTING) {
    /* The peer's channel again, on the call's next connection after a
     * restart: the offering side makes a fresh link. */
    send_control (self, "ready", NULL, NULL);
  }
}

static void
use_channel (ParleyPeerLink    *self,
             ParleyDataChannel *channel,
             gboolean           ours)
{
  if (self->channel) {
    g_signal_handlers_disconnect_by_data (self->channel, self);
    g_clear_object (&self->channel);
  }
  self->channel = g_object_ref (channel);
  self->channel_is_ours = ours;
  g_signal_connect (channel, "message-string", G_CALLBACK (control_message_cb), self);
  g_signal_connect (channel, "state-changed", G_CALLBACK (control_state_cb), self);
}

static void
peer_data_channel_cb (ParleyPeer        *peer,
                      ParleyDataChannel *channel,
                      ParleyPeerLink    *self)
{
  if (g_strcmp0 (parley_data_channel_get_label (channel), CONTROL_LABEL) != 0)
    return;
  /* The peer's channel: say so, for its offer (one sent as the channel
   * opens could be missed, see ParleyPeer::data-channel). Both sides
   * opening at once: the impolite side keeps its own channel. */
  if (self->channel && self->channel_is_ours && !self->polite)
    return;
  use_channel (self, channel, FALSE);
  send_control (self, "ready", NULL, NULL);
}

static void
parley_peer_link_dispose (GObject *object)
{
  ParleyPeerLink *self = PARLEY_PEER_LINK (object);
  g_autoptr(ParleyPeer) peer = g_weak_ref_get (&self->peer);

  if (peer)
    g_signal_handlers_disconnect_by_data (peer, self);
  drop_link (self);
  if (self->channel) {
    g_signal_handlers_disconnect_by_data (self->channel, self);
    g_clear_object (&self->channel);
  }
  G_OBJECT_CLASS (parley_peer_link_parent_class)->dispose (object);
}

static void
parley_peer_link_finalize (GObject *object)
{
  ParleyPeerLink *self = PARLEY_PEER_LINK (object);

  g_weak_ref_clear (&self->peer);
  G_OBJECT_CLASS (parley_peer_link_parent_class)->finalize (object);
}

static void
parley_peer_link_class_init (ParleyPeerLinkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = parley_peer_link_dispose;
  object_class->finalize = parley_peer_link_finalize;

  signals[SIGNAL_LINK] = g_signal_new ("link", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 1, PARLEY_TYPE_LINK);
}

static void
parley_peer_link_init (ParleyPeerLink *self)
{
  g_weak_ref_init (&self->peer, NULL);
}

/**
 * parley_peer_link_new:
 * @peer: the call's peer
 *
 * Makes the negotiator for @peer's link; it answers the peer's offer from
 * now on. Make it before the call connects.
 *
 * Returns: (transfer full): the negotiator
 */
ParleyPeerLink *
parley_peer_link_new (ParleyPeer *peer)
{
  ParleyPeerLink *self = g_object_new (PARLEY_TYPE_PEER_LINK, NULL);
  g_autoptr(ParleyMediaSettings) settings = NULL;

  g_return_val_if_fail (PARLEY_IS_PEER (peer), NULL);

  g_weak_ref_set (&self->peer, peer);
  self->polite = parley_peer_get_polite (peer);
  g_object_get (peer, "settings", &settings, "relay-only", &self->relay_only, NULL);
  self->realtime = settings ? parley_media_settings_get_realtime (settings) : FALSE;
  g_signal_connect (peer, "data-channel", G_CALLBACK (peer_data_channel_cb), self);
  return self;
}

/**
 * parley_peer_link_open:
 *
 * Opens the link from this side: the control channel opens with the call's
 * connection, then this side offers. #ParleyPeerLink::link follows.
 */
void
parley_peer_link_open (ParleyPeerLink *self)
{
  g_autoptr(ParleyPeer) peer = NULL;

  g_return_if_fail (PARLEY_IS_PEER_LINK (self));

  peer = g_weak_ref_get (&self->peer);
  if (self->want_open || peer == NULL)
    return;
  self->want_open = TRUE;
  if (self->channel == NULL)
    use_channel (self, parley_peer_create_data_channel (peer, CONTROL_LABEL, TRUE), TRUE);
}

/**
 * parley_peer_link_get_link:
 *
 * Returns: (transfer none) (nullable): the link, once there is one
 */
ParleyLink *
parley_peer_link_get_link (ParleyPeerLink *self)
{
  g_return_val_if_fail (PARLEY_IS_PEER_LINK (self), NULL);

  return self->link;
}
