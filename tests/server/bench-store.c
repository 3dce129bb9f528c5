/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Measures the store's durable message throughput and the latency from
 * parley_store_submit() to the batch callback (which runs right after the
 * fsyncing COMMIT), the time a sender waits for its ack.
 *
 *   bench-store [--seconds N] [--rate MSGS_PER_SECOND] [--producers N]
 *
 * With --rate 0 (the default) the producers submit as fast as the store
 * accepts them while keeping at most --window messages in flight each;
 * otherwise they pace themselves to the given total rate. */

#include "parley-store.h"

#include <glib/gstdio.h>
#include <string.h>

static gint64 opt_seconds = 5;
static gint64 opt_rate = 0;
static gint opt_producers = 4;
static gint opt_window = 2000;
static char *opt_dir = NULL;

typedef struct {
  GMutex lock;
  GCond cond;
  GArray *latencies;      /* gint64 microseconds */
  GArray *batch_sizes;    /* guint */
  guint64 done;
  guint64 failed;
  gint in_flight[64];
} Stats;

static Stats stats;

static void
batch_done_cb (ParleyStoreOp **ops,
               guint           n_ops,
               gpointer        user_data)
{
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&stats.lock);
  for (guint i = 0; i < n_ops; i++) {
    gint64 latency = now - (gint64) ops[i]->caller_tag;

    g_array_append_val (stats.latencies, latency);
    if (ops[i]->error != NULL)
      stats.failed++;
    stats.in_flight[GPOINTER_TO_INT (ops[i]->caller_data)]--;
    parley_store_op_free (ops[i]);
  }
  g_array_append_val (stats.batch_sizes, n_ops);
  stats.done += n_ops;
  g_cond_broadcast (&stats.cond);
  g_mutex_unlock (&stats.lock);
}

typedef struct {
  ParleyStore *store;
  guint index;
  gint64 end;
  guint64 submitted;
} Producer;

static gpointer
producer_thread (gpointer data)
{
  Producer *p = data;
  g_autofree char *sender = g_strdup_printf ("%032x", p->index + 1);
  g_autofree char *recipient = g_strdup_printf ("%032x", p->index + 1001);
  /* About the size of a short encrypted text message. */
  g_autofree char *content = g_strnfill (300, 'Q');
  gint64 start = g_get_monotonic_time ();
  double per_producer_rate = (double) opt_rate / opt_producers;

  content[0] = content[299] = '"';

  while (g_get_monotonic_time () < p->end) {
    ParleyStoreOp *op;

    if (opt_rate > 0) {
      gint64 due = start + (gint64) (p->submitted * G_USEC_PER_SEC / per_producer_rate);
      gint64 now = g_get_monotonic_time ();
      if (due > now)
        g_usleep (MIN (due - now, 1000));
      if (g_get_monotonic_time () < due)
        continue;
    } else {
      g_mutex_lock (&stats.lock);
      while (stats.in_flight[p->index] >= opt_window)
        g_cond_wait (&stats.cond, &stats.lock);
      g_mutex_unlock (&stats.lock);
    }

    op = parley_store_op_new (PARLEY_STORE_OP_MESSAGE);
    op->user_id = g_strdup (sender);
    op->peer_id = g_strdup (recipient);
    op->message_id = g_strdup_printf ("m%" G_GUINT64_FORMAT, p->submitted);
    op->content = g_strdup (content);
    op->content_len = 300;
    op->timestamp = g_get_real_time () / 1000;
    op->caller_data = GINT_TO_POINTER (p->index);
    op->caller_tag = g_get_monotonic_time ();

    g_mutex_lock (&stats.lock);
    stats.in_flight[p->index]++;
    g_mutex_unlock (&stats.lock);

    parley_store_submit (p->store, op);
    p->submitted++;
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

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GOptionContext) context = NULL;
  GOptionEntry entries[] = {
    { "seconds", 's', 0, G_OPTION_ARG_INT64, &opt_seconds, "Duration", "N" },
    { "rate", 'r', 0, G_OPTION_ARG_INT64, &opt_rate, "Total messages per second, 0 = max", "N" },
    { "producers", 'p', 0, G_OPTION_ARG_INT, &opt_producers, "Submitting threads", "N" },
    { "window", 'w', 0, G_OPTION_ARG_INT, &opt_window, "Max in flight per producer", "N" },
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt_dir, "Directory for the database", "DIR" },
    { NULL }
  };
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  ParleyStore *store;
  Producer producers[64];
  GThread *threads[64];
  gint64 t0, t1, end;
  const char *suffixes[] = { "", "-wal", "-shm" };

  context = g_option_context_new ("- benchmark the Parley store");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  opt_producers = CLAMP (opt_producers, 1, 64);

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
  g_cond_init (&stats.cond);
  stats.latencies = g_array_sized_new (FALSE, FALSE, sizeof (gint64), 1 << 20);
  stats.batch_sizes = g_array_new (FALSE, FALSE, sizeof (guint));

  store = parley_store_open (path, batch_done_cb, NULL, &error);
  if (store == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }

  t0 = g_get_monotonic_time ();
  end = t0 + opt_seconds * G_USEC_PER_SEC;
  for (gint i = 0; i < opt_producers; i++) {
    producers[i] = (Producer) { store, i, end, 0 };
    threads[i] = g_thread_new ("producer", producer_thread, &producers[i]);
  }
  for (gint i = 0; i < opt_producers; i++)
    g_thread_join (threads[i]);
  parley_store_close (store);
  t1 = g_get_monotonic_time ();

  g_array_sort (stats.latencies, cmp_int64);
  g_array_sort (stats.batch_sizes, cmp_uint);

  g_print ("database:      %s\n", path);
  g_print ("producers:     %d, %s\n", opt_producers,
           opt_rate > 0 ? "paced" : "as fast as possible");
  g_print ("durable msgs:  %" G_GUINT64_FORMAT " in %.2f s = %.0f msgs/s (%" G_GUINT64_FORMAT
           " failed)\n", stats.done, (t1 - t0) / 1e6, stats.done / ((t1 - t0) / 1e6),
           stats.failed);
  g_print ("batches:       %u, size p50 %u, max %u\n", stats.batch_sizes->len,
           stats.batch_sizes->len ? g_array_index (stats.batch_sizes, guint,
                                                   stats.batch_sizes->len / 2) : 0,
           stats.batch_sizes->len ? g_array_index (stats.batch_sizes, guint,
                                                   stats.batch_sizes->len - 1) : 0);
  g_print ("ack latency:   p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
           percentile (stats.latencies, 0.50) / 1000.0,
           percentile (stats.latencies, 0.99) / 1000.0,
           percentile (stats.latencies, 0.999) / 1000.0,
           percentile (stats.latencies, 1.0) / 1000.0);

  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *p = g_strconcat (path, suffixes[i], NULL);
    g_unlink (p);
  }
  g_rmdir (dir);
  g_array_unref (stats.latencies);
  g_array_unref (stats.batch_sizes);

  return stats.failed == 0 ? 0 : 1;
}
