/* Unit tests of the daemon's parts: renewal while running, listen parsing, version JSON. */
#include "daemon_int.h"

#include <kcp/base.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

static struct kcp_clock_manual clock_;
static struct daemon d;
static struct kcp_daemon_options opts;

static void jump_on_timer(uv_timer_t *t)
{
    /* A year passes while the server runs. */
    clock_.wall_s += 300 * 86400;
    uv_close((uv_handle_t *)t, NULL);
}

static char *crt_path, *crt_before;
static int polls;

/* Stops the loop once the certificate on disk changed, or after 10 s (slow emulators). */
static void stop_on_timer(uv_timer_t *t)
{
    char *now = NULL;
    bool changed = kcp_file_read(crt_path, 1 << 20, &now, NULL) == 0 && strcmp(now, crt_before) != 0;
    free(now);
    if (!changed && ++polls < 1000)
        return;
    kcp_loop_stop(&d.loop);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_renewal_while_running(void **state)
{
    char dir[] = "/tmp/kcp-test-daemon-XXXXXX";
    assert_non_null(mkdtemp(dir));
    memset(&d, 0, sizeof(d));
    kcp_clock_manual_init(&clock_, 0, 1764000000);
    opts.data_dir = dir;
    opts.cert_check_interval_ms = 10;
    d.opts = &opts;
    d.clock = clock_.clock;
    d.pki = (struct kcp_pki_params){dir, "node-a", "127.0.0.1", 6443, clock_.wall_s};
    assert_int_equal(kcp_pki_init(&d.pki), 0);
    char *crt = kcp_pki_cert_path(dir, "server");
    char *before = NULL, *after = NULL;
    assert_int_equal(kcp_file_read(crt, 1 << 20, &before, NULL), 0);
    crt_path = crt;
    crt_before = before;

    assert_int_equal(kcp_loop_init(&d.loop, &clock_.clock, 1), 0);
    daemon_certs_task_init(&d);
    uv_timer_t jump, stop;
    uv_timer_init(&d.loop.uv, &jump);
    uv_timer_init(&d.loop.uv, &stop);
    uv_timer_start(&jump, jump_on_timer, 30, 0);
    uv_timer_start(&stop, stop_on_timer, 10, 10);
    assert_int_equal(kcp_loop_run(&d.loop, 1000), 0);
    assert_int_equal(kcp_loop_close(&d.loop), 0);

    assert_int_equal(kcp_file_read(crt, 1 << 20, &after, NULL), 0);
    assert_string_not_equal(before, after);
    int64_t left = 0;
    assert_int_equal(kcp_pki_leaf_remaining(dir, clock_.wall_s, &left), 0);
    assert_true(left > 300 * 86400);
    free(before);
    free(after);
    free(crt);
    char *rm = kcp_sprintf("rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
}

static void test_split_listen(void **state)
{
    char *host = NULL;
    int port = 0;
    assert_int_equal(daemon_split_listen("127.0.0.1:6443", &host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6443);
    free(host);
    assert_int_equal(daemon_split_listen("[::1]:0", &host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    free(host);
    assert_int_equal(daemon_split_listen("6443", &host, &port), KCP_EINVAL);
    assert_int_equal(daemon_split_listen(":6443", &host, &port), KCP_EINVAL);
    assert_int_equal(daemon_split_listen("a:", &host, &port), KCP_EINVAL);
    assert_int_equal(daemon_split_listen("a:70000", &host, &port), KCP_EINVAL);
    assert_int_equal(daemon_split_listen("[::1:80", &host, &port), KCP_EINVAL);
}

static void test_version_json(void **state)
{
    char *json = kcp_version_json();
    assert_non_null(strstr(json, "\"major\": \"1\""));
    assert_non_null(strstr(json, "\"minor\": \"32\""));
    assert_non_null(strstr(json, "\"gitVersion\": \"v1.32."));
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renewal_while_running),
        cmocka_unit_test(test_split_listen),
        cmocka_unit_test(test_version_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
