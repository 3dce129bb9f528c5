/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyStore:
 *
 * The server's SQLite database. Chat traffic (messages, receipts and read
 * markers) goes through parley_store_submit() to a single writer thread that
 * appends everything queued to the message log in one transaction (group
 * commit) and then hands the whole batch to a callback. An indexer thread
 * maintains the message indexes in a second file a little later; queries
 * combine them with what is not indexed yet, so they always answer for
 * every committed op. Everything else runs synchronously on a second
 * connection guarded by a mutex. All functions are thread-safe.
 */
typedef struct _ParleyStore ParleyStore;

#define PARLEY_STORE_ERROR (parley_store_error_quark ())

/**
 * ParleyStoreError:
 * @PARLEY_STORE_ERROR_FAILED: a database error
 * @PARLEY_STORE_ERROR_EXISTS: the row exists already (e.g. a taken user name)
 * @PARLEY_STORE_ERROR_NOT_FOUND: no such user or message
 *
 * Errors of the store.
 */
typedef enum {
  PARLEY_STORE_ERROR_FAILED,
  PARLEY_STORE_ERROR_EXISTS,
  PARLEY_STORE_ERROR_NOT_FOUND,
} ParleyStoreError;

/**
 * ParleyStoreOpKind:
 * @PARLEY_STORE_OP_MESSAGE: store a chat message
 * @PARLEY_STORE_OP_RECEIVED: the recipient acknowledged a message
 * @PARLEY_STORE_OP_READ: store the newest read message of a conversation
 *
 * What a #ParleyStoreOp does.
 */
typedef enum {
  PARLEY_STORE_OP_MESSAGE,
  PARLEY_STORE_OP_RECEIVED,
  PARLEY_STORE_OP_READ,
} ParleyStoreOpKind;

/**
 * ParleyStoreOp:
 * @kind: what to do
 * @user_id: the authenticated user doing it
 * @peer_id: MESSAGE: the recipient; READ: the other party
 * @message_id: MESSAGE: the client's id; READ: id of the newest read message
 * @content: MESSAGE: encryptedContent as a raw JSON string literal, quotes
 *   included
 * @content_len: length of @content in bytes
 * @seq: RECEIVED: in, the seq being acknowledged; MESSAGE: out
 * @timestamp: MESSAGE/READ: in (ms since the epoch); for a MESSAGE duplicate:
 *   out, the original's
 * @duplicate: out, MESSAGE: (user_id, message_id) was stored before; @seq and
 *   @timestamp are the original's
 * @delivered: out, MESSAGE duplicate: the recipient had acknowledged it;
 *   RECEIVED: this op changed the message to delivered
 * @orig_sender: out, RECEIVED: the sender of the acknowledged message (set
 *   whenever the message exists and is addressed to @user_id)
 * @orig_id: out, RECEIVED: the client id of the acknowledged message
 * @error: out: why the op failed. %PARLEY_STORE_ERROR_NOT_FOUND for a
 *   RECEIVED of a seq that is not addressed to @user_id; when a transaction
 *   fails, every op of the batch gets an error and nothing was stored.
 * @caller_data: free for the caller, untouched by the store
 * @caller_tag: free for the caller, untouched by the store
 *
 * One queued write. The in fields are owned by the op and freed by
 * parley_store_op_free(); the out fields are set on the writer thread before
 * the batch callback runs.
 */
typedef struct {
  ParleyStoreOpKind kind;

  char *user_id;
  char *peer_id;
  char *message_id;
  char *content;
  gsize content_len;
  gint64 seq;
  gint64 timestamp;

  gboolean duplicate;
  gboolean delivered;
  char *orig_sender;
  char *orig_id;
  GError *error;

  gpointer caller_data;
  guint64 caller_tag;
} ParleyStoreOp;

/**
 * ParleyStoreBatchFunc:
 * @ops: (array length=n_ops) (transfer container): the committed ops, in
 *   submission order
 * @n_ops: the number of ops
 * @user_data: the data given to parley_store_open()
 *
 * Called on the writer thread once per committed (or failed) batch. The
 * callee owns the ops and must free them with parley_store_op_free(); the
 * array itself belongs to the store and is only valid during the call.
 */
typedef void (*ParleyStoreBatchFunc) (ParleyStoreOp **ops,
                                      guint           n_ops,
                                      gpointer        user_data);

/**
 * ParleyUserInfo:
 * @user_id: the user id
 * @username: the user name
 *
 * A user as listed by searches and contact lists.
 */
typedef struct {
  char *user_id;
  char *username;
} ParleyUserInfo;

/**
 * ParleyStoredMessage:
 * @seq: the server sequence number
 * @id: the sender's client id
 * @sender_id: the sender
 * @recipient_id: the recipient
 * @content: the encrypted content as a raw JSON string literal
 * @timestamp: when the server accepted it, in ms since the epoch
 *
 * A message read back from the store.
 */
typedef struct {
  gint64 seq;
  char *id;
  char *sender_id;
  char *recipient_id;
  char *content;
  gint64 timestamp;
} ParleyStoredMessage;

/**
 * ParleyRefreshResult:
 * @PARLEY_REFRESH_OK: rotated; the new token is stored
 * @PARLEY_REFRESH_UNKNOWN: no such token, or its family was revoked
 * @PARLEY_REFRESH_EXPIRED: the token expired
 * @PARLEY_REFRESH_REUSED: the token had been used before; its family is now
 *   revoked
 *
 * The outcome of parley_store_rotate_refresh_token().
 */
typedef enum {
  PARLEY_REFRESH_OK,
  PARLEY_REFRESH_UNKNOWN,
  PARLEY_REFRESH_EXPIRED,
  PARLEY_REFRESH_REUSED,
} ParleyRefreshResult;

GQuark         parley_store_error_quark  (void);

ParleyStoreOp *parley_store_op_new       (ParleyStoreOpKind     kind);
void           parley_store_op_free      (ParleyStoreOp        *op);

void           parley_user_info_free     (ParleyUserInfo       *info);
void           parley_stored_message_free (ParleyStoredMessage *msg);

ParleyStore   *parley_store_open         (const char           *path,
                                          ParleyStoreBatchFunc  batch_done,
                                          gpointer              user_data,
                                          GError              **error);
void           parley_store_close        (ParleyStore          *self);
void           parley_store_submit       (ParleyStore          *self,
                                          ParleyStoreOp        *op);

gboolean       parley_store_create_user  (ParleyStore          *self,
                                          const char           *username,
                                          const char           *password_hash,
                                          char                **out_user_id,
                                          GError              **error);
gboolean       parley_store_find_user    (ParleyStore          *self,
                                          const char           *username,
                                          char                **out_user_id,
                                          char                **out_hash,
                                          GError              **error);
gboolean       parley_store_user_exists  (ParleyStore          *self,
                                          const char           *user_id);
char          *parley_store_get_username (ParleyStore          *self,
                                          const char           *user_id);
const char    *parley_store_lookup_username (ParleyStore       *self,
                                             const char        *user_id);
GPtrArray     *parley_store_search_users (ParleyStore          *self,
                                          const char           *prefix,
                                          guint                 limit);
gboolean       parley_store_add_contact  (ParleyStore          *self,
                                          const char           *user_id,
                                          const char           *contact_id,
                                          GError              **error);
GPtrArray     *parley_store_list_contacts (ParleyStore         *self,
                                           const char          *user_id);

gboolean       parley_store_add_refresh_token    (ParleyStore   *self,
                                                  const char    *token_hash,
                                                  const char    *user_id,
                                                  const char    *family,
                                                  gint64         expires_at,
                                                  GError       **error);
ParleyRefreshResult parley_store_rotate_refresh_token (ParleyStore  *self,
                                                       const char   *old_hash,
                                                       const char   *new_hash,
                                                       gint64        now,
                                                       gint64        new_expires_at,
                                                       char        **out_user_id);
void           parley_store_revoke_refresh_family (ParleyStore  *self,
                                                   const char   *token_hash);
gint64         parley_store_prune_refresh_tokens  (ParleyStore  *self,
                                                   gint64        now);

GPtrArray     *parley_store_pending_for   (ParleyStore         *self,
                                           const char          *user_id,
                                           gint64               after_seq,
                                           guint                limit);
GPtrArray     *parley_store_history_since (ParleyStore         *self,
                                           const char          *user_id,
                                           gint64               since,
                                           guint                limit);
gint64         parley_store_latest_seq_for (ParleyStore        *self,
                                            const char         *user_id);

void           parley_store_pause_indexer (ParleyStore         *self,
                                           gboolean             paused);
gboolean       parley_store_flush_index   (ParleyStore         *self);
void           parley_store_set_index_checkpoint_frames (ParleyStore *self,
                                                         int          n_frames);
void           parley_store_set_checkpoint_frames (ParleyStore *self,
                                                   int          n_frames);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyStoreOp, parley_store_op_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyUserInfo, parley_user_info_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyStoredMessage, parley_stored_message_free)

G_END_DECLS
