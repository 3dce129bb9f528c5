/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

#include "parley-call-types.h"
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

/**
 * ParleyCallRecord:
 * @call_id: the call's id
 * @peer_id: the other party's user id
 * @peer_name: (nullable): their user name, if known (filled in by
 *   parley_cache_list_calls(), ignored by parley_cache_record_call())
 * @outgoing: whether this side called
 * @video: whether video was sent or received
 * @created_at: when the call started ringing, in µs since the epoch
 * @answered_at: when it was answered, in µs since the epoch, or 0
 * @ended_at: when it ended, in µs since the epoch
 * @end_reason: why it ended
 * @duration: the answered part, in seconds
 *
 * One entry of the call log.
 */
typedef struct {
  char                *call_id;
  char                *peer_id;
  char                *peer_name;
  gboolean             outgoing;
  gboolean             video;
  gint64               created_at;
  gint64               answered_at;
  gint64               ended_at;
  ParleyCallEndReason  end_reason;
  gint64               duration;
} ParleyCallRecord;

#define PARLEY_TYPE_CALL_RECORD (parley_call_record_get_type ())

GType             parley_call_record_get_type (void) G_GNUC_CONST;
ParleyCallRecord *parley_call_record_new      (const char             *call_id,
                                               const char             *peer_id);
ParleyCallRecord *parley_call_record_copy     (const ParleyCallRecord *record);
void              parley_call_record_free     (ParleyCallRecord       *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyCallRecord, parley_call_record_free)

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
gboolean       parley_cache_record_call        (ParleyCache            *self,
                                                const ParleyCallRecord *record,
                                                GError                **error);
GPtrArray     *parley_cache_list_calls         (ParleyCache         *self,
                                                const char          *peer_id,
                                                guint                limit);

G_END_DECLS
