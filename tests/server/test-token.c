/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "parley-token.h"
#include "parley-test-utils.h"

#include <json-glib/json-glib.h>
#include <sodium.h>
#include <string.h>

static const guint8 key[32] = "0123456789abcdef0123456789abcdef";
static const guint8 other_key[32] = "fedcba9876543210fedcba9876543210";

/* Builds a token from raw header and payload JSON and signs it with GHmac,
 * independently of the code under test. */
static char *
craft (const guint8 *k,
       const char   *header,
       const char   *payload)
{
  g_autofree char *h = parley_test_b64url ((const guint8 *) header, strlen (header));
  g_autofree char *p = parley_test_b64url ((const guint8 *) payload, strlen (payload));
  g_autofree char *input = g_strconcat (h, ".", p, NULL);
  g_autoptr(GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA256, k, 32);
  guint8 mac[32];
  gsize mac_len = sizeof mac;
  g_autofree char *s = NULL;

  g_hmac_update (hmac, (const guchar *) input, -1);
  g_hmac_get_digest (hmac, mac, &mac_len);
  s = parley_test_b64url (mac, mac_len);
  return g_strconcat (input, ".", s, NULL);
}

#define STD_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void
assert_rejected (const char *token,
                 gint64      now,
                 int         code)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *sub = parley_token_verify (key, sizeof key, token, now, &error);

  g_assert_null (sub);
  g_assert_error (error, PARLEY_TOKEN_ERROR, code);
}

static void
test_roundtrip (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *token = parley_token_issue (key, sizeof key, "0a1b2c3d", 1000, 900);
  g_autofree char *token2 = parley_token_issue (key, sizeof key, "0a1b2c3d", 1000, 900);
  g_autofree char *sub = NULL;
  g_auto(GStrv) parts = NULL;
  g_autofree guchar *payload = NULL;
  gsize payload_len;
  g_autofree char *payload_b64 = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *claims;
  g_autofree char *recrafted_input = NULL;
  g_autoptr(GHmac) hmac = NULL;
  guint8 mac[32];
  gsize mac_len = sizeof mac;
  g_autofree char *mac_b64 = NULL;

  g_assert_cmpstr (token, !=, token2);

  sub = parley_token_verify (key, sizeof key, token, 1000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sub, ==, "0a1b2c3d");

  /* Check the format independently: header, claims and signature. */
  parts = g_strsplit (token, ".", -1);
  g_assert_cmpuint (g_strv_length (parts), ==, 3);

  payload_b64 = g_strdup (parts[1]);
  g_strdelimit (payload_b64, "-", '+');
  g_strdelimit (payload_b64, "_", '/');
  while (strlen (payload_b64) % 4 != 0) {
    char *tmp = g_strconcat (payload_b64, "=", NULL);
    g_free (payload_b64);
    payload_b64 = tmp;
  }
  payload = g_base64_decode (payload_b64, &payload_len);
  g_assert_true (json_parser_load_from_data (parser, (const char *) payload, payload_len, &error));
  g_assert_no_error (error);
  claims = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (claims, "sub"), ==, "0a1b2c3d");
  g_assert_cmpint (json_object_get_int_member (claims, "iat"), ==, 1000);
  g_assert_cmpint (json_object_get_int_member (claims, "exp"), ==, 1900);
  g_assert_cmpuint (strlen (json_object_get_string_member (claims, "jti")), >=, 16);

  recrafted_input = g_strconcat (parts[0], ".", parts[1], NULL);
  hmac = g_hmac_new (G_CHECKSUM_SHA256, key, sizeof key);
  g_hmac_update (hmac, (const guchar *) recrafted_input, -1);
  g_hmac_get_digest (hmac, mac, &mac_len);
  mac_b64 = parley_test_b64url (mac, mac_len);
  g_assert_cmpstr (parts[2], ==, mac_b64);
}

static void
test_crafted_accepted (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *t = craft (key, STD_HEADER,
                              "{\"sub\":\"alice_1\",\"iat\":10,\"exp\":20,\"jti\":\"x\"}");
  g_autofree char *sub = parley_token_verify (key, sizeof key, t, 19, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (sub, ==, "alice_1");
}

static void
test_expiry (void)
{
  g_autofree char *token = parley_token_issue (key, sizeof key, "u1", 1000, 60);
  g_autoptr(GError) error = NULL;
  g_autofree char *sub = parley_token_verify (key, sizeof key, token, 1059, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (sub, ==, "u1");
  assert_rejected (token, 1060, PARLEY_TOKEN_ERROR_EXPIRED);
  assert_rejected (token, 5000, PARLEY_TOKEN_ERROR_EXPIRED);
}

static void
test_wrong_key (void)
{
  g_autofree char *token = parley_token_issue (other_key, sizeof other_key, "u1", 1000, 60);
  g_autofree char *crafted = craft (other_key, STD_HEADER,
                                    "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"}");

  assert_rejected (token, 1000, PARLEY_TOKEN_ERROR_SIGNATURE);
  assert_rejected (crafted, 1000, PARLEY_TOKEN_ERROR_SIGNATURE);
}

static void
test_tampered (void)
{
  g_autofree char *token = parley_token_issue (key, sizeof key, "u1", 1000, 60);
  g_auto(GStrv) parts = g_strsplit (token, ".", -1);
  const char *forged_payload = "{\"sub\":\"u2\",\"iat\":1000,\"exp\":99999,\"jti\":\"a\"}";
  g_autofree char *p = parley_test_b64url ((const guint8 *) forged_payload,
                                           strlen (forged_payload));
  g_autofree char *forged = g_strjoin (".", parts[0], p, parts[2], NULL);
  g_autofree char *flipped = g_strdup (token);
  char *last_sig_char0 = strrchr (flipped, '.') + 1;

  assert_rejected (forged, 1000, PARLEY_TOKEN_ERROR_SIGNATURE);

  *last_sig_char0 = *last_sig_char0 == 'A' ? 'B' : 'A';
  assert_rejected (flipped, 1000, PARLEY_TOKEN_ERROR_SIGNATURE);
}

static void
test_alg_confusion (void)
{
  const char *claims = "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"}";
  g_autofree char *none = craft (key, "{\"alg\":\"none\",\"typ\":\"JWT\"}", claims);
  g_autofree char *hs512 = craft (key, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", claims);
  g_autofree char *no_typ = craft (key, "{\"alg\":\"HS256\"}", claims);
  g_autofree char *h = parley_test_b64url ((const guint8 *) "{\"alg\":\"none\"}", 14);
  g_autofree char *p = parley_test_b64url ((const guint8 *) claims, strlen (claims));
  g_autofree char *unsigned_tok = g_strconcat (h, ".", p, ".", NULL);

  assert_rejected (none, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected (hs512, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected (no_typ, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected (unsigned_tok, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
}

static void
test_bad_claims (void)
{
  const char *bad[] = {
    "{\"iat\":1,\"exp\":2000,\"jti\":\"a\"}",                         /* no sub */
    "{\"sub\":\"u1\",\"iat\":1,\"jti\":\"a\"}",                       /* no exp */
    "{\"sub\":\"u1\",\"exp\":2000,\"jti\":\"a\"}",                    /* no iat */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000}",                        /* no jti */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":\"2000\",\"jti\":\"a\"}",      /* exp is a string */
    "{\"sub\":1,\"iat\":1,\"exp\":2000,\"jti\":\"a\"}",               /* sub is a number */
    "{\"sub\":\"u 1\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"}",         /* sub not an id */
    "{\"sub\":\"\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"}",            /* empty sub */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000.5,\"jti\":\"a\"}",        /* float */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":-5,\"jti\":\"a\"}",            /* negative */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":99999999999999999999,\"jti\":\"a\"}", /* overflow */
    "{\"sub\":\"u1\",\"sub\":\"u2\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"}",  /* duplicate */
    "{\"sub\":\"u\\u0031\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"}",    /* escapes */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"} x",        /* trailing */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000,\"jti\":\"a\",\"x\":{}}", /* nested */
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000,\"jti\":\"a\",}",         /* trailing comma */
    "[\"u1\"]",
    "{}",
    "",
    "{\"sub\":\"u1\",\"iat\":1,\"exp\":2000,\"jti\":\"a\"",           /* unterminated */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree char *t = NULL;

    g_test_message ("claims: %s", bad[i]);
    if (bad[i][0] == '\0') {
      /* An empty payload segment. */
      g_autofree char *h = parley_test_b64url ((const guint8 *) STD_HEADER, strlen (STD_HEADER));
      t = g_strconcat (h, "..AAAA", NULL);
    } else {
      t = craft (key, STD_HEADER, bad[i]);
    }
    assert_rejected (t, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  }
}

static void
test_bad_structure (void)
{
  g_autofree char *token = parley_token_issue (key, sizeof key, "u1", 1000, 60);
  g_autofree char *extra = g_strconcat (token, ".x", NULL);
  g_autofree char *bad_b64 = g_strdup (token);
  g_autofree char *huge = NULL;
  g_autofree char *padded = g_strconcat (token, "=", NULL);
  g_autofree char *stripped = g_strndup (token, strrchr (token, '.') - token);
  GString *long_tok;
  char *dot;

  assert_rejected (NULL, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected ("", 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected ("...", 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected ("not a token", 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected (extra, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected (padded, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
  assert_rejected (stripped, 1000, PARLEY_TOKEN_ERROR_MALFORMED);

  /* A character outside the base64url alphabet in the payload. */
  dot = strchr (bad_b64, '.');
  dot[3] = '*';
  assert_rejected (bad_b64, 1000, PARLEY_TOKEN_ERROR_MALFORMED);

  /* Longer than 4 KiB, even with a valid signature. */
  long_tok = g_string_new ("{\"sub\":\"u1\",\"iat\":1,\"exp\":2000,\"jti\":\"");
  for (int i = 0; i < 3500; i++)
    g_string_append_c (long_tok, 'a');
  g_string_append (long_tok, "\"}");
  huge = craft (key, STD_HEADER, long_tok->str);
  g_string_free (long_tok, TRUE);
  g_assert_cmpuint (strlen (huge), >, PARLEY_TOKEN_MAX_LEN);
  assert_rejected (huge, 1000, PARLEY_TOKEN_ERROR_MALFORMED);
}

static void
test_refresh (void)
{
  g_autofree char *a = parley_token_new_refresh ();
  g_autofree char *b = parley_token_new_refresh ();
  g_autofree char *ha = parley_token_hash_refresh (a);
  guint8 digest[crypto_hash_sha256_BYTES];
  char hex[crypto_hash_sha256_BYTES * 2 + 1];

  g_assert_cmpstr (a, !=, b);
  g_assert_cmpuint (strlen (a), ==, 43);
  for (const char *p = a; *p; p++)
    g_assert_true (g_ascii_isalnum (*p) || *p == '-' || *p == '_');

  g_assert_true (sodium_init () >= 0);
  crypto_hash_sha256 (digest, (const guint8 *) a, strlen (a));
  sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
  g_assert_cmpstr (ha, ==, hex);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/token/roundtrip", test_roundtrip);
  g_test_add_func ("/token/crafted-accepted", test_crafted_accepted);
  g_test_add_func ("/token/expiry", test_expiry);
  g_test_add_func ("/token/wrong-key", test_wrong_key);
  g_test_add_func ("/token/tampered", test_tampered);
  g_test_add_func ("/token/alg-confusion", test_alg_confusion);
  g_test_add_func ("/token/bad-claims", test_bad_claims);
  g_test_add_func ("/token/bad-structure", test_bad_structure);
  g_test_add_func ("/token/refresh", test_refresh);
  return g_test_run ();
}
