/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

#include "parley-types.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_MESSAGE (parley_message_get_type ())

G_DECLARE_FINAL_TYPE (ParleyMessage, parley_message, PARLEY, MESSAGE, GObject)

ParleyMessage      *parley_message_new           (const char         *id,
                                                  const char         *sender_id,
                                                  const char         *recipient_id,
                                                  const char         *body,
                                                  gint64              timestamp,
                                                  gint64              seq,
                                                  ParleyMessageState  state,
                                                  gboolean            outgoing);
const char         *parley_message_get_id           (ParleyMessage *self);
const char         *parley_message_get_sender_id    (ParleyMessage *self);
const char         *parley_message_get_recipient_id (ParleyMessage *self);
const char         *parley_message_get_peer_id      (ParleyMessage *self);
gboolean            parley_message_get_outgoing     (ParleyMessage *self);
const char         *parley_message_get_body         (ParleyMessage *self);
gint64              parley_message_get_timestamp    (ParleyMessage *self);
void                parley_message_set_timestamp    (ParleyMessage *self,
                                                     gint64         timestamp);
gint64              parley_message_get_seq          (ParleyMessage *self);
void                parley_message_set_seq          (ParleyMessage *self,
                                                     gint64         seq);
ParleyMessageState  parley_message_get_state        (ParleyMessage *self);
void                parley_message_set_state        (ParleyMessage      *self,
                                                     ParleyMessageState  state);
gboolean            parley_message_get_unsupported  (ParleyMessage *self);
void                parley_message_set_unsupported  (ParleyMessage *self,
                                                     gboolean       unsupported);

G_END_DECLS
