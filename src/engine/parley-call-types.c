/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-call"

#include "parley-call-types.h"

#include <string.h>

static const char * const peer_states[] = {
  [PARLEY_PEER_STATE_NEW] = "new",
  [PARLEY_PEER_STATE_CONNECTING] = "connecting",
  [PARLEY_PEER_STATE_CONNECTED] = "connected",
  [PARLEY_PEER_STATE_DISCONNECTED] = "disconnected",
  [PARLEY_PEER_STATE_RESTARTING] = "restarting",
  [PARLEY_PEER_STATE_FAILED] = "failed",
  [PARLEY_PEER_STATE_CLOSED] = "closed",
};

static const char * const call_states[] = {
  [PARLEY_CALL_STATE_OUTGOING_RINGING] = "outgoing-ringing",
  [PARLEY_CALL_STATE_INCOMING_RINGING] = "incoming-ringing",
  [PARLEY_CALL_STATE_CONNECTING] = "connecting",
  [PARLEY_CALL_STATE_ACTIVE] = "active",
  [PARLEY_CALL_STATE_RECONNECTING] = "reconnecting",
  [PARLEY_CALL_STATE_ENDED] = "ended",
};

static const char * const end_reasons[] = {
  [PARLEY_CALL_END_REASON_NONE] = "none",
  [PARLEY_CALL_END_REASON_HANGUP] = "hangup",
  [PARLEY_CALL_END_REASON_REJECTED] = "rejected",
  [PARLEY_CALL_END_REASON_BUSY] = "busy",
  [PARLEY_CALL_END_REASON_MISSED] = "missed",
  [PARLEY_CALL_END_REASON_FAILED] = "failed",
  [PARLEY_CALL_END_REASON_CANCELLED] = "cancelled",
  [PARLEY_CALL_END_REASON_OFFLINE] = "offline",
  [PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE] = "answered-elsewhere",
};

/**
 * parley_peer_state_to_string:
 * @state: a peer state
 *
 * Returns: the state's wire and log name, such as "connected"
 */
const char *
parley_peer_state_to_string (ParleyPeerState state)
{
  if ((guint) state >= G_N_ELEMENTS (peer_states))
    return "unknown";
  return peer_states[state];
}

/**
 * parley_call_state_to_string:
 * @state: a call state
 *
 * Returns: the state's name, such as "outgoing-ringing"
 */
const char *
parley_call_state_to_string (ParleyCallState state)
{
  if ((guint) state >= G_N_ELEMENTS (call_states))
    return "unknown";
  return call_states[state];
}

/**
 * parley_call_end_reason_to_string:
 * @reason: an end reason
 *
 * Returns: the reason's wire name, such as "busy"
 */
const char *
parley_call_end_reason_to_string (ParleyCallEndReason reason)
{
  if ((guint) reason >= G_N_ELEMENTS (end_reasons))
    return "unknown";
  return end_reasons[reason];
}

/**
 * parley_call_end_reason_from_string:
 * @text: (nullable): a wire name
 *
 * Returns: the reason, or %PARLEY_CALL_END_REASON_HANGUP for a missing or
 *   unknown name (a peer that does not say why simply hung up)
 */
ParleyCallEndReason
parley_call_end_reason_from_string (const char *text)
{
  if (text == NULL)
    return PARLEY_CALL_END_REASON_HANGUP;
  for (guint i = PARLEY_CALL_END_REASON_HANGUP; i < G_N_ELEMENTS (end_reasons); i++) {
    if (strcmp (text, end_reasons[i]) == 0)
      return (ParleyCallEndReason) i;
  }
  return PARLEY_CALL_END_REASON_HANGUP;
}
