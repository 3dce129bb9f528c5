/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-utf8.c: strict UTF-8 validation with an ASCII fast path. */

#define G_LOG_DOMAIN "parley-utf8"

#include "config.h"

#include <string.h>

#include "parley-utf8.h"

/**
 * parley_utf8_sequence_len:
 * @data: the first byte of a sequence whose lead byte is not ASCII
 * @len: the bytes available from @data
 *
 * Checks one multi-byte UTF-8 sequence strictly (RFC 3629): no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncation.
 *
 * Returns: the length of the sequence (2 to 4), or 0 when it is invalid
 */
gsize
parley_utf8_sequence_len (const guint8 *data,
                          gsize         len)
{
  guint8 c = data[0];

  if (c >= 0xc2 && c <= 0xdf) {
    if (len < 2 || (data[1] & 0xc0) != 0x80)
      return 0;
    return 2;
  }

  if (c >= 0xe0 && c <= 0xef) {
    guint8 lo = 0x80, hi = 0xbf;

    if (c == 0xe0)
      lo = 0xa0;   /* Overlong below U+0800. */
    else if (c == 0xed)
      hi = 0x9f;   /* Surrogates U+D800..U+DFFF. */
    if (len < 3 || data[1] < lo || data[1] > hi || (data[2] & 0xc0) != 0x80)
      return 0;
    return 3;
  }

  if (c >= 0xf0 && c <= 0xf4) {
    guint8 lo = 0x80, hi = 0xbf;

    if (c == 0xf0)
      lo = 0x90;   /* Overlong below U+10000. */
    else if (c == 0xf4)
      hi = 0x8f;   /* Above U+10FFFF. */
    if (len < 4 || data[1] < lo || data[1] > hi ||
        (data[2] & 0xc0) != 0x80 || (data[3] & 0xc0) != 0x80)
      return 0;
    return 4;
  }

  /* Continuation bytes, overlong leads 0xc0/0xc1 and 0xf5..0xff. */
  return 0;
}

/**
 * parley_utf8_validate:
 * @data: bytes
 * @len: their length
 *
 * Validates UTF-8 strictly. Unlike g_utf8_validate(), NUL is a valid
 * character here, as RFC 6455 wants for text frames.
 *
 * Returns: %TRUE if @data is valid UTF-8
 */
gboolean
parley_utf8_validate (const guint8 *data,
                      gsize         len)
{
  gsize i = 0;

  while (i < len) {
    gsize n;

    /* Skip ASCII eight bytes at a time. */
    while (i + 8 <= len) {
      guint64 w;

      memcpy (&w, data + i, 8);
      if (w & G_GUINT64_CONSTANT (0x8080808080808080))
        break;
      i += 8;
    }
    while (i < len && data[i] < 0x80)
      i++;
    if (i >= len)
      break;

    n = parley_utf8_sequence_len (data + i, len - i);
    if (n == 0)
      return FALSE;
    i += n;
  }

  return TRUE;
}
