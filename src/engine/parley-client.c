/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-client"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>

#include "parley-client.h"
#include "parley-connection.h"
#include "parley-content.h"
#include "parley-conversation-private.h"
#include "parley-engine-enums.h"
#include "parley-error.h"
#include "parley-envelope.h"
#include "parley-outbox.h"

#define SYNC_LIMIT 500

/**
 * ParleyClient:
 *
 * The engine's façade: one account on one server with its profile
 * directory. It owns the account (tokens), the connection, the cache and the
 * outbox, keeps the conversation list as a #GListModel and emits a signal
 * for every event from the server.
 */
struct _ParleyClient {
  GObject           parent_instance;

  char             *profile_dir;
  SoupSession      *http;
  ParleyAccount    *account;
  ParleyCache      *cache;
  ParleyConnection *connection;
  ParleyOutbox     *outbox;
  GCancellable     *cancellable;

  GListStore       *conversations;
  GHashTable       *conversation_index;  /* peer id → ParleyConversation (borrowed) */
  GHashTable       *pending_reads;       /* peer id → message id, sent after hello */

  char             *sync_ref;
  gint64            sync_since;
  gint64            sync_max_seq;
  guint             sync_counter;
  gboolean          syncing;
  gboolean          synced;
};

G_DEFINE_FINAL_TYPE (ParleyClient, parley_client, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_STATE,
  PROP_USER_ID,
  PROP_USERNAME,
  PROP_LOGGED_IN,
  N_PROPS
};

enum {
  SIGNAL_STATE_CHANGED,
  SIGNAL_MESSAGE_RECEIVED,
  SIGNAL_MESSAGE_STATE_CHANGED,
  SIGNAL_TYPING,
  SIGNAL_READ,
  SIGNAL_PRESENCE,
  SIGNAL_CALL_SIGNAL,
  SIGNAL_ERROR,
  SIGNAL_REQUEST_ERROR,
  SIGNAL_SYNCED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void
emit_error (ParleyClient *self,
            const char   *code,
            const char   *message)
{
  g_debug ("Error %s: %s", code, message ? message : "");
  g_signal_emit (self, signals[SIGNAL_ERROR], 0, code, message);
}

static int
compare_conversations (gconstpointer a,
                       gconstpointer b,
                       gpointer      user_data)
{
  gint64 ta = parley_conversation_get_last_timestamp ((ParleyConversation *) a);
  gint64 tb = parley_conversation_get_last_timestamp ((ParleyConversation *) b);

  return ta > tb ? -1 : ta < tb ? 1 : 0;
}

/* Brings the conversation with @peer_id in line with the cache, creating it
 * and keeping the list sorted by the newest message. */
static ParleyConversation *
refresh_conversation (ParleyClient *self,
                      const char   *peer_id)
{
  g_autoptr(ParleyConversationInfo) info = parley_cache_get_conversation (self->cache, peer_id);
  ParleyConversation *conversation = g_hash_table_lookup (self->conversation_index, peer_id);
  guint position;

  if (info == NULL)
    return conversation;

  if (conversation == NULL) {
    g_autoptr(ParleyConversation) created = parley_conversation_new (self->cache, info);

    g_hash_table_insert (self->conversation_index, g_strdup (peer_id), created);
    g_list_store_insert_sorted (self->conversations, created, compare_conversations, NULL);
    return created;
  }

  if (info->last_timestamp != parley_conversation_get_last_timestamp (conversation) &&
      g_list_store_find (self->conversations, conversation, &position)) {
    g_object_ref (conversation);
    g_list_store_remove (self->conversations, position);
    parley_conversation_update (conversation, info);
    g_list_store_insert_sorted (self->conversations, conversation, compare_conversations, NULL);
    g_object_unref (conversation);
  } else {
    parley_conversation_update (conversation, info);
  }
  return conversation;
}

static void
load_conversations (ParleyClient *self)
{
  g_autoptr(GPtrArray) rows = parley_cache_list_conversations (self->cache);

  g_list_store_remove_all (self->conversations);
  g_hash_table_remove_all (self->conversation_index);
  for (guint i = 0; i < rows->len; i++) {
    ParleyConversationInfo *info = g_ptr_array_index (rows, i);
    g_autoptr(ParleyConversation) conversation = parley_conversation_new (self->cache, info);

    g_hash_table_insert (self->conversation_index, g_strdup (info->peer_id), conversation);
    g_list_store_append (self->conversations, conversation);
  }
}

/* Copies the stored state of an own or incoming message onto its live object
 * and announces the change. */
static void
message_changed (ParleyClient *self,
                 const char   *sender_id,
                 const char   *id)
{
  g_autoptr(ParleyMessage) stored = parley_cache_lookup_message (self->cache, sender_id, id);
  ParleyConversation *conversation;
  ParleyMessage *live = NULL;

  if (stored == NULL)
    return;

  conversation = refresh_conversation (self, parley_message_get_peer_id (stored));
  if (conversation != NULL)
    live = parley_conversation_find_message (conversation, sender_id, id);
  if (live != NULL) {
    g_object_freeze_notify (G_OBJECT (live));
    parley_message_set_state (live, parley_message_get_state (stored));
    parley_message_set_seq (live, parley_message_get_seq (stored));
    parley_message_set_timestamp (live, parley_message_get_timestamp (stored));
    g_object_thaw_notify (G_OBJECT (live));
  }

  g_signal_emit (self, signals[SIGNAL_MESSAGE_STATE_CHANGED], 0, live ? live : stored);
}

static void
outbox_message_updated_cb (ParleyClient *self,
                           const char   *id,
                           const char   *code,
                           const char   *text)
{
  const char *self_id = parley_client_get_user_id (self);

  if (self_id != NULL)
    message_changed (self, self_id, id);
  if (code != NULL) {
    g_autofree char *what = g_strdup_printf ("message %s was refused: %s", id,
                                             text ? text : code);
    emit_error (self, code, what);
  }
}

static void
send_frame (ParleyClient *self,
            JsonObject   *frame)
{
  parley_connection_send (self->connection, frame);
}

static void
send_sync (ParleyClient *self,
           gint64        since)
{
  g_autoptr(JsonObject) frame = json_object_new ();

  g_free (self->sync_ref);
  self->sync_ref = g_strdup_printf ("sync-%u", ++self->sync_counter);
  self->syncing = TRUE;
  self->sync_since = since;

  json_object_set_string_member (frame, "type", "sync");
  json_object_set_string_member (frame, "id", self->sync_ref);
  json_object_set_int_member (frame, "since", since);
  json_object_set_int_member (frame, "limit", SYNC_LIMIT);
  send_frame (self, frame);
}

static void
send_read (ParleyClient *self,
           const char   *peer_id,
           const char   *message_id)
{
  g_autoptr(JsonObject) frame = json_object_new ();
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *ref = g_strconcat ("read-", uuid, NULL);

  json_object_set_string_member (frame, "type", "read");
  json_object_set_string_member (frame, "id", ref);
  json_object_set_string_member (frame, "recipientId", peer_id);
  json_object_set_string_member (frame, "messageId", message_id);
  if (parley_connection_send (self->connection, frame))
    g_hash_table_remove (self->pending_reads, peer_id);
  else
    g_hash_table_replace (self->pending_reads, g_strdup (peer_id), g_strdup (message_id));
}

static void refresh_contacts (ParleyClient *self);

static void
hello_cb (ParleyClient *self,
          JsonObject   *frame)
{
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr(GHashTable) reads = NULL;

  g_debug ("Hello, server seq %" G_GINT64_FORMAT,
           json_object_get_int_member_with_default (frame, "seq", 0));

  self->sync_max_seq = 0;
  send_sync (self, parley_cache_get_last_seq (self->cache));
  parley_outbox_flush (self->outbox);

  reads = g_hash_table_ref (self->pending_reads);
  g_hash_table_iter_init (&iter, reads);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    g_autofree char *peer = g_strdup (key);
    g_autofree char *id = g_strdup (value);

    send_read (self, peer, id);
    g_hash_table_iter_init (&iter, reads);
  }

  refresh_contacts (self);
}

static gboolean
valid_id (const char *id)
{
  gsize length;

  if (id == NULL)
    return FALSE;
  length = strlen (id);
  if (length < 1 || length > 64)
    return FALSE;
  for (const char *p = id; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr ("_.:-", *p))
      return FALSE;
  return TRUE;
}

static void
handle_message (ParleyClient *self,
                JsonObject   *frame)
{
  const char *self_id = parley_client_get_user_id (self);
  const char *id = json_object_get_string_member_with_default (frame, "id", NULL);
  const char *sender = json_object_get_string_member_with_default (frame, "senderId", NULL);
  const char *recipient = json_object_get_string_member_with_default (frame, "recipientId", NULL);
  const char *content = json_object_get_string_member_with_default (frame, "encryptedContent",
                                                                     NULL);
  gint64 seq = json_object_get_int_member_with_default (frame, "seq", 0);
  gint64 timestamp = json_object_get_int_member_with_default (frame, "timestamp", 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyMessage) message = NULL;
  g_autofree char *body = NULL;
  gboolean outgoing, inserted = FALSE;

  if (self_id == NULL || !valid_id (id) || !valid_id (sender) || !valid_id (recipient) ||
      content == NULL || seq <= 0) {
    emit_error (self, "invalid-message", "the server sent a malformed message");
    return;
  }
  if (g_strcmp0 (recipient, self_id) != 0 && g_strcmp0 (sender, self_id) != 0) {
    emit_error (self, "invalid-message", "the server sent a message for another user");
    return;
  }

  outgoing = g_str_equal (sender, self_id);
  /* The server names the sender, so a first message from a stranger shows a
   * name; exchanging messages makes people contacts. */
  if (!outgoing) {
    const char *name = json_object_get_string_member_with_default (frame, "senderName", NULL);

    if (name != NULL && *name != '\0')
      parley_cache_set_contact (self->cache, sender, name, TRUE, NULL);
  }
  body = parley_content_decode (content, &error);

  message = parley_message_new (id, sender, recipient, body, timestamp, seq,
                                outgoing ? PARLEY_MESSAGE_STATE_STORED
                                         : PARLEY_MESSAGE_STATE_DELIVERED,
                                outgoing);
  if (body == NULL)
    parley_message_set_unsupported (message, TRUE);

  if (!parley_cache_add_message (self->cache, message, &inserted, &error)) {
    emit_error (self, "cache", error->message);
    return;
  }

  if (inserted) {
    ParleyConversation *conversation;

    if (body == NULL) {
      g_autofree char *what = g_strdup_printf ("cannot read message %s: %s", id,
                                               error ? error->message : "unknown content");
      emit_error (self, "unsupported-content", what);
    }
    conversation = refresh_conversation (self, parley_message_get_peer_id (message));
    if (conversation != NULL)
      parley_conversation_add_message (conversation, message);
    g_signal_emit (self, signals[SIGNAL_MESSAGE_RECEIVED], 0, message);
  } else if (outgoing) {
    gboolean changed = FALSE;

    /* An own message seen again (sync, or the ack got lost): it is stored for sure. */
    parley_cache_update_message (self->cache, sender, id, PARLEY_MESSAGE_STATE_STORED,
                                 seq, timestamp, &changed, NULL);
    if (changed)
      message_changed (self, sender, id);
  }

  /* Acknowledge receipt of messages to this account: new ones, and pushes of known
   * ones whose earlier acknowledgement got lost (sync answers are not pushes). */
  if (!outgoing && (inserted || !self->syncing || seq <= self->sync_since)) {
    g_autoptr(JsonObject) received = json_object_new ();

    json_object_set_string_member (received, "type", "received");
    json_object_set_int_member (received, "seq", seq);
    send_frame (self, received);
  }

  if (self->syncing)
    self->sync_max_seq = MAX (self->sync_max_seq, seq);
  else
    parley_cache_set_last_seq (self->cache, seq, NULL);
}

static void
handle_ack (ParleyClient *self,
            JsonObject   *frame)
{
  const char *ref = json_object_get_string_member_with_default (frame, "ref", NULL);

  if (parley_outbox_handle_ack (self->outbox, frame))
    return;

  if (ref != NULL && g_strcmp0 (ref, self->sync_ref) == 0) {
    gint64 seq = json_object_get_int_member_with_default (frame, "seq", 0);
    gboolean more = json_object_get_boolean_member_with_default (frame, "more", FALSE);
    gint64 reached = MAX (seq, self->sync_max_seq);

    /* The next page starts after this one's last message (the ack's seq), not
     * after the newest message seen: stored messages replayed to this device
     * and live ones arrive meanwhile, with larger seqs than the pages left. */
    if (more && seq > self->sync_since) {
      parley_cache_set_last_seq (self->cache, seq, NULL);
      send_sync (self, seq);
      return;
    }
    parley_cache_set_last_seq (self->cache, reached, NULL);
    self->syncing = FALSE;
    g_debug ("Synced up to seq %" G_GINT64_FORMAT, reached);
    if (!self->synced) {
      self->synced = TRUE;
    }
    g_signal_emit (self, signals[SIGNAL_SYNCED], 0);
  }
}

static void
handle_error (ParleyClient *self,
              JsonObject   *frame)
{
  const char *ref = json_object_get_string_member_with_default (frame, "ref", NULL);
  const char *code = json_object_get_string_member_with_default (frame, "code", "unknown");
  const char *message = json_object_get_string_member_with_default (frame, "message", NULL);

  if (parley_outbox_handle_error (self->outbox, frame))
    return;
  if (ref != NULL && g_strcmp0 (ref, self->sync_ref) == 0)
    self->syncing = FALSE;
  if (ref != NULL)
    g_signal_emit (self, signals[SIGNAL_REQUEST_ERROR], 0, code, message, ref);
  emit_error (self, code, message);
}

static void
handle_receipt (ParleyClient *self,
                JsonObject   *frame)
{
  const char *id = json_object_get_string_member_with_default (frame, "id", NULL);
  const char *self_id = parley_client_get_user_id (self);
  gboolean changed = FALSE;

  if (id == NULL || self_id == NULL)
    return;
  if (parley_cache_update_message (self->cache, self_id, id, PARLEY_MESSAGE_STATE_DELIVERED,
                                   0, 0, &changed, NULL) && changed)
    message_changed (self, self_id, id);
}

static void
handle_read (ParleyClient *self,
             JsonObject   *frame)
{
  const char *self_id = parley_client_get_user_id (self);
  const char *sender = json_object_get_string_member_with_default (frame, "senderId", NULL);
  const char *recipient = json_object_get_string_member_with_default (frame, "recipientId", NULL);
  const char *message_id = json_object_get_string_member_with_default (frame, "messageId", NULL);
  g_autoptr(GPtrArray) ids = NULL;

  if (self_id == NULL || !valid_id (sender) || !valid_id (message_id))
    return;

  if (g_str_equal (sender, self_id)) {
    /* Another device of this account read the conversation with @recipient. */
    if (valid_id (recipient)) {
      g_autofree char *newest = parley_cache_mark_read (self->cache, recipient, NULL);
      ParleyConversation *conversation = refresh_conversation (self, recipient);
      GListModel *model = conversation ? parley_conversation_get_messages (conversation) : NULL;

      for (guint i = 0; model && i < g_list_model_get_n_items (model); i++) {
        g_autoptr(ParleyMessage) m = g_list_model_get_item (model, i);
        if (!parley_message_get_outgoing (m))
          parley_message_set_state (m, PARLEY_MESSAGE_STATE_READ);
      }
    }
    return;
  }

  ids = parley_cache_mark_outgoing_read (self->cache, sender, message_id, NULL);
  for (guint i = 0; ids && i < ids->len; i++)
    message_changed (self, self_id, g_ptr_array_index (ids, i));
  g_signal_emit (self, signals[SIGNAL_READ], 0, sender, message_id);
}

static void
frame_cb (ParleyClient *self,
          const char   *type,
          JsonObject   *frame)
{
  if (g_str_equal (type, "message")) {
    handle_message (self, frame);
  } else if (g_str_equal (type, "ack")) {
    handle_ack (self, frame);
  } else if (g_str_equal (type, "error")) {
    handle_error (self, frame);
  } else if (g_str_equal (type, "receipt")) {
    handle_receipt (self, frame);
  } else if (g_str_equal (type, "read")) {
    handle_read (self, frame);
  } else if (g_str_equal (type, "typing")) {
    const char *sender = json_object_get_string_member_with_default (frame, "senderId", NULL);
    const char *state = json_object_get_string_member_with_default (frame, "state", "");

    if (valid_id (sender))
      g_signal_emit (self, signals[SIGNAL_TYPING], 0, sender, g_str_equal (state, "active"));
  } else if (g_str_equal (type, "presence")) {
    const char *user = json_object_get_string_member_with_default (frame, "userId", NULL);
    const char *state = json_object_get_string_member_with_default (frame, "state", "");
    gboolean online = g_str_equal (state, "online");

    if (valid_id (user)) {
      const char *name = json_object_get_string_member_with_default (frame, "username", NULL);

      if (name != NULL && *name != '\0')
        parley_cache_set_contact (self->cache, user, name, TRUE, NULL);
      parley_cache_set_presence (self->cache, user, online, NULL);
      g_signal_emit (self, signals[SIGNAL_PRESENCE], 0, user, online);
    }
  } else if (g_str_has_prefix (type, "call-")) {
    g_signal_emit (self, signals[SIGNAL_CALL_SIGNAL], 0, type, frame);
  } else {
    g_debug ("Ignoring a frame of type %s", type);
  }
}

static void
connection_state_cb (ParleyClient      *self,
                     ParleyClientState  new_state,
                     ParleyClientState  old_state)
{
  if (new_state != PARLEY_CLIENT_STATE_CONNECTED)
    self->syncing = FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, new_state, old_state);
}

static void
account_notify_cb (ParleyClient *self,
                   GParamSpec   *pspec)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USER_ID]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USERNAME]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOGGED_IN]);
}

static void
account_logged_out_cb (ParleyClient *self,
                       GError       *error)
{
  parley_connection_stop (self->connection);
  emit_error (self, "logged-out", error ? error->message : "the session ended");
}

static void
parley_client_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  ParleyClient *self = PARLEY_CLIENT (object);

  switch (prop_id) {
  case PROP_STATE: g_value_set_enum (value, parley_client_get_state (self)); break;
  case PROP_USER_ID: g_value_set_string (value, parley_client_get_user_id (self)); break;
  case PROP_USERNAME: g_value_set_string (value, parley_client_get_username (self)); break;
  case PROP_LOGGED_IN: g_value_set_boolean (value, parley_client_get_logged_in (self)); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_client_dispose (GObject *object)
{
  ParleyClient *self = PARLEY_CLIENT (object);

  g_cancellable_cancel (self->cancellable);
  if (self->connection != NULL) {
    g_signal_handlers_disconnect_by_data (self->connection, self);
    parley_connection_stop (self->connection);
  }
  if (self->account != NULL)
    g_signal_handlers_disconnect_by_data (self->account, self);
  if (self->outbox != NULL)
    g_signal_handlers_disconnect_by_data (self->outbox, self);
  g_clear_object (&self->outbox);
  g_clear_object (&self->connection);
  g_clear_object (&self->account);
  g_clear_pointer (&self->conversation_index, g_hash_table_unref);
  g_clear_object (&self->conversations);
  g_clear_object (&self->cache);
  g_clear_object (&self->http);

  G_OBJECT_CLASS (parley_client_parent_class)->dispose (object);
}

static void
parley_client_finalize (GObject *object)
{
  ParleyClient *self = PARLEY_CLIENT (object);

  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->pending_reads, g_hash_table_unref);
  g_free (self->profile_dir);
  g_free (self->sync_ref);

  G_OBJECT_CLASS (parley_client_parent_class)->finalize (object);
}

static void
parley_client_class_init (ParleyClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GType type = G_TYPE_FROM_CLASS (klass);

  object_class->get_property = parley_client_get_property;
  object_class->dispose = parley_client_dispose;
  object_class->finalize = parley_client_finalize;

  /** ParleyClient:state: the connection state */
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, PARLEY_TYPE_CLIENT_STATE,
                                              PARLEY_CLIENT_STATE_DISCONNECTED, flags);
  /** ParleyClient:user-id: the logged-in user's id */
  properties[PROP_USER_ID] = g_param_spec_string ("user-id", NULL, NULL, NULL, flags);
  /** ParleyClient:username: the logged-in user's name */
  properties[PROP_USERNAME] = g_param_spec_string ("username", NULL, NULL, NULL, flags);
  /** ParleyClient:logged-in: whether the profile holds a session */
  properties[PROP_LOGGED_IN] = g_param_spec_boolean ("logged-in", NULL, NULL, FALSE, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyClient::state-changed:
   * @new_state: the new #ParleyClientState
   * @old_state: the previous one
   */
  signals[SIGNAL_STATE_CHANGED] =
    g_signal_new ("state-changed", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, PARLEY_TYPE_CLIENT_STATE, PARLEY_TYPE_CLIENT_STATE);
  /**
   * ParleyClient::message-received:
   * @message: a #ParleyMessage new to this device (incoming, or sent by
   *   another device of the account)
   */
  signals[SIGNAL_MESSAGE_RECEIVED] =
    g_signal_new ("message-received", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, PARLEY_TYPE_MESSAGE);
  /**
   * ParleyClient::message-state-changed:
   * @message: a #ParleyMessage whose state, seq or timestamp changed
   */
  signals[SIGNAL_MESSAGE_STATE_CHANGED] =
    g_signal_new ("message-state-changed", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, PARLEY_TYPE_MESSAGE);
  /**
   * ParleyClient::typing:
   * @user_id: who is typing
   * @active: %TRUE for typing, %FALSE for paused
   */
  signals[SIGNAL_TYPING] =
    g_signal_new ("typing", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
  /**
   * ParleyClient::read:
   * @user_id: who read
   * @message_id: the newest own message they read
   */
  signals[SIGNAL_READ] =
    g_signal_new ("read", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * ParleyClient::presence:
   * @user_id: a contact
   * @online: whether they are online now
   */
  signals[SIGNAL_PRESENCE] =
    g_signal_new ("presence", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
  /**
   * ParleyClient::call-signal:
   * @type: the frame type, such as `call-offer`
   * @frame: the whole frame
   */
  signals[SIGNAL_CALL_SIGNAL] =
    g_signal_new ("call-signal", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING, JSON_TYPE_OBJECT);
  /**
   * ParleyClient::error:
   * @code: the server's or the engine's error code
   * @message: (nullable): a human-readable explanation
   */
  signals[SIGNAL_ERROR] =
    g_signal_new ("error", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * ParleyClient::request-error:
   * @code: the server's error code
   * @message: (nullable): a human-readable explanation
   * @ref: the `id` of the request the server refused
   *
   * The server refused a request that carried an `id` (such as the first
   * `call-offer` of a call). Emitted before #ParleyClient::error, which
   * follows for the same frame.
   */
  signals[SIGNAL_REQUEST_ERROR] =
    g_signal_new ("request-error", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * ParleyClient::synced:
   *
   * The cache caught up with the server after a (re)connection.
   */
  signals[SIGNAL_SYNCED] =
    g_signal_new ("synced", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
parley_client_init (ParleyClient *self)
{
  self->cancellable = g_cancellable_new ();
  self->conversations = g_list_store_new (PARLEY_TYPE_CONVERSATION);
  self->conversation_index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->pending_reads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

/**
 * parley_client_new:
 * @server_url: the server's base URL, such as `http://127.0.0.1:8421`
 * @profile_dir: the profile directory (created with mode 0700 if missing)
 * @error: return location for a #GError
 *
 * Opens the profile: the stored session and the cache.
 *
 * Returns: (transfer full): a new client, or %NULL with @error set
 */
ParleyClient *
parley_client_new (const char  *server_url,
                   const char  *profile_dir,
                   GError     **error)
{
  g_autoptr(ParleyClient) self = g_object_new (PARLEY_TYPE_CLIENT, NULL);
  g_autofree char *cache_path = g_build_filename (profile_dir, "cache.db", NULL);

  if (g_mkdir_with_parents (profile_dir, 0700) != 0) {
    int saved_errno = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                 _("cannot create %s: %s"), profile_dir, g_strerror (saved_errno));
    return NULL;
  }

  self->profile_dir = g_strdup (profile_dir);
  self->http = soup_session_new_with_options ("timeout", 30, "idle-timeout", 60, NULL);
  self->account = parley_account_new (self->http, server_url, profile_dir);
  self->cache = parley_cache_new (cache_path, error);
  if (self->cache == NULL)
    return NULL;
  if (parley_account_get_logged_in (self->account) &&
      !parley_cache_bind_user (self->cache, parley_account_get_user_id (self->account), error))
    return NULL;

  self->connection = parley_connection_new (self->http, self->account);
  self->outbox = parley_outbox_new (self->cache, self->connection);

  g_signal_connect_swapped (self->account, "notify::user-id", G_CALLBACK (account_notify_cb),
                            self);
  g_signal_connect_swapped (self->account, "logged-out", G_CALLBACK (account_logged_out_cb),
                            self);
  g_signal_connect_swapped (self->connection, "state-changed", G_CALLBACK (connection_state_cb),
                            self);
  g_signal_connect_swapped (self->connection, "hello", G_CALLBACK (hello_cb), self);
  g_signal_connect_swapped (self->connection, "frame", G_CALLBACK (frame_cb), self);
  g_signal_connect_swapped (self->outbox, "message-updated",
                            G_CALLBACK (outbox_message_updated_cb), self);

  load_conversations (self);
  return g_steal_pointer (&self);
}

/** parley_client_get_state: @self: a client. Returns: the connection state */
ParleyClientState
parley_client_get_state (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), PARLEY_CLIENT_STATE_DISCONNECTED);
  return self->connection ? parley_connection_get_state (self->connection)
                          : PARLEY_CLIENT_STATE_DISCONNECTED;
}

/** parley_client_get_user_id: @self: a client. Returns: (nullable): the user id */
const char *
parley_client_get_user_id (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), NULL);
  return self->account ? parley_account_get_user_id (self->account) : NULL;
}

/** parley_client_get_username: @self: a client. Returns: (nullable): the user name */
const char *
parley_client_get_username (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), NULL);
  return self->account ? parley_account_get_username (self->account) : NULL;
}

/** parley_client_get_logged_in: @self: a client. Returns: whether a session is stored */
gboolean
parley_client_get_logged_in (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), FALSE);
  return self->account && parley_account_get_logged_in (self->account);
}

/**
 * parley_client_get_synced:
 * @self: a client
 *
 * Returns: whether the cache caught up with the server since the client started
 */
gboolean
parley_client_get_synced (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), FALSE);
  return self->synced;
}

/** parley_client_get_account: @self: a client. Returns: (transfer none): the account */
ParleyAccount *
parley_client_get_account (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), NULL);
  return self->account;
}

/** parley_client_get_cache: @self: a client. Returns: (transfer none): the cache */
ParleyCache *
parley_client_get_cache (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), NULL);
  return self->cache;
}

/** parley_client_get_n_pending: @self: a client. Returns: own messages not yet acked */
guint
parley_client_get_n_pending (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), 0);
  return parley_outbox_get_n_pending (self->outbox);
}

/**
 * parley_client_connect:
 * @self: a client
 *
 * Connects to the server and stays connected (reconnecting as needed)
 * until parley_client_disconnect() or logout.
 */
void
parley_client_connect (ParleyClient *self)
{
  g_return_if_fail (PARLEY_IS_CLIENT (self));

  if (!parley_client_get_logged_in (self)) {
    emit_error (self, "not-logged-in", "not logged in");
    return;
  }
  parley_connection_start (self->connection);
}

/**
 * parley_client_check_connection:
 * @self: a client
 *
 * Checks now that the connection to the server still works, for when it
 * may have died silently (a call lost its media path: the network may have
 * changed); a dead one is replaced within seconds. Network changes the
 * system reports are checked by themselves.
 */
void
parley_client_check_connection (ParleyClient *self)
{
  g_return_if_fail (PARLEY_IS_CLIENT (self));
  parley_connection_check (self->connection);
}

/**
 * parley_client_disconnect:
 * @self: a client
 *
 * Closes the connection.
 */
void
parley_client_disconnect (ParleyClient *self)
{
  g_return_if_fail (PARLEY_IS_CLIENT (self));
  parley_connection_stop (self->connection);
}

static void
register_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  char *user_id = parley_account_register_finish (PARLEY_ACCOUNT (object), result, &error);

  if (user_id == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, user_id, g_free);
}

/**
 * parley_client_register_async:
 * @self: a client
 * @username: the wanted user name
 * @password: the password
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Creates an account on the server.
 */
void
parley_client_register_async (ParleyClient        *self,
                              const char          *username,
                              const char          *password,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  parley_account_register_async (self->account, username, password, cancellable, register_cb,
                                 task);
}

/**
 * parley_client_register_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the new user id, or %NULL with @error set
 */
char *
parley_client_register_finish (ParleyClient  *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
login_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ParleyClient *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!parley_account_login_finish (PARLEY_ACCOUNT (object), result, &error) ||
      !parley_cache_bind_user (self->cache, parley_account_get_user_id (self->account), &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  parley_cache_set_contact (self->cache, parley_account_get_user_id (self->account),
                            parley_account_get_username (self->account), FALSE, NULL);
  load_conversations (self);
  g_task_return_boolean (task, TRUE);
}

/**
 * parley_client_login_async:
 * @self: a client
 * @username: the user name
 * @password: the password
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Logs in and stores the session in the profile. A different user than the
 * profile's previous one starts with an empty cache.
 */
void
parley_client_login_async (ParleyClient        *self,
                           const char          *username,
                           const char          *password,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  parley_account_login_async (self->account, username, password, cancellable, login_cb, task);
}

/**
 * parley_client_login_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: %TRUE when logged in
 */
gboolean
parley_client_login_finish (ParleyClient  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
logout_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!parley_account_logout_finish (PARLEY_ACCOUNT (object), result, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * parley_client_logout_async:
 * @self: a client
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Disconnects, wipes the local tokens and revokes the refresh token on the
 * server. The cache stays (the same user logging in again keeps history).
 */
void
parley_client_logout_async (ParleyClient        *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  parley_connection_stop (self->connection);
  parley_account_logout_async (self->account, cancellable, logout_cb, task);
}

/**
 * parley_client_logout_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the server revoked the session (the local tokens are
 *   gone either way)
 */
gboolean
parley_client_logout_finish (ParleyClient  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * parley_client_send_message:
 * @self: a client
 * @recipient_id: the recipient's user id
 * @text: the message text
 * @error: return location for a #GError
 *
 * Puts a new message in the outbox: it is stored in the cache in state
 * `sending` first, then sent now if connected, else after the next
 * connection (also by a later process with the same profile).
 *
 * Returns: (transfer full): the message, or %NULL with @error set
 */
ParleyMessage *
parley_client_send_message (ParleyClient  *self,
                            const char    *recipient_id,
                            const char    *text,
                            GError       **error)
{
  g_autoptr(ParleyMessage) message = NULL;
  g_autofree char *id = NULL;
  ParleyConversation *conversation;
  const char *self_id;

  g_return_val_if_fail (PARLEY_IS_CLIENT (self), NULL);

  self_id = parley_client_get_user_id (self);
  if (self_id == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_NOT_LOGGED_IN, _("not logged in"));
    return NULL;
  }
  if (!valid_id (recipient_id)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("invalid recipient id"));
    return NULL;
  }
  if (text == NULL || !g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("the text is not valid UTF-8"));
    return NULL;
  }

  /* Time-ordered (UUIDv7): the server's deduplication index stays in order. */
  id = parley_uuid7_new ();
  message = parley_message_new (id, self_id, recipient_id, text,
                                g_get_real_time () / 1000, 0, PARLEY_MESSAGE_STATE_SENDING,
                                TRUE);
  if (!parley_outbox_queue (self->outbox, message, error))
    return NULL;

  conversation = refresh_conversation (self, recipient_id);
  if (conversation != NULL)
    parley_conversation_add_message (conversation, message);
  return g_steal_pointer (&message);
}

/**
 * parley_client_send_typing:
 * @self: a client
 * @recipient_id: the other party
 * @active: %TRUE while typing, %FALSE when paused
 *
 * Returns: %TRUE if sent (typing is never queued)
 */
gboolean
parley_client_send_typing (ParleyClient *self,
                           const char   *recipient_id,
                           gboolean      active)
{
  g_autoptr(JsonObject) frame = json_object_new ();

  g_return_val_if_fail (PARLEY_IS_CLIENT (self), FALSE);

  json_object_set_string_member (frame, "type", "typing");
  json_object_set_string_member (frame, "recipientId", recipient_id);
  json_object_set_string_member (frame, "state", active ? "active" : "paused");
  return parley_connection_send (self->connection, frame);
}

/**
 * parley_client_mark_read:
 * @self: a client
 * @peer_id: the other party
 * @error: return location for a #GError
 *
 * Marks the conversation read locally and tells the server (and so the
 * sender) which newest message was read; sent after reconnection when offline.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_client_mark_read (ParleyClient  *self,
                         const char    *peer_id,
                         GError       **error)
{
  g_autofree char *newest = NULL;
  ParleyConversation *conversation;
  GListModel *model;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (PARLEY_IS_CLIENT (self), FALSE);

  newest = parley_cache_mark_read (self->cache, peer_id, &local_error);
  if (local_error != NULL) {
    g_propagate_error (error, g_steal_pointer (&local_error));
    return FALSE;
  }

  conversation = refresh_conversation (self, peer_id);
  if (conversation != NULL) {
    model = parley_conversation_get_messages (conversation);
    for (guint i = 0; i < g_list_model_get_n_items (model); i++) {
      g_autoptr(ParleyMessage) m = g_list_model_get_item (model, i);

      if (!parley_message_get_outgoing (m))
        parley_message_set_state (m, PARLEY_MESSAGE_STATE_READ);
    }
  }

  if (newest != NULL)
    send_read (self, peer_id, newest);
  return TRUE;
}

/**
 * parley_client_send_call_signal:
 * @self: a client
 * @type: a `call-*` frame type
 * @frame: the frame's other members (`recipientId`, `callId`, ...)
 *
 * Returns: %TRUE if sent (call signals are never queued)
 */
gboolean
parley_client_send_call_signal (ParleyClient *self,
                                const char   *type,
                                JsonObject   *frame)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (g_str_has_prefix (type, "call-"), FALSE);

  json_object_set_string_member (frame, "type", type);
  return parley_connection_send (self->connection, frame);
}

/**
 * parley_client_get_conversations:
 * @self: a client
 *
 * Returns: (transfer none): a #GListModel of #ParleyConversation, the most
 *   recent first
 */
GListModel *
parley_client_get_conversations (ParleyClient *self)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), NULL);
  return G_LIST_MODEL (self->conversations);
}

/**
 * parley_client_lookup_conversation:
 * @self: a client
 * @peer_id: the other party
 *
 * Returns: (transfer none) (nullable): the conversation, if there is one
 */
ParleyConversation *
parley_client_lookup_conversation (ParleyClient *self,
                                   const char   *peer_id)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (self), NULL);
  return g_hash_table_lookup (self->conversation_index, peer_id);
}

/* Parses `{"<member>":[{"userId","username","online"?}]}` into ParleyContacts and
 * remembers the names in the cache. */
static GPtrArray *
parse_users (ParleyClient  *self,
             JsonNode      *node,
             const char    *member,
             gboolean       are_contacts,
             GError       **error)
{
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func (g_object_unref);
  JsonArray *array;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node) ||
      (array = json_object_get_array_member (json_node_get_object (node), member)) == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_PROTOCOL, _("the server's answer has no %s"),
                 member);
    return NULL;
  }

  for (guint i = 0; i < json_array_get_length (array); i++) {
    JsonNode *element = json_array_get_element (array, i);
    JsonObject *object;
    const char *user_id, *username;
    gboolean online;

    if (!JSON_NODE_HOLDS_OBJECT (element))
      continue;
    object = json_node_get_object (element);
    user_id = json_object_get_string_member_with_default (object, "userId", NULL);
    username = json_object_get_string_member_with_default (object, "username", NULL);
    online = json_object_get_boolean_member_with_default (object, "online", FALSE);
    if (!valid_id (user_id) || username == NULL)
      continue;

    parley_cache_set_contact (self->cache, user_id, username, are_contacts, NULL);
    if (are_contacts)
      parley_cache_set_presence (self->cache, user_id, online, NULL);
    refresh_conversation (self, user_id);
    g_ptr_array_add (users, parley_contact_new (user_id, username, online));
  }
  return g_steal_pointer (&users);
}

/* Answers a user search (`{"users":[…]}`) or the contact list
 * (`{"contacts":[…]}`, task data set): a GPtrArray of ParleyContact. */
static void
users_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ParleyClient *self = g_task_get_source_object (task);
  gboolean are_contacts = g_task_get_task_data (task) != NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = parley_account_request_finish (PARLEY_ACCOUNT (object), result,
                                                            &error);
  GPtrArray *users = node ? parse_users (self, node, are_contacts ? "contacts" : "users",
                                         are_contacts, &error)
                          : NULL;

  if (users == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, users, (GDestroyNotify) g_ptr_array_unref);
}

/**
 * parley_client_search_users_async:
 * @self: a client
 * @query: a user name prefix
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Finds users whose name starts with @query.
 */
void
parley_client_search_users_async (ParleyClient        *self,
                                  const char          *query,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autofree char *escaped = g_uri_escape_string (query, NULL, FALSE);
  g_autofree char *path = g_strconcat ("/api/users?query=", escaped, NULL);

  parley_account_request_async (self->account, "GET", path, NULL, TRUE, cancellable, users_cb,
                                task);
}

/**
 * parley_client_search_users_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type ParleyContact): the users found
 */
GPtrArray *
parley_client_search_users_finish (ParleyClient  *self,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
resolve_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ParleyClient *self = PARLEY_CLIENT (object);
  const char *username = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) users = parley_client_search_users_finish (self, result, &error);
  g_autofree char *cached = NULL;

  if (users == NULL) {
    /* Offline: a name seen before still resolves from the cache. */
    cached = parley_cache_lookup_user_id (self->cache, username);
    if (cached != NULL && g_error_matches (error, PARLEY_ERROR, PARLEY_ERROR_NETWORK))
      g_task_return_pointer (task, g_steal_pointer (&cached), g_free);
    else
      g_task_return_error (task, g_steal_pointer (&error));
    return;
  }

  for (guint i = 0; i < users->len; i++) {
    ParleyContact *contact = g_ptr_array_index (users, i);

    if (g_str_equal (parley_contact_get_username (contact), username)) {
      g_task_return_pointer (task, g_strdup (parley_contact_get_user_id (contact)), g_free);
      return;
    }
  }
  g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_NOT_FOUND, _("no user named %s"),
                           username);
}

/**
 * parley_client_resolve_user_async:
 * @self: a client
 * @username: an exact user name (case-folded like the server does)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Finds the user id for a user name, falling back to the cache when the
 * server cannot be reached.
 */
void
parley_client_resolve_user_async (ParleyClient        *self,
                                  const char          *username,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autofree char *folded = g_ascii_strdown (username, -1);

  g_task_set_task_data (task, g_strdup (folded), g_free);
  parley_client_search_users_async (self, folded, cancellable, resolve_cb, task);
}

/**
 * parley_client_resolve_user_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the user id, or %NULL with @error set
 *   (%PARLEY_ERROR_NOT_FOUND when nobody has that name)
 */
char *
parley_client_resolve_user_finish (ParleyClient  *self,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
add_contact_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = parley_account_request_finish (PARLEY_ACCOUNT (object), result,
                                                            &error);

  if (node == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * parley_client_add_contact_async:
 * @self: a client
 * @user_id: the user to add
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Adds a user to the contact list.
 */
void
parley_client_add_contact_async (ParleyClient        *self,
                                 const char          *user_id,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "userId");
  json_builder_add_string_value (builder, user_id);
  json_builder_end_object (builder);
  body = json_builder_get_root (builder);

  parley_account_request_async (self->account, "POST", "/api/contacts", body, TRUE, cancellable,
                                add_contact_cb, task);
}

/**
 * parley_client_add_contact_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
parley_client_add_contact_finish (ParleyClient  *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * parley_client_list_contacts_async:
 * @self: a client
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Fetches the contact list with presence, and stores it in the cache.
 */
void
parley_client_list_contacts_async (ParleyClient        *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_task_data (task, GINT_TO_POINTER (TRUE), NULL);
  parley_account_request_async (self->account, "GET", "/api/contacts", NULL, TRUE, cancellable,
                                users_cb, task);
}

/**
 * parley_client_list_contacts_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type ParleyContact): the contacts
 */
GPtrArray *
parley_client_list_contacts_finish (ParleyClient  *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
refresh_contacts_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) contacts = NULL;

  contacts = parley_client_list_contacts_finish (PARLEY_CLIENT (object), result, &error);
  if (contacts == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_debug ("Cannot refresh the contacts: %s", error->message);
}

static void
refresh_contacts (ParleyClient *self)
{
  parley_client_list_contacts_async (self, self->cancellable, refresh_contacts_cb, NULL);
}

static void
turn_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = parley_account_request_finish (PARLEY_ACCOUNT (object), result,
                                                            &error);

  if (node == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else if (!JSON_NODE_HOLDS_OBJECT (node))
    g_task_return_new_error (task, PARLEY_ERROR, PARLEY_ERROR_PROTOCOL,
                             _("the server sent no TURN credentials"));
  else
    g_task_return_pointer (task, json_object_ref (json_node_get_object (node)),
                           (GDestroyNotify) json_object_unref);
}

/**
 * parley_client_get_turn_credentials_async:
 * @self: a client
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Fetches short-lived TURN credentials for calls.
 */
void
parley_client_get_turn_credentials_async (ParleyClient        *self,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  parley_account_request_async (self->account, "GET", "/api/turn/credentials", NULL, TRUE,
                                cancellable, turn_cb, task);
}

/**
 * parley_client_get_turn_credentials_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): `{"username","password","ttl","uris"}`
 */
JsonObject *
parley_client_get_turn_credentials_finish (ParleyClient  *self,
                                           GAsyncResult  *result,
                                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
