/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ParleyRandomFunc:
 * @bound: exclusive upper bound, at least 1
 * @user_data: data given to parley_backoff_init()
 *
 * Returns: a uniformly distributed number in [0, @bound)
 */
typedef guint32 (*ParleyRandomFunc) (guint32 bound, gpointer user_data);

/**
 * ParleyBackoff:
 *
 * Exponential backoff with full jitter: the n-th delay is uniform in
 * [0, min (max, base · 2ⁿ)]. Plain struct, embed it.
 */
typedef struct {
  guint            base_ms;
  guint            max_ms;
  guint            attempt;
  ParleyRandomFunc random_func;
  gpointer         random_data;
} ParleyBackoff;

void  parley_backoff_init       (ParleyBackoff    *backoff,
                                 guint             base_ms,
                                 guint             max_ms,
                                 ParleyRandomFunc  random_func,
                                 gpointer          random_data);
guint parley_backoff_ceiling_ms (const ParleyBackoff *backoff);
guint parley_backoff_next_ms    (ParleyBackoff    *backoff);
void  parley_backoff_reset      (ParleyBackoff    *backoff);

G_END_DECLS
