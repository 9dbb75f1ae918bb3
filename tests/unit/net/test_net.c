/* Tests of kcp net: addresses, TLS config, TCP and TLS connections over a real listener. */
#include <kcp/base.h>
#include <kcp/net.h>

#include "test_client.h"
#include "tls_fixture.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct tls_fixture fx;

/* One test: the loop and listener on this thread, a blocking client on another. */
struct harness {
    struct kcp_loop loop;
    struct kcp_listener *lis;
    struct kcp_tls_config *tls;
    uv_async_t done;
    pthread_t thread;
    void (*client)(struct harness *h);
    int port;
    char fail[256];
    int closes;            /* server-side on_close calls */
    struct kcp_conn *conn; /* the last accepted */
};

/* Assertions on the client thread record the first failure; the main thread checks it. */
#define CHECK(h, cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(h)->fail[0])                                                                     \
                snprintf((h)->fail, sizeof((h)->fail), "%s:%d: %s", __FILE__, __LINE__, #cond);    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void server_on_data(struct kcp_conn *conn, const char *data, size_t len)
{
    if (len >= 7 && memcmp(data, "whoami\n", 7) == 0) {
        const struct kcp_peer_identity *id = kcp_conn_identity(conn);
        struct kcp_buf b = KCP_BUF_INIT;
        if (!id) {
            kcp_buf_puts(&b, "anonymous\n");
        } else {
            kcp_buf_printf(&b, "%s|", id->user);
            for (size_t i = 0; i < id->ngroups; i++)
                kcp_buf_printf(&b, "%s%s", i ? "," : "", id->groups[i]);
            kcp_buf_puts(&b, "\n");
        }
        kcp_conn_write(conn, b.data, b.len);
        kcp_buf_free(&b);
        return;
    }
    if (len >= 4 && memcmp(data, "big\n", 4) == 0) {
        /* 2 MiB then a graceful close: all of it must arrive before the FIN. */
        char *big = malloc(1 << 20);
        memset(big, 'x', 1 << 20);
        kcp_conn_write(conn, big, 1 << 20);
        kcp_conn_write(conn, big, 1 << 20);
        free(big);
        kcp_conn_close(conn, true);
        return;
    }
    kcp_conn_write(conn, data, len);
}

static void server_on_close(struct kcp_conn *conn)
{
    struct harness *h = kcp_conn_data(conn);
    h->closes++;
}

static const struct kcp_conn_handler server_handler = {.on_data = server_on_data,
                                                       .on_close = server_on_close};

static void harness_on_accept(struct kcp_listener *lis, struct kcp_conn *conn, void *data)
{
    struct harness *h = data;
    (void)lis;
    h->conn = conn;
    kcp_conn_set_data(conn, h);
    kcp_conn_start(conn, &server_handler);
}

static void harness_on_done(uv_async_t *a)
{
    struct harness *h = a->data;
    kcp_listener_close(h->lis, NULL, NULL);
    uv_close((uv_handle_t *)&h->done, NULL);
}

static void *client_main(void *arg)
{
    struct harness *h = arg;
    h->client(h);
    uv_async_send(&h->done);
    return NULL;
}

static void run(void (*client)(struct harness *h), bool tls, int expect_closes)
{
    struct harness h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(uv_loop_init(&h.loop.uv), 0);
    if (tls)
        assert_int_equal(kcp_tls_config_new(&h.tls, fx.ca_path, fx.cert_path, fx.key_path), 0);
    assert_int_equal(kcp_listener_new(&h.lis, &h.loop, "127.0.0.1:0", h.tls, harness_on_accept, &h),
                     0);
    h.port = kcp_listener_port(h.lis);
    assert_true(h.port > 0);
    h.client = client;
    uv_async_init(&h.loop.uv, &h.done, harness_on_done);
    h.done.data = &h;
    assert_int_equal(pthread_create(&h.thread, NULL, client_main, &h), 0);
    uv_run(&h.loop.uv, UV_RUN_DEFAULT);
    pthread_join(h.thread, NULL);
    if (h.fail[0])
        fail_msg("%s", h.fail);
    assert_int_equal(h.closes, expect_closes);
    assert_int_equal(uv_loop_close(&h.loop.uv), 0);
    kcp_tls_config_free(h.tls);
}

static void test_parse_addr(void **state)
{
    struct sockaddr_storage ss;
    (void)state;
    assert_int_equal(kcp_net_parse_addr("127.0.0.1:6443", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 6443);
    assert_int_equal(kcp_net_parse_addr("[::1]:0", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(kcp_net_parse_addr("0.0.0.0:65535", &ss), 0);
    const char *bad[] = {
        "localhost:80", "127.0.0.1",    "127.0.0.1:", "127.0.0.1:65536", "::1:80", "[::1]80",
        ":80",          "127.0.0.1:8x", "[]:1",       "1.2.3.4:-1",      ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kcp_net_parse_addr(bad[i], &ss), KCP_EINVAL);
    assert_int_equal(kcp_net_parse_addr(NULL, &ss), KCP_EINVAL);
}

static void test_config_errors(void **state)
{
    struct kcp_tls_config *cfg = NULL;
    (void)state;
    assert_int_equal(kcp_tls_config_new(&cfg, "/nonexistent/ca.crt", fx.cert_path, fx.key_path),
                     KCP_EIO);
    assert_int_equal(kcp_tls_config_new(&cfg, fx.ca_path, fx.cert_path, "/nonexistent/k"), KCP_EIO);
    /* A key that is not the certificate's. */
    assert_int_equal(kcp_tls_config_new(&cfg, fx.ca_path, fx.cert_path, fx.key2_path), KCP_ECRYPTO);
    /* A certificate file given as the key. */
    assert_int_equal(kcp_tls_config_new(&cfg, fx.ca_path, fx.cert_path, fx.cert_path), KCP_ECRYPTO);
    assert_int_equal(kcp_tls_config_new(&cfg, fx.ca_path, fx.cert_path, fx.key_path), 0);
    /* A failed reload keeps the config usable; a good one succeeds. */
    assert_int_not_equal(kcp_tls_config_reload(cfg, fx.cert_path, fx.key2_path), 0);
    assert_int_equal(kcp_tls_config_reload(cfg, fx.cert2_path, fx.key2_path), 0);
    kcp_tls_config_free(cfg);
}

static void client_echo(struct harness *h)
{
    struct test_client c;
    char buf[16];
    int r = test_client_connect(&c, h->port, NULL, NULL, NULL);
    if (r == 0 && test_client_write(&c, "hello", 5) == 0) {
        size_t got = 0;
        while (got < 5) {
            ssize_t n = test_client_read(&c, buf + got, sizeof(buf) - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        test_client_close(&c);
        CHECK(h, got == 5 && memcmp(buf, "hello", 5) == 0);
        return;
    }
    test_client_close(&c);
    CHECK(h, !"connect or write failed");
}

static void test_tcp_echo(void **state)
{
    (void)state;
    run(client_echo, false, 1);
}

static void tls_whoami(struct harness *h, const char *cert, const char *key, const char *want)
{
    struct test_client c;
    char buf[256] = {0};
    int r = test_client_connect(&c, h->port, fx.ca_pem, cert, key);
    if (r != 0) {
        test_client_close(&c);
        CHECK(h, r == 0);
    }
    const char *alpn = mbedtls_ssl_get_alpn_protocol(&c.ssl);
    bool alpn_ok = alpn && strcmp(alpn, "http/1.1") == 0;
    r = test_client_write(&c, "whoami\n", 7);
    size_t got = 0;
    while (r == 0 && got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
        ssize_t n = test_client_read(&c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    test_client_close(&c);
    CHECK(h, alpn_ok);
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "got \"%s\" want \"%s\"\n", buf, want);
    CHECK(h, strcmp(buf, want) == 0);
}

static void client_identity(struct harness *h)
{
    tls_whoami(h, fx.client_cert_pem, fx.client_key_pem, "alice|system:masters,dev\n");
}

static void test_tls_identity(void **state)
{
    (void)state;
    run(client_identity, true, 1);
}

static void client_anonymous(struct harness *h)
{
    tls_whoami(h, NULL, NULL, "anonymous\n");
}

static void test_tls_anonymous(void **state)
{
    (void)state;
    run(client_anonymous, true, 1);
}

static void client_rogue(struct harness *h)
{
    struct test_client c;
    int r = test_client_connect(&c, h->port, fx.ca_pem, fx.rogue_cert_pem, fx.rogue_key_pem);
    char buf[16];
    ssize_t n = -1;
    if (r == 0 && test_client_write(&c, "whoami\n", 7) == 0)
        n = test_client_read(&c, buf, sizeof(buf));
    test_client_close(&c);
    /* The handshake itself fails: the server rejects the certificate before its Finished. */
    CHECK(h, r != 0 && n < 0);
}

static void test_tls_rogue_client_cert(void **state)
{
    (void)state;
    run(client_rogue, true, 1);
}

static void client_big(struct harness *h)
{
    struct test_client c;
    struct kcp_buf got = KCP_BUF_INIT;
    int r = test_client_connect(&c, h->port, fx.ca_pem, NULL, NULL);
    if (r == 0)
        r = test_client_write(&c, "big\n", 4);
    if (r == 0)
        r = test_client_read_all(&c, &got);
    test_client_close(&c);
    size_t len = got.len;
    kcp_buf_free(&got);
    CHECK(h, r == 0);
    CHECK(h, len == 2u << 20);
}

static void test_tls_graceful_close_flushes(void **state)
{
    (void)state;
    run(client_big, true, 1);
}

static void client_plain_big(struct harness *h)
{
    struct test_client c;
    struct kcp_buf got = KCP_BUF_INIT;
    int r = test_client_connect(&c, h->port, NULL, NULL, NULL);
    if (r == 0)
        r = test_client_write(&c, "big\n", 4);
    if (r == 0)
        r = test_client_read_all(&c, &got);
    test_client_close(&c);
    size_t len = got.len;
    kcp_buf_free(&got);
    CHECK(h, r == 0 && len == 2u << 20);
}

static void test_tcp_graceful_close_flushes(void **state)
{
    (void)state;
    run(client_plain_big, false, 1);
}

static void client_reload(struct harness *h)
{
    struct test_client c;
    int r = test_client_connect(&c, h->port, fx.ca_pem, NULL, NULL);
    char name[256] = "";
    if (r == 0)
        mbedtls_x509_dn_gets(name, sizeof(name), &mbedtls_ssl_get_peer_cert(&c.ssl)->subject);
    test_client_close(&c);
    CHECK(h, r == 0);
    CHECK(h, strcmp(name, "CN=kcp-renewed") == 0);
}

static void test_tls_reload(void **state)
{
    (void)state;
    struct harness h;
    memset(&h, 0, sizeof(h));
    /* Reload before serving: the new certificate is what a new handshake sees. */
    assert_int_equal(uv_loop_init(&h.loop.uv), 0);
    assert_int_equal(kcp_tls_config_new(&h.tls, fx.ca_path, fx.cert_path, fx.key_path), 0);
    assert_int_equal(kcp_tls_config_reload(h.tls, fx.cert2_path, fx.key2_path), 0);
    assert_int_equal(kcp_listener_new(&h.lis, &h.loop, "127.0.0.1:0", h.tls, harness_on_accept, &h),
                     0);
    h.port = kcp_listener_port(h.lis);
    h.client = client_reload;
    uv_async_init(&h.loop.uv, &h.done, harness_on_done);
    h.done.data = &h;
    assert_int_equal(pthread_create(&h.thread, NULL, client_main, &h), 0);
    uv_run(&h.loop.uv, UV_RUN_DEFAULT);
    pthread_join(h.thread, NULL);
    if (h.fail[0])
        fail_msg("%s", h.fail);
    assert_int_equal(uv_loop_close(&h.loop.uv), 0);
    kcp_tls_config_free(h.tls);
}

static void test_listen_errors(void **state)
{
    struct kcp_loop loop;
    struct kcp_listener *a = NULL, *b = NULL;
    (void)state;
    memset(&loop, 0, sizeof(loop));
    uv_loop_init(&loop.uv);
    assert_int_equal(kcp_listener_new(&a, &loop, "localhost:0", NULL, harness_on_accept, NULL),
                     KCP_EINVAL);
    assert_int_equal(kcp_listener_new(&a, &loop, "127.0.0.1:0", NULL, harness_on_accept, NULL), 0);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", kcp_listener_port(a));
    assert_int_equal(kcp_listener_new(&b, &loop, addr, NULL, harness_on_accept, NULL), KCP_EIO);
    kcp_listener_close(a, NULL, NULL);
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop.uv), 0);
}

/* The in-memory connection: feeding, pausing, and an asynchronous close. */
struct mem_state {
    struct kcp_buf got, sent;
    int closes;
};

static void mem_on_data(struct kcp_conn *conn, const char *data, size_t len)
{
    struct mem_state *m = kcp_conn_data(conn);
    kcp_buf_append(&m->got, data, len);
    kcp_conn_write(conn, "ack", 3);
}

static void mem_on_close(struct kcp_conn *conn)
{
    struct mem_state *m = kcp_conn_data(conn);
    m->closes++;
}

static void mem_sink(struct kcp_conn *conn, const char *data, size_t len, void *sink_data)
{
    struct mem_state *m = sink_data;
    (void)conn;
    kcp_buf_append(&m->sent, data, len);
}

static void test_memory_conn(void **state)
{
    static const struct kcp_conn_handler handler = {.on_data = mem_on_data,
                                                    .on_close = mem_on_close};
    struct kcp_loop loop;
    struct mem_state m = {KCP_BUF_INIT, KCP_BUF_INIT, 0};
    (void)state;
    memset(&loop, 0, sizeof(loop));
    uv_loop_init(&loop.uv);
    struct kcp_conn *c = kcp_conn_memory_new(&loop, mem_sink, &m);
    kcp_conn_set_data(c, &m);
    kcp_conn_start(c, &handler);
    assert_int_equal(kcp_conn_memory_feed(c, "ab", 2), 0);
    assert_int_equal(m.got.len, 2);
    kcp_conn_pause(c, true);
    assert_int_equal(kcp_conn_memory_feed(c, "cd", 2), 0);
    assert_int_equal(m.got.len, 2); /* held back */
    kcp_conn_pause(c, false);
    assert_int_equal(m.got.len, 2); /* delivered from the loop, not from inside pause */
    uv_run(&loop.uv, UV_RUN_NOWAIT);
    assert_string_equal(m.got.data, "abcd");
    assert_string_equal(m.sent.data, "ackack");
    assert_null(kcp_conn_identity(c));
    kcp_conn_close(c, true);
    kcp_conn_close(c, false); /* repeated: harmless */
    assert_int_equal(kcp_conn_memory_feed(c, "x", 1), KCP_ECLOSED);
    assert_int_equal(kcp_conn_write(c, "x", 1), KCP_ECLOSED);
    assert_int_equal(m.closes, 0);
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(m.closes, 1);
    assert_int_equal(uv_loop_close(&loop.uv), 0);
    kcp_buf_free(&m.got);
    kcp_buf_free(&m.sent);
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
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_memory_conn),
        cmocka_unit_test(test_tcp_echo),
        cmocka_unit_test(test_tcp_graceful_close_flushes),
        cmocka_unit_test(test_tls_identity),
        cmocka_unit_test(test_tls_anonymous),
        cmocka_unit_test(test_tls_rogue_client_cert),
        cmocka_unit_test(test_tls_graceful_close_flushes),
        cmocka_unit_test(test_tls_reload),
    };
    return cmocka_run_group_tests_name("net", tests, setup, teardown);
}
