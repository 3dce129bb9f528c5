/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-media"

#include "config.h"

#include <glib/gi18n-lib.h>

#include <math.h>
#include <string.h>

#include <gst/audio/audio.h>
#include <gst/video/video.h>

#include "parley-error.h"
#include "parley-media.h"

/* The raw audio format of sources, of the analysers and of the echo probe. */
#define AUDIO_RATE        48000
#define AUDIO_CAPS        "audio/x-raw, format=(string)S16LE, layout=(string)interleaved, " \
                          "rate=(int)48000, channels=(int)1"
/* One audio report per 500 ms of audio. */
#define REPORT_SAMPLES    (AUDIO_RATE / 2)
/* The frequency estimate looks at 200 ms of each report period, around its loudest part. */
#define SPECTRUM_SAMPLES  (AUDIO_RATE / 5)
#define REPORT_INTERVAL   (500 * GST_MSECOND)
/* The size of the frames the video analyser looks at. */
#define ANALYSIS_WIDTH    160
#define ANALYSIS_HEIGHT   120
#define LEVEL_FLOOR_DB    (-120.0)

#define STATE_KEY "parley-media-state"

typedef enum {
  MEDIA_AUDIO_SOURCE,
  MEDIA_VIDEO_SOURCE,
  MEDIA_AUDIO_SINK,
  MEDIA_VIDEO_SINK,
} MediaKind;

/* Per-bin state, reference counted (g_rc_box) because pad probes in streaming
 * threads hold it as well as the bin. */
typedef struct {
  MediaKind     kind;
  GstElement   *bin;          /* Not a reference: the bin owns this state. */
  gint          muted;        /* Atomic. */

  /* Video sources: the format that muting blanks. */
  GstVideoInfo  vinfo;

  /* Audio sources with echo cancellation: the probe that a sink should host. */
  GstElement   *echo_probe;

  /* Sinks: analysis, touched only from the streaming thread of the sink. */
  gint16       *samples;
  gsize         n_samples;
  gint          width;        /* Atomic: the decoded video size. */
  gint          height;
  gsize         frames;       /* Atomic. */
  GstClockTime  last_report;
  GstClockTime  last_analysed; /* Video sinks: the last frame let into the analysis branch. */
  gint          view;          /* Atomic: video sinks convert frames for the appsink. */
} MediaState;

/* Echo probes of living audio sources; an audio sink hosts the first one that is
 * not yet in a bin. */
G_LOCK_DEFINE_STATIC (echo_probes);
static GList *echo_probes;

static void
media_state_clear (gpointer data)
{
  MediaState *state = data;

  if (state->echo_probe != NULL) {
    G_LOCK (echo_probes);
    echo_probes = g_list_remove (echo_probes, state->echo_probe);
    G_UNLOCK (echo_probes);
    gst_clear_object (&state->echo_probe);
  }
  g_clear_pointer (&state->samples, g_free);
}

static void
media_state_release (gpointer data)
{
  g_rc_box_release_full (data, media_state_clear);
}

static MediaState *
media_state_new (GstElement *bin,
                 MediaKind   kind)
{
  MediaState *state = g_rc_box_new0 (MediaState);

  state->kind = kind;
  state->bin = bin;
  state->last_report = GST_CLOCK_TIME_NONE;
  state->last_analysed = GST_CLOCK_TIME_NONE;
  g_object_set_data_full (G_OBJECT (bin), STATE_KEY, state, media_state_release);
  return state;
}

static MediaState *
media_state_get (GstElement *element)
{
  if (element == NULL)
    return NULL;
  return g_object_get_data (G_OBJECT (element), STATE_KEY);
}

static gulong
add_probe (GstElement         *element,
           const char         *pad_name,
           GstPadProbeType     mask,
           GstPadProbeCallback callback,
           MediaState         *state)
{
  g_autoptr(GstPad) pad = gst_element_get_static_pad (element, pad_name);

  return gst_pad_add_probe (pad, mask, callback, g_rc_box_acquire (state), media_state_release);
}

static void
post_report (MediaState   *state,
             GstStructure *structure)
{
  GstMessage *message = gst_message_new_element (GST_OBJECT (state->bin), structure);

  gst_element_post_message (state->bin, message);
}

static GstElement *
add_element (GstElement  *bin,
             const char  *factory,
             const char  *name,
             GError     **error)
{
  GstElement *element = gst_element_factory_make (factory, name);

  if (element == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                 _("The GStreamer element “%s” is not installed"), factory);
    return NULL;
  }
  gst_bin_add (GST_BIN (bin), element);
  return element;
}

static GstElement *
add_caps_filter (GstElement  *bin,
                 const char  *name,
                 GstCaps     *caps,
                 GError     **error)
{
  GstElement *filter = add_element (bin, "capsfilter", name, error);

  if (filter != NULL)
    g_object_set (filter, "caps", caps, NULL);
  gst_caps_unref (caps);
  return filter;
}

/* Links @first to @last through all elements in between, checking each link. */
static gboolean
link_chain (GError **error,
            GstElement *first,
            ...)
{
  GstElement *prev = first;
  GstElement *next;
  va_list args;
  gboolean ok = TRUE;

  va_start (args, first);
  while (ok && (next = va_arg (args, GstElement *)) != NULL) {
    if (!gst_element_link (prev, next)) {
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA, _("Could not link %s to %s"),
                   GST_OBJECT_NAME (prev), GST_OBJECT_NAME (next));
      ok = FALSE;
    }
    prev = next;
  }
  va_end (args);
  return ok;
}

static void
add_ghost_pad (GstElement *bin,
               GstElement *element,
               const char *element_pad,
               const char *name)
{
  g_autoptr(GstPad) target = gst_element_get_static_pad (element, element_pad);

  gst_element_add_pad (bin, gst_ghost_pad_new (name, target));
}

/* Returns a floating reference as gst_element_factory_make() does. */
static GstElement *
return_floating (GstElement *bin)
{
  g_object_force_floating (G_OBJECT (bin));
  return bin;
}

/* Which device a message speaks of: whole sentences translate, parts do
 * not. */
typedef enum {
  DEVICE_MICROPHONE,
  DEVICE_CAMERA,
  DEVICE_SPEAKER,
} DeviceKind;

/* @missing: the translated message for no such device at all. */
static GstElement *
first_device_element (const char  *classes,
                      const char  *missing,
                      GError     **error)
{
  g_autoptr(GstDeviceMonitor) monitor = gst_device_monitor_new ();
  GList *devices;
  GstElement *element = NULL;

  gst_device_monitor_add_filter (monitor, classes, NULL);
  devices = gst_device_monitor_get_devices (monitor);
  for (GList *l = devices; l != NULL && element == NULL; l = l->next)
    element = gst_device_create_element (l->data, NULL);
  g_list_free_full (devices, gst_object_unref);

  if (element == NULL)
    g_set_error_literal (error, PARLEY_ERROR, PARLEY_ERROR_NOT_FOUND, missing);
  return element;
}

static GstElement *
device_element (GstDevice   *device,
                DeviceKind   kind,
                GError     **error)
{
  GstElement *element = gst_device_create_element (device, NULL);
  g_autofree char *name = NULL;

  if (element != NULL)
    return element;
  name = gst_device_get_display_name (device);
  switch (kind) {
    case DEVICE_MICROPHONE:
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                   _("The microphone “%s” cannot be opened"), name);
      break;
    case DEVICE_CAMERA:
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                   _("The camera “%s” cannot be opened"), name);
      break;
    case DEVICE_SPEAKER:
    default:
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                   _("The speaker “%s” cannot be opened"), name);
      break;
  }
  return NULL;
}

static gboolean
pattern_from_nick (const char  *nick,
                   gint        *value,
                   GError     **error)
{
  g_autoptr(GstElement) probe_src = gst_element_factory_make ("videotestsrc", NULL);
  GParamSpec *pspec;
  GEnumValue *enum_value;

  if (probe_src == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                 _("The GStreamer element “videotestsrc” is not installed"));
    return FALSE;
  }
  gst_object_ref_sink (probe_src);
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (probe_src), "pattern");
  enum_value = g_enum_get_value_by_nick (G_PARAM_SPEC_ENUM (pspec)->enum_class,
                                         nick != NULL ? nick : "");
  if (enum_value == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("Unknown test pattern “%s”"),
                 nick != NULL ? nick : "");
    return FALSE;
  }
  *value = enum_value->value;
  return TRUE;
}

/* Sources */

static GstPadProbeReturn
blank_video_cb (GstPad          *pad,
                GstPadProbeInfo *info,
                gpointer         user_data)
{
  MediaState *state = user_data;
  GstBuffer *buffer;
  GstVideoFrame frame;

  if (!g_atomic_int_get (&state->muted))
    return GST_PAD_PROBE_OK;

  buffer = gst_buffer_make_writable (GST_PAD_PROBE_INFO_BUFFER (info));
  GST_PAD_PROBE_INFO_DATA (info) = buffer;
  if (!gst_video_frame_map (&frame, &state->vinfo, buffer, GST_MAP_WRITE))
    return GST_PAD_PROBE_OK;

  /* Black in limited-range YUV: Y = 16, U = V = 128. */
  for (guint plane = 0; plane < GST_VIDEO_FRAME_N_PLANES (&frame); plane++) {
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (&frame, plane);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, plane);
    gint rows = GST_VIDEO_FRAME_COMP_HEIGHT (&frame, plane);
    gint width = GST_VIDEO_FRAME_COMP_WIDTH (&frame, plane);

    for (gint y = 0; y < rows; y++)
      memset (data + (gsize) y * stride, plane == 0 ? 16 : 128, width);
  }
  gst_video_frame_unmap (&frame);
  return GST_PAD_PROBE_OK;
}

static gboolean
source_uses_dsp (ParleyMediaSettings *settings)
{
  if (parley_media_settings_get_test_media (settings) &&
      !parley_media_settings_get_test_dsp (settings))
    return FALSE;
  return parley_media_settings_get_echo_cancellation (settings) ||
         parley_media_settings_get_noise_suppression (settings);
}

/**
 * parley_media_create_audio_source:
 * @settings: the media settings
 * @error: return location for a #GError
 *
 * Creates the audio source of a call: a bin with one source pad "src" producing
 * mono S16LE audio at 48 kHz in 10 ms buffers.
 *
 * In test-media mode it sends a sine tone of [property@MediaSettings:test-tone] Hz
 * (without echo cancellation or noise suppression unless
 * [property@MediaSettings:test-dsp] is set, so that the tone stays pure). Otherwise
 * it captures from [property@MediaSettings:microphone] or the default microphone and
 * runs webrtcdsp as the settings say.
 *
 * With echo cancellation the source owns a webrtcechoprobe with a name unique in the
 * process; an audio sink created afterwards hosts it (see
 * parley_media_create_audio_sink_for_source()).
 *
 * Returns: (transfer floating): the source bin, or %NULL with @error set
 */
GstElement *
parley_media_create_audio_source (ParleyMediaSettings *settings,
                                  GError             **error)
{
  static guint probe_serial;
  g_autoptr(GstElement) bin = NULL;
  MediaState *state;
  GstElement *src, *convert, *resample, *filter, *volume, *last;

  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (settings), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  bin = gst_object_ref_sink (gst_bin_new (NULL));
  state = media_state_new (bin, MEDIA_AUDIO_SOURCE);

  if (parley_media_settings_get_test_media (settings)) {
    if (!(src = add_element (bin, "audiotestsrc", "audio-capture", error)))
      return NULL;
    g_object_set (src,
                  "is-live", TRUE,
                  "wave", 0 /* sine */,
                  "freq", parley_media_settings_get_test_tone (settings),
                  "samplesperbuffer", AUDIO_RATE / 100,
                  NULL);
  } else {
    GstDevice *microphone = parley_media_settings_get_microphone (settings);

    if (microphone != NULL)
      src = device_element (microphone, DEVICE_MICROPHONE, error);
    else
      src = gst_element_factory_make ("autoaudiosrc", NULL);
    if (src == NULL) {
      if (error != NULL && *error == NULL)
        g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                     _("The GStreamer element “autoaudiosrc” is not installed"));
      return NULL;
    }
    gst_element_set_name (src, "audio-capture");
    gst_bin_add (GST_BIN (bin), src);
  }

  if (!(convert = add_element (bin, "audioconvert", NULL, error)) ||
      !(resample = add_element (bin, "audioresample", NULL, error)) ||
      !(filter = add_caps_filter (bin, "audio-format", gst_caps_from_string (AUDIO_CAPS),
                                  error)) ||
      !link_chain (error, src, convert, resample, filter, NULL))
    return NULL;
  last = filter;

  if (source_uses_dsp (settings)) {
    gboolean echo = parley_media_settings_get_echo_cancellation (settings);
    GstElement *dsp;

    if (!(dsp = add_element (bin, "webrtcdsp", "audio-dsp", error)))
      return NULL;
    g_object_set (dsp,
                  "echo-cancel", echo,
                  "noise-suppression", parley_media_settings_get_noise_suppression (settings),
                  NULL);
    if (echo) {
      g_autofree char *name = g_strdup_printf ("parley-echo-probe-%u",
                                               g_atomic_int_add (&probe_serial, 1));

      state->echo_probe = gst_element_factory_make ("webrtcechoprobe", name);
      if (state->echo_probe == NULL) {
        g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA,
                     _("The GStreamer element “webrtcechoprobe” is not installed"));
        return NULL;
      }
      gst_object_ref_sink (state->echo_probe);
      g_object_set (dsp, "probe", name, NULL);
      G_LOCK (echo_probes);
      echo_probes = g_list_append (echo_probes, state->echo_probe);
      G_UNLOCK (echo_probes);
    }
    if (!link_chain (error, last, dsp, NULL))
      return NULL;
    last = dsp;
  }

  if (!(volume = add_element (bin, "volume", "mute", error)) ||
      !link_chain (error, last, volume, NULL))
    return NULL;
  add_ghost_pad (bin, volume, "src", "src");

  return return_floating (g_steal_pointer (&bin));
}

/**
 * parley_media_create_video_source:
 * @settings: the media settings
 * @error: return location for a #GError
 *
 * Creates the video source of a call: a bin with one source pad "src" producing
 * I420 video in the size and frame rate of the settings.
 *
 * In test-media mode it sends the videotestsrc pattern
 * [property@MediaSettings:test-pattern]; an unknown pattern name is an error
 * (%PARLEY_ERROR_INVALID). Otherwise it captures from
 * [property@MediaSettings:camera] or the first camera; without any camera it fails
 * with %PARLEY_ERROR_NOT_FOUND.
 *
 * Returns: (transfer floating): the source bin, or %NULL with @error set
 */
GstElement *
parley_media_create_video_source (ParleyMediaSettings *settings,
                                  GError             **error)
{
  g_autoptr(GstElement) bin = NULL;
  g_autoptr(GstCaps) caps = NULL;
  MediaState *state;
  GstElement *src, *convert, *scale, *rate, *filter;
  guint width, height, framerate;

  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (settings), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  parley_media_settings_get_video_format (settings, &width, &height, &framerate);
  caps = gst_caps_new_simple ("video/x-raw",
                              "format", G_TYPE_STRING, "I420",
                              "width", G_TYPE_INT, (gint) width,
                              "height", G_TYPE_INT, (gint) height,
                              "framerate", GST_TYPE_FRACTION, (gint) framerate, 1,
                              "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1,
                              NULL);

  bin = gst_object_ref_sink (gst_bin_new (NULL));
  state = media_state_new (bin, MEDIA_VIDEO_SOURCE);
  gst_video_info_set_format (&state->vinfo, GST_VIDEO_FORMAT_I420, width, height);

  if (parley_media_settings_get_test_media (settings)) {
    gint pattern;

    if (!pattern_from_nick (parley_media_settings_get_test_pattern (settings), &pattern, error))
      return NULL;
    if (!(src = add_element (bin, "videotestsrc", "video-capture", error)))
      return NULL;
    g_object_set (src, "is-live", TRUE, "pattern", pattern, NULL);
  } else {
    GstDevice *camera = parley_media_settings_get_camera (settings);

    if (camera != NULL)
      src = device_element (camera, DEVICE_CAMERA, error);
    else
      src = first_device_element ("Video/Source", _("No camera found"), error);
    if (src == NULL)
      return NULL;
    gst_element_set_name (src, "video-capture");
    gst_bin_add (GST_BIN (bin), src);
  }

  if (!(convert = add_element (bin, "videoconvert", NULL, error)) ||
      !(scale = add_element (bin, "videoscale", NULL, error)) ||
      !(rate = add_element (bin, "videorate", NULL, error)) ||
      !(filter = add_caps_filter (bin, "video-format", gst_caps_ref (caps), error)) ||
      !link_chain (error, src, convert, scale, rate, filter, NULL))
    return NULL;

  add_probe (filter, "src", GST_PAD_PROBE_TYPE_BUFFER, blank_video_cb, state);
  add_ghost_pad (bin, filter, "src", "src");

  return return_floating (g_steal_pointer (&bin));
}

/**
 * parley_media_source_set_muted:
 * @source: a source made by parley_media_create_audio_source() or
 *   parley_media_create_video_source()
 * @muted: whether to mute
 *
 * Mutes or unmutes a source without stopping it: a muted audio source sends
 * silence, a muted video source sends black frames, and timestamps go on as before.
 */
void
parley_media_source_set_muted (GstElement *source,
                               gboolean    muted)
{
  MediaState *state = media_state_get (source);

  g_return_if_fail (state != NULL);
  g_return_if_fail (state->kind == MEDIA_AUDIO_SOURCE || state->kind == MEDIA_VIDEO_SOURCE);

  g_atomic_int_set (&state->muted, !!muted);
  if (state->kind == MEDIA_AUDIO_SOURCE) {
    g_autoptr(GstElement) volume = gst_bin_get_by_name (GST_BIN (source), "mute");

    g_object_set (volume, "mute", !!muted, NULL);
  }
}

/**
 * parley_media_source_get_muted:
 * @source: a source made by parley_media_create_audio_source() or
 *   parley_media_create_video_source()
 *
 * Returns: whether the source is muted
 */
gboolean
parley_media_source_get_muted (GstElement *source)
{
  MediaState *state = media_state_get (source);

  g_return_val_if_fail (state != NULL, FALSE);

  return g_atomic_int_get (&state->muted);
}

/* Sinks */

static GstPadProbeReturn
first_frame_cb (GstPad          *pad,
                GstPadProbeInfo *info,
                gpointer         user_data)
{
  MediaState *state = user_data;
  const char *kind = state->kind == MEDIA_AUDIO_SINK ? "audio" : "video";

  post_report (state, gst_structure_new ("parley-first-frame",
                                         "kind", G_TYPE_STRING, kind,
                                         NULL));
  return GST_PAD_PROBE_REMOVE;
}

/* The @window_len samples of @samples centred on its loudest 10 ms, so that a short beep
 * (a browser's fake microphone) is analysed as well as a steady tone. */
static const gint16 *
loudest_window (const gint16 *samples,
                gsize         n_samples,
                gsize         window_len)
{
  const gsize block = AUDIO_RATE / 100;
  gsize best = 0, start;
  double best_energy = -1.0;

  for (gsize b = 0; b + block <= n_samples; b += block) {
    double energy = 0.0;

    for (gsize i = b; i < b + block; i++)
      energy += (double) samples[i] * samples[i];
    if (energy > best_energy) {
      best_energy = energy;
      best = b;
    }
  }
  start = best + block / 2 > window_len / 2 ? best + block / 2 - window_len / 2 : 0;
  return samples + MIN (start, n_samples - window_len);
}

static double
level_dbfs (const gint16 *samples,
            gsize         n_samples)
{
  double sum = 0.0;
  double mean_square;

  if (n_samples == 0)
    return LEVEL_FLOOR_DB;
  for (gsize i = 0; i < n_samples; i++)
    sum += (double) samples[i] * samples[i];
  mean_square = sum / n_samples / (32768.0 * 32768.0);
  if (mean_square <= 0.0)
    return LEVEL_FLOOR_DB;
  return MAX (10.0 * log10 (mean_square), LEVEL_FLOOR_DB);
}

static GstPadProbeReturn
analyse_audio_cb (GstPad          *pad,
                  GstPadProbeInfo *info,
                  gpointer         user_data)
{
  MediaState *state = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstMapInfo map;
  gsize offset = 0;

  if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
    return GST_PAD_PROBE_OK;

  if (state->samples == NULL)
    state->samples = g_new (gint16, REPORT_SAMPLES);

  while (offset + sizeof (gint16) <= map.size) {
    gsize n = MIN ((map.size - offset) / sizeof (gint16), REPORT_SAMPLES - state->n_samples);

    memcpy (state->samples + state->n_samples, map.data + offset, n * sizeof (gint16));
    state->n_samples += n;
    offset += n * sizeof (gint16);

    if (state->n_samples == REPORT_SAMPLES) {
      const gint16 *window = loudest_window (state->samples, REPORT_SAMPLES, SPECTRUM_SAMPLES);
      double frequency = parley_media_dominant_frequency (window, SPECTRUM_SAMPLES, AUDIO_RATE);
      double level = level_dbfs (state->samples, REPORT_SAMPLES);

      post_report (state, gst_structure_new ("parley-audio-report",
                                             "frequency", G_TYPE_DOUBLE, frequency,
                                             "level", G_TYPE_DOUBLE, level,
                                             NULL));
      state->n_samples = 0;
    }
  }
  gst_buffer_unmap (buffer, &map);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
count_video_cb (GstPad          *pad,
                GstPadProbeInfo *info,
                gpointer         user_data)
{
  MediaState *state = user_data;

  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    g_atomic_pointer_add (&state->frames, 1);
  } else {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

    if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
      GstCaps *caps;
      GstVideoInfo vinfo;

      gst_event_parse_caps (event, &caps);
      if (gst_video_info_from_caps (&vinfo, caps)) {
        g_atomic_int_set (&state->width, GST_VIDEO_INFO_WIDTH (&vinfo));
        g_atomic_int_set (&state->height, GST_VIDEO_INFO_HEIGHT (&vinfo));
      }
    }
  }
  return GST_PAD_PROBE_OK;
}

static char *
patch_colors (GstVideoFrame *frame)
{
  GString *colors = g_string_new (NULL);
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
  gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);
  gint pixel_stride = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 0);

  for (gint row = 0; row < 2; row++) {
    for (gint col = 0; col < 4; col++) {
      /* Each patch is centred in its cell of the 4x2 grid and half as wide and high. */
      gint x0 = col * width / 4 + width / 16;
      gint x1 = MAX (x0 + 1, col * width / 4 + 3 * width / 16);
      gint y0 = row * height / 2 + height / 8;
      gint y1 = MAX (y0 + 1, row * height / 2 + 3 * height / 8);
      guint64 sum[3] = { 0, 0, 0 };
      guint64 n = 0;

      for (gint y = y0; y < y1 && y < height; y++) {
        const guint8 *line = data + (gsize) y * stride;

        for (gint x = x0; x < x1 && x < width; x++) {
          const guint8 *pixel = line + (gsize) x * pixel_stride;

          sum[0] += pixel[0];
          sum[1] += pixel[1];
          sum[2] += pixel[2];
          n++;
        }
      }
      n = MAX (n, 1);
      g_string_append_printf (colors, "%s%02X%02X%02X", colors->len > 0 ? " " : "",
                              (guint) ((sum[0] + n / 2) / n),
                              (guint) ((sum[1] + n / 2) / n),
                              (guint) ((sum[2] + n / 2) / n));
    }
  }
  return g_string_free (colors, FALSE);
}

static GstPadProbeReturn
analyse_video_cb (GstPad          *pad,
                  GstPadProbeInfo *info,
                  gpointer         user_data)
{
  MediaState *state = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClockTime now = GST_BUFFER_PTS (buffer);
  g_autoptr(GstCaps) caps = NULL;
  g_autofree char *colors = NULL;
  GstVideoInfo vinfo;
  GstVideoFrame frame;

  if (!GST_CLOCK_TIME_IS_VALID (now))
    now = g_get_monotonic_time () * GST_USECOND;
  if (GST_CLOCK_TIME_IS_VALID (state->last_report) && now >= state->last_report &&
      now - state->last_report < REPORT_INTERVAL)
    return GST_PAD_PROBE_OK;

  caps = gst_pad_get_current_caps (pad);
  if (caps == NULL || !gst_video_info_from_caps (&vinfo, caps))
    return GST_PAD_PROBE_OK;
  if (!gst_video_frame_map (&frame, &vinfo, buffer, GST_MAP_READ))
    return GST_PAD_PROBE_OK;
  colors = patch_colors (&frame);
  gst_video_frame_unmap (&frame);

  state->last_report = now;
  post_report (state, gst_structure_new ("parley-video-report",
                                         "width", G_TYPE_INT, g_atomic_int_get (&state->width),
                                         "height", G_TYPE_INT,
                                         g_atomic_int_get (&state->height),
                                         "frames", G_TYPE_UINT64,
                                         (guint64) g_atomic_pointer_get (&state->frames),
                                         "colors", G_TYPE_STRING, colors,
                                         NULL));
  return GST_PAD_PROBE_OK;
}

static GstElement *
take_echo_probe (GstElement *bin,
                 MediaState *source_state)
{
  GstElement *probe = NULL;

  G_LOCK (echo_probes);
  if (source_state != NULL) {
    if (source_state->echo_probe != NULL && GST_OBJECT_PARENT (source_state->echo_probe) == NULL)
      probe = source_state->echo_probe;
  } else {
    for (GList *l = echo_probes; l != NULL && probe == NULL; l = l->next) {
      if (GST_OBJECT_PARENT (l->data) == NULL)
        probe = l->data;
    }
  }
  if (probe != NULL && !gst_bin_add (GST_BIN (bin), probe))
    probe = NULL;
  G_UNLOCK (echo_probes);

  return probe;
}

/**
 * parley_media_create_audio_sink_for_source:
 * @settings: the media settings
 * @source: (nullable): the audio source of the same call
 * @error: return location for a #GError
 *
 * Creates the audio sink of a call: a bin with one sink pad "sink" that accepts any
 * raw audio, reports it (see parley-media.h) and plays it on
 * [property@MediaSettings:speaker] or the default speaker, or drops it in test-media
 * mode.
 *
 * When @source cancels echo, the sink hosts the source's webrtcechoprobe just
 * before the speaker so that the canceller hears what the speaker plays. With
 * @source %NULL the sink hosts the echo probe of the oldest audio source whose
 * probe is not yet in a sink, if any.
 *
 * Returns: (transfer floating): the sink bin, or %NULL with @error set
 */
GstElement *
parley_media_create_audio_sink_for_source (ParleyMediaSettings *settings,
                                           GstElement          *source,
                                           GError             **error)
{
  g_autoptr(GstElement) bin = NULL;
  MediaState *state;
  MediaState *source_state = media_state_get (source);
  GstElement *queue, *convert, *resample, *filter, *probe, *out_convert, *out_resample, *sink;

  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (settings), NULL);
  g_return_val_if_fail (source == NULL ||
                        (source_state != NULL && source_state->kind == MEDIA_AUDIO_SOURCE),
                        NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  bin = gst_object_ref_sink (gst_bin_new (NULL));
  state = media_state_new (bin, MEDIA_AUDIO_SINK);

  if (!(queue = add_element (bin, "queue", NULL, error)) ||
      !(convert = add_element (bin, "audioconvert", NULL, error)) ||
      !(resample = add_element (bin, "audioresample", NULL, error)) ||
      !(filter = add_caps_filter (bin, "audio-format", gst_caps_from_string (AUDIO_CAPS),
                                  error)) ||
      !(out_convert = add_element (bin, "audioconvert", NULL, error)) ||
      !(out_resample = add_element (bin, "audioresample", NULL, error)))
    return NULL;

  if (parley_media_settings_get_test_media (settings)) {
    if (!(sink = add_element (bin, "fakesink", "audio-output", error)))
      return NULL;
    g_object_set (sink, "sync", FALSE, "async", FALSE, NULL);
  } else {
    GstDevice *speaker = parley_media_settings_get_speaker (settings);

    if (speaker != NULL) {
      if (!(sink = device_element (speaker, DEVICE_SPEAKER, error)))
        return NULL;
      gst_element_set_name (sink, "audio-output");
      gst_bin_add (GST_BIN (bin), sink);
    } else if (!(sink = add_element (bin, "autoaudiosink", "audio-output", error))) {
      return NULL;
    }
  }

  probe = take_echo_probe (bin, source_state);
  if (probe != NULL) {
    if (!link_chain (error, queue, convert, resample, filter, probe, out_convert, out_resample,
                     sink, NULL))
      return NULL;
  } else if (!link_chain (error, queue, convert, resample, filter, out_convert, out_resample,
                          sink, NULL)) {
    return NULL;
  }

  add_probe (queue, "sink", GST_PAD_PROBE_TYPE_BUFFER, first_frame_cb, state);
  add_probe (filter, "src", GST_PAD_PROBE_TYPE_BUFFER, analyse_audio_cb, state);
  add_ghost_pad (bin, queue, "sink", "sink");

  return return_floating (g_steal_pointer (&bin));
}

/**
 * parley_media_create_audio_sink:
 * @settings: the media settings
 * @error: return location for a #GError
 *
 * Creates the audio sink of a call, as
 * parley_media_create_audio_sink_for_source() with no source.
 *
 * Returns: (transfer floating): the sink bin, or %NULL with @error set
 */
GstElement *
parley_media_create_audio_sink (ParleyMediaSettings *settings,
                                GError             **error)
{
  return parley_media_create_audio_sink_for_source (settings, NULL, error);
}

/* The analysis branch looks at a few frames a second: converting and scaling every
 * frame of a 30 fps call for a report every 500 ms would cost more than decoding. */
#define ANALYSIS_INTERVAL (100 * GST_MSECOND)

static GstPadProbeReturn
throttle_analysis_cb (GstPad          *pad,
                      GstPadProbeInfo *info,
                      gpointer         user_data)
{
  MediaState *state = user_data;
  GstClockTime now = GST_BUFFER_PTS (GST_PAD_PROBE_INFO_BUFFER (info));

  if (!GST_CLOCK_TIME_IS_VALID (now))
    now = g_get_monotonic_time () * GST_USECOND;
  if (GST_CLOCK_TIME_IS_VALID (state->last_analysed) && now >= state->last_analysed &&
      now - state->last_analysed < ANALYSIS_INTERVAL)
    return GST_PAD_PROBE_DROP;
  state->last_analysed = now;
  return GST_PAD_PROBE_OK;
}

/* Frames are converted to RGBA for the appsink only while someone shows them. */
static GstPadProbeReturn
gate_view_cb (GstPad          *pad,
              GstPadProbeInfo *info,
              gpointer         user_data)
{
  MediaState *state = user_data;

  return g_atomic_int_get (&state->view) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

/**
 * parley_media_video_sink_set_view:
 * @sink: a video sink of parley_media_create_video_sink()
 * @enabled: whether its "video-appsink" gets frames
 *
 * Turns the RGBA frames for a user interface on or off (off at first), so that a
 * call nobody watches does not convert every frame. Reports are not affected.
 */
void
parley_media_video_sink_set_view (GstElement *sink,
                                  gboolean    enabled)
{
  MediaState *state = g_object_get_data (G_OBJECT (sink), STATE_KEY);

  g_return_if_fail (state != NULL && state->kind == MEDIA_VIDEO_SINK);
  g_atomic_int_set (&state->view, enabled ? 1 : 0);
}

/**
 * parley_media_create_video_sink:
 * @settings: the media settings
 * @error: return location for a #GError
 *
 * Creates the video sink of a call: a bin with one sink pad "sink" that accepts any
 * raw video. It reports the video (see parley-media.h) and keeps the latest frame as
 * RGBA in an appsink named "video-appsink" (drop=true, max-buffers=1, sync=false)
 * for the user interface to pull, once parley_media_video_sink_set_view() turned that
 * on. The sink behaves the same in test-media mode.
 *
 * Returns: (transfer floating): the sink bin, or %NULL with @error set
 */
GstElement *
parley_media_create_video_sink (ParleyMediaSettings *settings,
                                GError             **error)
{
  g_autoptr(GstElement) bin = NULL;
  MediaState *state;
  GstElement *queue, *convert, *tee;
  GstElement *a_queue, *a_scale, *a_convert, *a_filter, *a_sink;
  GstElement *v_queue, *v_convert, *v_filter, *v_sink;

  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (settings), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  bin = gst_object_ref_sink (gst_bin_new (NULL));
  state = media_state_new (bin, MEDIA_VIDEO_SINK);

  if (!(queue = add_element (bin, "queue", NULL, error)) ||
      !(convert = add_element (bin, "videoconvert", NULL, error)) ||
      !(tee = add_element (bin, "tee", NULL, error)) ||
      !(a_queue = add_element (bin, "queue", "analysis-queue", error)) ||
      !(a_scale = add_element (bin, "videoscale", NULL, error)) ||
      !(a_convert = add_element (bin, "videoconvert", NULL, error)) ||
      !(a_filter = add_caps_filter (bin, "analysis-format",
                                    gst_caps_new_simple ("video/x-raw",
                                                         "format", G_TYPE_STRING, "RGB",
                                                         "width", G_TYPE_INT, ANALYSIS_WIDTH,
                                                         "height", G_TYPE_INT, ANALYSIS_HEIGHT,
                                                         NULL),
                                    error)) ||
      !(a_sink = add_element (bin, "fakesink", "analysis-sink", error)) ||
      !(v_queue = add_element (bin, "queue", "view-queue", error)) ||
      !(v_convert = add_element (bin, "videoconvert", NULL, error)) ||
      !(v_filter = add_caps_filter (bin, "view-format",
                                    gst_caps_new_simple ("video/x-raw",
                                                         "format", G_TYPE_STRING, "RGBA",
                                                         NULL),
                                    error)) ||
      !(v_sink = add_element (bin, "appsink", "video-appsink", error)))
    return NULL;

  /* Both branches only ever hold the newest frame so neither can stall the other. */
  g_object_set (a_queue, "leaky", 2 /* downstream */, "max-size-buffers", 1,
                "max-size-bytes", 0, "max-size-time", (guint64) 0, NULL);
  g_object_set (v_queue, "leaky", 2 /* downstream */, "max-size-buffers", 1,
                "max-size-bytes", 0, "max-size-time", (guint64) 0, NULL);
  g_object_set (a_sink, "sync", FALSE, "async", FALSE, NULL);
  g_object_set (v_sink, "drop", TRUE, "max-buffers", 1, "sync", FALSE, "async", FALSE, NULL);

  if (!link_chain (error, queue, convert, tee, a_queue, a_scale, a_convert, a_filter, a_sink,
                   NULL) ||
      !link_chain (error, tee, v_queue, v_convert, v_filter, v_sink, NULL))
    return NULL;

  add_probe (queue, "sink", GST_PAD_PROBE_TYPE_BUFFER, first_frame_cb, state);
  add_probe (queue, "sink", GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
             count_video_cb, state);
  add_probe (a_queue, "sink", GST_PAD_PROBE_TYPE_BUFFER, throttle_analysis_cb, state);
  add_probe (v_queue, "sink", GST_PAD_PROBE_TYPE_BUFFER, gate_view_cb, state);
  add_probe (a_sink, "sink", GST_PAD_PROBE_TYPE_BUFFER, analyse_video_cb, state);
  add_ghost_pad (bin, queue, "sink", "sink");

  return return_floating (g_steal_pointer (&bin));
}

/* Analysis */

/* The power of @x at @freq Hz by the Goertzel recurrence, which evaluates the
 * discrete-time Fourier transform at any frequency, not only at DFT bins. */
static double
goertzel_power (const double *x,
                gsize         n,
                double        freq,
                guint         rate)
{
  double coeff = 2.0 * cos (2.0 * G_PI * freq / rate);
  double s1 = 0.0, s2 = 0.0;

  for (gsize i = 0; i < n; i++) {
    double s = x[i] + coeff * s1 - s2;

    s2 = s1;
    s1 = s;
  }
  return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

/**
 * parley_media_dominant_frequency:
 * @samples: (array length=n_samples): mono signed 16-bit samples
 * @n_samples: the number of samples
 * @rate: the sample rate in Hz
 *
 * Finds the strongest tone in @samples: a Hann-windowed Fourier scan from 100 Hz to
 * 4 kHz in 5 Hz steps, refined to a fraction of a hertz around the peak. Signals
 * quieter than -80 dBFS count as silence.
 *
 * Returns: the frequency in Hz, or 0 for silence
 */
double
parley_media_dominant_frequency (const gint16 *samples,
                                 gsize         n_samples,
                                 guint         rate)
{
  g_autofree double *x = NULL;
  double best_freq = 0.0, best_power = -1.0;
  double step = 0.25;
  double lo, hi, p_prev, p_mid, p_next, denom;
  double theta_cos, c, c_prev;

  g_return_val_if_fail (samples != NULL || n_samples == 0, 0.0);

  if (n_samples < 2 || rate == 0)
    return 0.0;
  if (level_dbfs (samples, n_samples) < -80.0)
    return 0.0;

  /* The Hann window 0.5 - 0.5 cos (i theta), with the cosine by the Chebyshev
   * recurrence cos ((i + 1) theta) = 2 cos theta cos (i theta) - cos ((i - 1) theta). */
  x = g_new (double, n_samples);
  theta_cos = cos (2.0 * G_PI / (n_samples - 1));
  c_prev = theta_cos;     /* cos (-theta) */
  c = 1.0;                /* cos (0) */
  for (gsize i = 0; i < n_samples; i++) {
    double c_next = 2.0 * theta_cos * c - c_prev;

    x[i] = (0.5 - 0.5 * c) * samples[i];
    c_prev = c;
    c = c_next;
  }

  for (double f = 100.0; f <= 4000.0; f += 5.0) {
    double power = goertzel_power (x, n_samples, f, rate);

    if (power > best_power) {
      best_power = power;
      best_freq = f;
    }
  }

  /* Refine between the coarse neighbours of the peak, then interpolate the
   * parabola through the finest step around the best point. */
  lo = MAX (best_freq - 5.0, 1.0);
  hi = best_freq + 5.0;
  for (double f = lo; f <= hi; f += step) {
    double power = goertzel_power (x, n_samples, f, rate);

    if (power > best_power) {
      best_power = power;
      best_freq = f;
    }
  }
  p_prev = goertzel_power (x, n_samples, best_freq - step, rate);
  p_mid = best_power;
  p_next = goertzel_power (x, n_samples, best_freq + step, rate);
  denom = p_prev - 2.0 * p_mid + p_next;
  if (denom < 0.0) {
    double shift = 0.5 * (p_prev - p_next) / denom;

    if (shift >= -1.0 && shift <= 1.0)
      best_freq += shift * step;
  }
  return best_freq;
}

/* Elements of a call's pipelines (webrtcbin pulls in nice, DTLS, SRTP, SCTP and RTP). */
static const char * const preload_factories[] = {
  "webrtcbin", "rtpbin", "nicesrc", "nicesink", "dtlssrtpenc", "dtlssrtpdec", "srtpenc",
  "srtpdec", "opusenc", "opusdec", "rtpopuspay", "rtpopusdepay", "vp8enc", "vp8dec",
  "rtpvp8pay", "rtpvp8depay", "audiotestsrc", "videotestsrc", "audioconvert", "audioresample",
  "videoconvert", "videoscale", "videorate", "volume", "webrtcdsp", "webrtcechoprobe", "appsink",
  "autoaudiosrc", "autoaudiosink",
};

static gpointer
preload_thread (gpointer data)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr(GstElement) dtls = NULL;
  g_autofree char *pem = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (preload_factories); i++) {
    g_autoptr(GstPluginFeature) feature =
      GST_PLUGIN_FEATURE (gst_element_factory_find (preload_factories[i]));
    g_autoptr(GstPluginFeature) loaded = NULL;

    if (feature != NULL)
      loaded = gst_plugin_feature_load (feature);
  }
  /* The first DTLS element of a process generates its certificate; reading it does that. */
  dtls = gst_element_factory_make ("dtlsdec", NULL);
  if (dtls != NULL) {
    gst_object_ref_sink (dtls);
    g_object_get (dtls, "pem", &pem, NULL);
  }
  g_debug ("Preloaded the call plugins in %.0f ms", (g_get_monotonic_time () - start) / 1000.0);
  return NULL;
}

static GMutex preload_lock;
static GThread *preload_thread_handle;
static gboolean preload_started;

/**
 * parley_media_preload:
 *
 * Loads the GStreamer plugins of a call and the process's DTLS certificate
 * on a thread of its own, once per process, so that the first call does not
 * wait for them. Returns at once; gst_init() must have been called. Whoever
 * starts it calls parley_media_preload_finish() before the process may exit.
 */
void
parley_media_preload (void)
{
  g_mutex_lock (&preload_lock);
  if (!preload_started) {
    preload_started = TRUE;
    preload_thread_handle = g_thread_new ("parley-preload", preload_thread, NULL);
  }
  g_mutex_unlock (&preload_lock);
}

/**
 * parley_media_preload_finish:
 *
 * Waits for the thread of parley_media_preload(), if it still runs: a
 * process must not exit while it generates the DTLS certificate (OpenSSL's
 * exit handlers would pull its state away). Cheap once the thread ended.
 */
void
parley_media_preload_finish (void)
{
  GThread *thread;

  g_mutex_lock (&preload_lock);
  thread = g_steal_pointer (&preload_thread_handle);
  g_mutex_unlock (&preload_lock);
  if (thread != NULL)
    g_thread_join (thread);
}
