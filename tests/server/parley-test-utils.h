/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *parley_test_openssl_hmac_sha1_b64 (const char *secret,
                                         const char *message);
char *parley_test_b64url (const guint8 *data,
                          gsize         len);

G_END_DECLS
