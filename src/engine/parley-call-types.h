/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyPeerState:
 * @PARLEY_PEER_STATE_NEW: Not started, or started and not negotiated yet.
 * @PARLEY_PEER_STATE_CONNECTING: ICE and DTLS are being established.
 * @PARLEY_PEER_STATE_CONNECTED: Media and data can flow.
 * @PARLEY_PEER_STATE_DISCONNECTED: The path was lost; it may come back by itself.
 * @PARLEY_PEER_STATE_RESTARTING: The peer threw its connection away and is
 *   negotiating a fresh one (new generation).
 * @PARLEY_PEER_STATE_FAILED: No connection could be made and no restart is possible.
 * @PARLEY_PEER_STATE_CLOSED: Closed by parley_peer_close().
 *
 * The state of a #ParleyPeer, from the underlying connection state and the
 * peer's own restart logic.
 */
typedef enum {
  PARLEY_PEER_STATE_NEW,
  PARLEY_PEER_STATE_CONNECTING,
  PARLEY_PEER_STATE_CONNECTED,
  PARLEY_PEER_STATE_DISCONNECTED,
  PARLEY_PEER_STATE_RESTARTING,
  PARLEY_PEER_STATE_FAILED,
  PARLEY_PEER_STATE_CLOSED,
} ParleyPeerState;

/**
 * ParleyCallState:
 * @PARLEY_CALL_STATE_OUTGOING_RINGING: We called; the other side has not answered yet.
 * @PARLEY_CALL_STATE_INCOMING_RINGING: The other side calls us; we have not answered yet.
 * @PARLEY_CALL_STATE_CONNECTING: Answered; the media connection is being made.
 * @PARLEY_CALL_STATE_ACTIVE: Connected; media flows.
 * @PARLEY_CALL_STATE_RECONNECTING: The connection was lost and is being remade under the
 *   same call.
 * @PARLEY_CALL_STATE_ENDED: Over; see #ParleyCall:end-reason.
 *
 * The state of a #ParleyCall.
 */
typedef enum {
  PARLEY_CALL_STATE_OUTGOING_RINGING,
  PARLEY_CALL_STATE_INCOMING_RINGING,
  PARLEY_CALL_STATE_CONNECTING,
  PARLEY_CALL_STATE_ACTIVE,
  PARLEY_CALL_STATE_RECONNECTING,
  PARLEY_CALL_STATE_ENDED,
} ParleyCallState;

/**
 * ParleyCallEndReason:
 * @PARLEY_CALL_END_REASON_NONE: The call has not ended.
 * @PARLEY_CALL_END_REASON_HANGUP: One side hung up an answered call.
 * @PARLEY_CALL_END_REASON_REJECTED: The callee declined.
 * @PARLEY_CALL_END_REASON_BUSY: The callee was already in a call.
 * @PARLEY_CALL_END_REASON_MISSED: Nobody answered before the ring timeout.
 * @PARLEY_CALL_END_REASON_FAILED: The connection could not be made or remade.
 * @PARLEY_CALL_END_REASON_CANCELLED: The caller hung up before an answer.
 * @PARLEY_CALL_END_REASON_OFFLINE: The callee had no device online.
 * @PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE: Another device of this account
 *   answered the call that rang here.
 *
 * Why a call ended.
 */
typedef enum {
  PARLEY_CALL_END_REASON_NONE,
  PARLEY_CALL_END_REASON_HANGUP,
  PARLEY_CALL_END_REASON_REJECTED,
  PARLEY_CALL_END_REASON_BUSY,
  PARLEY_CALL_END_REASON_MISSED,
  PARLEY_CALL_END_REASON_FAILED,
  PARLEY_CALL_END_REASON_CANCELLED,
  PARLEY_CALL_END_REASON_OFFLINE,
  PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE,
} ParleyCallEndReason;

const char          *parley_peer_state_to_string        (ParleyPeerState      state);
const char          *parley_call_state_to_string        (ParleyCallState      state);
const char          *parley_call_end_reason_to_string   (ParleyCallEndReason  reason);
ParleyCallEndReason  parley_call_end_reason_from_string (const char          *text);

G_END_DECLS
