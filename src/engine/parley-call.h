/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "parley-call-types.h"
#include "parley-peer.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_CALL (parley_call_get_type ())

G_DECLARE_FINAL_TYPE (ParleyCall, parley_call, PARLEY, CALL, GObject)

/*
 * One 1:1 call, created by #ParleyCallManager (never directly by the UI).
 * A state machine over signaling frames and its #ParleyPeer:
 *
 *   outgoing-ringing → connecting → active ⇄ reconnecting → ended
 *   incoming-ringing → connecting → ...
 *
 * Properties (read-only unless noted): call-id, peer-id, peer-name (nullable), outgoing
 * (gboolean), video (gboolean: video is sent or received), state (ParleyCallState),
 * end-reason (ParleyCallEndReason), created-at / answered-at / ended-at (gint64, unix µs,
 * 0 if not yet), duration (gint64 seconds of the answered part), peer (ParleyPeer*,
 * nullable until the media connection exists), audio-muted / video-muted (rw).
 * Signals: "state-changed" (ParleyCallState new, ParleyCallState old).
 *
 * The callee is the polite peer; the caller is impolite.
 */

const char          *parley_call_get_call_id     (ParleyCall *self);
const char          *parley_call_get_peer_id     (ParleyCall *self);
const char          *parley_call_get_peer_name   (ParleyCall *self);
gboolean             parley_call_get_outgoing    (ParleyCall *self);
gboolean             parley_call_get_video       (ParleyCall *self);
ParleyCallState      parley_call_get_state       (ParleyCall *self);
ParleyCallEndReason  parley_call_get_end_reason  (ParleyCall *self);
gint64               parley_call_get_created_at  (ParleyCall *self);
gint64               parley_call_get_answered_at (ParleyCall *self);
gint64               parley_call_get_ended_at    (ParleyCall *self);
gint64               parley_call_get_duration    (ParleyCall *self);
ParleyPeer          *parley_call_get_peer        (ParleyCall *self);

/* Incoming-ringing only. */
gboolean             parley_call_accept          (ParleyCall *self,
                                                  GError    **error);
gboolean             parley_call_reject          (ParleyCall *self,
                                                  GError    **error);
/* Any state but ended: cancels an outgoing ringing call, rejects an incoming one,
 * hangs up otherwise. Idempotent once ended. */
void                 parley_call_hangup          (ParleyCall *self);

void                 parley_call_set_audio_muted (ParleyCall *self,
                                                  gboolean    muted);
gboolean             parley_call_get_audio_muted (ParleyCall *self);
/* Camera off/on without renegotiation. */
void                 parley_call_set_video_muted (ParleyCall *self,
                                                  gboolean    muted);
gboolean             parley_call_get_video_muted (ParleyCall *self);
/* Upgrade to video (or send our video after the other side upgraded). */
gboolean             parley_call_add_video       (ParleyCall *self,
                                                  GError    **error);
/* A fresh offer/answer on the running connection (tests use it for mid-call glare). */
void                 parley_call_renegotiate     (ParleyCall *self);

G_END_DECLS
