/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fuzz-ws-frame.c: libFuzzer target for the WebSocket frame parser.
 *
 * The first input byte chooses the side, the size limit and a chunk size.
 * The rest is fed once whole and once in chunks; both runs must report the
 * same events.
 */

#define G_LOG_DOMAIN "fuzz-ws-frame"

#include <string.h>

#include <glib.h>

#include "parley-ws-frame.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
run (const guint8 *data,
     gsize         size,
     gboolean      server_side,
     gsize         max_message,
     gsize         chunk,
     GChecksum    *log)
{
  ParleyWsParser p;
  GByteArray *buf = g_byte_array_new ();
  gboolean dead = FALSE;

  parley_ws_parser_init (&p, server_side, max_message);
  for (gsize off = 0; off < size && !dead; off += chunk) {
    g_byte_array_append (buf, data + off, MIN (chunk, size - off));
    for (;;) {
      ParleyWsMessage msg;
      gsize consumed;
      guint16 code = 0;
      ParleyWsResult r = parley_ws_parser_feed (&p, buf->data, buf->len, &consumed, &msg, &code);
      guint8 tag = r;

      g_assert (consumed <= buf->len);
      if (r != PARLEY_WS_NEED_MORE)
        g_checksum_update (log, &tag, 1);
      if (r == PARLEY_WS_MESSAGE) {
        guint8 op = msg.opcode;

        g_assert (msg.len <= max_message || (op & 8));
        g_checksum_update (log, &op, 1);
        g_checksum_update (log, msg.payload, msg.len);
        if (op == PARLEY_WS_OP_TEXT && memchr (msg.payload, 0, msg.len) == NULL)
          g_assert (g_utf8_validate_len ((const char *) msg.payload, msg.len, NULL));
      } else if (r == PARLEY_WS_PROTOCOL_ERROR) {
        g_assert (code == 1002 || code == 1007);
        g_checksum_update (log, (const guint8 *) &code, sizeof code);
        dead = TRUE;
      }
      g_byte_array_remove_range (buf, 0, consumed);
      if (r == PARLEY_WS_NEED_MORE || dead)
        break;
    }
    /* A caller's buffer never needs more than one frame (control frames may
     * have 125 bytes whatever the limit) plus the last chunk. */
    g_assert (buf->len < MAX (max_message, 125) + PARLEY_WS_MAX_HEADER + MAX (chunk, 1));
  }
  parley_ws_parser_clear (&p);
  g_byte_array_unref (buf);
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(GChecksum) whole = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GChecksum) chunked = g_checksum_new (G_CHECKSUM_SHA256);
  gboolean server_side;
  gsize max_message, chunk;

  if (size < 1)
    return 0;
  server_side = data[0] & 1;
  max_message = (data[0] & 2) ? 64 : 4096;
  chunk = 1 + (data[0] >> 2);
  data++;
  size--;

  run (data, size, server_side, max_message, MAX (size, 1), whole);
  run (data, size, server_side, max_message, chunk, chunked);
  g_assert_cmpstr (g_checksum_get_string (whole), ==, g_checksum_get_string (chunked));
  return 0;
}
