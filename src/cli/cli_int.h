/* Internal to the cli module: the subcommands. */
#ifndef KCP_CLI_INT_H
#define KCP_CLI_INT_H

#include <kcp/cli.h>

#include <stddef.h>

extern const struct kcp_command cli_server_command;
extern const struct kcp_command cli_version_command;
extern const struct kcp_command cli_history_command;

struct kcp_buf;
/*
 * One blocking HTTPS request to the API server of data_dir (server URL from DIR/kubeconfig,
 * admin client certificate from DIR/pki). body may be NULL. The response body is appended to
 * out_body (caller-owned). Returns 0 with *out_status set, or a negative KCP_E* code after
 * printing the reason on stderr.
 */
int cli_https_request(const char *data_dir, const char *method, const char *path,
                      const char *body, size_t body_len, int *out_status,
                      struct kcp_buf *out_body);

/* Rejects positional arguments a command does not take (exit code 2). */
int cli_no_args(const char *command, int argc, char **argv);

#endif
