/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test-ws-frame.c: tests of the RFC 6455 frame parser and writers. */

#define G_LOG_DOMAIN "test-ws-frame"

#include <string.h>

#include <glib.h>

#include "parley-ws-frame.h"

/* A simulated connection: a receive buffer that keeps the unconsumed tail,
 * as a real caller does, and a log of everything the parser reported. */
typedef struct {
  ParleyWsParser parser;
  GByteArray *buf;
  GPtrArray *events;
  gboolean dead;
} Conn;

static void
conn_init (Conn     *c,
           gboolean  server_side,
           gsize     max_message)
{
  parley_ws_parser_init (&c->parser, server_side, max_message);
  c->buf = g_byte_array_new ();
  c->events = g_ptr_array_new_with_free_func (g_free);
  c->dead = FALSE;
}

static void
conn_clear (Conn *c)
{
  parley_ws_parser_clear (&c->parser);
  g_byte_array_unref (c->buf);
  g_ptr_array_unref (c->events);
}

static char *
describe_message (ParleyWsOpcode  op,
                  const guint8   *payload,
                  gsize           len)
{
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_MD5, payload, len);

  return g_strdup_printf ("msg:%d:%" G_GSIZE_FORMAT ":%s", op, len, sum);
}

static void
conn_push (Conn         *c,
           const guint8 *data,
           gsize         len)
{
  g_byte_array_append (c->buf, data, len);

  while (!c->dead) {
    ParleyWsMessage msg;
    guint16 code = 0;
    gsize consumed = 12345;
    ParleyWsResult r;

    r = parley_ws_parser_feed (&c->parser, c->buf->data, c->buf->len, &consumed, &msg, &code);
    g_assert_cmpuint (consumed, <=, c->buf->len);

    switch (r) {
    case PARLEY_WS_NEED_MORE:
      break;
    case PARLEY_WS_MESSAGE:
      g_assert_cmpint (msg.opcode, !=, PARLEY_WS_OP_CONTINUATION);
      g_assert_cmpuint (consumed, >, 0);
      g_ptr_array_add (c->events, describe_message (msg.opcode, msg.payload, msg.len));
      break;
    case PARLEY_WS_TOO_LARGE:
      g_ptr_array_add (c->events, g_strdup ("too-large"));
      break;
    case PARLEY_WS_INVALID_UTF8:
      g_ptr_array_add (c->events, g_strdup ("invalid-utf8"));
      break;
    case PARLEY_WS_PROTOCOL_ERROR:
      g_ptr_array_add (c->events, g_strdup_printf ("error:%u", code));
      c->dead = TRUE;
      break;
    default:
      g_assert_not_reached ();
    }

    g_byte_array_remove_range (c->buf, 0, consumed);
    if (r == PARLEY_WS_NEED_MORE)
      break;
  }
}

static char *
conn_log (Conn *c)
{
  g_ptr_array_add (c->events, NULL);
  g_autofree char *s = g_strjoinv (" ", (char **) c->events->pdata);
  g_ptr_array_remove_index (c->events, c->events->len - 1);
  return g_steal_pointer (&s);
}

/* Runs a byte stream through a fresh parser in chunks of `chunk` bytes
 * (0: all at once) and returns the event log. */
static char *
run_stream (const guint8 *data,
            gsize         len,
            gboolean      server_side,
            gsize         max_message,
            gsize         chunk)
{
  g_autofree guint8 *copy = g_memdup2 (data, len);
  Conn c;
  char *log;

  conn_init (&c, server_side, max_message);
  if (chunk == 0)
    chunk = MAX (len, 1);
  for (gsize off = 0; off < len; off += chunk)
    conn_push (&c, copy + off, MIN (chunk, len - off));
  if (len == 0)
    conn_push (&c, copy, 0);
  log = conn_log (&c);
  conn_clear (&c);
  return log;
}

/* Builds one frame by hand (independently of parley_ws_frame_header()). */
static void
put_frame (GByteArray   *out,
           guint8        first_byte,
           const void   *payload,
           guint64       len,
           const guint8 *mask)
{
  guint8 hdr[14];
  gsize n = 0;
  gsize start;

  hdr[n++] = first_byte;
  if (len < 126) {
    hdr[n++] = (mask ? 0x80 : 0) | (guint8) len;
  } else if (len < 65536) {
    hdr[n++] = (mask ? 0x80 : 0) | 126;
    hdr[n++] = len >> 8;
    hdr[n++] = len & 0xff;
  } else {
    hdr[n++] = (mask ? 0x80 : 0) | 127;
    for (int i = 7; i >= 0; i--)
      hdr[n++] = (len >> (8 * i)) & 0xff;
  }
  if (mask) {
    memcpy (hdr + n, mask, 4);
    n += 4;
  }
  g_byte_array_append (out, hdr, n);
  start = out->len;
  if (payload != NULL)
    g_byte_array_append (out, payload, len);
  if (mask) {
    for (gsize i = 0; i < len && payload != NULL; i++)
      out->data[start + i] ^= mask[i % 4];
  }
}

static const guint8 test_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

static char *
expect_msg (ParleyWsOpcode  op,
            const void     *payload,
            gsize           len)
{
  return describe_message (op, payload, len);
}

/* RFC 6455, section 5.7. */
static void
test_rfc_examples (void)
{
  static const guint8 unmasked_hello[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
  static const guint8 masked_hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d,
                                         0x51, 0x58 };
  static const guint8 fragmented[] = { 0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f };
  static const guint8 ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
  static const guint8 masked_pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d,
                                        0x51, 0x58 };
  g_autofree char *hello = expect_msg (PARLEY_WS_OP_TEXT, "Hello", 5);
  g_autofree char *ping_hello = expect_msg (PARLEY_WS_OP_PING, "Hello", 5);
  g_autofree char *pong_hello = expect_msg (PARLEY_WS_OP_PONG, "Hello", 5);
  g_autofree char *a = run_stream (unmasked_hello, sizeof unmasked_hello, FALSE, 0, 0);
  g_autofree char *b = run_stream (masked_hello, sizeof masked_hello, TRUE, 0, 0);
  g_autofree char *c = run_stream (fragmented, sizeof fragmented, FALSE, 0, 0);
  g_autofree char *d = run_stream (ping, sizeof ping, FALSE, 0, 0);
  g_autofree char *e = run_stream (masked_pong, sizeof masked_pong, TRUE, 0, 0);

  g_assert_cmpstr (a, ==, hello);
  g_assert_cmpstr (b, ==, hello);
  g_assert_cmpstr (c, ==, hello);
  g_assert_cmpstr (d, ==, ping_hello);
  g_assert_cmpstr (e, ==, pong_hello);
}

static void
test_unfragmented_points_into_buffer (void)
{
  static const guint8 masked_hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d,
                                         0x51, 0x58 };
  guint8 buf[sizeof masked_hello];
  ParleyWsParser p;
  ParleyWsMessage msg;
  gsize consumed;

  memcpy (buf, masked_hello, sizeof buf);
  parley_ws_parser_init (&p, TRUE, 0);
  g_assert_cmpint (parley_ws_parser_feed (&p, buf, sizeof buf, &consumed, &msg, NULL), ==,
                   PARLEY_WS_MESSAGE);
  g_assert_cmpuint (consumed, ==, sizeof buf);
  g_assert_true (msg.payload == buf + 6);
  g_assert_cmpmem (buf + 6, 5, "Hello", 5);
  parley_ws_parser_clear (&p);
}

static void
test_accept_key (void)
{
  char out[29];

  memset (out, 'x', sizeof out);
  parley_ws_accept_key ("dGhlIHNhbXBsZSBub25jZQ==", out);
  g_assert_cmpstr (out, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void
test_header_lengths (void)
{
  struct {
    gsize len;
    guint8 expected[10];
    gsize expected_len;
  } cases[] = {
    { 0, { 0x82, 0x00 }, 2 },
    { 125, { 0x82, 0x7d }, 2 },
    { 126, { 0x82, 0x7e, 0x00, 0x7e }, 4 },
    { 65535, { 0x82, 0x7e, 0xff, 0xff }, 4 },
    { 65536, { 0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 }, 10 },
    { G_GUINT64_CONSTANT (0x123456789a), { 0x82, 0x7f, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a },
      10 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    guint8 out[14];
    gsize n = parley_ws_frame_header (out, PARLEY_WS_OP_BINARY, cases[i].len, TRUE, NULL);

    g_assert_cmpmem (out, n, cases[i].expected, cases[i].expected_len);

    /* The same with a mask: the mask bit and four key bytes at the end. */
    n = parley_ws_frame_header (out, PARLEY_WS_OP_BINARY, cases[i].len, TRUE, test_mask);
    g_assert_cmpuint (n, ==, cases[i].expected_len + 4);
    g_assert_cmphex (out[1], ==, cases[i].expected[1] | 0x80);
    g_assert_cmpmem (out + n - 4, 4, test_mask, 4);
  }

  /* A non-final text frame has FIN clear. */
  {
    guint8 out[14];

    parley_ws_frame_header (out, PARLEY_WS_OP_TEXT, 3, FALSE, NULL);
    g_assert_cmphex (out[0], ==, 0x01);
  }
}

/* Every opcode through append_frame (client masks) and the server parser,
 * and the other way round. */
static void
test_opcodes_roundtrip (void)
{
  static const ParleyWsOpcode ops[] = {
    PARLEY_WS_OP_TEXT, PARLEY_WS_OP_BINARY, PARLEY_WS_OP_PING, PARLEY_WS_OP_PONG,
  };
  const char *payload = "{\"type\":\"ping\"}";

  for (int client = 0; client <= 1; client++) {
    for (gsize i = 0; i < G_N_ELEMENTS (ops); i++) {
      g_autoptr(GByteArray) wire = g_byte_array_new ();
      g_autofree char *log = NULL;
      g_autofree char *expected = expect_msg (ops[i], payload, strlen (payload));

      parley_ws_append_frame (wire, ops[i], payload, strlen (payload), client);
      g_assert_cmphex (wire->data[0], ==, 0x80 | ops[i]);
      g_assert_cmpint (!!(wire->data[1] & 0x80), ==, client);
      /* The parser of the other side: a server parses what a client sent. */
      log = run_stream (wire->data, wire->len, client, 0, 0);
      g_assert_cmpstr (log, ==, expected);
    }
  }
}

static void
test_close_frames (void)
{
  for (int client = 0; client <= 1; client++) {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autofree char *log = NULL;
    g_autofree char *expected = NULL;
    ParleyWsParser p;
    ParleyWsMessage msg;
    gsize consumed;

    parley_ws_append_close (wire, 1000, "bye", client);
    expected = expect_msg (PARLEY_WS_OP_CLOSE, "\x03\xe8" "bye", 5);
    log = run_stream (wire->data, wire->len, client, 0, 0);
    g_assert_cmpstr (log, ==, expected);

    parley_ws_parser_init (&p, client, 0);
    g_assert_cmpint (parley_ws_parser_feed (&p, wire->data, wire->len, &consumed, &msg, NULL), ==,
                     PARLEY_WS_MESSAGE);
    g_assert_cmpuint (parley_ws_close_code (&msg), ==, 1000);
    parley_ws_parser_clear (&p);

    /* Without a code. */
    g_byte_array_set_size (wire, 0);
    parley_ws_append_close (wire, 0, "ignored", client);
    parley_ws_parser_init (&p, client, 0);
    g_assert_cmpint (parley_ws_parser_feed (&p, wire->data, wire->len, &consumed, &msg, NULL), ==,
                     PARLEY_WS_MESSAGE);
    g_assert_cmpuint (msg.len, ==, 0);
    g_assert_cmpuint (parley_ws_close_code (&msg), ==, PARLEY_WS_CLOSE_NO_STATUS);
    parley_ws_parser_clear (&p);
  }

  /* A long reason is cut to fit 125 bytes, at a character boundary. */
  {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autoptr(GString) reason = g_string_new (NULL);
    ParleyWsParser p;
    ParleyWsMessage msg;
    gsize consumed;

    for (int i = 0; i < 100; i++)
      g_string_append (reason, "é");   /* Two bytes each. */
    parley_ws_append_close (wire, 1001, reason->str, FALSE);
    parley_ws_parser_init (&p, FALSE, 0);
    g_assert_cmpint (parley_ws_parser_feed (&p, wire->data, wire->len, &consumed, &msg, NULL), ==,
                     PARLEY_WS_MESSAGE);
    g_assert_cmpuint (msg.len, <=, 125);
    g_assert_cmpuint (msg.len, >=, 124);
    g_assert_true (g_utf8_validate ((const char *) msg.payload + 2, msg.len - 2, NULL));
    parley_ws_parser_clear (&p);
  }
}

static void
test_lengths (void)
{
  static const gsize sizes[] = { 0, 1, 125, 126, 127, 1000, 65535, 65536, 70000 };

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++) {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autofree guint8 *payload = g_malloc (sizes[i] + 1);
    g_autofree char *log = NULL;
    g_autofree char *log2 = NULL;
    g_autofree char *expected = NULL;

    for (gsize j = 0; j < sizes[i]; j++)
      payload[j] = (guint8) (j * 7 + 3);
    put_frame (wire, 0x82, payload, sizes[i], test_mask);
    expected = expect_msg (PARLEY_WS_OP_BINARY, payload, sizes[i]);
    log = run_stream (wire->data, wire->len, TRUE, 100000, 0);
    g_assert_cmpstr (log, ==, expected);
    log2 = run_stream (wire->data, wire->len, TRUE, 100000, 4093);
    g_assert_cmpstr (log2, ==, expected);
  }
}

static void
test_masking (void)
{
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  const char *text = "a fairly long text payload that spans several masking words";
  gsize len = strlen (text);
  gsize hdr;
  guint8 copy[128];

  parley_ws_append_frame (wire, PARLEY_WS_OP_TEXT, text, len, TRUE);
  hdr = wire->len - len;
  g_assert_cmpuint (hdr, ==, 6);
  /* The masked bytes are the text XOR the key, byte by byte. */
  for (gsize i = 0; i < len; i++)
    g_assert_cmphex (wire->data[hdr + i], ==, (guint8) text[i] ^ wire->data[2 + (i % 4)]);

  /* parley_ws_mask() with an offset continues the key where it left off. */
  memcpy (copy, text, len);
  parley_ws_mask (copy, 5, test_mask, 0);
  parley_ws_mask (copy + 5, len - 5, test_mask, 5);
  for (gsize i = 0; i < len; i++)
    g_assert_cmphex (copy[i], ==, (guint8) text[i] ^ test_mask[i % 4]);
}

/* A stream exercising fragmentation with control frames in between. */
static GByteArray *
build_mixed_stream (char ***expected_out)
{
  GByteArray *wire = g_byte_array_new ();
  GPtrArray *expected = g_ptr_array_new ();
  g_autofree guint8 *big = g_malloc (300);

  for (int i = 0; i < 300; i++)
    big[i] = (guint8) i;

  put_frame (wire, 0x01, "Hel", 3, test_mask);            /* TEXT, not final. */
  put_frame (wire, 0x89, "p1", 2, test_mask);             /* PING in between. */
  put_frame (wire, 0x00, "lo ", 3, test_mask);            /* CONTINUATION. */
  put_frame (wire, 0x8a, "", 0, test_mask);               /* Empty PONG. */
  put_frame (wire, 0x00, "", 0, test_mask);               /* Empty continuation. */
  put_frame (wire, 0x80, "wörld", 6, test_mask);          /* Final continuation. */
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_PING, "p1", 2));
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_PONG, "", 0));
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_TEXT, "Hello wörld", 12));

  put_frame (wire, 0x82, big, 300, test_mask);            /* 16-bit length. */
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_BINARY, big, 300));

  /* A text message with a character split across fragments is valid. */
  put_frame (wire, 0x01, "\xe2\x82", 2, test_mask);
  put_frame (wire, 0x80, "\xac", 1, test_mask);
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_TEXT, "€", 3));

  put_frame (wire, 0x02, big, 100, test_mask);            /* Fragmented binary. */
  put_frame (wire, 0x80, big + 100, 200, test_mask);
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_BINARY, big, 300));

  put_frame (wire, 0x81, "", 0, test_mask);               /* Empty text. */
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_TEXT, "", 0));

  put_frame (wire, 0x88, "\x03\xe8", 2, test_mask);       /* CLOSE 1000. */
  g_ptr_array_add (expected, expect_msg (PARLEY_WS_OP_CLOSE, "\x03\xe8", 2));

  g_ptr_array_add (expected, NULL);
  *expected_out = (char **) g_ptr_array_free (expected, FALSE);
  return wire;
}

static void
test_fragmentation_and_splits (void)
{
  g_auto(GStrv) expected_v = NULL;
  g_autoptr(GByteArray) wire = build_mixed_stream (&expected_v);
  g_autofree char *expected = g_strjoinv (" ", expected_v);
  g_autofree char *whole = run_stream (wire->data, wire->len, TRUE, 1000, 0);

  g_assert_cmpstr (whole, ==, expected);

  /* Byte by byte, and in chunks of every size up to 17. */
  for (gsize chunk = 1; chunk <= 17; chunk++) {
    g_autofree char *log = run_stream (wire->data, wire->len, TRUE, 1000, chunk);

    g_assert_cmpstr (log, ==, expected);
  }

  /* Split in two at every position. */
  for (gsize cut = 0; cut <= wire->len; cut++) {
    g_autofree guint8 *copy = g_memdup2 (wire->data, wire->len);
    g_autofree char *log = NULL;
    Conn c;

    conn_init (&c, TRUE, 1000);
    conn_push (&c, copy, cut);
    conn_push (&c, copy + cut, wire->len - cut);
    log = conn_log (&c);
    conn_clear (&c);
    g_assert_cmpstr (log, ==, expected);
  }
}

static void
test_client_side (void)
{
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  g_autofree char *log = NULL;
  g_autofree char *log_bytes = NULL;
  g_autofree char *e1 = expect_msg (PARLEY_WS_OP_TEXT, "{\"type\":\"hello\"}", 16);
  g_autofree char *e2 = expect_msg (PARLEY_WS_OP_PING, "", 0);
  g_autofree char *expected = g_strjoin (" ", e1, e2, NULL);

  put_frame (wire, 0x01, "{\"type\"", 7, NULL);
  put_frame (wire, 0x80, ":\"hello\"}", 9, NULL);
  put_frame (wire, 0x89, NULL, 0, NULL);
  log = run_stream (wire->data, wire->len, FALSE, 0, 0);
  g_assert_cmpstr (log, ==, expected);
  log_bytes = run_stream (wire->data, wire->len, FALSE, 0, 1);
  g_assert_cmpstr (log_bytes, ==, expected);
}

static void
test_too_large (void)
{
  g_autofree guint8 *big = g_malloc0 (5000);
  g_autofree char *good = expect_msg (PARLEY_WS_OP_TEXT, "ok", 2);
  g_autofree char *ping = expect_msg (PARLEY_WS_OP_PING, "x", 1);

  /* One oversized frame, then a good one. */
  {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autofree char *expected = g_strdup_printf ("too-large %s", good);

    put_frame (wire, 0x82, big, 5000, test_mask);
    put_frame (wire, 0x81, "ok", 2, test_mask);
    for (gsize chunk = 0; chunk <= 13; chunk++) {
      g_autofree char *log = run_stream (wire->data, wire->len, TRUE, 100, chunk ? chunk * 97 : 0);

      g_assert_cmpstr (log, ==, expected);
    }
    {
      g_autofree char *log = run_stream (wire->data, wire->len, TRUE, 100, 1);

      g_assert_cmpstr (log, ==, expected);
    }
  }

  /* A fragmented message that grows too large: its remaining fragments are
   * dropped, a ping in between still arrives, and the next message parses. */
  {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autofree char *expected = g_strdup_printf ("too-large %s %s", ping, good);

    put_frame (wire, 0x01, big, 60, test_mask);
    put_frame (wire, 0x00, big, 60, test_mask);           /* 120 > 100. */
    put_frame (wire, 0x89, "x", 1, test_mask);
    put_frame (wire, 0x00, big, 3000, test_mask);
    put_frame (wire, 0x80, big, 10, test_mask);
    put_frame (wire, 0x81, "ok", 2, test_mask);
    for (gsize chunk = 0; chunk <= 40; chunk++) {
      g_autofree char *log = run_stream (wire->data, wire->len, TRUE, 100, chunk);

      g_assert_cmpstr (log, ==, expected);
    }
  }

  /* A first fragment that is already too large. */
  {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autofree char *expected = g_strdup_printf ("too-large %s", good);

    put_frame (wire, 0x01, big, 200, test_mask);
    put_frame (wire, 0x80, big, 10, test_mask);
    put_frame (wire, 0x81, "ok", 2, test_mask);
    for (gsize chunk = 0; chunk <= 20; chunk++) {
      g_autofree char *log = run_stream (wire->data, wire->len, TRUE, 100, chunk);

      g_assert_cmpstr (log, ==, expected);
    }
  }

  /* A 64-bit length far beyond anything: reported at once, after the header. */
  {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    ParleyWsParser p;
    ParleyWsMessage msg;
    gsize consumed;

    put_frame (wire, 0x82, NULL, G_GUINT64_CONSTANT (1) << 40, test_mask);
    g_byte_array_append (wire, big, 1000);
    parley_ws_parser_init (&p, TRUE, 100);
    g_assert_cmpint (parley_ws_parser_feed (&p, wire->data, wire->len, &consumed, &msg, NULL), ==,
                     PARLEY_WS_TOO_LARGE);
    g_assert_cmpuint (consumed, ==, wire->len);
    g_assert_cmpint (parley_ws_parser_feed (&p, big, 1000, &consumed, &msg, NULL), ==,
                     PARLEY_WS_NEED_MORE);
    g_assert_cmpuint (consumed, ==, 1000);
    parley_ws_parser_clear (&p);
  }
}

static void
test_invalid_utf8 (void)
{
  static const char *bad[] = {
    "\xc0\xaf",                 /* Overlong '/'. */
    "\xe0\x80\xaf",             /* Overlong, three bytes. */
    "\xed\xa0\x80",             /* Surrogate U+D800. */
    "\xf4\x90\x80\x80",         /* Above U+10FFFF. */
    "\xff",
    "abc\x80",                  /* Stray continuation byte. */
    "\xe2\x82",                 /* Truncated. */
  };
  g_autofree char *good = expect_msg (PARLEY_WS_OP_TEXT, "ok", 2);
  g_autofree char *bin = expect_msg (PARLEY_WS_OP_BINARY, "\xc0\xaf", 2);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autoptr(GByteArray) frag = g_byte_array_new ();
    g_autofree char *expected = g_strdup_printf ("invalid-utf8 %s", good);
    g_autofree char *log = NULL;
    g_autofree char *log2 = NULL;
    gsize len = strlen (bad[i]);

    put_frame (wire, 0x81, bad[i], len, test_mask);
    put_frame (wire, 0x81, "ok", 2, test_mask);
    log = run_stream (wire->data, wire->len, TRUE, 0, 0);
    g_assert_cmpstr (log, ==, expected);

    /* The same, fragmented. */
    put_frame (frag, 0x01, bad[i], 1, test_mask);
    put_frame (frag, 0x80, bad[i] + 1, len - 1, test_mask);
    put_frame (frag, 0x81, "ok", 2, test_mask);
    log2 = run_stream (frag->data, frag->len, TRUE, 0, 0);
    g_assert_cmpstr (log2, ==, expected);
  }

  /* Binary frames are not checked. */
  {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autofree char *log = NULL;

    put_frame (wire, 0x82, "\xc0\xaf", 2, test_mask);
    log = run_stream (wire->data, wire->len, TRUE, 0, 0);
    g_assert_cmpstr (log, ==, bin);
  }
}

static void
test_protocol_errors (void)
{
  g_autofree guint8 *big = g_malloc0 (200);
  struct {
    const char *name;
    gboolean server_side;
    guint8 first;
    const char *payload;
    gsize len;
    gboolean masked;
    guint16 code;
    const char *prelude;   /* A frame sent before, as "first byte" + payload, masked as the test. */
    guint8 prelude_first;
  } cases[] = {
    { "unmasked client frame", TRUE, 0x81, "hi", 2, FALSE, 1002, NULL, 0 },
    { "masked server frame", FALSE, 0x81, "hi", 2, TRUE, 1002, NULL, 0 },
    { "RSV1", TRUE, 0xc1, "hi", 2, TRUE, 1002, NULL, 0 },
    { "RSV2", TRUE, 0xa1, "hi", 2, TRUE, 1002, NULL, 0 },
    { "RSV3", FALSE, 0x91, "hi", 2, FALSE, 1002, NULL, 0 },
    { "opcode 3", TRUE, 0x83, "hi", 2, TRUE, 1002, NULL, 0 },
    { "opcode 7", TRUE, 0x87, "hi", 2, TRUE, 1002, NULL, 0 },
    { "opcode 0xB", TRUE, 0x8b, "hi", 2, TRUE, 1002, NULL, 0 },
    { "opcode 0xF", FALSE, 0x8f, "hi", 2, FALSE, 1002, NULL, 0 },
    { "control over 125", TRUE, 0x89, (const char *) big, 126, TRUE, 1002, NULL, 0 },
    { "fragmented ping", TRUE, 0x09, "hi", 2, TRUE, 1002, NULL, 0 },
    { "fragmented close", TRUE, 0x08, "", 0, TRUE, 1002, NULL, 0 },
    { "continuation without start", TRUE, 0x80, "hi", 2, TRUE, 1002, NULL, 0 },
    { "non-final continuation without start", TRUE, 0x00, "hi", 2, TRUE, 1002, NULL, 0 },
    { "text inside fragmented message", TRUE, 0x81, "hi", 2, TRUE, 1002, "a", 0x01 },
    { "binary inside fragmented message", TRUE, 0x02, "hi", 2, TRUE, 1002, "a", 0x01 },
    { "close with one byte", TRUE, 0x88, "\x03", 1, TRUE, 1002, NULL, 0 },
    { "close code 999", TRUE, 0x88, "\x03\xe7", 2, TRUE, 1002, NULL, 0 },
    { "close code 1005", TRUE, 0x88, "\x03\xed", 2, TRUE, 1002, NULL, 0 },
    { "close code 1006", FALSE, 0x88, "\x03\xee", 2, FALSE, 1002, NULL, 0 },
    { "close code 2000", TRUE, 0x88, "\x07\xd0", 2, TRUE, 1002, NULL, 0 },
    { "close code 5000", TRUE, 0x88, "\x13\x88", 2, TRUE, 1002, NULL, 0 },
    { "close reason not UTF-8", TRUE, 0x88, "\x03\xe8\xc0\xaf", 4, TRUE, 1007, NULL, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    g_autofree char *expected = g_strdup_printf ("error:%u", cases[i].code);
    const guint8 *mask = cases[i].masked ? test_mask : NULL;

    g_test_message ("case: %s", cases[i].name);
    if (cases[i].prelude)
      put_frame (wire, cases[i].prelude_first, cases[i].prelude, strlen (cases[i].prelude), mask);
    put_frame (wire, cases[i].first, cases[i].payload, cases[i].len, mask);
    /* Bytes after the error are never looked at. */
    put_frame (wire, 0x81, "ok", 2, mask);

    for (gsize chunk = 0; chunk <= 3; chunk++) {
      g_autofree char *log = run_stream (wire->data, wire->len, cases[i].server_side, 0, chunk);

      g_assert_cmpstr (log, ==, expected);
    }
  }

  /* A 64-bit length with the top bit set. */
  {
    static const guint8 wire[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
    g_autofree char *log = run_stream (wire, sizeof wire, TRUE, 0, 0);

    g_assert_cmpstr (log, ==, "error:1002");
  }

  /* A dead parser stays dead. */
  {
    static const guint8 bad[] = { 0x81, 0x02, 'h', 'i' };
    g_autoptr(GByteArray) good = g_byte_array_new ();
    guint8 copy[sizeof bad];
    ParleyWsParser p;
    ParleyWsMessage msg;
    gsize consumed;
    guint16 code = 0;

    memcpy (copy, bad, sizeof bad);
    put_frame (good, 0x81, "ok", 2, test_mask);
    parley_ws_parser_init (&p, TRUE, 0);
    g_assert_cmpint (parley_ws_parser_feed (&p, copy, sizeof copy, &consumed, &msg, &code), ==,
                     PARLEY_WS_PROTOCOL_ERROR);
    g_assert_cmpuint (code, ==, 1002);
    code = 0;
    g_assert_cmpint (parley_ws_parser_feed (&p, good->data, good->len, &consumed, &msg, &code), ==,
                     PARLEY_WS_PROTOCOL_ERROR);
    g_assert_cmpuint (code, ==, 1002);
    g_assert_cmpuint (consumed, ==, 0);
    parley_ws_parser_clear (&p);
  }
}

/* Valid close codes are accepted. */
static void
test_close_codes_valid (void)
{
  static const guint16 codes[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000,
                                   3999, 4000, 4999 };

  for (gsize i = 0; i < G_N_ELEMENTS (codes); i++) {
    g_autoptr(GByteArray) wire = g_byte_array_new ();
    guint8 payload[2] = { codes[i] >> 8, codes[i] & 0xff };
    g_autofree char *expected = expect_msg (PARLEY_WS_OP_CLOSE, payload, 2);
    g_autofree char *log = NULL;

    put_frame (wire, 0x88, payload, 2, test_mask);
    log = run_stream (wire->data, wire->len, TRUE, 0, 0);
    g_assert_cmpstr (log, ==, expected);
  }
}

/* A reused parser after clear and init behaves like a new one. */
static void
test_clear_reinit (void)
{
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  ParleyWsParser p;
  ParleyWsMessage msg;
  gsize consumed;

  put_frame (wire, 0x01, "abc", 3, test_mask);
  parley_ws_parser_init (&p, TRUE, 0);
  g_assert_cmpint (parley_ws_parser_feed (&p, wire->data, wire->len, &consumed, &msg, NULL), ==,
                   PARLEY_WS_NEED_MORE);
  g_assert_cmpuint (consumed, ==, wire->len);
  parley_ws_parser_clear (&p);

  /* A continuation now has no start. */
  g_byte_array_set_size (wire, 0);
  put_frame (wire, 0x80, "d", 1, test_mask);
  parley_ws_parser_init (&p, TRUE, 0);
  g_assert_cmpint (parley_ws_parser_feed (&p, wire->data, wire->len, &consumed, &msg, NULL), ==,
                   PARLEY_WS_PROTOCOL_ERROR);
  parley_ws_parser_clear (&p);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/ws-frame/rfc-examples", test_rfc_examples);
  g_test_add_func ("/ws-frame/points-into-buffer", test_unfragmented_points_into_buffer);
  g_test_add_func ("/ws-frame/accept-key", test_accept_key);
  g_test_add_func ("/ws-frame/header-lengths", test_header_lengths);
  g_test_add_func ("/ws-frame/opcodes", test_opcodes_roundtrip);
  g_test_add_func ("/ws-frame/close", test_close_frames);
  g_test_add_func ("/ws-frame/close-codes", test_close_codes_valid);
  g_test_add_func ("/ws-frame/lengths", test_lengths);
  g_test_add_func ("/ws-frame/masking", test_masking);
  g_test_add_func ("/ws-frame/fragmentation-splits", test_fragmentation_and_splits);
  g_test_add_func ("/ws-frame/client-side", test_client_side);
  g_test_add_func ("/ws-frame/too-large", test_too_large);
  g_test_add_func ("/ws-frame/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/ws-frame/protocol-errors", test_protocol_errors);
  g_test_add_func ("/ws-frame/clear-reinit", test_clear_reinit);

  return g_test_run ();
}
