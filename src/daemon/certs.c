/*
 * Certificate renewal while running: edge clusters run for years untouched, and an expired
 * serving or admin certificate locks everyone out. Checked at start and every interval.
 */
#include "daemon_int.h"

#include <kcp/base.h>

#include <stdlib.h>

int daemon_certs_check(struct daemon *d)
{
    int renewed = 0;
    d->pki.now = kcp_clock_wall_s(&d->clock);
    int rc = kcp_pki_renew(&d->pki, &renewed);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "certs", "certificate renewal: %s", kcp_error_message(rc));
        return rc;
    }
    if (renewed == 0 || !d->tls)
        return 0;
    char *cert = kcp_pki_cert_path(d->opts->data_dir, "server");
    char *key = kcp_pki_key_path(d->opts->data_dir, "server");
    rc = kcp_tls_config_reload(d->tls, cert, key);
    free(cert);
    free(key);
    if (rc != 0)
        kcp_log(KCP_LOG_ERROR, "certs", "reloading the serving certificate: %s",
                kcp_error_message(rc));
    else
        kcp_log(KCP_LOG_INFO, "certs", "renewed %d certificate(s); new handshakes use them",
                renewed);
    return rc;
}

static void cert_timer_on_tick(uv_timer_t *timer)
{
    daemon_certs_check(timer->data);
}

static int certs_start(struct kcp_task *task, struct kcp_loop *loop)
{
    struct daemon *d = task->data;
    uv_timer_init(&loop->uv, &d->cert_timer);
    d->cert_timer.data = d;
    uint64_t every = (uint64_t)d->opts->cert_check_interval_ms;
    uv_timer_start(&d->cert_timer, cert_timer_on_tick, every, every);
    return 0;
}

static void cert_timer_on_closed(uv_handle_t *h)
{
    struct daemon *d = h->data;
    kcp_task_stopped(&d->certs_task);
}

static void certs_stop(struct kcp_task *task)
{
    struct daemon *d = task->data;
    uv_close((uv_handle_t *)&d->cert_timer, cert_timer_on_closed);
}

void daemon_certs_task_init(struct daemon *d)
{
    d->certs_task.name = "certs";
    d->certs_task.start = certs_start;
    d->certs_task.stop = certs_stop;
    d->certs_task.data = d;
    kcp_loop_add(&d->loop, &d->certs_task);
}
