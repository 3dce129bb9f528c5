/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-ws-frame.c: incremental RFC 6455 frame parser and frame writers. */

#define G_LOG_DOMAIN "parley-ws-frame"

#include "config.h"

#include <string.h>

#include "parley-utf8.h"
#include "parley-ws-frame.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define DEFAULT_MAX_MESSAGE 65536
#define MAX_CONTROL_PAYLOAD 125

static inline gboolean
opcode_is_control (guint op)
{
  return (op & 0x8) != 0;
}

static inline gboolean
opcode_is_known (guint op)
{
  return op <= PARLEY_WS_OP_BINARY || (op >= PARLEY_WS_OP_CLOSE && op <= PARLEY_WS_OP_PONG);
}

/**
 * parley_ws_mask:
 * @data: (inout): the bytes to mask or unmask in place
 * @len: the number of bytes
 * @mask: the 4-byte masking key
 * @offset: the position of @data[0] within the frame payload
 *
 * XORs @data with the masking key as RFC 6455, section 5.3, describes.
 * Masking and unmasking are the same operation.
 */
void
parley_ws_mask (guint8       *data,
                gsize         len,
                const guint8  mask[4],
                gsize         offset)
{
  guint8 key[8];
  guint64 key64;
  gsize i = 0;

  for (guint k = 0; k < 8; k++)
    key[k] = mask[(offset + k) & 3];
  memcpy (&key64, key, 8);

  for (; i + 8 <= len; i += 8) {
    guint64 w;

    memcpy (&w, data + i, 8);
    w ^= key64;
    memcpy (data + i, &w, 8);
  }
  for (; i < len; i++)
    data[i] ^= key[i & 7];
}

/**
 * parley_ws_parser_init:
 * @p: the parser to initialise
 * @server_side: %TRUE to parse frames sent by a client (they must be masked),
 *   %FALSE to parse frames sent by a server (they must not be)
 * @max_message: the largest message payload accepted, in bytes; 0 means 64 KiB
 *
 * Initialises @p. Release it with parley_ws_parser_clear().
 *
 * A caller's receive buffer never needs to hold more than one frame, that is
 * MAX (@max_message, 125) + %PARLEY_WS_MAX_HEADER bytes beyond what it read
 * last: oversized frames are dropped as they arrive. (Control frames may
 * carry up to 125 bytes whatever @max_message says.)
 */
void
parley_ws_parser_init (ParleyWsParser *p,
                       gboolean        server_side,
                       gsize           max_message)
{
  g_return_if_fail (p != NULL);

  memset (p, 0, sizeof *p);
  p->server_side = !!server_side;
  p->max_message = max_message ? max_message : DEFAULT_MAX_MESSAGE;
}

/**
 * parley_ws_parser_clear:
 * @p: a parser
 *
 * Frees the resources held by @p. It may be initialised again afterwards.
 */
void
parley_ws_parser_clear (ParleyWsParser *p)
{
  g_return_if_fail (p != NULL);

  g_clear_pointer (&p->frag, g_free);
  p->frag_len = 0;
  p->frag_alloc = 0;
  p->in_fragmented = FALSE;
  p->skipping_message = FALSE;
  p->skip_remaining = 0;
}

static void
frag_append (ParleyWsParser *p,
             const guint8   *data,
             gsize           len)
{
  gsize need = p->frag_len + len;

  /* The caller checked need <= max_message. */
  if (need > p->frag_alloc) {
    gsize alloc = MAX (p->frag_alloc, 256);

    while (alloc < need)
      alloc *= 2;
    alloc = MIN (alloc, MAX (p->max_message, need));
    p->frag = g_realloc (p->frag, alloc);
    p->frag_alloc = alloc;
  }
  if (len > 0)
    memcpy (p->frag + p->frag_len, data, len);
  p->frag_len = need;
}

static gboolean
close_code_is_valid (guint code)
{
  return (code >= 1000 && code <= 1003) ||
         (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

static ParleyWsResult
fail (ParleyWsParser *p,
      guint16         code,
      guint16        *close_code)
{
  p->failed = TRUE;
  p->failed_code = code;
  if (close_code)
    *close_code = code;
  return PARLEY_WS_PROTOCOL_ERROR;
}

/**
 * parley_ws_parser_feed:
 * @p: a parser
 * @buf: (inout): received bytes; masked payloads are unmasked in place
 * @len: the number of bytes in @buf
 * @consumed: (out): how many bytes of @buf were used
 * @out: (out): the message, for %PARLEY_WS_MESSAGE
 * @close_code: (out) (optional): the close code to send, for
 *   %PARLEY_WS_PROTOCOL_ERROR
 *
 * Parses frames from @buf until one complete message, an error, or the end
 * of the complete frames in @buf. The caller drops the first *@consumed
 * bytes of its buffer (after it used the message, whose payload may point
 * into it), keeps the rest and calls again, with more bytes appended once
 * %PARLEY_WS_NEED_MORE was returned. A frame is only used once it is
 * complete, so its bytes stay unconsumed until then; an oversized frame is
 * dropped as it arrives instead.
 *
 * Several messages in one buffer are returned by successive calls; call
 * again until %PARLEY_WS_NEED_MORE before reading the socket again.
 *
 * Returns: what was found
 */
ParleyWsResult
parley_ws_parser_feed (ParleyWsParser  *p,
                       guint8          *buf,
                       gsize            len,
                       gsize           *consumed,
                       ParleyWsMessage *out,
                       guint16         *close_code)
{
  gsize pos = 0;

  g_return_val_if_fail (p != NULL, PARLEY_WS_PROTOCOL_ERROR);
  g_return_val_if_fail (buf != NULL || len == 0, PARLEY_WS_PROTOCOL_ERROR);
  g_return_val_if_fail (consumed != NULL, PARLEY_WS_PROTOCOL_ERROR);
  g_return_val_if_fail (out != NULL, PARLEY_WS_PROTOCOL_ERROR);

  *consumed = 0;
  out->opcode = PARLEY_WS_OP_CONTINUATION;
  out->payload = NULL;
  out->len = 0;

  if (p->failed) {
    if (close_code)
      *close_code = p->failed_code;
    return PARLEY_WS_PROTOCOL_ERROR;
  }

  for (;;) {
    const guint8 *mask = NULL;
    guint8 *payload;
    guint fin, opcode, len7;
    guint64 plen;
    gsize hdr, avail;

    /* Drop what is left of an oversized frame. */
    if (p->skip_remaining > 0) {
      gsize n = (gsize) MIN (p->skip_remaining, (guint64) (len - pos));

      pos += n;
      p->skip_remaining -= n;
      if (p->skip_remaining > 0)
        break;
    }

    avail = len - pos;
    if (avail < 2)
      break;

    fin = buf[pos] & 0x80;
    opcode = buf[pos] & 0x0f;
    len7 = buf[pos + 1] & 0x7f;

    if (buf[pos] & 0x70)
      return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
    if (!opcode_is_known (opcode))
      return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
    if (opcode_is_control (opcode) && (!fin || len7 > MAX_CONTROL_PAYLOAD))
      return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
    if (!!(buf[pos + 1] & 0x80) != p->server_side)
      return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
    if (opcode == PARLEY_WS_OP_CONTINUATION && !p->in_fragmented)
      return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
    if ((opcode == PARLEY_WS_OP_TEXT || opcode == PARLEY_WS_OP_BINARY) && p->in_fragmented)
      return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);

    if (len7 == 126) {
      if (avail < 4)
        break;
      plen = ((guint64) buf[pos + 2] << 8) | buf[pos + 3];
      hdr = 4;
    } else if (len7 == 127) {
      if (avail < 10)
        break;
      plen = 0;
      for (guint i = 0; i < 8; i++)
        plen = (plen << 8) | buf[pos + 2 + i];
      if (plen >> 63)
        return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
      hdr = 10;
    } else {
      plen = len7;
      hdr = 2;
    }
    if (p->server_side) {
      if (avail < hdr + 4)
        break;
      mask = buf + pos + hdr;
      hdr += 4;
    }

    if (!opcode_is_control (opcode)) {
      gsize have = opcode == PARLEY_WS_OP_CONTINUATION ? p->frag_len : 0;

      if (opcode == PARLEY_WS_OP_CONTINUATION && p->skipping_message) {
        /* A fragment of a message already reported as too large. */
        pos += hdr;
        p->skip_remaining = plen;
        if (fin) {
          p->in_fragmented = FALSE;
          p->skipping_message = FALSE;
        }
        continue;
      }

      if (plen > p->max_message || have + plen > p->max_message) {
        gsize n;

        pos += hdr;
        p->skip_remaining = plen;
        p->frag_len = 0;
        p->in_fragmented = !fin;
        p->skipping_message = !fin;

        n = (gsize) MIN (p->skip_remaining, (guint64) (len - pos));
        pos += n;
        p->skip_remaining -= n;

        *consumed = pos;
        return PARLEY_WS_TOO_LARGE;
      }
    }

    /* Only whole frames are used. */
    if (avail - hdr < plen)
      break;

    payload = buf + pos + hdr;
    if (mask)
      parley_ws_mask (payload, (gsize) plen, mask, 0);
    pos += hdr + (gsize) plen;

    if (opcode_is_control (opcode)) {
      if (opcode == PARLEY_WS_OP_CLOSE && plen > 0) {
        guint code;

        if (plen == 1)
          return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
        code = ((guint) payload[0] << 8) | payload[1];
        if (!close_code_is_valid (code))
          return fail (p, PARLEY_WS_CLOSE_PROTOCOL_ERROR, close_code);
        if (!parley_utf8_validate (payload + 2, (gsize) plen - 2))
          return fail (p, PARLEY_WS_CLOSE_INVALID_PAYLOAD, close_code);
      }
      out->opcode = opcode;
      out->payload = payload;
      out->len = (gsize) plen;
      *consumed = pos;
      return PARLEY_WS_MESSAGE;
    }

    if (opcode != PARLEY_WS_OP_CONTINUATION) {
      if (fin) {
        *consumed = pos;
        if (opcode == PARLEY_WS_OP_TEXT && !parley_utf8_validate (payload, (gsize) plen))
          return PARLEY_WS_INVALID_UTF8;
        out->opcode = opcode;
        out->payload = payload;
        out->len = (gsize) plen;
        return PARLEY_WS_MESSAGE;
      }
      p->in_fragmented = TRUE;
      p->frag_opcode = opcode;
      p->frag_len = 0;
    }

    frag_append (p, payload, (gsize) plen);

    if (fin) {
      p->in_fragmented = FALSE;
      *consumed = pos;
      if (p->frag_opcode == PARLEY_WS_OP_TEXT && !parley_utf8_validate (p->frag, p->frag_len))
        return PARLEY_WS_INVALID_UTF8;
      out->opcode = p->frag_opcode;
      out->payload = p->frag ? p->frag : (const guint8 *) "";
      out->len = p->frag_len;
      return PARLEY_WS_MESSAGE;
    }
  }

  *consumed = pos;
  return PARLEY_WS_NEED_MORE;
}

/**
 * parley_ws_frame_header:
 * @out: (out caller-allocates): room for %PARLEY_WS_MAX_HEADER bytes
 * @op: the opcode
 * @payload_len: the payload length
 * @fin: whether this is the final frame of its message
 * @mask: (nullable): the masking key, or %NULL for an unmasked (server) frame
 *
 * Writes a frame header. The caller masks the payload itself when it passes
 * a @mask (see parley_ws_mask()).
 *
 * Returns: the header length in bytes
 */
gsize
parley_ws_frame_header (guint8          out[14],
                        ParleyWsOpcode  op,
                        gsize           payload_len,
                        gboolean        fin,
                        const guint8    mask[4])
{
  gsize n;
  guint8 mask_bit = mask ? 0x80 : 0;

  out[0] = (fin ? 0x80 : 0) | (op & 0x0f);
  if (payload_len < 126) {
    out[1] = mask_bit | (guint8) payload_len;
    n = 2;
  } else if (payload_len <= 0xffff) {
    out[1] = mask_bit | 126;
    out[2] = (guint8) (payload_len >> 8);
    out[3] = (guint8) payload_len;
    n = 4;
  } else {
    guint64 l = payload_len;

    out[1] = mask_bit | 127;
    for (guint i = 0; i < 8; i++)
      out[2 + i] = (guint8) (l >> (56 - 8 * i));
    n = 10;
  }
  if (mask) {
    memcpy (out + n, mask, 4);
    n += 4;
  }
  return n;
}

/**
 * parley_ws_append_frame:
 * @out: the buffer to append to
 * @op: the opcode
 * @payload: (nullable): the payload
 * @len: the payload length
 * @client_side: %TRUE to mask the frame with a random key, as clients must
 *
 * Appends one complete (final) frame to @out.
 */
void
parley_ws_append_frame (GByteArray     *out,
                        ParleyWsOpcode  op,
                        const void     *payload,
                        gsize           len,
                        gboolean        client_side)
{
  guint8 hdr[PARLEY_WS_MAX_HEADER];
  guint8 mask[4];
  gsize hlen, start;

  g_return_if_fail (out != NULL);
  g_return_if_fail (payload != NULL || len == 0);

  if (client_side) {
    guint32 r = g_random_int ();

    memcpy (mask, &r, 4);
  }
  hlen = parley_ws_frame_header (hdr, op, len, TRUE, client_side ? mask : NULL);

  start = out->len;
  g_byte_array_set_size (out, start + hlen + len);
  memcpy (out->data + start, hdr, hlen);
  if (len > 0) {
    memcpy (out->data + start + hlen, payload, len);
    if (client_side)
      parley_ws_mask (out->data + start + hlen, len, mask, 0);
  }
}

/**
 * parley_ws_append_close:
 * @out: the buffer to append to
 * @code: the close code, or 0 for a close frame without a code
 * @reason: (nullable): a UTF-8 reason; it is cut to fit a control frame
 * @client_side: %TRUE to mask the frame, as clients must
 *
 * Appends a close frame to @out.
 */
void
parley_ws_append_close (GByteArray *out,
                        guint16     code,
                        const char *reason,
                        gboolean    client_side)
{
  guint8 payload[MAX_CONTROL_PAYLOAD];
  gsize len = 0;

  g_return_if_fail (out != NULL);

  if (code != 0) {
    payload[0] = (guint8) (code >> 8);
    payload[1] = (guint8) code;
    len = 2;

    if (reason != NULL) {
      gsize rlen = strlen (reason);

      if (rlen > MAX_CONTROL_PAYLOAD - 2) {
        /* Cut at a character boundary so the reason stays valid UTF-8. */
        rlen = MAX_CONTROL_PAYLOAD - 2;
        while (rlen > 0 && ((guint8) reason[rlen] & 0xc0) == 0x80)
          rlen--;
      }
      memcpy (payload + 2, reason, rlen);
      len += rlen;
    }
  }

  parley_ws_append_frame (out, PARLEY_WS_OP_CLOSE, payload, len, client_side);
}

/**
 * parley_ws_close_code:
 * @msg: a close message returned by parley_ws_parser_feed()
 *
 * Reads the code of a close frame.
 *
 * Returns: the code, or %PARLEY_WS_CLOSE_NO_STATUS when the frame has none
 */
guint16
parley_ws_close_code (const ParleyWsMessage *msg)
{
  g_return_val_if_fail (msg != NULL, PARLEY_WS_CLOSE_NO_STATUS);

  if (msg->opcode != PARLEY_WS_OP_CLOSE || msg->len < 2)
    return PARLEY_WS_CLOSE_NO_STATUS;
  return (guint16) ((msg->payload[0] << 8) | msg->payload[1]);
}

/**
 * parley_ws_accept_key:
 * @client_key: the `Sec-WebSocket-Key` request header
 * @out: (out caller-allocates): room for 29 bytes
 *
 * Computes the `Sec-WebSocket-Accept` answer to @client_key: the base64 of
 * the SHA-1 of the key followed by the WebSocket GUID. @out receives 28
 * characters and a NUL.
 */
void
parley_ws_accept_key (const char *client_key,
                      char        out[29])
{
  g_autoptr(GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize digest_len = sizeof digest;
  char encoded[32];
  gint state = 0, save = 0;
  gsize n;

  g_return_if_fail (client_key != NULL);

  g_checksum_update (sha1, (const guchar *) client_key, strlen (client_key));
  g_checksum_update (sha1, (const guchar *) WS_GUID, sizeof WS_GUID - 1);
  g_checksum_get_digest (sha1, digest, &digest_len);

  /* g_base64_encode_step() wants room for a whole extra group. */
  n = g_base64_encode_step (digest, digest_len, FALSE, encoded, &state, &save);
  n += g_base64_encode_close (FALSE, encoded + n, &state, &save);
  g_assert (n == 28);
  memcpy (out, encoded, 28);
  out[28] = '\0';
}
