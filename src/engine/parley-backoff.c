/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-backoff"

#include "parley-backoff.h"

static guint32
default_random (guint32  bound,
                gpointer user_data)
{
  return (guint32) g_random_int_range (0, (gint32) MIN (bound, (guint32) G_MAXINT32));
}

/**
 * parley_backoff_init:
 * @backoff: the struct to set up
 * @base_ms: the ceiling of the first delay
 * @max_ms: the largest ceiling
 * @random_func: (nullable): random source, %NULL for g_random_int_range()
 * @random_data: data for @random_func
 *
 * Sets up @backoff at its first attempt.
 */
void
parley_backoff_init (ParleyBackoff    *backoff,
                     guint             base_ms,
                     guint             max_ms,
                     ParleyRandomFunc  random_func,
                     gpointer          random_data)
{
  g_return_if_fail (backoff != NULL);
  g_return_if_fail (base_ms > 0 && base_ms <= max_ms);

  backoff->base_ms = base_ms;
  backoff->max_ms = max_ms;
  backoff->attempt = 0;
  backoff->random_func = random_func ? random_func : default_random;
  backoff->random_data = random_data;
}

/**
 * parley_backoff_ceiling_ms:
 * @backoff: a backoff
 *
 * Returns: the largest delay the next call of parley_backoff_next_ms() can return
 */
guint
parley_backoff_ceiling_ms (const ParleyBackoff *backoff)
{
  guint64 ceiling = backoff->base_ms;

  /* Doubling stops as soon as the ceiling is reached, so this cannot overflow. */
  for (guint i = 0; i < backoff->attempt && ceiling < backoff->max_ms; i++)
    ceiling *= 2;

  return (guint) MIN (ceiling, (guint64) backoff->max_ms);
}

/**
 * parley_backoff_next_ms:
 * @backoff: a backoff
 *
 * Draws the delay before the next attempt and advances to the next step.
 *
 * Returns: a delay in milliseconds
 */
guint
parley_backoff_next_ms (ParleyBackoff *backoff)
{
  guint ceiling;

  g_return_val_if_fail (backoff != NULL, 0);

  ceiling = parley_backoff_ceiling_ms (backoff);
  if (ceiling < backoff->max_ms)
    backoff->attempt++;

  return backoff->random_func (ceiling + 1, backoff->random_data);
}

/**
 * parley_backoff_reset:
 * @backoff: a backoff
 *
 * Starts over at the first step, after a successful connection.
 */
void
parley_backoff_reset (ParleyBackoff *backoff)
{
  g_return_if_fail (backoff != NULL);

  backoff->attempt = 0;
}
