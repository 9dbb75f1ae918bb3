/*
 * GET /metrics: Prometheus text format (0.0.4) for an SRE's scraper — Raft, the store, the
 * history recorder's lag. Authenticated like the API (a cluster client certificate), as
 * kube-apiserver's /metrics is.
 */
#include "daemon_int.h"

#include <kcp/base.h>

#include <inttypes.h>
#include <stdlib.h>

static void metric(struct kcp_buf *b, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    kcp_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
                   value);
}

static void metrics_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                               void *data)
{
    struct daemon *d = data;
    if (!req->identity || !req->identity->user) {
        kcp_http_respond_status(res, KCP_EUNAUTHORIZED, "Unauthorized");
        return;
    }
    struct kcp_buf b = KCP_BUF_INIT;
    if (d->cluster) {
        struct kcp_cluster_stats c;
        kcp_cluster_stats(d->cluster, &c);
        metric(&b, "kcp_raft_term", "gauge", "Current Raft term.", c.term);
        metric(&b, "kcp_raft_is_leader", "gauge", "1 when this server leads.", c.leader);
        metric(&b, "kcp_raft_has_leader", "gauge", "1 when a leader is known.", c.leader_id != 0);
        metric(&b, "kcp_raft_commit_index", "gauge", "Highest committed log index.", c.commit);
        metric(&b, "kcp_raft_applied_index", "gauge", "Highest index applied here.", c.applied);
        metric(&b, "kcp_raft_log_first_index", "gauge", "First index kept in the log.",
               c.first_index);
        metric(&b, "kcp_raft_log_last_index", "gauge", "Last index in the log.", c.last_index);
        metric(&b, "kcp_raft_snapshot_index", "gauge", "Index of the latest snapshot.",
               c.snapshot_index);
        metric(&b, "kcp_raft_members", "gauge", "Members of the configuration.", c.members);
        metric(&b, "kcp_raft_voters", "gauge", "Voting members.", c.voters);
        metric(&b, "kcp_raft_proposals_waiting", "gauge", "Client writes not yet applied.",
               c.proposals_waiting);
        metric(&b, "kcp_raft_log_fsyncs_total", "counter", "Durable commits of the Raft log.",
               c.log_fsyncs);
        metric(&b, "kcp_raft_log_written_bytes_total", "counter",
               "Bytes of keys and values written to the Raft log.", c.log_bytes_written);
        metric(&b, "kcp_raft_failed", "gauge", "1 when the log could not be written.", c.failed);
    }
    if (d->store) {
        struct kcp_store_stats s;
        kcp_store_stats(d->store, &s);
        metric(&b, "kcp_store_revision", "gauge", "Latest durable revision.", s.revision);
        metric(&b, "kcp_store_objects", "gauge", "Objects in the cache.", s.objects);
        metric(&b, "kcp_store_watchers", "gauge", "Open watches.", s.watchers);
        metric(&b, "kcp_store_fsyncs_total", "counter", "Durable commits of the store.", s.fsyncs);
        metric(&b, "kcp_store_written_bytes_total", "counter",
               "Bytes of keys and records written to the store.", s.bytes_written);
        metric(&b, "kcp_store_pending", "gauge", "Entries applied, not yet durable.", s.pending);
        metric(&b, "kcp_store_failed", "gauge", "1 when the store stopped taking writes.",
               s.failed != 0);
    }
    if (d->history) {
        struct kcp_history_stats h;
        kcp_history_stats(d->history, &h);
        metric(&b, "kcp_history_recorded_index", "gauge", "Last entry index in git.", h.recorded);
        metric(&b, "kcp_history_lag_entries", "gauge", "Applied entries not yet in git.", h.lag);
        metric(&b, "kcp_history_commits_total", "counter", "Commits written since start.",
               h.commits);
        metric(&b, "kcp_history_failed", "gauge", "1 when recording stopped.", h.failed != 0);
    }
    kcp_http_respond(res, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    kcp_buf_free(&b);
}

void daemon_metrics_routes(struct daemon *d)
{
    kcp_http_route(d->http, "/metrics", false, metrics_on_request, d);
}
