/* SPDX-License-Identifier: GPL-3.0-or-later */
/* How much a device that catches up on a long backlog holds up everyone
 * else: a real parley-server, a user with N stored messages connects
 * (a raw reader thread that only counts the message frames), while two
 * other users keep relaying `typing` frames to each other one at a time.
 * Prints the round trips of those frames before and during the catch-up,
 * and its duration, for [ws] replay-batch=100 (the default: a batch per
 * loop iteration) and for a batch larger than the backlog (everything in
 * one loop iteration, as a single read would), in the same run. The
 * catch-up is either the replay of the messages stored for the user or a
 * history sync of the messages the user sent, in pages of 1,000 (the most
 * a `sync` request may ask for). */
#define G_LOG_DOMAIN "bench-replay"

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "parley-test-util.h"

typedef struct {
  guint port;
  char *token;
  guint expected;
  gboolean sync;          /* page through the history instead of waiting */
  gint done;              /* atomic */
  gint failed;            /* atomic */
  gint64 finished_us;
} Reader;

typedef struct {
  guint batch;
  gboolean sync;
  double replay_ms;
  double before_p50, before_p99, before_max;
  double during_p50, during_p99, during_max;
  guint rounds;
  gboolean ok;
} Case;

static int
compare_double (gconstpointer a,
                gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
percentile (GArray *sorted,
            double  p)
{
  if (sorted->len == 0)
    return 0;
  return g_array_index (sorted, double, MIN (sorted->len - 1, (guint) (p * sorted->len)));
}

static gboolean
write_all (int         fd,
           const char *data,
           gsize       len)
{
  while (len > 0) {
    ssize_t n = write (fd, data, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    data += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* Sends a `sync` request for the page after @since (a masked text frame
 * with a zero mask, as a client must send). */
static gboolean
send_sync (int    fd,
           gint64 since)
{
  g_autofree char *text = g_strdup_printf ("{\"type\":\"sync\",\"id\":\"s%" G_GINT64_FORMAT
                                           "\",\"since\":%" G_GINT64_FORMAT ",\"limit\":1000}",
                                           since, since);
  gsize len = strlen (text);
  char frame[6 + 125] = { (char) 0x81, (char) (0x80 | len), 0, 0, 0, 0 };

  /* One write: a second small one would wait for the first's ACK (Nagle). */
  g_assert (len < 126);
  memcpy (frame + 6, text, len);
  return write_all (fd, frame, 6 + len);
}

/* The seq of a sync's ack, and whether more follow; FALSE if @p is no ack. */
static gboolean
parse_sync_ack (const guint8 *p,
                gsize         len,
                gint64       *seq,
                gboolean     *more)
{
  g_autofree char *text = g_strndup ((const char *) p, len);
  const char *s;

  if (!g_str_has_prefix (text, "{\"type\":\"ack\"") || (s = strstr (text, "\"seq\":")) == NULL)
    return FALSE;
  *seq = g_ascii_strtoll (s + 6, NULL, 10);
  *more = strstr (text, "\"more\":true") != NULL;
  return TRUE;
}

/* Connects as the backlog's owner and counts message frames until all have
 * come: replayed (the user is their recipient) or, with @sync, asked for
 * page by page. Server frames are unmasked: a 2-byte header, then a 16- or
 * 64-bit length for long ones. */
static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (r->port),
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  g_autofree char *request = g_strdup_printf (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Authorization: Bearer %s\r\n\r\n", r->token);
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  gboolean upgraded = FALSE;
  guint count = 0;
  guint8 chunk[65536];
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
      !write_all (fd, request, strlen (request)))
    goto fail;

  while (count < r->expected) {
    ssize_t n = read (fd, chunk, sizeof chunk);
    gsize off = 0;

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      goto fail;
    g_byte_array_append (buf, chunk, (guint) n);
    if (!upgraded) {
      const char *end = g_strstr_len ((const char *) buf->data, buf->len, "\r\n\r\n");

      if (end == NULL)
        continue;
      if (buf->len < 12 || memcmp (buf->data, "HTTP/1.1 101", 12) != 0)
        goto fail;
      g_byte_array_remove_range (buf, 0, (guint) (end + 4 - (const char *) buf->data));
      upgraded = TRUE;
      if (r->sync && !send_sync (fd, 0))
        goto fail;
    }
    for (;;) {
      const guint8 *p = buf->data + off;
      gsize avail = buf->len - off, head = 2;
      guint64 len;

      if (avail < 2)
        break;
      len = p[1] & 0x7f;
      if (len == 126) {
        head = 4;
        if (avail < head)
          break;
        len = (guint64) p[2] << 8 | p[3];
      } else if (len == 127) {
        head = 10;
        if (avail < head)
          break;
        len = 0;
        for (int i = 0; i < 8; i++)
          len = len << 8 | p[2 + i];
      }
      if (avail < head + len)
        break;
      if (len >= 17 && memcmp (p + head, "{\"type\":\"message\"", 17) == 0) {
        count++;
      } else if (r->sync) {
        gint64 seq;
        gboolean more;

        if (parse_sync_ack (p + head, len, &seq, &more) && more && !send_sync (fd, seq))
          goto fail;
      }
      off += head + len;
    }
    g_byte_array_remove_range (buf, 0, (guint) off);
  }
  r->finished_us = g_get_monotonic_time ();
  close (fd);
  g_atomic_int_set (&r->done, 1);
  return NULL;

fail:
  if (fd >= 0)
    close (fd);
  g_atomic_int_set (&r->failed, 1);
  g_atomic_int_set (&r->done, 1);
  return NULL;
}

/* One `typing` frame from @a to @b and back; returns the round trip in ms. */
static double
round_trip (ParleyTestWs *a,
            const char   *a_id,
            ParleyTestWs *b,
            const char   *b_id)
{
  gint64 t0 = g_get_monotonic_time ();
  JsonObject *frame;

  parley_test_ws_send (a, "{\"type\":\"typing\",\"recipientId\":\"%s\","
                       "\"state\":\"active\"}", b_id);
  frame = parley_test_ws_expect (b, "typing");
  json_object_unref (frame);
  parley_test_ws_send (b, "{\"type\":\"typing\",\"recipientId\":\"%s\","
                       "\"state\":\"paused\"}", a_id);
  frame = parley_test_ws_expect (a, "typing");
  json_object_unref (frame);
  return (g_get_monotonic_time () - t0) / 1000.0;
}

static void
summarize (GArray *rtts,
           double *p50,
           double *p99,
           double *max)
{
  g_array_sort (rtts, compare_double);
  *p50 = percentile (rtts, 0.50);
  *p99 = percentile (rtts, 0.99);
  *max = rtts->len ? g_array_index (rtts, double, rtts->len - 1) : 0;
}

static void
run_case (Case  *c,
          guint  backlog)
{
  g_autofree char *config = g_strdup_printf ("[ws]\nrate=10000000\nrate-burst=10000000\n"
                                             "replay-batch=%u\n", c->batch);
  g_autoptr (ParleyTestServer) server = parley_test_server_new (config, NULL);
  g_autofree char *alice_id = NULL, *bob_id = NULL, *carol_id = NULL, *dave_id = NULL;
  g_autofree char *alice_token = parley_test_register_login (server, "alice", &alice_id);
  g_autofree char *bob_token = parley_test_register_login (server, "bob", &bob_id);
  g_autofree char *carol_token = parley_test_register_login (server, "carol", &carol_id);
  g_autofree char *dave_token = parley_test_register_login (server, "dave", &dave_id);
  g_autoptr (ParleyTestWs) alice = parley_test_ws_connect (server, alice_token, NULL);
  g_autoptr (ParleyTestWs) carol = parley_test_ws_connect (server, carol_token, NULL);
  g_autoptr (ParleyTestWs) dave = parley_test_ws_connect (server, dave_token, NULL);
  g_autoptr (GArray) before = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) during = g_array_new (FALSE, FALSE, sizeof (double));
  /* The replay goes to bob, the recipient; a sync is asked for by alice,
   * the sender (nothing is stored for her, so she has no replay). */
  Reader reader = { server->port, c->sync ? alice_token : bob_token, backlog, c->sync, 0, 0, 0 };
  const guint chunk = 500;
  GThread *thread;
  gint64 t0;

  g_assert_nonnull (alice);
  g_assert_nonnull (carol);
  g_assert_nonnull (dave);
  /* The backlog: messages of about 200 bytes to bob, who is offline. */
  for (guint i = 0; i < backlog; i += chunk) {
    for (guint j = i; j < MIN (i + chunk, backlog); j++)
      parley_test_ws_send (alice, "{\"type\":\"message\",\"id\":\"m%u\",\"recipientId\":\"%s\","
                           "\"encryptedContent\":\"%0200u\"}", j, bob_id, j);
    for (guint j = i; j < MIN (i + chunk, backlog); j++) {
      g_autofree char *id = g_strdup_printf ("m%u", j);

      json_object_unref (parley_test_ws_expect_ref (alice, "ack", id));
    }
  }

  for (guint i = 0; i < 1000; i++) {
    double rtt = round_trip (carol, carol_id, dave, dave_id);

    g_array_append_val (before, rtt);
  }

  t0 = g_get_monotonic_time ();
  thread = g_thread_new ("bench-replay-reader", reader_thread, &reader);
  while (!g_atomic_int_get (&reader.done)) {
    double rtt = round_trip (carol, carol_id, dave, dave_id);

    g_array_append_val (during, rtt);
  }
  g_thread_join (thread);

  c->ok = !g_atomic_int_get (&reader.failed);
  c->replay_ms = (reader.finished_us - t0) / 1000.0;
  c->rounds = during->len;
  summarize (before, &c->before_p50, &c->before_p99, &c->before_max);
  summarize (during, &c->during_p50, &c->during_p99, &c->during_max);
}

int
main (int    argc,
      char **argv)
{
  guint backlog = argc > 1 ? (guint) atoi (argv[1]) : 20000;
  Case cases[] = { { .batch = 100 }, { .batch = 100000 },
                   { .batch = 100, .sync = TRUE }, { .batch = 100000, .sync = TRUE } };

  if (g_getenv ("PARLEY_SERVER") == NULL) {
    g_printerr ("Set PARLEY_SERVER to the parley-server to run (meson does).\n");
    return 2;
  }
  if (backlog < 1 || backlog > 100000) {
    g_printerr ("Usage: bench-replay [BACKLOG (1–100000, default 20000)]\n");
    return 2;
  }
  g_print ("A user with %u stored messages connects while two others relay typing frames\n"
           "one at a time; their round trips before and during the replay of the messages,\n"
           "and during a history sync of as many messages (pages of 1,000).\n\n", backlog);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i], backlog);

  g_print ("%-32s %12s %10s %24s %24s\n", "catch-up, replay-batch", "duration", "rounds",
           "RTT before p50/p99/max", "RTT during p50/p99/max");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    Case *c = &cases[i];
    g_autofree char *label = g_strdup_printf ("%s, %u%s", c->sync ? "sync" : "replay", c->batch,
                                              c->batch >= backlog ? " (all at once)"
                                                                  : " (default)");

    g_print ("%-32s %9.1f ms %10u %8.2f/%.2f/%.2f ms %8.2f/%.2f/%.2f ms%s\n", label, c->replay_ms,
             c->rounds, c->before_p50, c->before_p99, c->before_max, c->during_p50,
             c->during_p99, c->during_max, c->ok ? "" : "  (FAILED)");
  }
  for (guint i = 0; i < G_N_ELEMENTS (cases); i += 2)
    g_print ("\nLongest round trip during the %s: %.2f ms in batches of %u, %.2f ms all at once "
             "(%.1fx).", cases[i].sync ? "sync" : "replay", cases[i].during_max, cases[i].batch,
             cases[i + 1].during_max,
             cases[i].during_max > 0 ? cases[i + 1].during_max / cases[i].during_max : 0);
  g_print ("\n");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    if (!cases[i].ok)
      return 1;
  return 0;
}
