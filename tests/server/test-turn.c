/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "parley-turn.h"
#include "parley-test-utils.h"

static void
test_credentials (void)
{
  g_autofree char *username = NULL;
  g_autofree char *password = NULL;
  g_autofree char *expected = NULL;

  parley_turn_credentials ("s3cret", "0123abcd", 1700000000, 86400, &username, &password);
  g_assert_cmpstr (username, ==, "1700086400:0123abcd");

  expected = parley_test_openssl_hmac_sha1_b64 ("s3cret", username);
  g_assert_cmpstr (password, ==, expected);
}

static void
test_depends_on_secret_and_time (void)
{
  g_autofree char *u1 = NULL, *p1 = NULL, *u2 = NULL, *p2 = NULL, *u3 = NULL, *p3 = NULL;

  parley_turn_credentials ("a", "user", 100, 10, &u1, &p1);
  parley_turn_credentials ("b", "user", 100, 10, &u2, &p2);
  parley_turn_credentials ("a", "user", 101, 10, &u3, &p3);

  g_assert_cmpstr (u1, ==, u2);
  g_assert_cmpstr (p1, !=, p2);
  g_assert_cmpstr (u1, !=, u3);
  g_assert_cmpstr (p1, !=, p3);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/turn/credentials", test_credentials);
  g_test_add_func ("/turn/depends-on-secret-and-time", test_depends_on_secret_and_time);
  return g_test_run ();
}
