/* Internal to the cli module: the subcommands. */
#ifndef KCP_CLI_INT_H
#define KCP_CLI_INT_H

#include <kcp/cli.h>

extern const struct kcp_command cli_server_command;
extern const struct kcp_command cli_version_command;

/* Rejects positional arguments a command does not take (exit code 2). */
int cli_no_args(const char *command, int argc, char **argv);

#endif
