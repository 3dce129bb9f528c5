/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <gst/gst.h>
#ifndef GST_USE_UNSTABLE_API
#define GST_USE_UNSTABLE_API
#endif
#include <gst/webrtc/webrtc.h>

G_BEGIN_DECLS

void parley_engine_test_remove_tree (const char *path);
gboolean parley_engine_test_may_be_realtime (void);

/* Two-webrtcbin helpers for tests of one engine object over a real connection. */
void parley_engine_test_disable_upnp (GstElement *webrtc);
GstWebRTCSessionDescription *parley_engine_test_create_description (GstElement *webrtc,
                                                                    const char *action,
                                                                    const char *field);
void parley_engine_test_set_description (GstElement                  *webrtc,
                                         const char                  *action,
                                         GstWebRTCSessionDescription *desc);

G_END_DECLS
