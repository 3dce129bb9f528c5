/* SPDX-License-Identifier: GPL-3.0-or-later */
int parley_engine_placeholder (void);
int parley_engine_placeholder (void) { return 0; }
