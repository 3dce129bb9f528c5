/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-device-monitor"

#include <gst/gst.h>

#include "parley-device-monitor.h"
#include "parley-error.h"
#include "parley-media.h"

#define TIMEOUT_MS 10000

/* A device provider of generated devices, so that hotplug and device capture can be
 * tested on machines without microphones, cameras or speakers. Each device makes
 * a test element: a tone, a colour pattern or a fakesink. */

#define TEST_TYPE_DEVICE (test_device_get_type ())
G_DECLARE_FINAL_TYPE (TestDevice, test_device, TEST, DEVICE, GstDevice)

struct _TestDevice {
  GstDevice parent_instance;
  double    tone;
  int       pattern;
};

G_DEFINE_FINAL_TYPE (TestDevice, test_device, GST_TYPE_DEVICE)

static GstElement *
test_device_create_element (GstDevice  *device,
                            const char *name)
{
  TestDevice *self = TEST_DEVICE (device);
  GstElement *element;

  if (gst_device_has_classes (device, "Audio/Source")) {
    element = gst_element_factory_make ("audiotestsrc", name);
    g_object_set (element, "is-live", TRUE, "freq", self->tone, NULL);
  } else if (gst_device_has_classes (device, "Video/Source")) {
    element = gst_element_factory_make ("videotestsrc", name);
    g_object_set (element, "is-live", TRUE, "pattern", self->pattern, NULL);
  } else {
    element = gst_element_factory_make ("fakesink", name);
    g_object_set (element, "sync", FALSE, "async", FALSE, NULL);
  }
  return element;
}

static void
test_device_class_init (TestDeviceClass *klass)
{
  GST_DEVICE_CLASS (klass)->create_element = test_device_create_element;
}

static void
test_device_init (TestDevice *self)
{
}

static GstDevice *
test_device_new (const char *name,
                 const char *klass,
                 double      tone,
                 int         pattern)
{
  g_autoptr(GstCaps) caps = gst_caps_new_any ();
  TestDevice *device = g_object_new (TEST_TYPE_DEVICE,
                                     "display-name", name,
                                     "device-class", klass,
                                     "caps", caps,
                                     NULL);

  device->tone = tone;
  device->pattern = pattern;
  return GST_DEVICE (device);
}

#define TEST_TYPE_PROVIDER (test_provider_get_type ())
G_DECLARE_FINAL_TYPE (TestProvider, test_provider, TEST, PROVIDER, GstDeviceProvider)

struct _TestProvider {
  GstDeviceProvider parent_instance;
};

G_DEFINE_FINAL_TYPE (TestProvider, test_provider, GST_TYPE_DEVICE_PROVIDER)

/* The devices present at start; hotplug goes through gst_device_provider_device_add(). */
static GList *initial_devices;

static gpointer
ref_device (gconstpointer device,
            gpointer      user_data)
{
  return gst_object_ref ((gpointer) device);
}

static GList *
test_provider_probe (GstDeviceProvider *provider)
{
  return g_list_copy_deep (initial_devices, ref_device, NULL);
}

static gboolean
test_provider_start (GstDeviceProvider *provider)
{
  for (GList *l = initial_devices; l != NULL; l = l->next)
    gst_device_provider_device_add (provider, l->data);
  return TRUE;
}

static void
test_provider_class_init (TestProviderClass *klass)
{
  GstDeviceProviderClass *provider_class = GST_DEVICE_PROVIDER_CLASS (klass);

  provider_class->probe = test_provider_probe;
  provider_class->start = test_provider_start;
  gst_device_provider_class_set_static_metadata (provider_class, "Parley test devices",
                                                 "Audio/Video/Source/Sink",
                                                 "Generated devices for tests", "Parley");
}

static void
test_provider_init (TestProvider *self)
{
}

static GstDeviceProvider *
test_provider_get (void)
{
  static gsize registered;

  if (g_once_init_enter (&registered)) {
    /* Floating references; the list is never freed in the life of the test. */
    initial_devices = g_list_append (initial_devices,
                                     gst_object_ref_sink (test_device_new ("Test Microphone",
                                                                           "Audio/Source",
                                                                           700.0, 0)));
    initial_devices = g_list_append (initial_devices,
                                     gst_object_ref_sink (test_device_new ("Test Camera",
                                                                           "Video/Source",
                                                                           0, 4 /* red */)));
    initial_devices = g_list_append (initial_devices,
                                     gst_object_ref_sink (test_device_new ("Test Speaker",
                                                                           "Audio/Sink",
                                                                           0, 0)));
    g_assert_true (gst_device_provider_register (NULL, "parleytestdevices", GST_RANK_PRIMARY,
                                                 TEST_TYPE_PROVIDER));
    g_once_init_leave (&registered, 1);
  }
  return gst_device_provider_factory_get_by_name ("parleytestdevices");
}

/* Main loop helpers */

typedef struct {
  GMainContext *context;
  gboolean      timed_out;
} Wait;

static gboolean
timeout_cb (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates @context until *@flag is set or the timeout passes. */
static gboolean
wait_for_flag (GMainContext *context,
               gboolean     *flag)
{
  gboolean timed_out = FALSE;
  GSource *timeout = g_timeout_source_new (TIMEOUT_MS);

  g_source_set_callback (timeout, timeout_cb, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (!*flag && !timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  return *flag;
}

static guint
count_with_filter (const char *classes)
{
  g_autoptr(GstDeviceMonitor) monitor = gst_device_monitor_new ();
  GList *devices;
  guint n;

  gst_device_monitor_add_filter (monitor, classes, NULL);
  devices = gst_device_monitor_get_devices (monitor);
  n = g_list_length (devices);
  g_list_free_full (devices, gst_object_unref);
  return n;
}

/* Tests on the machine's own devices, before the test provider exists. On a build
 * machine the lists are usually empty. */
static void
test_machine_devices (void)
{
  g_autoptr(ParleyDeviceMonitor) monitor = parley_device_monitor_new ();
  g_autoptr(GError) error = NULL;
  const struct {
    ParleyDeviceKind kind;
    const char      *classes;
  } kinds[] = {
    { PARLEY_DEVICE_KIND_MICROPHONE, "Audio/Source" },
    { PARLEY_DEVICE_KIND_CAMERA, "Video/Source" },
    { PARLEY_DEVICE_KIND_SPEAKER, "Audio/Sink" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++) {
    GListModel *model = parley_device_monitor_get_devices (monitor, kinds[i].kind);

    g_assert_true (G_IS_LIST_MODEL (model));
    g_assert_true (g_list_model_get_item_type (model) == GST_TYPE_DEVICE);
    g_assert_cmpuint (g_list_model_get_n_items (model), ==, 0);
  }

  g_assert_true (parley_device_monitor_start (monitor, &error));
  g_assert_no_error (error);
  g_assert_true (parley_device_monitor_start (monitor, &error));
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++) {
    GListModel *model = parley_device_monitor_get_devices (monitor, kinds[i].kind);
    guint n = g_list_model_get_n_items (model);

    /* The lists hold what GStreamer itself finds for each class. */
    g_test_message ("%s: %u devices", kinds[i].classes, n);
    g_assert_cmpuint (n, ==, count_with_filter (kinds[i].classes));
    for (guint j = 0; j < n; j++) {
      g_autoptr(GstDevice) device = g_list_model_get_item (model, j);

      g_assert_true (gst_device_has_classes (device, kinds[i].classes));
    }
    g_assert_null (parley_device_monitor_find (monitor, kinds[i].kind, "No Such Device 42"));
    g_assert_null (parley_device_monitor_find (monitor, kinds[i].kind, NULL));
  }

  parley_device_monitor_stop (monitor);
  parley_device_monitor_stop (monitor);
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    g_assert_cmpuint (g_list_model_get_n_items (parley_device_monitor_get_devices (
                        monitor, kinds[i].kind)), ==, 0);
}

typedef struct {
  ParleyDeviceKind kind;
  GstDevice       *device;
  gboolean         seen;
  GThread         *thread;
} SeenSignal;

static void
device_signal_cb (ParleyDeviceMonitor *monitor,
                  ParleyDeviceKind     kind,
                  GstDevice           *device,
                  gpointer             user_data)
{
  SeenSignal *seen = user_data;

  if (device != seen->device)
    return;
  seen->kind = kind;
  seen->seen = TRUE;
  seen->thread = g_thread_self ();
}

static void
test_hotplug (void)
{
  g_autoptr(GstDeviceProvider) provider = test_provider_get ();
  g_autoptr(ParleyDeviceMonitor) monitor = parley_device_monitor_new ();
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GstDevice) usb = NULL;
  GListModel *cameras;
  GstDevice *found;
  SeenSignal added = { 0 }, removed = { 0 };
  guint n_cameras;

  g_assert_nonnull (provider);
  /* Hotplug is handled on the thread-default context of the caller of start. */
  g_main_context_push_thread_default (context);
  g_assert_true (parley_device_monitor_start (monitor, &error));
  g_assert_no_error (error);
  g_main_context_pop_thread_default (context);

  found = parley_device_monitor_find (monitor, PARLEY_DEVICE_KIND_MICROPHONE,
                                      "Test Microphone");
  g_assert_nonnull (found);
  g_assert_true (gst_device_has_classes (found, "Audio/Source"));
  g_assert_nonnull (parley_device_monitor_find (monitor, PARLEY_DEVICE_KIND_CAMERA,
                                                "Test Camera"));
  g_assert_nonnull (parley_device_monitor_find (monitor, PARLEY_DEVICE_KIND_SPEAKER,
                                                "Test Speaker"));
  /* Names are looked up in the right list only. */
  g_assert_null (parley_device_monitor_find (monitor, PARLEY_DEVICE_KIND_CAMERA,
                                             "Test Microphone"));
  g_assert_null (parley_device_monitor_find (monitor, PARLEY_DEVICE_KIND_CAMERA, "USB Camera"));

  cameras = parley_device_monitor_get_devices (monitor, PARLEY_DEVICE_KIND_CAMERA);
  n_cameras = g_list_model_get_n_items (cameras);

  usb = gst_object_ref_sink (test_device_new ("USB Camera", "Video/Source", 0, 6));
  added.device = usb;
  g_signal_connect (monitor, "device-added", G_CALLBACK (device_signal_cb), &added);
  gst_device_provider_device_add (provider, usb);
  /* Nothing changes until the monitor's context runs. */
  g_assert_false (added.seen);
  g_assert_true (wait_for_flag (context, &added.seen));
  g_assert_true (added.thread == g_thread_self ());
  g_assert_cmpint (added.kind, ==, PARLEY_DEVICE_KIND_CAMERA);
  g_assert_cmpuint (g_list_model_get_n_items (cameras), ==, n_cameras + 1);
  g_assert_true (parley_device_monitor_find (monitor, PARLEY_DEVICE_KIND_CAMERA,
                                             "USB Camera") == usb);

  removed.device = usb;
  g_signal_connect (monitor, "device-removed", G_CALLBACK (device_signal_cb), &removed);
  gst_device_provider_device_remove (provider, usb);
  g_assert_true (wait_for_flag (context, &removed.seen));
  g_assert_cmpint (removed.kind, ==, PARLEY_DEVICE_KIND_CAMERA);
  g_assert_cmpuint (g_list_model_get_n_items (cameras), ==, n_cameras);
  g_assert_null (parley_device_monitor_find (monitor, PARLEY_DEVICE_KIND_CAMERA, "USB Camera"));

  parley_device_monitor_stop (monitor);
  g_assert_cmpuint (g_list_model_get_n_items (cameras), ==, 0);
}

/* Capture from devices, through the media bins */

typedef struct {
  const char *name;
  guint       wanted;
  GstStructure *last;
  GError     *error;
  gboolean    done;
} BusWait;

static gboolean
bus_cb (GstBus     *bus,
        GstMessage *message,
        gpointer    user_data)
{
  BusWait *wait = user_data;
  const GstStructure *s;

  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR) {
    gst_message_parse_error (message, &wait->error, NULL);
    wait->done = TRUE;
  } else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT &&
             (s = gst_message_get_structure (message)) != NULL &&
             gst_structure_has_name (s, wait->name) && wait->wanted > 0) {
    g_clear_pointer (&wait->last, gst_structure_free);
    wait->last = gst_structure_copy (s);
    if (--wait->wanted == 0)
      wait->done = TRUE;
  }
  return G_SOURCE_CONTINUE;
}

/* Plays @source into @sink until the sink posted @count messages named @name and
 * returns a copy of the last one. */
static GstStructure *
play_until_report (GstElement *source,
                   GstElement *sink,
                   const char *name,
                   guint       count)
{
  g_autoptr(GstElement) pipeline = gst_pipeline_new (NULL);
  g_autoptr(GstBus) bus = gst_pipeline_get_bus (GST_PIPELINE (pipeline));
  BusWait wait = { name, count, NULL, NULL, FALSE };
  guint watch;

  gst_bin_add_many (GST_BIN (pipeline), source, sink, NULL);
  g_assert_true (gst_element_link (source, sink));
  watch = gst_bus_add_watch (bus, bus_cb, &wait);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  g_assert_true (wait_for_flag (NULL, &wait.done));
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_source_remove (watch);
  g_assert_no_error (wait.error);
  return wait.last;
}

static void
test_capture_from_devices (void)
{
  g_autoptr(GstDeviceProvider) provider = test_provider_get ();
  g_autoptr(ParleyDeviceMonitor) monitor = parley_device_monitor_new ();
  g_autoptr(ParleyMediaSettings) settings = parley_media_settings_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GstStructure) report = NULL;
  GstElement *source, *sink;
  const char *colors;
  double frequency, level;

  g_assert_true (parley_device_monitor_start (monitor, &error));
  g_assert_no_error (error);
  parley_media_settings_set_microphone (settings,
                                        parley_device_monitor_find (monitor,
                                                                    PARLEY_DEVICE_KIND_MICROPHONE,
                                                                    "Test Microphone"));
  parley_media_settings_set_speaker (settings,
                                     parley_device_monitor_find (monitor,
                                                                 PARLEY_DEVICE_KIND_SPEAKER,
                                                                 "Test Speaker"));
  g_assert_nonnull (parley_media_settings_get_microphone (settings));
  g_assert_nonnull (parley_media_settings_get_speaker (settings));

  /* The microphone with the default processing (echo cancellation and noise
   * suppression); the speaker hosts the echo probe. */
  source = parley_media_create_audio_source (settings, &error);
  g_assert_no_error (error);
  sink = parley_media_create_audio_sink_for_source (settings, source, &error);
  g_assert_no_error (error);
  report = play_until_report (source, sink, "parley-audio-report", 4);
  g_assert_true (gst_structure_get_double (report, "frequency", &frequency));
  g_assert_true (gst_structure_get_double (report, "level", &level));
  g_test_message ("microphone: %.1f Hz at %.1f dBFS", frequency, level);
  g_assert_cmpfloat_with_epsilon (frequency, 700.0, 5.0);
  g_assert_cmpfloat (level, >, -40.0);
  g_clear_pointer (&report, gst_structure_free);

  /* The chosen camera, then no choice: the first camera, which is the red test
   * camera when the machine has none of its own. */
  parley_media_settings_set_video_format (settings, 320, 240, 15);
  for (guint round = 0; round < 2; round++) {
    g_autofree char *first = NULL;
    guint64 rgb;

    if (round == 0) {
      parley_media_settings_set_camera (settings,
                                        parley_device_monitor_find (monitor,
                                                                    PARLEY_DEVICE_KIND_CAMERA,
                                                                    "Test Camera"));
      g_assert_nonnull (parley_media_settings_get_camera (settings));
    } else {
      parley_media_settings_set_camera (settings, NULL);
      if (count_with_filter ("Video/Source") > 1)
        break;
    }
    source = parley_media_create_video_source (settings, &error);
    g_assert_no_error (error);
    sink = parley_media_create_video_sink (settings, &error);
    g_assert_no_error (error);
    report = play_until_report (source, sink, "parley-video-report", 2);
    colors = gst_structure_get_string (report, "colors");
    g_assert_nonnull (colors);
    g_test_message ("camera: %s", colors);
    first = g_strndup (colors, 6);
    g_assert_true (g_ascii_string_to_unsigned (first, 16, 0, 0xffffff, &rgb, NULL));
    g_assert_cmpuint (rgb >> 16, >, 235);
    g_assert_cmpuint ((rgb >> 8) & 0xff, <, 20);
    g_assert_cmpuint (rgb & 0xff, <, 20);
    g_clear_pointer (&report, gst_structure_free);
  }

  parley_device_monitor_stop (monitor);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  /* In this order: the first test must run before the test provider is registered. */
  g_test_add_func ("/device-monitor/machine-devices", test_machine_devices);
  g_test_add_func ("/device-monitor/hotplug", test_hotplug);
  g_test_add_func ("/device-monitor/capture-from-devices", test_capture_from_devices);

  return g_test_run ();
}
