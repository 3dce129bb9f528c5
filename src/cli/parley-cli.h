/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyCliExit:
 * @PARLEY_CLI_EXIT_OK: success
 * @PARLEY_CLI_EXIT_USAGE: bad command line
 * @PARLEY_CLI_EXIT_SERVER: the server refused (authentication, unknown user, ...)
 * @PARLEY_CLI_EXIT_NETWORK: the server could not be reached (a message stays queued)
 * @PARLEY_CLI_EXIT_CALL: the call ended without being answered, or no call is running
 *
 * Exit codes of `parley-cli`.
 */
typedef enum {
  PARLEY_CLI_EXIT_OK = 0,
  PARLEY_CLI_EXIT_USAGE = 1,
  PARLEY_CLI_EXIT_SERVER = 2,
  PARLEY_CLI_EXIT_NETWORK = 3,
  PARLEY_CLI_EXIT_CALL = 4,
} ParleyCliExit;

int parley_cli_run (int    argc,
                    char **argv);

G_END_DECLS
