/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bench-envelope.c: time of the relay hot path for typical envelopes.
 *
 * For each envelope it measures scan + validate + splice (what the server
 * does for every relayed frame), and the same preceded by parsing and
 * unmasking the WebSocket frame that carries it.
 *
 * Usage: bench-envelope [ITERATIONS]
 */

#define G_LOG_DOMAIN "bench-envelope"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "parley-envelope.h"
#include "parley-ws-frame.h"

static const char ice_candidate[] =
  "{\"type\":\"call-ice-candidate\",\"id\":\"req-000042\",\"recipientId\":\"u-7c1f2a9e\","
  "\"callId\":\"call-5b3e8d21-44c0-4f7a-9a8e-0c2d6b1e9f33\",\"candidate\":{\"candidate\":"
  "\"candidate:842163049 1 udp 1677729535 203.0.113.77 51234 typ srflx raddr 192.168.1.20 "
  "rport 51234 generation 0 ufrag Xk2p network-cost 999\",\"sdpMid\":\"0\","
  "\"sdpMLineIndex\":0}}";

static const char message[] =
  "{\"type\":\"message\",\"id\":\"msg-6f1d2c3b-0a9e\",\"recipientId\":\"u-7c1f2a9e\","
  "\"encryptedContent\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8w"
  "MTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFy"
  "c3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6f\"}";

#define ROUNDS 10

static volatile gsize sink;

static double
bench_envelope (const char *text,
                gsize       len,
                guint       iterations)
{
  static const char * const drop[] = { "seq", "timestamp", NULL };
  static const char prefix[] = "\"senderId\":\"u-1a2b3c4d\"";
  g_autoptr(GByteArray) out = g_byte_array_sized_new (1024);
  gint64 start, end;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++) {
    ParleyEnvelope env;
    const char *detail;

    if (parley_envelope_parse_request (text, len, &env, &detail) != PARLEY_PROTO_OK)
      g_error ("benchmark envelope refused: %s", detail ? detail : "invalid-json");
    g_byte_array_set_size (out, 0);
    parley_envelope_splice (&env, out, prefix, sizeof prefix - 1, drop);
    sink += out->len;
  }
  end = g_get_monotonic_time ();

  return (end - start) * 1000.0 / iterations;
}

static double
bench_frame_and_envelope (const char *text,
                          gsize       len,
                          guint       iterations)
{
  static const char * const drop[] = { "seq", "timestamp", NULL };
  static const char prefix[] = "\"senderId\":\"u-1a2b3c4d\"";
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GByteArray) out = g_byte_array_sized_new (1024);
  ParleyWsParser parser;
  gint64 start, end;

  parley_ws_append_frame (wire, PARLEY_WS_OP_TEXT, text, len, TRUE);
  g_byte_array_set_size (buf, wire->len);
  parley_ws_parser_init (&parser, TRUE, 65536);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++) {
    ParleyWsMessage msg;
    ParleyEnvelope env;
    gsize consumed;
    guint8 hdr[PARLEY_WS_MAX_HEADER];
    gsize hdr_len;

    /* The socket read: the masked frame lands in the receive buffer. */
    memcpy (buf->data, wire->data, wire->len);
    if (parley_ws_parser_feed (&parser, buf->data, buf->len, &consumed, &msg, NULL) !=
        PARLEY_WS_MESSAGE)
      g_error ("benchmark frame refused");
    if (parley_envelope_parse_request ((const char *) msg.payload, msg.len, &env, NULL) !=
        PARLEY_PROTO_OK)
      g_error ("benchmark envelope refused");

    /* Room for the header in front, filled in once the length is known. */
    g_byte_array_set_size (out, PARLEY_WS_MAX_HEADER);
    parley_envelope_splice (&env, out, prefix, sizeof prefix - 1, drop);
    hdr_len = parley_ws_frame_header (hdr, PARLEY_WS_OP_TEXT, out->len - PARLEY_WS_MAX_HEADER,
                                      TRUE, NULL);
    memcpy (out->data + PARLEY_WS_MAX_HEADER - hdr_len, hdr, hdr_len);
    sink += out->len + consumed;
  }
  end = g_get_monotonic_time ();

  parley_ws_parser_clear (&parser);
  return (end - start) * 1000.0 / iterations;
}

int
main (int   argc,
      char *argv[])
{
  guint iterations = 1000000;
  struct {
    const char *name;
    const char *text;
    gsize len;
  } cases[] = {
    { "call-ice-candidate", ice_candidate, sizeof ice_candidate - 1 },
    { "message", message, sizeof message - 1 },
  };

  if (argc > 1)
    iterations = MAX (ROUNDS, atoi (argv[1]));

  /* The best of several rounds: the machine may be busy with other work. */
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    double env_ns = G_MAXDOUBLE, full_ns = G_MAXDOUBLE;

    bench_envelope (cases[i].text, cases[i].len, iterations / 10 + 1);
    for (int round = 0; round < ROUNDS; round++) {
      env_ns = MIN (env_ns, bench_envelope (cases[i].text, cases[i].len, iterations / ROUNDS));
      full_ns = MIN (full_ns, bench_frame_and_envelope (cases[i].text, cases[i].len,
                                                        iterations / ROUNDS));
    }

    g_print ("%-20s %4" G_GSIZE_FORMAT " bytes: scan+validate+splice %7.1f ns, "
             "with frame parse+unmask %7.1f ns\n",
             cases[i].name, cases[i].len, env_ns, full_ns);
  }

  return 0;
}
