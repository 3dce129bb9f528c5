/* SPDX-License-Identifier: GPL-3.0-or-later */
/* parley-link.c: a data-only WebRTC transport whose data path crosses no
 * thread of its own.
 *
 * A data channel message in webrtcbin 1.22 crosses eight threads each way
 * (docs/benchmarks.md, "calls"). A link carries the same protocols, SCTP
 * (usrsctp) over DTLS (OpenSSL) over ICE (libnice), so that a browser's
 * RTCPeerConnection could be its peer, but runs them where the data already
 * is:
 *
 * - sending: parley_link_send() runs SCTP, encrypts and hands the datagram
 *   to libnice on the caller's thread;
 * - receiving: the link's one thread reads the datagram (libnice's receive
 *   callback), decrypts it, runs SCTP and calls the message function.
 *
 * A round trip therefore wakes two threads, where a webrtcbin data channel
 * wakes sixteen. usrsctp runs without threads of its own
 * (usrsctp_init_nothreads()); one thread per process drives its timers.
 *
 * Roles: the offerer is the ICE controlling agent and the DTLS server
 * (`a=setup:actpass`), the answerer the DTLS client (`a=setup:active`).
 * Both open the SCTP association (a simultaneous open, as browsers do).
 * Channels are negotiated out of band (a browser's `negotiated: true`):
 * a message goes to an SCTP stream that both sides agreed on, with WebRTC's
 * payload ids for strings and binary.
 */

#define G_LOG_DOMAIN "parley-link"

#include "config.h"

#include "parley-link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <gst/sdp/sdp.h>
#include <nice/agent.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <usrsctp.h>

#include "parley-error.h"
#include "parley-sched.h"

#define SCTP_PORT 5000
#define SCTP_STREAMS 1024
#define DTLS_MTU 1200
#define PPID_STRING 51
#define PPID_BINARY 53
#define PPID_STRING_EMPTY 56
#define PPID_BINARY_EMPTY 57
#define TIMER_INTERVAL_MS 10
#define CLOSE_TIMEOUT_MS 1000

struct _ParleyLink {
  GObject parent_instance;

  guint id;                     /* the link's SCTP address (see links) */
  gboolean offerer;
  ParleyLinkState state;        /* under lock */
  GMainContext *owner_context;  /* where signals are emitted */

  /* The link's thread: libnice's agent and the receive path. */
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  NiceAgent *agent;
  guint stream_id;
  gboolean started;
  gint realtime;                /* atomic */
  gboolean raised;              /* the link's thread asked for it (that thread only) */

  GMutex lock;                  /* everything below, and state */
  SSL *ssl;
  BIO *rbio;
  GPtrArray *out;               /* GBytes: datagrams the SSL object wrote */
  gboolean handshake_done;
  char *remote_fingerprint;     /* "AB:CD:..." (SHA-256), upper case */
  GSource *dtls_timer;
  GRWLock sock_lock;            /* senders read, parley_link_close() writes */
  struct socket *sock;
  GByteArray *partial;          /* a message received in pieces */

  ParleyLinkMessageFunc func;
  gpointer func_data;
  GDestroyNotify func_destroy;
};

enum {
  PROP_0,
  PROP_STATE,
  N_PROPS
};

enum {
  SIGNAL_LOCAL_CANDIDATE,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ParleyLink, parley_link, G_TYPE_OBJECT)

/* The process-wide parts: usrsctp, its timer thread, the DTLS identity and
 * the live links by id (usrsctp may call back for an id whose link is
 * gone: its address is a number, never a pointer that could be reused). */
static GMutex links_lock;
static GHashTable *links;       /* id → ParleyLink (not referenced) */
static guint next_link_id = 1;
static EVP_PKEY *identity_key;
static X509 *identity_cert;
static char *identity_fingerprint;
static BIO_METHOD *out_method;

static void link_set_state (ParleyLink *self, ParleyLinkState state);
static void link_close (ParleyLink *self, gboolean notify);
static void unlock_and_flush (ParleyLink *self);

/* Identity and usrsctp. */

static char *
fingerprint_of (X509 *cert)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  GString *s;

  if (!X509_digest (cert, EVP_sha256 (), md, &len))
    return NULL;
  s = g_string_sized_new (len * 3);
  for (unsigned int i = 0; i < len; i++)
    g_string_append_printf (s, i ? ":%02X" : "%02X", md[i]);
  return g_string_free (s, FALSE);
}

/* An ECDSA P-256 key and a self-signed certificate for the process, as a
 * browser makes one per connection: the peer trusts the fingerprint that
 * came through the signalling server, not a certificate authority. */
static gboolean
identity_init (void)
{
  X509_NAME *name;

  identity_key = EVP_EC_gen ("P-256");
  identity_cert = X509_new ();
  if (identity_key == NULL || identity_cert == NULL)
    return FALSE;
  X509_set_version (identity_cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (identity_cert),
                    (long) g_random_int_range (1, G_MAXINT32));
  X509_gmtime_adj (X509_getm_notBefore (identity_cert), -3600);
  X509_gmtime_adj (X509_getm_notAfter (identity_cert), 30L * 24 * 3600);
  X509_set_pubkey (identity_cert, identity_key);
  name = X509_get_subject_name (identity_cert);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC, (const unsigned char *) "parley", -1, -1,
                              0);
  X509_set_issuer_name (identity_cert, name);
  if (!X509_sign (identity_cert, identity_key, EVP_sha256 ()))
    return FALSE;
  identity_fingerprint = fingerprint_of (identity_cert);
  return identity_fingerprint != NULL;
}

/* usrsctp hands every packet it makes to this, on the thread that made it
 * (a sender, the link's thread or the timer thread): it goes out as one
 * DTLS record in one datagram, from the same thread. links_lock is held
 * throughout, so that a link being closed (or finalized) waits until its
 * last packet is out instead of being looked up half gone. */
static int
sctp_output (void    *addr,
             void    *buffer,
             size_t   length,
             uint8_t  tos,
             uint8_t  set_df)
{
  ParleyLink *self;
  int written = -1;

  g_mutex_lock (&links_lock);
  self = links ? g_hash_table_lookup (links, addr) : NULL;
  if (self == NULL) {
    g_mutex_unlock (&links_lock);
    return EINVAL;
  }
  g_mutex_lock (&self->lock);
  if (self->ssl && self->handshake_done && !(SSL_get_shutdown (self->ssl) & SSL_SENT_SHUTDOWN))
    written = SSL_write (self->ssl, buffer, (int) length);
  unlock_and_flush (self);
  g_mutex_unlock (&links_lock);
  return written > 0 ? 0 : EIO;
}

static gpointer
timer_thread (gpointer data)
{
  gint64 last = g_get_monotonic_time ();

  for (;;) {
    gint64 now;

    g_usleep (TIMER_INTERVAL_MS * 1000);
    now = g_get_monotonic_time ();
    usrsctp_handle_timers ((uint32_t) ((now - last) / 1000));
    last = now;
  }
  return NULL;
}

static int
out_write (BIO        *bio,
           const char *data,
           int         len)
{
  ParleyLink *self = BIO_get_data (bio);

  /* Called under self->lock by the SSL object: one datagram per call. */
  if (len > 0)
    g_ptr_array_add (self->out, g_bytes_new (data, (gsize) len));
  return len;
}

static long
out_ctrl (BIO  *bio,
          int   cmd,
          long  num,
          void *ptr)
{
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
      return DTLS_MTU;
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING:
      return 0;
    default:
      return 0;
  }
}

static int
out_create (BIO *bio)
{
  BIO_set_init (bio, 1);
  return 1;
}

static gpointer
global_init (gpointer data)
{
  if (!identity_init ()) {
    g_warning ("Cannot make a DTLS certificate: %s", ERR_error_string (ERR_get_error (), NULL));
    return GINT_TO_POINTER (FALSE);
  }
  out_method = BIO_meth_new (BIO_get_new_index () | BIO_TYPE_SOURCE_SINK, "parley-link-out");
  BIO_meth_set_write (out_method, out_write);
  BIO_meth_set_ctrl (out_method, out_ctrl);
  BIO_meth_set_create (out_method, out_create);

  usrsctp_init_nothreads (0, sctp_output, NULL);
  usrsctp_sysctl_set_sctp_ecn_enable (0);
  /* WebRTC's data channels use neither. */
  usrsctp_sysctl_set_sctp_asconf_enable (0);
  usrsctp_sysctl_set_sctp_auth_enable (0);
  links = g_hash_table_new (NULL, NULL);
  g_thread_unref (g_thread_new ("parley-sctp-timer", timer_thread, NULL));
  return GINT_TO_POINTER (TRUE);
}

static gboolean
ensure_global (void)
{
  static GOnce once = G_ONCE_INIT;

  return GPOINTER_TO_INT (g_once (&once, global_init, NULL));
}

/* Signals on the owner's context. */

typedef struct {
  ParleyLink *link;
  char *candidate;
  gboolean is_candidate;
} Emission;

static gboolean
emit_in_owner (gpointer data)
{
  Emission *e = data;

  if (e->is_candidate)
    g_signal_emit (e->link, signals[SIGNAL_LOCAL_CANDIDATE], 0, e->candidate);
  else
    g_object_notify_by_pspec (G_OBJECT (e->link), properties[PROP_STATE]);
  return G_SOURCE_REMOVE;
}

static void
emission_free (gpointer data)
{
  Emission *e = data;

  g_object_unref (e->link);
  g_free (e->candidate);
  g_free (e);
}

static void
emit_later (ParleyLink *self,
            gboolean    is_candidate,
            const char *candidate)
{
  Emission *e = g_new0 (Emission, 1);

  e->link = g_object_ref (self);
  e->is_candidate = is_candidate;
  e->candidate = g_strdup (candidate);
  g_main_context_invoke_full (self->owner_context, G_PRIORITY_DEFAULT, emit_in_owner, e,
                              emission_free);
}

static void
link_set_state_full (ParleyLink      *self,
                     ParleyLinkState  state,
                     gboolean         notify)
{
  gboolean changed;

  g_mutex_lock (&self->lock);
  /* Failed and closed are final. */
  changed = self->state != state && self->state != PARLEY_LINK_FAILED &&
            self->state != PARLEY_LINK_CLOSED;
  if (changed)
    self->state = state;
  g_mutex_unlock (&self->lock);
  if (changed) {
    g_debug ("Link %u: %s", self->id, parley_link_state_to_string (state));
    if (notify)
      emit_later (self, FALSE, NULL);
  }
}

static void
link_set_state (ParleyLink      *self,
                ParleyLinkState  state)
{
  link_set_state_full (self, state, TRUE);
}

/* DTLS. */

/* Called with self->lock held: lets it go, then hands the datagrams that
 * the SSL object wrote meanwhile to the socket, on this thread. */
static void
unlock_and_flush (ParleyLink *self)
{
  g_autoptr(GPtrArray) out = g_steal_pointer (&self->out);

  self->out = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_mutex_unlock (&self->lock);
  for (guint i = 0; i < out->len; i++) {
    gsize len;
    const char *data = g_bytes_get_data (out->pdata[i], &len);

    nice_agent_send (self->agent, self->stream_id, 1, (guint) len, data);
  }
}

static gboolean dtls_timeout_cb (gpointer data);

/* Under self->lock: (re)arms the handshake's retransmission timer. */
static void
dtls_arm_timer_locked (ParleyLink *self)
{
  struct timeval tv;

  if (self->dtls_timer) {
    g_source_destroy (self->dtls_timer);
    g_clear_pointer (&self->dtls_timer, g_source_unref);
  }
  if (self->handshake_done || self->ssl == NULL || !DTLSv1_get_timeout (self->ssl, &tv))
    return;
  self->dtls_timer = g_timeout_source_new ((guint) (tv.tv_sec * 1000 + tv.tv_usec / 1000) + 1);
  g_source_set_callback (self->dtls_timer, dtls_timeout_cb, self, NULL);
  g_source_attach (self->dtls_timer, self->context);
}

static gboolean
dtls_timeout_cb (gpointer data)
{
  ParleyLink *self = data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->dtls_timer, g_source_unref);
  if (self->ssl && !self->handshake_done && DTLSv1_handle_timeout (self->ssl) < 0)
    g_debug ("Link %u: DTLS handshake timed out", self->id);
  dtls_arm_timer_locked (self);
  unlock_and_flush (self);
  return G_SOURCE_REMOVE;
}

static int
verify_any (int             ok,
            X509_STORE_CTX *ctx)
{
  /* A self-signed certificate, checked against the fingerprint from the
   * remote description once the handshake is done. */
  return 1;
}

static gboolean
link_ssl_init (ParleyLink *self,
               GError    **error)
{
  SSL_CTX *ctx = SSL_CTX_new (DTLS_method ());
  BIO *wbio;

  if (ctx == NULL || !SSL_CTX_use_certificate (ctx, identity_cert) ||
      !SSL_CTX_use_PrivateKey (ctx, identity_key)) {
    if (ctx)
      SSL_CTX_free (ctx);
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA, "Cannot set up DTLS");
    return FALSE;
  }
  SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_any);
  SSL_CTX_set_min_proto_version (ctx, DTLS1_2_VERSION);
  SSL_CTX_set_options (ctx, SSL_OP_NO_QUERY_MTU);
  self->ssl = SSL_new (ctx);
  SSL_CTX_free (ctx);           /* the SSL object keeps its reference */
  if (self->ssl == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_MEDIA, "Cannot set up DTLS");
    return FALSE;
  }
  SSL_set_mtu (self->ssl, DTLS_MTU);
  self->rbio = BIO_new (BIO_s_mem ());
  BIO_set_mem_eof_return (self->rbio, -1);
  wbio = BIO_new (out_method);
  BIO_set_data (wbio, self);
  SSL_set_bio (self->ssl, self->rbio, wbio);
  if (self->offerer)
    SSL_set_accept_state (self->ssl);
  else
    SSL_set_connect_state (self->ssl);
  return TRUE;
}

/* SCTP. */

static void
sctp_start (ParleyLink *self)
{
  struct sockaddr_conn local = { .sconn_family = AF_CONN, .sconn_port = htons (SCTP_PORT),
                                 .sconn_addr = GUINT_TO_POINTER (self->id) };
  struct sockaddr_conn remote = local;
  struct sctp_initmsg init = { .sinit_num_ostreams = SCTP_STREAMS,
                               .sinit_max_instreams = SCTP_STREAMS };
  struct sctp_event event = { .se_assoc_id = SCTP_ALL_ASSOC, .se_on = 1 };
  struct sctp_paddrparams params = { 0 };
  struct socket *sock;
  int one = 1;

  sock = usrsctp_socket (AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
  if (sock == NULL) {
    g_warning ("Link %u: cannot make an SCTP socket: %s", self->id, g_strerror (errno));
    link_set_state (self, PARLEY_LINK_FAILED);
    return;
  }
  usrsctp_set_non_blocking (sock, 1);
  /* A message goes out at once, as data channels send it. */
  usrsctp_setsockopt (sock, IPPROTO_SCTP, SCTP_NODELAY, &one, sizeof one);
  usrsctp_setsockopt (sock, IPPROTO_SCTP, SCTP_RECVRCVINFO, &one, sizeof one);
  usrsctp_setsockopt (sock, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof init);
  event.se_type = SCTP_ASSOC_CHANGE;
  usrsctp_setsockopt (sock, IPPROTO_SCTP, SCTP_EVENT, &event, sizeof event);
  /* Packets must fit one DTLS record within the path MTU. */
  params.spp_address.ss_family = AF_CONN;
  params.spp_flags = SPP_PMTUD_DISABLE;
  params.spp_pathmtu = DTLS_MTU - 100;
  usrsctp_setsockopt (sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &params, sizeof params);
  if (usrsctp_bind (sock, (struct sockaddr *) &local, sizeof local) != 0) {
    g_warning ("Link %u: cannot bind the SCTP socket: %s", self->id, g_strerror (errno));
    usrsctp_close (sock);
    link_set_state (self, PARLEY_LINK_FAILED);
    return;
  }
  g_rw_lock_writer_lock (&self->sock_lock);
  self->sock = sock;
  g_rw_lock_writer_unlock (&self->sock_lock);
  if (usrsctp_connect (sock, (struct sockaddr *) &remote, sizeof remote) != 0 &&
      errno != EINPROGRESS) {
    g_warning ("Link %u: cannot open the SCTP association: %s", self->id, g_strerror (errno));
    link_set_state (self, PARLEY_LINK_FAILED);
  }
}

static void
deliver (ParleyLink   *self,
         guint16       stream,
         guint32       ppid,
         const guint8 *data,
         gsize         len)
{
  gboolean text = ppid == PPID_STRING || ppid == PPID_STRING_EMPTY;

  if (ppid != PPID_STRING && ppid != PPID_BINARY && ppid != PPID_STRING_EMPTY &&
      ppid != PPID_BINARY_EMPTY) {
    g_debug ("Link %u: dropping a message with payload id %u", self->id, ppid);
    return;
  }
  if (ppid == PPID_STRING_EMPTY || ppid == PPID_BINARY_EMPTY)
    len = 0;
  if (self->func)
    self->func (self, stream, text, data, len, self->func_data);
}

/* Reads what the association has for the application: notifications and
 * messages (whole: pieces are gathered up to PARLEY_LINK_MAX_MESSAGE). */
static void
sctp_drain (ParleyLink *self)
{
  static __thread guint8 buf[PARLEY_LINK_MAX_MESSAGE + 1];

  for (;;) {
    struct sctp_rcvinfo info = { 0 };
    socklen_t info_len = sizeof info, from_len = 0;
    unsigned int info_type = 0;
    int flags = 0;
    ssize_t n = usrsctp_recvv (self->sock, buf, sizeof buf, NULL, &from_len, &info, &info_len,
                               &info_type, &flags);

    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        g_debug ("Link %u: SCTP receive: %s", self->id, g_strerror (errno));
      return;
    }
    if (n == 0) {
      link_set_state (self, PARLEY_LINK_CLOSED);
      return;
    }
    if (flags & MSG_NOTIFICATION) {
      union sctp_notification note = { 0 };

      memcpy (&note, buf, MIN ((gsize) n, sizeof note));
      if (note.sn_header.sn_type == SCTP_ASSOC_CHANGE) {
        switch (note.sn_assoc_change.sac_state) {
          case SCTP_COMM_UP:
          case SCTP_RESTART:
            link_set_state (self, PARLEY_LINK_CONNECTED);
            break;
          case SCTP_COMM_LOST:
          case SCTP_CANT_STR_ASSOC:
            link_set_state (self, PARLEY_LINK_FAILED);
            break;
          case SCTP_SHUTDOWN_COMP:
            link_set_state (self, PARLEY_LINK_CLOSED);
            break;
          default:
            break;
        }
      }
      continue;
    }
    if (info_type != SCTP_RECVV_RCVINFO)
      continue;
    if (!(flags & MSG_EOR) || self->partial->len > 0) {
      if (self->partial->len + (gsize) n > PARLEY_LINK_MAX_MESSAGE) {
        g_debug ("Link %u: dropping a message larger than %d bytes", self->id,
                 PARLEY_LINK_MAX_MESSAGE);
        g_byte_array_set_size (self->partial, 0);
        continue;
      }
      g_byte_array_append (self->partial, buf, (guint) n);
      if (!(flags & MSG_EOR))
        continue;
      deliver (self, info.rcv_sid, ntohl (info.rcv_ppid), self->partial->data, self->partial->len);
      g_byte_array_set_size (self->partial, 0);
      continue;
    }
    deliver (self, info.rcv_sid, ntohl (info.rcv_ppid), buf, (gsize) n);
  }
}

/* The receive path, on the link's thread: one datagram from libnice
 * (STUN already taken out by it). */
static void
nice_recv_cb (NiceAgent *agent,
              guint      stream_id,
              guint      component_id,
              guint      len,
              gchar     *buf,
              gpointer   data)
{
  ParleyLink *self = data;
  gboolean start_sctp = FALSE, failed = FALSE;
  guint8 plain[DTLS_MTU * 2];

  /* Asked here, not when the thread starts: the setting may come later. */
  if (!self->raised && g_atomic_int_get (&self->realtime)) {
    parley_sched_realtime ("link thread");
    self->raised = TRUE;
  }
  /* RFC 7983: DTLS records start with 20 - 63. */
  if (len == 0 || (guint8) buf[0] < 20 || (guint8) buf[0] > 63)
    return;

  g_mutex_lock (&self->lock);
  if (self->ssl == NULL || self->state >= PARLEY_LINK_FAILED) {
    g_mutex_unlock (&self->lock);
    return;
  }
  BIO_write (self->rbio, buf, (int) len);
  if (!self->handshake_done) {
    int r = SSL_do_handshake (self->ssl);

    if (r == 1) {
      X509 *peer = SSL_get1_peer_certificate (self->ssl);
      g_autofree char *fp = peer ? fingerprint_of (peer) : NULL;

      if (peer)
        X509_free (peer);
      if (fp == NULL || self->remote_fingerprint == NULL ||
          g_ascii_strcasecmp (fp, self->remote_fingerprint) != 0) {
        g_warning ("Link %u: the peer's DTLS certificate does not match its fingerprint",
                   self->id);
        failed = TRUE;
      } else {
        self->handshake_done = TRUE;
        start_sctp = TRUE;
      }
    } else if (SSL_get_error (self->ssl, r) != SSL_ERROR_WANT_READ) {
      g_debug ("Link %u: DTLS handshake failed: %s", self->id,
               ERR_error_string (ERR_get_error (), NULL));
      failed = TRUE;
    }
    dtls_arm_timer_locked (self);
    unlock_and_flush (self);
    if (failed) {
      link_set_state (self, PARLEY_LINK_FAILED);
      return;
    }
    if (!start_sctp)
      return;
    sctp_start (self);
    /* Records that came with the last handshake flight. */
    g_mutex_lock (&self->lock);
  }

  for (;;) {
    int n = SSL_read (self->ssl, plain, sizeof plain);

    if (n <= 0) {
      int err = SSL_get_error (self->ssl, n);

      if (err == SSL_ERROR_ZERO_RETURN)
        failed = TRUE;          /* close_notify: the peer is gone */
      ERR_clear_error ();
      break;
    }
    g_mutex_unlock (&self->lock);
    usrsctp_conninput (GUINT_TO_POINTER (self->id), plain, (size_t) n, 0);
    g_mutex_lock (&self->lock);
  }
  unlock_and_flush (self);
  if (self->sock)
    sctp_drain (self);
  if (failed)
    link_set_state (self, PARLEY_LINK_CLOSED);
}

/* ICE. */

static void
nice_candidate_cb (NiceAgent     *agent,
                   NiceCandidate *candidate,
                   gpointer       data)
{
  ParleyLink *self = data;
  g_autofree char *sdp = nice_agent_generate_local_candidate_sdp (agent, candidate);

  /* "a=candidate:…" → "candidate:…", as RTCIceCandidate.candidate. */
  if (sdp && g_str_has_prefix (sdp, "a="))
    emit_later (self, TRUE, sdp + 2);
}

static void
nice_gathering_done_cb (NiceAgent *agent,
                        guint      stream_id,
                        gpointer   data)
{
  emit_later (data, TRUE, NULL);
}

static void
nice_state_cb (NiceAgent *agent,
               guint      stream_id,
               guint      component_id,
               guint      state,
               gpointer   data)
{
  ParleyLink *self = data;

  if (state == NICE_COMPONENT_STATE_FAILED) {
    link_set_state (self, PARLEY_LINK_FAILED);
    return;
  }
  if (state != NICE_COMPONENT_STATE_READY)
    return;
  g_mutex_lock (&self->lock);
  /* The DTLS client starts the handshake once ICE has a pair. */
  if (!self->offerer && !self->handshake_done && self->ssl &&
      SSL_get_state (self->ssl) == TLS_ST_BEFORE) {
    SSL_do_handshake (self->ssl);
    dtls_arm_timer_locked (self);
  }
  unlock_and_flush (self);
}

static gpointer
link_thread (gpointer data)
{
  ParleyLink *self = data;

  g_main_context_push_thread_default (self->context);
  g_main_loop_run (self->loop);
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

/* GObject. */

static void
parley_link_finalize (GObject *object)
{
  ParleyLink *self = PARLEY_LINK (object);

  link_close (self, FALSE);
  g_clear_pointer (&self->ssl, SSL_free);
  g_clear_pointer (&self->out, g_ptr_array_unref);
  g_clear_pointer (&self->partial, g_byte_array_unref);
  g_free (self->remote_fingerprint);
  if (self->func_destroy)
    self->func_destroy (self->func_data);
  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);
  g_main_context_unref (self->owner_context);
  g_rw_lock_clear (&self->sock_lock);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (parley_link_parent_class)->finalize (object);
}

static void
parley_link_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  ParleyLink *self = PARLEY_LINK (object);

  switch (prop_id) {
    case PROP_STATE:
      g_value_set_int (value, parley_link_get_state (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
parley_link_class_init (ParleyLinkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = parley_link_finalize;
  object_class->get_property = parley_link_get_property;

  /**
   * ParleyLink:state:
   *
   * A #ParleyLinkState; notified on the context that made the link.
   */
  properties[PROP_STATE] = g_param_spec_int ("state", NULL, NULL, PARLEY_LINK_NEW,
                                             PARLEY_LINK_CLOSED, PARLEY_LINK_NEW,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ParleyLink::local-candidate:
   * @candidate: (nullable): an ICE candidate in the form of
   *   `RTCIceCandidate.candidate` ("candidate:…"), or %NULL once all are out
   *
   * For the peer's parley_link_add_remote_candidate().
   */
  signals[SIGNAL_LOCAL_CANDIDATE] = g_signal_new ("local-candidate", G_TYPE_FROM_CLASS (klass),
                                                  G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                  G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
parley_link_init (ParleyLink *self)
{
  g_mutex_init (&self->lock);
  g_rw_lock_init (&self->sock_lock);
  self->out = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  self->partial = g_byte_array_new ();
  self->owner_context = g_main_context_ref_thread_default ();
  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
}

/**
 * parley_link_new:
 * @offerer: whether this side makes the offer (ICE controlling, DTLS server)
 *
 * Makes a link and its thread; nothing goes on the network before
 * parley_link_start().
 *
 * Returns: (transfer full): the link
 */
ParleyLink *
parley_link_new (gboolean offerer)
{
  ParleyLink *self = g_object_new (PARLEY_TYPE_LINK, NULL);
  g_autoptr(GError) error = NULL;

  self->offerer = !!offerer;
  if (!ensure_global () || !link_ssl_init (self, &error)) {
    self->state = PARLEY_LINK_FAILED;
    return self;
  }
  g_mutex_lock (&links_lock);
  self->id = next_link_id++;
  g_hash_table_insert (links, GUINT_TO_POINTER (self->id), self);
  g_mutex_unlock (&links_lock);
  usrsctp_register_address (GUINT_TO_POINTER (self->id));

  self->agent = nice_agent_new_full (self->context, NICE_COMPATIBILITY_RFC5245,
                                     NICE_AGENT_OPTION_ICE_TRICKLE);
  g_object_set (self->agent, "controlling-mode", self->offerer, "upnp", FALSE, "ice-tcp", FALSE,
                NULL);
  self->stream_id = nice_agent_add_stream (self->agent, 1);
  nice_agent_set_stream_name (self->agent, self->stream_id, "application");
  g_signal_connect (self->agent, "new-candidate-full", G_CALLBACK (nice_candidate_cb), self);
  g_signal_connect (self->agent, "candidate-gathering-done", G_CALLBACK (nice_gathering_done_cb),
                    self);
  g_signal_connect (self->agent, "component-state-changed", G_CALLBACK (nice_state_cb), self);
  nice_agent_attach_recv (self->agent, self->stream_id, 1, self->context, nice_recv_cb, self);
  self->thread = g_thread_new ("parley-link", link_thread, self);
  return self;
}

/**
 * parley_link_set_relay:
 *
 * A TURN server (UDP) for the relay candidates, before parley_link_start();
 * @host must be an IP address.
 */
void
parley_link_set_relay (ParleyLink *self,
                       const char *host,
                       guint       port,
                       const char *username,
                       const char *password)
{
  g_return_if_fail (PARLEY_IS_LINK (self));
  g_return_if_fail (host != NULL && username != NULL && password != NULL);

  if (self->agent)
    nice_agent_set_relay_info (self->agent, self->stream_id, 1, host, port, username, password,
                               NICE_RELAY_TYPE_TURN_UDP);
}

/**
 * parley_link_set_relay_only:
 *
 * Offers relay candidates only (hides this host's addresses from the
 * peer); before parley_link_start().
 */
void
parley_link_set_relay_only (ParleyLink *self,
                            gboolean    relay_only)
{
  g_return_if_fail (PARLEY_IS_LINK (self));

  if (self->agent)
    g_object_set (self->agent, "force-relay", relay_only, NULL);
}

/**
 * parley_link_set_realtime:
 *
 * Whether the link's thread asks for real-time priority (see
 * parley_sched_realtime()) when it gets its first datagram. Senders'
 * threads are the caller's.
 */
void
parley_link_set_realtime (ParleyLink *self,
                          gboolean    realtime)
{
  g_return_if_fail (PARLEY_IS_LINK (self));

  g_atomic_int_set (&self->realtime, !!realtime);
}

/**
 * parley_link_set_message_func:
 *
 * Sets the function that gets every message, on the link's thread. Set it
 * before the link connects.
 */
void
parley_link_set_message_func (ParleyLink            *self,
                              ParleyLinkMessageFunc  func,
                              gpointer               user_data,
                              GDestroyNotify         destroy)
{
  g_return_if_fail (PARLEY_IS_LINK (self));

  g_mutex_lock (&self->lock);
  if (self->func_destroy)
    self->func_destroy (self->func_data);
  self->func = func;
  self->func_data = user_data;
  self->func_destroy = destroy;
  g_mutex_unlock (&self->lock);
}

static gboolean
gather_cb (gpointer data)
{
  ParleyLink *self = data;

  if (!nice_agent_gather_candidates (self->agent, self->stream_id))
    link_set_state (self, PARLEY_LINK_FAILED);
  return G_SOURCE_REMOVE;
}

/**
 * parley_link_start:
 *
 * Starts gathering ICE candidates (#ParleyLink::local-candidate).
 */
void
parley_link_start (ParleyLink *self)
{
  g_return_if_fail (PARLEY_IS_LINK (self));

  if (self->started || self->agent == NULL)
    return;
  self->started = TRUE;
  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, gather_cb, g_object_ref (self),
                              g_object_unref);
}

/**
 * parley_link_get_local_description:
 *
 * The SDP of this side: one `m=application … webrtc-datachannel` section
 * with ICE credentials, the DTLS fingerprint and role, and the SCTP port.
 * Candidates follow one by one (#ParleyLink::local-candidate).
 *
 * Returns: (transfer full) (nullable): the SDP, or %NULL if the link failed
 */
char *
parley_link_get_local_description (ParleyLink *self)
{
  g_autofree char *ufrag = NULL;
  g_autofree char *pwd = NULL;

  g_return_val_if_fail (PARLEY_IS_LINK (self), NULL);

  if (self->agent == NULL ||
      !nice_agent_get_local_credentials (self->agent, self->stream_id, &ufrag, &pwd))
    return NULL;
  return g_strdup_printf ("v=0\r\n"
                          "o=- %u 2 IN IP4 127.0.0.1\r\n"
                          "s=-\r\n"
                          "t=0 0\r\n"
                          "a=group:BUNDLE 0\r\n"
                          "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                          "c=IN IP4 0.0.0.0\r\n"
                          "a=ice-ufrag:%s\r\n"
                          "a=ice-pwd:%s\r\n"
                          "a=ice-options:trickle\r\n"
                          "a=fingerprint:sha-256 %s\r\n"
                          "a=setup:%s\r\n"
                          "a=mid:0\r\n"
                          "a=sctp-port:%d\r\n"
                          "a=max-message-size:%d\r\n",
                          g_random_int (), ufrag, pwd, identity_fingerprint,
                          self->offerer ? "actpass" : "active", SCTP_PORT,
                          PARLEY_LINK_MAX_MESSAGE);
}

static const char *
sdp_attribute (const GstSDPMessage *sdp,
               const GstSDPMedia   *media,
               const char          *key)
{
  const char *value = gst_sdp_media_get_attribute_val (media, key);

  return value ? value : gst_sdp_message_get_attribute_val (sdp, key);
}

/* "AB:CD:…" with 32 bytes. */
static gboolean
valid_fingerprint (const char *fp)
{
  if (strlen (fp) != 32 * 3 - 1)
    return FALSE;
  for (int i = 0; fp[i]; i++) {
    if (i % 3 == 2 ? fp[i] != ':' : !g_ascii_isxdigit (fp[i]))
      return FALSE;
  }
  return TRUE;
}

/* ICE's ice-char: letters, digits, '+' and '/'. */
static gboolean
valid_ice_string (const char *s,
                  gsize       min,
                  gsize       max)
{
  gsize len = strlen (s);

  if (len < min || len > max)
    return FALSE;
  for (gsize i = 0; i < len; i++) {
    if (!g_ascii_isalnum (s[i]) && s[i] != '+' && s[i] != '/')
      return FALSE;
  }
  return TRUE;
}

/**
 * parley_link_set_remote_description:
 * @sdp: the peer's parley_link_get_local_description() (or a browser's
 *   description with one data channel section)
 *
 * Checks and applies the peer's description: ICE credentials, a SHA-256
 * fingerprint, a DTLS role that fits this side's, the SCTP port 5000.
 * Candidates in the description are added too.
 *
 * Returns: %TRUE, or %FALSE with @error set (%PARLEY_ERROR_INVALID)
 */
gboolean
parley_link_set_remote_description (ParleyLink  *self,
                                    const char  *sdp,
                                    GError     **error)
{
  g_autoptr(GstSDPMessage) msg = NULL;
  const GstSDPMedia *media = NULL;
  const char *ufrag, *pwd, *fingerprint, *setup, *port;
  gboolean setup_ok;

  g_return_val_if_fail (PARLEY_IS_LINK (self), FALSE);

  if (parley_link_get_state (self) >= PARLEY_LINK_FAILED || self->agent == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, "The link is %s",
                 parley_link_state_to_string (parley_link_get_state (self)));
    return FALSE;
  }
  if (self->remote_fingerprint != NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, "The link has a remote description");
    return FALSE;
  }
  if (sdp == NULL || *sdp == '\0' || strlen (sdp) > 64 * 1024 ||
      gst_sdp_message_new (&msg) != GST_SDP_OK ||
      gst_sdp_message_parse_buffer ((const guint8 *) sdp, (guint) strlen (sdp), msg) !=
      GST_SDP_OK) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, "Not an SDP description");
    return FALSE;
  }
  for (guint i = 0; i < gst_sdp_message_medias_len (msg); i++) {
    const GstSDPMedia *m = gst_sdp_message_get_media (msg, i);

    if (g_strcmp0 (gst_sdp_media_get_media (m), "application") == 0 &&
        g_strcmp0 (gst_sdp_media_get_proto (m), "UDP/DTLS/SCTP") == 0) {
      media = m;
      break;
    }
  }
  if (media == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 "The description has no UDP/DTLS/SCTP application section");
    return FALSE;
  }
  ufrag = sdp_attribute (msg, media, "ice-ufrag");
  pwd = sdp_attribute (msg, media, "ice-pwd");
  fingerprint = sdp_attribute (msg, media, "fingerprint");
  setup = sdp_attribute (msg, media, "setup");
  port = sdp_attribute (msg, media, "sctp-port");
  if (ufrag == NULL || pwd == NULL || !valid_ice_string (ufrag, 4, 256) ||
      !valid_ice_string (pwd, 22, 256)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 "The description's ICE credentials are missing or invalid");
    return FALSE;
  }
  if (fingerprint == NULL || g_ascii_strncasecmp (fingerprint, "sha-256 ", 8) != 0 ||
      !valid_fingerprint (fingerprint + 8)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 "The description has no SHA-256 DTLS fingerprint");
    return FALSE;
  }
  /* The offerer is the DTLS server: its peer must be the client. */
  setup_ok = self->offerer ? g_strcmp0 (setup, "active") == 0
                           : g_strcmp0 (setup, "actpass") == 0 || g_strcmp0 (setup, "passive") == 0;
  if (!setup_ok) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 "The description's DTLS role (setup:%s) does not fit this side's",
                 setup ? setup : "none");
    return FALSE;
  }
  if (port != NULL && g_strcmp0 (port, G_STRINGIFY (SCTP_PORT)) != 0) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, "Unsupported SCTP port %s", port);
    return FALSE;
  }

  g_mutex_lock (&self->lock);
  self->remote_fingerprint = g_ascii_strup (fingerprint + 8, -1);
  if (self->state == PARLEY_LINK_NEW) {
    g_mutex_unlock (&self->lock);
    link_set_state (self, PARLEY_LINK_CONNECTING);
  } else {
    g_mutex_unlock (&self->lock);
  }
  nice_agent_set_remote_credentials (self->agent, self->stream_id, ufrag, pwd);
  for (guint i = 0; i < gst_sdp_media_attributes_len (media); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute (media, i);

    if (g_strcmp0 (a->key, "candidate") == 0 && a->value) {
      g_autofree char *c = g_strconcat ("candidate:", a->value, NULL);

      parley_link_add_remote_candidate (self, c, NULL);
    }
  }
  return TRUE;
}

/**
 * parley_link_add_remote_candidate:
 * @candidate: (nullable): "candidate:…" (or "a=candidate:…"); %NULL or ""
 *   for the end of the peer's candidates
 *
 * Returns: %TRUE, or %FALSE with @error set (%PARLEY_ERROR_INVALID)
 */
gboolean
parley_link_add_remote_candidate (ParleyLink  *self,
                                  const char  *candidate,
                                  GError     **error)
{
  g_autofree char *line = NULL;
  NiceCandidate *c;
  GSList list = { 0 };
  int added;

  g_return_val_if_fail (PARLEY_IS_LINK (self), FALSE);

  if (self->agent == NULL || parley_link_get_state (self) >= PARLEY_LINK_FAILED) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, "The link is %s",
                 parley_link_state_to_string (parley_link_get_state (self)));
    return FALSE;
  }
  if (candidate == NULL || *candidate == '\0') {
    nice_agent_peer_candidate_gathering_done (self->agent, self->stream_id);
    return TRUE;
  }
  if (strlen (candidate) > 1024) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, "ICE candidate too long");
    return FALSE;
  }
  line = g_str_has_prefix (candidate, "a=") ? g_strdup (candidate)
                                            : g_strconcat ("a=", candidate, NULL);
  c = nice_agent_parse_remote_candidate_sdp (self->agent, self->stream_id, line);
  if (c == NULL) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, "Not an ICE candidate: %.80s",
                 candidate);
    return FALSE;
  }
  list.data = c;
  added = nice_agent_set_remote_candidates (self->agent, self->stream_id, 1, &list);
  nice_candidate_free (c);
  if (added < 1) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID, "ICE candidate refused: %.80s",
                 candidate);
    return FALSE;
  }
  return TRUE;
}

/**
 * parley_link_send:
 * @stream: the SCTP stream (data channel id), below 1024
 * @flags: text or binary, ordering and reliability
 * @data: (array length=len): the message
 * @len: at most %PARLEY_LINK_MAX_MESSAGE bytes
 *
 * Sends one message on the calling thread: SCTP, DTLS and the socket's
 * send happen before this returns. Any thread may call it.
 *
 * Returns: %TRUE, or %FALSE with @error set: %PARLEY_ERROR_STATE before
 *   the link is connected or after it closed, %PARLEY_ERROR_INVALID for a
 *   message too large or a stream out of range, %PARLEY_ERROR_NETWORK when
 *   the association cannot take it now (its buffer is full)
 */
gboolean
parley_link_send (ParleyLink           *self,
                  guint16               stream,
                  ParleyLinkSendFlags   flags,
                  const void           *data,
                  gsize                 len,
                  GError              **error)
{
  struct sctp_sendv_spa spa = { 0 };
  static const guint8 zero = 0;
  gboolean text = (flags & PARLEY_LINK_SEND_TEXT) != 0;
  ssize_t sent;

  g_return_val_if_fail (PARLEY_IS_LINK (self), FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);

  if (len > PARLEY_LINK_MAX_MESSAGE || stream >= SCTP_STREAMS) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 "A message of %" G_GSIZE_FORMAT " bytes on stream %u (at most %d bytes, "
                 "streams below %d)", len, stream, PARLEY_LINK_MAX_MESSAGE, SCTP_STREAMS);
    return FALSE;
  }
  spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
  spa.sendv_sndinfo.snd_sid = stream;
  spa.sendv_sndinfo.snd_flags = (flags & PARLEY_LINK_SEND_UNORDERED) ? SCTP_UNORDERED : 0;
  /* WebRTC sends an empty message as one byte with its own payload id. */
  if (len == 0) {
    spa.sendv_sndinfo.snd_ppid = htonl (text ? PPID_STRING_EMPTY : PPID_BINARY_EMPTY);
    data = &zero;
    len = 1;
  } else {
    spa.sendv_sndinfo.snd_ppid = htonl (text ? PPID_STRING : PPID_BINARY);
  }
  if (flags & PARLEY_LINK_SEND_UNRELIABLE) {
    spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
    spa.sendv_prinfo.pr_policy = SCTP_PR_SCTP_RTX;
    spa.sendv_prinfo.pr_value = 0;
  }
  g_rw_lock_reader_lock (&self->sock_lock);
  if (parley_link_get_state (self) != PARLEY_LINK_CONNECTED || self->sock == NULL) {
    g_rw_lock_reader_unlock (&self->sock_lock);
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_STATE, "The link is %s",
                 parley_link_state_to_string (parley_link_get_state (self)));
    return FALSE;
  }
  sent = usrsctp_sendv (self->sock, data, len, NULL, 0, &spa, sizeof spa, SCTP_SENDV_SPA, 0);
  g_rw_lock_reader_unlock (&self->sock_lock);
  if (sent != (ssize_t) len) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_NETWORK, "Cannot send: %s",
                 sent < 0 ? g_strerror (errno) : "short write");
    return FALSE;
  }
  return TRUE;
}

ParleyLinkState
parley_link_get_state (ParleyLink *self)
{
  ParleyLinkState state;

  g_return_val_if_fail (PARLEY_IS_LINK (self), PARLEY_LINK_FAILED);

  g_mutex_lock (&self->lock);
  state = self->state;
  g_mutex_unlock (&self->lock);
  return state;
}

const char *
parley_link_state_to_string (ParleyLinkState state)
{
  switch (state) {
    case PARLEY_LINK_NEW: return "new";
    case PARLEY_LINK_CONNECTING: return "connecting";
    case PARLEY_LINK_CONNECTED: return "connected";
    case PARLEY_LINK_FAILED: return "failed";
    case PARLEY_LINK_CLOSED: return "closed";
    default: return "invalid";
  }
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
agent_closed_cb (GObject      *agent,
                 GAsyncResult *result,
                 gpointer      loop)
{
  g_main_loop_quit (loop);
}

/* On the link's thread: releases what the agent holds on servers (its TURN
 * allocations, which would otherwise stay until they expire), then stops
 * the thread. */
static gboolean
close_agent_cb (gpointer data)
{
  ParleyLink *self = data;

  if (self->agent)
    nice_agent_close_async (self->agent, agent_closed_cb, self->loop);
  else
    g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

static void
link_close (ParleyLink *self,
            gboolean    notify)
{
  struct socket *sock;

  link_set_state_full (self, PARLEY_LINK_CLOSED, notify);
  /* A DTLS close_notify tells the peer at once (an SCTP SHUTDOWN would wait
   * for an answer that this side no longer reads). */
  g_mutex_lock (&self->lock);
  if (self->ssl && self->handshake_done && !(SSL_get_shutdown (self->ssl) & SSL_SENT_SHUTDOWN)) {
    SSL_shutdown (self->ssl);
    unlock_and_flush (self);
  } else {
    g_mutex_unlock (&self->lock);
  }
  /* The receive path next: nothing reads the socket once it is closed. */
  if (self->thread) {
    /* Sources, not g_main_context_invoke(): the loop may not run yet. A
     * relay that does not answer holds the close up for a second at most
     * (the agent then stays, with its unanswered request, until exit). */
    GSource *close = g_idle_source_new ();
    GSource *deadline = g_timeout_source_new (CLOSE_TIMEOUT_MS);

    g_source_set_callback (close, close_agent_cb, self, NULL);
    g_source_attach (close, self->context);
    g_source_unref (close);
    g_source_set_callback (deadline, quit_cb, self->loop, NULL);
    g_source_attach (deadline, self->context);
    g_thread_join (g_steal_pointer (&self->thread));
    g_source_destroy (deadline);
    g_source_unref (deadline);
  }
  g_rw_lock_writer_lock (&self->sock_lock);
  sock = g_steal_pointer (&self->sock);
  g_rw_lock_writer_unlock (&self->sock_lock);
  if (sock) {
    struct linger abortive = { .l_onoff = 1, .l_linger = 0 };

    /* No SHUTDOWN handshake that would keep the association (and this
     * link's address) alive: the DTLS session is over anyway. */
    usrsctp_setsockopt (sock, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
    usrsctp_close (sock);
  }
  if (self->id) {
    g_mutex_lock (&links_lock);
    g_hash_table_remove (links, GUINT_TO_POINTER (self->id));
    g_mutex_unlock (&links_lock);
    usrsctp_deregister_address (GUINT_TO_POINTER (self->id));
    self->id = 0;
  }
  g_mutex_lock (&self->lock);
  if (self->dtls_timer) {
    g_source_destroy (self->dtls_timer);
    g_clear_pointer (&self->dtls_timer, g_source_unref);
  }
  g_mutex_unlock (&self->lock);
  if (self->agent) {
    nice_agent_attach_recv (self->agent, self->stream_id, 1, self->context, NULL, NULL);
    g_signal_handlers_disconnect_by_data (self->agent, self);
    g_clear_object (&self->agent);
  }
}

/**
 * parley_link_close:
 *
 * Closes the association (the peer sees the link closed), stops the
 * link's thread and frees its network resources. The object stays valid;
 * further sends fail. Called by finalize at the latest. Not to be called
 * from the link's own thread (a message function).
 */
void
parley_link_close (ParleyLink *self)
{
  g_return_if_fail (PARLEY_IS_LINK (self));

  link_close (self, TRUE);
}
