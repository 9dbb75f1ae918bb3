/* kcp version: kcp's release, the Kubernetes API it serves, and the libraries built in. */
#include "cli_int.h"

#include <kcp/base.h>
#include <kcp/daemon.h>

#include <git2.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <lmdb.h>
#include <mbedtls/version.h>
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char *output = "";

static const struct kcp_flag flags[] = {
    {"output", 'o', KCP_FLAG_STRING, &output, "''", "One of 'json' or '' (human-readable)."},
    {NULL, 0, 0, NULL, NULL, NULL},
};

int cli_no_args(const char *command, int argc, char **argv)
{
    if (argc == 0)
        return 0;
    fprintf(stderr, "Error: unexpected argument \"%s\"\nSee 'kcp %s --help' for usage.\n",
            argv[0], command);
    return KCP_EXIT_USAGE;
}

static int version_run(int argc, char **argv)
{
    int rc = cli_no_args("version", argc, argv);
    if (rc)
        return rc;
    const struct kcp_version_info *v = kcp_version_get();
    if (strcmp(output, "json") == 0) {
        char *json = kcp_version_json();
        printf("%s\n", json);
        free(json);
        return KCP_EXIT_OK;
    }
    if (*output) {
        fprintf(stderr, "Error: --output must be 'json' or ''\n");
        return KCP_EXIT_USAGE;
    }
    int gmaj = 0, gmin = 0, grev = 0;
    git_libgit2_version(&gmaj, &gmin, &grev);
    char mbed[32];
    mbedtls_version_get_string(mbed);
    printf("kcp %s\n", v->git_version);
    printf("Kubernetes API: v%s.%s\n", v->major, v->minor);
    printf("Git commit: %s (%s)\n", v->git_commit, v->git_tree_state);
    printf("Built: %s with %s for %s\n", v->build_date, v->compiler, v->platform);
    printf("Libraries: libuv %s, mbedTLS %s, LMDB %d.%d.%d, libgit2 %d.%d.%d, jansson %s, "
           "protobuf-c %s, libwebsockets %s\n",
           uv_version_string(), mbed, MDB_VERSION_MAJOR, MDB_VERSION_MINOR, MDB_VERSION_PATCH,
           gmaj, gmin, grev, jansson_version_str(), protobuf_c_version(),
           lws_get_library_version());
    return KCP_EXIT_OK;
}

const struct kcp_command cli_version_command = {
    .name = "version",
    .short_help = "Print the version information",
    .long_help = "Print kcp's version, the Kubernetes API version it serves, and the versions of\n"
                 "the libraries compiled into the binary.",
    .flags = flags,
    .run = version_run,
};
