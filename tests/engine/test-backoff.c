/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-backoff"

#include "parley-backoff.h"

typedef struct {
  guint32 last_bound;
  guint   calls;
  double  fraction;   /* Which part of the range to return: 0 = lowest, 1 = highest. */
} FakeRandom;

static guint32
fake_random (guint32  bound,
             gpointer user_data)
{
  FakeRandom *fake = user_data;

  fake->last_bound = bound;
  fake->calls++;
  return (guint32) ((bound - 1) * fake->fraction);
}

static void
test_ceilings_double_and_cap (void)
{
  /* 0.5 s doubling up to 30 s: these are the values the design asks for. */
  const guint expected[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000 };
  FakeRandom fake = { .fraction = 1.0 };
  ParleyBackoff backoff;

  parley_backoff_init (&backoff, 500, 30000, fake_random, &fake);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    guint delay = parley_backoff_next_ms (&backoff);

    /* With the highest random value the delay is the ceiling itself. */
    g_assert_cmpuint (delay, ==, expected[i]);
    g_assert_cmpuint (fake.last_bound, ==, expected[i] + 1);
  }
  g_assert_cmpuint (fake.calls, ==, G_N_ELEMENTS (expected));
}

static void
test_full_jitter_lower_end (void)
{
  FakeRandom fake = { .fraction = 0.0 };
  ParleyBackoff backoff;

  parley_backoff_init (&backoff, 500, 30000, fake_random, &fake);
  for (guint i = 0; i < 12; i++)
    g_assert_cmpuint (parley_backoff_next_ms (&backoff), ==, 0);
}

static void
test_reset (void)
{
  FakeRandom fake = { .fraction = 1.0 };
  ParleyBackoff backoff;

  parley_backoff_init (&backoff, 500, 30000, fake_random, &fake);
  for (guint i = 0; i < 5; i++)
    parley_backoff_next_ms (&backoff);
  g_assert_cmpuint (parley_backoff_ceiling_ms (&backoff), ==, 16000);

  parley_backoff_reset (&backoff);
  g_assert_cmpuint (parley_backoff_ceiling_ms (&backoff), ==, 500);
  g_assert_cmpuint (parley_backoff_next_ms (&backoff), ==, 500);
}

static void
test_default_random_in_range (void)
{
  ParleyBackoff backoff;

  parley_backoff_init (&backoff, 500, 30000, NULL, NULL);
  for (guint i = 0; i < 200; i++) {
    guint ceiling = parley_backoff_ceiling_ms (&backoff);
    guint delay = parley_backoff_next_ms (&backoff);

    g_assert_cmpuint (delay, <=, ceiling);
  }
}

static void
test_no_overflow_with_many_attempts (void)
{
  FakeRandom fake = { .fraction = 1.0 };
  ParleyBackoff backoff;

  parley_backoff_init (&backoff, 1, G_MAXUINT32 - 1, fake_random, &fake);
  for (guint i = 0; i < 100; i++)
    g_assert_cmpuint (parley_backoff_next_ms (&backoff), <=, G_MAXUINT32 - 1);
  g_assert_cmpuint (parley_backoff_ceiling_ms (&backoff), ==, G_MAXUINT32 - 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/backoff/ceilings", test_ceilings_double_and_cap);
  g_test_add_func ("/backoff/full-jitter", test_full_jitter_lower_end);
  g_test_add_func ("/backoff/reset", test_reset);
  g_test_add_func ("/backoff/default-random", test_default_random_in_range);
  g_test_add_func ("/backoff/no-overflow", test_no_overflow_with_many_attempts);

  return g_test_run ();
}
