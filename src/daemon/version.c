/* The version kcp reports: Kubernetes 1.32's API, and kcp's own release in gitVersion. */
#include <kcp/base.h>
#include <kcp/daemon.h>

#include "kcp_version_gen.h"

/* kubectl chooses behaviour (and its dispatcher a kubectl build) from major/minor. */
static const struct kcp_version_info info = {
    .major = "1",
    .minor = "32",
    .git_version = "v1.32.0-kcp." KCP_VERSION,
    .git_commit = KCP_GIT_COMMIT,
    .git_tree_state = KCP_GIT_TREE_STATE,
    .build_date = KCP_BUILD_DATE,
    .go_version = "none (C11)",
    .compiler = KCP_COMPILER,
    .platform = KCP_PLATFORM,
};

const struct kcp_version_info *kcp_version_get(void)
{
    return &info;
}

char *kcp_version_json(void)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const struct {
        const char *key, *value;
    } fields[] = {
        {"major", info.major},           {"minor", info.minor},
        {"gitVersion", info.git_version}, {"gitCommit", info.git_commit},
        {"gitTreeState", info.git_tree_state}, {"buildDate", info.build_date},
        {"goVersion", info.go_version},  {"compiler", info.compiler},
        {"platform", info.platform},
    };
    kcp_buf_puts(&b, "{\n");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        kcp_buf_printf(&b, "  \"%s\": ", fields[i].key);
        kcp_buf_json_string(&b, fields[i].value);
        kcp_buf_puts(&b, i + 1 < sizeof(fields) / sizeof(fields[0]) ? ",\n" : "\n");
    }
    kcp_buf_puts(&b, "}");
    return kcp_buf_detach(&b);
}
