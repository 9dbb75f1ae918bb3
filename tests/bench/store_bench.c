/* Store benchmark: writes at 1..1000 in flight, syncs and bytes per entry, reads, fan-out. */
#include <kcp/base.h>
#include <kcp/loop.h>
#include <kcp/store.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Prints a table; asserts nothing (timings belong here, not in unit tests).
 * Usage: store_bench [DIR]   (default: a new directory under /tmp, removed afterwards)
 * Bytes "physical" come from /proc/self/io write_bytes: what this process sent to the block
 * layer (LMDB's pages, including its meta pages), which is what an SD card wears on.
 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long io_write_bytes(void)
{
    unsigned long long v = 0;
    char line[128];
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "write_bytes: %llu", &v) == 1)
            break;
    fclose(f);
    return v;
}

struct run {
    struct kcp_store *s;
    struct kcp_loop *loop;
    const char *tag;
    int total, issued, done, failed;
    struct kcp_store_req *reqs;
    double *lat;
    double *t0;
    struct kcp_buf val;
};

static void issue(struct run *r, int slot);

static void run_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *res)
{
    struct run *r = req->data;
    int slot = (int)(req - r->reqs);
    if (status != 0 || res->err != 0)
        r->failed++;
    r->lat[r->done++] = now_s() - r->t0[slot];
    if (r->issued < r->total)
        issue(r, slot);
}

static void issue(struct run *r, int slot)
{
    char key[96], name[32];
    struct kcp_buf b = KCP_BUF_INIT;
    snprintf(name, sizeof(name), "cm-%07d", r->issued++);
    snprintf(key, sizeof(key), "/core/configmaps/%s/%s", r->tag, name);
    kcp_buf_reset(&r->val);
    kcp_buf_printf(&r->val,
                   "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
                   "\"namespace\":\"%s\",\"uid\":\"6f1c9a4e-2b7d-4c1e-9a53-%012d\","
                   "\"resourceVersion\":\"\",\"creationTimestamp\":\"2024-11-25T19:26:17Z\","
                   "\"labels\":{\"app\":\"bench\",\"tier\":\"edge\"}},"
                   "\"data\":{\"config.yaml\":\"listen: 0.0.0.0:8080\\nlog: info\\nretries: 3\\n"
                   "timeout: 30s\\n\",\"mode\":\"edge\"}}",
                   name, r->tag, r->issued);
    struct kcp_store_op op = {KCP_STORE_PUT, KCP_STORE_IF_ABSENT, 0,         key,
                              strlen(key),   r->val.data,         r->val.len};
    struct kcp_store_entry e = {
        .verb = "create", .user = "bench", .wall_s = 1700000000, .nops = 1, .ops = &op};
    kcp_store_entry_encode(&b, &e);
    r->reqs[slot].data = r;
    r->reqs[slot].cb = run_on_done;
    r->t0[slot] = now_s();
    if (kcp_store_propose(r->s, b.data, b.len, &r->reqs[slot]) != 0) {
        fprintf(stderr, "propose failed\n");
        exit(1);
    }
    kcp_buf_free(&b);
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_writes(struct kcp_store *s, struct kcp_loop *loop, int conc, int total)
{
    struct run r = {.s = s, .loop = loop, .total = total};
    char tag[32];
    struct kcp_store_stats a, b;
    snprintf(tag, sizeof(tag), "c%d", conc);
    r.tag = tag;
    r.reqs = kcp_calloc((size_t)conc, sizeof(*r.reqs));
    r.t0 = kcp_calloc((size_t)conc, sizeof(*r.t0));
    r.lat = kcp_calloc((size_t)total, sizeof(*r.lat));
    kcp_store_stats(s, &a);
    unsigned long long io0 = io_write_bytes();
    double t = now_s();
    for (int i = 0; i < conc && r.issued < total; i++)
        issue(&r, i);
    while (r.done < total)
        uv_run(&loop->uv, UV_RUN_ONCE);
    t = now_s() - t;
    unsigned long long io1 = io_write_bytes();
    kcp_store_stats(s, &b);
    qsort(r.lat, (size_t)total, sizeof(double), dbl_cmp);
    double batches = (double)(b.batches - a.batches);
    printf("| writes, %4d in flight | %9.0f entries/s | p50 %6.2f ms p99 %6.2f ms | %6.1f "
           "syncs/1000 | %5.0f B logical, %6.0f B physical /entry | %d failed |\n",
           conc, total / t, r.lat[total / 2] * 1e3, r.lat[total * 99 / 100] * 1e3,
           (double)(b.fsyncs - a.fsyncs) * 1000.0 / total,
           (double)(b.bytes_written - a.bytes_written) / total, (double)(io1 - io0) / total,
           r.failed);
    (void)batches;
    free(r.reqs);
    free(r.t0);
    free(r.lat);
    kcp_buf_free(&r.val);
}

static int count_cb(void *ctx, const struct kcp_obj *obj)
{
    (*(size_t *)ctx) += obj->json_len;
    return 0;
}

static void bench_reads(struct kcp_store *s)
{
    struct kcp_store_list_result res;
    size_t bytes = 0;
    double t = now_s();
    int rc =
        kcp_store_list(s, "/core/configmaps/c1000/", 23, 0, NULL, 0, 0, count_cb, &bytes, &res);
    t = now_s() - t;
    printf("| list (rc %d)           | %zu items in %.2f ms (%.1f MB of JSON) |\n", rc, res.count,
           t * 1e3, (double)bytes / 1e6);
    /* An old snapshot: the list at the revision before the last 5,000 writes. */
    t = now_s();
    bytes = 0;
    rc = kcp_store_list(s, "/core/configmaps/", 17, kcp_store_revision(s) - 5000, NULL, 0, 0,
                        count_cb, &bytes, &res);
    t = now_s() - t;
    printf("| list at rev-5000 (rc %d) | %zu items in %.2f ms |\n", rc, res.count, t * 1e3);

    int n = 1000000, found = 0;
    char key[96];
    t = now_s();
    for (int i = 0; i < n; i++) {
        struct kcp_obj *o = NULL;
        snprintf(key, sizeof(key), "/core/configmaps/c1000/cm-%07d",
                 (int)(((long long)i * 7919) % 20000));
        if (kcp_store_get(s, key, strlen(key), 0, &o) == 0)
            found++;
        kcp_obj_unref(o);
    }
    t = now_s() - t;
    printf("| get from the cache     | %9.0f gets/s (%d found) |\n", n / t, found);
}

struct fan {
    int events;
    double last;
};
static void fan_on_event(struct kcp_store_watch *w, const struct kcp_store_event *ev, void *ctx)
{
    struct fan *f = ctx;
    f->events++;
    f->last = now_s();
}

static void bench_fanout(struct kcp_store *s, struct kcp_loop *loop)
{
    enum { WATCHERS = 1000, WRITES = 200 };
    static struct kcp_store_watch *w[WATCHERS];
    struct fan f = {0};
    for (int i = 0; i < WATCHERS; i++)
        kcp_store_watch(s, "/core/configmaps/fan/", 21, 0, fan_on_event, &f, &w[i]);
    /* total 0: the callback does not chain the next write; this loop issues one at a time. */
    struct run r = {.s = s, .loop = loop, .total = 0, .tag = "fan"};
    r.reqs = kcp_calloc(1, sizeof(*r.reqs));
    r.t0 = kcp_calloc(1, sizeof(*r.t0));
    r.lat = kcp_calloc(WRITES, sizeof(*r.lat));
    double *delay = kcp_calloc(WRITES, sizeof(double));
    for (int i = 0; i < WRITES; i++) {
        int before = f.events;
        issue(&r, 0);
        while (r.done <= i)
            uv_run(&loop->uv, UV_RUN_ONCE);
        /* From proposal to the last watcher's callback (includes the fsync). */
        delay[i] = f.events == before + WATCHERS ? f.last - r.t0[0] : -1;
    }
    qsort(delay, WRITES, sizeof(double), dbl_cmp);
    printf("| watch, %d watchers    | p50 %.2f ms p99 %.2f ms from proposal to the last delivery "
           "(%d events) |\n",
           WATCHERS, delay[WRITES / 2] * 1e3, delay[WRITES * 99 / 100] * 1e3, f.events);
    for (int i = 0; i < WATCHERS; i++)
        kcp_store_watch_cancel(w[i]);
    free(delay);
    free(r.reqs);
    free(r.t0);
    free(r.lat);
    kcp_buf_free(&r.val);
}

static void on_closed(void *data)
{
    *(int *)data = 1;
}

int main(int argc, char **argv)
{
    char dir[64] = "/tmp/kcp-store-bench-XXXXXX";
    bool own = argc < 2;
    struct kcp_loop loop;
    struct kcp_store *s;
    if (own && !mkdtemp(dir))
        return 1;
    const char *path = own ? dir : argv[1];
    kcp_loop_init(&loop, NULL, 1);
    if (kcp_store_open(&s, &loop, path, NULL) != 0)
        return 1;
    printf("kcp store benchmark in %s (LMDB, ConfigMaps of ~420 bytes)\n", path);
    bench_writes(s, &loop, 1, 2000);
    bench_writes(s, &loop, 16, 10000);
    bench_writes(s, &loop, 64, 20000);
    bench_writes(s, &loop, 1000, 20000);
    bench_reads(s);
    bench_fanout(s, &loop);
    struct kcp_store_stats st;
    kcp_store_stats(s, &st);
    printf("| totals                 | %llu entries, %llu batches, %llu objects, map %llu MiB |\n",
           (unsigned long long)st.entries_applied, (unsigned long long)st.batches,
           (unsigned long long)st.objects, (unsigned long long)(st.map_size >> 20));
    int closed = 0;
    kcp_store_close(s, on_closed, &closed);
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    kcp_loop_close(&loop);
    if (own) {
        char p[128];
        snprintf(p, sizeof(p), "%s/data.mdb", dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/lock.mdb", dir);
        unlink(p);
        rmdir(dir);
    }
    return closed ? 0 : 1;
}
