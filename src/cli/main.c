/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-cli"

#include <glib.h>

#include "parley-cli.h"

int
main (int   argc,
      char *argv[])
{
  /* Standard output carries JSON lines only; every log message goes to standard error. */
  g_log_writer_default_set_use_stderr (TRUE);
  return parley_cli_run (argc, argv);
}
