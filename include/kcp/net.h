/* kcp net: TCP and TLS (mbedTLS) connections on the libuv loop, and a listener. */
#ifndef KCP_NET_H
#define KCP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <kcp/loop.h>

/*
 * TLS server configuration: the serving certificate and key, and the CA that client
 * certificates must chain to. A client may present no certificate (it is then anonymous and
 * may authenticate by bearer token later); a client that presents a certificate the CA did not
 * sign fails the handshake. TLS 1.2 minimum; ALPN offers only "http/1.1".
 * Errors: KCP_EIO (a file is missing or unreadable), KCP_ECRYPTO (bad PEM, key does not match
 * the certificate); each logged with the path. The config must outlive every listener and
 * connection that uses it.
 */
struct kcp_tls_config;
int kcp_tls_config_new(struct kcp_tls_config **out, const char *ca_path, const char *cert_path,
                       const char *key_path);
/*
 * Loads a renewed serving certificate; new handshakes use it, live connections keep theirs.
 * On error the current certificate stays in use.
 */
int kcp_tls_config_reload(struct kcp_tls_config *cfg, const char *cert_path, const char *key_path);
void kcp_tls_config_free(struct kcp_tls_config *cfg);

/*
 * TLS client configuration (kcp_conn_connect): the CA the server's certificate must chain to
 * (verification is required; a server without a certificate, or with one the CA did not sign
 * or that lacks serverAuth usage, fails the handshake), and our own client certificate and key
 * (both NULL: no client certificate). Host names are not checked: peers are addressed by IP and
 * the CA is the cluster's own. TLS 1.2 minimum; ALPN offers only "http/1.1".
 * Errors: KCP_EINVAL (no ca_path, or only one of cert_path and key_path), KCP_EIO (a file is
 * missing or unreadable), KCP_ECRYPTO (bad PEM, key does not match the certificate); the last
 * two logged with the path.
 * Each connection keeps the config it was made with alive, so kcp_tls_client_config_free may
 * come before its connections close (e.g. to switch to a renewed client certificate: make a new
 * config for new connections and free the old one).
 */
struct kcp_tls_client_config;
int kcp_tls_client_config_new(struct kcp_tls_client_config **out, const char *ca_path,
                              const char *cert_path, const char *key_path);
void kcp_tls_client_config_free(struct kcp_tls_client_config *cfg);

/* Parses "HOST:PORT" or "[V6]:PORT" with a numeric host (no resolver). KCP_EINVAL otherwise. */
int kcp_net_parse_addr(const char *hostport, struct sockaddr_storage *out);

struct kcp_conn;
struct kcp_conn_handler {
    /*
     * Plaintext bytes from the peer, all of them consumed by the call. The buffer is only valid
     * during the call. After kcp_conn_pause(conn, true) no further call comes until resumed.
     */
    void (*on_data)(struct kcp_conn *conn, const char *data, size_t len);
    /*
     * The connection is gone (peer closed or reset, error, timeout, or kcp_conn_close); the
     * last callback, never made from inside a kcp_conn_* call. The connection is freed after.
     */
    void (*on_close)(struct kcp_conn *conn);
    /*
     * Optional: everything queued has been written (backlog back to 0) after a write had to
     * queue. Lets a producer stop at a high-water mark and resume here.
     */
    void (*on_drain)(struct kcp_conn *conn);
};

/*
 * Who is at the other end: from the verified peer certificate (CN, O values) — the client's on
 * an accepted connection, the server's on one made by kcp_conn_connect — else NULL.
 */
struct kcp_peer_identity {
    char *user;
    char **groups;
    size_t ngroups;
};

/*
 * Starts a connection handed over by a listener: reading, and the TLS handshake (bounded by a
 * handshake timeout). handler is borrowed and must outlive the connection. Call once; not for
 * connections made by kcp_conn_connect, which start themselves.
 */
void kcp_conn_start(struct kcp_conn *conn, const struct kcp_conn_handler *handler);
/*
 * Connects to the numeric address addr ("HOST:PORT" or "[V6]:PORT", kcp_net_parse_addr) and
 * returns at once with the connection in *out, started: writes queue (kcp_conn_backlog counts
 * them) until the TCP connect and, with tls, the TLS handshake finish, then go out in order.
 * From then on it behaves as an accepted connection. Any failure after the call returns
 * (refused, unreachable, the connect and handshake not done within 5 s, a server certificate
 * the CA did not sign) ends in on_close with no on_data; nothing queued was sent. handler is
 * borrowed and must outlive the connection; data is set as by kcp_conn_set_data before any
 * callback. tls (may be NULL: plain TCP) is referenced by the connection, not borrowed.
 * kcp_conn_identity gives the server's identity once on_data has been called. Sets
 * TCP_NODELAY, and ignores SIGPIPE process-wide as kcp_listener_new does.
 * KCP_EINVAL for a bad address: nothing is made, no callback follows. Otherwise 0, and
 * on_close fires exactly once.
 */
int kcp_conn_connect(struct kcp_conn **out, struct kcp_loop *loop, const char *addr,
                     struct kcp_tls_client_config *tls, const struct kcp_conn_handler *handler,
                     void *data);
/*
 * Queues bytes (copied) for sending; bytes written before the TLS handshake completes are sent
 * after it. KCP_ECLOSED once the connection is closing.
 */
int kcp_conn_write(struct kcp_conn *conn, const void *data, size_t len);
/* Bytes queued but not yet written to the socket: the measure of a slow reader. */
size_t kcp_conn_backlog(const struct kcp_conn *conn);
/*
 * Stops or resumes delivering on_data (flow control, pipelining). While paused the connection
 * still reads a bounded amount, so that a peer that goes away is noticed (on_close).
 */
void kcp_conn_pause(struct kcp_conn *conn, bool paused);
/*
 * Graceful: sends what is queued, then TLS close_notify, then a FIN, and waits briefly for the
 * peer's own close (so that it reads our last response instead of a reset). Otherwise drops
 * what is queued. Before the TLS handshake or TCP connect has finished, application bytes
 * queued so far are dropped either way. on_close follows (not for a connection never started).
 * Safe to repeat.
 */
void kcp_conn_close(struct kcp_conn *conn, bool graceful);
/*
 * The peer's identity (struct kcp_peer_identity: the server's on a kcp_conn_connect
 * connection). Valid once on_data has been called (after the handshake); NULL when anonymous,
 * when the certificate has no CN, or on plain TCP.
 */
const struct kcp_peer_identity *kcp_conn_identity(const struct kcp_conn *conn);
void kcp_conn_set_data(struct kcp_conn *conn, void *data);
void *kcp_conn_data(const struct kcp_conn *conn);

/*
 * A listening TCP socket; with a TLS config every accepted connection speaks TLS, without one
 * it is plain TCP (tests, internal use). Connections live on after the listener closes.
 */
struct kcp_listener;
/*
 * A new connection, owned by the callee: it must call kcp_conn_start or kcp_conn_close on it
 * before returning (closing refuses it, for example past a connection limit).
 */
typedef void (*kcp_listener_accept_cb)(struct kcp_listener *lis, struct kcp_conn *conn, void *data);
typedef void (*kcp_listener_closed_cb)(struct kcp_listener *lis, void *data);
/*
 * Binds and listens on the numeric address addr ("127.0.0.1:0" picks a port). tls is borrowed
 * and may be NULL. KCP_EINVAL for a bad address, KCP_EIO (logged with the address) when the
 * socket cannot be bound; the half-made socket is then closed by the loop's next run.
 */
int kcp_listener_new(struct kcp_listener **out, struct kcp_loop *loop, const char *addr,
                     struct kcp_tls_config *tls, kcp_listener_accept_cb cb, void *data);
/* The bound port. */
int kcp_listener_port(const struct kcp_listener *lis);
/* Stops accepting; cb (may be NULL) fires once the socket is closed, then the listener is freed. */
void kcp_listener_close(struct kcp_listener *lis, kcp_listener_closed_cb cb, void *data);

/*
 * An in-memory connection for tests and fuzzers: no socket, bytes fed by kcp_conn_memory_feed
 * reach on_data (subject to pause), writes go synchronously to sink. Closing it is asynchronous
 * like any other connection, so the loop must run for on_close.
 */
typedef void (*kcp_conn_sink_cb)(struct kcp_conn *conn, const char *data, size_t len,
                                 void *sink_data);
struct kcp_conn *kcp_conn_memory_new(struct kcp_loop *loop, kcp_conn_sink_cb sink, void *sink_data);
/* Feeds bytes as if read from the peer. KCP_ECLOSED once the connection is closing. */
int kcp_conn_memory_feed(struct kcp_conn *conn, const void *data, size_t len);

#endif
