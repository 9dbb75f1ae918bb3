/* The kcp command: dispatch to subcommands, top-level help. */
#include "cli_int.h"

#include <kcp/base.h>

#include <string.h>

static const struct kcp_command *const commands[] = {
    &cli_server_command, &cli_token_command, &cli_members_command, &cli_history_command,
    &cli_version_command};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_root_help(FILE *out)
{
    fprintf(out, "kcp runs a Kubernetes control plane (API server, scheduler, controllers and\n"
                 "storage) as one small process, for edge machines.\n\n");
    fprintf(out, "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-12s%s\n", commands[i]->name, commands[i]->short_help);
    fprintf(out, "\nUsage:\n  kcp [command] [options]\n\n"
                 "Use \"kcp <command> --help\" for more information about a given command.\n");
}

int kcp_cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < NCOMMANDS; i++)
                if (strcmp(argv[2], commands[i]->name) == 0) {
                    kcp_cli_print_help(commands[i], stdout);
                    return KCP_EXIT_OK;
                }
        }
        print_root_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? KCP_EXIT_USAGE : KCP_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cli_version_command.run(0, argv + 2);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct kcp_command *cmd = commands[i];
        if (strcmp(argv[1], cmd->name) != 0)
            continue;
        int nargs = 0;
        int rc = kcp_cli_parse(cmd, argc - 2, argv + 2, &nargs, stdout, stderr);
        if (rc < 0)
            return KCP_EXIT_OK;
        if (rc > 0)
            return rc;
        return cmd->run(nargs, argv + 2);
    }
    if (argv[1][0] == '-')
        fprintf(stderr, "Error: unknown flag: %s\n", argv[1]);
    else
        fprintf(stderr, "Error: unknown command \"%s\" for \"kcp\"\n", argv[1]);
    fprintf(stderr, "Run 'kcp --help' for usage.\n");
    return KCP_EXIT_USAGE;
}
