/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-call-manager"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "parley-call-manager.h"
#include "parley-call-private.h"
#include "parley-engine-enums.h"
#include "parley-error.h"
#include "parley-media.h"

#define DEFAULT_RING_TIMEOUT_S   45
/* Credentials that expire sooner than this are fetched again before a call. */
#define TURN_MIN_VALIDITY_US     (60 * G_USEC_PER_SEC)
#define TURN_RETRY_MAX_S         30
/* Call ids of ended calls kept to ignore their late frames, at most. */
#define MAX_FINISHED_IDS         1024
/* Ended calls kept alive, so that a caller's borrowed pointer stays valid a while. */
#define MAX_RECENT_CALLS         8

/**
 * ParleyCallManager:
 *
 * Owns the calls of one #ParleyClient: turns `call-*` frames into
 * #ParleyCall objects, enforces one call at a time (busy), resolves call
 * glare, keeps TURN credentials fresh and writes every ended call to the
 * call log of the client's cache.
 */
struct _ParleyCallManager {
  GObject              parent_instance;

  ParleyClient        *client;
  ParleyMediaSettings *settings;
  GCancellable        *cancellable;

  GHashTable          *calls;          /* call id → ParleyCall, not ended */
  GHashTable          *finished;       /* call id → NULL, ended calls */
  GQueue               finished_order; /* of call ids owned by @finished */
  GQueue               recent_calls;   /* of ParleyCall, the latest ended ones */
  ParleyCall          *active_call;

  gboolean             relay_only;
  guint                ring_timeout;
  char                *device;         /* this device's tag in call frames */

  /* TURN credentials. */
  char               **turn_uris;
  char                *stun_uri;
  gint64               turn_ttl_us;
  char                *turn_username;
  char                *turn_password;
  gint64               turn_expires;   /* monotonic µs, 0 if none */
  gboolean             turn_fetching;
  guint                turn_refresh_id;
  guint                turn_retry_s;  /* the wait before the next try after a failed fetch */
};

G_DEFINE_FINAL_TYPE (ParleyCallManager, parley_call_manager, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_CLIENT,
  PROP_SETTINGS,
  PROP_ACTIVE_CALL,
  PROP_RELAY_ONLY,
  PROP_RING_TIMEOUT,
  N_PROPS
};

enum {
  SIGNAL_INCOMING_CALL,
  SIGNAL_CALL_STARTED,
  SIGNAL_CALL_ENDED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void fetch_turn_credentials (ParleyCallManager *self);

static gboolean
turn_credentials_fresh (ParleyCallManager *self)
{
  /* Credentials must outlast the start of a call: a minute, or a fifth of a shorter
   * lifetime. */
  gint64 margin = MIN (TURN_MIN_VALIDITY_US, self->turn_ttl_us / 5);

  return self->turn_expires != 0 && self->turn_expires - g_get_monotonic_time () > margin;
}

static void
give_ice_servers (ParleyCallManager *self,
                  ParleyCall        *call)
{
  gboolean have_turn = turn_credentials_fresh (self);

  parley_call_set_ice_servers (call, have_turn ? self->stun_uri : NULL,
                               have_turn ? (const char * const *) self->turn_uris : NULL,
                               have_turn ? self->turn_username : NULL,
                               have_turn ? self->turn_password : NULL);
}

/* Gives the ICE servers to every call still waiting for them, and with
 * @refreshed (new TURN credentials) to the running calls as well: a call
 * that restarts its connection later (the network changed) allocates its
 * relays with them, not with credentials that expired meanwhile. */
static void
serve_calls (ParleyCallManager *self,
             gboolean           refreshed)
{
  g_autoptr(GPtrArray) waiting = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (refreshed || !parley_call_get_has_ice_servers (value))
      g_ptr_array_add (waiting, g_object_ref (value));
  for (guint i = 0; i < waiting->len; i++)
    give_ice_servers (self, g_ptr_array_index (waiting, i));
}

static void
ensure_ice_servers (ParleyCallManager *self,
                    ParleyCall        *call)
{
  if (turn_credentials_fresh (self)) {
    give_ice_servers (self, call);
    return;
  }
  fetch_turn_credentials (self);
}

static gboolean
turn_refresh_cb (gpointer user_data)
{
  ParleyCallManager *self = user_data;

  self->turn_refresh_id = 0;
  fetch_turn_credentials (self);
  return G_SOURCE_REMOVE;
}

/* Turns "turn:host:port?transport=udp" into "stun:host:port": TURN servers answer STUN too. */
static char *
stun_from_turn (const char *turn_uri)
{
  const char *rest;
  const char *query;

  if (g_str_has_prefix (turn_uri, "turn:"))
    rest = turn_uri + strlen ("turn:");
  else
    return NULL;
  query = strchr (rest, '?');
  if (query == NULL)
    return g_strconcat ("stun:", rest, NULL);
  return g_strdup_printf ("stun:%.*s", (int) (query - rest), rest);
}

static gboolean
store_turn_credentials (ParleyCallManager *self,
                        JsonObject        *object)
{
  const char *username = parley_call_frame_get_string (object, "username");
  const char *password = parley_call_frame_get_string (object, "password");
  JsonNode *uris_node = json_object_get_member (object, "uris");
  guint ttl = 0;
  g_autoptr(GStrvBuilder) uris = g_strv_builder_new ();
  g_auto(GStrv) list = NULL;

  if (username == NULL || password == NULL || uris_node == NULL ||
      !JSON_NODE_HOLDS_ARRAY (uris_node) || !parley_call_frame_get_uint (object, "ttl", &ttl) ||
      ttl == 0)
    return FALSE;

  for (guint i = 0; i < json_array_get_length (json_node_get_array (uris_node)); i++) {
    JsonNode *element = json_array_get_element (json_node_get_array (uris_node), i);

    if (JSON_NODE_HOLDS_VALUE (element) && json_node_get_value_type (element) == G_TYPE_STRING &&
        (g_str_has_prefix (json_node_get_string (element), "turn:") ||
         g_str_has_prefix (json_node_get_string (element), "turns:")))
      g_strv_builder_add (uris, json_node_get_string (element));
  }
  list = g_strv_builder_end (uris);

  g_free (self->stun_uri);
  self->stun_uri = NULL;
  for (guint i = 0; list[i] != NULL && self->stun_uri == NULL; i++)
    self->stun_uri = stun_from_turn (list[i]);
  g_strfreev (self->turn_uris);
  self->turn_uris = g_steal_pointer (&list);
  g_free (self->turn_username);
  self->turn_username = g_strdup (username);
  g_free (self->turn_password);
  self->turn_password = g_strdup (password);
  self->turn_ttl_us = (gint64) ttl * G_USEC_PER_SEC;
  self->turn_expires = g_get_monotonic_time () + self->turn_ttl_us;

  /* Fetch again at 80 % of the lifetime. */
  g_clear_handle_id (&self->turn_refresh_id, g_source_remove);
  self->turn_refresh_id = g_timeout_add_seconds (MAX (ttl * 4 / 5, 1), turn_refresh_cb, self);
  return TRUE;
}

static void
turn_credentials_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  ParleyCallManager *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) credentials = NULL;
  gboolean stored = FALSE;

  /* A cancelled fetch means the manager is gone: do not touch it. */
  credentials = parley_client_get_turn_credentials_finish (PARLEY_CLIENT (object), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  self->turn_fetching = FALSE;
  if (credentials == NULL)
    g_debug ("No TURN credentials: %s", error->message);
  else if (!(stored = store_turn_credentials (self, credentials)))
    g_debug ("The server sent unusable TURN credentials");
  else
    g_debug ("Got TURN credentials for %u servers", g_strv_length (self->turn_uris));

  /* A failed fetch (the network is down for a moment, as in a move between networks) is
   * tried again soon, waiting twice as long each time up to TURN_RETRY_MAX_S: a call that
   * restarts once the network is back must not allocate its relays with credentials that
   * expired meanwhile. */
  if (stored) {
    self->turn_retry_s = 0;
  } else {
    self->turn_retry_s = self->turn_retry_s ? MIN (self->turn_retry_s * 2, TURN_RETRY_MAX_S) : 1;
    g_clear_handle_id (&self->turn_refresh_id, g_source_remove);
    self->turn_refresh_id = g_timeout_add_seconds (self->turn_retry_s, turn_refresh_cb, self);
  }

  /* Calls go ahead without TURN when there is none. */
  serve_calls (self, stored);
}

static void
fetch_turn_credentials (ParleyCallManager *self)
{
  if (self->turn_fetching)
    return;
  self->turn_fetching = TRUE;
  parley_client_get_turn_credentials_async (self->client, self->cancellable,
                                            turn_credentials_cb, self);
}

static void
set_active_call (ParleyCallManager *self,
                 ParleyCall        *call)
{
  if (g_set_object (&self->active_call, call))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE_CALL]);
}

static void
remember_finished (ParleyCallManager *self,
                   const char        *call_id)
{
  char *key;

  if (g_hash_table_contains (self->finished, call_id))
    return;
  key = g_strdup (call_id);
  g_hash_table_add (self->finished, key);
  g_queue_push_tail (&self->finished_order, key);
  while (g_queue_get_length (&self->recent_calls) >= MAX_RECENT_CALLS)
    g_object_unref (g_queue_pop_head (&self->recent_calls));
  while (g_queue_get_length (&self->finished_order) > MAX_FINISHED_IDS)
    g_hash_table_remove (self->finished, g_queue_pop_head (&self->finished_order));
}

static void
call_state_changed_cb (ParleyCall        *call,
                       ParleyCallState    state,
                       ParleyCallState    old_state,
                       ParleyCallManager *self)
{
  g_autoptr(ParleyCall) hold = NULL;

  if (state != PARLEY_CALL_STATE_ENDED)
    return;

  hold = g_object_ref (call);
  g_signal_handlers_disconnect_by_data (call, self);
  remember_finished (self, parley_call_get_call_id (call));
  g_queue_push_tail (&self->recent_calls, g_object_ref (call));
  g_hash_table_remove (self->calls, parley_call_get_call_id (call));
  if (self->active_call == call)
    set_active_call (self, NULL);

  if (!parley_call_get_superseded (call)) {
    g_autoptr(ParleyCallRecord) record = parley_call_to_record (call);
    g_autoptr(GError) error = NULL;

    if (!parley_cache_record_call (parley_client_get_cache (self->client), record, &error))
      g_debug ("Cannot log call %s: %s", record->call_id, error->message);
  }
  g_signal_emit (self, signals[SIGNAL_CALL_ENDED], 0, call);
}

static void
add_call (ParleyCallManager *self,
          ParleyCall        *call)
{
  g_hash_table_insert (self->calls, g_strdup (parley_call_get_call_id (call)),
                       g_object_ref (call));
  g_signal_connect (call, "state-changed", G_CALLBACK (call_state_changed_cb), self);
  parley_call_set_relay_only (call, self->relay_only);
}

static char *
lookup_name (ParleyCallManager *self,
             const char        *peer_id)
{
  return parley_cache_lookup_username (parley_client_get_cache (self->client), peer_id);
}

/* Logs an incoming call that was turned away as busy: a missed call. */
static void
log_busy_call (ParleyCallManager *self,
               const char        *call_id,
               const char        *peer_id,
               const char        *peer_device,
               gboolean           video)
{
  g_autofree char *name = lookup_name (self, peer_id);
  g_autoptr(ParleyCall) call = parley_call_new_incoming (self->client, self->settings, call_id,
                                                         peer_id, name, "", 0, video);

  parley_call_set_devices (call, self->device, peer_device);
  parley_call_reject_busy (call);
  add_call (self, call);
  parley_call_end_silently (call, PARLEY_CALL_END_REASON_MISSED);
}

static void
handle_new_offer (ParleyCallManager *self,
                  const char        *call_id,
                  const char        *sender,
                  JsonObject        *frame)
{
  const char *sdp = parley_call_frame_get_string (frame, "sdp");
  const char *media = parley_call_frame_get_string (frame, "media");
  const char *device = parley_call_frame_get_string (frame, "device");
  ParleyCall *active = self->active_call;
  guint generation = 0;
  gboolean video;
  g_autofree char *name = NULL;
  g_autoptr(ParleyCall) call = NULL;
  gboolean glare = FALSE;

  if (sdp == NULL || *sdp == '\0' || !parley_call_frame_get_uint (frame, "gen", &generation)) {
    g_debug ("Ignoring a malformed call-offer for %s from %s", call_id, sender);
    return;
  }
  video = g_strcmp0 (media, "video") == 0;

  if (active != NULL) {
    if (parley_call_get_state (active) == PARLEY_CALL_STATE_OUTGOING_RINGING &&
        g_str_equal (parley_call_get_peer_id (active), sender)) {
      /* Call glare: the smaller call id survives on both sides. */
      if (strcmp (call_id, parley_call_get_call_id (active)) > 0) {
        g_debug ("Call glare with %s: our call %s survives over %s", sender,
                 parley_call_get_call_id (active), call_id);
        return;
      }
      g_debug ("Call glare with %s: their call %s survives over ours %s", sender, call_id,
               parley_call_get_call_id (active));
      video = video || parley_call_get_video (active);
      glare = TRUE;
    } else {
      g_debug ("Busy: rejecting call %s from %s", call_id, sender);
      log_busy_call (self, call_id, sender, device, video);
      return;
    }
  }

  name = lookup_name (self, sender);
  call = parley_call_new_incoming (self->client, self->settings, call_id, sender, name, sdp,
                                   generation, video);
  parley_call_set_devices (call, self->device, device);
  add_call (self, call);
  set_active_call (self, call);
  parley_call_start_ringing (call, self->ring_timeout);
  ensure_ice_servers (self, call);
  g_signal_emit (self, signals[SIGNAL_CALL_STARTED], 0, call);

  if (glare) {
    g_autoptr(GError) error = NULL;

    /* Drop our call only now, so that whoever watches "call-ended" finds the call that
     * replaces it as the active call. */
    parley_call_supersede (active);
    /* The user wanted this call: take it. */
    if (!parley_call_accept (call, &error))
      g_debug ("Cannot accept the surviving call %s: %s", call_id, error->message);
    return;
  }
  if (parley_call_get_state (call) == PARLEY_CALL_STATE_INCOMING_RINGING)
    g_signal_emit (self, signals[SIGNAL_INCOMING_CALL], 0, call);
}

/* A copy of what another device of this account sent for a call: the server
 * gives a user's other devices the callee's call-accept and call-reject. The
 * call stops ringing here; one that has not rung yet never will. */
static void
handle_own_signal (ParleyCallManager *self,
                   const char        *type,
                   const char        *call_id,
                   JsonObject        *frame)
{
  const char *peer = parley_call_frame_get_string (frame, "recipientId");
  const char *reason = parley_call_frame_get_string (frame, "reason");
  ParleyCallEndReason end;
  ParleyCall *call;

  if (g_str_equal (type, "call-accept"))
    end = PARLEY_CALL_END_REASON_ANSWERED_ELSEWHERE;
  else if (g_str_equal (type, "call-reject"))
    end = g_strcmp0 (reason, "busy") == 0 ? PARLEY_CALL_END_REASON_MISSED
                                           : PARLEY_CALL_END_REASON_REJECTED;
  else {
    g_debug ("Ignoring a %s from another device of this account", type);
    return;
  }

  call = g_hash_table_lookup (self->calls, call_id);
  if (call == NULL) {
    remember_finished (self, call_id);
    return;
  }
  if (parley_call_get_outgoing (call) || g_strcmp0 (parley_call_get_peer_id (call), peer) != 0) {
    g_debug ("Ignoring a %s from another device for call %s, not ours to answer", type, call_id);
    return;
  }
  if (parley_call_get_state (call) != PARLEY_CALL_STATE_INCOMING_RINGING)
    return;
  g_debug ("Call %s was %s on another device", call_id, type);
  parley_call_end_silently (call, end);
}

/* A device member may be missing (peers that do not tag their frames, such
 * as a browser page); if present, it is a string of the call id alphabet. */
static gboolean
device_member_valid (JsonObject *frame,
                     const char *member)
{
  return !json_object_has_member (frame, member) ||
         parley_call_id_is_valid (parley_call_frame_get_string (frame, member));
}

static void
call_signal_cb (ParleyClient      *client,
                const char        *type,
                JsonObject        *frame,
                ParleyCallManager *self)
{
  const char *sender = parley_call_frame_get_string (frame, "senderId");
  const char *call_id = parley_call_frame_get_string (frame, "callId");
  const char *self_id = parley_client_get_user_id (self->client);
  const char *to_device = parley_call_frame_get_string (frame, "toDevice");
  ParleyCall *call;

  if (!parley_call_id_is_valid (sender) || !parley_call_id_is_valid (call_id)) {
    g_debug ("Ignoring a %s without a valid sender or call id", type);
    return;
  }
  if (!device_member_valid (frame, "device") || !device_member_valid (frame, "toDevice")) {
    g_debug ("Ignoring a %s for call %s with a malformed device", type, call_id);
    return;
  }
  if (g_strcmp0 (sender, self_id) == 0) {
    /* A copy of our other device's frame: its toDevice is the peer's. */
    handle_own_signal (self, type, call_id, frame);
    return;
  }
  if (to_device != NULL && !g_str_equal (to_device, self->device)) {
    g_debug ("Ignoring a %s for call %s addressed to another device", type, call_id);
    return;
  }

  call = g_hash_table_lookup (self->calls, call_id);
  if (call != NULL) {
    if (!g_str_equal (parley_call_get_peer_id (call), sender)) {
      g_debug ("Ignoring a %s for call %s from %s, not a party of it", type, call_id, sender);
      return;
    }
    parley_call_handle_frame (call, type, frame);
    return;
  }

  if (g_str_equal (type, "call-offer") && !g_hash_table_contains (self->finished, call_id)) {
    handle_new_offer (self, call_id, sender, frame);
    return;
  }
  g_debug ("Ignoring a %s for unknown or ended call %s", type, call_id);
}

static void
request_error_cb (ParleyClient      *client,
                  const char        *code,
                  const char        *message,
                  const char        *ref,
                  ParleyCallManager *self)
{
  ParleyCall *call;

  if (ref == NULL || !g_str_has_prefix (ref, "call-"))
    return;
  call = g_hash_table_lookup (self->calls, ref + strlen ("call-"));
  if (call != NULL && g_strcmp0 (parley_call_get_offer_ref (call), ref) == 0)
    parley_call_handle_request_error (call, code, message);
}

static void
client_state_changed_cb (ParleyClient      *client,
                         ParleyClientState  state,
                         ParleyClientState  old_state,
                         ParleyCallManager *self)
{
  /* Fetch TURN credentials ahead of the first call. */
  if (state == PARLEY_CLIENT_STATE_CONNECTED && !turn_credentials_fresh (self))
    fetch_turn_credentials (self);
}

static void
parley_call_manager_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  ParleyCallManager *self = PARLEY_CALL_MANAGER (object);

  switch (prop_id) {
  case PROP_CLIENT: g_value_set_object (value, self->client); break;
  case PROP_SETTINGS: g_value_set_object (value, self->settings); break;
  case PROP_ACTIVE_CALL: g_value_set_object (value, self->active_call); break;
  case PROP_RELAY_ONLY: g_value_set_boolean (value, self->relay_only); break;
  case PROP_RING_TIMEOUT: g_value_set_uint (value, self->ring_timeout); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_call_manager_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  ParleyCallManager *self = PARLEY_CALL_MANAGER (object);

  switch (prop_id) {
  case PROP_CLIENT: self->client = g_value_dup_object (value); break;
  case PROP_SETTINGS: self->settings = g_value_dup_object (value); break;
  case PROP_RELAY_ONLY:
    parley_call_manager_set_relay_only (self, g_value_get_boolean (value));
    break;
  case PROP_RING_TIMEOUT:
    parley_call_manager_set_ring_timeout (self, g_value_get_uint (value));
    break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_call_manager_constructed (GObject *object)
{
  ParleyCallManager *self = PARLEY_CALL_MANAGER (object);

  G_OBJECT_CLASS (parley_call_manager_parent_class)->constructed (object);

  g_assert (PARLEY_IS_CLIENT (self->client));
  if (self->settings == NULL)
    self->settings = parley_media_settings_new ();
  parley_media_preload ();

  g_signal_connect_object (self->client, "call-signal", G_CALLBACK (call_signal_cb), self, 0);
  g_signal_connect_object (self->client, "request-error", G_CALLBACK (request_error_cb), self, 0);
  g_signal_connect_object (self->client, "state-changed", G_CALLBACK (client_state_changed_cb),
                           self, 0);
  if (parley_client_get_state (self->client) == PARLEY_CLIENT_STATE_CONNECTED)
    fetch_turn_credentials (self);
}

static void
parley_call_manager_dispose (GObject *object)
{
  ParleyCallManager *self = PARLEY_CALL_MANAGER (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->turn_refresh_id, g_source_remove);

  /* Calls still running end with the manager; the other side hears a hangup. */
  if (self->calls != NULL) {
    g_autoptr(GList) calls = g_hash_table_get_values (self->calls);

    for (GList *l = calls; l != NULL; l = l->next)
      g_object_ref (l->data);
    for (GList *l = calls; l != NULL; l = l->next) {
      parley_call_hangup (l->data);
      g_signal_handlers_disconnect_by_data (l->data, self);
      g_object_unref (l->data);
    }
    g_hash_table_remove_all (self->calls);
  }
  g_queue_clear_full (&self->recent_calls, g_object_unref);
  g_clear_object (&self->active_call);
  g_clear_object (&self->settings);
  g_clear_object (&self->client);

  G_OBJECT_CLASS (parley_call_manager_parent_class)->dispose (object);
}

static void
parley_call_manager_finalize (GObject *object)
{
  ParleyCallManager *self = PARLEY_CALL_MANAGER (object);

  /* The process may exit after the last manager: the preload thread must be done. */
  parley_media_preload_finish ();
  g_clear_object (&self->cancellable);
  g_free (self->device);
  g_clear_pointer (&self->calls, g_hash_table_unref);
  g_queue_clear (&self->finished_order);
  g_clear_pointer (&self->finished, g_hash_table_unref);
  g_strfreev (self->turn_uris);
  g_free (self->stun_uri);
  g_free (self->turn_username);
  if (self->turn_password != NULL)
    memset (self->turn_password, 0, strlen (self->turn_password));
  g_free (self->turn_password);

  G_OBJECT_CLASS (parley_call_manager_parent_class)->finalize (object);
}

static void
parley_call_manager_class_init (ParleyCallManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GType type = G_TYPE_FROM_CLASS (klass);

  object_class->get_property = parley_call_manager_get_property;
  object_class->set_property = parley_call_manager_set_property;
  object_class->constructed = parley_call_manager_constructed;
  object_class->dispose = parley_call_manager_dispose;
  object_class->finalize = parley_call_manager_finalize;

  /** ParleyCallManager:client: the client whose calls this manages */
  properties[PROP_CLIENT] =
    g_param_spec_object ("client", NULL, NULL, PARLEY_TYPE_CLIENT,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /** ParleyCallManager:settings: the media settings of every call */
  properties[PROP_SETTINGS] =
    g_param_spec_object ("settings", NULL, NULL, PARLEY_TYPE_MEDIA_SETTINGS,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /** ParleyCallManager:active-call: the call that has not ended, if any */
  properties[PROP_ACTIVE_CALL] =
    g_param_spec_object ("active-call", NULL, NULL, PARLEY_TYPE_CALL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /** ParleyCallManager:relay-only: whether new calls use TURN relays only */
  properties[PROP_RELAY_ONLY] =
    g_param_spec_boolean ("relay-only", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /** ParleyCallManager:ring-timeout: seconds a call rings before it is missed */
  properties[PROP_RING_TIMEOUT] =
    g_param_spec_uint ("ring-timeout", NULL, NULL, 1, 3600, DEFAULT_RING_TIMEOUT_S,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyCallManager::incoming-call:
   * @call: a new call in incoming-ringing
   */
  signals[SIGNAL_INCOMING_CALL] =
    g_signal_new ("incoming-call", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, PARLEY_TYPE_CALL);
  /**
   * ParleyCallManager::call-started:
   * @call: a new call, either direction
   */
  signals[SIGNAL_CALL_STARTED] =
    g_signal_new ("call-started", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, PARLEY_TYPE_CALL);
  /**
   * ParleyCallManager::call-ended:
   * @call: a call that ended, after it was written to the call log (an
   *   incoming call turned away as busy is logged as missed and announced
   *   here only; an outgoing call that lost a call glare is not logged)
   */
  signals[SIGNAL_CALL_ENDED] =
    g_signal_new ("call-ended", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, PARLEY_TYPE_CALL);
}

static void
parley_call_manager_init (ParleyCallManager *self)
{
  self->cancellable = g_cancellable_new ();
  self->calls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->finished = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&self->finished_order);
  g_queue_init (&self->recent_calls);
  self->ring_timeout = DEFAULT_RING_TIMEOUT_S;
  self->device = g_uuid_string_random ();
}

/**
 * parley_call_manager_new:
 * @client: the client
 * @settings: (nullable): the media settings, or %NULL for defaults
 *
 * Returns: (transfer full): a new call manager
 */
ParleyCallManager *
parley_call_manager_new (ParleyClient        *client,
                         ParleyMediaSettings *settings)
{
  g_return_val_if_fail (PARLEY_IS_CLIENT (client), NULL);
  g_return_val_if_fail (settings == NULL || PARLEY_IS_MEDIA_SETTINGS (settings), NULL);

  return g_object_new (PARLEY_TYPE_CALL_MANAGER, "client", client, "settings", settings, NULL);
}

/** parley_call_manager_get_settings: @self: a manager. Returns: (transfer none): the settings */
ParleyMediaSettings *
parley_call_manager_get_settings (ParleyCallManager *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL_MANAGER (self), NULL);
  return self->settings;
}

/**
 * parley_call_manager_get_active_call:
 * @self: a manager
 *
 * Returns: (transfer none) (nullable): the call that has not ended, if any
 */
ParleyCall *
parley_call_manager_get_active_call (ParleyCallManager *self)
{
  g_return_val_if_fail (PARLEY_IS_CALL_MANAGER (self), NULL);
  return self->active_call;
}

/**
 * parley_call_manager_set_relay_only:
 * @self: a manager
 * @relay_only: whether new calls use TURN relays only
 */
void
parley_call_manager_set_relay_only (ParleyCallManager *self,
                                    gboolean           relay_only)
{
  g_return_if_fail (PARLEY_IS_CALL_MANAGER (self));

  relay_only = !!relay_only;
  if (self->relay_only == relay_only)
    return;
  self->relay_only = relay_only;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RELAY_ONLY]);
}

/**
 * parley_call_manager_set_ring_timeout:
 * @self: a manager
 * @seconds: how long new calls ring (at least 1)
 */
void
parley_call_manager_set_ring_timeout (ParleyCallManager *self,
                                      guint              seconds)
{
  g_return_if_fail (PARLEY_IS_CALL_MANAGER (self));

  seconds = CLAMP (seconds, 1, 3600);
  if (self->ring_timeout == seconds)
    return;
  self->ring_timeout = seconds;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RING_TIMEOUT]);
}

/**
 * parley_call_manager_call:
 * @self: a manager
 * @peer_id: the user to call
 * @video: whether to send video
 * @error: return location for a #GError
 *
 * Calls @peer_id. When @peer_id is calling us right now, that call is accepted
 * instead.
 *
 * Returns: (transfer none): the new outgoing-ringing call, or the accepted
 *   incoming call (the manager keeps it while it runs and for the next few
 *   ended calls; take a reference to keep it longer); %NULL with
 *   %PARLEY_ERROR_BUSY when another call runs,
 *   %PARLEY_ERROR_INVALID for a bad user id, %PARLEY_ERROR_NOT_LOGGED_IN or
 *   %PARLEY_ERROR_NETWORK when not connected
 */
ParleyCall *
parley_call_manager_call (ParleyCallManager  *self,
                          const char         *peer_id,
                          gboolean            video,
                          GError            **error)
{
  const char *self_id;
  g_autofree char *call_id = NULL;
  g_autofree char *name = NULL;
  g_autoptr(ParleyCall) call = NULL;

  g_return_val_if_fail (PARLEY_IS_CALL_MANAGER (self), NULL);

  self_id = parley_client_get_user_id (self->client);
  if (self_id == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_NOT_LOGGED_IN, _("Not logged in"));
    return NULL;
  }
  if (!parley_call_id_is_valid (peer_id) || g_str_equal (peer_id, self_id)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("Cannot call this user id"));
    return NULL;
  }

  if (self->active_call != NULL) {
    ParleyCall *active = self->active_call;

    if (parley_call_get_state (active) == PARLEY_CALL_STATE_INCOMING_RINGING &&
        g_str_equal (parley_call_get_peer_id (active), peer_id)) {
      if (video && !parley_call_add_video (active, error))
        return NULL;
      if (!parley_call_accept (active, error))
        return NULL;
      return active;
    }
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_BUSY, _("Another call is running"));
    return NULL;
  }
  if (parley_client_get_state (self->client) != PARLEY_CLIENT_STATE_CONNECTED) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_NETWORK, _("Not connected to the server"));
    return NULL;
  }

  call_id = g_uuid_string_random ();
  name = lookup_name (self, peer_id);
  call = parley_call_new_outgoing (self->client, self->settings, call_id, peer_id, name, video);
  parley_call_set_devices (call, self->device, NULL);
  add_call (self, call);
  set_active_call (self, call);
  parley_call_start_ringing (call, self->ring_timeout);
  g_signal_emit (self, signals[SIGNAL_CALL_STARTED], 0, call);
  if (parley_call_get_state (call) == PARLEY_CALL_STATE_OUTGOING_RINGING)
    ensure_ice_servers (self, call);
  return call;
}
