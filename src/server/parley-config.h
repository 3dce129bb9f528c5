/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PARLEY_TOKEN_KEY_LEN 32

/**
 * ParleyConfig:
 *
 * The server's configuration, merged from (in rising priority) built-in
 * defaults, a GKeyFile config file, `PARLEY_*` environment variables and
 * command line options. Read-only once the server runs; shared by threads.
 */
typedef struct {
  char *listen_address;           /* [server] listen, default "127.0.0.1" */
  guint port;                     /* [server] port, default 8421; 0 picks a free one */
  char *db_path;                  /* [server] database, default "parley.db" */
  guint listen_backlog;           /* [server] backlog, default 4096 */
  guint64 background_cpus;        /* [server] background-cpus, a bit per CPU; 0: any */

  guint8 token_key[PARLEY_TOKEN_KEY_LEN]; /* [auth] token-key (base64), else kept in DB.key */
  gboolean has_token_key;
  gint64 access_ttl;              /* [auth] access-ttl seconds, default 900 */
  gint64 refresh_ttl;             /* [auth] refresh-ttl seconds, default 30 days */
  guint64 pwhash_opslimit;        /* [auth] argon2-ops, default: interactive */
  gsize pwhash_memlimit;          /* [auth] argon2-mem-kib * 1024 */
  guint login_limit_per_user;     /* [auth] login-limit-user, default 10 */
  guint login_limit_per_address;  /* [auth] login-limit-address, default 30 */
  guint login_limit_window;       /* [auth] login-limit-window seconds, default 60 */

  char *turn_secret;              /* [turn] secret or PARLEY_TURN_SECRET; NULL disables TURN */
  char **turn_uris;               /* [turn] uris, e.g. "turn:127.0.0.1:3478?transport=udp" */
  guint turn_ttl;                 /* [turn] ttl seconds, default 86400 */

  gsize max_frame;                /* [ws] max-frame, default 65536 */
  guint rate_burst;               /* [ws] rate-burst, default 200 frames */
  guint rate_per_second;          /* [ws] rate, default 100 frames per second */
  guint auth_timeout;             /* [ws] auth-timeout seconds, default 5 */
  guint ping_interval;            /* [ws] ping-interval seconds, default 30 */
  guint idle_timeout;             /* [ws] idle-timeout seconds, default 75 */
  guint replay_batch;             /* [ws] replay-batch, default 100 stored messages per loop */
} ParleyConfig;

ParleyConfig *parley_config_new       (void);
gboolean      parley_config_load_file (ParleyConfig  *self,
                                       const char    *path,
                                       GError       **error);
gboolean      parley_config_load_env  (ParleyConfig  *self,
                                       GError       **error);
gboolean      parley_config_validate  (ParleyConfig  *self,
                                       GError       **error);
gboolean      parley_config_ensure_token_key (ParleyConfig *self,
                                              GError      **error);
void          parley_config_free      (ParleyConfig  *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyConfig, parley_config_free)

G_END_DECLS
