/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "parley-call.h"
#include "parley-client.h"
#include "parley-media-settings.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_CALL_MANAGER (parley_call_manager_get_type ())

G_DECLARE_FINAL_TYPE (ParleyCallManager, parley_call_manager, PARLEY, CALL_MANAGER, GObject)

/*
 * Owns the calls of one #ParleyClient: turns `call-*` frames
 * (ParleyClient::call-signal) into #ParleyCall objects and their events, and
 * sends the calls' frames. Rules:
 *
 * - One call at a time: an incoming call while another call is not ended is
 *   rejected with reason "busy" (recorded as a missed call).
 * - Call glare: when both users call each other at once (each has an outgoing
 *   ringing call to the other and receives the other's first offer), the call
 *   with the smaller callId survives on both sides; the side whose call lost
 *   drops it silently and accepts the surviving one (the user wanted the call).
 *   Calling someone whose call is ringing here accepts that call.
 * - TURN credentials are fetched from the server before the first call and
 *   refreshed before they expire (at 80 % of their TTL, and again if a call
 *   starts with credentials that expire within a minute).
 * - Ring timeout (#ParleyCallManager:ring-timeout, s, default 45): the caller ends
 *   with "missed" and tells the callee, which also records a missed call (and times
 *   out by itself 10 s later if the caller vanished).
 * - Every ended call is written to the cache's call log (parley_cache_list_calls()).
 *
 * Properties: client (construct-only), settings (construct-only), active-call
 * (ParleyCall*, nullable, read-only), relay-only (gboolean, rw), ring-timeout (guint, rw).
 * Signals: "incoming-call" (ParleyCall *call) for a new incoming-ringing call,
 *   "call-started" (ParleyCall *call) for every new call (either direction),
 *   "call-ended" (ParleyCall *call) after it was logged.
 */

ParleyCallManager   *parley_call_manager_new             (ParleyClient        *client,
                                                          ParleyMediaSettings *settings);
ParleyMediaSettings *parley_call_manager_get_settings    (ParleyCallManager   *self);
ParleyCall          *parley_call_manager_get_active_call (ParleyCallManager   *self);
void                 parley_call_manager_set_relay_only  (ParleyCallManager   *self,
                                                          gboolean             relay_only);
void                 parley_call_manager_set_ring_timeout (ParleyCallManager  *self,
                                                           guint               seconds);
/* Starts a call to @peer_id (a user id). Returns the new call in outgoing-ringing, or the
 * accepted incoming call from @peer_id (glare), or NULL with PARLEY_ERROR busy-style
 * error when another call is running. */
ParleyCall          *parley_call_manager_call            (ParleyCallManager   *self,
                                                          const char          *peer_id,
                                                          gboolean             video,
                                                          GError             **error);

G_END_DECLS
