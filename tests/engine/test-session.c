/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-session"

#include <glib/gstdio.h>
#include <sys/stat.h>

#include "parley-error.h"
#include "parley-session.h"

typedef struct {
  char *dir;
  char *path;
} Fixture;

static void
setup (Fixture       *fixture,
       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("parley-session-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->path = g_build_filename (fixture->dir, "profile", "session.json", NULL);
}

static void
teardown (Fixture       *fixture,
          gconstpointer  data)
{
  g_autofree char *profile = g_path_get_dirname (fixture->path);

  g_unlink (fixture->path);
  g_rmdir (profile);
  g_rmdir (fixture->dir);
  g_free (fixture->path);
  g_free (fixture->dir);
}

static guint
file_mode (const char *path)
{
  GStatBuf st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return st.st_mode & 0777;
}

static void
test_round_trip (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(ParleySession) session = parley_session_new ("u1", "alice", "acc.ess", "refresh",
                                                         1700000900);
  g_autoptr(ParleySession) loaded = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (parley_session_save (session, fixture->path, &error));
  g_assert_no_error (error);

  loaded = parley_session_load (fixture->path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (loaded->user_id, ==, "u1");
  g_assert_cmpstr (loaded->username, ==, "alice");
  g_assert_cmpstr (loaded->access_token, ==, "acc.ess");
  g_assert_cmpstr (loaded->refresh_token, ==, "refresh");
  g_assert_cmpint (loaded->expires_at, ==, 1700000900);
}

static void
test_permissions (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(ParleySession) first = parley_session_new ("u1", "alice", "a1", "r1", 1);
  g_autoptr(ParleySession) second = parley_session_new ("u1", "alice", "a2", "r2", 2);
  g_autoptr(ParleySession) loaded = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *profile = g_path_get_dirname (fixture->path);
  mode_t old_umask = umask (0);

  /* Even with a permissive umask the file is private to the owner. */
  g_assert_true (parley_session_save (first, fixture->path, &error));
  g_assert_cmphex (file_mode (fixture->path), ==, 0600);
  g_assert_cmphex (file_mode (profile), ==, 0700);

  /* A rotated refresh token replaces the file, which stays private. */
  g_assert_true (parley_session_save (second, fixture->path, &error));
  umask (old_umask);
  g_assert_cmphex (file_mode (fixture->path), ==, 0600);
  loaded = parley_session_load (fixture->path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (loaded->refresh_token, ==, "r2");
}

static void
test_missing_and_corrupt (Fixture       *fixture,
                          gconstpointer  data)
{
  const char *corrupt[] = { "", "{", "[]", "{\"userId\":\"u\"}",
                            "{\"userId\":\"u\",\"username\":\"a\",\"refreshToken\":\"r\","
                            "\"expiresAt\":\"soon\"}" };
  g_autoptr(GError) error = NULL;
  g_autoptr(ParleySession) none = parley_session_load (fixture->path, &error);
  g_autofree char *profile = g_path_get_dirname (fixture->path);

  g_assert_null (none);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_clear_error (&error);

  g_assert_cmpint (g_mkdir_with_parents (profile, 0700), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (corrupt); i++) {
    g_autoptr(ParleySession) session = NULL;

    g_assert_true (g_file_set_contents (fixture->path, corrupt[i], -1, NULL));
    session = parley_session_load (fixture->path, &error);
    g_assert_null (session);
    g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
    g_clear_error (&error);
  }
}

static void
test_delete (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(ParleySession) session = parley_session_new ("u1", "alice", "a", "r", 1);
  g_autoptr(GError) error = NULL;

  g_assert_true (parley_session_save (session, fixture->path, &error));
  g_assert_true (parley_session_delete (fixture->path, &error));
  g_assert_false (g_file_test (fixture->path, G_FILE_TEST_EXISTS));
  /* Deleting again is fine. */
  g_assert_true (parley_session_delete (fixture->path, &error));
  g_assert_no_error (error);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/session/round-trip", Fixture, NULL, setup, test_round_trip, teardown);
  g_test_add ("/session/permissions", Fixture, NULL, setup, test_permissions, teardown);
  g_test_add ("/session/missing-and-corrupt", Fixture, NULL, setup, test_missing_and_corrupt,
              teardown);
  g_test_add ("/session/delete", Fixture, NULL, setup, test_delete, teardown);

  return g_test_run ();
}
