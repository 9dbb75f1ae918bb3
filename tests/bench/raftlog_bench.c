/*
 * raftlog_bench: the Raft log store (src/cluster/logstore.h) alone, as built into
 * raftlog_bench_lmdb (logstore.c) or raftlog_bench_segment (logseg.c). Appends N entries of B
 * bytes in three ways, each in a new temporary directory:
 *   one     one at a time, the next queued by the previous one's callback (one client);
 *   groups  D queued in one loop turn, then wait for all of them;
 *   window  D kept queued (each callback queues the next).
 * Per way: batches and syncs (the store's counters: durable commits) per entry; bytes per entry
 * that the store handed to write(2) (/proc/self/io wchar), that this process dirtied for
 * writeback (write_bytes), and that the block device holding the directory wrote meanwhile
 * (/sys/dev/block/M:m/stat: the whole device, journal and other processes included); entries/s.
 *
 * Usage: raftlog_bench [-n ENTRIES] [-b BYTES] [-d DEPTH] [-m one|groups|window] [PARENT_DIR]
 * (defaults 10000, 1024, 64, all three, $TMPDIR or /tmp).
 */
#include "logstore.h"

#include <kcp/base.h>
#include <kcp/loop.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#ifndef RAFTLOG_IMPL
#define RAFTLOG_IMPL "?"
#endif

static struct {
    struct kcp_loop loop;
    struct cl_logstore *ls;
    uint64_t n, next, acked;
    size_t depth;
    unsigned char *payload;
    size_t bytes;
    int failed;
} b;

static uint64_t proc_io(const char *field)
{
    FILE *fp = fopen("/proc/self/io", "r");
    char line[128];
    uint64_t v = 0;
    size_t flen = strlen(field);
    if (!fp)
        return 0;
    while (fgets(line, sizeof(line), fp))
        if (strncmp(line, field, flen) == 0) {
            v = strtoull(line + flen, NULL, 10);
            break;
        }
    fclose(fp);
    return v;
}

/* Sectors written by the device holding dir (0 when unknown). */
static uint64_t dev_sectors(const char *dir)
{
    struct stat st;
    char path[128];
    unsigned long long f[7] = {0};
    if (stat(dir, &st) != 0)
        return 0;
    snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/stat", major(st.st_dev), minor(st.st_dev));
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    int n = fscanf(fp, "%llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4],
                   &f[5], &f[6]);
    fclose(fp);
    return n == 7 ? f[6] : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_appended(struct cl_logstore *ls, int status, void *data);

static void queue_one(bool refill)
{
    struct kcp_raft_entry e = {.index = b.next, .term = 1, .type = KCP_RAFT_ENTRY_NORMAL};
    e.data.base = b.payload;
    e.data.len = b.bytes;
    b.payload[0] = (unsigned char)b.next;
    if (cl_logstore_append(b.ls, 0, &e, 1, on_appended, (void *)(uintptr_t)refill) != 0) {
        fprintf(stderr, "append %llu refused\n", (unsigned long long)b.next);
        exit(1);
    }
    b.next++;
}

static void on_appended(struct cl_logstore *ls, int status, void *data)
{
    (void)ls;
    if (status != 0)
        b.failed = status;
    b.acked++;
    if (data && b.next <= b.n)
        queue_one(true);
}

static void run_until(uint64_t acked)
{
    while (b.acked < acked && !b.failed)
        uv_run(&b.loop.uv, UV_RUN_ONCE);
    if (b.failed) {
        fprintf(stderr, "append failed: %s\n", kcp_error_message(b.failed));
        exit(1);
    }
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void closed_cb(void *data)
{
    *(bool *)data = true;
}

static void bench(const char *parent, const char *mode)
{
    char dir[512];
    bool closed = false;
    struct cl_logstore_stats st;
    snprintf(dir, sizeof(dir), "%s/kcp-raftlog-bench-XXXXXX", parent);
    if (!mkdtemp(dir) || kcp_loop_init(&b.loop, NULL, 1) != 0 ||
        cl_logstore_open(&b.ls, &b.loop, dir) != 0) {
        fprintf(stderr, "cannot open a store in %s\n", parent);
        exit(1);
    }
    b.next = 1;
    b.acked = 0;
    sync();
    uint64_t wchar0 = proc_io("wchar: "), wb0 = proc_io("write_bytes: "), dev0 = dev_sectors(dir);
    double t0 = now_s();
    if (strcmp(mode, "one") == 0) {
        queue_one(true);
        run_until(b.n);
    } else if (strcmp(mode, "window") == 0) {
        for (size_t i = 0; i < b.depth && b.next <= b.n; i++)
            queue_one(true);
        run_until(b.n);
    } else {
        while (b.next <= b.n) {
            for (size_t i = 0; i < b.depth && b.next <= b.n; i++)
                queue_one(false);
            run_until(b.next - 1);
        }
    }
    double secs = now_s() - t0;
    uint64_t wchar = proc_io("wchar: ") - wchar0, wb = proc_io("write_bytes: ") - wb0;
    uint64_t dev = (dev_sectors(dir) - dev0) * 512;
    cl_logstore_stats(b.ls, &st);
    cl_logstore_close(b.ls, closed_cb, &closed);
    while (!closed)
        uv_run(&b.loop.uv, UV_RUN_ONCE);
    uv_run(&b.loop.uv, UV_RUN_DEFAULT);
    kcp_loop_close(&b.loop);
    rm_dir(dir);
    double n = (double)b.n;
    printf("%-8s %-7s %6llu %7llu %9.4f %9.0f %9.0f %9.0f %9.0f\n", RAFTLOG_IMPL, mode,
           (unsigned long long)b.n, (unsigned long long)st.batches, (double)st.fsyncs / n,
           (double)wchar / n, (double)wb / n, (double)dev / n, n / secs);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *modes[] = {"one", "groups", "window"}, *only = NULL, *parent = getenv("TMPDIR");
    int opt;
    b.n = 10000;
    b.bytes = 1024;
    b.depth = 64;
    while ((opt = getopt(argc, argv, "n:b:d:m:")) != -1) {
        switch (opt) {
        case 'n':
            b.n = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            b.bytes = strtoull(optarg, NULL, 10);
            break;
        case 'd':
            b.depth = strtoull(optarg, NULL, 10);
            break;
        case 'm':
            only = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-n ENTRIES] [-b BYTES] [-d DEPTH] [-m one|groups|window] "
                    "[PARENT_DIR]\n",
                    argv[0]);
            return 2;
        }
    }
    if (optind < argc)
        parent = argv[optind];
    if (!parent)
        parent = "/tmp";
    if (!b.n || !b.bytes || !b.depth)
        return 2;
    b.payload = kcp_malloc(b.bytes);
    memset(b.payload, 0xab, b.bytes);
    printf("%-8s %-7s %6s %7s %9s %9s %9s %9s %9s\n", "store", "mode", "n", "batches", "syncs/e",
           "wchar/e", "wbytes/e", "device/e", "entries/s");
    for (size_t i = 0; i < 3; i++)
        if (!only || strcmp(only, modes[i]) == 0)
            bench(parent, modes[i]);
    free(b.payload);
    return 0;
}
