/* Unit tests of the loop module: task order, failing starts, drain timeout, clocks, RNG. */
#include <kcp/base.h>
#include <kcp/loop.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

static char trace[256];
static void fake_on_timer(uv_timer_t *timer);

struct fake {
    struct kcp_task task;
    int start_rc;
    bool stop_late; /* stop finishes on a timer, as a server draining connections does */
    bool never_stop;
    uv_timer_t timer;
};

static int fake_start(struct kcp_task *t, struct kcp_loop *loop)
{
    struct fake *f = t->data;
    strcat(trace, "+");
    strcat(trace, t->name);
    uv_timer_init(&loop->uv, &f->timer);
    f->timer.data = f;
    if (f->never_stop) /* an active handle that stop() never releases */
        uv_timer_start(&f->timer, fake_on_timer, 100000, 0);
    return f->start_rc;
}

static void fake_on_closed(uv_handle_t *h)
{
    struct fake *f = h->data;
    strcat(trace, "-");
    strcat(trace, f->task.name);
    kcp_task_stopped(&f->task);
}

static void fake_on_timer(uv_timer_t *timer)
{
    uv_close((uv_handle_t *)timer, fake_on_closed);
}

static void fake_stop(struct kcp_task *t)
{
    struct fake *f = t->data;
    if (f->never_stop)
        return;
    if (f->stop_late)
        uv_timer_start(&f->timer, fake_on_timer, 20, 0);
    else
        uv_close((uv_handle_t *)&f->timer, fake_on_closed);
}

static void fake_init(struct fake *f, const char *name)
{
    memset(f, 0, sizeof(*f));
    f->task.name = name;
    f->task.start = fake_start;
    f->task.stop = fake_stop;
    f->task.data = f;
}

static void stop_on_timer(uv_timer_t *timer)
{
    kcp_loop_stop(timer->loop->data);
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_order(void **state)
{
    struct kcp_loop loop;
    struct fake a, b, c;
    uv_timer_t stopper;
    trace[0] = '\0';
    assert_int_equal(kcp_loop_init(&loop, NULL, 1), 0);
    fake_init(&a, "a");
    fake_init(&b, "b");
    fake_init(&c, "c");
    b.stop_late = true;
    kcp_loop_add(&loop, &a.task);
    kcp_loop_add(&loop, &b.task);
    kcp_loop_add(&loop, &c.task);
    uv_timer_init(&loop.uv, &stopper);
    uv_timer_start(&stopper, stop_on_timer, 10, 0);
    assert_int_equal(kcp_loop_run(&loop, 2000), 0);
    assert_string_equal(trace, "+a+b+c-c-b-a");
    assert_int_equal(kcp_loop_close(&loop), 0);
}

static void test_failed_start(void **state)
{
    struct kcp_loop loop;
    struct fake a, b, c;
    trace[0] = '\0';
    assert_int_equal(kcp_loop_init(&loop, NULL, 1), 0);
    fake_init(&a, "a");
    fake_init(&b, "b");
    fake_init(&c, "c");
    b.start_rc = KCP_EIO;
    kcp_loop_add(&loop, &a.task);
    kcp_loop_add(&loop, &b.task);
    kcp_loop_add(&loop, &c.task);
    assert_int_equal(kcp_loop_run(&loop, 2000), KCP_EIO);
    /* b failed: only a was started and is stopped; c never started. b's own timer handle is
     * still open, as a failed start must release its handles itself. */
    assert_string_equal(trace, "+a+b-a");
    uv_close((uv_handle_t *)&b.timer, NULL);
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(kcp_loop_close(&loop), 0);
}

static void test_drain_timeout(void **state)
{
    struct kcp_loop loop;
    struct fake a;
    uv_timer_t stopper;
    trace[0] = '\0';
    assert_int_equal(kcp_loop_init(&loop, NULL, 1), 0);
    fake_init(&a, "a");
    a.never_stop = true;
    kcp_loop_add(&loop, &a.task);
    uv_timer_init(&loop.uv, &stopper);
    uv_timer_start(&stopper, stop_on_timer, 10, 0);
    uint64_t t0 = uv_now(&loop.uv);
    /* a's timer handle stays open forever, yet the run ends after the drain window. */
    assert_int_equal(kcp_loop_run(&loop, 100), 0);
    uv_update_time(&loop.uv);
    assert_true(uv_now(&loop.uv) - t0 < 1000);
    assert_int_equal(kcp_loop_close(&loop), KCP_EINTERNAL);
    uv_close((uv_handle_t *)&a.timer, NULL);
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(kcp_loop_close(&loop), 0);
}

static void test_manual_clock(void **state)
{
    struct kcp_clock_manual m;
    kcp_clock_manual_init(&m, 5, 1000);
    assert_int_equal(kcp_clock_now_ms(&m.clock), 5);
    m.now_ms += 10;
    m.wall_s += 86400;
    assert_int_equal(kcp_clock_now_ms(&m.clock), 15);
    assert_int_equal(kcp_clock_wall_s(&m.clock), 87400);
    assert_true(kcp_clock_wall_s(kcp_clock_system()) > 1700000000);
}

static void test_rng(void **state)
{
    struct kcp_rng a, b;
    kcp_rng_seed(&a, 42);
    kcp_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++)
        assert_int_equal(kcp_rng_next(&a), kcp_rng_next(&b));
    kcp_rng_seed(&b, 43);
    assert_int_not_equal(kcp_rng_next(&a), kcp_rng_next(&b));
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t x = kcp_rng_range(&a, 150, 160);
        assert_true(x >= 150 && x < 160);
        seen[x - 150]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(seen[i] > 800 && seen[i] < 1200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),       cmocka_unit_test(test_failed_start),
        cmocka_unit_test(test_drain_timeout), cmocka_unit_test(test_manual_clock),
        cmocka_unit_test(test_rng),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
