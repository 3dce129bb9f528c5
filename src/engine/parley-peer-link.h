/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

#include "parley-link.h"
#include "parley-peer.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_PEER_LINK (parley_peer_link_get_type ())
G_DECLARE_FINAL_TYPE (ParleyPeerLink, parley_peer_link, PARLEY, PEER_LINK, GObject)

/*
 * Negotiates a #ParleyLink between the two sides of a #ParleyPeer, over a
 * reliable data channel of that peer (label "parley-link"): no server
 * round trip and no new message type, and the link exists only while the
 * call does. Both sides make one per peer; either side may open the link
 * (both at once: the impolite side's offer wins, as in Perfect
 * Negotiation).
 *
 * Control messages (JSON strings on the channel):
 *   {"link":"ready"}                                the answering side has the channel
 *   {"link":"offer","id":ID,"sdp":SDP}              parley_link_get_local_description()
 *   {"link":"answer","id":ID,"sdp":SDP}
 *   {"link":"candidate","id":ID,"candidate":C|null} C as RTCIceCandidate.candidate
 *
 * Signals (main context): "link" (ParleyLink *link) once a link exists on
 * this side (made by parley_peer_link_open() or answering the peer's offer).
 */

ParleyPeerLink *parley_peer_link_new      (ParleyPeer     *peer);
void            parley_peer_link_open     (ParleyPeerLink *self);
ParleyLink     *parley_peer_link_get_link (ParleyPeerLink *self);

G_END_DECLS
