/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bench-sctp-rtt.c: the round trip of an SCTP message between two
 * processes when the SCTP stack runs on the one thread that also reads the
 * socket, as a data path of its own for data channels would run it.
 *
 * A data channel message in webrtcbin 1.22 crosses 8 threads each way
 * (docs/benchmarks.md, "calls"). This program measures what the same SCTP
 * stack (usrsctp, as webrtcbin uses it) costs without those hand-offs: each
 * process runs usrsctp without its own threads (usrsctp_init_nothreads),
 * feeds it the datagrams it reads from a UDP socket on loopback and sends
 * what it produces from the same thread. The parent sends an 8-byte stamp
 * every --interval-ms, the child echoes it, --count times. No DTLS (the
 * pad-probe measurement of the calls benchmark puts DTLS at ≈ 30 µs per
 * hop) and no ICE checks (once connected, ICE only forwards datagrams).
 *
 *   bench-sctp-rtt [--count N] [--interval-ms MS] [--unordered] [--json]
 *
 * Printed: p50 / p90 / p99 / max of the round trip, and with --json one
 * JSON line with the same figures in ms for scripts.
 */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <usrsctp.h>

#include "parley-bench-util.h"

#define SCTP_PORT 5000
#define PPID_BINARY 53          /* WebRTC's "binary" payload protocol id */

typedef struct {
  int udp_fd;
  struct sockaddr_in peer;
  struct socket *sock;          /* the connected (or accepted) SCTP socket */
  struct socket *listener;      /* the child's listening socket */
  guint64 last_timer_ns;
} Side;

static Side side;


/* usrsctp hands every packet it produces to this, on the calling thread. */
static int
conn_output (void    *addr,
             void    *buffer,
             size_t   length,
             uint8_t  tos,
             uint8_t  set_df)
{
  if (sendto (side.udp_fd, buffer, length, 0, (struct sockaddr *) &side.peer,
              sizeof side.peer) < 0)
    return errno;
  return 0;
}


static struct socket *
sctp_socket (void)
{
  struct socket *s = usrsctp_socket (AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
  struct sockaddr_conn local = { .sconn_family = AF_CONN, .sconn_port = htons (SCTP_PORT),
                                 .sconn_addr = &side };
  int one = 1;

  if (s == NULL)
    g_error ("usrsctp_socket: %s", g_strerror (errno));
  usrsctp_set_non_blocking (s, 1);
  /* As data channels set it: a message goes out at once. */
  usrsctp_setsockopt (s, IPPROTO_SCTP, SCTP_NODELAY, &one, sizeof one);
  if (usrsctp_bind (s, (struct sockaddr *) &local, sizeof local) != 0)
    g_error ("usrsctp_bind: %s", g_strerror (errno));
  return s;
}

/* Feeds usrsctp every datagram waiting on the UDP socket and runs its
 * timers; waits up to @timeout_ms for the first datagram. */
static void
pump (int timeout_ms)
{
  struct pollfd pfd = { .fd = side.udp_fd, .events = POLLIN };
  guint64 now;
  char buf[65536];

  if (poll (&pfd, 1, timeout_ms) > 0) {
    ssize_t n;

    while ((n = recv (side.udp_fd, buf, sizeof buf, 0)) > 0)
      usrsctp_conninput (&side, buf, (size_t) n, 0);
  }
  now = parley_bench_now_ns ();
  if (now - side.last_timer_ns >= 10000000) {
    usrsctp_handle_timers ((uint32_t) ((now - side.last_timer_ns) / 1000000));
    side.last_timer_ns = now;
  }
}

/* One message from the connected socket, or -1 if none is waiting. */
static ssize_t
receive (void  *buf,
         size_t len)
{
  struct sctp_rcvinfo info;
  socklen_t info_len = sizeof info, from_len = 0;
  unsigned int info_type = 0;
  int flags = 0;

  return usrsctp_recvv (side.sock, buf, len, NULL, &from_len, &info, &info_len, &info_type,
                        &flags);
}

static gboolean
send_message (const void *data,
              size_t      len,
              gboolean    unordered)
{
  struct sctp_sndinfo info = { .snd_sid = 1, .snd_ppid = htonl (PPID_BINARY),
                               .snd_flags = unordered ? SCTP_UNORDERED : 0 };

  return usrsctp_sendv (side.sock, data, len, NULL, 0, &info, sizeof info, SCTP_SENDV_SNDINFO,
                        0) == (ssize_t) len;
}

static G_GNUC_NORETURN void
echo_loop (gboolean unordered)
{
  side.listener = sctp_socket ();
  if (usrsctp_listen (side.listener, 1) != 0)
    g_error ("usrsctp_listen: %s", g_strerror (errno));
  while (side.sock == NULL) {
    pump (100);
    side.sock = usrsctp_accept (side.listener, NULL, NULL);
  }
  usrsctp_set_non_blocking (side.sock, 1);
  /* On the accepted socket too, whatever it inherits from the listener. */
  usrsctp_setsockopt (side.sock, IPPROTO_SCTP, SCTP_NODELAY, &(int) { 1 }, sizeof (int));
  for (;;) {
    char buf[2048];
    ssize_t n;

    pump (100);
    while ((n = receive (buf, sizeof buf)) > 0) {
      if (n == 1 && buf[0] == 'q')
        _exit (0);
      send_message (buf, (size_t) n, unordered);
    }
    if (n == 0)
      _exit (0);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- SCTP round trip on one thread "
                                                            "per process");
  g_autoptr(GError) error = NULL;
  ParleyBenchHist *hist = g_new0 (ParleyBenchHist, 1);
  int count = 500, interval_ms = 20;
  gboolean json = FALSE, unordered = FALSE;
  struct sockaddr_in parent_addr, child_addr;
  struct sockaddr_conn remote = { .sconn_family = AF_CONN, .sconn_port = htons (SCTP_PORT),
                                  .sconn_addr = &side };
  int parent_fd, child_fd, status = 0;
  guint64 max = 0, next, deadline;
  guint lost = 0;
  pid_t child;
  GOptionEntry entries[] = {
    { "count", 0, 0, G_OPTION_ARG_INT, &count, "Round trips (500)", "N" },
    { "interval-ms", 0, 0, G_OPTION_ARG_INT, &interval_ms,
      "Milliseconds between two pings (20, as the data channel benchmark)", "MS" },
    { "unordered", 0, 0, G_OPTION_ARG_NONE, &unordered, "Unordered messages", NULL },
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

  parley_bench_hist_reset (hist);
  parent_fd = parley_bench_udp_socket (&parent_addr, TRUE);
  child_fd = parley_bench_udp_socket (&child_addr, TRUE);
  child = fork ();
  if (child < 0)
    g_error ("fork: %s", g_strerror (errno));

  usrsctp_init_nothreads (0, conn_output, NULL);
  usrsctp_register_address (&side);
  side.last_timer_ns = parley_bench_now_ns ();
  if (child == 0) {
    close (parent_fd);
    side.udp_fd = child_fd;
    side.peer = parent_addr;
    echo_loop (unordered);
  }
  close (child_fd);
  side.udp_fd = parent_fd;
  side.peer = child_addr;

  /* The association. */
  side.sock = sctp_socket ();
  if (usrsctp_connect (side.sock, (struct sockaddr *) &remote, sizeof remote) != 0 &&
      errno != EINPROGRESS)
    g_error ("usrsctp_connect: %s", g_strerror (errno));
  deadline = parley_bench_now_ns () + 10 * G_GUINT64_CONSTANT (1000000000);
  for (;;) {
    struct sctp_status state = { 0 };
    socklen_t len = sizeof state;

    if (usrsctp_getsockopt (side.sock, IPPROTO_SCTP, SCTP_STATUS, &state, &len) == 0 &&
        state.sstat_state == SCTP_ESTABLISHED)
      break;
    if (parley_bench_now_ns () > deadline)
      g_error ("The SCTP association did not come up");
    pump (10);
  }

  next = parley_bench_now_ns ();
  for (int i = 0; i < count; i++) {
    guint64 stamp, back = 0, limit;
    gboolean got = FALSE;

    next += (guint64) interval_ms * 1000000;
    while (parley_bench_now_ns () < next)
      pump ((int) MAX (0, ((gint64) next - (gint64) parley_bench_now_ns ()) / 1000000));
    stamp = parley_bench_now_ns ();
    if (!send_message (&stamp, sizeof stamp, unordered))
      g_error ("usrsctp_sendv: %s", g_strerror (errno));
    limit = stamp + G_GUINT64_CONSTANT (1000000000);
    while (!got && parley_bench_now_ns () < limit) {
      ssize_t n;

      pump (1);
      while ((n = receive (&back, sizeof back)) == sizeof back)
        got |= back == stamp;
    }
    if (!got) {
      lost++;
      continue;
    }
    back = parley_bench_now_ns () - stamp;
    max = MAX (max, back);
    parley_bench_hist_add (hist, back);
  }
  send_message ("q", 1, unordered);
  for (int i = 0; i < 20; i++)
    pump (5);
  if (waitpid (child, &status, WNOHANG) <= 0) {
    kill (child, SIGKILL);
    waitpid (child, &status, 0);
  }
  usrsctp_close (side.sock);

  {
    g_autofree char *what = g_strdup_printf ("SCTP round trip, usrsctp on one thread per "
                                             "process, %d every %d ms", count, interval_ms);

    parley_bench_report_rtt (what, hist, max, lost, json);
  }
  g_free (hist);
  return lost == (guint) count ? 1 : 0;
}
