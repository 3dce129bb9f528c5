/* SPDX-License-Identifier: GPL-3.0-or-later */
/* How the server's threads ask to be scheduled (parley-sched.c), read back
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

  /* The nice value is kept (raising it needs no privilege). */
  g_assert_cmpint (setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), nice_before), ==, 0);
  parley_sched_latency_critical ("test");
  g_assert_cmpint (thread_nice (), ==, nice_before);
  *slice = thread_slice ();
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

/* A deferrable thread moves to the background CPUs, also beyond the
 * process's own affinity; the caller's stays. */
static void
test_background_cpus (void)
{
  cpu_set_t own, narrow, set;
  int cpu = -1;

  g_assert_cmpint (sched_getaffinity (0, sizeof own, &own), ==, 0);
  for (int i = 0; i < 64 && cpu < 0; i++) {
    if (CPU_ISSET (i, &own))
      cpu = i;
  }
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

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sched/latency-critical", test_latency_critical);
  g_test_add_func ("/sched/deferrable", test_deferrable);
  g_test_add_func ("/sched/parse-cpus", test_parse_cpus);
  g_test_add_func ("/sched/background-cpus", test_background_cpus);
  return g_test_run ();
}
