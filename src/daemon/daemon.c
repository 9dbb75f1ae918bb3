/*
 * The server process: data dir and PKI first, then the loop with its tasks (API server,
 * certificate renewal, readiness). Start-up order matters: nothing listens before the
 * certificates it serves with are valid.
 */
#include "daemon_int.h"

#include <kcp/base.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* SIGTERM must end the process within 2 s (systemd, kubelet-style supervisors). */
#define DRAIN_MS 1500

static uint64_t offset_monotonic_ms(void *data)
{
    return kcp_clock_now_ms(kcp_clock_system());
}

static int64_t offset_wall_s(void *data)
{
    const struct daemon *d = data;
    return kcp_clock_wall_s(kcp_clock_system()) + d->opts->clock_offset_s;
}

int daemon_split_listen(const char *listen, char **out_host, int *out_port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return KCP_EINVAL;
    const char *h = listen, *he = colon;
    if (*h == '[') {
        if (he[-1] != ']')
            return KCP_EINVAL;
        h++;
        he--;
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return KCP_EINVAL;
    *out_host = kcp_strndup(h, (size_t)(he - h));
    *out_port = (int)port;
    return 0;
}

/* History is on unless KCP_HISTORY is "off", "false" or "0" (for benchmarks: docs/HISTORY.md). */
static bool history_enabled(void)
{
    const char *v = getenv("KCP_HISTORY");
    return !v || !(strcmp(v, "off") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0);
}

static int store_start(struct kcp_task *task, struct kcp_loop *loop)
{
    struct daemon *d = task->data;
    char *dir = kcp_sprintf("%s/store", d->opts->data_dir);
    struct kcp_store_options so;
    kcp_store_options_default(&so);
    so.retain_entries = history_enabled(); /* history's crash recovery (docs/STORE.md) */
    int rc = kcp_store_open(&d->store, loop, dir, &so);
    if (rc != 0)
        kcp_log(KCP_LOG_ERROR, "daemon", "opening the store in %s: %s", dir, kcp_error_message(rc));
    free(dir);
    return rc;
}

static void store_on_closed(void *data)
{
    struct daemon *d = data;
    d->store = NULL;
    kcp_task_stopped(&d->store_task);
}

static void store_stop(struct kcp_task *task)
{
    struct daemon *d = task->data;
    kcp_store_close(d->store, store_on_closed, d);
}

static int cluster_start(struct kcp_task *task, struct kcp_loop *loop)
{
    struct daemon *d = task->data;
    struct kcp_cluster_config cc = {.loop = loop,
                                    .store = d->store,
                                    .http = d->http,
                                    .data_dir = d->opts->data_dir,
                                    .node_name = d->node_name,
                                    .address = d->opts->advertise ? d->opts->advertise
                                                                  : d->opts->listen,
                                    .join_id = d->opts->join_id,
                                    .force_new_cluster = d->opts->force_new_cluster,
                                    .snapshot_entries = d->opts->raft_snapshot_entries};
    return kcp_cluster_open(&d->cluster, &cc);
}

static void cluster_on_closed(void *data)
{
    struct daemon *d = data;
    d->cluster = NULL;
    kcp_task_stopped(&d->cluster_task);
}

static void cluster_stop(struct kcp_task *task)
{
    struct daemon *d = task->data;
    kcp_cluster_close(d->cluster, cluster_on_closed, d);
}

static int history_start(struct kcp_task *task, struct kcp_loop *loop)
{
    struct daemon *d = task->data;
    if (!history_enabled()) {
        kcp_log(KCP_LOG_INFO, "daemon", "history is off (KCP_HISTORY)");
        return 0;
    }
    char *path = kcp_history_repo_path(d->opts->data_dir);
    struct kcp_history_options ho;
    kcp_history_options_default(&ho);
    ho.keep_commits = d->opts->history_keep_commits;
    ho.keep_days = d->opts->history_keep_days;
    int rc = kcp_history_open(&d->history, loop, d->store, path, &ho);
    if (rc != 0)
        kcp_log(KCP_LOG_ERROR, "daemon", "opening the history in %s: %s", path,
                kcp_error_message(rc));
    else
        rc = kcp_history_routes(d->history, d->http); /* before the apiserver task starts it */
    free(path);
    return rc;
}

static void history_on_closed(void *data)
{
    struct daemon *d = data;
    d->history = NULL;
    kcp_task_stopped(&d->history_task);
}

static void history_stop(struct kcp_task *task)
{
    struct daemon *d = task->data;
    if (!d->history) {
        kcp_task_stopped(task);
        return;
    }
    kcp_history_close(d->history, history_on_closed, d);
}

static void api_barrier(void *barrier_data, kcp_api_barrier_cb cb, void *data)
{
    kcp_cluster_barrier(barrier_data, cb, data);
}

static void api_write_barrier(void *barrier_data, kcp_api_barrier_cb cb, void *data)
{
    _Static_assert(KCP_CLUSTER_BARRIER_LOCAL == KCP_API_BARRIER_LOCAL, "same status");
    kcp_cluster_write_barrier(barrier_data, cb, data);
}

static int http_start(struct kcp_task *task, struct kcp_loop *loop)
{
    struct daemon *d = task->data;
    struct kcp_api_config ac = {.loop = loop,
                                .http = d->http,
                                .store = d->store,
                                .barrier = api_barrier,
                                .barrier_data = d->cluster,
                                .write_barrier = api_write_barrier};
    int rc = kcp_api_new(&d->api, &ac);
    if (rc != 0)
        return rc;
    return kcp_http_server_start(d->http);
}

static void http_on_stopped(struct kcp_http_server *srv, void *data)
{
    struct daemon *d = data;
    kcp_task_stopped(&d->http_task);
}

static void http_stop(struct kcp_task *task)
{
    struct daemon *d = task->data;
    /* Watches never end on their own: end them so the server can drain. */
    kcp_api_stop_watches(d->api);
    kcp_http_server_stop(d->http, http_on_stopped, d);
}

static void ready_retry_on_fire(uv_timer_t *t);

static void bootstrap_on_done(struct kcp_api *api, int status, void *data)
{
    struct daemon *d = data;
    if (d->stopping)
        return;
    if (status != 0) {
        /* Typically no quorum yet: try again rather than give up on a cluster that heals. */
        kcp_log(KCP_LOG_WARN, "daemon", "creating the default namespaces: %s; retrying",
                kcp_error_message(status));
        uv_timer_start(&d->ready_retry, ready_retry_on_fire, 1000, 0);
        return;
    }
    char *kubeconfig = kcp_pki_kubeconfig_path(d->opts->data_dir);
    d->ready = true;
    kcp_log(KCP_LOG_INFO, "daemon", "kcp is ready on %s; kubeconfig: %s", d->opts->listen,
            kubeconfig);
    free(kubeconfig);
    daemon_notify("READY=1");
}

static void ready_on_barrier(void *data, int status);

static void ready_retry_on_fire(uv_timer_t *t)
{
    struct daemon *d = t->data;
    kcp_cluster_barrier(d->cluster, ready_on_barrier, d);
}

/*
 * The store has caught up with the cluster (a joining server has received the log): only now
 * can bootstrap tell what is missing. Without a leader yet, ask again.
 */
static void ready_on_barrier(void *data, int status)
{
    struct daemon *d = data;
    if (status == KCP_ECLOSED || d->stopping)
        return;
    if (status != 0) {
        uv_timer_start(&d->ready_retry, ready_retry_on_fire, 200, 0);
        return;
    }
    kcp_api_bootstrap(d->api, bootstrap_on_done, d);
}

/* Ready once what every cluster starts with exists; /readyz says so from then on. */
static int ready_start(struct kcp_task *task, struct kcp_loop *loop)
{
    struct daemon *d = task->data;
    uv_timer_init(&loop->uv, &d->ready_retry);
    d->ready_retry.data = d;
    kcp_cluster_barrier(d->cluster, ready_on_barrier, d);
    return 0;
}

static void ready_stop(struct kcp_task *task)
{
    struct daemon *d = task->data;
    d->stopping = true;
    kcp_cluster_step_down(d->cluster); /* first of all: the others must not wait for us */
    uv_close((uv_handle_t *)&d->ready_retry, NULL);
    d->ready = false;
    daemon_notify("STOPPING=1");
    kcp_task_stopped(task);
}

static void add_task(struct daemon *d, struct kcp_task *t, const char *name,
                     int (*start)(struct kcp_task *, struct kcp_loop *),
                     void (*stop)(struct kcp_task *))
{
    t->name = name;
    t->start = start;
    t->stop = stop;
    t->data = d;
    kcp_loop_add(&d->loop, t);
}

/* Creates the cluster in an empty data dir, or checks that the data dir holds one. */
static int prepare_data_dir(struct daemon *d)
{
    const char *dir = d->opts->data_dir;
    if (kcp_pki_exists(dir)) {
        if (d->opts->init)
            kcp_log(KCP_LOG_INFO, "daemon", "%s already holds a cluster; starting it unchanged",
                    dir);
        return 0;
    }
    if (!d->opts->init) {
        kcp_log(KCP_LOG_ERROR, "daemon",
                "%s holds no cluster: pass --init to create one, or --data-dir of an existing "
                "cluster",
                dir);
        return KCP_ENOTFOUND;
    }
    if (kcp_mkdir_p(dir, 0700) != 0) {
        kcp_log(KCP_LOG_ERROR, "daemon", "cannot create data dir %s", dir);
        return KCP_EIO;
    }
    int rc = kcp_pki_init(&d->pki);
    if (rc != 0)
        kcp_log(KCP_LOG_ERROR, "daemon", "creating the cluster's certificates in %s: %s", dir,
                kcp_error_message(rc));
    return rc;
}

/*
 * One server per data dir: a second process would open the same LMDB files with its own cache
 * and watchers and serve diverging answers. The lock dies with the process (kill -9 included).
 */
static int lock_data_dir(struct daemon *d)
{
    char *path = kcp_sprintf("%s/kcp.lock", d->opts->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        kcp_log(KCP_LOG_ERROR, "daemon", "cannot open %s", path);
        rc = KCP_EIO;
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        kcp_log(KCP_LOG_ERROR, "daemon", "%s is in use by another kcp process", d->opts->data_dir);
        close(fd);
        rc = KCP_EEXIST;
    } else {
        d->lock_fd = fd;
    }
    free(path);
    return rc;
}

static int load_tls(struct daemon *d)
{
    const char *dir = d->opts->data_dir;
    char *ca = kcp_pki_cert_path(dir, "ca");
    char *cert = kcp_pki_cert_path(dir, "server");
    char *key = kcp_pki_key_path(dir, "server");
    int rc = kcp_tls_config_new(&d->tls, ca, cert, key);
    if (rc != 0)
        kcp_log(KCP_LOG_ERROR, "daemon", "loading the serving certificate: %s",
                kcp_error_message(rc));
    free(ca);
    free(cert);
    free(key);
    return rc;
}

int kcp_daemon_run(const struct kcp_daemon_options *opts)
{
    int rc = 0;
    bool loop_ready = false;
    struct daemon *d = kcp_calloc(1, sizeof(*d));
    d->opts = opts;
    d->lock_fd = -1;
    d->clock.monotonic_ms = offset_monotonic_ms;
    d->clock.wall_s = offset_wall_s;
    d->clock.data = d;

    if (daemon_split_listen(opts->listen, &d->listen_host, &d->listen_port) != 0) {
        kcp_log(KCP_LOG_ERROR, "daemon", "--listen %s: want a numeric HOST:PORT", opts->listen);
        rc = KCP_EINVAL;
        goto done;
    }
    if (opts->node_name)
        snprintf(d->node_name, sizeof(d->node_name), "%s", opts->node_name);
    else if (gethostname(d->node_name, sizeof(d->node_name) - 1) != 0)
        snprintf(d->node_name, sizeof(d->node_name), "kcp");
    d->pki.data_dir = opts->data_dir;
    d->pki.node_name = d->node_name;
    d->pki.listen_host = d->listen_host;
    d->pki.listen_port = d->listen_port;
    d->pki.now = kcp_clock_wall_s(&d->clock);

    if ((rc = prepare_data_dir(d)) != 0)
        goto done;
    if ((rc = lock_data_dir(d)) != 0)
        goto done;
    /* Renew before serving: a cluster restarted after a year must not serve an expired cert. */
    if ((rc = daemon_certs_check(d)) != 0)
        goto done;
    if ((rc = load_tls(d)) != 0)
        goto done;

    uint64_t seed = (uint64_t)kcp_clock_now_ms(&d->clock) ^ ((uint64_t)getpid() << 32);
    if ((rc = kcp_loop_init(&d->loop, &d->clock, seed)) != 0)
        goto done;
    loop_ready = true;

    struct kcp_http_config hc = {.listen = opts->listen, .tls = d->tls};
    kcp_http_limits_default(&hc.limits);
    if ((rc = kcp_http_server_new(&d->http, &d->loop, &hc)) != 0)
        goto done;
    daemon_health_routes(d);
    daemon_metrics_routes(d);

    add_task(d, &d->store_task, "store", store_start, store_stop);
    add_task(d, &d->cluster_task, "cluster", cluster_start, cluster_stop);
    add_task(d, &d->history_task, "history", history_start, history_stop);
    add_task(d, &d->http_task, "apiserver", http_start, http_stop);
    daemon_certs_task_init(d);
    add_task(d, &d->ready_task, "ready", ready_start, ready_stop);

    rc = kcp_loop_run(&d->loop, DRAIN_MS);
    kcp_log(KCP_LOG_INFO, "daemon", rc == 0 ? "stopped" : "stopped after an error");
done:
    if (loop_ready && kcp_loop_close(&d->loop) != 0)
        KCP_LOG_V(1, "daemon", "loop closed with handles still open");
    if (d->http)
        kcp_http_server_free(d->http);
    kcp_api_free(d->api);
    if (d->tls)
        kcp_tls_config_free(d->tls);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    free(d->listen_host);
    free(d);
    return rc == 0 ? 0 : 1;
}
