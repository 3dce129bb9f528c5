/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* A real parley-server process in a temporary directory. */
typedef struct {
  char *dir;
  char *db_path;
  char *config_path;
  char **extra_env;
  GSubprocess *process;
  guint port;
  char *base_url;
} ParleyTestServer;

ParleyTestServer *parley_test_server_new      (const char       *extra_config,
                                               const char *const *extra_env);
void              parley_test_server_start    (ParleyTestServer *server);
void              parley_test_server_kill     (ParleyTestServer *server,
                                               int               signum);
void              parley_test_server_free     (ParleyTestServer *server);
char             *parley_test_server_url      (ParleyTestServer *server,
                                               const char       *path);

/* Synchronous HTTP helpers (fine in tests). */
JsonObject       *parley_test_http            (ParleyTestServer *server,
                                               const char       *method,
                                               const char       *path,
                                               const char       *token,
                                               const char       *body,
                                               guint            *status);
char             *parley_test_register_login  (ParleyTestServer *server,
                                               const char       *username,
                                               char            **out_user_id);

/* A raw WebSocket client that queues what it receives. */
typedef struct {
  SoupSession *session;
  SoupWebsocketConnection *conn;
  GQueue frames;                  /* of JsonObject */
  gboolean closed;
  gushort close_code;
} ParleyTestWs;

ParleyTestWs     *parley_test_ws_connect      (ParleyTestServer *server,
                                               const char       *token,
                                               GError          **error);
void              parley_test_ws_send         (ParleyTestWs     *ws,
                                               const char       *format,
                                               ...) G_GNUC_PRINTF (2, 3);
void              parley_test_ws_send_raw     (ParleyTestWs     *ws,
                                               const char       *text,
                                               gsize             len);
JsonObject       *parley_test_ws_expect       (ParleyTestWs     *ws,
                                               const char       *type);
JsonObject       *parley_test_ws_expect_ref   (ParleyTestWs     *ws,
                                               const char       *type,
                                               const char       *ref);
guint             parley_test_ws_count        (ParleyTestWs     *ws,
                                               const char       *type);
void              parley_test_ws_settle       (ParleyTestWs     *ws);
gboolean          parley_test_ws_wait_closed  (ParleyTestWs     *ws);
void              parley_test_ws_free         (ParleyTestWs     *ws);

gboolean          parley_test_wait_until      (gboolean        (*done) (gpointer data),
                                               gpointer          data,
                                               guint             timeout_ms);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyTestServer, parley_test_server_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyTestWs, parley_test_ws_free)

G_END_DECLS
