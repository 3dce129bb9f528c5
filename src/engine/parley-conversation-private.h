/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "parley-cache.h"
#include "parley-conversation.h"

G_BEGIN_DECLS

ParleyConversation *parley_conversation_new         (ParleyCache                  *cache,
                                                     const ParleyConversationInfo *info);
void                parley_conversation_update      (ParleyConversation           *self,
                                                     const ParleyConversationInfo *info);
void                parley_conversation_add_message (ParleyConversation           *self,
                                                     ParleyMessage                *message);
ParleyMessage      *parley_conversation_find_message (ParleyConversation          *self,
                                                      const char                  *sender_id,
                                                      const char                  *id);

G_END_DECLS
