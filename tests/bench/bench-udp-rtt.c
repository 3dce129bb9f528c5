/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bench-udp-rtt.c: the shortest round trip two processes on this machine
 * can make, as the floor under a data channel ping.
 *
 * A data channel round trip between two peers crosses at least two
 * processes' wake-ups on receiving a datagram, whatever the stack above
 * the socket. This program measures just that: it forks an echo process,
 * then sends a small UDP datagram over loopback every --interval-ms and
 * waits for it to come back, --count times. No SCTP, no DTLS, no threads.
 * Run it alone for the idle machine's floor, or during a call (as
 * bench-calls.py does) for the floor with media flowing. With --realtime
 * both processes run under SCHED_FIFO, as a data path given priority over
 * the media's threads would (it needs the privilege; without it the run
 * says so and fails).
 *
 *   bench-udp-rtt [--count N] [--interval-ms MS] [--realtime] [--json]
 *
 * Printed: p50 / p90 / p99 / max of the round trip, and with --json one
 * JSON line with the same figures in ms for scripts.
 */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parley-bench-util.h"



/* The echo process: sends every datagram back where it came from until
 * its parent goes away. */
static G_GNUC_NORETURN void
echo_loop (int fd)
{
  char buf[2048];

  for (;;) {
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom (fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &from_len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      _exit (1);
    if (n == 1 && buf[0] == 'q')
      _exit (0);
    sendto (fd, buf, (size_t) n, 0, (struct sockaddr *) &from, from_len);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- UDP round trip between two "
                                                            "processes");
  g_autoptr(GError) error = NULL;
  ParleyBenchHist *hist = g_new0 (ParleyBenchHist, 1);
  int count = 500, interval_ms = 20;
  gboolean json = FALSE, realtime = FALSE;
  guint lost = 0;
  struct sockaddr_in echo_addr, ping_addr;
  struct timeval timeout = { .tv_sec = 1 };
  int echo_fd, ping_fd, status = 0;
  guint64 max = 0, next;
  pid_t child;
  GOptionEntry entries[] = {
    { "count", 0, 0, G_OPTION_ARG_INT, &count, "Round trips (500)", "N" },
    { "interval-ms", 0, 0, G_OPTION_ARG_INT, &interval_ms,
      "Milliseconds between two pings (20, as the data channel benchmark)", "MS" },
    { "realtime", 0, 0, G_OPTION_ARG_NONE, &realtime,
      "Run both processes under SCHED_FIFO (needs the privilege)", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Also print the figures as one JSON line", NULL },
    { NULL }
  };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (count < 1 || count > 1000000 || interval_ms < 0 || interval_ms > 10000) {
    g_printerr ("--count must be 1 to 1000000 and --interval-ms 0 to 10000\n");
    return 2;
  }

  if (realtime) {
    struct sched_param param = { .sched_priority = 10 };

    /* The echo process inherits the policy through fork(). */
    if (sched_setscheduler (0, SCHED_FIFO, &param) != 0) {
      g_printerr ("Cannot run under SCHED_FIFO: %s\n", g_strerror (errno));
      return 1;
    }
  }
  parley_bench_hist_reset (hist);
  echo_fd = parley_bench_udp_socket (&echo_addr, FALSE);
  ping_fd = parley_bench_udp_socket (&ping_addr, FALSE);
  setsockopt (ping_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  child = fork ();
  if (child < 0)
    g_error ("fork: %s", g_strerror (errno));
  if (child == 0) {
    close (ping_fd);
    echo_loop (echo_fd);
  }
  close (echo_fd);

  next = parley_bench_now_ns ();
  for (int i = 0; i < count; i++) {
    guint64 stamp, back;
    ssize_t n;

    next += (guint64) interval_ms * 1000000;
    while (parley_bench_now_ns () < next)
      g_usleep ((next - parley_bench_now_ns ()) / 1000);
    stamp = parley_bench_now_ns ();
    if (sendto (ping_fd, &stamp, sizeof stamp, 0, (struct sockaddr *) &echo_addr,
                sizeof echo_addr) != sizeof stamp)
      g_error ("sendto: %s", g_strerror (errno));
    /* A datagram lost (or late beyond the timeout) counts as lost; a late
     * one that arrives afterwards is told apart by its stamp. */
    do {
      n = recv (ping_fd, &back, sizeof back, 0);
    } while ((n < 0 && errno == EINTR) || (n == sizeof back && back != stamp));
    if (n != sizeof back) {
      lost++;
      continue;
    }
    back = parley_bench_now_ns () - stamp;
    max = MAX (max, back);
    parley_bench_hist_add (hist, back);
  }
  sendto (ping_fd, "q", 1, 0, (struct sockaddr *) &echo_addr, sizeof echo_addr);
  if (waitpid (child, &status, 0) < 0 || !WIFEXITED (status))
    kill (child, SIGKILL);
  close (ping_fd);

  {
    g_autofree char *what = g_strdup_printf ("UDP round trip between two %sprocesses, %d every "
                                             "%d ms", realtime ? "SCHED_FIFO " : "", count,
                                             interval_ms);

    parley_bench_report_rtt (what, hist, max, lost, json);
  }
  g_free (hist);
  return lost == (guint) count ? 1 : 0;
}
