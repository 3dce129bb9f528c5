/* SPDX-License-Identifier: GPL-3.0-or-later */
/* How Parley's threads share a CPU. In the server: the ack path (the
 * network thread, the store's writer) against the deferrable work (the
 * indexer, the checkpointer). In the engine: the threads that carry data
 * channel messages and incoming packets against the media pipelines. */
#define G_LOG_DOMAIN "parley-sched"

#include "parley-sched.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The nice value of deferrable threads. */
#define DEFERRABLE_NICE 10

/* The time slice asked for by latency-critical threads. */
#define LATENCY_CRITICAL_SLICE_NS 100000

/* How long a deferrable thread computes before it lets the scheduler pick
 * again (parley_sched_give_way()). */
#define GIVE_WAY_INTERVAL_US 100

/* The SCHED_RR priority of real-time threads: the lowest band, below the
 * kernel's interrupt threads (50) and audio servers (PipeWire 88, JACK
 * 70 and up), above every thread of the normal classes. */
#define REALTIME_PRIORITY 10

/* struct sched_attr of sched_setattr(2); glibc 2.36 has no wrapper. */
struct parley_sched_attr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

/* [server] background-cpus: the CPUs deferrable threads may run on, a bit
 * per CPU; 0: wherever the process may. Set once before the store starts. */
static guint64 background_cpus;

/* The best ParleySchedGrant any thread got, for reports. */
static gint best_grant;

static ParleySchedGrant
record_grant (ParleySchedGrant grant)
{
  gint best = g_atomic_int_get (&best_grant);

  while ((gint) grant > best && !g_atomic_int_compare_and_exchange (&best_grant, best, grant))
    best = g_atomic_int_get (&best_grant);
  return grant;
}

static pid_t
current_tid (void)
{
  return (pid_t) syscall (SYS_gettid);
}

/* Reads the calling thread's scheduling. */
static gboolean
read_attr (struct parley_sched_attr *attr)
{
  memset (attr, 0, sizeof *attr);
  return syscall (SYS_sched_getattr, current_tid (), attr, sizeof *attr, 0) == 0;
}

/* Sets the calling thread's slice (0: the kernel's default), keeping the
 * rest of @attr as read_attr() gave it. */
static gboolean
write_slice (struct parley_sched_attr *attr,
             guint64                   slice_ns)
{
  attr->size = sizeof *attr;
  attr->sched_flags = 0;
  attr->sched_runtime = slice_ns;
  return syscall (SYS_sched_setattr, current_tid (), attr, 0) == 0;
}

/**
 * parley_sched_latency_critical:
 * @what: the thread, for the log
 *
 * Asks for a short time slice (0.1 ms) for the calling thread, at its
 * nice value. Under EEVDF (Linux 6.6 on; custom slices since 6.12) a
 * thread's slice sets its virtual deadline, so a short one makes the
 * thread, once woken, preempt a deferrable thread at once instead of
 * waiting out that thread's slice (chat x1 benchmark, for the network
 * thread and the writer: ack p99 5.8 - 5.9 ms against 6.3 - 6.6 ms; the
 * writer no longer asks, see store_writer_thread()). The thread is not
 * favoured over others in CPU share. Older kernels ignore the slice; no
 * privilege is needed.
 *
 * Returns: %PARLEY_SCHED_SHORT_SLICE if the kernel took the slice,
 *   %PARLEY_SCHED_REALTIME for a real-time thread (left alone), otherwise
 *   %PARLEY_SCHED_NORMAL
 */
ParleySchedGrant
parley_sched_latency_critical (const char *what)
{
  struct parley_sched_attr attr;

  /* Only the slice changes: policy and nice value stay, and a thread an
   * operator made real-time is left alone. */
  if (!read_attr (&attr)) {
    g_debug ("Cannot read the %s's scheduling: %s", what, g_strerror (errno));
    return record_grant (PARLEY_SCHED_NORMAL);
  }
  if (attr.sched_policy == SCHED_FIFO || attr.sched_policy == SCHED_RR)
    return record_grant (PARLEY_SCHED_REALTIME);
  if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH)
    return record_grant (PARLEY_SCHED_NORMAL);
  if (!write_slice (&attr, LATENCY_CRITICAL_SLICE_NS)) {
    g_debug ("Cannot shorten the %s's time slice: %s", what, g_strerror (errno));
    return record_grant (PARLEY_SCHED_NORMAL);
  }
  /* Kernels without custom slices accept the call and keep their own. */
  if (!read_attr (&attr) || attr.sched_runtime != LATENCY_CRITICAL_SLICE_NS)
    return record_grant (PARLEY_SCHED_NORMAL);
  return record_grant (PARLEY_SCHED_SHORT_SLICE);
}

/**
 * parley_sched_realtime:
 * @what: the thread, for the log
 *
 * Asks for real-time priority (SCHED_RR at REALTIME_PRIORITY, not
 * inherited by child processes) for the calling thread, which must only
 * ever run briefly between waits: the threads that carry a call's data
 * channel messages and incoming packets. On a machine whose CPUs the media
 * pipelines keep busy (a video call on two cores), a woken thread of the
 * normal class waits for an encoder's time slice; a message crosses about
 * eight threads each way inside webrtcbin, and the data channel round trip
 * had a p99 of 9 - 13 ms, against 1.4 - 3.1 ms with these threads
 * real-time (call benchmark). Without the privilege (CAP_SYS_NICE or an
 * RLIMIT_RTPRIO of at least REALTIME_PRIORITY), the thread gets a short
 * time slice instead (parley_sched_latency_critical()).
 *
 * Returns: what the thread got
 */
ParleySchedGrant
parley_sched_realtime (const char *what)
{
  struct sched_param param = { .sched_priority = REALTIME_PRIORITY };
  int policy = sched_getscheduler (0);

  if (policy == SCHED_FIFO || policy == SCHED_RR)
    return record_grant (PARLEY_SCHED_REALTIME);
  if (sched_setscheduler (0, SCHED_RR | SCHED_RESET_ON_FORK, &param) == 0)
    return record_grant (PARLEY_SCHED_REALTIME);
  g_debug ("No real-time priority for the %s (%s); asking for a short time slice", what,
           g_strerror (errno));
  return parley_sched_latency_critical (what);
}

/**
 * parley_sched_reset:
 * @what: the thread, for the log
 *
 * Undoes parley_sched_realtime() and parley_sched_latency_critical() for
 * the calling thread (the policy and slice they set, nothing else): for a
 * thread that goes back to a pool, from which other work may take it.
 */
void
parley_sched_reset (const char *what)
{
  struct parley_sched_attr attr;

  if (!read_attr (&attr))
    return;
  if (attr.sched_policy == SCHED_RR && attr.sched_priority == REALTIME_PRIORITY) {
    struct sched_param param = { .sched_priority = 0 };

    if (sched_setscheduler (0, SCHED_OTHER | SCHED_RESET_ON_FORK, &param) != 0)
      g_warning ("Cannot end the real-time priority of the %s: %s", what, g_strerror (errno));
  } else if ((attr.sched_policy == SCHED_OTHER || attr.sched_policy == SCHED_BATCH) &&
             attr.sched_runtime == LATENCY_CRITICAL_SLICE_NS) {
    if (!write_slice (&attr, 0))
      g_debug ("Cannot reset the %s's time slice: %s", what, g_strerror (errno));
  }
}

/**
 * parley_sched_best_grant:
 *
 * Returns: the best that parley_sched_latency_critical() or
 *   parley_sched_realtime() got for any thread of this process so far
 */
ParleySchedGrant
parley_sched_best_grant (void)
{
  return (ParleySchedGrant) g_atomic_int_get (&best_grant);
}

/**
 * parley_sched_grant_to_string:
 * @grant: a grant
 *
 * Returns: "normal", "short-slice" or "realtime"
 */
const char *
parley_sched_grant_to_string (ParleySchedGrant grant)
{
  switch (grant) {
  case PARLEY_SCHED_REALTIME:
    return "realtime";
  case PARLEY_SCHED_SHORT_SLICE:
    return "short-slice";
  case PARLEY_SCHED_NORMAL:
  default:
    return "normal";
  }
}

/**
 * parley_sched_deferrable:
 * @what: the thread, for the log
 *
 * Lowers the calling thread's priority to nice 10: its work (indexing,
 * checkpoints) should run in the idle time of the ack path and give way to
 * it, but it must make progress even when other processes keep the CPUs
 * busy, since the writer waits for the indexer once it falls far behind.
 * SCHED_IDLE would give way sooner, but it starves: with a busy loop on
 * the server's CPU, the chat x1 benchmark fell to 1,230 msg/s with acks
 * held up for 15 s (the indexer, holding the tail's lock or far behind,
 * got 0.3 % of the CPU); at nice 10 it ran at 20,000 msg/s.
 */
void
parley_sched_deferrable (const char *what)
{
  if (setpriority (PRIO_PROCESS, (id_t) current_tid (), DEFERRABLE_NICE) != 0)
    g_debug ("Cannot lower the %s's priority: %s", what, g_strerror (errno));

  if (background_cpus != 0) {
    cpu_set_t set;

    CPU_ZERO (&set);
    for (guint cpu = 0; cpu < 64; cpu++) {
      if (background_cpus & (G_GUINT64_CONSTANT (1) << cpu))
        CPU_SET (cpu, &set);
    }
    if (sched_setaffinity (0, sizeof set, &set) != 0)
      g_warning ("Cannot move the %s to the background CPUs: %s", what, g_strerror (errno));
  }
}

/**
 * parley_sched_cpus_with_main:
 *
 * Returns: how many CPUs the calling thread and the process's main thread
 * may run on between them (1 when everything is pinned to one CPU, as
 * `taskset -c 0` does; the thread's own CPUs after
 * parley_sched_deferrable() with background CPUs count too).
 */
guint
parley_sched_cpus_with_main (void)
{
  cpu_set_t own, main_thread, both;

  if (sched_getaffinity (0, sizeof own, &own) != 0 ||
      sched_getaffinity (getpid (), sizeof main_thread, &main_thread) != 0)
    return 1;
  CPU_OR (&both, &own, &main_thread);
  return (guint) CPU_COUNT (&both);
}

/**
 * parley_sched_give_way:
 *
 * Called often by a deferrable thread (parley_sched_deferrable()) from
 * its long computations: once it has run GIVE_WAY_INTERVAL_US since it
 * last gave way, it yields the CPU, so that the scheduler picks again. A
 * thread of the ack path that another (a soft interrupt's thread, say)
 * preempted stays runnable, not woken, and the scheduler only picks again
 * at a tick (4 ms here) or when the running thread sleeps or yields: with
 * the indexer on the CPU meanwhile, the chat benchmark's clients sat there
 * for whole ticks, dozens of times a second, with every message in flight
 * waiting and the other CPU idle. A yield moves the caller's deadline on,
 * so a waiting thread that has not run more than its share gets the CPU;
 * with nobody waiting, it costs one system call per interval.
 */
void
parley_sched_give_way (void)
{
  static _Thread_local gint64 since;
  gint64 now = g_get_monotonic_time ();

  if (now - since < GIVE_WAY_INTERVAL_US)
    return;
  if (since != 0) {
    sched_yield ();
    now = g_get_monotonic_time ();
  }
  since = now;
}

/**
 * parley_sched_parse_cpus:
 * @list: CPUs as in taskset(1) -c: numbers and ranges separated by commas
 *   ("0-1", "1,3")
 * @cpus: (out): a bit per CPU
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @list names at least one CPU, all below 64
 */
gboolean
parley_sched_parse_cpus (const char  *list,
                         guint64     *cpus,
                         GError     **error)
{
  g_auto (GStrv) parts = g_strsplit (list, ",", -1);
  guint64 result = 0;

  for (guint i = 0; parts[i] != NULL; i++) {
    g_auto (GStrv) range = g_strsplit (g_strstrip (parts[i]), "-", 2);
    guint64 first, last;

    if (range[0] == NULL ||
        !g_ascii_string_to_unsigned (range[0], 10, 0, 63, &first, NULL) ||
        (range[1] != NULL && !g_ascii_string_to_unsigned (range[1], 10, first, 63, &last, NULL))) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "Not a CPU list (numbers 0-63 and ranges such as 0-3, separated by "
                   "commas): \"%s\"", list);
      return FALSE;
    }
    if (range[1] == NULL)
      last = first;
    for (guint64 cpu = first; cpu <= last; cpu++)
      result |= G_GUINT64_CONSTANT (1) << cpu;
  }
  if (result == 0) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "No CPU in \"%s\"", list);
    return FALSE;
  }
  *cpus = result;
  return TRUE;
}

/**
 * parley_sched_set_background_cpus:
 * @cpus: a bit per CPU, or 0 for wherever the process may run
 *
 * Where deferrable threads started from now on run ([server]
 * background-cpus). An operator who gives the ack path a CPU of its own
 * (taskset, systemd's CPUAffinity) can let the indexer and the checkpointer
 * use the others; their affinity is set explicitly, so it may be wider
 * than the process's.
 */
void
parley_sched_set_background_cpus (guint64 cpus)
{
  background_cpus = cpus;
}
