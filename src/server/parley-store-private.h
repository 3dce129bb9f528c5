/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The store's internals, shared by parley-store.c (opening, users,
 * tokens, reads), parley-store-writer.c (the writer thread that commits
 * the log, and the checkpointer) and parley-store-index.c (the indexer
 * thread and the dedup filter). See parley-store.c for the design. */
#pragma once

#include "parley-store.h"

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* The most ops committed in one transaction. Ops queued while a transaction
 * runs wait for the next. */
#define MAX_BATCH 4096

/* The indexer waits up to INDEX_DELAY_MS after the first un-indexed commit
 * for more to gather, unless INDEX_MIN_ROWS are waiting already, so that
 * each index transaction covers thousands of rows: the larger it is, the
 * fewer index pages each row costs (at 30,000 chat messages a second, a
 * second's gathering against a tenth's took the indexer from 4.8 to 4.2 µs
 * per message). Queries read the tail per user, so a larger tail costs
 * them nothing. Should the indexer fall behind by INDEX_MAX_ROWS (when it
 * cannot get enough CPU time), the writer waits for it before its next
 * transaction, which bounds the tail: to about twice INDEX_MAX_ROWS
 * entries, as the indexed entries of the old generation stay until all of
 * it is indexed (see TailGen). */
#define INDEX_DELAY_MS 1000
#define INDEX_MIN_ROWS 50000
#define INDEX_MAX_ROWS 500000

/* The most messages, and the most receipts, one index transaction takes.
 * A writer that waits for the indexer (INDEX_MAX_ROWS) waits for one such
 * transaction, not for the whole backlog: a transaction over the 500,000
 * rows that had piled up held every ack up for half a second. */
#define INDEX_TXN_ROWS 20000

/* After a failed index transaction, the indexer tries again this much later
 * (meanwhile the tail answers for everything not indexed). */
#define INDEX_RETRY_MS 1000

/* The indexer inserts this many rows per statement: stepping one statement
 * costs much more than one row. */
#define INDEX_BULK_ROWS 64

/* The tail is kept in two generations (TailGen): the writer adds to the
 * new one; the indexer works through the old one, which no one else
 * changes, and once all of it is indexed lets it go whole: under
 * tail_lock it only swaps pointers (store_tail_seal_locked(), and taking
 * the old one out), and frees it without the lock. Dropping what it had
 * indexed entry by entry under tail_lock, in chunks, as it did before, made
 * it a lock holder that gets preempted: at its low priority, on a CPU
 * shared with busier threads, the writer waited for it 50 times a second,
 * 0.3 - 3.4 ms each (the chat benchmark's open loop, `background-cpus`).
 * In its loops over a generation's messages (adding their keys to the
 * dedup filter, freeing them), the indexer gives way
 * (parley_sched_give_way()) every INDEXER_GIVE_WAY_ENTRIES. When it finds
 * the writer's transaction open, so that it cannot seal the new generation
 * itself, it asks the writer to (seal_wanted), and looks again after
 * INDEX_SEAL_WAIT_MS at most (the transaction may roll back). */
#define INDEXER_GIVE_WAY_ENTRIES 64
#define INDEX_SEAL_WAIT_MS 10

/* Checkpoints of the log run in two phases so that commits never wait for
 * one. Once the WAL holds CHECKPOINT_FRAMES frames, a background thread
 * copies them into the database (a passive checkpoint, concurrent with the
 * writer). As the writer keeps appending meanwhile, the WAL would never be
 * completely checkpointed and so never restart; so the writer then finishes
 * the job between two batches, which only copies the frames written during
 * the background phase (the background thread syncs the pages it copied,
 * and makes further passes while the writer appended more than
 * CHECKPOINT_FRAMES / CHECKPOINT_FINISH_DIVISOR frames during the last one;
 * see checkpoint_in_background()), and its next transaction starts the WAL
 * afresh. If the WAL still grows to CHECKPOINT_HARD_FACTOR times
 * CHECKPOINT_FRAMES, the writer checkpoints it all itself. The index is
 * checkpointed by the indexer between its transactions
 * (indexer_write_back()). */
#define CHECKPOINT_FRAMES 16000
#define CHECKPOINT_HARD_FACTOR 4
#define CHECKPOINT_FINISH_DIVISOR 128   /* 125 frames of 16,000 */
#define CHECKPOINT_PASSES 8

/* The indexer checkpoints the index itself once its WAL has this many
 * frames (see indexer_write_back()). */
#define INDEX_CHECKPOINT_FRAMES 8000

/* Background writes (checkpoints of the log and everything of the index)
 * reach the disk in chunks of WRITEBACK_CHUNK bytes, with a rest of
 * WRITEBACK_REST times the chunk's own write time after each chunk that
 * took longer than WRITEBACK_BUSY_US (see store_writeback_paced()). A
 * commit's fdatasync that meets a chunk waits for it: with 1 MiB chunks
 * the open-loop run at 50k msg/s saw commits of a few messages take 1.5 -
 * 2.5 ms in bursts and an ack p99 of 7 - 26 ms, with 256 KiB 4.4 - 10.4
 * ms in 8 of 9 alternating runs (docs/benchmarks.md). */
#define WRITEBACK_CHUNK (256 * 1024)
#define WRITEBACK_BUSY_US 100
#define WRITEBACK_REST 4
#define WRITEBACK_MAX_REST_US 20000

/* The log's WAL is written with zeros ahead of use, WAL_PRIME_FRAMES frames
 * at a time, whenever fewer than half of that are left beyond the frames in
 * use. A commit that appends to a growing file changes its size and
 * allocates blocks, so its fdatasync must wait for a commit of the file
 * system's journal, which also carries (and so waits for) the index's and
 * the checkpoints' writes: such commits took 1-2 ms and often 4-16 ms. A
 * commit that overwrites blocks the file already has only writes its data.
 * Once the WAL restarts after a checkpoint it is overwritten from the start
 * anyway; priming makes the first pass do the same. */
#define WAL_PRIME_FRAMES 1024
#define WAL_HEADER_SIZE 32
#define WAL_FRAME_HEADER_SIZE 24

enum {
  CHECKPOINT_IDLE,
  CHECKPOINT_BACKGROUND,  /* wanted or running on the checkpointer thread */
  CHECKPOINT_FINISH,      /* the writer should finish it */
};

/* The writer remembers this many contact pairs it knows exist, so that most
 * messages do not need the two INSERT OR IGNOREs into contacts. */
#define MAX_KNOWN_CONTACTS 200000

#define BUSY_TIMEOUT_MS 5000

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* A registered user as kept in memory. */
typedef struct {
  gint64 key;
  char *id;
  char *username;
} UserEntry;

/* What deduplication looks messages up by. */
typedef struct {
  gint64 sender;
  gint64 id_hash;         /* client_id_hash (client_id) */
  char *client_id;
} DedupKey;

/* A message of the tail: committed to the log (or being committed by the
 * writer's open transaction, if seq > committed_seq), not yet indexed.
 * Everything but receipt_id is immutable. */
typedef struct {
  DedupKey key;           /* first, so that the struct is its own hash key */
  gint64 seq;
  gint64 recipient;
  gint64 timestamp;
  gint64 receipt_id;      /* the receipt that delivered it, or 0 */
} TailMessage;

/* A receipt of the tail: a message was delivered to its recipient. */
typedef struct {
  gint64 id;
  gint64 seq;
  gint64 recipient;
} TailReceipt;

/* The tail of one user in one generation, so that a query for a user
 * (history, pending, latest seq) reads that user's entries instead of the
 * whole tail, which holds hundreds of thousands when the indexer lags: a
 * message is in its sender's and its recipient's, a receipt in its
 * recipient's. Entries leave from the back (a rolled back transaction) or
 * with their whole generation. */
typedef struct {
  gint64 key;             /* the user; &key is the hash key */
  GPtrArray *msgs;        /* TailMessage *, in seq order */
  GPtrArray *receipts;    /* TailReceipt *, in id order */
} TailUser;

/* A generation of the tail (see store_tail_seal_locked()). Every message of
 * an older generation has a smaller seq than those of a newer one, every
 * receipt a smaller id. */
typedef struct {
  GPtrArray *messages;        /* TailMessage *, in seq order, owned */
  GPtrArray *receipts;        /* TailReceipt *, in id order, owned */
  GHashTable *by_seq;         /* &seq → TailMessage */
  GHashTable *by_key;         /* DedupKey → TailMessage */
  GHashTable *receipt_by_seq; /* &seq → TailReceipt */
  GHashTable *by_user;        /* &key → TailUser, owned */
} TailGen;

/* The dedup filter: a blocked Bloom filter of the (sender, id_hash) keys in
 * the index's dedup table. A key it does not contain is certainly not
 * indexed, so a fresh message id (the common case) needs no probe of the
 * index; a key it may contain (an actual resend, or a false positive of a
 * few per cent) is looked up as before. Each key sets DEDUP_FILTER_K bits
 * of one 64-bit word, so a query touches one cache line. The indexer adds
 * keys without tail_lock while the writer tests them under it, so both
 * touch the words with atomic operations. */
typedef struct {
  guint64 *words;
  guint64 mask;           /* the number of words - 1 (a power of two) */
  guint64 n_keys;         /* keys added (an upper bound of the distinct ones) */
  guint64 grow_at;        /* rebuild larger once n_keys exceeds this */
} DedupFilter;

typedef struct {
  sqlite3_stmt *begin;
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  sqlite3_stmt *insert_message;
  sqlite3_stmt *find_message;
  sqlite3_stmt *insert_receipt;
  sqlite3_stmt *insert_contact;
  sqlite3_stmt *upsert_read;
  /* On widx, the writer's read connection to the index. */
  sqlite3_stmt *find_dedup;
  sqlite3_stmt *find_pending;
} WriterStatements;

typedef struct {
  sqlite3_stmt *begin;
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  /* [0] inserts one row, [1] INDEX_BULK_ROWS rows. */
  sqlite3_stmt *insert_dedup[2];
  sqlite3_stmt *insert_sent[2];
  sqlite3_stmt *insert_received[2];
  sqlite3_stmt *insert_pending[2];
  sqlite3_stmt *delete_pending;
  sqlite3_stmt *update_meta;
} IndexerStatements;

struct _ParleyStore {
  char *path;
  char *index_path;

  /* The writer thread and its connections to the log and the index. */
  sqlite3 *wdb;
  sqlite3 *widx;
  WriterStatements ws;
  GThread *writer;
  GHashTable *known_contacts;
  GPtrArray *staged_messages;   /* TailMessage *, added by the open transaction */
  GPtrArray *staged_receipts;   /* TailReceipt * */

  /* The queue between parley_store_submit() and the writer. */
  GMutex queue_lock;
  GCond queue_cond;
  GPtrArray *queue;
  gboolean closing;

  ParleyStoreBatchFunc batch_done;
  gpointer user_data;

  /* The connections for reads and the HTTP side's writes, to the log and
   * to the index. */
  GMutex read_lock;
  sqlite3 *rdb;
  sqlite3 *ridx;

  /* The background checkpointer and its own connection. */
  sqlite3 *cdb;
  GThread *checkpointer;
  GMutex checkpoint_lock;
  GCond checkpoint_cond;
  gboolean checkpoint_quit;
  gint checkpoint_state;  /* atomic, CHECKPOINT_* */
  gint wal_frames;        /* atomic */
  gint64 log_synced_size; /* only the checkpointer uses it */

  /* The log's WAL, and how much of it the writer has primed. */
  char *wal_path;
  gint64 wal_frame_size;
  gint64 wal_primed;      /* bytes; only the writer uses it */

  /* The indexer thread and its connection to the index. */
  sqlite3 *idx;
  char *index_wal_path;
  gint index_wal_frames;  /* set by its WAL hook, only in the indexer */
  gint index_checkpoint_frames;   /* atomic, INDEX_CHECKPOINT_FRAMES */
  gint checkpoint_frames;         /* atomic, CHECKPOINT_FRAMES */
  IndexerStatements is;
  GThread *indexer;

  /* The tail, guarded by tail_lock. The writer appends to tail_new (and
   * removes what a failed transaction added); the indexer indexes tail_old,
   * which only it changes (TailMessage.receipt_id aside), and lets it go
   * once all of it is indexed. Readers only see messages with seq <=
   * committed_seq and receipts with id <= committed_receipt. */
  GMutex tail_lock;
  GCond index_cond;       /* wakes the indexer */
  GCond indexed_cond;     /* signalled when the indexer advanced */
  TailGen *tail_old;      /* committed entries being indexed, or NULL */
  TailGen *tail_new;
  gboolean seal_wanted;   /* the writer should seal after its commit */
  /* The indexer's own: how much of tail_old it has indexed. */
  guint old_msgs_indexed;
  guint old_receipts_indexed;
  /* Every key of the index's dedup table; keys enter it before their
   * generation leaves the tail, so a key is always in the tail or in the
   * filter. */
  DedupFilter *dedup_filter;
  gint64 committed_seq;
  gint64 committed_receipt;
  gint64 indexed_seq;
  gint64 indexed_receipt;
  gboolean index_quit;
  gboolean index_paused;
  gboolean index_idle;    /* the indexer waits for a first un-indexed commit */
  guint index_flushers;   /* threads waiting in parley_store_flush_index() */

  /* Every user, by id (for parley_store_user_exists()) and by key. */
  GRWLock users_lock;
  GHashTable *users;      /* id → UserEntry, borrowed from user_keys */
  GHashTable *user_keys;  /* &key → UserEntry, owned */
};

/* parley-store.c */
gint64
store_client_id_hash (const char *client_id);

char *
store_column_strdup (sqlite3_stmt *stmt,
                     int           col);

sqlite3_stmt *
store_prepare (sqlite3     *db,
               const char  *sql,
               gboolean     persistent);

gboolean
store_step_done (sqlite3_stmt *stmt);

void
store_tail_add_message_locked (ParleyStore *self,
                               TailMessage *msg);

void
store_tail_add_receipt_locked (ParleyStore *self,
                               TailReceipt *receipt);

void
store_tail_message_free (TailMessage *msg);

void
store_tail_remove_message_locked (ParleyStore *self,
                                  TailMessage *msg);

void
store_tail_remove_receipt_locked (ParleyStore *self,
                                  TailReceipt *receipt);

TailMessage *
store_tail_find_message_locked (ParleyStore *self,
                                gint64       seq);

TailMessage *
store_tail_find_key_locked (ParleyStore    *self,
                            const DedupKey *key);

gboolean
store_tail_has_receipt_locked (ParleyStore *self,
                               gint64       seq);

gboolean
store_tail_seal_locked (ParleyStore *self);

void
store_tail_gen_free (TailGen *gen);

gint64
store_unindexed_locked (ParleyStore *self);

const char *
store_user_id_for_key (ParleyStore *self,
                       gint64       key);

gint64
store_user_key (ParleyStore *self,
                const char  *id);

/* parley-store-index.c */
void
store_dedup_filter_free (DedupFilter *filter);

DedupFilter *
store_dedup_filter_load (sqlite3 *db,
                         guint64  n_keys_hint);

gboolean
store_dedup_filter_may_contain (const DedupFilter *filter,
                                gint64             sender,
                                gint64             id_hash);

void
store_indexer_statements_clear (IndexerStatements *is);

gboolean
store_indexer_statements_init (IndexerStatements *is,
                               sqlite3           *db);

gpointer
store_indexer_thread (gpointer data);

int
store_index_wal_hook_cb (void       *data,
                         sqlite3    *db,
                         const char *name,
                         int         n_frames);

/* parley-store-writer.c */
gpointer
store_checkpointer_thread (gpointer data);

gboolean
store_contact_pair_equal (gconstpointer x,
                          gconstpointer y);

guint
store_contact_pair_hash (gconstpointer key);

int
store_wal_hook_cb (void       *data,
                   sqlite3    *db,
                   const char *name,
                   int         n_frames);

void
store_writeback_paced (int    fd,
                       gint64 from,
                       gint64 to);

void
store_writer_statements_clear (WriterStatements *ws);

gboolean
store_writer_statements_init (WriterStatements *ws,
                              sqlite3          *db,
                              sqlite3          *idx);

gpointer
store_writer_thread (gpointer data);

/* parley-store-vfs.c */
const char *
store_give_way_vfs (void);

void
store_give_way_during_statements (sqlite3 *db);

G_END_DECLS
