/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-engine-test"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>

#include "parley-engine-test.h"

/**
 * parley_engine_test_remove_tree:
 * @path: a directory a test made
 *
 * Removes @path and everything below it (without following links).
 */
void
parley_engine_test_remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *child = g_build_filename (path, name, NULL);

    if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
      parley_engine_test_remove_tree (child);
    else
      g_unlink (child);
  }
  g_rmdir (path);
}

/* UPnP port mapping is of no use on loopback, and libnice's UPnP client
 * warns when two agents of one process race for the same port. */
void
parley_engine_test_disable_upnp (GstElement *webrtc)
{
  g_autoptr(GObject) ice = NULL;
  g_autoptr(GObject) agent = NULL;

  g_object_get (webrtc, "ice-agent", &ice, NULL);
  g_assert_nonnull (ice);
  g_object_get (ice, "agent", &agent, NULL);
  g_assert_nonnull (agent);
  g_object_set (agent, "upnp", FALSE, NULL);
}

GstWebRTCSessionDescription *
parley_engine_test_create_description (GstElement *webrtc,
                                       const char *action,
                                       const char *field)
{
  GstPromise *promise = gst_promise_new ();
  GstWebRTCSessionDescription *desc = NULL;
  const GstStructure *reply;

  g_signal_emit_by_name (webrtc, action, NULL, promise);
  g_assert_cmpint (gst_promise_wait (promise), ==, GST_PROMISE_RESULT_REPLIED);
  reply = gst_promise_get_reply (promise);
  g_assert_nonnull (reply);
  g_assert_false (gst_structure_has_field (reply, "error"));
  gst_structure_get (reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, NULL);
  g_assert_nonnull (desc);
  gst_promise_unref (promise);
  return desc;
}

void
parley_engine_test_set_description (GstElement                  *webrtc,
                                    const char                  *action,
                                    GstWebRTCSessionDescription *desc)
{
  GstPromise *promise = gst_promise_new ();
  const GstStructure *reply;

  g_signal_emit_by_name (webrtc, action, desc, promise);
  g_assert_cmpint (gst_promise_wait (promise), ==, GST_PROMISE_RESULT_REPLIED);
  reply = gst_promise_get_reply (promise);
  g_assert_true (reply == NULL || !gst_structure_has_field (reply, "error"));
  gst_promise_unref (promise);
}

/* Whether this process may give a thread SCHED_RR priority 10: CAP_SYS_NICE
 * or an RLIMIT_RTPRIO of 10 or more. */
gboolean
parley_engine_test_may_be_realtime (void)
{
  g_autofree char *status = NULL;
  const char *cap;
  struct rlimit limit;

  if (getrlimit (RLIMIT_RTPRIO, &limit) == 0 && limit.rlim_cur >= 10)
    return TRUE;
  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return FALSE;
  cap = strstr (status, "\nCapEff:");
  /* CAP_SYS_NICE */
  return cap != NULL && (g_ascii_strtoull (cap + 8, NULL, 16) & (G_GUINT64_CONSTANT (1) << 23));
}
