/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-router"

#include "config.h"

#include <string.h>

#include "parley-router.h"

#define MAX_USER_ID 64

struct _ParleyRouter {
  /* Owned by the network thread: user id → GPtrArray of devices. */
  GHashTable *devices;

  /* Shared: ids of users with at least one device online. */
  GMutex online_lock;
  GHashTable *online;
};

ParleyRouter *
parley_router_new (void)
{
  ParleyRouter *self = g_new0 (ParleyRouter, 1);

  self->devices = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_ptr_array_unref);
  self->online = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_mutex_init (&self->online_lock);
  return self;
}

void
parley_router_free (ParleyRouter *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->devices);
  g_hash_table_unref (self->online);
  g_mutex_clear (&self->online_lock);
  g_free (self);
}

/**
 * parley_router_add:
 *
 * Returns: %TRUE if @device is the first online device of @user_id
 */
gboolean
parley_router_add (ParleyRouter *self,
                   const char   *user_id,
                   gpointer      device)
{
  GPtrArray *list = g_hash_table_lookup (self->devices, user_id);

  if (list != NULL) {
    g_ptr_array_add (list, device);
    return FALSE;
  }

  list = g_ptr_array_sized_new (1);
  g_ptr_array_add (list, device);
  g_hash_table_insert (self->devices, g_strdup (user_id), list);

  g_mutex_lock (&self->online_lock);
  g_hash_table_add (self->online, g_strdup (user_id));
  g_mutex_unlock (&self->online_lock);
  return TRUE;
}

/**
 * parley_router_remove:
 *
 * Returns: %TRUE if @device was the last online device of @user_id
 */
gboolean
parley_router_remove (ParleyRouter *self,
                      const char   *user_id,
                      gpointer      device)
{
  GPtrArray *list = g_hash_table_lookup (self->devices, user_id);

  if (list == NULL || !g_ptr_array_remove_fast (list, device))
    return FALSE;
  if (list->len > 0)
    return FALSE;

  g_hash_table_remove (self->devices, user_id);
  g_mutex_lock (&self->online_lock);
  g_hash_table_remove (self->online, user_id);
  g_mutex_unlock (&self->online_lock);
  return TRUE;
}

/**
 * parley_router_lookup:
 * @user_id: a user id, not necessarily nul-terminated
 * @user_id_len: its length in bytes
 *
 * Returns: (nullable) (transfer none): the online devices of the user
 */
const GPtrArray *
parley_router_lookup (ParleyRouter *self,
                      const char   *user_id,
                      gsize         user_id_len)
{
  char key[MAX_USER_ID + 1];

  if (user_id_len > MAX_USER_ID)
    return NULL;
  memcpy (key, user_id, user_id_len);
  key[user_id_len] = '\0';
  return g_hash_table_lookup (self->devices, key);
}

/**
 * parley_router_is_online:
 *
 * May be called from any thread.
 */
gboolean
parley_router_is_online (ParleyRouter *self,
                         const char   *user_id)
{
  gboolean online;

  g_mutex_lock (&self->online_lock);
  online = g_hash_table_contains (self->online, user_id);
  g_mutex_unlock (&self->online_lock);
  return online;
}

guint
parley_router_n_users (ParleyRouter *self)
{
  return g_hash_table_size (self->devices);
}
