/* The cluster test fixture: temporary directories, the loop, deterministic entry payloads. */
#include "fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fx_open(struct fx *f)
{
    assert_int_equal(cl_logstore_open_opts(&f->ls, &f->loop, f->dir, &f->opts), 0);
}

void fx_setup(struct fx *f, const struct cl_logstore_options *opts)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kcp-test-cluster-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(kcp_loop_init(&f->loop, NULL, 1), 0);
    if (opts)
        f->opts = *opts;
    fx_open(f);
}

static void closed_cb(void *data)
{
    *(bool *)data = true;
}

void fx_close(struct fx *f)
{
    bool closed = false;
    if (!f->ls)
        return;
    cl_logstore_close(f->ls, closed_cb, &closed);
    fx_run_until(f, &closed);
    f->ls = NULL;
}

void fx_reopen(struct fx *f)
{
    fx_close(f);
    fx_open(f);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
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

void fx_teardown(struct fx *f)
{
    fx_close(f);
    uv_run(&f->loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(kcp_loop_close(&f->loop), 0);
    rm_dir(f->dir);
}

void fx_run_until(struct fx *f, const bool *flag)
{
    while (!*flag) {
        int alive = uv_run(&f->loop.uv, UV_RUN_ONCE);
        if (!alive && !*flag)
            fail_msg("loop ran dry before the awaited callback");
    }
}

size_t fx_data_len(uint64_t index, uint64_t term)
{
    return (size_t)((index * 2654435761u + term * 97) % 1200);
}

void fx_fill(unsigned char *buf, uint64_t index, uint64_t term, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(index * 31 + term * 17 + i);
}

void fx_check_entry(const struct kcp_raft_entry *e, uint64_t index, uint64_t term)
{
    assert_int_equal(e->index, index);
    assert_int_equal(e->term, term);
    size_t len = fx_data_len(index, term);
    assert_int_equal(e->data.len, len);
    for (size_t i = 0; i < len; i++)
        if (((unsigned char *)e->data.base)[i] != (unsigned char)(index * 31 + term * 17 + i))
            fail_msg("entry %llu: byte %zu differs", (unsigned long long)index, i);
}
