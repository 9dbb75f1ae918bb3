/* kcp cli: subcommands (server, version, ...) and kubectl-style flag parsing. */
#ifndef KCP_CLI_H
#define KCP_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 the command failed, 2 a usage error (unknown flag, bad value). */
enum { KCP_EXIT_OK = 0, KCP_EXIT_FAIL = 1, KCP_EXIT_USAGE = 2 };

enum kcp_flag_type { KCP_FLAG_BOOL, KCP_FLAG_STRING, KCP_FLAG_INT, KCP_FLAG_DURATION };

/*
 * One flag of a command. Parsed values are written through the pointer matching type: bool *,
 * const char ** (pointing into argv), int *, int64_t * (milliseconds).
 */
struct kcp_flag {
    const char *name;      /* long name without dashes */
    char shorthand;        /* single-letter alias or 0 */
    enum kcp_flag_type type;
    void *value;
    const char *def;       /* default shown in help, or NULL */
    const char *usage;
};

struct kcp_command {
    const char *name;
    const char *short_help; /* one line, for the command list */
    const char *long_help;  /* paragraph shown by --help */
    const char *examples;   /* indented lines, or NULL */
    const struct kcp_flag *flags;
    /* Runs with argv after the flags (positional arguments). */
    int (*run)(int argc, char **argv);
};

/*
 * Parses argv (after the command name) against cmd's flags in the way kubectl does:
 * --name value, --name=value, -n value, -nvalue, booleans as --name or --name=false, "--" ends
 * flags. Positional arguments are moved to the front of argv and counted in *out_argc.
 * Unknown flags and bad values print an error to err and return KCP_EXIT_USAGE; --help/-h
 * prints help to out and returns -1 (the caller exits 0).
 */
int kcp_cli_parse(const struct kcp_command *cmd, int argc, char **argv, int *out_argc,
                  FILE *out, FILE *err);
void kcp_cli_print_help(const struct kcp_command *cmd, FILE *out);

/* The program's entry: dispatches to a subcommand. */
int kcp_cli_main(int argc, char **argv);

#endif
