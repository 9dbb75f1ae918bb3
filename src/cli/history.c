/* kcp history: read the cluster's git history (log, show, diff, conflicts, size, path), restore,
 * and squash it offline. The reading lives in src/history (read.c), shared with the API. */
#include "cli_int.h"

#include <kcp/base.h>
#include <kcp/codec.h>
#include <kcp/history.h>

#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char *data_dir = "/var/lib/kcp";
static const char *at;
static const char *from;
static const char *to;
static int keep_commits;
static int keep_days;

static const struct kcp_flag flags[] = {
    {"data-dir", 'd', KCP_FLAG_STRING, &data_dir, "/var/lib/kcp",
     "Directory holding the cluster's state; its history is DIR/history.git."},
    {"at", 0, KCP_FLAG_STRING, &at, "", "show, restore: the commit (full or abbreviated id)."},
    {"from", 0, KCP_FLAG_STRING, &from, "the first commit touching the object",
     "diff: the older commit."},
    {"to", 0, KCP_FLAG_STRING, &to, "the last commit touching the object",
     "diff: the newer commit."},
    {"keep-commits", 0, KCP_FLAG_INT, &keep_commits, "0",
     "squash: keep the newest N commits of the main line (0: no limit)."},
    {"keep-days", 0, KCP_FLAG_INT, &keep_days, "0",
     "squash: keep the commits dated within D days of the newest one (0: no limit)."},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* Read-only: no lock is taken, so this works while the server records. */
static int open_repo(struct kcp_history_repo **out)
{
    char *path = kcp_history_repo_path(data_dir);
    int rc = kcp_history_repo_open(out, path);
    if (rc != 0)
        fprintf(stderr, "Error: no history at %s\n", path);
    free(path);
    return rc == 0 ? 0 : KCP_EXIT_FAIL;
}

/* A failed read: the reason on stderr, usage errors (a bad object name) as exit code 2. */
static int read_failed(struct kcp_history_repo *repo, int rc)
{
    fprintf(stderr, "Error: %s\n", kcp_history_repo_error(repo));
    return rc == KCP_EINVAL ? KCP_EXIT_USAGE : KCP_EXIT_FAIL;
}

static void print_time(FILE *out, int64_t t)
{
    char buf[32];
    kcp_codec_format_time(buf, t);
    fputs(buf, out);
}

/* Columns: id, verb, object, user, date[, (+N more)]. */
static int log_print(void *ctx, const struct kcp_history_commit *c)
{
    const char *object = ctx;
    printf("%.12s %-8s %s %s ", c->id, c->verb, *c->object ? c->object : "-", c->user);
    print_time(stdout, c->time);
    if (c->more && !object)
        printf(" (+%u more)", c->more);
    printf("\n");
    return 0;
}

static int cmd_log(struct kcp_history_repo *repo, const char *object)
{
    int rc = kcp_history_log(repo, object, 0, log_print, (void *)object, NULL);
    return rc == 0 ? KCP_EXIT_OK : read_failed(repo, rc);
}

static int cmd_show(struct kcp_history_repo *repo, const char *object, struct kcp_buf *out)
{
    if (!at || !*at) {
        fprintf(stderr, "Error: --at COMMIT is required\n");
        return KCP_EXIT_USAGE;
    }
    int rc = kcp_history_show(out, repo, object, at);
    return rc == 0 ? KCP_EXIT_OK : read_failed(repo, rc);
}

static int cmd_diff(struct kcp_history_repo *repo, const char *object)
{
    struct kcp_buf out = KCP_BUF_INIT;
    int rc = kcp_history_diff(&out, repo, object, from, to);
    fwrite(out.data, 1, out.len, stdout);
    kcp_buf_free(&out);
    return rc == 0 ? KCP_EXIT_OK : read_failed(repo, rc);
}

/* ---- conflicts -------------------------------------------------------------------------- */

static int conflict_print(void *ctx, const struct kcp_history_conflict *c)
{
    struct kcp_history_repo *repo = ctx;
    struct kcp_buf diff = KCP_BUF_INIT;
    printf("%s by %s at ", c->object, c->user);
    print_time(stdout, c->time);
    printf(" (resourceVersion %llu rejected; it had read %llu)\n",
           (unsigned long long)c->raft_index, (unsigned long long)c->read_revision);
    printf("  rejected version: %.12s   version that won: %.12s\n", c->id,
           *c->current ? c->current : "(none)");
    /* - the version that won, + the rejected one */
    if (*c->current && kcp_history_diff(&diff, repo, c->object, c->current, c->id) == 0)
        fwrite(diff.data, 1, diff.len, stdout);
    printf("\n");
    kcp_buf_free(&diff);
    return 0;
}

static int cmd_conflicts(struct kcp_history_repo *repo)
{
    int rc = kcp_history_conflicts(repo, 0, conflict_print, repo, NULL);
    return rc == 0 ? KCP_EXIT_OK : read_failed(repo, rc);
}

/* ---- size and squash -------------------------------------------------------------------- */

static void print_bytes(const char *key, uint64_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        printf("%s: %llu B\n", key, (unsigned long long)n);
    else
        printf("%s: %.1f %s (%llu bytes)\n", key, v, units[u], (unsigned long long)n);
}

static int cmd_size(void)
{
    struct kcp_history_size s;
    char *path = kcp_history_repo_path(data_dir);
    int rc = kcp_history_size(&s, path);
    if (rc != 0) {
        fprintf(stderr, "Error: %s at %s\n",
                rc == KCP_ENOTFOUND ? "no history" : "cannot read the history", path);
        free(path);
        return KCP_EXIT_FAIL;
    }
    free(path);
    printf("commits: %llu\n", (unsigned long long)s.commits);
    if (s.commits) {
        printf("first raft index: %llu\n", (unsigned long long)s.first_index);
        printf("last raft index: %llu\n", (unsigned long long)s.last_index);
        printf("oldest commit: ");
        print_time(stdout, s.oldest_time);
        printf("\nnewest commit: ");
        print_time(stdout, s.newest_time);
        printf("\n");
    }
    printf("objects in HEAD: %llu\n", (unsigned long long)s.head_objects);
    printf("conflict branches: %llu\n", (unsigned long long)s.conflicts);
    printf("packs: %llu\n", (unsigned long long)s.packs);
    print_bytes("pack bytes", s.pack_bytes);
    printf("loose objects: %llu\n", (unsigned long long)s.loose_objects);
    print_bytes("loose bytes", s.loose_bytes);
    print_bytes("total on disk", s.disk_bytes);
    return KCP_EXIT_OK;
}

/* The server squashes by itself (--history-keep-*): offline, the data directory must be free. */
static int lock_data_dir(int *out_fd)
{
    char *path = kcp_sprintf("%s/kcp.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0) {
        fprintf(stderr, "Error: cannot open %s/kcp.lock\n", data_dir);
        return KCP_EXIT_FAIL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr,
                "Error: %s is in use by a running kcp server; stop it first, or let the server "
                "squash (--history-keep-commits, --history-keep-days)\n",
                data_dir);
        close(fd);
        return KCP_EXIT_FAIL;
    }
    *out_fd = fd;
    return 0;
}

static int cmd_squash(void)
{
    struct kcp_history_retention keep = {0};
    struct kcp_history_squash_result res;
    int fd = -1, rc;
    if (keep_commits < 0 || keep_days < 0 || (!keep_commits && !keep_days)) {
        fprintf(stderr, "Error: want --keep-commits N and/or --keep-days D (positive)\n");
        return KCP_EXIT_USAGE;
    }
    keep.keep_commits = (uint64_t)keep_commits;
    keep.keep_days = (uint32_t)keep_days;
    if ((rc = lock_data_dir(&fd)) != 0)
        return rc;
    char *path = kcp_history_repo_path(data_dir);
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "Error: no history at %s\n", path);
        rc = KCP_EXIT_FAIL;
    } else if (kcp_history_squash(&res, path, &keep) != 0) {
        fprintf(stderr, "Error: squashing %s failed (see the log above)\n", path);
        rc = KCP_EXIT_FAIL;
    } else if (!res.squashed) {
        printf("nothing to squash: %llu commits, all kept\n", (unsigned long long)res.kept);
    } else {
        printf("squashed %llu commits (Raft-Index %llu..%llu) into a root; kept %llu commits; "
               "dropped %llu conflict branches; objects %llu -> %llu bytes\n",
               (unsigned long long)res.squashed, (unsigned long long)res.first_index,
               (unsigned long long)res.last_index, (unsigned long long)res.kept,
               (unsigned long long)res.conflicts_dropped, (unsigned long long)res.bytes_before,
               (unsigned long long)res.bytes_after);
    }
    free(path);
    close(fd);
    return rc;
}

/* ---- restore ---------------------------------------------------------------------------- */

/* Strips what the server decides (or what would make the write conditional or refused). */
static void strip_server_fields(json_t *obj)
{
    static const char *const drop[] = {
        "uid",        "resourceVersion", "creationTimestamp", "managedFields",
        "generation", "selfLink",        "deletionTimestamp", "deletionGracePeriodSeconds",
        NULL};
    json_t *meta = json_object_get(obj, "metadata");
    for (int i = 0; drop[i]; i++)
        json_object_del(meta, drop[i]);
}

static int cmd_restore(struct kcp_history_repo *repo, const char *object)
{
    struct kcp_buf yaml = KCP_BUF_INIT, url = KCP_BUF_INIT, body = KCP_BUF_INIT,
                   resp = KCP_BUF_INIT;
    json_t *obj = NULL;
    int status = 0, rc = cmd_show(repo, object, &yaml);
    if (rc != 0)
        goto done;
    rc = KCP_EXIT_FAIL;
    if (kcp_history_yaml_parse(&obj, yaml.data, yaml.len) != 0 || !json_is_object(obj)) {
        fprintf(stderr, "Error: %s at %s does not read back as an object\n", object, at);
        goto done;
    }
    strip_server_fields(obj);
    const char *api_version = json_string_value(json_object_get(obj, "apiVersion"));
    json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!api_version || !name) {
        fprintf(stderr, "Error: %s at %s has no apiVersion or name\n", object, at);
        goto done;
    }
    const char *slash = strchr(object, '/'), *dot = memchr(object, '.', (size_t)(slash - object));
    int res_len = (int)((dot ? dot : slash) - object);
    kcp_buf_printf(&url, "%s/%s", strchr(api_version, '/') ? "/apis" : "/api", api_version);
    if (ns && *ns)
        kcp_buf_printf(&url, "/namespaces/%s", ns);
    kcp_buf_printf(&url, "/%.*s", res_len, object);
    size_t collection_len = url.len;
    kcp_buf_printf(&url, "/%s", name);
    /* Replace when it exists (a revert), create when it does not (an undelete). */
    if (cli_https_request(data_dir, "GET", url.data, NULL, 0, &status, &resp) != 0)
        goto done;
    bool exists = status == 200;
    if (exists) {
        json_t *cur = json_loadb(resp.data, resp.len, 0, NULL);
        json_t *rv = json_object_get(json_object_get(cur, "metadata"), "resourceVersion");
        if (json_is_string(rv))
            json_object_set(meta, "resourceVersion", rv);
        json_decref(cur);
    } else if (status != 404) {
        fprintf(stderr, "Error: GET %s: HTTP %d %.*s\n", url.data, status, (int)resp.len,
                resp.data ? resp.data : "");
        goto done;
    }
    kcp_codec_json_write(&body, obj);
    kcp_buf_reset(&resp);
    if (!exists)
        url.data[collection_len] = '\0';
    if (cli_https_request(data_dir, exists ? "PUT" : "POST", url.data, body.data, body.len, &status,
                          &resp) != 0)
        goto done;
    if (status != 200 && status != 201) {
        fprintf(stderr, "Error: %s %s: HTTP %d %.*s\n", exists ? "PUT" : "POST", url.data, status,
                (int)resp.len, resp.data ? resp.data : "");
        goto done;
    }
    json_t *saved = json_loadb(resp.data, resp.len, 0, NULL);
    const char *rv =
        json_string_value(json_object_get(json_object_get(saved, "metadata"), "resourceVersion"));
    printf("%s %s as of %s (resourceVersion %s)\n", object, exists ? "reverted" : "restored", at,
           rv ? rv : "?");
    json_decref(saved);
    rc = KCP_EXIT_OK;
done:
    json_decref(obj);
    kcp_buf_free(&yaml);
    kcp_buf_free(&url);
    kcp_buf_free(&body);
    kcp_buf_free(&resp);
    return rc;
}

/* ---- dispatch --------------------------------------------------------------------------- */

static int cmd_path(void)
{
    char *path = kcp_history_repo_path(data_dir);
    char real[PATH_MAX];
    printf("%s\n", realpath(path, real) ? real : path);
    free(path);
    return KCP_EXIT_OK;
}

static int history_run(int argc, char **argv)
{
    struct kcp_history_repo *repo = NULL;
    struct kcp_buf out = KCP_BUF_INIT;
    const char *sub = argc > 0 ? argv[0] : NULL;
    const char *object = argc > 1 ? argv[1] : NULL;
    int rc = KCP_EXIT_USAGE;
    bool needs_object = sub && (strcmp(sub, "show") == 0 || strcmp(sub, "diff") == 0 ||
                                strcmp(sub, "restore") == 0);
    bool no_args =
        sub && (strcmp(sub, "path") == 0 || strcmp(sub, "size") == 0 || strcmp(sub, "squash") == 0);
    if (!sub) {
        fprintf(stderr, "Error: want a subcommand: log, show, diff, restore, conflicts, size, "
                        "squash, path\n");
        return KCP_EXIT_USAGE;
    }
    if (no_args && argc > 1)
        return cli_no_args("history", argc - 1, argv + 1);
    /* The repository may belong to the server's user. */
    git_libgit2_init();
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    if (strcmp(sub, "path") == 0)
        rc = cmd_path();
    else if (strcmp(sub, "size") == 0)
        rc = cmd_size();
    else if (strcmp(sub, "squash") == 0)
        rc = cmd_squash();
    else if ((needs_object && argc != 2) || argc > 2)
        fprintf(stderr, "Error: kcp history %s takes %s\n", sub,
                needs_object ? "one RESOURCE/NAMESPACE/NAME" : "at most one argument");
    else if (strcmp(sub, "log") && strcmp(sub, "conflicts") && !needs_object)
        fprintf(stderr, "Error: unknown subcommand \"%s\" for \"kcp history\"\n", sub);
    else if ((rc = open_repo(&repo)) != 0)
        ;
    else if (strcmp(sub, "log") == 0)
        rc = cmd_log(repo, object);
    else if (strcmp(sub, "conflicts") == 0)
        rc = cmd_conflicts(repo);
    else if (strcmp(sub, "diff") == 0)
        rc = cmd_diff(repo, object);
    else if (strcmp(sub, "restore") == 0)
        rc = cmd_restore(repo, object);
    else if ((rc = cmd_show(repo, object, &out)) == 0)
        fwrite(out.data, 1, out.len, stdout);
    kcp_buf_free(&out);
    kcp_history_repo_free(repo);
    git_libgit2_shutdown();
    return rc;
}

const struct kcp_command cli_history_command = {
    .name = "history",
    .short_help = "Browse, diff and restore the cluster's history (a git repository)",
    .long_help =
        "Every change the cluster applies is a commit in DIR/history.git, a bare git repository\n"
        "that plain git can read too. Objects are named RESOURCE[.GROUP]/NAMESPACE/NAME, or\n"
        "RESOURCE[.GROUP]/NAME when cluster-scoped (configmaps/default/web, namespaces/shop,\n"
        "deployments.apps/default/web).\n\n"
        "Subcommands:\n"
        "  log [OBJECT]             one line per commit: id, verb, object, user, date\n"
        "  show OBJECT --at COMMIT  the object's YAML as of a commit\n"
        "  diff OBJECT [--from C] [--to C]  unified diff (default: first vs last commit)\n"
        "  restore OBJECT --at COMMIT  write that version back through the API\n"
        "  conflicts                writes rejected for a stale resourceVersion, newest first\n"
        "  size                     commits, Raft-Index range, objects and bytes on disk\n"
        "  squash --keep-commits N and/or --keep-days D\n"
        "                           rewrite the main line: the oldest kept commit becomes a root\n"
        "                           holding the whole state; then repack. Server stopped only\n"
        "                           (a running server does it with --history-keep-*).\n"
        "  path                     the repository's path",
    .examples = "  kcp history log configmaps/default/web --data-dir /var/lib/kcp\n"
                "  kcp history restore configmaps/default/web --at 1a2b3c4d --data-dir ./data\n"
                "  kcp history squash --keep-commits 10000 --data-dir ./data\n"
                "  git --git-dir \"$(kcp history path)\" log --stat",
    .flags = flags,
    .run = history_run,
};
