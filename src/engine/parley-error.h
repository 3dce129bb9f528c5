/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PARLEY_ERROR (parley_error_quark ())

/**
 * ParleyError:
 * @PARLEY_ERROR_NETWORK: The server could not be reached.
 * @PARLEY_ERROR_AUTH: The credentials or tokens were refused.
 * @PARLEY_ERROR_SERVER: The server answered with an error.
 * @PARLEY_ERROR_PROTOCOL: The server's answer could not be understood.
 * @PARLEY_ERROR_NOT_LOGGED_IN: The operation needs a logged-in account.
 * @PARLEY_ERROR_NOT_FOUND: A user or other object does not exist.
 * @PARLEY_ERROR_UNSUPPORTED: Content in a format this client does not know.
 * @PARLEY_ERROR_INVALID: Invalid input or corrupt local data.
 * @PARLEY_ERROR_BUSY: Another call is running.
 * @PARLEY_ERROR_MEDIA: A media pipeline or WebRTC operation failed.
 * @PARLEY_ERROR_STATE: The operation is not possible in the object's current state.
 *
 * Errors of the Parley engine.
 */
typedef enum {
  PARLEY_ERROR_NETWORK,
  PARLEY_ERROR_AUTH,
  PARLEY_ERROR_SERVER,
  PARLEY_ERROR_PROTOCOL,
  PARLEY_ERROR_NOT_LOGGED_IN,
  PARLEY_ERROR_NOT_FOUND,
  PARLEY_ERROR_UNSUPPORTED,
  PARLEY_ERROR_INVALID,
  PARLEY_ERROR_BUSY,
  PARLEY_ERROR_MEDIA,
  PARLEY_ERROR_STATE,
} ParleyError;

GQuark parley_error_quark (void);

G_END_DECLS
