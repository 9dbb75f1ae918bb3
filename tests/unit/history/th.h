/* Shared helpers of the history unit tests: temporary dirs and entry building. */
#ifndef KCP_TEST_HISTORY_TH_H
#define KCP_TEST_HISTORY_TH_H

#include <kcp/base.h>
#include <kcp/store.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* A new temporary directory under /tmp into buf[64]. */
void th_tmpdir(char *buf);
/* rm -rf dir. */
void th_rmrf(const char *dir);
/* A ConfigMap default/<name> with data.v = value, as JSON (a new string). */
char *th_configmap(const char *name, const char *value, uint64_t rv);

int test_record_run(void);
int test_replay_run(void);
int test_retain_run(void);
int test_pack_run(void);
int test_render_run(void);

#endif
