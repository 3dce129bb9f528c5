/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-ws-frame.h: incremental RFC 6455 frame parser and frame writers.
 *
 * The parser is a plain struct so that a connection can embed it. It never
 * copies an unfragmented frame: the payload is unmasked in place in the
 * caller's buffer and handed back as a pointer into it. Only fragmented
 * messages are reassembled into a buffer owned by the parser.
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyWsOpcode:
 * @PARLEY_WS_OP_CONTINUATION: continuation of a fragmented message
 * @PARLEY_WS_OP_TEXT: text (UTF-8) data frame
 * @PARLEY_WS_OP_BINARY: binary data frame
 * @PARLEY_WS_OP_CLOSE: close control frame
 * @PARLEY_WS_OP_PING: ping control frame
 * @PARLEY_WS_OP_PONG: pong control frame
 *
 * WebSocket frame opcodes.
 */
typedef enum {
  PARLEY_WS_OP_CONTINUATION = 0x0,
  PARLEY_WS_OP_TEXT = 0x1,
  PARLEY_WS_OP_BINARY = 0x2,
  PARLEY_WS_OP_CLOSE = 0x8,
  PARLEY_WS_OP_PING = 0x9,
  PARLEY_WS_OP_PONG = 0xA,
} ParleyWsOpcode;

/**
 * ParleyWsResult:
 * @PARLEY_WS_NEED_MORE: everything useful was consumed; feed more bytes
 * @PARLEY_WS_MESSAGE: the output holds one complete message (data or control)
 * @PARLEY_WS_TOO_LARGE: a message over the size limit started. Report the error
 *   `frame-too-large`; the parser silently skips the rest of that message (across
 *   feeds, including its continuation frames) and then carries on: the connection
 *   stays usable
 * @PARLEY_WS_INVALID_UTF8: a complete text message was not valid UTF-8. It is
 *   dropped; the connection stays usable
 * @PARLEY_WS_PROTOCOL_ERROR: fatal. The close code to send is stored in the
 *   @close_code argument of parley_ws_parser_feed(): 1002 (protocol error) or
 *   1007 (invalid UTF-8 in a close reason). After a protocol error the parser
 *   keeps returning the same error
 *
 * Results of parley_ws_parser_feed().
 */
typedef enum {
  PARLEY_WS_NEED_MORE,
  PARLEY_WS_MESSAGE,
  PARLEY_WS_TOO_LARGE,
  PARLEY_WS_INVALID_UTF8,
  PARLEY_WS_PROTOCOL_ERROR,
} ParleyWsResult;

/** Close codes of RFC 6455, section 7.4.1. */
#define PARLEY_WS_CLOSE_NORMAL           1000
#define PARLEY_WS_CLOSE_GOING_AWAY       1001
#define PARLEY_WS_CLOSE_PROTOCOL_ERROR   1002
#define PARLEY_WS_CLOSE_UNSUPPORTED      1003
#define PARLEY_WS_CLOSE_NO_STATUS        1005
#define PARLEY_WS_CLOSE_INVALID_PAYLOAD  1007
#define PARLEY_WS_CLOSE_POLICY_VIOLATION 1008
#define PARLEY_WS_CLOSE_TOO_BIG          1009
#define PARLEY_WS_CLOSE_INTERNAL_ERROR   1011

/** The largest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask. */
#define PARLEY_WS_MAX_HEADER 14

/**
 * ParleyWsMessage:
 * @opcode: %PARLEY_WS_OP_TEXT, %PARLEY_WS_OP_BINARY or a control opcode (never
 *   %PARLEY_WS_OP_CONTINUATION)
 * @payload: the unmasked payload; valid until the next call of
 *   parley_ws_parser_feed() and, for an unfragmented message, only as long as
 *   the caller keeps the buffer it fed unchanged
 * @len: the length of @payload in bytes
 *
 * One complete message.
 *
 * For a close frame, the payload is the raw close payload (a 2-byte
 * big-endian code followed by a UTF-8 reason, or empty); it has already been
 * checked. parley_ws_close_code() reads the code.
 */
typedef struct {
  ParleyWsOpcode opcode;
  const guint8 *payload;
  gsize len;
} ParleyWsMessage;

/**
 * ParleyWsParser:
 *
 * The state of one incremental frame parser. Embed it and use
 * parley_ws_parser_init() and parley_ws_parser_clear(); the fields are
 * private.
 */
typedef struct _ParleyWsParser ParleyWsParser;

struct _ParleyWsParser {
  /*< private >*/
  gsize max_message;
  guint64 skip_remaining;     /* payload bytes of the current frame still to drop */
  guint8 *frag;               /* reassembly buffer of a fragmented message */
  gsize frag_len;
  gsize frag_alloc;
  guint server_side : 1;
  guint in_fragmented : 1;    /* a fragmented data message is open */
  guint skipping_message : 1; /* the open fragmented message is oversized: drop its fragments */
  guint failed : 1;           /* a protocol error happened; the parser is dead */
  guint8 frag_opcode;
  guint16 failed_code;
};

void           parley_ws_parser_init  (ParleyWsParser  *p,
                                       gboolean         server_side,
                                       gsize            max_message);
void           parley_ws_parser_clear (ParleyWsParser  *p);
ParleyWsResult parley_ws_parser_feed  (ParleyWsParser  *p,
                                       guint8          *buf,
                                       gsize            len,
                                       gsize           *consumed,
                                       ParleyWsMessage *out,
                                       guint16         *close_code);

gsize          parley_ws_frame_header  (guint8          out[14],
                                        ParleyWsOpcode  op,
                                        gsize           payload_len,
                                        gboolean        fin,
                                        const guint8    mask[4]);
void           parley_ws_append_frame  (GByteArray     *out,
                                        ParleyWsOpcode  op,
                                        const void     *payload,
                                        gsize           len,
                                        gboolean        client_side);
void           parley_ws_append_close  (GByteArray     *out,
                                        guint16         code,
                                        const char     *reason,
                                        gboolean        client_side);
guint16        parley_ws_close_code    (const ParleyWsMessage *msg);
void           parley_ws_mask          (guint8         *data,
                                        gsize           len,
                                        const guint8    mask[4],
                                        gsize           offset);
void           parley_ws_accept_key    (const char     *client_key,
                                        char            out[29]);

G_END_DECLS
