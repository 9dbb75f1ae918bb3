/* The store test fixture: temporary directories, the loop, and synchronous write helpers. */
#include "fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fx_open_store(struct fx *f)
{
    assert_int_equal(kcp_store_open(&f->s, &f->loop, f->dir, &f->opts), 0);
}

void fx_setup(struct fx *f, const struct kcp_store_options *opts)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kcp-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(kcp_loop_init(&f->loop, NULL, 1), 0);
    if (opts)
        f->opts = *opts;
    else
        kcp_store_options_default(&f->opts);
    fx_open_store(f);
}

static void closed_cb(void *data)
{
    *(bool *)data = true;
}

void fx_close_store(struct fx *f)
{
    bool closed = false;
    if (!f->s)
        return;
    kcp_store_close(f->s, closed_cb, &closed);
    fx_run_until(f, &closed);
    f->s = NULL;
}

void fx_reopen(struct fx *f)
{
    fx_close_store(f);
    fx_open_store(f);
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
    fx_close_store(f);
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

void fx_encode(struct kcp_buf *out, uint32_t flags, size_t nops, const struct kcp_store_op *ops)
{
    struct kcp_store_entry e = {.flags = flags,
                                .wall_s = 1700000000,
                                .wall_ns = 123,
                                .verb = "create",
                                .user = "system:admin",
                                .request_id = "req-1",
                                .nops = nops,
                                .ops = ops};
    assert_int_equal(kcp_store_entry_encode(out, &e), 0);
}

static void outcome_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *r)
{
    struct fx_outcome *o = req->data;
    assert_false(o->done); /* exactly once */
    o->done = true;
    o->status = status;
    if (!r)
        return;
    o->index = r->index;
    o->err = r->err;
    o->nops = r->nops;
    for (size_t i = 0; i < r->nops && i < FX_MAX_OPS; i++) {
        o->op_err[i] = r->ops[i].err;
        o->applied[i] = r->ops[i].applied;
        o->obj[i] = kcp_obj_ref(r->ops[i].obj);
        o->prev[i] = kcp_obj_ref(r->ops[i].prev);
    }
}

void fx_outcome_init(struct fx_outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->req.data = o;
    o->req.cb = outcome_on_done;
}

void fx_outcome_free(struct fx_outcome *o)
{
    for (int i = 0; i < FX_MAX_OPS; i++) {
        kcp_obj_unref(o->obj[i]);
        kcp_obj_unref(o->prev[i]);
    }
    fx_outcome_init(o);
}

int fx_propose(struct fx *f, uint32_t flags, size_t nops, const struct kcp_store_op *ops,
               struct fx_outcome *o)
{
    struct kcp_buf b = KCP_BUF_INIT;
    fx_outcome_init(o);
    fx_encode(&b, flags, nops, ops);
    int rc = kcp_store_propose(f->s, b.data, b.len, &o->req);
    kcp_buf_free(&b);
    return rc;
}

int fx_propose_op(struct fx *f, struct kcp_store_op op, struct fx_outcome *o)
{
    return fx_propose(f, 0, 1, &op, o);
}

int fx_write(struct fx *f, uint32_t flags, size_t nops, const struct kcp_store_op *ops,
             struct fx_outcome *o)
{
    int rc = fx_propose(f, flags, nops, ops, o);
    if (rc == 0)
        fx_run_until(f, &o->done);
    return rc;
}

struct kcp_store_op fx_op_put(const char *key, const char *json, enum kcp_store_precond pre,
                              uint64_t rev)
{
    return (struct kcp_store_op){KCP_STORE_PUT, pre, rev, key, strlen(key), json, strlen(json)};
}

struct kcp_store_op fx_op_del(const char *key, enum kcp_store_precond pre, uint64_t rev)
{
    return (struct kcp_store_op){KCP_STORE_DELETE, pre, rev, key, strlen(key), NULL, 0};
}

int fx_put(struct fx *f, const char *key, const char *json, enum kcp_store_precond pre,
           uint64_t rev, struct fx_outcome *o)
{
    struct kcp_store_op op = fx_op_put(key, json, pre, rev);
    return fx_write(f, 0, 1, &op, o);
}

int fx_del(struct fx *f, const char *key, enum kcp_store_precond pre, uint64_t rev,
           struct fx_outcome *o)
{
    struct kcp_store_op op = fx_op_del(key, pre, rev);
    return fx_write(f, 0, 1, &op, o);
}

char *fx_configmap(const char *ns, const char *name, const char *value)
{
    return kcp_sprintf(
        "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
        "\"namespace\":\"%s\",\"uid\":\"u-%s\",\"resourceVersion\":\"\"},"
        "\"data\":{\"v\":\"%s\"}}",
        name, ns, name, value);
}
