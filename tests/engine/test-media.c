/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-media"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <string.h>

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

static void
synth (gint16 *samples,
       gsize   n,
       guint   rate,
       double  freq,
       double  amplitude,
       double  noise)
{
  for (gsize i = 0; i < n; i++) {
    double v = amplitude * sin (2.0 * G_PI * freq * i / rate + 0.3);

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

/* Colours */

typedef struct {
  guint8 r, g, b;
} Rgb;

/* The bars across the top two thirds of videotestsrc's "smpte" pattern ("SMPTE 100%
 * color bars"): seven bars of equal width, left to right. */
static const Rgb smpte_top_bars[7] = {
  { 255, 255, 255 },  /* white */
  { 255, 255, 0 },    /* yellow */
  { 0, 255, 255 },    /* cyan */
  { 0, 255, 0 },      /* green */
  { 255, 0, 255 },    /* magenta */
  { 255, 0, 0 },      /* red */
  { 0, 0, 255 },      /* blue */
};

static void
parse_colors (const char *colors,
              Rgb         out[8])
{
  g_auto(GStrv) parts = NULL;

  g_assert_nonnull (colors);
  parts = g_strsplit (colors, " ", -1);
  g_assert_cmpuint (g_strv_length (parts), ==, 8);
  for (guint i = 0; i < 8; i++) {
    guint64 v;

    g_assert_cmpuint (strlen (parts[i]), ==, 6);
    g_assert_true (g_ascii_string_to_unsigned (parts[i], 16, 0, 0xffffff, &v, NULL));
    out[i].r = v >> 16;
    out[i].g = (v >> 8) & 0xff;
    out[i].b = v & 0xff;
  }
}

static void
assert_color (Rgb         got,
              double      r,
              double      g,
              double      b,
              double      tolerance,
              const char *what)
{
  if (ABS (got.r - r) > tolerance || ABS (got.g - g) > tolerance || ABS (got.b - b) > tolerance)
    g_error ("%s: got %02X%02X%02X, expected about %02X%02X%02X", what, got.r, got.g, got.b,
             (guint) r, (guint) g, (guint) b);
}

/* Runs @pattern through a video source and sink, returning the patch colours of the
 * third report (the first ones may predate the steady state). */
static void
pattern_colors (const char *pattern,
                gboolean    muted,
                Rgb         out[8])
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  GstElement *source;
  Fixture fx = { 0 };

  parley_media_settings_set_test_pattern (settings, pattern);
  parley_media_settings_set_video_format (settings, 320, 240, 30);
  fixture_init (&fx);
  source = parley_media_create_video_source (settings, &error);
  g_assert_no_error (error);
  parley_media_source_set_muted (source, muted);
  g_assert_true (parley_media_source_get_muted (source) == muted);
  add_pair (&fx, source, parley_media_create_video_sink (settings, &error), "vsink");
  g_assert_no_error (error);
  run_until_messages (&fx, "parley-video-report", "vsink", 3);
  parse_colors (gst_structure_get_string (find_message (&fx, "parley-video-report", "vsink", 2),
                                          "colors"), out);
  fixture_clear (&fx);
}

static void
test_video_smpte (void)
{
  Rgb got[8];

  pattern_colors ("smpte", FALSE, got);
  /* Each top patch spans x from (col / 4 + 1/16) to (col / 4 + 3/16) of the width and
   * lies inside the bars; its mean is the bars' colours weighted by overlap. */
  for (guint col = 0; col < 4; col++) {
    double x0 = col / 4.0 + 1.0 / 16.0, x1 = col / 4.0 + 3.0 / 16.0;
    double r = 0, g = 0, b = 0;
    g_autofree char *what = g_strdup_printf ("smpte patch %u", col);

    for (guint bar = 0; bar < 7; bar++) {
      double overlap = MIN (x1, (bar + 1) / 7.0) - MAX (x0, bar / 7.0);

      if (overlap <= 0)
        continue;
      r += smpte_top_bars[bar].r * overlap / (x1 - x0);
      g += smpte_top_bars[bar].g * overlap / (x1 - x0);
      b += smpte_top_bars[bar].b * overlap / (x1 - x0);
    }
    /* Scaling, chroma subsampling and limited-range YUV blur the edges a little. */
    assert_color (got[col], r, g, b, 20, what);
  }
}

static void
test_video_solid (void)
{
  const struct {
    const char *pattern;
    Rgb         color;
  } solids[] = {
    { "red", { 255, 0, 0 } },
    { "blue", { 0, 0, 255 } },
    { "white", { 255, 255, 255 } },
    { "green", { 0, 255, 0 } },
  };

  for (guint i = 0; i < G_N_ELEMENTS (solids); i++) {
    Rgb got[8];

    pattern_colors (solids[i].pattern, FALSE, got);
    for (guint p = 0; p < 8; p++)
      assert_color (got[p], solids[i].color.r, solids[i].color.g, solids[i].color.b, 12,
                    solids[i].pattern);
  }
}

static void
test_video_muted (void)
{
  Rgb got[8];

  pattern_colors ("white", TRUE, got);
  for (guint p = 0; p < 8; p++)
    assert_color (got[p], 0, 0, 0, 12, "muted");
}

/* Muting a running stream */

typedef struct {
  GstClockTime next;      /* The expected PTS of the next buffer. */
  GstClockTime max_gap;   /* The largest distance from the expected PTS. */
  guint        buffers;
} Continuity;

static GstPadProbeReturn
continuity_cb (GstPad          *pad,
               GstPadProbeInfo *info,
               gpointer         user_data)
{
  Continuity *c = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClockTime pts = GST_BUFFER_PTS (buffer);

  g_assert_true (GST_CLOCK_TIME_IS_VALID (pts));
  if (c->buffers > 0) {
    GstClockTime gap = pts > c->next ? pts - c->next : c->next - pts;

    c->max_gap = MAX (c->max_gap, gap);
  }
  c->next = pts + GST_BUFFER_DURATION (buffer);
  c->buffers++;
  return GST_PAD_PROBE_OK;
}

typedef struct {
  guint       after;      /* Only messages from this index on count. */
  gboolean  (*match) (const GstStructure *report);
} WantLater;

static gboolean
have_later (gpointer fixture,
            gpointer data)
{
  Fixture *fx = fixture;
  WantLater *want = data;

  for (guint i = want->after; i < fx->messages->len; i++) {
    if (want->match (g_ptr_array_index (fx->messages, i)))
      return TRUE;
  }
  return FALSE;
}

static gboolean
is_silent_report (const GstStructure *s)
{
  double level = 0, frequency = -1;

  return gst_structure_has_name (s, "parley-audio-report") &&
         gst_structure_get_double (s, "level", &level) && level < -90.0 &&
         gst_structure_get_double (s, "frequency", &frequency) && frequency == 0.0;
}

static gboolean
is_tone_report (const GstStructure *s)
{
  double frequency = 0;

  return gst_structure_has_name (s, "parley-audio-report") &&
         gst_structure_get_double (s, "frequency", &frequency) && ABS (frequency - 523.0) < 5.0;
}

static void
test_audio_mute_running (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GstPad) pad = NULL;
  GstElement *source;
  Continuity continuity = { 0 };
  WantLater silent = { 0, is_silent_report };
  WantLater tone = { 0, is_tone_report };
  Fixture fx = { 0 };

  parley_media_settings_set_test_tone (settings, 523.0);
  fixture_init (&fx);
  source = parley_media_create_audio_source (settings, &error);
  g_assert_no_error (error);
  add_pair (&fx, source, parley_media_create_audio_sink (settings, &error), "asink");
  g_assert_no_error (error);
  pad = gst_element_get_static_pad (source, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, continuity_cb, &continuity, NULL);

  fixture_run (&fx, have_later, &tone);
  g_assert_false (parley_media_source_get_muted (source));

  parley_media_source_set_muted (source, TRUE);
  g_assert_true (parley_media_source_get_muted (source));
  silent.after = fx.messages->len;
  fixture_run (&fx, have_later, &silent);

  parley_media_source_set_muted (source, FALSE);
  tone.after = fx.messages->len;
  fixture_run (&fx, have_later, &tone);

  gst_element_set_state (fx.pipeline, GST_STATE_NULL);
  /* The stream ran on through mute and unmute without a gap in its timestamps. */
  g_assert_cmpuint (continuity.buffers, >, 100);
  g_assert_cmpuint (continuity.max_gap, <, GST_MSECOND);
  fixture_clear (&fx);
}

static gboolean
is_black_report (const GstStructure *s)
{
  Rgb got[8];

  if (!gst_structure_has_name (s, "parley-video-report"))
    return FALSE;
  parse_colors (gst_structure_get_string (s, "colors"), got);
  for (guint p = 0; p < 8; p++) {
    if (got[p].r > 12 || got[p].g > 12 || got[p].b > 12)
      return FALSE;
  }
  return TRUE;
}

static void
test_video_mute_running (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GstPad) pad = NULL;
  GstElement *source;
  Continuity continuity = { 0 };
  WantLater black = { 0, is_black_report };
  guint64 frames_before, frames_after;
  Fixture fx = { 0 };

  parley_media_settings_set_test_pattern (settings, "white");
  parley_media_settings_set_video_format (settings, 160, 120, 30);
  fixture_init (&fx);
  source = parley_media_create_video_source (settings, &error);
  g_assert_no_error (error);
  add_pair (&fx, source, parley_media_create_video_sink (settings, &error), "vsink");
  g_assert_no_error (error);
  pad = gst_element_get_static_pad (source, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, continuity_cb, &continuity, NULL);

  run_until_messages (&fx, "parley-video-report", "vsink", 2);
  g_assert_false (is_black_report (find_message (&fx, "parley-video-report", "vsink", 1)));
  g_assert_true (gst_structure_get_uint64 (find_message (&fx, "parley-video-report", "vsink", 1),
                                           "frames", &frames_before));

  parley_media_source_set_muted (source, TRUE);
  black.after = fx.messages->len;
  fixture_run (&fx, have_later, &black);
  g_assert_true (gst_structure_get_uint64 (g_ptr_array_index (fx.messages, fx.messages->len - 1),
                                           "frames", &frames_after));
  g_assert_cmpuint (frames_after, >, frames_before);

  gst_element_set_state (fx.pipeline, GST_STATE_NULL);
  g_assert_cmpuint (continuity.max_gap, <, GST_MSECOND);
  fixture_clear (&fx);
}

/* Both kinds at once */

static void
test_first_frame_once_per_kind (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  Fixture fx = { 0 };
  guint audio = 0, video = 0;

  parley_media_settings_set_video_format (settings, 160, 120, 30);
  fixture_init (&fx);
  add_pair (&fx, parley_media_create_audio_source (settings, &error),
            parley_media_create_audio_sink (settings, &error), "asink");
  g_assert_no_error (error);
  add_pair (&fx, parley_media_create_video_source (settings, &error),
            parley_media_create_video_sink (settings, &error), "vsink");
  g_assert_no_error (error);

  run_until_messages (&fx, "parley-audio-report", "asink", 3);
  run_until_messages (&fx, "parley-video-report", "vsink", 3);
  for (guint i = 0; i < count_messages (&fx, "parley-first-frame", NULL); i++) {
    const GstStructure *s = find_message (&fx, "parley-first-frame", NULL, i);
    const char *kind = gst_structure_get_string (s, "kind");

    if (g_strcmp0 (kind, "audio") == 0) {
      g_assert_cmpstr (gst_structure_get_string (s, "src"), ==, "asink");
      audio++;
    } else {
      g_assert_cmpstr (kind, ==, "video");
      g_assert_cmpstr (gst_structure_get_string (s, "src"), ==, "vsink");
      video++;
    }
  }
  g_assert_cmpuint (audio, ==, 1);
  g_assert_cmpuint (video, ==, 1);
  fixture_clear (&fx);
}

/* Sinks take what decoders give them */

static void
test_sinks_convert (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  GstElement *asrc, *acaps, *vsrc, *vcaps, *asink, *vsink;
  GstCaps *caps;
  g_autoptr(GstElement) appsink = NULL;
  g_autoptr(GstSample) sample = NULL;
  const GstStructure *report;
  GstVideoInfo info;
  double frequency;
  gint width, height;
  Fixture fx = { 0 };

  fixture_init (&fx);
  /* Stereo float audio at 44.1 kHz, as another decoder might produce. */
  asrc = gst_element_factory_make ("audiotestsrc", NULL);
  g_object_set (asrc, "is-live", TRUE, "freq", 1500.0, NULL);
  acaps = gst_element_factory_make ("capsfilter", NULL);
  caps = gst_caps_from_string ("audio/x-raw, format=F32LE, rate=44100, channels=2");
  g_object_set (acaps, "caps", caps, NULL);
  gst_clear_caps (&caps);
  asink = parley_media_create_audio_sink (settings, &error);
  g_assert_no_error (error);
  gst_element_set_name (asink, "asink");
  /* Odd-sized RGB video. */
  vsrc = gst_element_factory_make ("videotestsrc", NULL);
  g_object_set (vsrc, "is-live", TRUE, "pattern", 6 /* blue */, NULL);
  vcaps = gst_element_factory_make ("capsfilter", NULL);
  caps = gst_caps_from_string ("video/x-raw, format=RGB, width=322, height=178, "
                               "framerate=15/1");
  g_object_set (vcaps, "caps", caps, NULL);
  gst_clear_caps (&caps);
  vsink = parley_media_create_video_sink (settings, &error);
  g_assert_no_error (error);
  gst_element_set_name (vsink, "vsink");
  gst_bin_add_many (GST_BIN (fx.pipeline), asrc, acaps, asink, vsrc, vcaps, vsink, NULL);
  g_assert_true (gst_element_link_many (asrc, acaps, asink, NULL));
  g_assert_true (gst_element_link_many (vsrc, vcaps, vsink, NULL));

  run_until_messages (&fx, "parley-audio-report", "asink", 2);
  run_until_messages (&fx, "parley-video-report", "vsink", 2);
  report = find_message (&fx, "parley-audio-report", "asink", 1);
  g_assert_true (gst_structure_get_double (report, "frequency", &frequency));
  g_assert_cmpfloat_with_epsilon (frequency, 1500.0, 5.0);
  report = find_message (&fx, "parley-video-report", "vsink", 1);
  g_assert_true (gst_structure_get_int (report, "width", &width));
  g_assert_true (gst_structure_get_int (report, "height", &height));
  g_assert_cmpint (width, ==, 322);
  g_assert_cmpint (height, ==, 178);

  /* The view branch is off at first: no frame reaches the appsink. */
  appsink = gst_bin_get_by_name (GST_BIN (vsink), "video-appsink");
  g_assert_nonnull (appsink);
  sample = gst_app_sink_try_pull_sample (GST_APP_SINK (appsink), 300 * GST_MSECOND);
  g_assert_null (sample);

  /* Once on, it holds the newest frame as RGBA in the decoded size. */
  parley_media_video_sink_set_view (vsink, TRUE);
  sample = gst_app_sink_try_pull_sample (GST_APP_SINK (appsink), 5 * GST_SECOND);
  g_assert_nonnull (sample);
  g_assert_true (gst_video_info_from_caps (&info, gst_sample_get_caps (sample)));
  g_assert_cmpint (GST_VIDEO_INFO_FORMAT (&info), ==, GST_VIDEO_FORMAT_RGBA);
  g_assert_cmpint (GST_VIDEO_INFO_WIDTH (&info), ==, 322);
  g_assert_cmpint (GST_VIDEO_INFO_HEIGHT (&info), ==, 178);
  fixture_clear (&fx);
}

/* Audio processing */

static gboolean
bin_has_element_of (GstElement *bin,
                    const char *factory_name)
{
  g_autoptr(GstIterator) it = gst_bin_iterate_elements (GST_BIN (bin));
  GValue item = G_VALUE_INIT;
  gboolean found = FALSE;

  while (!found && gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *factory = gst_element_get_factory (g_value_get_object (&item));

    found = factory != NULL &&
            g_strcmp0 (GST_OBJECT_NAME (factory), factory_name) == 0;
    g_value_reset (&item);
  }
  g_value_unset (&item);
  return found;
}

static void
test_dsp_chain (gconstpointer data)
{
  gboolean noise_suppression = GPOINTER_TO_INT (data);
  g_autoptr(ParleyMediaSettings) dsp_settings = test_settings ();
  g_autoptr(ParleyMediaSettings) far_settings = test_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GstElement) dsp = NULL;
  g_autoptr(GstElementFactory) factory = gst_element_factory_find ("webrtcdsp");
  GstElement *near_source, *far_source, *near_sink, *far_sink;
  const GstStructure *report;
  double frequency, level;
  Fixture fx = { 0 };

  if (factory == NULL) {
    g_test_skip ("webrtcdsp is not installed");
    return;
  }

  parley_media_settings_set_test_dsp (dsp_settings, TRUE);
  parley_media_settings_set_echo_cancellation (dsp_settings, TRUE);
  parley_media_settings_set_noise_suppression (dsp_settings, noise_suppression);
  parley_media_settings_set_test_tone (dsp_settings, 523.0);
  parley_media_settings_set_test_tone (far_settings, 1000.0);

  fixture_init (&fx);
  near_source = parley_media_create_audio_source (dsp_settings, &error);
  g_assert_no_error (error);
  dsp = gst_bin_get_by_name (GST_BIN (near_source), "audio-dsp");
  g_assert_nonnull (dsp);
  /* A second call's speaker plays a different tone and hosts the near source's echo
   * probe; the near tone must still come through. */
  far_source = parley_media_create_audio_source (far_settings, &error);
  g_assert_no_error (error);
  far_sink = parley_media_create_audio_sink_for_source (dsp_settings, near_source, &error);
  g_assert_no_error (error);
  near_sink = parley_media_create_audio_sink (far_settings, &error);
  g_assert_no_error (error);
  g_assert_true (bin_has_element_of (far_sink, "webrtcechoprobe"));
  g_assert_false (bin_has_element_of (near_sink, "webrtcechoprobe"));
  add_pair (&fx, near_source, near_sink, "near");
  add_pair (&fx, far_source, far_sink, "far");

  run_until_messages (&fx, "parley-audio-report", "near", 4);
  run_until_messages (&fx, "parley-audio-report", "far", 4);
  report = find_message (&fx, "parley-audio-report", "near", 3);
  g_assert_true (gst_structure_get_double (report, "frequency", &frequency));
  g_assert_true (gst_structure_get_double (report, "level", &level));
  g_test_message ("through webrtcdsp: %.1f Hz at %.1f dBFS", frequency, level);
  g_assert_cmpfloat_with_epsilon (frequency, 523.0, 5.0);
  g_assert_cmpfloat (level, >, -40.0);
  report = find_message (&fx, "parley-audio-report", "far", 3);
  g_assert_true (gst_structure_get_double (report, "frequency", &frequency));
  g_assert_cmpfloat_with_epsilon (frequency, 1000.0, 5.0);
  fixture_clear (&fx);
}

static void
test_test_media_has_no_dsp (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GstElement) source = NULL;
  g_autoptr(GstElement) dsp = NULL;

  /* Echo cancellation and noise suppression are on by default, but the test tone
   * stays pure unless test-dsp asks for processing. */
  g_assert_true (parley_media_settings_get_echo_cancellation (settings));
  source = parley_media_create_audio_source (settings, &error);
  g_assert_no_error (error);
  gst_object_ref_sink (source);
  dsp = gst_bin_get_by_name (GST_BIN (source), "audio-dsp");
  g_assert_null (dsp);
}

/* Errors */

static void
test_unknown_pattern (void)
{
  g_autoptr(ParleyMediaSettings) settings = test_settings ();
  g_autoptr(GError) error = NULL;
  GstElement *source;

  parley_media_settings_set_test_pattern (settings, "no-such-pattern");
  source = parley_media_create_video_source (settings, &error);
  g_assert_null (source);
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);

  parley_media_settings_set_test_pattern (settings, "");
  source = parley_media_create_video_source (settings, &error);
  g_assert_null (source);
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
}

static gboolean
machine_has_camera (void)
{
  g_autoptr(GstDeviceMonitor) monitor = gst_device_monitor_new ();
  GList *devices;
  gboolean found;

  gst_device_monitor_add_filter (monitor, "Video/Source", NULL);
  devices = gst_device_monitor_get_devices (monitor);
  found = devices != NULL;
  g_list_free_full (devices, gst_object_unref);
  return found;
}

static void
test_no_camera (void)
{
  g_autoptr(ParleyMediaSettings) settings = parley_media_settings_new ();
  g_autoptr(GError) error = NULL;

  if (machine_has_camera ()) {
    g_test_skip ("this machine has a camera");
    return;
  }
  g_assert_null (parley_media_create_video_source (settings, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_NOT_FOUND);
}

static void
test_settings_properties (void)
{
  g_autoptr(ParleyMediaSettings) settings = parley_media_settings_new ();
  guint notified = 0, width, height, rate;
  g_autofree char *pattern = NULL;
  gboolean test_media;

  g_assert_false (parley_media_settings_get_test_media (settings));
  g_assert_cmpstr (parley_media_settings_get_test_pattern (settings), ==, "smpte");
  g_assert_cmpfloat (parley_media_settings_get_test_tone (settings), ==, 440.0);
  g_assert_cmpuint (parley_media_settings_get_jitter_latency (settings), ==, 20);
  parley_media_settings_get_video_format (settings, &width, &height, &rate);
  g_assert_cmpuint (width, ==, 640);
  g_assert_cmpuint (height, ==, 480);
  g_assert_cmpuint (rate, ==, 30);

  g_signal_connect_swapped (settings, "notify", G_CALLBACK (g_atomic_int_inc), &notified);
  parley_media_settings_set_test_pattern (settings, "ball");
  parley_media_settings_set_test_pattern (settings, "ball");
  g_assert_cmpuint (notified, ==, 1);
  parley_media_settings_set_video_format (settings, 320, 240, 30);
  g_assert_cmpuint (notified, ==, 3);
  g_object_set (settings, "test-media", TRUE, "jitter-latency", 50, NULL);
  g_assert_cmpuint (notified, ==, 5);
  g_object_get (settings, "test-pattern", &pattern, "test-media", &test_media, NULL);
  g_assert_cmpstr (pattern, ==, "ball");
  g_assert_true (test_media);
  g_assert_cmpuint (parley_media_settings_get_jitter_latency (settings), ==, 50);
  parley_media_settings_set_test_pattern (settings, NULL);
  g_assert_cmpstr (parley_media_settings_get_test_pattern (settings), ==, "smpte");
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
  g_test_add_func ("/media/video/smpte", test_video_smpte);
  g_test_add_func ("/media/video/solid", test_video_solid);
  g_test_add_func ("/media/video/muted", test_video_muted);
  g_test_add_func ("/media/video/mute-running", test_video_mute_running);
  g_test_add_func ("/media/audio/mute-running", test_audio_mute_running);
  g_test_add_func ("/media/first-frame-once-per-kind", test_first_frame_once_per_kind);
  g_test_add_func ("/media/sinks-convert", test_sinks_convert);
  g_test_add_data_func ("/media/dsp/echo-cancel", GINT_TO_POINTER (FALSE), test_dsp_chain);
  g_test_add_data_func ("/media/dsp/echo-cancel-noise-suppression", GINT_TO_POINTER (TRUE),
                        test_dsp_chain);
  g_test_add_func ("/media/dsp/off-in-test-media", test_test_media_has_no_dsp);
  g_test_add_func ("/media/error/unknown-pattern", test_unknown_pattern);
  g_test_add_func ("/media/error/no-camera", test_no_camera);
  g_test_add_func ("/media/settings/properties", test_settings_properties);

  return g_test_run ();
}
