/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-cache"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <sqlite3.h>

#include "parley-cache.h"
#include "parley-error.h"

/**
 * ParleyCache:
 *
 * The client's local store in SQLite (WAL): messages (deduplicated by sender
 * and id), conversations with unread counts, known users and contacts, and
 * the newest server sequence number seen. Outgoing messages in state
 * `sending` are the outbox and survive restarts.
 *
 * Every statement is small and indexed; the cache is used from the thread
 * that created it.
 */
struct _ParleyCache {
  GObject  parent_instance;

  sqlite3 *db;
  char    *path;
  char    *user_id;
};

G_DEFINE_FINAL_TYPE (ParleyCache, parley_cache, G_TYPE_OBJECT)

#define MESSAGE_COLUMNS \
  "id, sender_id, recipient_id, body, timestamp, seq, state, outgoing, unsupported"

static const char schema[] =
  "CREATE TABLE IF NOT EXISTS meta ("
  "  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
  "CREATE TABLE IF NOT EXISTS messages ("
  "  sender_id TEXT NOT NULL, id TEXT NOT NULL, recipient_id TEXT NOT NULL,"
  "  peer_id TEXT NOT NULL, outgoing INTEGER NOT NULL, body TEXT,"
  "  unsupported INTEGER NOT NULL DEFAULT 0, timestamp INTEGER NOT NULL,"
  "  seq INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL,"
  "  PRIMARY KEY (sender_id, id));"
  "CREATE INDEX IF NOT EXISTS messages_by_peer ON messages (peer_id, timestamp);"
  "CREATE INDEX IF NOT EXISTS messages_pending ON messages (state) WHERE state = 0;"
  "CREATE TABLE IF NOT EXISTS conversations ("
  "  peer_id TEXT PRIMARY KEY, last_body TEXT, last_timestamp INTEGER NOT NULL DEFAULT 0,"
  "  unread INTEGER NOT NULL DEFAULT 0);"
  "CREATE TABLE IF NOT EXISTS users ("
  "  user_id TEXT PRIMARY KEY, username TEXT NOT NULL,"
  "  is_contact INTEGER NOT NULL DEFAULT 0, online INTEGER NOT NULL DEFAULT 0);"
  "CREATE INDEX IF NOT EXISTS users_by_name ON users (username);"
  "CREATE TABLE IF NOT EXISTS calls ("
  "  call_id TEXT PRIMARY KEY, peer_id TEXT NOT NULL, outgoing INTEGER NOT NULL,"
  "  video INTEGER NOT NULL, created_at INTEGER NOT NULL, answered_at INTEGER NOT NULL,"
  "  ended_at INTEGER NOT NULL, end_reason TEXT NOT NULL, duration INTEGER NOT NULL);"
  "CREATE INDEX IF NOT EXISTS calls_by_time ON calls (created_at);"
  "CREATE INDEX IF NOT EXISTS calls_by_peer ON calls (peer_id, created_at);";

/* @failed: the translated sentence that says what failed. */
static gboolean
set_sqlite_error (ParleyCache  *self,
                  GError      **error,
                  const char   *failed)
{
  g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, "%s: %s", failed,
               sqlite3_errmsg (self->db));
  return FALSE;
}

static gboolean
exec (ParleyCache  *self,
      const char   *sql,
      GError      **error)
{
  char *message = NULL;

  if (sqlite3_exec (self->db, sql, NULL, NULL, &message) != SQLITE_OK) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("Cache: %s"), message);
    sqlite3_free (message);
    return FALSE;
  }
  return TRUE;
}

/* Prepares @sql and binds the text and integer arguments given as pairs of
 * a type character ('s' or 'i') in @types and the value in the varargs. */
static sqlite3_stmt *
prepare (ParleyCache *self,
         const char  *sql,
         const char  *types,
         ...)
{
  sqlite3_stmt *stmt = NULL;
  va_list args;

  if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    g_critical ("Cache: cannot prepare \"%s\": %s", sql, sqlite3_errmsg (self->db));
    return NULL;
  }

  va_start (args, types);
  for (int i = 0; types[i] != '\0'; i++) {
    if (types[i] == 's')
      sqlite3_bind_text (stmt, i + 1, va_arg (args, const char *), -1, SQLITE_TRANSIENT);
    else
      sqlite3_bind_int64 (stmt, i + 1, va_arg (args, gint64));
  }
  va_end (args);

  return stmt;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static gboolean
run (ParleyCache   *self,
     sqlite3_stmt  *stmt,
     GError       **error)
{
  int rc;

  if (stmt == NULL)
    return set_sqlite_error (self, error, _("The local cache cannot prepare a statement"));
  rc = sqlite3_step (stmt);
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return set_sqlite_error (self, error, _("The local cache cannot write"));
  return TRUE;
}

static char *
dup_column (sqlite3_stmt *stmt,
            int           column)
{
  return g_strdup ((const char *) sqlite3_column_text (stmt, column));
}

static ParleyMessage *
message_from_row (sqlite3_stmt *stmt)
{
  ParleyMessage *message;

  message = parley_message_new ((const char *) sqlite3_column_text (stmt, 0),
                                (const char *) sqlite3_column_text (stmt, 1),
                                (const char *) sqlite3_column_text (stmt, 2),
                                (const char *) sqlite3_column_text (stmt, 3),
                                sqlite3_column_int64 (stmt, 4),
                                sqlite3_column_int64 (stmt, 5),
                                (ParleyMessageState) sqlite3_column_int (stmt, 6),
                                sqlite3_column_int (stmt, 7) != 0);
  parley_message_set_unsupported (message, sqlite3_column_int (stmt, 8) != 0);
  return message;
}

static char *
get_meta (ParleyCache *self,
          const char  *key)
{
  g_autoptr(sqlite3_stmt) stmt = prepare (self, "SELECT value FROM meta WHERE key = ?", "s", key);

  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    return dup_column (stmt, 0);
  return NULL;
}

static gboolean
set_meta (ParleyCache  *self,
          const char   *key,
          const char   *value,
          GError      **error)
{
  return run (self, prepare (self, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             "ss", key, value), error);
}

/* Recomputes the newest message of a conversation, creating it if needed. */
static gboolean
refresh_conversation (ParleyCache  *self,
                      const char   *peer_id,
                      GError      **error)
{
  if (!run (self, prepare (self, "INSERT OR IGNORE INTO conversations (peer_id) VALUES (?)",
                           "s", peer_id), error))
    return FALSE;

  return run (self, prepare (self,
    "UPDATE conversations SET"
    "  last_body = (SELECT body FROM messages WHERE peer_id = ?1"
    "               ORDER BY timestamp DESC, rowid DESC LIMIT 1),"
    "  last_timestamp = IFNULL ((SELECT MAX (timestamp) FROM messages WHERE peer_id = ?1), 0)"
    " WHERE peer_id = ?1", "s", peer_id), error);
}

static void
parley_cache_finalize (GObject *object)
{
  ParleyCache *self = PARLEY_CACHE (object);

  g_clear_pointer (&self->db, sqlite3_close);
  g_free (self->path);
  g_free (self->user_id);

  G_OBJECT_CLASS (parley_cache_parent_class)->finalize (object);
}

static void
parley_cache_class_init (ParleyCacheClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = parley_cache_finalize;
}

static void
parley_cache_init (ParleyCache *self)
{
}

/**
 * parley_conversation_info_free:
 * @info: a conversation row
 *
 * Frees @info.
 */
void
parley_conversation_info_free (ParleyConversationInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->peer_id);
  g_free (info->peer_name);
  g_free (info->last_body);
  g_free (info);
}

/**
 * parley_cache_new:
 * @path: the database file, created if missing
 * @error: return location for a #GError
 *
 * Opens the cache in WAL mode with full synchronisation, so a message
 * added to the outbox survives a crash.
 *
 * Returns: (transfer full): the cache, or %NULL with @error set
 */
ParleyCache *
parley_cache_new (const char  *path,
                  GError     **error)
{
  g_autoptr(ParleyCache) self = g_object_new (PARLEY_TYPE_CACHE, NULL);
  int rc;

  self->path = g_strdup (path);
  rc = sqlite3_open_v2 (path, &self->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL);
  if (rc != SQLITE_OK) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("Cannot open %s: %s"), path,
                 self->db ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc));
    return NULL;
  }
  sqlite3_busy_timeout (self->db, 5000);

  if (!exec (self, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", error) ||
      !exec (self, schema, error))
    return NULL;

  self->user_id = get_meta (self, "user_id");

  return g_steal_pointer (&self);
}

/**
 * parley_cache_bind_user:
 * @self: a cache
 * @user_id: the logged-in user
 * @error: return location for a #GError
 *
 * Declares whose data the cache holds. When another user logs in with the
 * same profile, the previous user's data is wiped first.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_cache_bind_user (ParleyCache  *self,
                        const char   *user_id,
                        GError      **error)
{
  g_return_val_if_fail (PARLEY_IS_CACHE (self), FALSE);
  g_return_val_if_fail (user_id != NULL, FALSE);

  if (g_strcmp0 (self->user_id, user_id) == 0)
    return TRUE;

  if (self->user_id != NULL) {
    g_debug ("Profile changes from user %s to %s, wiping the cache", self->user_id, user_id);
    if (!exec (self, "BEGIN; DELETE FROM messages; DELETE FROM conversations;"
                     "DELETE FROM users; DELETE FROM calls; DELETE FROM meta; COMMIT;", error)) {
      exec (self, "ROLLBACK", NULL);
      return FALSE;
    }
  }

  if (!set_meta (self, "user_id", user_id, error))
    return FALSE;
  g_free (self->user_id);
  self->user_id = g_strdup (user_id);
  return TRUE;
}

/**
 * parley_cache_get_user_id:
 * @self: a cache
 *
 * Returns: (nullable): the user whose data the cache holds
 */
const char *
parley_cache_get_user_id (ParleyCache *self)
{
  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);
  return self->user_id;
}

/**
 * parley_cache_get_last_seq:
 * @self: a cache
 *
 * Returns: the newest server sequence number up to which the cache is complete
 */
gint64
parley_cache_get_last_seq (ParleyCache *self)
{
  g_autofree char *value = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), 0);

  value = get_meta (self, "last_seq");
  return value ? g_ascii_strtoll (value, NULL, 10) : 0;
}

/**
 * parley_cache_set_last_seq:
 * @self: a cache
 * @seq: a sequence number
 * @error: return location for a #GError
 *
 * Raises the stored sequence number to @seq; it never goes back.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_cache_set_last_seq (ParleyCache  *self,
                           gint64        seq,
                           GError      **error)
{
  char buffer[32];

  g_return_val_if_fail (PARLEY_IS_CACHE (self), FALSE);

  if (seq <= parley_cache_get_last_seq (self))
    return TRUE;
  g_snprintf (buffer, sizeof buffer, "%" G_GINT64_FORMAT, seq);
  return set_meta (self, "last_seq", buffer, error);
}

/**
 * parley_cache_add_message:
 * @self: a cache
 * @message: the message
 * @inserted: (out) (optional): whether it was new
 * @error: return location for a #GError
 *
 * Stores @message unless a message with the same sender and id exists
 * (exactly-once at the client). A new incoming message that is not yet read
 * raises the conversation's unread count.
 *
 * Returns: %TRUE on success, also for a duplicate
 */
gboolean
parley_cache_add_message (ParleyCache    *self,
                          ParleyMessage  *message,
                          gboolean       *inserted,
                          GError        **error)
{
  const char *peer_id;
  gboolean outgoing;
  gboolean is_new;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), FALSE);
  g_return_val_if_fail (PARLEY_IS_MESSAGE (message), FALSE);

  if (inserted)
    *inserted = FALSE;

  outgoing = parley_message_get_outgoing (message);
  peer_id = parley_message_get_peer_id (message);

  if (!exec (self, "BEGIN IMMEDIATE", error))
    return FALSE;

  if (!run (self, prepare (self,
        "INSERT OR IGNORE INTO messages (sender_id, id, recipient_id, peer_id, outgoing, body,"
        " unsupported, timestamp, seq, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "ssssisiiii",
        parley_message_get_sender_id (message),
        parley_message_get_id (message),
        parley_message_get_recipient_id (message),
        peer_id,
        (gint64) outgoing,
        parley_message_get_body (message),
        (gint64) parley_message_get_unsupported (message),
        parley_message_get_timestamp (message),
        parley_message_get_seq (message),
        (gint64) parley_message_get_state (message)), error))
    goto fail;

  is_new = sqlite3_changes (self->db) > 0;
  if (is_new) {
    if (!refresh_conversation (self, peer_id, error))
      goto fail;
    if (!outgoing && parley_message_get_state (message) != PARLEY_MESSAGE_STATE_READ &&
        !run (self, prepare (self, "UPDATE conversations SET unread = unread + 1"
                                   " WHERE peer_id = ?", "s", peer_id), error))
      goto fail;
  }

  if (!exec (self, "COMMIT", error))
    goto fail;

  if (inserted)
    *inserted = is_new;
  return TRUE;

fail:
  exec (self, "ROLLBACK", NULL);
  return FALSE;
}

/**
 * parley_cache_lookup_message:
 * @self: a cache
 * @sender_id: the sender
 * @id: the message id
 *
 * Returns: (transfer full) (nullable): the stored message
 */
ParleyMessage *
parley_cache_lookup_message (ParleyCache *self,
                             const char  *sender_id,
                             const char  *id)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, "SELECT " MESSAGE_COLUMNS " FROM messages"
                        " WHERE sender_id = ? AND id = ?", "ss", sender_id, id);
  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    return message_from_row (stmt);
  return NULL;
}

static gboolean
state_may_change (ParleyMessageState from,
                  ParleyMessageState to)
{
  if (from == PARLEY_MESSAGE_STATE_FAILED)
    return FALSE;
  if (to == PARLEY_MESSAGE_STATE_FAILED)
    return from == PARLEY_MESSAGE_STATE_SENDING;
  return to > from;
}

/**
 * parley_cache_update_message:
 * @self: a cache
 * @sender_id: the sender
 * @id: the message id
 * @state: the new state; states only advance, and only `sending` can fail
 * @seq: the server sequence number, or 0 to keep it
 * @timestamp: the server timestamp, or 0 to keep it
 * @changed: (out) (optional): whether anything changed
 * @error: return location for a #GError
 *
 * Records an acknowledgement, a receipt or a read marker. A message that is
 * not in the cache fails with %PARLEY_ERROR_NOT_FOUND.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_cache_update_message (ParleyCache         *self,
                             const char          *sender_id,
                             const char          *id,
                             ParleyMessageState   state,
                             gint64               seq,
                             gint64               timestamp,
                             gboolean            *changed,
                             GError             **error)
{
  g_autoptr(ParleyMessage) current = NULL;
  ParleyMessageState new_state;
  gint64 new_seq, new_timestamp;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), FALSE);

  if (changed)
    *changed = FALSE;

  current = parley_cache_lookup_message (self, sender_id, id);
  if (current == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_NOT_FOUND, _("No message %s from %s"),
                 id, sender_id);
    return FALSE;
  }

  new_state = parley_message_get_state (current);
  if (state_may_change (new_state, state))
    new_state = state;
  new_seq = seq > 0 ? seq : parley_message_get_seq (current);
  new_timestamp = timestamp > 0 ? timestamp : parley_message_get_timestamp (current);

  if (new_state == parley_message_get_state (current) &&
      new_seq == parley_message_get_seq (current) &&
      new_timestamp == parley_message_get_timestamp (current))
    return TRUE;

  if (!run (self, prepare (self, "UPDATE messages SET state = ?, seq = ?, timestamp = ?"
                                 " WHERE sender_id = ? AND id = ?",
                           "iiiss", (gint64) new_state, new_seq, new_timestamp, sender_id, id),
            error))
    return FALSE;

  if (new_timestamp != parley_message_get_timestamp (current) &&
      !refresh_conversation (self, parley_message_get_peer_id (current), error))
    return FALSE;

  if (changed)
    *changed = TRUE;
  return TRUE;
}

static GPtrArray *
collect_messages (sqlite3_stmt *stmt)
{
  GPtrArray *messages = g_ptr_array_new_with_free_func (g_object_unref);

  while (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    g_ptr_array_add (messages, message_from_row (stmt));
  return messages;
}

/**
 * parley_cache_list_pending:
 * @self: a cache
 *
 * Returns: (transfer full) (element-type ParleyMessage): the outbox: outgoing
 *   messages still in state `sending`, oldest first
 */
GPtrArray *
parley_cache_list_pending (ParleyCache *self)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, "SELECT " MESSAGE_COLUMNS " FROM messages"
                        " WHERE state = 0 AND outgoing = 1 ORDER BY rowid", "");
  return collect_messages (stmt);
}

/**
 * parley_cache_list_messages:
 * @self: a cache
 * @peer_id: the other party
 * @limit: the most messages to return, 0 for all
 *
 * Returns: (transfer full) (element-type ParleyMessage): the newest @limit
 *   messages of the conversation, oldest first
 */
GPtrArray *
parley_cache_list_messages (ParleyCache *self,
                            const char  *peer_id,
                            guint        limit)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, "SELECT " MESSAGE_COLUMNS " FROM ("
                        "  SELECT *, rowid AS r FROM messages WHERE peer_id = ?"
                        "  ORDER BY timestamp DESC, rowid DESC LIMIT ?)"
                        " ORDER BY timestamp, r",
                  "si", peer_id, limit > 0 ? (gint64) limit : (gint64) -1);
  return collect_messages (stmt);
}

static ParleyConversationInfo *
conversation_from_row (sqlite3_stmt *stmt)
{
  ParleyConversationInfo *info = g_new0 (ParleyConversationInfo, 1);

  info->peer_id = dup_column (stmt, 0);
  info->peer_name = dup_column (stmt, 1);
  info->last_body = dup_column (stmt, 2);
  info->last_timestamp = sqlite3_column_int64 (stmt, 3);
  info->unread_count = (guint) sqlite3_column_int (stmt, 4);
  return info;
}

#define CONVERSATION_QUERY \
  "SELECT c.peer_id, u.username, c.last_body, c.last_timestamp, c.unread" \
  " FROM conversations c LEFT JOIN users u ON u.user_id = c.peer_id"

/**
 * parley_cache_list_conversations:
 * @self: a cache
 *
 * Returns: (transfer full) (element-type ParleyConversationInfo): every
 *   conversation, the most recent first
 */
GPtrArray *
parley_cache_list_conversations (ParleyCache *self)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) parley_conversation_info_free);

  g_return_val_if_fail (PARLEY_IS_CACHE (self), list);

  stmt = prepare (self, CONVERSATION_QUERY " ORDER BY c.last_timestamp DESC", "");
  while (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    g_ptr_array_add (list, conversation_from_row (stmt));
  return list;
}

/**
 * parley_cache_get_conversation:
 * @self: a cache
 * @peer_id: the other party
 *
 * Returns: (transfer full) (nullable): the conversation with @peer_id
 */
ParleyConversationInfo *
parley_cache_get_conversation (ParleyCache *self,
                               const char  *peer_id)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, CONVERSATION_QUERY " WHERE c.peer_id = ?", "s", peer_id);
  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    return conversation_from_row (stmt);
  return NULL;
}

/**
 * parley_cache_mark_read:
 * @self: a cache
 * @peer_id: the other party
 * @error: return location for a #GError
 *
 * Marks every incoming message of the conversation read and clears its
 * unread count.
 *
 * Returns: (transfer full) (nullable): the id of the newest incoming message
 *   (the one a `read` frame names), or %NULL if there is none or on error
 */
char *
parley_cache_mark_read (ParleyCache  *self,
                        const char   *peer_id,
                        GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autofree char *newest = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, "SELECT id FROM messages WHERE peer_id = ? AND outgoing = 0"
                        " ORDER BY seq DESC, timestamp DESC, rowid DESC LIMIT 1", "s", peer_id);
  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    newest = dup_column (stmt, 0);

  if (!exec (self, "BEGIN IMMEDIATE", error))
    return NULL;
  if (!run (self, prepare (self, "UPDATE messages SET state = 3 WHERE peer_id = ?"
                                 " AND outgoing = 0 AND state < 3", "s", peer_id), error) ||
      !run (self, prepare (self, "UPDATE conversations SET unread = 0 WHERE peer_id = ?",
                           "s", peer_id), error) ||
      !exec (self, "COMMIT", error)) {
    exec (self, "ROLLBACK", NULL);
    return NULL;
  }

  return g_steal_pointer (&newest);
}

/**
 * parley_cache_mark_outgoing_read:
 * @self: a cache
 * @peer_id: the party who read
 * @message_id: the newest message they read
 * @error: return location for a #GError
 *
 * Marks the own message @message_id to @peer_id and every earlier
 * acknowledged own message to them read.
 *
 * Returns: (transfer full) (element-type utf8): the ids of the messages that
 *   changed, or %NULL on error
 */
GPtrArray *
parley_cache_mark_outgoing_read (ParleyCache  *self,
                                 const char   *peer_id,
                                 const char   *message_id,
                                 GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  gint64 seq, timestamp;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, "SELECT seq, timestamp FROM messages WHERE peer_id = ? AND id = ?"
                        " AND outgoing = 1", "ss", peer_id, message_id);
  if (stmt == NULL || sqlite3_step (stmt) != SQLITE_ROW)
    return g_steal_pointer (&ids);
  seq = sqlite3_column_int64 (stmt, 0);
  timestamp = sqlite3_column_int64 (stmt, 1);
  g_clear_pointer (&stmt, sqlite3_finalize);

  /* Messages acknowledged by the server have a seq; compare by it, else by time. */
  stmt = prepare (self, "SELECT id FROM messages WHERE peer_id = ? AND outgoing = 1"
                        " AND state IN (1, 2) AND (id = ? OR (?3 > 0 AND seq > 0 AND seq <= ?3)"
                        " OR (?3 = 0 AND timestamp <= ?4))",
                  "ssii", peer_id, message_id, seq, timestamp);
  while (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    g_ptr_array_add (ids, dup_column (stmt, 0));
  g_clear_pointer (&stmt, sqlite3_finalize);

  for (guint i = 0; i < ids->len; i++) {
    if (!run (self, prepare (self, "UPDATE messages SET state = 3 WHERE sender_id = ? AND id = ?",
                             "ss", self->user_id ? self->user_id : "",
                             (const char *) g_ptr_array_index (ids, i)), error))
      return NULL;
  }

  return g_steal_pointer (&ids);
}

/**
 * parley_cache_set_contact:
 * @self: a cache
 * @user_id: a user id
 * @username: the user's name
 * @is_contact: whether the user is in the contact list (a known user who is
 *   not stays a non-contact; a contact stays a contact)
 * @error: return location for a #GError
 *
 * Remembers a user's name, and whether they are a contact.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_cache_set_contact (ParleyCache  *self,
                          const char   *user_id,
                          const char   *username,
                          gboolean      is_contact,
                          GError      **error)
{
  g_return_val_if_fail (PARLEY_IS_CACHE (self), FALSE);

  return run (self, prepare (self,
                "INSERT INTO users (user_id, username, is_contact) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (user_id) DO UPDATE SET username = ?2,"
                " is_contact = MAX (is_contact, ?3)",
                "ssi", user_id, username, (gint64) !!is_contact), error);
}

/**
 * parley_cache_set_presence:
 * @self: a cache
 * @user_id: a user id
 * @online: the presence
 * @error: return location for a #GError
 *
 * Records a user's presence.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_cache_set_presence (ParleyCache  *self,
                           const char   *user_id,
                           gboolean      online,
                           GError      **error)
{
  g_return_val_if_fail (PARLEY_IS_CACHE (self), FALSE);

  return run (self, prepare (self, "UPDATE users SET online = ? WHERE user_id = ?",
                             "is", (gint64) !!online, user_id), error);
}

/**
 * parley_cache_list_contacts:
 * @self: a cache
 *
 * Returns: (transfer full) (element-type ParleyContact): the contacts, by name
 */
GPtrArray *
parley_cache_list_contacts (ParleyCache *self)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  GPtrArray *list = g_ptr_array_new_with_free_func (g_object_unref);

  g_return_val_if_fail (PARLEY_IS_CACHE (self), list);

  stmt = prepare (self, "SELECT user_id, username, online FROM users WHERE is_contact = 1"
                        " ORDER BY username", "");
  while (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    g_ptr_array_add (list, parley_contact_new ((const char *) sqlite3_column_text (stmt, 0),
                                               (const char *) sqlite3_column_text (stmt, 1),
                                               sqlite3_column_int (stmt, 2) != 0));
  return list;
}

/**
 * parley_cache_lookup_username:
 * @self: a cache
 * @user_id: a user id
 *
 * Returns: (transfer full) (nullable): the user's name, if known
 */
char *
parley_cache_lookup_username (ParleyCache *self,
                              const char  *user_id)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, "SELECT username FROM users WHERE user_id = ?", "s", user_id);
  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    return dup_column (stmt, 0);
  return NULL;
}

/**
 * parley_cache_lookup_user_id:
 * @self: a cache
 * @username: a user name
 *
 * Returns: (transfer full) (nullable): the user's id, if known
 */
char *
parley_cache_lookup_user_id (ParleyCache *self,
                             const char  *username)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (PARLEY_IS_CACHE (self), NULL);

  stmt = prepare (self, "SELECT user_id FROM users WHERE username = ?", "s", username);
  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    return dup_column (stmt, 0);
  return NULL;
}

G_DEFINE_BOXED_TYPE (ParleyCallRecord, parley_call_record, parley_call_record_copy,
                     parley_call_record_free)

/**
 * parley_call_record_new:
 * @call_id: the call's id
 * @peer_id: the other party's user id
 *
 * Returns: (transfer full): a new record with every other field zero
 */
ParleyCallRecord *
parley_call_record_new (const char *call_id,
                        const char *peer_id)
{
  ParleyCallRecord *record = g_new0 (ParleyCallRecord, 1);

  record->call_id = g_strdup (call_id);
  record->peer_id = g_strdup (peer_id);
  return record;
}

/**
 * parley_call_record_copy:
 * @record: a record
 *
 * Returns: (transfer full): a deep copy of @record
 */
ParleyCallRecord *
parley_call_record_copy (const ParleyCallRecord *record)
{
  ParleyCallRecord *copy;

  g_return_val_if_fail (record != NULL, NULL);

  copy = g_memdup2 (record, sizeof *record);
  copy->call_id = g_strdup (record->call_id);
  copy->peer_id = g_strdup (record->peer_id);
  copy->peer_name = g_strdup (record->peer_name);
  return copy;
}

/**
 * parley_call_record_free:
 * @record: (nullable): a record
 *
 * Frees @record.
 */
void
parley_call_record_free (ParleyCallRecord *record)
{
  if (record == NULL)
    return;
  g_free (record->call_id);
  g_free (record->peer_id);
  g_free (record->peer_name);
  g_free (record);
}

/**
 * parley_cache_record_call:
 * @self: a cache
 * @record: an ended call
 * @error: return location for a #GError
 *
 * Writes @record to the call log, replacing an entry with the same call id.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_cache_record_call (ParleyCache             *self,
                          const ParleyCallRecord  *record,
                          GError                 **error)
{
  g_return_val_if_fail (PARLEY_IS_CACHE (self), FALSE);
  g_return_val_if_fail (record != NULL, FALSE);

  if (record->call_id == NULL || *record->call_id == '\0' ||
      record->peer_id == NULL || *record->peer_id == '\0') {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 _("A call record needs a call id and a peer id"));
    return FALSE;
  }

  return run (self, prepare (self,
    "INSERT OR REPLACE INTO calls (call_id, peer_id, outgoing, video, created_at, answered_at,"
    " ended_at, end_reason, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "ssiiiiisi", record->call_id, record->peer_id, (gint64) !!record->outgoing,
    (gint64) !!record->video, record->created_at, record->answered_at, record->ended_at,
    parley_call_end_reason_to_string (record->end_reason), MAX (record->duration, 0)), error);
}

/**
 * parley_cache_list_calls:
 * @self: a cache
 * @peer_id: (nullable): only calls with this user, or %NULL for all
 * @limit: the most calls to return, 0 for all
 *
 * Returns: (transfer full) (element-type ParleyCallRecord): the newest @limit
 *   calls, the most recent first
 */
GPtrArray *
parley_cache_list_calls (ParleyCache *self,
                         const char  *peer_id,
                         guint        limit)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) parley_call_record_free);

  g_return_val_if_fail (PARLEY_IS_CACHE (self), list);

  stmt = prepare (self,
    "SELECT c.call_id, c.peer_id, u.username, c.outgoing, c.video, c.created_at,"
    " c.answered_at, c.ended_at, c.end_reason, c.duration"
    " FROM calls c LEFT JOIN users u ON u.user_id = c.peer_id"
    " WHERE ?1 IS NULL OR c.peer_id = ?1"
    " ORDER BY c.created_at DESC, c.rowid DESC LIMIT ?2",
    "si", peer_id, limit > 0 ? (gint64) limit : (gint64) -1);
  while (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW) {
    const char *call_id = (const char *) sqlite3_column_text (stmt, 0);
    const char *peer = (const char *) sqlite3_column_text (stmt, 1);
    ParleyCallRecord *record = parley_call_record_new (call_id, peer);

    record->peer_name = dup_column (stmt, 2);
    record->outgoing = sqlite3_column_int (stmt, 3) != 0;
    record->video = sqlite3_column_int (stmt, 4) != 0;
    record->created_at = sqlite3_column_int64 (stmt, 5);
    record->answered_at = sqlite3_column_int64 (stmt, 6);
    record->ended_at = sqlite3_column_int64 (stmt, 7);
    record->end_reason =
      parley_call_end_reason_from_string ((const char *) sqlite3_column_text (stmt, 8));
    record->duration = sqlite3_column_int64 (stmt, 9);
    g_ptr_array_add (list, record);
  }
  return list;
}
