/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test-envelope.c: tests of the envelope scanner, validator and splicer.
 *
 * json-glib serves as an independent reference: whatever the scanner
 * accepts must parse there too, and spliced output is read back with it.
 */

#define G_LOG_DOMAIN "test-envelope"

#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "parley-envelope.h"

static ParleyProtoStatus
parse (const char      *text,
       ParleyEnvelope  *env,
       const char     **detail)
{
  return parley_envelope_parse_request (text, strlen (text), env, detail);
}

/* Parses text with json-glib; returns the root object or NULL. */
static JsonNode *
reference_parse (const char *text,
                 gssize      len)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (!json_parser_load_from_data (parser, text, len, NULL))
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

static char *
span_str (ParleySpan s)
{
  return s.ptr ? g_strndup (s.ptr, s.len) : NULL;
}

/* Every client type, valid. */
static void
test_valid_requests (void)
{
  struct {
    const char *json;
    ParleyMsgType type;
  } cases[] = {
    { "{\"type\":\"auth\",\"token\":\"eyJhbGciOi.eyJzdWIi.sig\"}", PARLEY_MSG_AUTH },
    { "{\"type\":\"message\",\"id\":\"m1\",\"recipientId\":\"u2\",\"encryptedContent\":\"AAEC\"}",
      PARLEY_MSG_MESSAGE },
    { "{\"type\":\"received\",\"seq\":41}", PARLEY_MSG_RECEIVED },
    { "{\"type\":\"typing\",\"recipientId\":\"u2\",\"state\":\"active\"}", PARLEY_MSG_TYPING },
    { "{\"type\":\"typing\",\"recipientId\":\"u2\",\"state\":\"paused\"}", PARLEY_MSG_TYPING },
    { "{\"type\":\"read\",\"id\":\"r1\",\"recipientId\":\"u1\",\"messageId\":\"m1\"}",
      PARLEY_MSG_READ },
    { "{\"type\":\"sync\",\"id\":\"s1\",\"since\":40,\"limit\":500}", PARLEY_MSG_SYNC },
    { "{\"type\":\"sync\",\"since\":0}", PARLEY_MSG_SYNC },
    { "{\"type\":\"ping\"}", PARLEY_MSG_PING },
    { " \n{ \"type\" : \"ping\" , \"id\" : \"p-1\" }\r\n\t", PARLEY_MSG_PING },
    { "{\"type\":\"call-offer\",\"recipientId\":\"u2\",\"callId\":\"c1\","
      "\"sdp\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n\"}", PARLEY_MSG_CALL_OFFER },
    { "{\"type\":\"call-answer\",\"recipientId\":\"u2\",\"callId\":\"c1\",\"sdp\":\"v=0\"}",
      PARLEY_MSG_CALL_ANSWER },
    { "{\"type\":\"call-ice-candidate\",\"recipientId\":\"u2\",\"callId\":\"c1\","
      "\"candidate\":{\"candidate\":\"candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host\","
      "\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}", PARLEY_MSG_CALL_ICE_CANDIDATE },
    { "{\"type\":\"call-accept\",\"recipientId\":\"u2\",\"callId\":\"c1\"}",
      PARLEY_MSG_CALL_ACCEPT },
    { "{\"type\":\"call-reject\",\"recipientId\":\"u2\",\"callId\":\"c1\",\"reason\":\"busy\"}",
      PARLEY_MSG_CALL_REJECT },
    { "{\"type\":\"call-hangup\",\"id\":\"h1\",\"recipientId\":\"u2\",\"callId\":\"c1\"}",
      PARLEY_MSG_CALL_HANGUP },
    /* Member order does not matter; unknown members and a senderId are allowed. */
    { "{\"callId\":\"A.b:c_d-9\",\"recipientId\":\"u2\",\"senderId\":{\"x\":1},"
      "\"type\":\"call-accept\",\"extra\":[1,2,{\"a\":null}]}", PARLEY_MSG_CALL_ACCEPT },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    ParleyEnvelope env;
    const char *detail = "unset";
    g_autoptr(JsonNode) ref = reference_parse (cases[i].json, -1);

    g_test_message ("case: %s", cases[i].json);
    g_assert_cmpint (parse (cases[i].json, &env, &detail), ==, PARLEY_PROTO_OK);
    g_assert_null (detail);
    g_assert_cmpint (env.type, ==, cases[i].type);
    g_assert_nonnull (ref);
    g_assert_cmpuint (env.n_members, ==, json_object_get_size (json_node_get_object (ref)));
    g_assert_cmpstr (parley_msg_type_name (env.type), ==,
                     json_object_get_string_member (json_node_get_object (ref), "type"));
  }
}

/* The well-known fields of a scanned envelope hold what json-glib reads. */
static void
test_fields (void)
{
  const char *json =
    "{\"type\":\"message\",\"id\":\"m1\",\"recipientId\":\"u2\",\"senderId\":\"u9\","
    "\"encryptedContent\":\"ab\\\"c\",\"seq\":41,\"timestamp\":1700000000000,"
    "\"state\":\"a\\u00e9\\ud83d\\ude00\",\"limit\":-3,\"more\":false}";
  g_autoptr(JsonNode) ref = reference_parse (json, -1);
  JsonObject *obj = json_node_get_object (ref);
  ParleyEnvelope env;
  g_autofree char *type_name = NULL;
  g_autofree char *id = NULL;
  g_autofree char *content = NULL;
  g_autofree char *content_raw = NULL;
  g_autofree char *state = NULL;
  g_autofree char *more = NULL;
  gboolean ok;

  g_assert_cmpint (parley_envelope_scan (json, strlen (json), &env), ==, PARLEY_PROTO_OK);
  type_name = span_str (env.type_name);
  g_assert_cmpstr (type_name, ==, "message");
  id = span_str (env.id);
  g_assert_cmpstr (id, ==, "m1");
  g_assert_true (parley_span_equal (env.recipient_id, "u2"));
  g_assert_true (parley_span_equal (env.sender_id, "u9"));
  g_assert_false (parley_span_equal (env.sender_id, "u"));

  /* encryptedContent keeps its quotes; decoding it gives json-glib's string. */
  content_raw = span_str (env.encrypted_content);
  g_assert_cmpstr (content_raw, ==, "\"ab\\\"c\"");
  content = parley_span_dup_string (env.encrypted_content);
  g_assert_cmpstr (content, ==, json_object_get_string_member (obj, "encryptedContent"));

  /* An escaped string keeps its quotes and decodes to json-glib's string. */
  g_assert_cmpint (env.state.ptr[0], ==, '"');
  state = parley_span_dup_string (env.state);
  g_assert_cmpstr (state, ==, json_object_get_string_member (obj, "state"));
  g_assert_true (parley_span_equal (env.state, json_object_get_string_member (obj, "state")));

  g_assert_cmpint (parley_span_to_int64 (env.seq, &ok), ==, 41);
  g_assert_true (ok);
  g_assert_cmpint (parley_span_to_int64 (env.timestamp, &ok), ==,
                   json_object_get_int_member (obj, "timestamp"));
  g_assert_true (ok);
  g_assert_cmpint (parley_span_to_int64 (env.limit, &ok), ==, -3);
  more = span_str (env.more);
  g_assert_cmpstr (more, ==, "false");
  g_assert_null (env.call_id.ptr);
  g_assert_null (env.sdp.ptr);

  g_assert_nonnull (parley_envelope_get_member (&env, PARLEY_FIELD_SEQ));
  g_assert_cmpint (parley_envelope_get_member (&env, PARLEY_FIELD_SEQ)->kind, ==,
                   PARLEY_JSON_NUMBER);
  g_assert_cmpint (parley_envelope_get_member (&env, PARLEY_FIELD_MORE)->kind, ==,
                   PARLEY_JSON_FALSE);
  g_assert_null (parley_envelope_get_member (&env, PARLEY_FIELD_CALL_ID));
  g_assert_true (parley_envelope_has_key (&env, "timestamp"));
  g_assert_false (parley_envelope_has_key (&env, "timestam"));

  /* Member spans run from the key's quote to the value's end. */
  for (guint i = 0; i < env.n_members; i++) {
    const ParleyEnvelopeMember *m = &env.members[i];

    g_assert_cmpint (m->member.ptr[0], ==, '"');
    g_assert_true (m->value.ptr + m->value.len == m->member.ptr + m->member.len);
  }
}

/* Invalid requests: status and the field named in detail. */
static void
test_invalid_requests (void)
{
  g_autoptr(GString) huge_content = g_string_new ("{\"type\":\"message\",\"id\":\"m1\","
                                                  "\"recipientId\":\"u2\",\"encryptedContent\":\"");
  struct {
    const char *json;
    ParleyProtoStatus status;
    const char *detail;
  } cases[] = {
    { "{}", PARLEY_PROTO_MISSING_FIELD, "type" },
    { "{\"id\":\"x\"}", PARLEY_PROTO_MISSING_FIELD, "type" },
    { "{\"type\":1}", PARLEY_PROTO_INVALID_FIELD, "type" },
    { "{\"type\":null}", PARLEY_PROTO_INVALID_FIELD, "type" },
    { "{\"type\":\"\"}", PARLEY_PROTO_UNKNOWN_TYPE, "type" },
    { "{\"type\":\"bogus\"}", PARLEY_PROTO_UNKNOWN_TYPE, "type" },
    { "{\"type\":\"Ping\"}", PARLEY_PROTO_UNKNOWN_TYPE, "type" },
    { "{\"type\":\"hello\"}", PARLEY_PROTO_UNKNOWN_TYPE, "type" },
    { "{\"type\":\"ack\",\"ref\":\"x\"}", PARLEY_PROTO_UNKNOWN_TYPE, "type" },
    { "{\"type\":\"pong\"}", PARLEY_PROTO_UNKNOWN_TYPE, "type" },
    { "{\"type\":\"ping\",\"id\":\"\"}", PARLEY_PROTO_INVALID_FIELD, "id" },
    { "{\"type\":\"ping\",\"id\":7}", PARLEY_PROTO_INVALID_FIELD, "id" },
    { "{\"type\":\"ping\",\"id\":\"a b\"}", PARLEY_PROTO_INVALID_FIELD, "id" },
    { "{\"type\":\"ping\",\"id\":\"a\\u0062\"}", PARLEY_PROTO_INVALID_FIELD, "id" },
    { "{\"type\":\"ping\",\"id\":\"é\"}", PARLEY_PROTO_INVALID_FIELD, "id" },
    { "{\"type\":\"ping\",\"id\":\"a/b\"}", PARLEY_PROTO_INVALID_FIELD, "id" },
    { "{\"type\":\"ping\",\"id\":"
      "\"12345678901234567890123456789012345678901234567890123456789012345\"}",
      PARLEY_PROTO_INVALID_FIELD, "id" },
    { "{\"type\":\"auth\"}", PARLEY_PROTO_MISSING_FIELD, "token" },
    { "{\"type\":\"auth\",\"token\":42}", PARLEY_PROTO_INVALID_FIELD, "token" },
    { "{\"type\":\"auth\",\"token\":\"\"}", PARLEY_PROTO_INVALID_FIELD, "token" },
    { "{\"type\":\"message\",\"recipientId\":\"u2\",\"encryptedContent\":\"x\"}",
      PARLEY_PROTO_MISSING_FIELD, "id" },
    { "{\"type\":\"message\",\"id\":\"m1\",\"encryptedContent\":\"x\"}",
      PARLEY_PROTO_MISSING_FIELD, "recipientId" },
    { "{\"type\":\"message\",\"id\":\"m1\",\"recipientId\":\"u 2\",\"encryptedContent\":\"x\"}",
      PARLEY_PROTO_INVALID_FIELD, "recipientId" },
    { "{\"type\":\"message\",\"id\":\"m1\",\"recipientId\":\"u2\"}",
      PARLEY_PROTO_MISSING_FIELD, "encryptedContent" },
    { "{\"type\":\"message\",\"id\":\"m1\",\"recipientId\":\"u2\",\"encryptedContent\":{}}",
      PARLEY_PROTO_INVALID_FIELD, "encryptedContent" },
    { "{\"type\":\"received\"}", PARLEY_PROTO_MISSING_FIELD, "seq" },
    { "{\"type\":\"received\",\"seq\":0}", PARLEY_PROTO_INVALID_FIELD, "seq" },
    { "{\"type\":\"received\",\"seq\":-1}", PARLEY_PROTO_INVALID_FIELD, "seq" },
    { "{\"type\":\"received\",\"seq\":1.5}", PARLEY_PROTO_INVALID_FIELD, "seq" },
    { "{\"type\":\"received\",\"seq\":1e3}", PARLEY_PROTO_INVALID_FIELD, "seq" },
    { "{\"type\":\"received\",\"seq\":\"41\"}", PARLEY_PROTO_INVALID_FIELD, "seq" },
    { "{\"type\":\"received\",\"seq\":99999999999999999999999}", PARLEY_PROTO_INVALID_FIELD,
      "seq" },
    { "{\"type\":\"typing\",\"state\":\"active\"}", PARLEY_PROTO_MISSING_FIELD, "recipientId" },
    { "{\"type\":\"typing\",\"recipientId\":\"u2\"}", PARLEY_PROTO_MISSING_FIELD, "state" },
    { "{\"type\":\"typing\",\"recipientId\":\"u2\",\"state\":\"idle\"}",
      PARLEY_PROTO_INVALID_FIELD, "state" },
    { "{\"type\":\"typing\",\"recipientId\":\"u2\",\"state\":true}",
      PARLEY_PROTO_INVALID_FIELD, "state" },
    { "{\"type\":\"read\",\"recipientId\":\"u2\"}", PARLEY_PROTO_MISSING_FIELD, "messageId" },
    { "{\"type\":\"read\",\"messageId\":\"m1\"}", PARLEY_PROTO_MISSING_FIELD, "recipientId" },
    { "{\"type\":\"read\",\"recipientId\":\"u2\",\"messageId\":\"m\\n\"}",
      PARLEY_PROTO_INVALID_FIELD, "messageId" },
    { "{\"type\":\"sync\"}", PARLEY_PROTO_MISSING_FIELD, "since" },
    { "{\"type\":\"sync\",\"since\":-1}", PARLEY_PROTO_INVALID_FIELD, "since" },
    { "{\"type\":\"sync\",\"since\":0.0}", PARLEY_PROTO_INVALID_FIELD, "since" },
    { "{\"type\":\"sync\",\"since\":0,\"limit\":0}", PARLEY_PROTO_INVALID_FIELD, "limit" },
    { "{\"type\":\"sync\",\"since\":0,\"limit\":\"5\"}", PARLEY_PROTO_INVALID_FIELD, "limit" },
    { "{\"type\":\"call-offer\",\"callId\":\"c1\",\"sdp\":\"v=0\"}",
      PARLEY_PROTO_MISSING_FIELD, "recipientId" },
    { "{\"type\":\"call-offer\",\"recipientId\":\"u2\",\"sdp\":\"v=0\"}",
      PARLEY_PROTO_MISSING_FIELD, "callId" },
    { "{\"type\":\"call-offer\",\"recipientId\":\"u2\",\"callId\":\"c1\"}",
      PARLEY_PROTO_MISSING_FIELD, "sdp" },
    { "{\"type\":\"call-answer\",\"recipientId\":\"u2\",\"callId\":\"c1\",\"sdp\":[]}",
      PARLEY_PROTO_INVALID_FIELD, "sdp" },
    { "{\"type\":\"call-answer\",\"recipientId\":\"u2\",\"callId\":\"c1\",\"sdp\":\"\"}",
      PARLEY_PROTO_INVALID_FIELD, "sdp" },
    { "{\"type\":\"call-ice-candidate\",\"recipientId\":\"u2\",\"callId\":\"c1\"}",
      PARLEY_PROTO_MISSING_FIELD, "candidate" },
    { "{\"type\":\"call-ice-candidate\",\"recipientId\":\"u2\",\"callId\":\"c1\","
      "\"candidate\":\"x\"}",
      PARLEY_PROTO_INVALID_FIELD, "candidate" },
    { "{\"type\":\"call-accept\",\"recipientId\":\"u2\",\"callId\":\"\"}",
      PARLEY_PROTO_INVALID_FIELD, "callId" },
    { "{\"type\":\"call-reject\",\"recipientId\":\"u2\"}", PARLEY_PROTO_MISSING_FIELD, "callId" },
    { "{\"type\":\"call-hangup\",\"recipientId\":null,\"callId\":\"c1\"}",
      PARLEY_PROTO_INVALID_FIELD, "recipientId" },
    { "{\"type\":\"ping\"", PARLEY_PROTO_INVALID_JSON, NULL },
    { "[{\"type\":\"ping\"}]", PARLEY_PROTO_INVALID_JSON, NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    ParleyEnvelope env;
    const char *detail = "unset";

    g_test_message ("case: %s", cases[i].json);
    g_assert_cmpint (parse (cases[i].json, &env, &detail), ==, cases[i].status);
    g_assert_cmpstr (detail, ==, cases[i].detail);
    g_assert_nonnull (parley_proto_status_code (cases[i].status));
  }

  /* encryptedContent over 64 KiB. */
  for (int i = 0; i < PARLEY_ENVELOPE_MAX_CONTENT + 1; i++)
    g_string_append_c (huge_content, 'A' + i % 26);
  g_string_append (huge_content, "\"}");
  {
    ParleyEnvelope env;
    const char *detail = NULL;

    g_assert_cmpint (parley_envelope_parse_request (huge_content->str, huge_content->len, &env,
                                                    &detail),
                     ==, PARLEY_PROTO_CONTENT_TOO_LARGE);
    g_assert_cmpstr (detail, ==, "encryptedContent");
    g_assert_cmpstr (parley_proto_status_code (PARLEY_PROTO_CONTENT_TOO_LARGE), ==,
                     "content-too-large");
    /* Exactly 64 KiB is fine. */
    g_string_erase (huge_content, huge_content->len - 3, 1);
    g_assert_cmpint (parley_envelope_parse_request (huge_content->str, huge_content->len, &env,
                                                    &detail),
                     ==, PARLEY_PROTO_OK);
  }
}

/* On failure, a valid id survives so the error can carry it as ref. */
static void
test_error_ref (void)
{
  ParleyEnvelope env;
  const char *detail;
  g_autofree char *id = NULL;

  g_assert_cmpint (parse ("{\"id\":\"m7\",\"type\":\"message\",\"recipientId\":\"u2\"}", &env,
                          &detail),
                   ==, PARLEY_PROTO_MISSING_FIELD);
  id = span_str (env.id);
  g_assert_cmpstr (id, ==, "m7");

  g_assert_cmpint (parse ("{\"id\":\"m7\",\"type\":\"nope\"}", &env, &detail), ==,
                   PARLEY_PROTO_UNKNOWN_TYPE);
  g_assert_nonnull (env.id.ptr);

  /* Invalid JSON after a complete id member. */
  g_assert_cmpint (parse ("{\"id\":\"m7\",\"type\":\"ping\",}", &env, &detail), ==,
                   PARLEY_PROTO_INVALID_JSON);
  g_assert_nonnull (env.id.ptr);

  /* An invalid id is never echoed. */
  g_assert_cmpint (parse ("{\"id\":\"m 7\",\"type\":\"message\"}", &env, &detail), ==,
                   PARLEY_PROTO_INVALID_FIELD);
  g_assert_cmpstr (detail, ==, "id");
  g_assert_null (env.id.ptr);
  g_assert_cmpint (parse ("{\"id\":{\"a\":1},\"type\":\"nope\"}", &env, &detail), ==,
                   PARLEY_PROTO_UNKNOWN_TYPE);
  g_assert_null (env.id.ptr);
}

static const char *invalid_json[] = {
  "",
  " ",
  "{",
  "}",
  "[]",
  "\"str\"",
  "1",
  "null",
  "{\"a\"}",
  "{\"a\":}",
  "{\"a\" 1}",
  "{\"a\":1,}",
  "{,\"a\":1}",
  "{\"a\":1 \"b\":2}",
  "{a:1}",
  "{'a':1}",
  "{\"a\":1}x",
  "{\"a\":1}{}",
  "{\"a\":1} 1",
  "{\"a\":[1,]}",
  "{\"a\":[,1]}",
  "{\"a\":[1 2]}",
  "{\"a\":{\"b\"}}",
  "{\"a\":{\"b\":1,}}",
  "{\"a\":[}",
  "{\"a\":{]}",
  "{\"a\":tru}",
  "{\"a\":True}",
  "{\"a\":nul}",
  "{\"a\":falsey}",
  "{\"a\":undefined}",
  /* Numbers. */
  "{\"a\":01}",
  "{\"a\":-01}",
  "{\"a\":1.}",
  "{\"a\":.5}",
  "{\"a\":-}",
  "{\"a\":+1}",
  "{\"a\":1e}",
  "{\"a\":1e+}",
  "{\"a\":1E-}",
  "{\"a\":0x10}",
  "{\"a\":NaN}",
  "{\"a\":Infinity}",
  "{\"a\":-Infinity}",
  "{\"a\":1.5.5}",
  "{\"a\":--1}",
  /* Strings. */
  "{\"a\":\"unterminated}",
  "{\"a\":\"bad escape \\x\"}",
  "{\"a\":\"bad escape \\U0041\"}",
  "{\"a\":\"short \\u12\"}",
  "{\"a\":\"short \\u12G4\"}",
  "{\"a\":\"lone high \\ud800\"}",
  "{\"a\":\"lone high then text \\ud800abcdef\"}",
  "{\"a\":\"high then non-low \\ud800\\u0041\"}",
  "{\"a\":\"two highs \\ud800\\ud800\"}",
  "{\"a\":\"lone low \\udc00\"}",
  "{\"a\":\"escaped nul \\u0000\"}",
  "{\"a\":\"tab\tinside\"}",
  "{\"a\":\"newline\ninside\"}",
  "{\"a\":\"\x01\"}",
  "{\"a\":\"\x1f\"}",
  "{\"a\":\"overlong \xc0\xaf\"}",
  "{\"a\":\"overlong \xe0\x80\xaf\"}",
  "{\"a\":\"surrogate \xed\xa0\x80\"}",
  "{\"a\":\"too big \xf4\x90\x80\x80\"}",
  "{\"a\":\"stray \x80\"}",
  "{\"a\":\"truncated \xe2\x82\"}",
  "{\"a\":\"\xff\"}",
  "{\"a\xc0\":1}",
  "{\"a\":1,\"\xe9\":2}",
  /* Duplicates. */
  "{\"a\":1,\"a\":2}",
  "{\"a\":1,\"b\":2,\"a\":3}",
  "{\"a\":1,\"\\u0061\":2}",
  "{\"\\u0061\":1,\"\\u0061\":2}",
  "{\"\\u0061\":1,\"a\":2}",
  "{\"type\":\"ping\",\"type\":\"ping\"}",
  "{\"type\":\"ping\",\"\\u0074ype\":\"ping\"}",
  "{\"id\":\"a\",\"\\u0069\\u0064\":\"b\"}",
  "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
  /* Stray bytes outside strings. */
  "{\"a\":1\x01}",
  "\xef\xbb\xbf{\"a\":1}",   /* A byte order mark. */
  "{\"a\":[1]]}",
  "{\"a\":{}}}",
  "{\"a\":\"x\"\"b\":1}",
};

static void
test_invalid_json (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (invalid_json); i++) {
    ParleyEnvelope env;
    const char *text = invalid_json[i];
    gsize len = strlen (text);

    g_autofree char *shown = g_strescape (text, NULL);

    g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, shown);
    g_assert_cmpint (parley_envelope_scan (text, len, &env), ==, PARLEY_PROTO_INVALID_JSON);
    g_assert_cmpint (parley_envelope_parse_request (text, len, &env, NULL), ==,
                     PARLEY_PROTO_INVALID_JSON);
  }

  /* NUL bytes: raw in a string, raw between tokens and trailing. */
  {
    static const char in_string[] = "{\"a\":\"x\0y\"}";
    static const char between[] = "{\"a\":1,\0\"b\":2}";
    static const char trailing[] = "{\"a\":1}\0";
    ParleyEnvelope env;

    g_assert_cmpint (parley_envelope_scan (in_string, sizeof in_string - 1, &env), ==,
                     PARLEY_PROTO_INVALID_JSON);
    g_assert_cmpint (parley_envelope_scan (between, sizeof between - 1, &env), ==,
                     PARLEY_PROTO_INVALID_JSON);
    g_assert_cmpint (parley_envelope_scan (trailing, sizeof trailing - 1, &env), ==,
                     PARLEY_PROTO_INVALID_JSON);
    g_assert_cmpint (parley_envelope_scan (NULL, 0, &env), ==, PARLEY_PROTO_INVALID_JSON);
  }
}

static const char *valid_json[] = {
  "{}",
  " { } ",
  "{\"\":0}",
  "{\"a\":-0}",
  "{\"a\":-0.0e+0}",
  "{\"a\":1E5}",
  "{\"a\":1.25e-10}",
  "{\"a\":123456789012345678901234567890}",
  "{\"a\":[]}",
  "{\"a\":[[],{},[{}]]}",
  "{\"a\":{\"a\":1,\"a\":2}}",   /* Only top-level keys must be unique. */
  "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
  "{\"a\":\"\\u00e9\\u20AC\\ud83d\\ude00\\uDBFF\\uDFFF\"}",
  "{\"a\":\"é€😀\x7f\"}",
  "{\"a\":true,\"b\":false,\"c\":null}",
  "{\"a\":1,\"A\":2}",
  "{\"a\":1,\"\\u0041\":2}",
  "{\"\\u0061b\":1,\"a\\u0062c\":2}",
  "{\"a\"\n:\r1\t,\"b\" :[ 1 , 2 ] }",
  "{\"a\":\"12345678abcdefgh\\u0041ijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\"}",
};

static void
test_valid_json (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (valid_json); i++) {
    ParleyEnvelope env;
    g_autoptr(JsonNode) ref = reference_parse (valid_json[i], -1);

    g_test_message ("case: %s", valid_json[i]);
    g_assert_cmpint (parley_envelope_scan (valid_json[i], strlen (valid_json[i]), &env), ==,
                     PARLEY_PROTO_OK);
    g_assert_true (parley_json_validate (valid_json[i], strlen (valid_json[i])));
    g_assert_nonnull (ref);
    g_assert_cmpuint (env.n_members, ==, json_object_get_size (json_node_get_object (ref)));
  }

  /* parley_json_validate() takes any value at the top. */
  g_assert_true (parley_json_validate ("[1,2]", 5));
  g_assert_true (parley_json_validate (" \"x\" ", 5));
  g_assert_true (parley_json_validate ("-1.5e3", 6));
  g_assert_true (parley_json_validate ("null", 4));
  g_assert_false (parley_json_validate ("[1,2", 4));
  g_assert_false (parley_json_validate ("", 0));
  g_assert_false (parley_json_validate ("1 2", 3));
}

/* Every proper prefix of a valid envelope is invalid, and never crashes. */
static void
test_truncation (void)
{
  const char *texts[] = {
    "{\"type\":\"call-ice-candidate\",\"recipientId\":\"u2\",\"callId\":\"c1\","
    "\"candidate\":{\"candidate\":\"candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host\","
    "\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"x\":[true,false,null,-1.5e+3,\"\\ud83d\\ude00\"]}}",
    "{\"type\":\"message\",\"id\":\"m1\",\"recipientId\":\"u2\",\"encryptedContent\":\"é\\n€\"}",
  };

  for (gsize t = 0; t < G_N_ELEMENTS (texts); t++) {
    gsize len = strlen (texts[t]);
    ParleyEnvelope env;

    g_assert_cmpint (parse (texts[t], &env, NULL), ==, PARLEY_PROTO_OK);
    for (gsize i = 0; i < len; i++) {
      /* A heap copy of exactly i bytes, so that ASan catches any overread. */
      g_autofree char *prefix = g_memdup2 (texts[t], MAX (i, 1));

      g_assert_cmpint (parley_envelope_parse_request (prefix, i, &env, NULL), ==,
                       PARLEY_PROTO_INVALID_JSON);
      g_assert_false (parley_json_validate (prefix, i));
    }
  }
}

static void
test_depth (void)
{
  for (guint depth = 1; depth <= 40; depth++) {
    g_autoptr(GString) s = g_string_new (NULL);
    ParleyEnvelope env;
    g_autoptr(JsonNode) ref = NULL;

    /* The envelope itself is level 1; then depth - 1 nested arrays and objects. */
    g_string_append (s, "{\"type\":\"ping\",\"x\":");
    for (guint i = 1; i < depth; i++)
      g_string_append (s, i % 2 ? "[" : "{\"k\":");
    g_string_append (s, "0");
    for (guint i = depth - 1; i >= 1; i--)
      g_string_append (s, i % 2 ? "]" : "}");
    if (depth == 1) {
      g_string_truncate (s, 0);
      g_string_append (s, "{\"type\":\"ping\",\"x\":0");
    }
    g_string_append (s, "}");

    ref = reference_parse (s->str, s->len);
    g_assert_nonnull (ref);
    g_assert_cmpint (parley_envelope_parse_request (s->str, s->len, &env, NULL), ==,
                     depth <= PARLEY_ENVELOPE_MAX_DEPTH ? PARLEY_PROTO_OK
                                                        : PARLEY_PROTO_INVALID_JSON);
  }

  /* Very deep nesting is refused without recursion. */
  {
    gsize n = 200000;
    g_autofree char *deep = g_malloc (n * 2 + 16);
    gsize len = 0;
    ParleyEnvelope env;

    len += g_snprintf (deep, 16, "{\"x\":");
    memset (deep + len, '[', n);
    len += n;
    memset (deep + len, ']', n);
    len += n;
    deep[len++] = '}';
    g_assert_cmpint (parley_envelope_scan (deep, len, &env), ==, PARLEY_PROTO_INVALID_JSON);
    g_assert_false (parley_json_validate (deep + 5, 2 * n));
  }
}

static void
test_limits (void)
{
  g_autoptr(GString) s = g_string_new ("{\"type\":\"ping\"");
  ParleyEnvelope env;

  /* Requests leave room for the members the server adds. */
  for (int i = 1; i < PARLEY_ENVELOPE_MAX_REQUEST_MEMBERS; i++)
    g_string_append_printf (s, ",\"k%d\":%d", i, i);
  g_string_append_c (s, '}');
  g_assert_cmpint (parley_envelope_parse_request (s->str, s->len, &env, NULL), ==,
                   PARLEY_PROTO_OK);
  g_assert_cmpuint (env.n_members, ==, PARLEY_ENVELOPE_MAX_REQUEST_MEMBERS);
  g_string_truncate (s, s->len - 1);
  g_string_append (s, ",\"one-too-many\":0}");
  g_assert_cmpint (parley_envelope_parse_request (s->str, s->len, &env, NULL), ==,
                   PARLEY_PROTO_INVALID_JSON);
  g_assert_cmpint (parley_envelope_scan (s->str, s->len, &env), ==, PARLEY_PROTO_OK);

  /* The scanner itself takes up to PARLEY_ENVELOPE_MAX_MEMBERS. */
  g_string_truncate (s, 0);
  g_string_append (s, "{\"type\":\"ping\"");
  for (int i = 1; i < PARLEY_ENVELOPE_MAX_MEMBERS; i++)
    g_string_append_printf (s, ",\"k%d\":%d", i, i);
  g_string_append_c (s, '}');
  g_assert_cmpint (parley_envelope_scan (s->str, s->len, &env), ==, PARLEY_PROTO_OK);
  g_assert_cmpuint (env.n_members, ==, PARLEY_ENVELOPE_MAX_MEMBERS);
  g_string_truncate (s, s->len - 1);
  g_string_append (s, ",\"one-too-many\":0}");
  g_assert_cmpint (parley_envelope_scan (s->str, s->len, &env), ==, PARLEY_PROTO_INVALID_JSON);

  /* Huge numbers scan but are not integers. */
  {
    g_autoptr(GString) num = g_string_new ("{\"type\":\"received\",\"seq\":");
    const char *detail = NULL;

    for (int i = 0; i < 5000; i++)
      g_string_append_c (num, '9');
    g_string_append_c (num, '}');
    g_assert_cmpint (parley_envelope_parse_request (num->str, num->len, &env, &detail), ==,
                     PARLEY_PROTO_INVALID_FIELD);
    g_assert_cmpstr (detail, ==, "seq");
  }

  /* Input over the cap. */
  {
    gsize len = PARLEY_ENVELOPE_MAX_INPUT + 1;
    g_autofree char *big = g_malloc (len);

    memset (big, ' ', len);
    memcpy (big, "{\"type\":\"ping\"}", 15);
    g_assert_cmpint (parley_envelope_scan (big, len, &env), ==, PARLEY_PROTO_INVALID_JSON);
    g_assert_cmpint (parley_envelope_scan (big, len - 1, &env), ==, PARLEY_PROTO_OK);
  }
}

/* Whatever the scanner accepts, json-glib accepts with the same members,
 * over a set of mutations of a valid envelope. */
static void
test_differential (void)
{
  const char *base =
    "{\"type\":\"call-ice-candidate\",\"recipientId\":\"u2\",\"callId\":\"c1\","
    "\"candidate\":{\"candidate\":\"a\\u00e9\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0},"
    "\"n\":[-1.5e3,true,null]}";
  static const char replacements[] = "{}[]\":,\\u0-1eE.+ tfn\x01\x80\xc3\xa9x";
  gsize len = strlen (base);
  guint accepted = 0, total = 0;
  GRand *rand = g_rand_new_with_seed (20240601);

  for (gsize pos = 0; pos < len; pos++) {
    for (gsize r = 0; r < sizeof replacements - 1; r++) {
      for (int mode = 0; mode < 3; mode++) {
        g_autoptr(GString) s = g_string_new_len (base, len);
        ParleyEnvelope env;

        if (mode == 0)
          s->str[pos] = replacements[r];
        else if (mode == 1)
          g_string_insert_c (s, pos, replacements[r]);
        else
          g_string_erase (s, pos, 1 + g_rand_int_range (rand, 0, 3) % (len - pos));

        total++;
        if (parley_envelope_scan (s->str, s->len, &env) == PARLEY_PROTO_OK) {
          g_autoptr(JsonNode) ref = reference_parse (s->str, s->len);

          accepted++;
          if (ref == NULL || !JSON_NODE_HOLDS_OBJECT (ref))
            g_error ("accepted but json-glib refuses: %s", s->str);
          g_assert_cmpuint (env.n_members, ==, json_object_get_size (json_node_get_object (ref)));
        }
      }
    }
  }
  g_rand_free (rand);
  g_test_message ("%u of %u mutations accepted", accepted, total);
  g_assert_cmpuint (accepted, >, 0);
  g_assert_cmpuint (accepted, <, total);
}

static void
check_splice (const char         *json,
              const char         *prefix,
              const char * const *drop,
              const char * const *expected_keys)
{
  ParleyEnvelope env;
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(JsonNode) orig = reference_parse (json, -1);
  g_autoptr(JsonNode) spliced = NULL;
  g_autoptr(GList) members = NULL;
  g_autofree char *text = NULL;
  JsonObject *obj, *orig_obj;
  guint n = 0;

  g_assert_cmpint (parley_envelope_scan (json, strlen (json), &env), ==, PARLEY_PROTO_OK);
  g_byte_array_append (out, (const guint8 *) "HDR", 3);   /* Splicing appends. */
  parley_envelope_splice (&env, out, prefix, prefix ? strlen (prefix) : 0, drop);
  g_assert_cmpmem (out->data, 3, "HDR", 3);
  text = g_strndup ((const char *) out->data + 3, out->len - 3);
  g_test_message ("spliced: %s", text);

  spliced = reference_parse (text, -1);
  g_assert_nonnull (spliced);
  obj = json_node_get_object (spliced);
  orig_obj = json_node_get_object (orig);

  /* The keys, in order, are exactly the expected ones. */
  members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next, n++) {
    g_assert_nonnull (expected_keys[n]);
    g_assert_cmpstr (l->data, ==, expected_keys[n]);
  }
  g_assert_null (expected_keys[n]);

  /* Every kept member has its original value. */
  for (GList *l = members; l != NULL; l = l->next) {
    if (json_object_has_member (orig_obj, l->data) && g_strcmp0 (l->data, "senderId") != 0)
      g_assert_true (json_node_equal (json_object_get_member (obj, l->data),
                                      json_object_get_member (orig_obj, l->data)));
  }

  /* The output is itself a valid envelope for the scanner. */
  g_assert_cmpint (parley_envelope_scan (text, strlen (text), &env), ==, PARLEY_PROTO_OK);
}

static void
test_splice (void)
{
  const char *drop_seq[] = { "seq", "timestamp", NULL };
  const char *none[] = { NULL };

  {
    const char *expected[] = { "senderId", "type", "id", "recipientId", "encryptedContent", NULL };

    check_splice ("{\"type\":\"message\",\"id\":\"m1\",\"senderId\":\"evil\","
                  "\"recipientId\":\"u2\","
                  "\"encryptedContent\":\"AAE\\\"C\",\"seq\":9,\"timestamp\":1}",
                  "\"senderId\":\"u1\"", drop_seq, expected);
  }
  {
    /* An escaped senderId is dropped as well, and whitespace is kept intact. */
    const char *expected[] = { "senderId", "type", "recipientId", "callId", "candidate", NULL };

    check_splice ("{ \"type\" : \"call-ice-candidate\" ,\"\\u0073enderId\":\"evil\",\n"
                  "\"recipientId\":\"u2\",\"callId\":\"c1\",\"candidate\": {\"candidate\":\"c\","
                  "\"sdpMid\":\"0\",\"sdpMLineIndex\":0} }",
                  "\"senderId\":\"u1\"", none, expected);
  }
  {
    /* No prefix. */
    const char *expected[] = { "type", "callId", NULL };

    check_splice ("{\"senderId\":\"x\",\"type\":\"call-accept\",\"callId\":\"c1\"}", NULL, NULL,
                  expected);
  }
  {
    /* Everything dropped, with and without a prefix. */
    const char *drop_all[] = { "type", "callId", NULL };
    const char *empty[] = { NULL };
    const char *only_prefix[] = { "senderId", "seq", NULL };

    check_splice ("{\"type\":\"call-accept\",\"callId\":\"c1\"}", NULL, drop_all, empty);
    check_splice ("{\"type\":\"call-accept\",\"callId\":\"c1\"}",
                  "\"senderId\":\"u1\",\"seq\":3", drop_all, only_prefix);
    check_splice ("{}", "\"senderId\":\"u1\",\"seq\":3", NULL, only_prefix);
  }
  {
    /* A drop key given with escapes in the envelope. */
    const char *drop_ts[] = { "timestamp", NULL };
    const char *expected[] = { "senderId", "type", NULL };

    check_splice ("{\"type\":\"read\",\"\\u0074imestamp\":5}", "\"senderId\":\"u1\"", drop_ts,
                  expected);
  }
}

static void
test_append_string (void)
{
  const char *strings[] = {
    "",
    "plain",
    "quote \" backslash \\ slash /",
    "controls \b\f\n\r\t \x01\x1f end",
    "unicode é € 😀",
    "\x7f del",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++) {
    g_autoptr(GByteArray) out = g_byte_array_new ();
    g_autofree char *doc = NULL;
    g_autoptr(JsonNode) ref = NULL;
    ParleySpan span;
    g_autofree char *back = NULL;

    parley_json_append_string (out, strings[i], -1);
    doc = g_strdup_printf ("{\"k\":%.*s}", (int) out->len, out->data);
    ref = reference_parse (doc, -1);
    g_assert_nonnull (ref);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (ref), "k"), ==,
                     strings[i]);
    g_assert_true (parley_json_validate ((const char *) out->data, out->len));

    span.ptr = (const char *) out->data;
    span.len = out->len;
    back = parley_span_dup_string (span);
    g_assert_cmpstr (back, ==, strings[i]);
  }

  /* Invalid UTF-8 becomes U+FFFD; an explicit length may hold NUL-free prefixes. */
  {
    g_autoptr(GByteArray) out = g_byte_array_new ();

    parley_json_append_string (out, "a\xc0\xaf" "b\xe2\x82", -1);
    g_assert_cmpmem (out->data, out->len,
                     "\"a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\"",
                     strlen ("\"a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\""));
    g_assert_true (parley_json_validate ((const char *) out->data, out->len));

    /* NUL cannot be written as \u0000, which the scanner refuses. */
    g_byte_array_set_size (out, 0);
    parley_json_append_string (out, "a\0b", 3);
    g_assert_cmpmem (out->data, out->len, "\"a\xef\xbf\xbd" "b\"", 7);
    g_assert_true (parley_json_validate ((const char *) out->data, out->len));

    g_byte_array_set_size (out, 0);
    parley_json_append_string (out, "abcdef", 3);
    g_assert_cmpmem (out->data, out->len, "\"abc\"", 5);
  }
}

static void
test_int64 (void)
{
  struct {
    const char *text;
    gboolean ok;
    gint64 value;
  } cases[] = {
    { "0", TRUE, 0 },
    { "-0", TRUE, 0 },
    { "41", TRUE, 41 },
    { "-41", TRUE, -41 },
    { "9223372036854775807", TRUE, G_MAXINT64 },
    { "-9223372036854775808", TRUE, G_MININT64 },
    { "9223372036854775808", FALSE, 0 },
    { "-9223372036854775809", FALSE, 0 },
    { "99999999999999999999", FALSE, 0 },
    { "", FALSE, 0 },
    { "-", FALSE, 0 },
    { "01", FALSE, 0 },
    { "1.0", FALSE, 0 },
    { "1e3", FALSE, 0 },
    { "+1", FALSE, 0 },
    { "\"1\"", FALSE, 0 },
    { "1 ", FALSE, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    ParleySpan s = { cases[i].text, strlen (cases[i].text) };
    gboolean ok = !cases[i].ok;
    gint64 v = parley_span_to_int64 (s, &ok);

    g_test_message ("case: %s", cases[i].text);
    g_assert_cmpint (ok, ==, cases[i].ok);
    g_assert_cmpint (v, ==, cases[i].value);
  }

  {
    ParleySpan absent = { NULL, 0 };
    gboolean ok = TRUE;

    g_assert_cmpint (parley_span_to_int64 (absent, &ok), ==, 0);
    g_assert_false (ok);
    g_assert_null (parley_span_dup_string (absent));
    g_assert_false (parley_span_equal (absent, ""));
  }
}

static void
test_ids (void)
{
  g_assert_true (parley_id_is_valid ("a", 1));
  g_assert_true (parley_id_is_valid ("Az09_.:-", 8));
  g_assert_true (parley_id_is_valid ("12345678901234567890123456789012"
                                     "34567890123456789012345678901234", 64));
  g_assert_false (parley_id_is_valid ("12345678901234567890123456789012"
                                      "345678901234567890123456789012345", 65));
  g_assert_false (parley_id_is_valid ("", 0));
  g_assert_false (parley_id_is_valid (NULL, 0));
  g_assert_false (parley_id_is_valid ("a b", 3));
  g_assert_false (parley_id_is_valid ("a\0b", 3));
  g_assert_false (parley_id_is_valid ("é", 2));
  g_assert_false (parley_id_is_valid ("a/b", 3));
  g_assert_false (parley_id_is_valid ("a\"b", 3));
}

static void
test_names (void)
{
  for (ParleyMsgType t = PARLEY_MSG_AUTH; t < PARLEY_MSG_N_TYPES; t++) {
    const char *name = parley_msg_type_name (t);

    g_assert_nonnull (name);
    g_assert_cmpint (parley_msg_type_from_name (name, strlen (name)), ==, t);
  }
  g_assert_cmpint (parley_msg_type_from_name ("call-", 5), ==, PARLEY_MSG_UNKNOWN);
  g_assert_cmpint (parley_msg_type_from_name ("", 0), ==, PARLEY_MSG_UNKNOWN);
  g_assert_cmpstr (parley_field_name (PARLEY_FIELD_RECIPIENT_ID), ==, "recipientId");
  g_assert_null (parley_field_name (PARLEY_FIELD_OTHER));
  g_assert_cmpstr (parley_proto_status_code (PARLEY_PROTO_INVALID_JSON), ==, "invalid-json");
  g_assert_cmpstr (parley_proto_status_code (PARLEY_PROTO_UNKNOWN_TYPE), ==, "unknown-type");
  g_assert_cmpstr (parley_proto_status_code (PARLEY_PROTO_MISSING_FIELD), ==, "missing-field");
  g_assert_cmpstr (parley_proto_status_code (PARLEY_PROTO_INVALID_FIELD), ==, "invalid-field");
  g_assert_null (parley_proto_status_code (PARLEY_PROTO_OK));

  /* A type written with escapes is still recognised. */
  {
    const char *json = "{\"type\":\"p\\u0069ng\"}";
    ParleyEnvelope env;

    g_assert_cmpint (parse (json, &env, NULL), ==, PARLEY_PROTO_OK);
    g_assert_cmpint (env.type, ==, PARLEY_MSG_PING);
  }
}

/* Each well-known name, plain or escaped, maps to its field; near misses do not. */
static void
test_field_lookup (void)
{
  static const char *near_misses[] = { "Id", "ids", "i", "typ", "types", "senderid", "sender_id",
                                       "recipientID", "encryptedcontent", "candidatE", "xdp" };

  for (ParleyField f = PARLEY_FIELD_TYPE; f < PARLEY_FIELD_N_FIELDS; f++) {
    const char *name = parley_field_name (f);
    g_autofree char *plain = g_strdup_printf ("{\"%s\":0}", name);
    g_autofree char *escaped = g_strdup_printf ("{\"\\u%04x%s\":0}", name[0], name + 1);
    ParleyEnvelope env;

    g_assert_nonnull (name);
    g_assert_cmpint (parley_envelope_scan (plain, strlen (plain), &env), ==, PARLEY_PROTO_OK);
    g_assert_cmpint (env.members[0].field, ==, f);
    g_assert_true (parley_envelope_get_member (&env, f) == &env.members[0]);
    g_assert_cmpint (parley_envelope_scan (escaped, strlen (escaped), &env), ==, PARLEY_PROTO_OK);
    g_assert_cmpint (env.members[0].field, ==, f);
  }

  for (gsize i = 0; i < G_N_ELEMENTS (near_misses); i++) {
    g_autofree char *plain = g_strdup_printf ("{\"%s\":0}", near_misses[i]);
    ParleyEnvelope env;

    g_assert_cmpint (parley_envelope_scan (plain, strlen (plain), &env), ==, PARLEY_PROTO_OK);
    g_assert_cmpint (env.members[0].field, ==, PARLEY_FIELD_OTHER);
  }
}

static void
test_uuid7 (void)
{
  char out[PARLEY_UUID7_LEN + 1];
  g_autofree char *a = parley_uuid7_new ();
  g_autofree char *b = NULL;
  gint64 key = 0, key_a = 0, key_b = 0, earlier = 0, later = 0;

  /* The example of RFC 9562, appendix A.6. */
  parley_uuid7_format (out, G_GUINT64_CONSTANT (0x017F22E279B0), 0xCC3,
                       G_GUINT64_CONSTANT (0x18C4DC0C0C07398F));
  g_assert_cmpstr (out, ==, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  g_assert_true (parley_uuid7_key (out, &key));
  g_assert_cmpint (key, ==, (gint64) (G_GUINT64_CONSTANT (0x017F22E279B0) << 15 | 0xCC3 << 3 | 3));
  g_assert_true (parley_uuid7_key ("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", &key));
  g_assert_true (parley_id_is_valid (out, strlen (out)));

  /* Keys are positive and follow the time, then the bits after it. */
  parley_uuid7_format (out, G_GUINT64_CONSTANT (0xFFFFFFFFFFFF), 0xFFF, G_MAXUINT64);
  g_assert_true (parley_uuid7_key (out, &key));
  g_assert_cmpint (key, >, 0);
  parley_uuid7_format (out, 1000, 0xFFF, 0);
  g_assert_true (parley_uuid7_key (out, &earlier));
  parley_uuid7_format (out, 1001, 0, 0);
  g_assert_true (parley_uuid7_key (out, &later));
  g_assert_cmpint (earlier, <, later);

  /* Not version 7, not the RFC variant, not canonical: no key. */
  g_assert_false (parley_uuid7_key ("017f22e2-79b0-4cc3-98c4-dc0c0c07398f", &key));
  g_assert_false (parley_uuid7_key ("017f22e2-79b0-7cc3-c8c4-dc0c0c07398f", &key));
  g_assert_false (parley_uuid7_key ("017f22e2-79b0-7cc3-98c4-dc0c0c07398", &key));
  g_assert_false (parley_uuid7_key ("017f22e2-79b0-7cc3-98c4-dc0c0c07398f0", &key));
  g_assert_false (parley_uuid7_key ("017f22e279b0-7cc3-98c4-dc0c0c07398f-", &key));
  g_assert_false (parley_uuid7_key ("017f22e2-79b0-7cc3-98c4-dc0c0c07398g", &key));
  g_assert_false (parley_uuid7_key ("m1", &key));
  g_assert_false (parley_uuid7_key ("", &key));
  g_assert_false (parley_uuid7_key (NULL, &key));

  /* New ids: valid, distinct, of the current millisecond or later. */
  b = parley_uuid7_new ();
  g_assert_cmpstr (a, !=, b);
  g_assert_true (parley_uuid7_key (a, &key_a));
  g_assert_true (parley_uuid7_key (b, &key_b));
  g_assert_cmpint (key_a >> 15, <=, key_b >> 15);
  g_assert_cmpint (llabs ((key_b >> 15) - g_get_real_time () / 1000), <, 60000);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/envelope/valid-requests", test_valid_requests);
  g_test_add_func ("/envelope/fields", test_fields);
  g_test_add_func ("/envelope/invalid-requests", test_invalid_requests);
  g_test_add_func ("/envelope/error-ref", test_error_ref);
  g_test_add_func ("/envelope/invalid-json", test_invalid_json);
  g_test_add_func ("/envelope/valid-json", test_valid_json);
  g_test_add_func ("/envelope/truncation", test_truncation);
  g_test_add_func ("/envelope/depth", test_depth);
  g_test_add_func ("/envelope/limits", test_limits);
  g_test_add_func ("/envelope/differential", test_differential);
  g_test_add_func ("/envelope/splice", test_splice);
  g_test_add_func ("/envelope/append-string", test_append_string);
  g_test_add_func ("/envelope/int64", test_int64);
  g_test_add_func ("/envelope/ids", test_ids);
  g_test_add_func ("/envelope/uuid7", test_uuid7);
  g_test_add_func ("/envelope/names", test_names);
  g_test_add_func ("/envelope/field-lookup", test_field_lookup);

  return g_test_run ();
}
