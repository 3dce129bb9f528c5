/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-data-channel"

#define GST_USE_UNSTABLE_API
#include "config.h"

#include <glib/gi18n-lib.h>
#include <gst/webrtc/webrtc.h>

#include "parley-data-channel.h"
#include "parley-engine-enums.h"
#include "parley-error.h"
#include "parley-sched.h"

/* The largest message webrtcbin 1.22 sends in one piece (SCTP max-message-size). */
#define MAX_MESSAGE_SIZE 65536

/**
 * ParleyDataChannel:
 *
 * A data channel of a peer connection that survives a restart of the
 * connection. webrtcbin emits the events of its channels on streaming
 * threads; they are queued here and re-emitted in order on the main
 * context that was the thread default when the channel was created.
 *
 * Each bind starts a new generation (a serial): events still queued from a
 * channel that has been unbound or replaced since are dropped.
 *
 * Messages can skip the main context: with a message function set they are
 * handed to it on the streaming thread they arrive on. Going through the
 * main context costs a wake-up of another thread per message, and on a
 * loaded machine (a video call on two cores) that wake-up is where
 * latency-critical users lose milliseconds.
 */
struct _ParleyDataChannel {
  GObject                 parent_instance;

  char                   *label;
  gboolean                reliable;
  ParleyDataChannelState  state;
  guint64                 buffered_amount;
  gboolean                closed_by_us;

  GMainContext           *context;
  GThread                *owner_thread;

  /* Held while the message function runs, so that once
   * parley_data_channel_set_message_func() returns the old one has finished. */
  GRecMutex                     message_lock;
  ParleyDataChannelMessageFunc  message_func;
  gpointer                      message_data;
  GDestroyNotify                message_destroy;

  /* Set by the peer: the thread that delivers messages asks for real-time
   * priority (atomic). */
  gint                          realtime;

  /* The lock guards the fields below; they are touched by streaming threads. */
  GMutex                  lock;
  GstWebRTCDataChannel   *channel;
  struct _Binding        *binding;
  guint                   serial;
  GQueue                  events;
  GSource                *dispatch_source;
  guint64                 seen_amount;
};

G_DEFINE_FINAL_TYPE (ParleyDataChannel, parley_data_channel, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_LABEL,
  PROP_RELIABLE,
  PROP_STATE,
  PROP_BUFFERED_AMOUNT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_MESSAGE,
  SIGNAL_MESSAGE_STRING,
  SIGNAL_STATE_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* What the signal handlers of one bind share: the channel (weakly) and the serial. */
typedef struct _Binding {
  GWeakRef self;
  guint    serial;
} Binding;

typedef enum {
  EVENT_STATE,
  EVENT_MESSAGE,
  EVENT_STRING,
  EVENT_BUFFERED_AMOUNT,
  EVENT_ERROR,
} EventKind;

typedef struct {
  EventKind               kind;
  guint                   serial;
  ParleyDataChannelState  state;
  GBytes                 *bytes;
  char                   *text;
  guint64                 amount;
} Event;

static void
event_free (Event *event)
{
  g_clear_pointer (&event->bytes, g_bytes_unref);
  g_free (event->text);
  g_free (event);
}

static void
binding_clear (Binding *binding)
{
  g_weak_ref_clear (&binding->self);
}

static void
binding_release (gpointer data,
                 GClosure *closure)
{
  g_atomic_rc_box_release_full (data, (GDestroyNotify) binding_clear);
}

static ParleyDataChannelState
map_ready_state (GstWebRTCDataChannelState ready_state)
{
  switch (ready_state) {
  case GST_WEBRTC_DATA_CHANNEL_STATE_OPEN:
    return PARLEY_DATA_CHANNEL_STATE_OPEN;
  case GST_WEBRTC_DATA_CHANNEL_STATE_CLOSING:
  case GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED:
    return PARLEY_DATA_CHANNEL_STATE_CLOSED;
  case GST_WEBRTC_DATA_CHANNEL_STATE_CONNECTING:
  default:
    /* 1.22 starts channels at an invalid 0 before they connect. */
    return PARLEY_DATA_CHANNEL_STATE_CONNECTING;
  }
}

static ParleyDataChannelState
read_state (GstWebRTCDataChannel *channel)
{
  GstWebRTCDataChannelState ready_state = 0;

  g_object_get (channel, "ready-state", &ready_state, NULL);
  return map_ready_state (ready_state);
}

static void
set_state (ParleyDataChannel      *self,
           ParleyDataChannelState  state)
{
  ParleyDataChannelState old = self->state;

  if (old == state)
    return;
  g_debug ("Channel %s: state %d -> %d", self->label, old, state);
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state, old);
}

static void
set_buffered_amount (ParleyDataChannel *self,
                     guint64            amount)
{
  if (self->buffered_amount == amount)
    return;
  self->buffered_amount = amount;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUFFERED_AMOUNT]);
}

static void
handle_event (ParleyDataChannel *self,
              Event             *event)
{
  switch (event->kind) {
  case EVENT_STATE:
    if (self->state != PARLEY_DATA_CHANNEL_STATE_CLOSED || !self->closed_by_us)
      set_state (self, event->state);
    break;
  case EVENT_MESSAGE:
    g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, event->bytes);
    break;
  case EVENT_STRING:
    g_signal_emit (self, signals[SIGNAL_MESSAGE_STRING], 0, event->text);
    break;
  case EVENT_BUFFERED_AMOUNT:
    set_buffered_amount (self, event->amount);
    break;
  case EVENT_ERROR:
    g_debug ("Channel %s: error: %s", self->label, event->text);
    break;
  default:
    g_assert_not_reached ();
  }
}

static gboolean
dispatch_events_cb (gpointer data)
{
  ParleyDataChannel *self = data;
  GQueue events = G_QUEUE_INIT;
  guint serial;
  Event *event;

  g_mutex_lock (&self->lock);
  events = self->events;
  g_queue_init (&self->events);
  g_clear_pointer (&self->dispatch_source, g_source_unref);
  serial = self->serial;
  g_mutex_unlock (&self->lock);

  /* Each event holds a reference on @self, dropped here on the main context. */
  while ((event = g_queue_pop_head (&events))) {
    if (event->serial == serial) {
      handle_event (self, event);
      g_mutex_lock (&self->lock);
      serial = self->serial;
      g_mutex_unlock (&self->lock);
    } else {
      g_debug ("Channel %s: dropped an event of an earlier binding", self->label);
    }
    event_free (event);
    g_object_unref (self);
  }

  return G_SOURCE_REMOVE;
}

/* Queues @event (which owns a reference on @self) for the main context; any thread. */
static void
queue_event (ParleyDataChannel *self,
             Event             *event)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->events, event);
  if (self->dispatch_source == NULL) {
    GSource *source = g_idle_source_new ();

    g_source_set_priority (source, G_PRIORITY_DEFAULT);
    g_source_set_callback (source, dispatch_events_cb, g_object_ref (self), g_object_unref);
    g_source_set_static_name (source, "[parley] data channel events");
    g_source_attach (source, self->context);
    self->dispatch_source = source;
  }
  g_mutex_unlock (&self->lock);
}

static Event *
event_alloc (Binding   *binding,
             EventKind  kind)
{
  Event *event = g_new0 (Event, 1);

  event->kind = kind;
  event->serial = binding->serial;
  return event;
}

/* Starts an event for the channel of @binding, or returns %NULL if it is gone. */
static Event *
event_new (Binding           *binding,
           EventKind          kind,
           ParleyDataChannel **self_out)
{
  ParleyDataChannel *self = g_weak_ref_get (&binding->self);

  *self_out = self;
  return self != NULL ? event_alloc (binding, kind) : NULL;
}

static void
on_open_cb (GstWebRTCDataChannel *channel,
            Binding              *binding)
{
  ParleyDataChannel *self;
  Event *event = event_new (binding, EVENT_STATE, &self);

  if (event == NULL)
    return;
  event->state = PARLEY_DATA_CHANNEL_STATE_OPEN;
  queue_event (self, event);
}

static void
on_close_cb (GstWebRTCDataChannel *channel,
             Binding              *binding)
{
  ParleyDataChannel *self;
  Event *event = event_new (binding, EVENT_STATE, &self);

  if (event == NULL)
    return;
  event->state = PARLEY_DATA_CHANNEL_STATE_CLOSED;
  queue_event (self, event);
}

static void
on_error_cb (GstWebRTCDataChannel *channel,
             GError               *error,
             Binding              *binding)
{
  ParleyDataChannel *self;
  Event *event = event_new (binding, EVENT_ERROR, &self);

  if (event == NULL)
    return;
  event->text = g_strdup (error != NULL ? error->message : "unknown error");
  queue_event (self, event);
}

/* Hands a message of @binding to the message function on this thread;
 * returns %FALSE if there is none and the message is to be queued. A message
 * of an earlier binding is dropped, as it would be from the queue. */
static gboolean
call_message_func (ParleyDataChannel *self,
                   Binding           *binding,
                   GBytes            *data,
                   const char        *text)
{
  gboolean handled = FALSE;

  g_rec_mutex_lock (&self->message_lock);
  if (self->message_func != NULL) {
    guint serial;

    g_mutex_lock (&self->lock);
    serial = self->serial;
    g_mutex_unlock (&self->lock);
    if (serial == binding->serial)
      self->message_func (self, data, text, self->message_data);
    else
      g_debug ("Channel %s: dropped a message of an earlier binding", self->label);
    handled = TRUE;
  }
  g_rec_mutex_unlock (&self->message_lock);

  return handled;
}

/* Set on a thread that delivers messages once it asked for its priority:
 * webrtcbin emits every channel's messages on a thread of its own, the
 * last of the hops that a message makes (see parley_sched_realtime()). */
static GPrivate delivering_thread_raised;

/* Hands a message (@data, or @text) to the message function on this thread,
 * or queues it for the main context. */
static void
deliver_message (Binding    *binding,
                 GBytes     *data,
                 const char *text)
{
  ParleyDataChannel *self = g_weak_ref_get (&binding->self);
  Event *event;

  if (self == NULL)
    return;
  if (g_atomic_int_get (&self->realtime) && g_private_get (&delivering_thread_raised) == NULL) {
    g_private_set (&delivering_thread_raised, GINT_TO_POINTER (1));
    parley_sched_realtime ("data channel thread");
  }
  if (call_message_func (self, binding, data, text)) {
    g_object_unref (self);
    return;
  }
  /* The event takes over the reference on @self. */
  event = event_alloc (binding, data != NULL ? EVENT_MESSAGE : EVENT_STRING);
  if (data != NULL)
    event->bytes = g_bytes_ref (data);
  else
    event->text = g_strdup (text);
  queue_event (self, event);
}

static void
on_message_data_cb (GstWebRTCDataChannel *channel,
                    GBytes               *data,
                    Binding              *binding)
{
  g_autoptr(GBytes) empty = NULL;

  /* An empty binary message may come as NULL. */
  if (data == NULL)
    data = empty = g_bytes_new (NULL, 0);
  deliver_message (binding, data, NULL);
}

static void
on_message_string_cb (GstWebRTCDataChannel *channel,
                      const char           *text,
                      Binding              *binding)
{
  /* An empty text message may come as NULL. */
  deliver_message (binding, NULL, text != NULL ? text : "");
}

static void
on_buffered_amount_low_cb (GstWebRTCDataChannel *channel,
                           Binding              *binding)
{
  ParleyDataChannel *self;
  Event *event = event_new (binding, EVENT_BUFFERED_AMOUNT, &self);

  if (event == NULL)
    return;
  g_object_get (channel, "buffered-amount", &event->amount, NULL);
  g_mutex_lock (&self->lock);
  self->seen_amount = event->amount;
  g_mutex_unlock (&self->lock);
  queue_event (self, event);
}

static void
notify_ready_state_cb (GstWebRTCDataChannel *channel,
                       GParamSpec           *pspec,
                       Binding              *binding)
{
  ParleyDataChannel *self;
  Event *event = event_new (binding, EVENT_STATE, &self);

  if (event == NULL)
    return;
  event->state = read_state (channel);
  queue_event (self, event);
}

static void
connect_binding (GstWebRTCDataChannel *channel,
                 Binding              *binding)
{
  static const struct {
    const char *signal;
    GCallback   callback;
  } handlers[] = {
    { "on-open", G_CALLBACK (on_open_cb) },
    { "on-close", G_CALLBACK (on_close_cb) },
    { "on-error", G_CALLBACK (on_error_cb) },
    { "on-message-data", G_CALLBACK (on_message_data_cb) },
    { "on-message-string", G_CALLBACK (on_message_string_cb) },
    { "on-buffered-amount-low", G_CALLBACK (on_buffered_amount_low_cb) },
    { "notify::ready-state", G_CALLBACK (notify_ready_state_cb) },
  };

  for (guint i = 0; i < G_N_ELEMENTS (handlers); i++) {
    g_signal_connect_data (channel, handlers[i].signal, handlers[i].callback,
                           g_atomic_rc_box_acquire (binding), binding_release, 0);
  }
}

/* Replaces the bound channel under the lock; returns the old one and its binding. */
static guint
swap_channel (ParleyDataChannel     *self,
              GstWebRTCDataChannel  *channel,
              GstWebRTCDataChannel **old_channel,
              Binding              **old_binding)
{
  Binding *binding = NULL;
  guint serial;

  g_mutex_lock (&self->lock);
  serial = ++self->serial;
  /* Whatever the old channel had buffered, the next amount is news. */
  self->seen_amount = G_MAXUINT64;
  *old_channel = g_steal_pointer (&self->channel);
  *old_binding = g_steal_pointer (&self->binding);
  if (channel != NULL) {
    binding = g_atomic_rc_box_new0 (Binding);
    g_weak_ref_init (&binding->self, self);
    binding->serial = serial;
    self->channel = g_object_ref (channel);
    self->binding = binding;
    /* Connected under the lock so that no event of the new channel can be
     * queued before the serial that admits it is current. */
    connect_binding (channel, binding);
  }
  g_mutex_unlock (&self->lock);

  return serial;
}

static void
disconnect_old (GstWebRTCDataChannel *old_channel,
                Binding              *old_binding)
{
  if (old_channel != NULL) {
    g_signal_handlers_disconnect_by_data (old_channel, old_binding);
    g_object_unref (old_channel);
  }
  if (old_binding != NULL)
    g_atomic_rc_box_release_full (old_binding, (GDestroyNotify) binding_clear);
}

/* Returns a new reference to the bound channel, or %NULL. */
static GstWebRTCDataChannel *
dup_channel (ParleyDataChannel *self)
{
  GstWebRTCDataChannel *channel;

  g_mutex_lock (&self->lock);
  channel = self->channel != NULL ? g_object_ref (self->channel) : NULL;
  g_mutex_unlock (&self->lock);

  return channel;
}

/* Whether the channel is open as seen from the calling thread: the main
 * context's state on the channel's own thread; elsewhere (a message function
 * answering on a streaming thread, which may run before the main context
 * has seen the channel open) the bound webrtcbin channel's. */
static gboolean
is_open (ParleyDataChannel    *self,
         GstWebRTCDataChannel *channel)
{
  if (g_thread_self () == self->owner_thread)
    return self->state == PARLEY_DATA_CHANNEL_STATE_OPEN;
  return channel != NULL && read_state (channel) == PARLEY_DATA_CHANNEL_STATE_OPEN;
}

static gboolean
check_sendable (ParleyDataChannel    *self,
                GstWebRTCDataChannel *channel,
                gsize                 size,
                GError              **error)
{
  if (size > MAX_MESSAGE_SIZE) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 _("Message of %lu bytes is larger than %d bytes"),
                 (unsigned long) size, MAX_MESSAGE_SIZE);
    return FALSE;
  }
  if (!is_open (self, channel)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE,
                 _("Data channel “%s” is not open"), self->label);
    return FALSE;
  }
  return TRUE;
}

static gboolean
translate_send_error (ParleyDataChannel *self,
                      gboolean           ok,
                      GError            *gst_error,
                      GError           **error)
{
  g_autoptr(GError) local = gst_error;

  if (ok)
    return TRUE;
  if (local != NULL && g_error_matches (local, GST_WEBRTC_ERROR, GST_WEBRTC_ERROR_INVALID_STATE))
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, _("Data channel “%s”: %s"),
                 self->label, local->message);
  else
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA, _("Data channel “%s”: %s"),
                 self->label, local != NULL ? local->message : "sending failed");
  return FALSE;
}

/* Handles @event (which owns a reference on @self) at once when called on
 * the channel's own thread with its main context free or already ours, else
 * queues it for the main context: either way handlers run with the context
 * acquired, as they would from the main loop. */
static void
apply_event (ParleyDataChannel *self,
             Event             *event)
{
  if (g_thread_self () == self->owner_thread && g_main_context_acquire (self->context)) {
    handle_event (self, event);
    g_main_context_release (self->context);
    event_free (event);
    g_object_unref (self);
  } else {
    queue_event (self, event);
  }
}

static void
apply_state (ParleyDataChannel      *self,
             guint                   serial,
             ParleyDataChannelState  state)
{
  Event *event = g_new0 (Event, 1);

  event->kind = EVENT_STATE;
  event->serial = serial;
  event->state = state;
  apply_event (g_object_ref (self), event);
}

/* Passes the amount on after a send, unless it is the one passed on last:
 * a message function that answers on a streaming thread would otherwise
 * wake the main context for every message. */
static void
refresh_buffered_amount (ParleyDataChannel    *self,
                         GstWebRTCDataChannel *channel)
{
  Event *event;
  guint64 amount = 0;
  guint serial;
  gboolean changed;

  g_object_get (channel, "buffered-amount", &amount, NULL);
  g_mutex_lock (&self->lock);
  serial = self->serial;
  changed = amount != self->seen_amount;
  self->seen_amount = amount;
  g_mutex_unlock (&self->lock);
  if (!changed)
    return;

  event = g_new0 (Event, 1);
  event->kind = EVENT_BUFFERED_AMOUNT;
  event->serial = serial;
  event->amount = amount;
  apply_event (g_object_ref (self), event);
}

static void
parley_data_channel_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  ParleyDataChannel *self = PARLEY_DATA_CHANNEL (object);

  switch (prop_id) {
  case PROP_LABEL:
    g_value_set_string (value, self->label);
    break;
  case PROP_RELIABLE:
    g_value_set_boolean (value, self->reliable);
    break;
  case PROP_STATE:
    g_value_set_enum (value, self->state);
    break;
  case PROP_BUFFERED_AMOUNT:
    g_value_set_uint64 (value, parley_data_channel_get_buffered_amount (self));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_data_channel_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  ParleyDataChannel *self = PARLEY_DATA_CHANNEL (object);

  switch (prop_id) {
  case PROP_LABEL:
    self->label = g_value_dup_string (value);
    break;
  case PROP_RELIABLE:
    self->reliable = g_value_get_boolean (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_data_channel_dispose (GObject *object)
{
  ParleyDataChannel *self = PARLEY_DATA_CHANNEL (object);
  GstWebRTCDataChannel *old_channel;
  Binding *old_binding;

  swap_channel (self, NULL, &old_channel, &old_binding);
  disconnect_old (old_channel, old_binding);
  parley_data_channel_set_message_func (self, NULL, NULL, NULL);

  G_OBJECT_CLASS (parley_data_channel_parent_class)->dispose (object);
}

static void
parley_data_channel_finalize (GObject *object)
{
  ParleyDataChannel *self = PARLEY_DATA_CHANNEL (object);

  /* Queued events and the dispatch source hold references: both are gone. */
  g_assert (g_queue_is_empty (&self->events));
  g_assert (self->dispatch_source == NULL);
  g_free (self->label);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_rec_mutex_clear (&self->message_lock);

  G_OBJECT_CLASS (parley_data_channel_parent_class)->finalize (object);
}

static void
parley_data_channel_class_init (ParleyDataChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = parley_data_channel_get_property;
  object_class->set_property = parley_data_channel_set_property;
  object_class->dispose = parley_data_channel_dispose;
  object_class->finalize = parley_data_channel_finalize;

  /**
   * ParleyDataChannel:label:
   *
   * The label both sides know the channel by.
   */
  properties[PROP_LABEL] =
    g_param_spec_string ("label", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * ParleyDataChannel:reliable:
   *
   * Whether messages are ordered and retransmitted; an unreliable channel
   * is unordered with no retransmissions.
   */
  properties[PROP_RELIABLE] =
    g_param_spec_boolean ("reliable", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * ParleyDataChannel:state:
   *
   * The state of the channel.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL,
                       PARLEY_TYPE_DATA_CHANNEL_STATE, PARLEY_DATA_CHANNEL_STATE_CONNECTING,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * ParleyDataChannel:buffered-amount:
   *
   * Bytes queued for sending inside webrtcbin (not counting SCTP's own
   * buffers). Notified when it falls below the low threshold.
   */
  properties[PROP_BUFFERED_AMOUNT] =
    g_param_spec_uint64 ("buffered-amount", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyDataChannel::message:
   * @self: the channel
   * @data: the binary message
   *
   * A binary message arrived.
   */
  signals[SIGNAL_MESSAGE] =
    g_signal_new ("message", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BYTES);

  /**
   * ParleyDataChannel::message-string:
   * @self: the channel
   * @text: the text message
   *
   * A text message arrived.
   */
  signals[SIGNAL_MESSAGE_STRING] =
    g_signal_new ("message-string", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * ParleyDataChannel::state-changed:
   * @self: the channel
   * @new_state: the new state
   * @old_state: the previous state
   *
   * The state changed.
   */
  signals[SIGNAL_STATE_CHANGED] =
    g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                  PARLEY_TYPE_DATA_CHANNEL_STATE, PARLEY_TYPE_DATA_CHANNEL_STATE);
}

static void
parley_data_channel_init (ParleyDataChannel *self)
{
  self->reliable = TRUE;
  self->state = PARLEY_DATA_CHANNEL_STATE_CONNECTING;
  self->context = g_main_context_ref_thread_default ();
  self->owner_thread = g_thread_self ();
  g_mutex_init (&self->lock);
  g_rec_mutex_init (&self->message_lock);
  g_queue_init (&self->events);
  self->seen_amount = G_MAXUINT64;
}

/**
 * parley_data_channel_new:
 * @label: the channel's label
 * @reliable: %FALSE for an unordered channel without retransmissions
 *
 * Creates an unbound channel in state %PARLEY_DATA_CHANNEL_STATE_CONNECTING.
 * Its signals are emitted on the thread-default main context of the caller.
 *
 * Returns: (transfer full): the new channel
 */
ParleyDataChannel *
parley_data_channel_new (const char *label,
                         gboolean    reliable)
{
  g_return_val_if_fail (label != NULL, NULL);

  return g_object_new (PARLEY_TYPE_DATA_CHANNEL, "label", label, "reliable", reliable, NULL);
}

/**
 * parley_data_channel_bind:
 * @self: a #ParleyDataChannel
 * @channel: (nullable) (type GstWebRTCDataChannel): the webrtcbin channel, or
 *   %NULL while the peer connection restarts
 *
 * Binds @self to a webrtcbin data channel, replacing the previous one;
 * events of the previous channel that are still queued are dropped. The
 * state follows the new channel. Unbinding an open or connecting channel
 * moves it to %PARLEY_DATA_CHANNEL_STATE_CONNECTING until a new channel
 * opens; unbinding a closed one leaves it closed. A channel closed with
 * parley_data_channel_close() stays closed; one closed by the far side or
 * the transport opens again when bound to a new channel.
 *
 * May be called from any thread: the state change is then applied on the
 * channel's main context.
 */
void
parley_data_channel_bind (ParleyDataChannel *self,
                          GObject           *channel)
{
  GstWebRTCDataChannel *old_channel;
  Binding *old_binding;
  ParleyDataChannelState state;
  guint serial;

  g_return_if_fail (PARLEY_IS_DATA_CHANNEL (self));
  g_return_if_fail (channel == NULL || GST_IS_WEBRTC_DATA_CHANNEL (channel));

  if (self->closed_by_us) {
    g_debug ("Channel %s: closed, not binding", self->label);
    return;
  }

  serial = swap_channel (self, GST_WEBRTC_DATA_CHANNEL (channel), &old_channel, &old_binding);
  disconnect_old (old_channel, old_binding);

  if (channel != NULL)
    state = read_state (GST_WEBRTC_DATA_CHANNEL (channel));
  else if (self->state == PARLEY_DATA_CHANNEL_STATE_CLOSED)
    state = PARLEY_DATA_CHANNEL_STATE_CLOSED;
  else
    state = PARLEY_DATA_CHANNEL_STATE_CONNECTING;

  apply_state (self, serial, state);
}

/**
 * parley_data_channel_set_realtime:
 * @self: a #ParleyDataChannel
 * @realtime: whether the thread that delivers messages should ask for
 *   real-time priority
 *
 * For #ParleyPeer ([property@MediaSettings:realtime]).
 */
void
parley_data_channel_set_realtime (ParleyDataChannel *self,
                                  gboolean           realtime)
{
  g_return_if_fail (PARLEY_IS_DATA_CHANNEL (self));

  g_atomic_int_set (&self->realtime, !!realtime);
}

/**
 * parley_data_channel_get_label:
 * @self: a #ParleyDataChannel
 *
 * Returns: the channel's label
 */
const char *
parley_data_channel_get_label (ParleyDataChannel *self)
{
  g_return_val_if_fail (PARLEY_IS_DATA_CHANNEL (self), NULL);

  return self->label;
}

/**
 * parley_data_channel_get_reliable:
 * @self: a #ParleyDataChannel
 *
 * Returns: %TRUE if messages are ordered and retransmitted
 */
gboolean
parley_data_channel_get_reliable (ParleyDataChannel *self)
{
  g_return_val_if_fail (PARLEY_IS_DATA_CHANNEL (self), FALSE);

  return self->reliable;
}

/**
 * parley_data_channel_get_state:
 * @self: a #ParleyDataChannel
 *
 * Returns: the channel's state
 */
ParleyDataChannelState
parley_data_channel_get_state (ParleyDataChannel *self)
{
  g_return_val_if_fail (PARLEY_IS_DATA_CHANNEL (self), PARLEY_DATA_CHANNEL_STATE_CLOSED);

  return self->state;
}

/**
 * parley_data_channel_get_buffered_amount:
 * @self: a #ParleyDataChannel
 *
 * Returns: the bytes queued for sending inside webrtcbin
 */
guint64
parley_data_channel_get_buffered_amount (ParleyDataChannel *self)
{
  g_autoptr(GstWebRTCDataChannel) channel = NULL;
  guint64 amount = 0;

  g_return_val_if_fail (PARLEY_IS_DATA_CHANNEL (self), 0);

  channel = dup_channel (self);
  if (channel == NULL)
    return self->buffered_amount;
  g_object_get (channel, "buffered-amount", &amount, NULL);
  return amount;
}

/**
 * parley_data_channel_send_bytes:
 * @self: a #ParleyDataChannel
 * @data: the message, at most 65536 bytes
 * @error: return location for a #GError
 *
 * Sends a binary message. May be called on the channel's own thread, or
 * from a #ParleyDataChannelMessageFunc on the streaming thread.
 *
 * Returns: %TRUE if the message was queued; %FALSE with %PARLEY_ERROR_STATE
 *   if the channel is not open, %PARLEY_ERROR_INVALID if it is too large
 */
gboolean
parley_data_channel_send_bytes (ParleyDataChannel *self,
                                GBytes            *data,
                                GError           **error)
{
  g_autoptr(GstWebRTCDataChannel) channel = NULL;
  GError *gst_error = NULL;
  gboolean ok;

  g_return_val_if_fail (PARLEY_IS_DATA_CHANNEL (self), FALSE);
  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  channel = dup_channel (self);
  if (!check_sendable (self, channel, g_bytes_get_size (data), error))
    return FALSE;
  if (channel == NULL)
    return translate_send_error (self, FALSE, NULL, error);

  ok = gst_webrtc_data_channel_send_data_full (channel, data, &gst_error);
  refresh_buffered_amount (self, channel);
  return translate_send_error (self, ok, gst_error, error);
}

/**
 * parley_data_channel_send_string:
 * @self: a #ParleyDataChannel
 * @text: the message, UTF-8, at most 65536 bytes
 * @error: return location for a #GError
 *
 * Sends a text message. May be called where parley_data_channel_send_bytes() may.
 *
 * Returns: %TRUE if the message was queued; %FALSE with %PARLEY_ERROR_STATE
 *   if the channel is not open, %PARLEY_ERROR_INVALID if it is too large or
 *   not UTF-8
 */
gboolean
parley_data_channel_send_string (ParleyDataChannel *self,
                                 const char        *text,
                                 GError           **error)
{
  g_autoptr(GstWebRTCDataChannel) channel = NULL;
  GError *gst_error = NULL;
  gsize size;
  gboolean ok;

  g_return_val_if_fail (PARLEY_IS_DATA_CHANNEL (self), FALSE);
  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  size = strlen (text);
  channel = dup_channel (self);
  if (!check_sendable (self, channel, size, error))
    return FALSE;
  if (!g_utf8_validate (text, size, NULL)) {
    g_set_error_literal (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("Text is not valid UTF-8"));
    return FALSE;
  }
  if (channel == NULL)
    return translate_send_error (self, FALSE, NULL, error);

  ok = gst_webrtc_data_channel_send_string_full (channel, text, &gst_error);
  refresh_buffered_amount (self, channel);
  return translate_send_error (self, ok, gst_error, error);
}

/**
 * parley_data_channel_close:
 * @self: a #ParleyDataChannel
 *
 * Closes the channel for good: the far side sees it close, later binds are
 * ignored and the state becomes %PARLEY_DATA_CHANNEL_STATE_CLOSED.
 */
void
parley_data_channel_close (ParleyDataChannel *self)
{
  GstWebRTCDataChannel *old_channel;
  Binding *old_binding;
  guint serial;

  g_return_if_fail (PARLEY_IS_DATA_CHANNEL (self));

  if (self->closed_by_us)
    return;
  self->closed_by_us = TRUE;

  serial = swap_channel (self, NULL, &old_channel, &old_binding);
  if (old_channel != NULL)
    g_signal_handlers_disconnect_by_data (old_channel, old_binding);
  if (old_channel != NULL && read_state (old_channel) != PARLEY_DATA_CHANNEL_STATE_CLOSED)
    gst_webrtc_data_channel_close (old_channel);
  disconnect_old (old_channel, old_binding);

  apply_state (self, serial, PARLEY_DATA_CHANNEL_STATE_CLOSED);
}

/**
 * parley_data_channel_set_message_func:
 * @self: a #ParleyDataChannel
 * @func: (nullable) (scope notified): the function, or %NULL to go back to signals
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data when @func is replaced or the channel goes
 *
 * Has messages handed to @func on the streaming thread they arrive on,
 * instead of emitting #ParleyDataChannel::message and
 * #ParleyDataChannel::message-string on the main context: for
 * latency-critical users such as games, this saves a thread wake-up per
 * message. State changes are still emitted on the main context, so a
 * message may come before #ParleyDataChannel::state-changed reports the
 * channel open. Messages that were queued for the main context before
 * @func was set are still emitted as signals.
 *
 * @func runs on webrtcbin's own thread: it must not block, and from it only
 * parley_data_channel_send_bytes(), parley_data_channel_send_string(),
 * parley_data_channel_get_label() and this function may be called on
 * @self. Messages of a channel that was unbound or replaced since they
 * arrived are dropped. It stays set when the peer connection restarts.
 *
 * May be called from any thread. Once it returns, the previous function no
 * longer runs (unless it is being called from inside that function) and
 * its @destroy has been called.
 */
void
parley_data_channel_set_message_func (ParleyDataChannel            *self,
                                      ParleyDataChannelMessageFunc  func,
                                      gpointer                      user_data,
                                      GDestroyNotify                destroy)
{
  gpointer old_data;
  GDestroyNotify old_destroy;

  g_return_if_fail (PARLEY_IS_DATA_CHANNEL (self));

  g_rec_mutex_lock (&self->message_lock);
  old_data = self->message_data;
  old_destroy = self->message_destroy;
  self->message_func = func;
  self->message_data = func != NULL ? user_data : NULL;
  self->message_destroy = func != NULL ? destroy : NULL;
  g_rec_mutex_unlock (&self->message_lock);

  if (old_destroy != NULL)
    old_destroy (old_data);
}
