/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-envelope.c: strict one-pass scanner and validator for protocol envelopes.
 *
 * The scanner walks the text once. Strings are skipped eight bytes at a time
 * until a quote, a backslash, a control character or a non-ASCII byte shows
 * up; non-ASCII bytes are checked as strict UTF-8 on the way, so every span
 * handed out is valid UTF-8 even when the caller did not check it. Nested
 * values are skipped by a loop with an explicit bit stack, never by
 * recursion.
 */

#define G_LOG_DOMAIN "parley-envelope"

#include "config.h"

#include <string.h>

#include "parley-envelope.h"
#include "parley-utf8.h"

#define MAX_TOKEN_LEN 8192

#define ONES  G_GUINT64_CONSTANT (0x0101010101010101)
#define HIGHS G_GUINT64_CONSTANT (0x8080808080808080)

typedef struct {
  const guchar *p;
  const guchar *end;
} Scanner;

/* Bytes that end the fast path inside a string: controls, '"', '\\' and non-ASCII. */
static const guint8 string_special[256] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Marks (with the byte's high bit) the string specials of w (see
 * string_special). Bytes above the first special may be marked wrongly
 * because of borrows, but the lowest mark is always exact. */
static inline guint64
word_specials (guint64 w)
{
  guint64 quote = w ^ (ONES * '"');
  guint64 bslash = w ^ (ONES * '\\');
  guint64 r;

  r = (w - ONES * 0x20) & ~w;              /* Bytes below 0x20. */
  r |= (quote - ONES) & ~quote;            /* Bytes equal to '"'. */
  r |= (bslash - ONES) & ~bslash;          /* Bytes equal to '\\'. */
  r |= w;                                  /* Bytes with the high bit set. */
  return r & HIGHS;
}

static inline void
skip_ws (Scanner *s)
{
  while (s->p < s->end &&
         (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
    s->p++;
}

static inline gint
hex_value (guchar c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads four hex digits at p (bounds checked by the caller). */
static inline gint
read_hex4 (const guchar *p)
{
  gint a = hex_value (p[0]), b = hex_value (p[1]), c = hex_value (p[2]), d = hex_value (p[3]);

  if ((a | b | c | d) < 0)
    return -1;
  return (a << 12) | (b << 8) | (c << 4) | d;
}

/* Scans the escape sequence at s->p (a backslash). \u0000 is rejected on
 * purpose: decoded strings are handed to C code as NUL-terminated strings. */
static gboolean
scan_escape (Scanner *s)
{
  const guchar *p = s->p;
  gint cp;

  if (s->end - p < 2)
    return FALSE;

  switch (p[1]) {
  case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
    s->p = p + 2;
    return TRUE;
  case 'u':
    break;
  default:
    return FALSE;
  }

  if (s->end - p < 6 || (cp = read_hex4 (p + 2)) < 0 || cp == 0)
    return FALSE;
  if (cp >= 0xdc00 && cp <= 0xdfff)
    return FALSE;   /* A lone low surrogate. */
  if (cp >= 0xd800 && cp <= 0xdbff) {
    gint lo;

    if (s->end - p < 12 || p[6] != '\\' || p[7] != 'u')
      return FALSE;   /* A lone high surrogate. */
    lo = read_hex4 (p + 8);
    if (lo < 0xdc00 || lo > 0xdfff)
      return FALSE;
    s->p = p + 12;
    return TRUE;
  }
  s->p = p + 6;
  return TRUE;
}

/* Scans a string starting at its opening quote; leaves s->p after the closing one. */
static inline gboolean
scan_string (Scanner  *s,
             gboolean *escaped)
{
  const guchar *p = s->p + 1;
  const guchar *end = s->end;
  gboolean esc = FALSE;

  for (;;) {
    guchar c;

    for (;;) {
      guint64 w, specials;

      if (end - p < 8) {
        while (p < end && !string_special[*p])
          p++;
        if (p >= end)
          return FALSE;
        break;
      }
      memcpy (&w, p, 8);
      specials = word_specials (w);
      if (specials != 0) {
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
        p += __builtin_ctzll (specials) >> 3;
#else
        while (!string_special[*p])
          p++;
#endif
        break;
      }
      p += 8;
    }

    c = *p;
    if (c == '"') {
      s->p = p + 1;
      *escaped = esc;
      return TRUE;
    } else if (c == '\\') {
      esc = TRUE;
      s->p = p;
      if (!scan_escape (s))
        return FALSE;
      p = s->p;
    } else if (c < 0x20) {
      return FALSE;   /* Control characters, NUL included. */
    } else {
      gsize n = parley_utf8_sequence_len (p, end - p);

      if (n == 0)
        return FALSE;
      p += n;
    }
  }
}

static inline gboolean
scan_digits (Scanner *s)
{
  const guchar *start = s->p;

  while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
    s->p++;
  return s->p > start;
}

static gboolean
scan_number (Scanner *s)
{
  if (s->p < s->end && *s->p == '-')
    s->p++;
  if (s->p >= s->end)
    return FALSE;
  if (*s->p == '0')
    s->p++;
  else if (!(*s->p >= '1' && *s->p <= '9') || !scan_digits (s))
    return FALSE;

  if (s->p < s->end && *s->p == '.') {
    s->p++;
    if (!scan_digits (s))
      return FALSE;
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    s->p++;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
      s->p++;
    if (!scan_digits (s))
      return FALSE;
  }
  return TRUE;
}

static inline gboolean
scan_literal (Scanner    *s,
              const char *word,
              gsize       len)
{
  if ((gsize) (s->end - s->p) < len || memcmp (s->p, word, len) != 0)
    return FALSE;
  s->p += len;
  return TRUE;
}

/* Scans a value that is not an object or array. */
static gboolean
scan_scalar (Scanner        *s,
             ParleyJsonKind *kind,
             gboolean       *escaped)
{
  *escaped = FALSE;

  switch (*s->p) {
  case '"':
    *kind = PARLEY_JSON_STRING;
    return scan_string (s, escaped);
  case 't':
    *kind = PARLEY_JSON_TRUE;
    return scan_literal (s, "true", 4);
  case 'f':
    *kind = PARLEY_JSON_FALSE;
    return scan_literal (s, "false", 5);
  case 'n':
    *kind = PARLEY_JSON_NULL;
    return scan_literal (s, "null", 4);
  case '-': case '0': case '1': case '2': case '3': case '4':
  case '5': case '6': case '7': case '8': case '9':
    *kind = PARLEY_JSON_NUMBER;
    return scan_number (s);
  default:
    return FALSE;
  }
}

/* Scans an object or array starting at s->p, nested inside `depth` levels. */
static gboolean
scan_container (Scanner *s,
                guint    depth)
{
  guint64 is_object = 0;   /* Bit i: level i + 1 is an object. */
  guint level = 0;
  ParleyJsonKind kind;
  gboolean escaped;

open:
  if (depth + level + 1 > PARLEY_ENVELOPE_MAX_DEPTH)
    return FALSE;
  is_object = (is_object << 1) | (*s->p == '{');
  level++;
  s->p++;
  skip_ws (s);
  if (s->p >= s->end)
    return FALSE;
  if (*s->p == ((is_object & 1) ? '}' : ']')) {
    s->p++;
    goto close;
  }

element:
  if (is_object & 1) {
    if (*s->p != '"' || !scan_string (s, &escaped))
      return FALSE;
    skip_ws (s);
    if (s->p >= s->end || *s->p != ':')
      return FALSE;
    s->p++;
    skip_ws (s);
    if (s->p >= s->end)
      return FALSE;
  }
  if (*s->p == '{' || *s->p == '[')
    goto open;
  if (!scan_scalar (s, &kind, &escaped))
    return FALSE;

after_value:
  skip_ws (s);
  if (s->p >= s->end)
    return FALSE;
  if (*s->p == ',') {
    s->p++;
    skip_ws (s);
    if (s->p >= s->end)
      return FALSE;
    goto element;
  }
  if (*s->p != ((is_object & 1) ? '}' : ']'))
    return FALSE;
  s->p++;

close:
  level--;
  is_object >>= 1;
  if (level > 0)
    goto after_value;
  return TRUE;
}

/* Scans any value at s->p, nested inside `depth` levels. */
static gboolean
scan_value (Scanner        *s,
            guint           depth,
            ParleyJsonKind *kind,
            gboolean       *escaped)
{
  if (s->p >= s->end)
    return FALSE;
  if (*s->p == '{' || *s->p == '[') {
    *kind = *s->p == '{' ? PARLEY_JSON_OBJECT : PARLEY_JSON_ARRAY;
    *escaped = FALSE;
    return scan_container (s, depth);
  }
  return scan_scalar (s, kind, escaped);
}

/* Decoding of validated JSON string contents, one byte at a time. */

typedef struct {
  const guchar *p;
  const guchar *end;
  guint8 pending[4];
  guint8 n_pending;
  guint8 i_pending;
} Decoder;

static inline void
decoder_init (Decoder    *d,
              const char *raw,
              gsize       len)
{
  d->p = (const guchar *) raw;
  d->end = d->p + len;
  d->n_pending = d->i_pending = 0;
}

static guint
encode_utf8 (guint32 cp,
             guint8  out[4])
{
  if (cp < 0x80) {
    out[0] = cp;
    return 1;
  } else if (cp < 0x800) {
    out[0] = 0xc0 | (cp >> 6);
    out[1] = 0x80 | (cp & 0x3f);
    return 2;
  } else if (cp < 0x10000) {
    out[0] = 0xe0 | (cp >> 12);
    out[1] = 0x80 | ((cp >> 6) & 0x3f);
    out[2] = 0x80 | (cp & 0x3f);
    return 3;
  }
  out[0] = 0xf0 | (cp >> 18);
  out[1] = 0x80 | ((cp >> 12) & 0x3f);
  out[2] = 0x80 | ((cp >> 6) & 0x3f);
  out[3] = 0x80 | (cp & 0x3f);
  return 4;
}

/* Returns the next decoded byte, or -1 at the end. Malformed escapes (which
 * the scanner never lets through) are passed on literally. */
static gint
decoder_next (Decoder *d)
{
  const guchar *p = d->p;
  gint cp;

  if (d->i_pending < d->n_pending)
    return d->pending[d->i_pending++];
  if (p >= d->end)
    return -1;
  if (*p != '\\' || d->end - p < 2) {
    d->p++;
    return *p;
  }

  d->p += 2;
  switch (p[1]) {
  case 'b': return '\b';
  case 'f': return '\f';
  case 'n': return '\n';
  case 'r': return '\r';
  case 't': return '\t';
  case 'u': break;
  default: return p[1];
  }

  if (d->end - p < 6 || (cp = read_hex4 (p + 2)) < 0) {
    d->p = p + 1;
    return '\\';
  }
  d->p = p + 6;
  if (cp >= 0xd800 && cp <= 0xdbff && d->end - p >= 12 && p[6] == '\\' && p[7] == 'u') {
    gint lo = read_hex4 (p + 8);

    if (lo >= 0xdc00 && lo <= 0xdfff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      d->p = p + 12;
    }
  }
  if (cp >= 0xd800 && cp <= 0xdfff)
    cp = 0xfffd;
  d->n_pending = encode_utf8 (cp, d->pending);
  d->i_pending = 1;
  return d->pending[0];
}

/* Compares string contents (raw, without quotes) with plain bytes. */
static gboolean
raw_equal (const char *raw,
           gsize       raw_len,
           gboolean    escaped,
           const char *str,
           gsize       str_len)
{
  Decoder d;
  gsize i = 0;
  gint c;

  if (!escaped)
    return raw_len == str_len && memcmp (raw, str, str_len) == 0;

  decoder_init (&d, raw, raw_len);
  while ((c = decoder_next (&d)) >= 0) {
    if (i >= str_len || (guchar) str[i] != c)
      return FALSE;
    i++;
  }
  return i == str_len;
}

static gboolean
raw_equal_raw (const char *a,
               gsize       a_len,
               gboolean    a_escaped,
               const char *b,
               gsize       b_len,
               gboolean    b_escaped)
{
  Decoder da, db;
  gint ca, cb;

  if (!a_escaped && !b_escaped)
    return a_len == b_len && memcmp (a, b, a_len) == 0;
  if (!a_escaped)
    return raw_equal (b, b_len, b_escaped, a, a_len);
  if (!b_escaped)
    return raw_equal (a, a_len, a_escaped, b, b_len);

  decoder_init (&da, a, a_len);
  decoder_init (&db, b, b_len);
  do {
    ca = decoder_next (&da);
    cb = decoder_next (&db);
    if (ca != cb)
      return FALSE;
  } while (ca >= 0);
  return TRUE;
}

/* Decodes at most `cap` bytes; returns the decoded length or -1 if longer. */
static gssize
decode_bounded (const char *raw,
                gsize       raw_len,
                char       *out,
                gsize       cap)
{
  Decoder d;
  gsize n = 0;
  gint c;

  decoder_init (&d, raw, raw_len);
  while ((c = decoder_next (&d)) >= 0) {
    if (n >= cap)
      return -1;
    out[n++] = c;
  }
  return n;
}

/* Names. */

typedef struct {
  const char *name;
  guint8 len;
} Name;

#define NAME(s) { s, sizeof s - 1 }

static const Name field_names[PARLEY_FIELD_N_FIELDS] = {
  [PARLEY_FIELD_OTHER] = { NULL, 0 },
  [PARLEY_FIELD_TYPE] = NAME ("type"),
  [PARLEY_FIELD_ID] = NAME ("id"),
  [PARLEY_FIELD_RECIPIENT_ID] = NAME ("recipientId"),
  [PARLEY_FIELD_SENDER_ID] = NAME ("senderId"),
  [PARLEY_FIELD_CALL_ID] = NAME ("callId"),
  [PARLEY_FIELD_ENCRYPTED_CONTENT] = NAME ("encryptedContent"),
  [PARLEY_FIELD_SDP] = NAME ("sdp"),
  [PARLEY_FIELD_CANDIDATE] = NAME ("candidate"),
  [PARLEY_FIELD_TOKEN] = NAME ("token"),
  [PARLEY_FIELD_STATE] = NAME ("state"),
  [PARLEY_FIELD_MESSAGE_ID] = NAME ("messageId"),
  [PARLEY_FIELD_SINCE] = NAME ("since"),
  [PARLEY_FIELD_LIMIT] = NAME ("limit"),
  [PARLEY_FIELD_SEQ] = NAME ("seq"),
  [PARLEY_FIELD_REF] = NAME ("ref"),
  [PARLEY_FIELD_USER_ID] = NAME ("userId"),
  [PARLEY_FIELD_STATUS] = NAME ("status"),
  [PARLEY_FIELD_CODE] = NAME ("code"),
  [PARLEY_FIELD_MESSAGE] = NAME ("message"),
  [PARLEY_FIELD_TIMESTAMP] = NAME ("timestamp"),
  [PARLEY_FIELD_MORE] = NAME ("more"),
};

static const Name type_names[PARLEY_MSG_N_TYPES] = {
  [PARLEY_MSG_UNKNOWN] = { NULL, 0 },
  [PARLEY_MSG_AUTH] = NAME ("auth"),
  [PARLEY_MSG_MESSAGE] = NAME ("message"),
  [PARLEY_MSG_RECEIVED] = NAME ("received"),
  [PARLEY_MSG_TYPING] = NAME ("typing"),
  [PARLEY_MSG_READ] = NAME ("read"),
  [PARLEY_MSG_SYNC] = NAME ("sync"),
  [PARLEY_MSG_PING] = NAME ("ping"),
  [PARLEY_MSG_CALL_OFFER] = NAME ("call-offer"),
  [PARLEY_MSG_CALL_ANSWER] = NAME ("call-answer"),
  [PARLEY_MSG_CALL_ICE_CANDIDATE] = NAME ("call-ice-candidate"),
  [PARLEY_MSG_CALL_ACCEPT] = NAME ("call-accept"),
  [PARLEY_MSG_CALL_REJECT] = NAME ("call-reject"),
  [PARLEY_MSG_CALL_HANGUP] = NAME ("call-hangup"),
  [PARLEY_MSG_HELLO] = NAME ("hello"),
  [PARLEY_MSG_ACK] = NAME ("ack"),
  [PARLEY_MSG_ERROR] = NAME ("error"),
  [PARLEY_MSG_PRESENCE] = NAME ("presence"),
  [PARLEY_MSG_RECEIPT] = NAME ("receipt"),
  [PARLEY_MSG_PONG] = NAME ("pong"),
};

static guint
lookup_name (const Name *names,
             guint       n_names,
             const char *s,
             gsize       len)
{
  for (guint i = 1; i < n_names; i++) {
    if (names[i].len == len && names[i].name[0] == s[0] && memcmp (names[i].name, s, len) == 0)
      return i;
  }
  return 0;
}

#define IS(lit) (memcmp (s, lit, sizeof lit - 1) == 0)

/* The same as lookup_name (field_names, ...), unrolled by length: this runs
 * for every top-level key. */
static inline ParleyField
lookup_field (const char *s,
              gsize       len)
{
  switch (len) {
  case 2:
    return IS ("id") ? PARLEY_FIELD_ID : PARLEY_FIELD_OTHER;
  case 3:
    return IS ("sdp") ? PARLEY_FIELD_SDP :
           IS ("seq") ? PARLEY_FIELD_SEQ :
           IS ("ref") ? PARLEY_FIELD_REF : PARLEY_FIELD_OTHER;
  case 4:
    return IS ("type") ? PARLEY_FIELD_TYPE :
           IS ("code") ? PARLEY_FIELD_CODE :
           IS ("more") ? PARLEY_FIELD_MORE : PARLEY_FIELD_OTHER;
  case 5:
    return IS ("token") ? PARLEY_FIELD_TOKEN :
           IS ("state") ? PARLEY_FIELD_STATE :
           IS ("since") ? PARLEY_FIELD_SINCE :
           IS ("limit") ? PARLEY_FIELD_LIMIT : PARLEY_FIELD_OTHER;
  case 6:
    return IS ("callId") ? PARLEY_FIELD_CALL_ID :
           IS ("userId") ? PARLEY_FIELD_USER_ID :
           IS ("status") ? PARLEY_FIELD_STATUS : PARLEY_FIELD_OTHER;
  case 7:
    return IS ("message") ? PARLEY_FIELD_MESSAGE : PARLEY_FIELD_OTHER;
  case 8:
    return IS ("senderId") ? PARLEY_FIELD_SENDER_ID : PARLEY_FIELD_OTHER;
  case 9:
    return IS ("candidate") ? PARLEY_FIELD_CANDIDATE :
           IS ("messageId") ? PARLEY_FIELD_MESSAGE_ID :
           IS ("timestamp") ? PARLEY_FIELD_TIMESTAMP : PARLEY_FIELD_OTHER;
  case 11:
    return IS ("recipientId") ? PARLEY_FIELD_RECIPIENT_ID : PARLEY_FIELD_OTHER;
  case 16:
    return IS ("encryptedContent") ? PARLEY_FIELD_ENCRYPTED_CONTENT : PARLEY_FIELD_OTHER;
  default:
    return PARLEY_FIELD_OTHER;
  }
}

#undef IS

/* Looks a raw (possibly escaped) string up in a name table. */
static guint
lookup_raw (const Name *names,
            guint       n_names,
            const char *raw,
            gsize       len,
            gboolean    escaped)
{
  char buf[32];
  gssize n;

  if (!escaped)
    return len > 0 ? lookup_name (names, n_names, raw, len) : 0;
  n = decode_bounded (raw, len, buf, sizeof buf);
  if (n <= 0)
    return 0;
  return lookup_name (names, n_names, buf, n);
}

/**
 * parley_field_name:
 * @field: a field
 *
 * Returns: (nullable): the JSON member name of @field, or %NULL for
 *   %PARLEY_FIELD_OTHER
 */
const char *
parley_field_name (ParleyField field)
{
  if ((guint) field >= PARLEY_FIELD_N_FIELDS)
    return NULL;
  return field_names[field].name;
}

/**
 * parley_msg_type_name:
 * @type: an envelope type
 *
 * Returns: (nullable): the `type` string of @type, or %NULL for
 *   %PARLEY_MSG_UNKNOWN
 */
const char *
parley_msg_type_name (ParleyMsgType type)
{
  if ((guint) type >= PARLEY_MSG_N_TYPES)
    return NULL;
  return type_names[type].name;
}

/**
 * parley_msg_type_from_name:
 * @name: a `type` string (not NUL-terminated)
 * @len: its length
 *
 * Returns: the type @name names, or %PARLEY_MSG_UNKNOWN
 */
ParleyMsgType
parley_msg_type_from_name (const char *name,
                           gsize       len)
{
  if (name == NULL || len == 0)
    return PARLEY_MSG_UNKNOWN;
  return lookup_name (type_names, PARLEY_MSG_N_TYPES, name, len);
}

/**
 * parley_proto_status_code:
 * @s: a validation status
 *
 * Returns: the protocol error code for @s (such as `invalid-json`), or %NULL
 *   for %PARLEY_PROTO_OK
 */
const char *
parley_proto_status_code (ParleyProtoStatus s)
{
  switch (s) {
  case PARLEY_PROTO_OK:
    return NULL;
  case PARLEY_PROTO_INVALID_JSON:
    return "invalid-json";
  case PARLEY_PROTO_UNKNOWN_TYPE:
    return "unknown-type";
  case PARLEY_PROTO_MISSING_FIELD:
    return "missing-field";
  case PARLEY_PROTO_INVALID_FIELD:
    return "invalid-field";
  case PARLEY_PROTO_CONTENT_TOO_LARGE:
    return "content-too-large";
  default:
    return "internal";
  }
}

/* Scanning. */

static inline ParleySpan *
field_span (ParleyEnvelope *env,
            ParleyField     field)
{
  switch (field) {
  case PARLEY_FIELD_ID: return &env->id;
  case PARLEY_FIELD_RECIPIENT_ID: return &env->recipient_id;
  case PARLEY_FIELD_SENDER_ID: return &env->sender_id;
  case PARLEY_FIELD_CALL_ID: return &env->call_id;
  case PARLEY_FIELD_ENCRYPTED_CONTENT: return &env->encrypted_content;
  case PARLEY_FIELD_SDP: return &env->sdp;
  case PARLEY_FIELD_CANDIDATE: return &env->candidate;
  case PARLEY_FIELD_TOKEN: return &env->token;
  case PARLEY_FIELD_STATE: return &env->state;
  case PARLEY_FIELD_MESSAGE_ID: return &env->message_id;
  case PARLEY_FIELD_SINCE: return &env->since;
  case PARLEY_FIELD_LIMIT: return &env->limit;
  case PARLEY_FIELD_SEQ: return &env->seq;
  case PARLEY_FIELD_REF: return &env->ref;
  case PARLEY_FIELD_USER_ID: return &env->user_id;
  case PARLEY_FIELD_STATUS: return &env->status;
  case PARLEY_FIELD_CODE: return &env->code;
  case PARLEY_FIELD_MESSAGE: return &env->message;
  case PARLEY_FIELD_TIMESTAMP: return &env->timestamp;
  case PARLEY_FIELD_MORE: return &env->more;
  case PARLEY_FIELD_OTHER:
  case PARLEY_FIELD_TYPE:
  case PARLEY_FIELD_N_FIELDS:
  default:
    return NULL;
  }
}

static void
envelope_reset (ParleyEnvelope *env,
                const char     *text,
                gsize           len)
{
  static const ParleyEnvelope zero;

  /* The members array is filled as it is used; everything before it is
   * cleared. A copy of zeros is much faster than the `rep stos` that a
   * memset of this size becomes. */
  memcpy (env, &zero, G_STRUCT_OFFSET (ParleyEnvelope, members));
  env->n_members = 0;
  memset (env->field_index, 0, sizeof env->field_index);
  env->text = text;
  env->text_len = len;
}

/* Records one top-level member; returns FALSE for a duplicate key or too many members. */
static gboolean
record_member (ParleyEnvelope *env,
               const guchar   *key_quote,
               const guchar   *key_end,
               gboolean        key_escaped,
               const guchar   *value,
               const guchar   *value_end,
               ParleyJsonKind  kind,
               gboolean        value_escaped)
{
  ParleyEnvelopeMember *m;
  const char *key = (const char *) key_quote + 1;
  guint32 key_len = (guint32) (key_end - key_quote - 2);
  ParleyField field;
  ParleySpan *span;

  if (env->n_members >= PARLEY_ENVELOPE_MAX_MEMBERS)
    return FALSE;

  if (G_LIKELY (!key_escaped))
    field = lookup_field (key, key_len);
  else
    field = lookup_raw (field_names, PARLEY_FIELD_N_FIELDS, key, key_len, key_escaped);
  if (field != PARLEY_FIELD_OTHER) {
    if (env->field_index[field] != 0)
      return FALSE;
  } else {
    /* Other keys can only clash with other keys: known names are decoded above. */
    for (guint i = 0; i < env->n_members; i++) {
      const ParleyEnvelopeMember *o = &env->members[i];

      if (o->field == PARLEY_FIELD_OTHER &&
          raw_equal_raw (o->key.ptr, o->key.len, o->key_escaped, key, key_len, key_escaped))
        return FALSE;
    }
  }

  m = &env->members[env->n_members++];
  m->member.ptr = (const char *) key_quote;
  m->member.len = (guint32) (value_end - key_quote);
  m->key.ptr = key;
  m->key.len = key_len;
  m->value.ptr = (const char *) value;
  m->value.len = (guint32) (value_end - value);
  m->kind = kind;
  m->field = field;
  m->key_escaped = !!key_escaped;
  m->value_escaped = !!value_escaped;

  if (field == PARLEY_FIELD_OTHER)
    return TRUE;
  env->field_index[field] = (guint8) env->n_members;

  if (field == PARLEY_FIELD_TYPE) {
    if (kind == PARLEY_JSON_STRING) {
      env->type_name.ptr = m->value.ptr + 1;
      env->type_name.len = m->value.len - 2;
      env->type = lookup_raw (type_names, PARLEY_MSG_N_TYPES,
                              env->type_name.ptr, env->type_name.len, value_escaped);
    }
    return TRUE;
  }

  span = field_span (env, field);
  if (kind == PARLEY_JSON_STRING && !value_escaped && field != PARLEY_FIELD_ENCRYPTED_CONTENT) {
    span->ptr = m->value.ptr + 1;
    span->len = m->value.len - 2;
  } else {
    *span = m->value;
  }
  return TRUE;
}

static ParleyProtoStatus
envelope_scan (const char     *text,
               gsize           len,
               ParleyEnvelope *env)
{
  Scanner s;

  envelope_reset (env, text, len);

  if (text == NULL || len > PARLEY_ENVELOPE_MAX_INPUT)
    return PARLEY_PROTO_INVALID_JSON;

  s.p = (const guchar *) text;
  s.end = s.p + len;

  skip_ws (&s);
  if (s.p >= s.end || *s.p != '{')
    return PARLEY_PROTO_INVALID_JSON;
  s.p++;
  skip_ws (&s);
  if (s.p >= s.end)
    return PARLEY_PROTO_INVALID_JSON;

  if (*s.p == '}') {
    s.p++;
  } else {
    for (;;) {
      const guchar *key_quote, *key_end, *value;
      gboolean key_escaped, value_escaped;
      ParleyJsonKind kind;

      if (*s.p != '"')
        return PARLEY_PROTO_INVALID_JSON;
      key_quote = s.p;
      if (!scan_string (&s, &key_escaped))
        return PARLEY_PROTO_INVALID_JSON;
      key_end = s.p;
      skip_ws (&s);
      if (s.p >= s.end || *s.p != ':')
        return PARLEY_PROTO_INVALID_JSON;
      s.p++;
      skip_ws (&s);
      value = s.p;
      if (!scan_value (&s, 1, &kind, &value_escaped))
        return PARLEY_PROTO_INVALID_JSON;
      if (!record_member (env, key_quote, key_end, key_escaped, value, s.p, kind, value_escaped))
        return PARLEY_PROTO_INVALID_JSON;

      skip_ws (&s);
      if (s.p >= s.end)
        return PARLEY_PROTO_INVALID_JSON;
      if (*s.p == '}') {
        s.p++;
        break;
      }
      if (*s.p != ',')
        return PARLEY_PROTO_INVALID_JSON;
      s.p++;
      skip_ws (&s);
      if (s.p >= s.end)
        return PARLEY_PROTO_INVALID_JSON;
    }
  }

  skip_ws (&s);
  if (s.p != s.end)
    return PARLEY_PROTO_INVALID_JSON;   /* Trailing garbage. */
  return PARLEY_PROTO_OK;
}

/**
 * parley_envelope_scan:
 * @text: the JSON text (not NUL-terminated)
 * @len: its length
 * @env: (out caller-allocates): the envelope to fill
 *
 * Scans @text, which must be one JSON object, strictly: RFC 8259 grammar,
 * strict UTF-8, no control characters or NUL in strings, no `\u0000`, no
 * lone surrogates, no duplicate top-level keys (compared after decoding
 * escapes), at most %PARLEY_ENVELOPE_MAX_MEMBERS members, nesting at most
 * %PARLEY_ENVELOPE_MAX_DEPTH deep, at most %PARLEY_ENVELOPE_MAX_INPUT bytes.
 * No type-specific validation is done (clients use it for server frames).
 *
 * @env points into @text and is only valid as long as @text is.
 *
 * Returns: %PARLEY_PROTO_OK or %PARLEY_PROTO_INVALID_JSON
 */
ParleyProtoStatus
parley_envelope_scan (const char     *text,
                      gsize           len,
                      ParleyEnvelope *env)
{
  g_return_val_if_fail (env != NULL, PARLEY_PROTO_INVALID_JSON);

  return envelope_scan (text, len, env);
}

/* Validation. */

/* [A-Za-z0-9_.:-] */
static const guint8 id_chars[256] = {
  ['-'] = 1, ['.'] = 1, [':'] = 1, ['_'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
  ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
  ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
  ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
  ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
  ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
  ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
  ['y'] = 1, ['z'] = 1,
};

/**
 * parley_id_is_valid:
 * @s: bytes (not NUL-terminated)
 * @len: their length
 *
 * Checks an identifier: 1 to 64 characters of `[A-Za-z0-9_.:-]`.
 *
 * Returns: %TRUE if @s is a valid identifier
 */
gboolean
parley_id_is_valid (const char *s,
                    gsize       len)
{
  if (s == NULL || len == 0 || len > PARLEY_ID_MAX_LEN)
    return FALSE;

  for (gsize i = 0; i < len; i++) {
    if (!id_chars[(guchar) s[i]])
      return FALSE;
  }
  return TRUE;
}

/* Message ids: Parley clients make them time-ordered (UUIDv7, RFC 9562),
 * so that the server's deduplication index, keyed by sender and id, grows
 * at its end instead of at random places (a random key dirties a page of a
 * large index per message). Any other valid id works too; it only costs
 * the index more. */

/**
 * parley_uuid7_format:
 * @out: room for PARLEY_UUID7_LEN + 1 bytes
 * @unix_ms: the time field (48 bits; higher bits are dropped)
 * @rand_a: 12 bits after the version (higher bits are dropped)
 * @rand_b: 62 bits after the variant (higher bits are dropped)
 *
 * Writes a version 7 UUID in its canonical lower-case form.
 */
void
parley_uuid7_format (char    *out,
                     guint64  unix_ms,
                     guint16  rand_a,
                     guint64  rand_b)
{
  guint8 b[16];

  for (guint i = 0; i < 6; i++)
    b[i] = (guint8) (unix_ms >> (40 - 8 * i));
  b[6] = 0x70 | ((rand_a >> 8) & 0x0f);
  b[7] = (guint8) rand_a;
  b[8] = 0x80 | ((rand_b >> 56) & 0x3f);
  for (guint i = 9; i < 16; i++)
    b[i] = (guint8) (rand_b >> (8 * (15 - i)));
  for (guint i = 0; i < 16; i++) {
    static const char digits[] = "0123456789abcdef";

    if (i == 4 || i == 6 || i == 8 || i == 10)
      *out++ = '-';
    *out++ = digits[b[i] >> 4];
    *out++ = digits[b[i] & 0x0f];
  }
  *out = '\0';
}

/**
 * parley_uuid7_new:
 *
 * Makes a new message id: a version 7 UUID of the current time with 74
 * random bits.
 *
 * Returns: (transfer full): the id
 */
char *
parley_uuid7_new (void)
{
  char *out = g_malloc (PARLEY_UUID7_LEN + 1);
  guint64 rand_b = (guint64) g_random_int () << 32 | g_random_int ();

  parley_uuid7_format (out, (guint64) (g_get_real_time () / 1000),
                       (guint16) g_random_int_range (0, 4096), rand_b);
  return out;
}

/**
 * parley_uuid7_key:
 * @id: a NUL-terminated id
 * @key: (out): the key
 *
 * If @id is a version 7 UUID, gives the positive 63-bit key that orders
 * such ids by time: the 48-bit time, the 12 bits after the version and the
 * 3 bits after the variant. Different ids can share a key; a key says
 * where to look, not which id it is.
 *
 * Returns: whether @id is a version 7 UUID
 */
gboolean
parley_uuid7_key (const char *id,
                  gint64     *key)
{
  guint8 b[16];
  guint n = 0;

  if (id == NULL || strnlen (id, PARLEY_UUID7_LEN + 1) != PARLEY_UUID7_LEN)
    return FALSE;
  for (guint i = 0; i < PARLEY_UUID7_LEN; i++) {
    int hi, lo;

    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-')
        return FALSE;
      continue;
    }
    hi = hex_value ((guchar) id[i]);
    lo = hi < 0 ? -1 : hex_value ((guchar) id[i + 1]);
    if (lo < 0)
      return FALSE;
    b[n++] = (guint8) (hi << 4 | lo);
    i++;
  }
  if ((b[6] >> 4) != 7 || (b[8] >> 6) != 2)
    return FALSE;

  *key = 0;
  for (guint i = 0; i < 6; i++)
    *key = *key << 8 | b[i];
  *key = *key << 12 | ((b[6] & 0x0f) << 8) | b[7];
  *key = *key << 3 | ((b[8] >> 3) & 0x07);
  return TRUE;
}

static inline const ParleyEnvelopeMember *
member_of (const ParleyEnvelope *env,
           ParleyField           field)
{
  guint8 i = env->field_index[field];

  return i ? &env->members[i - 1] : NULL;
}

/* Checks an identifier member: a string without escapes matching the id syntax. */
static ParleyProtoStatus
check_id (const ParleyEnvelope  *env,
          ParleyField            field,
          gboolean               required,
          const char           **detail)
{
  const ParleyEnvelopeMember *m = member_of (env, field);

  if (m == NULL) {
    if (!required)
      return PARLEY_PROTO_OK;
    *detail = field_names[field].name;
    return PARLEY_PROTO_MISSING_FIELD;
  }
  if (m->kind != PARLEY_JSON_STRING || m->value_escaped ||
      !parley_id_is_valid (m->value.ptr + 1, m->value.len - 2)) {
    *detail = field_names[field].name;
    return PARLEY_PROTO_INVALID_FIELD;
  }
  return PARLEY_PROTO_OK;
}

static ParleyProtoStatus
check_kind (const ParleyEnvelope  *env,
            ParleyField            field,
            ParleyJsonKind         kind,
            const char           **detail)
{
  const ParleyEnvelopeMember *m = member_of (env, field);

  *detail = field_names[field].name;
  if (m == NULL)
    return PARLEY_PROTO_MISSING_FIELD;
  if (m->kind != kind)
    return PARLEY_PROTO_INVALID_FIELD;
  *detail = NULL;
  return PARLEY_PROTO_OK;
}

/* Checks an integer member within [min, G_MAXINT64]. */
static ParleyProtoStatus
check_integer (const ParleyEnvelope  *env,
               ParleyField            field,
               gboolean               required,
               gint64                 min,
               const char           **detail)
{
  const ParleyEnvelopeMember *m = member_of (env, field);
  gboolean ok;
  gint64 v;

  if (m == NULL) {
    if (!required)
      return PARLEY_PROTO_OK;
    *detail = field_names[field].name;
    return PARLEY_PROTO_MISSING_FIELD;
  }
  v = m->kind == PARLEY_JSON_NUMBER ? parley_span_to_int64 (m->value, &ok) : (ok = FALSE, 0);
  if (!ok || v < min) {
    *detail = field_names[field].name;
    return PARLEY_PROTO_INVALID_FIELD;
  }
  return PARLEY_PROTO_OK;
}

#define CHECK(expr) G_STMT_START { \
    ParleyProtoStatus _s = (expr); \
    if (_s != PARLEY_PROTO_OK) \
      return _s; \
  } G_STMT_END

static ParleyProtoStatus
validate_request (ParleyEnvelope  *env,
                  const char     **detail)
{
  const ParleyEnvelopeMember *m;

  /* The type. */
  m = member_of (env, PARLEY_FIELD_TYPE);
  *detail = "type";
  if (m == NULL)
    return PARLEY_PROTO_MISSING_FIELD;
  if (m->kind != PARLEY_JSON_STRING)
    return PARLEY_PROTO_INVALID_FIELD;
  if (env->type == PARLEY_MSG_UNKNOWN || env->type >= PARLEY_MSG_HELLO)
    return PARLEY_PROTO_UNKNOWN_TYPE;
  *detail = NULL;

  /* The request id: optional, except for messages, which are deduplicated by it. */
  CHECK (check_id (env, PARLEY_FIELD_ID, env->type == PARLEY_MSG_MESSAGE, detail));

  switch (env->type) {
  case PARLEY_MSG_AUTH:
    CHECK (check_kind (env, PARLEY_FIELD_TOKEN, PARLEY_JSON_STRING, detail));
    m = member_of (env, PARLEY_FIELD_TOKEN);
    if (m->value.len <= 2 || m->value.len - 2 > MAX_TOKEN_LEN) {
      *detail = "token";
      return PARLEY_PROTO_INVALID_FIELD;
    }
    break;

  case PARLEY_MSG_MESSAGE:
    CHECK (check_id (env, PARLEY_FIELD_RECIPIENT_ID, TRUE, detail));
    CHECK (check_kind (env, PARLEY_FIELD_ENCRYPTED_CONTENT, PARLEY_JSON_STRING, detail));
    if (env->encrypted_content.len - 2 > PARLEY_ENVELOPE_MAX_CONTENT) {
      *detail = "encryptedContent";
      return PARLEY_PROTO_CONTENT_TOO_LARGE;
    }
    break;

  case PARLEY_MSG_RECEIVED:
    CHECK (check_integer (env, PARLEY_FIELD_SEQ, TRUE, 1, detail));
    break;

  case PARLEY_MSG_TYPING:
    CHECK (check_id (env, PARLEY_FIELD_RECIPIENT_ID, TRUE, detail));
    CHECK (check_kind (env, PARLEY_FIELD_STATE, PARLEY_JSON_STRING, detail));
    if (!parley_span_equal (env->state, "active") && !parley_span_equal (env->state, "paused")) {
      *detail = "state";
      return PARLEY_PROTO_INVALID_FIELD;
    }
    break;

  case PARLEY_MSG_READ:
    CHECK (check_id (env, PARLEY_FIELD_RECIPIENT_ID, TRUE, detail));
    CHECK (check_id (env, PARLEY_FIELD_MESSAGE_ID, TRUE, detail));
    break;

  case PARLEY_MSG_SYNC:
    CHECK (check_integer (env, PARLEY_FIELD_SINCE, TRUE, 0, detail));
    CHECK (check_integer (env, PARLEY_FIELD_LIMIT, FALSE, 1, detail));
    break;

  case PARLEY_MSG_PING:
    break;

  case PARLEY_MSG_CALL_OFFER:
  case PARLEY_MSG_CALL_ANSWER:
  case PARLEY_MSG_CALL_ICE_CANDIDATE:
  case PARLEY_MSG_CALL_ACCEPT:
  case PARLEY_MSG_CALL_REJECT:
  case PARLEY_MSG_CALL_HANGUP:
    CHECK (check_id (env, PARLEY_FIELD_RECIPIENT_ID, TRUE, detail));
    CHECK (check_id (env, PARLEY_FIELD_CALL_ID, TRUE, detail));
    if (env->type == PARLEY_MSG_CALL_OFFER || env->type == PARLEY_MSG_CALL_ANSWER) {
      CHECK (check_kind (env, PARLEY_FIELD_SDP, PARLEY_JSON_STRING, detail));
      if (member_of (env, PARLEY_FIELD_SDP)->value.len <= 2) {
        *detail = "sdp";
        return PARLEY_PROTO_INVALID_FIELD;
      }
    } else if (env->type == PARLEY_MSG_CALL_ICE_CANDIDATE) {
      CHECK (check_kind (env, PARLEY_FIELD_CANDIDATE, PARLEY_JSON_OBJECT, detail));
    }
    break;

  case PARLEY_MSG_UNKNOWN:
  case PARLEY_MSG_HELLO:
  case PARLEY_MSG_ACK:
  case PARLEY_MSG_ERROR:
  case PARLEY_MSG_PRESENCE:
  case PARLEY_MSG_RECEIPT:
  case PARLEY_MSG_PONG:
  case PARLEY_MSG_N_TYPES:
  default:
    g_assert_not_reached ();
  }

  *detail = NULL;
  return PARLEY_PROTO_OK;
}

/**
 * parley_envelope_parse_request:
 * @text: the JSON text of a frame (not NUL-terminated)
 * @len: its length
 * @env: (out caller-allocates): the envelope to fill
 * @detail: (out) (optional) (transfer none): on failure, the offending field
 *   name as a static string (or %NULL when the JSON itself is invalid)
 *
 * Scans @text as parley_envelope_scan() does and validates it as a
 * client-to-server envelope of docs/protocol.md:
 *
 * - `type` is a known client type (server types such as `hello` are
 *   `unknown-type`);
 * - `id`, when present, is an identifier (a string of 1–64 characters of
 *   `[A-Za-z0-9_.:-]` without escapes); `message` requires it;
 * - `auth` needs a non-empty string `token` (at most 8 KiB);
 * - `message` needs `recipientId` and a string `encryptedContent` of at
 *   most %PARLEY_ENVELOPE_MAX_CONTENT bytes (`content-too-large` beyond);
 * - `received` needs a positive integer `seq`;
 * - `typing` needs `recipientId` and `state` "active" or "paused";
 * - `read` needs `recipientId` and `messageId`;
 * - `sync` needs a non-negative integer `since` and allows a positive
 *   integer `limit`;
 * - every `call-*` needs `recipientId` and `callId`; `call-offer` and
 *   `call-answer` a non-empty string `sdp`; `call-ice-candidate` an object
 *   `candidate`.
 *
 * Other members are allowed and left alone; a `senderId` is not checked
 * (parley_envelope_splice() drops it). A request may have at most
 * %PARLEY_ENVELOPE_MAX_REQUEST_MEMBERS members (`invalid-json` beyond), so
 * that a relayed copy with the server's own members added still scans.
 *
 * On failure, @env->id is still set when the envelope had a valid `id`, so
 * that the error can carry it as `ref`; otherwise it is cleared.
 *
 * Returns: %PARLEY_PROTO_OK or the reason for rejecting @text
 */
ParleyProtoStatus
parley_envelope_parse_request (const char      *text,
                               gsize            len,
                               ParleyEnvelope  *env,
                               const char     **detail)
{
  ParleyProtoStatus status;
  const char *dummy;

  g_return_val_if_fail (env != NULL, PARLEY_PROTO_INVALID_JSON);

  if (detail == NULL)
    detail = &dummy;
  *detail = NULL;

  status = envelope_scan (text, len, env);
  if (status == PARLEY_PROTO_OK && env->n_members > PARLEY_ENVELOPE_MAX_REQUEST_MEMBERS)
    status = PARLEY_PROTO_INVALID_JSON;
  if (status == PARLEY_PROTO_OK)
    status = validate_request (env, detail);

  if (status != PARLEY_PROTO_OK) {
    const char *unused;

    if (check_id (env, PARLEY_FIELD_ID, FALSE, &unused) != PARLEY_PROTO_OK) {
      env->id.ptr = NULL;
      env->id.len = 0;
    }
  }
  return status;
}

/**
 * parley_envelope_get_member:
 * @env: a scanned envelope
 * @field: a well-known field (not %PARLEY_FIELD_OTHER)
 *
 * Returns: (nullable): the member for @field, or %NULL when absent
 */
const ParleyEnvelopeMember *
parley_envelope_get_member (const ParleyEnvelope *env,
                            ParleyField           field)
{
  g_return_val_if_fail (env != NULL, NULL);

  if (field <= PARLEY_FIELD_OTHER || field >= PARLEY_FIELD_N_FIELDS)
    return NULL;
  return member_of (env, field);
}

/**
 * parley_envelope_has_key:
 * @env: a scanned envelope
 * @key: a member name
 *
 * Returns: whether @env has a top-level member named @key (escapes decoded)
 */
gboolean
parley_envelope_has_key (const ParleyEnvelope *env,
                         const char           *key)
{
  gsize key_len;

  g_return_val_if_fail (env != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  key_len = strlen (key);
  for (guint i = 0; i < env->n_members; i++) {
    const ParleyEnvelopeMember *m = &env->members[i];

    if (raw_equal (m->key.ptr, m->key.len, m->key_escaped, key, key_len))
      return TRUE;
  }
  return FALSE;
}

/**
 * parley_envelope_splice:
 * @env: a scanned envelope
 * @out: the buffer to append to
 * @prefix: (nullable): already formatted JSON members, such as
 *   `"senderId":"u1"`, without surrounding commas
 * @prefix_len: the length of @prefix
 * @drop_keys: (nullable) (array zero-terminated=1): names of members to leave out
 *
 * Appends a JSON object made of @prefix followed by every member of @env
 * except `senderId` and those named in @drop_keys, in their original order
 * and text. Key names are compared after decoding escapes, so an escaped
 * `senderId` is dropped too.
 */
void
parley_envelope_splice (const ParleyEnvelope *env,
                        GByteArray           *out,
                        const char           *prefix,
                        gsize                 prefix_len,
                        const char * const   *drop_keys)
{
  gsize drop_lens[8];
  guint n_drop = 0;
  guint32 keep = 0;
  gsize total, start;
  guint8 *w;
  gboolean first = TRUE;

  g_return_if_fail (env != NULL);
  g_return_if_fail (out != NULL);
  g_return_if_fail (prefix != NULL || prefix_len == 0);

  if (drop_keys != NULL) {
    while (drop_keys[n_drop] != NULL)
      n_drop++;
    for (guint j = 0; j < MIN (n_drop, G_N_ELEMENTS (drop_lens)); j++)
      drop_lens[j] = strlen (drop_keys[j]);
  }

  total = 2 + prefix_len;
  for (guint i = 0; i < env->n_members; i++) {
    const ParleyEnvelopeMember *m = &env->members[i];
    gboolean drop = m->field == PARLEY_FIELD_SENDER_ID;

    for (guint j = 0; j < n_drop && !drop; j++) {
      gsize dlen = j < G_N_ELEMENTS (drop_lens) ? drop_lens[j] : strlen (drop_keys[j]);

      drop = raw_equal (m->key.ptr, m->key.len, m->key_escaped, drop_keys[j], dlen);
    }
    if (drop)
      continue;
    keep |= 1u << i;
    total += m->member.len + 1;
  }

  start = out->len;
  g_byte_array_set_size (out, start + total);
  w = out->data + start;

  *w++ = '{';
  if (prefix_len > 0) {
    memcpy (w, prefix, prefix_len);
    w += prefix_len;
    first = FALSE;
  }
  for (guint i = 0; i < env->n_members; i++) {
    const ParleyEnvelopeMember *m = &env->members[i];

    if (!(keep & (1u << i)))
      continue;
    if (!first)
      *w++ = ',';
    first = FALSE;
    memcpy (w, m->member.ptr, m->member.len);
    w += m->member.len;
  }
  *w++ = '}';

  /* One comma fewer than counted when there is no prefix. */
  g_byte_array_set_size (out, w - out->data);
}

/* Helpers. */

/**
 * parley_json_validate:
 * @text: a JSON text (not NUL-terminated)
 * @len: its length
 *
 * Validates one JSON text of any kind with the same strict rules as
 * parley_envelope_scan() (nesting depth, strings, numbers, trailing bytes).
 *
 * Returns: %TRUE if @text is valid
 */
gboolean
parley_json_validate (const char *text,
                      gsize       len)
{
  Scanner s;
  ParleyJsonKind kind;
  gboolean escaped;

  if (text == NULL || len > PARLEY_ENVELOPE_MAX_INPUT)
    return FALSE;

  s.p = (const guchar *) text;
  s.end = s.p + len;
  skip_ws (&s);
  if (!scan_value (&s, 0, &kind, &escaped))
    return FALSE;
  skip_ws (&s);
  return s.p == s.end;
}

/**
 * parley_json_append_string:
 * @out: the buffer to append to
 * @s: a UTF-8 string
 * @len: its length, or -1 if it is NUL-terminated
 *
 * Appends @s as a quoted JSON string, escaping quotes, backslashes and
 * control characters. Invalid UTF-8 and NUL bytes (which would need the
 * `\u0000` escape that parley_envelope_scan() refuses) are replaced by
 * U+FFFD, so that the output is always accepted by the scanner.
 */
void
parley_json_append_string (GByteArray *out,
                           const char *s,
                           gssize      len)
{
  static const char hex[] = "0123456789abcdef";
  const guchar *p, *end, *run;

  g_return_if_fail (out != NULL);
  g_return_if_fail (s != NULL || len <= 0);

  if (s == NULL)
    s = "";
  if (len < 0)
    len = strlen (s);

  p = run = (const guchar *) s;
  end = p + len;

  g_byte_array_append (out, (const guint8 *) "\"", 1);
  while (p < end) {
    guchar c = *p;
    guint8 esc[6];
    gsize esc_len;

    if (!string_special[c]) {
      p++;
      continue;
    }
    if (c >= 0x80) {
      gsize n = parley_utf8_sequence_len (p, end - p);

      if (n > 0) {
        p += n;
        continue;
      }
    }

    /* Flush the plain run before p, then write the escape. */
    if (p > run)
      g_byte_array_append (out, run, p - run);

    esc[0] = '\\';
    esc_len = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\0':
      /* NUL would be \u0000, which the scanner refuses. */
      esc[0] = 0xef;
      esc[1] = 0xbf;
      esc[2] = 0xbd;
      esc_len = 3;
      break;
    default:
      if (c < 0x20) {
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 0xf];
        esc_len = 6;
      } else {
        /* An invalid UTF-8 byte. */
        esc[0] = 0xef;
        esc[1] = 0xbf;
        esc[2] = 0xbd;
        esc_len = 3;
      }
      break;
    }
    g_byte_array_append (out, esc, esc_len);
    p++;
    run = p;
  }
  if (p > run)
    g_byte_array_append (out, run, p - run);
  g_byte_array_append (out, (const guint8 *) "\"", 1);
}

/**
 * parley_span_to_int64:
 * @s: a span holding a JSON integer (no fraction, no exponent)
 * @ok: (out) (optional): whether @s was an integer in range
 *
 * Returns: the value, or 0 when @s is absent, not an integer or out of range
 */
gint64
parley_span_to_int64 (ParleySpan  s,
                      gboolean   *ok)
{
  const char *p = s.ptr, *end;
  gboolean negative = FALSE;
  guint64 v = 0, limit;

  if (ok)
    *ok = FALSE;
  if (p == NULL || s.len == 0)
    return 0;
  end = p + s.len;

  if (*p == '-') {
    negative = TRUE;
    p++;
  }
  if (p >= end || (*p == '0' && end - p > 1))
    return 0;   /* Empty, or a leading zero. */

  limit = negative ? (guint64) G_MAXINT64 + 1 : (guint64) G_MAXINT64;
  for (; p < end; p++) {
    guint d;

    if (*p < '0' || *p > '9')
      return 0;
    d = *p - '0';
    if (v > (limit - d) / 10)
      return 0;   /* Overflow. */
    v = v * 10 + d;
  }

  if (ok)
    *ok = TRUE;
  if (negative)
    return v == (guint64) G_MAXINT64 + 1 ? G_MININT64 : -(gint64) v;
  return (gint64) v;
}

/**
 * parley_span_dup_string:
 * @s: a span
 *
 * Copies @s into a NUL-terminated string. A span starting with a quote is
 * taken as a JSON string: the quotes are removed and its escapes decoded.
 * Any other span is copied as it is.
 *
 * Returns: (transfer full) (nullable): the string, or %NULL when @s is absent
 */
char *
parley_span_dup_string (ParleySpan s)
{
  char *out;
  gsize n = 0;
  Decoder d;
  gint c;

  if (s.ptr == NULL)
    return NULL;
  if (s.len < 2 || s.ptr[0] != '"' || s.ptr[s.len - 1] != '"')
    return g_strndup (s.ptr, s.len);

  /* Decoding never makes a string longer. */
  out = g_malloc (s.len - 1);
  decoder_init (&d, s.ptr + 1, s.len - 2);
  while ((c = decoder_next (&d)) >= 0)
    out[n++] = c;
  out[n] = '\0';
  return out;
}

/**
 * parley_span_equal:
 * @s: a span, as the well-known fields of #ParleyEnvelope hold them
 * @str: a NUL-terminated string
 *
 * Compares the string value of @s with @str. A span starting with a quote
 * is decoded first, as in parley_span_dup_string().
 *
 * Returns: %TRUE if they are equal; %FALSE if not or if @s is absent
 */
gboolean
parley_span_equal (ParleySpan  s,
                   const char *str)
{
  g_return_val_if_fail (str != NULL, FALSE);

  if (s.ptr == NULL)
    return FALSE;
  if (s.len >= 2 && s.ptr[0] == '"' && s.ptr[s.len - 1] == '"')
    return raw_equal (s.ptr + 1, s.len - 2, TRUE, str, strlen (str));
  return s.len == strlen (str) && memcmp (s.ptr, str, s.len) == 0;
}
