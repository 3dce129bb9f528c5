/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/** PARLEY_CONTENT_VERSION: the newest content envelope version this client writes. */
#define PARLEY_CONTENT_VERSION 1

char *parley_content_encode (const char  *body);
char *parley_content_decode (const char  *content,
                             GError     **error);

G_END_DECLS
