/* The HTTP server's default limits (docs/LIMITS.md). */
#include "http_int.h"

void kcp_http_limits_default(struct kcp_http_limits *out)
{
    out->max_header_bytes = 1 << 20;       /* Go's http.DefaultMaxHeaderBytes */
    out->max_body_bytes = 3 * 1024 * 1024; /* kube-apiserver's request body limit */
    out->max_connections = 1024;
    out->max_inflight =
        600; /* --max-requests-inflight 400 + --max-mutating-requests-inflight 200 */
    out->max_stream_backlog = 16 << 20;
    out->header_timeout_ms = 10000;
    out->idle_timeout_ms = 120000;
}
