/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "parley-call-manager.h"
#include "parley-client.h"
#include "parley-peer-link.h"

G_BEGIN_DECLS

/* The state of one parley-cli run, shared by the command implementations. */
typedef struct {
  GMainLoop           *loop;
  ParleyClient        *client;
  const char          *command;
  char               **args;
  int                  n_args;
  int                  exit_code;
  int                  count;
  int                  received;
  int                  timeout_s;
  char                *peer_id;
  char                *message_id;
  gboolean             finished;

  /* Calls (parley-cli-call.c). */
  char                *profile_dir;
  ParleyCallManager   *calls;
  ParleyMediaSettings *media;
  ParleyCall          *call;
  GSocketService      *control;
  char                *control_path;
  gboolean             audio_only;
  gboolean             test_media;
  gboolean             relay_only;
  gboolean             no_realtime;
  gboolean             auto_answer;
  gboolean             no_echo_cancel;
  int                  duration_s;
  int                  max_calls;
  int                  calls_ended;
  int                  ring_timeout_s;
  int                  stats_interval_ms;
  double               tone_hz;
  char                *pattern;
  guint                duration_id;
  gboolean             call_connected;
  gboolean             media_started;
  int                  ping_count;    /* --ping */
  int                  ping_target;   /* pings of the current run */
  gint64               ping_run;      /* numbers the runs, to drop late replies */
  int                  ping_interval_ms;
  ParleyDataChannel   *ping_channel;
  gboolean             ping_on_link;  /* the current run goes over the call's ParleyLink */
  ParleyLink          *ping_link;
  ParleyCall          *ping_call;     /* the call ping_channel or ping_link belongs to */
  GArray              *ping_rtts;
  int                  ping_sent;
  guint                ping_id;
} Cli;

void         cli_finish        (Cli          *cli,
                                int           exit_code);
int          cli_exit_code_for (const GError *error);
void         cli_fail          (Cli          *cli,
                                const char   *what,
                                const GError *error);
void         cli_print_json    (JsonBuilder  *builder);
JsonBuilder *cli_begin_event   (const char   *event);
void         cli_add_string    (JsonBuilder  *builder,
                                const char   *name,
                                const char   *value);
void         cli_add_int       (JsonBuilder  *builder,
                                const char   *name,
                                gint64        value);
void         cli_end_and_print (JsonBuilder  *builder);
void         cli_add_user      (Cli          *cli,
                                JsonBuilder  *builder,
                                const char   *name,
                                const char   *user_id);

/* parley-cli-call.c */
gboolean     cli_calls_setup   (Cli          *cli,
                                GError      **error);
void         cli_calls_cleanup (Cli          *cli);
void         cli_call_start    (Cli          *cli);
void         cli_control_send  (Cli          *cli,
                                const char   *line);
void         cli_calls_list    (Cli          *cli);

G_END_DECLS
