/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-cache"

#include <glib/gstdio.h>

#include "parley-cache.h"
#include "parley-engine-test.h"
#include "parley-error.h"

typedef struct {
  char        *dir;
  char        *path;
  ParleyCache *cache;
} Fixture;

static void
setup (Fixture       *fixture,
       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("parley-cache-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->path = g_build_filename (fixture->dir, "cache.db", NULL);
  fixture->cache = parley_cache_new (fixture->path, &error);
  g_assert_no_error (error);
  g_assert_true (parley_cache_bind_user (fixture->cache, "me", &error));
  g_assert_no_error (error);
}

static void
teardown (Fixture       *fixture,
          gconstpointer  data)
{
  g_assert_finalize_object (fixture->cache);
  parley_engine_test_remove_tree (fixture->dir);
  g_free (fixture->path);
  g_free (fixture->dir);
}

static void
reopen (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;

  g_assert_finalize_object (fixture->cache);
  fixture->cache = parley_cache_new (fixture->path, &error);
  g_assert_no_error (error);
}

static ParleyMessage *
incoming (const char *sender,
          const char *id,
          const char *body,
          gint64      seq)
{
  return parley_message_new (id, sender, "me", body, 1000 * seq, seq,
                             PARLEY_MESSAGE_STATE_DELIVERED, FALSE);
}

static ParleyMessage *
outgoing (const char *recipient,
          const char *id,
          const char *body,
          gint64      timestamp)
{
  return parley_message_new (id, "me", recipient, body, timestamp, 0,
                             PARLEY_MESSAGE_STATE_SENDING, TRUE);
}

static void
add (Fixture       *fixture,
     ParleyMessage *message,
     gboolean       expect_inserted)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyMessage) owned = message;
  gboolean inserted = !expect_inserted;

  g_assert_true (parley_cache_add_message (fixture->cache, owned, &inserted, &error));
  g_assert_no_error (error);
  g_assert_cmpint (inserted, ==, expect_inserted);
}

static guint
unread (Fixture    *fixture,
        const char *peer)
{
  g_autoptr(ParleyConversationInfo) info = parley_cache_get_conversation (fixture->cache, peer);

  g_assert_nonnull (info);
  return info->unread_count;
}

static ParleyMessageState
state_of (Fixture    *fixture,
          const char *sender,
          const char *id)
{
  g_autoptr(ParleyMessage) message = parley_cache_lookup_message (fixture->cache, sender, id);

  g_assert_nonnull (message);
  return parley_message_get_state (message);
}

static void
test_dedup (Fixture       *fixture,
            gconstpointer  data)
{
  g_autoptr(GPtrArray) messages = NULL;

  add (fixture, incoming ("alice", "m1", "hello", 1), TRUE);
  /* The server pushing the same message again (even changed) is ignored. */
  add (fixture, incoming ("alice", "m1", "hello", 1), FALSE);
  add (fixture, incoming ("alice", "m1", "other text", 7), FALSE);
  /* The same id from another sender is another message. */
  add (fixture, incoming ("bob", "m1", "hi from bob", 2), TRUE);

  messages = parley_cache_list_messages (fixture->cache, "alice", 0);
  g_assert_cmpuint (messages->len, ==, 1);
  g_assert_cmpstr (parley_message_get_body (g_ptr_array_index (messages, 0)), ==, "hello");
  g_assert_cmpuint (unread (fixture, "alice"), ==, 1);
  g_assert_cmpuint (unread (fixture, "bob"), ==, 1);
}

static void
test_state_transitions (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyMessage) stored = NULL;
  gboolean changed = FALSE;

  add (fixture, outgoing ("bob", "o1", "one", 10), TRUE);
  g_assert_cmpint (state_of (fixture, "me", "o1"), ==, PARLEY_MESSAGE_STATE_SENDING);

  g_assert_true (parley_cache_update_message (fixture->cache, "me", "o1",
                                              PARLEY_MESSAGE_STATE_STORED, 41, 1700000000000,
                                              &changed, &error));
  g_assert_true (changed);
  stored = parley_cache_lookup_message (fixture->cache, "me", "o1");
  g_assert_cmpint (parley_message_get_state (stored), ==, PARLEY_MESSAGE_STATE_STORED);
  g_assert_cmpint (parley_message_get_seq (stored), ==, 41);
  g_assert_cmpint (parley_message_get_timestamp (stored), ==, 1700000000000);

  parley_cache_update_message (fixture->cache, "me", "o1", PARLEY_MESSAGE_STATE_DELIVERED, 0, 0,
                               &changed, &error);
  g_assert_true (changed);
  g_assert_cmpint (state_of (fixture, "me", "o1"), ==, PARLEY_MESSAGE_STATE_DELIVERED);

  /* A late duplicate "stored" ack does not move the state back. */
  parley_cache_update_message (fixture->cache, "me", "o1", PARLEY_MESSAGE_STATE_STORED, 0, 0,
                               &changed, &error);
  g_assert_false (changed);
  g_assert_cmpint (state_of (fixture, "me", "o1"), ==, PARLEY_MESSAGE_STATE_DELIVERED);

  /* Only a message still being sent can fail. */
  parley_cache_update_message (fixture->cache, "me", "o1", PARLEY_MESSAGE_STATE_FAILED, 0, 0,
                               &changed, &error);
  g_assert_false (changed);
  g_assert_cmpint (state_of (fixture, "me", "o1"), ==, PARLEY_MESSAGE_STATE_DELIVERED);

  add (fixture, outgoing ("bob", "o2", "two", 11), TRUE);
  parley_cache_update_message (fixture->cache, "me", "o2", PARLEY_MESSAGE_STATE_FAILED, 0, 0,
                               &changed, &error);
  g_assert_true (changed);
  parley_cache_update_message (fixture->cache, "me", "o2", PARLEY_MESSAGE_STATE_STORED, 5, 0,
                               &changed, &error);
  g_assert_cmpint (state_of (fixture, "me", "o2"), ==, PARLEY_MESSAGE_STATE_FAILED);
  g_assert_no_error (error);

  g_assert_false (parley_cache_update_message (fixture->cache, "me", "missing",
                                               PARLEY_MESSAGE_STATE_STORED, 1, 1, NULL, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_NOT_FOUND);
}

static void
test_unread_and_mark_read (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *newest = NULL;
  g_autofree char *none = NULL;

  add (fixture, incoming ("alice", "a1", "one", 1), TRUE);
  add (fixture, incoming ("alice", "a3", "three", 3), TRUE);
  add (fixture, incoming ("alice", "a2", "two", 2), TRUE);
  add (fixture, outgoing ("alice", "o1", "mine", 2500), TRUE);
  g_assert_cmpuint (unread (fixture, "alice"), ==, 3);

  newest = parley_cache_mark_read (fixture->cache, "alice", &error);
  g_assert_no_error (error);
  /* The newest incoming message by seq, not the last one inserted. */
  g_assert_cmpstr (newest, ==, "a3");
  g_assert_cmpuint (unread (fixture, "alice"), ==, 0);
  g_assert_cmpint (state_of (fixture, "alice", "a1"), ==, PARLEY_MESSAGE_STATE_READ);
  g_assert_cmpint (state_of (fixture, "alice", "a2"), ==, PARLEY_MESSAGE_STATE_READ);
  /* Own messages are not affected by reading the conversation. */
  g_assert_cmpint (state_of (fixture, "me", "o1"), ==, PARLEY_MESSAGE_STATE_SENDING);

  add (fixture, incoming ("alice", "a4", "four", 4), TRUE);
  g_assert_cmpuint (unread (fixture, "alice"), ==, 1);

  none = parley_cache_mark_read (fixture->cache, "nobody", &error);
  g_assert_null (none);
  g_assert_no_error (error);
}

static void
test_outgoing_read (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) ids = NULL;

  add (fixture, outgoing ("bob", "o1", "one", 1), TRUE);
  add (fixture, outgoing ("bob", "o2", "two", 2), TRUE);
  add (fixture, outgoing ("bob", "o3", "three", 3), TRUE);
  add (fixture, outgoing ("carol", "c1", "other", 1), TRUE);
  parley_cache_update_message (fixture->cache, "me", "o1", PARLEY_MESSAGE_STATE_STORED, 10, 0,
                               NULL, &error);
  parley_cache_update_message (fixture->cache, "me", "o2", PARLEY_MESSAGE_STATE_DELIVERED, 11, 0,
                               NULL, &error);
  parley_cache_update_message (fixture->cache, "me", "o3", PARLEY_MESSAGE_STATE_STORED, 12, 0,
                               NULL, &error);
  parley_cache_update_message (fixture->cache, "me", "c1", PARLEY_MESSAGE_STATE_STORED, 9, 0,
                               NULL, &error);

  ids = parley_cache_mark_outgoing_read (fixture->cache, "bob", "o2", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ids->len, ==, 2);
  g_assert_cmpint (state_of (fixture, "me", "o1"), ==, PARLEY_MESSAGE_STATE_READ);
  g_assert_cmpint (state_of (fixture, "me", "o2"), ==, PARLEY_MESSAGE_STATE_READ);
  g_assert_cmpint (state_of (fixture, "me", "o3"), ==, PARLEY_MESSAGE_STATE_STORED);
  g_assert_cmpint (state_of (fixture, "me", "c1"), ==, PARLEY_MESSAGE_STATE_STORED);
}

static void
test_last_seq (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (parley_cache_get_last_seq (fixture->cache), ==, 0);
  g_assert_true (parley_cache_set_last_seq (fixture->cache, 40, &error));
  g_assert_cmpint (parley_cache_get_last_seq (fixture->cache), ==, 40);
  /* It never goes back. */
  g_assert_true (parley_cache_set_last_seq (fixture->cache, 12, &error));
  g_assert_cmpint (parley_cache_get_last_seq (fixture->cache), ==, 40);
  g_assert_true (parley_cache_set_last_seq (fixture->cache, 8589934592, &error));
  g_assert_no_error (error);

  reopen (fixture);
  g_assert_cmpint (parley_cache_get_last_seq (fixture->cache), ==, 8589934592);
}

static void
test_outbox_survives_reopen (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(GPtrArray) pending = NULL;
  g_autoptr(GPtrArray) after_ack = NULL;
  g_autoptr(GError) error = NULL;

  add (fixture, outgoing ("bob", "o1", "first", 1), TRUE);
  add (fixture, outgoing ("carol", "o2", "second", 2), TRUE);
  add (fixture, incoming ("bob", "b1", "not mine", 3), TRUE);

  reopen (fixture);
  g_assert_cmpstr (parley_cache_get_user_id (fixture->cache), ==, "me");
  pending = parley_cache_list_pending (fixture->cache);
  g_assert_cmpuint (pending->len, ==, 2);
  g_assert_cmpstr (parley_message_get_id (g_ptr_array_index (pending, 0)), ==, "o1");
  g_assert_cmpstr (parley_message_get_body (g_ptr_array_index (pending, 0)), ==, "first");
  g_assert_cmpstr (parley_message_get_recipient_id (g_ptr_array_index (pending, 0)), ==, "bob");
  g_assert_cmpstr (parley_message_get_id (g_ptr_array_index (pending, 1)), ==, "o2");

  parley_cache_update_message (fixture->cache, "me", "o1", PARLEY_MESSAGE_STATE_STORED, 5, 0,
                               NULL, &error);
  g_assert_no_error (error);
  after_ack = parley_cache_list_pending (fixture->cache);
  g_assert_cmpuint (after_ack->len, ==, 1);
  g_assert_cmpstr (parley_message_get_id (g_ptr_array_index (after_ack, 0)), ==, "o2");
}

static void
test_conversations (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) history = NULL;
  g_autoptr(GError) error = NULL;
  ParleyConversationInfo *first;

  add (fixture, incoming ("alice", "a1", "old", 1), TRUE);
  add (fixture, incoming ("bob", "b1", "newer", 5), TRUE);
  add (fixture, outgoing ("alice", "o1", "newest", 9000), TRUE);
  g_assert_true (parley_cache_set_contact (fixture->cache, "alice", "alice_name", TRUE, &error));

  list = parley_cache_list_conversations (fixture->cache);
  g_assert_cmpuint (list->len, ==, 2);
  first = g_ptr_array_index (list, 0);
  g_assert_cmpstr (first->peer_id, ==, "alice");
  g_assert_cmpstr (first->peer_name, ==, "alice_name");
  g_assert_cmpstr (first->last_body, ==, "newest");
  g_assert_cmpint (first->last_timestamp, ==, 9000);
  g_assert_cmpuint (first->unread_count, ==, 1);

  history = parley_cache_list_messages (fixture->cache, "alice", 0);
  g_assert_cmpuint (history->len, ==, 2);
  g_assert_cmpstr (parley_message_get_id (g_ptr_array_index (history, 0)), ==, "a1");
  g_assert_cmpstr (parley_message_get_id (g_ptr_array_index (history, 1)), ==, "o1");
  g_clear_pointer (&history, g_ptr_array_unref);
  history = parley_cache_list_messages (fixture->cache, "alice", 1);
  g_assert_cmpuint (history->len, ==, 1);
  g_assert_cmpstr (parley_message_get_id (g_ptr_array_index (history, 0)), ==, "o1");
}

static void
test_contacts (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GPtrArray) contacts = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *name = NULL;

  parley_cache_set_contact (fixture->cache, "u2", "zed", TRUE, &error);
  parley_cache_set_contact (fixture->cache, "u3", "amy", TRUE, &error);
  /* A user seen in a search is known but not a contact. */
  parley_cache_set_contact (fixture->cache, "u4", "searched", FALSE, &error);
  /* Seeing a contact in a search does not demote them. */
  parley_cache_set_contact (fixture->cache, "u2", "zed", FALSE, &error);
  parley_cache_set_presence (fixture->cache, "u2", TRUE, &error);
  g_assert_no_error (error);

  contacts = parley_cache_list_contacts (fixture->cache);
  g_assert_cmpuint (contacts->len, ==, 2);
  g_assert_cmpstr (parley_contact_get_username (g_ptr_array_index (contacts, 0)), ==, "amy");
  g_assert_false (parley_contact_get_online (g_ptr_array_index (contacts, 0)));
  g_assert_cmpstr (parley_contact_get_username (g_ptr_array_index (contacts, 1)), ==, "zed");
  g_assert_true (parley_contact_get_online (g_ptr_array_index (contacts, 1)));

  id = parley_cache_lookup_user_id (fixture->cache, "searched");
  g_assert_cmpstr (id, ==, "u4");
  name = parley_cache_lookup_username (fixture->cache, "u3");
  g_assert_cmpstr (name, ==, "amy");
}

static void
test_other_user_wipes (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) pending = NULL;

  add (fixture, incoming ("alice", "a1", "for me", 1), TRUE);
  add (fixture, outgoing ("alice", "o1", "queued", 2), TRUE);
  parley_cache_set_last_seq (fixture->cache, 30, &error);

  /* The same user again keeps everything. */
  g_assert_true (parley_cache_bind_user (fixture->cache, "me", &error));
  g_assert_cmpint (parley_cache_get_last_seq (fixture->cache), ==, 30);

  g_assert_true (parley_cache_bind_user (fixture->cache, "someone-else", &error));
  g_assert_no_error (error);
  list = parley_cache_list_conversations (fixture->cache);
  pending = parley_cache_list_pending (fixture->cache);
  g_assert_cmpuint (list->len, ==, 0);
  g_assert_cmpuint (pending->len, ==, 0);
  g_assert_cmpint (parley_cache_get_last_seq (fixture->cache), ==, 0);
  g_assert_cmpstr (parley_cache_get_user_id (fixture->cache), ==, "someone-else");
}

static void
test_hostile_text (Fixture       *fixture,
                   gconstpointer  data)
{
  const char *evil = "'); DROP TABLE messages; --";
  g_autoptr(GPtrArray) history = NULL;

  add (fixture, incoming (evil, evil, evil, 1), TRUE);
  history = parley_cache_list_messages (fixture->cache, evil, 0);
  g_assert_cmpuint (history->len, ==, 1);
  g_assert_cmpstr (parley_message_get_body (g_ptr_array_index (history, 0)), ==, evil);
}

static void
test_open_failure (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleyCache) cache = parley_cache_new ("/nonexistent-dir/for/parley/cache.db",
                                                   &error);

  g_assert_null (cache);
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, setup, func, teardown)
  ADD ("/cache/dedup", test_dedup);
  ADD ("/cache/state-transitions", test_state_transitions);
  ADD ("/cache/unread-and-mark-read", test_unread_and_mark_read);
  ADD ("/cache/outgoing-read", test_outgoing_read);
  ADD ("/cache/last-seq", test_last_seq);
  ADD ("/cache/outbox-survives-reopen", test_outbox_survives_reopen);
  ADD ("/cache/conversations", test_conversations);
  ADD ("/cache/contacts", test_contacts);
  ADD ("/cache/other-user-wipes", test_other_user_wipes);
  ADD ("/cache/hostile-text", test_hostile_text);
#undef ADD
  g_test_add_func ("/cache/open-failure", test_open_failure);

  return g_test_run ();
}
