/* SPDX-License-Identifier: GPL-3.0-or-later */
/* End-to-end tests of parley-server: a real server process, real SQLite,
 * WebSocket clients speaking the wire protocol. */
#define G_LOG_DOMAIN "test-server"

#include "config.h"

#include <signal.h>
#include <string.h>

#include "parley-test-util.h"
#include "parley-token.h"

typedef struct {
  ParleyTestServer *server;
  char *alice_token, *alice_id;
  char *bob_token, *bob_id;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->server = parley_test_server_new (data, NULL);
  f->alice_token = parley_test_register_login (f->server, "alice", &f->alice_id);
  f->bob_token = parley_test_register_login (f->server, "bob", &f->bob_id);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  parley_test_server_free (f->server);
  g_free (f->alice_token);
  g_free (f->alice_id);
  g_free (f->bob_token);
  g_free (f->bob_id);
}

static ParleyTestWs *
connect_user (Fixture    *f,
              const char *token)
{
  g_autoptr (GError) error = NULL;
  ParleyTestWs *ws = parley_test_ws_connect (f->server, token, &error);
  g_autoptr (JsonObject) hello = NULL;

  g_assert_no_error (error);
  hello = parley_test_ws_expect (ws, "hello");
  g_assert_true (json_object_has_member (hello, "seq"));
  return ws;
}

static void
send_message (ParleyTestWs *ws,
              const char   *id,
              const char   *recipient,
              const char   *body)
{
  parley_test_ws_send (ws, "{\"type\":\"message\",\"id\":\"%s\",\"recipientId\":\"%s\","
                       "\"encryptedContent\":\"%s\"}", id, recipient, body);
}

static void
assert_message (JsonObject *frame,
                const char *id,
                const char *sender,
                const char *body)
{
  g_assert_cmpstr (json_object_get_string_member (frame, "type"), ==, "message");
  g_assert_cmpstr (json_object_get_string_member (frame, "id"), ==, id);
  g_assert_cmpstr (json_object_get_string_member (frame, "senderId"), ==, sender);
  g_assert_cmpstr (json_object_get_string_member (frame, "encryptedContent"), ==, body);
  g_assert_cmpint (json_object_get_int_member (frame, "seq"), >, 0);
}

static void
test_chat_both_ways (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  g_autoptr (ParleyTestWs) bob = connect_user (f, f->bob_token);
  g_autoptr (JsonObject) ack = NULL;
  g_autoptr (JsonObject) msg = NULL;
  g_autoptr (JsonObject) receipt = NULL;
  g_autoptr (JsonObject) reply = NULL;
  g_autoptr (JsonObject) ack2 = NULL;

  send_message (alice, "a1", f->bob_id, "hello bob");
  ack = parley_test_ws_expect_ref (alice, "ack", "a1");
  g_assert_cmpstr (json_object_get_string_member (ack, "status"), ==, "delivered");
  msg = parley_test_ws_expect (bob, "message");
  assert_message (msg, "a1", f->alice_id, "hello bob");
  g_assert_cmpstr (json_object_get_string_member (msg, "senderName"), ==, "alice");
  g_assert_cmpint (json_object_get_int_member (msg, "seq"), ==,
                   json_object_get_int_member (ack, "seq"));

  /* Bob confirms receipt; Alice learns it was delivered. */
  parley_test_ws_send (bob, "{\"type\":\"received\",\"seq\":%" G_GINT64_FORMAT "}",
                       json_object_get_int_member (msg, "seq"));
  receipt = parley_test_ws_expect (alice, "receipt");
  g_assert_cmpstr (json_object_get_string_member (receipt, "id"), ==, "a1");
  g_assert_cmpstr (json_object_get_string_member (receipt, "senderId"), ==, f->bob_id);

  send_message (bob, "b1", f->alice_id, "hi alice");
  ack2 = parley_test_ws_expect_ref (bob, "ack", "b1");
  g_assert_cmpint (json_object_get_int_member (ack2, "seq"), >,
                   json_object_get_int_member (ack, "seq"));
  reply = parley_test_ws_expect (alice, "message");
  assert_message (reply, "b1", f->bob_id, "hi alice");
}

static void
test_offline_delivery (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  ParleyTestWs *bob;
  const guint n = 25;

  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("m%u", i);
    g_autofree char *body = g_strdup_printf ("message %u", i);
    g_autoptr (JsonObject) ack = NULL;

    send_message (alice, id, f->bob_id, body);
    ack = parley_test_ws_expect_ref (alice, "ack", id);
    g_assert_cmpstr (json_object_get_string_member (ack, "status"), ==, "stored");
  }
  /* A resend of the same id is answered but not stored twice. */
  send_message (alice, "m3", f->bob_id, "message 3");
  json_object_unref (parley_test_ws_expect_ref (alice, "ack", "m3"));

  bob = connect_user (f, f->bob_token);
  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("m%u", i);
    g_autofree char *body = g_strdup_printf ("message %u", i);
    g_autoptr (JsonObject) msg = parley_test_ws_expect (bob, "message");

    assert_message (msg, id, f->alice_id, body);
    if (i < n - 1)
      continue;
    /* Acknowledge everything only up to the last one read. */
  }
  parley_test_ws_settle (bob);
  g_assert_cmpuint (parley_test_ws_count (bob, "message"), ==, 0);

  /* Without a receipt the messages come again on the next connection. */
  parley_test_ws_free (bob);
  bob = connect_user (f, f->bob_token);
  for (guint i = 0; i < n; i++) {
    g_autoptr (JsonObject) msg = parley_test_ws_expect (bob, "message");

    g_autofree char *ref = g_strdup_printf ("r%u", i);

    parley_test_ws_send (bob, "{\"type\":\"received\",\"id\":\"%s\",\"seq\":%" G_GINT64_FORMAT "}",
                         ref, json_object_get_int_member (msg, "seq"));
    json_object_unref (parley_test_ws_expect_ref (bob, "ack", ref));
  }
  parley_test_ws_settle (bob);
  g_assert_cmpuint (parley_test_ws_count (bob, "message"), ==, 0);

  /* Acknowledged: never pushed again. */
  parley_test_ws_free (bob);
  bob = connect_user (f, f->bob_token);
  parley_test_ws_settle (bob);
  g_assert_cmpuint (parley_test_ws_count (bob, "message"), ==, 0);
  parley_test_ws_free (bob);
}

/* A backlog that takes many replay steps (one message per loop iteration
 * here) arrives in seq order and exactly once, and a message sent while it
 * is replayed does not overtake it. */
static void
test_backlog_replay (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  g_autoptr (JsonObject) live_ack = NULL;
  ParleyTestWs *bob;
  const guint n = 2000, chunk = 250;
  gint64 last_seq = 0;

  for (guint i = 0; i < n; i += chunk) {
    for (guint j = i; j < i + chunk; j++) {
      g_autofree char *id = g_strdup_printf ("m%u", j);
      g_autofree char *body = g_strdup_printf ("message %u", j);

      send_message (alice, id, f->bob_id, body);
    }
    for (guint j = i; j < i + chunk; j++) {
      g_autofree char *id = g_strdup_printf ("m%u", j);

      json_object_unref (parley_test_ws_expect_ref (alice, "ack", id));
    }
  }

  /* The live message goes once the first stored ones have come, while the
   * rest are still being replayed. */
  bob = connect_user (f, f->bob_token);
  for (guint i = 0; i <= n; i++) {
    g_autoptr (JsonObject) msg = parley_test_ws_expect (bob, "message");
    g_autofree char *id = i < n ? g_strdup_printf ("m%u", i) : g_strdup ("live");
    g_autofree char *body = i < n ? g_strdup_printf ("message %u", i) : g_strdup ("live message");
    gint64 seq = json_object_get_int_member (msg, "seq");

    assert_message (msg, id, f->alice_id, body);
    g_assert_cmpint (seq, >, last_seq);
    last_seq = seq;
    if (i == 0)
      send_message (alice, "live", f->bob_id, "live message");
  }
  live_ack = parley_test_ws_expect_ref (alice, "ack", "live");
  g_assert_cmpint (json_object_get_int_member (live_ack, "seq"), ==, last_seq);
  parley_test_ws_settle (bob);
  g_assert_cmpuint (parley_test_ws_count (bob, "message"), ==, 0);
  parley_test_ws_free (bob);
}

static void
test_kill_after_ack (Fixture       *f,
                     gconstpointer  data)
{
  ParleyTestWs *alice = connect_user (f, f->alice_token);
  g_autoptr (ParleyTestWs) bob = NULL;
  const guint n = 200;
  guint acked = 0;

  /* Many in flight at once, so that they commit in batches. */
  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("k%u", i);

    send_message (alice, id, f->bob_id, "durable");
  }
  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("k%u", i);
    g_autoptr (JsonObject) ack = parley_test_ws_expect_ref (alice, "ack", id);

    acked++;
  }
  g_assert_cmpuint (acked, ==, n);
  parley_test_server_kill (f->server, SIGKILL);
  parley_test_ws_free (alice);

  parley_test_server_start (f->server);
  bob = connect_user (f, f->bob_token);
  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("k%u", i);
    g_autoptr (JsonObject) msg = parley_test_ws_expect (bob, "message");

    assert_message (msg, id, f->alice_id, "durable");
  }
}

static void
test_forged_sender (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  g_autoptr (ParleyTestWs) bob = connect_user (f, f->bob_token);
  g_autoptr (JsonObject) msg = NULL;
  g_autoptr (JsonObject) offer = NULL;

  parley_test_ws_send (alice, "{\"type\":\"message\",\"senderId\":\"%s\",\"id\":\"f1\","
                       "\"recipientId\":\"%s\",\"encryptedContent\":\"x\"}", f->bob_id, f->bob_id);
  msg = parley_test_ws_expect (bob, "message");
  g_assert_cmpstr (json_object_get_string_member (msg, "senderId"), ==, f->alice_id);

  parley_test_ws_send (alice, "{\"type\":\"call-offer\",\"recipientId\":\"%s\",\"callId\":\"c1\","
                       "\"sdp\":\"v=0\",\"senderId\":\"mallory\",\"senderName\":\"bob\"}",
                       f->bob_id);
  offer = parley_test_ws_expect (bob, "call-offer");
  g_assert_cmpstr (json_object_get_string_member (offer, "senderId"), ==, f->alice_id);
  g_assert_cmpstr (json_object_get_string_member (offer, "senderName"), ==, "alice");
  g_assert_cmpstr (json_object_get_string_member (offer, "sdp"), ==, "v=0");
  g_assert_cmpstr (json_object_get_string_member (offer, "callId"), ==, "c1");
}

static void
test_tokens (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *forged = g_strdup (f->alice_token);
  g_autofree char *key = NULL;
  g_autofree char *expired = NULL;
  g_autofree char *key_path = g_strconcat (f->server->db_path, ".key", NULL);
  gsize key_len = 0;
  g_autoptr (ParleyTestWs) ws = NULL;
  g_autoptr (ParleyTestWs) late = NULL;
  g_autoptr (JsonObject) err = NULL;
  g_autoptr (JsonObject) users = NULL;
  guint status = 0;

  /* Flip one character of the signature. */
  forged[strlen (forged) - 2] = forged[strlen (forged) - 2] == 'A' ? 'B' : 'A';
  ws = parley_test_ws_connect (f->server, forged, &error);
  g_assert_null (ws);
  g_assert_nonnull (error);
  g_clear_error (&error);
  users = parley_test_http (f->server, "GET", "/api/users?query=bo", forged, NULL, &status);
  g_assert_cmpuint (status, ==, 401);

  /* A correctly signed token that expired a while ago. */
  g_assert_true (g_file_get_contents (key_path, &key, &key_len, NULL));
  expired = parley_token_issue ((const guint8 *) key, key_len, f->alice_id,
                                g_get_real_time () / G_USEC_PER_SEC - 3600, 900);
  ws = parley_test_ws_connect (f->server, expired, &error);
  g_assert_null (ws);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* The same through the first-frame path browsers use. */
  late = parley_test_ws_connect (f->server, NULL, &error);
  g_assert_no_error (error);
  parley_test_ws_send (late, "{\"type\":\"auth\",\"token\":\"%s\"}", expired);
  err = parley_test_ws_expect (late, "error");
  g_assert_cmpstr (json_object_get_string_member (err, "code"), ==, "unauthenticated");
  g_assert_true (parley_test_ws_wait_closed (late));
}

static void
test_auth_frame (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ParleyTestWs) ws = parley_test_ws_connect (f->server, NULL, &error);
  g_autoptr (ParleyTestWs) silent = parley_test_ws_connect (f->server, NULL, &error);
  g_autoptr (JsonObject) hello = NULL;
  g_autoptr (JsonObject) err = NULL;

  g_assert_no_error (error);
  /* Nothing but auth is accepted first. */
  parley_test_ws_send (ws, "{\"type\":\"auth\",\"token\":\"%s\"}", f->alice_token);
  hello = parley_test_ws_expect (ws, "hello");
  g_assert_cmpstr (json_object_get_string_member (hello, "userId"), ==, f->alice_id);
  parley_test_ws_settle (ws);

  /* A socket that never authenticates is closed (auth-timeout is 1 s here). */
  err = parley_test_ws_expect (silent, "error");
  g_assert_cmpstr (json_object_get_string_member (err, "code"), ==, "unauthenticated");
  g_assert_true (parley_test_ws_wait_closed (silent));
}

static void
expect_error (ParleyTestWs *ws,
              const char   *ref,
              const char   *code)
{
  g_autoptr (JsonObject) err = parley_test_ws_expect (ws, "error");

  g_assert_cmpstr (json_object_get_string_member (err, "code"), ==, code);
  if (ref)
    g_assert_cmpstr (json_object_get_string_member_with_default (err, "ref", NULL), ==, ref);
}

static void
test_bad_frames (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  g_autoptr (GString) huge = g_string_new ("{\"type\":\"message\",\"id\":\"big\","
                                          "\"recipientId\":\"");

  g_string_append_printf (huge, "%s\",\"encryptedContent\":\"", f->bob_id);
  while (huge->len < 70 * 1024)
    g_string_append (huge, "0123456789abcdef");
  g_string_append (huge, "\"}");
  parley_test_ws_send_raw (alice, huge->str, huge->len);
  expect_error (alice, NULL, "frame-too-large");

  parley_test_ws_send (alice, "this is not json");
  expect_error (alice, NULL, "invalid-json");
  parley_test_ws_send (alice, "{\"type\":\"message\",\"id\":\"t1\",\"recipientId\":");
  expect_error (alice, NULL, "invalid-json");
  parley_test_ws_send (alice, "[1,2,3]");
  expect_error (alice, NULL, "invalid-json");
  parley_test_ws_send (alice, "{\"type\":\"teleport\",\"id\":\"t2\"}");
  expect_error (alice, "t2", "unknown-type");
  parley_test_ws_send (alice, "{\"type\":\"message\",\"id\":\"t3\",\"encryptedContent\":\"x\"}");
  expect_error (alice, "t3", "missing-field");
  parley_test_ws_send (alice, "{\"type\":\"message\",\"id\":\"t4\",\"recipientId\":42,"
                       "\"encryptedContent\":\"x\"}");
  expect_error (alice, "t4", "invalid-field");
  send_message (alice, "t5", "nobody-at-all", "x");
  expect_error (alice, "t5", "unknown-recipient");
  parley_test_ws_send (alice, "{\"type\":\"read\",\"id\":\"t7\",\"recipientId\":\"nobody\","
                       "\"messageId\":\"m1\"}");
  expect_error (alice, "t7", "unknown-recipient");
  parley_test_ws_send (alice, "{\"type\":\"received\",\"id\":\"t8\",\"seq\":999999}");
  expect_error (alice, "t8", "invalid-field");
  parley_test_ws_send (alice, "{\"type\":\"typing\",\"recipientId\":\"%s\",\"state\":\"dancing\"}",
                       f->bob_id);
  expect_error (alice, NULL, "invalid-field");

  /* Still usable. */
  send_message (alice, "t6", f->bob_id, "after the garbage");
  json_object_unref (parley_test_ws_expect_ref (alice, "ack", "t6"));
  g_assert_false (alice->closed);
}

static void
test_call_signaling (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  g_autoptr (ParleyTestWs) bob = NULL;
  g_autoptr (JsonObject) candidate = NULL;
  JsonObject *init;

  parley_test_ws_send (alice, "{\"type\":\"call-offer\",\"id\":\"o1\",\"recipientId\":\"%s\","
                       "\"callId\":\"c1\",\"sdp\":\"v=0\"}", f->bob_id);
  expect_error (alice, "o1", "recipient-offline");

  bob = connect_user (f, f->bob_token);
  parley_test_ws_send (alice, "{\"type\":\"call-ice-candidate\",\"recipientId\":\"%s\","
                       "\"callId\":\"c1\",\"candidate\":{\"candidate\":\"candidate:1 1 UDP 2122 "
                       "127.0.0.1 5000 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}",
                       f->bob_id);
  candidate = parley_test_ws_expect (bob, "call-ice-candidate");
  g_assert_cmpstr (json_object_get_string_member (candidate, "senderId"), ==, f->alice_id);
  init = json_object_get_object_member (candidate, "candidate");
  g_assert_cmpstr (json_object_get_string_member (init, "sdpMid"), ==, "0");
  g_assert_cmpint (json_object_get_int_member (init, "sdpMLineIndex"), ==, 0);

  /* Relayed frames are never stored: Bob's next connection gets nothing. */
  parley_test_ws_free (g_steal_pointer (&bob));
  bob = connect_user (f, f->bob_token);
  parley_test_ws_settle (bob);
  g_assert_cmpuint (parley_test_ws_count (bob, "call-ice-candidate"), ==, 0);

  /* A callee's call-accept and call-reject also go to its other devices,
   * with its own senderId; its answers and candidates do not. */
  {
    g_autoptr (ParleyTestWs) bob2 = connect_user (f, f->bob_token);
    const char *carbons[] = { "call-accept", "call-reject" };

    for (guint i = 0; i < G_N_ELEMENTS (carbons); i++) {
      g_autoptr (JsonObject) to_alice = NULL;
      g_autoptr (JsonObject) to_bob2 = NULL;

      parley_test_ws_send (bob, "{\"type\":\"%s\",\"recipientId\":\"%s\",\"callId\":\"c1\","
                           "\"reason\":\"rejected\",\"senderId\":\"%s\"}", carbons[i],
                           f->alice_id, f->alice_id);
      to_alice = parley_test_ws_expect (alice, carbons[i]);
      g_assert_cmpstr (json_object_get_string_member (to_alice, "senderId"), ==, f->bob_id);
      to_bob2 = parley_test_ws_expect (bob2, carbons[i]);
      g_assert_cmpstr (json_object_get_string_member (to_bob2, "senderId"), ==, f->bob_id);
      g_assert_cmpstr (json_object_get_string_member (to_bob2, "recipientId"), ==, f->alice_id);
      g_assert_cmpstr (json_object_get_string_member (to_bob2, "callId"), ==, "c1");
    }
    parley_test_ws_send (bob, "{\"type\":\"call-answer\",\"recipientId\":\"%s\","
                         "\"callId\":\"c1\",\"sdp\":\"v=0\"}", f->alice_id);
    json_object_unref (parley_test_ws_expect (alice, "call-answer"));
    parley_test_ws_settle (bob2);
    parley_test_ws_settle (bob);
    g_assert_cmpuint (parley_test_ws_count (bob2, "call-answer"), ==, 0);
    g_assert_cmpuint (parley_test_ws_count (bob, "call-accept"), ==, 0);
    g_assert_cmpuint (parley_test_ws_count (bob, "call-reject"), ==, 0);
  }
}

static void
test_multi_device (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  g_autoptr (ParleyTestWs) alice2 = connect_user (f, f->alice_token);
  g_autoptr (ParleyTestWs) bob1 = connect_user (f, f->bob_token);
  g_autoptr (ParleyTestWs) bob2 = connect_user (f, f->bob_token);
  g_autoptr (JsonObject) m1 = NULL;
  g_autoptr (JsonObject) m2 = NULL;
  g_autoptr (JsonObject) carbon = NULL;

  send_message (alice, "d1", f->bob_id, "to every device");
  json_object_unref (parley_test_ws_expect_ref (alice, "ack", "d1"));
  m1 = parley_test_ws_expect (bob1, "message");
  m2 = parley_test_ws_expect (bob2, "message");
  carbon = parley_test_ws_expect (alice2, "message");
  assert_message (m1, "d1", f->alice_id, "to every device");
  assert_message (m2, "d1", f->alice_id, "to every device");
  assert_message (carbon, "d1", f->alice_id, "to every device");
  parley_test_ws_settle (alice);
  g_assert_cmpuint (parley_test_ws_count (alice, "message"), ==, 0);
}

static void
test_typing_read_presence_sync (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  ParleyTestWs *bob = connect_user (f, f->bob_token);
  g_autoptr (JsonObject) typing = NULL;
  g_autoptr (JsonObject) read = NULL;
  g_autoptr (JsonObject) offline = NULL;
  g_autoptr (JsonObject) online = NULL;
  g_autoptr (JsonObject) sync_ack = NULL;
  gint64 first_seq;

  send_message (alice, "p1", f->bob_id, "one");
  {
    g_autoptr (JsonObject) ack = parley_test_ws_expect_ref (alice, "ack", "p1");

    first_seq = json_object_get_int_member (ack, "seq");
  }
  send_message (alice, "p2", f->bob_id, "two");
  json_object_unref (parley_test_ws_expect_ref (alice, "ack", "p2"));

  parley_test_ws_send (bob, "{\"type\":\"typing\",\"recipientId\":\"%s\",\"state\":\"active\"}",
                       f->alice_id);
  typing = parley_test_ws_expect (alice, "typing");
  g_assert_cmpstr (json_object_get_string_member (typing, "senderId"), ==, f->bob_id);
  g_assert_cmpstr (json_object_get_string_member (typing, "state"), ==, "active");

  parley_test_ws_send (bob, "{\"type\":\"read\",\"id\":\"r1\",\"recipientId\":\"%s\","
                       "\"messageId\":\"p2\"}", f->alice_id);
  json_object_unref (parley_test_ws_expect_ref (bob, "ack", "r1"));
  read = parley_test_ws_expect (alice, "read");
  g_assert_cmpstr (json_object_get_string_member (read, "senderId"), ==, f->bob_id);
  g_assert_cmpstr (json_object_get_string_member (read, "messageId"), ==, "p2");

  /* They exchanged messages, so they are contacts and see each other's presence. */
  parley_test_ws_free (bob);
  offline = parley_test_ws_expect (alice, "presence");
  g_assert_cmpstr (json_object_get_string_member (offline, "userId"), ==, f->bob_id);
  g_assert_cmpstr (json_object_get_string_member (offline, "state"), ==, "offline");
  g_assert_cmpstr (json_object_get_string_member (offline, "username"), ==, "bob");
  bob = connect_user (f, f->bob_token);
  online = parley_test_ws_expect (alice, "presence");
  g_assert_cmpstr (json_object_get_string_member (online, "state"), ==, "online");

  /* History after a gap: everything after the first message. */
  parley_test_ws_settle (bob);
  while (parley_test_ws_count (bob, "message") > 0)
    json_object_unref (parley_test_ws_expect (bob, "message"));
  parley_test_ws_send (bob, "{\"type\":\"sync\",\"id\":\"s1\",\"since\":%" G_GINT64_FORMAT "}",
                       first_seq);
  {
    g_autoptr (JsonObject) msg = parley_test_ws_expect (bob, "message");

    assert_message (msg, "p2", f->alice_id, "two");
  }
  sync_ack = parley_test_ws_expect_ref (bob, "ack", "s1");
  g_assert_false (json_object_get_boolean_member (sync_ack, "more"));
  g_assert_cmpuint (parley_test_ws_count (bob, "message"), ==, 0);
  parley_test_ws_free (bob);
}

/* A client that completed the handshake and then went silent (its network
 * died): it never answers the server's pings. */
static GSocket *
raw_connect (Fixture    *f,
             const char *token)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, f->server->port);
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, &error);
  g_autofree char *request = g_strdup_printf (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Authorization: Bearer %s\r\n\r\n", token);
  char reply[1024];
  gssize n;

  g_assert_no_error (error);
  g_socket_set_timeout (socket, 10);
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  g_socket_send (socket, request, strlen (request), NULL, &error);
  g_assert_no_error (error);
  n = g_socket_receive (socket, reply, sizeof reply - 1, NULL, &error);
  g_assert_no_error (error);
  reply[MAX (n, 0)] = '\0';
  g_assert_true (g_str_has_prefix (reply, "HTTP/1.1 101"));
  return socket;
}

/* Reads the next text frame from a raw socket (server frames are
 * unmasked), keeping what follows it in @buf; NULL at the end. */
static JsonObject *
raw_next_frame (GSocket    *socket,
                GByteArray *buf)
{
  for (;;) {
    gsize head = 2;
    guint64 len;
    char chunk[65536];
    gssize n;

    if (buf->len >= 2) {
      len = buf->data[1] & 0x7f;
      if (len == 126) {
        head = 4;
        len = buf->len >= head ? (guint64) buf->data[2] << 8 | buf->data[3] : 0;
      } else if (len == 127) {
        head = 10;
        len = 0;
        for (guint i = 0; i < 8 && buf->len >= head; i++)
          len = len << 8 | buf->data[2 + i];
      }
      if (buf->len >= head && buf->len - head >= len) {
        g_autoptr (JsonParser) parser = json_parser_new ();
        g_autoptr (GError) error = NULL;
        gboolean text = (buf->data[0] & 0x0f) == 0x1;
        JsonObject *frame = NULL;

        if (text) {
          json_parser_load_from_data (parser, (const char *) buf->data + head, (gssize) len,
                                      &error);
          g_assert_no_error (error);
          frame = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
        }
        g_byte_array_remove_range (buf, 0, (guint) (head + len));
        if (frame != NULL)
          return frame;
        continue;
      }
    }
    n = g_socket_receive (socket, chunk, sizeof chunk, NULL, NULL);
    if (n <= 0)
      return NULL;
    g_byte_array_append (buf, (const guint8 *) chunk, (guint) n);
  }
}

/* Appends a client text frame (masked, with a zero mask) to @out. */
static void
append_client_frame (GByteArray *out,
                     const char *text)
{
  gsize len = strlen (text);
  guint8 head[] = { 0x81, 0x80 | 126, (guint8) (len >> 8), (guint8) len, 0, 0, 0, 0 };

  g_assert_cmpuint (len, <, 65536);
  g_byte_array_append (out, head, sizeof head);
  g_byte_array_append (out, (const guint8 *) text, (guint) len);
}

/* History sync is answered a part per loop iteration ([ws] replay-batch is
 * 7 here), yet every request gets exactly its page, in order, then its
 * ack; queued requests are answered one after the other; too many queued
 * at once get an error and the connection stays usable. */
static void
test_sync_pages (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  g_autoptr (GByteArray) requests = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) ack = NULL;
  gint64 seqs[250];
  const guint n = G_N_ELEMENTS (seqs);
  guint acked = 0, limited = 0;

  /* bob is offline: nothing is replayed to alice, the history is hers. */
  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("h%u", i);
    g_autofree char *body = g_strdup_printf ("history %u", i);

    send_message (alice, id, f->bob_id, body);
  }
  for (guint i = 0; i < n; i++) {
    g_autofree char *id = g_strdup_printf ("h%u", i);
    g_autoptr (JsonObject) sent = parley_test_ws_expect_ref (alice, "ack", id);

    seqs[i] = json_object_get_int_member (sent, "seq");
    g_assert_true (i == 0 || seqs[i] > seqs[i - 1]);
  }

  /* A page of 100 of the 250, then the rest (limit above the maximum). */
  parley_test_ws_send (alice, "{\"type\":\"sync\",\"id\":\"s1\",\"since\":0,\"limit\":100}");
  ack = parley_test_ws_expect_ref (alice, "ack", "s1");
  g_assert_cmpint (json_object_get_int_member (ack, "seq"), ==, seqs[99]);
  g_assert_true (json_object_get_boolean_member (ack, "more"));
  g_clear_pointer (&ack, json_object_unref);
  g_assert_cmpuint (parley_test_ws_count (alice, "message"), ==, 100);
  for (guint i = 0; i < 100; i++) {
    g_autoptr (JsonObject) msg = parley_test_ws_expect (alice, "message");
    g_autofree char *id = g_strdup_printf ("h%u", i);
    g_autofree char *body = g_strdup_printf ("history %u", i);

    assert_message (msg, id, f->alice_id, body);
    g_assert_cmpint (json_object_get_int_member (msg, "seq"), ==, seqs[i]);
  }
  parley_test_ws_send (alice, "{\"type\":\"sync\",\"id\":\"s2\",\"since\":%" G_GINT64_FORMAT
                       ",\"limit\":5000}", seqs[99]);
  ack = parley_test_ws_expect_ref (alice, "ack", "s2");
  g_assert_cmpint (json_object_get_int_member (ack, "seq"), ==, seqs[n - 1]);
  g_assert_false (json_object_get_boolean_member (ack, "more"));
  g_clear_pointer (&ack, json_object_unref);
  g_assert_cmpuint (parley_test_ws_count (alice, "message"), ==, n - 100);
  for (guint i = 100; i < n; i++) {
    g_autoptr (JsonObject) msg = parley_test_ws_expect (alice, "message");

    g_assert_cmpint (json_object_get_int_member (msg, "seq"), ==, seqs[i]);
  }

  /* Five requests in one write, so that they are all queued at once: four
   * are answered in turn, each with the whole history before its ack; the
   * fifth is refused. */
  socket = raw_connect (f, f->alice_token);
  for (guint i = 1; i <= 5; i++) {
    g_autofree char *request = g_strdup_printf ("{\"type\":\"sync\",\"id\":\"q%u\","
                                                "\"since\":0}", i);

    append_client_frame (requests, request);
  }
  g_socket_send (socket, (const char *) requests->data, requests->len, NULL, &error);
  g_assert_no_error (error);
  while (acked < 4 || limited < 1) {
    g_autoptr (JsonObject) frame = raw_next_frame (socket, buf);
    guint got = 0;

    g_assert_nonnull (frame);
    if (g_str_equal (json_object_get_string_member (frame, "type"), "error")) {
      g_assert_cmpstr (json_object_get_string_member (frame, "code"), ==, "rate-limited");
      g_assert_cmpstr (json_object_get_string_member (frame, "ref"), ==, "q5");
      limited++;
      continue;
    }
    if (!g_str_equal (json_object_get_string_member (frame, "type"), "message"))
      continue;     /* hello, presence */
    /* A page: all 250 messages in order, then its ack. */
    g_assert_cmpint (json_object_get_int_member (frame, "seq"), ==, seqs[0]);
    for (got = 1; got < n; got++) {
      g_autoptr (JsonObject) msg = raw_next_frame (socket, buf);

      g_assert_nonnull (msg);
      if (g_str_equal (json_object_get_string_member (msg, "type"), "error")) {
        g_assert_cmpstr (json_object_get_string_member (msg, "ref"), ==, "q5");
        limited++;
        got--;
        continue;
      }
      g_assert_cmpstr (json_object_get_string_member (msg, "type"), ==, "message");
      g_assert_cmpint (json_object_get_int_member (msg, "seq"), ==, seqs[got]);
    }
    {
      g_autoptr (JsonObject) page_ack = raw_next_frame (socket, buf);
      g_autofree char *ref = g_strdup_printf ("q%u", acked + 1);

      g_assert_nonnull (page_ack);
      g_assert_cmpstr (json_object_get_string_member (page_ack, "type"), ==, "ack");
      g_assert_cmpstr (json_object_get_string_member (page_ack, "ref"), ==, ref);
      g_assert_cmpint (json_object_get_int_member (page_ack, "seq"), ==, seqs[n - 1]);
      g_assert_false (json_object_get_boolean_member (page_ack, "more"));
      acked++;
    }
  }
  g_assert_cmpuint (limited, ==, 1);

  /* Still usable: one more request is answered. */
  g_byte_array_set_size (requests, 0);
  append_client_frame (requests, "{\"type\":\"sync\",\"id\":\"q6\",\"since\":0,\"limit\":1}");
  g_socket_send (socket, (const char *) requests->data, requests->len, NULL, &error);
  g_assert_no_error (error);
  for (;;) {
    g_autoptr (JsonObject) frame = raw_next_frame (socket, buf);

    g_assert_nonnull (frame);
    if (g_str_equal (json_object_get_string_member (frame, "type"), "ack")) {
      g_assert_cmpstr (json_object_get_string_member (frame, "ref"), ==, "q6");
      g_assert_cmpint (json_object_get_int_member (frame, "seq"), ==, seqs[0]);
      g_assert_true (json_object_get_boolean_member (frame, "more"));
      break;
    }
  }

  /* A device that goes away with requests still being answered: they are
   * dropped with it, and the server goes on. */
  g_byte_array_set_size (requests, 0);
  for (guint i = 0; i < 3; i++)
    append_client_frame (requests, "{\"type\":\"sync\",\"since\":0}");
  g_socket_send (socket, (const char *) requests->data, requests->len, NULL, &error);
  g_assert_no_error (error);
  g_socket_close (socket, NULL);
  parley_test_ws_send (alice, "{\"type\":\"sync\",\"id\":\"s3\",\"since\":%" G_GINT64_FORMAT
                       "}", seqs[n - 2]);
  ack = parley_test_ws_expect_ref (alice, "ack", "s3");
  g_assert_cmpint (json_object_get_int_member (ack, "seq"), ==, seqs[n - 1]);
  g_assert_false (json_object_get_boolean_member (ack, "more"));
}

typedef struct {
  gboolean got_ping;
  gboolean eof;
} DeadClient;

static gboolean
dead_readable_cb (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      data)
{
  DeadClient *dead = data;
  g_autoptr (GError) error = NULL;
  char buf[4096];
  gssize n = g_socket_receive (socket, buf, sizeof buf, NULL, &error);

  g_assert_no_error (error);
  for (gssize i = 0; i + 1 < n; i++)
    dead->got_ping |= (guint8) buf[i] == 0x89;
  dead->eof = n == 0;
  return dead->eof ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static gboolean
dead_closed (gpointer data)
{
  return ((DeadClient *) data)->eof;
}

static void
test_dead_client_closed (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alive = connect_user (f, f->alice_token);
  g_autoptr (GSocket) socket = raw_connect (f, f->bob_token);
  g_autoptr (GSource) source = g_socket_create_source (socket, G_IO_IN | G_IO_HUP, NULL);
  DeadClient dead = { FALSE, FALSE };

  /* ping-interval is 1 s and idle-timeout 3 s here: the server pings the
   * silent client, gets no answer, and closes its socket, while the client
   * that answers the pings stays. */
  g_source_set_callback (source, G_SOURCE_FUNC (dead_readable_cb), &dead, NULL);
  g_source_attach (source, NULL);
  g_assert_true (parley_test_wait_until (dead_closed, &dead, 10000));
  g_assert_true (dead.got_ping);
  g_source_destroy (source);

  /* The client that answers pings is still connected and usable. */
  g_assert_false (alive->closed);
  parley_test_ws_settle (alive);
}

static void
test_rate_limit (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr (ParleyTestWs) alice = connect_user (f, f->alice_token);
  guint limited = 0;

  /* rate-burst is 20 here. */
  for (guint i = 0; i < 60; i++)
    parley_test_ws_send (alice, "{\"type\":\"ping\"}");
  json_object_unref (parley_test_ws_expect (alice, "error"));
  while (parley_test_ws_count (alice, "error") > 0) {
    g_autoptr (JsonObject) err = parley_test_ws_expect (alice, "error");

    g_assert_cmpstr (json_object_get_string_member (err, "code"), ==, "rate-limited");
    limited++;
  }
  g_assert_cmpuint (parley_test_ws_count (alice, "pong"), <=, 21);
  g_assert_false (alice->closed);
}

int
main (int   argc,
      char *argv[])
{
  const char *fast = "[ws]\nauth-timeout=1\n";
  const char *limited = "[ws]\nrate-burst=20\nrate=1\n";

  g_test_init (&argc, &argv, NULL);
  g_test_add ("/server/chat-both-ways", Fixture, NULL, fixture_setup, test_chat_both_ways,
              fixture_teardown);
  g_test_add ("/server/offline-delivery", Fixture, NULL, fixture_setup, test_offline_delivery,
              fixture_teardown);
  g_test_add ("/server/backlog-replay", Fixture,
              "[ws]\nrate=100000\nrate-burst=100000\nreplay-batch=1\n",
              fixture_setup, test_backlog_replay, fixture_teardown);
  g_test_add ("/server/kill-after-ack", Fixture, NULL, fixture_setup, test_kill_after_ack,
              fixture_teardown);
  g_test_add ("/server/forged-sender", Fixture, NULL, fixture_setup, test_forged_sender,
              fixture_teardown);
  g_test_add ("/server/tokens", Fixture, NULL, fixture_setup, test_tokens, fixture_teardown);
  g_test_add ("/server/auth-frame", Fixture, fast, fixture_setup, test_auth_frame,
              fixture_teardown);
  g_test_add ("/server/bad-frames", Fixture, NULL, fixture_setup, test_bad_frames,
              fixture_teardown);
  g_test_add ("/server/call-signaling", Fixture, NULL, fixture_setup, test_call_signaling,
              fixture_teardown);
  g_test_add ("/server/multi-device", Fixture, NULL, fixture_setup, test_multi_device,
              fixture_teardown);
  g_test_add ("/server/typing-read-presence-sync", Fixture, NULL, fixture_setup,
              test_typing_read_presence_sync, fixture_teardown);
  g_test_add ("/server/sync-pages", Fixture,
              "[ws]\nrate=100000\nrate-burst=100000\nreplay-batch=7\n",
              fixture_setup, test_sync_pages, fixture_teardown);
  g_test_add ("/server/dead-client-closed", Fixture, "[ws]\nping-interval=1\nidle-timeout=3\n",
              fixture_setup, test_dead_client_closed, fixture_teardown);
  g_test_add ("/server/rate-limit", Fixture, limited, fixture_setup, test_rate_limit,
              fixture_teardown);
  return g_test_run ();
}
