/* Internal to the cli module: the subcommands. */
#ifndef KCP_CLI_INT_H
#define KCP_CLI_INT_H

#include <kcp/cli.h>

#include <stddef.h>
#include <stdint.h>

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

#include <sys/socket.h>

/* Where cli_https_do connects, and with which certificates. */
struct cli_https_target {
    struct sockaddr_storage sa;
    socklen_t sa_len;
    const char *ca_path;   /* NULL: the server is not verified (fetching a CA pinned by hash) */
    const char *cert_path; /* client certificate and key, or NULL for none */
    const char *key_path;
};
/* One blocking HTTPS request to t; as cli_https_request. */
int cli_https_do(const struct cli_https_target *t, const char *method, const char *path,
                 const char *body, size_t body_len, int *out_status, struct kcp_buf *out_body);

extern const struct kcp_command cli_token_command;
extern const struct kcp_command cli_members_command;
/*
 * Joins the cluster at url ("https://HOST:PORT") with token: checks the CA against the token's
 * hash, asks the leader to admit name at address, and writes the CA into DIR/pki. *out_id gets
 * the id the leader gave this server. Prints the reason on stderr on failure.
 */
int cli_join(const char *url, const char *token, const char *data_dir, const char *name,
             const char *address, uint64_t *out_id);

/* Rejects positional arguments a command does not take (exit code 2). */
int cli_no_args(const char *command, int argc, char **argv);

#endif
