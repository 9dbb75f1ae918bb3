/*
 * The read-only HTTP API: GET /apis/history.kcp.io/v1/{log,object,diff,conflicts} for clients
 * with a cluster certificate (docs/HISTORY.md "API"). Not in discovery: kubectl reaches it with
 * `get --raw`.
 *
 * Happy path: handler (loop: authentication, parameters) -> history_read_begin -> work pool
 * (open the repository read-only, render the answer) -> after-work (loop): respond.
 * Failure modes: anonymous client -> 401 Status; bad parameter -> 400; unknown commit or object
 * -> 404; a squash due or running -> the read waits for it; the history closing with the read
 * still waiting -> 503; an answer past API_MAX_BYTES -> 413.
 */
#include "history_int.h"

#include <kcp/codec.h>
#include <kcp/http.h>

#include <stdlib.h>
#include <string.h>

#define API_PREFIX "/apis/history.kcp.io/v1/"
#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX 1000
/* Objects are bounded by the API's body limit, so a YAML or a diff stays well under this; a
 * list is bounded by API_LIMIT_MAX. This is the backstop. */
#define API_MAX_BYTES ((size_t)16 << 20)
#define OBJECT_USAGE "RESOURCE[.GROUP]/NAMESPACE/NAME or RESOURCE[.GROUP]/NAME"

enum api_op { API_LOG, API_OBJECT, API_DIFF, API_CONFLICTS };

struct api_read {
    struct history_read rd;
    uv_work_t work;
    struct kcp_history *h;
    struct kcp_http_response *res;
    enum api_op op;
    const char *object, *at, *from, *to; /* in the request's arena */
    size_t limit;
    /* The answer, from the worker. */
    int err;
    char *msg;
    const char *content_type;
    struct kcp_buf body;
};

/* ---- the worker ------------------------------------------------------------------------- */

static void item_start(struct kcp_buf *b, size_t *n)
{
    kcp_buf_puts(b, (*n)++ ? ",{" : "{");
}

static void json_field(struct kcp_buf *b, const char *key, const char *value, bool first)
{
    kcp_buf_printf(b, "%s\"%s\":", first ? "" : ",", key);
    kcp_buf_json_string(b, value);
}

static void json_time(struct kcp_buf *b, int64_t t)
{
    char buf[32];
    kcp_codec_format_time(buf, t);
    json_field(b, "time", buf, false);
}

struct list_ctx {
    struct kcp_buf *b;
    size_t n;
};

static int log_item(void *ctx, const struct kcp_history_commit *c)
{
    struct list_ctx *l = ctx;
    item_start(l->b, &l->n);
    json_field(l->b, "commit", c->id, true);
    json_field(l->b, "verb", c->verb, false);
    json_field(l->b, "object", c->object, false);
    json_field(l->b, "user", c->user, false);
    json_time(l->b, c->time);
    kcp_buf_printf(l->b, ",\"raftIndex\":%llu", (unsigned long long)c->raft_index);
    if (c->more)
        kcp_buf_printf(l->b, ",\"more\":%u", c->more);
    kcp_buf_puts(l->b, "}");
    return 0;
}

static int conflict_item(void *ctx, const struct kcp_history_conflict *c)
{
    struct list_ctx *l = ctx;
    item_start(l->b, &l->n);
    json_field(l->b, "ref", c->ref, true);
    json_field(l->b, "object", c->object, false);
    json_field(l->b, "user", c->user, false);
    json_time(l->b, c->time);
    kcp_buf_printf(l->b, ",\"raftIndex\":%llu,\"readResourceVersion\":%llu",
                   (unsigned long long)c->raft_index, (unsigned long long)c->read_revision);
    json_field(l->b, "commit", c->id, false);
    json_field(l->b, "currentCommit", c->current, false);
    kcp_buf_puts(l->b, "}");
    return 0;
}

static int list(struct api_read *a, struct kcp_history_repo *repo)
{
    struct list_ctx l = {&a->body, 0};
    bool more = false;
    int rc;
    kcp_buf_printf(&a->body, "{\"kind\":\"%s\",\"apiVersion\":\"history.kcp.io/v1\",\"items\":[",
                   a->op == API_LOG ? "CommitList" : "ConflictList");
    if (a->op == API_LOG)
        rc = kcp_history_log(repo, a->object, a->limit, log_item, &l, &more);
    else
        rc = kcp_history_conflicts(repo, a->limit, conflict_item, &l, &more);
    kcp_buf_printf(&a->body, "],\"truncated\":%s}\n", more ? "true" : "false");
    a->content_type = "application/json";
    return rc;
}

static void read_on_work(uv_work_t *work)
{
    struct api_read *a = work->data;
    struct kcp_history_repo *repo = NULL;
    int rc = kcp_history_repo_open(&repo, history_repo_dir(a->h));
    if (rc != 0) {
        a->err = KCP_EIO;
        a->msg = kcp_strdup("the history repository cannot be opened");
        return;
    }
    switch (a->op) {
    case API_LOG:
    case API_CONFLICTS:
        rc = list(a, repo);
        break;
    case API_OBJECT:
        rc = kcp_history_show(&a->body, repo, a->object, a->at);
        a->content_type = "application/yaml";
        break;
    case API_DIFF:
        rc = kcp_history_diff(&a->body, repo, a->object, a->from, a->to);
        a->content_type = "text/plain; charset=utf-8";
        break;
    }
    if (rc != 0) {
        a->err = rc;
        a->msg = kcp_strdup(kcp_history_repo_error(repo));
    } else if (a->body.len > API_MAX_BYTES) {
        a->err = KCP_ETOOLARGE;
        a->msg = kcp_strdup("the answer is too large; narrow the request");
    }
    kcp_history_repo_free(repo);
}

/* ---- the loop side ---------------------------------------------------------------------- */

static void read_free(struct api_read *a)
{
    kcp_buf_free(&a->body);
    free(a->msg);
    free(a);
}

static void answer(struct api_read *a)
{
    if (a->err)
        kcp_http_respond_status(a->res, a->err,
                                a->msg && *a->msg ? a->msg : kcp_error_message(a->err));
    else
        kcp_http_respond(a->res, 200, a->content_type, a->body.data, a->body.len);
}

static void read_on_done(uv_work_t *work, int status)
{
    struct api_read *a = work->data;
    struct kcp_history *h = a->h;
    if (status != 0 && !a->err)
        a->err = KCP_EUNAVAILABLE;
    answer(a);
    read_free(a);
    history_read_end(h);
}

static void read_start(struct history_read *rd)
{
    struct api_read *a = (struct api_read *)rd;
    a->work.data = a;
    if (uv_queue_work(history_uv(a->h), &a->work, read_on_work, read_on_done) != 0)
        read_on_done(&a->work, UV_ECANCELED);
}

static void read_cancel(struct history_read *rd)
{
    struct api_read *a = (struct api_read *)rd;
    kcp_http_respond_status(a->res, KCP_EUNAVAILABLE, "the server is shutting down");
    read_free(a);
}

static int parse_limit(const char *s, size_t *out)
{
    char *end = NULL;
    if (!s) {
        *out = API_LIMIT_DEFAULT;
        return 0;
    }
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || *s == '-' || *s == '+' || v < 1 || v > API_LIMIT_MAX)
        return KCP_EINVAL;
    *out = v;
    return 0;
}

static void api_on_request(struct kcp_http_request *req, struct kcp_http_response *res, void *data)
{
    static const char *const ops[] = {"log", "object", "diff", "conflicts"};
    struct kcp_history *h = data;
    struct kcp_buf path = KCP_BUF_INIT;
    const char *name = req->path + strlen(API_PREFIX);
    size_t limit = 0;
    int op = -1;
    /* As the API: only clients with a certificate from the cluster CA. */
    if (!req->identity || !req->identity->user) {
        kcp_http_respond_status(res, KCP_EUNAUTHORIZED, "Unauthorized");
        return;
    }
    for (int i = 0; i < 4; i++)
        if (strcmp(name, ops[i]) == 0)
            op = i;
    if (op < 0) {
        kcp_http_respond_status(res, KCP_ENOTFOUND,
                                "the server could not find the requested resource");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        kcp_http_respond_status(res, KCP_EMETHOD,
                                "the server does not allow this method on the requested resource");
        return;
    }
    const char *object = kcp_http_query(req, "object"), *at = kcp_http_query(req, "at");
    if (parse_limit(kcp_http_query(req, "limit"), &limit) != 0) {
        kcp_http_respond_status(res, KCP_EINVAL, "limit must be an integer from 1 to 1000");
        return;
    }
    if ((op == API_OBJECT || op == API_DIFF) && (!object || !*object)) {
        kcp_http_respond_status(res, KCP_EINVAL, "object is required: " OBJECT_USAGE);
        return;
    }
    if (object && *object && kcp_history_object_path(&path, object) != 0) {
        kcp_buf_free(&path);
        kcp_http_respond_status(res, KCP_EINVAL, "object must be " OBJECT_USAGE);
        return;
    }
    kcp_buf_free(&path);
    if (op == API_OBJECT && (!at || !*at)) {
        kcp_http_respond_status(res, KCP_EINVAL, "at is required: a commit id or revision");
        return;
    }
    struct api_read *a = kcp_calloc(1, sizeof(*a));
    a->h = h;
    a->res = res;
    a->op = (enum api_op)op;
    a->object = object && *object ? object : NULL;
    a->at = at;
    a->from = kcp_http_query(req, "from");
    a->to = kcp_http_query(req, "to");
    if (a->from && !*a->from)
        a->from = NULL;
    if (a->to && !*a->to)
        a->to = NULL;
    a->limit = limit;
    a->rd.start = read_start;
    a->rd.cancel = read_cancel;
    history_read_begin(h, &a->rd);
}

int kcp_history_routes(struct kcp_history *h, struct kcp_http_server *srv)
{
    kcp_http_route(srv, API_PREFIX, true, api_on_request, h);
    return 0;
}
