/* The error table: message, HTTP code and Status reason of each KCP_E* code. */
#include <kcp/base.h>

#include <stddef.h>

struct error_row {
    int code;
    const char *message;
    int http;
    const char *reason;
};

static const struct error_row rows[] = {
#define KCP_ERROR_ROW(name, value, msg, http, reason) {value, msg, http, reason},
    KCP_ERRORS(KCP_ERROR_ROW)
#undef KCP_ERROR_ROW
};

static const struct error_row *find(int code)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].code == code)
            return &rows[i];
    return NULL;
}

const char *kcp_error_message(int code)
{
    const struct error_row *r = find(code);
    return code == 0 ? "ok" : r ? r->message : "unknown error";
}

int kcp_error_http(int code)
{
    const struct error_row *r = find(code);
    return code == 0 ? 200 : r ? r->http : 500;
}

const char *kcp_error_reason(int code)
{
    const struct error_row *r = find(code);
    return code == 0 ? "" : r ? r->reason : "InternalError";
}
