/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define PARLEY_TYPE_CONTACT (parley_contact_get_type ())

G_DECLARE_FINAL_TYPE (ParleyContact, parley_contact, PARLEY, CONTACT, GObject)

ParleyContact *parley_contact_new          (const char    *user_id,
                                            const char    *username,
                                            gboolean       online);
const char    *parley_contact_get_user_id  (ParleyContact *self);
const char    *parley_contact_get_username (ParleyContact *self);
gboolean       parley_contact_get_online   (ParleyContact *self);
void           parley_contact_set_online   (ParleyContact *self,
                                            gboolean       online);

G_END_DECLS
