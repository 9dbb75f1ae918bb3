/* Crash test: a writer killed with SIGKILL at a random moment loses nothing it acknowledged. */
#include "fixture.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INFLIGHT 32

/* ---- the child: proposes forever, printing "index key" once each entry is acknowledged --- */

struct child {
    struct kcp_store *s;
    const char *prefix;
    uint64_t seq;
    struct kcp_store_req reqs[INFLIGHT];
    char keys[INFLIGHT][96];
};

static void child_propose(struct child *c, int slot);

static void child_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *r)
{
    struct child *c = req->data;
    int slot = (int)(req - c->reqs);
    if (status != 0 || r->err != 0) {
        fprintf(stderr, "crash-child: write failed: %d %d\n", status, r ? r->err : 0);
        _exit(3);
    }
    char line[160];
    int n = snprintf(line, sizeof(line), "%llu %s\n", (unsigned long long)r->index, c->keys[slot]);
    /* One write per line: a pipe write under PIPE_BUF is never split. */
    if (write(STDOUT_FILENO, line, (size_t)n) != n)
        _exit(4);
    child_propose(c, slot);
}

static void child_propose(struct child *c, int slot)
{
    struct kcp_buf b = KCP_BUF_INIT;
    char val[160];
    snprintf(c->keys[slot], sizeof(c->keys[slot]), "/core/configmaps/%s/k%06llu", c->prefix,
             (unsigned long long)c->seq);
    snprintf(val, sizeof(val), "{\"metadata\":{\"name\":\"k%06llu\"},\"data\":{\"seq\":\"%llu\"}}",
             (unsigned long long)c->seq, (unsigned long long)c->seq);
    c->seq++;
    struct kcp_store_op op = {KCP_STORE_PUT, KCP_STORE_IF_ABSENT,   0,
                              c->keys[slot], strlen(c->keys[slot]), val,
                              strlen(val)};
    struct kcp_store_entry e = {.verb = "create", .nops = 1, .ops = &op};
    if (kcp_store_entry_encode(&b, &e) != 0 ||
        kcp_store_propose(c->s, b.data, b.len, &c->reqs[slot]) != 0)
        _exit(5);
    kcp_buf_free(&b);
}

int test_crash_child(const char *dir, const char *prefix)
{
    static struct child c;
    struct kcp_loop loop;
    if (kcp_loop_init(&loop, NULL, 1) != 0 || kcp_store_open(&c.s, &loop, dir, NULL) != 0)
        return 2;
    c.prefix = prefix;
    for (int i = 0; i < INFLIGHT; i++) {
        c.reqs[i].data = &c;
        c.reqs[i].cb = child_on_done;
        child_propose(&c, i);
    }
    uv_run(&loop.uv, UV_RUN_DEFAULT); /* until killed */
    return 6;
}

/* ---- the parent ------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads what the child acknowledged until it has acknowledged at least min_lines and ms passed. */
static void read_acks(int fd, struct kcp_buf *acks, int min_lines, uint64_t ms, bool to_eof)
{
    uint64_t deadline = now_ms() + ms, hard = now_ms() + 30000;
    char buf[65536];
    for (;;) {
        int lines = 0;
        for (size_t i = 0; i < acks->len; i++)
            lines += acks->data[i] == '\n';
        uint64_t t = now_ms();
        if (!to_eof && ((lines >= min_lines && t >= deadline) || t >= hard))
            return;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, to_eof ? 1000 : 10);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return; /* EOF: the child is gone */
        }
        kcp_buf_append(acks, buf, (size_t)n);
    }
}

static void test_sigkill_loses_nothing(void **state)
{
    struct fx f;
    unsigned seed = (unsigned)time(NULL);
    const char *env = getenv("KCP_SEED");
    if (env)
        seed = (unsigned)strtoul(env, NULL, 10);
    print_message("crash test seed %u (replay with KCP_SEED=%u)\n", seed, seed);
    srand(seed);
    fx_setup(&f, NULL);
    fx_close_store(&f);
    uint64_t total = 0;
    for (int round = 0; round < 3; round++) {
        int fds[2];
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "r%d", round);
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
            execl("/proc/self/exe", "test_store", "crash-child", f.dir, prefix, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        struct kcp_buf acks = KCP_BUF_INIT;
        uint64_t delay = 20 + (uint64_t)(rand() % 300);
        read_acks(fds[0], &acks, 50, delay, false);
        kill(pid, SIGKILL);
        int wstatus = 0;
        assert_int_equal(waitpid(pid, &wstatus, 0), pid);
        assert_true(WIFSIGNALED(wstatus)); /* killed, not failed on its own */
        read_acks(fds[0], &acks, 0, 0, true);
        close(fds[0]);

        /* Every complete line is a write the child had acknowledged. */
        fx_open_store(&f);
        uint64_t max_index = 0;
        int checked = 0;
        char *save = NULL;
        kcp_buf_reserve(&acks, 1);
        char *text = acks.data;
        size_t complete = acks.len;
        while (complete && text[complete - 1] != '\n')
            complete--; /* a torn last line was never fully reported */
        text[complete] = '\0';
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char key[128];
            unsigned long long idx;
            assert_int_equal(sscanf(line, "%llu %127s", &idx, key), 2);
            struct kcp_obj *o = NULL;
            if (kcp_store_get(f.s, key, strlen(key), 0, &o) != 0)
                fail_msg("acknowledged write lost: index %llu key %s (seed %u)", idx, key, seed);
            assert_int_equal(o->mod_revision, idx);
            kcp_obj_unref(o);
            if (idx > max_index)
                max_index = idx;
            checked++;
        }
        assert_true(checked >= 50);
        assert_true(kcp_store_revision(f.s) >= max_index);
        struct kcp_store_stats st;
        kcp_store_stats(f.s, &st);
        assert_true(st.objects >= total + (uint64_t)checked);
        total = st.objects;
        print_message("round %d: killed after %llu ms, %d acknowledged, all present; store at "
                      "revision %llu with %llu objects\n",
                      round, (unsigned long long)delay, checked,
                      (unsigned long long)kcp_store_revision(f.s), (unsigned long long)st.objects);
        fx_close_store(&f);
        kcp_buf_free(&acks);
    }
    fx_open_store(&f);
    fx_teardown(&f);
}

int test_crash_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_loses_nothing),
    };
    return cmocka_run_group_tests_name("store.crash", tests, NULL, NULL);
}
