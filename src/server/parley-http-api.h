/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <libsoup/soup.h>

#include "parley-config.h"
#include "parley-store.h"

G_BEGIN_DECLS

/**
 * ParleyHttpApi:
 *
 * The `/api/...` routes of the wire protocol: registration, login, token
 * refresh and logout, user search, contacts and TURN credentials.
 */
typedef struct _ParleyHttpApi ParleyHttpApi;

/**
 * ParleyOnlineFunc:
 * @user_id: a user id
 * @user_data: the data given to parley_http_api_set_online_func()
 *
 * A thread-safe presence query.
 *
 * Returns: %TRUE if @user_id has a device online
 */
typedef gboolean (*ParleyOnlineFunc) (const char *user_id,
                                      gpointer    user_data);

ParleyHttpApi *parley_http_api_new             (const ParleyConfig *config,
                                                ParleyStore        *store);
void           parley_http_api_set_online_func (ParleyHttpApi      *self,
                                                ParleyOnlineFunc    func,
                                                gpointer            user_data);
void           parley_http_api_add_handlers    (ParleyHttpApi      *self,
                                                SoupServer         *server);
void           parley_http_api_free            (ParleyHttpApi      *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ParleyHttpApi, parley_http_api_free)

G_END_DECLS
