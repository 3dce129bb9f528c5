/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Measures the store under the chat workload of parley-server: durable
 * message throughput, the latency from parley_store_submit() to the batch
 * callback (which runs right after the fsyncing COMMIT, so it is the time a
 * sender waits for its ack) and the CPU time per message of the writer
 * thread and of the indexer thread, which maintains the message indexes
 * behind it (its time includes catching up after the run).
 *
 *   bench-store [--seconds N] [--rate MSGS_PER_SECOND] [--pairs N]
 *               [--producers N] [--window N] [--rtt US] [--no-receipts] [--random-ids]
 *               [--cpu N] [--dir DIR]
 *
 * Each producer thread plays the network thread of a server: it submits
 * MESSAGE ops from one user of a pair to the other and, one simulated round
 * trip (--rtt) after a message's batch came back, the RECEIVED op with
 * which the recipient acknowledges it. With --rate 0 (the default) the
 * producers keep at most --window messages in flight each, like the
 * senders of the chat benchmark; otherwise they pace themselves to the
 * given total rate. --cpu pins every thread to one CPU, as the chat
 * benchmark pins the server. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "parley-store.h"
#include "parley-envelope.h"

#include <glib/gstdio.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_PRODUCERS 64

static gint64 opt_seconds = 5;
static gint64 opt_rate = 0;
static gint opt_producers = 1;
static gint opt_pairs = 50;
static gint opt_window = 800;
static gint opt_rtt = 200;
static gint opt_content = 200;
static gint opt_cpu = -1;
static gboolean opt_no_receipts = FALSE;
static gboolean opt_random_ids = FALSE;
static char *opt_dir = NULL;

typedef struct {
  GMutex lock;
  GArray *latencies;      /* gint64 microseconds, MESSAGE ops */
  GArray *batch_sizes;    /* guint */
  guint64 messages;
  guint64 receipts;
  guint64 failed;
  /* Writer thread CPU time, sampled in the callback, which runs on it. */
  gint64 writer_user_us;
  gint64 writer_sys_us;
} Stats;

static Stats stats;

typedef struct {
  gint64 seq;
  guint pair;
  gint64 due;
} PendingReceipt;

typedef struct {
  ParleyStore *store;
  guint index;
  gint64 end;
  GAsyncQueue *completed;   /* ParleyStoreOp *, handed back by the writer */
  char **senders;           /* user ids, one per pair of this producer */
  char **recipients;
  guint n_pairs;
  guint64 submitted;
  guint in_flight;
} Producer;

static Producer producers[MAX_PRODUCERS];

static gint64
timeval_us (const struct timeval *tv)
{
  return (gint64) tv->tv_sec * G_USEC_PER_SEC + tv->tv_usec;
}

static void
batch_done_cb (ParleyStoreOp **ops,
               guint           n_ops,
               gpointer        user_data)
{
  gint64 now = g_get_monotonic_time ();
  struct rusage ru;

  getrusage (RUSAGE_THREAD, &ru);

  g_mutex_lock (&stats.lock);
  stats.writer_user_us = timeval_us (&ru.ru_utime);
  stats.writer_sys_us = timeval_us (&ru.ru_stime);
  for (guint i = 0; i < n_ops; i++) {
    ParleyStoreOp *op = ops[i];

    if (op->error != NULL) {
      if (stats.failed++ < 5)
        g_printerr ("op failed: %s\n", op->error->message);
    }
    if (op->kind == PARLEY_STORE_OP_MESSAGE) {
      gint64 latency = now - (gint64) op->caller_tag;

      g_array_append_val (stats.latencies, latency);
      stats.messages++;
    } else {
      stats.receipts++;
    }
  }
  g_array_append_val (stats.batch_sizes, n_ops);
  g_mutex_unlock (&stats.lock);

  for (guint i = 0; i < n_ops; i++) {
    Producer *p = &producers[GPOINTER_TO_UINT (ops[i]->caller_data) % MAX_PRODUCERS];

    g_async_queue_push (p->completed, ops[i]);
  }
}

static void
submit_message (Producer   *p,
                const char *content)
{
  ParleyStoreOp *op = parley_store_op_new (PARLEY_STORE_OP_MESSAGE);
  guint pair = p->submitted % p->n_pairs;

  op->user_id = g_strdup (p->senders[pair]);
  op->peer_id = g_strdup (p->recipients[pair]);
  /* Parley clients send time-ordered ids (UUIDv7); others may send random
   * UUIDs, which the index has to insert at random places. */
  if (opt_random_ids)
    op->message_id = g_uuid_string_random ();
  else
    op->message_id = parley_uuid7_new ();
  op->content = g_strdup (content);
  op->content_len = strlen (content);
  op->timestamp = g_get_real_time () / 1000;
  op->caller_data = GUINT_TO_POINTER (p->index + pair * MAX_PRODUCERS);
  op->caller_tag = g_get_monotonic_time ();
  p->submitted++;
  p->in_flight++;
  parley_store_submit (p->store, op);
}

static void
submit_receipt (Producer       *p,
                PendingReceipt *r)
{
  ParleyStoreOp *op = parley_store_op_new (PARLEY_STORE_OP_RECEIVED);

  op->user_id = g_strdup (p->recipients[r->pair]);
  op->seq = r->seq;
  op->caller_data = GUINT_TO_POINTER (p->index);
  op->caller_tag = g_get_monotonic_time ();
  parley_store_submit (p->store, op);
}

static gpointer
producer_thread (gpointer data)
{
  Producer *p = data;
  g_autoptr(GQueue) receipts = g_queue_new ();
  g_autofree char *content = g_strnfill (MAX (opt_content, 2), 'Q');
  gint64 start = g_get_monotonic_time ();
  double per_producer_rate = (double) opt_rate / opt_producers;
  guint64 outstanding_receipts = 0;

  content[0] = content[strlen (content) - 1] = '"';

  for (;;) {
    gint64 now = g_get_monotonic_time ();
    gint64 wake = now + 1000;
    gboolean sending = now < p->end;
    ParleyStoreOp *op;

    /* Completions: a committed message reaches its recipient, which
     * acknowledges it one round trip later. */
    while ((op = g_async_queue_try_pop (p->completed)) != NULL) {
      if (op->kind == PARLEY_STORE_OP_MESSAGE) {
        p->in_flight--;
        if (!opt_no_receipts && op->error == NULL) {
          PendingReceipt *r = g_new (PendingReceipt, 1);

          r->seq = op->seq;
          r->pair = GPOINTER_TO_UINT (op->caller_data) / MAX_PRODUCERS;
          r->due = now + opt_rtt;
          g_queue_push_tail (receipts, r);
          outstanding_receipts++;
        }
      } else {
        outstanding_receipts--;
      }
      parley_store_op_free (op);
    }

    while (!g_queue_is_empty (receipts)) {
      PendingReceipt *r = g_queue_peek_head (receipts);

      if (r->due > now) {
        wake = MIN (wake, r->due);
        break;
      }
      submit_receipt (p, r);
      g_free (g_queue_pop_head (receipts));
    }

    if (sending) {
      if (opt_rate > 0) {
        for (;;) {
          gint64 due = start + (gint64) (p->submitted * G_USEC_PER_SEC / per_producer_rate);

          if (due > now) {
            wake = MIN (wake, due);
            break;
          }
          submit_message (p, content);
        }
      } else {
        while (p->in_flight < (guint) opt_window)
          submit_message (p, content);
      }
    } else if (p->in_flight == 0 && outstanding_receipts == 0) {
      break;
    }

    now = g_get_monotonic_time ();
    if (wake > now) {
      op = g_async_queue_timeout_pop (p->completed, wake - now);
      if (op != NULL)
        g_async_queue_push_front (p->completed, op);
    }
  }

  return NULL;
}

static int
cmp_int64 (gconstpointer a,
           gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

static int
cmp_uint (gconstpointer a,
          gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;

  return (x > y) - (x < y);
}

static gint64
percentile (GArray *sorted,
            double  p)
{
  if (sorted->len == 0)
    return 0;
  return g_array_index (sorted, gint64, MIN (sorted->len - 1, (guint) (p * sorted->len)));
}

/* The bytes this process passed to write() and its kin so far. */
static gint64
written_bytes (void)
{
  g_autofree char *io = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/io", &io, NULL, NULL))
    return 0;
  line = strstr (io, "wchar:");
  return line != NULL ? g_ascii_strtoll (line + 6, NULL, 10) : 0;
}

/* The CPU time of this process's thread called @name, in µs, or -1. */
static gint64
thread_cpu_us (const char *name)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *tid;

  while (dir != NULL && (tid = g_dir_read_name (dir)) != NULL) {
    g_autofree char *comm_path = g_build_filename ("/proc/self/task", tid, "comm", NULL);
    g_autofree char *stat_path = g_build_filename ("/proc/self/task", tid, "schedstat", NULL);
    g_autofree char *comm = NULL;
    g_autofree char *stat = NULL;

    if (!g_file_get_contents (comm_path, &comm, NULL, NULL))
      continue;
    g_strchomp (comm);
    if (strcmp (comm, name) != 0)
      continue;
    if (!g_file_get_contents (stat_path, &stat, NULL, NULL))
      return -1;
    return g_ascii_strtoll (stat, NULL, 10) / 1000;
  }
  return -1;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GOptionContext) context = NULL;
  GOptionEntry entries[] = {
    { "seconds", 's', 0, G_OPTION_ARG_INT64, &opt_seconds, "Duration", "N" },
    { "rate", 'r', 0, G_OPTION_ARG_INT64, &opt_rate, "Total messages per second, 0 = max", "N" },
    { "producers", 'p', 0, G_OPTION_ARG_INT, &opt_producers, "Submitting threads", "N" },
    { "pairs", 'P', 0, G_OPTION_ARG_INT, &opt_pairs, "Sender/recipient pairs per producer", "N" },
    { "window", 'w', 0, G_OPTION_ARG_INT, &opt_window,
      "Messages in flight per producer without --rate", "N" },
    { "rtt", 't', 0, G_OPTION_ARG_INT, &opt_rtt,
      "Microseconds from a commit to the recipient's receipt", "US" },
    { "no-receipts", 0, 0, G_OPTION_ARG_NONE, &opt_no_receipts, "Only store messages", NULL },
    { "random-ids", 0, 0, G_OPTION_ARG_NONE, &opt_random_ids,
      "Random UUIDs as message ids instead of time-ordered ones (UUIDv7, as Parley clients "
      "send)", NULL },
    { "content-size", 0, 0, G_OPTION_ARG_INT, &opt_content, "Bytes of content", "N" },
    { "cpu", 0, 0, G_OPTION_ARG_INT, &opt_cpu, "Pin every thread to this CPU", "N" },
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt_dir, "Directory for the database", "DIR" },
    { NULL }
  };
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  ParleyStore *store;
  GThread *threads[MAX_PRODUCERS];
  gint64 t0, t1, end, ckpt_us, index_us, index_catchup_us, w0, w1;
  struct rusage ru0, ru1;
  double seconds, writer_us, process_us;
  const char *suffixes[] = { "", "-wal", "-shm", "-index", "-index-wal", "-index-shm" };

  context = g_option_context_new ("- benchmark the Parley store");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  opt_producers = CLAMP (opt_producers, 1, MAX_PRODUCERS);
  opt_pairs = CLAMP (opt_pairs, 1, 100000);
  opt_window = MAX (opt_window, 1);
  opt_rtt = MAX (opt_rtt, 0);

  if (opt_cpu >= 0) {
    cpu_set_t set;

    CPU_ZERO (&set);
    CPU_SET (opt_cpu, &set);
    if (sched_setaffinity (0, sizeof set, &set) != 0)
      g_printerr ("Cannot pin to CPU %d\n", opt_cpu);
  }

  if (opt_dir != NULL) {
    dir = g_build_filename (opt_dir, "parley-bench-XXXXXX", NULL);
    if (g_mkdtemp (dir) == NULL)
      g_clear_pointer (&dir, g_free);
  } else {
    dir = g_dir_make_tmp ("parley-bench-XXXXXX", &error);
  }
  if (dir == NULL) {
    g_printerr ("Cannot create a temporary directory\n");
    return 1;
  }
  path = g_build_filename (dir, "bench.db", NULL);

  g_mutex_init (&stats.lock);
  stats.latencies = g_array_sized_new (FALSE, FALSE, sizeof (gint64), 1 << 20);
  stats.batch_sizes = g_array_new (FALSE, FALSE, sizeof (guint));

  store = parley_store_open (path, batch_done_cb, NULL, &error);
  if (store == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }

  for (gint i = 0; i < opt_producers; i++) {
    Producer *p = &producers[i];

    p->store = store;
    p->index = i;
    p->completed = g_async_queue_new ();
    p->n_pairs = opt_pairs;
    p->senders = g_new0 (char *, opt_pairs + 1);
    p->recipients = g_new0 (char *, opt_pairs + 1);
    for (gint j = 0; j < opt_pairs; j++) {
      g_autofree char *a = g_strdup_printf ("s%d.%d", i, j);
      g_autofree char *b = g_strdup_printf ("r%d.%d", i, j);

      if (!parley_store_create_user (store, a, "$hash$", &p->senders[j], &error) ||
          !parley_store_create_user (store, b, "$hash$", &p->recipients[j], &error)) {
        g_printerr ("%s\n", error->message);
        return 1;
      }
    }
  }

  getrusage (RUSAGE_SELF, &ru0);
  w0 = written_bytes ();
  t0 = g_get_monotonic_time ();
  end = t0 + opt_seconds * G_USEC_PER_SEC;
  for (gint i = 0; i < opt_producers; i++) {
    producers[i].end = end;
    threads[i] = g_thread_new ("producer", producer_thread, &producers[i]);
  }
  for (gint i = 0; i < opt_producers; i++)
    g_thread_join (threads[i]);
  t1 = g_get_monotonic_time ();
  getrusage (RUSAGE_SELF, &ru1);
  w1 = written_bytes ();
  ckpt_us = thread_cpu_us ("parley-ckpt");
  /* The indexer runs behind the writer; count what it needs to catch up. */
  index_catchup_us = g_get_monotonic_time ();
  parley_store_flush_index (store);
  index_catchup_us = g_get_monotonic_time () - index_catchup_us;
  index_us = thread_cpu_us ("parley-index");
  parley_store_close (store);

  g_array_sort (stats.latencies, cmp_int64);
  g_array_sort (stats.batch_sizes, cmp_uint);
  seconds = (t1 - t0) / 1e6;
  writer_us = stats.writer_user_us + stats.writer_sys_us;
  process_us = timeval_us (&ru1.ru_utime) - timeval_us (&ru0.ru_utime) +
               timeval_us (&ru1.ru_stime) - timeval_us (&ru0.ru_stime);

  g_print ("database:      %s\n", path);
  g_print ("workload:      %d producer(s) x %d pairs, %s, %s\n", opt_producers, opt_pairs,
           opt_rate > 0 ? "paced" : "closed loop", opt_no_receipts ? "no receipts" :
           "a receipt per message");
  if (opt_rate > 0)
    g_print ("rate:          %" G_GINT64_FORMAT " msgs/s asked\n", opt_rate);
  else
    g_print ("window:        %d messages in flight per producer\n", opt_window);
  g_print ("durable msgs:  %" G_GUINT64_FORMAT " in %.2f s = %.0f msgs/s, %" G_GUINT64_FORMAT
           " receipts (%" G_GUINT64_FORMAT " failed ops)\n", stats.messages, seconds,
           stats.messages / seconds, stats.receipts, stats.failed);
  g_print ("batches:       %u, ops per batch p50 %u, max %u\n", stats.batch_sizes->len,
           stats.batch_sizes->len ? g_array_index (stats.batch_sizes, guint,
                                                   stats.batch_sizes->len / 2) : 0,
           stats.batch_sizes->len ? g_array_index (stats.batch_sizes, guint,
                                                   stats.batch_sizes->len - 1) : 0);
  g_print ("ack latency:   p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
           percentile (stats.latencies, 0.50) / 1000.0,
           percentile (stats.latencies, 0.99) / 1000.0,
           percentile (stats.latencies, 0.999) / 1000.0,
           percentile (stats.latencies, 1.0) / 1000.0);
  g_print ("writer CPU:    %.2f s (user %.2f, sys %.2f) = %.2f us per message\n",
           writer_us / 1e6, stats.writer_user_us / 1e6, stats.writer_sys_us / 1e6,
           stats.messages ? writer_us / stats.messages : 0.0);
  g_print ("indexer CPU:   %.2f s = %.2f us per message (caught up in %.1f ms after the run);"
           " writer + indexer %.2f us per message\n",
           index_us / 1e6, stats.messages ? index_us / (double) stats.messages : 0.0,
           index_catchup_us / 1000.0,
           stats.messages ? (writer_us + index_us) / stats.messages : 0.0);
  g_print ("process CPU:   %.2f s = %.2f us per message; checkpointer %.2f s\n",
           process_us / 1e6, stats.messages ? process_us / stats.messages : 0.0,
           ckpt_us / 1e6);

  g_print ("written:       %.1f MiB = %.0f bytes per message (WAL and checkpoints)\n",
           (w1 - w0) / 1048576.0, stats.messages ? (double) (w1 - w0) / stats.messages : 0.0);

  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *p = g_strconcat (path, suffixes[i], NULL);
    g_unlink (p);
  }
  g_rmdir (dir);
  for (gint i = 0; i < opt_producers; i++) {
    g_strfreev (producers[i].senders);
    g_strfreev (producers[i].recipients);
    g_async_queue_unref (producers[i].completed);
  }
  g_array_unref (stats.latencies);
  g_array_unref (stats.batch_sizes);
  g_mutex_clear (&stats.lock);

  return stats.failed == 0 ? 0 : 1;
}
