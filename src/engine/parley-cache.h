/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

#include "parley-contact.h"
#include "parley-message.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_CACHE (parley_cache_get_type ())

G_DECLARE_FINAL_TYPE (ParleyCache, parley_cache, PARLEY, CACHE, GObject)

/**
 * ParleyConversationInfo:
 * @peer_id: the other party's user id
 * @peer_name: (nullable): their user name, if known
 * @last_body: (nullable): the text of the newest message
 * @last_timestamp: the time of the newest message, in ms since the epoch
 * @unread_count: incoming messages not yet read
 *
 * One row of the conversation list, as stored in the cache.
 */
typedef struct {
  char   *peer_id;
  char   *peer_name;
  char   *last_body;
  gint64  last_timestamp;
  guint   unread_count;
} ParleyConversationInfo;

void parley_conversation_info_free (ParleyConversationInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyConversationInfo, parley_conversation_info_free)

ParleyCache   *parley_cache_new                (const char          *path,
                                                GError             **error);
gboolean       parley_cache_bind_user          (ParleyCache         *self,
                                                const char          *user_id,
                                                GError             **error);
const char    *parley_cache_get_user_id        (ParleyCache         *self);
gint64         parley_cache_get_last_seq       (ParleyCache         *self);
gboolean       parley_cache_set_last_seq       (ParleyCache         *self,
                                                gint64               seq,
                                                GError             **error);
gboolean       parley_cache_add_message        (ParleyCache         *self,
                                                ParleyMessage       *message,
                                                gboolean            *inserted,
                                                GError             **error);
ParleyMessage *parley_cache_lookup_message     (ParleyCache         *self,
                                                const char          *sender_id,
                                                const char          *id);
gboolean       parley_cache_update_message     (ParleyCache         *self,
                                                const char          *sender_id,
                                                const char          *id,
                                                ParleyMessageState   state,
                                                gint64               seq,
                                                gint64               timestamp,
                                                gboolean            *changed,
                                                GError             **error);
GPtrArray     *parley_cache_list_pending       (ParleyCache         *self);
GPtrArray     *parley_cache_list_messages      (ParleyCache         *self,
                                                const char          *peer_id,
                                                guint                limit);
GPtrArray     *parley_cache_list_conversations (ParleyCache         *self);
ParleyConversationInfo *
               parley_cache_get_conversation   (ParleyCache         *self,
                                                const char          *peer_id);
char          *parley_cache_mark_read          (ParleyCache         *self,
                                                const char          *peer_id,
                                                GError             **error);
GPtrArray     *parley_cache_mark_outgoing_read (ParleyCache         *self,
                                                const char          *peer_id,
                                                const char          *message_id,
                                                GError             **error);
gboolean       parley_cache_set_contact        (ParleyCache         *self,
                                                const char          *user_id,
                                                const char          *username,
                                                gboolean             is_contact,
                                                GError             **error);
gboolean       parley_cache_set_presence       (ParleyCache         *self,
                                                const char          *user_id,
                                                gboolean             online,
                                                GError             **error);
GPtrArray     *parley_cache_list_contacts      (ParleyCache         *self);
char          *parley_cache_lookup_username    (ParleyCache         *self,
                                                const char          *user_id);
char          *parley_cache_lookup_user_id     (ParleyCache         *self,
                                                const char          *username);

G_END_DECLS
