/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-contact"

#include "parley-contact.h"

/**
 * ParleyContact:
 *
 * A person in the account's contact list, with their presence.
 */
struct _ParleyContact {
  GObject   parent_instance;

  char     *user_id;
  char     *username;
  gboolean  online;
};

G_DEFINE_FINAL_TYPE (ParleyContact, parley_contact, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_USER_ID,
  PROP_USERNAME,
  PROP_ONLINE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
parley_contact_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  ParleyContact *self = PARLEY_CONTACT (object);

  switch (prop_id) {
  case PROP_USER_ID: g_value_set_string (value, self->user_id); break;
  case PROP_USERNAME: g_value_set_string (value, self->username); break;
  case PROP_ONLINE: g_value_set_boolean (value, self->online); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_contact_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  ParleyContact *self = PARLEY_CONTACT (object);

  switch (prop_id) {
  case PROP_USER_ID: self->user_id = g_value_dup_string (value); break;
  case PROP_USERNAME: self->username = g_value_dup_string (value); break;
  case PROP_ONLINE: parley_contact_set_online (self, g_value_get_boolean (value)); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_contact_finalize (GObject *object)
{
  ParleyContact *self = PARLEY_CONTACT (object);

  g_free (self->user_id);
  g_free (self->username);

  G_OBJECT_CLASS (parley_contact_parent_class)->finalize (object);
}

static void
parley_contact_class_init (ParleyContactClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = parley_contact_get_property;
  object_class->set_property = parley_contact_set_property;
  object_class->finalize = parley_contact_finalize;

  /** ParleyContact:user-id: the contact's user id */
  properties[PROP_USER_ID] =
    g_param_spec_string ("user-id", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /** ParleyContact:username: the contact's user name */
  properties[PROP_USERNAME] =
    g_param_spec_string ("username", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /** ParleyContact:online: whether a device of the contact is connected */
  properties[PROP_ONLINE] =
    g_param_spec_boolean ("online", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
parley_contact_init (ParleyContact *self)
{
}

/**
 * parley_contact_new:
 * @user_id: the user id
 * @username: the user name
 * @online: the presence
 *
 * Returns: (transfer full): a new contact
 */
ParleyContact *
parley_contact_new (const char *user_id,
                    const char *username,
                    gboolean    online)
{
  return g_object_new (PARLEY_TYPE_CONTACT,
                       "user-id", user_id,
                       "username", username,
                       "online", online,
                       NULL);
}

/** parley_contact_get_user_id: @self: a contact. Returns: the user id */
const char *
parley_contact_get_user_id (ParleyContact *self)
{
  g_return_val_if_fail (PARLEY_IS_CONTACT (self), NULL);
  return self->user_id;
}

/** parley_contact_get_username: @self: a contact. Returns: the user name */
const char *
parley_contact_get_username (ParleyContact *self)
{
  g_return_val_if_fail (PARLEY_IS_CONTACT (self), NULL);
  return self->username;
}

/** parley_contact_get_online: @self: a contact. Returns: whether the contact is online */
gboolean
parley_contact_get_online (ParleyContact *self)
{
  g_return_val_if_fail (PARLEY_IS_CONTACT (self), FALSE);
  return self->online;
}

/** parley_contact_set_online: @self: a contact. @online: the presence. */
void
parley_contact_set_online (ParleyContact *self,
                           gboolean       online)
{
  g_return_if_fail (PARLEY_IS_CONTACT (self));
  online = !!online;
  if (self->online == online)
    return;
  self->online = online;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ONLINE]);
}
