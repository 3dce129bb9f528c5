/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The store's indexer thread, which keeps the index file behind the log,
 * and the dedup filter in front of the index. */
#define G_LOG_DOMAIN "parley-store"

#include "parley-store-private.h"

#include "parley-sched.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The dedup filter (see DedupFilter). It has 32 bits per key when (re)built,
 * at least DEDUP_FILTER_MIN_BITS and at most DEDUP_FILTER_MAX_BITS, and is
 * rebuilt four times larger from the index once it holds a key per 8 bits;
 * at the largest size it simply fills up, which only makes false positives
 * (probes) more frequent, never a false negative. */
#define DEDUP_FILTER_K 4
#define DEDUP_FILTER_MIN_BITS (G_GUINT64_CONSTANT (1) << 16)
#define DEDUP_FILTER_MAX_BITS (G_GUINT64_CONSTANT (1) << 30)

static DedupFilter *
dedup_filter_new (guint64 n_keys_hint)
{
  DedupFilter *filter = g_new0 (DedupFilter, 1);
  guint64 bits = DEDUP_FILTER_MIN_BITS;

  while (bits < DEDUP_FILTER_MAX_BITS && bits / 32 < n_keys_hint)
    bits <<= 1;
  filter->words = g_new0 (guint64, bits / 64);
  filter->mask = bits / 64 - 1;
  filter->grow_at = bits < DEDUP_FILTER_MAX_BITS ? bits / 8 : G_MAXUINT64;
  return filter;
}

void
store_dedup_filter_free (DedupFilter *filter)
{
  if (filter == NULL)
    return;
  g_free (filter->words);
  g_free (filter);
}

/* Mixes a dedup key into 64 well-spread bits (the splitmix64 finaliser).
 * The low bits choose the word (at most 2^24 words), bits 32 and up the
 * bits within it. */
static guint64
dedup_filter_hash (gint64 sender,
                   gint64 id_hash)
{
  guint64 h = (guint64) id_hash ^ ((guint64) sender * G_GUINT64_CONSTANT (0x9e3779b97f4a7c15));

  h ^= h >> 30;
  h *= G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  h ^= h >> 27;
  h *= G_GUINT64_CONSTANT (0x94d049bb133111eb);
  h ^= h >> 31;
  return h;
}

static guint64
dedup_filter_bits (guint64 h)
{
  guint64 bits = 0;

  for (guint i = 0; i < DEDUP_FILTER_K; i++)
    bits |= G_GUINT64_CONSTANT (1) << ((h >> (32 + 6 * i)) & 63);
  return bits;
}

static void
dedup_filter_add (DedupFilter *filter,
                  gint64       sender,
                  gint64       id_hash)
{
  guint64 h = dedup_filter_hash (sender, id_hash);

  __atomic_fetch_or (&filter->words[h & filter->mask], dedup_filter_bits (h), __ATOMIC_RELAXED);
  filter->n_keys++;
}

gboolean
store_dedup_filter_may_contain (const DedupFilter *filter,
                                gint64             sender,
                                gint64             id_hash)
{
  guint64 h = dedup_filter_hash (sender, id_hash);
  guint64 bits = dedup_filter_bits (h);

  return (__atomic_load_n (&filter->words[h & filter->mask], __ATOMIC_RELAXED) & bits) == bits;
}

/* Builds a filter of every key in the dedup table of @db, sized for
 * @n_keys_hint keys (or as many as it finds, if more). Returns %NULL on a
 * database error. */
DedupFilter *
store_dedup_filter_load (sqlite3 *db,
                         guint64  n_keys_hint)
{
  g_autoptr(sqlite3_stmt) stmt = store_prepare (db, "SELECT sender, id_hash FROM dedup", FALSE);
  DedupFilter *filter;
  int rc;

  if (stmt == NULL)
    return NULL;
  filter = dedup_filter_new (n_keys_hint);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    if (filter->n_keys > filter->grow_at) {
      /* More keys than expected: start again, larger. */
      guint64 n = filter->n_keys * 4;

      store_dedup_filter_free (filter);
      sqlite3_reset (stmt);
      filter = dedup_filter_new (n);
      continue;
    }
    dedup_filter_add (filter, sqlite3_column_int64 (stmt, 0), sqlite3_column_int64 (stmt, 1));
  }
  if (rc != SQLITE_DONE) {
    store_dedup_filter_free (filter);
    return NULL;
  }
  return filter;
}



/* Indexer thread. */

/* Called by the comparison functions: sorting a transaction's entries
 * takes milliseconds, in which the indexer gives way now and then.
 * @data: the sort's count of comparisons. */
static void
sort_give_way (gpointer data)
{
  guint *compares = data;

  if (++*compares % 256 == 0)
    parley_sched_give_way ();
}

static int
compare_int64 (gint64 a,
               gint64 b)
{
  return (a > b) - (a < b);
}

static int
compare_by_sender_hash (gconstpointer x,
                        gconstpointer y,
                        gpointer      data)
{
  const TailMessage *a = *(TailMessage * const *) x, *b = *(TailMessage * const *) y;

  sort_give_way (data);

  if (a->key.sender != b->key.sender)
    return compare_int64 (a->key.sender, b->key.sender);
  if (a->key.id_hash != b->key.id_hash)
    return compare_int64 (a->key.id_hash, b->key.id_hash);
  return compare_int64 (a->seq, b->seq);
}

static int
compare_by_sender_seq (gconstpointer x,
                       gconstpointer y,
                       gpointer      data)
{
  const TailMessage *a = *(TailMessage * const *) x, *b = *(TailMessage * const *) y;

  sort_give_way (data);

  if (a->key.sender != b->key.sender)
    return compare_int64 (a->key.sender, b->key.sender);
  return compare_int64 (a->seq, b->seq);
}

static int
compare_by_recipient_seq (gconstpointer x,
                          gconstpointer y,
                          gpointer      data)
{
  const TailMessage *a = *(TailMessage * const *) x, *b = *(TailMessage * const *) y;

  sort_give_way (data);

  if (a->recipient != b->recipient)
    return compare_int64 (a->recipient, b->recipient);
  return compare_int64 (a->seq, b->seq);
}

/* Inserts the rows of @n_cols integers in @values with @insert (see
 * IndexerStatements), then empties @values. */
static gboolean
bulk_insert (sqlite3_stmt **insert,
             guint          n_cols,
             GArray        *values)
{
  guint n_rows = values->len / n_cols;
  const gint64 *v = (const gint64 *) values->data;
  gboolean ok = TRUE;

  for (guint row = 0; ok && row < n_rows;) {
    guint n = n_rows - row >= INDEX_BULK_ROWS ? INDEX_BULK_ROWS : 1;
    sqlite3_stmt *stmt = insert[n > 1];

    for (guint i = 0; i < n * n_cols; i++)
      sqlite3_bind_int64 (stmt, (int) i + 1, v[row * n_cols + i]);
    ok = store_step_done (stmt);
    row += n;
  }
  g_array_set_size (values, 0);
  return ok;
}

/* Writes @n_msgs messages and @n_receipts receipts of the tail to the index
 * in one transaction and advances meta to @to_seq and @to_receipt. */
static gboolean
indexer_apply (ParleyStore  *self,
               TailMessage **msgs,
               guint         n_msgs,
               TailReceipt **receipts,
               guint         n_receipts,
               gint64        from_seq,
               gint64        to_seq,
               gint64        to_receipt)
{
  IndexerStatements *is = &self->is;
  g_autoptr(GHashTable) delivered = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GArray) values = g_array_new (FALSE, FALSE, sizeof (gint64));
  TailMessage **sorted;
  guint compares = 0;
  gboolean ok;

  /* A message delivered before it was indexed never gets a pending row. A
   * receipt always refers to a message committed before it (or with it), so
   * one with seq > from_seq refers to a message of this batch. */
  for (guint i = 0; i < n_receipts; i++)
    if (receipts[i]->seq > from_seq)
      g_hash_table_add (delivered, &receipts[i]->seq);

  /* Each table's rows go in in key order, which walks its B-tree from page
   * to page instead of jumping around. */
  sorted = g_new (TailMessage *, n_msgs);
  if (n_msgs > 0)
    memcpy (sorted, msgs, n_msgs * sizeof (TailMessage *));

  ok = store_step_done (is->begin);
  g_qsort_with_data (sorted, n_msgs, sizeof (TailMessage *), compare_by_sender_hash, &compares);
  for (guint i = 0; i < n_msgs; i++) {
    gint64 row[] = { sorted[i]->key.sender, sorted[i]->key.id_hash, sorted[i]->seq,
                     sorted[i]->timestamp, sorted[i]->recipient };

    g_array_append_vals (values, row, G_N_ELEMENTS (row));
  }
  ok = ok && bulk_insert (is->insert_dedup, 5, values);
  g_qsort_with_data (sorted, n_msgs, sizeof (TailMessage *), compare_by_sender_seq, &compares);
  for (guint i = 0; i < n_msgs; i++) {
    gint64 row[] = { sorted[i]->key.sender, sorted[i]->seq };

    g_array_append_vals (values, row, G_N_ELEMENTS (row));
  }
  ok = ok && bulk_insert (is->insert_sent, 2, values);
  g_qsort_with_data (sorted, n_msgs, sizeof (TailMessage *), compare_by_recipient_seq, &compares);
  for (guint i = 0; i < n_msgs; i++) {
    gint64 row[] = { sorted[i]->recipient, sorted[i]->seq };

    g_array_append_vals (values, row, G_N_ELEMENTS (row));
  }
  ok = ok && bulk_insert (is->insert_received, 2, values);
  for (guint i = 0; i < n_msgs; i++) {
    gint64 row[] = { sorted[i]->recipient, sorted[i]->seq };

    if (!g_hash_table_contains (delivered, &sorted[i]->seq))
      g_array_append_vals (values, row, G_N_ELEMENTS (row));
  }
  ok = ok && bulk_insert (is->insert_pending, 2, values);
  g_free (sorted);
  for (guint i = 0; ok && i < n_receipts; i++) {
    if (receipts[i]->seq > from_seq)
      continue;
    sqlite3_bind_int64 (is->delete_pending, 1, receipts[i]->recipient);
    sqlite3_bind_int64 (is->delete_pending, 2, receipts[i]->seq);
    ok = store_step_done (is->delete_pending);
  }
  if (ok) {
    sqlite3_bind_int64 (is->update_meta, 1, to_seq);
    sqlite3_bind_int64 (is->update_meta, 2, to_receipt);
    ok = store_step_done (is->update_meta);
  }
  if (ok)
    ok = store_step_done (is->commit);

  if (!ok) {
    g_warning ("Cannot update the message index: %s", sqlite3_errmsg (self->idx));
    if (!sqlite3_get_autocommit (self->idx))
      store_step_done (is->rollback);
  }
  return ok;
}

/* The index's WAL hook: how many frames its WAL holds after a commit. */
int
store_index_wal_hook_cb (void       *data,
                         sqlite3    *db,
                         const char *name,
                         int         n_frames)
{
  ParleyStore *self = data;

  self->index_wal_frames = n_frames;
  return SQLITE_OK;
}

/* After an index transaction: writes its pages back to the disk paced (see
 * store_writeback_paced()), and once the WAL holds INDEX_CHECKPOINT_FRAMES
 * frames, checkpoints it. SQLite's own checkpoint would sync the WAL and
 * then every page it copied, each in one go; here the WAL, already written
 * back, is synced, the checkpoint runs without syncing (synchronous=OFF
 * for its duration), and the index file is written back paced and synced.
 * Only the indexer writes to the index, and the WAL restarts (overwrites
 * its frames) only in its next transaction, after all this: a power loss
 * in between finds every copied page in the WAL still. */
static void
indexer_write_back (ParleyStore *self)
{
  int wal_fd = open (self->index_wal_path, O_RDONLY | O_CLOEXEC);
  struct stat st;

  if (wal_fd < 0)
    return;
  if (fstat (wal_fd, &st) == 0)
    store_writeback_paced (wal_fd, 0, st.st_size);
  if (self->index_wal_frames >= g_atomic_int_get (&self->index_checkpoint_frames)) {
    int fd = open (self->index_path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0 && fdatasync (wal_fd) == 0) {
      sqlite3_exec (self->idx, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
      if (sqlite3_wal_checkpoint_v2 (self->idx, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                     NULL) != SQLITE_OK)
        g_debug ("Cannot checkpoint the index: %s", sqlite3_errmsg (self->idx));
      sqlite3_exec (self->idx, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
      if (fstat (fd, &st) == 0)
        store_writeback_paced (fd, 0, st.st_size);
      if (fdatasync (fd) != 0)
        g_warning ("Cannot sync the message index: %s", g_strerror (errno));
      self->index_wal_frames = 0;
    }
    if (fd >= 0)
      close (fd);
  }
  close (wal_fd);
}

gpointer
store_indexer_thread (gpointer data)
{
  ParleyStore *self = data;

  parley_sched_deferrable ("indexer");

  g_mutex_lock (&self->tail_lock);
  for (;;) {
    gint64 deadline, from_seq, to_seq, to_receipt;
    TailGen *old;
    TailMessage **msgs;
    TailReceipt **receipts;
    guint n_msgs, n_receipts = 0;
    gboolean ok;

    if (self->index_paused || store_unindexed_locked (self) == 0) {
      if (self->index_quit)
        break;
      self->index_idle = TRUE;
      g_cond_wait (&self->index_cond, &self->tail_lock);
      self->index_idle = FALSE;
      continue;
    }

    /* Let more gather, so that the transaction is large; not again once
     * the generation is sealed. */
    deadline = g_get_monotonic_time () + INDEX_DELAY_MS * G_TIME_SPAN_MILLISECOND;
    while (!self->index_quit && !self->index_paused && self->index_flushers == 0 &&
           self->tail_old == NULL && !self->seal_wanted &&
           store_unindexed_locked (self) < INDEX_MIN_ROWS) {
      if (!g_cond_wait_until (&self->index_cond, &self->tail_lock, deadline))
        break;
    }
    if (self->index_paused)
      continue;

    /* What is not indexed yet is in the old generation, or, once that is
     * gone, in the new one, sealed now; while the writer's transaction is
     * open, the writer seals it after its commit (this thread looks again
     * after INDEX_SEAL_WAIT_MS, should the transaction roll back). */
    if (self->tail_old == NULL && !store_tail_seal_locked (self)) {
      self->seal_wanted = TRUE;
      deadline = g_get_monotonic_time () + INDEX_SEAL_WAIT_MS * G_TIME_SPAN_MILLISECOND;
      g_cond_wait_until (&self->index_cond, &self->tail_lock, deadline);
      continue;
    }
    old = self->tail_old;
    from_seq = self->indexed_seq;
    to_seq = from_seq;
    to_receipt = self->indexed_receipt;
    g_mutex_unlock (&self->tail_lock);

    /* The next entries of the old generation, at most INDEX_TXN_ROWS of
     * each; only this thread changes it, so no lock is needed. A receipt
     * goes with its message or after it, never before: the receipts stop
     * at the first one for a message that is not in this transaction. */
    msgs = (TailMessage **) old->messages->pdata + self->old_msgs_indexed;
    receipts = (TailReceipt **) old->receipts->pdata + self->old_receipts_indexed;
    n_msgs = MIN (old->messages->len - self->old_msgs_indexed, INDEX_TXN_ROWS);
    if (n_msgs > 0)
      to_seq = msgs[n_msgs - 1]->seq;
    while (n_receipts < old->receipts->len - self->old_receipts_indexed &&
           n_receipts < INDEX_TXN_ROWS && receipts[n_receipts]->seq <= to_seq)
      n_receipts++;
    if (n_receipts > 0)
      to_receipt = receipts[n_receipts - 1]->id;

    ok = indexer_apply (self, msgs, n_msgs, receipts, n_receipts, from_seq, to_seq, to_receipt);
    if (ok) {
      indexer_write_back (self);
      /* Into the filter before their generation leaves the tail, so that
       * the writer finds a key in one or the other. Only this thread adds
       * to the filter or replaces it. */
      for (guint i = 0; i < n_msgs; i++) {
        dedup_filter_add (self->dedup_filter, msgs[i]->key.sender, msgs[i]->key.id_hash);
        if (i % INDEXER_GIVE_WAY_ENTRIES == 0)
          parley_sched_give_way ();
      }
    }

    g_mutex_lock (&self->tail_lock);
    if (ok) {
      self->old_msgs_indexed += n_msgs;
      self->old_receipts_indexed += n_receipts;
      self->indexed_seq = to_seq;
      self->indexed_receipt = to_receipt;
      if (self->old_msgs_indexed == old->messages->len &&
          self->old_receipts_indexed == old->receipts->len) {
        /* All of it is in the index: the generation goes, freed without
         * the lock. */
        self->tail_old = NULL;
        g_mutex_unlock (&self->tail_lock);
        store_tail_gen_free (old);
        g_mutex_lock (&self->tail_lock);
      }
      g_cond_broadcast (&self->indexed_cond);
      if (self->dedup_filter->n_keys > self->dedup_filter->grow_at) {
        DedupFilter *filter;

        /* Only this thread writes to the index, so a scan of it now sees
         * every indexed key; meanwhile the old filter stays in use. */
        g_mutex_unlock (&self->tail_lock);
        filter = store_dedup_filter_load (self->idx, self->dedup_filter->n_keys * 4);
        g_mutex_lock (&self->tail_lock);
        if (filter != NULL) {
          /* Swapped under the lock, freed without it: up to 128 MiB. */
          DedupFilter *old_filter = self->dedup_filter;

          self->dedup_filter = filter;
          g_mutex_unlock (&self->tail_lock);
          store_dedup_filter_free (old_filter);
          g_mutex_lock (&self->tail_lock);
        } else {
          g_warning ("Cannot read the message index: %s", sqlite3_errmsg (self->idx));
          self->dedup_filter->grow_at = G_MAXUINT64;
        }
      }
    } else {
      /* The tail still answers for everything; try again later. */
      deadline = g_get_monotonic_time () + INDEX_RETRY_MS * G_TIME_SPAN_MILLISECOND;
      while (!self->index_quit &&
             g_cond_wait_until (&self->index_cond, &self->tail_lock, deadline))
        ;
      if (self->index_quit)
        break;
    }
  }
  g_cond_broadcast (&self->indexed_cond);
  g_mutex_unlock (&self->tail_lock);

  return NULL;
}

void
store_indexer_statements_clear (IndexerStatements *is)
{
  g_clear_pointer (&is->begin, sqlite3_finalize);
  g_clear_pointer (&is->commit, sqlite3_finalize);
  g_clear_pointer (&is->rollback, sqlite3_finalize);
  for (guint i = 0; i < 2; i++) {
    g_clear_pointer (&is->insert_dedup[i], sqlite3_finalize);
    g_clear_pointer (&is->insert_sent[i], sqlite3_finalize);
    g_clear_pointer (&is->insert_received[i], sqlite3_finalize);
    g_clear_pointer (&is->insert_pending[i], sqlite3_finalize);
  }
  g_clear_pointer (&is->delete_pending, sqlite3_finalize);
  g_clear_pointer (&is->update_meta, sqlite3_finalize);
}

/* Prepares INSERT OR IGNORE INTO @table_columns of @n_rows rows of @n_cols
 * parameters each. */
static sqlite3_stmt *
prepare_bulk_insert (sqlite3    *db,
                     const char *table_columns,
                     guint       n_cols,
                     guint       n_rows)
{
  g_autoptr(GString) sql = g_string_new ("INSERT OR IGNORE INTO ");

  g_string_append (sql, table_columns);
  g_string_append (sql, " VALUES ");
  for (guint row = 0; row < n_rows; row++) {
    g_string_append (sql, row ? ", (" : "(");
    for (guint col = 0; col < n_cols; col++)
      g_string_append (sql, col ? ", ?" : "?");
    g_string_append_c (sql, ')');
  }
  return store_prepare (db, sql->str, TRUE);
}

gboolean
store_indexer_statements_init (IndexerStatements *is,
                               sqlite3           *db)
{
  is->begin = store_prepare (db, "BEGIN IMMEDIATE", TRUE);
  is->commit = store_prepare (db, "COMMIT", TRUE);
  is->rollback = store_prepare (db, "ROLLBACK", TRUE);
  /* OR IGNORE: a key indexed before is harmless (the meta row and the rows
   * it covers are always committed together, so it should never happen). */
  for (guint i = 0; i < 2; i++) {
    guint n_rows = i ? INDEX_BULK_ROWS : 1;

    is->insert_dedup[i] = prepare_bulk_insert (db, "dedup (sender, id_hash, seq, timestamp,"
                                                   " recipient)", 5, n_rows);
    is->insert_sent[i] = prepare_bulk_insert (db, "sent (sender, seq)", 2, n_rows);
    is->insert_received[i] = prepare_bulk_insert (db, "received (recipient, seq)", 2, n_rows);
    is->insert_pending[i] = prepare_bulk_insert (db, "pending (recipient, seq)", 2, n_rows);
    if (!is->insert_dedup[i] || !is->insert_sent[i] || !is->insert_received[i] ||
        !is->insert_pending[i])
      return FALSE;
  }
  is->delete_pending = store_prepare (db, "DELETE FROM pending WHERE recipient = ?1 AND seq = ?2",
                                TRUE);
  is->update_meta = store_prepare (db,
    "UPDATE meta SET indexed_seq = ?1, indexed_receipt = ?2 WHERE id = 1", TRUE);

  return is->begin && is->commit && is->rollback && is->delete_pending && is->update_meta;
}
