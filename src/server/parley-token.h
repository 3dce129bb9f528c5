/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * PARLEY_TOKEN_MAX_LEN:
 *
 * The longest access token parley_token_verify() looks at, in bytes.
 */
#define PARLEY_TOKEN_MAX_LEN 4096

#define PARLEY_TOKEN_ERROR (parley_token_error_quark ())

/**
 * ParleyTokenError:
 * @PARLEY_TOKEN_ERROR_MALFORMED: the token is not a well-formed Parley JWT
 * @PARLEY_TOKEN_ERROR_SIGNATURE: the signature does not match
 * @PARLEY_TOKEN_ERROR_EXPIRED: the token is well-formed and signed but expired
 *
 * Why an access token was rejected.
 */
typedef enum {
  PARLEY_TOKEN_ERROR_MALFORMED,
  PARLEY_TOKEN_ERROR_SIGNATURE,
  PARLEY_TOKEN_ERROR_EXPIRED,
} ParleyTokenError;

GQuark  parley_token_error_quark   (void);

char   *parley_token_issue         (const guint8  *key,
                                    gsize          key_len,
                                    const char    *user_id,
                                    gint64         now,
                                    gint64         ttl);
char   *parley_token_verify        (const guint8  *key,
                                    gsize          key_len,
                                    const char    *token,
                                    gint64         now,
                                    GError       **error);
char   *parley_token_new_refresh   (void);
char   *parley_token_hash_refresh  (const char    *token);
gboolean parley_token_is_identifier (const char   *str);

G_END_DECLS
