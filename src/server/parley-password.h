/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char     *parley_password_hash   (const char  *password,
                                  guint64      opslimit,
                                  gsize        memlimit,
                                  GError     **error);
gboolean  parley_password_verify (const char  *hash,
                                  const char  *password);
void      parley_sodium_init     (void);

G_END_DECLS
