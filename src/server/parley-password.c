/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-password"

#include "parley-password.h"

#include <gio/gio.h>
#include <sodium.h>
#include <string.h>

/**
 * parley_sodium_init:
 *
 * Initialises libsodium exactly once. Safe to call from any thread and any
 * number of times; every libsodium user in the server calls it first.
 */
void
parley_sodium_init (void)
{
  static gsize initialised = 0;

  if (g_once_init_enter (&initialised)) {
    if (sodium_init () < 0)
      g_error ("libsodium could not be initialised");
    g_once_init_leave (&initialised, 1);
  }
}

/**
 * parley_password_hash:
 * @password: the password, NUL-terminated
 * @opslimit: the Argon2id operations limit
 * @memlimit: the Argon2id memory limit in bytes
 * @error: return location for a #GError
 *
 * Hashes @password with Argon2id (version 1.3) and a fresh random salt. This
 * is deliberately slow: never call it on a main loop thread.
 *
 * Returns: (transfer full): the encoded hash (`$argon2id$v=19$...`), or %NULL
 *   with @error set if the limits are out of range or memory ran out
 */
char *
parley_password_hash (const char  *password,
                      guint64      opslimit,
                      gsize        memlimit,
                      GError     **error)
{
  char out[crypto_pwhash_STRBYTES];

  g_return_val_if_fail (password != NULL, NULL);

  parley_sodium_init ();

  if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > crypto_pwhash_OPSLIMIT_MAX ||
      memlimit < crypto_pwhash_MEMLIMIT_MIN || memlimit > crypto_pwhash_MEMLIMIT_MAX) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "Argon2id limits out of range");
    return NULL;
  }

  if (crypto_pwhash_str_alg (out, password, strlen (password), opslimit, memlimit,
                             crypto_pwhash_ALG_ARGON2ID13) != 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                 "Argon2id hashing failed (out of memory)");
    return NULL;
  }

  return g_strdup (out);
}

/**
 * parley_password_verify:
 * @hash: an encoded hash from parley_password_hash()
 * @password: the password to check
 *
 * Checks @password against @hash in time independent of where they differ.
 * A malformed @hash simply does not match.
 *
 * Returns: %TRUE if @password matches @hash
 */
gboolean
parley_password_verify (const char *hash,
                        const char *password)
{
  g_return_val_if_fail (password != NULL, FALSE);

  if (hash == NULL)
    return FALSE;

  parley_sodium_init ();

  /* libsodium reads up to crypto_pwhash_STRBYTES bytes of the encoded hash. */
  if (strnlen (hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
    return FALSE;

  return crypto_pwhash_str_verify (hash, password, strlen (password)) == 0;
}
