/* Tests of kcp_conn_connect: outbound TCP and TLS connections to a listener on the same loop. */
#include <kcp/base.h>
#include <kcp/net.h>

#include "net_int.h" /* white box: the client's ALPN result and its socket's TCP_NODELAY */
#include "tls_fixture.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct tls_fixture fx;

/* What one side of the test saw. */
struct end {
    struct kcp_buf got;
    int datas, closes;
    char identity[256]; /* "user|group,group" at the first on_data, "-" for none */
};

struct t {
    struct kcp_loop loop;
    struct kcp_listener *lis;
    struct kcp_tls_config *srv_tls;
    struct kcp_tls_client_config *cli_tls;
    char addr[32];
    int clients_open; /* connected with kcp_conn_connect, on_close not yet seen */
    size_t close_at;  /* the client closes gracefully once it has received this much */
    bool srv_silent;  /* the server never answers */
    struct end cli, srv;
    char alpn[32];      /* client side, at its first on_data */
    int nodelay;        /* client socket's TCP_NODELAY, at its first on_data */
    uint64_t closed_at; /* loop time of the last client on_close */
    uv_timer_t guard;
};

static void describe_identity(const struct kcp_conn *conn, char *out, size_t size)
{
    const struct kcp_peer_identity *id = kcp_conn_identity(conn);
    if (!id) {
        snprintf(out, size, "-");
        return;
    }
    size_t n = (size_t)snprintf(out, size, "%s|", id->user);
    for (size_t i = 0; i < id->ngroups && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "," : "", id->groups[i]);
}

static void server_on_data(struct kcp_conn *conn, const char *data, size_t len)
{
    struct t *t = kcp_conn_data(conn);
    if (t->srv.datas++ == 0)
        describe_identity(conn, t->srv.identity, sizeof(t->srv.identity));
    kcp_buf_append(&t->srv.got, data, len);
    if (!t->srv_silent)
        assert_int_equal(kcp_conn_write(conn, data, len), 0);
}

static void server_on_close(struct kcp_conn *conn)
{
    struct t *t = kcp_conn_data(conn);
    t->srv.closes++;
}

static const struct kcp_conn_handler server_handler = {.on_data = server_on_data,
                                                       .on_close = server_on_close};

static void on_accept(struct kcp_listener *lis, struct kcp_conn *conn, void *data)
{
    (void)lis;
    kcp_conn_set_data(conn, data);
    kcp_conn_start(conn, &server_handler);
}

static void client_on_data(struct kcp_conn *conn, const char *data, size_t len)
{
    struct t *t = kcp_conn_data(conn);
    if (t->cli.datas++ == 0) {
        describe_identity(conn, t->cli.identity, sizeof(t->cli.identity));
        const char *alpn = conn->kind == CONN_TLS ? mbedtls_ssl_get_alpn_protocol(&conn->ssl) : "";
        snprintf(t->alpn, sizeof(t->alpn), "%s", alpn ? alpn : "(none)");
        uv_os_fd_t fd;
        socklen_t optlen = sizeof(t->nodelay);
        if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) == 0)
            getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &t->nodelay, &optlen);
    }
    kcp_buf_append(&t->cli.got, data, len);
    if (t->close_at && t->cli.got.len >= t->close_at)
        kcp_conn_close(conn, true);
}

static void client_on_close(struct kcp_conn *conn)
{
    struct t *t = kcp_conn_data(conn);
    t->cli.closes++;
    t->closed_at = uv_now(&t->loop.uv);
    if (--t->clients_open == 0 && t->lis) {
        kcp_listener_close(t->lis, NULL, NULL);
        t->lis = NULL;
    }
}

static const struct kcp_conn_handler client_handler = {.on_data = client_on_data,
                                                       .on_close = client_on_close};

static void guard_on_timeout(uv_timer_t *timer)
{
    (void)timer;
    fail_msg("the loop did not finish within 30 s");
}

/* A loop, and a listener on it when tls_listener >= 0 (1: TLS with the given serving pair). */
static void t_init(struct t *t, int tls_listener, const char *cert, const char *key)
{
    memset(t, 0, sizeof(*t));
    t->cli.got = (struct kcp_buf)KCP_BUF_INIT;
    t->srv.got = (struct kcp_buf)KCP_BUF_INIT;
    assert_int_equal(uv_loop_init(&t->loop.uv), 0);
    uv_timer_init(&t->loop.uv, &t->guard);
    uv_timer_start(&t->guard, guard_on_timeout, 30000, 0);
    uv_unref((uv_handle_t *)&t->guard);
    if (tls_listener < 0)
        return;
    if (tls_listener)
        assert_int_equal(kcp_tls_config_new(&t->srv_tls, fx.ca_path, cert, key), 0);
    assert_int_equal(kcp_listener_new(&t->lis, &t->loop, "127.0.0.1:0", t->srv_tls, on_accept, t),
                     0);
    snprintf(t->addr, sizeof(t->addr), "127.0.0.1:%d", kcp_listener_port(t->lis));
}

static struct kcp_conn *t_connect(struct t *t, struct kcp_tls_client_config *tls)
{
    struct kcp_conn *c = NULL;
    assert_int_equal(kcp_conn_connect(&c, &t->loop, t->addr, tls, &client_handler, t), 0);
    assert_non_null(c);
    assert_ptr_equal(kcp_conn_data(c), t);
    t->clients_open++;
    return c;
}

/* Runs the loop until every handle is closed, and checks that it closes clean. */
static void t_run(struct t *t)
{
    uv_run(&t->loop.uv, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t->guard, NULL);
    uv_run(&t->loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop.uv), 0);
    assert_int_equal(t->clients_open, 0);
}

static void t_free(struct t *t)
{
    kcp_tls_config_free(t->srv_tls);
    kcp_tls_client_config_free(t->cli_tls);
    kcp_buf_free(&t->cli.got);
    kcp_buf_free(&t->srv.got);
}

static void pattern(struct kcp_buf *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        kcp_buf_append(b, &"0123456789abcdefghijklmnopqrstuvwxyz\n"[i % 37], 1);
}

static void test_client_config_errors(void **state)
{
    struct kcp_tls_client_config *cfg = NULL;
    (void)state;
    assert_int_equal(kcp_tls_client_config_new(&cfg, NULL, NULL, NULL), KCP_EINVAL);
    assert_int_equal(kcp_tls_client_config_new(&cfg, fx.ca_path, fx.client_cert_path, NULL),
                     KCP_EINVAL);
    assert_int_equal(kcp_tls_client_config_new(&cfg, fx.ca_path, NULL, fx.client_key_path),
                     KCP_EINVAL);
    assert_int_equal(kcp_tls_client_config_new(&cfg, "/nonexistent/ca.crt", NULL, NULL), KCP_EIO);
    assert_int_equal(
        kcp_tls_client_config_new(&cfg, fx.ca_path, fx.client_cert_path, "/nonexistent/k"),
        KCP_EIO);
    /* A key that is not the certificate's. */
    assert_int_equal(kcp_tls_client_config_new(&cfg, fx.ca_path, fx.client_cert_path, fx.key_path),
                     KCP_ECRYPTO);
    assert_null(cfg);
    assert_int_equal(kcp_tls_client_config_new(&cfg, fx.ca_path, NULL, NULL), 0);
    kcp_tls_client_config_free(cfg);
    assert_int_equal(
        kcp_tls_client_config_new(&cfg, fx.ca_path, fx.client_cert_path, fx.client_key_path), 0);
    kcp_tls_client_config_free(cfg);
    kcp_tls_client_config_free(NULL);
}

/* (1) Mutual TLS: each side sees the other's identity, and bytes go both ways. */
static void test_tls_mutual(void **state)
{
    struct t t;
    struct kcp_buf msg = KCP_BUF_INIT;
    (void)state;
    t_init(&t, 1, fx.cert_path, fx.key_path);
    assert_int_equal(
        kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, fx.client_cert_path, fx.client_key_path),
        0);
    struct kcp_conn *c = t_connect(&t, t.cli_tls);
    assert_null(kcp_conn_identity(c)); /* not before the handshake */
    pattern(&msg, 200 * 1024);         /* several TLS records each way */
    assert_int_equal(kcp_conn_write(c, msg.data, msg.len), 0);
    t.close_at = msg.len;
    t_run(&t);
    assert_int_equal(t.cli.closes, 1);
    assert_int_equal(t.srv.closes, 1);
    assert_string_equal(t.srv.identity, "alice|system:masters,dev");
    assert_string_equal(t.cli.identity, "kcp-server|");
    assert_string_equal(t.alpn, "http/1.1");
    assert_int_equal(t.nodelay, 1);
    assert_int_equal(t.srv.got.len, msg.len);
    assert_memory_equal(t.srv.got.data, msg.data, msg.len);
    assert_int_equal(t.cli.got.len, msg.len);
    assert_memory_equal(t.cli.got.data, msg.data, msg.len);
    kcp_buf_free(&msg);
    t_free(&t);
}

/* Without a client certificate the server sees an anonymous client; the server is still checked. */
static void test_tls_no_client_cert(void **state)
{
    struct t t;
    (void)state;
    t_init(&t, 1, fx.cert_path, fx.key_path);
    assert_int_equal(kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, NULL, NULL), 0);
    struct kcp_conn *c = t_connect(&t, t.cli_tls);
    assert_int_equal(kcp_conn_write(c, "ping\n", 5), 0);
    t.close_at = 5;
    t_run(&t);
    assert_int_equal(t.cli.closes, 1);
    assert_string_equal(t.srv.identity, "-");
    assert_string_equal(t.cli.identity, "kcp-server|");
    assert_string_equal(t.cli.got.data, "ping\n");
    t_free(&t);
}

/* (2) Plain TCP: echo, no identity on either side, TCP_NODELAY set. */
static void test_tcp_echo(void **state)
{
    struct t t;
    (void)state;
    t_init(&t, 0, NULL, NULL);
    struct kcp_conn *c = t_connect(&t, NULL);
    assert_int_equal(kcp_conn_write(c, "hello ", 6), 0);
    assert_int_equal(kcp_conn_write(c, "world\n", 6), 0);
    assert_int_equal(kcp_conn_backlog(c), 12);
    t.close_at = 12;
    t_run(&t);
    assert_int_equal(t.cli.closes, 1);
    assert_int_equal(t.srv.closes, 1);
    assert_string_equal(t.cli.got.data, "hello world\n");
    assert_string_equal(t.srv.got.data, "hello world\n");
    assert_string_equal(t.cli.identity, "-");
    assert_string_equal(t.srv.identity, "-");
    assert_int_equal(t.nodelay, 1);
    t_free(&t);
}

/* (3) Nothing listening: on_close for TCP and TLS alike, no data; a bad address makes nothing. */
static void test_connect_refused(void **state)
{
    struct t t;
    struct kcp_conn *c = NULL;
    (void)state;
    /* A port that was just free: bind one, note it, close it. */
    t_init(&t, 0, NULL, NULL);
    kcp_listener_close(t.lis, NULL, NULL);
    t.lis = NULL;
    uv_run(&t.loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(
        kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, fx.client_cert_path, fx.client_key_path),
        0);
    assert_int_equal(kcp_conn_connect(&c, &t.loop, "localhost:6443", NULL, &client_handler, &t),
                     KCP_EINVAL);
    assert_int_equal(kcp_conn_connect(&c, &t.loop, "127.0.0.1", t.cli_tls, &client_handler, &t),
                     KCP_EINVAL);
    assert_null(c);
    struct kcp_conn *a = t_connect(&t, NULL);
    struct kcp_conn *b = t_connect(&t, t.cli_tls);
    assert_int_equal(kcp_conn_write(a, "lost", 4), 0);
    assert_int_equal(kcp_conn_write(b, "lost", 4), 0);
    assert_int_equal(kcp_conn_backlog(b), 4);
    t_run(&t);
    assert_int_equal(t.cli.closes, 2);
    assert_int_equal(t.cli.datas, 0);
    t_free(&t);
}

/* (4) A server whose certificate another CA signed (same issuer name): on_close, nothing sent. */
static void test_tls_wrong_server_ca(void **state)
{
    struct t t;
    (void)state;
    t_init(&t, 1, fx.rogue_server_cert_path, fx.rogue_server_key_path);
    assert_int_equal(
        kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, fx.client_cert_path, fx.client_key_path),
        0);
    struct kcp_conn *c = t_connect(&t, t.cli_tls);
    assert_int_equal(kcp_conn_write(c, "secret\n", 7), 0);
    t_run(&t);
    assert_int_equal(t.cli.closes, 1);
    assert_int_equal(t.cli.datas, 0);
    assert_int_equal(t.srv.datas, 0); /* the early write never left the client */
    assert_int_equal(t.srv.closes, 1);
    t_free(&t);
}

/*
 * (5) Writes queued before the handshake arrive in order, and after them those made once the
 * connection is open. The config is freed at once: the connection keeps it alive.
 */
static void test_tls_queued_writes_in_order(void **state)
{
    struct t t;
    struct kcp_buf want = KCP_BUF_INIT;
    char line[16];
    (void)state;
    t_init(&t, 1, fx.cert_path, fx.key_path);
    assert_int_equal(
        kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, fx.client_cert_path, fx.client_key_path),
        0);
    struct kcp_conn *c = t_connect(&t, t.cli_tls);
    kcp_tls_client_config_free(t.cli_tls);
    t.cli_tls = NULL;
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(line, sizeof(line), "%05d\n", i);
        kcp_buf_append(&want, line, (size_t)n);
        assert_int_equal(kcp_conn_write(c, line, (size_t)n), 0);
        if (i == 1000) {
            size_t at = want.len;
            pattern(&want, 100 * 1024);
            assert_int_equal(kcp_conn_write(c, want.data + at, want.len - at), 0);
        }
    }
    assert_int_equal(kcp_conn_backlog(c), want.len);
    t.close_at = want.len;
    t_run(&t);
    assert_int_equal(t.cli.closes, 1);
    assert_int_equal(t.srv.got.len, want.len);
    assert_memory_equal(t.srv.got.data, want.data, want.len);
    assert_int_equal(t.cli.got.len, want.len);
    assert_memory_equal(t.cli.got.data, want.data, want.len);
    kcp_buf_free(&want);
    t_free(&t);
}

/* (6) kcp_conn_close while the TCP connect is in flight, graceful or not, and repeated. */
static void test_close_while_connecting(void **state)
{
    struct t t;
    (void)state;
    t_init(&t, 1, fx.cert_path, fx.key_path);
    assert_int_equal(
        kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, fx.client_cert_path, fx.client_key_path),
        0);
    struct kcp_conn *a = t_connect(&t, t.cli_tls);
    struct kcp_conn *b = t_connect(&t, t.cli_tls);
    struct kcp_conn *c = t_connect(&t, NULL);
    assert_int_equal(a->state, CONN_CONNECTING);
    assert_int_equal(c->state, CONN_CONNECTING);
    assert_int_equal(kcp_conn_write(a, "x", 1), 0);
    kcp_conn_close(a, false);
    kcp_conn_close(b, true);
    kcp_conn_close(c, true);
    kcp_conn_close(a, true); /* repeated: harmless */
    assert_int_equal(kcp_conn_write(a, "x", 1), KCP_ECLOSED);
    assert_int_equal(kcp_conn_write(c, "x", 1), KCP_ECLOSED);
    assert_int_equal(t.cli.closes, 0); /* never from inside kcp_conn_close */
    t_run(&t);
    assert_int_equal(t.cli.closes, 3);
    assert_int_equal(t.cli.datas, 0);
    assert_int_equal(t.srv.datas, 0);
    t_free(&t);
}

/* A TLS client against a plain TCP server that never answers: the handshake hangs. */
static void close_on_timer(uv_timer_t *timer)
{
    struct kcp_conn *c = timer->data;
    assert_int_equal(c->state, CONN_HANDSHAKE);
    kcp_conn_close(c, true);
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_close_during_handshake(void **state)
{
    struct t t;
    uv_timer_t timer;
    (void)state;
    t_init(&t, 0, NULL, NULL);
    t.srv_silent = true;
    assert_int_equal(kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, NULL, NULL), 0);
    struct kcp_conn *c = t_connect(&t, t.cli_tls);
    uv_timer_init(&t.loop.uv, &timer);
    timer.data = c;
    uv_timer_start(&timer, close_on_timer, 100, 0);
    t_run(&t);
    assert_int_equal(t.cli.closes, 1);
    assert_int_equal(t.cli.datas, 0);
    assert_true(t.srv.datas > 0); /* the ClientHello reached it */
    assert_int_equal(t.srv.closes, 1);
    t_free(&t);
}

static void test_handshake_timeout(void **state)
{
    struct t t;
    (void)state;
    t_init(&t, 0, NULL, NULL);
    t.srv_silent = true;
    assert_int_equal(kcp_tls_client_config_new(&t.cli_tls, fx.ca_path, NULL, NULL), 0);
    uv_update_time(&t.loop.uv);
    uint64_t start = uv_now(&t.loop.uv);
    struct kcp_conn *c = t_connect(&t, t.cli_tls);
    assert_int_equal(kcp_conn_write(c, "never", 5), 0);
    t_run(&t);
    assert_int_equal(t.cli.closes, 1);
    assert_int_equal(t.cli.datas, 0);
    assert_true(t.closed_at - start >= 4900 && t.closed_at - start < 10000);
    assert_int_equal(t.srv.closes, 1);
    t_free(&t);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (getenv("KCP_TEST_VERBOSE"))
        kcp_log_set_verbosity(atoi(getenv("KCP_TEST_VERBOSE")));
    return tls_fixture_init(&fx) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tls_fixture_cleanup(&fx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_config_errors),
        cmocka_unit_test(test_tls_mutual),
        cmocka_unit_test(test_tls_no_client_cert),
        cmocka_unit_test(test_tcp_echo),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_tls_wrong_server_ca),
        cmocka_unit_test(test_tls_queued_writes_in_order),
        cmocka_unit_test(test_close_while_connecting),
        cmocka_unit_test(test_close_during_handshake),
        cmocka_unit_test(test_handshake_timeout),
    };
    return cmocka_run_group_tests_name("net connect", tests, setup, teardown);
}
