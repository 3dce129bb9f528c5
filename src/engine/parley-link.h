/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * ParleyLinkState:
 * @PARLEY_LINK_NEW: Created; no remote description yet.
 * @PARLEY_LINK_CONNECTING: ICE, DTLS or SCTP is being set up.
 * @PARLEY_LINK_CONNECTED: The SCTP association is up; messages flow.
 * @PARLEY_LINK_FAILED: ICE failed, the peer's certificate did not match its
 *   fingerprint, or the association was lost.
 * @PARLEY_LINK_CLOSED: Closed by parley_link_close() or by the peer.
 *
 * The state of a #ParleyLink.
 */
typedef enum {
  PARLEY_LINK_NEW,
  PARLEY_LINK_CONNECTING,
  PARLEY_LINK_CONNECTED,
  PARLEY_LINK_FAILED,
  PARLEY_LINK_CLOSED,
} ParleyLinkState;

/**
 * ParleyLinkSendFlags:
 * @PARLEY_LINK_SEND_DEFAULT: A reliable, ordered binary message.
 * @PARLEY_LINK_SEND_TEXT: A UTF-8 string (WebRTC's string payload id).
 * @PARLEY_LINK_SEND_UNORDERED: May overtake earlier messages.
 * @PARLEY_LINK_SEND_UNRELIABLE: Never retransmitted (a lost message stays
 *   lost), as a data channel with `maxRetransmits: 0`.
 *
 * How parley_link_send() sends one message.
 */
typedef enum {
  PARLEY_LINK_SEND_DEFAULT = 0,
  PARLEY_LINK_SEND_TEXT = 1 << 0,
  PARLEY_LINK_SEND_UNORDERED = 1 << 1,
  PARLEY_LINK_SEND_UNRELIABLE = 1 << 2,
} ParleyLinkSendFlags;

/* The largest message, as webrtcbin's data channels (and browsers by
 * default) allow. */
#define PARLEY_LINK_MAX_MESSAGE 65536

#define PARLEY_TYPE_LINK (parley_link_get_type ())
G_DECLARE_FINAL_TYPE (ParleyLink, parley_link, PARLEY, LINK, GObject)

/**
 * ParleyLinkMessageFunc:
 * @link: the link
 * @stream: the SCTP stream (the data channel's id) the message came on
 * @text: whether the peer sent it as a string
 * @data: the message (not NUL-terminated), valid during the call only
 * @len: its length
 * @user_data: the data given to parley_link_set_message_func()
 *
 * Called on the link's own thread, the thread that read the datagram.
 */
typedef void (*ParleyLinkMessageFunc) (ParleyLink   *link,
                                       guint16       stream,
                                       gboolean      text,
                                       const guint8 *data,
                                       gsize         len,
                                       gpointer      user_data);

ParleyLink      *parley_link_new                    (gboolean               offerer);
void             parley_link_set_relay              (ParleyLink            *self,
                                                     const char            *host,
                                                     guint                  port,
                                                     const char            *username,
                                                     const char            *password);
void             parley_link_set_relay_only         (ParleyLink            *self,
                                                     gboolean               relay_only);
void             parley_link_set_realtime           (ParleyLink            *self,
                                                     gboolean               realtime);
void             parley_link_set_message_func       (ParleyLink            *self,
                                                     ParleyLinkMessageFunc  func,
                                                     gpointer               user_data,
                                                     GDestroyNotify         destroy);
void             parley_link_start                  (ParleyLink            *self);
char            *parley_link_get_local_description  (ParleyLink            *self);
gboolean         parley_link_set_remote_description (ParleyLink            *self,
                                                     const char            *sdp,
                                                     GError               **error);
gboolean         parley_link_add_remote_candidate   (ParleyLink            *self,
                                                     const char            *candidate,
                                                     GError               **error);
gboolean         parley_link_send                   (ParleyLink            *self,
                                                     guint16                stream,
                                                     ParleyLinkSendFlags    flags,
                                                     const void            *data,
                                                     gsize                  len,
                                                     GError               **error);
ParleyLinkState  parley_link_get_state              (ParleyLink            *self);
const char      *parley_link_state_to_string        (ParleyLinkState        state);
void             parley_link_close                  (ParleyLink            *self);

G_END_DECLS
