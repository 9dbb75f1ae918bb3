/* kubectl-style flag parsing and help text for every subcommand. */
#include <kcp/base.h>
#include <kcp/cli.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct kcp_flag *find_long(const struct kcp_command *cmd, const char *name, size_t len)
{
    for (const struct kcp_flag *f = cmd->flags; f && f->name; f++)
        if (strlen(f->name) == len && strncmp(f->name, name, len) == 0)
            return f;
    return NULL;
}

static const struct kcp_flag *find_short(const struct kcp_command *cmd, char c)
{
    for (const struct kcp_flag *f = cmd->flags; f && f->name; f++)
        if (f->shorthand == c)
            return f;
    return NULL;
}

static int set_value(const struct kcp_command *cmd, const struct kcp_flag *f, const char *v,
                     FILE *err)
{
    switch (f->type) {
    case KCP_FLAG_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)f->value = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)f->value = false;
        else
            goto bad;
        return 0;
    case KCP_FLAG_STRING:
        *(const char **)f->value = v;
        return 0;
    case KCP_FLAG_INT: {
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || !*v || *end || n < INT_MIN || n > INT_MAX)
            goto bad;
        *(int *)f->value = (int)n;
        return 0;
    }
    case KCP_FLAG_DURATION:
        if (kcp_duration_parse(v, (int64_t *)f->value) != 0)
            goto bad;
        return 0;
    }
bad:
    fprintf(err, "Error: invalid argument \"%s\" for \"--%s\" flag\nSee 'kcp %s --help' for usage.\n",
            v, f->name, cmd->name);
    return KCP_EXIT_USAGE;
}

static int unknown(const struct kcp_command *cmd, const char *arg, FILE *err)
{
    if (arg[1] == '-')
        fprintf(err, "Error: unknown flag: %s\n", arg);
    else
        fprintf(err, "Error: unknown shorthand flag: '%c' in %s\n", arg[1], arg);
    fprintf(err, "See 'kcp %s --help' for usage.\n", cmd->name);
    return KCP_EXIT_USAGE;
}

static int needs_value(const struct kcp_command *cmd, const struct kcp_flag *f, FILE *err)
{
    fprintf(err, "Error: flag needs an argument: --%s\nSee 'kcp %s --help' for usage.\n", f->name,
            cmd->name);
    return KCP_EXIT_USAGE;
}

int kcp_cli_parse(const struct kcp_command *cmd, int argc, char **argv, int *out_argc,
                  FILE *out, FILE *err)
{
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (++i < argc)
                argv[npos++] = argv[i];
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            kcp_cli_print_help(cmd, out);
            return -1;
        }
        if (a[0] != '-' || a[1] == '\0') {
            argv[npos++] = a;
            continue;
        }
        const struct kcp_flag *f;
        const char *inline_value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            f = find_long(cmd, name, eq ? (size_t)(eq - name) : strlen(name));
            inline_value = eq ? eq + 1 : NULL;
        } else {
            f = find_short(cmd, a[1]);
            if (a[2] != '\0')
                inline_value = a[2] == '=' ? a + 3 : a + 2;
        }
        if (!f)
            return unknown(cmd, a, err);
        const char *v = inline_value;
        if (!v && f->type == KCP_FLAG_BOOL)
            v = "true";
        if (!v) {
            if (i + 1 >= argc)
                return needs_value(cmd, f, err);
            v = argv[++i];
        }
        int rc = set_value(cmd, f, v, err);
        if (rc)
            return rc;
    }
    *out_argc = npos;
    return 0;
}

void kcp_cli_print_help(const struct kcp_command *cmd, FILE *out)
{
    fprintf(out, "%s\n\n", cmd->long_help ? cmd->long_help : cmd->short_help);
    if (cmd->examples)
        fprintf(out, "Examples:\n%s\n\n", cmd->examples);
    if (cmd->flags && cmd->flags->name) {
        fprintf(out, "Options:\n");
        for (const struct kcp_flag *f = cmd->flags; f->name; f++) {
            char lhs[64];
            if (f->shorthand)
                snprintf(lhs, sizeof(lhs), "-%c, --%s", f->shorthand, f->name);
            else
                snprintf(lhs, sizeof(lhs), "--%s", f->name);
            fprintf(out, "    %s=%s:\n\t%s\n\n", lhs, f->def ? f->def : "''", f->usage);
        }
    }
    fprintf(out, "Usage:\n  kcp %s [options]\n", cmd->name);
}
