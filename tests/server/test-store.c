/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "parley-store.h"
#include "parley-envelope.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#define WAIT_SECONDS 30

/* Collects the ops handed back by the store's writer thread. */
typedef struct {
  GMutex lock;
  GCond cond;
  GPtrArray *ops;         /* all ops, in callback order */
  GArray *batch_sizes;
  /* When set, the next callback blocks until released. */
  gboolean hold;
  gboolean holding;
} Collector;

typedef struct {
  char *dir;
  char *path;
  ParleyStore *store;
  Collector c;
} Fixture;

static void
batch_done_cb (ParleyStoreOp **ops,
               guint           n_ops,
               gpointer        user_data)
{
  Collector *c = user_data;
  guint n = n_ops;

  g_mutex_lock (&c->lock);
  for (guint i = 0; i < n_ops; i++)
    g_ptr_array_add (c->ops, ops[i]);
  g_array_append_val (c->batch_sizes, n);
  g_cond_broadcast (&c->cond);
  if (c->hold) {
    c->holding = TRUE;
    g_cond_broadcast (&c->cond);
    while (c->hold)
      g_cond_wait (&c->cond, &c->lock);
    c->holding = FALSE;
  }
  g_mutex_unlock (&c->lock);
}

static void
collector_wait (Collector *c,
                guint      n)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;

  g_mutex_lock (&c->lock);
  while (c->ops->len < n) {
    if (!g_cond_wait_until (&c->cond, &c->lock, deadline))
      break;
  }
  g_assert_cmpuint (c->ops->len, >=, n);
  g_mutex_unlock (&c->lock);
}

static void
collector_wait_holding (Collector *c)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;

  g_mutex_lock (&c->lock);
  while (!c->holding) {
    if (!g_cond_wait_until (&c->cond, &c->lock, deadline))
      break;
  }
  g_assert_true (c->holding);
  g_mutex_unlock (&c->lock);
}

static void
collector_release (Collector *c)
{
  g_mutex_lock (&c->lock);
  c->hold = FALSE;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static ParleyStoreOp *
collector_get (Collector *c,
               guint      i)
{
  ParleyStoreOp *op;

  g_mutex_lock (&c->lock);
  op = g_ptr_array_index (c->ops, i);
  g_mutex_unlock (&c->lock);
  return op;
}

static void
open_store (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  f->store = parley_store_open (f->path, batch_done_cb, &f->c, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
}

static void
close_store (Fixture *f)
{
  parley_store_close (f->store);
  f->store = NULL;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("parley-store-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "test.db", NULL);
  g_mutex_init (&f->c.lock);
  g_cond_init (&f->c.cond);
  f->c.ops = g_ptr_array_new_with_free_func ((GDestroyNotify) parley_store_op_free);
  f->c.batch_sizes = g_array_new (FALSE, FALSE, sizeof (guint));
  open_store (f);
}

/* Deletes a database and its index, with their WAL and shared memory. */
static void
remove_database (const char *path)
{
  const char *suffixes[] = { "", "-wal", "-shm", "-index", "-index-wal", "-index-shm" };

  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *p = g_strconcat (path, suffixes[i], NULL);
    g_unlink (p);
  }
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->store != NULL)
    close_store (f);
  remove_database (f->path);
  g_rmdir (f->dir);
  g_ptr_array_unref (f->c.ops);
  g_array_unref (f->c.batch_sizes);
  g_mutex_clear (&f->c.lock);
  g_cond_clear (&f->c.cond);
  g_free (f->path);
  g_free (f->dir);
}

static char *
create_user (Fixture    *f,
             const char *name)
{
  g_autoptr(GError) error = NULL;
  char *id = NULL;

  g_assert_true (parley_store_create_user (f->store, name, "$hash$", &id, &error));
  g_assert_no_error (error);
  return id;
}

static ParleyStoreOp *
message_op (const char *from,
            const char *to,
            const char *id,
            const char *text,
            gint64      timestamp)
{
  ParleyStoreOp *op = parley_store_op_new (PARLEY_STORE_OP_MESSAGE);

  op->user_id = g_strdup (from);
  op->peer_id = g_strdup (to);
  op->message_id = g_strdup (id);
  op->content = g_strdup_printf ("\"%s\"", text);
  op->content_len = strlen (op->content);
  op->timestamp = timestamp;
  return op;
}

static ParleyStoreOp *
received_op (const char *user,
             gint64      seq)
{
  ParleyStoreOp *op = parley_store_op_new (PARLEY_STORE_OP_RECEIVED);

  op->user_id = g_strdup (user);
  op->seq = seq;
  return op;
}

static void
test_users (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *alice = create_user (f, "alice");
  g_autofree char *alex = create_user (f, "alex");
  g_autofree char *bob = create_user (f, "bob");
  g_autofree char *id = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *name = NULL;
  g_autoptr(GPtrArray) found = NULL;
  g_autoptr(GPtrArray) contacts = NULL;
  ParleyUserInfo *info;

  g_assert_cmpuint (strlen (alice), ==, 32);
  for (const char *p = alice; *p; p++)
    g_assert_true (g_ascii_isdigit (*p) || (*p >= 'a' && *p <= 'f'));
  g_assert_cmpstr (alice, !=, bob);

  g_assert_false (parley_store_create_user (f->store, "alice", "$other$", NULL, &error));
  g_assert_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_EXISTS);
  g_clear_error (&error);

  g_assert_true (parley_store_find_user (f->store, "alice", &id, &hash, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (id, ==, alice);
  g_assert_cmpstr (hash, ==, "$hash$");
  g_assert_false (parley_store_find_user (f->store, "carol", NULL, NULL, &error));
  g_assert_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (parley_store_user_exists (f->store, alice));
  g_assert_false (parley_store_user_exists (f->store, "0123"));
  g_assert_false (parley_store_user_exists (f->store, NULL));

  name = parley_store_get_username (f->store, bob);
  g_assert_cmpstr (name, ==, "bob");
  g_assert_null (parley_store_get_username (f->store, "nope"));

  found = parley_store_search_users (f->store, "al", 20);
  g_assert_cmpuint (found->len, ==, 2);
  info = g_ptr_array_index (found, 0);
  g_assert_cmpstr (info->username, ==, "alex");
  g_assert_cmpstr (info->user_id, ==, alex);
  info = g_ptr_array_index (found, 1);
  g_assert_cmpstr (info->username, ==, "alice");
  g_clear_pointer (&found, g_ptr_array_unref);

  found = parley_store_search_users (f->store, "al", 1);
  g_assert_cmpuint (found->len, ==, 1);
  g_clear_pointer (&found, g_ptr_array_unref);
  found = parley_store_search_users (f->store, "", 20);
  g_assert_cmpuint (found->len, ==, 3);
  g_clear_pointer (&found, g_ptr_array_unref);
  found = parley_store_search_users (f->store, "alicex", 20);
  g_assert_cmpuint (found->len, ==, 0);
  g_clear_pointer (&found, g_ptr_array_unref);

  /* Contacts go both ways; adding twice is fine; unknown users are not. */
  g_assert_true (parley_store_add_contact (f->store, alice, bob, &error));
  g_assert_no_error (error);
  g_assert_true (parley_store_add_contact (f->store, bob, alice, &error));
  g_assert_no_error (error);
  g_assert_false (parley_store_add_contact (f->store, alice, "ffff", &error));
  g_assert_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  contacts = parley_store_list_contacts (f->store, bob);
  g_assert_cmpuint (contacts->len, ==, 1);
  info = g_ptr_array_index (contacts, 0);
  g_assert_cmpstr (info->user_id, ==, alice);
  g_assert_cmpstr (info->username, ==, "alice");
  g_clear_pointer (&contacts, g_ptr_array_unref);
  contacts = parley_store_list_contacts (f->store, alex);
  g_assert_cmpuint (contacts->len, ==, 0);
  g_clear_pointer (&contacts, g_ptr_array_unref);

  /* Users survive a reopen, including the in-memory set. */
  close_store (f);
  open_store (f);
  g_assert_true (parley_store_user_exists (f->store, alex));
  contacts = parley_store_list_contacts (f->store, alice);
  g_assert_cmpuint (contacts->len, ==, 1);
}

static void
test_messages_durable (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *a = create_user (f, "alice");
  g_autofree char *b = create_user (f, "bob");
  g_autoptr(GPtrArray) history = NULL;
  g_autoptr(GPtrArray) pending = NULL;
  g_autoptr(GPtrArray) contacts = NULL;
  const guint n = 100;
  gint64 last_seq = 0;

  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("m%u", i);
    g_autofree char *text = g_strdup_printf ("text %u", i);

    parley_store_submit (f->store, message_op (i % 3 ? a : b, i % 3 ? b : a, id, text,
                                               1700000000000 + i));
  }
  collector_wait (&f->c, n);

  /* Callbacks come in submission order with rising seqs. */
  for (guint i = 0; i < n; i++) {
    ParleyStoreOp *op = collector_get (&f->c, i);
    g_autofree char *id = g_strdup_printf ("m%u", i);

    g_assert_no_error (op->error);
    g_assert_cmpstr (op->message_id, ==, id);
    g_assert_false (op->duplicate);
    g_assert_cmpint (op->seq, >, last_seq);
    last_seq = op->seq;
  }

  /* Everything survives a reopen. */
  close_store (f);
  open_store (f);

  history = parley_store_history_since (f->store, a, 0, 1000);
  g_assert_cmpuint (history->len, ==, n);
  for (guint i = 0; i < n; i++) {
    ParleyStoredMessage *m = g_ptr_array_index (history, i);
    g_autofree char *id = g_strdup_printf ("m%u", i);
    g_autofree char *content = g_strdup_printf ("\"text %u\"", i);

    g_assert_cmpstr (m->id, ==, id);
    g_assert_cmpstr (m->content, ==, content);
    g_assert_cmpstr (m->sender_id, ==, i % 3 ? a : b);
    g_assert_cmpstr (m->recipient_id, ==, i % 3 ? b : a);
    g_assert_cmpint (m->timestamp, ==, 1700000000000 + i);
    g_assert_cmpint (m->seq, ==, collector_get (&f->c, i)->seq);
  }

  /* Paging through history. */
  g_clear_pointer (&history, g_ptr_array_unref);
  history = parley_store_history_since (f->store, b, collector_get (&f->c, 49)->seq, 10);
  g_assert_cmpuint (history->len, ==, 10);
  g_assert_cmpint (((ParleyStoredMessage *) history->pdata[0])->seq, ==,
                   collector_get (&f->c, 50)->seq);

  /* Pending for bob: the messages from alice (i % 3 != 0). */
  pending = parley_store_pending_for (f->store, b, 0, 1000);
  g_assert_cmpuint (pending->len, ==, n - (n + 2) / 3);
  for (guint i = 0; i < pending->len; i++)
    g_assert_cmpstr (((ParleyStoredMessage *) pending->pdata[i])->sender_id, ==, a);

  g_assert_cmpint (parley_store_latest_seq_for (f->store, a), ==, last_seq);
  g_assert_cmpint (parley_store_latest_seq_for (f->store, "nobody"), ==, 0);

  /* Messages made them contacts. */
  contacts = parley_store_list_contacts (f->store, b);
  g_assert_cmpuint (contacts->len, ==, 1);
  g_assert_cmpstr (((ParleyUserInfo *) contacts->pdata[0])->user_id, ==, a);
}

/* Copies @from to @to, as the file is now (the page cache is what a killed
 * process leaves behind). */
static void
copy_file (const char *from,
           const char *to)
{
  g_autofree char *contents = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (from, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (to, contents, len, NULL));
}

/* Copies the files @from + each of the @n @suffixes to @to + the same
 * suffix, as they are now (the page cache is what a killed process leaves
 * behind). */
static void
copy_database (const char        *from,
               const char        *to,
               const char *const *suffixes,
               gsize              n)
{
  for (gsize i = 0; i < n; i++) {
    g_autofree char *from_path = g_strconcat (from, suffixes[i], NULL);
    g_autofree char *to_path = g_strconcat (to, suffixes[i], NULL);

    copy_file (from_path, to_path);
  }
}

/* Replaces the store's files with the copy at @copy (see copy_database())
 * and opens it. */
static void
open_copy (Fixture           *f,
           const char        *copy,
           const char *const *suffixes,
           gsize              n)
{
  close_store (f);
  remove_database (f->path);
  copy_database (copy, f->path, suffixes, n);
  remove_database (copy);
  open_store (f);
}

static void
assert_history (ParleyStore *store,
                const char  *user,
                guint        n)
{
  g_autoptr(GPtrArray) history = parley_store_history_since (store, user, 0, 10000);

  g_assert_cmpuint (history->len, ==, n);
  for (guint i = 0; i < n; i++) {
    ParleyStoredMessage *m = g_ptr_array_index (history, i);
    g_autofree char *id = g_strdup_printf ("w%u", i);
    g_autofree char *content = g_strdup_printf ("\"%u %0200u\"", i, i);

    g_assert_cmpstr (m->id, ==, id);
    g_assert_cmpstr (m->content, ==, content);
  }
}

/* The log's WAL is written with zeros ahead of the frames in use. A copy of
 * the files taken while the store is open, as kill -9 leaves them, opens
 * with every acknowledged message. */
static void
test_wal_primed_survives_crash (Fixture       *f,
                                gconstpointer  data)
{
  g_autofree char *a = create_user (f, "alice");
  g_autofree char *b = create_user (f, "bob");
  g_autofree char *wal = g_strconcat (f->path, "-wal", NULL);
  g_autofree char *crash = g_build_filename (f->dir, "crash.db", NULL);
  g_autofree char *tail = NULL;
  g_autoptr(GError) error = NULL;
  ParleyStore *copy;
  GStatBuf st;
  const guint n = 3000;
  gsize len;

  /* Enough batches of messages with some content to use thousands of
   * frames, so that the priming moves on more than once. */
  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("w%u", i);
    g_autofree char *text = g_strdup_printf ("%u %0200u", i, i);

    parley_store_submit (f->store, message_op (a, b, id, text, 1700000000000 + i));
    if (i % 10 == 9)
      collector_wait (&f->c, i + 1);
  }
  collector_wait (&f->c, n);
  for (guint i = 0; i < n; i++)
    g_assert_no_error (collector_get (&f->c, i)->error);

  /* Primed: the file is larger than the frames in it, and ends in zeros. */
  g_assert_cmpint (g_stat (wal, &st), ==, 0);
  g_assert_cmpint (st.st_size, >=, 1024 * 1024);
  g_assert_true (g_file_get_contents (wal, &tail, &len, NULL));
  for (gsize i = len - 4096; i < len; i++)
    g_assert_cmpint (tail[i], ==, 0);

  copy_database (f->path, crash, (const char *[]) { "", "-wal" }, 2);
  copy = parley_store_open (crash, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_history (copy, b, n);
  parley_store_close (copy);

  /* Reopened from the copy once more after a clean close. */
  copy = parley_store_open (crash, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_history (copy, a, n);
  parley_store_close (copy);
  remove_database (crash);

  /* The original goes on too. */
  close_store (f);
  open_store (f);
  assert_history (f->store, a, n);
}

static void
test_dedup_same_batch (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  g_autofree char *u3 = create_user (f, "user3");
  g_autoptr(GPtrArray) history = NULL;
  ParleyStoreOp *first, *second, *other;
  guint last_batch;

  /* Hold the writer in the callback of a first batch so that the next three
   * ops are certain to be committed together. */
  f->c.hold = TRUE;
  parley_store_submit (f->store, message_op (u1, u2, "blocker", "x", 1));
  collector_wait_holding (&f->c);

  parley_store_submit (f->store, message_op (u1, u2, "dup", "first", 10));
  parley_store_submit (f->store, message_op (u1, u2, "dup", "second", 20));
  parley_store_submit (f->store, message_op (u3, u2, "dup", "other sender", 30));
  collector_release (&f->c);
  collector_wait (&f->c, 4);

  last_batch = g_array_index (f->c.batch_sizes, guint, f->c.batch_sizes->len - 1);
  g_assert_cmpuint (last_batch, ==, 3);

  first = collector_get (&f->c, 1);
  second = collector_get (&f->c, 2);
  other = collector_get (&f->c, 3);
  g_assert_no_error (first->error);
  g_assert_no_error (second->error);
  g_assert_false (first->duplicate);
  g_assert_true (second->duplicate);
  g_assert_cmpint (second->seq, ==, first->seq);
  g_assert_cmpint (second->timestamp, ==, 10);
  g_assert_false (other->duplicate);
  g_assert_cmpint (other->seq, >, first->seq);

  history = parley_store_history_since (f->store, u2, 0, 100);
  g_assert_cmpuint (history->len, ==, 3);
  g_assert_cmpstr (((ParleyStoredMessage *) history->pdata[1])->content, ==, "\"first\"");
}

static void
test_dedup_across_batches_and_receipts (Fixture       *f,
                                        gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  g_autoptr(GPtrArray) pending = NULL;
  ParleyStoreOp *op;
  gint64 seq;

  parley_store_submit (f->store, message_op (u1, u2, "m1", "hello", 100));
  collector_wait (&f->c, 1);
  op = collector_get (&f->c, 0);
  g_assert_no_error (op->error);
  seq = op->seq;

  parley_store_submit (f->store, message_op (u1, u2, "m1", "hello again", 200));
  collector_wait (&f->c, 2);
  op = collector_get (&f->c, 1);
  g_assert_true (op->duplicate);
  g_assert_false (op->delivered);
  g_assert_cmpint (op->seq, ==, seq);
  g_assert_cmpint (op->timestamp, ==, 100);

  /* Only the recipient can acknowledge. */
  parley_store_submit (f->store, received_op (u1, seq));
  collector_wait (&f->c, 3);
  op = collector_get (&f->c, 2);
  g_assert_error (op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND);
  g_assert_null (op->orig_sender);

  parley_store_submit (f->store, received_op (u2, seq));
  parley_store_submit (f->store, received_op (u2, seq));
  parley_store_submit (f->store, received_op (u2, seq + 1000));
  collector_wait (&f->c, 6);
  op = collector_get (&f->c, 3);
  g_assert_no_error (op->error);
  g_assert_true (op->delivered);
  g_assert_cmpstr (op->orig_sender, ==, u1);
  g_assert_cmpstr (op->orig_id, ==, "m1");
  op = collector_get (&f->c, 4);
  g_assert_no_error (op->error);
  g_assert_false (op->delivered);
  g_assert_cmpstr (op->orig_sender, ==, u1);
  op = collector_get (&f->c, 5);
  g_assert_error (op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND);

  pending = parley_store_pending_for (f->store, u2, 0, 100);
  g_assert_cmpuint (pending->len, ==, 0);

  /* A resend after delivery says so. */
  parley_store_submit (f->store, message_op (u1, u2, "m1", "hello", 300));
  collector_wait (&f->c, 7);
  op = collector_get (&f->c, 6);
  g_assert_true (op->duplicate);
  g_assert_true (op->delivered);
  g_assert_cmpint (op->seq, ==, seq);
}

static void
test_read_markers (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  ParleyStoreOp *op;

  for (guint i = 0; i < 3; i++) {
    op = parley_store_op_new (PARLEY_STORE_OP_READ);
    op->user_id = g_strdup (u2);
    op->peer_id = g_strdup (u1);
    op->message_id = g_strdup_printf ("m%u", i);
    op->timestamp = 1000 + i;
    parley_store_submit (f->store, op);
  }
  /* An incomplete op fails alone. */
  op = parley_store_op_new (PARLEY_STORE_OP_READ);
  op->user_id = g_strdup (u2);
  parley_store_submit (f->store, op);
  /* So does one about an unknown user. */
  op = parley_store_op_new (PARLEY_STORE_OP_READ);
  op->user_id = g_strdup (u2);
  op->peer_id = g_strdup ("nobody");
  op->message_id = g_strdup ("m9");
  parley_store_submit (f->store, op);
  collector_wait (&f->c, 5);
  for (guint i = 0; i < 3; i++)
    g_assert_no_error (collector_get (&f->c, i)->error);
  g_assert_error (collector_get (&f->c, 3)->error, PARLEY_STORE_ERROR,
                  PARLEY_STORE_ERROR_FAILED);
  g_assert_error (collector_get (&f->c, 4)->error, PARLEY_STORE_ERROR,
                  PARLEY_STORE_ERROR_NOT_FOUND);
  close_store (f);

  /* Look at the database directly: one marker, the newest. */
  g_assert_cmpint (sqlite3_open_v2 (f->path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT r.message_id, r.timestamp FROM read_markers r"
                                           " JOIN users u ON u.key = r.user"
                                           " JOIN users p ON p.key = r.peer"
                                           " WHERE u.id = ?1 AND p.id = ?2",
                                       -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, u2, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, u1, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (stmt, 0), ==, "m2");
  g_assert_cmpint (sqlite3_column_int64 (stmt, 1), ==, 1002);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_DONE);
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) FROM read_markers", -1, &stmt, NULL),
                   ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, 1);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
}

static void
test_refresh_tokens (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *user = NULL;
  char *tmp = NULL;

  g_assert_true (parley_store_add_refresh_token (f->store, "h1", "u1", "fam1", 1000, &error));
  g_assert_no_error (error);
  g_assert_true (parley_store_add_refresh_token (f->store, "x1", "u9", "fam2", 1000, &error));
  g_assert_no_error (error);

  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "h1", "h2", 500, 2000, &user),
                   ==, PARLEY_REFRESH_OK);
  g_assert_cmpstr (user, ==, "u1");
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "h2", "h3", 600, 2000, &tmp),
                   ==, PARLEY_REFRESH_OK);
  g_clear_pointer (&tmp, g_free);

  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "nope", "h9", 600, 2000, &tmp),
                   ==, PARLEY_REFRESH_UNKNOWN);
  g_assert_null (tmp);

  /* Replaying h1 revokes the whole family, h3 included. */
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "h1", "h4", 700, 2000, &tmp),
                   ==, PARLEY_REFRESH_REUSED);
  g_assert_null (tmp);
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "h3", "h5", 700, 2000, &tmp),
                   ==, PARLEY_REFRESH_UNKNOWN);
  g_assert_null (tmp);
  /* Nothing was stored for the refused rotations. */
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "h4", "h6", 700, 2000, NULL),
                   ==, PARLEY_REFRESH_UNKNOWN);

  /* Other families are untouched; expiry is checked. */
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "x1", "x2", 1000, 2000, NULL),
                   ==, PARLEY_REFRESH_EXPIRED);
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "x1", "x2", 999, 2000, &tmp),
                   ==, PARLEY_REFRESH_OK);
  g_assert_cmpstr (tmp, ==, "u9");
  g_clear_pointer (&tmp, g_free);

  /* Logout revokes the family through any of its tokens. */
  parley_store_revoke_refresh_family (f->store, "x1");
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "x2", "x3", 999, 2000, NULL),
                   ==, PARLEY_REFRESH_UNKNOWN);
  parley_store_revoke_refresh_family (f->store, "unknown");

  /* Pruning deletes what expired, used or not, and nothing else. */
  g_assert_true (parley_store_add_refresh_token (f->store, "p1", "u7", "fam3", 3000, &error));
  g_assert_true (parley_store_add_refresh_token (f->store, "p2", "u7", "fam4", 4000, &error));
  g_assert_no_error (error);
  g_assert_cmpint (parley_store_prune_refresh_tokens (f->store, 1000), ==, 2);  /* h1, x1 */
  g_assert_cmpint (parley_store_prune_refresh_tokens (f->store, 1000), ==, 0);
  g_assert_cmpint (parley_store_prune_refresh_tokens (f->store, 2000), ==, 3);  /* h2, h3, x2 */
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "p1", "p3", 2500, 5000, NULL),
                   ==, PARLEY_REFRESH_OK);
  g_assert_cmpint (parley_store_prune_refresh_tokens (f->store, 3000), ==, 1);  /* p1 */
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "p2", "p4", 3500, 5000, NULL),
                   ==, PARLEY_REFRESH_OK);
  g_assert_cmpint (parley_store_rotate_refresh_token (f->store, "p3", "p5", 3500, 5000, NULL),
                   ==, PARLEY_REFRESH_OK);
}

typedef struct {
  ParleyStore *store;
  guint index;
  guint count;
  const char *sender;
  const char *sink;
} SubmitterData;

static gpointer
submitter_thread (gpointer data)
{
  SubmitterData *d = data;

  for (guint i = 0; i < d->count; i++) {
    g_autofree char *id = g_strdup_printf ("m%u", i);

    parley_store_submit (d->store, message_op (d->sender, d->sink, id, "payload", i));
    /* Every tenth message is resent to exercise deduplication under load. */
    if (i % 10 == 0)
      parley_store_submit (d->store, message_op (d->sender, d->sink, id, "payload", i));
  }
  return NULL;
}

static void
test_concurrent_submitters (Fixture       *f,
                            gconstpointer  data)
{
  enum { N_THREADS = 4, PER_THREAD = 3000 };
  const guint resends = PER_THREAD / 10;
  const guint total = N_THREADS * (PER_THREAD + resends);
  SubmitterData d[N_THREADS];
  GThread *threads[N_THREADS];
  g_autofree char *sink = create_user (f, "sink");
  char *senders[N_THREADS];
  g_autoptr(GHashTable) seqs = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GPtrArray) history = NULL;
  guint duplicates = 0;
  gint64 last_seq[N_THREADS] = { 0 };

  for (guint t = 0; t < N_THREADS; t++) {
    g_autofree char *name = g_strdup_printf ("sender%u", t);

    senders[t] = create_user (f, name);
    d[t] = (SubmitterData) { f->store, t, PER_THREAD, senders[t], sink };
    threads[t] = g_thread_new ("submitter", submitter_thread, &d[t]);
  }
  for (guint t = 0; t < N_THREADS; t++)
    g_thread_join (threads[t]);
  collector_wait (&f->c, total);
  g_assert_cmpuint (f->c.ops->len, ==, total);

  for (guint i = 0; i < total; i++) {
    ParleyStoreOp *op = collector_get (&f->c, i);
    guint t = 0;

    while (t < N_THREADS && strcmp (op->user_id, senders[t]) != 0)
      t++;
    g_assert_cmpuint (t, <, N_THREADS);
    g_assert_no_error (op->error);
    if (op->duplicate) {
      duplicates++;
      g_assert_true (g_hash_table_contains (seqs, &op->seq));
      continue;
    }
    g_assert_false (g_hash_table_contains (seqs, &op->seq));
    g_hash_table_add (seqs, &op->seq);
    /* Each thread's messages are stored in its submission order. */
    g_assert_cmpint (op->seq, >, last_seq[t]);
    last_seq[t] = op->seq;
  }
  g_assert_cmpuint (duplicates, ==, N_THREADS * resends);
  g_assert_cmpuint (g_hash_table_size (seqs), ==, N_THREADS * PER_THREAD);

  /* The writer batched: fewer callbacks than ops. */
  g_assert_cmpuint (f->c.batch_sizes->len, <, total);

  history = parley_store_history_since (f->store, sink, 0, G_MAXUINT);
  g_assert_cmpuint (history->len, ==, N_THREADS * PER_THREAD);
  for (guint t = 0; t < N_THREADS; t++)
    g_free (senders[t]);
}

static void
test_open_failure (void)
{
  g_autoptr(GError) error = NULL;
  ParleyStore *store = parley_store_open ("/nonexistent-dir/sub/x.db", NULL, NULL, &error);

  g_assert_null (store);
  g_assert_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED);
}

static void
test_unknown_users (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *a = create_user (f, "alice");
  g_autoptr(GPtrArray) history = NULL;

  /* Messages from or to a user the store does not know fail alone. */
  parley_store_submit (f->store, message_op (a, "nobody", "m1", "lost", 1));
  parley_store_submit (f->store, message_op ("nobody", a, "m2", "lost", 2));
  parley_store_submit (f->store, message_op (a, a, "m3", "kept", 3));
  parley_store_submit (f->store, received_op ("nobody", 1));
  collector_wait (&f->c, 4);
  g_assert_error (collector_get (&f->c, 0)->error, PARLEY_STORE_ERROR,
                  PARLEY_STORE_ERROR_NOT_FOUND);
  g_assert_error (collector_get (&f->c, 1)->error, PARLEY_STORE_ERROR,
                  PARLEY_STORE_ERROR_NOT_FOUND);
  g_assert_no_error (collector_get (&f->c, 2)->error);
  g_assert_error (collector_get (&f->c, 3)->error, PARLEY_STORE_ERROR,
                  PARLEY_STORE_ERROR_NOT_FOUND);

  /* A message to oneself is listed once. */
  history = parley_store_history_since (f->store, a, 0, 100);
  g_assert_cmpuint (history->len, ==, 1);
  g_assert_cmpstr (((ParleyStoredMessage *) history->pdata[0])->content, ==, "\"kept\"");
  g_clear_pointer (&history, g_ptr_array_unref);
  history = parley_store_history_since (f->store, "nobody", 0, 100);
  g_assert_cmpuint (history->len, ==, 0);
  g_clear_pointer (&history, g_ptr_array_unref);
  history = parley_store_pending_for (f->store, "nobody", 0, 100);
  g_assert_cmpuint (history->len, ==, 0);
}

static void
test_pending_survives_reopen (Fixture       *f,
                              gconstpointer  data)
{
  g_autofree char *a = create_user (f, "alice");
  g_autofree char *b = create_user (f, "bob");
  g_autoptr(GPtrArray) pending = NULL;
  gint64 seqs[3];

  for (guint i = 0; i < 3; i++) {
    g_autofree char *id = g_strdup_printf ("m%u", i);

    parley_store_submit (f->store, message_op (a, b, id, "x", i));
  }
  collector_wait (&f->c, 3);
  for (guint i = 0; i < 3; i++)
    seqs[i] = collector_get (&f->c, i)->seq;
  parley_store_submit (f->store, received_op (b, seqs[1]));
  collector_wait (&f->c, 4);
  g_assert_true (collector_get (&f->c, 3)->delivered);

  close_store (f);
  open_store (f);

  /* The acknowledged message is no longer pending, the others are; paging
   * with after_seq skips what was seen. */
  pending = parley_store_pending_for (f->store, b, 0, 100);
  g_assert_cmpuint (pending->len, ==, 2);
  g_assert_cmpint (((ParleyStoredMessage *) pending->pdata[0])->seq, ==, seqs[0]);
  g_assert_cmpint (((ParleyStoredMessage *) pending->pdata[1])->seq, ==, seqs[2]);
  g_assert_cmpstr (((ParleyStoredMessage *) pending->pdata[1])->sender_id, ==, a);
  g_assert_cmpstr (((ParleyStoredMessage *) pending->pdata[1])->recipient_id, ==, b);
  g_clear_pointer (&pending, g_ptr_array_unref);
  pending = parley_store_pending_for (f->store, b, seqs[0], 1);
  g_assert_cmpuint (pending->len, ==, 1);
  g_assert_cmpint (((ParleyStoredMessage *) pending->pdata[0])->seq, ==, seqs[2]);
  g_clear_pointer (&pending, g_ptr_array_unref);
  pending = parley_store_pending_for (f->store, a, 0, 100);
  g_assert_cmpuint (pending->len, ==, 0);

  /* The resend of a delivered message says so, of a pending one not. */
  parley_store_submit (f->store, message_op (a, b, "m1", "x", 9));
  parley_store_submit (f->store, message_op (a, b, "m2", "x", 9));
  collector_wait (&f->c, 6);
  g_assert_true (collector_get (&f->c, 4)->duplicate);
  g_assert_true (collector_get (&f->c, 4)->delivered);
  g_assert_true (collector_get (&f->c, 5)->duplicate);
  g_assert_false (collector_get (&f->c, 5)->delivered);
}

static void
write_database (const char *path,
                const char *sql)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
}

static void
test_schema_version (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("parley-store-XXXXXX", &error);
  g_autofree char *old_path = g_build_filename (dir, "old.db", NULL);
  g_autofree char *new_path = g_build_filename (dir, "new.db", NULL);
  g_autofree char *junk_path = g_build_filename (dir, "junk.db", NULL);
  ParleyStore *store;

  g_assert_no_error (error);

  /* A database of the first schema, which had no version. */
  write_database (old_path, "CREATE TABLE users (id TEXT PRIMARY KEY NOT NULL,"
                            " username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,"
                            " created INTEGER NOT NULL);"
                            "INSERT INTO users VALUES ('0123', 'alice', 'x', 0);");
  store = parley_store_open (old_path, NULL, NULL, &error);
  g_assert_null (store);
  g_assert_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "schema version 0"));
  g_clear_error (&error);

  /* One from a newer Parley. */
  write_database (new_path, "CREATE TABLE t (x); PRAGMA user_version = 999;");
  store = parley_store_open (new_path, NULL, NULL, &error);
  g_assert_null (store);
  g_assert_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "schema version 999"));
  g_clear_error (&error);

  /* Not a database at all. */
  g_assert_true (g_file_set_contents (junk_path, "This is not an SQLite database, not at all.",
                                      -1, NULL));
  store = parley_store_open (junk_path, NULL, NULL, &error);
  g_assert_null (store);
  g_assert_error (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_FAILED);
  g_clear_error (&error);

  /* A fresh database gets the current version and opens again. */
  g_unlink (new_path);
  store = parley_store_open (new_path, NULL, NULL, &error);
  g_assert_no_error (error);
  parley_store_close (store);
  store = parley_store_open (new_path, NULL, NULL, &error);
  g_assert_no_error (error);
  parley_store_close (store);

  for (const char * const *p = (const char *[]) { old_path, new_path, junk_path, NULL }; *p; p++)
    remove_database (*p);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* What the crash test expects the store to hold, kept independently of it. */
#define MODEL_USERS 4

typedef struct {
  gint64 seq;
  guint from;
  guint to;
  char *id;
  char *content;
  gint64 timestamp;
  gboolean delivered;
} ModelMessage;

typedef struct {
  Fixture *f;
  char *users[MODEL_USERS];
  GPtrArray *messages;    /* ModelMessage *, in seq order */
  guint next_id;
  guint checked_ops;      /* ops of the collector already looked at */
} Model;

static void
model_message_free (ModelMessage *m)
{
  g_free (m->id);
  g_free (m->content);
  g_free (m);
}

/* Submits @n new messages between pseudo-random users, and waits for them. */
static void
model_send (Model *model,
            guint  n)
{
  Collector *c = &model->f->c;
  guint first = model->checked_ops;

  for (guint i = 0; i < n; i++) {
    ModelMessage *m = g_new0 (ModelMessage, 1);
    guint k = model->next_id++;

    m->from = k % MODEL_USERS;
    m->to = (k * 7 + k / MODEL_USERS) % MODEL_USERS;
    m->id = g_strdup_printf ("%08x-m%u", g_str_hash (model->users[m->from]) ^ k, k);
    m->content = g_strdup_printf ("text %u", k);
    m->timestamp = 1700000000000 + k;
    parley_store_submit (model->f->store, message_op (model->users[m->from],
                                                      model->users[m->to], m->id,
                                                      m->content, m->timestamp));
    g_ptr_array_add (model->messages, m);
  }
  collector_wait (c, first + n);
  for (guint i = 0; i < n; i++) {
    ParleyStoreOp *op = collector_get (c, first + i);
    ModelMessage *m = g_ptr_array_index (model->messages, model->messages->len - n + i);

    g_assert_no_error (op->error);
    g_assert_false (op->duplicate);
    m->seq = op->seq;
  }
  model->checked_ops = first + n;
}

/* Acknowledges every @stride-th message (twice, as two devices would) and
 * checks which receipt delivered. */
static void
model_receive (Model *model,
               guint  stride,
               guint  offset)
{
  Collector *c = &model->f->c;
  g_autoptr(GPtrArray) targets = g_ptr_array_new ();
  guint first = model->checked_ops;

  for (guint i = offset; i < model->messages->len; i += stride) {
    ModelMessage *m = g_ptr_array_index (model->messages, i);

    parley_store_submit (model->f->store, received_op (model->users[m->to], m->seq));
    parley_store_submit (model->f->store, received_op (model->users[m->to], m->seq));
    g_ptr_array_add (targets, m);
  }
  collector_wait (c, first + 2 * targets->len);
  for (guint i = 0; i < targets->len; i++) {
    ModelMessage *m = g_ptr_array_index (targets, i);
    ParleyStoreOp *op1 = collector_get (c, first + 2 * i);
    ParleyStoreOp *op2 = collector_get (c, first + 2 * i + 1);

    g_assert_no_error (op1->error);
    g_assert_no_error (op2->error);
    g_assert_cmpint (op1->delivered, ==, !m->delivered);
    g_assert_false (op2->delivered);
    g_assert_cmpstr (op1->orig_sender, ==, model->users[m->from]);
    g_assert_cmpstr (op1->orig_id, ==, m->id);
    g_assert_cmpstr (op2->orig_id, ==, m->id);
    m->delivered = TRUE;
  }
  model->checked_ops = first + 2 * targets->len;
}

/* Resends every message and checks the answers; a receipt from a user other
 * than the recipient must fail. */
static void
model_check_resends (Model *model)
{
  Collector *c = &model->f->c;
  guint first = model->checked_ops;
  guint n = model->messages->len;

  for (guint i = 0; i < n; i++) {
    ModelMessage *m = g_ptr_array_index (model->messages, i);

    parley_store_submit (model->f->store, message_op (model->users[m->from],
                                                      model->users[m->to], m->id,
                                                      "changed", 1));
    parley_store_submit (model->f->store,
                         received_op (model->users[(m->to + 1) % MODEL_USERS], m->seq));
  }
  collector_wait (c, first + 2 * n);
  for (guint i = 0; i < n; i++) {
    ModelMessage *m = g_ptr_array_index (model->messages, i);
    ParleyStoreOp *op = collector_get (c, first + 2 * i);
    ParleyStoreOp *stranger = collector_get (c, first + 2 * i + 1);

    g_assert_no_error (op->error);
    g_assert_true (op->duplicate);
    g_assert_cmpint (op->seq, ==, m->seq);
    g_assert_cmpint (op->timestamp, ==, m->timestamp);
    g_assert_cmpint (op->delivered, ==, m->delivered);
    g_assert_error (stranger->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND);
  }
  model->checked_ops = first + 2 * n;
}

static void
assert_message_is (ParleyStoredMessage *got,
                   Model               *model,
                   ModelMessage        *m)
{
  g_assert_cmpint (got->seq, ==, m->seq);
  g_assert_cmpstr (got->id, ==, m->id);
  g_assert_cmpstr (got->sender_id, ==, model->users[m->from]);
  g_assert_cmpstr (got->recipient_id, ==, model->users[m->to]);
  g_assert_cmpint (got->timestamp, ==, m->timestamp);
  g_assert_cmpint (strlen (got->content), ==, strlen (m->content) + 2);
  g_assert_cmpint (strncmp (got->content + 1, m->content, strlen (m->content)), ==, 0);
}

/* Checks every query for every user against the model, whole and paged. */
static void
model_check_queries (Model *model)
{
  ParleyStore *store = model->f->store;

  for (guint u = 0; u < MODEL_USERS; u++) {
    g_autoptr(GPtrArray) expect_pending = g_ptr_array_new ();
    g_autoptr(GPtrArray) expect_history = g_ptr_array_new ();
    g_autoptr(GPtrArray) got = NULL;
    gint64 latest = 0;

    for (guint i = 0; i < model->messages->len; i++) {
      ModelMessage *m = g_ptr_array_index (model->messages, i);

      if (m->to == u && !m->delivered)
        g_ptr_array_add (expect_pending, m);
      if (m->to == u || m->from == u) {
        g_ptr_array_add (expect_history, m);
        latest = m->seq;
      }
    }

    got = parley_store_pending_for (store, model->users[u], 0, 10000);
    g_assert_cmpuint (got->len, ==, expect_pending->len);
    for (guint i = 0; i < got->len; i++)
      assert_message_is (got->pdata[i], model, expect_pending->pdata[i]);
    g_clear_pointer (&got, g_ptr_array_unref);

    /* Pages of three, from every starting point. */
    for (guint start = 0; start < expect_pending->len; start++) {
      gint64 after = start ? ((ModelMessage *) expect_pending->pdata[start - 1])->seq : 0;

      got = parley_store_pending_for (store, model->users[u], after, 3);
      g_assert_cmpuint (got->len, ==, MIN (3, expect_pending->len - start));
      for (guint i = 0; i < got->len; i++)
        assert_message_is (got->pdata[i], model, expect_pending->pdata[start + i]);
      g_clear_pointer (&got, g_ptr_array_unref);
    }

    got = parley_store_history_since (store, model->users[u], 0, 10000);
    g_assert_cmpuint (got->len, ==, expect_history->len);
    for (guint i = 0; i < got->len; i++)
      assert_message_is (got->pdata[i], model, expect_history->pdata[i]);
    g_clear_pointer (&got, g_ptr_array_unref);

    for (guint start = 0; start < expect_history->len; start += 2) {
      gint64 since = start ? ((ModelMessage *) expect_history->pdata[start - 1])->seq : 0;

      got = parley_store_history_since (store, model->users[u], since, 4);
      g_assert_cmpuint (got->len, ==, MIN (4, expect_history->len - start));
      for (guint i = 0; i < got->len; i++)
        assert_message_is (got->pdata[i], model, expect_history->pdata[start + i]);
      g_clear_pointer (&got, g_ptr_array_unref);
    }

    g_assert_cmpint (parley_store_latest_seq_for (store, model->users[u]), ==, latest);
  }
}

static void
model_check_all (Model *model)
{
  model_check_queries (model);
  model_check_resends (model);
  model_check_queries (model);
}

/* The store is closed while the indexer is paused, as if the process died
 * before indexing: whatever part of the log the index lacks is read back
 * into the tail on reopening, and every query, resend and receipt answers as
 * before, whether the data is indexed, in the tail or split between them. */
static void
test_unindexed_survive_reopen (Fixture       *f,
                               gconstpointer  data)
{
  Model model = { f, { NULL }, g_ptr_array_new_with_free_func ((GDestroyNotify) model_message_free),
                  0, 0 };
  g_autofree char *index_path = g_strconcat (f->path, "-index", NULL);

  for (guint u = 0; u < MODEL_USERS; u++) {
    g_autofree char *name = g_strdup_printf ("user%u", u);

    model.users[u] = create_user (f, name);
  }

  /* Some messages and receipts indexed... */
  model_send (&model, 40);
  model_receive (&model, 3, 0);
  g_assert_true (parley_store_flush_index (f->store));
  model_check_queries (&model);

  /* ...and more that are not: new messages, receipts for indexed ones and
   * for new ones. */
  parley_store_pause_indexer (f->store, TRUE);
  model_send (&model, 40);
  model_receive (&model, 5, 1);
  model_check_all (&model);

  close_store (f);
  open_store (f);
  parley_store_pause_indexer (f->store, TRUE);
  model_check_all (&model);
  model_send (&model, 10);
  model_receive (&model, 7, 2);
  model_check_all (&model);

  /* Indexing everything changes no answer. */
  parley_store_pause_indexer (f->store, FALSE);
  g_assert_true (parley_store_flush_index (f->store));
  model_check_all (&model);
  close_store (f);

  /* A missing index is rebuilt from the log. */
  for (const char * const *s = (const char *[]) { "", "-wal", "-shm", NULL }; *s; s++) {
    g_autofree char *file = g_strconcat (index_path, *s, NULL);

    g_unlink (file);
  }
  open_store (f);
  model_check_all (&model);
  close_store (f);

  /* So is a damaged one. */
  g_assert_true (g_file_set_contents (index_path, "This is not an index at all, not at all.",
                                      -1, NULL));
  open_store (f);
  model_check_all (&model);
  g_assert_true (parley_store_flush_index (f->store));
  model_check_queries (&model);

  for (guint u = 0; u < MODEL_USERS; u++)
    g_free (model.users[u]);
  g_ptr_array_unref (model.messages);
}

/* Submits each of @ids once more from @from and checks that it is answered
 * with its original seq @seqs[i] and timestamp (1) and never stored again. */
static void
check_resends_of (Fixture     *f,
                  const char  *from,
                  const char  *to,
                  GPtrArray   *ids,
                  gint64      *seqs)
{
  guint base = f->c.ops->len;

  for (guint i = 0; i < ids->len; i++)
    parley_store_submit (f->store, message_op (from, to, ids->pdata[i], "again", 2));
  collector_wait (&f->c, base + ids->len);
  for (guint i = 0; i < ids->len; i++) {
    ParleyStoreOp *op = collector_get (&f->c, base + i);

    g_assert_no_error (op->error);
    g_assert_true (op->duplicate);
    g_assert_cmpint (op->seq, ==, seqs[i]);
    g_assert_cmpint (op->timestamp, ==, 1);
  }
}

/* The same for the @n messages "d<i>". */
static void
check_resends (Fixture    *f,
               const char *from,
               const char *to,
               guint       n,
               gint64     *seqs)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (ids, g_strdup_printf ("d%u", i));
  check_resends_of (f, from, to, ids, seqs);
}

/* Resends of indexed messages must be found however many there are: the
 * in-memory filter that spares fresh ids a look-up in the index grows as
 * the index does and is rebuilt on opening, and it must never lose a key. */
static void
test_dedup_many_indexed (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  /* Enough for the filter to grow past its smallest size twice. */
  const guint n = 40000;
  g_autofree gint64 *seqs = g_new (gint64, n);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);

  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("d%u", i);

    parley_store_submit (f->store, message_op (u1, u2, id, "first", 1));
    /* Index in several steps, so that the filter grows while in use. */
    if (i % 10000 == 9999) {
      collector_wait (&f->c, i + 1);
      g_assert_true (parley_store_flush_index (f->store));
    }
  }
  collector_wait (&f->c, n);
  for (guint i = 0; i < n; i++) {
    ParleyStoreOp *op = collector_get (&f->c, i);

    g_assert_no_error (op->error);
    g_assert_false (op->duplicate);
    seqs[i] = op->seq;
    g_assert_false (g_hash_table_contains (seen, &seqs[i]));
    g_hash_table_add (seen, &seqs[i]);
  }
  g_assert_true (parley_store_flush_index (f->store));
  check_resends (f, u1, u2, n, seqs);

  /* The same ids from another sender are other messages. */
  parley_store_submit (f->store, message_op (u2, u1, "d0", "other", 3));
  collector_wait (&f->c, 2 * n + 1);
  g_assert_false (collector_get (&f->c, 2 * n)->duplicate);
  g_assert_cmpint (collector_get (&f->c, 2 * n)->seq, >, seqs[n - 1]);

  close_store (f);
  g_ptr_array_set_size (f->c.ops, 0);
  open_store (f);
  check_resends (f, u1, u2, n, seqs);
}

/* Time-ordered ids (UUIDv7, what Parley clients send) are keyed by their
 * time in the index, so many of them share a key: every one is still its
 * own message, and every resend finds its original, in the tail, in the
 * index, after reopening, and after an index of the previous version (whose
 * keys were hashes) was rebuilt. */
static void
test_dedup_time_ordered_ids (Fixture       *f,
                             gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  g_autofree char *index_path = g_strconcat (f->path, "-index", NULL);
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  const guint n = 600;
  g_autofree gint64 *seqs = g_new (gint64, n);
  gint64 key, first_key = 0;

  for (guint i = 0; i < n; i++) {
    char id[PARLEY_UUID7_LEN + 1];

    /* The first half all in one millisecond with the same key; the rest
     * spread over time. */
    if (i < n / 2)
      parley_uuid7_format (id, 1700000000000, 5, i);
    else
      parley_uuid7_format (id, 1700000000000 + i, (guint16) i, G_GUINT64_CONSTANT (7) << 40 | i);
    g_assert_true (parley_uuid7_key (id, &key));
    if (i == 0)
      first_key = key;
    g_assert_true (i >= n / 2 || key == first_key);
    g_ptr_array_add (ids, g_strdup (id));
    parley_store_submit (f->store, message_op (u1, u2, id, "first", 1));
  }
  collector_wait (&f->c, n);
  for (guint i = 0; i < n; i++) {
    ParleyStoreOp *op = collector_get (&f->c, i);

    g_assert_no_error (op->error);
    g_assert_false (op->duplicate);
    seqs[i] = op->seq;
    g_assert_false (g_hash_table_contains (seen, &seqs[i]));
    g_hash_table_add (seen, &seqs[i]);
  }

  /* From the tail, then from the index. */
  check_resends_of (f, u1, u2, ids, seqs);
  g_assert_true (parley_store_flush_index (f->store));
  check_resends_of (f, u1, u2, ids, seqs);

  close_store (f);
  g_ptr_array_set_size (f->c.ops, 0);
  open_store (f);
  check_resends_of (f, u1, u2, ids, seqs);
  close_store (f);

  /* An index made by the previous version is rebuilt, not misread: this
   * one, labelled so, has lost its keys, which only a rebuild brings back. */
  write_database (index_path, "DELETE FROM dedup; PRAGMA user_version = 1;");
  g_ptr_array_set_size (f->c.ops, 0);
  open_store (f);
  check_resends_of (f, u1, u2, ids, seqs);
  g_assert_true (parley_store_flush_index (f->store));
  check_resends_of (f, u1, u2, ids, seqs);
}

/* Checks that exactly the messages @seqs (to @user, in seq order) that are
 * not in @delivered are pending for @user. */
static void
check_pending (Fixture      *f,
               const char   *user,
               const gint64 *seqs,
               guint         n,
               GHashTable   *delivered)
{
  g_autoptr(GPtrArray) pending = parley_store_pending_for (f->store, user, 0, n + 1);
  guint j = 0;

  for (guint i = 0; i < n; i++) {
    if (g_hash_table_contains (delivered, &seqs[i]))
      continue;
    g_assert_cmpuint (j, <, pending->len);
    g_assert_cmpint (((ParleyStoredMessage *) pending->pdata[j])->seq, ==, seqs[i]);
    j++;
  }
  g_assert_cmpuint (j, ==, pending->len);
}

/* Closes the store and opens it again, then checks its pending messages as
 * check_pending() does. */
static void
check_pending_after_reopen (Fixture      *f,
                            const char   *user,
                            const gint64 *seqs,
                            guint         n,
                            GHashTable   *delivered)
{
  close_store (f);
  g_ptr_array_set_size (f->c.ops, 0);
  open_store (f);
  check_pending (f, user, seqs, n, delivered);
}

/* Stores @n messages @text from @from to @to with ids PREFIX0, PREFIX1, ...
 * and fills @seqs with their seqs. */
static void
store_messages (Fixture    *f,
                const char *from,
                const char *to,
                const char *prefix,
                const char *text,
                guint       n,
                gint64     *seqs)
{
  guint base = f->c.ops->len;

  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("%s%u", prefix, i);

    parley_store_submit (f->store, message_op (from, to, id, text, 1));
  }
  collector_wait (&f->c, base + n);
  for (guint i = 0; i < n; i++) {
    ParleyStoreOp *op = collector_get (&f->c, base + i);

    g_assert_no_error (op->error);
    seqs[i] = op->seq;
  }
}

/* Stores @user's receipt for the message @seq, waits for it and adds @seq
 * to @delivered. */
static void
store_receipt (Fixture    *f,
               const char *user,
               gint64     *seq,
               GHashTable *delivered)
{
  guint n = f->c.ops->len + 1;

  parley_store_submit (f->store, received_op (user, *seq));
  g_hash_table_add (delivered, seq);
  collector_wait (&f->c, n);
  g_assert_no_error (collector_get (&f->c, n - 1)->error);
}

/* A backlog larger than one index transaction is indexed in several, and a
 * receipt never goes into the index before its message: the receipt of a
 * message beyond the first transaction, committed before receipts of
 * messages within it, must leave every delivery state right. */
static void
test_index_large_backlog (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  /* Index transactions take 20,000 messages: three of them here. */
  const guint n = 45000;
  const guint receipts[] = { 44000, 100, 20000, 19999, 0, 30000, 44999 };
  g_autofree gint64 *seqs = g_new (gint64, n);
  g_autoptr(GHashTable) delivered = g_hash_table_new (g_int64_hash, g_int64_equal);

  parley_store_pause_indexer (f->store, TRUE);
  store_messages (f, u1, u2, "b", "backlog", n, seqs);
  for (guint i = 0; i < G_N_ELEMENTS (receipts); i++)
    store_receipt (f, u2, &seqs[receipts[i]], delivered);
  check_pending (f, u2, seqs, n, delivered);

  parley_store_pause_indexer (f->store, FALSE);
  g_assert_true (parley_store_flush_index (f->store));
  check_pending (f, u2, seqs, n, delivered);

  check_pending_after_reopen (f, u2, seqs, n, delivered);
}

/* The writer keeps committing while the indexer works through a backlog:
 * the writer adds to the tail's new generation (sealing it when the indexer
 * asks between two of its transactions) while the indexer indexes the old
 * one and lets it go, freeing it without the lock (the backlog sits just
 * below a power of two, so that the appends outgrow the new generation's
 * arrays meanwhile). Receipts for and resends of backlog messages, made
 * while their entries are in the old generation, indexed or not, or gone
 * from the tail, and everything after, answer exactly. */
static void
test_index_drop_while_writing (Fixture       *f,
                               gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  enum { BACKLOG = 60000, ROUNDS = 60, PER_ROUND = 500, N = BACKLOG + ROUNDS * PER_ROUND };
  g_autofree gint64 *seqs = g_new (gint64, N);
  g_autoptr(GHashTable) delivered = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GPtrArray) history = NULL;
  guint done = BACKLOG, next = BACKLOG;

  parley_store_pause_indexer (f->store, TRUE);
  store_messages (f, u1, u2, "w", "backlog", BACKLOG, seqs);
  parley_store_pause_indexer (f->store, FALSE);

  for (guint round = 0; round < ROUNDS; round++) {
    guint submitted = 0;

    /* New messages, each with a receipt for a backlog message and every
     * fourth with a resend of one. */
    for (guint i = 0; i < PER_ROUND; i++, next++) {
      g_autofree char *id = g_strdup_printf ("w%u", next);
      guint old = (next * 7) % BACKLOG;

      parley_store_submit (f->store, message_op (u1, u2, id, "more", 2));
      submitted++;
      if (!g_hash_table_contains (delivered, &seqs[old])) {
        parley_store_submit (f->store, received_op (u2, seqs[old]));
        g_hash_table_add (delivered, &seqs[old]);
        submitted++;
      }
      if (next % 4 == 0) {
        g_autofree char *resent = g_strdup_printf ("w%u", old);

        parley_store_submit (f->store, message_op (u1, u2, resent, "backlog", 1));
        submitted++;
      }
    }
    collector_wait (&f->c, done + submitted);
    for (guint i = 0; i < submitted; i++, done++) {
      ParleyStoreOp *op = collector_get (&f->c, done);

      g_assert_no_error (op->error);
      if (op->kind == PARLEY_STORE_OP_RECEIVED) {
        g_assert_true (op->delivered);
        g_assert_cmpstr (op->orig_sender, ==, u1);
      } else if (op->duplicate) {
        guint old;

        g_assert_true (sscanf (op->message_id, "w%u", &old) == 1 && old < BACKLOG);
        g_assert_cmpint (op->seq, ==, seqs[old]);
      } else {
        guint index;

        g_assert_true (sscanf (op->message_id, "w%u", &index) == 1);
        g_assert_cmpuint (index, >=, BACKLOG);
        g_assert_cmpuint (index, <, N);
        g_assert_cmpint (op->seq, >, seqs[index - 1]);
        seqs[index] = op->seq;
      }
    }
  }
  g_assert_cmpuint (next, ==, N);

  check_pending (f, u2, seqs, N, delivered);
  g_assert_true (parley_store_flush_index (f->store));
  check_pending (f, u2, seqs, N, delivered);
  history = parley_store_history_since (f->store, u2, 0, N + 1);
  g_assert_cmpuint (history->len, ==, N);
}

static gint64
file_size (const char *path)
{
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (gint64) st.st_size : -1;
}

/* The checkpoint sequence number in the header of the WAL at @path, which
 * goes up by one at every restart of the WAL. */
static guint32
wal_checkpoint_sequence (const char *path)
{
  g_autofree guint8 *contents = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, (char **) &contents, &len, NULL));
  g_assert_cmpuint (len, >=, 32);
  return (guint32) contents[12] << 24 | (guint32) contents[13] << 16 |
         (guint32) contents[14] << 8 | contents[15];
}

/* The log's checkpoints run in two phases: passes on the checkpointer
 * thread while the writer goes on committing, until little is left, then
 * the writer finishes between two batches and its next transaction
 * restarts the WAL. With a checkpoint every 64 frames and a commit every
 * few messages, the WAL restarts again and again (its header counts the
 * restarts), and the log loses nothing: read at once, from a copy of its
 * files taken between two commits while the checkpointer may be copying
 * (what kill -9 leaves behind), and after a clean restart. */
static void
test_log_checkpoints (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  const char *suffixes[] = { "", "-wal" };
  const guint rounds = 6, per_round = 600, group = 6;
  g_autofree gint64 *seqs = g_new (gint64, rounds * per_round);
  g_autofree char *wal = g_strconcat (f->path, "-wal", NULL);
  g_autofree char *copy = g_strconcat (f->path, "-copy", NULL);
  g_autoptr(GHashTable) delivered = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GHashTable) delivered_at_copy = NULL;
  guint copied = 0;
  guint32 first_sequence;

  parley_store_set_checkpoint_frames (f->store, 64);
  first_sequence = wal_checkpoint_sequence (wal);
  for (guint round = 0; round < rounds; round++) {
    for (guint i = 0; i < per_round; i += group) {
      g_autofree char *prefix = g_strdup_printf ("l%u-%u-", round, i);
      gint64 *group_seqs = &seqs[round * per_round + i];

      store_messages (f, u1, u2, prefix, "checkpointed", group, group_seqs);
      if (i % (7 * group) == 0)
        store_receipt (f, u2, &group_seqs[0], delivered);
    }
    if (round == rounds / 2) {
      /* Every op is acked: the writer is between two commits. */
      copy_database (f->path, copy, suffixes, G_N_ELEMENTS (suffixes));
      copied = (round + 1) * per_round;
      delivered_at_copy = g_hash_table_new (g_int64_hash, g_int64_equal);
      for (guint i = 0; i < copied; i++) {
        if (g_hash_table_contains (delivered, &seqs[i]))
          g_hash_table_add (delivered_at_copy, &seqs[i]);
      }
    }
  }
  g_test_message ("The WAL restarted %u times", wal_checkpoint_sequence (wal) - first_sequence);
  g_assert_cmpuint (wal_checkpoint_sequence (wal) - first_sequence, >=, 5);
  check_pending (f, u2, seqs, rounds * per_round, delivered);

  check_pending_after_reopen (f, u2, seqs, rounds * per_round, delivered);

  /* The copy: the index is rebuilt from the log. */
  open_copy (f, copy, suffixes, G_N_ELEMENTS (suffixes));
  check_pending (f, u2, seqs, copied, delivered_at_copy);
}

/* The indexer checkpoints the index itself, between its transactions and
 * with its own paced write-back and syncs (indexer_write_back()). With a
 * checkpoint after every transaction, the index's WAL restarts instead of
 * growing, and the index answers exactly: at once, from a copy of the files
 * taken while the store runs (what kill -9 leaves behind), and after a
 * clean restart. */
static void
test_index_checkpoints (Fixture       *f,
                        gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  const char *suffixes[] = { "", "-wal", "-index", "-index-wal" };
  const guint rounds = 6, per_round = 3000;
  g_autofree gint64 *seqs = g_new (gint64, rounds * per_round);
  g_autofree char *wal = g_strconcat (f->path, "-index-wal", NULL);
  g_autofree char *copy = g_strconcat (f->path, "-copy", NULL);
  g_autoptr(GHashTable) delivered = g_hash_table_new (g_int64_hash, g_int64_equal);
  gint64 first_size = 0, size = 0;

  parley_store_set_index_checkpoint_frames (f->store, 1);
  for (guint round = 0; round < rounds; round++) {
    g_autofree char *prefix = g_strdup_printf ("c%u-", round);

    store_messages (f, u1, u2, prefix, "checkpointed", per_round, &seqs[round * per_round]);
    for (guint i = 0; i < per_round; i += 7)
      store_receipt (f, u2, &seqs[round * per_round + i], delivered);
    g_assert_true (parley_store_flush_index (f->store));
    size = file_size (wal);
    g_assert_cmpint (size, >, 0);
    if (round == 0)
      first_size = size;
  }
  /* It grows a little with the b-trees (here to about 2.5 times the first
   * round's size); without the checkpoints it holds all six rounds, about
   * ten times. */
  g_assert_cmpint (size, <, 4 * first_size);
  check_pending (f, u2, seqs, rounds * per_round, delivered);

  copy_database (f->path, copy, suffixes, G_N_ELEMENTS (suffixes));
  check_pending_after_reopen (f, u2, seqs, rounds * per_round, delivered);

  open_copy (f, copy, suffixes, G_N_ELEMENTS (suffixes));
  check_pending (f, u2, seqs, rounds * per_round, delivered);
}

/* Checks that @user's history and pending messages are exactly the
 * messages @stored (seqs, in order, all from @user to @peer) of which those
 * with @delivered unset are pending. */
static void
check_stored (Fixture    *f,
              const char *user,
              const char *peer,
              GArray     *stored,
              GHashTable *delivered)
{
  g_autoptr(GPtrArray) history = parley_store_history_since (f->store, user, 0, stored->len + 1);

  g_assert_cmpuint (history->len, ==, stored->len);
  for (guint i = 0; i < stored->len; i++)
    g_assert_cmpint (((ParleyStoredMessage *) history->pdata[i])->seq, ==,
                     g_array_index (stored, gint64, i));
  check_pending (f, peer, (const gint64 *) stored->data, stored->len, delivered);
}

/* A transaction that fails is rolled back whole: every op of its batch gets
 * an error, and what the batch had put into the in-memory tail (messages,
 * receipts, their per-user lists) comes out again, so that every later
 * query and transaction sees only what was committed. The failure is real:
 * a trigger that aborts the insert of a message whose content is "fail". */
static void
test_failed_batch_rolled_back (Fixture       *f,
                               gconstpointer  data)
{
  g_autofree char *u1 = create_user (f, "user1");
  g_autofree char *u2 = create_user (f, "user2");
  g_autoptr(GArray) stored = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GHashTable) delivered = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                           NULL);
  gboolean shared = FALSE;
  guint next = 0;

  parley_store_pause_indexer (f->store, TRUE);
  write_database (f->path, "CREATE TRIGGER fail_marked BEFORE INSERT ON messages"
                  " WHEN NEW.content = '\"fail\"' BEGIN SELECT RAISE (ABORT, 'injected'); END;");

  /* Until a failed batch held other ops too (the writer batches whatever
   * was queued while it committed: nearly always at once). */
  for (guint round = 0; round < 20 && !shared; round++) {
    guint base = f->c.ops->len, n = 0, fail_index;
    g_autoptr(GArray) undelivered = g_array_new (FALSE, FALSE, sizeof (gint64));

    for (guint i = 0; i < stored->len; i++)
      if (!g_hash_table_contains (delivered, &g_array_index (stored, gint64, i)))
        g_array_append_val (undelivered, g_array_index (stored, gint64, i));
    for (guint i = 0; i < 30; i++, n++) {
      g_autofree char *id = g_strdup_printf ("m%u", next++);

      parley_store_submit (f->store, message_op (u1, u2, id, "fine", 1));
    }
    for (guint i = 0; i < MIN (undelivered->len, 10); i++, n++)
      parley_store_submit (f->store, received_op (u2, g_array_index (undelivered, gint64, i)));
    fail_index = base + n++;
    g_test_expect_message ("parley-store", G_LOG_LEVEL_WARNING,
                           "Batch of * operations failed: injected");
    parley_store_submit (f->store, message_op (u1, u2, "doomed", "fail", 1));
    for (guint i = 0; i < 30; i++, n++) {
      g_autofree char *id = g_strdup_printf ("m%u", next++);

      parley_store_submit (f->store, message_op (u1, u2, id, "fine", 1));
    }
    collector_wait (&f->c, base + n);
    g_test_assert_expected_messages ();

    for (guint i = base; i < base + n; i++) {
      ParleyStoreOp *op = collector_get (&f->c, i);

      if (op->error != NULL) {
        g_assert_true (g_str_has_prefix (op->error->message, "Transaction failed"));
        shared |= i != fail_index;
        continue;
      }
      g_assert_cmpuint (i, !=, fail_index);
      if (op->kind == PARLEY_STORE_OP_MESSAGE) {
        g_assert_true (stored->len == 0 ||
                       op->seq > g_array_index (stored, gint64, stored->len - 1));
        g_array_append_val (stored, op->seq);
      } else if (op->delivered) {
        gint64 *seq = g_new (gint64, 1);

        *seq = op->seq;
        g_hash_table_add (delivered, seq);
      }
    }
    check_stored (f, u1, u2, stored, delivered);
  }
  g_assert_true (shared);

  /* Without the trigger, everything works on from there: with the index
   * too, and after reopening. */
  write_database (f->path, "DROP TRIGGER fail_marked;");
  parley_store_submit (f->store, message_op (u1, u2, "after", "fine", 1));
  collector_wait (&f->c, f->c.ops->len + 1);
  g_assert_no_error (collector_get (&f->c, f->c.ops->len - 1)->error);
  g_array_append_val (stored, collector_get (&f->c, f->c.ops->len - 1)->seq);
  check_stored (f, u1, u2, stored, delivered);
  parley_store_pause_indexer (f->store, FALSE);
  g_assert_true (parley_store_flush_index (f->store));
  check_stored (f, u1, u2, stored, delivered);
  close_store (f);
  open_store (f);
  check_stored (f, u1, u2, stored, delivered);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/store/users", test_users);
  ADD ("/store/messages-durable", test_messages_durable);
  ADD ("/store/wal-primed-survives-crash", test_wal_primed_survives_crash);
  ADD ("/store/dedup-same-batch", test_dedup_same_batch);
  ADD ("/store/dedup-across-batches-and-receipts", test_dedup_across_batches_and_receipts);
  ADD ("/store/read-markers", test_read_markers);
  ADD ("/store/refresh-tokens", test_refresh_tokens);
  ADD ("/store/concurrent-submitters", test_concurrent_submitters);
  ADD ("/store/unknown-users", test_unknown_users);
  ADD ("/store/pending-survives-reopen", test_pending_survives_reopen);
  ADD ("/store/unindexed-survive-reopen", test_unindexed_survive_reopen);
  ADD ("/store/dedup-many-indexed", test_dedup_many_indexed);
  ADD ("/store/dedup-time-ordered-ids", test_dedup_time_ordered_ids);
  ADD ("/store/index-large-backlog", test_index_large_backlog);
  ADD ("/store/index-drop-while-writing", test_index_drop_while_writing);
  ADD ("/store/failed-batch-rolled-back", test_failed_batch_rolled_back);
  ADD ("/store/index-checkpoints", test_index_checkpoints);
  ADD ("/store/log-checkpoints", test_log_checkpoints);
#undef ADD
  g_test_add_func ("/store/open-failure", test_open_failure);
  g_test_add_func ("/store/schema-version", test_schema_version);

  return g_test_run ();
}
