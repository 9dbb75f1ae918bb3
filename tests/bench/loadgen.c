/* loadgen: HTTP/1.1 keep-alive load generator (mbedTLS client certificates) for kcp and etcd. */

/*
 * One program drives both servers the same way, so their figures can stand side by side:
 * the same event loop, the same HTTP parser, the same connection handling; only the request
 * bodies differ (a Kubernetes ConfigMap for kcp, etcd's v3 JSON gateway for etcd).
 *
 * Modes (--target kcp|etcd):
 *   create   unique objects (kcp: POST a ConfigMap; etcd: put a new key with the same JSON)
 *   get      read one object (kcp: GET configmaps/NAME; etcd: range on one key)
 *   update   write one object again and again (kcp: merge PATCH; etcd: put the same key)
 *   list     read every object of a namespace (kcp: GET configmaps; etcd: range on a prefix)
 *   watch    W watchers, one connection each; a writer makes U updates at R per second and
 *            every watcher's receive time is compared with the write's acknowledgment
 *
 * Closed loop: each connection has one request in flight (no pipelining), --conns of them,
 * spread over --threads epoll loops. Stops after --seconds or after --total requests.
 * Prints one line of key=value pairs on stdout (the bench driver parses it); errors go to
 * stderr. Not a test: it asserts nothing and exits 0 unless it could not run at all.
 */

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum target { T_KCP, T_ETCD };
enum mode { M_CREATE, M_GET, M_UPDATE, M_LIST, M_WATCH };

static struct {
    const char *host;
    int port;
    const char *ca, *cert, *key, *sni;
    enum target target;
    enum mode mode;
    int conns, threads;
    double seconds;
    long total;
    const char *ns, *name, *prefix;
    int size;
    int watchers, updates;
    double rate, wait_s;
} opt = {
    .host = "127.0.0.1",
    .sni = "localhost",
    .conns = 1,
    .threads = 1,
    .seconds = 5,
    .ns = "default",
    .name = "bench",
    .prefix = "lg",
    .size = 300,
    .watchers = 100,
    .updates = 200,
    .rate = 20,
    .wait_s = 10,
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        die("out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- request bodies ---- */

static void b64(const char *in, size_t n, char *out, size_t cap)
{
    size_t olen = 0;
    if (mbedtls_base64_encode((unsigned char *)out, cap, &olen, (const unsigned char *)in, n))
        die("base64 buffer too small");
    out[olen] = '\0';
}

/* The JSON of a ConfigMap of about opt.size bytes; also etcd's value, so both store as much. */
static int configmap_json(char *out, size_t cap, const char *name)
{
    int head =
        snprintf(out, cap,
                 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
                 "\"labels\":{\"app\":\"loadgen\"}},\"data\":{\"payload\":\"",
                 name);
    int pad = opt.size - head - 4;
    if (pad < 1)
        pad = 1;
    if ((size_t)(head + pad + 5) > cap)
        die("object too large");
    memset(out + head, 'x', (size_t)pad);
    memcpy(out + head + pad, "\"}}", 4);
    return head + pad + 3;
}

/* An etcd key for an object, as the Kubernetes apiserver lays them out. */
static void etcd_key(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "/registry/configmaps/%s/%s", opt.ns, name);
}

/* The value an etcd update writes: seq first so a watcher can read it, padded to opt.size. */
static int etcd_value(char *out, size_t cap, long seq)
{
    int n = snprintf(out, cap, "seq=%08ld;", seq);
    int want = opt.size > n ? opt.size : n;
    if ((size_t)want + 1 > cap)
        die("value too large");
    memset(out + n, 'x', (size_t)(want - n));
    out[want] = '\0';
    return want;
}

static int http_request(char *out, size_t cap, const char *method, const char *path,
                        const char *ctype, const char *body, size_t blen)
{
    int n;
    if (body)
        n = snprintf(out, cap,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n"
                     "User-Agent: kcp-loadgen\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     method, path, opt.host, opt.port, ctype, blen);
    else
        n = snprintf(out, cap,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n"
                     "User-Agent: kcp-loadgen\r\n\r\n",
                     method, path, opt.host, opt.port);
    if (n < 0 || (size_t)n + blen >= cap)
        die("request too large");
    if (body)
        memcpy(out + n, body, blen);
    return n + (int)blen;
}

/* Builds the request number seq of connection cid into out; returns its length. */
static int build_request(char *out, size_t cap, int cid, long seq)
{
    char path[512], name[256], body[8192], k64[1024], v64[12000], json[16384];
    int blen;
    switch (opt.mode) {
    case M_CREATE:
        snprintf(name, sizeof(name), "%s-%d-%ld", opt.prefix, cid, seq);
        blen = configmap_json(body, sizeof(body), name);
        if (opt.target == T_KCP) {
            snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", opt.ns);
            return http_request(out, cap, "POST", path, "application/json", body, (size_t)blen);
        }
        etcd_key(path, sizeof(path), name);
        b64(path, strlen(path), k64, sizeof(k64));
        b64(body, (size_t)blen, v64, sizeof(v64));
        blen = snprintf(json, sizeof(json), "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
        return http_request(out, cap, "POST", "/v3/kv/put", "application/json", json, (size_t)blen);
    case M_GET:
        if (opt.target == T_KCP) {
            snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s", opt.ns, opt.name);
            return http_request(out, cap, "GET", path, NULL, NULL, 0);
        }
        etcd_key(path, sizeof(path), opt.name);
        b64(path, strlen(path), k64, sizeof(k64));
        blen = snprintf(json, sizeof(json), "{\"key\":\"%s\"}", k64);
        return http_request(out, cap, "POST", "/v3/kv/range", "application/json", json,
                            (size_t)blen);
    case M_UPDATE:
        if (opt.target == T_KCP) {
            snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s", opt.ns, opt.name);
            blen = snprintf(body, sizeof(body), "{\"data\":{\"seq\":\"%08ld\"}}", seq);
            return http_request(out, cap, "PATCH", path, "application/merge-patch+json", body,
                                (size_t)blen);
        }
        etcd_key(path, sizeof(path), opt.name);
        b64(path, strlen(path), k64, sizeof(k64));
        blen = etcd_value(body, sizeof(body), seq);
        b64(body, (size_t)blen, v64, sizeof(v64));
        blen = snprintf(json, sizeof(json), "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
        return http_request(out, cap, "POST", "/v3/kv/put", "application/json", json, (size_t)blen);
    case M_LIST:
        if (opt.target == T_KCP) {
            snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", opt.ns);
            return http_request(out, cap, "GET", path, NULL, NULL, 0);
        } else {
            char end[512];
            etcd_key(path, sizeof(path), "");
            b64(path, strlen(path), k64, sizeof(k64));
            path[strlen(path) - 1]++; /* "/registry/configmaps/ns0": the prefix's range end */
            b64(path, strlen(path), end, sizeof(end));
            blen = snprintf(json, sizeof(json), "{\"key\":\"%s\",\"range_end\":\"%s\"}", k64, end);
            return http_request(out, cap, "POST", "/v3/kv/range", "application/json", json,
                                (size_t)blen);
        }
    case M_WATCH:
        break;
    }
    die("no request for this mode");
    return 0;
}

/* ---- connections and an incremental HTTP/1.1 response parser ---- */

enum pstate { P_HEAD, P_LEN, P_CSIZE, P_CDATA, P_CCRLF, P_TRAILER, P_CLOSE, P_DONE };

struct worker;

struct conn {
    int id;
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    int tls, dead;
    struct worker *w;
    /* request */
    char out[16384];
    size_t out_len, out_off;
    double t0;
    long seq;
    int active;
    /* response */
    enum pstate ps;
    char head[8192];
    size_t hlen;
    int status;
    long long remaining, body_bytes;
    char cline[128];
    size_t clen;
    char err[512];
    size_t errlen;
    /* watch: the body as lines */
    char *line;
    size_t llen, lcap;
    int established;
};

struct worker {
    pthread_t th;
    int idx, epfd;
    struct conn **conns;
    int n;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    float *lat;
    size_t nlat, cap;
    long ops, errors;
    long long bytes;
};

static atomic_long tickets;      /* requests claimed, against opt.total */
static atomic_int stop_flag;     /* set by the main thread at the deadline */
static atomic_int ready_workers; /* workers connected and waiting for the start */
static atomic_int established;   /* watchers whose watch is open */
static pthread_barrier_t start_barrier;
static double t_start;
static _Atomic(double) *recv_at; /* [watcher][update]: when it saw the update, 0 if never */

/* client-go's order (Go's crypto/tls default); mbedTLS 2.x would offer secp521r1 first */
static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                              MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_SECP521R1,
                                              MBEDTLS_ECP_DP_NONE};

static void tls_setup(struct worker *w)
{
    const char *pers = "kcp-loadgen";
    int rc;
    mbedtls_entropy_init(&w->entropy);
    mbedtls_ctr_drbg_init(&w->drbg);
    mbedtls_ssl_config_init(&w->conf);
    mbedtls_x509_crt_init(&w->ca);
    mbedtls_x509_crt_init(&w->cert);
    mbedtls_pk_init(&w->key);
    if (!opt.ca)
        return;
    if ((rc = mbedtls_ctr_drbg_seed(&w->drbg, mbedtls_entropy_func, &w->entropy,
                                    (const unsigned char *)pers, strlen(pers))))
        die("ctr_drbg_seed: -0x%x", -rc);
    if ((rc = mbedtls_x509_crt_parse_file(&w->ca, opt.ca)))
        die("%s: -0x%x", opt.ca, -rc);
    if ((rc = mbedtls_x509_crt_parse_file(&w->cert, opt.cert)))
        die("%s: -0x%x", opt.cert, -rc);
    if ((rc = mbedtls_pk_parse_keyfile(&w->key, opt.key, NULL)))
        die("%s: -0x%x", opt.key, -rc);
    if ((rc =
             mbedtls_ssl_config_defaults(&w->conf, MBEDTLS_SSL_IS_CLIENT,
                                         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)))
        die("ssl_config_defaults: -0x%x", -rc);
    /* offer the groups kubectl offers, so the server's key exchange costs what it would */
    mbedtls_ssl_conf_curves(&w->conf, curves);
    mbedtls_ssl_conf_authmode(&w->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&w->conf, &w->ca, NULL);
    mbedtls_ssl_conf_rng(&w->conf, mbedtls_ctr_drbg_random, &w->drbg);
    if ((rc = mbedtls_ssl_conf_own_cert(&w->conf, &w->cert, &w->key)))
        die("ssl_conf_own_cert: -0x%x", -rc);
}

/* Connects (blocking, with TLS handshake if configured); the socket is non-blocking after. */
static void conn_open(struct conn *c, struct worker *w, int id)
{
    struct sockaddr_in sa;
    int fd, one = 1, rc;
    c->id = id;
    c->w = w;
    c->tls = opt.ca != NULL;
    mbedtls_net_init(&c->net);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1)
        die("--host must be a numeric IPv4 address");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
        die("connect %s:%d: %s", opt.host, opt.port, strerror(errno));
    c->net.fd = fd;
    if (c->tls) {
        mbedtls_ssl_init(&c->ssl);
        if ((rc = mbedtls_ssl_setup(&c->ssl, &w->conf)))
            die("ssl_setup: -0x%x", -rc);
        mbedtls_ssl_set_hostname(&c->ssl, opt.sni);
        mbedtls_ssl_set_bio(&c->ssl, &c->net, mbedtls_net_send, mbedtls_net_recv, NULL);
        while ((rc = mbedtls_ssl_handshake(&c->ssl))) {
            if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
                char e[128];
                mbedtls_strerror(rc, e, sizeof(e));
                die("TLS handshake with %s:%d: %s", opt.host, opt.port, e);
            }
        }
    }
}

static void conn_nonblock(struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    mbedtls_net_set_nonblock(&c->net);
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, c->net.fd, &ev))
        die("epoll_ctl: %s", strerror(errno));
}

static void conn_close(struct conn *c)
{
    if (c->tls)
        mbedtls_ssl_free(&c->ssl);
    mbedtls_net_free(&c->net);
    free(c->line);
}

/* >0 bytes, 0 end of stream, -1 would block, -2 error. */
static int conn_read(struct conn *c, char *buf, size_t n)
{
    int r = c->tls ? mbedtls_ssl_read(&c->ssl, (unsigned char *)buf, n)
                   : mbedtls_net_recv(&c->net, (unsigned char *)buf, n);
    if (r > 0)
        return r;
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return 0;
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return -1;
    return -2;
}

static int conn_write(struct conn *c, const char *buf, size_t n)
{
    int r = c->tls ? mbedtls_ssl_write(&c->ssl, (const unsigned char *)buf, n)
                   : mbedtls_net_send(&c->net, (const unsigned char *)buf, n);
    if (r > 0)
        return r;
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return -1;
    return -2;
}

static void parser_reset(struct conn *c)
{
    c->ps = P_HEAD;
    c->hlen = 0;
    c->status = 0;
    c->remaining = 0;
    c->body_bytes = 0;
    c->clen = 0;
    c->errlen = 0;
}

static void on_body(struct conn *c, const char *p, size_t n);
static void writer_body(struct conn *c, const char *p, size_t n);

static void head_done(struct conn *c)
{
    char *h = c->head, *line;
    int chunked = 0;
    long long len = -1;
    c->head[c->hlen] = '\0';
    if (sscanf(h, "HTTP/1.%*d %d", &c->status) != 1)
        c->status = 0;
    for (line = strstr(h, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (!strncasecmp(l, "content-length:", 15) && atoll(l + 15) >= 0)
            len = atoll(l + 15);
        else if (!strncasecmp(l, "transfer-encoding:", 18) && strstr(l, "chunked") &&
                 strstr(l, "chunked") < strstr(l, "\r\n"))
            chunked = 1;
    }
    if (chunked)
        c->ps = P_CSIZE;
    else if (len >= 0) {
        c->remaining = len;
        c->ps = len ? P_LEN : P_DONE;
    } else
        c->ps = P_CLOSE;
}

/* Feeds bytes; returns 1 when the response is complete, -1 on a malformed response. */
static int parse(struct conn *c, const char *p, size_t n)
{
    while (n) {
        switch (c->ps) {
        case P_HEAD:
            if (c->hlen + 1 >= sizeof(c->head))
                return -1;
            c->head[c->hlen++] = *p++;
            n--;
            if (c->hlen >= 4 && !memcmp(c->head + c->hlen - 4, "\r\n\r\n", 4))
                head_done(c);
            break;
        case P_LEN: {
            size_t k = (size_t)c->remaining < n ? (size_t)c->remaining : n;
            on_body(c, p, k);
            p += k;
            n -= k;
            c->remaining -= (long long)k;
            if (!c->remaining)
                c->ps = P_DONE;
            break;
        }
        case P_CSIZE:
            if (c->clen + 1 >= sizeof(c->cline))
                return -1;
            c->cline[c->clen++] = *p++;
            n--;
            if (c->clen >= 2 && c->cline[c->clen - 2] == '\r' && c->cline[c->clen - 1] == '\n') {
                c->cline[c->clen] = '\0';
                c->remaining = strtoll(c->cline, NULL, 16);
                if (c->remaining < 0)
                    return -1;
                c->clen = 0;
                c->ps = c->remaining ? P_CDATA : P_TRAILER;
            }
            break;
        case P_CDATA: {
            size_t k = (size_t)c->remaining < n ? (size_t)c->remaining : n;
            on_body(c, p, k);
            p += k;
            n -= k;
            c->remaining -= (long long)k;
            if (!c->remaining)
                c->ps = P_CCRLF;
            break;
        }
        case P_CCRLF:
            /* the CRLF after a chunk's data */
            c->clen++;
            p++;
            n--;
            if (c->clen == 2) {
                c->clen = 0;
                c->ps = P_CSIZE;
            }
            break;
        case P_TRAILER:
            /* trailer lines, ended by an empty line */
            if (c->clen + 1 >= sizeof(c->cline))
                c->clen = 0;
            c->cline[c->clen++] = *p++;
            n--;
            if (c->clen >= 2 && c->cline[c->clen - 2] == '\r' && c->cline[c->clen - 1] == '\n') {
                if (c->clen == 2)
                    c->ps = P_DONE;
                c->clen = 0;
            }
            break;
        case P_CLOSE:
            on_body(c, p, n);
            n = 0;
            break;
        case P_DONE:
            return -1; /* bytes past the end of a response we did not ask for */
        }
        if (c->ps == P_DONE)
            return n ? -1 : 1;
    }
    return c->ps == P_DONE;
}

/* ---- watch: events as lines, carrying the update's sequence number ---- */

static long seq_of_kcp(const char *line)
{
    const char *s = strstr(line, "\"seq\":\"");
    return s ? strtol(s + 7, NULL, 10) : -1;
}

static long seq_of_etcd(const char *line)
{
    const char *s = strstr(line, "\"value\":\"");
    const char *e;
    unsigned char v[64];
    size_t olen = 0;
    if (!s)
        return -1;
    s += 9;
    e = strchr(s, '"');
    if (!e)
        return -1;
    /* only the first 16 characters: "seq=%08ld;" is the start of the value */
    if (e - s > 16)
        e = s + 16;
    if (mbedtls_base64_decode(v, sizeof(v) - 1, &olen, (const unsigned char *)s, (size_t)(e - s)))
        return -1;
    v[olen] = '\0';
    if (strncmp((char *)v, "seq=", 4))
        return -1;
    return strtol((char *)v + 4, NULL, 10);
}

static void watch_line(struct conn *c, const char *line)
{
    long seq;
    double t = now_s();
    if (opt.target == T_ETCD && !c->established) {
        if (strstr(line, "\"created\":true")) {
            c->established = 1;
            atomic_fetch_add(&established, 1);
        }
        return;
    }
    seq = opt.target == T_KCP ? seq_of_kcp(line) : seq_of_etcd(line);
    if (seq < 0 || seq >= opt.updates)
        return;
    if (atomic_load(&recv_at[(size_t)c->id * (size_t)opt.updates + (size_t)seq]) == 0)
        atomic_store(&recv_at[(size_t)c->id * (size_t)opt.updates + (size_t)seq], t);
}

static void on_body(struct conn *c, const char *p, size_t n)
{
    c->body_bytes += (long long)n;
    if (c->id < 0) {
        writer_body(c, p, n);
        return;
    }
    if (c->status && (c->status < 200 || c->status > 299) && c->errlen < sizeof(c->err) - 1) {
        size_t k = sizeof(c->err) - 1 - c->errlen < n ? sizeof(c->err) - 1 - c->errlen : n;
        memcpy(c->err + c->errlen, p, k);
        c->errlen += k;
        c->err[c->errlen] = '\0';
    }
    if (opt.mode != M_WATCH)
        return;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        if (c->llen + k + 1 > c->lcap) {
            c->lcap = (c->llen + k + 1) * 2;
            c->line = xrealloc(c->line, c->lcap);
        }
        memcpy(c->line + c->llen, p, k);
        c->llen += k;
        p += k;
        n -= k;
        if (nl) {
            c->line[c->llen] = '\0';
            watch_line(c, c->line);
            c->llen = 0;
            p++;
            n--;
        }
    }
}

/* ---- the closed loop ---- */

static void record(struct worker *w, double ms)
{
    if (w->nlat == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->lat = xrealloc(w->lat, w->cap * sizeof(*w->lat));
    }
    w->lat[w->nlat++] = (float)ms;
}

static void set_out_interest(struct conn *c, int want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->net.fd, &ev);
}

static void conn_kill(struct conn *c, const char *why)
{
    if (c->dead)
        return;
    fprintf(stderr, "loadgen: connection %d: %s\n", c->id, why);
    c->dead = 1;
    c->active = 0;
    c->w->errors++;
    epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->net.fd, NULL);
}

static int flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        int r = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (r == -1) {
            set_out_interest(c, 1);
            return 0;
        }
        if (r < 0) {
            conn_kill(c, "write failed");
            return -1;
        }
        c->out_off += (size_t)r;
    }
    return 0;
}

static void start_next(struct conn *c)
{
    if (atomic_load(&stop_flag) || c->dead) {
        c->active = 0;
        return;
    }
    if (opt.total > 0 && atomic_fetch_add(&tickets, 1) >= opt.total) {
        c->active = 0;
        return;
    }
    c->active = 1;
    parser_reset(c);
    c->out_len = (size_t)build_request(c->out, sizeof(c->out), c->id, c->seq++);
    c->out_off = 0;
    c->t0 = now_s();
    flush(c);
}

static void complete(struct conn *c)
{
    struct worker *w = c->w;
    double t = now_s();
    if (c->status >= 200 && c->status <= 299) {
        w->ops++;
        w->bytes += c->body_bytes;
        record(w, (t - c->t0) * 1000);
    } else {
        if (w->errors++ < 3)
            fprintf(stderr, "loadgen: HTTP %d: %.300s\n", c->status, c->err);
    }
    start_next(c);
}

static void on_event(struct conn *c, unsigned events)
{
    char buf[65536];
    if (c->dead)
        return;
    if ((events & EPOLLOUT) && c->out_off < c->out_len) {
        if (flush(c))
            return;
        if (c->out_off == c->out_len)
            set_out_interest(c, 0);
    }
    for (;;) {
        int r = conn_read(c, buf, sizeof(buf));
        int done;
        if (r == -1)
            return;
        if (r == 0) {
            if (c->ps == P_CLOSE) {
                c->ps = P_DONE;
                complete(c);
            } else
                conn_kill(c, "closed by the server");
            return;
        }
        if (r < 0) {
            conn_kill(c, "read failed");
            return;
        }
        done = parse(c, buf, (size_t)r);
        if (done < 0) {
            conn_kill(c, "malformed response");
            return;
        }
        if (opt.mode == M_WATCH) {
            if (c->ps == P_DONE)
                conn_kill(c, "watch ended");
            continue;
        }
        if (done) {
            complete(c);
            if (!c->active)
                return;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    int i;
    if (opt.mode == M_WATCH) {
        /* open each watch right after its handshake (a server closes a connection that sends
           no request for a while), blocking until the head says it is established */
        for (i = 0; i < w->n; i++) {
            struct conn *c = w->conns[i];
            char path[512], body[1024], k64[512], e64[512];
            int blen;
            conn_open(c, w, c->id);
            parser_reset(c);
            if (opt.target == T_KCP) {
                snprintf(path, sizeof(path),
                         "/api/v1/namespaces/%s/configmaps?watch=1&resourceVersion=%s", opt.ns,
                         opt.name);
                c->out_len =
                    (size_t)http_request(c->out, sizeof(c->out), "GET", path, NULL, NULL, 0);
            } else {
                etcd_key(path, sizeof(path), "");
                b64(path, strlen(path), k64, sizeof(k64));
                path[strlen(path) - 1]++;
                b64(path, strlen(path), e64, sizeof(e64));
                blen = snprintf(body, sizeof(body),
                                "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}", k64,
                                e64);
                c->out_len = (size_t)http_request(c->out, sizeof(c->out), "POST", "/v3/watch",
                                                  "application/json", body, (size_t)blen);
            }
            c->out_off = 0;
            while (c->out_off < c->out_len) {
                int r = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
                if (r == -2)
                    die("watch request: write failed");
                if (r > 0)
                    c->out_off += (size_t)r;
            }
            while (c->ps == P_HEAD) {
                char b[4096];
                int r = conn_read(c, b, sizeof(b));
                if (r == 0 || r == -2)
                    die("watch %d: connection closed before the response", c->id);
                if (r > 0 && parse(c, b, (size_t)r) < 0)
                    die("watch %d: malformed response", c->id);
            }
            if (c->status != 200)
                die("watch %d: HTTP %d", c->id, c->status);
            if (opt.target == T_KCP) {
                c->established = 1;
                atomic_fetch_add(&established, 1);
            }
            conn_nonblock(c);
        }
    } else {
        for (i = 0; i < w->n; i++) {
            conn_open(w->conns[i], w, w->conns[i]->id);
            conn_nonblock(w->conns[i]);
        }
    }
    atomic_fetch_add(&ready_workers, 1);
    pthread_barrier_wait(&start_barrier);
    if (opt.mode != M_WATCH)
        for (i = 0; i < w->n; i++)
            start_next(w->conns[i]);
    for (;;) {
        int n, active = 0;
        if (atomic_load(&stop_flag) && opt.mode == M_WATCH)
            break;
        n = epoll_wait(w->epfd, evs, 256, 50);
        for (i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
        if (opt.mode == M_WATCH)
            continue;
        for (i = 0; i < w->n; i++)
            active |= w->conns[i]->active;
        if (!active)
            break;
        if (atomic_load(&stop_flag)) {
            /* the deadline passed: requests still in flight are not counted */
            break;
        }
    }
    return NULL;
}

/* ---- results ---- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct_f(const float *v, size_t n, double q)
{
    size_t i;
    if (!n)
        return NAN;
    i = (size_t)ceil(q * (double)n);
    return v[i ? i - 1 : 0];
}

static double pct_d(const double *v, size_t n, double q)
{
    size_t i;
    if (!n)
        return NAN;
    i = (size_t)ceil(q * (double)n);
    return v[i ? i - 1 : 0];
}

/* ---- a blocking client for the watch benchmark's writer ---- */

static struct worker writer_w;

static int blocking_do(struct conn *c, const char *method, const char *path, const char *ctype,
                       const char *body, size_t blen)
{
    char b[65536];
    parser_reset(c);
    c->out_len = (size_t)http_request(c->out, sizeof(c->out), method, path, ctype, body, blen);
    c->out_off = 0;
    while (c->out_off < c->out_len) {
        int r = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (r == -2)
            die("writer: write failed");
        if (r > 0)
            c->out_off += (size_t)r;
    }
    for (;;) {
        int r = conn_read(c, b, sizeof(b)), done;
        if (r == 0 || r == -2)
            die("writer: connection closed");
        if (r < 0)
            continue;
        done = parse(c, b, (size_t)r);
        if (done < 0)
            die("writer: malformed response");
        if (done)
            return c->status;
    }
}

/* The writer keeps the body of its last response for the resourceVersion. */
static char last_body[65536];
static size_t last_len;

static void writer_body(struct conn *c, const char *p, size_t n)
{
    size_t k = sizeof(last_body) - 1 - last_len < n ? sizeof(last_body) - 1 - last_len : n;
    memcpy(last_body + last_len, p, k);
    last_len += k;
    last_body[last_len] = '\0';
}

static int run_watch(struct worker *ws, int nthreads)
{
    struct conn wc;
    char path[512], body[8192], k64[512], v64[12000], json[16384], rv[32] = "";
    double *ack, *sent, *d_ack, *d_send, t_setup, t_end;
    size_t nd = 0;
    long missing = 0, early = 0;
    int status, u, k;

    memset(&wc, 0, sizeof(wc));
    tls_setup(&writer_w);
    conn_open(&wc, &writer_w, -1);
    /* the object the writer updates; its resourceVersion is where the watches start */
    if (opt.target == T_KCP) {
        int blen = configmap_json(body, sizeof(body), "watched");
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", opt.ns);
        last_len = 0;
        status = blocking_do(&wc, "POST", path, "application/json", body, (size_t)blen);
        if (status != 201 && status != 409)
            die("watch: creating the watched object: HTTP %d", status);
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps?limit=1", opt.ns);
        last_len = 0;
        status = blocking_do(&wc, "GET", path, NULL, NULL, 0);
        {
            const char *s = strstr(last_body, "\"resourceVersion\":\"");
            if (status != 200 || !s)
                die("watch: no resourceVersion from the list (HTTP %d)", status);
            sscanf(s + 19, "%31[0-9]", rv);
        }
    }
    opt.name = rv; /* the watchers' resourceVersion */

    ack = xcalloc((size_t)opt.updates, sizeof(double));
    sent = xcalloc((size_t)opt.updates, sizeof(double));
    t_setup = now_s();
    for (k = 0; k < nthreads; k++)
        pthread_create(&ws[k].th, NULL, worker_main, &ws[k]);
    while (atomic_load(&ready_workers) < nthreads)
        usleep(1000);
    pthread_barrier_wait(&start_barrier);
    /* etcd says "created" on the stream once the watch is registered */
    while (atomic_load(&established) < opt.watchers && now_s() - t_setup < 120)
        usleep(1000);
    if (atomic_load(&established) < opt.watchers)
        die("watch: only %d of %d watches established", atomic_load(&established), opt.watchers);
    t_setup = now_s() - t_setup;
    usleep(500000);

    for (u = 0; u < opt.updates; u++) {
        double target = now_s();
        int blen;
        if (opt.target == T_KCP) {
            snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/watched", opt.ns);
            blen = snprintf(body, sizeof(body), "{\"data\":{\"seq\":\"%08d\"}}", u);
            sent[u] = now_s();
            status =
                blocking_do(&wc, "PATCH", path, "application/merge-patch+json", body, (size_t)blen);
        } else {
            etcd_key(path, sizeof(path), "watched");
            b64(path, strlen(path), k64, sizeof(k64));
            blen = etcd_value(body, sizeof(body), u);
            b64(body, (size_t)blen, v64, sizeof(v64));
            blen = snprintf(json, sizeof(json), "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
            sent[u] = now_s();
            status = blocking_do(&wc, "POST", "/v3/kv/put", "application/json", json, (size_t)blen);
        }
        ack[u] = now_s();
        if (status != 200)
            die("watch: update %d: HTTP %d", u, status);
        target += 1.0 / opt.rate;
        while (now_s() < target)
            usleep((useconds_t)((target - now_s()) * 1e6) + 1);
    }
    /* wait until every watcher has the last update, or the grace period ends */
    t_end = now_s();
    for (;;) {
        int all = 1, w;
        for (w = 0; w < opt.watchers && all; w++)
            all = atomic_load(
                      &recv_at[(size_t)w * (size_t)opt.updates + (size_t)(opt.updates - 1)]) != 0;
        if (all || now_s() - t_end > opt.wait_s)
            break;
        usleep(2000);
    }
    atomic_store(&stop_flag, 1);
    for (k = 0; k < nthreads; k++)
        pthread_join(ws[k].th, NULL);

    d_ack = xcalloc((size_t)opt.watchers * (size_t)opt.updates, sizeof(double));
    d_send = xcalloc((size_t)opt.watchers * (size_t)opt.updates, sizeof(double));
    for (k = 0; k < opt.watchers; k++)
        for (u = 0; u < opt.updates; u++) {
            double t = atomic_load(&recv_at[(size_t)k * (size_t)opt.updates + (size_t)u]);
            if (t == 0) {
                missing++;
                continue;
            }
            if (t < ack[u])
                early++;
            /* an event may arrive before the writer reads its acknowledgment: count it as 0 */
            d_ack[nd] = t > ack[u] ? (t - ack[u]) * 1000 : 0;
            d_send[nd] = (t - sent[u]) * 1000;
            nd++;
        }
    qsort(d_ack, nd, sizeof(double), cmp_double);
    qsort(d_send, nd, sizeof(double), cmp_double);
    {
        double *w_ms = xcalloc((size_t)opt.updates, sizeof(double));
        for (u = 0; u < opt.updates; u++)
            w_ms[u] = (ack[u] - sent[u]) * 1000;
        qsort(w_ms, (size_t)opt.updates, sizeof(double), cmp_double);
        printf("watchers=%d updates=%d delivered=%zu missing=%ld early=%ld setup_s=%.2f "
               "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f send_p50_ms=%.3f send_p99_ms=%.3f "
               "write_p50_ms=%.3f write_p99_ms=%.3f\n",
               opt.watchers, opt.updates, nd, missing, early, t_setup, pct_d(d_ack, nd, 0.5),
               pct_d(d_ack, nd, 0.99), nd ? d_ack[nd - 1] : NAN, pct_d(d_send, nd, 0.5),
               pct_d(d_send, nd, 0.99), pct_d(w_ms, (size_t)opt.updates, 0.5),
               pct_d(w_ms, (size_t)opt.updates, 0.99));
        free(w_ms);
    }
    conn_close(&wc);
    free(ack);
    free(sent);
    free(d_ack);
    free(d_send);
    return 0;
}

static void usage(int code)
{
    fputs("usage: loadgen --target kcp|etcd --mode create|get|update|list|watch --port PORT\n"
          "  [--host 127.0.0.1] [--ca CA --cert CRT --key KEY [--sni localhost]]\n"
          "  [--conns N] [--threads T] [--seconds S | --total N] [--ns NS] [--name NAME]\n"
          "  [--prefix P] [--size BYTES] [--watchers W --updates U --rate R --wait S]\n"
          "modes: create (unique objects), get/update (--name), list (--ns), watch\n"
          "  (--watchers connections, --updates at --rate/s, --wait s for stragglers)\n"
          "TLS (client certificate) when --ca is given, else plain HTTP; kcp needs TLS.\n"
          "Prints one line of key=value results on stdout.\n",
          code ? stderr : stdout);
    exit(code);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},
                                       {"ca", 1, 0, 'A'},       {"cert", 1, 0, 'C'},
                                       {"key", 1, 0, 'K'},      {"sni", 1, 0, 'S'},
                                       {"target", 1, 0, 't'},   {"mode", 1, 0, 'm'},
                                       {"conns", 1, 0, 'c'},    {"threads", 1, 0, 'T'},
                                       {"seconds", 1, 0, 'd'},  {"total", 1, 0, 'n'},
                                       {"ns", 1, 0, 'N'},       {"name", 1, 0, 'o'},
                                       {"prefix", 1, 0, 'P'},   {"size", 1, 0, 'z'},
                                       {"watchers", 1, 0, 'W'}, {"updates", 1, 0, 'U'},
                                       {"rate", 1, 0, 'r'},     {"wait", 1, 0, 'w'},
                                       {"help", 0, 0, 'H'},     {0, 0, 0, 0}};
    struct worker *ws;
    struct conn **all;
    int ch, nconns, nthreads, i;
    double elapsed, cpu0;
    size_t nlat = 0;
    float *lat;
    long ops = 0, errors = 0;
    long long bytes = 0;
    const char *mode = NULL, *target = NULL;

    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'A':
            opt.ca = optarg;
            break;
        case 'C':
            opt.cert = optarg;
            break;
        case 'K':
            opt.key = optarg;
            break;
        case 'S':
            opt.sni = optarg;
            break;
        case 't':
            target = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'c':
            opt.conns = atoi(optarg);
            break;
        case 'T':
            opt.threads = atoi(optarg);
            break;
        case 'd':
            opt.seconds = atof(optarg);
            break;
        case 'n':
            opt.total = atol(optarg);
            break;
        case 'N':
            opt.ns = optarg;
            break;
        case 'o':
            opt.name = optarg;
            break;
        case 'P':
            opt.prefix = optarg;
            break;
        case 'z':
            opt.size = atoi(optarg);
            break;
        case 'W':
            opt.watchers = atoi(optarg);
            break;
        case 'U':
            opt.updates = atoi(optarg);
            break;
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 'w':
            opt.wait_s = atof(optarg);
            break;
        case 'H':
            usage(0);
            break;
        default:
            usage(2);
        }
    }
    if (!mode || !target || !opt.port || optind != argc)
        usage(2);
    if (!strcmp(target, "kcp"))
        opt.target = T_KCP;
    else if (!strcmp(target, "etcd"))
        opt.target = T_ETCD;
    else
        usage(2);
    if (!strcmp(mode, "create"))
        opt.mode = M_CREATE;
    else if (!strcmp(mode, "get"))
        opt.mode = M_GET;
    else if (!strcmp(mode, "update"))
        opt.mode = M_UPDATE;
    else if (!strcmp(mode, "list"))
        opt.mode = M_LIST;
    else if (!strcmp(mode, "watch"))
        opt.mode = M_WATCH;
    else
        usage(2);
    if (opt.ca && (!opt.cert || !opt.key))
        die("--ca needs --cert and --key");
    if (opt.mode == M_WATCH && opt.target == T_KCP && !opt.ca)
        die("kcp needs --ca, --cert and --key");
    if (opt.size < 64 || opt.size > 4096)
        die("--size must be 64..4096");
    nconns = opt.mode == M_WATCH ? opt.watchers : opt.conns;
    if (nconns < 1 || opt.threads < 1 || opt.updates < 1 || opt.rate <= 0)
        usage(2);
    nthreads = opt.threads < nconns ? opt.threads : nconns;
    if (opt.mode == M_WATCH)
        recv_at = xcalloc((size_t)opt.watchers * (size_t)opt.updates, sizeof(*recv_at));

    ws = xcalloc((size_t)nthreads, sizeof(*ws));
    all = xcalloc((size_t)nconns, sizeof(*all));
    for (i = 0; i < nthreads; i++) {
        ws[i].idx = i;
        ws[i].epfd = epoll_create1(EPOLL_CLOEXEC);
        if (ws[i].epfd < 0)
            die("epoll_create1: %s", strerror(errno));
        ws[i].conns = xcalloc((size_t)nconns, sizeof(struct conn *));
        tls_setup(&ws[i]);
    }
    for (i = 0; i < nconns; i++) {
        struct worker *w = &ws[i % nthreads];
        all[i] = xcalloc(1, sizeof(struct conn));
        all[i]->id = i;
        w->conns[w->n++] = all[i];
    }
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads + 1);

    if (opt.mode == M_WATCH) {
        int rc = run_watch(ws, nthreads);
        fflush(stdout);
        _exit(rc); /* the servers' connections are torn down with the process */
    }

    for (i = 0; i < nthreads; i++)
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    while (atomic_load(&ready_workers) < nthreads)
        usleep(1000);
    t_start = now_s();
    cpu0 = cpu_s();
    pthread_barrier_wait(&start_barrier);
    if (opt.total <= 0) {
        while (now_s() - t_start < opt.seconds)
            usleep(2000);
        atomic_store(&stop_flag, 1);
    }
    for (i = 0; i < nthreads; i++)
        pthread_join(ws[i].th, NULL);
    elapsed = now_s() - t_start;
    cpu0 = cpu_s() - cpu0;
    if (opt.total <= 0 && elapsed > opt.seconds)
        elapsed = opt.seconds;

    for (i = 0; i < nthreads; i++) {
        ops += ws[i].ops;
        errors += ws[i].errors;
        bytes += ws[i].bytes;
        nlat += ws[i].nlat;
    }
    lat = xmalloc(nlat * sizeof(float));
    nlat = 0;
    for (i = 0; i < nthreads; i++) {
        memcpy(lat + nlat, ws[i].lat, ws[i].nlat * sizeof(float));
        nlat += ws[i].nlat;
    }
    qsort(lat, nlat, sizeof(float), cmp_float);
    printf("ops=%ld errors=%ld secs=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
           "bytes_per_op=%.0f client_cpu_us=%.1f\n",
           ops, errors, elapsed, (double)ops / elapsed, pct_f(lat, nlat, 0.5),
           pct_f(lat, nlat, 0.99), nlat ? lat[nlat - 1] : NAN,
           ops ? (double)bytes / (double)ops : 0.0, ops ? cpu0 * 1e6 / (double)ops : 0.0);
    fflush(stdout);
    for (i = 0; i < nconns; i++)
        conn_close(all[i]);
    return 0;
}
