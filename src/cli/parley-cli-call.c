/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-cli"

#include "config.h"

#include <glib/gi18n-lib.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>

#include "parley-cli.h"
#include "parley-cli-private.h"
#include "parley-error.h"
#include "parley-media.h"
#include "parley-sched.h"

/*
 * Calls in parley-cli: `call USER`, `listen` (which also rings, and answers
 * with --auto-answer), and a control socket in the profile directory through
 * which `parley-cli hangup` and `parley-cli call-control CMD` steer the
 * running call from another process. Every event is one JSON line.
 */

#define CONTROL_SOCKET_NAME "control.sock"
#define CONTROL_MAX_LINE 256

/* Events */

static void
add_call (JsonBuilder *builder,
          ParleyCall  *call)
{
  cli_add_string (builder, "callId", parley_call_get_call_id (call));
}

static void
add_structure_field (JsonBuilder  *builder,
                     GQuark        field,
                     const GValue *value)
{
  const char *name = g_quark_to_string (field);

  switch (G_VALUE_TYPE (value)) {
  case G_TYPE_INT:
    cli_add_int (builder, name, g_value_get_int (value));
    break;
  case G_TYPE_UINT:
    cli_add_int (builder, name, g_value_get_uint (value));
    break;
  case G_TYPE_INT64:
    cli_add_int (builder, name, g_value_get_int64 (value));
    break;
  case G_TYPE_UINT64:
    cli_add_int (builder, name, (gint64) MIN (g_value_get_uint64 (value), G_MAXINT64));
    break;
  case G_TYPE_DOUBLE:
    json_builder_set_member_name (builder, name);
    json_builder_add_double_value (builder, g_value_get_double (value));
    break;
  case G_TYPE_BOOLEAN:
    json_builder_set_member_name (builder, name);
    json_builder_add_boolean_value (builder, g_value_get_boolean (value));
    break;
  case G_TYPE_STRING:
    cli_add_string (builder, name, g_value_get_string (value));
    break;
  default:
    break;
  }
}

static void
peer_state_cb (ParleyPeer      *peer,
               ParleyPeerState  new_state,
               ParleyPeerState  old_state,
               ParleyCall      *call)
{
  JsonBuilder *builder = cli_begin_event ("peer-state");

  add_call (builder, call);
  cli_add_string (builder, "state", parley_peer_state_to_string (new_state));
  cli_add_string (builder, "previous", parley_peer_state_to_string (old_state));
  cli_add_int (builder, "generation", parley_peer_get_generation (peer));
  cli_end_and_print (builder);
}

static void
peer_ice_state_cb (ParleyPeer *peer,
                   GParamSpec *pspec,
                   ParleyCall *call)
{
  g_autofree char *state = NULL;
  JsonBuilder *builder;

  g_object_get (peer, "ice-connection-state", &state, NULL);
  builder = cli_begin_event ("ice-state");
  add_call (builder, call);
  cli_add_string (builder, "state", state);
  cli_add_int (builder, "generation", parley_peer_get_generation (peer));
  cli_end_and_print (builder);
}

static void
peer_first_frame_cb (ParleyPeer *peer,
                     const char *kind,
                     ParleyCall *call)
{
  JsonBuilder *builder = cli_begin_event ("first-remote-frame");

  add_call (builder, call);
  cli_add_string (builder, "kind", kind);
  cli_add_int (builder, "generation", parley_peer_get_generation (peer));
  cli_end_and_print (builder);
}

static void
peer_media_report_cb (ParleyPeer         *peer,
                      const char         *kind,
                      const GstStructure *report,
                      ParleyCall         *call)
{
  JsonBuilder *builder = cli_begin_event ("media-report");
  int n = gst_structure_n_fields (report);

  add_call (builder, call);
  cli_add_string (builder, "kind", kind);
  for (int i = 0; i < n; i++) {
    const char *name = gst_structure_nth_field_name (report, (guint) i);

    add_structure_field (builder, g_quark_from_string (name),
                         gst_structure_get_value (report, name));
  }
  cli_end_and_print (builder);
}

static void
peer_stats_cb (ParleyPeer      *peer,
               ParleyPeerStats *stats,
               ParleyCall      *call)
{
  JsonBuilder *builder = cli_begin_event ("stats");
  g_autoptr(JsonObject) object = parley_peer_stats_to_json (stats);
  g_autoptr(GList) members = json_object_get_members (object);

  add_call (builder, call);
  for (GList *l = members; l != NULL; l = l->next) {
    json_builder_set_member_name (builder, l->data);
    json_builder_add_value (builder, json_node_copy (json_object_get_member (object, l->data)));
  }
  cli_end_and_print (builder);
}

static void
peer_error_cb (ParleyPeer   *peer,
               const GError *error,
               ParleyCall   *call)
{
  JsonBuilder *builder = cli_begin_event ("peer-error");

  add_call (builder, call);
  cli_add_string (builder, "message", error->message);
  cli_end_and_print (builder);
}

/* Data channel ping: `call --ping N` measures round trips over an unreliable channel
 * while media flows; every parley-cli echoes what arrives on a "parley-ping" channel. */

#define PING_LABEL "parley-ping"
#define PING_TIMEOUT_MS 5000
/* Pings over the link: unordered and never retransmitted, as on the
 * channel, on stream 0; a request is echoed as a reply by the far side. */
#define LINK_PING_STREAM 0
#define LINK_PING_FLAGS (PARLEY_LINK_SEND_UNORDERED | PARLEY_LINK_SEND_UNRELIABLE)
#define LINK_PING_REQUEST 0
#define LINK_PING_REPLY 1

static int
compare_int64 (gconstpointer a,
               gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

static double
percentile_ms (GArray *sorted,
               double  p)
{
  guint i;

  if (sorted->len == 0)
    return -1;
  i = (guint) MIN (sorted->len - 1, (guint) (p / 100.0 * sorted->len));
  return g_array_index (sorted, gint64, i) / 1000.0;
}

static void
ping_report (Cli *cli)
{
  JsonBuilder *builder = cli_begin_event ("dc-ping");

  g_array_sort (cli->ping_rtts, compare_int64);
  /* webrtcbin's data channel, or the call's ParleyLink. */
  cli_add_string (builder, "path", cli->ping_on_link ? "link" : "webrtcbin");
  cli_add_int (builder, "sent", cli->ping_sent);
  cli_add_int (builder, "received", cli->ping_rtts->len);
  json_builder_set_member_name (builder, "p50Ms");
  json_builder_add_double_value (builder, percentile_ms (cli->ping_rtts, 50));
  json_builder_set_member_name (builder, "p99Ms");
  json_builder_add_double_value (builder, percentile_ms (cli->ping_rtts, 99));
  json_builder_set_member_name (builder, "maxMs");
  json_builder_add_double_value (builder, percentile_ms (cli->ping_rtts, 100));
  /* What the data path's threads got from the system (see
   * ParleyMediaSettings:realtime). */
  json_builder_set_member_name (builder, "threadPriority");
  json_builder_add_string_value (builder,
                                 parley_sched_grant_to_string (parley_sched_best_grant ()));
  cli_end_and_print (builder);
}

static gboolean
ping_timeout_cb (gpointer user_data)
{
  Cli *cli = user_data;

  cli->ping_id = 0;
  ping_report (cli);
  return G_SOURCE_REMOVE;
}

static gboolean
ping_send_cb (gpointer user_data)
{
  Cli *cli = user_data;
  gint64 payload[2] = { (cli->ping_run << 32) | cli->ping_sent, g_get_monotonic_time () };
  g_autoptr(GBytes) bytes = g_bytes_new (payload, sizeof payload);

  if (cli->ping_sent >= cli->ping_target) {
    cli->ping_id = g_timeout_add (PING_TIMEOUT_MS, ping_timeout_cb, cli);
    return G_SOURCE_REMOVE;
  }
  if (cli->ping_on_link) {
    gint64 request[3] = { payload[0], payload[1], LINK_PING_REQUEST };

    if (parley_link_send (cli->ping_link, LINK_PING_STREAM, LINK_PING_FLAGS, request,
                          sizeof request, NULL))
      cli->ping_sent++;
  } else if (parley_data_channel_send_bytes (cli->ping_channel, bytes, NULL)) {
    cli->ping_sent++;
  }
  return G_SOURCE_CONTINUE;
}

/* A reply, timed on the thread that delivered it and counted on the main
 * context. */
typedef struct {
  Cli    *cli;
  gint64  id;
  gint64  rtt;
} PingReply;

static gboolean
ping_reply_main (gpointer data)
{
  PingReply *reply = data;
  Cli *cli = reply->cli;

  if (cli->ping_rtts != NULL && (reply->id >> 32) == cli->ping_run) {
    g_array_append_val (cli->ping_rtts, reply->rtt);
    if ((int) cli->ping_rtts->len == cli->ping_target && cli->ping_sent == cli->ping_target) {
      g_clear_handle_id (&cli->ping_id, g_source_remove);
      ping_report (cli);
    }
  }
  return G_SOURCE_REMOVE;
}

/* Counts a reply timed on the thread that delivered it, on the main context. */
static void
ping_post_reply (Cli    *cli,
                 gint64  id,
                 gint64  rtt)
{
  PingReply *reply = g_new (PingReply, 1);

  reply->cli = cli;
  reply->id = id;
  reply->rtt = rtt;
  g_idle_add_full (G_PRIORITY_HIGH, ping_reply_main, reply, g_free);
}

/* Pings are answered and their replies timed on the thread that delivers
 * data channel messages, as a game would take its peers' input
 * (parley_data_channel_set_message_func()): a hand-off to the main context
 * costs a wake-up of a thread that asked for no priority. */
static void
ping_reply_func (ParleyDataChannel *channel,
                 GBytes            *bytes,
                 const char        *text,
                 gpointer           user_data)
{
  gint64 now = g_get_monotonic_time ();
  const gint64 *payload;
  gsize len;

  if (bytes == NULL)
    return;
  payload = g_bytes_get_data (bytes, &len);
  if (len != 2 * sizeof (gint64))
    return;
  ping_post_reply (user_data, payload[0], now - payload[1]);
}

/* Every message of the call's link, on the link's thread: requests are
 * echoed from there, replies timed there. */
static void
link_message_func (ParleyLink   *link,
                   guint16       stream,
                   gboolean      text,
                   const guint8 *data,
                   gsize         len,
                   gpointer      user_data)
{
  gint64 now = g_get_monotonic_time ();
  gint64 payload[3];

  if (stream != LINK_PING_STREAM || text || len != sizeof payload)
    return;
  memcpy (payload, data, sizeof payload);
  if (payload[2] == LINK_PING_REQUEST) {
    payload[2] = LINK_PING_REPLY;
    parley_link_send (link, LINK_PING_STREAM, LINK_PING_FLAGS, payload, sizeof payload, NULL);
    return;
  }
  ping_post_reply (user_data, payload[0], now - payload[1]);
}

/* Starts sending the run's pings, unless they are going or done. */
static void
ping_maybe_start (Cli *cli)
{
  if (cli->ping_id == 0 && cli->ping_sent == 0 && cli->ping_target > 0)
    cli->ping_id = g_timeout_add (cli->ping_interval_ms, ping_send_cb, cli);
}

static void
ping_link_state_cb (ParleyLink *link,
                    GParamSpec *pspec,
                    Cli        *cli)
{
  if (link == cli->ping_link && cli->ping_on_link &&
      parley_link_get_state (link) == PARLEY_LINK_CONNECTED)
    ping_maybe_start (cli);
}

static void
ping_use_link (Cli        *cli,
               ParleyLink *link)
{
  if (cli->ping_link != NULL)
    g_signal_handlers_disconnect_by_data (cli->ping_link, cli);
  g_set_object (&cli->ping_link, link);
  g_signal_connect (link, "notify::state", G_CALLBACK (ping_link_state_cb), cli);
}

static void
ping_state_cb (ParleyDataChannel      *channel,
               ParleyDataChannelState  new_state,
               ParleyDataChannelState  old_state,
               Cli                    *cli)
{
  if (!cli->ping_on_link && new_state == PARLEY_DATA_CHANNEL_STATE_OPEN)
    ping_maybe_start (cli);
}

/* Forgets the ping channel and any run on it (the call it belongs to is over). */
static void
ping_reset (Cli *cli)
{
  g_clear_handle_id (&cli->ping_id, g_source_remove);
  if (cli->ping_channel != NULL) {
    parley_data_channel_set_message_func (cli->ping_channel, NULL, NULL, NULL);
    g_signal_handlers_disconnect_by_data (cli->ping_channel, cli);
  }
  g_clear_object (&cli->ping_channel);
  if (cli->ping_link != NULL)
    g_signal_handlers_disconnect_by_data (cli->ping_link, cli);
  g_clear_object (&cli->ping_link);
  g_clear_pointer (&cli->ping_rtts, g_array_unref);
  g_clear_object (&cli->ping_call);
  cli->ping_sent = 0;
}

/* Starts a run of @count pings on @call, on its ping channel (opened by the
 * first run). */
static gboolean
ping_start (Cli        *cli,
            ParleyCall *call,
            int         count,
            gboolean    on_link,
            GError    **error)
{
  ParleyPeer *peer = parley_call_get_peer (call);
  ParleyPeerLink *peer_link;

  if (peer == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, _("the call has no connection yet"));
    return FALSE;
  }
  if (cli->ping_call != call)
    ping_reset (cli);
  if (cli->ping_id != 0 || (cli->ping_rtts != NULL && cli->ping_sent < cli->ping_target)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_BUSY, _("pings are running"));
    return FALSE;
  }
  cli->ping_target = count;
  cli->ping_sent = 0;
  cli->ping_run++;
  g_clear_pointer (&cli->ping_rtts, g_array_unref);
  cli->ping_rtts = g_array_new (FALSE, FALSE, sizeof (gint64));
  cli->ping_on_link = on_link;
  if (on_link) {
    g_set_object (&cli->ping_call, call);
    peer_link = g_object_get_data (G_OBJECT (peer), "parley-cli-link");
    /* The newest link (made afresh after a restart of the call's
     * connection); the run starts once it is connected. */
    if (parley_peer_link_get_link (peer_link) != NULL) {
      if (cli->ping_link != parley_peer_link_get_link (peer_link))
        ping_use_link (cli, parley_peer_link_get_link (peer_link));
    } else {
      parley_peer_link_open (peer_link);
    }
    if (cli->ping_link != NULL)
      ping_link_state_cb (cli->ping_link, NULL, cli);
    return TRUE;
  }
  if (cli->ping_channel == NULL) {
    g_set_object (&cli->ping_call, call);
    cli->ping_channel = g_object_ref (parley_peer_create_data_channel (peer, PING_LABEL, FALSE));
    parley_data_channel_set_message_func (cli->ping_channel, ping_reply_func, cli, NULL);
    g_signal_connect (cli->ping_channel, "state-changed", G_CALLBACK (ping_state_cb), cli);
  }
  if (parley_data_channel_get_state (cli->ping_channel) == PARLEY_DATA_CHANNEL_STATE_OPEN)
    ping_state_cb (cli->ping_channel, PARLEY_DATA_CHANNEL_STATE_OPEN,
                   PARLEY_DATA_CHANNEL_STATE_CONNECTING, cli);
  return TRUE;
}

static void
echo_message_func (ParleyDataChannel *channel,
                   GBytes            *bytes,
                   const char        *text,
                   gpointer           user_data)
{
  if (bytes != NULL)
    parley_data_channel_send_bytes (channel, bytes, NULL);
}

static void
peer_data_channel_cb (ParleyPeer        *peer,
                      ParleyDataChannel *channel,
                      ParleyCall        *call)
{
  if (g_strcmp0 (parley_data_channel_get_label (channel), PING_LABEL) == 0)
    parley_data_channel_set_message_func (channel, echo_message_func, NULL, NULL);
}

static void
link_state_cb (ParleyLink *link,
               GParamSpec *pspec,
               Cli        *cli)
{
  JsonBuilder *builder = cli_begin_event ("link-state");

  cli_add_string (builder, "state", parley_link_state_to_string (parley_link_get_state (link)));
  cli_end_and_print (builder);
}

/* A link of the call's peer, made by either side: both echo pings on it. */
static void
peer_link_cb (ParleyPeerLink *peer_link,
              ParleyLink     *link,
              Cli            *cli)
{
  parley_link_set_message_func (link, link_message_func, cli, NULL);
  g_signal_connect (link, "notify::state", G_CALLBACK (link_state_cb), cli);
  if (cli->ping_on_link && cli->ping_rtts != NULL && cli->ping_link != link) {
    ping_use_link (cli, link);
    ping_link_state_cb (link, NULL, cli);
  }
}

static void
hook_peer (Cli        *cli,
           ParleyCall *call)
{
  ParleyPeer *peer = parley_call_get_peer (call);
  ParleyPeerLink *peer_link;

  if (peer == NULL || g_object_get_data (G_OBJECT (peer), "parley-cli-hooked"))
    return;
  g_object_set_data (G_OBJECT (peer), "parley-cli-hooked", GINT_TO_POINTER (1));
  g_signal_connect_object (peer, "state-changed", G_CALLBACK (peer_state_cb), call, 0);
  g_signal_connect_object (peer, "notify::ice-connection-state", G_CALLBACK (peer_ice_state_cb),
                           call, 0);
  g_signal_connect_object (peer, "first-remote-frame", G_CALLBACK (peer_first_frame_cb), call, 0);
  g_signal_connect_object (peer, "media-report", G_CALLBACK (peer_media_report_cb), call, 0);
  g_signal_connect_object (peer, "stats", G_CALLBACK (peer_stats_cb), call, 0);
  g_signal_connect_object (peer, "error", G_CALLBACK (peer_error_cb), call, 0);
  g_signal_connect_object (peer, "data-channel", G_CALLBACK (peer_data_channel_cb), call, 0);
  peer_link = parley_peer_link_new (peer);
  g_signal_connect (peer_link, "link", G_CALLBACK (peer_link_cb), cli);
  g_object_set_data_full (G_OBJECT (peer), "parley-cli-link", peer_link, g_object_unref);
  if (cli->stats_interval_ms >= 0)
    parley_peer_set_stats_interval (peer, (guint) cli->stats_interval_ms);
}

static void
call_peer_cb (ParleyCall *call,
              GParamSpec *pspec,
              Cli        *cli)
{
  hook_peer (cli, call);
}

static gboolean
duration_elapsed_cb (gpointer user_data)
{
  Cli *cli = user_data;

  cli->duration_id = 0;
  if (cli->call != NULL)
    parley_call_hangup (cli->call);
  return G_SOURCE_REMOVE;
}

static void
print_call_state (Cli             *cli,
                  ParleyCall      *call,
                  ParleyCallState  state,
                  const char      *previous)
{
  JsonBuilder *builder = cli_begin_event ("call-state");

  add_call (builder, call);
  cli_add_user (cli, builder, "peer", parley_call_get_peer_id (call));
  cli_add_string (builder, "state", parley_call_state_to_string (state));
  cli_add_string (builder, "previous", previous);
  json_builder_set_member_name (builder, "outgoing");
  json_builder_add_boolean_value (builder, parley_call_get_outgoing (call));
  json_builder_set_member_name (builder, "video");
  json_builder_add_boolean_value (builder, parley_call_get_video (call));
  if (state == PARLEY_CALL_STATE_ENDED) {
    cli_add_string (builder, "reason",
                    parley_call_end_reason_to_string (parley_call_get_end_reason (call)));
    cli_add_int (builder, "duration", parley_call_get_duration (call));
  }
  cli_end_and_print (builder);
  g_object_set_data (G_OBJECT (call), "parley-cli-last-state", GINT_TO_POINTER (state + 1));
}

/* The state the last call-state line showed, or -1. */
static int
last_printed_state (ParleyCall *call)
{
  return GPOINTER_TO_INT (g_object_get_data (G_OBJECT (call), "parley-cli-last-state")) - 1;
}

static void
call_state_cb (ParleyCall      *call,
               ParleyCallState  new_state,
               ParleyCallState  old_state,
               Cli             *cli)
{
  /* The end is printed by call_ended_cb(), once the call is logged. */
  if (new_state == PARLEY_CALL_STATE_ENDED)
    return;
  print_call_state (cli, call, new_state, parley_call_state_to_string (old_state));

  hook_peer (cli, call);
  if (new_state == PARLEY_CALL_STATE_ACTIVE && call == cli->call) {
    cli->call_connected = TRUE;
    if (cli->ping_count > 0 && cli->ping_call != call)
      ping_start (cli, call, cli->ping_count, cli->ping_on_link, NULL);
    if (cli->duration_s > 0 && cli->duration_id == 0)
      cli->duration_id = g_timeout_add_seconds ((guint) cli->duration_s, duration_elapsed_cb, cli);
  }
}

static void
track_call (Cli        *cli,
            ParleyCall *call)
{
  if (g_object_get_data (G_OBJECT (call), "parley-cli-tracked"))
    return;
  g_object_set_data (G_OBJECT (call), "parley-cli-tracked", GINT_TO_POINTER (1));
  g_signal_connect (call, "state-changed", G_CALLBACK (call_state_cb), cli);
  g_signal_connect (call, "notify::peer", G_CALLBACK (call_peer_cb), cli);
  if (parley_call_get_state (call) != PARLEY_CALL_STATE_ENDED)
    print_call_state (cli, call, parley_call_get_state (call), NULL);
  hook_peer (cli, call);
}

static void
incoming_call_cb (ParleyCallManager *manager,
                  ParleyCall        *call,
                  Cli               *cli)
{
  JsonBuilder *builder = cli_begin_event ("incoming-call");
  g_autoptr(GError) error = NULL;

  add_call (builder, call);
  cli_add_user (cli, builder, "from", parley_call_get_peer_id (call));
  json_builder_set_member_name (builder, "video");
  json_builder_add_boolean_value (builder, parley_call_get_video (call));
  cli_end_and_print (builder);

  track_call (cli, call);
  g_set_object (&cli->call, call);
  if (cli->auto_answer && !parley_call_accept (call, &error)) {
    builder = cli_begin_event ("error");
    cli_add_string (builder, "code", "accept-failed");
    cli_add_string (builder, "message", error->message);
    cli_end_and_print (builder);
  }
}

static void
call_started_cb (ParleyCallManager *manager,
                 ParleyCall        *call,
                 Cli               *cli)
{
  track_call (cli, call);
  if (cli->call == NULL || parley_call_get_state (cli->call) == PARLEY_CALL_STATE_ENDED)
    g_set_object (&cli->call, call);
}

static void
call_ended_cb (ParleyCallManager *manager,
               ParleyCall        *call,
               Cli               *cli)
{
  gboolean answered = parley_call_get_answered_at (call) != 0;
  ParleyCall *active = parley_call_manager_get_active_call (manager);
  int last = last_printed_state (call);

  g_signal_handlers_disconnect_by_data (call, cli);
  /* Call glare: our call to someone who called us at the same moment gave way to theirs
   * (it ends without a trace); follow the call that survived. */
  if (!answered && active != NULL && active != call &&
      parley_call_get_state (active) != PARLEY_CALL_STATE_ENDED &&
      g_strcmp0 (parley_call_get_peer_id (active), parley_call_get_peer_id (call)) == 0) {
    JsonBuilder *builder = cli_begin_event ("call-merged");

    add_call (builder, call);
    cli_add_string (builder, "into", parley_call_get_call_id (active));
    cli_end_and_print (builder);
    if (call == cli->call) {
      track_call (cli, active);
      g_set_object (&cli->call, active);
    }
    return;
  }
  if (last >= 0 || call == cli->call)
    print_call_state (cli, call, PARLEY_CALL_STATE_ENDED,
                      last >= 0 ? parley_call_state_to_string ((ParleyCallState) last) : NULL);
  if (call == cli->call) {
    g_clear_handle_id (&cli->duration_id, g_source_remove);
    g_clear_object (&cli->call);
  }
  cli->calls_ended++;

  if (g_str_equal (cli->command, "call"))
    cli_finish (cli, answered ? PARLEY_CLI_EXIT_OK : PARLEY_CLI_EXIT_CALL);
  else if (cli->max_calls > 0 && cli->calls_ended >= cli->max_calls)
    cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

/* Control socket */

static void
control_call_resolved_cb (GObject      *object,
                          GAsyncResult *result,
                          gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *peer_id = parley_client_resolve_user_finish (cli->client, result, &error);
  ParleyCall *call = NULL;

  if (peer_id != NULL)
    call = parley_call_manager_call (cli->calls, peer_id, !cli->audio_only, &error);
  if (call == NULL) {
    JsonBuilder *builder = cli_begin_event ("error");

    cli_add_string (builder, "code", "call-failed");
    cli_add_string (builder, "message", error->message);
    cli_end_and_print (builder);
    return;
  }
  track_call (cli, call);
  g_set_object (&cli->call, call);
}

static const char *
control_execute (Cli        *cli,
                 const char *command,
                 GError    **error)
{
  ParleyCall *call = cli->call;

  /* `call USER` places a call from a running `listen` (no process start, plugins loaded). */
  if (g_str_has_prefix (command, "call ")) {
    const char *user = command + strlen ("call ");

    if (call != NULL && parley_call_get_state (call) != PARLEY_CALL_STATE_ENDED) {
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_BUSY, _("a call is running"));
      return NULL;
    }
    if (*user == '\0' || !g_str_equal (cli->command, "listen")) {
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("usage: call USER (in listen)"));
      return NULL;
    }
    parley_client_resolve_user_async (cli->client, user, NULL, control_call_resolved_cb, cli);
    return "ok";
  }

  if (call == NULL || parley_call_get_state (call) == PARLEY_CALL_STATE_ENDED) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, _("no call"));
    return NULL;
  }
  if (g_str_equal (command, "hangup")) {
    parley_call_hangup (call);
  } else if (g_str_equal (command, "accept")) {
    if (!parley_call_accept (call, error))
      return NULL;
  } else if (g_str_equal (command, "reject")) {
    if (!parley_call_reject (call, error))
      return NULL;
  } else if (g_str_equal (command, "mute")) {
    parley_call_set_audio_muted (call, TRUE);
  } else if (g_str_equal (command, "unmute")) {
    parley_call_set_audio_muted (call, FALSE);
  } else if (g_str_equal (command, "camera-off")) {
    parley_call_set_video_muted (call, TRUE);
  } else if (g_str_equal (command, "camera-on")) {
    parley_call_set_video_muted (call, FALSE);
  } else if (g_str_equal (command, "video")) {
    if (!parley_call_add_video (call, error))
      return NULL;
  } else if (g_str_equal (command, "renegotiate")) {
    parley_call_renegotiate (call);
  } else if (g_str_has_prefix (command, "ping ") || g_str_has_prefix (command, "link-ping ")) {
    gboolean on_link = g_str_has_prefix (command, "link-ping ");
    const char *arg = command + (on_link ? strlen ("link-ping ") : strlen ("ping "));
    char *end = NULL;
    gint64 count = g_ascii_strtoll (arg, &end, 10);

    if (end == arg || *end != '\0' || count < 1 || count > 100000) {
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                   _("usage: ping N or link-ping N (1–100000)"));
      return NULL;
    }
    if (!ping_start (cli, call, (int) count, on_link, error))
      return NULL;
  } else if (g_str_equal (command, "restart")) {
    ParleyPeer *peer = parley_call_get_peer (call);

    if (peer == NULL) {
      g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, _("the call has no connection yet"));
      return NULL;
    }
    parley_peer_restart (peer);
  } else {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, _("unknown command"));
    return NULL;
  }
  return "ok";
}

typedef struct {
  Cli              *cli;
  GSocketConnection *connection;
  GDataInputStream *input;
} ControlClient;

static void
control_client_free (ControlClient *client)
{
  g_clear_object (&client->input);
  g_clear_object (&client->connection);
  g_free (client);
}

static void
control_line_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  ControlClient *client = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *reply = NULL;
  GOutputStream *output;
  gsize len = 0;

  line = g_data_input_stream_read_line_finish_utf8 (client->input, result, &len, &error);
  if (line == NULL) {
    reply = g_strdup_printf ("error: %s\n", error ? error->message : "no command");
  } else if (len > CONTROL_MAX_LINE) {
    reply = g_strdup ("error: command too long\n");
  } else {
    const char *ok;
    JsonBuilder *builder = cli_begin_event ("control");

    g_strstrip (line);
    cli_add_string (builder, "command", line);
    cli_end_and_print (builder);
    ok = control_execute (client->cli, line, &error);
    reply = ok ? g_strdup_printf ("%s\n", ok) : g_strdup_printf ("error: %s\n", error->message);
  }

  output = g_io_stream_get_output_stream (G_IO_STREAM (client->connection));
  g_output_stream_write_all (output, reply, strlen (reply), NULL, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (client->connection), NULL, NULL);
  control_client_free (client);
}

static gboolean
control_incoming_cb (GSocketService    *service,
                     GSocketConnection *connection,
                     GObject           *source,
                     Cli               *cli)
{
  ControlClient *client = g_new0 (ControlClient, 1);
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (connection));

  client->cli = cli;
  client->connection = g_object_ref (connection);
  client->input = g_data_input_stream_new (input);
  g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (client->input),
                                           CONTROL_MAX_LINE + 2);
  g_data_input_stream_read_line_async (client->input, G_PRIORITY_DEFAULT, NULL, control_line_cb,
                                       client);
  return TRUE;
}

static gboolean
control_start (Cli     *cli,
               GError **error)
{
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *path = g_build_filename (cli->profile_dir, CONTROL_SOCKET_NAME, NULL);

  /* sun_path holds 108 bytes with the terminator. */
  if (strlen (path) >= 108) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 _("the profile path is too long for a control socket: %s"), path);
    return FALSE;
  }
  g_unlink (path);
  address = g_unix_socket_address_new (path);
  cli->control = g_socket_service_new ();
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (cli->control), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL,
                                      error)) {
    g_clear_object (&cli->control);
    return FALSE;
  }
  g_chmod (path, 0600);
  g_signal_connect (cli->control, "incoming", G_CALLBACK (control_incoming_cb), cli);
  g_socket_service_start (cli->control);
  cli->control_path = g_steal_pointer (&path);
  return TRUE;
}

/**
 * cli_control_send:
 * @cli: the run
 * @line: a control command (`hangup`, `mute`, ...)
 *
 * Sends @line to the `call` or `listen` process running on the same
 * profile, prints its answer and finishes with its outcome.
 */
void
cli_control_send (Cli        *cli,
                  const char *line)
{
  g_autofree char *path = g_build_filename (cli->profile_dir, CONTROL_SOCKET_NAME, NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *request = g_strdup_printf ("%s\n", line);
  g_autofree char *reply = NULL;

  connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &error);
  if (connection == NULL) {
    g_printerr (_("parley-cli: no call is running on this profile (%s)\n"), error->message);
    cli_finish (cli, PARLEY_CLI_EXIT_CALL);
    return;
  }
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                                  request, strlen (request), NULL, NULL, &error)) {
    g_printerr ("parley-cli: %s\n", error->message);
    cli_finish (cli, PARLEY_CLI_EXIT_CALL);
    return;
  }
  input = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  reply = g_data_input_stream_read_line_utf8 (input, NULL, NULL, &error);
  if (reply == NULL || !g_str_equal (reply, "ok")) {
    g_printerr ("parley-cli: %s: %s\n", line,
                reply ? reply : error ? error->message : _("no answer"));
    cli_finish (cli, PARLEY_CLI_EXIT_CALL);
    return;
  }
  cli_finish (cli, PARLEY_CLI_EXIT_OK);
}

/* Setup */

/**
 * cli_calls_setup:
 * @cli: the run, with its call options set
 * @error: return location for an error
 *
 * Creates the media settings, the call manager and the control socket of a
 * `call` or `listen` run.
 *
 * Returns: %TRUE on success
 */
gboolean
cli_calls_setup (Cli     *cli,
                 GError **error)
{
  if (!gst_init_check (NULL, NULL, error))
    return FALSE;
  cli->media_started = TRUE;
  cli->media = parley_media_settings_new ();
  parley_media_settings_set_test_media (cli->media, cli->test_media);
  if (cli->tone_hz > 0)
    parley_media_settings_set_test_tone (cli->media, cli->tone_hz);
  if (cli->pattern != NULL)
    parley_media_settings_set_test_pattern (cli->media, cli->pattern);
  parley_media_settings_set_realtime (cli->media, !cli->no_realtime);
  if (cli->no_echo_cancel) {
    parley_media_settings_set_echo_cancellation (cli->media, FALSE);
    parley_media_settings_set_noise_suppression (cli->media, FALSE);
  }

  cli->calls = parley_call_manager_new (cli->client, cli->media);
  parley_call_manager_set_relay_only (cli->calls, cli->relay_only);
  if (cli->ring_timeout_s > 0)
    parley_call_manager_set_ring_timeout (cli->calls, (guint) cli->ring_timeout_s);
  g_signal_connect (cli->calls, "incoming-call", G_CALLBACK (incoming_call_cb), cli);
  g_signal_connect (cli->calls, "call-started", G_CALLBACK (call_started_cb), cli);
  g_signal_connect (cli->calls, "call-ended", G_CALLBACK (call_ended_cb), cli);

  return control_start (cli, error);
}

/**
 * cli_calls_cleanup:
 * @cli: the run
 *
 * Hangs up a running call and frees what cli_calls_setup() made.
 */
void
cli_calls_cleanup (Cli *cli)
{
  if (cli->call != NULL) {
    g_signal_handlers_disconnect_by_data (cli->call, cli);
    parley_call_hangup (cli->call);
  }
  g_clear_handle_id (&cli->duration_id, g_source_remove);
  ping_reset (cli);
  g_clear_object (&cli->call);
  if (cli->calls != NULL)
    g_signal_handlers_disconnect_by_data (cli->calls, cli);
  g_clear_object (&cli->calls);
  g_clear_object (&cli->media);
  /* Exit only once the plugin preload is done (see parley_media_preload_finish()). */
  if (cli->media_started)
    parley_media_preload_finish ();
  if (cli->control != NULL) {
    g_socket_service_stop (cli->control);
    g_socket_listener_close (G_SOCKET_LISTENER (cli->control));
    g_clear_object (&cli->control);
  }
  if (cli->control_path != NULL) {
    g_unlink (cli->control_path);
    g_clear_pointer (&cli->control_path, g_free);
  }
}

/* `call USER` */

static void
call_client_state_cb (ParleyClient      *client,
                      ParleyClientState  new_state,
                      ParleyClientState  old_state,
                      Cli               *cli)
{
  g_autoptr(GError) error = NULL;
  ParleyCall *call;

  cli_end_and_print (cli_begin_event (parley_client_state_to_string (new_state)));
  if (new_state != PARLEY_CLIENT_STATE_CONNECTED || cli->peer_id == NULL ||
      cli->call != NULL || cli->calls_ended > 0)
    return;

  call = parley_call_manager_call (cli->calls, cli->peer_id, !cli->audio_only, &error);
  if (call == NULL) {
    cli_fail (cli, _("cannot call"), error);
    return;
  }
  track_call (cli, call);
  g_set_object (&cli->call, call);
}

static void
call_resolved_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Cli *cli = user_data;
  g_autoptr(GError) error = NULL;

  cli->peer_id = parley_client_resolve_user_finish (cli->client, result, &error);
  if (cli->peer_id == NULL) {
    cli_fail (cli, _("cannot call"), error);
    return;
  }
  g_signal_connect (cli->client, "state-changed", G_CALLBACK (call_client_state_cb), cli);
  if (parley_client_get_state (cli->client) == PARLEY_CLIENT_STATE_CONNECTED)
    call_client_state_cb (cli->client, PARLEY_CLIENT_STATE_CONNECTED,
                          PARLEY_CLIENT_STATE_CONNECTED, cli);
  else
    parley_client_connect (cli->client);
}

/**
 * cli_call_start:
 * @cli: the run of `call USER`
 *
 * Resolves USER, connects, and calls once connected.
 */
void
cli_call_start (Cli *cli)
{
  parley_client_resolve_user_async (cli->client, cli->args[0], NULL, call_resolved_cb, cli);
}
