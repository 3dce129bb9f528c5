/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "parley-http-api.h"
#include "parley-token.h"
#include "parley-test-utils.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sodium.h>
#include <string.h>

/* libsoup 3.2 leaks the GSocket of every server connection it accepts and
 * the local address of every listener; keep LeakSanitizer quiet about
 * exactly those allocation paths when the tests are built with sanitizers. */
const char *__lsan_default_suppressions (void);
const char *__asan_default_options (void);

/* GLib is built without frame pointers: unwind slowly so that the
 * suppression can see the whole allocation stack. */
const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

const char *
__lsan_default_suppressions (void)
{
  return "leak:g_socket_accept\n"
         "leak:soup_server_listen_local\n";
}

typedef struct {
  char *dir;
  char *path;
  ParleyConfig *config;
  ParleyStore *store;
  ParleyHttpApi *api;
  SoupServer *server;
  SoupSession *session;
  char *base;
  char *online_user;    /* the one user the presence query calls online */
} Fixture;

typedef struct {
  guint status;
  JsonNode *root;       /* NULL for an empty body */
  char *retry_after;
  char *allow;
} Response;

static void
response_clear (Response *r)
{
  g_clear_pointer (&r->root, json_node_unref);
  g_clear_pointer (&r->retry_after, g_free);
  g_clear_pointer (&r->allow, g_free);
}

static gboolean
online_cb (const char *user_id,
           gpointer    user_data)
{
  Fixture *f = user_data;

  return g_strcmp0 (user_id, f->online_user) == 0;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  GSList *uris;
  g_autofree char *uri = NULL;

  f->dir = g_dir_make_tmp ("parley-http-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "api.db", NULL);
  f->store = parley_store_open (f->path, NULL, NULL, &error);
  g_assert_no_error (error);

  /* A configuration filled by hand, with cheap Argon2id parameters. */
  f->config = g_new0 (ParleyConfig, 1);
  randombytes_buf (f->config->token_key, sizeof f->config->token_key);
  f->config->has_token_key = TRUE;
  f->config->access_ttl = 900;
  f->config->refresh_ttl = 3600;
  f->config->pwhash_opslimit = crypto_pwhash_OPSLIMIT_MIN;
  f->config->pwhash_memlimit = crypto_pwhash_MEMLIMIT_MIN;
  f->config->login_limit_per_user = 3;
  f->config->login_limit_per_address = 12;
  f->config->login_limit_window = 60;
  f->config->turn_secret = g_strdup ("turn-test-secret");
  f->config->turn_uris = g_new0 (char *, 3);
  f->config->turn_uris[0] = g_strdup ("turn:127.0.0.1:3478?transport=udp");
  f->config->turn_uris[1] = g_strdup ("turn:127.0.0.1:3478?transport=tcp");
  f->config->turn_ttl = 600;

  f->api = parley_http_api_new (f->config, f->store);
  parley_http_api_set_online_func (f->api, online_cb, f);

  f->server = soup_server_new (NULL, NULL);
  parley_http_api_add_handlers (f->api, f->server);
  g_assert_true (soup_server_listen_local (f->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->server);
  g_assert_nonnull (uris);
  uri = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  f->base = g_strndup (uri, strlen (uri) - (g_str_has_suffix (uri, "/") ? 1 : 0));

  f->session = soup_session_new ();
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GDir) dir = NULL;
  const char *name;

  /* The server closes the connections itself: libsoup 3.2 leaks idle
   * server connections that the client closes first. */
  soup_server_disconnect (f->server);
  g_clear_object (&f->session);
  /* Let pending idle work (closing connections) run. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_finalize_object (f->server);
  f->server = NULL;
  parley_http_api_free (f->api);
  parley_store_close (f->store);

  g_free (f->config->turn_secret);
  g_strfreev (f->config->turn_uris);
  g_free (f->config);

  /* The store's files: the log, its index, their WAL and shared memory. */
  dir = g_dir_open (f->dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *p = g_build_filename (f->dir, name, NULL);

    g_assert_cmpint (g_unlink (p), ==, 0);
  }
  g_assert_cmpint (g_rmdir (f->dir), ==, 0);
  g_free (f->path);
  g_free (f->dir);
  g_free (f->base);
  g_free (f->online_user);
}

typedef struct {
  GBytes *body;
  GError *error;
  gboolean done;
} SendData;

static void
send_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  SendData *d = user_data;

  d->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &d->error);
  d->done = TRUE;
}

static gboolean
timeout_cb (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_CONTINUE;
}

/* Sends a request and runs the main context (which also serves it) until
 * the answer is in. @body is sent as given; @stream_body sends it chunked. */
static Response
request_full (Fixture    *f,
              const char *method,
              const char *path,
              const char *body,
              gboolean    stream_body,
              const char *bearer)
{
  g_autofree char *uri = g_strconcat (f->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  SendData d = { NULL, NULL, FALSE };
  Response r = { 0 };
  SoupMessageHeaders *headers;
  gsize len;
  const char *data;
  guint timeout_id;
  gboolean timed_out = FALSE;

  g_assert_nonnull (msg);
  if (body != NULL) {
    if (stream_body) {
      g_autoptr(GInputStream) stream =
        g_memory_input_stream_new_from_data (g_strdup (body), strlen (body), g_free);
      soup_message_set_request_body (msg, "application/json", stream, -1);
    } else {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  }
  if (bearer != NULL) {
    g_autofree char *value = g_strconcat ("Bearer ", bearer, NULL);
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                  value);
  }

  soup_session_send_and_read_async (f->session, msg, G_PRIORITY_DEFAULT, NULL, send_done_cb, &d);
  timeout_id = g_timeout_add_seconds (30, timeout_cb, &timed_out);
  while (!d.done && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (timed_out);
  g_source_remove (timeout_id);
  g_assert_no_error (d.error);

  r.status = soup_message_get_status (msg);
  headers = soup_message_get_response_headers (msg);
  r.retry_after = g_strdup (soup_message_headers_get_one (headers, "Retry-After"));
  r.allow = g_strdup (soup_message_headers_get_one (headers, "Allow"));
  data = g_bytes_get_data (d.body, &len);
  if (len > 0) {
    g_autoptr(JsonParser) parser = json_parser_new ();
    g_autoptr(GError) error = NULL;

    g_assert_cmpstr (soup_message_headers_get_content_type (headers, NULL), ==,
                     "application/json");
    json_parser_load_from_data (parser, data, len, &error);
    g_assert_no_error (error);
    r.root = json_node_ref (json_parser_get_root (parser));
  }
  g_bytes_unref (d.body);
  return r;
}

static Response
request (Fixture    *f,
         const char *method,
         const char *path,
         const char *body,
         const char *bearer)
{
  return request_full (f, method, path, body, FALSE, bearer);
}

static JsonObject *
obj (Response *r)
{
  g_assert_nonnull (r->root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (r->root));
  return json_node_get_object (r->root);
}

static void
assert_error (Response   *r,
              guint       status,
              const char *code)
{
  JsonObject *error;

  g_assert_cmpuint (r->status, ==, status);
  error = json_object_get_object_member (obj (r), "error");
  g_assert_nonnull (error);
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, code);
  g_assert_true (json_object_has_member (error, "message"));
}

static char *
credentials_body (const char *username,
                  const char *password)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "username");
  json_builder_add_string_value (b, username);
  json_builder_set_member_name (b, "password");
  json_builder_add_string_value (b, password);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static char *
register_user (Fixture    *f,
               const char *username,
               const char *password)
{
  g_autofree char *body = credentials_body (username, password);
  Response r = request (f, "POST", "/api/register", body, NULL);
  char *user_id;

  g_assert_cmpuint (r.status, ==, 201);
  user_id = g_strdup (json_object_get_string_member (obj (&r), "userId"));
  response_clear (&r);
  return user_id;
}

/* Logs in and returns the answer's object members through out arguments. */
static void
login (Fixture     *f,
       const char  *username,
       const char  *password,
       char       **out_access,
       char       **out_refresh)
{
  g_autofree char *body = credentials_body (username, password);
  Response r = request (f, "POST", "/api/login", body, NULL);

  g_assert_cmpuint (r.status, ==, 200);
  if (out_access)
    *out_access = g_strdup (json_object_get_string_member (obj (&r), "accessToken"));
  if (out_refresh)
    *out_refresh = g_strdup (json_object_get_string_member (obj (&r), "refreshToken"));
  response_clear (&r);
}

static Response
token_request (Fixture    *f,
               const char *path,
               const char *token)
{
  g_autofree char *body = g_strdup_printf ("{\"refreshToken\":\"%s\"}", token);

  return request (f, "POST", path, body, NULL);
}

static void
test_register (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *body = credentials_body ("Alice.B", "correct horse");
  g_autofree char *dup = credentials_body ("ALICE.b", "another password");
  g_autofree char *bad_name = credentials_body ("al!ce", "correct horse");
  g_autofree char *short_name = credentials_body ("al", "correct horse");
  g_autofree char *long_name = credentials_body ("abcdefghijklmnopqrstuvwxyz0123456", "password");
  g_autofree char *short_pw = credentials_body ("carol", "1234567");
  g_autofree char *huge_pw_value = g_strnfill (1025, 'p');
  g_autofree char *huge_pw = credentials_body ("carol", huge_pw_value);
  g_autofree char *max_pw_value = g_strnfill (1024, 'p');
  g_autofree char *max_pw = credentials_body ("carol", max_pw_value);
  Response r;
  const char *user_id;

  r = request (f, "POST", "/api/register", body, NULL);
  g_assert_cmpuint (r.status, ==, 201);
  user_id = json_object_get_string_member (obj (&r), "userId");
  g_assert_cmpuint (strlen (user_id), ==, 32);
  g_assert_cmpstr (json_object_get_string_member (obj (&r), "username"), ==, "alice.b");
  g_assert_true (parley_store_user_exists (f->store, user_id));
  response_clear (&r);

  r = request (f, "POST", "/api/register", dup, NULL);
  assert_error (&r, 409, "username-taken");
  response_clear (&r);

  r = request (f, "POST", "/api/register", bad_name, NULL);
  assert_error (&r, 400, "invalid-username");
  response_clear (&r);
  r = request (f, "POST", "/api/register", short_name, NULL);
  assert_error (&r, 400, "invalid-username");
  response_clear (&r);
  r = request (f, "POST", "/api/register", long_name, NULL);
  assert_error (&r, 400, "invalid-username");
  response_clear (&r);
  r = request (f, "POST", "/api/register", short_pw, NULL);
  assert_error (&r, 400, "invalid-password");
  response_clear (&r);
  r = request (f, "POST", "/api/register", huge_pw, NULL);
  assert_error (&r, 400, "invalid-password");
  response_clear (&r);
  r = request (f, "POST", "/api/register", max_pw, NULL);
  g_assert_cmpuint (r.status, ==, 201);
  response_clear (&r);
}

static void
test_login (Fixture       *f,
            gconstpointer  data)
{
  g_autofree char *user_id = register_user (f, "alice", "correct horse");
  g_autofree char *good = credentials_body ("ALICE", "correct horse");
  g_autofree char *wrong = credentials_body ("alice", "wrong horse!");
  g_autofree char *unknown = credentials_body ("nobody", "correct horse");
  g_autoptr(GError) error = NULL;
  g_autofree char *sub = NULL;
  Response r;
  JsonObject *o;

  r = request (f, "POST", "/api/login", good, NULL);
  g_assert_cmpuint (r.status, ==, 200);
  o = obj (&r);
  g_assert_cmpstr (json_object_get_string_member (o, "userId"), ==, user_id);
  g_assert_cmpstr (json_object_get_string_member (o, "username"), ==, "alice");
  g_assert_cmpint (json_object_get_int_member (o, "expiresIn"), ==, 900);
  g_assert_cmpuint (strlen (json_object_get_string_member (o, "refreshToken")), ==, 43);
  sub = parley_token_verify (f->config->token_key, PARLEY_TOKEN_KEY_LEN,
                             json_object_get_string_member (o, "accessToken"),
                             g_get_real_time () / G_USEC_PER_SEC, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sub, ==, user_id);
  response_clear (&r);

  r = request (f, "POST", "/api/login", wrong, NULL);
  assert_error (&r, 401, "invalid-credentials");
  response_clear (&r);
  r = request (f, "POST", "/api/login", unknown, NULL);
  assert_error (&r, 401, "invalid-credentials");
  response_clear (&r);
}

static void
test_rate_limit_user (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *alice = register_user (f, "alice", "correct horse");
  g_autofree char *bob = register_user (f, "bob", "battery staple");
  g_autofree char *wrong = credentials_body ("alice", "wrong horse!");
  g_autofree char *good = credentials_body ("alice", "correct horse");
  Response r;

  for (guint i = 0; i < f->config->login_limit_per_user; i++) {
    r = request (f, "POST", "/api/login", wrong, NULL);
    assert_error (&r, 401, "invalid-credentials");
    response_clear (&r);
  }

  /* Locked, even with the right password. */
  r = request (f, "POST", "/api/login", good, NULL);
  assert_error (&r, 429, "rate-limited");
  g_assert_nonnull (r.retry_after);
  g_assert_cmpint (g_ascii_strtoll (r.retry_after, NULL, 10), >, 0);
  g_assert_cmpint (g_ascii_strtoll (r.retry_after, NULL, 10), <=, 60);
  response_clear (&r);

  /* Other users are not affected. */
  login (f, "bob", "battery staple", NULL, NULL);
}

static void
test_rate_limit_address (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *alice = register_user (f, "alice", "correct horse");
  Response r;
  guint i;

  /* Successful logins count against the address too. */
  for (i = 0; i < f->config->login_limit_per_address; i++)
    login (f, "alice", "correct horse", NULL, NULL);

  r = request (f, "POST", "/api/login", "{\"username\":\"alice\",\"password\":\"correct horse\"}",
               NULL);
  assert_error (&r, 429, "rate-limited");
  g_assert_nonnull (r.retry_after);
  response_clear (&r);
}

static void
test_rate_limit_register (Fixture       *f,
                          gconstpointer  data)
{
  Response r;
  guint i;

  /* Registrations cost an Argon2id hash each: the address has a budget of
   * its own, apart from logins. */
  for (i = 0; i < f->config->login_limit_per_address; i++) {
    g_autofree char *name = g_strdup_printf ("user%u", i);
    g_autofree char *id = register_user (f, name, "correct horse");
  }
  r = request (f, "POST", "/api/register",
               "{\"username\":\"one-too-many\",\"password\":\"correct horse\"}", NULL);
  assert_error (&r, 429, "rate-limited");
  g_assert_nonnull (r.retry_after);
  response_clear (&r);

  /* Logging in is still possible. */
  login (f, "user0", "correct horse", NULL, NULL);
}

static void
test_refresh_rotation (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *user_id = register_user (f, "alice", "correct horse");
  g_autofree char *r1 = NULL;
  g_autofree char *r2 = NULL;
  g_autofree char *r3 = NULL;
  g_autofree char *access = NULL;
  g_autofree char *sub = NULL;
  Response r;

  login (f, "alice", "correct horse", NULL, &r1);

  r = token_request (f, "/api/refresh", r1);
  g_assert_cmpuint (r.status, ==, 200);
  r2 = g_strdup (json_object_get_string_member (obj (&r), "refreshToken"));
  access = g_strdup (json_object_get_string_member (obj (&r), "accessToken"));
  g_assert_cmpstr (json_object_get_string_member (obj (&r), "userId"), ==, user_id);
  g_assert_cmpstr (json_object_get_string_member (obj (&r), "username"), ==, "alice");
  response_clear (&r);
  g_assert_cmpstr (r1, !=, r2);
  sub = parley_token_verify (f->config->token_key, PARLEY_TOKEN_KEY_LEN, access,
                             g_get_real_time () / G_USEC_PER_SEC, NULL);
  g_assert_cmpstr (sub, ==, user_id);

  /* r2 works once more... */
  r = token_request (f, "/api/refresh", r2);
  g_assert_cmpuint (r.status, ==, 200);
  r3 = g_strdup (json_object_get_string_member (obj (&r), "refreshToken"));
  response_clear (&r);

  /* ...but replaying r1 revokes the family, so r3 is dead too. */
  r = token_request (f, "/api/refresh", r1);
  assert_error (&r, 401, "token-reused");
  response_clear (&r);
  r = token_request (f, "/api/refresh", r3);
  assert_error (&r, 401, "invalid-token");
  response_clear (&r);

  r = token_request (f, "/api/refresh", "bogus");
  assert_error (&r, 401, "invalid-token");
  response_clear (&r);
}

static void
test_logout (Fixture       *f,
             gconstpointer  data)
{
  g_autofree char *user_id = register_user (f, "alice", "correct horse");
  g_autofree char *r1 = NULL;
  g_autofree char *other = NULL;
  Response r;

  login (f, "alice", "correct horse", NULL, &r1);
  login (f, "alice", "correct horse", NULL, &other);

  r = token_request (f, "/api/logout", r1);
  g_assert_cmpuint (r.status, ==, 204);
  g_assert_null (r.root);
  response_clear (&r);

  r = token_request (f, "/api/refresh", r1);
  assert_error (&r, 401, "invalid-token");
  response_clear (&r);

  /* Another login (family) stays valid. */
  r = token_request (f, "/api/refresh", other);
  g_assert_cmpuint (r.status, ==, 200);
  response_clear (&r);
}

static void
test_users_and_contacts (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *alice = register_user (f, "alice", "correct horse");
  g_autofree char *alex = register_user (f, "alex", "correct horse");
  g_autofree char *bob = register_user (f, "bob", "correct horse");
  g_autofree char *token = NULL;
  g_autofree char *bob_token = NULL;
  g_autofree char *add_bob = g_strdup_printf ("{\"userId\":\"%s\"}", bob);
  g_autofree char *expired = NULL;
  Response r;
  JsonArray *users;
  JsonObject *u;

  login (f, "alice", "correct horse", &token, NULL);
  login (f, "bob", "correct horse", &bob_token, NULL);

  r = request (f, "GET", "/api/users?query=AL", NULL, token);
  g_assert_cmpuint (r.status, ==, 200);
  users = json_object_get_array_member (obj (&r), "users");
  g_assert_cmpuint (json_array_get_length (users), ==, 2);
  u = json_array_get_object_element (users, 0);
  g_assert_cmpstr (json_object_get_string_member (u, "username"), ==, "alex");
  g_assert_cmpstr (json_object_get_string_member (u, "userId"), ==, alex);
  response_clear (&r);

  r = request (f, "GET", "/api/users?query=%25", NULL, token);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj (&r), "users")),
                    ==, 0);
  response_clear (&r);

  r = request (f, "GET", "/api/users", NULL, token);
  assert_error (&r, 400, "missing-field");
  response_clear (&r);

  /* Bearer authentication. */
  r = request (f, "GET", "/api/users?query=al", NULL, NULL);
  assert_error (&r, 401, "invalid-token");
  response_clear (&r);
  r = request (f, "GET", "/api/users?query=al", NULL, "garbage");
  assert_error (&r, 401, "invalid-token");
  response_clear (&r);
  expired = parley_token_issue (f->config->token_key, PARLEY_TOKEN_KEY_LEN, alice,
                                g_get_real_time () / G_USEC_PER_SEC - 1000, 10);
  r = request (f, "GET", "/api/contacts", NULL, expired);
  assert_error (&r, 401, "invalid-token");
  response_clear (&r);

  /* Contacts. */
  r = request (f, "GET", "/api/contacts", NULL, token);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj (&r), "contacts")),
                    ==, 0);
  response_clear (&r);

  r = request (f, "POST", "/api/contacts", add_bob, token);
  g_assert_cmpuint (r.status, ==, 204);
  response_clear (&r);
  r = request (f, "POST", "/api/contacts", "{\"userId\":\"0123456789abcdef\"}", token);
  assert_error (&r, 404, "unknown-user");
  response_clear (&r);
  r = request (f, "POST", "/api/contacts", "{\"userId\":17}", token);
  assert_error (&r, 400, "invalid-field");
  response_clear (&r);
  r = request (f, "POST", "/api/contacts", "{}", token);
  assert_error (&r, 400, "missing-field");
  response_clear (&r);

  f->online_user = g_strdup (bob);
  r = request (f, "GET", "/api/contacts", NULL, token);
  g_assert_cmpuint (r.status, ==, 200);
  users = json_object_get_array_member (obj (&r), "contacts");
  g_assert_cmpuint (json_array_get_length (users), ==, 1);
  u = json_array_get_object_element (users, 0);
  g_assert_cmpstr (json_object_get_string_member (u, "userId"), ==, bob);
  g_assert_cmpstr (json_object_get_string_member (u, "username"), ==, "bob");
  g_assert_true (json_object_get_boolean_member (u, "online"));
  response_clear (&r);

  /* Both directions; alice is offline. */
  r = request (f, "GET", "/api/contacts", NULL, bob_token);
  users = json_object_get_array_member (obj (&r), "contacts");
  g_assert_cmpuint (json_array_get_length (users), ==, 1);
  u = json_array_get_object_element (users, 0);
  g_assert_cmpstr (json_object_get_string_member (u, "userId"), ==, alice);
  g_assert_false (json_object_get_boolean_member (u, "online"));
  response_clear (&r);
}

static void
test_turn (Fixture       *f,
           gconstpointer  data)
{
  g_autofree char *user_id = register_user (f, "alice", "correct horse");
  g_autofree char *token = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *prefix = NULL;
  gint64 before = g_get_real_time () / G_USEC_PER_SEC, after, expiry;
  const char *username;
  char *end;
  JsonArray *uris;
  Response r;

  login (f, "alice", "correct horse", &token, NULL);

  r = request (f, "GET", "/api/turn/credentials", NULL, token);
  after = g_get_real_time () / G_USEC_PER_SEC;
  g_assert_cmpuint (r.status, ==, 200);
  username = json_object_get_string_member (obj (&r), "username");
  expiry = g_ascii_strtoll (username, &end, 10);
  g_assert_cmpint (*end, ==, ':');
  g_assert_cmpstr (end + 1, ==, user_id);
  g_assert_cmpint (expiry, >=, before + 600);
  g_assert_cmpint (expiry, <=, after + 600);
  g_assert_cmpint (json_object_get_int_member (obj (&r), "ttl"), ==, 600);

  expected = parley_test_openssl_hmac_sha1_b64 ("turn-test-secret", username);
  g_assert_cmpstr (json_object_get_string_member (obj (&r), "password"), ==, expected);

  uris = json_object_get_array_member (obj (&r), "uris");
  g_assert_cmpuint (json_array_get_length (uris), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (uris, 0), ==,
                   "turn:127.0.0.1:3478?transport=udp");
  response_clear (&r);

  r = request (f, "GET", "/api/turn/credentials", NULL, NULL);
  assert_error (&r, 401, "invalid-token");
  response_clear (&r);

  g_clear_pointer (&f->config->turn_secret, g_free);
  r = request (f, "GET", "/api/turn/credentials", NULL, token);
  assert_error (&r, 503, "turn-unavailable");
  response_clear (&r);
}

static void
test_bad_requests (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *big_value = g_strnfill (17 * 1024, 'x');
  g_autofree char *big = credentials_body ("alice", big_value);
  Response r;

  r = request (f, "POST", "/api/register", "{not json", NULL);
  assert_error (&r, 400, "invalid-json");
  response_clear (&r);
  r = request (f, "POST", "/api/register", "[\"alice\"]", NULL);
  assert_error (&r, 400, "invalid-json");
  response_clear (&r);
  r = request (f, "POST", "/api/register", "", NULL);
  assert_error (&r, 400, "invalid-json");
  response_clear (&r);
  r = request (f, "POST", "/api/register", "{\"username\":5,\"password\":\"12345678\"}", NULL);
  assert_error (&r, 400, "invalid-field");
  response_clear (&r);
  r = request (f, "POST", "/api/register", "{\"username\":\"alice\"}", NULL);
  assert_error (&r, 400, "missing-field");
  response_clear (&r);
  r = request (f, "POST", "/api/login", "{\"username\":\"alice\",\"password\":null}", NULL);
  assert_error (&r, 400, "missing-field");
  response_clear (&r);
  r = request (f, "POST", "/api/register", "{\"username\":\"al\xff\",\"password\":\"12345678\"}",
               NULL);
  assert_error (&r, 400, "invalid-json");
  response_clear (&r);

  /* Oversized bodies, with a declared length and chunked. */
  r = request (f, "POST", "/api/register", big, NULL);
  assert_error (&r, 413, "too-large");
  response_clear (&r);
  r = request_full (f, "POST", "/api/login", big, TRUE, NULL);
  assert_error (&r, 413, "too-large");
  response_clear (&r);

  /* A small chunked body is fine. */
  r = request_full (f, "POST", "/api/register",
                    "{\"username\":\"chunky\",\"password\":\"12345678\"}", TRUE, NULL);
  g_assert_cmpuint (r.status, ==, 201);
  response_clear (&r);

  /* Methods and routes. */
  r = request (f, "GET", "/api/login", NULL, NULL);
  assert_error (&r, 405, "method-not-allowed");
  g_assert_cmpstr (r.allow, ==, "POST");
  response_clear (&r);
  r = request (f, "DELETE", "/api/contacts", NULL, NULL);
  assert_error (&r, 405, "method-not-allowed");
  response_clear (&r);
  r = request (f, "POST", "/api/turn/credentials", "{}", NULL);
  assert_error (&r, 405, "method-not-allowed");
  response_clear (&r);
  r = request (f, "GET", "/api/nope", NULL, NULL);
  assert_error (&r, 404, "not-found");
  response_clear (&r);
  r = request (f, "POST", "/api/login/extra", "{}", NULL);
  assert_error (&r, 404, "not-found");
  response_clear (&r);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_assert_true (sodium_init () >= 0);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/http-api/register", test_register);
  ADD ("/http-api/login", test_login);
  ADD ("/http-api/rate-limit-user", test_rate_limit_user);
  ADD ("/http-api/rate-limit-address", test_rate_limit_address);
  ADD ("/http-api/rate-limit-register", test_rate_limit_register);
  ADD ("/http-api/refresh-rotation", test_refresh_rotation);
  ADD ("/http-api/logout", test_logout);
  ADD ("/http-api/users-and-contacts", test_users_and_contacts);
  ADD ("/http-api/turn", test_turn);
  ADD ("/http-api/bad-requests", test_bad_requests);
#undef ADD

  return g_test_run ();
}
