/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "parley-password.h"

#include <gio/gio.h>
#include <sodium.h>

static void
test_hash_verify (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *h1 = NULL;
  g_autofree char *h2 = NULL;

  h1 = parley_password_hash ("correct horse", crypto_pwhash_OPSLIMIT_MIN,
                             crypto_pwhash_MEMLIMIT_MIN, &error);
  g_assert_no_error (error);
  g_assert_nonnull (h1);
  g_assert_true (g_str_has_prefix (h1, "$argon2id$v=19$"));

  g_assert_true (parley_password_verify (h1, "correct horse"));
  g_assert_false (parley_password_verify (h1, "correct horsf"));
  g_assert_false (parley_password_verify (h1, ""));

  /* A fresh salt every time. */
  h2 = parley_password_hash ("correct horse", crypto_pwhash_OPSLIMIT_MIN,
                             crypto_pwhash_MEMLIMIT_MIN, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (h1, !=, h2);
  g_assert_true (parley_password_verify (h2, "correct horse"));
}

static void
test_verify_garbage (void)
{
  g_autofree char *long_hash = g_strnfill (4096, 'a');

  g_assert_false (parley_password_verify (NULL, "password"));
  g_assert_false (parley_password_verify ("", "password"));
  g_assert_false (parley_password_verify ("$argon2id$v=19$m=8,t=1,p=1$", "password"));
  g_assert_false (parley_password_verify ("plain text", "plain text"));
  g_assert_false (parley_password_verify (long_hash, "password"));
}

static void
test_bad_limits (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *h = NULL;

  h = parley_password_hash ("password", 0, crypto_pwhash_MEMLIMIT_MIN, &error);
  g_assert_null (h);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/password/hash-verify", test_hash_verify);
  g_test_add_func ("/password/verify-garbage", test_verify_garbage);
  g_test_add_func ("/password/bad-limits", test_bad_limits);
  return g_test_run ();
}
