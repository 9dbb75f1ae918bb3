/* unit.history: the recorder (naming, YAML, commits), replay through the store, retention and
 * reading. */
#include "th.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void th_tmpdir(char *buf)
{
    snprintf(buf, 64, "/tmp/kcp-test-history-XXXXXX");
    assert_non_null(mkdtemp(buf));
}

void th_rmrf(const char *dir)
{
    char *cmd = kcp_sprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

char *th_configmap(const char *name, const char *value, uint64_t rv)
{
    return kcp_sprintf(
        "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
        "\"namespace\":\"default\",\"resourceVersion\":\"%llu\",\"managedFields\":"
        "[{\"manager\":\"kubectl\",\"time\":\"2024-01-0%lluT00:00:00Z\"}]},"
        "\"data\":{\"v\":\"%s\"}}",
        name, (unsigned long long)rv, (unsigned long long)(rv % 9 + 1), value);
}

int main(void)
{
    int failed = 0;
    failed += test_record_run();
    failed += test_replay_run();
    failed += test_retain_run();
    failed += test_pack_run();
    failed += test_render_run();
    return failed ? 1 : 0;
}
