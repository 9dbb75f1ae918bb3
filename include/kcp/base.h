/* kcp base: error codes, allocation, growable buffers and logging shared by every module. */
#ifndef KCP_BASE_H
#define KCP_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Errors. Functions return 0 or a negative KCP_E* code. Each row: name, value, message,
 * HTTP code, Kubernetes Status reason (API conventions, "Response Status Kind").
 */
#define KCP_ERRORS(X)                                                                              \
    X(KCP_ENOMEM, -1, "out of memory", 500, "InternalError")                                     \
    X(KCP_EINVAL, -2, "invalid argument", 400, "BadRequest")                                     \
    X(KCP_EIO, -3, "input/output error", 500, "InternalError")                                   \
    X(KCP_ENOTFOUND, -4, "not found", 404, "NotFound")                                           \
    X(KCP_EEXIST, -5, "already exists", 409, "AlreadyExists")                                    \
    X(KCP_ECONFLICT, -6, "conflict", 409, "Conflict")                                            \
    X(KCP_EINVALID, -7, "invalid", 422, "Invalid")                                               \
    X(KCP_EBADREQUEST, -8, "bad request", 400, "BadRequest")                                     \
    X(KCP_ETOOLARGE, -9, "request entity too large", 413, "RequestEntityTooLarge")               \
    X(KCP_ETOOMANY, -10, "too many requests", 429, "TooManyRequests")                            \
    X(KCP_ETIMEOUT, -11, "timeout", 504, "Timeout")                                              \
    X(KCP_EUNAVAILABLE, -12, "service unavailable", 503, "ServiceUnavailable")                   \
    X(KCP_EMETHOD, -13, "method not supported", 405, "MethodNotAllowed")                         \
    X(KCP_EMEDIATYPE, -14, "unsupported media type", 415, "UnsupportedMediaType")                \
    X(KCP_EGONE, -15, "resource expired", 410, "Expired")                                        \
    X(KCP_EFORBIDDEN, -16, "forbidden", 403, "Forbidden")                                        \
    X(KCP_EUNAUTHORIZED, -17, "unauthorized", 401, "Unauthorized")                               \
    X(KCP_ECRYPTO, -18, "cryptographic operation failed", 500, "InternalError")                  \
    X(KCP_ECLOSED, -19, "closed", 503, "ServiceUnavailable")                                     \
    X(KCP_EINTERNAL, -20, "internal error", 500, "InternalError")                                \
    X(KCP_ENOTACCEPTABLE, -21, "not acceptable", 406, "NotAcceptable")

enum kcp_error {
#define KCP_ERROR_ENUM(name, value, msg, http, reason) name = value,
    KCP_ERRORS(KCP_ERROR_ENUM)
#undef KCP_ERROR_ENUM
};

/* Message, HTTP status code and Status reason of an error code; code 0 gives "ok", 200, "". */
const char *kcp_error_message(int code);
int kcp_error_http(int code);
const char *kcp_error_reason(int code);

/*
 * Allocation. Out of memory is not recoverable in a daemon that must not corrupt state half-way:
 * these abort with a message. Input never drives allocation past an explicit limit.
 */
void *kcp_malloc(size_t size);
void *kcp_calloc(size_t count, size_t size);
void *kcp_realloc(void *ptr, size_t size);
char *kcp_strdup(const char *s);
char *kcp_strndup(const char *s, size_t n);
/* Formats into a new string the caller frees. */
char *kcp_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated after len. Owned by whoever embeds it. */
struct kcp_buf {
    char *data;
    size_t len;
    size_t cap;
};
#define KCP_BUF_INIT {NULL, 0, 0}
void kcp_buf_reserve(struct kcp_buf *b, size_t extra);
void kcp_buf_append(struct kcp_buf *b, const void *data, size_t len);
void kcp_buf_puts(struct kcp_buf *b, const char *s);
void kcp_buf_printf(struct kcp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kcp_buf_vprintf(struct kcp_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal, quotes included. */
void kcp_buf_json_string(struct kcp_buf *b, const char *s);
void kcp_buf_reset(struct kcp_buf *b);
/* Gives up the data (caller frees) and leaves the buffer empty. */
char *kcp_buf_detach(struct kcp_buf *b);
void kcp_buf_free(struct kcp_buf *b);

/*
 * Logging: one line per event on stderr, klog's shape so journald and SREs read it as they read
 * Kubernetes components: "I1125 19:26:17.123456 12345 component] message".
 * Levels: error, warning, info (verbosity 0), and verbose info at -v N.
 */
enum kcp_log_level { KCP_LOG_ERROR, KCP_LOG_WARN, KCP_LOG_INFO };
void kcp_log_set_verbosity(int v);
int kcp_log_verbosity(void);
void kcp_log(enum kcp_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define KCP_LOG_V(v, component, ...)                                                               \
    do {                                                                                           \
        if (kcp_log_verbosity() >= (v))                                                            \
            kcp_log(KCP_LOG_INFO, component, __VA_ARGS__);                                         \
    } while (0)

/* Parses a Go-style duration ("6s", "1m30s", "250ms", "2h") into milliseconds. */
int kcp_duration_parse(const char *s, int64_t *out_ms);

/* Files: reads a whole file (at most max bytes) into a new NUL-terminated buffer. */
int kcp_file_read(const char *path, size_t max, char **out, size_t *out_len);
/* Writes atomically (temp file, fsync, rename, fsync of the directory) with the given mode. */
int kcp_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* mkdir -p with mode for every created directory. */
int kcp_mkdir_p(const char *path, unsigned mode);

#endif
