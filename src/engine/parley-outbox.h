/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "parley-cache.h"
#include "parley-connection.h"

G_BEGIN_DECLS

#define PARLEY_TYPE_OUTBOX (parley_outbox_get_type ())

G_DECLARE_FINAL_TYPE (ParleyOutbox, parley_outbox, PARLEY, OUTBOX, GObject)

ParleyOutbox *parley_outbox_new          (ParleyCache      *cache,
                                          ParleyConnection *connection);
gboolean      parley_outbox_queue        (ParleyOutbox     *self,
                                          ParleyMessage    *message,
                                          GError          **error);
void          parley_outbox_flush        (ParleyOutbox     *self);
gboolean      parley_outbox_handle_ack   (ParleyOutbox     *self,
                                          JsonObject       *frame);
gboolean      parley_outbox_handle_error (ParleyOutbox     *self,
                                          JsonObject       *frame);
guint         parley_outbox_get_n_pending (ParleyOutbox    *self);

G_END_DECLS
