/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-engine"

#include "parley-error.h"
#include "parley-types.h"

G_DEFINE_QUARK (parley-error-quark, parley_error)

/**
 * parley_message_state_to_string:
 * @state: a message state
 *
 * Returns: the lower-case name of @state, as used on the command line.
 */
const char *
parley_message_state_to_string (ParleyMessageState state)
{
  switch (state) {
  case PARLEY_MESSAGE_STATE_SENDING: return "sending";
  case PARLEY_MESSAGE_STATE_STORED: return "stored";
  case PARLEY_MESSAGE_STATE_DELIVERED: return "delivered";
  case PARLEY_MESSAGE_STATE_READ: return "read";
  case PARLEY_MESSAGE_STATE_FAILED: return "failed";
  default: return "unknown";
  }
}

/**
 * parley_client_state_to_string:
 * @state: a client state
 *
 * Returns: the lower-case name of @state.
 */
const char *
parley_client_state_to_string (ParleyClientState state)
{
  switch (state) {
  case PARLEY_CLIENT_STATE_DISCONNECTED: return "disconnected";
  case PARLEY_CLIENT_STATE_CONNECTING: return "connecting";
  case PARLEY_CLIENT_STATE_CONNECTED: return "connected";
  case PARLEY_CLIENT_STATE_RECONNECTING: return "reconnecting";
  default: return "unknown";
  }
}
