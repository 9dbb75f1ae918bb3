/*
 * history_bench: the recorder (src/history/record.c) alone, without a server: the CPU one
 * entry costs, which is what history takes from the API when they share the machine.
 *
 * Records ConfigMap writes into a new repository under PARENT_DIR: first OBJECTS creates, then
 * ENTRIES updates round-robin over them (mode update), or ENTRIES creates into one namespace
 * (mode create), with a flush (pack, refs) every BATCH entries, as the server's batches do.
 * Prints the recorder's CPU per entry (this thread's CPU time), entries/s and the
 * repository's size on disk.
 *
 * Usage: history_bench [-n ENTRIES] [-o OBJECTS] [-b BATCH] [-m update|create] [PARENT_DIR]
 * (defaults 10000, 16, 200, update, $TMPDIR or /tmp).
 */
#include "history_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the API stores for a ConfigMap a client PUTs: the churn (resourceVersion, the
 * managedFields time) that history drops included, so rendering costs what it does live. */
static char *configmap(const char *name, uint64_t obj, uint64_t i, uint64_t rv)
{
    return kcp_sprintf(
        "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
        "\"namespace\":\"default\",\"uid\":\"44e63f79-201f-4193-940b-%012" PRIu64 "\","
        "\"resourceVersion\":\"%" PRIu64 "\",\"creationTimestamp\":\"2025-11-26T01:54:32Z\","
        "\"managedFields\":[{\"manager\":\"python\",\"operation\":\"Update\",\"apiVersion\":"
        "\"v1\",\"time\":\"2025-11-26T01:54:%02" PRIu64 "Z\",\"fieldsType\":\"FieldsV1\","
        "\"fieldsV1\":{\"f:data\":{\".\":{},\"f:i\":{}}}}]},\"data\":{\"i\":\"%" PRIu64 "\"}}",
        name, obj, rv, rv % 60, i);
}

static int record(struct history_rec *r, uint64_t index, const char *verb, const char *name,
                  uint64_t obj, uint64_t i)
{
    char *key = kcp_sprintf("/core/configmaps/default/%s", name);
    char *json = configmap(name, obj, i, index);
    struct kcp_store_op op = {KCP_STORE_PUT, KCP_STORE_IF_ANY, 0, key, strlen(key),
                              json,          strlen(json)};
    struct kcp_store_entry e = {.wall_s = 1764000000 + (int64_t)index / 1000,
                                .verb = verb,
                                .user = "kcp-admin",
                                .request_id = "1",
                                .nops = 1,
                                .ops = &op};
    struct kcp_store_op_result res = {.err = 0, .applied = true};
    r->term = 2;
    int rc = history_rec_entry(r, index, &e, &res, 1);
    free(key);
    free(json);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t n = 10000, objects = 16, batch = 200;
    const char *mode = "update", *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int opt;
    while ((opt = getopt(argc, argv, "n:o:b:m:")) != -1) {
        if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'o')
            objects = strtoull(optarg, NULL, 10);
        else if (opt == 'b')
            batch = strtoull(optarg, NULL, 10);
        else if (opt == 'm')
            mode = optarg;
        else
            return 2;
    }
    if (optind < argc)
        parent = argv[optind];
    bool create = strcmp(mode, "create") == 0;
    char *dir = kcp_sprintf("%s/history_bench.XXXXXX", parent);
    if (!mkdtemp(dir) || !batch || !objects) {
        perror("history_bench");
        return 1;
    }
    char *path = kcp_sprintf("%s/history.git", dir);
    struct history_rec r;
    uint64_t index = 0;
    char name[64];
    if (history_rec_open(&r, path, NULL) != 0)
        return 1;
    for (uint64_t k = 0; !create && k < objects; k++) {
        snprintf(name, sizeof(name), "cm-u%" PRIu64, k);
        if (record(&r, ++index, "create", name, k, 0) != 0)
            return 1;
    }
    if (history_rec_flush(&r) != 0)
        return 1;
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t obj = create ? i : i % objects;
        snprintf(name, sizeof(name), create ? "cm-%" PRIu64 : "cm-u%" PRIu64, obj);
        if (record(&r, ++index, create ? "create" : "update", name, obj, i) != 0)
            return 1;
        if ((i % batch == 0 || i == n) && history_rec_flush(&r) != 0)
            return 1;
    }
    double cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - c0, wall = now_s(CLOCK_MONOTONIC) - w0;
    history_rec_close(&r);
    char *cmd = kcp_sprintf("du -sb %s | cut -f1", path);
    FILE *du = popen(cmd, "r");
    unsigned long long bytes = 0;
    if (!du || fscanf(du, "%llu", &bytes) != 1)
        bytes = 0;
    if (du)
        pclose(du);
    printf("%s: %" PRIu64 " entries, batch %" PRIu64 ": %.1f us CPU/entry, %.0f entries/s, "
           "repository %llu bytes\n",
           mode, n, batch, cpu * 1e6 / (double)n, (double)n / wall, bytes);
    if (!getenv("KEEP")) {
        free(cmd);
        cmd = kcp_sprintf("rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "history_bench: cannot remove %s\n", dir);
    } else {
        printf("kept %s\n", path);
    }
    free(cmd);
    free(path);
    free(dir);
    return 0;
}
