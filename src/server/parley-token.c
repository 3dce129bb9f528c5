/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-token"

#include "parley-token.h"
#include "parley-password.h"

#include <sodium.h>
#include <string.h>

/* The base64url encoding of {"alg":"HS256","typ":"JWT"}. Parley only ever
 * verifies tokens it issued itself, so the header must be exactly this: any
 * other algorithm (including "none") is rejected by a plain comparison. */
#define JWT_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define JWT_HEADER_B64_LEN (sizeof JWT_HEADER_B64 - 1)

#define REFRESH_TOKEN_BYTES 32
#define JTI_BYTES 16

G_DEFINE_QUARK (parley-token-error-quark, parley_token_error)

/**
 * parley_token_is_identifier:
 * @str: (nullable): a string
 *
 * Checks that @str is a protocol identifier: 1 to 64 characters from
 * `[A-Za-z0-9_.:-]`.
 *
 * Returns: %TRUE if @str is a valid identifier
 */
gboolean
parley_token_is_identifier (const char *str)
{
  gsize i;

  if (str == NULL)
    return FALSE;

  for (i = 0; str[i] != '\0'; i++) {
    char c = str[i];

    if (i >= 64)
      return FALSE;
    if (!g_ascii_isalnum (c) && c != '_' && c != '.' && c != ':' && c != '-')
      return FALSE;
  }

  return i > 0;
}

static char *
b64url_encode (const guint8 *data,
               gsize         len)
{
  gsize size = sodium_base64_ENCODED_LEN (len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  char *out = g_malloc (size);

  sodium_bin2base64 (out, size, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return out;
}

/* Decodes exactly @len characters of unpadded base64url into @out. Fails on
 * any character outside the alphabet, on impossible lengths and on non-zero
 * trailing bits, so every token has exactly one accepted spelling. */
static gboolean
b64url_decode (const char *in,
               gsize       len,
               guint8     *out,
               gsize       out_size,
               gsize      *out_len)
{
  const char *end = NULL;

  if (len == 0 || len % 4 == 1)
    return FALSE;

  if (sodium_base642bin (out, out_size, in, len, NULL, out_len, &end,
                         sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return FALSE;

  return end == in + len;
}

static void
sign (const guint8 *key,
      gsize         key_len,
      const char   *data,
      gsize         len,
      guint8        mac[crypto_auth_hmacsha256_BYTES])
{
  crypto_auth_hmacsha256_state state;

  crypto_auth_hmacsha256_init (&state, key, key_len);
  crypto_auth_hmacsha256_update (&state, (const guint8 *) data, len);
  crypto_auth_hmacsha256_final (&state, mac);
  sodium_memzero (&state, sizeof state);
}

/**
 * parley_token_issue:
 * @key: (array length=key_len): the HMAC key
 * @key_len: length of @key in bytes
 * @user_id: the user the token is for, a protocol identifier
 * @now: the current time in seconds since the epoch
 * @ttl: lifetime in seconds
 *
 * Issues an HS256 JWT access token with the claims `sub`, `iat`, `exp` and
 * a random `jti`.
 *
 * Returns: (transfer full): the token
 */
char *
parley_token_issue (const guint8 *key,
                    gsize         key_len,
                    const char   *user_id,
                    gint64        now,
                    gint64        ttl)
{
  guint8 jti_bytes[JTI_BYTES];
  char jti[JTI_BYTES * 2 + 1];
  guint8 mac[crypto_auth_hmacsha256_BYTES];
  g_autofree char *payload = NULL;
  g_autofree char *payload_b64 = NULL;
  g_autofree char *sig_b64 = NULL;
  g_autofree char *signing_input = NULL;

  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (parley_token_is_identifier (user_id), NULL);
  g_return_val_if_fail (now >= 0 && ttl > 0 && now <= G_MAXINT64 - ttl, NULL);

  parley_sodium_init ();

  randombytes_buf (jti_bytes, sizeof jti_bytes);
  sodium_bin2hex (jti, sizeof jti, jti_bytes, sizeof jti_bytes);

  /* Identifiers need no JSON escaping. */
  payload = g_strdup_printf ("{\"sub\":\"%s\",\"iat\":%" G_GINT64_FORMAT
                             ",\"exp\":%" G_GINT64_FORMAT ",\"jti\":\"%s\"}",
                             user_id, now, now + ttl, jti);
  payload_b64 = b64url_encode ((const guint8 *) payload, strlen (payload));
  signing_input = g_strconcat (JWT_HEADER_B64, ".", payload_b64, NULL);
  sign (key, key_len, signing_input, strlen (signing_input), mac);
  sig_b64 = b64url_encode (mac, sizeof mac);

  return g_strconcat (signing_input, ".", sig_b64, NULL);
}

/* A minimal scanner for the flat claims object. It accepts exactly one JSON
 * object whose values are strings without escapes or non-negative integers;
 * anything else (nesting, escapes, booleans, floats, duplicates of the known
 * claims, trailing bytes) makes the token malformed. */
typedef struct {
  const char *p;
  const char *end;
} Scanner;

static void
skip_ws (Scanner *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static gboolean
scan_string (Scanner     *s,
             const char **out,
             gsize       *out_len)
{
  const char *start;

  if (s->p >= s->end || *s->p != '"')
    return FALSE;
  start = ++s->p;
  while (s->p < s->end && *s->p != '"') {
    guchar c = (guchar) *s->p;
    if (c == '\\' || c < 0x20)
      return FALSE;
    s->p++;
  }
  if (s->p >= s->end)
    return FALSE;
  *out = start;
  *out_len = s->p - start;
  s->p++;
  return TRUE;
}

static gboolean
scan_int (Scanner *s,
          gint64  *out)
{
  gint64 v = 0;
  const char *start = s->p;

  while (s->p < s->end && g_ascii_isdigit (*s->p)) {
    int d = *s->p - '0';
    if (v > (G_MAXINT64 - d) / 10)
      return FALSE;
    v = v * 10 + d;
    s->p++;
  }
  if (s->p == start || (s->p - start > 1 && *start == '0'))
    return FALSE;
  *out = v;
  return TRUE;
}

static gboolean
scan_claims (const char *json,
             gsize       len,
             char      **out_sub,
             gint64     *out_exp)
{
  Scanner s = { json, json + len };
  const char *sub = NULL;
  gsize sub_len = 0;
  gboolean have_iat = FALSE, have_exp = FALSE, have_jti = FALSE;
  gint64 exp = 0;

  skip_ws (&s);
  if (s.p >= s.end || *s.p++ != '{')
    return FALSE;
  skip_ws (&s);
  if (s.p < s.end && *s.p == '}')
    return FALSE;

  for (;;) {
    const char *key;
    gsize key_len;

    skip_ws (&s);
    if (!scan_string (&s, &key, &key_len))
      return FALSE;
    skip_ws (&s);
    if (s.p >= s.end || *s.p++ != ':')
      return FALSE;
    skip_ws (&s);

#define KEY_IS(lit) (key_len == sizeof lit - 1 && memcmp (key, lit, key_len) == 0)
    if (KEY_IS ("sub")) {
      if (sub != NULL || !scan_string (&s, &sub, &sub_len))
        return FALSE;
    } else if (KEY_IS ("jti")) {
      const char *jti;
      gsize jti_len;
      if (have_jti || !scan_string (&s, &jti, &jti_len) || jti_len == 0)
        return FALSE;
      have_jti = TRUE;
    } else if (KEY_IS ("iat")) {
      gint64 iat;
      if (have_iat || !scan_int (&s, &iat))
        return FALSE;
      have_iat = TRUE;
    } else if (KEY_IS ("exp")) {
      if (have_exp || !scan_int (&s, &exp))
        return FALSE;
      have_exp = TRUE;
    } else {
      /* Unknown claims may only carry plain strings or integers. */
      const char *v;
      gsize v_len;
      gint64 n;
      if (s.p < s.end && *s.p == '"') {
        if (!scan_string (&s, &v, &v_len))
          return FALSE;
      } else if (!scan_int (&s, &n)) {
        return FALSE;
      }
    }
#undef KEY_IS

    skip_ws (&s);
    if (s.p >= s.end)
      return FALSE;
    if (*s.p == ',') {
      s.p++;
      continue;
    }
    if (*s.p == '}') {
      s.p++;
      break;
    }
    return FALSE;
  }

  skip_ws (&s);
  if (s.p != s.end)
    return FALSE;
  if (sub == NULL || !have_iat || !have_exp || !have_jti)
    return FALSE;

  *out_sub = g_strndup (sub, sub_len);
  if (!parley_token_is_identifier (*out_sub)) {
    g_clear_pointer (out_sub, g_free);
    return FALSE;
  }
  *out_exp = exp;
  return TRUE;
}

/**
 * parley_token_verify:
 * @key: (array length=key_len): the HMAC key
 * @key_len: length of @key in bytes
 * @token: (nullable): the token to check
 * @now: the current time in seconds since the epoch
 * @error: return location for a #GError in %PARLEY_TOKEN_ERROR
 *
 * Verifies an access token issued by parley_token_issue(): the exact header,
 * the HMAC-SHA256 signature (compared in constant time), the claims and the
 * expiry (a token with `exp <= now` is expired).
 *
 * Returns: (transfer full): the user id (`sub`), or %NULL with @error set
 */
char *
parley_token_verify (const guint8  *key,
                     gsize          key_len,
                     const char    *token,
                     gint64         now,
                     GError       **error)
{
  const char *dot1, *dot2;
  gsize len, payload_b64_len, sig_b64_len;
  guint8 mac[crypto_auth_hmacsha256_BYTES];
  guint8 expected[crypto_auth_hmacsha256_BYTES];
  guint8 payload[PARLEY_TOKEN_MAX_LEN];
  gsize mac_len = 0, payload_len = 0;
  g_autofree char *sub = NULL;
  gint64 exp = 0;

  g_return_val_if_fail (key != NULL, NULL);

  parley_sodium_init ();

  if (token == NULL) {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_MALFORMED,
                         "Missing token");
    return NULL;
  }

  len = strnlen (token, PARLEY_TOKEN_MAX_LEN + 1);
  if (len > PARLEY_TOKEN_MAX_LEN) {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_MALFORMED,
                         "Token too long");
    return NULL;
  }

  if (len <= JWT_HEADER_B64_LEN || memcmp (token, JWT_HEADER_B64, JWT_HEADER_B64_LEN) != 0 ||
      token[JWT_HEADER_B64_LEN] != '.') {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_MALFORMED,
                         "Unsupported token header");
    return NULL;
  }

  dot1 = token + JWT_HEADER_B64_LEN;
  dot2 = memchr (dot1 + 1, '.', token + len - (dot1 + 1));
  if (dot2 == NULL || memchr (dot2 + 1, '.', token + len - (dot2 + 1)) != NULL) {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_MALFORMED,
                         "A token has three parts");
    return NULL;
  }

  payload_b64_len = dot2 - (dot1 + 1);
  sig_b64_len = token + len - (dot2 + 1);
  if (!b64url_decode (dot2 + 1, sig_b64_len, mac, sizeof mac, &mac_len) ||
      mac_len != sizeof mac ||
      !b64url_decode (dot1 + 1, payload_b64_len, payload, sizeof payload, &payload_len)) {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_MALFORMED,
                         "Invalid base64url in token");
    return NULL;
  }

  sign (key, key_len, token, dot2 - token, expected);
  if (sodium_memcmp (mac, expected, sizeof mac) != 0) {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_SIGNATURE,
                         "Token signature mismatch");
    return NULL;
  }

  if (!scan_claims ((const char *) payload, payload_len, &sub, &exp)) {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_MALFORMED,
                         "Invalid token claims");
    return NULL;
  }

  if (exp <= now) {
    g_set_error_literal (error, PARLEY_TOKEN_ERROR, PARLEY_TOKEN_ERROR_EXPIRED,
                         "Token expired");
    return NULL;
  }

  return g_steal_pointer (&sub);
}

/**
 * parley_token_new_refresh:
 *
 * Creates a new refresh token: 32 random bytes in unpadded base64url.
 *
 * Returns: (transfer full): the token
 */
char *
parley_token_new_refresh (void)
{
  guint8 bytes[REFRESH_TOKEN_BYTES];
  char *out;

  parley_sodium_init ();
  randombytes_buf (bytes, sizeof bytes);
  out = b64url_encode (bytes, sizeof bytes);
  sodium_memzero (bytes, sizeof bytes);
  return out;
}

/**
 * parley_token_hash_refresh:
 * @token: a refresh token
 *
 * Computes the form in which refresh tokens are stored.
 *
 * Returns: (transfer full): the lower-case hex SHA-256 of @token
 */
char *
parley_token_hash_refresh (const char *token)
{
  g_return_val_if_fail (token != NULL, NULL);

  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, token, -1);
}
