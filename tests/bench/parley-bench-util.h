/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-bench-util.h: small, allocation-free helpers of the load generator.
 *
 * Everything here is pure (no sockets, no global state) so that the unit
 * tests can check it in isolation.
 */

#pragma once

#include <glib.h>
#include <netinet/in.h>

G_BEGIN_DECLS

/** The number of buckets of a #ParleyBenchHist. */
#define PARLEY_BENCH_HIST_BUCKETS 3776

/**
 * ParleyBenchHist:
 * @count: the number of recorded values
 * @min: the smallest recorded value
 * @max: the largest recorded value
 * @sum: the sum of the recorded values
 * @buckets: the log-linear buckets (values below 128 exactly, above with a
 *   relative resolution of 1/64)
 *
 * A latency histogram of unsigned 64-bit values (nanoseconds here). Adding a
 * value is a few instructions; percentiles are exact to within 1.6 %.
 */
typedef struct {
  guint64 count;
  guint64 min;
  guint64 max;
  guint64 sum;
  guint64 buckets[PARLEY_BENCH_HIST_BUCKETS];
} ParleyBenchHist;

void     parley_bench_hist_reset      (ParleyBenchHist       *hist);
void     parley_bench_hist_add        (ParleyBenchHist       *hist,
                                       guint64                value);
guint64  parley_bench_hist_percentile (const ParleyBenchHist *hist,
                                       double                 q);
guint64  parley_bench_now_ns          (void);
int      parley_bench_udp_socket      (struct sockaddr_in    *addr,
                                       gboolean               nonblocking);
void     parley_bench_report_rtt      (const char            *what,
                                       const ParleyBenchHist *hist,
                                       guint64                max_ns,
                                       guint                  lost,
                                       gboolean               json);
guint    parley_bench_hist_bucket     (guint64                value);
guint64  parley_bench_hist_bucket_low (guint                  bucket);
guint64  parley_bench_hist_bucket_high (guint                 bucket);

gsize        parley_bench_format_u64   (char        *out,
                                        guint64      value);
const char  *parley_bench_parse_u64    (const char  *p,
                                        const char  *end,
                                        guint64     *value);
gboolean     parley_bench_find_u64     (const char  *text,
                                        gsize        len,
                                        const char  *key,
                                        guint64     *value);
gboolean     parley_bench_find_last_u64 (const char  *text,
                                         gsize        len,
                                         const char  *key,
                                         guint64     *value);
char        *parley_bench_json_get_string (const char *text,
                                           gsize       len,
                                           const char *key);

/**
 * ParleyBenchHttpHead:
 * @status: the status code
 * @head_len: the length of the status line and headers, including the blank line
 * @content_length: the Content-Length, or -1 when absent
 * @chunked: whether Transfer-Encoding is chunked
 * @close: whether the server will close the connection after this answer
 *
 * The parsed head of an HTTP/1.1 response.
 */
typedef struct {
  guint status;
  gsize head_len;
  gssize content_length;
  gboolean chunked;
  gboolean close;
} ParleyBenchHttpHead;

int          parley_bench_http_parse_head (const char          *buf,
                                           gsize                len,
                                           ParleyBenchHttpHead *head);
char        *parley_bench_http_header     (const char          *buf,
                                           gsize                head_len,
                                           const char          *name);

gboolean     parley_bench_proc_stat_cpu   (const char *stat_text,
                                           guint64    *ticks);
gboolean     parley_bench_proc_status_kib (const char *status_text,
                                           const char *key,
                                           guint64    *kib);

G_END_DECLS
