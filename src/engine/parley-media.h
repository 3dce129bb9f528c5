/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gst/gst.h>

#include "parley-media-settings.h"

G_BEGIN_DECLS

/*
 * Media sources and sinks of a call, as GstBins that a #ParleyPeer links to
 * its encoders and decoders. The peer owns encoding (opus, vp8), RTP and
 * webrtcbin; this file owns capture, playback, audio processing and the
 * analysis that tests and the CLI use to prove media arrived.
 *
 * Sources have one always ghost pad "src" with raw media:
 *   audio: audio/x-raw, format=S16LE, rate=48000, channels=1 (after webrtcdsp when
 *          echo cancellation or noise suppression is on);
 *   video: video/x-raw, format=I420, width/height/framerate from the settings.
 * Sinks have one ghost pad "sink" and accept decoded raw media of any common format
 * (they convert themselves).
 *
 * Sinks post element messages on the bus (the peer forwards them as
 * ParleyPeer::media-report). Structure names and fields:
 *   "parley-first-frame"   kind=(string)"audio"|"video"  once, on the first decoded buffer
 *   "parley-audio-report"  frequency=(double) Hz of the strongest tone, level=(double) dBFS,
 *                          about every 500 ms of audio
 *   "parley-video-report"  width=(int), height=(int), frames=(uint64),
 *                          colors=(string) "RRGGBB RRGGBB ..." the mean colour of 8 patches
 *                          (4 columns x 2 rows, each patch centred in its cell and 1/4 of its
 *                          size), about every 500 ms of video
 * Video sinks also keep an appsink named "video-appsink" (RGBA, drop=true, max-buffers=1)
 * whose samples a GTK paintable can show; the peer forwards them as
 * ParleyPeer::remote-video-sample.
 */

GstElement *parley_media_create_audio_source (ParleyMediaSettings *settings,
                                              GError             **error);
GstElement *parley_media_create_video_source (ParleyMediaSettings *settings,
                                              GError             **error);
GstElement *parley_media_create_audio_sink   (ParleyMediaSettings *settings,
                                              GError             **error);
GstElement *parley_media_create_video_sink   (ParleyMediaSettings *settings,
                                              GError             **error);

/* All four return a floating reference (like gst_element_factory_make). With echo
 * cancellation the audio source owns a webrtcechoprobe that the audio sink of the same
 * call must host; parley_media_create_audio_sink() hosts the probe of the oldest source
 * whose probe is not in a sink yet, this one that of @source. */
GstElement *parley_media_create_audio_sink_for_source (ParleyMediaSettings *settings,
                                                       GstElement          *source,
                                                       GError             **error);

/* The appsink of a video sink gets RGBA frames only while the view is on (off at first). */
void        parley_media_video_sink_set_view (GstElement          *sink,
                                              gboolean             enabled);

/* Muting without renegotiation: audio sends silence, video sends black frames; the
 * stream keeps running. */
void        parley_media_source_set_muted    (GstElement          *source,
                                              gboolean             muted);
gboolean    parley_media_source_get_muted    (GstElement          *source);

/* Loads, on a thread of its own and once per process, the GStreamer plugins calls use and
 * the process's DTLS certificate (an RSA key: about 0.3 s here), so that the first call
 * does not wait for them. Returns at once. */
void        parley_media_preload             (void);
/* Waits for that thread if it still runs; call it before the process may exit. */
void        parley_media_preload_finish      (void);

/* The strongest frequency in @samples (mono S16, @rate Hz) by a windowed DFT scan from
 * 100 Hz to 4 kHz in 5 Hz steps; exposed for unit tests. Returns 0 for silence. */
double      parley_media_dominant_frequency  (const gint16        *samples,
                                              gsize                n_samples,
                                              guint                rate);

G_END_DECLS
