/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-http-api"

#include "parley-http-api.h"
#include "parley-password.h"
#include "parley-token.h"
#include "parley-turn.h"

#include <json-glib/json-glib.h>
#include <sodium.h>
#include <string.h>

/* The largest JSON request body accepted. */
#define MAX_BODY (16 * 1024)

#define USERNAME_MIN 3
#define USERNAME_MAX 32
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024
#define REFRESH_TOKEN_MAX 256
#define SEARCH_LIMIT 20

/* Rate limiter entries are swept once the tables hold this many keys. */
#define RATE_SWEEP_KEYS 10000

/* libsoup 3.2 has no name for 429. */
#define STATUS_TOO_MANY_REQUESTS 429

/* Seconds between two deletions of expired refresh tokens. */
#define PRUNE_INTERVAL_S 3600

#define BODY_KEY "parley-http-api-body"
#define BODY_TOO_LARGE_KEY "parley-http-api-body-too-large"

typedef enum {
  ROUTE_REGISTER,
  ROUTE_LOGIN,
  ROUTE_REFRESH,
  ROUTE_LOGOUT,
  ROUTE_USERS,
  ROUTE_CONTACTS_LIST,
  ROUTE_CONTACTS_ADD,
} Route;

struct _ParleyHttpApi {
  gint ref_count;  /* atomic; every request in flight holds a reference */

  const ParleyConfig *config;
  ParleyStore *store;

  ParleyOnlineFunc online_func;
  gpointer online_data;

  /* Sliding-window login limiters: key → GQueue of monotonic times (µs). */
  GMutex rate_lock;
  GHashTable *user_failures;
  GHashTable *address_attempts;

  /* A hash to verify against for unknown users, made on first use. */
  GMutex dummy_lock;
  char *dummy_hash;

  /* When expired refresh tokens were last deleted (seconds; rate_lock). */
  gint64 pruned_at;

  /* Thread work in flight, so that free can wait for it. */
  GMutex work_lock;
  GCond work_cond;
  guint n_working;
};

/* One request handed to a worker thread. Inputs are set on the main
 * context; the worker sets the outputs. */
typedef struct {
  ParleyHttpApi *api;
  SoupServerMessage *msg;
  Route route;

  char *username;
  char *password;
  char *token;       /* the refresh token */
  char *user_id;     /* the authenticated user */
  char *arg;         /* the search prefix or the contact's id */
  char *address;

  guint status;
  char *body;        /* JSON, or NULL for no body */
  gint64 retry_after;
} Request;

static ParleyHttpApi *
api_ref (ParleyHttpApi *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

static void
api_unref (ParleyHttpApi *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;

  g_hash_table_unref (self->user_failures);
  g_hash_table_unref (self->address_attempts);
  g_mutex_clear (&self->rate_lock);
  g_mutex_clear (&self->dummy_lock);
  g_mutex_clear (&self->work_lock);
  g_cond_clear (&self->work_cond);
  g_free (self->dummy_hash);
  g_free (self);
}

static void
request_free (Request *req)
{
  g_clear_object (&req->msg);
  g_free (req->username);
  if (req->password != NULL) {
    sodium_memzero (req->password, strlen (req->password));
    g_free (req->password);
  }
  g_free (req->token);
  g_free (req->user_id);
  g_free (req->arg);
  g_free (req->address);
  g_free (req->body);
  api_unref (req->api);
  g_free (req);
}

/* JSON helpers. */

static char *
node_to_string (JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();

  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, NULL);
}

static char *
builder_to_string (JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);

  return node_to_string (root);
}

static char *
error_body (const char *code,
            const char *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "code");
  json_builder_add_string_value (b, code);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  json_builder_end_object (b);
  return builder_to_string (b);
}

static void
set_response (SoupServerMessage *msg,
              guint              status,
              char              *body)
{
  soup_server_message_set_status (msg, status,
                                  status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : NULL);
  if (body != NULL)
    soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                      body, strlen (body));
}

static void
respond_error (SoupServerMessage *msg,
               guint              status,
               const char        *code,
               const char        *message)
{
  set_response (msg, status, error_body (code, message));
}

static void
request_error (Request    *req,
               guint       status,
               const char *code,
               const char *message)
{
  req->status = status;
  g_free (req->body);
  req->body = error_body (code, message);
}

/* Folds @name to lower case and checks that it has @min to USERNAME_MAX
 * characters allowed in user names; NULL if not. */
static char *
fold_name (const char *name,
           gsize       min)
{
  gsize len = strlen (name);
  char *folded;

  if (len < min || len > USERNAME_MAX)
    return NULL;

  folded = g_ascii_strdown (name, len);
  for (gsize i = 0; i < len; i++) {
    char c = folded[i];

    if (!g_ascii_isdigit (c) && !(c >= 'a' && c <= 'z') && c != '_' && c != '.' && c != '-') {
      g_free (folded);
      return NULL;
    }
  }
  return folded;
}

static char *
fold_username (const char *name)
{
  return fold_name (name, USERNAME_MIN);
}

/* Request bodies. An early handler rejects oversized declared lengths before
 * the body is read, and collects chunked bodies itself up to the limit. */

static void
got_chunk_cb (SoupServerMessage *msg,
              GBytes            *chunk,
              gpointer           user_data)
{
  GByteArray *buf = g_object_get_data (G_OBJECT (msg), BODY_KEY);
  gsize len;
  const guint8 *data = g_bytes_get_data (chunk, &len);

  if (buf == NULL || g_object_get_data (G_OBJECT (msg), BODY_TOO_LARGE_KEY) != NULL)
    return;
  if (buf->len + len > MAX_BODY) {
    g_object_set_data (G_OBJECT (msg), BODY_TOO_LARGE_KEY, GINT_TO_POINTER (1));
    g_byte_array_set_size (buf, 0);
    return;
  }
  g_byte_array_append (buf, data, len);
}

static void
early_handler_cb (SoupServer        *server,
                  SoupServerMessage *msg,
                  const char        *path,
                  GHashTable        *query,
                  gpointer           user_data)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupEncoding encoding = soup_message_headers_get_encoding (headers);

  if (encoding == SOUP_ENCODING_CONTENT_LENGTH) {
    if (soup_message_headers_get_content_length (headers) > MAX_BODY)
      respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "too-large",
                     "The request body is too large");
    return;
  }

  if (encoding == SOUP_ENCODING_CHUNKED || encoding == SOUP_ENCODING_EOF) {
    soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
    g_object_set_data_full (G_OBJECT (msg), BODY_KEY, g_byte_array_new (),
                            (GDestroyNotify) g_byte_array_unref);
    g_signal_connect (msg, "got-chunk", G_CALLBACK (got_chunk_cb), NULL);
  }
}

/* Parses the request body as a JSON object. On failure, answers the message
 * and returns NULL. */
static JsonObject *
parse_body (SoupServerMessage *msg,
            JsonParser        *parser)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  GByteArray *chunked = g_object_get_data (G_OBJECT (msg), BODY_KEY);
  g_autoptr(GBytes) flat = NULL;
  const char *data;
  gsize len;
  JsonNode *root;

  if (g_object_get_data (G_OBJECT (msg), BODY_TOO_LARGE_KEY) != NULL) {
    respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "too-large",
                   "The request body is too large");
    return NULL;
  }

  if (chunked != NULL) {
    data = (const char *) chunked->data;
    len = chunked->len;
  } else {
    flat = soup_message_body_flatten (body);
    data = g_bytes_get_data (flat, &len);
  }

  if (len > MAX_BODY) {
    respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "too-large",
                   "The request body is too large");
    return NULL;
  }

  if (len == 0 || data == NULL || !g_utf8_validate (data, len, NULL) ||
      !json_parser_load_from_data (parser, data, len, NULL)) {
    respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-json", "The body is not valid JSON");
    return NULL;
  }

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-json",
                   "The body must be a JSON object");
    return NULL;
  }
  return json_node_get_object (root);
}

/* Returns the string member @name, or NULL after answering the message. */
static const char *
get_string_member (SoupServerMessage *msg,
                   JsonObject        *obj,
                   const char        *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node)) {
    g_autofree char *text = g_strdup_printf ("Missing field ‘%s’", name);
    respond_error (msg, SOUP_STATUS_BAD_REQUEST, "missing-field", text);
    return NULL;
  }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING) {
    g_autofree char *text = g_strdup_printf ("Field ‘%s’ must be a string", name);
    respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-field", text);
    return NULL;
  }
  return json_node_get_string (node);
}

static gboolean
check_method (SoupServerMessage *msg,
              const char        *allowed)
{
  const char *method = soup_server_message_get_method (msg);

  if (g_strcmp0 (method, allowed) == 0)
    return TRUE;

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Allow", allowed);
  respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                 "Method not allowed");
  return FALSE;
}

/* Bearer authentication. Returns the user id or NULL after answering. */
static char *
authenticate (ParleyHttpApi     *self,
              SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *auth = soup_message_headers_get_one (headers, "Authorization");
  g_autoptr(GError) error = NULL;
  char *user_id = NULL;

  if (auth != NULL && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0) {
    user_id = parley_token_verify (self->config->token_key, PARLEY_TOKEN_KEY_LEN, auth + 7,
                                   g_get_real_time () / G_USEC_PER_SEC, &error);
    if (user_id != NULL && !parley_store_user_exists (self->store, user_id))
      g_clear_pointer (&user_id, g_free);
  }

  if (user_id == NULL) {
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "WWW-Authenticate", "Bearer");
    respond_error (msg, SOUP_STATUS_UNAUTHORIZED, "invalid-token",
                   auth == NULL ? "Authentication required" : "Invalid or expired token");
  }
  return user_id;
}

/* Login rate limiting: a sliding window log per key. */

static void
rate_prune (GQueue *times,
            gint64  cutoff)
{
  while (!g_queue_is_empty (times) &&
         *(gint64 *) g_queue_peek_head (times) <= cutoff)
    g_free (g_queue_pop_head (times));
}

static void
rate_queue_destroy (gpointer data)
{
  GQueue *times = data;

  g_queue_free_full (times, g_free);
}

static void
rate_sweep (GHashTable *table,
            gint64      cutoff)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    rate_prune (value, cutoff);
    if (g_queue_is_empty (value))
      g_hash_table_iter_remove (&iter);
  }
}

/* Returns how many seconds to wait if @key has reached @limit entries in the
 * window, else 0. */
static gint64
rate_check (GHashTable *table,
            const char *key,
            guint       limit,
            gint64      now,
            gint64      window)
{
  GQueue *times = g_hash_table_lookup (table, key);
  gint64 oldest;

  if (times == NULL || limit == 0)
    return 0;
  rate_prune (times, now - window);
  if (g_queue_get_length (times) < limit)
    return 0;

  /* The entry that must expire before another attempt is allowed. */
  oldest = *(gint64 *) g_queue_peek_nth (times, g_queue_get_length (times) - limit);
  return MAX (1, (oldest + window - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

static void
rate_record (GHashTable *table,
             const char *key,
             gint64      now,
             gint64      window)
{
  GQueue *times = g_hash_table_lookup (table, key);
  gint64 *stamp;

  if (times == NULL) {
    if (g_hash_table_size (table) >= RATE_SWEEP_KEYS)
      rate_sweep (table, now - window);
    times = g_queue_new ();
    g_hash_table_insert (table, g_strdup (key), times);
  }
  stamp = g_new (gint64, 1);
  *stamp = now;
  g_queue_push_tail (times, stamp);
}

/* Worker threads. */

static const char *
get_dummy_hash (ParleyHttpApi *self)
{
  const char *hash;

  g_mutex_lock (&self->dummy_lock);
  if (self->dummy_hash == NULL) {
    guint8 random[16];
    char random_hex[33];

    randombytes_buf (random, sizeof random);
    sodium_bin2hex (random_hex, sizeof random_hex, random, sizeof random);
    self->dummy_hash = parley_password_hash (random_hex, self->config->pwhash_opslimit,
                                             self->config->pwhash_memlimit, NULL);
  }
  hash = self->dummy_hash;
  g_mutex_unlock (&self->dummy_lock);

  return hash;
}

static char *
session_body (ParleyHttpApi *self,
              const char    *user_id,
              const char    *username,
              const char    *refresh_token)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *access = parley_token_issue (self->config->token_key, PARLEY_TOKEN_KEY_LEN,
                                                user_id, now, self->config->access_ttl);
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "userId");
  json_builder_add_string_value (b, user_id);
  json_builder_set_member_name (b, "username");
  json_builder_add_string_value (b, username);
  json_builder_set_member_name (b, "accessToken");
  json_builder_add_string_value (b, access);
  json_builder_set_member_name (b, "refreshToken");
  json_builder_add_string_value (b, refresh_token);
  json_builder_set_member_name (b, "expiresIn");
  json_builder_add_int_value (b, self->config->access_ttl);
  json_builder_end_object (b);
  return builder_to_string (b);
}

static void
work_register (Request *req)
{
  ParleyHttpApi *self = req->api;
  g_autoptr(GError) error = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *user_id = NULL;
  g_autoptr(JsonBuilder) b = NULL;

  /* Skip the expensive hash for a name that is known to be taken. */
  if (parley_store_find_user (self->store, req->username, NULL, NULL, NULL)) {
    request_error (req, SOUP_STATUS_CONFLICT, "username-taken", "The user name is taken");
    return;
  }

  hash = parley_password_hash (req->password, self->config->pwhash_opslimit,
                               self->config->pwhash_memlimit, &error);
  if (hash == NULL) {
    g_warning ("Cannot hash a password: %s", error->message);
    request_error (req, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", "Internal error");
    return;
  }

  if (!parley_store_create_user (self->store, req->username, hash, &user_id, &error)) {
    if (g_error_matches (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_EXISTS)) {
      request_error (req, SOUP_STATUS_CONFLICT, "username-taken", "The user name is taken");
    } else {
      g_warning ("Cannot create a user: %s", error->message);
      request_error (req, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", "Internal error");
    }
    return;
  }

  g_debug ("Registered user %s", user_id);
  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "userId");
  json_builder_add_string_value (b, user_id);
  json_builder_set_member_name (b, "username");
  json_builder_add_string_value (b, req->username);
  json_builder_end_object (b);
  req->status = SOUP_STATUS_CREATED;
  req->body = builder_to_string (b);
}

/* Starts a new refresh token family for @user_id and answers with a fresh
 * session. */
static void
start_session (Request    *req,
               const char *user_id,
               const char *username)
{
  ParleyHttpApi *self = req->api;
  g_autoptr(GError) error = NULL;
  g_autofree char *refresh = parley_token_new_refresh ();
  g_autofree char *refresh_hash = parley_token_hash_refresh (refresh);
  g_autofree char *family = parley_token_new_refresh ();
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gboolean prune;

  if (!parley_store_add_refresh_token (self->store, refresh_hash, user_id, family,
                                       now + self->config->refresh_ttl, &error)) {
    g_warning ("Cannot store a refresh token: %s", error->message);
    request_error (req, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", "Internal error");
    return;
  }

  req->status = SOUP_STATUS_OK;
  req->body = session_body (self, user_id, username, refresh);

  /* Expired refresh tokens are deleted at most once per PRUNE_INTERVAL_S. */
  g_mutex_lock (&self->rate_lock);
  prune = now - self->pruned_at >= PRUNE_INTERVAL_S;
  if (prune)
    self->pruned_at = now;
  g_mutex_unlock (&self->rate_lock);
  if (prune) {
    gint64 n = parley_store_prune_refresh_tokens (self->store, now);

    if (n > 0)
      g_debug ("Deleted %" G_GINT64_FORMAT " expired refresh tokens", n);
  }
}

static void
work_login (Request *req)
{
  ParleyHttpApi *self = req->api;
  g_autofree char *user_id = NULL;
  g_autofree char *hash = NULL;
  gboolean found = FALSE, ok;
  gsize password_len = strlen (req->password);

  if (req->username != NULL)
    found = parley_store_find_user (self->store, req->username, &user_id, &hash, NULL);

  /* Unknown users cost the same Argon2id verification as known ones. */
  ok = parley_password_verify (found ? hash : get_dummy_hash (self), req->password);
  ok = ok && found && password_len >= PASSWORD_MIN && password_len <= PASSWORD_MAX;

  if (!ok) {
    if (req->username != NULL) {
      gint64 now = g_get_monotonic_time ();
      gint64 window = (gint64) self->config->login_limit_window * G_USEC_PER_SEC;

      g_mutex_lock (&self->rate_lock);
      rate_record (self->user_failures, req->username, now, window);
      g_mutex_unlock (&self->rate_lock);
    }
    g_debug ("Failed login%s%s", found ? " for user " : "", found ? user_id : "");
    request_error (req, SOUP_STATUS_UNAUTHORIZED, "invalid-credentials",
                   "Wrong user name or password");
    return;
  }

  g_debug ("User %s logged in", user_id);
  start_session (req, user_id, req->username);
}

static void
work_refresh (Request *req)
{
  ParleyHttpApi *self = req->api;
  g_autofree char *old_hash = parley_token_hash_refresh (req->token);
  g_autofree char *refresh = parley_token_new_refresh ();
  g_autofree char *new_hash = parley_token_hash_refresh (refresh);
  g_autofree char *user_id = NULL;
  g_autofree char *username = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  switch (parley_store_rotate_refresh_token (self->store, old_hash, new_hash, now,
                                             now + self->config->refresh_ttl, &user_id)) {
  case PARLEY_REFRESH_OK:
    break;
  case PARLEY_REFRESH_REUSED:
    g_debug ("A rotated refresh token was used again; its family is revoked");
    request_error (req, SOUP_STATUS_UNAUTHORIZED, "token-reused",
                   "The refresh token was used before; all sessions of this login are revoked");
    return;
  case PARLEY_REFRESH_UNKNOWN:
  case PARLEY_REFRESH_EXPIRED:
  default:
    request_error (req, SOUP_STATUS_UNAUTHORIZED, "invalid-token", "Invalid refresh token");
    return;
  }

  username = parley_store_get_username (self->store, user_id);
  if (username == NULL) {
    request_error (req, SOUP_STATUS_UNAUTHORIZED, "invalid-token", "Invalid refresh token");
    return;
  }

  g_debug ("User %s refreshed a session", user_id);
  req->status = SOUP_STATUS_OK;
  req->body = session_body (self, user_id, username, refresh);
}

static void
work_logout (Request *req)
{
  g_autofree char *hash = parley_token_hash_refresh (req->token);

  parley_store_revoke_refresh_family (req->api->store, hash);
  req->status = SOUP_STATUS_NO_CONTENT;
}

static void
add_users (JsonBuilder   *b,
           GPtrArray     *users,
           ParleyHttpApi *self,
           gboolean       with_presence)
{
  json_builder_begin_array (b);
  for (guint i = 0; i < users->len; i++) {
    ParleyUserInfo *info = g_ptr_array_index (users, i);

    json_builder_begin_object (b);
    json_builder_set_member_name (b, "userId");
    json_builder_add_string_value (b, info->user_id);
    json_builder_set_member_name (b, "username");
    json_builder_add_string_value (b, info->username);
    if (with_presence) {
      gboolean online = self->online_func != NULL &&
                        self->online_func (info->user_id, self->online_data);

      json_builder_set_member_name (b, "online");
      json_builder_add_boolean_value (b, online);
    }
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

static void
work_users (Request *req)
{
  g_autoptr(GPtrArray) users = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();

  /* A prefix that breaks the user name rules cannot match anybody. */
  if (req->arg != NULL)
    users = parley_store_search_users (req->api->store, req->arg, SEARCH_LIMIT);
  else
    users = g_ptr_array_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "users");
  add_users (b, users, req->api, FALSE);
  json_builder_end_object (b);
  req->status = SOUP_STATUS_OK;
  req->body = builder_to_string (b);
}

static void
work_contacts_list (Request *req)
{
  g_autoptr(GPtrArray) contacts = parley_store_list_contacts (req->api->store, req->user_id);
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "contacts");
  add_users (b, contacts, req->api, TRUE);
  json_builder_end_object (b);
  req->status = SOUP_STATUS_OK;
  req->body = builder_to_string (b);
}

static void
work_contacts_add (Request *req)
{
  g_autoptr(GError) error = NULL;

  if (parley_store_add_contact (req->api->store, req->user_id, req->arg, &error)) {
    g_debug ("User %s added contact %s", req->user_id, req->arg);
    req->status = SOUP_STATUS_NO_CONTENT;
  } else if (g_error_matches (error, PARLEY_STORE_ERROR, PARLEY_STORE_ERROR_NOT_FOUND)) {
    request_error (req, SOUP_STATUS_NOT_FOUND, "unknown-user", "No such user");
  } else {
    g_warning ("Cannot add a contact: %s", error->message);
    request_error (req, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", "Internal error");
  }
}

static void
request_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  Request *req = task_data;

  switch (req->route) {
  case ROUTE_REGISTER:
    work_register (req);
    break;
  case ROUTE_LOGIN:
    work_login (req);
    break;
  case ROUTE_REFRESH:
    work_refresh (req);
    break;
  case ROUTE_LOGOUT:
    work_logout (req);
    break;
  case ROUTE_USERS:
    work_users (req);
    break;
  case ROUTE_CONTACTS_LIST:
    work_contacts_list (req);
    break;
  case ROUTE_CONTACTS_ADD:
    work_contacts_add (req);
    break;
  default:
    g_assert_not_reached ();
  }

  g_mutex_lock (&req->api->work_lock);
  req->api->n_working--;
  g_cond_broadcast (&req->api->work_cond);
  g_mutex_unlock (&req->api->work_lock);

  g_task_return_boolean (task, TRUE);
}

static void
request_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Request *req = g_task_get_task_data (G_TASK (result));

  if (req->retry_after > 0) {
    g_autofree char *value = g_strdup_printf ("%" G_GINT64_FORMAT, req->retry_after);
    soup_message_headers_replace (soup_server_message_get_response_headers (req->msg),
                                  "Retry-After", value);
  }
  set_response (req->msg, req->status, g_steal_pointer (&req->body));
  soup_server_message_unpause (req->msg);
}

/* Runs the blocking part of a request (Argon2id, SQLite) on a worker thread
 * while the message waits, paused, so the main loop stays responsive. */
static void
request_run (Request *req)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, request_done_cb, NULL);

  g_task_set_task_data (task, req, (GDestroyNotify) request_free);
  soup_server_message_pause (req->msg);

  g_mutex_lock (&req->api->work_lock);
  req->api->n_working++;
  g_mutex_unlock (&req->api->work_lock);

  g_task_run_in_thread (task, request_thread);
}

static Request *
request_new (ParleyHttpApi     *self,
             SoupServerMessage *msg,
             Route              route)
{
  Request *req = g_new0 (Request, 1);

  req->api = api_ref (self);
  req->msg = g_object_ref (msg);
  req->route = route;
  return req;
}

/* Counts an attempt against the client address (shared by login and
 * registration, both of which cost an Argon2id hash); answers 429 with
 * Retry-After and returns FALSE once the address reached its limit. */
static gboolean
address_allowed (ParleyHttpApi     *self,
                 SoupServerMessage *msg,
                 const char        *address,
                 const char        *what)
{
  gint64 now = g_get_monotonic_time ();
  gint64 window = (gint64) self->config->login_limit_window * G_USEC_PER_SEC;
  g_autofree char *key = g_strconcat (what, ":", address, NULL);
  g_autofree char *value = NULL;
  g_autofree char *message = NULL;
  gint64 wait;

  g_mutex_lock (&self->rate_lock);
  wait = rate_check (self->address_attempts, key, self->config->login_limit_per_address, now,
                     window);
  if (wait == 0)
    rate_record (self->address_attempts, key, now, window);
  g_mutex_unlock (&self->rate_lock);
  if (wait == 0)
    return TRUE;

  g_debug ("%s rate-limited", what);
  value = g_strdup_printf ("%" G_GINT64_FORMAT, wait);
  message = g_strdup_printf ("Too many %s attempts; try again later", what);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After",
                                value);
  respond_error (msg, STATUS_TOO_MANY_REQUESTS, "rate-limited", message);
  return FALSE;
}

/* Handlers, on the server's main context. */

static void
register_cb (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  ParleyHttpApi *self = user_data;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *obj;
  const char *username, *password;
  g_autofree char *folded = NULL;
  gsize password_len;
  Request *req;

  if (!check_method (msg, SOUP_METHOD_POST) || (obj = parse_body (msg, parser)) == NULL)
    return;
  if ((username = get_string_member (msg, obj, "username")) == NULL ||
      (password = get_string_member (msg, obj, "password")) == NULL)
    return;

  folded = fold_username (username);
  if (folded == NULL) {
    respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-username",
                   "User names have 3 to 32 characters: a-z, 0-9, ‘_’, ‘.’ and ‘-’");
    return;
  }
  password_len = strlen (password);
  if (password_len < PASSWORD_MIN || password_len > PASSWORD_MAX) {
    respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-password",
                   "Passwords have 8 to 1024 bytes");
    return;
  }
  if (!address_allowed (self, msg, soup_server_message_get_remote_host (msg) ?: "",
                        "registration"))
    return;

  req = request_new (self, msg, ROUTE_REGISTER);
  req->username = g_steal_pointer (&folded);
  req->password = g_strdup (password);
  request_run (req);
}

static void
login_cb (SoupServer        *server,
          SoupServerMessage *msg,
          const char        *path,
          GHashTable        *query,
          gpointer           user_data)
{
  ParleyHttpApi *self = user_data;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *obj;
  const char *username, *password, *address;
  g_autofree char *folded = NULL;
  gint64 now, window, wait_user = 0, wait_address;
  Request *req;

  if (!check_method (msg, SOUP_METHOD_POST) || (obj = parse_body (msg, parser)) == NULL)
    return;
  if ((username = get_string_member (msg, obj, "username")) == NULL ||
      (password = get_string_member (msg, obj, "password")) == NULL)
    return;

  folded = fold_username (username);
  address = soup_server_message_get_remote_host (msg);
  if (address == NULL)
    address = "";

  /* Every attempt counts against the client address; only failures count
   * against the user name. */
  now = g_get_monotonic_time ();
  window = (gint64) self->config->login_limit_window * G_USEC_PER_SEC;
  g_mutex_lock (&self->rate_lock);
  wait_address = rate_check (self->address_attempts, address,
                             self->config->login_limit_per_address, now, window);
  if (folded != NULL)
    wait_user = rate_check (self->user_failures, folded, self->config->login_limit_per_user,
                            now, window);
  if (wait_address == 0)
    rate_record (self->address_attempts, address, now, window);
  g_mutex_unlock (&self->rate_lock);

  if (wait_address > 0 || wait_user > 0) {
    g_autofree char *value = g_strdup_printf ("%" G_GINT64_FORMAT, MAX (wait_address, wait_user));

    g_debug ("Login rate-limited");
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "Retry-After", value);
    respond_error (msg, STATUS_TOO_MANY_REQUESTS, "rate-limited",
                   "Too many login attempts; try again later");
    return;
  }

  req = request_new (self, msg, ROUTE_LOGIN);
  req->username = g_steal_pointer (&folded);  /* NULL if invalid: fails after a dummy verify */
  req->password = g_strdup (password);
  req->address = g_strdup (address);
  request_run (req);
}

static void
token_route_cb (SoupServerMessage *msg,
                ParleyHttpApi     *self,
                Route              route)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *obj;
  const char *token;
  Request *req;

  if (!check_method (msg, SOUP_METHOD_POST) || (obj = parse_body (msg, parser)) == NULL)
    return;
  if ((token = get_string_member (msg, obj, "refreshToken")) == NULL)
    return;
  if (*token == '\0' || strlen (token) > REFRESH_TOKEN_MAX) {
    if (route == ROUTE_LOGOUT)
      set_response (msg, SOUP_STATUS_NO_CONTENT, NULL);
    else
      respond_error (msg, SOUP_STATUS_UNAUTHORIZED, "invalid-token", "Invalid refresh token");
    return;
  }

  req = request_new (self, msg, route);
  req->token = g_strdup (token);
  request_run (req);
}

static void
refresh_cb (SoupServer        *server,
            SoupServerMessage *msg,
            const char        *path,
            GHashTable        *query,
            gpointer           user_data)
{
  token_route_cb (msg, user_data, ROUTE_REFRESH);
}

static void
logout_cb (SoupServer        *server,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  token_route_cb (msg, user_data, ROUTE_LOGOUT);
}

static void
users_cb (SoupServer        *server,
          SoupServerMessage *msg,
          const char        *path,
          GHashTable        *query,
          gpointer           user_data)
{
  ParleyHttpApi *self = user_data;
  g_autofree char *user_id = NULL;
  const char *q;
  Request *req;

  if (!check_method (msg, SOUP_METHOD_GET) || (user_id = authenticate (self, msg)) == NULL)
    return;

  q = query != NULL ? g_hash_table_lookup (query, "query") : NULL;
  if (q == NULL || *q == '\0') {
    respond_error (msg, SOUP_STATUS_BAD_REQUEST, "missing-field",
                   "Missing query parameter ‘query’");
    return;
  }

  req = request_new (self, msg, ROUTE_USERS);
  req->user_id = g_steal_pointer (&user_id);
  /* A prefix that breaks the user name rules matches nobody (arg stays NULL). */
  req->arg = fold_name (q, 1);
  request_run (req);
}

static void
contacts_cb (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  ParleyHttpApi *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  g_autofree char *user_id = NULL;
  Request *req;

  if (g_strcmp0 (method, SOUP_METHOD_GET) != 0 && g_strcmp0 (method, SOUP_METHOD_POST) != 0) {
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "Allow", "GET, POST");
    respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                   "Method not allowed");
    return;
  }

  if ((user_id = authenticate (self, msg)) == NULL)
    return;

  if (g_strcmp0 (method, SOUP_METHOD_GET) == 0) {
    req = request_new (self, msg, ROUTE_CONTACTS_LIST);
  } else {
    g_autoptr(JsonParser) parser = json_parser_new ();
    JsonObject *obj;
    const char *contact_id;

    if ((obj = parse_body (msg, parser)) == NULL ||
        (contact_id = get_string_member (msg, obj, "userId")) == NULL)
      return;
    if (!parley_token_is_identifier (contact_id) || g_strcmp0 (contact_id, user_id) == 0) {
      respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-field", "Invalid ‘userId’");
      return;
    }
    req = request_new (self, msg, ROUTE_CONTACTS_ADD);
    req->arg = g_strdup (contact_id);
  }

  req->user_id = g_steal_pointer (&user_id);
  request_run (req);
}

static void
turn_cb (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  ParleyHttpApi *self = user_data;
  g_autofree char *user_id = NULL;
  g_autofree char *username = NULL;
  g_autofree char *password = NULL;
  g_autoptr(JsonBuilder) b = NULL;

  if (!check_method (msg, SOUP_METHOD_GET) || (user_id = authenticate (self, msg)) == NULL)
    return;

  if (self->config->turn_secret == NULL || *self->config->turn_secret == '\0') {
    respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "turn-unavailable",
                   "No TURN server is configured");
    return;
  }

  parley_turn_credentials (self->config->turn_secret, user_id,
                           g_get_real_time () / G_USEC_PER_SEC, self->config->turn_ttl,
                           &username, &password);

  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "username");
  json_builder_add_string_value (b, username);
  json_builder_set_member_name (b, "password");
  json_builder_add_string_value (b, password);
  json_builder_set_member_name (b, "ttl");
  json_builder_add_int_value (b, self->config->turn_ttl);
  json_builder_set_member_name (b, "uris");
  json_builder_begin_array (b);
  for (guint i = 0; self->config->turn_uris != NULL && self->config->turn_uris[i] != NULL; i++)
    json_builder_add_string_value (b, self->config->turn_uris[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_debug ("Issued TURN credentials to %s", user_id);
  set_response (msg, SOUP_STATUS_OK, builder_to_string (b));
}

/* Routes are registered by prefix; this checks for an exact match. */
typedef struct {
  const char *path;
  SoupServerCallback callback;
} RouteEntry;

static const RouteEntry routes[] = {
  { "/api/register", register_cb },
  { "/api/login", login_cb },
  { "/api/refresh", refresh_cb },
  { "/api/logout", logout_cb },
  { "/api/users", users_cb },
  { "/api/contacts", contacts_cb },
  { "/api/turn/credentials", turn_cb },
};

static void
api_cb (SoupServer        *server,
        SoupServerMessage *msg,
        const char        *path,
        GHashTable        *query,
        gpointer           user_data)
{
  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++) {
    if (strcmp (path, routes[i].path) == 0) {
      g_debug ("%s %s", soup_server_message_get_method (msg), path);
      routes[i].callback (server, msg, path, query, user_data);
      return;
    }
  }

  respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", "No such API route");
}

/**
 * parley_http_api_new:
 * @config: the configuration; must outlive the API
 * @store: the store; must outlive the API
 *
 * Creates the HTTP API.
 *
 * Returns: (transfer full): the API
 */
ParleyHttpApi *
parley_http_api_new (const ParleyConfig *config,
                     ParleyStore        *store)
{
  ParleyHttpApi *self;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (store != NULL, NULL);

  parley_sodium_init ();

  self = g_new0 (ParleyHttpApi, 1);
  self->ref_count = 1;
  self->config = config;
  self->store = store;
  g_mutex_init (&self->rate_lock);
  g_mutex_init (&self->dummy_lock);
  g_mutex_init (&self->work_lock);
  g_cond_init (&self->work_cond);
  self->user_failures = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                               rate_queue_destroy);
  self->address_attempts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                  rate_queue_destroy);
  return self;
}

/**
 * parley_http_api_set_online_func:
 * @self: the API
 * @func: (nullable): a thread-safe presence query
 * @user_data: data for @func
 *
 * Sets how `GET /api/contacts` finds out whether a contact is online. It is
 * called from worker threads. Without it every contact is offline.
 */
void
parley_http_api_set_online_func (ParleyHttpApi    *self,
                                 ParleyOnlineFunc  func,
                                 gpointer          user_data)
{
  g_return_if_fail (self != NULL);

  self->online_func = func;
  self->online_data = user_data;
}

/**
 * parley_http_api_add_handlers:
 * @self: the API
 * @server: the server
 *
 * Adds every `/api/...` route to @server. Handlers run on @server's main
 * context; blocking work runs on worker threads.
 */
void
parley_http_api_add_handlers (ParleyHttpApi *self,
                              SoupServer    *server)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (SOUP_IS_SERVER (server));

  soup_server_add_early_handler (server, "/api", early_handler_cb, self, NULL);
  soup_server_add_handler (server, "/api", api_cb, api_ref (self), (GDestroyNotify) api_unref);
}

/**
 * parley_http_api_free:
 * @self: (nullable): the API
 *
 * Waits for requests whose blocking part is running on a worker thread (so
 * the store may be closed afterwards) and drops the API. Free it before
 * closing the store.
 */
void
parley_http_api_free (ParleyHttpApi *self)
{
  if (self == NULL)
    return;

  g_mutex_lock (&self->work_lock);
  while (self->n_working > 0)
    g_cond_wait (&self->work_cond, &self->work_lock);
  g_mutex_unlock (&self->work_lock);

  api_unref (self);
}
