/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bench-handoff.c: what handing a message from one thread to another costs
 * on this machine.
 *
 * A data channel message crosses a fixed number of threads inside webrtcbin
 * 1.22 (docs/benchmarks.md, "calls"), so the machine's wake-up latency sets a
 * floor under its round trip. This program measures that floor without
 * GStreamer: a token goes round a chain of threads, each woken by an eventfd
 * write of the one before, once every --gap µs (the data channel benchmark
 * pings every 20 ms, so the CPUs are idle between two tokens), and the time
 * from the first write to the last thread's wake-up is recorded.
 *
 *   bench-handoff [--hops N] [--count N] [--gap US]
 *
 * Printed: per layout (all threads on one CPU, alternating CPUs, unpinned)
 * the one-hop and the N-hop latency p50 / p90 / p99.
 */

#include "config.h"

#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "parley-bench-util.h"

#define MAX_HOPS 64

typedef enum {
  LAYOUT_ONE_CPU,
  LAYOUT_ALTERNATE,
  LAYOUT_UNPINNED,
} Layout;

typedef struct Chain Chain;

typedef struct {
  Chain *chain;
  guint index;
  int in_fd;              /* this thread waits here */
  pthread_t thread;
} Hop;

struct Chain {
  Hop hops[MAX_HOPS];
  guint n_hops;
  Layout layout;
  int done_fd;            /* the last thread writes here */
  guint64 first_ns;       /* the first hop's wake-up, written by thread 0 */
};


static void
pin_to (guint cpu)
{
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  if (pthread_setaffinity_np (pthread_self (), sizeof set, &set) != 0)
    g_printerr ("Cannot pin a thread to CPU %u\n", cpu);
}

static gboolean
wait_fd (int fd)
{
  guint64 value;

  while (read (fd, &value, sizeof value) != sizeof value) {
    if (errno != EINTR)
      return FALSE;
  }
  return value != G_MAXUINT64 - 1;
}

static void
post_fd (int      fd,
         guint64  value)
{
  while (write (fd, &value, sizeof value) != sizeof value && errno == EINTR)
    ;
}

static void *
hop_thread (void *data)
{
  Hop *hop = data;
  Chain *chain = hop->chain;
  int next_fd = hop->index + 1 < chain->n_hops ? chain->hops[hop->index + 1].in_fd
                                               : chain->done_fd;
  guint n_cpus = (guint) MAX (1, sysconf (_SC_NPROCESSORS_ONLN));

  if (chain->layout == LAYOUT_ONE_CPU)
    pin_to (0);
  else if (chain->layout == LAYOUT_ALTERNATE)
    pin_to ((hop->index + 1) % n_cpus);

  while (wait_fd (hop->in_fd)) {
    if (hop->index == 0)
      chain->first_ns = parley_bench_now_ns ();
    post_fd (next_fd, 1);
  }
  post_fd (next_fd, G_MAXUINT64 - 1);
  return NULL;
}

static void
run_layout (Layout      layout,
            const char *name,
            guint       n_hops,
            guint       count,
            guint       gap_us)
{
  Chain chain = { .n_hops = n_hops, .layout = layout };
  ParleyBenchHist *one = g_new0 (ParleyBenchHist, 1);
  ParleyBenchHist *all = g_new0 (ParleyBenchHist, 1);

  parley_bench_hist_reset (one);
  parley_bench_hist_reset (all);
  chain.done_fd = eventfd (0, EFD_CLOEXEC);
  for (guint i = 0; i < n_hops; i++) {
    chain.hops[i].chain = &chain;
    chain.hops[i].index = i;
    chain.hops[i].in_fd = eventfd (0, EFD_CLOEXEC);
    if (chain.hops[i].in_fd < 0 || chain.done_fd < 0)
      g_error ("eventfd: %s", g_strerror (errno));
  }
  for (guint i = 0; i < n_hops; i++)
    pthread_create (&chain.hops[i].thread, NULL, hop_thread, &chain.hops[i]);
  if (layout == LAYOUT_UNPINNED) {
    cpu_set_t set;

    CPU_ZERO (&set);
    for (long cpu = 0; cpu < sysconf (_SC_NPROCESSORS_ONLN); cpu++)
      CPU_SET (cpu, &set);
    pthread_setaffinity_np (pthread_self (), sizeof set, &set);
  } else {
    pin_to (0);
  }

  for (guint i = 0; i < count; i++) {
    guint64 start;

    g_usleep (gap_us);
    start = parley_bench_now_ns ();
    post_fd (chain.hops[0].in_fd, 1);
    if (!wait_fd (chain.done_fd))
      g_error ("The chain stopped");
    parley_bench_hist_add (one, chain.first_ns - start);
    parley_bench_hist_add (all, parley_bench_now_ns () - start);
  }
  post_fd (chain.hops[0].in_fd, G_MAXUINT64 - 1);
  for (guint i = 0; i < n_hops; i++) {
    pthread_join (chain.hops[i].thread, NULL);
    close (chain.hops[i].in_fd);
  }
  close (chain.done_fd);

  g_print ("%-14s one hand-off  p50 %6.1f  p90 %6.1f  p99 %7.1f us   "
           "%u hand-offs  p50 %7.1f  p90 %7.1f  p99 %7.1f us\n",
           name,
           parley_bench_hist_percentile (one, 0.50) / 1000.0,
           parley_bench_hist_percentile (one, 0.90) / 1000.0,
           parley_bench_hist_percentile (one, 0.99) / 1000.0,
           n_hops + 1,
           parley_bench_hist_percentile (all, 0.50) / 1000.0,
           parley_bench_hist_percentile (all, 0.90) / 1000.0,
           parley_bench_hist_percentile (all, 0.99) / 1000.0);
  g_free (one);
  g_free (all);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- thread hand-off latency");
  g_autoptr(GError) error = NULL;
  int hops = 15, count = 500, gap = 20000;
  GOptionEntry entries[] = {
    { "hops", 0, 0, G_OPTION_ARG_INT, &hops,
      "Threads in the chain (15: with the main thread's wake-up, the 16 hand-offs of a data "
      "channel round trip)", "N" },
    { "count", 0, 0, G_OPTION_ARG_INT, &count, "Tokens per layout (500)", "N" },
    { "gap", 0, 0, G_OPTION_ARG_INT, &gap, "Microseconds between two tokens (20000)", "US" },
    { NULL }
  };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (hops < 1 || hops > MAX_HOPS || count < 1 || gap < 0) {
    g_printerr ("--hops must be 1 to %d, --count positive, --gap not negative\n", MAX_HOPS);
    return 2;
  }

  g_print ("A token handed from thread to thread through eventfds, one every %d us, %d times "
           "per layout (%ld CPUs)\n", gap, count, sysconf (_SC_NPROCESSORS_ONLN));
  run_layout (LAYOUT_ONE_CPU, "one CPU", (guint) hops, (guint) count, (guint) gap);
  run_layout (LAYOUT_ALTERNATE, "CPUs alternate", (guint) hops, (guint) count, (guint) gap);
  run_layout (LAYOUT_UNPINNED, "unpinned", (guint) hops, (guint) count, (guint) gap);
  return 0;
}
