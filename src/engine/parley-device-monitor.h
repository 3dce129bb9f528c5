/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * ParleyDeviceKind:
 * @PARLEY_DEVICE_KIND_MICROPHONE: Audio/Source
 * @PARLEY_DEVICE_KIND_CAMERA: Video/Source
 * @PARLEY_DEVICE_KIND_SPEAKER: Audio/Sink
 */
typedef enum {
  PARLEY_DEVICE_KIND_MICROPHONE,
  PARLEY_DEVICE_KIND_CAMERA,
  PARLEY_DEVICE_KIND_SPEAKER,
} ParleyDeviceKind;

#define PARLEY_TYPE_DEVICE_MONITOR (parley_device_monitor_get_type ())

G_DECLARE_FINAL_TYPE (ParleyDeviceMonitor, parley_device_monitor, PARLEY, DEVICE_MONITOR, GObject)

/*
 * Lists the machine's microphones, cameras and speakers with a
 * GstDeviceMonitor and keeps the lists current on hotplug (bus messages
 * handled on the thread-default main context of the creator). Each list is a
 * GListModel of GstDevice. Signal "device-removed (ParleyDeviceKind, GstDevice*)" lets a
 * running call fall back to the default device.
 */

ParleyDeviceMonitor *parley_device_monitor_new     (void);
gboolean             parley_device_monitor_start   (ParleyDeviceMonitor *self,
                                                    GError             **error);
void                 parley_device_monitor_stop    (ParleyDeviceMonitor *self);
GListModel          *parley_device_monitor_get_devices (ParleyDeviceMonitor *self,
                                                        ParleyDeviceKind     kind);
GstDevice           *parley_device_monitor_find    (ParleyDeviceMonitor *self,
                                                    ParleyDeviceKind     kind,
                                                    const char          *name);

G_END_DECLS
