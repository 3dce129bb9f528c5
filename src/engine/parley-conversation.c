/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-conversation"

#include "parley-conversation-private.h"

/* How many messages a conversation loads from the cache when first shown. */
#define HISTORY_LIMIT 500

/**
 * ParleyConversation:
 *
 * A 1:1 conversation with another user: the newest message, the unread
 * count and, loaded on first use, the messages as a #GListModel.
 */
struct _ParleyConversation {
  GObject     parent_instance;

  ParleyCache *cache;
  char        *peer_id;
  char        *peer_name;
  char        *last_message;
  gint64       last_timestamp;
  guint        unread_count;

  GListStore  *messages;        /* Loaded lazily. */
  GHashTable  *message_index;   /* "sender\nid" → ParleyMessage, borrowed from the store. */
};

G_DEFINE_FINAL_TYPE (ParleyConversation, parley_conversation, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_PEER_ID,
  PROP_PEER_NAME,
  PROP_LAST_MESSAGE,
  PROP_LAST_TIMESTAMP,
  PROP_UNREAD_COUNT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static char *
message_key (const char *sender_id,
             const char *id)
{
  return g_strconcat (sender_id, "\n", id, NULL);
}

static void
index_message (ParleyConversation *self,
               ParleyMessage      *message)
{
  g_hash_table_replace (self->message_index,
                        message_key (parley_message_get_sender_id (message),
                                     parley_message_get_id (message)),
                        message);
}

static void
ensure_loaded (ParleyConversation *self)
{
  g_autoptr(GPtrArray) messages = NULL;

  if (self->messages != NULL)
    return;

  self->messages = g_list_store_new (PARLEY_TYPE_MESSAGE);
  messages = parley_cache_list_messages (self->cache, self->peer_id, HISTORY_LIMIT);
  for (guint i = 0; i < messages->len; i++)
    index_message (self, g_ptr_array_index (messages, i));
  g_list_store_splice (self->messages, 0, 0, messages->pdata, messages->len);
}

static void
parley_conversation_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  ParleyConversation *self = PARLEY_CONVERSATION (object);

  switch (prop_id) {
  case PROP_PEER_ID: g_value_set_string (value, self->peer_id); break;
  case PROP_PEER_NAME: g_value_set_string (value, self->peer_name); break;
  case PROP_LAST_MESSAGE: g_value_set_string (value, self->last_message); break;
  case PROP_LAST_TIMESTAMP: g_value_set_int64 (value, self->last_timestamp); break;
  case PROP_UNREAD_COUNT: g_value_set_uint (value, self->unread_count); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_conversation_dispose (GObject *object)
{
  ParleyConversation *self = PARLEY_CONVERSATION (object);

  g_clear_pointer (&self->message_index, g_hash_table_unref);
  g_clear_object (&self->messages);
  g_clear_object (&self->cache);

  G_OBJECT_CLASS (parley_conversation_parent_class)->dispose (object);
}

static void
parley_conversation_finalize (GObject *object)
{
  ParleyConversation *self = PARLEY_CONVERSATION (object);

  g_free (self->peer_id);
  g_free (self->peer_name);
  g_free (self->last_message);

  G_OBJECT_CLASS (parley_conversation_parent_class)->finalize (object);
}

static void
parley_conversation_class_init (ParleyConversationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = parley_conversation_get_property;
  object_class->dispose = parley_conversation_dispose;
  object_class->finalize = parley_conversation_finalize;

  /** ParleyConversation:peer-id: the other party's user id */
  properties[PROP_PEER_ID] = g_param_spec_string ("peer-id", NULL, NULL, NULL, flags);
  /** ParleyConversation:peer-name: the other party's user name, if known */
  properties[PROP_PEER_NAME] = g_param_spec_string ("peer-name", NULL, NULL, NULL, flags);
  /** ParleyConversation:last-message: the text of the newest message */
  properties[PROP_LAST_MESSAGE] = g_param_spec_string ("last-message", NULL, NULL, NULL, flags);
  /** ParleyConversation:last-timestamp: the time of the newest message (ms since the epoch) */
  properties[PROP_LAST_TIMESTAMP] = g_param_spec_int64 ("last-timestamp", NULL, NULL,
                                                        G_MININT64, G_MAXINT64, 0, flags);
  /** ParleyConversation:unread-count: incoming messages not yet read */
  properties[PROP_UNREAD_COUNT] = g_param_spec_uint ("unread-count", NULL, NULL,
                                                     0, G_MAXUINT, 0, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
parley_conversation_init (ParleyConversation *self)
{
  self->message_index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/**
 * parley_conversation_new: (skip)
 * @cache: the cache that holds the messages
 * @info: the stored conversation row
 *
 * Returns: (transfer full): a new conversation
 */
ParleyConversation *
parley_conversation_new (ParleyCache                  *cache,
                         const ParleyConversationInfo *info)
{
  ParleyConversation *self = g_object_new (PARLEY_TYPE_CONVERSATION, NULL);

  self->cache = g_object_ref (cache);
  self->peer_id = g_strdup (info->peer_id);
  parley_conversation_update (self, info);
  return self;
}

static gboolean
set_string (char       **field,
            const char  *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

/**
 * parley_conversation_update: (skip)
 * @self: a conversation
 * @info: the stored conversation row
 *
 * Takes the summary fields from @info, notifying the ones that changed.
 */
void
parley_conversation_update (ParleyConversation           *self,
                            const ParleyConversationInfo *info)
{
  g_return_if_fail (PARLEY_IS_CONVERSATION (self));

  g_object_freeze_notify (G_OBJECT (self));
  if (info->peer_name != NULL && set_string (&self->peer_name, info->peer_name))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PEER_NAME]);
  if (set_string (&self->last_message, info->last_body))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LAST_MESSAGE]);
  if (self->last_timestamp != info->last_timestamp) {
    self->last_timestamp = info->last_timestamp;
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LAST_TIMESTAMP]);
  }
  if (self->unread_count != info->unread_count) {
    self->unread_count = info->unread_count;
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UNREAD_COUNT]);
  }
  g_object_thaw_notify (G_OBJECT (self));
}

static int
compare_messages (gconstpointer a,
                  gconstpointer b,
                  gpointer      user_data)
{
  gint64 ta = parley_message_get_timestamp ((ParleyMessage *) a);
  gint64 tb = parley_message_get_timestamp ((ParleyMessage *) b);

  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

/**
 * parley_conversation_add_message: (skip)
 * @self: a conversation
 * @message: a message new to the conversation
 *
 * Adds @message to the message list if it is loaded, in time order.
 */
void
parley_conversation_add_message (ParleyConversation *self,
                                 ParleyMessage      *message)
{
  g_return_if_fail (PARLEY_IS_CONVERSATION (self));

  if (self->messages == NULL)
    return;
  if (parley_conversation_find_message (self, parley_message_get_sender_id (message),
                                        parley_message_get_id (message)) != NULL)
    return;

  index_message (self, message);
  g_list_store_insert_sorted (self->messages, message, compare_messages, NULL);
}

/**
 * parley_conversation_find_message: (skip)
 * @self: a conversation
 * @sender_id: the sender
 * @id: the message id
 *
 * Returns: (transfer none) (nullable): the loaded message object, if any
 */
ParleyMessage *
parley_conversation_find_message (ParleyConversation *self,
                                  const char         *sender_id,
                                  const char         *id)
{
  g_autofree char *key = message_key (sender_id, id);

  g_return_val_if_fail (PARLEY_IS_CONVERSATION (self), NULL);

  return g_hash_table_lookup (self->message_index, key);
}

/** parley_conversation_get_peer_id: @self: a conversation. Returns: the other party's id */
const char *
parley_conversation_get_peer_id (ParleyConversation *self)
{
  g_return_val_if_fail (PARLEY_IS_CONVERSATION (self), NULL);
  return self->peer_id;
}

/**
 * parley_conversation_get_peer_name:
 * @self: a conversation
 *
 * Returns: (nullable): the other party's user name, if known
 */
const char *
parley_conversation_get_peer_name (ParleyConversation *self)
{
  g_return_val_if_fail (PARLEY_IS_CONVERSATION (self), NULL);
  return self->peer_name;
}

/**
 * parley_conversation_get_last_message:
 * @self: a conversation
 *
 * Returns: (nullable): the text of the newest message
 */
const char *
parley_conversation_get_last_message (ParleyConversation *self)
{
  g_return_val_if_fail (PARLEY_IS_CONVERSATION (self), NULL);
  return self->last_message;
}

/** parley_conversation_get_last_timestamp: @self: a conversation. Returns: ms since the epoch */
gint64
parley_conversation_get_last_timestamp (ParleyConversation *self)
{
  g_return_val_if_fail (PARLEY_IS_CONVERSATION (self), 0);
  return self->last_timestamp;
}

/** parley_conversation_get_unread_count: @self: a conversation. Returns: the unread count */
guint
parley_conversation_get_unread_count (ParleyConversation *self)
{
  g_return_val_if_fail (PARLEY_IS_CONVERSATION (self), 0);
  return self->unread_count;
}

/**
 * parley_conversation_get_messages:
 * @self: a conversation
 *
 * Loads the newest messages from the cache on first use; the model then
 * follows new messages and state changes.
 *
 * Returns: (transfer none): a #GListModel of #ParleyMessage, oldest first
 */
GListModel *
parley_conversation_get_messages (ParleyConversation *self)
{
  g_return_val_if_fail (PARLEY_IS_CONVERSATION (self), NULL);

  ensure_loaded (self);
  return G_LIST_MODEL (self->messages);
}
