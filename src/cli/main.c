/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-cli"

#include "parley-cli.h"

int
main (int   argc,
      char *argv[])
{
  return parley_cli_run (argc, argv);
}
