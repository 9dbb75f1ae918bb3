/* kcp server: run the control plane. */
#include "cli_int.h"

#include <kcp/base.h>
#include <kcp/daemon.h>

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static bool init;
static const char *data_dir = "/var/lib/kcp";
static const char *listen_addr = "0.0.0.0:6443";
static const char *node_name;
static int verbosity;
static int64_t cert_check_interval_ms = 12 * 3600 * 1000;
static int64_t testing_clock_offset_ms;
static int history_keep_commits;
static int history_keep_days;
static const char *join_url;
static const char *advertise;
static bool force_new_cluster;
static int snapshot_entries = 10000;
static const char *join_token;

static const struct kcp_flag flags[] = {
    {"init", 0, KCP_FLAG_BOOL, &init, "false",
     "Create a new cluster (CA, certificates, kubeconfig) if the data directory holds none. On a "
     "data directory that holds a cluster it starts that cluster and changes nothing."},
    {"data-dir", 'd', KCP_FLAG_STRING, &data_dir, "/var/lib/kcp",
     "Directory holding the cluster's state: pki/, the store and the kubeconfig."},
    {"listen", 0, KCP_FLAG_STRING, &listen_addr, "0.0.0.0:6443",
     "Numeric address and port to serve the API on (IPv6 as [addr]:port)."},
    {"join", 0, KCP_FLAG_STRING, &join_url, NULL,
     "Join the cluster of the server at this https://HOST:PORT (with --token) instead of "
     "creating one. Ignored once this data directory belongs to a cluster."},
    {"advertise-address", 0, KCP_FLAG_STRING, &advertise, "the --listen address",
     "Numeric HOST:PORT the other servers of the cluster dial to reach this one (needed when "
     "--listen is a wildcard address, or behind a proxy)."},
    {"force-new-cluster", 0, KCP_FLAG_BOOL, &force_new_cluster, "false",
     "After losing the quorum for good: make this server the only member of its cluster, "
     "keeping its data (docs/RAFT.md, \"Losing the quorum\"). Others then join it anew."},
    {"raft-snapshot-entries", 0, KCP_FLAG_INT, &snapshot_entries, "10000",
     "Take a snapshot of the store and compact the Raft log every this many entries."},
    {"token", 0, KCP_FLAG_STRING, &join_token, NULL,
     "Join token printed by `kcp token` on a server of the cluster."},
    {"node-name", 0, KCP_FLAG_STRING, &node_name, "the host name",
     "Name of this server; goes into its serving certificate."},
    {"cert-check-interval", 0, KCP_FLAG_DURATION, &cert_check_interval_ms, "12h",
     "How often certificates are checked; any with less than 90 days left is renewed."},
    {"history-keep-commits", 0, KCP_FLAG_INT, &history_keep_commits, "0",
     "Squash the history's main line to its newest N commits, at most once an hour (0: keep "
     "everything)."},
    {"history-keep-days", 0, KCP_FLAG_INT, &history_keep_days, "0",
     "Squash the history's commits older than D days before its newest, at most once an hour "
     "(0: keep everything)."},
    {"testing-clock-offset", 0, KCP_FLAG_DURATION, &testing_clock_offset_ms, "0",
     "For tests only: shift the wall clock forward by this duration (e.g. 7200h)."},
    {"v", 'v', KCP_FLAG_INT, &verbosity, "0", "Number for the log level verbosity."},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static int server_run(int argc, char **argv)
{
    int rc = cli_no_args("server", argc, argv);
    if (rc)
        return rc;
    if (cert_check_interval_ms < 1000) {
        fprintf(stderr, "Error: --cert-check-interval must be at least 1s\n");
        return KCP_EXIT_USAGE;
    }
    if (history_keep_commits < 0 || history_keep_days < 0) {
        fprintf(stderr, "Error: --history-keep-commits and --history-keep-days must not be "
                        "negative\n");
        return KCP_EXIT_USAGE;
    }
    kcp_log_set_verbosity(verbosity);
    uint64_t join_id = 0;
    if (join_url || join_token) {
        if (!join_url || !join_token) {
            fprintf(stderr, "Error: --join and --token go together\n");
            return KCP_EXIT_USAGE;
        }
        if (init) {
            fprintf(stderr, "Error: --join and --init exclude each other\n");
            return KCP_EXIT_USAGE;
        }
        /* A server restarted with its --join flags keeps the membership it has. */
        char *raft = kcp_sprintf("%s/raft/data.mdb", data_dir);
        bool member = access(raft, F_OK) == 0;
        free(raft);
        char host[256] = "kcp";
        if (!node_name && gethostname(host, sizeof(host) - 1) == 0)
            host[sizeof(host) - 1] = '\0';
        if (!member && cli_join(join_url, join_token, data_dir, node_name ? node_name : host,
                                advertise ? advertise : listen_addr,
                                &join_id) != 0)
            return KCP_EXIT_FAIL;
    }
    struct kcp_daemon_options opts = {
        .join_id = join_id,
        .advertise = advertise,
        .force_new_cluster = force_new_cluster,
        .raft_snapshot_entries = snapshot_entries > 0 ? (uint64_t)snapshot_entries : 0,
        .init = init,
        .data_dir = data_dir,
        .listen = listen_addr,
        .node_name = node_name,
        .cert_check_interval_ms = cert_check_interval_ms,
        .clock_offset_s = testing_clock_offset_ms / 1000,
        .history_keep_commits = (uint64_t)history_keep_commits,
        .history_keep_days = (uint32_t)history_keep_days,
    };
    return kcp_daemon_run(&opts) == 0 ? KCP_EXIT_OK : KCP_EXIT_FAIL;
}

const struct kcp_command cli_server_command = {
    .name = "server",
    .short_help = "Run the control plane server",
    .long_help = "Run the kcp control plane: the Kubernetes API server with its storage, the\n"
                 "scheduler and the controllers, in one process. With --init on an empty data\n"
                 "directory it creates a cluster: a CA, certificates, and DIR/kubeconfig for kubectl.",
    .examples = "  # Create a cluster and serve it on all addresses\n"
                "  kcp server --init --data-dir /var/lib/kcp\n\n"
                "  # Serve an existing cluster on loopback only\n"
                "  kcp server --data-dir ./data --listen 127.0.0.1:6443",
    .flags = flags,
    .run = server_run,
};
