/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz-envelope.c: libFuzzer target for the envelope scanner and splicer. */

#define G_LOG_DOMAIN "fuzz-envelope"

#include <string.h>

#include <glib.h>

#include "parley-envelope.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_span (ParleySpan s)
{
  g_autofree char *str = parley_span_dup_string (s);
  gboolean ok;

  if (str != NULL && s.len > 0 && s.ptr[0] == '"')
    g_assert (g_utf8_validate (str, -1, NULL));
  parley_span_to_int64 (s, &ok);
  if (str != NULL)
    g_assert (parley_span_equal (s, str));
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  /* An exact-size heap copy so that any overread is caught. */
  g_autofree char *text = g_memdup2 (data, MAX (size, 1));
  static const char * const drop[] = { "seq", "timestamp", NULL };
  ParleyEnvelope env;
  ParleyProtoStatus scan_status, status;
  gboolean valid;

  scan_status = parley_envelope_scan (text, size, &env);
  valid = parley_json_validate (text, size);
  /* An accepted envelope is valid JSON; valid JSON objects with unique keys
   * and few members are accepted, which the target cannot tell cheaply. */
  if (scan_status == PARLEY_PROTO_OK) {
    g_autoptr(GByteArray) out = g_byte_array_new ();
    ParleyEnvelope again;

    g_assert (valid);
    g_assert (g_utf8_validate_len (text, size, NULL));

    for (guint i = 0; i < env.n_members; i++) {
      check_span (env.members[i].key);
      check_span (env.members[i].value);
    }
    check_span (env.id);
    check_span (env.state);
    check_span (env.encrypted_content);

    parley_envelope_splice (&env, out, "\"senderId\":\"u1\"", 15, drop);
    {
      guint expected = 1 + env.n_members;

      expected -= parley_envelope_has_key (&env, "senderId");
      expected -= parley_envelope_has_key (&env, "seq");
      expected -= parley_envelope_has_key (&env, "timestamp");
      if (expected > PARLEY_ENVELOPE_MAX_MEMBERS) {
        g_assert (parley_envelope_scan ((const char *) out->data, out->len, &again) ==
                  PARLEY_PROTO_INVALID_JSON);
        return 0;
      }
      g_assert (parley_envelope_scan ((const char *) out->data, out->len, &again) ==
                PARLEY_PROTO_OK);
      g_assert (again.n_members == expected);
    }
    g_assert (again.sender_id.ptr != NULL);
    g_assert (parley_span_equal (again.sender_id, "u1"));
    g_assert (again.seq.ptr == NULL && again.timestamp.ptr == NULL);
  }

  status = parley_envelope_parse_request (text, size, &env, NULL);
  if (status == PARLEY_PROTO_OK)
    g_assert (scan_status == PARLEY_PROTO_OK);
  if (env.id.ptr != NULL)
    g_assert (parley_id_is_valid (env.id.ptr, env.id.len));

  /* Escaping any bytes gives a valid JSON string. */
  {
    g_autoptr(GByteArray) out = g_byte_array_new ();
    ParleySpan span;
    g_autofree char *back = NULL;

    parley_json_append_string (out, text, size);
    g_assert (parley_json_validate ((const char *) out->data, out->len));
    span.ptr = (const char *) out->data;
    span.len = out->len;
    back = parley_span_dup_string (span);
    if (memchr (text, 0, size) == NULL && g_utf8_validate_len (text, size, NULL))
      g_assert (strlen (back) == size && memcmp (back, text, size) == 0);
  }

  return 0;
}
