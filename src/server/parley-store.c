/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-store"

#include "parley-store-private.h"

#include "parley-password.h"
#include "parley-envelope.h"
#include "parley-sched.h"

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
 * id > indexed_receipt, and, until its whole generation leaves (see
 * store_tail_seal_locked()), some of the indexed ones before them. Each
 * query combines the index with the tail, each seq once; the
 * content of a message is always read from the log by rowid. On start-up
 * the tail is reloaded from the log, so kill -9 at any point loses nothing
 * that was committed to the log. */

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
gint64
store_user_key (ParleyStore *self,
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
const char *
store_user_id_for_key (ParleyStore *self,
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

sqlite3_stmt *
store_prepare (sqlite3     *db,
               const char  *sql,
               gboolean     persistent)
{
  sqlite3_stmt *stmt = NULL;

  if (sqlite3_prepare_v3 (db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
                          &stmt, NULL) != SQLITE_OK) {
    /* Only a bug in the SQL text (or an out-of-memory) can get here. */
    g_critical ("Cannot store_prepare ‘%s’: %s", sql, sqlite3_errmsg (db));
    return NULL;
  }
  return stmt;
}

char *
store_column_strdup (sqlite3_stmt *stmt,
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


typedef enum {
  CONNECTION_CREATE = 1 << 0,
  CONNECTION_DURABLE = 1 << 1,
  CONNECTION_DEFERRABLE = 1 << 2,
} ConnectionFlags;

/* Opens a connection in WAL mode. CONNECTION_CREATE: creates the file if
 * missing. CONNECTION_DURABLE: every COMMIT fsyncs the WAL
 * (synchronous=FULL), as the log needs; otherwise only checkpoints fsync
 * (synchronous=NORMAL: a power loss may lose the newest commits but never
 * corrupts the file), which is enough for the derived index. Checkpoints
 * are run by the store itself, not inside commits.
 * CONNECTION_DEFERRABLE: for a deferrable thread; gives way to the ack
 * path while SQLite works (parley-store-vfs.c). */
static sqlite3 *
open_connection (const char       *path,
                 ConnectionFlags   how,
                 GError          **error)
{
  sqlite3 *db = NULL;
  gboolean durable = (how & CONNECTION_DURABLE) != 0;
  gboolean deferrable = (how & CONNECTION_DEFERRABLE) != 0;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
              ((how & CONNECTION_CREATE) ? SQLITE_OPEN_CREATE : 0);
  char *errmsg = NULL;

  if (sqlite3_open_v2 (path, &db, flags, deferrable ? store_give_way_vfs () : NULL) !=
      SQLITE_OK) {
    set_sqlite_error (error, db, "Cannot open database");
    sqlite3_close (db);
    return NULL;
  }

  sqlite3_extended_result_codes (db, 1);
  sqlite3_busy_timeout (db, BUSY_TIMEOUT_MS);
  if (deferrable)
    store_give_way_during_statements (db);

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

gboolean
store_step_done (sqlite3_stmt *stmt)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  return rc == SQLITE_DONE;
}

/* A pair of users known to be contacts; a key of known_contacts. */
/* The key of a client id, as dedup stores it: for a time-ordered id
 * (UUIDv7, what Parley clients send) its time and the bits after it, so
 * that the index grows at its end (a random key puts every new row on
 * another page of a large index); for any other id its 64-bit FNV-1a hash.
 * Keys may collide; a match is confirmed against the log. The index keeps
 * the keys: changing how they are made needs a new INDEX_VERSION. */
gint64
store_client_id_hash (const char *client_id)
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

/* The tail. Every function named *_locked runs under tail_lock. */

/* The number of committed rows not yet indexed. Seqs and receipt ids are
 * dense, as nothing is ever deleted from the log. */
gint64
store_unindexed_locked (ParleyStore *self)
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

void
store_tail_message_free (TailMessage *msg)
{
  g_free (msg->key.client_id);
  g_free (msg);
}

static void
tail_user_free (TailUser *user)
{
  g_ptr_array_unref (user->msgs);
  g_ptr_array_unref (user->receipts);
  g_free (user);
}

static TailGen *
tail_gen_new (void)
{
  TailGen *gen = g_new0 (TailGen, 1);

  gen->messages = g_ptr_array_new ();
  gen->receipts = g_ptr_array_new ();
  gen->by_seq = g_hash_table_new (g_int64_hash, g_int64_equal);
  gen->by_key = g_hash_table_new (dedup_key_hash, dedup_key_equal);
  gen->receipt_by_seq = g_hash_table_new (g_int64_hash, g_int64_equal);
  gen->by_user = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                        (GDestroyNotify) tail_user_free);
  return gen;
}

/* Frees @gen and its entries; the indexer gives way meanwhile. */
void
store_tail_gen_free (TailGen *gen)
{
  if (gen == NULL)
    return;
  g_hash_table_unref (gen->by_user);
  g_hash_table_unref (gen->receipt_by_seq);
  g_hash_table_unref (gen->by_key);
  g_hash_table_unref (gen->by_seq);
  for (guint i = 0; i < gen->messages->len; i++) {
    store_tail_message_free (g_ptr_array_index (gen->messages, i));
    if (i % INDEXER_GIVE_WAY_ENTRIES == 0)
      parley_sched_give_way ();
  }
  for (guint i = 0; i < gen->receipts->len; i++)
    g_free (g_ptr_array_index (gen->receipts, i));
  g_ptr_array_unref (gen->messages);
  g_ptr_array_unref (gen->receipts);
  g_free (gen);
}

/* The tail of the user @key in @gen (which may be NULL), or NULL. */
static TailUser *
tail_gen_user (TailGen *gen,
               gint64   key)
{
  return gen != NULL ? g_hash_table_lookup (gen->by_user, &key) : NULL;
}

/* The tail of the user @key in the new generation, made if there is none. */
static TailUser *
tail_user_locked (ParleyStore *self,
                  gint64       key)
{
  TailUser *user = tail_gen_user (self->tail_new, key);

  if (user == NULL) {
    user = g_new0 (TailUser, 1);
    user->key = key;
    user->msgs = g_ptr_array_new ();
    user->receipts = g_ptr_array_new ();
    g_hash_table_insert (self->tail_new->by_user, &user->key, user);
  }
  return user;
}

/* Takes @entry, the last one, off the back of @array. */
static void
tail_user_remove_last (GPtrArray *array,
                       gpointer   entry)
{
  g_assert (array->len > 0 && g_ptr_array_index (array, array->len - 1) == entry);
  g_ptr_array_set_size (array, array->len - 1);
}

static void
tail_user_forget_if_empty_locked (ParleyStore *self,
                                  TailUser    *user)
{
  if (user->msgs->len == 0 && user->receipts->len == 0)
    g_hash_table_remove (self->tail_new->by_user, &user->key);
}

void
store_tail_add_message_locked (ParleyStore *self,
                               TailMessage *msg)
{
  TailGen *gen = self->tail_new;

  g_ptr_array_add (gen->messages, msg);
  g_hash_table_insert (gen->by_seq, &msg->seq, msg);
  g_hash_table_insert (gen->by_key, &msg->key, msg);
  g_ptr_array_add (tail_user_locked (self, msg->key.sender)->msgs, msg);
  if (msg->recipient != msg->key.sender)
    g_ptr_array_add (tail_user_locked (self, msg->recipient)->msgs, msg);
}

void
store_tail_add_receipt_locked (ParleyStore *self,
                               TailReceipt *receipt)
{
  TailMessage *msg = store_tail_find_message_locked (self, receipt->seq);
  TailGen *gen = self->tail_new;

  g_ptr_array_add (gen->receipts, receipt);
  g_hash_table_insert (gen->receipt_by_seq, &receipt->seq, receipt);
  g_ptr_array_add (tail_user_locked (self, receipt->recipient)->receipts, receipt);
  if (msg != NULL)
    msg->receipt_id = receipt->id;
}

/* Takes @msg, the newest message of the tail (its transaction rolled back),
 * out of the new generation's look-up tables, array and users' tails; does
 * not free it. A generation is only sealed with everything in it
 * committed, so @msg is in the new one. */
void
store_tail_remove_message_locked (ParleyStore *self,
                                  TailMessage *msg)
{
  TailGen *gen = self->tail_new;
  gint64 users[] = { msg->key.sender, msg->recipient };

  g_assert (gen->messages->len > 0 &&
            g_ptr_array_index (gen->messages, gen->messages->len - 1) == msg);
  g_ptr_array_set_size (gen->messages, gen->messages->len - 1);
  g_hash_table_remove (gen->by_seq, &msg->seq);
  g_hash_table_remove (gen->by_key, &msg->key);
  for (guint i = 0; i < G_N_ELEMENTS (users); i++) {
    TailUser *user;

    if (i == 1 && users[1] == users[0])
      break;
    user = tail_gen_user (gen, users[i]);
    g_assert (user != NULL);
    tail_user_remove_last (user->msgs, msg);
    tail_user_forget_if_empty_locked (self, user);
  }
}

/* The same for @receipt. */
void
store_tail_remove_receipt_locked (ParleyStore *self,
                                  TailReceipt *receipt)
{
  TailGen *gen = self->tail_new;
  TailUser *user = tail_gen_user (gen, receipt->recipient);

  g_assert (gen->receipts->len > 0 &&
            g_ptr_array_index (gen->receipts, gen->receipts->len - 1) == receipt);
  g_ptr_array_set_size (gen->receipts, gen->receipts->len - 1);
  g_hash_table_remove (gen->receipt_by_seq, &receipt->seq);
  g_assert (user != NULL);
  tail_user_remove_last (user->receipts, receipt);
  tail_user_forget_if_empty_locked (self, user);
}

/* Looks @key up in the table at @offset of the new generation, then of
 * the old one. */
static gpointer
tail_find_locked (ParleyStore   *self,
                  gsize          offset,
                  gconstpointer  key)
{
  gpointer found = g_hash_table_lookup (G_STRUCT_MEMBER (GHashTable *, self->tail_new, offset),
                                        key);

  if (found == NULL && self->tail_old != NULL)
    found = g_hash_table_lookup (G_STRUCT_MEMBER (GHashTable *, self->tail_old, offset), key);
  return found;
}

/* The message @seq of the tail, or NULL. */
TailMessage *
store_tail_find_message_locked (ParleyStore *self,
                                gint64       seq)
{
  return tail_find_locked (self, G_STRUCT_OFFSET (TailGen, by_seq), &seq);
}

/* The message of the tail with dedup key @key, or NULL. */
TailMessage *
store_tail_find_key_locked (ParleyStore    *self,
                            const DedupKey *key)
{
  return tail_find_locked (self, G_STRUCT_OFFSET (TailGen, by_key), key);
}

/* Whether the tail has a receipt for the message @seq. */
gboolean
store_tail_has_receipt_locked (ParleyStore *self,
                               gint64       seq)
{
  return tail_find_locked (self, G_STRUCT_OFFSET (TailGen, receipt_by_seq), &seq) != NULL;
}

/* Makes the new generation the old one, for the indexer, and starts a new
 * one, if there is no old one left, the new one has entries and all of them
 * are committed (so that only the indexer changes the old one). Returns
 * whether it did. */
gboolean
store_tail_seal_locked (ParleyStore *self)
{
  TailGen *gen = self->tail_new;

  if (self->tail_old != NULL || (gen->messages->len == 0 && gen->receipts->len == 0))
    return FALSE;
  if (gen->messages->len > 0 &&
      ((TailMessage *) g_ptr_array_index (gen->messages, gen->messages->len - 1))->seq >
      self->committed_seq)
    return FALSE;
  if (gen->receipts->len > 0 &&
      ((TailReceipt *) g_ptr_array_index (gen->receipts, gen->receipts->len - 1))->id >
      self->committed_receipt)
    return FALSE;
  self->tail_old = gen;
  self->tail_new = tail_gen_new ();
  self->old_msgs_indexed = 0;
  self->old_receipts_indexed = 0;
  self->seal_wanted = FALSE;
  return TRUE;
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
  store_writer_statements_clear (&self->ws);
  store_indexer_statements_clear (&self->is);
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

  self->idx = open_connection (self->index_path, CONNECTION_CREATE | CONNECTION_DEFERRABLE, error);
  if (self->idx == NULL)
    return FALSE;
  if (!ensure_schema (self->idx, self->index_path, index_schema_sql, INDEX_VERSION, error))
    return FALSE;

  stmt = store_prepare (self->idx, "SELECT indexed_seq, indexed_receipt FROM meta WHERE id = 1",
                        FALSE);
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

  /* The indexer checkpoints the index itself (indexer_write_back()). */
  sqlite3_wal_hook (self->idx, store_index_wal_hook_cb, self);
  if (!store_indexer_statements_init (&self->is, self->idx)) {
    set_sqlite_error (error, self->idx, "Cannot store_prepare statements");
    return FALSE;
  }

  self->widx = open_connection (self->index_path, 0, error);
  if (self->widx == NULL)
    return FALSE;
  self->ridx = open_connection (self->index_path, 0, error);
  if (self->ridx == NULL)
    return FALSE;

  if (!store_writer_statements_init (&self->ws, self->wdb, self->widx)) {
    set_sqlite_error (error, self->wdb, "Cannot store_prepare statements");
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

  stmt = store_prepare (self->rdb,
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
    msg->key.client_id = store_column_strdup (stmt, 3);
    msg->timestamp = sqlite3_column_int64 (stmt, 4);
    if (msg->key.client_id == NULL)
      msg->key.client_id = g_strdup ("");
    msg->key.id_hash = store_client_id_hash (msg->key.client_id);
    store_tail_add_message_locked (self, msg);
  }
  if (rc != SQLITE_DONE)
    goto fail;
  g_clear_pointer (&stmt, sqlite3_finalize);

  stmt = store_prepare (self->rdb,
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
    store_tail_add_receipt_locked (self, receipt);
  }
  if (rc != SQLITE_DONE)
    goto fail;

  g_debug ("%u messages and %u receipts were not indexed yet", self->tail_new->messages->len,
           self->tail_new->receipts->len);
  return TRUE;

fail:
  set_sqlite_error (error, self->rdb, "Cannot read the message log");
  return FALSE;
}

static gboolean
load_users (ParleyStore  *self,
            GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = store_prepare (self->rdb, "SELECT key, id, username FROM users",
                                                FALSE);
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
  g_clear_pointer (&self->tail_old, store_tail_gen_free);
  g_clear_pointer (&self->tail_new, store_tail_gen_free);
  g_clear_pointer (&self->dedup_filter, store_dedup_filter_free);
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
  g_free (self->index_wal_path);
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
  GStatBuf st;

  g_return_val_if_fail (path != NULL, NULL);

  self = g_new0 (ParleyStore, 1);
  self->path = g_strdup (path);
  self->index_path = g_strconcat (path, "-index", NULL);
  self->index_wal_path = g_strconcat (self->index_path, "-wal", NULL);
  self->index_checkpoint_frames = INDEX_CHECKPOINT_FRAMES;
  self->checkpoint_frames = CHECKPOINT_FRAMES;
  self->wal_path = g_strconcat (path, "-wal", NULL);
  self->batch_done = batch_done;
  self->user_data = user_data;
  self->queue = g_ptr_array_sized_new (MAX_BATCH);
  self->known_contacts = g_hash_table_new_full (store_contact_pair_hash, store_contact_pair_equal,
                                                g_free, NULL);
  self->users = g_hash_table_new (g_str_hash, g_str_equal);
  self->user_keys = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                           (GDestroyNotify) user_entry_free);
  self->staged_messages = g_ptr_array_new ();
  self->staged_receipts = g_ptr_array_new ();
  self->tail_new = tail_gen_new ();
  g_mutex_init (&self->queue_lock);
  g_cond_init (&self->queue_cond);
  g_mutex_init (&self->read_lock);
  g_mutex_init (&self->checkpoint_lock);
  g_cond_init (&self->checkpoint_cond);
  g_mutex_init (&self->tail_lock);
  g_cond_init (&self->index_cond);
  g_cond_init (&self->indexed_cond);
  g_rw_lock_init (&self->users_lock);

  self->wdb = open_connection (path, CONNECTION_CREATE | CONNECTION_DURABLE, error);
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

  self->rdb = open_connection (path, CONNECTION_DURABLE, error);
  if (self->rdb == NULL)
    goto fail;
  self->cdb = open_connection (path, CONNECTION_DURABLE | CONNECTION_DEFERRABLE, error);
  if (self->cdb == NULL)
    goto fail;
  /* What is in the file already needs no paced write-back: whatever of it
   * is still dirty is written back in one call before the first paced
   * range (checkpoint_in_background()). */
  if (g_stat (path, &st) == 0)
    self->log_synced_size = st.st_size;

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
  self->dedup_filter = store_dedup_filter_load (self->idx, (guint64) self->indexed_seq);
  if (self->dedup_filter == NULL) {
    set_sqlite_error (error, self->idx, "Cannot read the message index");
    goto fail;
  }
  if (!load_tail (self, error))
    goto fail;

  /* Writes on either connection may grow the WAL. */
  sqlite3_wal_hook (self->wdb, store_wal_hook_cb, self);
  sqlite3_wal_hook (self->rdb, store_wal_hook_cb, self);

  self->checkpointer = g_thread_new ("parley-ckpt", store_checkpointer_thread, self);
  self->indexer = g_thread_new ("parley-index", store_indexer_thread, self);
  self->writer = g_thread_new ("parley-store", store_writer_thread, self);

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
 * parley_store_set_index_checkpoint_frames:
 * @self: a store
 * @n_frames: frames
 *
 * For tests: the indexer checkpoints the index after a transaction that
 * leaves at least @n_frames frames in its WAL (INDEX_CHECKPOINT_FRAMES).
 */
void
parley_store_set_index_checkpoint_frames (ParleyStore *self,
                                          int          n_frames)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (n_frames > 0);

  g_atomic_int_set (&self->index_checkpoint_frames, n_frames);
}

/**
 * parley_store_set_checkpoint_frames:
 * @self: a store
 * @n_frames: frames
 *
 * For tests: the log's checkpoints start once its WAL holds @n_frames
 * frames (CHECKPOINT_FRAMES), and the writer finishes them once at most a
 * CHECKPOINT_FINISH_DIVISOR-th of that is left.
 */
void
parley_store_set_checkpoint_frames (ParleyStore *self,
                                    int          n_frames)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (n_frames > 0);

  g_atomic_int_set (&self->checkpoint_frames, n_frames);
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
  stmt = store_prepare (self->rdb,
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
  stmt = store_prepare (self->rdb, "SELECT id, password_hash FROM users WHERE username = ?1",
                        FALSE);
  sqlite3_bind_text (stmt, 1, username, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW) {
    found = TRUE;
    if (out_user_id != NULL)
      *out_user_id = store_column_strdup (stmt, 0);
    if (out_hash != NULL)
      *out_hash = store_column_strdup (stmt, 1);
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
  stmt = store_prepare (self->rdb, "SELECT username FROM users WHERE id = ?1", FALSE);
  sqlite3_bind_text (stmt, 1, user_id, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    username = store_column_strdup (stmt, 0);
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

    info->user_id = store_column_strdup (stmt, 0);
    info->username = store_column_strdup (stmt, 1);
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
  stmt = store_prepare (self->rdb,
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

  user = store_user_key (self, user_id);
  contact = store_user_key (self, contact_id);
  if (user == 0 || contact == 0) {
    g_set_error_literal (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND,
                         "No such user");
    return FALSE;
  }

  g_mutex_lock (&self->read_lock);
  stmt = store_prepare (self->rdb,
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
  stmt = store_prepare (self->rdb,
                  "SELECT u.id, u.username FROM contacts c JOIN users u ON u.key = c.contact"
                  " WHERE c.user = ?1 ORDER BY u.username", FALSE);
  sqlite3_bind_int64 (stmt, 1, store_user_key (self, user_id));
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
  stmt = store_prepare (self->rdb,
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
  stmt = store_prepare (self->rdb, "DELETE FROM refresh_tokens WHERE expires <= ?1", FALSE);
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

  stmt = store_prepare (self->rdb, "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1",
                        FALSE);
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

  stmt = store_prepare (self->rdb,
                  "SELECT user_id, family, expires, used, revoked FROM refresh_tokens"
                  " WHERE hash = ?1", FALSE);
  sqlite3_bind_text (stmt, 1, old_hash, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) != SQLITE_ROW) {
    exec_locked (self, "ROLLBACK");
    goto out;
  }
  user_id = store_column_strdup (stmt, 0);
  family = store_column_strdup (stmt, 1);
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

    stmt = store_prepare (self->rdb, "UPDATE refresh_tokens SET used = 1 WHERE hash = ?1", FALSE);
    sqlite3_bind_text (stmt, 1, old_hash, -1, SQLITE_STATIC);
    ok = sqlite3_step (stmt) == SQLITE_DONE;
    g_clear_pointer (&stmt, sqlite3_finalize);

    if (ok) {
      stmt = store_prepare (self->rdb,
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
  stmt = store_prepare (self->rdb,
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

/* The position of the first message of @user's tail with seq > @after. */
static guint
tail_search_locked (TailUser *user,
                    gint64    after)
{
  guint lo = 0, hi = user->msgs->len;

  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;

    if (((TailMessage *) g_ptr_array_index (user->msgs, mid))->seq <= after)
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
  TailGen *gens[2];

  g_mutex_lock (&self->tail_lock);
  /* The older generation first: its entries come before the newer's. */
  gens[0] = self->tail_old;
  gens[1] = self->tail_new;
  for (guint g = 0; g < G_N_ELEMENTS (gens); g++) {
    TailUser *user = tail_gen_user (gens[g], key);

    if (user == NULL)
      continue;
    for (guint i = tail_search_locked (user, after); i < user->msgs->len && seqs->len < limit;
         i++) {
      TailMessage *msg = g_ptr_array_index (user->msgs, i);

      if (msg->seq > self->committed_seq)
        break;
      if (pending && (msg->recipient != key ||
                      (msg->receipt_id != 0 && msg->receipt_id <= self->committed_receipt)))
        continue;
      g_array_append_val (seqs, msg->seq);
    }
    for (guint i = 0; delivered != NULL && i < user->receipts->len; i++) {
      TailReceipt *receipt = g_ptr_array_index (user->receipts, i);

      if (receipt->id > self->committed_receipt)
        break;
      if (receipt->seq > after)
        g_array_append_val (delivered, receipt->seq);
    }
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

  stmt = store_prepare (self->rdb,
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
      msg->id = store_column_strdup (stmt, 1);
      msg->sender_id = g_strdup (store_user_id_for_key (self, sqlite3_column_int64 (stmt, 2)));
      msg->recipient_id = g_strdup (store_user_id_for_key (self, sqlite3_column_int64 (stmt, 3)));
      msg->content = store_column_strdup (stmt, 4);
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

  key = store_user_key (self, user_id);
  if (key == 0 || limit == 0)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) parley_stored_message_free);

  tail_collect (self, key, TRUE, after_seq, limit, tail, delivered);

  g_mutex_lock (&self->read_lock);
  /* Receipts of the tail may still have their pending rows in the index:
   * ask for that many more rows. */
  stmt = store_prepare (self->ridx,
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

  key = store_user_key (self, user_id);
  if (key == 0 || limit == 0)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) parley_stored_message_free);

  tail_collect (self, key, FALSE, since, limit, tail, NULL);

  /* Two index range scans, each already limited, merged; UNION takes a
   * message to oneself once. */
  g_mutex_lock (&self->read_lock);
  stmt = store_prepare (self->ridx,
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
  TailGen *gens[2];
  gint64 key, seq = 0;

  g_return_val_if_fail (self != NULL, 0);
  g_return_val_if_fail (user_id != NULL, 0);

  key = store_user_key (self, user_id);
  if (key == 0)
    return 0;

  g_mutex_lock (&self->tail_lock);
  /* The newer generation first. */
  gens[0] = self->tail_new;
  gens[1] = self->tail_old;
  for (guint g = 0; g < G_N_ELEMENTS (gens) && seq == 0; g++) {
    TailUser *user = tail_gen_user (gens[g], key);

    for (guint i = user ? user->msgs->len : 0; i > 0; i--) {
      TailMessage *msg = g_ptr_array_index (user->msgs, i - 1);

      if (msg->seq <= self->committed_seq) {
        seq = msg->seq;
        break;
      }
    }
  }
  g_mutex_unlock (&self->tail_lock);
  /* The newest message of a user in the tail is newer than any in the
   * index. */
  if (seq != 0)
    return seq;

  g_mutex_lock (&self->read_lock);
  stmt = store_prepare (self->ridx,
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
