/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-server"

#include "config.h"

#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>

#include "parley-server.h"

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *config_path = NULL;
  g_autofree char *listen = NULL;
  g_autofree char *database = NULL;
  int port = -1;
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "Configuration file", "FILE" },
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen, "Address to listen on", "ADDRESS" },
    { "port", 'p', 0, G_OPTION_ARG_INT, &port, "Port to listen on (0 picks a free one)", "PORT" },
    { "database", 'd', 0, G_OPTION_ARG_FILENAME, &database, "SQLite database file", "PATH" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- the Parley server");
  g_autoptr (GError) error = NULL;
  g_autoptr (ParleyConfig) config = parley_config_new ();
  g_autoptr (ParleyServer) server = NULL;
  g_autoptr (GMainLoop) loop = NULL;

  setlocale (LC_ALL, "");
  signal (SIGPIPE, SIG_IGN);
  parley_log_init ();

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
    "Environment: PARLEY_LISTEN, PARLEY_PORT, PARLEY_DATABASE, PARLEY_TOKEN_KEY,\n"
    "PARLEY_TURN_SECRET, PARLEY_TURN_URIS (comma separated), PARLEY_TURN_TTL.\n"
    "Options override the environment, which overrides the configuration file.");
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("parley-server: %s\n", error->message);
    return 1;
  }
  if (version) {
    g_print ("parley-server %s\n", PACKAGE_VERSION);
    return 0;
  }

  if (config_path && !parley_config_load_file (config, config_path, &error)) {
    g_printerr ("parley-server: %s: %s\n", config_path, error->message);
    return 1;
  }
  if (!parley_config_load_env (config, &error)) {
    g_printerr ("parley-server: %s\n", error->message);
    return 1;
  }
  if (listen) {
    g_free (config->listen_address);
    config->listen_address = g_steal_pointer (&listen);
  }
  if (database) {
    g_free (config->db_path);
    config->db_path = g_steal_pointer (&database);
  }
  if (port >= 0) {
    if (port > 65535) {
      g_printerr ("parley-server: --port must be between 0 and 65535\n");
      return 1;
    }
    config->port = port;
  }

  server = parley_server_new (g_steal_pointer (&config), &error);
  if (server == NULL) {
    g_printerr ("parley-server: %s\n", error->message);
    return 1;
  }

  /* Scripts and tests read the port from this line. */
  printf ("parley-server listening on port %u\n", parley_server_get_port (server));
  fflush (stdout);
  g_message ("Listening on port %u", parley_server_get_port (server));

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, quit_cb, loop);
  g_unix_signal_add (SIGINT, quit_cb, loop);
  g_main_loop_run (loop);

  g_message ("Shutting down");
  g_clear_pointer (&server, parley_server_free);
  return 0;
}
