/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-media"


#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include "parley-error.h"
#include "parley-media.h"

#define TIMEOUT_MS 10000

/* A pipeline of media bins and what its bus said. */
typedef struct {
  GMainLoop  *loop;
  GstElement *pipeline;
  guint       bus_watch;
  GPtrArray  *messages;   /* GstStructure copies of element messages, source name in "src". */
  GError     *error;
  /* The run stops when this is TRUE (checked after every message). */
  gboolean  (*done) (gpointer fixture, gpointer data);
  gpointer    done_data;
} Fixture;

static gboolean
bus_cb (GstBus     *bus,
        GstMessage *message,
        gpointer    user_data)
{
  Fixture *fx = user_data;

  switch (GST_MESSAGE_TYPE (message)) {
  case GST_MESSAGE_ELEMENT: {
    const GstStructure *s = gst_message_get_structure (message);

    if (s != NULL && g_str_has_prefix (gst_structure_get_name (s), "parley-")) {
      GstStructure *copy = gst_structure_copy (s);

      gst_structure_set (copy, "src", G_TYPE_STRING, GST_OBJECT_NAME (message->src), NULL);
      g_ptr_array_add (fx->messages, copy);
    }
    break;
  }
  case GST_MESSAGE_ERROR:
    if (fx->error == NULL)
      gst_message_parse_error (message, &fx->error, NULL);
    g_main_loop_quit (fx->loop);
    return G_SOURCE_CONTINUE;
  default:
    break;
  }
  if (fx->done != NULL && fx->done (fx, fx->done_data))
    g_main_loop_quit (fx->loop);
  return G_SOURCE_CONTINUE;
}

static void
fixture_init (Fixture *fx)
{
  g_autoptr(GstBus) bus = NULL;

  fx->loop = g_main_loop_new (NULL, FALSE);
  fx->pipeline = gst_pipeline_new (NULL);
  fx->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  bus = gst_pipeline_get_bus (GST_PIPELINE (fx->pipeline));
  fx->bus_watch = gst_bus_add_watch (bus, bus_cb, fx);
}

static void
fixture_clear (Fixture *fx)
{
  gst_element_set_state (fx->pipeline, GST_STATE_NULL);
  g_clear_handle_id (&fx->bus_watch, g_source_remove);
  gst_clear_object (&fx->pipeline);
  g_clear_pointer (&fx->messages, g_ptr_array_unref);
  g_clear_pointer (&fx->loop, g_main_loop_unref);
  g_clear_error (&fx->error);
}

static gboolean
timeout_cb (gpointer user_data)
{
  Fixture *fx = user_data;

  g_main_loop_quit (fx->loop);
  return G_SOURCE_REMOVE;
}

/* Plays the pipeline until @done says so or the timeout passes; fails the test on a
 * pipeline error or a timeout. */
static void
fixture_run (Fixture *fx,
             gboolean (*done) (gpointer fixture, gpointer data),
             gpointer  done_data)
{
  guint timeout;

  fx->done = done;
  fx->done_data = done_data;
  g_assert_cmpint (gst_element_set_state (fx->pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  if (!done (fx, done_data)) {
    timeout = g_timeout_add (TIMEOUT_MS, timeout_cb, fx);
    g_main_loop_run (fx->loop);
    if (done (fx, done_data))
      g_source_remove (timeout);
  }
  g_assert_no_error (fx->error);
  g_assert_true (done (fx, done_data));
  fx->done = NULL;
}

/* The @index-th message named @name from the element named @src (any if NULL). */
static const GstStructure *
find_message (Fixture    *fx,
              const char *name,
              const char *src,
              guint       index)
{
  for (guint i = 0; i < fx->messages->len; i++) {
    const GstStructure *s = g_ptr_array_index (fx->messages, i);

    if (!gst_structure_has_name (s, name))
      continue;
    if (src != NULL && g_strcmp0 (gst_structure_get_string (s, "src"), src) != 0)
      continue;
    if (index-- == 0)
      return s;
  }
  return NULL;
}

static guint
count_messages (Fixture    *fx,
                const char *name,
                const char *src)
{
  guint n = 0;

  while (find_message (fx, name, src, n) != NULL)
    n++;
  return n;
}

typedef struct {
  const char *name;
  const char *src;
  guint       count;
} WantMessages;

static gboolean
have_messages (gpointer fixture,
               gpointer data)
{
  WantMessages *want = data;

  return count_messages (fixture, want->name, want->src) >= want->count;
}

static void
run_until_messages (Fixture    *fx,
                    const char *name,
                    const char *src,
                    guint       count)
{
  WantMessages want = { name, src, count };

  fixture_run (fx, have_messages, &want);
}

static ParleyMediaSettings *
test_settings (void)
{
  ParleyMediaSettings *settings = parley_media_settings_new ();

  parley_media_settings_set_test_media (settings, TRUE);
  return settings;
}

/* Adds @source and @sink (floating) to the pipeline and links them. */
static void
add_pair (Fixture    *fx,
          GstElement *source,
          GstElement *sink,
          const char *sink_name)
{
  g_assert_nonnull (source);
  g_assert_nonnull (sink);
  gst_element_set_name (sink, sink_name);
  gst_bin_add_many (GST_BIN (fx->pipeline), source, sink, NULL);
  g_assert_true (gst_element_link (source, sink));
}

/* Dominant frequency */

/* sin (x) by its Taylor series after reduction to [-pi, pi] (the tests need no libm). */
static double
test_sin (double x)
{
  double term, sum;

  x -= 2.0 * G_PI * (double) (gint64) (x / (2.0 * G_PI));
  if (x > G_PI)
    x -= 2.0 * G_PI;
  else if (x < -G_PI)
    x += 2.0 * G_PI;
  term = sum = x;
  for (int k = 1; k <= 12; k++) {
    term *= -x * x / ((2.0 * k) * (2.0 * k + 1.0));
    sum += term;
  }
  return sum;
}

static void
synth (gint16 *samples,
       gsize   n,
       guint   rate,
       double  freq,
       double  amplitude,
       double  noise)
{
  for (gsize i = 0; i < n; i++) {
    double v = amplitude * test_sin (2.0 * G_PI * freq * i / rate + 0.3);

    v += noise * g_test_rand_double_range (-1.0, 1.0);
    v = CLAMP (v, G_MININT16, G_MAXINT16);
    samples[i] = (gint16) (v < 0 ? v - 0.5 : v + 0.5);
  }
}

static void
test_dominant_frequency_sines (void)
{
  const double freqs[] = { 150.0, 440.0, 523.25, 997.0, 1234.5, 2500.0, 3900.0 };
  const guint rates[] = { 48000, 16000 };

  for (guint r = 0; r < G_N_ELEMENTS (rates); r++) {
    gsize n = rates[r] / 5;
    g_autofree gint16 *samples = g_new (gint16, n);

    for (guint i = 0; i < G_N_ELEMENTS (freqs); i++) {
      double found;

      /* Clean, then with noise of a third of the tone's amplitude. */
      synth (samples, n, rates[r], freqs[i], 12000.0, 0.0);
      found = parley_media_dominant_frequency (samples, n, rates[r]);
      g_assert_cmpfloat_with_epsilon (found, freqs[i], 5.0);

      synth (samples, n, rates[r], freqs[i], 9000.0, 3000.0);
      found = parley_media_dominant_frequency (samples, n, rates[r]);
      g_assert_cmpfloat_with_epsilon (found, freqs[i], 5.0);
    }
  }
}

static void
test_dominant_frequency_two_tones (void)
{
  gsize n = 9600;
  g_autofree gint16 *a = g_new (gint16, n);
  g_autofree gint16 *b = g_new (gint16, n);
  g_autofree gint16 *mix = g_new (gint16, n);

  /* The louder of two tones wins. */
  synth (a, n, 48000, 700.0, 4000.0, 0.0);
  synth (b, n, 48000, 1800.0, 12000.0, 0.0);
  for (gsize i = 0; i < n; i++)
    mix[i] = a[i] + b[i];
  g_assert_cmpfloat_with_epsilon (parley_media_dominant_frequency (mix, n, 48000), 1800.0, 5.0);
}

static void
test_dominant_frequency_silence (void)
{
  gint16 zeros[4800] = { 0 };

  g_assert_cmpfloat (parley_media_dominant_frequency (zeros, G_N_ELEMENTS (zeros), 48000), ==,
                     0.0);
  g_assert_cmpfloat (parley_media_dominant_frequency (zeros, 0, 48000), ==, 0.0);
  g_assert_cmpfloat (parley_media_dominant_frequency (NULL, 0, 48000), ==, 0.0);
  g_assert_cmpfloat (parley_media_dominant_frequency (zeros, 1, 48000), ==, 0.0);
}

/* Audio */

static void
test_audio_tone (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  GstElement *source, *sink;
  const GstStructure *report;
  double frequency, level;
  Fixture fx = { 0 };

  parley_media_settings_set_test_tone (settings, 523.0);
  fixture_init (&fx);
  source = parley_media_create_audio_source (settings, &error);
  g_assert_no_error (error);
  sink = parley_media_create_audio_sink (settings, &error);
  g_assert_no_error (error);
  add_pair (&fx, source, sink, "asink");

  run_until_messages (&fx, "parley-audio-report", "asink", 3);
  for (guint i = 1; i < 3; i++) {
    report = find_message (&fx, "parley-audio-report", "asink", i);
    g_assert_true (gst_structure_get_double (report, "frequency", &frequency));
    g_assert_true (gst_structure_get_double (report, "level", &level));
    g_assert_cmpfloat_with_epsilon (frequency, 523.0, 5.0);
    /* audiotestsrc's default volume is 0.8: a sine of RMS 0.8 / sqrt 2, which is
     * 20 log10 (0.8 / sqrt 2) = -4.95 dBFS. */
    g_assert_cmpfloat_with_epsilon (level, -4.95, 1.0);
  }
  g_assert_cmpuint (count_messages (&fx, "parley-first-frame", "asink"), ==, 1);
  g_assert_cmpstr (gst_structure_get_string (find_message (&fx, "parley-first-frame", "asink", 0),
                                             "kind"), ==, "audio");
  fixture_clear (&fx);
}

/* Video */

static void
test_video_smoke (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  const GstStructure *report;
  Fixture fx = { 0 };
  gint width, height;
  guint64 frames;

  parley_media_settings_set_video_format (settings, 320, 240, 30);
  fixture_init (&fx);
  add_pair (&fx, parley_media_create_video_source (settings, &error),
            parley_media_create_video_sink (settings, &error), "vsink");
  g_assert_no_error (error);

  run_until_messages (&fx, "parley-video-report", "vsink", 2);
  report = find_message (&fx, "parley-video-report", "vsink", 1);
  g_assert_true (gst_structure_get_int (report, "width", &width));
  g_assert_true (gst_structure_get_int (report, "height", &height));
  g_assert_true (gst_structure_get_uint64 (report, "frames", &frames));
  g_assert_cmpint (width, ==, 320);
  g_assert_cmpint (height, ==, 240);
  g_assert_cmpuint (frames, >, 5);
  g_test_message ("colors %s", gst_structure_get_string (report, "colors"));
  fixture_clear (&fx);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/media/dominant-frequency/sines", test_dominant_frequency_sines);
  g_test_add_func ("/media/dominant-frequency/two-tones", test_dominant_frequency_two_tones);
  g_test_add_func ("/media/dominant-frequency/silence", test_dominant_frequency_silence);
  g_test_add_func ("/media/audio/tone", test_audio_tone);
  g_test_add_func ("/media/video/smoke", test_video_smoke);

  return g_test_run ();
}
