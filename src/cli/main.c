/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-cli"

#include "config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>

#include "parley-cli.h"

int
main (int   argc,
      char *argv[])
{
  const char *localedir = g_getenv ("PARLEY_LOCALEDIR");

  /* Messages for people (standard error, --help) in the user's language;
   * PARLEY_LOCALEDIR points an uninstalled build at its own translations. */
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && *localedir ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* Standard output carries JSON lines only; every log message goes to standard error. */
  g_log_writer_default_set_use_stderr (TRUE);
  return parley_cli_run (argc, argv);
}
