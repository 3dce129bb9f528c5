/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-config"

#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "parley-config.h"
#include "parley-sched.h"

/**
 * parley_config_new:
 *
 * Returns: (transfer full): a configuration holding the built-in defaults.
 */
ParleyConfig *
parley_config_new (void)
{
  ParleyConfig *self = g_new0 (ParleyConfig, 1);

  self->listen_address = g_strdup ("127.0.0.1");
  self->port = 8421;
  self->db_path = g_strdup ("parley.db");
  self->listen_backlog = 4096;

  self->access_ttl = 15 * 60;
  self->refresh_ttl = 30 * 24 * 60 * 60;
  self->pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  self->pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  self->login_limit_per_user = 10;
  self->login_limit_per_address = 30;
  self->login_limit_window = 60;

  self->turn_uris = g_new0 (char *, 1);
  self->turn_ttl = 24 * 60 * 60;

  self->max_frame = 64 * 1024;
  self->rate_burst = 200;
  self->rate_per_second = 100;
  self->auth_timeout = 5;
  self->ping_interval = 30;
  self->idle_timeout = 75;
  self->replay_batch = 100;

  return self;
}

static gboolean
set_token_key (ParleyConfig *self,
               const char   *base64,
               GError      **error)
{
  gsize len = 0;
  g_autofree guchar *key = g_base64_decode (base64, &len);

  if (len != PARLEY_TOKEN_KEY_LEN) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                 "The token key must be %d bytes in base64", PARLEY_TOKEN_KEY_LEN);
    return FALSE;
  }
  memcpy (self->token_key, key, PARLEY_TOKEN_KEY_LEN);
  sodium_memzero (key, len);
  self->has_token_key = TRUE;
  return TRUE;
}

static gboolean
parse_uint (const char *text,
            guint64     max,
            guint64    *out)
{
  guint64 value;

  if (!g_ascii_string_to_unsigned (text, 10, 0, max, &value, NULL))
    return FALSE;
  *out = value;
  return TRUE;
}

/* Reads an optional unsigned integer key; a missing key leaves *out alone. */
static gboolean
read_uint (GKeyFile   *file,
           const char *group,
           const char *key,
           guint64     max,
           guint64    *out,
           GError    **error)
{
  g_autofree char *text = g_key_file_get_value (file, group, key, NULL);

  if (text == NULL)
    return TRUE;
  g_strstrip (text);
  if (!parse_uint (text, max, out)) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                 "[%s] %s: expected a number up to %" G_GUINT64_FORMAT, group, key, max);
    return FALSE;
  }
  return TRUE;
}

#define READ_UINT(group, key, field, max)                                   \
  G_STMT_START {                                                            \
    guint64 v_ = self->field;                                               \
    if (!read_uint (file, group, key, max, &v_, error))                     \
      return FALSE;                                                         \
    self->field = v_;                                                       \
  } G_STMT_END

static void
replace_string (char      **field,
                const char *value)
{
  g_free (*field);
  *field = g_strdup (value);
}

/**
 * parley_config_load_file:
 * @self: a #ParleyConfig
 * @path: a GKeyFile with groups `[server]`, `[auth]`, `[turn]` and `[ws]`
 * @error: return location for a #GError
 *
 * Merges @path into @self. Keys that are absent keep their values.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_config_load_file (ParleyConfig *self,
                         const char   *path,
                         GError      **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autofree char *text = NULL;
  g_auto (GStrv) uris = NULL;
  guint64 mem_kib = self->pwhash_memlimit / 1024;

  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, error))
    return FALSE;

  if ((text = g_key_file_get_string (file, "server", "listen", NULL)))
    replace_string (&self->listen_address, g_strstrip (text));
  g_clear_pointer (&text, g_free);
  if ((text = g_key_file_get_string (file, "server", "database", NULL)))
    replace_string (&self->db_path, g_strstrip (text));
  g_clear_pointer (&text, g_free);
  READ_UINT ("server", "port", port, 65535);
  READ_UINT ("server", "backlog", listen_backlog, 65535);
  if ((text = g_key_file_get_string (file, "server", "background-cpus", NULL))) {
    g_autoptr (GError) local_error = NULL;

    if (!parley_sched_parse_cpus (text, &self->background_cpus, &local_error)) {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "[server] background-cpus: %s", local_error->message);
      return FALSE;
    }
  }
  g_clear_pointer (&text, g_free);

  if ((text = g_key_file_get_string (file, "auth", "token-key", NULL))) {
    gboolean ok = set_token_key (self, g_strstrip (text), error);

    sodium_memzero (text, strlen (text));
    if (!ok)
      return FALSE;
  }
  g_clear_pointer (&text, g_free);
  READ_UINT ("auth", "access-ttl", access_ttl, G_MAXINT32);
  READ_UINT ("auth", "refresh-ttl", refresh_ttl, G_MAXINT32);
  READ_UINT ("auth", "argon2-ops", pwhash_opslimit, crypto_pwhash_OPSLIMIT_MAX);
  if (!read_uint (file, "auth", "argon2-mem-kib", G_MAXUINT32, &mem_kib, error))
    return FALSE;
  self->pwhash_memlimit = (gsize) mem_kib * 1024;
  READ_UINT ("auth", "login-limit-user", login_limit_per_user, G_MAXUINT32);
  READ_UINT ("auth", "login-limit-address", login_limit_per_address, G_MAXUINT32);
  READ_UINT ("auth", "login-limit-window", login_limit_window, G_MAXUINT32);

  if ((text = g_key_file_get_string (file, "turn", "secret", NULL))) {
    replace_string (&self->turn_secret, g_strstrip (text));
    sodium_memzero (text, strlen (text));
  }
  g_clear_pointer (&text, g_free);
  if ((uris = g_key_file_get_string_list (file, "turn", "uris", NULL, NULL))) {
    g_strfreev (self->turn_uris);
    self->turn_uris = g_steal_pointer (&uris);
  }
  READ_UINT ("turn", "ttl", turn_ttl, G_MAXINT32);

  READ_UINT ("ws", "max-frame", max_frame, 16 * 1024 * 1024);
  READ_UINT ("ws", "rate-burst", rate_burst, G_MAXUINT32);
  READ_UINT ("ws", "rate", rate_per_second, G_MAXUINT32);
  READ_UINT ("ws", "auth-timeout", auth_timeout, 3600);
  READ_UINT ("ws", "ping-interval", ping_interval, 3600);
  READ_UINT ("ws", "idle-timeout", idle_timeout, 3600);
  READ_UINT ("ws", "replay-batch", replay_batch, 100000);

  return parley_config_validate (self, error);
}

/**
 * parley_config_load_env:
 * @self: a #ParleyConfig
 * @error: return location for a #GError
 *
 * Merges `PARLEY_LISTEN`, `PARLEY_PORT`, `PARLEY_DATABASE`, `PARLEY_TOKEN_KEY`,
 * `PARLEY_TURN_SECRET`, `PARLEY_TURN_URIS` (comma separated) and
 * `PARLEY_TURN_TTL` into @self.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_config_load_env (ParleyConfig *self,
                        GError      **error)
{
  const char *value;
  guint64 number;

  if ((value = g_getenv ("PARLEY_LISTEN")))
    replace_string (&self->listen_address, value);
  if ((value = g_getenv ("PARLEY_DATABASE")))
    replace_string (&self->db_path, value);
  if ((value = g_getenv ("PARLEY_PORT"))) {
    if (!parse_uint (value, 65535, &number)) {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "PARLEY_PORT must be a port number");
      return FALSE;
    }
    self->port = number;
  }
  if ((value = g_getenv ("PARLEY_TOKEN_KEY")) && !set_token_key (self, value, error))
    return FALSE;
  if ((value = g_getenv ("PARLEY_TURN_SECRET")))
    replace_string (&self->turn_secret, value);
  if ((value = g_getenv ("PARLEY_TURN_URIS"))) {
    g_strfreev (self->turn_uris);
    self->turn_uris = g_strsplit (value, ",", -1);
  }
  if ((value = g_getenv ("PARLEY_TURN_TTL"))) {
    if (!parse_uint (value, G_MAXINT32, &number)) {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "PARLEY_TURN_TTL must be a number of seconds");
      return FALSE;
    }
    self->turn_ttl = number;
  }
  return parley_config_validate (self, error);
}

/**
 * parley_config_validate:
 * @self: a #ParleyConfig
 * @error: return location for a #GError
 *
 * Checks the values that depend on each other.
 *
 * Returns: %TRUE if the configuration is usable
 */
gboolean
parley_config_validate (ParleyConfig *self,
                        GError      **error)
{
  const char *problem = NULL;

  if (self->access_ttl < 10)
    problem = "access-ttl must be at least 10 seconds";
  else if (self->refresh_ttl < self->access_ttl)
    problem = "refresh-ttl must not be shorter than access-ttl";
  else if (self->pwhash_opslimit < crypto_pwhash_OPSLIMIT_MIN)
    problem = "argon2-ops is below the Argon2id minimum";
  else if (self->pwhash_memlimit < crypto_pwhash_MEMLIMIT_MIN)
    problem = "argon2-mem-kib is below the Argon2id minimum";
  else if (self->max_frame < 1024)
    problem = "max-frame must be at least 1024 bytes";
  else if (self->rate_burst == 0 || self->rate_per_second == 0)
    problem = "rate and rate-burst must be positive";
  else if (self->replay_batch == 0)
    problem = "replay-batch must be positive";
  else if (self->ping_interval == 0 || self->idle_timeout <= self->ping_interval)
    problem = "idle-timeout must be longer than ping-interval";
  else if (self->turn_ttl < 5)
    problem = "turn ttl must be at least 5 seconds";

  if (problem) {
    g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, problem);
    return FALSE;
  }
  return TRUE;
}

/**
 * parley_config_ensure_token_key:
 * @self: a #ParleyConfig
 * @error: return location for a #GError
 *
 * Without a configured token key, reads the key stored beside the database
 * (`DB.key`, mode 0600) or creates one there, so that access tokens stay
 * valid across a restart of the server.
 *
 * Returns: %TRUE on success
 */
gboolean
parley_config_ensure_token_key (ParleyConfig *self,
                                GError      **error)
{
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (self->has_token_key)
    return TRUE;

  path = g_strconcat (self->db_path, ".key", NULL);
  if (g_file_get_contents (path, &contents, &len, NULL)) {
    if (len != PARLEY_TOKEN_KEY_LEN) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: a token key file must hold %d bytes", path, PARLEY_TOKEN_KEY_LEN);
      return FALSE;
    }
    memcpy (self->token_key, contents, PARLEY_TOKEN_KEY_LEN);
    sodium_memzero (contents, len);
  } else {
    randombytes_buf (self->token_key, PARLEY_TOKEN_KEY_LEN);
    if (!g_file_set_contents_full (path, (const char *) self->token_key, PARLEY_TOKEN_KEY_LEN,
                                   G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
      return FALSE;
  }
  self->has_token_key = TRUE;
  return TRUE;
}

void
parley_config_free (ParleyConfig *self)
{
  if (self == NULL)
    return;
  g_free (self->listen_address);
  g_free (self->db_path);
  if (self->turn_secret) {
    sodium_memzero (self->turn_secret, strlen (self->turn_secret));
    g_free (self->turn_secret);
  }
  g_strfreev (self->turn_uris);
  sodium_memzero (self->token_key, sizeof self->token_key);
  g_free (self);
}
