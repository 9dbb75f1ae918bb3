/* kcp loop: the one libuv loop, cooperative tasks, and the injected clock and RNG. */
#ifndef KCP_LOOP_H
#define KCP_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/*
 * Time comes from a clock that tests replace: monotonic milliseconds for deadlines and
 * wall-clock seconds for timestamps (certificate validity, creationTimestamp).
 */
struct kcp_clock {
    uint64_t (*monotonic_ms)(void *data);
    int64_t (*wall_s)(void *data);
    void *data;
};
/* The process clock (CLOCK_MONOTONIC and time(2)). Static storage; never freed. */
const struct kcp_clock *kcp_clock_system(void);
static inline uint64_t kcp_clock_now_ms(const struct kcp_clock *c)
{
    return c->monotonic_ms(c->data);
}
static inline int64_t kcp_clock_wall_s(const struct kcp_clock *c)
{
    return c->wall_s(c->data);
}

/* A manual clock for tests: time moves only when told. */
struct kcp_clock_manual {
    struct kcp_clock clock;
    uint64_t now_ms;
    int64_t wall_s;
};
void kcp_clock_manual_init(struct kcp_clock_manual *m, uint64_t now_ms, int64_t wall_s);

/*
 * Deterministic PRNG (xoshiro256**) for jitter, timeouts and simulation. Not for keys: key
 * material comes from mbedTLS's entropy source.
 */
struct kcp_rng {
    uint64_t s[4];
};
void kcp_rng_seed(struct kcp_rng *r, uint64_t seed);
uint64_t kcp_rng_next(struct kcp_rng *r);
/* Uniform in [lo, hi). hi > lo. */
uint64_t kcp_rng_range(struct kcp_rng *r, uint64_t lo, uint64_t hi);

struct kcp_loop;

/*
 * A component running on the loop (API server, scheduler, a controller, Raft). Tasks start in
 * registration order and stop in reverse order. After stop() is called the task must call
 * kcp_task_stopped() exactly once, possibly later, when it has released every handle it owns.
 * A NULL stop means there is nothing to release.
 */
struct kcp_task {
    const char *name;
    int (*start)(struct kcp_task *task, struct kcp_loop *loop);
    void (*stop)(struct kcp_task *task);
    void *data;
    /* Private to the loop. */
    struct kcp_task *next;
    struct kcp_loop *loop;
    bool started;
};

struct kcp_loop {
    uv_loop_t uv;
    const struct kcp_clock *clock;
    struct kcp_rng rng;
    /* Private. */
    struct kcp_task *tasks;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t drain_timer;
    uint64_t drain_ms;
    bool stop_requested;
    int exit_code;
};

/* Initialises the loop with a clock (NULL: the system clock) and a seed for its RNG. */
int kcp_loop_init(struct kcp_loop *loop, const struct kcp_clock *clock, uint64_t seed);
/* Registers a task (caller-owned, must outlive the loop). Before kcp_loop_run only. */
void kcp_loop_add(struct kcp_loop *loop, struct kcp_task *task);
/*
 * Starts every task, handles SIGTERM/SIGINT by stopping them in reverse order, and returns
 * when the loop is empty: 0 after a clean stop, the failing start's error otherwise. If tasks
 * have not finished draining after drain_ms, the loop is stopped anyway (exit stays 0).
 */
int kcp_loop_run(struct kcp_loop *loop, uint64_t drain_ms);
/* A task reports that it has stopped (see struct kcp_task). */
void kcp_task_stopped(struct kcp_task *task);
/* Asks every task to stop, as SIGTERM does. Safe to call more than once. */
void kcp_loop_stop(struct kcp_loop *loop);
/* Closes the libuv loop; every handle must be closed. */
int kcp_loop_close(struct kcp_loop *loop);

#endif
