/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-store"

#include "parley-store.h"
#include "parley-password.h"

#include <sodium.h>
#include <sqlite3.h>
#include <string.h>

/* The most ops committed in one transaction. Every commit rewrites the
 * pages its inserts touched (the end of each active user's range in the
 * history indexes, at least), so the more ops share a commit the fewer
 * pages each costs; a bigger transaction also keeps up with a backlog in
 * fewer fsyncs. Ops queued while a transaction runs wait for the next. */
#define MAX_BATCH 4096

/* Checkpoints run in two phases so that commits never wait for one. Once
 * the WAL holds CHECKPOINT_FRAMES frames, a background thread copies them
 * into the database (a passive checkpoint, concurrent with the writer). As
 * the writer keeps appending meanwhile, the WAL would never be completely
 * checkpointed and so never restart; so the writer then finishes the job
 * between two batches, which only copies the few frames written during the
 * background phase, and its next transaction starts the WAL afresh. If the
 * WAL still grows to CHECKPOINT_FRAMES_HARD, the writer checkpoints it all
 * itself. */
#define CHECKPOINT_FRAMES 16000
#define CHECKPOINT_FRAMES_HARD (CHECKPOINT_FRAMES * 4)

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
#define SCHEMA_VERSION 2

/* Notes on the schema:
 * - Users are referred to by users.key, an integer rowid, everywhere but in
 *   the API, which speaks of the random 32-character ids. The store keeps
 *   both directions in memory. Short integer keys keep index entries small
 *   and comparisons cheap.
 * - messages.seq is the rowid. Messages are never deleted, so rowids keep
 *   rising without AUTOINCREMENT and its extra write to sqlite_sequence on
 *   every insert. (Deleting old messages would need AUTOINCREMENT back.)
 * - A message row is never updated. Messages no device has acknowledged are
 *   listed in the small pending table instead: a receipt deletes its entry
 *   there rather than rewriting the message and its index entries.
 * - Each message costs three index entries: the deduplication key and the
 *   sent and received history indexes. */
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
  "  timestamp INTEGER NOT NULL,"
  "  UNIQUE (sender, client_id)"
  ");"
  "CREATE INDEX messages_sent ON messages (sender, seq);"
  "CREATE INDEX messages_received ON messages (recipient, seq);"
  "CREATE TABLE pending ("
  "  recipient INTEGER NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  PRIMARY KEY (recipient, seq)"
  ") WITHOUT ROWID;"
  "CREATE TABLE read_markers ("
  "  user INTEGER NOT NULL,"
  "  peer INTEGER NOT NULL,"
  "  message_id TEXT NOT NULL,"
  "  timestamp INTEGER NOT NULL,"
  "  PRIMARY KEY (user, peer)"
  ") WITHOUT ROWID;";

/* A registered user as kept in memory. */
typedef struct {
  gint64 key;
  char *id;
  char *username;
} UserEntry;

typedef struct {
  sqlite3_stmt *begin;
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  sqlite3_stmt *insert_message;
  sqlite3_stmt *find_message;
  sqlite3_stmt *insert_contact;
  sqlite3_stmt *insert_pending;
  sqlite3_stmt *find_received;
  sqlite3_stmt *delete_pending;
  sqlite3_stmt *upsert_read;
} WriterStatements;

struct _ParleyStore {
  char *path;

  /* The writer thread and its connection. */
  sqlite3 *wdb;
  WriterStatements ws;
  GThread *writer;
  GHashTable *known_contacts;

  /* The queue between parley_store_submit() and the writer. */
  GMutex queue_lock;
  GCond queue_cond;
  GPtrArray *queue;
  gboolean closing;

  ParleyStoreBatchFunc batch_done;
  gpointer user_data;

  /* The connection for reads and the HTTP side's writes. */
  GMutex read_lock;
  sqlite3 *rdb;

  /* The background checkpointer and its own connection. */
  sqlite3 *cdb;
  GThread *checkpointer;
  GMutex checkpoint_lock;
  GCond checkpoint_cond;
  gboolean checkpoint_quit;
  gint checkpoint_state;  /* atomic, CHECKPOINT_* */
  gint wal_frames;        /* atomic */

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

static sqlite3 *
open_connection (const char  *path,
                 gboolean     create,
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

  /* synchronous is per connection; FULL makes every COMMIT fsync the WAL.
   * Checkpoints are run by the store itself, not inside commits. */
  if (sqlite3_exec (db,
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=FULL;"
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

/* Applies one op inside the open transaction. Returns FALSE on a database
 * failure that must abort the whole transaction; an op that is merely
 * invalid gets its own error and TRUE. */
static gboolean
writer_apply (ParleyStore   *self,
              ParleyStoreOp *op,
              GPtrArray     *new_contacts)
{
  WriterStatements *ws = &self->ws;

  switch (op->kind) {
  case PARLEY_STORE_OP_MESSAGE: {
    sqlite3_stmt *stmt = ws->insert_message;
    gint64 sender, recipient;
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

    sqlite3_bind_int64 (stmt, 1, sender);
    sqlite3_bind_int64 (stmt, 2, recipient);
    sqlite3_bind_text (stmt, 3, op->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 4, op->content, (int) op->content_len, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 5, op->timestamp);
    rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    if (rc != SQLITE_DONE)
      return FALSE;

    if (sqlite3_changes (self->wdb) == 1) {
      op->seq = sqlite3_last_insert_rowid (self->wdb);
      op->duplicate = FALSE;
      op->delivered = FALSE;

      sqlite3_bind_int64 (ws->insert_pending, 1, recipient);
      sqlite3_bind_int64 (ws->insert_pending, 2, op->seq);
      if (!step_done (ws->insert_pending))
        return FALSE;
      return writer_add_contacts (self, sender, recipient, new_contacts);
    }

    /* A resend: answer with the original. */
    stmt = ws->find_message;
    sqlite3_bind_int64 (stmt, 1, sender);
    sqlite3_bind_text (stmt, 2, op->message_id, -1, SQLITE_STATIC);
    rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
      op->seq = sqlite3_column_int64 (stmt, 0);
      op->timestamp = sqlite3_column_int64 (stmt, 1);
      op->delivered = sqlite3_column_int (stmt, 2) == 0;
      op->duplicate = TRUE;
    }
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW;
  }

  case PARLEY_STORE_OP_RECEIVED: {
    sqlite3_stmt *stmt = ws->find_received;
    gint64 recipient;
    const char *sender;
    int rc;

    if (op->user_id == NULL) {
      g_set_error_literal (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                           "Incomplete receipt");
      return TRUE;
    }

    recipient = user_key (self, op->user_id);
    sqlite3_bind_int64 (stmt, 1, op->seq);
    sqlite3_bind_int64 (stmt, 2, recipient);
    rc = recipient != 0 ? sqlite3_step (stmt) : SQLITE_DONE;
    sender = rc == SQLITE_ROW ? user_id_for_key (self, sqlite3_column_int64 (stmt, 0)) : NULL;
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && sender == NULL)) {
      sqlite3_reset (stmt);
      g_set_error (&op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND,
                   "No message %" G_GINT64_FORMAT " for this user", op->seq);
      return TRUE;
    }
    if (rc != SQLITE_ROW) {
      sqlite3_reset (stmt);
      return FALSE;
    }
    g_free (op->orig_sender);
    g_free (op->orig_id);
    op->orig_sender = g_strdup (sender);
    op->orig_id = column_strdup (stmt, 1);
    sqlite3_reset (stmt);

    sqlite3_bind_int64 (ws->delete_pending, 1, recipient);
    sqlite3_bind_int64 (ws->delete_pending, 2, op->seq);
    if (!step_done (ws->delete_pending))
      return FALSE;
    op->delivered = sqlite3_changes (self->wdb) > 0;
    return TRUE;
  }

  case PARLEY_STORE_OP_READ: {
    sqlite3_stmt *stmt = ws->upsert_read;
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

/* Runs @n_ops ops in one transaction and commits it. */
static void
writer_run_batch (ParleyStore    *self,
                  ParleyStoreOp **ops,
                  guint           n_ops)
{
  g_autoptr(GPtrArray) new_contacts = g_ptr_array_new_with_free_func (g_free);
  gboolean ok;

  ok = step_done (self->ws.begin);
  for (guint i = 0; ok && i < n_ops; i++)
    ok = writer_apply (self, ops[i], new_contacts);
  if (ok)
    ok = step_done (self->ws.commit);

  if (!ok) {
    g_autofree char *message = g_strdup (sqlite3_errmsg (self->wdb));

    g_warning ("Batch of %u operations failed: %s", n_ops, message);
    if (!sqlite3_get_autocommit (self->wdb))
      step_done (self->ws.rollback);
    fail_batch (ops, n_ops, message);
    return;
  }

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
  g_clear_pointer (&ws->insert_contact, sqlite3_finalize);
  g_clear_pointer (&ws->insert_pending, sqlite3_finalize);
  g_clear_pointer (&ws->find_received, sqlite3_finalize);
  g_clear_pointer (&ws->delete_pending, sqlite3_finalize);
  g_clear_pointer (&ws->upsert_read, sqlite3_finalize);
}

static gboolean
writer_statements_init (WriterStatements *ws,
                        sqlite3          *db)
{
  ws->begin = prepare (db, "BEGIN IMMEDIATE", TRUE);
  ws->commit = prepare (db, "COMMIT", TRUE);
  ws->rollback = prepare (db, "ROLLBACK", TRUE);
  ws->insert_message = prepare (db,
    "INSERT INTO messages (sender, recipient, client_id, content, timestamp)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (sender, client_id) DO NOTHING", TRUE);
  ws->find_message = prepare (db,
    "SELECT seq, timestamp, EXISTS (SELECT 1 FROM pending p"
    "  WHERE p.recipient = m.recipient AND p.seq = m.seq)"
    " FROM messages m WHERE sender = ?1 AND client_id = ?2", TRUE);
  ws->insert_contact = prepare (db,
    "INSERT OR IGNORE INTO contacts (user, contact) VALUES (?1, ?2)", TRUE);
  ws->insert_pending = prepare (db, "INSERT INTO pending (recipient, seq) VALUES (?1, ?2)", TRUE);
  ws->find_received = prepare (db,
    "SELECT sender, client_id FROM messages WHERE seq = ?1 AND recipient = ?2", TRUE);
  ws->delete_pending = prepare (db, "DELETE FROM pending WHERE recipient = ?1 AND seq = ?2", TRUE);
  ws->upsert_read = prepare (db,
    "INSERT INTO read_markers (user, peer, message_id, timestamp)"
    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user, peer) DO UPDATE"
    " SET message_id = excluded.message_id, timestamp = excluded.timestamp", TRUE);

  return ws->begin && ws->commit && ws->rollback && ws->insert_message && ws->find_message &&
         ws->insert_contact && ws->insert_pending && ws->find_received && ws->delete_pending &&
         ws->upsert_read;
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

/* Creates the schema in an empty database, or checks that the database has
 * the schema of this version. */
static gboolean
ensure_schema (sqlite3     *db,
               const char  *path,
               GError     **error)
{
  char *errmsg = NULL;
  gint64 version, n_objects;

  if (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    set_sqlite_error (error, db, "Cannot read the schema");
    return FALSE;
  }

  version = query_int (db, "PRAGMA user_version");
  n_objects = query_int (db, "SELECT count(*) FROM sqlite_schema");
  if (version < 0 || n_objects < 0) {
    set_sqlite_error (error, db, "Cannot read the schema");
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    return FALSE;
  }

  if (version == 0 && n_objects == 0) {
    g_autofree char *sql = g_strdup_printf ("%s PRAGMA user_version = %d;", schema_sql,
                                            SCHEMA_VERSION);

    if (sqlite3_exec (db, sql, NULL, NULL, &errmsg) != SQLITE_OK) {
      g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                   "Cannot create the schema: %s", errmsg);
      sqlite3_free (errmsg);
      sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  } else if (version != SCHEMA_VERSION) {
    g_set_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED,
                 "The database %s has schema version %" G_GINT64_FORMAT ", but this version "
                 "of Parley needs version %d; it cannot use that database", path, version,
                 SCHEMA_VERSION);
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
  writer_statements_clear (&self->ws);
  g_clear_pointer (&self->wdb, sqlite3_close);
  g_clear_pointer (&self->rdb, sqlite3_close);
  g_clear_pointer (&self->cdb, sqlite3_close);
  g_clear_pointer (&self->queue, g_ptr_array_unref);
  g_clear_pointer (&self->known_contacts, g_hash_table_unref);
  g_clear_pointer (&self->users, g_hash_table_unref);
  g_clear_pointer (&self->user_keys, g_hash_table_unref);
  g_mutex_clear (&self->queue_lock);
  g_cond_clear (&self->queue_cond);
  g_mutex_clear (&self->read_lock);
  g_mutex_clear (&self->checkpoint_lock);
  g_cond_clear (&self->checkpoint_cond);
  g_rw_lock_clear (&self->users_lock);
  g_free (self->path);
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
 * Opens (and if needed creates) the database and starts the writer thread.
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

  g_return_val_if_fail (path != NULL, NULL);

  self = g_new0 (ParleyStore, 1);
  self->path = g_strdup (path);
  self->batch_done = batch_done;
  self->user_data = user_data;
  self->queue = g_ptr_array_sized_new (MAX_BATCH);
  self->known_contacts = g_hash_table_new_full (contact_pair_hash, contact_pair_equal, g_free,
                                                NULL);
  self->users = g_hash_table_new (g_str_hash, g_str_equal);
  self->user_keys = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                           (GDestroyNotify) user_entry_free);
  g_mutex_init (&self->queue_lock);
  g_cond_init (&self->queue_cond);
  g_mutex_init (&self->read_lock);
  g_mutex_init (&self->checkpoint_lock);
  g_cond_init (&self->checkpoint_cond);
  g_rw_lock_init (&self->users_lock);

  self->wdb = open_connection (path, TRUE, error);
  if (self->wdb == NULL)
    goto fail;

  if (!ensure_schema (self->wdb, path, error))
    goto fail;

  if (!writer_statements_init (&self->ws, self->wdb)) {
    set_sqlite_error (error, self->wdb, "Cannot prepare statements");
    goto fail;
  }

  self->rdb = open_connection (path, FALSE, error);
  if (self->rdb == NULL)
    goto fail;
  self->cdb = open_connection (path, FALSE, error);
  if (self->cdb == NULL)
    goto fail;

  if (!load_users (self, error))
    goto fail;

  /* Writes on either connection may grow the WAL. */
  sqlite3_wal_hook (self->wdb, wal_hook_cb, self);
  sqlite3_wal_hook (self->rdb, wal_hook_cb, self);

  self->checkpointer = g_thread_new ("parley-ckpt", checkpointer_thread, self);
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
 * usual), stops the threads, checkpoints and closes the database. Nothing
 * may be submitted once this was called.
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

  g_mutex_lock (&self->checkpoint_lock);
  self->checkpoint_quit = TRUE;
  g_cond_signal (&self->checkpoint_cond);
  g_mutex_unlock (&self->checkpoint_lock);
  g_thread_join (self->checkpointer);

  sqlite3_wal_hook (self->wdb, NULL, NULL);
  sqlite3_wal_hook (self->rdb, NULL, NULL);
  sqlite3_wal_checkpoint_v2 (self->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

  store_free (self);
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

static GPtrArray *
collect_messages (ParleyStore  *self,
                  sqlite3_stmt *stmt)
{
  GPtrArray *messages =
    g_ptr_array_new_with_free_func ((GDestroyNotify) parley_stored_message_free);

  while (sqlite3_step (stmt) == SQLITE_ROW) {
    ParleyStoredMessage *msg = g_new0 (ParleyStoredMessage, 1);

    msg->seq = sqlite3_column_int64 (stmt, 0);
    msg->id = column_strdup (stmt, 1);
    msg->sender_id = g_strdup (user_id_for_key (self, sqlite3_column_int64 (stmt, 2)));
    msg->recipient_id = g_strdup (user_id_for_key (self, sqlite3_column_int64 (stmt, 3)));
    msg->content = column_strdup (stmt, 4);
    msg->timestamp = sqlite3_column_int64 (stmt, 5);
    g_ptr_array_add (messages, msg);
  }
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
  GPtrArray *messages;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (user_id != NULL, NULL);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "SELECT m.seq, m.client_id, m.sender, m.recipient, m.content, m.timestamp"
                  " FROM pending p JOIN messages m ON m.seq = p.seq"
                  " WHERE p.recipient = ?1 AND p.seq > ?2 ORDER BY p.seq LIMIT ?3", FALSE);
  sqlite3_bind_int64 (stmt, 1, user_key (self, user_id));
  sqlite3_bind_int64 (stmt, 2, after_seq);
  sqlite3_bind_int64 (stmt, 3, limit);
  messages = collect_messages (self, stmt);
  g_clear_pointer (&stmt, sqlite3_finalize);
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
  GPtrArray *messages;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (user_id != NULL, NULL);

  /* Two index range scans, each already limited, merged: sent messages and
   * received ones; a message to oneself is only taken from the first. */
  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "SELECT * FROM ("
                  "  SELECT seq, client_id, sender, recipient, content, timestamp"
                  "  FROM messages WHERE sender = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)"
                  " UNION ALL SELECT * FROM ("
                  "  SELECT seq, client_id, sender, recipient, content, timestamp"
                  "  FROM messages WHERE recipient = ?1 AND seq > ?2 AND sender != ?1"
                  "  ORDER BY seq LIMIT ?3)"
                  " ORDER BY seq LIMIT ?3", FALSE);
  sqlite3_bind_int64 (stmt, 1, user_key (self, user_id));
  sqlite3_bind_int64 (stmt, 2, since);
  sqlite3_bind_int64 (stmt, 3, limit);
  messages = collect_messages (self, stmt);
  g_clear_pointer (&stmt, sqlite3_finalize);
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
  gint64 seq = 0;

  g_return_val_if_fail (self != NULL, 0);
  g_return_val_if_fail (user_id != NULL, 0);

  g_mutex_lock (&self->read_lock);
  stmt = prepare (self->rdb,
                  "SELECT max (coalesce ((SELECT max (seq) FROM messages WHERE sender = ?1), 0),"
                  " coalesce ((SELECT max (seq) FROM messages WHERE recipient = ?1), 0))",
                  FALSE);
  sqlite3_bind_int64 (stmt, 1, user_key (self, user_id));
  if (sqlite3_step (stmt) == SQLITE_ROW)
    seq = sqlite3_column_int64 (stmt, 0);
  g_clear_pointer (&stmt, sqlite3_finalize);
  g_mutex_unlock (&self->read_lock);

  return seq;
}
