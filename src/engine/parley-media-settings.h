/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define PARLEY_TYPE_MEDIA_SETTINGS (parley_media_settings_get_type ())

G_DECLARE_FINAL_TYPE (ParleyMediaSettings, parley_media_settings, PARLEY, MEDIA_SETTINGS, GObject)

/*
 * What a call sends and how it plays what it receives. One object is shared
 * by all calls of a client; changes apply to the next call (device changes
 * also to a running one where the media code supports it).
 *
 * Properties (all G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY):
 *   test-media         gboolean  FALSE  audiotestsrc/videotestsrc instead of devices, and no
 *                                       playback (decoded media goes to analysers + fakesink)
 *   test-tone          gdouble   440.0  sine frequency in Hz of the test audio source
 *   test-pattern       char*     "smpte" videotestsrc pattern nick of the test video source
 *   test-dsp           gboolean  FALSE  in test-media mode, run webrtcdsp as echo-cancellation
 *                                       and noise-suppression say (off: the tone stays pure)
 *   microphone         GstDevice* NULL  NULL: the default source
 *   camera             GstDevice* NULL  NULL: the first camera
 *   speaker            GstDevice* NULL  NULL: the default sink
 *   echo-cancellation  gboolean  TRUE   webrtcdsp + webrtcechoprobe
 *   noise-suppression  gboolean  TRUE
 *   video-width        guint     640
 *   video-height       guint     480
 *   video-framerate    guint     30
 *   jitter-latency     guint     20     webrtcbin jitterbuffer latency in ms
 */

ParleyMediaSettings *parley_media_settings_new                (void);
gboolean             parley_media_settings_get_test_media     (ParleyMediaSettings *self);
void                 parley_media_settings_set_test_media     (ParleyMediaSettings *self,
                                                               gboolean             test_media);
double               parley_media_settings_get_test_tone      (ParleyMediaSettings *self);
void                 parley_media_settings_set_test_tone      (ParleyMediaSettings *self,
                                                               double               hz);
const char          *parley_media_settings_get_test_pattern   (ParleyMediaSettings *self);
void                 parley_media_settings_set_test_pattern   (ParleyMediaSettings *self,
                                                               const char          *pattern);
gboolean             parley_media_settings_get_test_dsp       (ParleyMediaSettings *self);
void                 parley_media_settings_set_test_dsp       (ParleyMediaSettings *self,
                                                               gboolean             test_dsp);
GstDevice           *parley_media_settings_get_microphone     (ParleyMediaSettings *self);
void                 parley_media_settings_set_microphone     (ParleyMediaSettings *self,
                                                               GstDevice           *device);
GstDevice           *parley_media_settings_get_camera         (ParleyMediaSettings *self);
void                 parley_media_settings_set_camera         (ParleyMediaSettings *self,
                                                               GstDevice           *device);
GstDevice           *parley_media_settings_get_speaker        (ParleyMediaSettings *self);
void                 parley_media_settings_set_speaker        (ParleyMediaSettings *self,
                                                               GstDevice           *device);
gboolean             parley_media_settings_get_echo_cancellation (ParleyMediaSettings *self);
void                 parley_media_settings_set_echo_cancellation (ParleyMediaSettings *self,
                                                                  gboolean             enabled);
gboolean             parley_media_settings_get_noise_suppression (ParleyMediaSettings *self);
void                 parley_media_settings_set_noise_suppression (ParleyMediaSettings *self,
                                                                  gboolean             enabled);
void                 parley_media_settings_get_video_format   (ParleyMediaSettings *self,
                                                               guint               *width,
                                                               guint               *height,
                                                               guint               *framerate);
void                 parley_media_settings_set_video_format   (ParleyMediaSettings *self,
                                                               guint                width,
                                                               guint                height,
                                                               guint                framerate);
guint                parley_media_settings_get_jitter_latency (ParleyMediaSettings *self);
void                 parley_media_settings_set_jitter_latency (ParleyMediaSettings *self,
                                                               guint                ms);
gboolean             parley_media_settings_get_realtime       (ParleyMediaSettings *self);
void                 parley_media_settings_set_realtime       (ParleyMediaSettings *self,
                                                               gboolean             enabled);

G_END_DECLS
