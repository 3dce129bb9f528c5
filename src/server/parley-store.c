/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-store"

#include "parley-store.h"
#include "parley-password.h"
#include "parley-envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The durable message path is split in two.
 *
 * The log (the database file itself) is what an ack waits for. The
 * writer's transaction per batch only appends: a row to messages (whose
 * seq is the rowid) per message and a row to receipts per acknowledgement.
 * Appending dirties only the last page or two of each table, so a commit
 * writes a handful of WAL pages whatever the number of users involved.
 *
 * The index (a second SQLite file beside it, DB-index) holds everything
 * derived from the log: the deduplication keys, the sent and received
 * history indexes and the pending set. An indexer thread fills it some
 * milliseconds later in large transactions that amortise its random page
 * writes, off the ack path. Its meta row says how far it got (indexed_seq,
 * indexed_receipt); it is committed with synchronous=NORMAL since it can
 * always be rebuilt from the log.
 *
 * In between, the tail keeps in memory what the log has and the index has
 * not yet: every message with seq > indexed_seq and every receipt with
 * id > indexed_receipt. Each query combines the index with the tail; the
 * content of a message is always read from the log by rowid. On start-up
 * the tail is reloaded from the log, so kill -9 at any point loses nothing
 * that was committed to the log. */

/* The most ops committed in one transaction. Ops queued while a transaction
 * runs wait for the next. */
#define MAX_BATCH 4096

/* The indexer waits up to INDEX_DELAY_MS after the first un-indexed commit
 * for more to gather, unless INDEX_MIN_ROWS are waiting already, so that
 * each index transaction covers thousands of rows: the larger it is, the
 * fewer index pages each row costs. Should the indexer fall behind by
 * INDEX_MAX_ROWS (when it cannot get enough CPU time), the writer waits for
 * it before its next transaction, which bounds the tail. */
#define INDEX_DELAY_MS 100
#define INDEX_MIN_ROWS 20000
#define INDEX_MAX_ROWS (INDEX_MIN_ROWS * 25)

/* The most messages, and the most receipts, one index transaction takes.
 * A writer that waits for the indexer (INDEX_MAX_ROWS) waits for one such
 * transaction, not for the whole backlog: a transaction over the 500,000
 * rows that had piled up held every ack up for half a second. */
#define INDEX_TXN_ROWS INDEX_MIN_ROWS

/* After a failed index transaction, the indexer tries again this much later
 * (meanwhile the tail answers for everything not indexed). */
#define INDEX_RETRY_MS 1000

/* The indexer inserts this many rows per statement: stepping one statement
 * costs much more than one row. */
#define INDEX_BULK_ROWS 64

/* The indexer thread's nice value (see indexer_thread()). */
#define INDEXER_NICE 10

/* Checkpoints of the log run in two phases so that commits never wait for
 * one. Once the WAL holds CHECKPOINT_FRAMES frames, a background thread
 * copies them into the database (a passive checkpoint, concurrent with the
 * writer). As the writer keeps appending meanwhile, the WAL would never be
 * completely checkpointed and so never restart; so the writer then finishes
 * the job between two batches, which only copies the few frames written
 * during the background phase, and its next transaction starts the WAL
 * afresh. If the WAL still grows to CHECKPOINT_FRAMES_HARD, the writer
 * checkpoints it all itself. The index is checkpointed by the indexer after
 * its commits (wal_autocheckpoint). */
#define CHECKPOINT_FRAMES 16000
#define CHECKPOINT_FRAMES_HARD (CHECKPOINT_FRAMES * 4)
#define INDEX_AUTOCHECKPOINT_PAGES 8000

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

G_DEFINE_QUARK (parley-store-error-quark, parley_store_error)

/* The schema version in PRAGMA user_version. A database of another version
 * is refused rather than misread. */
#define SCHEMA_VERSION 3

/* The version of the index file's schema. An index of another version is
 * simply rebuilt from the log. */
#define INDEX_VERSION 2

/* Notes on the schema of the log:
 * - Users are referred to by users.key, an integer rowid, everywhere but in
 *   the API, which speaks of the random 32-character ids. The store keeps
 *   both directions in memory. Short integer keys keep index entries small
 *   and comparisons cheap.
 * - messages.seq is the rowid. Messages are never deleted, so rowids keep
 *   rising without AUTOINCREMENT and its extra write to sqlite_sequence on
 *   every insert. (Deleting old messages would need AUTOINCREMENT back.)
 * - messages and receipts have no secondary index and are never updated:
 *   the hot transaction only appends to them. A receipt row is appended
 *   only when it delivers a message that was still pending, so there is at
 *   most one per message. */
static const char schema_sql[] =
  "CREATE TABLE users ("
  "  key INTEGER PRIMARY KEY,"
  "  id TEXT NOT NULL UNIQUE,"
  "  username TEXT NOT NULL UNIQUE,"
  "  password_hash TEXT NOT NULL,"
  "  created INTEGER NOT NULL"
  ");"
  "CREATE TABLE refresh_tokens ("
  "  hash TEXT PRIMARY KEY NOT NULL,"
  "  user_id TEXT NOT NULL,"
  "  family TEXT NOT NULL,"
  "  expires INTEGER NOT NULL,"
  "  used INTEGER NOT NULL DEFAULT 0,"
  "  revoked INTEGER NOT NULL DEFAULT 0"
  ");"
  "CREATE INDEX refresh_tokens_family ON refresh_tokens (family);"
  "CREATE TABLE contacts ("
  "  user INTEGER NOT NULL,"
  "  contact INTEGER NOT NULL,"
  "  PRIMARY KEY (user, contact)"
  ") WITHOUT ROWID;"
  "CREATE TABLE messages ("
  "  seq INTEGER PRIMARY KEY,"
  "  sender INTEGER NOT NULL,"
  "  recipient INTEGER NOT NULL,"
  "  client_id TEXT NOT NULL,"
  "  content TEXT NOT NULL,"
  "  timestamp INTEGER NOT NULL"
  ");"
  "CREATE TABLE receipts ("
  "  id INTEGER PRIMARY KEY,"
  "  seq INTEGER NOT NULL"
  ");"
  "CREATE TABLE read_markers ("
  "  user INTEGER NOT NULL,"
  "  peer INTEGER NOT NULL,"
  "  message_id TEXT NOT NULL,"
  "  timestamp INTEGER NOT NULL,"
  "  PRIMARY KEY (user, peer)"
  ") WITHOUT ROWID;";

/* The index: derived from the log, rebuilt from it when missing, damaged or
 * of another version. dedup finds a message by its sender and a 64-bit hash
 * of its client id (integer keys are compact and cheap to compare; a match
 * is confirmed against the log); it carries the recipient so that a resend
 * can be told whether its original is still pending. */
static const char index_schema_sql[] =
  "CREATE TABLE meta ("
  "  id INTEGER PRIMARY KEY CHECK (id = 1),"
  "  indexed_seq INTEGER NOT NULL,"
  "  indexed_receipt INTEGER NOT NULL"
  ");"
  "INSERT INTO meta VALUES (1, 0, 0);"
  "CREATE TABLE dedup ("
  "  sender INTEGER NOT NULL,"
  "  id_hash INTEGER NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  timestamp INTEGER NOT NULL,"
  "  recipient INTEGER NOT NULL,"
  "  PRIMARY KEY (sender, id_hash, seq)"
  ") WITHOUT ROWID;"
  "CREATE TABLE sent ("
  "  sender INTEGER NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  PRIMARY KEY (sender, seq)"
  ") WITHOUT ROWID;"
  "CREATE TABLE received ("
  "  recipient INTEGER NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  PRIMARY KEY (recipient, seq)"
  ") WITHOUT ROWID;"
  "CREATE TABLE pending ("
  "  recipient INTEGER NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  PRIMARY KEY (recipient, seq)"
  ") WITHOUT ROWID;";

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

/* The dedup filter: a blocked Bloom filter of the (sender, id_hash) keys in
 * the index's dedup table. A key it does not contain is certainly not
 * indexed, so a fresh message id (the common case) needs no probe of the
 * index; a key it may contain (an actual resend, or a false positive of a
 * few per cent) is looked up as before. Each key sets DEDUP_FILTER_K bits
 * of one 64-bit word, so a query touches one cache line. */
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

  /* The log's WAL, and how much of it the writer has primed. */
  char *wal_path;
  gint64 wal_frame_size;
  gint64 wal_primed;      /* bytes; only the writer uses it */

  /* The indexer thread and its connection to the index. */
  sqlite3 *idx;
  IndexerStatements is;
  GThread *indexer;

  /* The tail, guarded by tail_lock. The writer appends (and removes what a
   * failed transaction added); the indexer removes from the front what it
   * indexed. Readers only see messages with seq <= committed_seq and
   * receipts with id <= committed_receipt. */
  GMutex tail_lock;
  GCond index_cond;       /* wakes the indexer */
  GCond indexed_cond;     /* signalled when the indexer advanced */
  GPtrArray *tail_messages;       /* TailMessage *, in seq order, owned */
  GHashTable *tail_by_seq;        /* &seq → TailMessage */
  GHashTable *tail_by_key;        /* DedupKey → TailMessage */
  GPtrArray *tail_receipts;       /* TailReceipt *, in id order, owned */
  GHashTable *tail_receipt_by_seq;  /* &seq → TailReceipt */
  /* Every key of the index's dedup table; keys enter it before they leave
   * the tail, so a key is always in the tail or in the filter. */
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

static void
user_entry_free (UserEntry *entry)
{
  g_free (entry->id);
  g_free (entry->username);
  g_free (entry);
}

/* Only under users_lock. */
static void
users_add_locked (ParleyStore *self,
                  gint64       key,
                  const char  *id,
                  const char  *username)
{
  UserEntry *entry = g_new (UserEntry, 1);

  entry->key = key;
  entry->id = g_strdup (id);
  entry->username = g_strdup (username);
  g_hash_table_insert (self->user_keys, &entry->key, entry);
  g_hash_table_insert (self->users, entry->id, entry);
}

/* Returns the key of the user @id, or 0 if there is no such user. */
static gint64
user_key (ParleyStore *self,
          const char  *id)
{
  UserEntry *entry;

  if (id == NULL)
    return 0;
  g_rw_lock_reader_lock (&self->users_lock);
  entry = g_hash_table_lookup (self->users, id);
  g_rw_lock_reader_unlock (&self->users_lock);
  return entry != NULL ? entry->key : 0;
}

/* Returns the id of the user with @key, or %NULL. Entries live as long as
 * the store. */
static const char *
user_id_for_key (ParleyStore *self,
                 gint64       key)
{
  UserEntry *entry;

  g_rw_lock_reader_lock (&self->users_lock);
  entry = g_hash_table_lookup (self->user_keys, &key);
  g_rw_lock_reader_unlock (&self->users_lock);
  return entry != NULL ? entry->id : NULL;
}

static void
set_sqlite_error (GError     **error,
                  sqlite3     *db,
                  const char  *what)
{
  int code = sqlite3_extended_errcode (db);

  if ((code & 0xff) == SQLITE_CONSTRAINT)
    g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_EXISTS,
                 "%s: %s", what, sqlite3_errmsg (db));
  else
    g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                 "%s: %s", what, sqlite3_errmsg (db));
}

static sqlite3_stmt *
prepare (sqlite3     *db,
         const char  *sql,
         gboolean     persistent)
{
  sqlite3_stmt *stmt = NULL;

  if (sqlite3_prepare_v3 (db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
                          &stmt, NULL) != SQLITE_OK) {
    /* Only a bug in the SQL text (or an out-of-memory) can get here. */
    g_critical ("Cannot prepare ‘%s’: %s", sql, sqlite3_errmsg (db));
    return NULL;
  }
  return stmt;
}

static char *
column_strdup (sqlite3_stmt *stmt,
               int           col)
{
  const unsigned char *text = sqlite3_column_text (stmt, col);
  int len = sqlite3_column_bytes (stmt, col);

  return text != NULL ? g_strndup ((const char *) text, len) : NULL;
}

static char *
new_user_id (void)
{
  guint8 bytes[16];
  char hex[33];

  parley_sodium_init ();
  randombytes_buf (bytes, sizeof bytes);
  sodium_bin2hex (hex, sizeof hex, bytes, sizeof bytes);
  return g_strdup (hex);
}


/* Opens a connection in WAL mode. @durable: every COMMIT fsyncs the WAL
 * (synchronous=FULL), as the log needs; otherwise only checkpoints fsync
 * (synchronous=NORMAL: a power loss may lose the newest commits but never
 * corrupts the file), which is enough for the derived index. Checkpoints
 * are run by the store itself, not inside commits. */
static sqlite3 *
open_connection (const char  *path,
                 gboolean     create,
                 gboolean     durable,
                 GError     **error)
{
  sqlite3 *db = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  char *errmsg = NULL;

  if (sqlite3_open_v2 (path, &db, flags, NULL) != SQLITE_OK) {
    set_sqlite_error (error, db, "Cannot open database");
    sqlite3_close (db);
    return NULL;
  }

  sqlite3_extended_result_codes (db, 1);
  sqlite3_busy_timeout (db, BUSY_TIMEOUT_MS);

  if (sqlite3_exec (db,
                    durable ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                            : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                    NULL, NULL, &errmsg) != SQLITE_OK ||
      sqlite3_exec (db,
                    "PRAGMA wal_autocheckpoint=0;"
                    "PRAGMA foreign_keys=OFF;"
                    "PRAGMA temp_store=MEMORY;"
                    "PRAGMA cache_size=-65536;",   /* 64 MiB */
                    NULL, NULL, &errmsg) != SQLITE_OK) {
    g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                 "Cannot configure database: %s", errmsg);
    sqlite3_free (errmsg);
    sqlite3_close (db);
    return NULL;
  }

  return db;
}

/* Called after every commit on a connection with the number of frames in the
 * WAL; wakes the checkpointer when the WAL has grown. */
static int
wal_hook_cb (void       *data,
             sqlite3    *db,
             const char *name,
             int         n_frames)
{
  ParleyStore *self = data;

  g_atomic_int_set (&self->wal_frames, n_frames);

  if (n_frames >= CHECKPOINT_FRAMES &&
      g_atomic_int_compare_and_exchange (&self->checkpoint_state, CHECKPOINT_IDLE,
                                         CHECKPOINT_BACKGROUND)) {
    g_mutex_lock (&self->checkpoint_lock);
    g_cond_signal (&self->checkpoint_cond);
    g_mutex_unlock (&self->checkpoint_lock);
  }

  return SQLITE_OK;
}

static gpointer
checkpointer_thread (gpointer data)
{
  ParleyStore *self = data;

  g_mutex_lock (&self->checkpoint_lock);
  for (;;) {
    int rc;

    while (g_atomic_int_get (&self->checkpoint_state) != CHECKPOINT_BACKGROUND &&
           !self->checkpoint_quit)
      g_cond_wait (&self->checkpoint_cond, &self->checkpoint_lock);
    if (self->checkpoint_quit)
      break;
    g_mutex_unlock (&self->checkpoint_lock);

    /* A passive checkpoint never blocks the writer or the readers. */
    rc = sqlite3_wal_checkpoint_v2 (self->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      g_debug ("Checkpoint failed: %s", sqlite3_errmsg (self->cdb));
    g_atomic_int_set (&self->checkpoint_state, CHECKPOINT_FINISH);

    g_mutex_lock (&self->checkpoint_lock);
  }
  g_mutex_unlock (&self->checkpoint_lock);

  return NULL;
}

/* Writer thread. */

static gboolean
step_done (sqlite3_stmt *stmt)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  return rc == SQLITE_DONE;
}

/* A pair of users known to be contacts; a key of known_contacts. */
typedef struct {
  gint64 a;
  gint64 b;
} ContactPair;

static guint
contact_pair_hash (gconstpointer key)
{
  const ContactPair *pair = key;

  return (guint) (pair->a * 1000003 ^ pair->b);
}

static gboolean
contact_pair_equal (gconstpointer x,
                    gconstpointer y)
{
  const ContactPair *p = x, *q = y;

  return p->a == q->a && p->b == q->b;
}

static gboolean
writer_add_contacts (ParleyStore *self,
                     gint64       a,
                     gint64       b,
                     GPtrArray   *new_contacts)
{
  ContactPair key = { a, b };
  ContactPair *pair;
  sqlite3_stmt *stmt = self->ws.insert_contact;

  if (g_hash_table_contains (self->known_contacts, &key))
    return TRUE;

  sqlite3_bind_int64 (stmt, 1, a);
  sqlite3_bind_int64 (stmt, 2, b);
  if (!step_done (stmt))
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, b);
  sqlite3_bind_int64 (stmt, 2, a);
  if (!step_done (stmt))
    return FALSE;

  pair = g_new (ContactPair, 1);
  *pair = key;
  /* The pair is only remembered once the batch commits (see
   * writer_run_batch()). */
  g_ptr_array_add (new_contacts, pair);
  return TRUE;
}


/* The key of a client id, as dedup stores it: for a time-ordered id
 * (UUIDv7, what Parley clients send) its time and the bits after it, so
 * that the index grows at its end (a random key puts every new row on
 * another page of a large index); for any other id its 64-bit FNV-1a hash.
 * Keys may collide; a match is confirmed against the log. The index keeps
 * the keys: changing how they are made needs a new INDEX_VERSION. */
static gint64
client_id_hash (const char *client_id)
{
  guint64 hash = G_GUINT64_CONSTANT (0xcbf29ce484222325);
  gint64 key;

  if (parley_uuid7_key (client_id, &key))
    return key;

  for (const guchar *p = (const guchar *) client_id; *p; p++) {
    hash ^= *p;
    hash *= G_GUINT64_CONSTANT (0x100000001b3);
  }
  return (gint64) hash;
}

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

static void
dedup_filter_free (DedupFilter *filter)
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

  filter->words[h & filter->mask] |= dedup_filter_bits (h);
  filter->n_keys++;
}

static gboolean
dedup_filter_may_contain (const DedupFilter *filter,
                          gint64             sender,
                          gint64             id_hash)
{
  guint64 h = dedup_filter_hash (sender, id_hash);
  guint64 bits = dedup_filter_bits (h);

  return (filter->words[h & filter->mask] & bits) == bits;
}

/* Builds a filter of every key in the dedup table of @db, sized for
 * @n_keys_hint keys (or as many as it finds, if more). Returns %NULL on a
 * database error. */
static DedupFilter *
dedup_filter_load (sqlite3 *db,
                   guint64  n_keys_hint)
{
  g_autoptr(sqlite3_stmt) stmt = prepare (db, "SELECT sender, id_hash FROM dedup", FALSE);
  DedupFilter *filter;
  int rc;

  if (stmt == NULL)
    return NULL;
  filter = dedup_filter_new (n_keys_hint);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    if (filter->n_keys > filter->grow_at) {
      /* More keys than expected: start again, larger. */
      guint64 n = filter->n_keys * 4;

      dedup_filter_free (filter);
      sqlite3_reset (stmt);
      filter = dedup_filter_new (n);
      continue;
    }
    dedup_filter_add (filter, sqlite3_column_int64 (stmt, 0), sqlite3_column_int64 (stmt, 1));
  }
  if (rc != SQLITE_DONE) {
    dedup_filter_free (filter);
    return NULL;
  }
  return filter;
}

/* The tail. Every function named *_locked runs under tail_lock. */

/* The number of committed rows not yet indexed. Seqs and receipt ids are
 * dense, as nothing is ever deleted from the log. */
static gint64
unindexed_locked (ParleyStore *self)
{
  return (self->committed_seq - self->indexed_seq) +
         (self->committed_receipt - self->indexed_receipt);
}


static guint
dedup_key_hash (gconstpointer data)
{
  const DedupKey *key = data;

  return (guint) (key->id_hash ^ (key->id_hash >> 32)) ^ (guint) key->sender * 1000003u;
}

static gboolean
dedup_key_equal (gconstpointer x,
                 gconstpointer y)
{
  const DedupKey *a = x, *b = y;

  return a->sender == b->sender && a->id_hash == b->id_hash &&
         strcmp (a->client_id, b->client_id) == 0;
}

static void
tail_message_free (TailMessage *msg)
{
  g_free (msg->key.client_id);
  g_free (msg);
}

static void
tail_add_message_locked (ParleyStore *self,
                         TailMessage *msg)
{
  g_ptr_array_add (self->tail_messages, msg);
  g_hash_table_insert (self->tail_by_seq, &msg->seq, msg);
  g_hash_table_insert (self->tail_by_key, &msg->key, msg);
}

static void
tail_add_receipt_locked (ParleyStore *self,
                         TailReceipt *receipt)
{
  TailMessage *msg = g_hash_table_lookup (self->tail_by_seq, &receipt->seq);

  g_ptr_array_add (self->tail_receipts, receipt);
  g_hash_table_insert (self->tail_receipt_by_seq, &receipt->seq, receipt);
  if (msg != NULL)
    msg->receipt_id = receipt->id;
}

/* Is the committed message @seq, which is not in the tail, already
 * delivered? Only the writer may ask, since only it adds receipts. The tail
 * is asked first: the indexer removes a receipt from the tail only after
 * committing it to the index, so a receipt is always found in one or the
 * other. Returns -1 on a database error. */
static int
writer_indexed_delivered (ParleyStore *self,
                          gint64       recipient,
                          gint64       seq)
{
  sqlite3_stmt *stmt = self->ws.find_pending;
  gboolean in_tail;
  int rc;

  g_mutex_lock (&self->tail_lock);
  in_tail = g_hash_table_contains (self->tail_receipt_by_seq, &seq);
  g_mutex_unlock (&self->tail_lock);
  if (in_tail)
    return 1;

  sqlite3_bind_int64 (stmt, 1, recipient);
  sqlite3_bind_int64 (stmt, 2, seq);
  rc = sqlite3_step (stmt);
  sqlite3_reset (stmt);
  if (rc == SQLITE_ROW)
    return 0;
  return rc == SQLITE_DONE ? 1 : -1;
}

/* Looks a resend up in the index (the caller looked in the tail before).
 * Returns 1 and fills in @op if found, 0 if not, -1 on a database error. */
static int
writer_find_indexed_duplicate (ParleyStore   *self,
                               gint64         sender,
                               gint64         id_hash,
                               ParleyStoreOp *op)
{
  sqlite3_stmt *stmt = self->ws.find_dedup;
  gint64 seq = 0, timestamp = 0, recipient = 0;
  gboolean found = FALSE;
  int rc, delivered;

  sqlite3_bind_int64 (stmt, 1, sender);
  sqlite3_bind_int64 (stmt, 2, id_hash);
  while (!found && (rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    sqlite3_stmt *check = self->ws.find_message;
    int check_rc;

    /* Confirm the hash match against the log. */
    seq = sqlite3_column_int64 (stmt, 0);
    timestamp = sqlite3_column_int64 (stmt, 1);
    recipient = sqlite3_column_int64 (stmt, 2);
    sqlite3_bind_int64 (check, 1, seq);
    check_rc = sqlite3_step (check);
    found = check_rc == SQLITE_ROW &&
            g_strcmp0 ((const char *) sqlite3_column_text (check, 2), op->message_id) == 0;
    sqlite3_reset (check);
    if (check_rc != SQLITE_ROW && check_rc != SQLITE_DONE) {
      rc = check_rc;
      break;
    }
  }
  sqlite3_reset (stmt);
  if (!found)
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;

  delivered = writer_indexed_delivered (self, recipient, seq);
  if (delivered < 0)
    return -1;
  op->seq = seq;
  op->timestamp = timestamp;
  op->delivered = delivered == 1;
  op->duplicate = TRUE;
  return 1;
}

static gboolean
writer_apply_message (ParleyStore   *self,
                      ParleyStoreOp *op,
                      GPtrArray     *new_contacts)
{
  WriterStatements *ws = &self->ws;
  sqlite3_stmt *stmt = ws->insert_message;
  DedupKey key;
  TailMessage *msg;
  gint64 sender, recipient;
  gboolean found, maybe_indexed = FALSE;
  int rc;

  if (op->user_id == NULL || op->peer_id == NULL || op->message_id == NULL ||
      op->content == NULL || op->content_len > G_MAXINT) {
    g_set_error_literal (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                         "Incomplete message");
    return TRUE;
  }
  sender = user_key (self, op->user_id);
  recipient = user_key (self, op->peer_id);
  if (sender == 0 || recipient == 0) {
    g_set_error_literal (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND,
                         "No such user");
    return TRUE;
  }

  /* A resend is answered with the original: look in the tail (which
   * includes this transaction's messages), then in the index. The indexer
   * drops a message from the tail only after committing it to the index,
   * so it is always found in one or the other. */
  key.sender = sender;
  key.id_hash = client_id_hash (op->message_id);
  key.client_id = op->message_id;
  g_mutex_lock (&self->tail_lock);
  msg = g_hash_table_lookup (self->tail_by_key, &key);
  found = msg != NULL;
  if (found) {
    op->seq = msg->seq;
    op->timestamp = msg->timestamp;
    op->delivered = msg->receipt_id != 0;
    op->duplicate = TRUE;
  } else {
    /* A key that left the tail was added to the filter before. */
    maybe_indexed = dedup_filter_may_contain (self->dedup_filter, sender, key.id_hash);
  }
  g_mutex_unlock (&self->tail_lock);
  if (found)
    return TRUE;

  if (maybe_indexed) {
    rc = writer_find_indexed_duplicate (self, sender, key.id_hash, op);
    if (rc != 0)
      return rc > 0;
  }

  sqlite3_bind_int64 (stmt, 1, sender);
  sqlite3_bind_int64 (stmt, 2, recipient);
  sqlite3_bind_text (stmt, 3, op->message_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 4, op->content, (int) op->content_len, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 5, op->timestamp);
  if (!step_done (stmt))
    return FALSE;

  op->seq = sqlite3_last_insert_rowid (self->wdb);
  op->duplicate = FALSE;
  op->delivered = FALSE;

  msg = g_new0 (TailMessage, 1);
  msg->key.sender = sender;
  msg->key.client_id = g_strdup (op->message_id);
  msg->seq = op->seq;
  msg->recipient = recipient;
  msg->timestamp = op->timestamp;
  msg->key.id_hash = key.id_hash;
  g_mutex_lock (&self->tail_lock);
  tail_add_message_locked (self, msg);
  g_mutex_unlock (&self->tail_lock);
  g_ptr_array_add (self->staged_messages, msg);

  return writer_add_contacts (self, sender, recipient, new_contacts);
}

static gboolean
writer_apply_received (ParleyStore   *self,
                       ParleyStoreOp *op)
{
  WriterStatements *ws = &self->ws;
  TailMessage *msg;
  TailReceipt *receipt;
  g_autofree char *client_id = NULL;
  const char *sender_id = NULL;
  gint64 recipient, sender = 0;
  gboolean in_tail, found = FALSE, pending = FALSE;

  if (op->user_id == NULL) {
    g_set_error_literal (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                         "Incomplete receipt");
    return TRUE;
  }
  recipient = user_key (self, op->user_id);

  if (recipient != 0) {
    /* The tail (this transaction included) first, then the log. */
    g_mutex_lock (&self->tail_lock);
    msg = g_hash_table_lookup (self->tail_by_seq, &op->seq);
    in_tail = msg != NULL;
    if (in_tail && msg->recipient == recipient) {
      found = TRUE;
      sender = msg->key.sender;
      client_id = g_strdup (msg->key.client_id);
      pending = msg->receipt_id == 0;
    }
    g_mutex_unlock (&self->tail_lock);

    if (!in_tail) {
      sqlite3_stmt *stmt = ws->find_message;
      int rc, delivered;

      sqlite3_bind_int64 (stmt, 1, op->seq);
      rc = sqlite3_step (stmt);
      if (rc == SQLITE_ROW && sqlite3_column_int64 (stmt, 1) == recipient) {
        found = TRUE;
        sender = sqlite3_column_int64 (stmt, 0);
        client_id = column_strdup (stmt, 2);
      }
      sqlite3_reset (stmt);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return FALSE;

      if (found) {
        delivered = writer_indexed_delivered (self, recipient, op->seq);
        if (delivered < 0)
          return FALSE;
        pending = delivered == 0;
      }
    }
  }

  if (found)
    sender_id = user_id_for_key (self, sender);
  if (sender_id == NULL) {
    g_set_error (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND,
                 "No message %" G_GINT64_FORMAT " for this user", op->seq);
    return TRUE;
  }
  g_free (op->orig_sender);
  g_free (op->orig_id);
  op->orig_sender = g_strdup (sender_id);
  op->orig_id = g_steal_pointer (&client_id);
  op->delivered = pending;
  if (!pending)
    return TRUE;

  sqlite3_bind_int64 (ws->insert_receipt, 1, op->seq);
  if (!step_done (ws->insert_receipt))
    return FALSE;

  receipt = g_new (TailReceipt, 1);
  receipt->id = sqlite3_last_insert_rowid (self->wdb);
  receipt->seq = op->seq;
  receipt->recipient = recipient;
  g_mutex_lock (&self->tail_lock);
  tail_add_receipt_locked (self, receipt);
  g_mutex_unlock (&self->tail_lock);
  g_ptr_array_add (self->staged_receipts, receipt);
  return TRUE;
}

/* Applies one op inside the open transaction. Returns FALSE on a database
 * failure that must abort the whole transaction; an op that is merely
 * invalid gets its own error and TRUE. */
static gboolean
writer_apply (ParleyStore   *self,
              ParleyStoreOp *op,
              GPtrArray     *new_contacts)
{
  switch (op->kind) {
  case PARLEY_STORE_OP_MESSAGE:
    return writer_apply_message (self, op, new_contacts);

  case PARLEY_STORE_OP_RECEIVED:
    return writer_apply_received (self, op);

  case PARLEY_STORE_OP_READ: {
    sqlite3_stmt *stmt = self->ws.upsert_read;
    gint64 user, peer;

    if (op->user_id == NULL || op->peer_id == NULL || op->message_id == NULL) {
      g_set_error_literal (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                           "Incomplete read marker");
      return TRUE;
    }
    user = user_key (self, op->user_id);
    peer = user_key (self, op->peer_id);
    if (user == 0 || peer == 0) {
      g_set_error_literal (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND,
                           "No such user");
      return TRUE;
    }

    sqlite3_bind_int64 (stmt, 1, user);
    sqlite3_bind_int64 (stmt, 2, peer);
    sqlite3_bind_text (stmt, 3, op->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 4, op->timestamp);
    return step_done (stmt);
  }

  default:
    g_set_error_literal (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                         "Unknown operation");
    return TRUE;
  }
}

static void
fail_batch (ParleyStoreOp **ops,
            guint           n_ops,
            const char     *message)
{
  for (guint i = 0; i < n_ops; i++) {
    ParleyStoreOp *op = ops[i];

    g_clear_error (&op->error);
    g_set_error (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                 "Transaction failed: %s", message);
    op->duplicate = FALSE;
    op->delivered = FALSE;
    g_clear_pointer (&op->orig_sender, g_free);
    g_clear_pointer (&op->orig_id, g_free);
    if (op->kind == PARLEY_STORE_OP_MESSAGE)
      op->seq = 0;
  }
}

/* Takes what a rolled back transaction added out of the tail again. It is
 * the end of both arrays: the indexer only removes committed entries. */
static void
writer_unstage (ParleyStore *self)
{
  g_mutex_lock (&self->tail_lock);
  for (guint i = self->staged_receipts->len; i > 0; i--) {
    TailReceipt *receipt = g_ptr_array_index (self->staged_receipts, i - 1);
    TailMessage *msg = g_hash_table_lookup (self->tail_by_seq, &receipt->seq);

    g_assert (g_ptr_array_index (self->tail_receipts, self->tail_receipts->len - 1) == receipt);
    g_ptr_array_set_size (self->tail_receipts, self->tail_receipts->len - 1);
    g_hash_table_remove (self->tail_receipt_by_seq, &receipt->seq);
    if (msg != NULL && msg->receipt_id == receipt->id)
      msg->receipt_id = 0;
    g_free (receipt);
  }
  for (guint i = self->staged_messages->len; i > 0; i--) {
    TailMessage *msg = g_ptr_array_index (self->staged_messages, i - 1);

    g_assert (g_ptr_array_index (self->tail_messages, self->tail_messages->len - 1) == msg);
    g_ptr_array_set_size (self->tail_messages, self->tail_messages->len - 1);
    g_hash_table_remove (self->tail_by_seq, &msg->seq);
    g_hash_table_remove (self->tail_by_key, &msg->key);
    tail_message_free (msg);
  }
  g_mutex_unlock (&self->tail_lock);
  g_ptr_array_set_size (self->staged_receipts, 0);
  g_ptr_array_set_size (self->staged_messages, 0);
}

/* Makes what a committed transaction added visible to readers and wakes
 * the indexer. */
static void
writer_publish (ParleyStore *self)
{
  g_mutex_lock (&self->tail_lock);
  if (self->staged_messages->len > 0) {
    TailMessage *last = g_ptr_array_index (self->staged_messages,
                                           self->staged_messages->len - 1);

    self->committed_seq = last->seq;
  }
  if (self->staged_receipts->len > 0) {
    TailReceipt *last = g_ptr_array_index (self->staged_receipts,
                                           self->staged_receipts->len - 1);

    self->committed_receipt = last->id;
  }
  /* The indexer only needs waking from its idle wait, or early from
   * gathering when enough is waiting. */
  if ((self->staged_messages->len > 0 || self->staged_receipts->len > 0) &&
      (self->index_idle || unindexed_locked (self) >= INDEX_MIN_ROWS))
    g_cond_signal (&self->index_cond);
  g_mutex_unlock (&self->tail_lock);
  g_ptr_array_set_size (self->staged_receipts, 0);
  g_ptr_array_set_size (self->staged_messages, 0);
}

/* Makes sure that the log's WAL has at least WAL_PRIME_FRAMES / 2 frames of
 * zeros beyond those in use (see WAL_PRIME_FRAMES). Called inside the
 * writer's transaction, whose BEGIN IMMEDIATE holds the WAL's write lock:
 * no connection can append meanwhile, and everything beyond the current end
 * of the file lies past the last frame. A frame of zeros never passes
 * SQLite's frame checks (page 0, salts and checksums that do not match), so
 * recovery stops before the primed space as it stops at the leftovers of an
 * earlier pass after a restart. The next commit's fdatasync writes the zeros
 * out with the frames; should priming fail, the WAL simply grows as before. */
static void
writer_prime_wal (ParleyStore *self)
{
  static const char zeros[64 * 1024];
  gint64 in_use = g_atomic_int_get (&self->wal_frames);
  gint64 wanted = WAL_HEADER_SIZE + (in_use + WAL_PRIME_FRAMES / 2) * self->wal_frame_size;
  struct stat st;
  gint64 end;
  int fd;

  if (self->wal_primed >= wanted)
    return;

  fd = open (self->wal_path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0) {
    g_debug ("Cannot prime the WAL: %s", g_strerror (errno));
    if (fd >= 0)
      close (fd);
    self->wal_primed = wanted;    /* try again further on */
    return;
  }
  self->wal_primed = st.st_size;
  end = WAL_HEADER_SIZE + (in_use + WAL_PRIME_FRAMES) * self->wal_frame_size;
  if (self->wal_primed >= wanted)
    end = self->wal_primed;       /* primed by an earlier run, or restarted */
  while (self->wal_primed < end) {
    gsize n = MIN ((gint64) sizeof zeros, end - self->wal_primed);
    ssize_t written = pwrite (fd, zeros, n, self->wal_primed);

    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0) {
      g_debug ("Cannot prime the WAL: %s", written < 0 ? g_strerror (errno) : "short write");
      self->wal_primed = wanted;  /* try again further on */
      break;
    }
    self->wal_primed += written;
  }
  close (fd);
}

/* Runs @n_ops ops in one transaction and commits it. */
static void
writer_run_batch (ParleyStore    *self,
                  ParleyStoreOp **ops,
                  guint           n_ops)
{
  g_autoptr(GPtrArray) new_contacts = g_ptr_array_new_with_free_func (g_free);
  gboolean ok;

  ok = step_done (self->ws.begin);
  if (ok)
    writer_prime_wal (self);
  for (guint i = 0; ok && i < n_ops; i++)
    ok = writer_apply (self, ops[i], new_contacts);
  if (ok)
    ok = step_done (self->ws.commit);

  if (!ok) {
    g_autofree char *message = g_strdup (sqlite3_errmsg (self->wdb));

    g_warning ("Batch of %u operations failed: %s", n_ops, message);
    if (!sqlite3_get_autocommit (self->wdb))
      step_done (self->ws.rollback);
    writer_unstage (self);
    fail_batch (ops, n_ops, message);
    return;
  }
  writer_publish (self);

  if (g_hash_table_size (self->known_contacts) > MAX_KNOWN_CONTACTS)
    g_hash_table_remove_all (self->known_contacts);
  for (guint i = 0; i < new_contacts->len; i++)
    g_hash_table_add (self->known_contacts, g_steal_pointer (&new_contacts->pdata[i]));
}

static gpointer
writer_thread (gpointer data)
{
  ParleyStore *self = data;
  g_autoptr(GPtrArray) batch = g_ptr_array_sized_new (MAX_BATCH);

  for (;;) {
    GPtrArray *tmp;

    g_mutex_lock (&self->queue_lock);
    while (self->queue->len == 0 && !self->closing)
      g_cond_wait (&self->queue_cond, &self->queue_lock);
    if (self->queue->len == 0) {
      /* Closing and drained. */
      g_mutex_unlock (&self->queue_lock);
      break;
    }
    tmp = self->queue;
    self->queue = batch;
    batch = tmp;
    g_mutex_unlock (&self->queue_lock);

    g_mutex_lock (&self->tail_lock);
    while (unindexed_locked (self) >= INDEX_MAX_ROWS && !self->index_paused &&
           !self->index_quit) {
      g_cond_signal (&self->index_cond);
      g_cond_wait (&self->indexed_cond, &self->tail_lock);
    }
    g_mutex_unlock (&self->tail_lock);

    for (guint start = 0; start < batch->len; start += MAX_BATCH) {
      guint n = MIN (MAX_BATCH, batch->len - start);
      ParleyStoreOp **ops = (ParleyStoreOp **) batch->pdata + start;

      writer_run_batch (self, ops, n);

      if (self->batch_done != NULL) {
        self->batch_done (ops, n, self->user_data);
      } else {
        for (guint i = 0; i < n; i++)
          parley_store_op_free (ops[i]);
      }
    }
    g_ptr_array_set_size (batch, 0);

    if (g_atomic_int_get (&self->checkpoint_state) == CHECKPOINT_FINISH) {
      sqlite3_wal_checkpoint_v2 (self->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
      g_atomic_int_set (&self->checkpoint_state, CHECKPOINT_IDLE);
    } else if (g_atomic_int_get (&self->wal_frames) >= CHECKPOINT_FRAMES_HARD &&
               g_atomic_int_get (&self->checkpoint_state) == CHECKPOINT_IDLE) {
      g_atomic_int_set (&self->wal_frames, 0);
      sqlite3_wal_checkpoint_v2 (self->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
  }

  return NULL;
}

static void
writer_statements_clear (WriterStatements *ws)
{
  g_clear_pointer (&ws->begin, sqlite3_finalize);
  g_clear_pointer (&ws->commit, sqlite3_finalize);
  g_clear_pointer (&ws->rollback, sqlite3_finalize);
  g_clear_pointer (&ws->insert_message, sqlite3_finalize);
  g_clear_pointer (&ws->find_message, sqlite3_finalize);
  g_clear_pointer (&ws->insert_receipt, sqlite3_finalize);
  g_clear_pointer (&ws->insert_contact, sqlite3_finalize);
  g_clear_pointer (&ws->upsert_read, sqlite3_finalize);
  g_clear_pointer (&ws->find_dedup, sqlite3_finalize);
  g_clear_pointer (&ws->find_pending, sqlite3_finalize);
}

static gboolean
writer_statements_init (WriterStatements *ws,
                        sqlite3          *db,
                        sqlite3          *idx)
{
  ws->begin = prepare (db, "BEGIN IMMEDIATE", TRUE);
  ws->commit = prepare (db, "COMMIT", TRUE);
  ws->rollback = prepare (db, "ROLLBACK", TRUE);
  ws->insert_message = prepare (db,
    "INSERT INTO messages (sender, recipient, client_id, content, timestamp)"
    " VALUES (?1, ?2, ?3, ?4, ?5)", TRUE);
  ws->find_message = prepare (db,
    "SELECT sender, recipient, client_id FROM messages WHERE seq = ?1", TRUE);
  ws->insert_receipt = prepare (db, "INSERT INTO receipts (seq) VALUES (?1)", TRUE);
  ws->insert_contact = prepare (db,
    "INSERT OR IGNORE INTO contacts (user, contact) VALUES (?1, ?2)", TRUE);
  ws->upsert_read = prepare (db,
    "INSERT INTO read_markers (user, peer, message_id, timestamp)"
    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user, peer) DO UPDATE"
    " SET message_id = excluded.message_id, timestamp = excluded.timestamp", TRUE);
  ws->find_dedup = prepare (idx,
    "SELECT seq, timestamp, recipient FROM dedup WHERE sender = ?1 AND id_hash = ?2", TRUE);
  ws->find_pending = prepare (idx,
    "SELECT 1 FROM pending WHERE recipient = ?1 AND seq = ?2", TRUE);

  return ws->begin && ws->commit && ws->rollback && ws->insert_message && ws->find_message &&
         ws->insert_receipt && ws->insert_contact && ws->upsert_read && ws->find_dedup &&
         ws->find_pending;
}

/* Indexer thread. */

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
    ok = step_done (stmt);
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

  ok = step_done (is->begin);
  g_qsort_with_data (sorted, n_msgs, sizeof (TailMessage *), compare_by_sender_hash, NULL);
  for (guint i = 0; i < n_msgs; i++) {
    gint64 row[] = { sorted[i]->key.sender, sorted[i]->key.id_hash, sorted[i]->seq,
                     sorted[i]->timestamp, sorted[i]->recipient };

    g_array_append_vals (values, row, G_N_ELEMENTS (row));
  }
  ok = ok && bulk_insert (is->insert_dedup, 5, values);
  g_qsort_with_data (sorted, n_msgs, sizeof (TailMessage *), compare_by_sender_seq, NULL);
  for (guint i = 0; i < n_msgs; i++) {
    gint64 row[] = { sorted[i]->key.sender, sorted[i]->seq };

    g_array_append_vals (values, row, G_N_ELEMENTS (row));
  }
  ok = ok && bulk_insert (is->insert_sent, 2, values);
  g_qsort_with_data (sorted, n_msgs, sizeof (TailMessage *), compare_by_recipient_seq, NULL);
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
    ok = step_done (is->delete_pending);
  }
  if (ok) {
    sqlite3_bind_int64 (is->update_meta, 1, to_seq);
    sqlite3_bind_int64 (is->update_meta, 2, to_receipt);
    ok = step_done (is->update_meta);
  }
  if (ok)
    ok = step_done (is->commit);

  if (!ok) {
    g_warning ("Cannot update the message index: %s", sqlite3_errmsg (self->idx));
    if (!sqlite3_get_autocommit (self->idx))
      step_done (is->rollback);
  }
  return ok;
}

/* Removes the first @n_msgs messages and @n_receipts receipts from the
 * tail, which the index has now. */
static void
tail_drop_indexed_locked (ParleyStore *self,
                          guint        n_msgs,
                          guint        n_receipts)
{
  for (guint i = 0; i < n_msgs; i++) {
    TailMessage *msg = g_ptr_array_index (self->tail_messages, i);

    /* Into the filter before out of the tail (under the same lock), so
     * that the writer finds the key in one or the other. */
    dedup_filter_add (self->dedup_filter, msg->key.sender, msg->key.id_hash);
    g_hash_table_remove (self->tail_by_seq, &msg->seq);
    g_hash_table_remove (self->tail_by_key, &msg->key);
    tail_message_free (msg);
  }
  g_ptr_array_remove_range (self->tail_messages, 0, n_msgs);

  for (guint i = 0; i < n_receipts; i++) {
    TailReceipt *receipt = g_ptr_array_index (self->tail_receipts, i);

    g_hash_table_remove (self->tail_receipt_by_seq, &receipt->seq);
    g_free (receipt);
  }
  g_ptr_array_remove_range (self->tail_receipts, 0, n_receipts);
}

static gpointer
indexer_thread (gpointer data)
{
  ParleyStore *self = data;
  g_autoptr(GPtrArray) msgs = g_ptr_array_new ();
  g_autoptr(GPtrArray) receipts = g_ptr_array_new ();

  /* Indexing is deferrable work: when it competes for a CPU with the
   * threads on the ack path, they should win, and it should run in their
   * idle time (waiting for fsync, for the network). */
  if (setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), INDEXER_NICE) != 0)
    g_debug ("Cannot lower the indexer's priority: %s", g_strerror (errno));

  g_mutex_lock (&self->tail_lock);
  for (;;) {
    gint64 deadline, from_seq, to_seq, to_receipt;
    guint n_msgs = 0, n_receipts = 0;
    gboolean ok;

    if (self->index_paused || unindexed_locked (self) == 0) {
      if (self->index_quit)
        break;
      self->index_idle = TRUE;
      g_cond_wait (&self->index_cond, &self->tail_lock);
      self->index_idle = FALSE;
      continue;
    }

    /* Let more gather, so that the transaction is large. */
    deadline = g_get_monotonic_time () + INDEX_DELAY_MS * G_TIME_SPAN_MILLISECOND;
    while (!self->index_quit && !self->index_paused && self->index_flushers == 0 &&
           unindexed_locked (self) < INDEX_MIN_ROWS) {
      if (!g_cond_wait_until (&self->index_cond, &self->tail_lock, deadline))
        break;
    }
    if (self->index_paused)
      continue;

    /* The committed part of the tail, a prefix of each array, at most
     * INDEX_TXN_ROWS of each. A receipt goes with its message or after it,
     * never before: the receipts stop at the first one for a message that
     * is not in this transaction. */
    from_seq = self->indexed_seq;
    to_seq = self->committed_seq;
    to_receipt = self->committed_receipt;
    while (n_msgs < self->tail_messages->len && n_msgs < INDEX_TXN_ROWS &&
           ((TailMessage *) g_ptr_array_index (self->tail_messages, n_msgs))->seq <= to_seq)
      n_msgs++;
    if (n_msgs > 0)
      to_seq = ((TailMessage *) g_ptr_array_index (self->tail_messages, n_msgs - 1))->seq;
    while (n_receipts < self->tail_receipts->len && n_receipts < INDEX_TXN_ROWS) {
      TailReceipt *receipt = g_ptr_array_index (self->tail_receipts, n_receipts);

      if (receipt->id > to_receipt || receipt->seq > to_seq)
        break;
      n_receipts++;
    }
    if (n_receipts > 0)
      to_receipt = ((TailReceipt *) g_ptr_array_index (self->tail_receipts, n_receipts - 1))->id;
    else
      to_receipt = self->indexed_receipt;
    g_ptr_array_set_size (msgs, 0);
    g_ptr_array_set_size (receipts, 0);
    for (guint i = 0; i < n_msgs; i++)
      g_ptr_array_add (msgs, g_ptr_array_index (self->tail_messages, i));
    for (guint i = 0; i < n_receipts; i++)
      g_ptr_array_add (receipts, g_ptr_array_index (self->tail_receipts, i));
    g_mutex_unlock (&self->tail_lock);

    /* Entries of the committed prefix are only ever removed by this thread,
     * so they stay valid without the lock. */
    ok = indexer_apply (self, (TailMessage **) msgs->pdata, n_msgs,
                        (TailReceipt **) receipts->pdata, n_receipts,
                        from_seq, to_seq, to_receipt);

    g_mutex_lock (&self->tail_lock);
    if (ok) {
      tail_drop_indexed_locked (self, n_msgs, n_receipts);
      self->indexed_seq = to_seq;
      self->indexed_receipt = to_receipt;
      g_cond_broadcast (&self->indexed_cond);
      if (self->dedup_filter->n_keys > self->dedup_filter->grow_at) {
        DedupFilter *filter;

        /* Only this thread writes to the index, so a scan of it now sees
         * every indexed key; meanwhile the old filter stays in use. */
        g_mutex_unlock (&self->tail_lock);
        filter = dedup_filter_load (self->idx, self->dedup_filter->n_keys * 4);
        g_mutex_lock (&self->tail_lock);
        if (filter != NULL) {
          dedup_filter_free (self->dedup_filter);
          self->dedup_filter = filter;
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

static void
indexer_statements_clear (IndexerStatements *is)
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
  return prepare (db, sql->str, TRUE);
}

static gboolean
indexer_statements_init (IndexerStatements *is,
                         sqlite3           *db)
{
  is->begin = prepare (db, "BEGIN IMMEDIATE", TRUE);
  is->commit = prepare (db, "COMMIT", TRUE);
  is->rollback = prepare (db, "ROLLBACK", TRUE);
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
  is->delete_pending = prepare (db, "DELETE FROM pending WHERE recipient = ?1 AND seq = ?2",
                                TRUE);
  is->update_meta = prepare (db,
    "UPDATE meta SET indexed_seq = ?1, indexed_receipt = ?2 WHERE id = 1", TRUE);

  return is->begin && is->commit && is->rollback && is->delete_pending && is->update_meta;
}

static gint64
query_int (sqlite3    *db,
           const char *sql)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
    return -1;
  return sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : -1;
}


/* Creates the schema @sql in an empty database, or checks that the database
 * has the schema @version. */
static gboolean
ensure_schema (sqlite3     *db,
               const char  *path,
               const char  *sql,
               int          version,
               GError     **error)
{
  char *errmsg = NULL;
  gint64 found, n_objects;

  if (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    set_sqlite_error (error, db, "Cannot read the schema");
    return FALSE;
  }

  found = query_int (db, "PRAGMA user_version");
  n_objects = query_int (db, "SELECT count(*) FROM sqlite_schema");
  if (found < 0 || n_objects < 0) {
    set_sqlite_error (error, db, "Cannot read the schema");
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    return FALSE;
  }

  if (found == 0 && n_objects == 0) {
    g_autofree char *script = g_strdup_printf ("%s PRAGMA user_version = %d;", sql, version);

    if (sqlite3_exec (db, script, NULL, NULL, &errmsg) != SQLITE_OK) {
      g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                   "Cannot create the schema: %s", errmsg);
      sqlite3_free (errmsg);
      sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  } else if (found != version) {
    g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                 "The database %s has schema version %" G_GINT64_FORMAT ", but this version "
                 "of Parley needs version %d; it cannot use that database", path, found,
                 version);
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    return FALSE;
  }

  if (sqlite3_exec (db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    set_sqlite_error (error, db, "Cannot create the schema");
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    return FALSE;
  }
  return TRUE;
}

static void
index_close (ParleyStore *self)
{
  writer_statements_clear (&self->ws);
  indexer_statements_clear (&self->is);
  g_clear_pointer (&self->widx, sqlite3_close);
  g_clear_pointer (&self->ridx, sqlite3_close);
  g_clear_pointer (&self->idx, sqlite3_close);
}

/* Opens (or creates) the index and checks that it fits the log, whose
 * newest message is @max_seq and newest receipt @max_receipt. */
static gboolean
index_open (ParleyStore  *self,
            gint64        max_seq,
            gint64        max_receipt,
            GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  self->idx = open_connection (self->index_path, TRUE, FALSE, error);
  if (self->idx == NULL)
    return FALSE;
  if (!ensure_schema (self->idx, self->index_path, index_schema_sql, INDEX_VERSION, error))
    return FALSE;

  stmt = prepare (self->idx, "SELECT indexed_seq, indexed_receipt FROM meta WHERE id = 1", FALSE);
  if (stmt == NULL || sqlite3_step (stmt) != SQLITE_ROW) {
    g_set_error_literal (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                         "It has no progress record");
    return FALSE;
  }
  self->indexed_seq = sqlite3_column_int64 (stmt, 0);
  self->indexed_receipt = sqlite3_column_int64 (stmt, 1);
  if (self->indexed_seq < 0 || self->indexed_seq > max_seq ||
      self->indexed_receipt < 0 || self->indexed_receipt > max_receipt) {
    g_set_error_literal (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                         "It covers messages the database does not have");
    return FALSE;
  }

  sqlite3_exec (self->idx, "PRAGMA wal_autocheckpoint=" G_STRINGIFY (INDEX_AUTOCHECKPOINT_PAGES),
                NULL, NULL, NULL);
  if (!indexer_statements_init (&self->is, self->idx)) {
    set_sqlite_error (error, self->idx, "Cannot prepare statements");
    return FALSE;
  }

  self->widx = open_connection (self->index_path, FALSE, FALSE, error);
  if (self->widx == NULL)
    return FALSE;
  self->ridx = open_connection (self->index_path, FALSE, FALSE, error);
  if (self->ridx == NULL)
    return FALSE;

  if (!writer_statements_init (&self->ws, self->wdb, self->widx)) {
    set_sqlite_error (error, self->wdb, "Cannot prepare statements");
    return FALSE;
  }
  return TRUE;
}

/* Opens the index; one that cannot be used is deleted and rebuilt from the
 * log (everything in it is derived from the log). */
static gboolean
index_open_or_rebuild (ParleyStore  *self,
                       gint64        max_seq,
                       gint64        max_receipt,
                       GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  const char *suffixes[] = { "", "-wal", "-shm" };

  if (index_open (self, max_seq, max_receipt, &local_error))
    return TRUE;

  g_message ("The message index %s cannot be used (%s); rebuilding it from the database",
             self->index_path, local_error->message);
  index_close (self);
  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *file = g_strconcat (self->index_path, suffixes[i], NULL);

    if (g_unlink (file) != 0 && errno != ENOENT) {
      g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                   "Cannot delete the damaged message index %s: %s", file, g_strerror (errno));
      return FALSE;
    }
  }
  self->indexed_seq = 0;
  self->indexed_receipt = 0;
  return index_open (self, max_seq, max_receipt, error);
}

/* Loads what the log has beyond the index into the tail. */
static gboolean
load_tail (ParleyStore  *self,
           GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  stmt = prepare (self->rdb,
                  "SELECT seq, sender, recipient, client_id, timestamp FROM messages"
                  " WHERE seq > ?1 ORDER BY seq", FALSE);
  if (stmt == NULL)
    goto fail;
  sqlite3_bind_int64 (stmt, 1, self->indexed_seq);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    TailMessage *msg = g_new0 (TailMessage, 1);

    msg->seq = sqlite3_column_int64 (stmt, 0);
    msg->key.sender = sqlite3_column_int64 (stmt, 1);
    msg->recipient = sqlite3_column_int64 (stmt, 2);
    msg->key.client_id = column_strdup (stmt, 3);
    msg->timestamp = sqlite3_column_int64 (stmt, 4);
    if (msg->key.client_id == NULL)
      msg->key.client_id = g_strdup ("");
    msg->key.id_hash = client_id_hash (msg->key.client_id);
    tail_add_message_locked (self, msg);
  }
  if (rc != SQLITE_DONE)
    goto fail;
  g_clear_pointer (&stmt, sqlite3_finalize);

  stmt = prepare (self->rdb,
                  "SELECT r.id, r.seq, m.recipient FROM receipts r JOIN messages m ON m.seq = r.seq"
                  " WHERE r.id > ?1 ORDER BY r.id", FALSE);
  if (stmt == NULL)
    goto fail;
  sqlite3_bind_int64 (stmt, 1, self->indexed_receipt);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    TailReceipt *receipt = g_new (TailReceipt, 1);

    receipt->id = sqlite3_column_int64 (stmt, 0);
    receipt->seq = sqlite3_column_int64 (stmt, 1);
    receipt->recipient = sqlite3_column_int64 (stmt, 2);
    tail_add_receipt_locked (self, receipt);
  }
  if (rc != SQLITE_DONE)
    goto fail;

  g_debug ("%u messages and %u receipts were not indexed yet", self->tail_messages->len,
           self->tail_receipts->len);
  return TRUE;

fail:
  set_sqlite_error (error, self->rdb, "Cannot read the message log");
  return FALSE;
}

static gboolean
load_users (ParleyStore  *self,
            GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = prepare (self->rdb, "SELECT key, id, username FROM users", FALSE);
  int rc;

  if (stmt == NULL) {
    set_sqlite_error (error, self->rdb, "Cannot read users");
    return FALSE;
  }
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    users_add_locked (self, sqlite3_column_int64 (stmt, 0),
                      (const char *) sqlite3_column_text (stmt, 1),
                      (const char *) sqlite3_column_text (stmt, 2));
  if (rc != SQLITE_DONE) {
    set_sqlite_error (error, self->rdb, "Cannot read users");
    return FALSE;
  }
  return TRUE;
}


static void
store_free (ParleyStore *self)
{
  index_close (self);
  g_clear_pointer (&self->wdb, sqlite3_close);
  g_clear_pointer (&self->rdb, sqlite3_close);
  g_clear_pointer (&self->cdb, sqlite3_close);
  g_clear_pointer (&self->queue, g_ptr_array_unref);
  g_clear_pointer (&self->known_contacts, g_hash_table_unref);
  g_clear_pointer (&self->users, g_hash_table_unref);
  g_clear_pointer (&self->user_keys, g_hash_table_unref);
  g_clear_pointer (&self->tail_by_seq, g_hash_table_unref);
  g_clear_pointer (&self->tail_by_key, g_hash_table_unref);
  g_clear_pointer (&self->tail_receipt_by_seq, g_hash_table_unref);
  g_clear_pointer (&self->dedup_filter, dedup_filter_free);
  for (guint i = 0; self->tail_messages != NULL && i < self->tail_messages->len; i++)
    tail_message_free (g_ptr_array_index (self->tail_messages, i));
  for (guint i = 0; self->tail_receipts != NULL && i < self->tail_receipts->len; i++)
    g_free (g_ptr_array_index (self->tail_receipts, i));
  g_clear_pointer (&self->tail_messages, g_ptr_array_unref);
  g_clear_pointer (&self->tail_receipts, g_ptr_array_unref);
  g_clear_pointer (&self->staged_messages, g_ptr_array_unref);
  g_clear_pointer (&self->staged_receipts, g_ptr_array_unref);
  g_mutex_clear (&self->queue_lock);
  g_cond_clear (&self->queue_cond);
  g_mutex_clear (&self->read_lock);
  g_mutex_clear (&self->checkpoint_lock);
  g_cond_clear (&self->checkpoint_cond);
  g_mutex_clear (&self->tail_lock);
  g_cond_clear (&self->index_cond);
  g_cond_clear (&self->indexed_cond);
  g_rw_lock_clear (&self->users_lock);
  g_free (self->path);
  g_free (self->index_path);
  g_free (self->wal_path);
  g_free (self);
}

/**
 * parley_store_op_new:
 * @kind: what the op does
 *
 * Creates an empty op; fill in the in fields, then parley_store_submit() it.
 *
 * Returns: (transfer full): a new op
 */
ParleyStoreOp *
parley_store_op_new (ParleyStoreOpKind kind)
{
  ParleyStoreOp *op = g_new0 (ParleyStoreOp, 1);

  op->kind = kind;
  return op;
}

/**
 * parley_store_op_free:
 * @op: (nullable): an op
 *
 * Frees @op and the strings and error it owns. @caller_data is not touched.
 */
void
parley_store_op_free (ParleyStoreOp *op)
{
  if (op == NULL)
    return;

  g_free (op->user_id);
  g_free (op->peer_id);
  g_free (op->message_id);
  g_free (op->content);
  g_free (op->orig_sender);
  g_free (op->orig_id);
  g_clear_error (&op->error);
  g_free (op);
}

/**
 * parley_user_info_free:
 * @info: (nullable): a user info
 *
 * Frees @info.
 */
void
parley_user_info_free (ParleyUserInfo *info)
{
  if (info == NULL)
    return;

  g_free (info->user_id);
  g_free (info->username);
  g_free (info);
}

/**
 * parley_stored_message_free:
 * @msg: (nullable): a stored message
 *
 * Frees @msg.
 */
void
parley_stored_message_free (ParleyStoredMessage *msg)
{
  if (msg == NULL)
    return;

  g_free (msg->id);
  g_free (msg->sender_id);
  g_free (msg->recipient_id);
  g_free (msg->content);
  g_free (msg);
}


/**
 * parley_store_open:
 * @path: the database file, created if missing
 * @batch_done: (nullable): called on the writer thread after every batch;
 *   if %NULL the store frees the ops itself
 * @user_data: data for @batch_done
 * @error: return location for a #GError
 *
 * Opens (and if needed creates) the database and its message index (the
 * file @path with `-index` appended, rebuilt from the database if it is
 * missing or damaged) and starts the writer and indexer threads.
 *
 * Returns: (transfer full): the store, or %NULL with @error set
 */
ParleyStore *
parley_store_open (const char            *path,
                   ParleyStoreBatchFunc   batch_done,
                   gpointer               user_data,
                   GError               **error)
{
  ParleyStore *self;
  gint64 max_seq, max_receipt;

  g_return_val_if_fail (path != NULL, NULL);

  self = g_new0 (ParleyStore, 1);
  self->path = g_strdup (path);
  self->index_path = g_strconcat (path, "-index", NULL);
  self->wal_path = g_strconcat (path, "-wal", NULL);
  self->batch_done = batch_done;
  self->user_data = user_data;
  self->queue = g_ptr_array_sized_new (MAX_BATCH);
  self->known_contacts = g_hash_table_new_full (contact_pair_hash, contact_pair_equal, g_free,
                                                NULL);
  self->users = g_hash_table_new (g_str_hash, g_str_equal);
  self->user_keys = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                           (GDestroyNotify) user_entry_free);
  self->staged_messages = g_ptr_array_new ();
  self->staged_receipts = g_ptr_array_new ();
  self->tail_messages = g_ptr_array_new ();
  self->tail_receipts = g_ptr_array_new ();
  self->tail_by_seq = g_hash_table_new (g_int64_hash, g_int64_equal);
  self->tail_by_key = g_hash_table_new (dedup_key_hash, dedup_key_equal);
  self->tail_receipt_by_seq = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_mutex_init (&self->queue_lock);
  g_cond_init (&self->queue_cond);
  g_mutex_init (&self->read_lock);
  g_mutex_init (&self->checkpoint_lock);
  g_cond_init (&self->checkpoint_cond);
  g_mutex_init (&self->tail_lock);
  g_cond_init (&self->index_cond);
  g_cond_init (&self->indexed_cond);
  g_rw_lock_init (&self->users_lock);

  self->wdb = open_connection (path, TRUE, TRUE, error);
  if (self->wdb == NULL)
    goto fail;

  if (!ensure_schema (self->wdb, path, schema_sql, SCHEMA_VERSION, error))
    goto fail;

  self->wal_frame_size = query_int (self->wdb, "PRAGMA page_size");
  if (self->wal_frame_size <= 0) {
    set_sqlite_error (error, self->wdb, "Cannot read the page size");
    goto fail;
  }
  self->wal_frame_size += WAL_FRAME_HEADER_SIZE;

  self->rdb = open_connection (path, FALSE, TRUE, error);
  if (self->rdb == NULL)
    goto fail;
  self->cdb = open_connection (path, FALSE, TRUE, error);
  if (self->cdb == NULL)
    goto fail;

  if (!load_users (self, error))
    goto fail;

  max_seq = query_int (self->rdb, "SELECT coalesce (max (seq), 0) FROM messages");
  max_receipt = query_int (self->rdb, "SELECT coalesce (max (id), 0) FROM receipts");
  if (max_seq < 0 || max_receipt < 0) {
    set_sqlite_error (error, self->rdb, "Cannot read the message log");
    goto fail;
  }
  self->committed_seq = max_seq;
  self->committed_receipt = max_receipt;

  if (!index_open_or_rebuild (self, max_seq, max_receipt, error))
    goto fail;
  self->dedup_filter = dedup_filter_load (self->idx, (guint64) self->indexed_seq);
  if (self->dedup_filter == NULL) {
    set_sqlite_error (error, self->idx, "Cannot read the message index");
    goto fail;
  }
  if (!load_tail (self, error))
    goto fail;

  /* Writes on either connection may grow the WAL. */
  sqlite3_wal_hook (self->wdb, wal_hook_cb, self);
  sqlite3_wal_hook (self->rdb, wal_hook_cb, self);

  self->checkpointer = g_thread_new ("parley-ckpt", checkpointer_thread, self);
  self->indexer = g_thread_new ("parley-index", indexer_thread, self);
  self->writer = g_thread_new ("parley-store", writer_thread, self);

  g_debug ("Opened store with %u users", g_hash_table_size (self->users));
  return self;

fail:
  store_free (self);
  return NULL;
}

/**
 * parley_store_close:
 * @self: (transfer full): a store
 *
 * Commits everything submitted so far (calling the batch callback as
 * usual), lets the indexer catch up (unless it was paused with
 * parley_store_pause_indexer()), stops the threads, checkpoints and closes
 * the database and the index. Nothing may be submitted once this was
 * called.
 */
void
parley_store_close (ParleyStore *self)
{
  if (self == NULL)
    return;

  g_mutex_lock (&self->queue_lock);
  self->closing = TRUE;
  g_cond_signal (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);
  g_thread_join (self->writer);

  g_mutex_lock (&self->tail_lock);
  self->index_quit = TRUE;
  g_cond_broadcast (&self->index_cond);
  g_mutex_unlock (&self->tail_lock);
  g_thread_join (self->indexer);

  g_mutex_lock (&self->checkpoint_lock);
  self->checkpoint_quit = TRUE;
  g_cond_signal (&self->checkpoint_cond);
  g_mutex_unlock (&self->checkpoint_lock);
  g_thread_join (self->checkpointer);

  sqlite3_wal_hook (self->wdb, NULL, NULL);
  sqlite3_wal_hook (self->rdb, NULL, NULL);
  sqlite3_wal_checkpoint_v2 (self->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  sqlite3_wal_checkpoint_v2 (self->idx, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

  store_free (self);
}

/**
 * parley_store_pause_indexer:
 * @self: a store
 * @paused: whether the indexer should stop indexing
 *
 * For tests: while paused, the indexer leaves everything committed in the
 * in-memory tail, and parley_store_close() does not wait for it to catch
 * up, as after a crash. Queries answer the same either way.
 */
void
parley_store_pause_indexer (ParleyStore *self,
                            gboolean     paused)
{
  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->tail_lock);
  self->index_paused = paused;
  g_cond_broadcast (&self->index_cond);
  g_cond_broadcast (&self->indexed_cond);
  g_mutex_unlock (&self->tail_lock);
}

/**
 * parley_store_flush_index:
 * @self: a store
 *
 * For tests and benchmarks: waits until everything committed so far is
 * indexed. Returns at once if the indexer is paused.
 *
 * Returns: %TRUE if everything committed so far is indexed
 */
gboolean
parley_store_flush_index (ParleyStore *self)
{
  gint64 seq, receipt;
  gboolean done;

  g_return_val_if_fail (self != NULL, FALSE);

  g_mutex_lock (&self->tail_lock);
  seq = self->committed_seq;
  receipt = self->committed_receipt;
  self->index_flushers++;
  g_cond_broadcast (&self->index_cond);
  while (!self->index_paused && !self->index_quit &&
         (self->indexed_seq < seq || self->indexed_receipt < receipt))
    g_cond_wait (&self->indexed_cond, &self->tail_lock);
  self->index_flushers--;
  done = self->indexed_seq >= seq && self->indexed_receipt >= receipt;
  g_mutex_unlock (&self->tail_lock);

  return done;
}

/**
 * parley_store_submit:
 * @self: a store
 * @op: (transfer full): the op
 *
 * Queues @op for the writer thread. Never blocks on I/O; the result arrives
 * through the batch callback once the op's transaction committed.
 */
void
parley_store_submit (ParleyStore   *self,
                     ParleyStoreOp *op)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (op != NULL);

  g_mutex_lock (&self->queue_lock);
  if (G_UNLIKELY (self->closing)) {
    g_mutex_unlock (&self->queue_lock);
    g_critical ("Operation submitted to a closing store");
    parley_store_op_free (op);
    return;
  }
  g_ptr_array_add (self->queue, op);
  /* The writer only ever waits on an empty queue. */
  if (self->queue->len == 1)
    g_cond_signal (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);
}

/* The read connection. Every helper below holds read_lock while it uses
 * rdb, so statements are prepared and finalised under the lock. */

static gboolean
exec_locked (ParleyStore *self,
             const char  *sql)
{
  return sqlite3_exec (self->rdb, sql, NULL, NULL, NULL) == SQLITE_OK;
}

/**
 * parley_store_create_user:
 * @self: a store
 * @username: the (already case-folded and validated) user name
 * @password_hash: the encoded Argon2id hash
 * @out_user_id: (out) (optional) (transfer full): the new user's id
 * @error: return location for a #GError
 *
 * Creates a user with a fresh random id (32 lower-case hex characters).
 *
 * Returns: %TRUE on success; %FALSE with %PARLEY_STORE_ERROR_EXISTS if the
 *   name is taken
 */
gboolean
parley_store_create_user (ParleyStore  *self,
                          const char   *username,
                          const char   *password_hash,
                          char        **out_user_id,
                          GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autofree char *user_id = new_user_id ();
  gint64 key = 0;
  gboolean ok;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (username != NULL && password_hash != NULL, FALSE);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "INSERT INTO users (id, username, password_hash, created)"
                  " VALUES (?1, ?2, ?3, ?4)",
                  FALSE);
  sqlite3_bind_text (stmt, 1, user_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, username, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 3, password_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 4, g_get_real_time () / G_USEC_PER_SEC);
  ok = sqlite3_step (stmt) == SQLITE_DONE;
  if (ok) {
    key = sqlite3_last_insert_rowid (self->rdb);
  } else {
    if (sqlite3_extended_errcode (self->rdb) == SQLITE_CONSTRAINT_UNIQUE)
      g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_EXISTS,
                   "User name is taken");
    else
      set_sqlite_error (error, self->rdb, "Cannot create user");
  }
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  if (!ok)
    return FALSE;

  g_rw_lock_writer_lock (&self->users_lock);
  users_add_locked (self, key, user_id, username);
  g_rw_lock_writer_unlock (&self->users_lock);

  g_debug ("Created user %s", user_id);
  if (out_user_id != NULL)
    *out_user_id = g_steal_pointer (&user_id);
  return TRUE;
}

/**
 * parley_store_find_user:
 * @self: a store
 * @username: the user name
 * @out_user_id: (out) (optional) (transfer full): the user's id
 * @out_hash: (out) (optional) (transfer full): the user's password hash
 * @error: return location for a #GError
 *
 * Looks a user up by name.
 *
 * Returns: %TRUE if found; %FALSE with %PARLEY_STORE_ERROR_NOT_FOUND if not
 */
gboolean
parley_store_find_user (ParleyStore  *self,
                        const char   *username,
                        char        **out_user_id,
                        char        **out_hash,
                        GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gboolean found = FALSE;
  int rc;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (username != NULL, FALSE);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb, "SELECT id, password_hash FROM users WHERE username = ?1", FALSE);
  sqlite3_bind_text (stmt, 1, username, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW) {
    found = TRUE;
    if (out_user_id != NULL)
      *out_user_id = column_strdup (stmt, 0);
    if (out_hash != NULL)
      *out_hash = column_strdup (stmt, 1);
  } else if (rc == SQLITE_DONE) {
    g_set_error_literal (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND,
                         "No such user");
  } else {
    set_sqlite_error (error, self->rdb, "Cannot look up user");
  }
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return found;
}

/**
 * parley_store_user_exists:
 * @self: a store
 * @user_id: (nullable): a user id
 *
 * Checks an in-memory set of user ids; cheap enough for every message.
 *
 * Returns: %TRUE if @user_id is a registered user
 */
gboolean
parley_store_user_exists (ParleyStore *self,
                          const char  *user_id)
{
  return parley_store_lookup_username (self, user_id) != NULL;
}

/**
 * parley_store_lookup_username:
 * @self: a store
 * @user_id: (nullable): a user id
 *
 * Looks @user_id up in memory (any thread, no I/O). Users are never
 * deleted and never renamed, so the name stays valid as long as the store.
 *
 * Returns: (transfer none) (nullable): the user name, or %NULL if unknown
 */
const char *
parley_store_lookup_username (ParleyStore *self,
                              const char  *user_id)
{
  UserEntry *entry;

  g_return_val_if_fail (self != NULL, NULL);

  if (user_id == NULL)
    return NULL;

  g_rw_lock_reader_lock (&self->users_lock);
  entry = g_hash_table_lookup (self->users, user_id);
  g_rw_lock_reader_unlock (&self->users_lock);

  return entry != NULL ? entry->username : NULL;
}

/**
 * parley_store_get_username:
 * @self: a store
 * @user_id: a user id
 *
 * Returns: (transfer full) (nullable): the user's name, or %NULL if unknown
 */
char *
parley_store_get_username (ParleyStore *self,
                           const char  *user_id)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  char *username = NULL;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (user_id != NULL, NULL);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb, "SELECT username FROM users WHERE id = ?1", FALSE);
  sqlite3_bind_text (stmt, 1, user_id, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    username = column_strdup (stmt, 0);
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return username;
}

static GPtrArray *
collect_users (sqlite3_stmt *stmt)
{
  GPtrArray *users = g_ptr_array_new_with_free_func ((GDestroyNotify) parley_user_info_free);

  while (sqlite3_step (stmt) == SQLITE_ROW) {
    ParleyUserInfo *info = g_new0 (ParleyUserInfo, 1);

    info->user_id = column_strdup (stmt, 0);
    info->username = column_strdup (stmt, 1);
    g_ptr_array_add (users, info);
  }
  return users;
}

/**
 * parley_store_search_users:
 * @self: a store
 * @prefix: the start of the user names to find (may be empty)
 * @limit: the most users to return
 *
 * Finds users whose names start with @prefix, in name order.
 *
 * Returns: (transfer container) (element-type ParleyUserInfo): the users
 */
GPtrArray *
parley_store_search_users (ParleyStore *self,
                           const char  *prefix,
                           guint        limit)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autofree char *upper = NULL;
  GPtrArray *users;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (prefix != NULL, NULL);

  /* Every name that starts with the prefix sorts (byte-wise) at or after it
   * and before the prefix followed by U+10FFFF, the largest code point. */
  upper = g_strconcat (prefix, "\xf4\x8f\xbf\xbf", NULL);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "SELECT id, username FROM users WHERE username >= ?1 AND username < ?2"
                  " ORDER BY username LIMIT ?3", FALSE);
  sqlite3_bind_text (stmt, 1, prefix, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, upper, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 3, limit);
  users = collect_users (stmt);
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return users;
}

/**
 * parley_store_add_contact:
 * @self: a store
 * @user_id: a user
 * @contact_id: the user to add to @user_id's contacts
 * @error: return location for a #GError
 *
 * Makes @user_id and @contact_id contacts of each other. Adding an existing
 * contact again succeeds.
 *
 * Returns: %TRUE on success; %FALSE with %PARLEY_STORE_ERROR_NOT_FOUND if
 *   either user does not exist
 */
gboolean
parley_store_add_contact (ParleyStore  *self,
                          const char   *user_id,
                          const char   *contact_id,
                          GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint64 user, contact;
  gboolean ok;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (user_id != NULL && contact_id != NULL, FALSE);

  user = user_key (self, user_id);
  contact = user_key (self, contact_id);
  if (user == 0 || contact == 0) {
    g_set_error_literal (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND,
                         "No such user");
    return FALSE;
  }

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "INSERT OR IGNORE INTO contacts (user, contact)"
                  " VALUES (?1, ?2), (?2, ?1)", FALSE);
  sqlite3_bind_int64 (stmt, 1, user);
  sqlite3_bind_int64 (stmt, 2, contact);
  ok = sqlite3_step (stmt) == SQLITE_DONE;
  if (!ok)
    set_sqlite_error (error, self->rdb, "Cannot add contact");
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return ok;
}

/**
 * parley_store_list_contacts:
 * @self: a store
 * @user_id: a user
 *
 * Returns: (transfer container) (element-type ParleyUserInfo): the user's
 *   contacts in name order
 */
GPtrArray *
parley_store_list_contacts (ParleyStore *self,
                            const char  *user_id)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  GPtrArray *users;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (user_id != NULL, NULL);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "SELECT u.id, u.username FROM contacts c JOIN users u ON u.key = c.contact"
                  " WHERE c.user = ?1 ORDER BY u.username", FALSE);
  sqlite3_bind_int64 (stmt, 1, user_key (self, user_id));
  users = collect_users (stmt);
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return users;
}

/**
 * parley_store_add_refresh_token:
 * @self: a store
 * @token_hash: the token's hash (parley_token_hash_refresh())
 * @user_id: the token's user
 * @family: the family (one per login) the token belongs to
 * @expires_at: expiry in seconds since the epoch
 * @error: return location for a #GError
 *
 * Stores a new refresh token.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_store_add_refresh_token (ParleyStore  *self,
                                const char   *token_hash,
                                const char   *user_id,
                                const char   *family,
                                gint64        expires_at,
                                GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gboolean ok;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (token_hash != NULL && user_id != NULL && family != NULL, FALSE);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "INSERT INTO refresh_tokens (hash, user_id, family, expires)"
                  " VALUES (?1, ?2, ?3, ?4)", FALSE);
  sqlite3_bind_text (stmt, 1, token_hash, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, user_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 3, family, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 4, expires_at);
  ok = sqlite3_step (stmt) == SQLITE_DONE;
  if (!ok)
    set_sqlite_error (error, self->rdb, "Cannot store refresh token");
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return ok;
}

/**
 * parley_store_prune_refresh_tokens:
 * @self: a store
 * @now: the time, in seconds since the epoch
 *
 * Deletes the refresh tokens that expired by @now, used, revoked or not:
 * none of them can be exchanged any more, and a replayed one is refused as
 * unknown (no longer by revoking its family, whose newer tokens expire
 * later and stay).
 *
 * Returns: how many were deleted, or -1 on an error (logged)
 */
gint64
parley_store_prune_refresh_tokens (ParleyStore *self,
                                   gint64       now)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint64 deleted = -1;

  g_return_val_if_fail (self != NULL, -1);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb, "DELETE FROM refresh_tokens WHERE expires <= ?1", FALSE);
  sqlite3_bind_int64 (stmt, 1, now);
  if (sqlite3_step (stmt) == SQLITE_DONE)
    deleted = sqlite3_changes64 (self->rdb);
  else
    g_warning ("Cannot prune refresh tokens: %s", sqlite3_errmsg (self->rdb));
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return deleted;
}

static void
revoke_family_locked (ParleyStore *self,
                      const char  *family)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  stmt = prepare (self->rdb, "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1", FALSE);
  sqlite3_bind_text (stmt, 1, family, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) != SQLITE_DONE)
    g_warning ("Cannot revoke a refresh token family: %s", sqlite3_errmsg (self->rdb));
}

/**
 * parley_store_rotate_refresh_token:
 * @self: a store
 * @old_hash: the hash of the presented token
 * @new_hash: the hash of its replacement
 * @now: the current time in seconds since the epoch
 * @new_expires_at: the replacement's expiry
 * @out_user_id: (out) (optional) (transfer full): the token's user on
 *   %PARLEY_REFRESH_OK
 *
 * Atomically: if the old token is active and unexpired, marks it used and
 * stores @new_hash in the same family. If it was used before, revokes the
 * whole family (someone replayed a stolen token).
 *
 * Returns: the outcome
 */
ParleyRefreshResult
parley_store_rotate_refresh_token (ParleyStore  *self,
                                   const char   *old_hash,
                                   const char   *new_hash,
                                   gint64        now,
                                   gint64        new_expires_at,
                                   char        **out_user_id)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autofree char *user_id = NULL;
  g_autofree char *family = NULL;
  ParleyRefreshResult result = PARLEY_REFRESH_UNKNOWN;
  gint64 expires;
  gboolean used, revoked;

  g_return_val_if_fail (self != NULL, PARLEY_REFRESH_UNKNOWN);
  g_return_val_if_fail (old_hash != NULL && new_hash != NULL, PARLEY_REFRESH_UNKNOWN);

  g_mutex_lock (&self->read_lock);

  if (!exec_locked (self, "BEGIN IMMEDIATE")) {
    g_warning ("Cannot begin a transaction: %s", sqlite3_errmsg (self->rdb));
    goto out;
  }

  stmt = prepare (self->rdb,
                  "SELECT user_id, family, expires, used, revoked FROM refresh_tokens"
                  " WHERE hash = ?1", FALSE);
  sqlite3_bind_text (stmt, 1, old_hash, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) != SQLITE_ROW) {
    exec_locked (self, "ROLLBACK");
    goto out;
  }
  user_id = column_strdup (stmt, 0);
  family = column_strdup (stmt, 1);
  expires = sqlite3_column_int64 (stmt, 2);
  used = sqlite3_column_int (stmt, 3) != 0;
  revoked = sqlite3_column_int (stmt, 4) != 0;
  g_clear_pointer (&stmt, sqlite3_finalize);

  if (used) {
    revoke_family_locked (self, family);
    result = PARLEY_REFRESH_REUSED;
  } else if (revoked) {
    result = PARLEY_REFRESH_UNKNOWN;
  } else if (expires <= now) {
    result = PARLEY_REFRESH_EXPIRED;
  } else {
    gboolean ok;

    stmt = prepare (self->rdb, "UPDATE refresh_tokens SET used = 1 WHERE hash = ?1", FALSE);
    sqlite3_bind_text (stmt, 1, old_hash, -1, SQLITE_STATIC);
    ok = sqlite3_step (stmt) == SQLITE_DONE;
    g_clear_pointer (&stmt, sqlite3_finalize);

    if (ok) {
      stmt = prepare (self->rdb,
                      "INSERT INTO refresh_tokens (hash, user_id, family, expires)"
                      " VALUES (?1, ?2, ?3, ?4)", FALSE);
      sqlite3_bind_text (stmt, 1, new_hash, -1, SQLITE_STATIC);
      sqlite3_bind_text (stmt, 2, user_id, -1, SQLITE_STATIC);
      sqlite3_bind_text (stmt, 3, family, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 4, new_expires_at);
      ok = sqlite3_step (stmt) == SQLITE_DONE;
      g_clear_pointer (&stmt, sqlite3_finalize);
    }

    if (!ok) {
      g_warning ("Cannot rotate a refresh token: %s", sqlite3_errmsg (self->rdb));
      exec_locked (self, "ROLLBACK");
      goto out;
    }
    result = PARLEY_REFRESH_OK;
  }

  if (!exec_locked (self, "COMMIT")) {
    g_warning ("Cannot commit a refresh token rotation: %s", sqlite3_errmsg (self->rdb));
    exec_locked (self, "ROLLBACK");
    result = PARLEY_REFRESH_UNKNOWN;
  }

out:
  g_mutex_unlock (&self->read_lock);

  if (result == PARLEY_REFRESH_OK && out_user_id != NULL)
    *out_user_id = g_steal_pointer (&user_id);
  return result;
}

/**
 * parley_store_revoke_refresh_family:
 * @self: a store
 * @token_hash: the hash of any token of the family
 *
 * Revokes every token of the family @token_hash belongs to (logout). An
 * unknown hash is ignored.
 */
void
parley_store_revoke_refresh_family (ParleyStore *self,
                                    const char  *token_hash)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_if_fail (self != NULL);
  g_return_if_fail (token_hash != NULL);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "UPDATE refresh_tokens SET revoked = 1 WHERE family ="
                  " (SELECT family FROM refresh_tokens WHERE hash = ?1)", FALSE);
  sqlite3_bind_text (stmt, 1, token_hash, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) != SQLITE_DONE)
    g_warning ("Cannot revoke a refresh token family: %s", sqlite3_errmsg (self->rdb));
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);
}


/* Queries combine the index with the tail. The tail is read first, then the
 * index: the indexer drops entries from the tail only after committing them
 * to the index, so whatever left the tail in between is in the index by the
 * time it is read. An entry in both is taken once. */

/* The position of the first message of the tail with seq > @after. */
static guint
tail_search_locked (ParleyStore *self,
                    gint64       after)
{
  guint lo = 0, hi = self->tail_messages->len;

  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;

    if (((TailMessage *) g_ptr_array_index (self->tail_messages, mid))->seq <= after)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Collects up to @limit committed messages of the tail with seq > @after:
 * with @pending, those to @key not yet delivered, and in @delivered the
 * seqs of the committed receipts of the tail for @key (whose messages may
 * already be in the index); otherwise those sent or received by @key. */
static void
tail_collect (ParleyStore *self,
              gint64       key,
              gboolean     pending,
              gint64       after,
              guint        limit,
              GArray      *seqs,
              GArray      *delivered)
{
  g_mutex_lock (&self->tail_lock);
  for (guint i = tail_search_locked (self, after);
       i < self->tail_messages->len && seqs->len < limit; i++) {
    TailMessage *msg = g_ptr_array_index (self->tail_messages, i);

    if (msg->seq > self->committed_seq)
      break;
    if (pending) {
      if (msg->recipient != key ||
          (msg->receipt_id != 0 && msg->receipt_id <= self->committed_receipt))
        continue;
    } else if (msg->key.sender != key && msg->recipient != key) {
      continue;
    }
    g_array_append_val (seqs, msg->seq);
  }
  for (guint i = 0; delivered != NULL && i < self->tail_receipts->len; i++) {
    TailReceipt *receipt = g_ptr_array_index (self->tail_receipts, i);

    if (receipt->id > self->committed_receipt)
      break;
    if (receipt->recipient == key && receipt->seq > after)
      g_array_append_val (delivered, receipt->seq);
  }
  g_mutex_unlock (&self->tail_lock);
}

/* Runs @stmt, which yields seqs in rising order, into @seqs. Only under
 * read_lock. */
static void
collect_seqs (sqlite3_stmt *stmt,
              GArray       *seqs)
{
  while (sqlite3_step (stmt) == SQLITE_ROW) {
    gint64 seq = sqlite3_column_int64 (stmt, 0);

    g_array_append_val (seqs, seq);
  }
}

/* Merges the rising seqs of @tail and @indexed into at most @limit rising
 * seqs, each once, leaving out those of @indexed found in @skip. */
static GArray *
merge_seqs (GArray *tail,
            GArray *indexed,
            GArray *skip,
            guint   limit)
{
  g_autoptr(GHashTable) skipped = g_hash_table_new (g_int64_hash, g_int64_equal);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint64));
  guint i = 0, j = 0;

  for (guint k = 0; skip != NULL && k < skip->len; k++)
    g_hash_table_add (skipped, &g_array_index (skip, gint64, k));

  while (out->len < limit && (i < tail->len || j < indexed->len)) {
    gint64 seq;

    if (j < indexed->len &&
        g_hash_table_contains (skipped, &g_array_index (indexed, gint64, j))) {
      j++;
      continue;
    }
    if (j >= indexed->len ||
        (i < tail->len && g_array_index (tail, gint64, i) < g_array_index (indexed, gint64, j))) {
      seq = g_array_index (tail, gint64, i++);
    } else {
      seq = g_array_index (indexed, gint64, j++);
      if (i < tail->len && g_array_index (tail, gint64, i) == seq)
        i++;
    }
    g_array_append_val (out, seq);
  }
  return out;
}

/* Reads the messages @seqs from the log by rowid. Only under read_lock. */
static GPtrArray *
fetch_messages_locked (ParleyStore *self,
                       GArray      *seqs)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  GPtrArray *messages =
    g_ptr_array_new_with_free_func ((GDestroyNotify) parley_stored_message_free);

  if (seqs->len == 0)
    return messages;

  stmt = prepare (self->rdb,
                  "SELECT seq, client_id, sender, recipient, content, timestamp"
                  " FROM messages WHERE seq = ?1", FALSE);
  if (stmt == NULL)
    return messages;
  /* One read transaction for all the lookups. */
  exec_locked (self, "BEGIN");
  for (guint i = 0; i < seqs->len; i++) {
    sqlite3_bind_int64 (stmt, 1, g_array_index (seqs, gint64, i));
    if (sqlite3_step (stmt) == SQLITE_ROW) {
      ParleyStoredMessage *msg = g_new0 (ParleyStoredMessage, 1);

      msg->seq = sqlite3_column_int64 (stmt, 0);
      msg->id = column_strdup (stmt, 1);
      msg->sender_id = g_strdup (user_id_for_key (self, sqlite3_column_int64 (stmt, 2)));
      msg->recipient_id = g_strdup (user_id_for_key (self, sqlite3_column_int64 (stmt, 3)));
      msg->content = column_strdup (stmt, 4);
      msg->timestamp = sqlite3_column_int64 (stmt, 5);
      g_ptr_array_add (messages, msg);
    }
    sqlite3_reset (stmt);
  }
  exec_locked (self, "COMMIT");
  return messages;
}

/**
 * parley_store_pending_for:
 * @self: a store
 * @user_id: the recipient
 * @after_seq: only messages with a larger seq
 * @limit: the most messages to return
 *
 * Lists committed messages to @user_id that no device of @user_id has
 * acknowledged, in seq order. Page with @after_seq.
 *
 * Returns: (transfer container) (element-type ParleyStoredMessage): the
 *   messages
 */
GPtrArray *
parley_store_pending_for (ParleyStore *self,
                          const char  *user_id,
                          gint64       after_seq,
                          guint        limit)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GArray) tail = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) delivered = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) indexed = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) seqs = NULL;
  GPtrArray *messages;
  gint64 key;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (user_id != NULL, NULL);

  key = user_key (self, user_id);
  if (key == 0 || limit == 0)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) parley_stored_message_free);

  tail_collect (self, key, TRUE, after_seq, limit, tail, delivered);

  g_mutex_lock (&self->read_lock);
  /* Receipts of the tail may still have their pending rows in the index:
   * ask for that many more rows. */
  stmt = prepare (self->ridx,
                  "SELECT seq FROM pending WHERE recipient = ?1 AND seq > ?2"
                  " ORDER BY seq LIMIT ?3", FALSE);
  sqlite3_bind_int64 (stmt, 1, key);
  sqlite3_bind_int64 (stmt, 2, after_seq);
  sqlite3_bind_int64 (stmt, 3, (gint64) limit + delivered->len);
  collect_seqs (stmt, indexed);
  g_clear_pointer (&stmt, sqlite3_finalize);

  seqs = merge_seqs (tail, indexed, delivered, limit);
  messages = fetch_messages_locked (self, seqs);
  g_mutex_unlock (&self->read_lock);

  return messages;
}

/**
 * parley_store_history_since:
 * @self: a store
 * @user_id: a user
 * @since: only messages with a larger seq
 * @limit: the most messages to return
 *
 * Lists committed messages sent or received by @user_id, in seq order.
 *
 * Returns: (transfer container) (element-type ParleyStoredMessage): the
 *   messages
 */
GPtrArray *
parley_store_history_since (ParleyStore *self,
                            const char  *user_id,
                            gint64       since,
                            guint        limit)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GArray) tail = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) indexed = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) seqs = NULL;
  GPtrArray *messages;
  gint64 key;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (user_id != NULL, NULL);

  key = user_key (self, user_id);
  if (key == 0 || limit == 0)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) parley_stored_message_free);

  tail_collect (self, key, FALSE, since, limit, tail, NULL);

  /* Two index range scans, each already limited, merged; UNION takes a
   * message to oneself once. */
  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->ridx,
                  "SELECT seq FROM ("
                  "  SELECT seq FROM sent WHERE sender = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)"
                  " UNION SELECT seq FROM ("
                  "  SELECT seq FROM received WHERE recipient = ?1 AND seq > ?2"
                  "  ORDER BY seq LIMIT ?3)"
                  " ORDER BY seq LIMIT ?3", FALSE);
  sqlite3_bind_int64 (stmt, 1, key);
  sqlite3_bind_int64 (stmt, 2, since);
  sqlite3_bind_int64 (stmt, 3, limit);
  collect_seqs (stmt, indexed);
  g_clear_pointer (&stmt, sqlite3_finalize);

  seqs = merge_seqs (tail, indexed, NULL, limit);
  messages = fetch_messages_locked (self, seqs);
  g_mutex_unlock (&self->read_lock);

  return messages;
}

/**
 * parley_store_latest_seq_for:
 * @self: a store
 * @user_id: a user
 *
 * Returns: the largest committed seq of a message sent or received by
 *   @user_id, or 0 if there is none
 */
gint64
parley_store_latest_seq_for (ParleyStore *self,
                             const char  *user_id)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint64 key, seq = 0;

  g_return_val_if_fail (self != NULL, 0);
  g_return_val_if_fail (user_id != NULL, 0);

  key = user_key (self, user_id);
  if (key == 0)
    return 0;

  g_mutex_lock (&self->tail_lock);
  for (guint i = self->tail_messages->len; i > 0; i--) {
    TailMessage *msg = g_ptr_array_index (self->tail_messages, i - 1);

    if (msg->seq <= self->committed_seq && (msg->key.sender == key || msg->recipient == key)) {
      seq = msg->seq;
      break;
    }
  }
  g_mutex_unlock (&self->tail_lock);
  /* The newest message of a user in the tail is newer than any in the
   * index. */
  if (seq != 0)
    return seq;

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->ridx,
                  "SELECT max (coalesce ((SELECT max (seq) FROM sent WHERE sender = ?1), 0),"
                  " coalesce ((SELECT max (seq) FROM received WHERE recipient = ?1), 0))",
                  FALSE);
  sqlite3_bind_int64 (stmt, 1, key);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    seq = sqlite3_column_int64 (stmt, 0);
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return seq;
}
