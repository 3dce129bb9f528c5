/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-utf8.h: strict UTF-8 validation with an ASCII fast path (internal). */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean parley_utf8_validate      (const guint8 *data,
                                    gsize         len);
gsize    parley_utf8_sequence_len  (const guint8 *data,
                                    gsize         len);

G_END_DECLS
