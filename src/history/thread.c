/*
 * The recorder's own thread: batches and squashes run on it one at a time, at the lowest CPU
 * priority, and report back to the loop through an async handle.
 *
 * Why not libuv's work pool: the pool is shared (the store's group commits, the Raft log, the
 * API's history reads) and its threads run at the loop's priority, so git work competed with
 * the API for the CPU one for one. At nice 19 the recorder takes what the API leaves idle; under
 * a burst it lags instead (the queue, then the store's retained entries, hold the difference:
 * docs/HISTORY.md "Off the hot path").
 */
#include "history_int.h"

#include <stdlib.h>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

struct history_thread {
    uv_thread_t tid;
    uv_mutex_t mu;
    uv_cond_t cv;
    uv_async_t async; /* the loop's: the job ran */
    void (*work)(void *);
    void (*done)(void *);
    void *arg;
    bool queued;   /* work waits for the thread */
    bool finished; /* work ran; done is due on the loop */
    bool quit;
    void (*closed)(void *);
    void *closed_data;
};

static void thread_main(void *data)
{
    struct history_thread *t = data;
#ifdef __linux__
    /* Linux gives each thread its own nice value. 19 rather than SCHED_IDLE: the recorder still
     * progresses on a machine others keep busy, and it takes locks (the allocator's) that
     * normal threads may wait for. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
#endif
    uv_mutex_lock(&t->mu);
    for (;;) {
        while (!t->queued && !t->quit)
            uv_cond_wait(&t->cv, &t->mu);
        if (t->quit)
            break;
        t->queued = false;
        uv_mutex_unlock(&t->mu);
        t->work(t->arg);
        uv_mutex_lock(&t->mu);
        t->finished = true;
        uv_async_send(&t->async);
    }
    uv_mutex_unlock(&t->mu);
}

static void thread_on_async(uv_async_t *a)
{
    struct history_thread *t = a->data;
    uv_mutex_lock(&t->mu);
    bool finished = t->finished;
    t->finished = false;
    uv_mutex_unlock(&t->mu);
    if (!finished)
        return;
    /* Idle: the loop may end without waiting for the recorder. */
    uv_unref((uv_handle_t *)&t->async);
    t->done(t->arg);
}

int history_thread_start(struct history_thread **out, uv_loop_t *loop)
{
    struct history_thread *t = kcp_calloc(1, sizeof(*t));
    *out = NULL;
    if (uv_mutex_init(&t->mu) != 0) {
        free(t);
        return KCP_EIO;
    }
    if (uv_cond_init(&t->cv) != 0) {
        uv_mutex_destroy(&t->mu);
        free(t);
        return KCP_EIO;
    }
    uv_async_init(loop, &t->async, thread_on_async);
    t->async.data = t;
    uv_unref((uv_handle_t *)&t->async);
    if (uv_thread_create(&t->tid, thread_main, t) != 0) {
        /* The handle is the loop's now: closing it frees the rest (see stop). */
        t->quit = true;
        history_thread_stop(t, NULL, NULL);
        return KCP_EIO;
    }
    *out = t;
    return 0;
}

void history_thread_submit(struct history_thread *t, void (*work)(void *), void (*done)(void *),
                           void *arg)
{
    uv_mutex_lock(&t->mu);
    t->work = work;
    t->done = done;
    t->arg = arg;
    t->queued = true;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
    /* Busy: the loop waits for done (a test's uv_run, a daemon draining at shutdown). */
    uv_ref((uv_handle_t *)&t->async);
}

static void async_on_close(uv_handle_t *handle)
{
    struct history_thread *t = handle->data;
    void (*closed)(void *) = t->closed;
    void *data = t->closed_data;
    uv_cond_destroy(&t->cv);
    uv_mutex_destroy(&t->mu);
    free(t);
    if (closed)
        closed(data);
}

void history_thread_stop(struct history_thread *t, void (*closed)(void *), void *data)
{
    t->closed = closed;
    t->closed_data = data;
    uv_mutex_lock(&t->mu);
    bool running = !t->quit;
    t->quit = true;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
    if (running)
        uv_thread_join(&t->tid); /* idle (the caller waited for done): returns at once */
    uv_close((uv_handle_t *)&t->async, async_on_close);
}
