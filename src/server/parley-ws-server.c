/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-ws"

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "parley-envelope.h"
#include "parley-router.h"
#include "parley-sched.h"
#include "parley-token.h"
#include "parley-ws-frame.h"
#include "parley-ws-server.h"

#define READ_BUFFER_SIZE (64 * 1024)
#define MAX_EVENTS 256
#define MAX_OUTPUT (8 * 1024 * 1024)
/* Stored messages are replayed to a connecting device a little at a time:
 * at most [ws] replay-batch per loop iteration over all devices that replay,
 * a look-up counting as at least REPLAY_QUERY_COST of them (or the whole
 * batch if smaller), so that a device with a long backlog never holds up
 * everyone else's traffic. */
#define REPLAY_QUERY_COST 10
/* `sync` requests are answered the same way, in pages of at most [ws]
 * replay-batch per loop iteration over all connections that asked: a page
 * of 1,000 answered in one go held everyone's traffic up for 3 ms. A
 * connection may have SYNC_MAX_QUEUED requests waiting. */
#define SYNC_LIMIT_MAX 1000
#define SYNC_MAX_QUEUED 4
#define PARLEY_ID_MAX 64
#define POOL_MAX_BUFFERS 1024
#define POOL_MAX_CAPACITY (256 * 1024)

typedef struct _Conn Conn;

struct _Conn {
  int fd;
  guint64 id;
  char *user_id;
  char *sender_members;     /* `"senderId":"…","senderName":"…"` for relayed frames */
  gsize sender_members_len;
  ParleyWsParser parser;

  /* Unconsumed input (an incomplete frame), only while there is some. */
  guint8 *pending;
  gsize pending_len;

  /* Queued output, only while there is some. */
  GByteArray *out;
  gsize out_off;

  gint64 last_rx;           /* monotonic seconds */
  gint64 auth_deadline;     /* monotonic seconds, 0 once authenticated */
  gint64 ping_sent;         /* monotonic seconds of an unanswered keepalive ping */
  double tokens;            /* rate limit bucket */
  gint64 tokens_at;         /* monotonic µs of the last refill */

  /* While the messages stored for the user are replayed (in seq order, a
   * batch per loop iteration), live messages for this device wait in held
   * so that none overtakes a stored one. */
  gboolean replaying;
  gint64 replay_after;      /* seq of the last stored message sent */
  GArray *held;             /* HeldFrame */
  GByteArray *held_data;

  /* The sync requests being answered (SyncJob), oldest first; only while
   * there are some, and then the connection is in the server's syncers. */
  GQueue *syncs;

  guint32 epoll_events;
  gboolean dirty;
  gboolean closing;         /* flush what is queued, then close */
  gboolean dead;
  Conn *next_dirty;
};

typedef struct {
  int fd;
  char *user_id;
} Adoption;

/* A `sync` request being answered. */
typedef struct {
  char *ref;                /* the request's valid id, or NULL */
  gint64 after;             /* seq of the last message sent, at first `since` */
  gint64 remaining;         /* how many more messages it may get */
} SyncJob;

struct _ParleyWsServer {
  const ParleyConfig *config;
  ParleyStore *store;
  ParleyRouter *router;

  int epoll_fd;
  int wake_fd;
  GThread *thread;

  /* Owned by the network thread. */
  GHashTable *conns;        /* id → Conn */
  guint64 next_id;
  Conn *dirty;
  GPtrArray *graveyard;
  guint8 *read_buf;
  GByteArray *scratch;      /* one frame payload being built */
  GPtrArray *buffer_pool;   /* empty output buffers, reused instead of freed */
  gint64 now_us;            /* monotonic time of the current loop iteration */
  gint64 now_s;
  gint64 last_sweep;
  guint authenticated;
  GQueue replays;           /* Conn * that replay stored messages, in turn */
  GQueue syncers;           /* Conn * with sync requests to answer, in turn */

  /* Shared with other threads, under lock. */
  GMutex lock;
  GArray *adoptions;
  GPtrArray *completed;
  gboolean wake_pending;
  gboolean stopping;
  ParleyWsStats stats;
};

static void conn_handle_text (ParleyWsServer *self,
                              Conn           *conn,
                              const char     *text,
                              gsize           len);

/* Output. */

static void
mark_dirty (ParleyWsServer *self,
            Conn           *conn)
{
  if (conn->dirty)
    return;
  conn->dirty = TRUE;
  conn->next_dirty = self->dirty;
  self->dirty = conn;
}

/* Output buffers are pooled: allocating and freeing one per flush made the
 * allocator give memory back to the kernel and fault it in again. */
static GByteArray *
take_buffer (ParleyWsServer *self)
{
  if (self->buffer_pool->len > 0)
    return g_ptr_array_steal_index_fast (self->buffer_pool, self->buffer_pool->len - 1);
  return g_byte_array_sized_new (4096);
}

static void
give_buffer (ParleyWsServer *self,
             GByteArray     *buffer)
{
  /* A GByteArray does not expose its capacity; its length is a fair bound. */
  if (self->buffer_pool->len >= POOL_MAX_BUFFERS || buffer->len > POOL_MAX_CAPACITY) {
    g_byte_array_unref (buffer);
    return;
  }
  g_byte_array_set_size (buffer, 0);
  g_ptr_array_add (self->buffer_pool, buffer);
}

static void
conn_queue_frame (ParleyWsServer *self,
                  Conn           *conn,
                  ParleyWsOpcode  opcode,
                  const void     *payload,
                  gsize           len)
{
  guint8 header[14];
  gsize header_len;

  if (conn->dead || conn->closing)
    return;
  if (conn->out == NULL)
    conn->out = take_buffer (self);
  if (conn->out->len - conn->out_off + len > MAX_OUTPUT) {
    g_debug ("Closing connection %" G_GUINT64_FORMAT ": reader too slow", conn->id);
    conn->closing = TRUE;
    mark_dirty (self, conn);
    return;
  }
  header_len = parley_ws_frame_header (header, opcode, len, TRUE, NULL);
  g_byte_array_append (conn->out, header, header_len);
  if (len > 0)
    g_byte_array_append (conn->out, payload, len);
  self->stats.frames_out++;
  mark_dirty (self, conn);
}

static void
conn_queue_text (ParleyWsServer *self,
                 Conn           *conn,
                 GByteArray     *payload)
{
  conn_queue_frame (self, conn, PARLEY_WS_OP_TEXT, payload->data, payload->len);
}

static void
append_literal (GByteArray *out,
                const char *text)
{
  g_byte_array_append (out, (const guint8 *) text, strlen (text));
}

static void
append_span (GByteArray *out,
             ParleySpan  span)
{
  g_byte_array_append (out, (const guint8 *) span.ptr, span.len);
}

/* Decimal digits by hand: g_snprintf() was a visible share of the
 * network thread's time (several numbers per chat message). */
static void
append_int (GByteArray *out,
            gint64      value)
{
  char buf[24];
  char *p = buf + sizeof buf;
  guint64 v = value < 0 ? -(guint64) value : (guint64) value;

  do {
    *--p = (char) ('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (value < 0)
    *--p = '-';
  g_byte_array_append (out, (const guint8 *) p, (guint) (buf + sizeof buf - p));
}

/* Appends `"key":"value"` for a value known to need no escaping. */
static void
append_member (GByteArray *out,
               const char *key,
               const char *value,
               gssize      value_len)
{
  g_byte_array_append (out, (const guint8 *) "\"", 1);
  append_literal (out, key);
  g_byte_array_append (out, (const guint8 *) "\":\"", 3);
  g_byte_array_append (out, (const guint8 *) value,
                       value_len < 0 ? strlen (value) : (gsize) value_len);
  g_byte_array_append (out, (const guint8 *) "\"", 1);
}

static void
append_ref (GByteArray *out,
            ParleySpan  ref)
{
  append_literal (out, "\"ref\":");
  if (ref.ptr != NULL && parley_id_is_valid (ref.ptr, ref.len)) {
    g_byte_array_append (out, (const guint8 *) "\"", 1);
    append_span (out, ref);
    g_byte_array_append (out, (const guint8 *) "\"", 1);
  } else {
    append_literal (out, "null");
  }
}

static void
conn_send_error (ParleyWsServer *self,
                 Conn           *conn,
                 ParleySpan      ref,
                 const char     *code,
                 const char     *message)
{
  GByteArray *out = self->scratch;

  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"error\",");
  append_ref (out, ref);
  append_literal (out, ",\"code\":\"");
  append_literal (out, code);
  append_literal (out, "\",\"message\":");
  parley_json_append_string (out, message, -1);
  append_literal (out, "}");
  conn_queue_text (self, conn, out);
}

static void
conn_send_ack (ParleyWsServer *self,
               Conn           *conn,
               ParleySpan      ref)
{
  GByteArray *out = self->scratch;

  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"ack\",");
  append_ref (out, ref);
  append_literal (out, "}");
  conn_queue_text (self, conn, out);
}

static void
conn_close (ParleyWsServer *self,
            Conn           *conn,
            guint16         code,
            const char     *reason)
{
  g_autoptr (GByteArray) frame = g_byte_array_new ();

  if (conn->dead || conn->closing)
    return;
  parley_ws_append_close (frame, code, reason, FALSE);
  if (conn->out == NULL)
    conn->out = take_buffer (self);
  g_byte_array_append (conn->out, frame->data, frame->len);
  conn->closing = TRUE;
  mark_dirty (self, conn);
}

static void
conn_set_events (ParleyWsServer *self,
                 Conn           *conn,
                 guint32         events)
{
  struct epoll_event ev = { .events = events, .data.ptr = conn };

  if (conn->epoll_events == events)
    return;
  if (epoll_ctl (self->epoll_fd, EPOLL_CTL_MOD, conn->fd, &ev) == 0)
    conn->epoll_events = events;
}

/* Presence and routing. */

/* A live message frame held back during a replay. @to_user: addressed to
 * the device's user (else a copy of the user's own message). */
typedef struct {
  gint64 seq;
  gboolean to_user;
  guint off;
  guint len;
} HeldFrame;

/* Queues @payload for every online device of the user but @except. @seq:
 * the seq of a message frame (0 for any other frame), which a device that
 * is still replaying stored messages holds back until it is done, so that
 * no live message overtakes a stored one; @to_user as in HeldFrame. */
static void
send_to_devices (ParleyWsServer *self,
                 const char     *user_id,
                 gsize           user_id_len,
                 Conn           *except,
                 GByteArray     *payload,
                 gint64          seq,
                 gboolean        to_user,
                 guint          *n_sent)
{
  const GPtrArray *devices = parley_router_lookup (self->router, user_id, user_id_len);

  if (n_sent)
    *n_sent = 0;
  if (devices == NULL)
    return;
  for (guint i = 0; i < devices->len; i++) {
    Conn *device = g_ptr_array_index (devices, i);

    if (device == except)
      continue;
    if (seq > 0 && device->replaying) {
      HeldFrame h = { seq, to_user, 0, payload->len };

      if (device->held == NULL) {
        device->held = g_array_new (FALSE, FALSE, sizeof (HeldFrame));
        device->held_data = g_byte_array_new ();
      }
      h.off = device->held_data->len;
      g_byte_array_append (device->held_data, payload->data, payload->len);
      g_array_append_val (device->held, h);
    } else {
      conn_queue_text (self, device, payload);
    }
    if (n_sent)
      (*n_sent)++;
  }
}

static void
send_to_user (ParleyWsServer *self,
              const char     *user_id,
              gsize           user_id_len,
              Conn           *except,
              GByteArray     *payload,
              guint          *n_sent)
{
  send_to_devices (self, user_id, user_id_len, except, payload, 0, FALSE, n_sent);
}

static void
append_name (GByteArray *out,
             const char *key,
             const char *username)
{
  if (username == NULL)
    return;
  g_byte_array_append (out, (const guint8 *) ",\"", 2);
  append_literal (out, key);
  g_byte_array_append (out, (const guint8 *) "\":", 2);
  parley_json_append_string (out, username, -1);
}

static void
build_presence (GByteArray *out,
                const char *user_id,
                const char *username,
                gboolean    online)
{
  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"presence\",");
  append_member (out, "userId", user_id, -1);
  append_name (out, "username", username);
  append_literal (out, online ? ",\"state\":\"online\"}" : ",\"state\":\"offline\"}");
}

/* Tells the online contacts of @user_id that it came online or went
 * offline; when @snapshot_to is given, also tells it which contacts are
 * online. */
static void
announce_presence (ParleyWsServer *self,
                   const char     *user_id,
                   gboolean        online,
                   gboolean        notify_contacts,
                   Conn           *snapshot_to)
{
  g_autoptr (GPtrArray) contacts = parley_store_list_contacts (self->store, user_id);
  g_autoptr (GByteArray) about_user = g_byte_array_new ();
  g_autoptr (GByteArray) about_contact = g_byte_array_new ();

  build_presence (about_user, user_id, parley_store_lookup_username (self->store, user_id),
                  online);
  for (guint i = 0; contacts && i < contacts->len; i++) {
    ParleyUserInfo *contact = g_ptr_array_index (contacts, i);
    const GPtrArray *devices = parley_router_lookup (self->router, contact->user_id,
                                                     strlen (contact->user_id));

    if (devices == NULL)
      continue;
    if (notify_contacts)
      send_to_user (self, contact->user_id, strlen (contact->user_id), NULL, about_user, NULL);
    if (snapshot_to) {
      build_presence (about_contact, contact->user_id, contact->username, TRUE);
      conn_queue_text (self, snapshot_to, about_contact);
    }
  }
}

static void
build_message (ParleyWsServer *self,
               GByteArray     *out,
               const char     *id,
               const char     *sender_id,
               const char     *recipient_id,
               const char     *content,
               gsize           content_len,
               gint64          seq,
               gint64          timestamp)
{
  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"message\",");
  append_member (out, "id", id, -1);
  g_byte_array_append (out, (const guint8 *) ",", 1);
  append_member (out, "senderId", sender_id, -1);
  append_name (out, "senderName", parley_store_lookup_username (self->store, sender_id));
  g_byte_array_append (out, (const guint8 *) ",", 1);
  append_member (out, "recipientId", recipient_id, -1);
  append_literal (out, ",\"encryptedContent\":");
  g_byte_array_append (out, (const guint8 *) content, content_len);
  append_literal (out, ",\"seq\":");
  append_int (out, seq);
  append_literal (out, ",\"timestamp\":");
  append_int (out, timestamp);
  append_literal (out, "}");
}

static void
send_stored_messages (ParleyWsServer *self,
                      Conn           *conn,
                      GPtrArray      *messages,
                      guint           limit)
{
  GByteArray *out = self->scratch;

  for (guint i = 0; i < messages->len && i < limit; i++) {
    ParleyStoredMessage *m = g_ptr_array_index (messages, i);

    build_message (self, out, m->id, m->sender_id, m->recipient_id, m->content, strlen (m->content),
                   m->seq, m->timestamp);
    conn_queue_text (self, conn, out);
  }
}

/* Sends what was held back during the replay, except messages to the user
 * that the replay already sent (seq up to replay_after: the stored ones
 * come in seq order, and a message to the user that it did not include was
 * acknowledged by another device meanwhile, so it is the history's now). */
static void
replay_done (ParleyWsServer *self,
             Conn           *conn)
{
  conn->replaying = FALSE;
  for (guint i = 0; conn->held != NULL && i < conn->held->len; i++) {
    HeldFrame *h = &g_array_index (conn->held, HeldFrame, i);

    if (h->to_user && h->seq <= conn->replay_after)
      continue;
    conn_queue_frame (self, conn, PARLEY_WS_OP_TEXT, conn->held_data->data + h->off, h->len);
  }
  g_clear_pointer (&conn->held, g_array_unref);
  g_clear_pointer (&conn->held_data, g_byte_array_unref);
}

/* Sends the next stored messages to the devices that replay them, within
 * [ws] replay-batch, each device in turn. */
static void
replay_step (ParleyWsServer *self)
{
  guint budget = self->config->replay_batch;

  while (budget > 0 && !g_queue_is_empty (&self->replays)) {
    Conn *conn = g_queue_pop_head (&self->replays);
    g_autoptr (GPtrArray) pending = parley_store_pending_for (self->store, conn->user_id,
                                                             conn->replay_after, budget);
    guint n = pending ? pending->len : 0;

    if (n > 0) {
      send_stored_messages (self, conn, pending, n);
      conn->replay_after = ((ParleyStoredMessage *) g_ptr_array_index (pending, n - 1))->seq;
    }
    if (pending == NULL || n < budget) {
      if (pending == NULL)
        g_warning ("Cannot read the stored messages of a connecting device");
      replay_done (self, conn);
    } else {
      g_queue_push_tail (&self->replays, conn);
    }
    budget -= MIN (budget, MAX (n, MIN (REPLAY_QUERY_COST, self->config->replay_batch)));
  }
}

static void
sync_job_free (SyncJob *job)
{
  g_free (job->ref);
  g_free (job);
}

/* Acknowledges the oldest sync request of @conn, which got all it will
 * get, and forgets it. */
static void
sync_job_finish (ParleyWsServer *self,
                 Conn           *conn,
                 gboolean        more)
{
  SyncJob *job = g_queue_pop_head (conn->syncs);
  GByteArray *out = self->scratch;
  ParleySpan ref = { job->ref, job->ref ? (guint32) strlen (job->ref) : 0 };

  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"ack\",");
  append_ref (out, ref);
  append_literal (out, ",\"seq\":");
  append_int (out, job->after);
  append_literal (out, more ? ",\"more\":true}" : ",\"more\":false}");
  conn_queue_text (self, conn, out);
  sync_job_free (job);
}

/* Sends the next part of the oldest sync request of each connection that
 * has some, within [ws] replay-batch, each connection in turn. */
static void
sync_step (ParleyWsServer *self)
{
  guint budget = self->config->replay_batch;

  while (budget > 0 && !g_queue_is_empty (&self->syncers)) {
    Conn *conn = g_queue_pop_head (&self->syncers);
    SyncJob *job = g_queue_peek_head (conn->syncs);
    guint page = (guint) MIN ((gint64) budget, job->remaining);
    g_autoptr (GPtrArray) messages = parley_store_history_since (self->store, conn->user_id,
                                                                 job->after, page + 1);
    guint n = MIN (messages->len, page);
    gboolean more = messages->len > page;

    if (n > 0) {
      send_stored_messages (self, conn, messages, n);
      job->after = ((ParleyStoredMessage *) g_ptr_array_index (messages, n - 1))->seq;
      job->remaining -= n;
    }
    if (!more || job->remaining == 0)
      sync_job_finish (self, conn, more);
    if (g_queue_is_empty (conn->syncs))
      g_clear_pointer (&conn->syncs, g_queue_free);
    else
      g_queue_push_tail (&self->syncers, conn);
    budget -= MIN (budget, MAX (n, MIN (REPLAY_QUERY_COST, self->config->replay_batch)));
  }
}

static void
conn_authenticated (ParleyWsServer *self,
                    Conn           *conn,
                    char           *user_id)
{
  GByteArray *out = self->scratch;
  gboolean first;

  conn->user_id = user_id;
  conn->auth_deadline = 0;
  g_byte_array_set_size (out, 0);
  append_member (out, "senderId", user_id, -1);
  append_name (out, "senderName", parley_store_lookup_username (self->store, user_id));
  conn->sender_members_len = out->len;
  conn->sender_members = g_strndup ((const char *) out->data, out->len);
  self->authenticated++;
  first = parley_router_add (self->router, user_id, conn);
  g_debug ("Connection %" G_GUINT64_FORMAT " is user %s", conn->id, user_id);

  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"hello\",");
  append_member (out, "userId", user_id, -1);
  append_literal (out, ",\"seq\":");
  append_int (out, parley_store_latest_seq_for (self->store, user_id));
  append_literal (out, "}");
  conn_queue_text (self, conn, out);

  /* Everything addressed to the user that no device acknowledged yet, from
   * the next loop iterations on (replay_step()). */
  conn->replaying = TRUE;
  conn->replay_after = 0;
  g_queue_push_tail (&self->replays, conn);

  announce_presence (self, user_id, TRUE, first, conn);
}

/* Connections. */

static void
conn_destroy (ParleyWsServer *self,
              Conn           *conn)
{
  if (conn->dead)
    return;
  conn->dead = TRUE;
  if (conn->replaying) {
    g_queue_remove (&self->replays, conn);
    conn->replaying = FALSE;
  }
  if (conn->syncs != NULL) {
    g_queue_remove (&self->syncers, conn);
    g_queue_free_full (g_steal_pointer (&conn->syncs), (GDestroyNotify) sync_job_free);
  }
  epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
  close (conn->fd);
  g_hash_table_remove (self->conns, &conn->id);
  if (conn->user_id) {
    self->authenticated--;
    if (parley_router_remove (self->router, conn->user_id, conn))
      announce_presence (self, conn->user_id, FALSE, TRUE, NULL);
  }
  g_debug ("Connection %" G_GUINT64_FORMAT " closed", conn->id);
  g_ptr_array_add (self->graveyard, conn);
}

static void
conn_free (Conn *conn)
{
  parley_ws_parser_clear (&conn->parser);
  g_free (conn->pending);
  if (conn->out)
    g_byte_array_unref (conn->out);
  g_free (conn->user_id);
  g_free (conn->sender_members);
  if (conn->held)
    g_array_unref (conn->held);
  if (conn->held_data)
    g_byte_array_unref (conn->held_data);
  g_free (conn);
}

static void
conn_flush (ParleyWsServer *self,
            Conn           *conn)
{
  while (conn->out && conn->out_off < conn->out->len) {
    ssize_t n = send (conn->fd, conn->out->data + conn->out_off, conn->out->len - conn->out_off,
                      MSG_NOSIGNAL | MSG_DONTWAIT);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn_set_events (self, conn, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
        return;
      }
      conn_destroy (self, conn);
      return;
    }
    self->stats.bytes_out += n;
    conn->out_off += n;
  }

  /* Everything went out: give the buffer back while the connection idles. */
  if (conn->out) {
    give_buffer (self, g_steal_pointer (&conn->out));
    conn->out_off = 0;
  }
  if (conn->closing) {
    conn_destroy (self, conn);
    return;
  }
  conn_set_events (self, conn, EPOLLIN | EPOLLRDHUP);
}

static void
flush_dirty (ParleyWsServer *self)
{
  while (self->dirty) {
    Conn *conn = self->dirty;

    self->dirty = conn->next_dirty;
    conn->next_dirty = NULL;
    conn->dirty = FALSE;
    if (!conn->dead)
      conn_flush (self, conn);
  }
}

static gboolean
conn_take_token (ParleyWsServer *self,
                 Conn           *conn)
{
  gint64 now = self->now_us;

  conn->tokens += (now - conn->tokens_at) * (double) self->config->rate_per_second / G_USEC_PER_SEC;
  conn->tokens_at = now;
  if (conn->tokens > self->config->rate_burst)
    conn->tokens = self->config->rate_burst;
  if (conn->tokens < 1.0)
    return FALSE;
  conn->tokens -= 1.0;
  return TRUE;
}

static void
conn_handle_message (ParleyWsServer  *self,
                     Conn            *conn,
                     ParleyWsMessage *msg)
{
  self->stats.frames_in++;
  switch (msg->opcode) {
    case PARLEY_WS_OP_TEXT:
      conn_handle_text (self, conn, (const char *) msg->payload, msg->len);
      break;
    case PARLEY_WS_OP_BINARY: {
      ParleySpan none = { NULL, 0 };

      conn_send_error (self, conn, none, "invalid-json", "Binary frames are not supported");
      break;
    }
    case PARLEY_WS_OP_PING:
      conn_queue_frame (self, conn, PARLEY_WS_OP_PONG, msg->payload, msg->len);
      break;
    case PARLEY_WS_OP_PONG:
      conn->ping_sent = 0;
      break;
    case PARLEY_WS_OP_CLOSE: {
      guint16 code = 1000;

      if (msg->len >= 2)
        code = (msg->payload[0] << 8) | msg->payload[1];
      if (code < 1000 || code == 1005 || code == 1006 || code >= 5000)
        code = 1002;
      conn_close (self, conn, code == 1002 ? 1002 : 1000, "");
      break;
    }
    case PARLEY_WS_OP_CONTINUATION:
    default:
      break;
  }
}

/* Feeds @len bytes at @buf to the parser; returns how many were consumed. */
static gsize
conn_parse (ParleyWsServer *self,
            Conn           *conn,
            guint8         *buf,
            gsize           len)
{
  gsize off = 0;

  while (off < len && !conn->dead && !conn->closing) {
    ParleyWsMessage msg;
    gsize consumed = 0;
    guint16 close_code = 1002;
    ParleyWsResult result = parley_ws_parser_feed (&conn->parser, buf + off, len - off, &consumed,
                                                   &msg, &close_code);
    ParleySpan none = { NULL, 0 };

    off += consumed;
    switch (result) {
      case PARLEY_WS_NEED_MORE:
        return off;
      case PARLEY_WS_MESSAGE:
        conn_handle_message (self, conn, &msg);
        break;
      case PARLEY_WS_TOO_LARGE:
        conn_send_error (self, conn, none, "frame-too-large", "Frames are limited to 64 KiB");
        break;
      case PARLEY_WS_INVALID_UTF8:
        conn_send_error (self, conn, none, "invalid-utf8", "Text frames must be valid UTF-8");
        break;
      case PARLEY_WS_PROTOCOL_ERROR:
      default:
        conn_close (self, conn, close_code, "Protocol error");
        return len;
    }
    if (consumed == 0 && result != PARLEY_WS_MESSAGE)
      return off;
  }
  return off;
}

static void
conn_read (ParleyWsServer *self,
           Conn           *conn)
{
  guint8 *buf = self->read_buf;
  gsize have = 0;
  ssize_t n;
  gsize used;

  if (conn->pending_len > 0) {
    memcpy (buf, conn->pending, conn->pending_len);
    have = conn->pending_len;
    g_clear_pointer (&conn->pending, g_free);
    conn->pending_len = 0;
  }

  do
    n = recv (conn->fd, buf + have, READ_BUFFER_SIZE, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);

  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    conn_destroy (self, conn);
    return;
  }
  if (n > 0) {
    have += n;
    self->stats.bytes_in += n;
    conn->last_rx = self->now_s;
  }

  used = conn_parse (self, conn, buf, have);
  if (!conn->dead && used < have) {
    conn->pending_len = have - used;
    conn->pending = g_memdup2 (buf + used, conn->pending_len);
  }
}

static void
adopt_connection (ParleyWsServer *self,
                  int             fd,
                  char           *user_id)
{
  Conn *conn = g_new0 (Conn, 1);
  struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = conn };
  int one = 1;

  conn->fd = fd;
  conn->id = ++self->next_id;
  conn->last_rx = self->now_s;
  conn->tokens = self->config->rate_burst;
  conn->tokens_at = self->now_us;
  conn->epoll_events = ev.events;
  parley_ws_parser_init (&conn->parser, TRUE, self->config->max_frame);
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  if (epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    g_warning ("Cannot watch a new connection: %s", g_strerror (errno));
    close (fd);
    parley_ws_parser_clear (&conn->parser);
    g_free (conn);
    g_free (user_id);
    return;
  }
  g_hash_table_insert (self->conns, &conn->id, conn);

  if (user_id)
    conn_authenticated (self, conn, user_id);
  else
    conn->auth_deadline = self->now_s + self->config->auth_timeout;
}

/* Requests. */

static gboolean
user_exists (ParleyWsServer *self,
             ParleySpan      user_id)
{
  char key[PARLEY_ID_MAX + 1];

  if (user_id.len > PARLEY_ID_MAX)
    return FALSE;
  memcpy (key, user_id.ptr, user_id.len);
  key[user_id.len] = '\0';
  return parley_store_user_exists (self->store, key);
}

/* Forwards @env to the recipient's devices with the sender's id. @carbon:
 * also to the sender's other devices (a callee's call-accept or call-reject,
 * which stops the call ringing on them). */
static void
relay (ParleyWsServer *self,
       Conn           *conn,
       ParleyEnvelope *env,
       gboolean        must_be_online,
       gboolean        carbon)
{
  GByteArray *out = self->scratch;
  static const char * const drop[] = { "id", "senderName", NULL };
  guint n_sent = 0;

  g_byte_array_set_size (out, 0);
  parley_envelope_splice (env, out, conn->sender_members, conn->sender_members_len, drop);
  send_to_user (self, env->recipient_id.ptr, env->recipient_id.len, NULL, out, &n_sent);
  if (carbon && n_sent > 0)
    send_to_user (self, conn->user_id, strlen (conn->user_id), conn, out, NULL);

  if (n_sent == 0 && must_be_online) {
    if (!user_exists (self, env->recipient_id))
      conn_send_error (self, conn, env->id, "unknown-recipient", "No such user");
    else
      conn_send_error (self, conn, env->id, "recipient-offline", "The recipient is not online");
    return;
  }
  if (env->id.ptr)
    conn_send_ack (self, conn, env->id);
}

static char *
span_dup (ParleySpan span)
{
  return g_strndup (span.ptr, span.len);
}

/* A store operation on behalf of @conn's user; its result finds the
 * connection again by id (it may be gone by then). @ref: keep the request's
 * id to answer with. */
static ParleyStoreOp *
conn_new_op (Conn              *conn,
             ParleyStoreOpKind  kind,
             ParleySpan         ref)
{
  ParleyStoreOp *op = parley_store_op_new (kind);

  op->user_id = g_strdup (conn->user_id);
  op->caller_tag = conn->id;
  if (ref.ptr)
    op->caller_data = span_dup (ref);
  return op;
}

static void
handle_message (ParleyWsServer *self,
                Conn           *conn,
                ParleyEnvelope *env)
{
  ParleyStoreOp *op;

  if (!user_exists (self, env->recipient_id)) {
    conn_send_error (self, conn, env->id, "unknown-recipient", "No such user");
    return;
  }
  /* The message's own id is its ref. */
  op = conn_new_op (conn, PARLEY_STORE_OP_MESSAGE, (ParleySpan) { NULL, 0 });
  op->peer_id = span_dup (env->recipient_id);
  op->message_id = span_dup (env->id);
  op->content = span_dup (env->encrypted_content);
  op->content_len = env->encrypted_content.len;
  op->timestamp = g_get_real_time () / 1000;
  parley_store_submit (self->store, op);
}

static void
handle_received (ParleyWsServer *self,
                 Conn           *conn,
                 ParleyEnvelope *env)
{
  ParleyStoreOp *op = conn_new_op (conn, PARLEY_STORE_OP_RECEIVED, env->id);
  gboolean ok = FALSE;

  op->seq = parley_span_to_int64 (env->seq, &ok);
  parley_store_submit (self->store, op);
}

static void
handle_read (ParleyWsServer *self,
             Conn           *conn,
             ParleyEnvelope *env)
{
  ParleyStoreOp *op;

  if (!user_exists (self, env->recipient_id)) {
    conn_send_error (self, conn, env->id, "unknown-recipient", "No such user");
    return;
  }
  op = conn_new_op (conn, PARLEY_STORE_OP_READ, env->id);
  op->peer_id = span_dup (env->recipient_id);
  op->message_id = span_dup (env->message_id);
  op->timestamp = g_get_real_time () / 1000;
  parley_store_submit (self->store, op);
}

/* Queues the request; sync_step() answers it over the next loop
 * iterations. */
static void
handle_sync (ParleyWsServer *self,
             Conn           *conn,
             ParleyEnvelope *env)
{
  gboolean ok = TRUE;
  SyncJob *job;

  if (conn->syncs != NULL && conn->syncs->length >= SYNC_MAX_QUEUED) {
    conn_send_error (self, conn, env->id, "rate-limited",
                     "Too many sync requests at once; wait for their acks");
    return;
  }
  job = g_new0 (SyncJob, 1);
  job->after = parley_span_to_int64 (env->since, &ok);
  job->remaining = SYNC_LIMIT_MAX;
  if (env->limit.ptr)
    job->remaining = CLAMP (parley_span_to_int64 (env->limit, &ok), 1, SYNC_LIMIT_MAX);
  if (env->id.ptr != NULL && parley_id_is_valid (env->id.ptr, env->id.len))
    job->ref = g_strndup (env->id.ptr, env->id.len);
  if (conn->syncs == NULL) {
    conn->syncs = g_queue_new ();
    g_queue_push_tail (&self->syncers, conn);
  }
  g_queue_push_tail (conn->syncs, job);
}

static void
handle_auth (ParleyWsServer *self,
             Conn           *conn,
             ParleyEnvelope *env)
{
  g_autofree char *token = parley_span_dup_string (env->token);
  g_autoptr (GError) error = NULL;
  char *user_id;

  user_id = parley_token_verify (self->config->token_key, PARLEY_TOKEN_KEY_LEN, token,
                                 g_get_real_time () / G_USEC_PER_SEC, &error);
  if (user_id == NULL) {
    g_debug ("Connection %" G_GUINT64_FORMAT ": authentication failed: %s", conn->id,
             error->message);
    conn_send_error (self, conn, env->id, "unauthenticated", "Invalid or expired access token");
    conn_close (self, conn, 1008, "Unauthenticated");
    return;
  }
  conn_authenticated (self, conn, user_id);
}

static void
conn_handle_text (ParleyWsServer *self,
                  Conn           *conn,
                  const char     *text,
                  gsize           len)
{
  ParleyEnvelope env;
  const char *detail = NULL;
  ParleyProtoStatus status = parley_envelope_parse_request (text, len, &env, &detail);

  /* Receipts are exempt: after a long absence a client acknowledges every
   * pushed message at once, and each costs one indexed update. */
  if ((status != PARLEY_PROTO_OK || env.type != PARLEY_MSG_RECEIVED) &&
      !conn_take_token (self, conn)) {
    conn_send_error (self, conn, env.id, "rate-limited", "Too many frames; slow down");
    return;
  }

  if (status != PARLEY_PROTO_OK) {
    g_autofree char *message = detail ? g_strdup_printf ("Bad field: %s", detail)
                                      : g_strdup ("Malformed request");

    conn_send_error (self, conn, env.id, parley_proto_status_code (status), message);
    return;
  }

  if (conn->user_id == NULL) {
    if (env.type == PARLEY_MSG_AUTH) {
      handle_auth (self, conn, &env);
    } else {
      conn_send_error (self, conn, env.id, "unauthenticated", "Authenticate first");
      conn_close (self, conn, 1008, "Unauthenticated");
    }
    return;
  }

  switch (env.type) {
    case PARLEY_MSG_MESSAGE:
      handle_message (self, conn, &env);
      break;
    case PARLEY_MSG_RECEIVED:
      handle_received (self, conn, &env);
      break;
    case PARLEY_MSG_READ:
      handle_read (self, conn, &env);
      break;
    case PARLEY_MSG_TYPING:
      relay (self, conn, &env, FALSE, FALSE);
      break;
    case PARLEY_MSG_CALL_OFFER:
    case PARLEY_MSG_CALL_ANSWER:
    case PARLEY_MSG_CALL_ICE_CANDIDATE:
    case PARLEY_MSG_CALL_HANGUP:
      relay (self, conn, &env, TRUE, FALSE);
      break;
    case PARLEY_MSG_CALL_ACCEPT:
    case PARLEY_MSG_CALL_REJECT:
      relay (self, conn, &env, TRUE, TRUE);
      break;
    case PARLEY_MSG_SYNC:
      handle_sync (self, conn, &env);
      break;
    case PARLEY_MSG_PING: {
      GByteArray *out = self->scratch;

      g_byte_array_set_size (out, 0);
      append_literal (out, "{\"type\":\"pong\"}");
      conn_queue_text (self, conn, out);
      break;
    }
    case PARLEY_MSG_AUTH:
      conn_send_error (self, conn, env.id, "invalid-field", "Already authenticated");
      break;
    default:
      conn_send_error (self, conn, env.id, "unknown-type", "Unknown type");
      break;
  }
}

/* Results from the store's writer thread. */

/* Tells the client why a stored operation failed: a reference to something
 * that does not exist is the client's mistake, anything else the server's. */
static void
conn_send_store_error (ParleyWsServer *self,
                       Conn           *conn,
                       ParleyStoreOp  *op,
                       ParleySpan      ref,
                       const char     *not_found_code,
                       const char     *what)
{
  g_autofree char *message = NULL;

  if (conn == NULL)
    return;
  if (g_error_matches (op->error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND)) {
    message = g_strdup_printf ("The %s refers to nothing known", what);
    conn_send_error (self, conn, ref, not_found_code, message);
  } else {
    message = g_strdup_printf ("The %s could not be stored", what);
    conn_send_error (self, conn, ref, "internal", message);
  }
}

static void
complete_message (ParleyWsServer *self,
                  ParleyStoreOp  *op,
                  Conn           *sender)
{
  GByteArray *out = self->scratch;
  ParleySpan ref = { op->message_id, strlen (op->message_id) };
  gboolean delivered = op->delivered;

  if (op->error) {
    conn_send_store_error (self, sender, op, ref, "unknown-recipient", "message");
    return;
  }

  if (!op->duplicate) {
    guint n_recipient = 0;

    build_message (self, out, op->message_id, op->user_id, op->peer_id, op->content,
                   op->content_len, op->seq, op->timestamp);
    send_to_devices (self, op->peer_id, strlen (op->peer_id), NULL, out, op->seq, TRUE,
                     &n_recipient);
    send_to_devices (self, op->user_id, strlen (op->user_id), sender, out, op->seq, FALSE, NULL);
    delivered = n_recipient > 0;
  }

  if (sender == NULL)
    return;
  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"ack\",");
  append_ref (out, ref);
  append_literal (out, delivered ? ",\"status\":\"delivered\",\"seq\":"
                                 : ",\"status\":\"stored\",\"seq\":");
  append_int (out, op->seq);
  append_literal (out, ",\"timestamp\":");
  append_int (out, op->timestamp);
  append_literal (out, "}");
  conn_queue_text (self, sender, out);
}

static void
complete_received (ParleyWsServer *self,
                   ParleyStoreOp  *op,
                   Conn           *conn)
{
  GByteArray *out = self->scratch;
  ParleySpan ref = { op->caller_data, op->caller_data ? strlen (op->caller_data) : 0 };

  if (op->error) {
    conn_send_store_error (self, conn, op, ref, "invalid-field", "receipt");
    return;
  }
  if (op->delivered && op->orig_sender && op->orig_id) {
    g_byte_array_set_size (out, 0);
    append_literal (out, "{\"type\":\"receipt\",");
    append_member (out, "id", op->orig_id, -1);
    g_byte_array_append (out, (const guint8 *) ",", 1);
    append_member (out, "senderId", op->user_id, -1);
    append_literal (out, ",\"status\":\"delivered\"}");
    send_to_user (self, op->orig_sender, strlen (op->orig_sender), NULL, out, NULL);
  }
  if (conn && op->caller_data)
    conn_send_ack (self, conn, ref);
}

static void
complete_read (ParleyWsServer *self,
               ParleyStoreOp  *op,
               Conn           *conn)
{
  GByteArray *out = self->scratch;
  ParleySpan ref = { op->caller_data, op->caller_data ? strlen (op->caller_data) : 0 };

  if (op->error) {
    conn_send_store_error (self, conn, op, ref, "unknown-recipient", "read marker");
    return;
  }
  g_byte_array_set_size (out, 0);
  append_literal (out, "{\"type\":\"read\",");
  append_member (out, "senderId", op->user_id, -1);
  g_byte_array_append (out, (const guint8 *) ",", 1);
  append_member (out, "recipientId", op->peer_id, -1);
  g_byte_array_append (out, (const guint8 *) ",", 1);
  append_member (out, "messageId", op->message_id, -1);
  append_literal (out, ",\"timestamp\":");
  append_int (out, op->timestamp);
  append_literal (out, "}");
  send_to_user (self, op->peer_id, strlen (op->peer_id), NULL, out, NULL);
  send_to_user (self, op->user_id, strlen (op->user_id), conn, out, NULL);
  if (conn && op->caller_data)
    conn_send_ack (self, conn, ref);
}

static void
process_completed (ParleyWsServer *self,
                   GPtrArray      *ops)
{
  for (guint i = 0; i < ops->len; i++) {
    ParleyStoreOp *op = g_ptr_array_index (ops, i);
    Conn *conn = g_hash_table_lookup (self->conns, &op->caller_tag);

    if (conn && conn->dead)
      conn = NULL;
    switch (op->kind) {
      case PARLEY_STORE_OP_MESSAGE:
        complete_message (self, op, conn);
        break;
      case PARLEY_STORE_OP_RECEIVED:
        complete_received (self, op, conn);
        break;
      case PARLEY_STORE_OP_READ:
        complete_read (self, op, conn);
        break;
      default:
        break;
    }
    g_free (op->caller_data);
    op->caller_data = NULL;
    parley_store_op_free (op);
  }
}

/* The loop. */

static void
sweep (ParleyWsServer *self)
{
  GHashTableIter iter;
  gpointer value;
  static const guint8 ping[] = { 'p' };

  g_hash_table_iter_init (&iter, self->conns);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    Conn *conn = value;

    if (conn->dead)
      continue;
    /* Times are whole seconds, so an event at 4.99 s counts as 4 s: only a
     * difference larger than a timeout is sure to be as long as it (and at
     * most a second longer). With >=, a socket connected late in a second
     * was closed after as little as a second less than auth-timeout or
     * idle-timeout: after a few milliseconds with auth-timeout=1 (under
     * load, before a test client's auth frame arrived). */
    if (conn->auth_deadline && self->now_s > conn->auth_deadline) {
      ParleySpan none = { NULL, 0 };

      conn_send_error (self, conn, none, "unauthenticated", "No authentication in time");
      conn_close (self, conn, 1008, "Authentication timeout");
    } else if (self->now_s - conn->last_rx > (gint64) self->config->idle_timeout) {
      g_debug ("Connection %" G_GUINT64_FORMAT " idle, closing", conn->id);
      conn_close (self, conn, 1001, "Idle");
    } else if (self->now_s - conn->last_rx >= (gint64) self->config->ping_interval &&
               conn->ping_sent == 0) {
      conn->ping_sent = self->now_s;
      conn_queue_frame (self, conn, PARLEY_WS_OP_PING, ping, sizeof ping);
    }
  }
}

static gboolean
drain_wakeups (ParleyWsServer *self)
{
  guint64 value;
  g_autoptr (GArray) adoptions = NULL;
  g_autoptr (GPtrArray) completed = NULL;
  gboolean stopping;

  while (read (self->wake_fd, &value, sizeof value) < 0 && errno == EINTR)
    ;

  g_mutex_lock (&self->lock);
  adoptions = g_steal_pointer (&self->adoptions);
  self->adoptions = g_array_new (FALSE, FALSE, sizeof (Adoption));
  completed = g_steal_pointer (&self->completed);
  self->completed = g_ptr_array_new ();
  self->wake_pending = FALSE;
  stopping = self->stopping;
  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < adoptions->len; i++) {
    Adoption *a = &g_array_index (adoptions, Adoption, i);

    adopt_connection (self, a->fd, a->user_id);
  }
  process_completed (self, completed);
  return !stopping;
}

static gpointer
network_thread (gpointer data)
{
  ParleyWsServer *self = data;
  struct epoll_event events[MAX_EVENTS];
  gboolean running = TRUE;

  parley_sched_latency_critical ("network thread");
  self->now_us = g_get_monotonic_time ();
  self->now_s = self->now_us / G_USEC_PER_SEC;
  self->last_sweep = self->now_s;

  while (running) {
    /* Replays or syncs still to do: look for events, but do not wait. */
    int n = epoll_wait (self->epoll_fd, events, MAX_EVENTS,
                        g_queue_is_empty (&self->replays) &&
                        g_queue_is_empty (&self->syncers) ? 1000 : 0);

    if (n < 0 && errno != EINTR) {
      g_warning ("epoll_wait failed: %s", g_strerror (errno));
      break;
    }
    self->now_us = g_get_monotonic_time ();
    self->now_s = self->now_us / G_USEC_PER_SEC;

    for (int i = 0; i < n; i++) {
      Conn *conn = events[i].data.ptr;

      if (conn == NULL) {
        running = drain_wakeups (self);
        continue;
      }
      if (conn->dead)
        continue;
      if (events[i].events & EPOLLOUT)
        conn_flush (self, conn);
      if (!conn->dead && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
        conn_read (self, conn);
    }

    if (self->now_s != self->last_sweep) {
      self->last_sweep = self->now_s;
      sweep (self);
    }
    replay_step (self);
    sync_step (self);
    flush_dirty (self);
    g_ptr_array_set_size (self->graveyard, 0);
  }

  /* Shutting down: say goodbye to everyone and drop the connections. */
  {
    GHashTableIter iter;
    gpointer value;
    g_autoptr (GPtrArray) all = g_ptr_array_new ();

    g_hash_table_iter_init (&iter, self->conns);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      g_ptr_array_add (all, value);
    for (guint i = 0; i < all->len; i++)
      conn_close (self, g_ptr_array_index (all, i), 1001, "Server shutting down");
    flush_dirty (self);
    for (guint i = 0; i < all->len; i++)
      conn_destroy (self, g_ptr_array_index (all, i));
    g_ptr_array_set_size (self->graveyard, 0);
  }
  return NULL;
}

static void
wake (ParleyWsServer *self)
{
  guint64 one = 1;

  /* Called with the lock held. */
  if (self->wake_pending)
    return;
  self->wake_pending = TRUE;
  while (write (self->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
    ;
}

/* Public API. */

/**
 * parley_ws_server_new:
 * @config: the server configuration; must outlive the returned object
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a WebSocket server; call parley_ws_server_start()
 */
ParleyWsServer *
parley_ws_server_new (const ParleyConfig *config,
                      GError            **error)
{
  g_autofree ParleyWsServer *self = g_new0 (ParleyWsServer, 1);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

  self->config = config;
  self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  if (self->epoll_fd < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "epoll_create1: %s",
                 g_strerror (errno));
    return NULL;
  }
  self->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (self->wake_fd < 0 || epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, self->wake_fd, &ev) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "eventfd: %s",
                 g_strerror (errno));
    close (self->epoll_fd);
    if (self->wake_fd >= 0)
      close (self->wake_fd);
    return NULL;
  }

  self->router = parley_router_new ();
  self->conns = g_hash_table_new (g_int64_hash, g_int64_equal);
  self->graveyard = g_ptr_array_new_with_free_func ((GDestroyNotify) conn_free);
  self->read_buf = g_malloc (READ_BUFFER_SIZE + config->max_frame + 64);
  self->scratch = g_byte_array_sized_new (4096);
  self->buffer_pool = g_ptr_array_new_with_free_func ((GDestroyNotify) g_byte_array_unref);
  self->adoptions = g_array_new (FALSE, FALSE, sizeof (Adoption));
  self->completed = g_ptr_array_new ();
  g_mutex_init (&self->lock);
  return g_steal_pointer (&self);
}

/**
 * parley_ws_server_start:
 * @store: the store whose batch callback is parley_ws_server_store_done()
 *
 * Starts the network thread.
 */
void
parley_ws_server_start (ParleyWsServer *self,
                        ParleyStore    *store)
{
  g_return_if_fail (self->thread == NULL);
  self->store = store;
  self->thread = g_thread_new ("parley-net", network_thread, self);
}

/**
 * parley_ws_server_stop:
 *
 * Closes every connection and stops the network thread. Nothing is
 * submitted to the store afterwards, so the store can be closed (which
 * commits what is queued) before parley_ws_server_free().
 */
void
parley_ws_server_stop (ParleyWsServer *self)
{
  if (self->thread == NULL)
    return;
  g_mutex_lock (&self->lock);
  self->stopping = TRUE;
  wake (self);
  g_mutex_unlock (&self->lock);
  g_thread_join (self->thread);
  self->thread = NULL;
}

/**
 * parley_ws_server_free:
 *
 * Stops the network thread if it still runs and frees @self; operations the
 * store completed after the stop are dropped.
 */
void
parley_ws_server_free (ParleyWsServer *self)
{
  if (self == NULL)
    return;

  parley_ws_server_stop (self);

  for (guint i = 0; i < self->adoptions->len; i++) {
    Adoption *a = &g_array_index (self->adoptions, Adoption, i);

    close (a->fd);
    g_free (a->user_id);
  }
  g_array_unref (self->adoptions);
  for (guint i = 0; i < self->completed->len; i++)
    parley_store_op_free (g_ptr_array_index (self->completed, i));
  g_ptr_array_unref (self->completed);
  g_ptr_array_unref (self->graveyard);
  g_hash_table_unref (self->conns);
  parley_router_free (self->router);
  g_byte_array_unref (self->scratch);
  g_ptr_array_unref (self->buffer_pool);
  g_free (self->read_buf);
  close (self->wake_fd);
  close (self->epoll_fd);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/**
 * parley_ws_server_adopt:
 * @fd: (transfer full): a connected socket that completed the WebSocket
 *   handshake
 * @user_id: (nullable): the user authenticated during the handshake
 *
 * Hands a connection to the network thread. May be called from any thread.
 */
void
parley_ws_server_adopt (ParleyWsServer *self,
                        int             fd,
                        const char     *user_id)
{
  Adoption a = { fd, g_strdup (user_id) };

  g_mutex_lock (&self->lock);
  g_array_append_val (self->adoptions, a);
  wake (self);
  g_mutex_unlock (&self->lock);
}

/**
 * parley_ws_server_store_done:
 *
 * The store's batch callback (runs on the store's writer thread): queues the
 * committed operations for the network thread, which acks and forwards them.
 */
void
parley_ws_server_store_done (ParleyStoreOp **ops,
                             guint           n_ops,
                             gpointer        user_data)
{
  ParleyWsServer *self = user_data;

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < n_ops; i++)
    g_ptr_array_add (self->completed, ops[i]);
  wake (self);
  g_mutex_unlock (&self->lock);
}

/**
 * parley_ws_server_is_online:
 * @user_data: a #ParleyWsServer
 *
 * Whether a device of @user_id is connected. May be called from any thread.
 */
gboolean
parley_ws_server_is_online (const char *user_id,
                            gpointer    user_data)
{
  ParleyWsServer *self = user_data;

  return parley_router_is_online (self->router, user_id);
}

/**
 * parley_ws_server_get_stats:
 *
 * Counters for logs and benchmarks; approximate while traffic flows.
 */
void
parley_ws_server_get_stats (ParleyWsServer *self,
                            ParleyWsStats  *stats)
{
  *stats = self->stats;
  stats->connections = g_hash_table_size (self->conns);
  stats->authenticated = self->authenticated;
  stats->users_online = parley_router_n_users (self->router);
}
