/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-envelope.h: strict one-pass scanner and validator for protocol envelopes.
 *
 * The scanner validates one JSON text (RFC 8259, strictly) that must be an
 * object, and records every top-level member as spans into the input. It
 * never allocates. The server relays envelopes by splicing the recorded
 * members behind its own fields, without ever building a JSON tree.
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyJsonKind:
 *
 * The kind of a JSON value.
 */
typedef enum {
  PARLEY_JSON_STRING,
  PARLEY_JSON_NUMBER,
  PARLEY_JSON_OBJECT,
  PARLEY_JSON_ARRAY,
  PARLEY_JSON_TRUE,
  PARLEY_JSON_FALSE,
  PARLEY_JSON_NULL,
} ParleyJsonKind;

/**
 * ParleySpan:
 * @ptr: the first byte, or %NULL when the span is absent
 * @len: the length in bytes
 *
 * A slice of the scanned text. It is not NUL-terminated.
 */
typedef struct {
  const char *ptr;
  guint32 len;
} ParleySpan;

/**
 * ParleyMsgType:
 *
 * The envelope types of docs/protocol.md. The first group is sent by
 * clients, the second by the server.
 */
typedef enum {
  PARLEY_MSG_UNKNOWN = 0,
  PARLEY_MSG_AUTH,
  PARLEY_MSG_MESSAGE,
  PARLEY_MSG_RECEIVED,
  PARLEY_MSG_TYPING,
  PARLEY_MSG_READ,
  PARLEY_MSG_SYNC,
  PARLEY_MSG_PING,
  PARLEY_MSG_CALL_OFFER,
  PARLEY_MSG_CALL_ANSWER,
  PARLEY_MSG_CALL_ICE_CANDIDATE,
  PARLEY_MSG_CALL_ACCEPT,
  PARLEY_MSG_CALL_REJECT,
  PARLEY_MSG_CALL_HANGUP,
  /* server → client */
  PARLEY_MSG_HELLO,
  PARLEY_MSG_ACK,
  PARLEY_MSG_ERROR,
  PARLEY_MSG_PRESENCE,
  PARLEY_MSG_RECEIPT,
  PARLEY_MSG_PONG,
  PARLEY_MSG_N_TYPES,
} ParleyMsgType;

/**
 * ParleyField:
 *
 * The well-known top-level member names. %PARLEY_FIELD_OTHER is any other
 * name. The name of each is given by parley_field_name().
 */
typedef enum {
  PARLEY_FIELD_OTHER = 0,
  PARLEY_FIELD_TYPE,              /* "type" */
  PARLEY_FIELD_ID,                /* "id" */
  PARLEY_FIELD_RECIPIENT_ID,      /* "recipientId" */
  PARLEY_FIELD_SENDER_ID,         /* "senderId" */
  PARLEY_FIELD_CALL_ID,           /* "callId" */
  PARLEY_FIELD_ENCRYPTED_CONTENT, /* "encryptedContent" */
  PARLEY_FIELD_SDP,               /* "sdp" */
  PARLEY_FIELD_CANDIDATE,         /* "candidate" */
  PARLEY_FIELD_TOKEN,             /* "token" */
  PARLEY_FIELD_STATE,             /* "state" */
  PARLEY_FIELD_MESSAGE_ID,        /* "messageId" */
  PARLEY_FIELD_SINCE,             /* "since" */
  PARLEY_FIELD_LIMIT,             /* "limit" */
  PARLEY_FIELD_SEQ,               /* "seq" */
  PARLEY_FIELD_REF,               /* "ref" */
  PARLEY_FIELD_USER_ID,           /* "userId" */
  PARLEY_FIELD_STATUS,            /* "status" */
  PARLEY_FIELD_CODE,              /* "code" */
  PARLEY_FIELD_MESSAGE,           /* "message" (the text of an error) */
  PARLEY_FIELD_TIMESTAMP,         /* "timestamp" */
  PARLEY_FIELD_MORE,              /* "more" */
  PARLEY_FIELD_N_FIELDS,
} ParleyField;

/** The most top-level members an envelope may have. */
#define PARLEY_ENVELOPE_MAX_MEMBERS 24
/** The most top-level members a client request may have, leaving room for
 * the members the server adds when it relays it (`senderId`, `seq`, ...). */
#define PARLEY_ENVELOPE_MAX_REQUEST_MEMBERS 16
/** The deepest nesting of objects and arrays, the envelope itself counting as 1. */
#define PARLEY_ENVELOPE_MAX_DEPTH 32
/** The longest text the scanner accepts (a sanity cap above any frame limit). */
#define PARLEY_ENVELOPE_MAX_INPUT (1024 * 1024)
/** The longest `encryptedContent` (its raw JSON string, without the quotes). */
#define PARLEY_ENVELOPE_MAX_CONTENT 65536
/** The longest identifier. */
#define PARLEY_ID_MAX_LEN 64

/**
 * ParleyEnvelopeMember:
 * @member: from the key's opening quote to the value's last byte
 * @key: the key's raw text, without quotes
 * @value: the value's raw text; strings including their quotes
 * @kind: the value's kind
 * @field: the #ParleyField the key names
 * @key_escaped: whether the key contains escape sequences
 * @value_escaped: whether a string value contains escape sequences
 *
 * One top-level member of an envelope.
 */
typedef struct {
  ParleySpan member;
  ParleySpan key;
  ParleySpan value;
  guint8 kind;
  guint8 field;
  guint8 key_escaped : 1;
  guint8 value_escaped : 1;
} ParleyEnvelopeMember;

/**
 * ParleyEnvelope:
 * @type: the envelope type, %PARLEY_MSG_UNKNOWN when absent or unknown
 * @type_name: the raw `type` string without quotes
 * @members: every top-level member, in order of appearance
 * @n_members: the number of @members
 * @field_index: for each #ParleyField, 1 + its index in @members, or 0 when absent
 *
 * The result of scanning one envelope. Every span points into the scanned text.
 *
 * The well-known value spans (@id ... @more) follow one rule: a string
 * without escapes is given WITHOUT its quotes; a string with escapes is given
 * WITH its quotes (so `span.ptr[0] == '"'` tells them apart, and
 * parley_span_dup_string() decodes either); any other value is its raw text.
 * @encrypted_content is the exception: it is always the raw string WITH its
 * quotes, ready to be copied into another envelope.
 */
typedef struct {
  ParleyMsgType type;
  ParleySpan type_name;

  ParleySpan id, recipient_id, sender_id, call_id, encrypted_content, sdp, candidate,
             token, state, message_id, since, limit, seq, ref,
             user_id, status, code, message, timestamp, more;

  ParleyEnvelopeMember members[PARLEY_ENVELOPE_MAX_MEMBERS];
  guint n_members;
  guint8 field_index[PARLEY_FIELD_N_FIELDS];

  /*< private >*/
  const char *text;
  gsize text_len;
} ParleyEnvelope;

/**
 * ParleyProtoStatus:
 *
 * Validation results; each maps to an error code of docs/protocol.md
 * through parley_proto_status_code().
 */
typedef enum {
  PARLEY_PROTO_OK = 0,
  PARLEY_PROTO_INVALID_JSON,
  PARLEY_PROTO_UNKNOWN_TYPE,
  PARLEY_PROTO_MISSING_FIELD,
  PARLEY_PROTO_INVALID_FIELD,
  PARLEY_PROTO_CONTENT_TOO_LARGE,
} ParleyProtoStatus;

const char        *parley_proto_status_code       (ParleyProtoStatus      s);
const char        *parley_msg_type_name           (ParleyMsgType          type);
ParleyMsgType      parley_msg_type_from_name      (const char            *name,
                                                   gsize                  len);
const char        *parley_field_name              (ParleyField            field);

ParleyProtoStatus  parley_envelope_parse_request  (const char            *text,
                                                   gsize                  len,
                                                   ParleyEnvelope        *env,
                                                   const char           **detail);
ParleyProtoStatus  parley_envelope_scan           (const char            *text,
                                                   gsize                  len,
                                                   ParleyEnvelope        *env);
const ParleyEnvelopeMember *
                   parley_envelope_get_member     (const ParleyEnvelope  *env,
                                                   ParleyField            field);
gboolean           parley_envelope_has_key        (const ParleyEnvelope  *env,
                                                   const char            *key);
void               parley_envelope_splice         (const ParleyEnvelope  *env,
                                                   GByteArray            *out,
                                                   const char            *prefix,
                                                   gsize                  prefix_len,
                                                   const char * const    *drop_keys);

gboolean           parley_json_validate           (const char            *text,
                                                   gsize                  len);
void               parley_json_append_string      (GByteArray            *out,
                                                   const char            *s,
                                                   gssize                 len);
gint64             parley_span_to_int64           (ParleySpan             s,
                                                   gboolean              *ok);
char              *parley_span_dup_string         (ParleySpan             s);
gboolean           parley_span_equal              (ParleySpan             s,
                                                   const char            *str);
gboolean           parley_id_is_valid             (const char            *s,
                                                   gsize                  len);

#define PARLEY_UUID7_LEN 36

void               parley_uuid7_format            (char                  *out,
                                                   guint64                unix_ms,
                                                   guint16                rand_a,
                                                   guint64                rand_b);
char              *parley_uuid7_new               (void);
gboolean           parley_uuid7_key               (const char            *id,
                                                   gint64                *key);

G_END_DECLS
