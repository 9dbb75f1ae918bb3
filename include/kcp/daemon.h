/* kcp daemon: composes the server process (PKI, TLS, API server, background tasks). */
#ifndef KCP_DAEMON_H
#define KCP_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

struct kcp_daemon_options {
    bool init;             /* create a cluster in an empty data dir */
    const char *data_dir;
    const char *listen;    /* numeric HOST:PORT */
    const char *node_name; /* NULL: the host name */
    int64_t cert_check_interval_ms; /* how often running certificates are checked for renewal */
    int64_t clock_offset_s;
    const char *advertise;  /* HOST:PORT peers dial; NULL: listen */
    uint64_t join_id;
    uint64_t raft_snapshot_entries; /* 0: the default (10,000) */
    bool force_new_cluster; /* quorum lost for good: continue alone with this server's data */       /* non-zero: admitted by a cluster's leader under this Raft id */ /* added to the wall clock; lets tests see a server one year on */
    uint64_t history_keep_commits; /* history retention (docs/HISTORY.md); 0: no limit */
    uint32_t history_keep_days;     /* 0: no limit */
};

/*
 * Runs the server until SIGTERM/SIGINT. Returns a process exit code: 0 after a clean stop,
 * 1 when the server could not start (the reason is logged).
 */
int kcp_daemon_run(const struct kcp_daemon_options *opts);

/* Version facts reported by /version and `kcp version`. Static strings. */
struct kcp_version_info {
    const char *major, *minor, *git_version, *git_commit, *git_tree_state, *build_date,
        *go_version, *compiler, *platform;
};
const struct kcp_version_info *kcp_version_get(void);
/* The /version JSON document; the caller frees. */
char *kcp_version_json(void);

#endif
