/*
 * The daemon's one event loop: tasks start in order, and SIGTERM/SIGINT stop them in reverse.
 *
 * Happy path: run -> every task started -> signal -> stop tasks last-first, each calls done ->
 * signal handles closed -> uv_run returns with no handles -> exit 0.
 * Failure modes: a start fails (tasks already started are stopped, the error is returned); a
 * task never calls done (the drain timer stops the loop after drain_ms; exit stays 0 because
 * the process is going away and nothing acknowledged depends on the task).
 */
#include <kcp/base.h>
#include <kcp/loop.h>

#include <string.h>

static void stop_next(struct kcp_loop *loop);

int kcp_loop_init(struct kcp_loop *loop, const struct kcp_clock *clock, uint64_t seed)
{
    memset(loop, 0, sizeof(*loop));
    int rc = uv_loop_init(&loop->uv);
    if (rc != 0)
        return KCP_EIO;
    loop->uv.data = loop;
    loop->clock = clock ? clock : kcp_clock_system();
    kcp_rng_seed(&loop->rng, seed);
    return 0;
}

void kcp_loop_add(struct kcp_loop *loop, struct kcp_task *task)
{
    struct kcp_task **p = &loop->tasks;
    while (*p)
        p = &(*p)->next;
    task->next = NULL;
    task->loop = loop;
    task->started = false;
    *p = task;
}

static void handle_on_close(uv_handle_t *h)
{
}

static void loop_finish(struct kcp_loop *loop)
{
    uv_close((uv_handle_t *)&loop->sigterm, handle_on_close);
    uv_close((uv_handle_t *)&loop->sigint, handle_on_close);
    uv_close((uv_handle_t *)&loop->drain_timer, handle_on_close);
}

/* The previous started task before `before` (tasks stop last-first). */
static struct kcp_task *last_started_before(struct kcp_loop *loop, struct kcp_task *before)
{
    struct kcp_task *found = NULL;
    for (struct kcp_task *t = loop->tasks; t && t != before; t = t->next)
        if (t->started)
            found = t;
    return found;
}

void kcp_task_stopped(struct kcp_task *task)
{
    KCP_LOG_V(1, "loop", "task %s stopped", task->name);
    task->started = false;
    stop_next(task->loop);
}

static void stop_next(struct kcp_loop *loop)
{
    struct kcp_task *t = last_started_before(loop, NULL);
    if (!t) {
        loop_finish(loop);
        return;
    }
    if (t->stop)
        t->stop(t);
    else
        kcp_task_stopped(t);
}

static void drain_on_timeout(uv_timer_t *timer)
{
    struct kcp_loop *loop = timer->loop->data;
    kcp_log(KCP_LOG_WARN, "loop", "tasks did not stop within %llu ms; exiting anyway",
            (unsigned long long)loop->drain_ms);
    uv_stop(&loop->uv);
}

void kcp_loop_stop(struct kcp_loop *loop)
{
    if (loop->stop_requested)
        return;
    loop->stop_requested = true;
    uv_timer_start(&loop->drain_timer, drain_on_timeout, loop->drain_ms, 0);
    stop_next(loop);
}

static void signal_on_signal(uv_signal_t *sig, int signum)
{
    struct kcp_loop *loop = sig->loop->data;
    kcp_log(KCP_LOG_INFO, "loop", "received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    kcp_loop_stop(loop);
}

int kcp_loop_run(struct kcp_loop *loop, uint64_t drain_ms)
{
    loop->drain_ms = drain_ms;
    uv_signal_init(&loop->uv, &loop->sigterm);
    uv_signal_init(&loop->uv, &loop->sigint);
    uv_timer_init(&loop->uv, &loop->drain_timer);
    uv_unref((uv_handle_t *)&loop->drain_timer);
    uv_signal_start(&loop->sigterm, signal_on_signal, SIGTERM);
    uv_signal_start(&loop->sigint, signal_on_signal, SIGINT);

    for (struct kcp_task *t = loop->tasks; t; t = t->next) {
        int rc = t->start ? t->start(t, loop) : 0;
        if (rc != 0) {
            kcp_log(KCP_LOG_ERROR, "loop", "task %s: %s", t->name, kcp_error_message(rc));
            loop->exit_code = rc;
            kcp_loop_stop(loop);
            break;
        }
        t->started = true;
        KCP_LOG_V(1, "loop", "task %s started", t->name);
    }
    uv_run(&loop->uv, UV_RUN_DEFAULT);
    /* After a drain timeout our own handles are still open; libuv keeps signal handles in a
     * process-wide tree, so they must be closed before the loop's memory goes away. */
    if (!uv_is_closing((uv_handle_t *)&loop->sigterm)) {
        loop_finish(loop);
        uv_run(&loop->uv, UV_RUN_NOWAIT);
    }
    return loop->exit_code;
}

int kcp_loop_close(struct kcp_loop *loop)
{
    /* After a drain timeout handles remain open: the process is exiting, so say so and leave
     * them to the kernel rather than pretend the loop closed clean. */
    return uv_loop_close(&loop->uv) == 0 ? 0 : KCP_EINTERNAL;
}
