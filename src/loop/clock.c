/* The system clock and a manual clock for tests. */
#include <kcp/loop.h>

#include <time.h>

static uint64_t system_monotonic_ms(void *data)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t system_wall_s(void *data)
{
    return (int64_t)time(NULL);
}

static const struct kcp_clock system_clock = {system_monotonic_ms, system_wall_s, NULL};

const struct kcp_clock *kcp_clock_system(void)
{
    return &system_clock;
}

static uint64_t manual_monotonic_ms(void *data)
{
    return ((struct kcp_clock_manual *)data)->now_ms;
}

static int64_t manual_wall_s(void *data)
{
    return ((struct kcp_clock_manual *)data)->wall_s;
}

void kcp_clock_manual_init(struct kcp_clock_manual *m, uint64_t now_ms, int64_t wall_s)
{
    m->clock.monotonic_ms = manual_monotonic_ms;
    m->clock.wall_s = manual_wall_s;
    m->clock.data = m;
    m->now_ms = now_ms;
    m->wall_s = wall_s;
}
