/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyClientState:
 * @PARLEY_CLIENT_STATE_DISCONNECTED: No connection and none is being made.
 * @PARLEY_CLIENT_STATE_CONNECTING: The first connection attempt is under way.
 * @PARLEY_CLIENT_STATE_CONNECTED: Connected and authenticated (the server said `hello`).
 * @PARLEY_CLIENT_STATE_RECONNECTING: The link was lost or an attempt failed; waiting to retry.
 *
 * The state of the connection to the server.
 */
typedef enum {
  PARLEY_CLIENT_STATE_DISCONNECTED,
  PARLEY_CLIENT_STATE_CONNECTING,
  PARLEY_CLIENT_STATE_CONNECTED,
  PARLEY_CLIENT_STATE_RECONNECTING,
} ParleyClientState;

/**
 * ParleyMessageState:
 * @PARLEY_MESSAGE_STATE_SENDING: Persisted locally, not yet acknowledged by the server.
 * @PARLEY_MESSAGE_STATE_STORED: The server stored it durably.
 * @PARLEY_MESSAGE_STATE_DELIVERED: A device of the recipient received it.
 * @PARLEY_MESSAGE_STATE_READ: The recipient read it (or, for incoming messages, the user did).
 * @PARLEY_MESSAGE_STATE_FAILED: The server refused it; it will not be sent again.
 *
 * The delivery state of a message. The first four only ever advance.
 */
typedef enum {
  PARLEY_MESSAGE_STATE_SENDING,
  PARLEY_MESSAGE_STATE_STORED,
  PARLEY_MESSAGE_STATE_DELIVERED,
  PARLEY_MESSAGE_STATE_READ,
  PARLEY_MESSAGE_STATE_FAILED,
} ParleyMessageState;

const char *parley_message_state_to_string (ParleyMessageState state);
const char *parley_client_state_to_string  (ParleyClientState  state);

G_END_DECLS
