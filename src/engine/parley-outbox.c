/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-outbox"

#include "parley-content.h"
#include "parley-error.h"
#include "parley-outbox.h"

/* After a transient refusal (rate limit, server fault), send again this much later. */
#define RETRY_MS 2000

/**
 * ParleyOutbox:
 *
 * Outgoing messages. A message is written to the cache in state `sending`
 * before it is sent; every message still `sending` is sent again, with the
 * same id, on each new connection (also by a new process using the same
 * profile), and the server deduplicates by id. Acks move it to `stored` or
 * `delivered` and record its server seq and timestamp.
 */
struct _ParleyOutbox {
  GObject           parent_instance;

  ParleyCache      *cache;
  ParleyConnection *connection;
  GHashTable       *in_flight;   /* Message ids sent on the current connection. */
  guint             retry_id;
};

G_DEFINE_FINAL_TYPE (ParleyOutbox, parley_outbox, G_TYPE_OBJECT)

enum {
  SIGNAL_MESSAGE_UPDATED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static gboolean
send_one (ParleyOutbox  *self,
          ParleyMessage *message)
{
  g_autoptr(JsonObject) frame = json_object_new ();
  g_autofree char *content = parley_content_encode (parley_message_get_body (message) ?: "");
  const char *id = parley_message_get_id (message);

  json_object_set_string_member (frame, "type", "message");
  json_object_set_string_member (frame, "id", id);
  json_object_set_string_member (frame, "recipientId", parley_message_get_recipient_id (message));
  json_object_set_string_member (frame, "encryptedContent", content);

  if (!parley_connection_send (self->connection, frame))
    return FALSE;
  g_hash_table_add (self->in_flight, g_strdup (id));
  g_debug ("Sent message %s", id);
  return TRUE;
}

static void
connection_state_cb (ParleyOutbox      *self,
                     ParleyClientState  new_state,
                     ParleyClientState  old_state)
{
  /* Whatever was in flight on the old socket is sent again on the next one. */
  if (new_state != PARLEY_CLIENT_STATE_CONNECTED)
    g_hash_table_remove_all (self->in_flight);
}

static gboolean
retry_cb (gpointer user_data)
{
  ParleyOutbox *self = user_data;

  self->retry_id = 0;
  g_hash_table_remove_all (self->in_flight);
  parley_outbox_flush (self);
  return G_SOURCE_REMOVE;
}

static void
parley_outbox_dispose (GObject *object)
{
  ParleyOutbox *self = PARLEY_OUTBOX (object);

  g_clear_handle_id (&self->retry_id, g_source_remove);
  if (self->connection != NULL)
    g_signal_handlers_disconnect_by_data (self->connection, self);
  g_clear_object (&self->connection);
  g_clear_object (&self->cache);

  G_OBJECT_CLASS (parley_outbox_parent_class)->dispose (object);
}

static void
parley_outbox_finalize (GObject *object)
{
  ParleyOutbox *self = PARLEY_OUTBOX (object);

  g_clear_pointer (&self->in_flight, g_hash_table_unref);

  G_OBJECT_CLASS (parley_outbox_parent_class)->finalize (object);
}

static void
parley_outbox_class_init (ParleyOutboxClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = parley_outbox_dispose;
  object_class->finalize = parley_outbox_finalize;

  /**
   * ParleyOutbox::message-updated:
   * @id: the id of an own message whose state changed in the cache
   * @code: (nullable): the server's error code when it failed
   * @message: (nullable): the server's error message when it failed
   */
  signals[SIGNAL_MESSAGE_UPDATED] =
    g_signal_new ("message-updated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
}

static void
parley_outbox_init (ParleyOutbox *self)
{
  self->in_flight = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/**
 * parley_outbox_new:
 * @cache: the cache holding the messages
 * @connection: the connection to send on
 *
 * Returns: (transfer full): a new outbox
 */
ParleyOutbox *
parley_outbox_new (ParleyCache      *cache,
                   ParleyConnection *connection)
{
  ParleyOutbox *self = g_object_new (PARLEY_TYPE_OUTBOX, NULL);

  self->cache = g_object_ref (cache);
  self->connection = g_object_ref (connection);
  g_signal_connect_swapped (connection, "state-changed", G_CALLBACK (connection_state_cb), self);
  return self;
}

/**
 * parley_outbox_queue:
 * @self: an outbox
 * @message: a new outgoing message in state `sending`
 * @error: return location for a #GError
 *
 * Persists @message, then sends it if connected.
 *
 * Returns: %TRUE once the message is safely in the cache
 */
gboolean
parley_outbox_queue (ParleyOutbox   *self,
                     ParleyMessage  *message,
                     GError        **error)
{
  g_return_val_if_fail (PARLEY_IS_OUTBOX (self), FALSE);

  if (!parley_cache_add_message (self->cache, message, NULL, error))
    return FALSE;
  send_one (self, message);
  return TRUE;
}

/**
 * parley_outbox_flush:
 * @self: an outbox
 *
 * Sends every message still `sending` that is not in flight on this
 * connection, oldest first.
 */
void
parley_outbox_flush (ParleyOutbox *self)
{
  g_autoptr(GPtrArray) pending = NULL;

  g_return_if_fail (PARLEY_IS_OUTBOX (self));

  if (parley_connection_get_state (self->connection) != PARLEY_CLIENT_STATE_CONNECTED)
    return;

  pending = parley_cache_list_pending (self->cache);
  for (guint i = 0; i < pending->len; i++) {
    ParleyMessage *message = g_ptr_array_index (pending, i);

    if (g_hash_table_contains (self->in_flight, parley_message_get_id (message)))
      continue;
    if (!send_one (self, message))
      break;
  }
}

/**
 * parley_outbox_handle_ack:
 * @self: an outbox
 * @frame: an `ack` frame
 *
 * Returns: %TRUE if the ack was for one of the own messages
 */
gboolean
parley_outbox_handle_ack (ParleyOutbox *self,
                          JsonObject   *frame)
{
  g_autoptr(GError) error = NULL;
  const char *ref = json_object_get_string_member_with_default (frame, "ref", NULL);
  const char *status = json_object_get_string_member_with_default (frame, "status", NULL);
  const char *self_id = parley_cache_get_user_id (self->cache);
  ParleyMessageState state;
  gboolean changed = FALSE;

  if (ref == NULL || self_id == NULL || !g_hash_table_remove (self->in_flight, ref))
    return FALSE;

  state = g_strcmp0 (status, "delivered") == 0 ? PARLEY_MESSAGE_STATE_DELIVERED
                                               : PARLEY_MESSAGE_STATE_STORED;
  if (!parley_cache_update_message (self->cache, self_id, ref, state,
                                    json_object_get_int_member_with_default (frame, "seq", 0),
                                    json_object_get_int_member_with_default (frame, "timestamp", 0),
                                    &changed, &error)) {
    g_debug ("Ack for %s: %s", ref, error->message);
    return TRUE;
  }
  if (changed)
    g_signal_emit (self, signals[SIGNAL_MESSAGE_UPDATED], 0, ref, NULL, NULL);
  return TRUE;
}

/**
 * parley_outbox_handle_error:
 * @self: an outbox
 * @frame: an `error` frame
 *
 * A permanent refusal marks the message failed; a transient one
 * (`rate-limited`, `internal`) sends it again a little later.
 *
 * Returns: %TRUE if the error was about one of the own messages
 */
gboolean
parley_outbox_handle_error (ParleyOutbox *self,
                            JsonObject   *frame)
{
  const char *ref = json_object_get_string_member_with_default (frame, "ref", NULL);
  const char *code = json_object_get_string_member_with_default (frame, "code", "internal");
  const char *text = json_object_get_string_member_with_default (frame, "message", NULL);
  const char *self_id = parley_cache_get_user_id (self->cache);
  gboolean changed = FALSE;

  if (ref == NULL || self_id == NULL || !g_hash_table_contains (self->in_flight, ref))
    return FALSE;

  if (g_str_equal (code, "rate-limited") || g_str_equal (code, "internal")) {
    if (self->retry_id == 0)
      self->retry_id = g_timeout_add (RETRY_MS, retry_cb, self);
    return TRUE;
  }

  g_hash_table_remove (self->in_flight, ref);
  parley_cache_update_message (self->cache, self_id, ref, PARLEY_MESSAGE_STATE_FAILED, 0, 0,
                               &changed, NULL);
  g_signal_emit (self, signals[SIGNAL_MESSAGE_UPDATED], 0, ref, code, text);
  return TRUE;
}

/**
 * parley_outbox_get_n_pending:
 * @self: an outbox
 *
 * Returns: how many own messages still wait for the server's ack
 */
guint
parley_outbox_get_n_pending (ParleyOutbox *self)
{
  g_autoptr(GPtrArray) pending = NULL;

  g_return_val_if_fail (PARLEY_IS_OUTBOX (self), 0);

  pending = parley_cache_list_pending (self->cache);
  return pending->len;
}
