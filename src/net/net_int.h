/* kcp net internals shared by the connection, TLS, listener and connect files. */
#ifndef KCP_NET_INT_H
#define KCP_NET_INT_H

#include <kcp/base.h>
#include <kcp/net.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

/* A TLS handshake that has not finished after this long is dropped (half-open connections). */
#define NET_HANDSHAKE_TIMEOUT_MS 10000
/* An outbound connection's TCP connect and TLS handshake together (kcp_conn_connect). */
#define NET_CONNECT_TIMEOUT_MS 5000
/* After our FIN, how long a graceful close waits for the peer's before closing anyway. */
#define NET_LINGER_MS 500
/* Received bytes held undelivered (paused connection) before reading stops. */
#define NET_IN_MAX (64 * 1024)
/* Size of one read from the socket. */
#define NET_READ_SIZE (16 * 1024)

/*
 * One generation of the server's TLS configuration. A reload makes a new generation; each
 * connection holds a reference to the one it was set up with, because its mbedtls_ssl_context
 * points into it until it is freed.
 */
struct tls_gen {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    unsigned refs;
};

struct kcp_tls_config {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    struct tls_gen *cur;
};

struct tls_gen *tls_config_acquire(struct kcp_tls_config *cfg);
void tls_gen_release(struct tls_gen *gen);

/*
 * The client side's configuration. Reference-counted: each connection holds one, because its
 * mbedtls_ssl_context points into conf; kcp_tls_client_config_free drops the owner's.
 */
struct kcp_tls_client_config {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt cert; /* empty without a client certificate */
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
    unsigned refs;
};

struct kcp_tls_client_config *tls_client_config_acquire(struct kcp_tls_client_config *cfg);
void tls_client_config_release(struct kcp_tls_client_config *cfg);

enum conn_kind { CONN_TCP, CONN_TLS, CONN_MEMORY };

/* See the state machine comment at the top of conn.c. */
enum conn_state {
    CONN_NEW,        /* accepted, not started */
    CONN_CONNECTING, /* outbound: TCP connect in progress */
    CONN_HANDSHAKE,  /* TLS handshake in progress */
    CONN_OPEN,       /* application data flows */
    CONN_DRAINING,   /* closing: flushing queued output, discarding input */
    CONN_LINGER,     /* FIN sent; discarding input until the peer's FIN or a timeout */
    CONN_CLOSING,    /* handles closing; on_close and free follow */
};

struct kcp_conn {
    enum conn_kind kind;
    enum conn_state state;
    struct kcp_loop *loop;
    const struct kcp_conn_handler *handler; /* NULL until started */
    void *data;
    uv_tcp_t tcp;      /* unused for CONN_MEMORY */
    uv_timer_t timer;  /* handshake deadline, linger deadline, or a deferred pump */
    int open_handles;  /* uv handles not yet closed */
    bool reading;      /* uv_read_start is in effect */
    bool paused;       /* on_data is held back */
    bool peer_eof;     /* the peer sent its FIN */
    struct kcp_buf in; /* received, not yet consumed (ciphertext under TLS) */
    size_t in_off;
    struct kcp_buf out;   /* queued behind the write in flight */
    struct kcp_buf early; /* plaintext written before the handshake finished */
    uv_write_t wreq;      /* the one write in flight, if wdata */
    char *wdata;
    size_t wlen;
    uv_shutdown_t sreq;
    /* Outbound only. */
    uv_connect_t creq;
    struct sockaddr_storage remote; /* the address connected to; ss_family 0 when accepted */
    /* TLS only: a server connection has tls_cfg and gen, a client one client_cfg. */
    struct kcp_tls_config *tls_cfg;
    struct tls_gen *gen;
    struct kcp_tls_client_config *client_cfg;
    bool ssl_ready; /* ssl is initialised (and must be freed) */
    mbedtls_ssl_context ssl;
    struct kcp_peer_identity *identity;
    /* Memory only. */
    kcp_conn_sink_cb sink;
    void *sink_data;
};

/* conn.c */
struct kcp_conn *conn_new_tcp(struct kcp_loop *loop, struct kcp_tls_config *tls);
void conn_move(struct kcp_conn *c, enum conn_state to);
/* Starts the connection's one timer; what it does on expiry depends on the state. */
void conn_set_deadline(struct kcp_conn *c, uint64_t ms);
void conn_update_reading(struct kcp_conn *c);
void conn_queue_out(struct kcp_conn *c, const void *data, size_t len);
void conn_close_now(struct kcp_conn *c);
void conn_drain(struct kcp_conn *c);
void conn_opened(struct kcp_conn *c);
void conn_describe_peer(const struct kcp_conn *c, char *out, size_t size);

/* tls.c */
/* Sets up c->ssl from c->client_cfg when set, else from the current generation of c->tls_cfg. */
int tls_conn_setup(struct kcp_conn *c);
void tls_conn_free(struct kcp_conn *c);
void tls_handshake_step(struct kcp_conn *c);
void tls_pump(struct kcp_conn *c);
int tls_write(struct kcp_conn *c, const void *data, size_t len);
void tls_close_notify(struct kcp_conn *c);
int tls_on_verify(void *data, mbedtls_x509_crt *crt, int depth, uint32_t *flags);
void tls_log_error(const char *what, const char *who, int ret);

/* tls_config.c: logs a load error with the path; KCP_EIO for file errors, else KCP_ECRYPTO. */
int tls_load_error(const char *what, const char *path, int ret);

#endif
