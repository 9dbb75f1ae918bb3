/* kcp server: run the control plane. */
#include "cli_int.h"

#include <kcp/base.h>
#include <kcp/daemon.h>

#include <stdint.h>

static bool init;
static const char *data_dir = "/var/lib/kcp";
static const char *listen_addr = "0.0.0.0:6443";
static const char *node_name;
static int verbosity;
static int64_t cert_check_interval_ms = 12 * 3600 * 1000;
static int64_t testing_clock_offset_ms;

static const struct kcp_flag flags[] = {
    {"init", 0, KCP_FLAG_BOOL, &init, "false",
     "Create a new cluster (CA, certificates, kubeconfig) if the data directory holds none. On a "
     "data directory that holds a cluster it starts that cluster and changes nothing."},
    {"data-dir", 'd', KCP_FLAG_STRING, &data_dir, "/var/lib/kcp",
     "Directory holding the cluster's state: pki/, the store and the kubeconfig."},
    {"listen", 0, KCP_FLAG_STRING, &listen_addr, "0.0.0.0:6443",
     "Numeric address and port to serve the API on (IPv6 as [addr]:port)."},
    {"node-name", 0, KCP_FLAG_STRING, &node_name, "the host name",
     "Name of this server; goes into its serving certificate."},
    {"cert-check-interval", 0, KCP_FLAG_DURATION, &cert_check_interval_ms, "12h",
     "How often certificates are checked; any with less than 90 days left is renewed."},
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
    kcp_log_set_verbosity(verbosity);
    struct kcp_daemon_options opts = {
        .init = init,
        .data_dir = data_dir,
        .listen = listen_addr,
        .node_name = node_name,
        .cert_check_interval_ms = cert_check_interval_ms,
        .clock_offset_s = testing_clock_offset_ms / 1000,
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
