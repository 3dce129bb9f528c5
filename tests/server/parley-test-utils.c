/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-test"

#include "parley-test-utils.h"

#include <gio/gio.h>
#include <string.h>

/* Computes base64 (HMAC-SHA1 (secret, message)) with the openssl command line
 * tool, independently of the server's code. */
char *
parley_test_openssl_hmac_sha1_b64 (const char *secret,
                                   const char *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) in = g_bytes_new (message, strlen (message));
  g_autoptr(GBytes) out = NULL;
  gsize len;
  const guint8 *data;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                           &error, "openssl", "dgst", "-sha1", "-hmac", secret, "-binary", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate (proc, in, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (proc));

  data = g_bytes_get_data (out, &len);
  g_assert_cmpuint (len, ==, 20);
  return g_base64_encode (data, len);
}

/* Unpadded base64url through GLib's plain base64 encoder. */
char *
parley_test_b64url (const guint8 *data,
                    gsize         len)
{
  char *s = g_base64_encode (data, len);
  char *p;

  for (p = s; *p; p++) {
    if (*p == '+')
      *p = '-';
    else if (*p == '/')
      *p = '_';
    else if (*p == '=')
      *p = '\0';
  }
  return s;
}
