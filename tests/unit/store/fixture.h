/* Test fixture for the store: a temporary directory, a real loop, helpers to write and wait. */
#ifndef KCP_TEST_STORE_FIXTURE_H
#define KCP_TEST_STORE_FIXTURE_H

#include <kcp/base.h>
#include <kcp/loop.h>
#include <kcp/store.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

struct fx {
    char dir[64];
    struct kcp_loop loop;
    struct kcp_store *s;
    struct kcp_store_options opts;
};

#define FX_MAX_OPS 8
/* What a write's callback reported; holds references until fx_outcome_free. */
struct fx_outcome {
    struct kcp_store_req req;
    bool done;
    int status;
    uint64_t index;
    int err;
    size_t nops;
    int op_err[FX_MAX_OPS];
    bool applied[FX_MAX_OPS];
    struct kcp_obj *obj[FX_MAX_OPS];
    struct kcp_obj *prev[FX_MAX_OPS];
};

/* Temporary dir, loop, store opened with opts (NULL: defaults). */
void fx_setup(struct fx *f, const struct kcp_store_options *opts);
/* Closes the store (running the loop until it is freed). */
void fx_close_store(struct fx *f);
void fx_open_store(struct fx *f);
/* Closes and opens again on the same directory. */
void fx_reopen(struct fx *f);
/* Closes the store and the loop (asserting it closes clean), removes the directory. */
void fx_teardown(struct fx *f);
/* Runs the loop until *flag, failing the test if the loop runs dry first. */
void fx_run_until(struct fx *f, const bool *flag);

/* Encodes an entry with fixed history metadata. */
void fx_encode(struct kcp_buf *out, uint32_t flags, size_t nops, const struct kcp_store_op *ops);
/* Proposes; o->req fires into o. Returns kcp_store_propose's code. */
int fx_propose(struct fx *f, uint32_t flags, size_t nops, const struct kcp_store_op *ops,
               struct fx_outcome *o);
/* Proposes one op. */
int fx_propose_op(struct fx *f, struct kcp_store_op op, struct fx_outcome *o);
/* Proposes and waits for the callback. Returns the propose code. */
int fx_write(struct fx *f, uint32_t flags, size_t nops, const struct kcp_store_op *ops,
             struct fx_outcome *o);
int fx_put(struct fx *f, const char *key, const char *json, enum kcp_store_precond pre,
           uint64_t rev, struct fx_outcome *o);
int fx_del(struct fx *f, const char *key, enum kcp_store_precond pre, uint64_t rev,
           struct fx_outcome *o);
void fx_outcome_init(struct fx_outcome *o);
void fx_outcome_free(struct fx_outcome *o);
struct kcp_store_op fx_op_put(const char *key, const char *json, enum kcp_store_precond pre,
                              uint64_t rev);
struct kcp_store_op fx_op_del(const char *key, enum kcp_store_precond pre, uint64_t rev);
/* A small ConfigMap's JSON (static buffer per call site is not needed: returns a new string). */
char *fx_configmap(const char *ns, const char *name, const char *value);

/* Groups, one per file. */
int test_entry_run(void);
int test_apply_run(void);
int test_commit_run(void);
int test_list_run(void);
int test_watch_run(void);
int test_snapshot_run(void);
int test_crash_run(void);
int test_defer_run(void);
int test_crash_child(const char *dir, const char *prefix);

#endif
