/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-media-settings"

#include "config.h"

#include "parley-media-settings.h"

/**
 * ParleyMediaSettings:
 *
 * What a call sends and how it plays what it receives.
 *
 * One object is shared by all calls of a client. The media code reads it when a
 * call builds its sources and sinks, so changes apply to the next call.
 *
 * With [property@MediaSettings:test-media] set, calls send a sine tone and a
 * videotestsrc pattern instead of capturing from devices, and decoded media only
 * goes to the analysers (no playback).
 */

#define DEFAULT_TEST_TONE       440.0
#define DEFAULT_TEST_PATTERN    "smpte"
#define DEFAULT_VIDEO_WIDTH     640
#define DEFAULT_VIDEO_HEIGHT    480
#define DEFAULT_VIDEO_FRAMERATE 30
#define DEFAULT_JITTER_LATENCY  20

struct _ParleyMediaSettings {
  GObject    parent_instance;

  gboolean   test_media;
  double     test_tone;
  char      *test_pattern;
  gboolean   test_dsp;
  GstDevice *microphone;
  GstDevice *camera;
  GstDevice *speaker;
  gboolean   echo_cancellation;
  gboolean   noise_suppression;
  guint      video_width;
  guint      video_height;
  guint      video_framerate;
  guint      jitter_latency;
  gboolean   realtime;
};

G_DEFINE_FINAL_TYPE (ParleyMediaSettings, parley_media_settings, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_TEST_MEDIA,
  PROP_TEST_TONE,
  PROP_TEST_PATTERN,
  PROP_TEST_DSP,
  PROP_MICROPHONE,
  PROP_CAMERA,
  PROP_SPEAKER,
  PROP_ECHO_CANCELLATION,
  PROP_NOISE_SUPPRESSION,
  PROP_VIDEO_WIDTH,
  PROP_VIDEO_HEIGHT,
  PROP_VIDEO_FRAMERATE,
  PROP_JITTER_LATENCY,
  PROP_REALTIME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
set_device (ParleyMediaSettings *self,
            GstDevice          **slot,
            GstDevice           *device,
            guint                prop_id)
{
  if (g_set_object (slot, device))
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

static void
set_uint (ParleyMediaSettings *self,
          guint               *slot,
          guint                value,
          guint                prop_id)
{
  if (*slot == value)
    return;
  *slot = value;
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

static void
parley_media_settings_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  ParleyMediaSettings *self = PARLEY_MEDIA_SETTINGS (object);

  switch (prop_id) {
  case PROP_TEST_MEDIA:
    g_value_set_boolean (value, self->test_media);
    break;
  case PROP_TEST_TONE:
    g_value_set_double (value, self->test_tone);
    break;
  case PROP_TEST_PATTERN:
    g_value_set_string (value, self->test_pattern);
    break;
  case PROP_TEST_DSP:
    g_value_set_boolean (value, self->test_dsp);
    break;
  case PROP_MICROPHONE:
    g_value_set_object (value, self->microphone);
    break;
  case PROP_CAMERA:
    g_value_set_object (value, self->camera);
    break;
  case PROP_SPEAKER:
    g_value_set_object (value, self->speaker);
    break;
  case PROP_REALTIME:
    g_value_set_boolean (value, self->realtime);
    break;
  case PROP_ECHO_CANCELLATION:
    g_value_set_boolean (value, self->echo_cancellation);
    break;
  case PROP_NOISE_SUPPRESSION:
    g_value_set_boolean (value, self->noise_suppression);
    break;
  case PROP_VIDEO_WIDTH:
    g_value_set_uint (value, self->video_width);
    break;
  case PROP_VIDEO_HEIGHT:
    g_value_set_uint (value, self->video_height);
    break;
  case PROP_VIDEO_FRAMERATE:
    g_value_set_uint (value, self->video_framerate);
    break;
  case PROP_JITTER_LATENCY:
    g_value_set_uint (value, self->jitter_latency);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_media_settings_set_property (GObject      *object,
                                    guint         prop_id,
                                    const GValue *value,
                                    GParamSpec   *pspec)
{
  ParleyMediaSettings *self = PARLEY_MEDIA_SETTINGS (object);

  switch (prop_id) {
  case PROP_TEST_MEDIA:
    parley_media_settings_set_test_media (self, g_value_get_boolean (value));
    break;
  case PROP_TEST_TONE:
    parley_media_settings_set_test_tone (self, g_value_get_double (value));
    break;
  case PROP_TEST_PATTERN:
    parley_media_settings_set_test_pattern (self, g_value_get_string (value));
    break;
  case PROP_TEST_DSP:
    parley_media_settings_set_test_dsp (self, g_value_get_boolean (value));
    break;
  case PROP_MICROPHONE:
    parley_media_settings_set_microphone (self, g_value_get_object (value));
    break;
  case PROP_CAMERA:
    parley_media_settings_set_camera (self, g_value_get_object (value));
    break;
  case PROP_SPEAKER:
    parley_media_settings_set_speaker (self, g_value_get_object (value));
    break;
  case PROP_REALTIME:
    parley_media_settings_set_realtime (self, g_value_get_boolean (value));
    break;
  case PROP_ECHO_CANCELLATION:
    parley_media_settings_set_echo_cancellation (self, g_value_get_boolean (value));
    break;
  case PROP_NOISE_SUPPRESSION:
    parley_media_settings_set_noise_suppression (self, g_value_get_boolean (value));
    break;
  case PROP_VIDEO_WIDTH:
    set_uint (self, &self->video_width, g_value_get_uint (value), PROP_VIDEO_WIDTH);
    break;
  case PROP_VIDEO_HEIGHT:
    set_uint (self, &self->video_height, g_value_get_uint (value), PROP_VIDEO_HEIGHT);
    break;
  case PROP_VIDEO_FRAMERATE:
    set_uint (self, &self->video_framerate, g_value_get_uint (value), PROP_VIDEO_FRAMERATE);
    break;
  case PROP_JITTER_LATENCY:
    parley_media_settings_set_jitter_latency (self, g_value_get_uint (value));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_media_settings_dispose (GObject *object)
{
  ParleyMediaSettings *self = PARLEY_MEDIA_SETTINGS (object);

  g_clear_object (&self->microphone);
  g_clear_object (&self->camera);
  g_clear_object (&self->speaker);

  G_OBJECT_CLASS (parley_media_settings_parent_class)->dispose (object);
}

static void
parley_media_settings_finalize (GObject *object)
{
  ParleyMediaSettings *self = PARLEY_MEDIA_SETTINGS (object);

  g_clear_pointer (&self->test_pattern, g_free);

  G_OBJECT_CLASS (parley_media_settings_parent_class)->finalize (object);
}

static void
parley_media_settings_class_init (ParleyMediaSettingsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = parley_media_settings_get_property;
  object_class->set_property = parley_media_settings_set_property;
  object_class->dispose = parley_media_settings_dispose;
  object_class->finalize = parley_media_settings_finalize;

  /**
   * ParleyMediaSettings:test-media:
   *
   * Whether calls send generated media (a sine tone and a test pattern) instead of
   * capturing from devices, and analyse received media without playing it.
   */
  properties[PROP_TEST_MEDIA] =
    g_param_spec_boolean ("test-media", NULL, NULL, FALSE, flags);

  /**
   * ParleyMediaSettings:test-tone:
   *
   * The frequency in Hz of the sine tone that the test audio source sends.
   */
  properties[PROP_TEST_TONE] =
    g_param_spec_double ("test-tone", NULL, NULL, 1.0, 20000.0, DEFAULT_TEST_TONE, flags);

  /**
   * ParleyMediaSettings:test-pattern:
   *
   * The videotestsrc pattern nick (for example "smpte", "red", "ball") of the test
   * video source.
   */
  properties[PROP_TEST_PATTERN] =
    g_param_spec_string ("test-pattern", NULL, NULL, DEFAULT_TEST_PATTERN, flags);

  /**
   * ParleyMediaSettings:test-dsp:
   *
   * Whether the test audio source runs echo cancellation and noise suppression as
   * [property@MediaSettings:echo-cancellation] and
   * [property@MediaSettings:noise-suppression] say. Off by default so that the test
   * tone stays pure; devices always follow those two settings.
   */
  properties[PROP_TEST_DSP] =
    g_param_spec_boolean ("test-dsp", NULL, NULL, FALSE, flags);

  /**
   * ParleyMediaSettings:microphone:
   *
   * The microphone to capture from, or %NULL for the system default.
   */
  properties[PROP_MICROPHONE] =
    g_param_spec_object ("microphone", NULL, NULL, GST_TYPE_DEVICE, flags);

  /**
   * ParleyMediaSettings:camera:
   *
   * The camera to capture from, or %NULL for the first camera found.
   */
  properties[PROP_CAMERA] =
    g_param_spec_object ("camera", NULL, NULL, GST_TYPE_DEVICE, flags);

  /**
   * ParleyMediaSettings:speaker:
   *
   * The device to play received audio on, or %NULL for the system default.
   */
  properties[PROP_SPEAKER] =
    g_param_spec_object ("speaker", NULL, NULL, GST_TYPE_DEVICE, flags);

  /**
   * ParleyMediaSettings:realtime:
   *
   * Whether the threads that carry data channel messages and incoming
   * packets of calls set up from now on ask for real-time priority, where
   * the system grants it (otherwise they get a short time slice). They
   * only ever run briefly; with the media pipelines keeping the CPUs busy,
   * they are what keeps a game's round trips short.
   */
  properties[PROP_REALTIME] =
    g_param_spec_boolean ("realtime", NULL, NULL, TRUE, flags);

  /**
   * ParleyMediaSettings:echo-cancellation:
   *
   * Whether the microphone signal goes through acoustic echo cancellation.
   */
  properties[PROP_ECHO_CANCELLATION] =
    g_param_spec_boolean ("echo-cancellation", NULL, NULL, TRUE, flags);

  /**
   * ParleyMediaSettings:noise-suppression:
   *
   * Whether the microphone signal goes through noise suppression.
   */
  properties[PROP_NOISE_SUPPRESSION] =
    g_param_spec_boolean ("noise-suppression", NULL, NULL, TRUE, flags);

  /**
   * ParleyMediaSettings:video-width:
   *
   * The width in pixels of the video that calls send.
   */
  properties[PROP_VIDEO_WIDTH] =
    g_param_spec_uint ("video-width", NULL, NULL, 16, 7680, DEFAULT_VIDEO_WIDTH, flags);

  /**
   * ParleyMediaSettings:video-height:
   *
   * The height in pixels of the video that calls send.
   */
  properties[PROP_VIDEO_HEIGHT] =
    g_param_spec_uint ("video-height", NULL, NULL, 16, 4320, DEFAULT_VIDEO_HEIGHT, flags);

  /**
   * ParleyMediaSettings:video-framerate:
   *
   * The frame rate in frames per second of the video that calls send.
   */
  properties[PROP_VIDEO_FRAMERATE] =
    g_param_spec_uint ("video-framerate", NULL, NULL, 1, 120, DEFAULT_VIDEO_FRAMERATE, flags);

  /**
   * ParleyMediaSettings:jitter-latency:
   *
   * The latency in milliseconds of the jitter buffer of received media.
   */
  properties[PROP_JITTER_LATENCY] =
    g_param_spec_uint ("jitter-latency", NULL, NULL, 0, 10000, DEFAULT_JITTER_LATENCY, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
parley_media_settings_init (ParleyMediaSettings *self)
{
  self->test_tone = DEFAULT_TEST_TONE;
  self->test_pattern = g_strdup (DEFAULT_TEST_PATTERN);
  self->echo_cancellation = TRUE;
  self->realtime = TRUE;
  self->noise_suppression = TRUE;
  self->video_width = DEFAULT_VIDEO_WIDTH;
  self->video_height = DEFAULT_VIDEO_HEIGHT;
  self->video_framerate = DEFAULT_VIDEO_FRAMERATE;
  self->jitter_latency = DEFAULT_JITTER_LATENCY;
}

/**
 * parley_media_settings_new:
 *
 * Creates media settings with the defaults: devices, echo cancellation and noise
 * suppression on, 640x480 at 30 frames per second, 20 ms jitter buffer.
 *
 * Returns: (transfer full): new media settings
 */
ParleyMediaSettings *
parley_media_settings_new (void)
{
  return g_object_new (PARLEY_TYPE_MEDIA_SETTINGS, NULL);
}

/**
 * parley_media_settings_get_test_media:
 * @self: the settings
 *
 * Returns: whether calls use generated test media instead of devices
 */
gboolean
parley_media_settings_get_test_media (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), FALSE);

  return self->test_media;
}

/**
 * parley_media_settings_set_test_media:
 * @self: the settings
 * @test_media: whether to use generated media
 *
 * Sets [property@MediaSettings:test-media].
 */
void
parley_media_settings_set_test_media (ParleyMediaSettings *self,
                                      gboolean             test_media)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));

  test_media = !!test_media;
  if (self->test_media == test_media)
    return;
  self->test_media = test_media;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TEST_MEDIA]);
}

/**
 * parley_media_settings_get_test_tone:
 * @self: the settings
 *
 * Returns: the frequency in Hz of the test tone
 */
double
parley_media_settings_get_test_tone (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), DEFAULT_TEST_TONE);

  return self->test_tone;
}

/**
 * parley_media_settings_set_test_tone:
 * @self: the settings
 * @hz: the frequency in Hz, between 1 and 20000
 *
 * Sets [property@MediaSettings:test-tone].
 */
void
parley_media_settings_set_test_tone (ParleyMediaSettings *self,
                                     double               hz)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));
  g_return_if_fail (hz >= 1.0 && hz <= 20000.0);

  if (self->test_tone == hz)
    return;
  self->test_tone = hz;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TEST_TONE]);
}

/**
 * parley_media_settings_get_test_pattern:
 * @self: the settings
 *
 * Returns: the videotestsrc pattern nick of the test video
 */
const char *
parley_media_settings_get_test_pattern (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), NULL);

  return self->test_pattern;
}

/**
 * parley_media_settings_set_test_pattern:
 * @self: the settings
 * @pattern: (nullable): a videotestsrc pattern nick, %NULL for "smpte"
 *
 * Sets [property@MediaSettings:test-pattern]. The name is checked when the video
 * source is created: an unknown name makes parley_media_create_video_source() fail.
 */
void
parley_media_settings_set_test_pattern (ParleyMediaSettings *self,
                                        const char          *pattern)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));

  if (pattern == NULL)
    pattern = DEFAULT_TEST_PATTERN;
  if (g_strcmp0 (self->test_pattern, pattern) == 0)
    return;
  g_free (self->test_pattern);
  self->test_pattern = g_strdup (pattern);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TEST_PATTERN]);
}

/**
 * parley_media_settings_get_test_dsp:
 * @self: the settings
 *
 * Returns: whether the test audio source runs the audio processing
 */
gboolean
parley_media_settings_get_test_dsp (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), FALSE);

  return self->test_dsp;
}

/**
 * parley_media_settings_set_test_dsp:
 * @self: the settings
 * @test_dsp: whether the test audio source runs the audio processing
 *
 * Sets [property@MediaSettings:test-dsp].
 */
void
parley_media_settings_set_test_dsp (ParleyMediaSettings *self,
                                    gboolean             test_dsp)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));

  test_dsp = !!test_dsp;
  if (self->test_dsp == test_dsp)
    return;
  self->test_dsp = test_dsp;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TEST_DSP]);
}

/**
 * parley_media_settings_get_microphone:
 * @self: the settings
 *
 * Returns: (transfer none) (nullable): the chosen microphone, %NULL for the default
 */
GstDevice *
parley_media_settings_get_microphone (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), NULL);

  return self->microphone;
}

/**
 * parley_media_settings_set_microphone:
 * @self: the settings
 * @device: (nullable): an Audio/Source device, %NULL for the default
 *
 * Sets [property@MediaSettings:microphone].
 */
void
parley_media_settings_set_microphone (ParleyMediaSettings *self,
                                      GstDevice           *device)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));
  g_return_if_fail (device == NULL || GST_IS_DEVICE (device));

  set_device (self, &self->microphone, device, PROP_MICROPHONE);
}

/**
 * parley_media_settings_get_camera:
 * @self: the settings
 *
 * Returns: (transfer none) (nullable): the chosen camera, %NULL for the first one
 */
GstDevice *
parley_media_settings_get_camera (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), NULL);

  return self->camera;
}

/**
 * parley_media_settings_set_camera:
 * @self: the settings
 * @device: (nullable): a Video/Source device, %NULL for the first camera
 *
 * Sets [property@MediaSettings:camera].
 */
void
parley_media_settings_set_camera (ParleyMediaSettings *self,
                                  GstDevice           *device)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));
  g_return_if_fail (device == NULL || GST_IS_DEVICE (device));

  set_device (self, &self->camera, device, PROP_CAMERA);
}

/**
 * parley_media_settings_get_speaker:
 * @self: the settings
 *
 * Returns: (transfer none) (nullable): the chosen speaker, %NULL for the default
 */
GstDevice *
parley_media_settings_get_speaker (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), NULL);

  return self->speaker;
}

/**
 * parley_media_settings_set_speaker:
 * @self: the settings
 * @device: (nullable): an Audio/Sink device, %NULL for the default
 *
 * Sets [property@MediaSettings:speaker].
 */
void
parley_media_settings_set_speaker (ParleyMediaSettings *self,
                                   GstDevice           *device)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));
  g_return_if_fail (device == NULL || GST_IS_DEVICE (device));

  set_device (self, &self->speaker, device, PROP_SPEAKER);
}

/**
 * parley_media_settings_get_echo_cancellation:
 * @self: the settings
 *
 * Returns: whether echo cancellation is on
 */
gboolean
parley_media_settings_get_echo_cancellation (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), FALSE);

  return self->echo_cancellation;
}

/**
 * parley_media_settings_set_echo_cancellation:
 * @self: the settings
 * @enabled: whether to cancel echo
 *
 * Sets [property@MediaSettings:echo-cancellation].
 */
void
parley_media_settings_set_echo_cancellation (ParleyMediaSettings *self,
                                             gboolean             enabled)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));

  enabled = !!enabled;
  if (self->echo_cancellation == enabled)
    return;
  self->echo_cancellation = enabled;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ECHO_CANCELLATION]);
}

/**
 * parley_media_settings_get_realtime:
 * @self: the settings
 *
 * Returns: whether the data path of calls asks for real-time priority
 */
gboolean
parley_media_settings_get_realtime (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), FALSE);

  return self->realtime;
}

/**
 * parley_media_settings_set_realtime:
 * @self: the settings
 * @enabled: whether to ask
 *
 * Sets [property@MediaSettings:realtime].
 */
void
parley_media_settings_set_realtime (ParleyMediaSettings *self,
                                    gboolean             enabled)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));

  enabled = !!enabled;
  if (self->realtime == enabled)
    return;
  self->realtime = enabled;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REALTIME]);
}

/**
 * parley_media_settings_get_noise_suppression:
 * @self: the settings
 *
 * Returns: whether noise suppression is on
 */
gboolean
parley_media_settings_get_noise_suppression (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), FALSE);

  return self->noise_suppression;
}

/**
 * parley_media_settings_set_noise_suppression:
 * @self: the settings
 * @enabled: whether to suppress noise
 *
 * Sets [property@MediaSettings:noise-suppression].
 */
void
parley_media_settings_set_noise_suppression (ParleyMediaSettings *self,
                                             gboolean             enabled)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));

  enabled = !!enabled;
  if (self->noise_suppression == enabled)
    return;
  self->noise_suppression = enabled;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NOISE_SUPPRESSION]);
}

/**
 * parley_media_settings_get_video_format:
 * @self: the settings
 * @width: (out) (optional): the width in pixels
 * @height: (out) (optional): the height in pixels
 * @framerate: (out) (optional): the frame rate in frames per second
 *
 * Gets the format of the video that calls send.
 */
void
parley_media_settings_get_video_format (ParleyMediaSettings *self,
                                        guint               *width,
                                        guint               *height,
                                        guint               *framerate)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));

  if (width != NULL)
    *width = self->video_width;
  if (height != NULL)
    *height = self->video_height;
  if (framerate != NULL)
    *framerate = self->video_framerate;
}

/**
 * parley_media_settings_set_video_format:
 * @self: the settings
 * @width: the width in pixels (16 to 7680)
 * @height: the height in pixels (16 to 4320)
 * @framerate: the frame rate in frames per second (1 to 120)
 *
 * Sets the video-width, video-height and video-framerate properties at once.
 */
void
parley_media_settings_set_video_format (ParleyMediaSettings *self,
                                        guint                width,
                                        guint                height,
                                        guint                framerate)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));
  g_return_if_fail (width >= 16 && width <= 7680);
  g_return_if_fail (height >= 16 && height <= 4320);
  g_return_if_fail (framerate >= 1 && framerate <= 120);

  g_object_freeze_notify (G_OBJECT (self));
  set_uint (self, &self->video_width, width, PROP_VIDEO_WIDTH);
  set_uint (self, &self->video_height, height, PROP_VIDEO_HEIGHT);
  set_uint (self, &self->video_framerate, framerate, PROP_VIDEO_FRAMERATE);
  g_object_thaw_notify (G_OBJECT (self));
}

/**
 * parley_media_settings_get_jitter_latency:
 * @self: the settings
 *
 * Returns: the jitter buffer latency in milliseconds
 */
guint
parley_media_settings_get_jitter_latency (ParleyMediaSettings *self)
{
  g_return_val_if_fail (PARLEY_IS_MEDIA_SETTINGS (self), DEFAULT_JITTER_LATENCY);

  return self->jitter_latency;
}

/**
 * parley_media_settings_set_jitter_latency:
 * @self: the settings
 * @ms: the latency in milliseconds (at most 10000)
 *
 * Sets [property@MediaSettings:jitter-latency].
 */
void
parley_media_settings_set_jitter_latency (ParleyMediaSettings *self,
                                          guint                ms)
{
  g_return_if_fail (PARLEY_IS_MEDIA_SETTINGS (self));
  g_return_if_fail (ms <= 10000);

  set_uint (self, &self->jitter_latency, ms, PROP_JITTER_LATENCY);
}
