/* SPDX-License-Identifier: GPL-3.0-or-later */
/* How Parley's threads ask to be scheduled (parley-sched.c), read back
 * from the kernel. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>

#include "parley-sched.h"

static int
thread_nice (void)
{
  errno = 0;
  return getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid));
}

/* The thread's slice in ns from /proc (kernels with EEVDF and scheduler
 * debugging), or -1. */
static gint64
thread_slice (void)
{
  g_autofree char *path =
    g_strdup_printf ("/proc/self/task/%ld/sched", (long) syscall (SYS_gettid));
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (g_str_has_prefix (lines[i], "se.slice")) {
      const char *colon = strchr (lines[i], ':');

      return colon ? g_ascii_strtoll (colon + 1, NULL, 10) : -1;
    }
  }
  return -1;
}

static gpointer
latency_critical_thread (gpointer data)
{
  gint64 *slice = data;
  int nice_before = MAX (thread_nice (), 3);
  ParleySchedGrant grant;

  /* The nice value is kept (raising it needs no privilege). */
  g_assert_cmpint (setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), nice_before), ==, 0);
  grant = parley_sched_latency_critical ("test");
  g_assert_cmpint (thread_nice (), ==, nice_before);
  *slice = thread_slice ();
  /* What it says it got is what the kernel shows. */
  g_assert_cmpint (grant, ==, *slice == 100000 ? PARLEY_SCHED_SHORT_SLICE : PARLEY_SCHED_NORMAL);
  return NULL;
}

static void
test_latency_critical (void)
{
  gint64 slice = -1;
  gint64 default_slice = thread_slice ();

  g_thread_join (g_thread_new ("latency-critical", latency_critical_thread, &slice));
  if (slice < 0 || default_slice < 0) {
    g_test_skip ("This kernel does not show time slices in /proc");
    return;
  }
  if (slice == default_slice) {
    g_test_skip ("This kernel has no custom time slices (Linux 6.12 on)");
    return;
  }
  g_assert_cmpint (slice, ==, 100000);
}

/* Whether this process has CAP_SYS_NICE (bit 23 of CapEff). */
static gboolean
has_cap_sys_nice (void)
{
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &text, NULL, NULL))
    return FALSE;
  line = strstr (text, "\nCapEff:");
  return line != NULL && (g_ascii_strtoull (line + 8, NULL, 16) & (G_GUINT64_CONSTANT (1) << 23));
}

typedef struct {
  ParleySchedGrant grant;
  int policy;
  int priority;
  gint64 slice;
  int reset_policy;
  gint64 reset_slice;
} RealtimeResult;

static gpointer
realtime_thread (gpointer data)
{
  RealtimeResult *r = data;
  struct sched_param param;

  r->grant = parley_sched_realtime ("test");
  r->policy = sched_getscheduler (0);
  g_assert_cmpint (sched_getparam (0, &param), ==, 0);
  r->priority = param.sched_priority;
  r->slice = thread_slice ();
  /* Asking again changes nothing. */
  g_assert_cmpint (parley_sched_realtime ("test"), ==, r->grant);
  /* Back to normal, as a pooled thread leaving a data path task. */
  parley_sched_reset ("test");
  r->reset_policy = sched_getscheduler (0) & ~SCHED_RESET_ON_FORK;
  r->reset_slice = thread_slice ();
  return NULL;
}

static gpointer
operator_realtime_thread (gpointer data)
{
  struct sched_param param = { .sched_priority = 20 };
  int *policy = data;

  /* A thread someone else made real-time at another priority is left
   * alone. */
  g_assert_cmpint (sched_setscheduler (0, SCHED_FIFO, &param), ==, 0);
  g_assert_cmpint (parley_sched_realtime ("test"), ==, PARLEY_SCHED_REALTIME);
  parley_sched_reset ("test");
  *policy = sched_getscheduler (0);
  g_assert_cmpint (sched_getparam (0, &param), ==, 0);
  g_assert_cmpint (param.sched_priority, ==, 20);
  return NULL;
}

/* Real-time where the process may (root, CAP_SYS_NICE or RLIMIT_RTPRIO),
 * for that thread only and not for its children; otherwise the short
 * slice. The grant reported is the kernel's. */
static void
test_realtime (void)
{
  RealtimeResult r = { 0 };
  struct rlimit limit;
  gboolean may;

  g_assert_cmpint (getrlimit (RLIMIT_RTPRIO, &limit), ==, 0);
  may = has_cap_sys_nice () || limit.rlim_cur >= 10;
  g_thread_join (g_thread_new ("realtime", realtime_thread, &r));
  if (r.grant == PARLEY_SCHED_REALTIME) {
    g_assert_cmpint (r.policy, ==, SCHED_RR | SCHED_RESET_ON_FORK);
    g_assert_cmpint (r.priority, ==, 10);
  } else {
    g_assert_false (may);
    g_assert_cmpint (r.policy, ==, SCHED_OTHER);
    g_assert_cmpint (r.grant, ==, r.slice == 100000 ? PARLEY_SCHED_SHORT_SLICE
                                                     : PARLEY_SCHED_NORMAL);
    g_test_message ("No real-time priority here (no CAP_SYS_NICE, RLIMIT_RTPRIO %lu): got %s",
                    (unsigned long) limit.rlim_cur, parley_sched_grant_to_string (r.grant));
  }
  /* Reset undoes either. */
  g_assert_cmpint (r.reset_policy, ==, SCHED_OTHER);
  if (r.grant == PARLEY_SCHED_SHORT_SLICE)
    g_assert_cmpint (r.reset_slice, !=, 100000);
  if (may) {
    int policy = -1;

    g_assert_cmpint (r.grant, ==, PARLEY_SCHED_REALTIME);
    g_thread_join (g_thread_new ("operator", operator_realtime_thread, &policy));
    g_assert_cmpint (policy, ==, SCHED_FIFO);
  }
  /* Only that thread. */
  g_assert_cmpint (sched_getscheduler (0), ==, SCHED_OTHER);
  g_assert_cmpint (parley_sched_best_grant (), >=, r.grant);
  g_assert_cmpstr (parley_sched_grant_to_string (r.grant), ==,
                   r.grant == PARLEY_SCHED_REALTIME ? "realtime"
                   : r.grant == PARLEY_SCHED_SHORT_SLICE ? "short-slice" : "normal");
}

static gpointer
deferrable_thread (gpointer data)
{
  int *nice = data;

  parley_sched_deferrable ("test");
  *nice = thread_nice ();
  return NULL;
}

static void
test_deferrable (void)
{
  int nice = 0;
  int own = thread_nice ();

  g_thread_join (g_thread_new ("deferrable", deferrable_thread, &nice));
  g_assert_cmpint (nice, ==, MAX (own, 10));
  /* Only that thread. */
  g_assert_cmpint (thread_nice (), ==, own);
}

typedef struct {
  int cpu;
  gboolean give_way;
  gint done;
  GArray *runs_us;   /* gint64: how long each run lasted */
  gint64 median_us;
  gint64 longest_us;
} GiveWay;

static void
pin_to (int cpu)
{
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  g_assert_cmpint (sched_setaffinity (0, sizeof set, &set), ==, 0);
}

/* Computes for 20 ms of its own CPU time, reading the clock all along: a
 * jump in the clock is a time off the CPU, which ends a run. */
static gpointer
give_way_deferrable (gpointer data)
{
  GiveWay *gw = data;
  gint64 ran = 0, run_start, last;

  pin_to (gw->cpu);
  parley_sched_deferrable ("test");
  run_start = last = g_get_monotonic_time ();
  while (ran < 20000) {
    gint64 now = g_get_monotonic_time ();

    if (now - last > 20) {
      gint64 run = last - run_start;

      g_array_append_val (gw->runs_us, run);
      run_start = now;
    } else {
      ran += now - last;
    }
    last = now;
    if (gw->give_way)
      parley_sched_give_way ();
  }
  g_atomic_int_set (&gw->done, 1);
  return NULL;
}

/* Keeps the same CPU busy at the normal priority until the deferrable
 * thread is done. */
static gpointer
give_way_busy (gpointer data)
{
  GiveWay *gw = data;

  pin_to (gw->cpu);
  while (!g_atomic_int_get (&gw->done))
    ;
  return NULL;
}

static int
compare_runs (gconstpointer a,
              gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

static GiveWay
give_way_run (gboolean give_way)
{
  GiveWay gw = { .cpu = sched_getcpu (), .give_way = give_way };
  g_autoptr(GArray) runs = g_array_new (FALSE, FALSE, sizeof (gint64));
  GThread *busy, *deferrable;

  gw.runs_us = runs;
  busy = g_thread_new ("busy", give_way_busy, &gw);
  deferrable = g_thread_new ("deferrable", give_way_deferrable, &gw);
  g_thread_join (deferrable);
  g_thread_join (busy);
  g_assert_cmpuint (runs->len, >, 0);
  g_array_sort (runs, compare_runs);
  gw.median_us = g_array_index (runs, gint64, runs->len / 2);
  gw.longest_us = g_array_index (runs, gint64, runs->len - 1);
  gw.runs_us = NULL;
  g_test_message ("%s: %u runs, median %" G_GINT64_FORMAT " us, longest %" G_GINT64_FORMAT " us",
                  give_way ? "giving way" : "not giving way", runs->len, gw.median_us,
                  gw.longest_us);
  return gw;
}

/* A deferrable thread that calls parley_sched_give_way() does not keep the
 * CPU from a runnable thread for long: it runs 0.1 ms, then the other one
 * gets the CPU, however long the scheduler's own slices are (now and then
 * it runs on, when the other one has had more than its share, or other
 * processes share the CPU: the median tells). Without the calls (the
 * comparison), it runs in whole slices or ticks. */
static void
test_give_way (void)
{
  GiveWay with, without;

  if (thread_nice () >= 10) {
    g_test_skip ("The test runs at nice 10 or lower already");
    return;
  }
  with = give_way_run (TRUE);
  without = give_way_run (FALSE);
  g_assert_cmpint (with.median_us, <, 300);
  if (without.median_us < 300)
    g_test_message ("This kernel's scheduler ends a deferrable thread's runs early by itself");
}

static void
test_parse_cpus (void)
{
  const struct {
    const char *list;
    guint64 cpus;
  } good[] = {
    { "0", 0x1 }, { "1", 0x2 }, { "0-1", 0x3 }, { "1,3-4", 0x1a }, { " 2 , 5 ", 0x24 },
    { "63", G_GUINT64_CONSTANT (1) << 63 },
  };
  const char *bad[] = { "", "x", "1-", "-1", "3-1", "64", "0,,1", "1.5", "0-70" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++) {
    g_autoptr (GError) error = NULL;
    guint64 cpus = 0;

    g_assert_true (parley_sched_parse_cpus (good[i].list, &cpus, &error));
    g_assert_no_error (error);
    g_assert_cmphex (cpus, ==, good[i].cpus);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    guint64 cpus = 0;

    g_test_message ("CPU list: \"%s\"", bad[i]);
    g_assert_false (parley_sched_parse_cpus (bad[i], &cpus, &error));
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, bad[i]));
  }
}

static gpointer
affinity_thread (gpointer data)
{
  cpu_set_t *set = data;

  parley_sched_deferrable ("test");
  g_assert_cmpint (sched_getaffinity (0, sizeof *set, set), ==, 0);
  return NULL;
}

/* The first CPU of @set after @after (-1: the first of all) among the 64
 * that background-cpus can name, or -1. */
static int
next_cpu (const cpu_set_t *set,
          int              after)
{
  for (int i = after + 1; i < 64; i++) {
    if (CPU_ISSET (i, set))
      return i;
  }
  return -1;
}

/* A deferrable thread moves to the background CPUs, also beyond the
 * process's own affinity; the caller's stays. */
static void
test_background_cpus (void)
{
  cpu_set_t own, narrow, set;
  int cpu;

  g_assert_cmpint (sched_getaffinity (0, sizeof own, &own), ==, 0);
  cpu = next_cpu (&own, -1);
  if (CPU_COUNT (&own) < 2) {
    g_test_skip ("Needs two CPUs");
    return;
  }
  /* The test thread narrowed to one CPU; the background set is all of ours. */
  CPU_ZERO (&narrow);
  CPU_SET (cpu, &narrow);
  g_assert_cmpint (sched_setaffinity (0, sizeof narrow, &narrow), ==, 0);
  {
    guint64 bits = 0;

    for (int i = 0; i < 64; i++) {
      if (CPU_ISSET (i, &own))
        bits |= G_GUINT64_CONSTANT (1) << i;
    }
    parley_sched_set_background_cpus (bits);
  }
  g_thread_join (g_thread_new ("background", affinity_thread, &set));
  parley_sched_set_background_cpus (0);
  g_assert_true (CPU_EQUAL (&set, &own));
  g_assert_cmpint (sched_getaffinity (0, sizeof set, &set), ==, 0);
  g_assert_true (CPU_EQUAL (&set, &narrow));
  g_assert_cmpint (sched_setaffinity (0, sizeof own, &own), ==, 0);
}

static gpointer
cpus_with_main_thread (gpointer data)
{
  parley_sched_deferrable ("test thread");
  return GUINT_TO_POINTER (parley_sched_cpus_with_main ());
}

/* Threads started on a process narrowed to one CPU count one CPU between
 * them and the main thread, unless they run on another one. */
static void
test_cpus_with_main (void)
{
  cpu_set_t own, narrow;
  int first, second;

  g_assert_cmpint (sched_getaffinity (0, sizeof own, &own), ==, 0);
  first = next_cpu (&own, -1);
  second = next_cpu (&own, first);
  if (second < 0) {
    g_test_skip ("Needs two CPUs");
    return;
  }
  g_assert_cmpuint (parley_sched_cpus_with_main (), ==, CPU_COUNT (&own));

  CPU_ZERO (&narrow);
  CPU_SET (first, &narrow);
  g_assert_cmpint (sched_setaffinity (0, sizeof narrow, &narrow), ==, 0);
  g_assert_cmpuint (parley_sched_cpus_with_main (), ==, 1);
  /* Inherits the main thread's one CPU. */
  g_assert_cmpuint (GPOINTER_TO_UINT (g_thread_join (g_thread_new ("same", cpus_with_main_thread,
                                                                    NULL))), ==, 1);
  /* Moved to the same CPU, then to another one. */
  parley_sched_set_background_cpus (G_GUINT64_CONSTANT (1) << first);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_thread_join (g_thread_new ("first", cpus_with_main_thread,
                                                                    NULL))), ==, 1);
  parley_sched_set_background_cpus (G_GUINT64_CONSTANT (1) << second);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_thread_join (g_thread_new ("second", cpus_with_main_thread,
                                                                    NULL))), ==, 2);
  parley_sched_set_background_cpus (0);
  g_assert_cmpint (sched_setaffinity (0, sizeof own, &own), ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sched/latency-critical", test_latency_critical);
  g_test_add_func ("/sched/realtime", test_realtime);
  g_test_add_func ("/sched/deferrable", test_deferrable);
  g_test_add_func ("/sched/give-way", test_give_way);
  g_test_add_func ("/sched/parse-cpus", test_parse_cpus);
  g_test_add_func ("/sched/background-cpus", test_background_cpus);
  g_test_add_func ("/sched/cpus-with-main", test_cpus_with_main);
  return g_test_run ();
}
