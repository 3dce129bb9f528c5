/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void parley_engine_test_remove_tree (const char *path);

G_END_DECLS
