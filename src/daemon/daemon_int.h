/* Internal to the daemon module: the server process's state and its parts. */
#ifndef KCP_DAEMON_INT_H
#define KCP_DAEMON_INT_H

#include <kcp/api.h>
#include <kcp/cluster.h>
#include <kcp/daemon.h>
#include <kcp/history.h>
#include <kcp/store.h>
#include <kcp/http.h>
#include <kcp/loop.h>
#include <kcp/net.h>
#include <kcp/pki.h>

struct daemon {
    const struct kcp_daemon_options *opts;
    struct kcp_loop loop;
    struct kcp_clock clock; /* the system clock shifted by opts->clock_offset_s */
    struct kcp_pki_params pki;
    char *listen_host;
    int listen_port;
    char node_name[256];
    struct kcp_tls_config *tls;
    struct kcp_http_server *http;
    struct kcp_store *store;
    struct kcp_api *api;
    struct kcp_cluster *cluster;
    struct kcp_history *history; /* NULL when KCP_HISTORY=off */
    struct kcp_task store_task;
    struct kcp_task cluster_task;
    struct kcp_task history_task;
    uv_timer_t ready_retry; /* the ready task's wait for the cluster */
    struct kcp_task http_task;
    struct kcp_task certs_task;
    struct kcp_task ready_task;
    uv_timer_t cert_timer;
    bool ready; /* every task has started: /readyz answers ok */
    bool stopping;
    int lock_fd; /* flock on DIR/kcp.lock, held while running */
};

/* GET /metrics (Prometheus text). */
void daemon_metrics_routes(struct daemon *d);

/* Health (/healthz, /livez, /readyz) and /version routes. */
void daemon_health_routes(struct daemon *d);

/* The certificate renewal task: checks at start of the timer and every interval. */
void daemon_certs_task_init(struct daemon *d);
/* One renewal check now: renews what is due and reloads the serving certificate. */
int daemon_certs_check(struct daemon *d);

/* sd_notify(3): sends state ("READY=1", "STOPPING=1") when run under systemd; else no-op. */
int daemon_notify(const char *state);

/* Splits "HOST:PORT" / "[V6]:PORT" into a new host string and a port. */
int daemon_split_listen(const char *listen, char **out_host, int *out_port);

#endif
