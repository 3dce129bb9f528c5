/* SPDX-License-Identifier: GPL-3.0-or-later */
/* How the server's threads ask to be scheduled (parley-sched.c), read back
 * from the kernel. */
#include <errno.h>
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
  int nice_before = thread_nice ();

  parley_sched_latency_critical ("test");
  /* The nice value is kept. */
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

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sched/latency-critical", test_latency_critical);
  g_test_add_func ("/sched/deferrable", test_deferrable);
  return g_test_run ();
}
