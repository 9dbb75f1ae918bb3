/* Kubernetes Status bodies (API conventions, "Response Status Kind"). */
#include "http_int.h"

void http_status_json(struct kcp_buf *out, int code, const char *reason, const char *message)
{
    kcp_buf_printf(out,
                   "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                   "\"status\":\"%s\",\"message\":",
                   code >= 200 && code < 300 ? "Success" : "Failure");
    kcp_buf_json_string(out, message ? message : "");
    if (reason && reason[0]) {
        kcp_buf_puts(out, ",\"reason\":");
        kcp_buf_json_string(out, reason);
    }
    kcp_buf_printf(out, ",\"code\":%d}", code);
}

void kcp_http_respond_status(struct kcp_http_response *res, int err, const char *message)
{
    struct kcp_buf body = KCP_BUF_INIT;
    int code = kcp_error_http(err);
    http_status_json(&body, code, kcp_error_reason(err),
                     message ? message : kcp_error_message(err));
    kcp_http_respond(res, code, "application/json", body.data, body.len);
    kcp_buf_free(&body);
}
