/* kcp history: read the cluster's git history (log, show, diff, conflicts, path) and restore. */
#include "cli_int.h"

#include <kcp/base.h>
#include <kcp/codec.h>
#include <kcp/history.h>

#include <git2.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *data_dir = "/var/lib/kcp";
static const char *at;
static const char *from;
static const char *to;

static const struct kcp_flag flags[] = {
    {"data-dir", 'd', KCP_FLAG_STRING, &data_dir, "/var/lib/kcp",
     "Directory holding the cluster's state; its history is DIR/history.git."},
    {"at", 0, KCP_FLAG_STRING, &at, "", "show, restore: the commit (full or abbreviated id)."},
    {"from", 0, KCP_FLAG_STRING, &from, "the first commit touching the object",
     "diff: the older commit."},
    {"to", 0, KCP_FLAG_STRING, &to, "the last commit touching the object",
     "diff: the newer commit."},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static int git_err(const char *what)
{
    const git_error *e = git_error_last();
    fprintf(stderr, "Error: %s: %s\n", what, e && e->message ? e->message : "git error");
    return KCP_EXIT_FAIL;
}

/* Read-only: no lock is taken, so this works while the server records. */
static int open_repo(git_repository **out)
{
    char *path = kcp_history_repo_path(data_dir);
    git_libgit2_init();
    /* The repository may belong to the server's user. */
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    int rc = git_repository_open_bare(out, path);
    if (rc != 0)
        fprintf(stderr, "Error: no history at %s\n", path);
    free(path);
    return rc == 0 ? 0 : KCP_EXIT_FAIL;
}

static int resolve(git_repository *repo, const char *spec, git_commit **out)
{
    git_object *obj = NULL, *peeled = NULL;
    if (git_revparse_single(&obj, repo, spec) != 0 ||
        git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) != 0) {
        git_object_free(obj);
        fprintf(stderr, "Error: unknown commit %s\n", spec);
        return KCP_EXIT_FAIL;
    }
    git_object_free(obj);
    *out = (git_commit *)peeled;
    return 0;
}

/* The blob id of path in commit, or false when the object does not exist there. */
static bool blob_at(git_commit *c, const char *path, git_oid *out)
{
    git_tree *t = NULL;
    git_tree_entry *te = NULL;
    bool found = false;
    if (c && git_commit_tree(&t, c) == 0 && git_tree_entry_bypath(&te, t, path) == 0) {
        git_oid_cpy(out, git_tree_entry_id(te));
        found = true;
    }
    git_tree_entry_free(te);
    git_tree_free(t);
    return found;
}

/* Whether commit changed path relative to its first parent. */
static bool touches(git_commit *c, const char *path)
{
    git_commit *parent = NULL;
    git_oid a, b;
    if (git_commit_parentcount(c) > 0)
        git_commit_parent(&parent, c, 0);
    bool in_c = blob_at(c, path, &a), in_p = blob_at(parent, path, &b);
    git_commit_free(parent);
    return in_c != in_p || (in_c && !git_oid_equal(&a, &b));
}

static void print_time(FILE *out, git_time_t t)
{
    char buf[32];
    kcp_codec_format_time(buf, (int64_t)t);
    fputs(buf, out);
}

/* The subject "verb object by user[ (+N more)]" as columns: id, verb, object, user, date. */
static void print_line(git_commit *c, const char *object)
{
    char hex[GIT_OID_HEXSZ + 1];
    const char *subject = git_commit_summary(c);
    const git_signature *a = git_commit_author(c);
    git_oid_tostr(hex, sizeof(hex), git_commit_id(c));
    const char *sp = strchr(subject, ' ');
    int verb_len = sp ? (int)(sp - subject) : (int)strlen(subject);
    char obj[512] = "";
    if (sp)
        sscanf(sp + 1, "%511s", obj);
    printf("%.12s %-8.*s %s %s ", hex, verb_len, subject, object ? object : obj, a->name);
    print_time(stdout, a->when.time);
    const char *more = strstr(subject, " (+");
    printf("%s\n", more && !object ? more : "");
}

typedef int (*walk_cb)(git_commit *c, void *ctx);

/* Newest first along refs/heads/main's first-parent line. */
static int walk(git_repository *repo, walk_cb cb, void *ctx)
{
    git_revwalk *w = NULL;
    git_oid id;
    int rc = 0;
    if (git_revwalk_new(&w, repo) != 0)
        return git_err("revwalk");
    git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL);
    git_revwalk_simplify_first_parent(w);
    if (git_revwalk_push_ref(w, "refs/heads/main") != 0) {
        git_revwalk_free(w);
        return 0; /* nothing recorded yet */
    }
    while (rc == 0 && git_revwalk_next(&id, w) == 0) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, repo, &id) != 0) {
            rc = git_err("reading a commit");
            break;
        }
        rc = cb(c, ctx);
        git_commit_free(c);
    }
    git_revwalk_free(w);
    return rc < 0 ? 0 : rc; /* a negative return stops the walk early without an error */
}

struct log_ctx {
    const char *path, *object;
    size_t n;
    git_oid first, last; /* oldest and newest commit touching path */
};

static int log_on_commit(git_commit *c, void *ctx)
{
    struct log_ctx *l = ctx;
    if (l->path && !touches(c, l->path))
        return 0;
    if (l->object || !l->path)
        print_line(c, l->object);
    if (l->n++ == 0)
        git_oid_cpy(&l->last, git_commit_id(c));
    git_oid_cpy(&l->first, git_commit_id(c));
    return 0;
}

static int cmd_log(git_repository *repo, const char *object)
{
    struct kcp_buf path = KCP_BUF_INIT;
    struct log_ctx l = {.object = object};
    if (object && kcp_history_object_path(&path, object) != 0) {
        fprintf(stderr, "Error: want RESOURCE[.GROUP]/NAMESPACE/NAME or RESOURCE[.GROUP]/NAME\n");
        return KCP_EXIT_USAGE;
    }
    l.path = object ? path.data : NULL;
    int rc = walk(repo, log_on_commit, &l);
    kcp_buf_free(&path);
    return rc;
}

static int read_blob(git_repository *repo, git_commit *c, const char *path, struct kcp_buf *out)
{
    git_oid id;
    git_blob *b = NULL;
    if (!blob_at(c, path, &id))
        return KCP_ENOTFOUND;
    if (git_blob_lookup(&b, repo, &id) != 0)
        return KCP_EIO;
    kcp_buf_append(out, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
    git_blob_free(b);
    return 0;
}

static int show_at(git_repository *repo, const char *object, const char *commit_spec,
                   struct kcp_buf *out)
{
    struct kcp_buf path = KCP_BUF_INIT;
    git_commit *c = NULL;
    int rc = KCP_EXIT_USAGE;
    if (!commit_spec || !*commit_spec) {
        fprintf(stderr, "Error: --at COMMIT is required\n");
        goto done;
    }
    if (kcp_history_object_path(&path, object) != 0) {
        fprintf(stderr, "Error: want RESOURCE[.GROUP]/NAMESPACE/NAME or RESOURCE[.GROUP]/NAME\n");
        goto done;
    }
    if ((rc = resolve(repo, commit_spec, &c)) != 0)
        goto done;
    if (read_blob(repo, c, path.data, out) != 0) {
        fprintf(stderr, "Error: %s does not exist at %s\n", object, commit_spec);
        rc = KCP_EXIT_FAIL;
    }
done:
    git_commit_free(c);
    kcp_buf_free(&path);
    return rc;
}

static int print_patch(git_repository *repo, git_commit *a, git_commit *b, const char *path)
{
    git_oid ia, ib;
    git_blob *ba = NULL, *bb = NULL;
    git_patch *p = NULL;
    git_buf out = {0};
    int rc = KCP_EXIT_OK;
    if (a && blob_at(a, path, &ia))
        git_blob_lookup(&ba, repo, &ia);
    if (b && blob_at(b, path, &ib))
        git_blob_lookup(&bb, repo, &ib);
    if (git_patch_from_blobs(&p, ba, path, bb, path, NULL) != 0 || git_patch_to_buf(&out, p) != 0)
        rc = git_err("diff");
    else
        fwrite(out.ptr, 1, out.size, stdout);
    git_buf_dispose(&out);
    git_patch_free(p);
    git_blob_free(ba);
    git_blob_free(bb);
    return rc;
}

static int cmd_diff(git_repository *repo, const char *object)
{
    struct kcp_buf path = KCP_BUF_INIT;
    struct log_ctx l = {0};
    git_commit *a = NULL, *b = NULL;
    int rc = KCP_EXIT_USAGE;
    if (kcp_history_object_path(&path, object) != 0) {
        fprintf(stderr, "Error: want RESOURCE[.GROUP]/NAMESPACE/NAME or RESOURCE[.GROUP]/NAME\n");
        goto done;
    }
    l.path = path.data;
    if ((!from || !to) && (rc = walk(repo, log_on_commit, &l)) != 0)
        goto done;
    if ((!from || !to) && l.n == 0) {
        fprintf(stderr, "Error: no commit touches %s\n", object);
        rc = KCP_EXIT_FAIL;
        goto done;
    }
    rc = KCP_EXIT_FAIL;
    if (from ? resolve(repo, from, &a) != 0 : git_commit_lookup(&a, repo, &l.first) != 0)
        goto done;
    if (to ? resolve(repo, to, &b) != 0 : git_commit_lookup(&b, repo, &l.last) != 0)
        goto done;
    /* One commit touching it: show what that commit did. */
    if (git_oid_equal(git_commit_id(a), git_commit_id(b)) && !from) {
        git_commit *parent = NULL;
        git_commit_free(a);
        a = git_commit_parentcount(b) && git_commit_parent(&parent, b, 0) == 0 ? parent : NULL;
    }
    rc = print_patch(repo, a, b, path.data);
done:
    git_commit_free(a);
    git_commit_free(b);
    kcp_buf_free(&path);
    return rc;
}

/* ---- conflicts -------------------------------------------------------------------------- */

static char *trailer(const char *message, const char *key)
{
    git_message_trailer_array arr = {0};
    char *v = NULL;
    if (git_message_trailers(&arr, message) != 0)
        return NULL;
    for (size_t i = 0; i < arr.count; i++)
        if (strcmp(arr.trailers[i].key, key) == 0)
            v = kcp_strdup(arr.trailers[i].value);
    git_message_trailer_array_free(&arr);
    return v;
}

/* "refs/conflicts/<resource>/<ns or _cluster>/<name>/<index>" -> "resource/ns/name". */
static char *ref_object(const char *ref)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *p = ref + strlen("refs/conflicts/");
    const char *last = strrchr(p, '/');
    if (!last)
        return NULL;
    for (const char *q = p; q < last; q++) {
        unsigned int c;
        if (*q == '%' && q + 2 < last && sscanf(q + 1, "%2x", &c) == 1) {
            char ch = (char)c;
            kcp_buf_append(&b, &ch, 1);
            q += 2;
        } else {
            kcp_buf_append(&b, q, 1);
        }
    }
    char *s = kcp_buf_detach(&b);
    char *cl = strstr(s, "/_cluster/");
    if (cl)
        memmove(cl, cl + 9, strlen(cl + 9) + 1);
    return s;
}

static int conflict_on_ref(const char *name, void *payload)
{
    git_repository *repo = payload;
    git_commit *c = NULL, *cur = NULL;
    git_oid id;
    char hex[GIT_OID_HEXSZ + 1], curhex[GIT_OID_HEXSZ + 1] = "(none)";
    char *object = ref_object(name), *current = NULL, *read_rv = NULL, *index = NULL;
    struct kcp_buf path = KCP_BUF_INIT;
    if (!object || git_reference_name_to_id(&id, repo, name) != 0 ||
        git_commit_lookup(&c, repo, &id) != 0)
        goto done;
    current = trailer(git_commit_message(c), "Current-Commit");
    read_rv = trailer(git_commit_message(c), "Read-Resource-Version");
    index = trailer(git_commit_message(c), "Raft-Index");
    git_oid_tostr(hex, sizeof(hex), &id);
    if (current) {
        git_oid cid;
        if (git_oid_fromstr(&cid, current) == 0)
            git_commit_lookup(&cur, repo, &cid);
        snprintf(curhex, sizeof(curhex), "%.12s", current);
    }
    printf("%s by %s at ", object, git_commit_author(c)->name);
    print_time(stdout, git_commit_author(c)->when.time);
    printf(" (resourceVersion %s rejected; it had read %s)\n", index ? index : "?",
           read_rv ? read_rv : "?");
    printf("  rejected version: %.12s   version that won: %s\n", hex, curhex);
    if (kcp_history_object_path(&path, object) == 0 && cur) {
        fflush(stdout);
        print_patch(repo, cur, c, path.data); /* - the version that won, + the rejected one */
    }
    printf("\n");
done:
    git_commit_free(c);
    git_commit_free(cur);
    free(object);
    free(current);
    free(read_rv);
    free(index);
    kcp_buf_free(&path);
    return 0;
}

static int cmd_conflicts(git_repository *repo)
{
    int rc = git_reference_foreach_glob(repo, "refs/conflicts/*", conflict_on_ref, repo);
    return rc == 0 ? KCP_EXIT_OK : git_err("listing refs/conflicts");
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

static int cmd_restore(git_repository *repo, const char *object)
{
    struct kcp_buf yaml = KCP_BUF_INIT, url = KCP_BUF_INIT, body = KCP_BUF_INIT,
                   resp = KCP_BUF_INIT;
    json_t *obj = NULL;
    int status = 0, rc = show_at(repo, object, at, &yaml);
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
    git_repository *repo = NULL;
    struct kcp_buf out = KCP_BUF_INIT;
    const char *sub = argc > 0 ? argv[0] : NULL;
    const char *object = argc > 1 ? argv[1] : NULL;
    int rc = KCP_EXIT_USAGE;
    bool needs_object = sub && (strcmp(sub, "show") == 0 || strcmp(sub, "diff") == 0 ||
                                strcmp(sub, "restore") == 0);
    if (!sub) {
        fprintf(stderr, "Error: want a subcommand: log, show, diff, restore, conflicts, path\n");
        return KCP_EXIT_USAGE;
    }
    if (strcmp(sub, "path") == 0)
        return argc == 1 ? cmd_path() : cli_no_args("history path", argc - 1, argv + 1);
    if ((needs_object && argc != 2) || argc > 2) {
        fprintf(stderr, "Error: kcp history %s takes %s\n", sub,
                needs_object ? "one RESOURCE/NAMESPACE/NAME" : "at most one argument");
        return KCP_EXIT_USAGE;
    }
    if (strcmp(sub, "log") && strcmp(sub, "conflicts") && !needs_object) {
        fprintf(stderr, "Error: unknown subcommand \"%s\" for \"kcp history\"\n", sub);
        return KCP_EXIT_USAGE;
    }
    if ((rc = open_repo(&repo)) != 0)
        return rc;
    if (strcmp(sub, "log") == 0)
        rc = cmd_log(repo, object);
    else if (strcmp(sub, "conflicts") == 0)
        rc = cmd_conflicts(repo);
    else if (strcmp(sub, "diff") == 0)
        rc = cmd_diff(repo, object);
    else if (strcmp(sub, "restore") == 0)
        rc = cmd_restore(repo, object);
    else if ((rc = show_at(repo, object, at, &out)) == 0)
        fwrite(out.data, 1, out.len, stdout);
    kcp_buf_free(&out);
    git_repository_free(repo);
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
        "  conflicts                writes rejected for a stale resourceVersion\n"
        "  path                     the repository's path",
    .examples = "  kcp history log configmaps/default/web --data-dir /var/lib/kcp\n"
                "  kcp history restore configmaps/default/web --at 1a2b3c4d --data-dir ./data\n"
                "  git --git-dir \"$(kcp history path)\" log --stat",
    .flags = flags,
    .run = history_run,
};
