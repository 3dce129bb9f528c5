/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test-bench-util.c: tests of the load generator's helpers. */

#define G_LOG_DOMAIN "test-bench-util"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "parley-bench-util.h"

static int
compare_u64 (const void *a,
             const void *b)
{
  guint64 x = *(const guint64 *) a;
  guint64 y = *(const guint64 *) b;

  return x < y ? -1 : x > y;
}

static void
test_hist_buckets (void)
{
  /* Every value lies within its bucket's bounds, buckets are contiguous, and
   * a bucket is never wider than 1/64 of its lower bound. */
  for (guint b = 0; b + 1 < PARLEY_BENCH_HIST_BUCKETS; b++) {
    guint64 lo = parley_bench_hist_bucket_low (b);
    guint64 hi = parley_bench_hist_bucket_high (b);

    g_assert_cmpuint (parley_bench_hist_bucket (lo), ==, b);
    g_assert_cmpuint (parley_bench_hist_bucket (hi), ==, b);
    g_assert_cmpuint (parley_bench_hist_bucket_low (b + 1), ==, hi + 1);
    if (lo >= 128)
      g_assert_cmpuint ((hi - lo + 1) * 64, <=, lo);
  }
  g_assert_cmpuint (parley_bench_hist_bucket (G_MAXUINT64), ==, PARLEY_BENCH_HIST_BUCKETS - 1);
  g_assert_cmpuint (parley_bench_hist_bucket (0), ==, 0);
}

static void
test_hist_percentiles (void)
{
  g_autofree ParleyBenchHist *hist = g_new (ParleyBenchHist, 1);
  g_autoptr (GRand) rand = g_rand_new_with_seed (42);
  const guint n = 100000;
  g_autofree guint64 *values = g_new (guint64, n);
  const double qs[] = { 0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0 };

  parley_bench_hist_reset (hist);
  g_assert_cmpuint (parley_bench_hist_percentile (hist, 0.5), ==, 0);

  /* Log-uniform values from 10 ns to 100 ms, as latencies spread. */
  for (guint i = 0; i < n; i++) {
    values[i] = (guint64) exp (g_rand_double_range (rand, log (10.0), log (1e8)));
    parley_bench_hist_add (hist, values[i]);
  }
  qsort (values, n, sizeof *values, compare_u64);

  g_assert_cmpuint (hist->count, ==, n);
  g_assert_cmpuint (hist->min, ==, values[0]);
  g_assert_cmpuint (hist->max, ==, values[n - 1]);
  for (guint i = 0; i < G_N_ELEMENTS (qs); i++) {
    guint64 rank = (guint64) ceil (qs[i] * n);
    guint64 exact = values[rank == 0 ? 0 : rank - 1];
    guint64 got = parley_bench_hist_percentile (hist, qs[i]);
    double error = fabs ((double) got - (double) exact) / (double) exact;

    g_test_message ("q=%g exact=%" G_GUINT64_FORMAT " got=%" G_GUINT64_FORMAT, qs[i], exact, got);
    g_assert_cmpfloat (error, <=, 1.0 / 64);
  }
}

static void
test_hist_small_values_exact (void)
{
  ParleyBenchHist hist;

  parley_bench_hist_reset (&hist);
  for (guint64 v = 1; v <= 100; v++)
    parley_bench_hist_add (&hist, v);
  g_assert_cmpuint (parley_bench_hist_percentile (&hist, 0.5), ==, 50);
  g_assert_cmpuint (parley_bench_hist_percentile (&hist, 0.99), ==, 99);
  g_assert_cmpuint (parley_bench_hist_percentile (&hist, 1.0), ==, 100);
  g_assert_cmpuint (hist.sum, ==, 5050);
}

static void
test_numbers (void)
{
  const guint64 samples[] = { 0, 7, 10, 99, 1234567, G_MAXINT64 };
  char buf[32];

  for (guint i = 0; i < G_N_ELEMENTS (samples); i++) {
    gsize n = parley_bench_format_u64 (buf, samples[i]);
    g_autofree char *expected = g_strdup_printf ("%" G_GUINT64_FORMAT, samples[i]);
    guint64 back = 0;

    g_assert_cmpmem (buf, n, expected, strlen (expected));
    g_assert_true (parley_bench_parse_u64 (buf, buf + n, &back) == buf + n);
    g_assert_cmpuint (back, ==, samples[i]);
  }

  /* No digits, or more than fit. */
  g_assert_null (parley_bench_parse_u64 ("x1", "x1" + 2, &(guint64) { 0 }));
  g_assert_null (parley_bench_parse_u64 ("", "", &(guint64) { 0 }));
  {
    const char *big = "123456789012345678901";

    g_assert_null (parley_bench_parse_u64 (big, big + strlen (big), &(guint64) { 0 }));
  }
}

static void
test_find_u64 (void)
{
  const char *text = "{\"type\":\"message\",\"id\":\"m1\",\"seq\":41,\"timestamp\":1700000000000}";
  guint64 v = 0;

  g_assert_true (parley_bench_find_u64 (text, strlen (text), "\"seq\":", &v));
  g_assert_cmpuint (v, ==, 41);
  g_assert_true (parley_bench_find_u64 (text, strlen (text), "\"timestamp\":", &v));
  g_assert_cmpuint (v, ==, 1700000000000);
  g_assert_false (parley_bench_find_u64 (text, strlen (text), "\"more\":", &v));
  /* The key is there but no number follows. */
  g_assert_false (parley_bench_find_u64 (text, strlen (text), "\"id\":", &v));
  /* The search respects the length. */
  g_assert_false (parley_bench_find_u64 (text, 30, "\"seq\":", &v));
}

static void
test_find_last_u64 (void)
{
  const char *text = "{\"t\":1,\"candidate\":\"x\\\"t\\\":\",\"t\":1700000000000,\"n\":7}";
  guint64 v = 0;

  /* The last occurrence wins, wherever the first is. */
  g_assert_true (parley_bench_find_last_u64 (text, strlen (text), "\"t\":", &v));
  g_assert_cmpuint (v, ==, 1700000000000);
  g_assert_true (parley_bench_find_last_u64 (text, strlen (text), "\"n\":", &v));
  g_assert_cmpuint (v, ==, 7);
  /* At the very start, and not found. */
  g_assert_true (parley_bench_find_last_u64 (text, 7, "{\"t\":", &v));
  g_assert_cmpuint (v, ==, 1);
  g_assert_false (parley_bench_find_last_u64 (text, strlen (text), "\"seq\":", &v));
  g_assert_false (parley_bench_find_last_u64 (text, 2, "\"t\":", &v));
  /* The search respects the length: cut before the second "t". */
  g_assert_true (parley_bench_find_last_u64 (text, 8, "\"t\":", &v));
  g_assert_cmpuint (v, ==, 1);
}

static void
test_json_get_string (void)
{
  const char *body = "{\"userId\":\"u_12\", \"username\" : \"alice\",\"accessToken\":\"a.b-c_d\","
                     "\"bad\":\"x\\\"y\",\"num\":3}";
  g_autofree char *user_id = parley_bench_json_get_string (body, strlen (body), "userId");
  g_autofree char *username = parley_bench_json_get_string (body, strlen (body), "username");
  g_autofree char *token = parley_bench_json_get_string (body, strlen (body), "accessToken");
  g_autofree char *bad = parley_bench_json_get_string (body, strlen (body), "bad");
  g_autofree char *num = parley_bench_json_get_string (body, strlen (body), "num");
  g_autofree char *missing = parley_bench_json_get_string (body, strlen (body), "refreshToken");
  g_autofree char *truncated = parley_bench_json_get_string (body, 14, "userId");
  /* A key that appears first as a value. */
  const char *tricky = "{\"a\":\"userId\",\"userId\":\"u2\"}";
  g_autofree char *second = parley_bench_json_get_string (tricky, strlen (tricky), "userId");

  g_assert_cmpstr (user_id, ==, "u_12");
  g_assert_cmpstr (username, ==, "alice");
  g_assert_cmpstr (token, ==, "a.b-c_d");
  g_assert_null (bad);
  g_assert_null (num);
  g_assert_null (missing);
  g_assert_null (truncated);
  g_assert_cmpstr (second, ==, "u2");
}

static void
test_http_head (void)
{
  const char *ok = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                   "content-length:  17 \r\n\r\n{\"userId\":\"u1\"}";
  const char *upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                        "\x81\x05hello";
  const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        "Connection: close\r\n\r\n";
  ParleyBenchHttpHead head;
  g_autofree char *accept = NULL;

  g_assert_cmpint (parley_bench_http_parse_head (ok, strlen (ok), &head), ==, 1);
  g_assert_cmpuint (head.status, ==, 201);
  g_assert_cmpint (head.content_length, ==, 17);
  g_assert_false (head.chunked);
  g_assert_false (head.close);
  g_assert_cmpstr (ok + head.head_len, ==, "{\"userId\":\"u1\"}");

  g_assert_cmpint (parley_bench_http_parse_head (upgrade, strlen (upgrade), &head), ==, 1);
  g_assert_cmpuint (head.status, ==, 101);
  g_assert_cmpint (head.content_length, ==, -1);
  accept = parley_bench_http_header (upgrade, head.head_len, "sec-websocket-accept");
  g_assert_cmpstr (accept, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  g_assert_cmpmem (upgrade + head.head_len, 2, "\x81\x05", 2);

  g_assert_cmpint (parley_bench_http_parse_head (chunked, strlen (chunked), &head), ==, 1);
  g_assert_true (head.chunked);
  g_assert_true (head.close);

  /* Incomplete, then malformed heads. */
  g_assert_cmpint (parley_bench_http_parse_head (ok, 30, &head), ==, 0);
  g_assert_cmpint (parley_bench_http_parse_head ("HTT", 3, &head), ==, 0);
  g_assert_cmpint (parley_bench_http_parse_head ("SSH-2.0-x\r\n\r\n", 13, &head), ==, -1);
  g_assert_cmpint (parley_bench_http_parse_head ("HTTP/1.1 2x0 OK\r\n\r\n", 19, &head), ==, -1);
  g_assert_cmpint (parley_bench_http_parse_head ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                                                 39, &head), ==, -1);
}

static void
test_proc_stat (void)
{
  /* A command name with blanks and a parenthesis, as the kernel allows. */
  const char *stat = "4242 (parley) serv) S 1 4242 4242 0 -1 4194560 1234 0 0 0 "
                     "157 43 0 0 20 0 4 0 12345 1000000 500 18446744073709551615\n";
  const char *status = "Name:\tparley-server\nVmPeak:\t  500000 kB\nVmRSS:\t   12345 kB\n"
                       "Threads:\t4\n";
  guint64 ticks = 0, kib = 0;

  g_assert_true (parley_bench_proc_stat_cpu (stat, &ticks));
  g_assert_cmpuint (ticks, ==, 157 + 43);
  g_assert_false (parley_bench_proc_stat_cpu ("4242 (x) S 1 2", &ticks));
  g_assert_false (parley_bench_proc_stat_cpu ("garbage", &ticks));

  g_assert_true (parley_bench_proc_status_kib (status, "VmRSS", &kib));
  g_assert_cmpuint (kib, ==, 12345);
  g_assert_true (parley_bench_proc_status_kib (status, "VmPeak", &kib));
  g_assert_cmpuint (kib, ==, 500000);
  g_assert_false (parley_bench_proc_status_kib (status, "VmSwap", &kib));
  g_assert_false (parley_bench_proc_status_kib (status, "Threads", &kib));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bench/hist/buckets", test_hist_buckets);
  g_test_add_func ("/bench/hist/percentiles", test_hist_percentiles);
  g_test_add_func ("/bench/hist/small-values", test_hist_small_values_exact);
  g_test_add_func ("/bench/numbers", test_numbers);
  g_test_add_func ("/bench/find-u64", test_find_u64);
  g_test_add_func ("/bench/find-last-u64", test_find_last_u64);
  g_test_add_func ("/bench/json-get-string", test_json_get_string);
  g_test_add_func ("/bench/http-head", test_http_head);
  g_test_add_func ("/bench/proc", test_proc_stat);

  return g_test_run ();
}
