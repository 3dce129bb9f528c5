/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-message"

#include "parley-engine-enums.h"
#include "parley-message.h"

/**
 * ParleyMessage:
 *
 * One chat message, incoming or outgoing, as shown in a conversation.
 * Its `state`, `seq` and `timestamp` change as the server acknowledges it.
 */
struct _ParleyMessage {
  GObject             parent_instance;

  char               *id;
  char               *sender_id;
  char               *recipient_id;
  char               *body;
  gint64              timestamp;
  gint64              seq;
  ParleyMessageState  state;
  gboolean            outgoing;
  gboolean            unsupported;
};

G_DEFINE_FINAL_TYPE (ParleyMessage, parley_message, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_SENDER_ID,
  PROP_RECIPIENT_ID,
  PROP_BODY,
  PROP_TIMESTAMP,
  PROP_SEQ,
  PROP_STATE,
  PROP_OUTGOING,
  PROP_UNSUPPORTED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
parley_message_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  ParleyMessage *self = PARLEY_MESSAGE (object);

  switch (prop_id) {
  case PROP_ID: g_value_set_string (value, self->id); break;
  case PROP_SENDER_ID: g_value_set_string (value, self->sender_id); break;
  case PROP_RECIPIENT_ID: g_value_set_string (value, self->recipient_id); break;
  case PROP_BODY: g_value_set_string (value, self->body); break;
  case PROP_TIMESTAMP: g_value_set_int64 (value, self->timestamp); break;
  case PROP_SEQ: g_value_set_int64 (value, self->seq); break;
  case PROP_STATE: g_value_set_enum (value, self->state); break;
  case PROP_OUTGOING: g_value_set_boolean (value, self->outgoing); break;
  case PROP_UNSUPPORTED: g_value_set_boolean (value, self->unsupported); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_message_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  ParleyMessage *self = PARLEY_MESSAGE (object);

  switch (prop_id) {
  case PROP_ID: self->id = g_value_dup_string (value); break;
  case PROP_SENDER_ID: self->sender_id = g_value_dup_string (value); break;
  case PROP_RECIPIENT_ID: self->recipient_id = g_value_dup_string (value); break;
  case PROP_BODY: self->body = g_value_dup_string (value); break;
  case PROP_OUTGOING: self->outgoing = g_value_get_boolean (value); break;
  case PROP_TIMESTAMP: parley_message_set_timestamp (self, g_value_get_int64 (value)); break;
  case PROP_SEQ: parley_message_set_seq (self, g_value_get_int64 (value)); break;
  case PROP_STATE: parley_message_set_state (self, g_value_get_enum (value)); break;
  case PROP_UNSUPPORTED: parley_message_set_unsupported (self, g_value_get_boolean (value)); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_message_finalize (GObject *object)
{
  ParleyMessage *self = PARLEY_MESSAGE (object);

  g_free (self->id);
  g_free (self->sender_id);
  g_free (self->recipient_id);
  g_free (self->body);

  G_OBJECT_CLASS (parley_message_parent_class)->finalize (object);
}

static void
parley_message_class_init (ParleyMessageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = parley_message_get_property;
  object_class->set_property = parley_message_set_property;
  object_class->finalize = parley_message_finalize;

  /** ParleyMessage:id: the client-chosen message id */
  properties[PROP_ID] = g_param_spec_string ("id", NULL, NULL, NULL, ro);
  /** ParleyMessage:sender-id: the sender's user id */
  properties[PROP_SENDER_ID] = g_param_spec_string ("sender-id", NULL, NULL, NULL, ro);
  /** ParleyMessage:recipient-id: the recipient's user id */
  properties[PROP_RECIPIENT_ID] = g_param_spec_string ("recipient-id", NULL, NULL, NULL, ro);
  /** ParleyMessage:body: the text, %NULL when the content could not be decoded */
  properties[PROP_BODY] = g_param_spec_string ("body", NULL, NULL, NULL, ro);
  /** ParleyMessage:timestamp: milliseconds since the epoch (server time once acked) */
  properties[PROP_TIMESTAMP] = g_param_spec_int64 ("timestamp", NULL, NULL,
                                                   G_MININT64, G_MAXINT64, 0, rw);
  /** ParleyMessage:seq: the server sequence number, 0 until acked */
  properties[PROP_SEQ] = g_param_spec_int64 ("seq", NULL, NULL, 0, G_MAXINT64, 0, rw);
  /** ParleyMessage:state: the delivery state */
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, PARLEY_TYPE_MESSAGE_STATE,
                                              PARLEY_MESSAGE_STATE_SENDING, rw);
  /** ParleyMessage:outgoing: whether this account sent the message */
  properties[PROP_OUTGOING] = g_param_spec_boolean ("outgoing", NULL, NULL, FALSE, ro);
  /** ParleyMessage:unsupported: whether the content is in an unknown format */
  properties[PROP_UNSUPPORTED] = g_param_spec_boolean ("unsupported", NULL, NULL, FALSE, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
parley_message_init (ParleyMessage *self)
{
}

/**
 * parley_message_new:
 * @id: the message id
 * @sender_id: the sender's user id
 * @recipient_id: the recipient's user id
 * @body: (nullable): the text
 * @timestamp: milliseconds since the epoch
 * @seq: the server sequence number, or 0
 * @state: the delivery state
 * @outgoing: whether this account sent it
 *
 * Returns: (transfer full): a new message
 */
ParleyMessage *
parley_message_new (const char         *id,
                    const char         *sender_id,
                    const char         *recipient_id,
                    const char         *body,
                    gint64              timestamp,
                    gint64              seq,
                    ParleyMessageState  state,
                    gboolean            outgoing)
{
  return g_object_new (PARLEY_TYPE_MESSAGE,
                       "id", id,
                       "sender-id", sender_id,
                       "recipient-id", recipient_id,
                       "body", body,
                       "timestamp", timestamp,
                       "seq", seq,
                       "state", state,
                       "outgoing", outgoing,
                       NULL);
}

/** parley_message_get_id: @self: a message. Returns: the message id */
const char *
parley_message_get_id (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), NULL);
  return self->id;
}

/** parley_message_get_sender_id: @self: a message. Returns: the sender's user id */
const char *
parley_message_get_sender_id (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), NULL);
  return self->sender_id;
}

/** parley_message_get_recipient_id: @self: a message. Returns: the recipient's user id */
const char *
parley_message_get_recipient_id (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), NULL);
  return self->recipient_id;
}

/**
 * parley_message_get_peer_id:
 * @self: a message
 *
 * Returns: the other party: the recipient of an outgoing message, else the sender
 */
const char *
parley_message_get_peer_id (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), NULL);
  return self->outgoing ? self->recipient_id : self->sender_id;
}

/** parley_message_get_outgoing: @self: a message. Returns: whether this account sent it */
gboolean
parley_message_get_outgoing (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), FALSE);
  return self->outgoing;
}

/** parley_message_get_body: @self: a message. Returns: (nullable): the text */
const char *
parley_message_get_body (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), NULL);
  return self->body;
}

/** parley_message_get_timestamp: @self: a message. Returns: milliseconds since the epoch */
gint64
parley_message_get_timestamp (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), 0);
  return self->timestamp;
}

/** parley_message_set_timestamp: @self: a message. @timestamp: milliseconds since the epoch. */
void
parley_message_set_timestamp (ParleyMessage *self,
                              gint64         timestamp)
{
  g_return_if_fail (PARLEY_IS_MESSAGE (self));
  if (self->timestamp == timestamp)
    return;
  self->timestamp = timestamp;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TIMESTAMP]);
}

/** parley_message_get_seq: @self: a message. Returns: the server sequence number or 0 */
gint64
parley_message_get_seq (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), 0);
  return self->seq;
}

/** parley_message_set_seq: @self: a message. @seq: the server sequence number. */
void
parley_message_set_seq (ParleyMessage *self,
                        gint64         seq)
{
  g_return_if_fail (PARLEY_IS_MESSAGE (self));
  if (self->seq == seq)
    return;
  self->seq = seq;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SEQ]);
}

/** parley_message_get_state: @self: a message. Returns: the delivery state */
ParleyMessageState
parley_message_get_state (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), PARLEY_MESSAGE_STATE_SENDING);
  return self->state;
}

/** parley_message_set_state: @self: a message. @state: the new delivery state. */
void
parley_message_set_state (ParleyMessage      *self,
                          ParleyMessageState  state)
{
  g_return_if_fail (PARLEY_IS_MESSAGE (self));
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

/** parley_message_get_unsupported: @self: a message. Returns: whether the content is unknown */
gboolean
parley_message_get_unsupported (ParleyMessage *self)
{
  g_return_val_if_fail (PARLEY_IS_MESSAGE (self), FALSE);
  return self->unsupported;
}

/** parley_message_set_unsupported: @self: a message. @unsupported: whether it is unknown. */
void
parley_message_set_unsupported (ParleyMessage *self,
                                gboolean       unsupported)
{
  g_return_if_fail (PARLEY_IS_MESSAGE (self));
  unsupported = !!unsupported;
  if (self->unsupported == unsupported)
    return;
  self->unsupported = unsupported;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UNSUPPORTED]);
}
