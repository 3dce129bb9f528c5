/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * ParleyDataChannelState:
 * @PARLEY_DATA_CHANNEL_STATE_CONNECTING: Waiting for the peer connection (also
 *   while a #ParleyPeer restarts: the channel is re-created on the new connection).
 * @PARLEY_DATA_CHANNEL_STATE_OPEN: Messages can be sent.
 * @PARLEY_DATA_CHANNEL_STATE_CLOSED: Closed for good.
 */
typedef enum {
  PARLEY_DATA_CHANNEL_STATE_CONNECTING,
  PARLEY_DATA_CHANNEL_STATE_OPEN,
  PARLEY_DATA_CHANNEL_STATE_CLOSED,
} ParleyDataChannelState;

#define PARLEY_TYPE_DATA_CHANNEL (parley_data_channel_get_type ())

G_DECLARE_FINAL_TYPE (ParleyDataChannel, parley_data_channel, PARLEY, DATA_CHANNEL, GObject)

/**
 * ParleyDataChannelMessageFunc:
 * @self: the channel
 * @data: (nullable): the binary message, or %NULL for a text message
 * @text: (nullable): the text message, or %NULL for a binary message
 * @user_data: the data given to parley_data_channel_set_message_func()
 *
 * Receives a message on the streaming thread it arrived on; see
 * parley_data_channel_set_message_func(). Exactly one of @data and @text is
 * non-%NULL. It must return quickly: the next message waits for it.
 */
typedef void (*ParleyDataChannelMessageFunc) (ParleyDataChannel *self,
                                              GBytes            *data,
                                              const char        *text,
                                              gpointer           user_data);

/*
 * A WebRTC data channel of a #ParleyPeer that outlives the peer's
 * webrtcbin: when the peer restarts, it binds the channel to the new
 * connection's channel of the same label. All signals are emitted on the
 * main context the channel was created in, never on a streaming thread
 * (messages can go to a function on the streaming thread instead, see
 * parley_data_channel_set_message_func()).
 *
 * Properties: label (string), reliable (gboolean: ordered, retransmitted; FALSE means
 *   ordered=false, max-retransmits=0), state (ParleyDataChannelState),
 *   buffered-amount (guint64).
 * Signals: "message (GBytes *data)", "message-string (const char *text)",
 *   "state-changed (ParleyDataChannelState new, ParleyDataChannelState old)".
 */

const char             *parley_data_channel_get_label    (ParleyDataChannel *self);
gboolean                parley_data_channel_get_reliable (ParleyDataChannel *self);
ParleyDataChannelState  parley_data_channel_get_state    (ParleyDataChannel *self);
guint64                 parley_data_channel_get_buffered_amount (ParleyDataChannel *self);
gboolean                parley_data_channel_send_bytes   (ParleyDataChannel *self,
                                                          GBytes            *data,
                                                          GError           **error);
gboolean                parley_data_channel_send_string  (ParleyDataChannel *self,
                                                          const char        *text,
                                                          GError           **error);
void                    parley_data_channel_close        (ParleyDataChannel *self);
void                    parley_data_channel_set_message_func
                                                         (ParleyDataChannel            *self,
                                                          ParleyDataChannelMessageFunc  func,
                                                          gpointer                      user_data,
                                                          GDestroyNotify                destroy);

/* For ParleyPeer only. @channel is a GstWebRTCDataChannel (or NULL to unbind while the
 * peer restarts). */
ParleyDataChannel      *parley_data_channel_new          (const char        *label,
                                                          gboolean           reliable);
void                    parley_data_channel_bind         (ParleyDataChannel *self,
                                                          GObject           *channel);
void                    parley_data_channel_set_realtime (ParleyDataChannel *self,
                                                          gboolean           realtime);

G_END_DECLS
