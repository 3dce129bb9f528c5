/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-bench"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "parley-bench-util.h"

/* Histogram layout: values below 128 have a bucket each; above, every power
 * of two is split into 64 buckets, so a bucket spans at most 1/64 of its
 * lower bound. */
#define EXACT_LIMIT 128
#define SUB_BUCKETS 64

/**
 * parley_bench_hist_bucket:
 * @value: a value
 *
 * Returns: the index of the bucket that holds @value
 */
guint
parley_bench_hist_bucket (guint64 value)
{
  guint msb, shift;

  if (value < EXACT_LIMIT)
    return (guint) value;
  msb = 63 - __builtin_clzll (value);
  shift = msb - 6;
  return EXACT_LIMIT + (shift - 1) * SUB_BUCKETS + (guint) ((value >> shift) - SUB_BUCKETS);
}

/**
 * parley_bench_hist_bucket_low:
 * @bucket: a bucket index
 *
 * Returns: the smallest value that falls into @bucket
 */
guint64
parley_bench_hist_bucket_low (guint bucket)
{
  guint k, shift;

  if (bucket < EXACT_LIMIT)
    return bucket;
  k = bucket - EXACT_LIMIT;
  shift = k / SUB_BUCKETS + 1;
  return (guint64) (k % SUB_BUCKETS + SUB_BUCKETS) << shift;
}

/**
 * parley_bench_hist_bucket_high:
 * @bucket: a bucket index
 *
 * Returns: the largest value that falls into @bucket
 */
guint64
parley_bench_hist_bucket_high (guint bucket)
{
  guint shift;

  if (bucket < EXACT_LIMIT)
    return bucket;
  shift = (bucket - EXACT_LIMIT) / SUB_BUCKETS + 1;
  return parley_bench_hist_bucket_low (bucket) + (((guint64) 1 << shift) - 1);
}

/**
 * parley_bench_hist_reset:
 * @hist: a histogram
 *
 * Forgets every recorded value.
 */
void
parley_bench_hist_reset (ParleyBenchHist *hist)
{
  memset (hist, 0, sizeof *hist);
  hist->min = G_MAXUINT64;
}

/**
 * parley_bench_hist_add:
 * @hist: a histogram
 * @value: the value to record
 *
 * Records @value.
 */
void
parley_bench_hist_add (ParleyBenchHist *hist,
                       guint64          value)
{
  hist->buckets[parley_bench_hist_bucket (value)]++;
  hist->count++;
  hist->sum += value;
  if (value < hist->min)
    hist->min = value;
  if (value > hist->max)
    hist->max = value;
}

/**
 * parley_bench_hist_percentile:
 * @hist: a histogram
 * @q: the quantile, between 0 and 1
 *
 * The value at rank ⌈q·count⌉ of the sorted values, to within the bucket
 * resolution (the middle of its bucket, clamped to the observed range).
 *
 * Returns: the percentile, or 0 when nothing was recorded
 */
guint64
parley_bench_hist_percentile (const ParleyBenchHist *hist,
                              double                 q)
{
  guint64 rank, seen = 0;

  if (hist->count == 0)
    return 0;
  q = CLAMP (q, 0.0, 1.0);
  rank = (guint64) (q * (double) hist->count + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > hist->count)
    rank = hist->count;

  for (guint i = 0; i < PARLEY_BENCH_HIST_BUCKETS; i++) {
    seen += hist->buckets[i];
    if (seen >= rank) {
      guint64 lo = parley_bench_hist_bucket_low (i);
      guint64 hi = parley_bench_hist_bucket_high (i);
      guint64 mid = lo + (hi - lo) / 2;

      return CLAMP (mid, hist->min, hist->max);
    }
  }
  return hist->max;
}

/**
 * parley_bench_format_u64:
 * @out: room for at least 20 bytes
 * @value: a number
 *
 * Writes @value in decimal, without a terminating NUL.
 *
 * Returns: the number of bytes written
 */
gsize
parley_bench_format_u64 (char    *out,
                         guint64  value)
{
  char tmp[20];
  gsize n = 0;

  do {
    tmp[n++] = '0' + (char) (value % 10);
    value /= 10;
  } while (value > 0);
  for (gsize i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

/**
 * parley_bench_parse_u64:
 * @p: the first digit
 * @end: the end of the text
 * @value: (out): the number
 *
 * Reads a decimal number of at most 19 digits.
 *
 * Returns: (nullable): the first byte after the digits, or %NULL when there
 *   is no digit or too many
 */
const char *
parley_bench_parse_u64 (const char *p,
                        const char *end,
                        guint64    *value)
{
  guint64 v = 0;
  const char *start = p;

  while (p < end && *p >= '0' && *p <= '9') {
    if (p - start >= 19)
      return NULL;
    v = v * 10 + (guint64) (*p - '0');
    p++;
  }
  if (p == start)
    return NULL;
  *value = v;
  return p;
}

/**
 * parley_bench_find_u64:
 * @text: the text to search
 * @len: its length
 * @key: the literal that precedes the number, such as `"seq":`
 * @value: (out): the number
 *
 * Finds the first occurrence of @key and reads the decimal number right
 * after it. There is no JSON parsing: the caller knows the shape of the text.
 *
 * Returns: whether @key was found and followed by a number
 */
gboolean
parley_bench_find_u64 (const char *text,
                       gsize       len,
                       const char *key,
                       guint64    *value)
{
  gsize key_len = strlen (key);
  const char *hit = memmem (text, len, key, key_len);

  if (hit == NULL)
    return FALSE;
  return parley_bench_parse_u64 (hit + key_len, text + len, value) != NULL;
}

/**
 * parley_bench_find_last_u64:
 * @text: a text
 * @len: its length
 * @key: the literal that precedes the number
 * @value: (out): the number
 *
 * Like parley_bench_find_u64(), for the last occurrence of @key, searched
 * from the end: the cheap way to a member near the end of a long frame.
 *
 * Returns: whether @key was found and followed by a number
 */
gboolean
parley_bench_find_last_u64 (const char *text,
                            gsize       len,
                            const char *key,
                            guint64    *value)
{
  gsize key_len = strlen (key);

  if (key_len == 0 || len < key_len)
    return FALSE;
  for (const char *p = text + len - key_len;; p--) {
    if (*p == key[0] && memcmp (p, key, key_len) == 0)
      return parley_bench_parse_u64 (p + key_len, text + len, value) != NULL;
    if (p == text)
      return FALSE;
  }
}

/**
 * parley_bench_json_get_string:
 * @text: a JSON text
 * @len: its length
 * @key: a member name
 *
 * Finds `"key":"value"` (optionally with blanks around the colon) and copies
 * the value. Only values without escape sequences are accepted: identifiers
 * and tokens never have any.
 *
 * Returns: (transfer full) (nullable): the value, or %NULL
 */
char *
parley_bench_json_get_string (const char *text,
                              gsize       len,
                              const char *key)
{
  g_autofree char *needle = g_strdup_printf ("\"%s\"", key);
  gsize needle_len = strlen (needle);
  const char *end = text + len;
  const char *p = text;

  while ((p = memmem (p, end - p, needle, needle_len)) != NULL) {
    const char *q = p + needle_len;
    const char *start;

    p = q;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
      q++;
    if (q >= end || *q != ':')
      continue;
    q++;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
      q++;
    if (q >= end || *q != '"')
      return NULL;
    start = ++q;
    while (q < end && *q != '"' && *q != '\\' && (guchar) *q >= 0x20)
      q++;
    if (q >= end || *q != '"')
      return NULL;
    return g_strndup (start, q - start);
  }
  return NULL;
}

/* Finds the end of the head: the offset just after "\r\n\r\n", or 0. */
static gsize
find_head_end (const char *buf,
               gsize       len)
{
  const char *hit = memmem (buf, len, "\r\n\r\n", 4);

  return hit ? (gsize) (hit - buf) + 4 : 0;
}

/**
 * parley_bench_http_header:
 * @buf: a response head
 * @head_len: its length as parley_bench_http_parse_head() found it
 * @name: a header name (compared without regard to case)
 *
 * Returns: (transfer full) (nullable): the value of the first header named
 *   @name, without surrounding blanks, or %NULL
 */
char *
parley_bench_http_header (const char *buf,
                          gsize       head_len,
                          const char *name)
{
  gsize name_len = strlen (name);
  const char *end = buf + head_len;
  const char *line = memmem (buf, head_len, "\r\n", 2);

  while (line != NULL && line + 2 < end) {
    const char *start = line + 2;
    const char *eol = memmem (start, end - start, "\r\n", 2);

    if (eol == NULL || eol == start)
      break;
    if ((gsize) (eol - start) > name_len && start[name_len] == ':' &&
        g_ascii_strncasecmp (start, name, name_len) == 0) {
      const char *v = start + name_len + 1;
      const char *ve = eol;

      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      return g_strndup (v, ve - v);
    }
    line = eol;
  }
  return NULL;
}

/**
 * parley_bench_http_parse_head:
 * @buf: the bytes received so far
 * @len: their number
 * @head: (out): the parsed head
 *
 * Parses the status line and the framing headers of an HTTP/1.x response.
 *
 * Returns: 1 when the head is complete and valid, 0 when more bytes are
 *   needed, -1 when it is malformed
 */
int
parley_bench_http_parse_head (const char          *buf,
                              gsize                len,
                              ParleyBenchHttpHead *head)
{
  gsize head_len;
  guint64 status;
  g_autofree char *content_length = NULL;
  g_autofree char *encoding = NULL;
  g_autofree char *connection = NULL;

  memset (head, 0, sizeof *head);
  head->content_length = -1;

  if (len >= 5 && memcmp (buf, "HTTP/", 5) != 0)
    return -1;
  head_len = find_head_end (buf, len);
  if (head_len == 0)
    return len > 64 * 1024 ? -1 : 0;

  /* "HTTP/1.1 200 OK" */
  if (head_len < 12 || memcmp (buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
    return -1;
  if (parley_bench_parse_u64 (buf + 9, buf + 12, &status) != buf + 12 || status < 100 ||
      status > 599 || (buf[12] != ' ' && buf[12] != '\r'))
    return -1;
  head->status = (guint) status;
  head->head_len = head_len;
  head->close = buf[7] == '0';

  content_length = parley_bench_http_header (buf, head_len, "Content-Length");
  if (content_length != NULL) {
    guint64 v;

    if (parley_bench_parse_u64 (content_length, content_length + strlen (content_length), &v) !=
        content_length + strlen (content_length))
      return -1;
    head->content_length = (gssize) v;
  }
  encoding = parley_bench_http_header (buf, head_len, "Transfer-Encoding");
  if (encoding != NULL && g_ascii_strcasecmp (encoding, "chunked") == 0)
    head->chunked = TRUE;
  connection = parley_bench_http_header (buf, head_len, "Connection");
  if (connection != NULL) {
    if (g_ascii_strcasecmp (connection, "close") == 0)
      head->close = TRUE;
    else if (g_ascii_strcasecmp (connection, "keep-alive") == 0)
      head->close = FALSE;
  }
  return 1;
}

/**
 * parley_bench_proc_stat_cpu:
 * @stat_text: the contents of `/proc/PID/stat`
 * @ticks: (out): utime + stime, in clock ticks
 *
 * The command name (field 2) may hold blanks and parentheses, so fields are
 * counted from the last `)`.
 *
 * Returns: whether the text could be parsed
 */
gboolean
parley_bench_proc_stat_cpu (const char *stat_text,
                            guint64    *ticks)
{
  const char *p = strrchr (stat_text, ')');
  const char *end;
  guint64 utime = 0, stime = 0;

  if (p == NULL)
    return FALSE;
  end = p + strlen (p);
  p++;
  /* After ")": field 3 (state) ... field 14 (utime), field 15 (stime). */
  for (int field = 3; field <= 15; field++) {
    while (p < end && *p == ' ')
      p++;
    if (p >= end)
      return FALSE;
    if (field == 14 || field == 15) {
      guint64 v;
      const char *after = parley_bench_parse_u64 (p, end, &v);

      if (after == NULL || (after < end && *after != ' ' && *after != '\n'))
        return FALSE;
      if (field == 14)
        utime = v;
      else
        stime = v;
      p = after;
    } else {
      while (p < end && *p != ' ')
        p++;
    }
  }
  *ticks = utime + stime;
  return TRUE;
}

/**
 * parley_bench_proc_status_kib:
 * @status_text: the contents of `/proc/PID/status`
 * @key: a key such as `VmRSS`
 * @kib: (out): its value in KiB
 *
 * Returns: whether the key was found with a value in kB
 */
gboolean
parley_bench_proc_status_kib (const char *status_text,
                              const char *key,
                              guint64    *kib)
{
  gsize key_len = strlen (key);
  const char *line = status_text;

  while (line && *line) {
    if (strncmp (line, key, key_len) == 0 && line[key_len] == ':') {
      const char *p = line + key_len + 1;
      const char *end = strchr (p, '\n');
      const char *after;

      if (end == NULL)
        end = p + strlen (p);
      while (p < end && (*p == ' ' || *p == '\t'))
        p++;
      after = parley_bench_parse_u64 (p, end, kib);
      return after != NULL && end - after >= 3 && memcmp (after, " kB", 3) == 0;
    }
    line = strchr (line, '\n');
    if (line)
      line++;
  }
  return FALSE;
}

/**
 * parley_bench_report_rtt:
 * @what: what was measured, the start of the line
 * @hist: the round trips, in ns
 * @max_ns: the longest
 * @lost: round trips that never came back
 * @json: also print the figures as one JSON line (in ms) for scripts
 *
 * Prints the p50 / p90 / p99 / max line of a round-trip benchmark.
 */
void
parley_bench_report_rtt (const char            *what,
                         const ParleyBenchHist *hist,
                         guint64                max_ns,
                         guint                  lost,
                         gboolean               json)
{
  double p50 = parley_bench_hist_percentile (hist, 0.50) / 1e6;
  double p90 = parley_bench_hist_percentile (hist, 0.90) / 1e6;
  double p99 = parley_bench_hist_percentile (hist, 0.99) / 1e6;

  g_print ("%s: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms (%u lost)\n", what, p50, p90, p99,
           max_ns / 1e6, lost);
  if (json)
    g_print ("{\"p50Ms\":%.3f,\"p90Ms\":%.3f,\"p99Ms\":%.3f,\"maxMs\":%.3f,\"lost\":%u}\n",
             p50, p90, p99, max_ns / 1e6, lost);
}

/**
 * parley_bench_now_ns:
 *
 * Returns: CLOCK_MONOTONIC in nanoseconds
 */
guint64
parley_bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (guint64) ts.tv_sec * G_GUINT64_CONSTANT (1000000000) + (guint64) ts.tv_nsec;
}

/**
 * parley_bench_udp_socket:
 * @addr: (out): the address it is bound to
 * @nonblocking: whether reads and writes should not block
 *
 * Makes a UDP socket bound to a free port on 127.0.0.1; aborts if it cannot.
 *
 * Returns: the socket
 */
int
parley_bench_udp_socket (struct sockaddr_in *addr,
                         gboolean            nonblocking)
{
  socklen_t len = sizeof *addr;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);

  memset (addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (fd < 0 || bind (fd, (struct sockaddr *) addr, sizeof *addr) != 0 ||
      getsockname (fd, (struct sockaddr *) addr, &len) != 0)
    g_error ("Cannot bind a UDP socket on loopback: %s", g_strerror (errno));
  return fd;
}
