/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Two ParleyLinks in one process over real ICE (libnice on this host's
 * addresses), DTLS and SCTP: messages of every kind both ways, the
 * fingerprint check, closing, and invalid input. */

#include "config.h"

#include <gio/gio.h>
#include <gst/gst.h>
#include <sched.h>
#include <string.h>

#include "parley-engine-test.h"
#include "parley-error.h"
#include "parley-link.h"

#define TIMEOUT_S 20

typedef struct {
  guint16 stream;
  gboolean text;
  GBytes *data;
  GThread *thread;
  int policy;                   /* of the thread that delivered it */
} Received;

typedef struct {
  ParleyLink *a, *b;            /* a offers */
  GAsyncQueue *to_a, *to_b;     /* Received */
  GPtrArray *b_candidates;      /* b's candidates, "candidate:…" */
} Pair;

static void
received_free (gpointer data)
{
  Received *r = data;

  g_bytes_unref (r->data);
  g_free (r);
}

static void
on_message (ParleyLink   *link,
            guint16       stream,
            gboolean      text,
            const guint8 *data,
            gsize         len,
            gpointer      user_data)
{
  Received *r = g_new0 (Received, 1);

  r->stream = stream;
  r->text = text;
  r->data = g_bytes_new (data, len);
  r->thread = g_thread_self ();
  r->policy = sched_getscheduler (0) & ~SCHED_RESET_ON_FORK;
  g_async_queue_push (user_data, r);
}

static void
keep_candidate (ParleyLink *link,
                const char *candidate,
                GPtrArray  *kept)
{
  if (candidate)
    g_ptr_array_add (kept, g_strdup (candidate));
}

static void
on_candidate (ParleyLink *link,
              const char *candidate,
              gpointer    peer)
{
  g_autoptr(GError) error = NULL;

  if (!parley_link_add_remote_candidate (peer, candidate, &error))
    g_test_message ("candidate not added (%s): %s", candidate, error->message);
}

static gboolean
timed_out_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context until @a (and @b, unless NULL) reach @state or
 * the timeout. */
static gboolean
wait_state (ParleyLink      *a,
            ParleyLink      *b,
            ParleyLinkState  state)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add_seconds (TIMEOUT_S, timed_out_cb, &timed_out);

  while (!timed_out && !(parley_link_get_state (a) == state &&
                         (b == NULL || parley_link_get_state (b) == state)))
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  return !timed_out;
}

static Received *
pop (GAsyncQueue *q)
{
  return g_async_queue_timeout_pop (q, TIMEOUT_S * G_USEC_PER_SEC);
}

static void
pair_init (Pair       *p,
           const char *tamper_for_a,
           const char *tamper_for_b)
{
  g_autofree char *desc_a = NULL;
  g_autofree char *desc_b = NULL;
  g_autoptr(GError) error = NULL;

  p->a = parley_link_new (TRUE);
  p->b = parley_link_new (FALSE);
  /* The offerer's thread asks for real-time priority, the answerer's not. */
  parley_link_set_realtime (p->a, TRUE);
  p->to_a = g_async_queue_new_full (received_free);
  p->to_b = g_async_queue_new_full (received_free);
  parley_link_set_message_func (p->a, on_message, g_async_queue_ref (p->to_a),
                                (GDestroyNotify) g_async_queue_unref);
  parley_link_set_message_func (p->b, on_message, g_async_queue_ref (p->to_b),
                                (GDestroyNotify) g_async_queue_unref);
  g_signal_connect (p->a, "local-candidate", G_CALLBACK (on_candidate), p->b);
  g_signal_connect (p->b, "local-candidate", G_CALLBACK (on_candidate), p->a);
  p->b_candidates = g_ptr_array_new_with_free_func (g_free);
  g_signal_connect (p->b, "local-candidate", G_CALLBACK (keep_candidate), p->b_candidates);

  desc_a = parley_link_get_local_description (p->a);
  desc_b = parley_link_get_local_description (p->b);
  g_assert_nonnull (desc_a);
  g_assert_nonnull (desc_b);
  g_assert_nonnull (strstr (desc_a, "a=setup:actpass\r\n"));
  g_assert_nonnull (strstr (desc_b, "a=setup:active\r\n"));
  g_assert_nonnull (strstr (desc_a, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"));

  /* A fingerprint with one digit changed, as a man in the middle would
   * present its own certificate. */
  if (tamper_for_a) {
    char *fp = strstr (desc_b, "sha-256 ") + 8;

    fp[0] = fp[0] == 'A' ? 'B' : 'A';
  }
  if (tamper_for_b) {
    char *fp = strstr (desc_a, "sha-256 ") + 8;

    fp[0] = fp[0] == 'A' ? 'B' : 'A';
  }
  g_assert_true (parley_link_set_remote_description (p->b, desc_a, &error));
  g_assert_no_error (error);
  g_assert_true (parley_link_set_remote_description (p->a, desc_b, &error));
  g_assert_no_error (error);
  g_assert_cmpint (parley_link_get_state (p->a), ==, PARLEY_LINK_CONNECTING);
  parley_link_start (p->a);
  parley_link_start (p->b);
}

static void
pair_clear (Pair *p)
{
  g_signal_handlers_disconnect_by_func (p->a, on_candidate, p->b);
  g_signal_handlers_disconnect_by_func (p->b, on_candidate, p->a);
  g_signal_handlers_disconnect_by_func (p->b, keep_candidate, p->b_candidates);
  g_ptr_array_unref (p->b_candidates);
  g_clear_object (&p->a);
  g_clear_object (&p->b);
  g_async_queue_unref (p->to_a);
  g_async_queue_unref (p->to_b);
}

/* Sends datagrams that look like DTLS records (first byte 20 - 63) but are
 * garbage to every UDP host candidate of @candidates, from a socket of no
 * candidate pair: what anybody on the network could send. (libnice takes
 * data only from addresses that passed its connectivity checks, so none of
 * it reaches DTLS; the link must not notice.) */
static guint
send_garbage (GPtrArray *candidates)
{
  g_autoptr(GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                          G_SOCKET_PROTOCOL_UDP, NULL);
  guint sent = 0;

  g_assert_nonnull (sock);
  for (guint i = 0; i < candidates->len; i++) {
    g_auto(GStrv) f = g_strsplit (candidates->pdata[i], " ", -1);
    g_autoptr(GSocketAddress) to = NULL;

    /* candidate:FOUNDATION COMPONENT udp PRIORITY ADDRESS PORT typ host */
    if (g_strv_length (f) < 8 || g_ascii_strcasecmp (f[2], "udp") != 0 ||
        !g_str_equal (f[7], "host") || strchr (f[4], ':'))
      continue;
    to = g_inet_socket_address_new_from_string (f[4],
                                                (guint) g_ascii_strtoull (f[5], NULL, 10));
    for (guint n = 0; to && n < 50; n++) {
      guint8 junk[200];

      for (guint k = 0; k < sizeof junk; k++)
        junk[k] = (guint8) g_random_int ();
      junk[0] = (guint8) (20 + n % 44);
      if (g_socket_send_to (sock, to, (const char *) junk, sizeof junk, NULL, NULL) > 0)
        sent++;
    }
  }
  return sent;
}

static void
test_exchange (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) unordered = g_hash_table_new (NULL, NULL);
  guint8 *big = g_malloc (PARLEY_LINK_MAX_MESSAGE);
  Pair p;
  Received *r;

  pair_init (&p, NULL, NULL);
  g_assert_true (wait_state (p.a, p.b, PARLEY_LINK_CONNECTED));

  /* Reliable, ordered, binary: 100 in a row arrive in order. */
  for (guint32 i = 0; i < 100; i++) {
    g_assert_true (parley_link_send (p.a, 1, PARLEY_LINK_SEND_DEFAULT, &i, sizeof i, &error));
    g_assert_no_error (error);
  }
  for (guint32 i = 0; i < 100; i++) {
    gsize len;
    const guint32 *v;

    r = pop (p.to_b);
    g_assert_nonnull (r);
    v = g_bytes_get_data (r->data, &len);
    g_assert_cmpuint (r->stream, ==, 1);
    g_assert_false (r->text);
    g_assert_cmpuint (len, ==, sizeof i);
    g_assert_cmpuint (*v, ==, i);
    /* On the link's own thread, not the one that runs the main loop. */
    g_assert_true (r->thread != g_thread_self ());
    g_assert_cmpint (r->policy, ==, SCHED_OTHER);
    received_free (r);
  }

  /* A string the other way. */
  g_assert_true (parley_link_send (p.b, 2, PARLEY_LINK_SEND_TEXT, "h\xc3\xa9llo", 6, &error));
  r = pop (p.to_a);
  g_assert_nonnull (r);
  g_assert_cmpuint (r->stream, ==, 2);
  g_assert_true (r->text);
  g_assert_cmpmem (g_bytes_get_data (r->data, NULL), g_bytes_get_size (r->data), "h\xc3\xa9llo", 6);
  /* Where the process may, the thread that asked runs SCHED_RR; the other
   * one (above) stayed normal. */
  if (parley_engine_test_may_be_realtime ())
    g_assert_cmpint (r->policy, ==, SCHED_RR);
  else
    g_assert_cmpint (r->policy, ==, SCHED_OTHER);
  received_free (r);

  /* The largest message, in many SCTP packets and DTLS records. */
  for (guint i = 0; i < PARLEY_LINK_MAX_MESSAGE; i++)
    big[i] = (guint8) (i * 7 + i / 251);
  g_assert_true (parley_link_send (p.a, 3, PARLEY_LINK_SEND_DEFAULT, big, PARLEY_LINK_MAX_MESSAGE,
                                   &error));
  r = pop (p.to_b);
  g_assert_nonnull (r);
  g_assert_cmpuint (r->stream, ==, 3);
  g_assert_cmpmem (g_bytes_get_data (r->data, NULL), g_bytes_get_size (r->data), big,
                   PARLEY_LINK_MAX_MESSAGE);
  received_free (r);

  /* Empty messages keep their kind. */
  g_assert_true (parley_link_send (p.b, 4, PARLEY_LINK_SEND_TEXT, NULL, 0, &error));
  g_assert_true (parley_link_send (p.b, 4, PARLEY_LINK_SEND_DEFAULT, NULL, 0, &error));
  r = pop (p.to_a);
  g_assert_nonnull (r);
  g_assert_true (r->text);
  g_assert_cmpuint (g_bytes_get_size (r->data), ==, 0);
  received_free (r);
  r = pop (p.to_a);
  g_assert_nonnull (r);
  g_assert_false (r->text);
  g_assert_cmpuint (g_bytes_get_size (r->data), ==, 0);
  received_free (r);

  /* Unordered and never retransmitted, as game inputs go: nothing is lost
   * on this host, so all of them arrive, in some order. */
  for (guint32 i = 0; i < 50; i++)
    g_assert_true (parley_link_send (p.b, 0,
                                     PARLEY_LINK_SEND_UNORDERED | PARLEY_LINK_SEND_UNRELIABLE,
                                     &i, sizeof i, &error));
  for (guint i = 0; i < 50; i++) {
    r = pop (p.to_a);
    g_assert_nonnull (r);
    g_assert_cmpuint (r->stream, ==, 0);
    g_assert_cmpuint (g_bytes_get_size (r->data), ==, sizeof (guint32));
    g_hash_table_add (unordered,
                      GUINT_TO_POINTER (*(const guint32 *) g_bytes_get_data (r->data, NULL) + 1));
    received_free (r);
  }
  g_assert_cmpuint (g_hash_table_size (unordered), ==, 50);

  /* Garbage from elsewhere changes nothing. */
  g_assert_cmpuint (send_garbage (p.b_candidates), >, 0);
  g_assert_true (parley_link_send (p.a, 1, PARLEY_LINK_SEND_DEFAULT, "after junk", 10, &error));
  r = pop (p.to_b);
  g_assert_nonnull (r);
  g_assert_cmpmem (g_bytes_get_data (r->data, NULL), g_bytes_get_size (r->data), "after junk", 10);
  received_free (r);
  g_assert_cmpint (parley_link_get_state (p.b), ==, PARLEY_LINK_CONNECTED);

  /* What cannot be sent. */
  g_assert_false (parley_link_send (p.a, 1, PARLEY_LINK_SEND_DEFAULT, big,
                                    PARLEY_LINK_MAX_MESSAGE + 1, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (parley_link_send (p.a, 1024, PARLEY_LINK_SEND_DEFAULT, "x", 1, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);

  /* Closing one side closes the other. */
  parley_link_close (p.a);
  g_assert_cmpint (parley_link_get_state (p.a), ==, PARLEY_LINK_CLOSED);
  g_assert_true (wait_state (p.b, NULL, PARLEY_LINK_CLOSED));
  g_assert_false (parley_link_send (p.a, 1, PARLEY_LINK_SEND_DEFAULT, "x", 1, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (parley_link_send (p.b, 1, PARLEY_LINK_SEND_DEFAULT, "x", 1, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);

  g_free (big);
  pair_clear (&p);
}

/* The side that checks a forged fingerprint fails; the other never gets
 * an association, and no message is delivered. */
static void
test_fingerprint_mismatch (gconstpointer data)
{
  gboolean forge_for_a = GPOINTER_TO_INT (data);
  Pair p;
  ParleyLink *checker, *other;

  g_test_expect_message ("parley-link", G_LOG_LEVEL_WARNING,
                         "*the peer's DTLS certificate does not match its fingerprint");
  pair_init (&p, forge_for_a ? "x" : NULL, forge_for_a ? NULL : "x");
  checker = forge_for_a ? p.a : p.b;
  other = forge_for_a ? p.b : p.a;
  g_assert_true (wait_state (checker, NULL, PARLEY_LINK_FAILED));
  g_test_assert_expected_messages ();
  g_assert_cmpint (parley_link_get_state (other), !=, PARLEY_LINK_CONNECTED);
  g_assert_cmpint (g_async_queue_length (p.to_a), ==, 0);
  g_assert_cmpint (g_async_queue_length (p.to_b), ==, 0);
  pair_clear (&p);
}

static void
test_invalid_input (void)
{
  g_autoptr(ParleyLink) a = parley_link_new (TRUE);
  g_autoptr(ParleyLink) b = parley_link_new (FALSE);
  g_autofree char *desc_b = parley_link_get_local_description (b);
  g_autofree char *desc_a = parley_link_get_local_description (a);
  g_autoptr(GError) error = NULL;
  struct {
    const char *from, *to;
  } edits[] = {
    { "a=fingerprint:sha-256 ", "a=fingerprint:sha-1 " },       /* not SHA-256 */
    { "a=ice-pwd:", "a=ice-pwd:short\r\na=x:" },                /* too short */
    { "a=ice-ufrag:", "a=ice-ufrag:b@d" },                      /* not an ice-char */
    { "a=setup:active", "a=setup:actpass" },                    /* both DTLS servers */
    { "a=sctp-port:5000", "a=sctp-port:6000" },
    { "UDP/DTLS/SCTP", "UDP/TLS/RTP/SAVPF" },                   /* no data section */
  };

  g_assert_false (parley_link_set_remote_description (a, "garbage", &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (parley_link_set_remote_description (a, "", &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);

  for (guint i = 0; i < G_N_ELEMENTS (edits); i++) {
    g_autoptr(GString) s = g_string_new (desc_b);

    g_assert_cmpuint (g_string_replace (s, edits[i].from, edits[i].to, 1), ==, 1);
    g_assert_false (parley_link_set_remote_description (a, s->str, &error));
    g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
    g_test_message ("%s", error->message);
    g_clear_error (&error);
  }
  g_assert_cmpint (parley_link_get_state (a), ==, PARLEY_LINK_NEW);

  g_assert_false (parley_link_add_remote_candidate (a, "candidate:nonsense", &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_false (parley_link_send (a, 1, PARLEY_LINK_SEND_DEFAULT, "x", 1, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
  g_clear_error (&error);

  /* The answerer takes the offer once, not twice. */
  g_assert_true (parley_link_set_remote_description (b, desc_a, &error));
  g_assert_no_error (error);
  g_assert_false (parley_link_set_remote_description (b, desc_a, &error));
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);

  g_test_add_func ("/link/exchange", test_exchange);
  g_test_add_data_func ("/link/fingerprint-mismatch/checked-by-offerer", GINT_TO_POINTER (TRUE),
                        test_fingerprint_mismatch);
  g_test_add_data_func ("/link/fingerprint-mismatch/checked-by-answerer", GINT_TO_POINTER (FALSE),
                        test_fingerprint_mismatch);
  g_test_add_func ("/link/invalid-input", test_invalid_input);
  return g_test_run ();
}
