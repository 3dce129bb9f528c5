/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-device-monitor"

#include "config.h"

#include <glib/gi18n-lib.h>

#include "parley-device-monitor.h"
#include "parley-engine-enums.h"
#include "parley-error.h"

/**
 * ParleyDeviceMonitor:
 *
 * Lists the machine's microphones, cameras and speakers.
 *
 * The monitor wraps a #GstDeviceMonitor filtered on Audio/Source, Video/Source and
 * Audio/Sink. After parley_device_monitor_start() each list is a #GListModel of
 * #GstDevice that follows hotplug: bus messages of the device monitor are handled
 * on the thread-default main context of the thread that called start, so the lists
 * change and the signals are emitted there.
 */

#define N_KINDS 3

static const char * const kind_classes[N_KINDS] = {
  [PARLEY_DEVICE_KIND_MICROPHONE] = "Audio/Source",
  [PARLEY_DEVICE_KIND_CAMERA] = "Video/Source",
  [PARLEY_DEVICE_KIND_SPEAKER] = "Audio/Sink",
};

struct _ParleyDeviceMonitor {
  GObject           parent_instance;

  GstDeviceMonitor *monitor;
  GListStore       *devices[N_KINDS];
  GSource          *bus_source;
  gboolean          started;
};

G_DEFINE_FINAL_TYPE (ParleyDeviceMonitor, parley_device_monitor, G_TYPE_OBJECT)

enum {
  SIGNAL_DEVICE_ADDED,
  SIGNAL_DEVICE_REMOVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static gboolean
device_equal (gconstpointer a,
              gconstpointer b)
{
  return a == b;
}

static void
add_device (ParleyDeviceMonitor *self,
            GstDevice           *device)
{
  for (guint kind = 0; kind < N_KINDS; kind++) {
    if (!gst_device_has_classes (device, kind_classes[kind]))
      continue;
    if (g_list_store_find_with_equal_func (self->devices[kind], device, device_equal, NULL))
      continue;
    g_list_store_append (self->devices[kind], device);
    g_signal_emit (self, signals[SIGNAL_DEVICE_ADDED], 0, (ParleyDeviceKind) kind, device);
  }
}

static void
remove_device (ParleyDeviceMonitor *self,
               GstDevice           *device)
{
  /* Keep the device alive while the signal handlers look at it. */
  g_autoptr(GstDevice) keep = gst_object_ref (device);

  for (guint kind = 0; kind < N_KINDS; kind++) {
    guint position;

    if (!g_list_store_find_with_equal_func (self->devices[kind], device, device_equal,
                                            &position))
      continue;
    g_list_store_remove (self->devices[kind], position);
    g_signal_emit (self, signals[SIGNAL_DEVICE_REMOVED], 0, (ParleyDeviceKind) kind, device);
  }
}

static gboolean
bus_cb (GstBus     *bus,
        GstMessage *message,
        gpointer    user_data)
{
  ParleyDeviceMonitor *self = user_data;
  g_autoptr(GstDevice) device = NULL;
  g_autoptr(GstDevice) old_device = NULL;

  switch (GST_MESSAGE_TYPE (message)) {
  case GST_MESSAGE_DEVICE_ADDED:
    gst_message_parse_device_added (message, &device);
    add_device (self, device);
    break;
  case GST_MESSAGE_DEVICE_REMOVED:
    gst_message_parse_device_removed (message, &device);
    remove_device (self, device);
    break;
  case GST_MESSAGE_DEVICE_CHANGED:
    gst_message_parse_device_changed (message, &device, &old_device);
    remove_device (self, old_device);
    add_device (self, device);
    break;
  default:
    break;
  }
  return G_SOURCE_CONTINUE;
}

static void
parley_device_monitor_dispose (GObject *object)
{
  ParleyDeviceMonitor *self = PARLEY_DEVICE_MONITOR (object);

  parley_device_monitor_stop (self);
  gst_clear_object (&self->monitor);
  for (guint kind = 0; kind < N_KINDS; kind++)
    g_clear_object (&self->devices[kind]);

  G_OBJECT_CLASS (parley_device_monitor_parent_class)->dispose (object);
}

static void
parley_device_monitor_class_init (ParleyDeviceMonitorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = parley_device_monitor_dispose;

  /**
   * ParleyDeviceMonitor::device-added:
   * @self: the monitor
   * @kind: the list the device joined
   * @device: the device
   *
   * Emitted when a device appears in one of the lists, also for the devices found
   * when the monitor starts.
   */
  signals[SIGNAL_DEVICE_ADDED] =
    g_signal_new ("device-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, PARLEY_TYPE_DEVICE_KIND, GST_TYPE_DEVICE);

  /**
   * ParleyDeviceMonitor::device-removed:
   * @self: the monitor
   * @kind: the list the device left
   * @device: the device
   *
   * Emitted when a device was unplugged, after it left the list. A running call
   * that uses it can fall back to the default device.
   */
  signals[SIGNAL_DEVICE_REMOVED] =
    g_signal_new ("device-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, PARLEY_TYPE_DEVICE_KIND, GST_TYPE_DEVICE);
}

static void
parley_device_monitor_init (ParleyDeviceMonitor *self)
{
  self->monitor = gst_device_monitor_new ();
  for (guint kind = 0; kind < N_KINDS; kind++) {
    self->devices[kind] = g_list_store_new (GST_TYPE_DEVICE);
    gst_device_monitor_add_filter (self->monitor, kind_classes[kind], NULL);
  }
}

/**
 * parley_device_monitor_new:
 *
 * Creates a device monitor. Its lists stay empty until
 * parley_device_monitor_start().
 *
 * Returns: (transfer full): a new device monitor
 */
ParleyDeviceMonitor *
parley_device_monitor_new (void)
{
  return g_object_new (PARLEY_TYPE_DEVICE_MONITOR, NULL);
}

/**
 * parley_device_monitor_start:
 * @self: the monitor
 * @error: return location for a #GError
 *
 * Fills the lists with the devices present now and follows hotplug from then on,
 * on the calling thread's thread-default main context.
 *
 * A machine without any device provider for these classes (no audio system, no
 * video4linux) is not an error: the lists stay empty. The monitor fails only when
 * the providers that exist cannot start.
 *
 * Returns: %TRUE on success (also when already started), %FALSE with @error set
 */
gboolean
parley_device_monitor_start (ParleyDeviceMonitor *self,
                             GError             **error)
{
  g_auto(GStrv) providers = NULL;
  g_autoptr(GstBus) bus = NULL;
  g_autoptr(GMainContext) context = NULL;
  GList *devices;

  g_return_val_if_fail (PARLEY_IS_DEVICE_MONITOR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->started)
    return TRUE;

  bus = gst_device_monitor_get_bus (self->monitor);
  context = g_main_context_ref_thread_default ();
  self->bus_source = gst_bus_create_watch (bus);
  g_source_set_callback (self->bus_source, G_SOURCE_FUNC (bus_cb), self, NULL);
  g_source_attach (self->bus_source, context);

  if (!gst_device_monitor_start (self->monitor)) {
    providers = gst_device_monitor_get_providers (self->monitor);
    if (providers != NULL && providers[0] != NULL) {
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                   _("The device providers (%s, …) could not start"), providers[0]);
      g_source_destroy (self->bus_source);
      g_clear_pointer (&self->bus_source, g_source_unref);
      return FALSE;
    }
    g_debug ("No device provider for microphones, cameras or speakers");
  }
  self->started = TRUE;

  devices = gst_device_monitor_get_devices (self->monitor);
  for (GList *l = devices; l != NULL; l = l->next)
    add_device (self, l->data);
  g_list_free_full (devices, gst_object_unref);

  return TRUE;
}

/**
 * parley_device_monitor_stop:
 * @self: the monitor
 *
 * Stops following hotplug and empties the lists. Does nothing if not started.
 */
void
parley_device_monitor_stop (ParleyDeviceMonitor *self)
{
  g_return_if_fail (PARLEY_IS_DEVICE_MONITOR (self));

  if (!self->started)
    return;
  self->started = FALSE;

  gst_device_monitor_stop (self->monitor);
  if (self->bus_source != NULL) {
    g_source_destroy (self->bus_source);
    g_clear_pointer (&self->bus_source, g_source_unref);
  }
  for (guint kind = 0; kind < N_KINDS; kind++) {
    if (self->devices[kind] != NULL)
      g_list_store_remove_all (self->devices[kind]);
  }
}

/**
 * parley_device_monitor_get_devices:
 * @self: the monitor
 * @kind: which devices
 *
 * Returns: (transfer none): the devices of @kind, a #GListModel of #GstDevice
 */
GListModel *
parley_device_monitor_get_devices (ParleyDeviceMonitor *self,
                                   ParleyDeviceKind     kind)
{
  g_return_val_if_fail (PARLEY_IS_DEVICE_MONITOR (self), NULL);
  g_return_val_if_fail ((guint) kind < N_KINDS, NULL);

  return G_LIST_MODEL (self->devices[kind]);
}

/**
 * parley_device_monitor_find:
 * @self: the monitor
 * @kind: which devices
 * @name: a display name, as gst_device_get_display_name() gives it
 *
 * Finds the first device of @kind with the display name @name.
 *
 * Returns: (transfer none) (nullable): the device, or %NULL if there is none
 */
GstDevice *
parley_device_monitor_find (ParleyDeviceMonitor *self,
                            ParleyDeviceKind     kind,
                            const char          *name)
{
  GListModel *model;
  guint n;

  g_return_val_if_fail (PARLEY_IS_DEVICE_MONITOR (self), NULL);
  g_return_val_if_fail ((guint) kind < N_KINDS, NULL);

  if (name == NULL)
    return NULL;
  model = G_LIST_MODEL (self->devices[kind]);
  n = g_list_model_get_n_items (model);
  for (guint i = 0; i < n; i++) {
    g_autoptr(GstDevice) device = g_list_model_get_item (model, i);
    g_autofree char *display_name = gst_device_get_display_name (device);

    if (g_strcmp0 (display_name, name) == 0)
      return device;   /* The list keeps it alive. */
  }
  return NULL;
}
