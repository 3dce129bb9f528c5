/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PARLEY_TYPE_CONVERSATION (parley_conversation_get_type ())

G_DECLARE_FINAL_TYPE (ParleyConversation, parley_conversation, PARLEY, CONVERSATION, GObject)

const char *parley_conversation_get_peer_id        (ParleyConversation *self);
const char *parley_conversation_get_peer_name      (ParleyConversation *self);
const char *parley_conversation_get_last_message   (ParleyConversation *self);
gint64      parley_conversation_get_last_timestamp (ParleyConversation *self);
guint       parley_conversation_get_unread_count   (ParleyConversation *self);
GListModel *parley_conversation_get_messages       (ParleyConversation *self);

G_END_DECLS
