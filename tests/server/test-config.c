/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The server configuration: defaults, the key file, the environment, and
 * clear errors for bad values. */
#define G_LOG_DOMAIN "test-config"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "parley-config.h"

static char *
write_config (const char *text)
{
  g_autoptr (GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("parley-config-XXXXXX.conf", &path, &error);

  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

static void
test_defaults (void)
{
  g_autoptr (ParleyConfig) config = parley_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (config->listen_address, ==, "127.0.0.1");
  g_assert_cmpuint (config->port, ==, 8421);
  g_assert_cmpint (config->access_ttl, ==, 900);
  g_assert_cmpuint (config->max_frame, ==, 65536);
  g_assert_null (config->turn_secret);
  g_assert_false (config->has_token_key);
  g_assert_true (parley_config_validate (config, &error));
  g_assert_no_error (error);
}

static void
test_file (void)
{
  g_autoptr (ParleyConfig) config = parley_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *key = g_base64_encode ((const guchar *) "0123456789abcdef0123456789abcdef", 32);
  g_autofree char *text = g_strdup_printf (
    "[server]\nlisten=::1\nport=9000\ndatabase=/tmp/x.db\nbackground-cpus=1,3-4\n"
    "[auth]\ntoken-key=%s\naccess-ttl=60\nargon2-ops=1\nargon2-mem-kib=8\n"
    "[turn]\nsecret=s3cret\nuris=turn:a:3478?transport=udp;turn:b:3478?transport=tcp\nttl=120\n"
    "[ws]\nrate=5\nrate-burst=10\n", key);
  g_autofree char *path = write_config (text);

  g_assert_true (parley_config_load_file (config, path, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (config->listen_address, ==, "::1");
  g_assert_cmpuint (config->port, ==, 9000);
  g_assert_cmpstr (config->db_path, ==, "/tmp/x.db");
  g_assert_cmphex (config->background_cpus, ==, 0x1a);
  g_assert_true (config->has_token_key);
  g_assert_cmpmem (config->token_key, 32, "0123456789abcdef0123456789abcdef", 32);
  g_assert_cmpint (config->access_ttl, ==, 60);
  g_assert_cmpuint (config->pwhash_memlimit, ==, 8 * 1024);
  g_assert_cmpstr (config->turn_secret, ==, "s3cret");
  g_assert_cmpuint (g_strv_length (config->turn_uris), ==, 2);
  g_assert_cmpstr (config->turn_uris[1], ==, "turn:b:3478?transport=tcp");
  g_assert_cmpuint (config->turn_ttl, ==, 120);
  g_assert_cmpuint (config->rate_per_second, ==, 5);
  g_assert_cmpuint (config->rate_burst, ==, 10);
  g_unlink (path);
}

static void
test_env_overrides_file (void)
{
  g_autoptr (ParleyConfig) config = parley_config_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *path = write_config ("[server]\nport=9000\n[turn]\nsecret=from-file\n");

  g_assert_true (parley_config_load_file (config, path, &error));
  g_setenv ("PARLEY_PORT", "9100", TRUE);
  g_setenv ("PARLEY_TURN_SECRET", "from-env", TRUE);
  g_setenv ("PARLEY_TURN_URIS", "turn:x:1,turn:y:2", TRUE);
  g_assert_true (parley_config_load_env (config, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (config->port, ==, 9100);
  g_assert_cmpstr (config->turn_secret, ==, "from-env");
  g_assert_cmpuint (g_strv_length (config->turn_uris), ==, 2);
  g_unsetenv ("PARLEY_PORT");
  g_unsetenv ("PARLEY_TURN_SECRET");
  g_unsetenv ("PARLEY_TURN_URIS");

  g_setenv ("PARLEY_PORT", "seventy", TRUE);
  g_assert_false (parley_config_load_env (config, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "PARLEY_PORT"));
  g_unsetenv ("PARLEY_PORT");
  g_unlink (path);
}

static void
test_bad_values (void)
{
  const char *bad[] = {
    "[server]\nport=70000\n",
    "[server]\nport=-1\n",
    "[server]\nbackground-cpus=\n",
    "[server]\nbackground-cpus=one\n",
    "[server]\nbackground-cpus=3-1\n",
    "[server]\nbackground-cpus=64\n",
    "[server]\nbackground-cpus=0,,1\n",
    "[auth]\naccess-ttl=abc\n",
    "[auth]\naccess-ttl=5\n",
    "[auth]\ntoken-key=dG9vIHNob3J0\n",
    "[auth]\nargon2-mem-kib=1\n",
    "[ws]\nmax-frame=10\n",
    "[ws]\nrate=0\n",
    "[ws]\nping-interval=30\nidle-timeout=10\n",
    "[ws]\nreplay-batch=0\n",
    "[turn]\nttl=1\n",
    "not a key file at all [",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (ParleyConfig) config = parley_config_new ();
    g_autoptr (GError) error = NULL;
    g_autofree char *path = write_config (bad[i]);

    g_test_message ("config: %s", bad[i]);
    g_assert_false (parley_config_load_file (config, path, &error));
    g_assert_nonnull (error);
    g_assert_cmpstr (error->message, !=, "");
    g_unlink (path);
  }
}

static void
test_token_key_file (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("parley-config-XXXXXX", &error);
  g_autofree char *db = g_build_filename (dir, "p.db", NULL);
  g_autofree char *key_path = g_build_filename (dir, "p.db.key", NULL);
  g_autoptr (ParleyConfig) first = parley_config_new ();
  g_autoptr (ParleyConfig) second = parley_config_new ();
  GStatBuf st;

  g_free (first->db_path);
  first->db_path = g_strdup (db);
  g_free (second->db_path);
  second->db_path = g_strdup (db);

  /* Created once, private, and the same key on the next start. */
  g_assert_true (parley_config_ensure_token_key (first, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_stat (key_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_true (parley_config_ensure_token_key (second, &error));
  g_assert_cmpmem (first->token_key, 32, second->token_key, 32);

  g_unlink (key_path);
  g_rmdir (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/defaults", test_defaults);
  g_test_add_func ("/config/file", test_file);
  g_test_add_func ("/config/env-overrides-file", test_env_overrides_file);
  g_test_add_func ("/config/bad-values", test_bad_values);
  g_test_add_func ("/config/token-key-file", test_token_key_file);
  return g_test_run ();
}
