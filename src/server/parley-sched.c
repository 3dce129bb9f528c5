/* SPDX-License-Identifier: GPL-3.0-or-later */
/* How the server's threads share a CPU: the threads on the ack path (the
 * network thread, the store's writer) against the deferrable ones (the
 * indexer, the checkpointer). */
#define G_LOG_DOMAIN "parley-sched"

#include "parley-sched.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The nice value of deferrable threads. */
#define DEFERRABLE_NICE 10

/* The time slice asked for by latency-critical threads. */
#define LATENCY_CRITICAL_SLICE_NS 100000

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

static pid_t
current_tid (void)
{
  return (pid_t) syscall (SYS_gettid);
}

/**
 * parley_sched_latency_critical:
 * @what: the thread, for the log
 *
 * Asks for a short time slice (0.1 ms) for the calling thread, at its
 * nice value. Under EEVDF (Linux 6.6 on; custom slices since 6.12) a
 * thread's slice sets its virtual deadline, so a short one makes the
 * thread, once woken, preempt a deferrable thread at once instead of
 * waiting out that thread's slice (chat x1 benchmark: ack p99 5.8 - 5.9 ms
 * against 6.3 - 6.6 ms). The thread is not favoured over others in CPU
 * share. Older kernels ignore the slice; no privilege is needed.
 */
void
parley_sched_latency_critical (const char *what)
{
  struct parley_sched_attr attr;

  memset (&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.sched_policy = 0;   /* SCHED_OTHER */
  errno = 0;
  attr.sched_nice = getpriority (PRIO_PROCESS, (id_t) current_tid ());
  if (errno != 0)
    return;
  attr.sched_runtime = LATENCY_CRITICAL_SLICE_NS;
  if (syscall (SYS_sched_setattr, current_tid (), &attr, 0) != 0)
    g_debug ("Cannot shorten the %s's time slice: %s", what, g_strerror (errno));
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
}
