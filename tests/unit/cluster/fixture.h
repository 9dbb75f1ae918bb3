/* Test fixture for the cluster module: a temporary directory, a real loop, the Raft log store. */
#ifndef KCP_TEST_CLUSTER_FIXTURE_H
#define KCP_TEST_CLUSTER_FIXTURE_H

#include "logstore.h"

#include <kcp/base.h>
#include <kcp/loop.h>
#include <kcp/raft.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

struct fx {
    char dir[64];
    struct kcp_loop loop;
    struct cl_logstore *ls;
    struct cl_logstore_options opts;
};

/* Temporary dir, loop, log store opened with opts (NULL: defaults). */
void fx_setup(struct fx *f, const struct cl_logstore_options *opts);
void fx_open(struct fx *f);
/* Closes the log store, running the loop until its close callback. */
void fx_close(struct fx *f);
void fx_reopen(struct fx *f);
/* Closes the store and the loop (asserting it closes clean), removes the directory. */
void fx_teardown(struct fx *f);
/* Runs the loop until *flag, failing the test if the loop runs dry first. */
void fx_run_until(struct fx *f, const bool *flag);

/* An entry's payload is a function of (index, term): fx_fill writes it, fx_check_entry checks. */
size_t fx_data_len(uint64_t index, uint64_t term);
void fx_fill(unsigned char *buf, uint64_t index, uint64_t term, size_t len);
void fx_check_entry(const struct kcp_raft_entry *e, uint64_t index, uint64_t term);

/* Groups, one per file. */
int test_logstore_run(void);
int test_logstore_crash_run(void);
int test_logstore_crash_child(const char *dir, uint64_t seed, uint64_t ms);

#endif
