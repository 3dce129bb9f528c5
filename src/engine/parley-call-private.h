/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "parley-cache.h"
#include "parley-call.h"
#include "parley-client.h"
#include "parley-media-settings.h"

G_BEGIN_DECLS

/* The interface between #ParleyCall and #ParleyCallManager: the manager
 * creates calls, routes frames and server errors to them, and gives them ICE
 * servers; the calls send their own frames through the client. */

#define PARLEY_CALL_RECONNECT_TIMEOUT_S 30
#define PARLEY_CALL_CALLEE_GRACE_S      10

ParleyCall       *parley_call_new_outgoing       (ParleyClient        *client,
                                                  ParleyMediaSettings *settings,
                                                  const char          *call_id,
                                                  const char          *peer_id,
                                                  const char          *peer_name,
                                                  gboolean             video);
ParleyCall       *parley_call_new_incoming       (ParleyClient        *client,
                                                  ParleyMediaSettings *settings,
                                                  const char          *call_id,
                                                  const char          *peer_id,
                                                  const char          *peer_name,
                                                  const char          *offer_sdp,
                                                  guint                offer_generation,
                                                  gboolean             video);

/* Starts the ring timer: @seconds from the first offer for the caller (plus the
 * grace period before it), @seconds + the grace period for the callee. */
void              parley_call_start_ringing      (ParleyCall          *self,
                                                  guint                seconds);
void              parley_call_set_ring_grace     (ParleyCall          *self,
                                                  guint                seconds);
void              parley_call_set_relay_only     (ParleyCall          *self,
                                                  gboolean             relay_only);
/* The devices the call runs between (see the `device` members in docs/protocol.md). */
void              parley_call_set_devices        (ParleyCall          *self,
                                                  const char          *device,
                                                  const char          *peer_device);
/* How long connecting or reconnecting may last before the call fails. */
void              parley_call_set_reconnect_timeout (ParleyCall       *self,
                                                     guint             seconds);

/* The ICE servers for the call's peer; any may be %NULL (no TURN). The call
 * builds its peer only once they are known. */
void              parley_call_set_ice_servers    (ParleyCall          *self,
                                                  const char          *stun_uri,
                                                  const char * const  *turn_uris,
                                                  const char          *turn_username,
                                                  const char          *turn_password);
gboolean          parley_call_get_has_ice_servers (ParleyCall         *self);

/* A `call-*` frame from the call's peer (the manager checked `senderId` and `callId`). */
void              parley_call_handle_frame       (ParleyCall          *self,
                                                  const char          *type,
                                                  JsonObject          *frame);
/* The server refused the request with `ref` (`call-<callId>`, the first offer). */
void              parley_call_handle_request_error (ParleyCall        *self,
                                                    const char        *code,
                                                    const char        *message);
const char       *parley_call_get_offer_ref      (ParleyCall          *self);

/* Ends the call at once with @reason, without any frame (busy auto-reject,
 * or the losing call of a glare, which is marked as superseded). */
void              parley_call_end_silently       (ParleyCall          *self,
                                                  ParleyCallEndReason  reason);
/* Sends call-reject `busy` for a call that rang while another one runs. */
void              parley_call_reject_busy        (ParleyCall          *self);
void              parley_call_supersede          (ParleyCall          *self);
gboolean          parley_call_get_superseded     (ParleyCall          *self);

/* Whether the call answered (callee accepted or caller saw the accept). */
gboolean          parley_call_get_answered       (ParleyCall          *self);

ParleyCallRecord *parley_call_to_record          (ParleyCall          *self);

/* Safe readers for members of untrusted frames: the wrong type counts as missing. */
const char       *parley_call_frame_get_string   (JsonObject          *frame,
                                                  const char          *member);
gboolean          parley_call_frame_get_uint     (JsonObject          *frame,
                                                  const char          *member,
                                                  guint               *out);
gboolean          parley_call_id_is_valid        (const char          *id);

G_END_DECLS
