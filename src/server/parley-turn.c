/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-turn"

#include "parley-turn.h"

#include <string.h>

/**
 * parley_turn_credentials:
 * @secret: the secret shared with the TURN server
 * @user_id: the user the credentials are for
 * @now: the current time in seconds since the epoch
 * @ttl: how long the credentials stay valid, in seconds
 * @out_username: (out) (transfer full): `"<now + ttl>:<user_id>"`
 * @out_password: (out) (transfer full): base64 (HMAC-SHA1 (@secret, username))
 *
 * Computes time-limited TURN credentials in the TURN REST scheme that coturn
 * checks with `use-auth-secret`.
 */
void
parley_turn_credentials (const char  *secret,
                         const char  *user_id,
                         gint64       now,
                         guint        ttl,
                         char       **out_username,
                         char       **out_password)
{
  g_autoptr(GHmac) hmac = NULL;
  guint8 digest[20];
  gsize digest_len = sizeof digest;
  char *username;

  g_return_if_fail (secret != NULL);
  g_return_if_fail (user_id != NULL);
  g_return_if_fail (out_username != NULL && out_password != NULL);

  username = g_strdup_printf ("%" G_GINT64_FORMAT ":%s", now + (gint64) ttl, user_id);

  hmac = g_hmac_new (G_CHECKSUM_SHA1, (const guchar *) secret, strlen (secret));
  g_hmac_update (hmac, (const guchar *) username, -1);
  g_hmac_get_digest (hmac, digest, &digest_len);

  *out_password = g_base64_encode (digest, digest_len);
  *out_username = username;
}
