/*
 * Reading the repository for `kcp history` and the HTTP API: the main line's log, an object as
 * of a commit, diffs, conflict branches and the size report. Read-only and lock-free: the
 * server may be recording (new packs only appear; a fold's old packs stay readable once open).
 */
#include "history_int.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OBJECT_USAGE "want RESOURCE[.GROUP]/NAMESPACE/NAME or RESOURCE[.GROUP]/NAME"

struct kcp_history_repo {
    git_repository *git;
    char err[512];
};

static int fail(struct kcp_history_repo *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct kcp_history_repo *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    return rc;
}

static int git_failed(struct kcp_history_repo *r, const char *what)
{
    const git_error *e = git_error_last();
    return fail(r, KCP_EIO, "git %s: %s", what, e && e->message ? e->message : "error");
}

int kcp_history_repo_open(struct kcp_history_repo **out, const char *path)
{
    struct kcp_history_repo *r = kcp_calloc(1, sizeof(*r));
    history_git_init();
    *out = NULL;
    if (git_repository_open_bare(&r->git, path) != 0) {
        free(r);
        return KCP_ENOTFOUND;
    }
    *out = r;
    return 0;
}

void kcp_history_repo_free(struct kcp_history_repo *repo)
{
    if (!repo)
        return;
    git_repository_free(repo->git);
    free(repo);
}

const char *kcp_history_repo_error(const struct kcp_history_repo *repo)
{
    return repo->err;
}

char *history_trailer(const char *message, const char *key)
{
    git_message_trailer_array arr = {0};
    char *v = NULL;
    if (git_message_trailers(&arr, message) != 0)
        return NULL;
    for (size_t i = 0; i < arr.count; i++)
        if (strcmp(arr.trailers[i].key, key) == 0) {
            free(v);
            v = kcp_strdup(arr.trailers[i].value);
        }
    git_message_trailer_array_free(&arr);
    return v;
}

static int object_path(struct kcp_history_repo *r, struct kcp_buf *out, const char *object)
{
    if (!object || kcp_history_object_path(out, object) != 0)
        return fail(r, KCP_EINVAL, "object %s: " OBJECT_USAGE, object ? object : "(none)");
    return 0;
}

static int resolve(struct kcp_history_repo *r, const char *spec, git_commit **out)
{
    git_object *obj = NULL, *peeled = NULL;
    int rc = git_revparse_single(&obj, r->git, spec);
    if (rc == 0)
        rc = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT);
    git_object_free(obj);
    if (rc != 0)
        return fail(r, KCP_ENOTFOUND, "unknown commit %s", spec);
    *out = (git_commit *)peeled;
    return 0;
}

/* The blob id of path in commit c, or false when the object does not exist there. */
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

/* Whether commit c changed path relative to its first parent (a root adds what it holds). */
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

/* Return > 0 to stop the walk with that value, < 0 for an error. */
typedef int (*walk_cb)(struct kcp_history_repo *r, git_commit *c, void *ctx);

/* Newest first along refs/heads/main's first parents (a linear line: no sorting needed). */
static int walk_main(struct kcp_history_repo *r, walk_cb cb, void *ctx)
{
    git_commit *c = NULL;
    git_oid id;
    int rc = git_reference_name_to_id(&id, r->git, HISTORY_MAIN_REF);
    if (rc == GIT_ENOTFOUND)
        return 0; /* nothing recorded yet */
    if (rc != 0 || git_commit_lookup(&c, r->git, &id) != 0)
        return git_failed(r, "reading " HISTORY_MAIN_REF);
    while (c) {
        git_commit *parent = NULL;
        rc = cb(r, c, ctx);
        if (rc == 0 && git_commit_parentcount(c) > 0 && git_commit_parent(&parent, c, 0) != 0)
            rc = git_failed(r, "reading a commit");
        git_commit_free(c);
        c = parent;
        if (rc != 0) {
            git_commit_free(c);
            return rc;
        }
    }
    return 0;
}

/* A commit's log fields: the subject is "verb object by user[ (+N more)]". */
static void describe(struct kcp_history_commit *out, git_commit *c, char *buf, size_t bufsz)
{
    const char *subject = git_commit_summary(c);
    const char *more = subject ? strstr(subject, " (+") : NULL;
    char *sp;
    memset(out, 0, sizeof(*out));
    git_oid_tostr(out->id, sizeof(out->id), git_commit_id(c));
    snprintf(buf, bufsz, "%s", subject ? subject : "");
    out->verb = buf;
    out->object = "";
    if ((sp = strchr(buf, ' ')) != NULL) {
        *sp = '\0';
        char *obj = sp + 1, *end = strchr(obj, ' ');
        if (end)
            *end = '\0';
        if (strcmp(buf, "snapshot") != 0)
            out->object = obj;
    }
    out->user = git_commit_author(c)->name;
    out->time = (int64_t)git_commit_author(c)->when.time;
    out->raft_index = history_trailer_u64(git_commit_message(c), "Raft-Index");
    out->more = more ? (unsigned)strtoul(more + 3, NULL, 10) : 0;
}

struct log_walk {
    const char *path, *object;
    size_t limit, n;
    bool more;
    int stopped; /* the callback's non-zero return */
    kcp_history_commit_cb cb;
    void *ctx;
};

static int log_on_commit(struct kcp_history_repo *r, git_commit *c, void *ctx)
{
    struct log_walk *l = ctx;
    struct kcp_history_commit hc;
    char buf[1024];
    if (l->path && !touches(c, l->path))
        return 0;
    if (l->limit && l->n == l->limit) {
        l->more = true;
        return 1;
    }
    l->n++;
    describe(&hc, c, buf, sizeof(buf));
    if (l->object)
        hc.object = l->object;
    l->stopped = l->cb(l->ctx, &hc);
    return l->stopped ? 1 : 0;
}

int kcp_history_log(struct kcp_history_repo *repo, const char *object, size_t limit,
                    kcp_history_commit_cb cb, void *ctx, bool *out_more)
{
    struct kcp_buf path = KCP_BUF_INIT;
    struct log_walk l = {.object = object, .limit = limit, .cb = cb, .ctx = ctx};
    int rc = 0;
    if (object && (rc = object_path(repo, &path, object)) != 0)
        goto done;
    l.path = object ? path.data : NULL;
    rc = walk_main(repo, log_on_commit, &l);
    if (rc == 1)
        rc = l.stopped; /* 0 when the limit stopped it */
done:
    if (out_more)
        *out_more = l.more;
    kcp_buf_free(&path);
    return rc;
}

static int read_blob(struct kcp_history_repo *r, git_commit *c, const char *path,
                     struct kcp_buf *out)
{
    git_oid id;
    git_blob *b = NULL;
    if (!blob_at(c, path, &id))
        return KCP_ENOTFOUND;
    if (git_blob_lookup(&b, r->git, &id) != 0)
        return git_failed(r, "reading a blob");
    kcp_buf_append(out, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
    git_blob_free(b);
    return 0;
}

int kcp_history_show(struct kcp_buf *out, struct kcp_history_repo *repo, const char *object,
                     const char *at)
{
    struct kcp_buf path = KCP_BUF_INIT;
    git_commit *c = NULL;
    int rc;
    if ((rc = object_path(repo, &path, object)) != 0)
        goto done;
    if (!at || !*at) {
        rc = fail(repo, KCP_EINVAL, "a commit is required");
        goto done;
    }
    if ((rc = resolve(repo, at, &c)) != 0)
        goto done;
    if ((rc = read_blob(repo, c, path.data, out)) == KCP_ENOTFOUND)
        fail(repo, rc, "%s does not exist at %s", object, at);
done:
    git_commit_free(c);
    kcp_buf_free(&path);
    return rc;
}

static int patch(struct kcp_history_repo *r, struct kcp_buf *out, git_commit *a, git_commit *b,
                 const char *path)
{
    git_oid ia, ib;
    git_blob *ba = NULL, *bb = NULL;
    git_patch *p = NULL;
    git_buf text = {0};
    int rc = 0;
    if ((a && blob_at(a, path, &ia) && git_blob_lookup(&ba, r->git, &ia) != 0) ||
        (b && blob_at(b, path, &ib) && git_blob_lookup(&bb, r->git, &ib) != 0) ||
        git_patch_from_blobs(&p, ba, path, bb, path, NULL) != 0 || git_patch_to_buf(&text, p) != 0)
        rc = git_failed(r, "diff");
    else
        kcp_buf_append(out, text.ptr, text.size);
    git_buf_dispose(&text);
    git_patch_free(p);
    git_blob_free(ba);
    git_blob_free(bb);
    return rc;
}

struct span_walk {
    const char *path;
    size_t n;
    git_oid first, last; /* oldest and newest commit touching path */
};

static int span_on_commit(struct kcp_history_repo *r, git_commit *c, void *ctx)
{
    struct span_walk *s = ctx;
    if (!touches(c, s->path))
        return 0;
    if (s->n++ == 0)
        git_oid_cpy(&s->last, git_commit_id(c));
    git_oid_cpy(&s->first, git_commit_id(c));
    return 0;
}

int kcp_history_diff(struct kcp_buf *out, struct kcp_history_repo *repo, const char *object,
                     const char *from, const char *to)
{
    struct kcp_buf path = KCP_BUF_INIT;
    struct span_walk s = {0};
    git_commit *a = NULL, *b = NULL;
    int rc;
    if ((rc = object_path(repo, &path, object)) != 0)
        goto done;
    s.path = path.data;
    if ((!from || !to) && (rc = walk_main(repo, span_on_commit, &s)) != 0)
        goto done;
    if ((!from || !to) && s.n == 0) {
        rc = fail(repo, KCP_ENOTFOUND, "no commit changed %s", object);
        goto done;
    }
    if (from ? (rc = resolve(repo, from, &a)) != 0
             : (rc = git_commit_lookup(&a, repo->git, &s.first) ? git_failed(repo, "lookup") : 0))
        goto done;
    if (to ? (rc = resolve(repo, to, &b)) != 0
           : (rc = git_commit_lookup(&b, repo->git, &s.last) ? git_failed(repo, "lookup") : 0))
        goto done;
    /* One commit changed it: show what that commit did. */
    if (!from && git_oid_equal(git_commit_id(a), git_commit_id(b))) {
        git_commit *parent = NULL;
        git_commit_free(a);
        a = git_commit_parentcount(b) && git_commit_parent(&parent, b, 0) == 0 ? parent : NULL;
    }
    rc = patch(repo, out, a, b, path.data);
done:
    git_commit_free(a);
    git_commit_free(b);
    kcp_buf_free(&path);
    return rc;
}

/* ---- conflicts -------------------------------------------------------------------------- */

/* "refs/conflicts/<resource>/<ns or _cluster>/<name>/<index>" -> "resource/ns/name". */
static char *ref_object(const char *ref)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *p = ref + strlen(HISTORY_CONFLICTS_PREFIX);
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

static uint64_t ref_index(const char *ref)
{
    const char *slash = strrchr(ref, '/');
    return slash ? strtoull(slash + 1, NULL, 10) : 0;
}

/* Newest (highest index) first, then by name. */
static int ref_cmp(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    uint64_t ix = ref_index(x), iy = ref_index(y);
    return ix != iy ? (ix > iy ? -1 : 1) : strcmp(x, y);
}

int history_conflict_refs(git_repository *repo, char ***out, size_t *out_n)
{
    git_reference_iterator *it = NULL;
    const char *name;
    char **v = NULL;
    size_t n = 0;
    int rc;
    *out = NULL;
    *out_n = 0;
    if (git_reference_iterator_glob_new(&it, repo, HISTORY_CONFLICTS_PREFIX "*") != 0)
        return KCP_EIO;
    while ((rc = git_reference_next_name(&name, it)) == 0) {
        if (n % 64 == 0)
            v = kcp_realloc(v, (n + 64) * sizeof(*v));
        v[n++] = kcp_strdup(name);
    }
    git_reference_iterator_free(it);
    if (rc != GIT_ITEROVER) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return KCP_EIO;
    }
    if (n)
        qsort(v, n, sizeof(*v), ref_cmp);
    *out = v;
    *out_n = n;
    return 0;
}

void history_refs_free(char **refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
}

static int conflict_report(struct kcp_history_repo *r, const char *ref, kcp_history_conflict_cb cb,
                           void *ctx)
{
    struct kcp_history_conflict hc = {.ref = ref};
    git_commit *c = NULL;
    git_oid id;
    char *object = ref_object(ref), *current = NULL;
    int rc = 0;
    if (!object || git_reference_name_to_id(&id, r->git, ref) != 0 ||
        git_commit_lookup(&c, r->git, &id) != 0)
        goto done; /* not one of ours, or deleted since it was listed */
    const char *msg = git_commit_message(c);
    hc.object = object;
    hc.user = git_commit_author(c)->name;
    hc.time = (int64_t)git_commit_author(c)->when.time;
    hc.raft_index = history_trailer_u64(msg, "Raft-Index");
    hc.read_revision = history_trailer_u64(msg, "Read-Resource-Version");
    git_oid_tostr(hc.id, sizeof(hc.id), &id);
    if ((current = history_trailer(msg, "Current-Commit")) != NULL)
        snprintf(hc.current, sizeof(hc.current), "%s", current);
    rc = cb(ctx, &hc);
done:
    git_commit_free(c);
    free(object);
    free(current);
    return rc;
}

int kcp_history_conflicts(struct kcp_history_repo *repo, size_t limit, kcp_history_conflict_cb cb,
                          void *ctx, bool *out_more)
{
    char **refs = NULL;
    size_t n = 0;
    int rc = history_conflict_refs(repo->git, &refs, &n);
    if (out_more)
        *out_more = limit && n > limit;
    if (rc != 0)
        return git_failed(repo, "listing " HISTORY_CONFLICTS_PREFIX);
    for (size_t i = 0; i < n && rc == 0 && (!limit || i < limit); i++)
        rc = conflict_report(repo, refs[i], cb, ctx);
    history_refs_free(refs, n);
    return rc;
}

/* ---- size ------------------------------------------------------------------------------- */

static int size_on_commit(struct kcp_history_repo *r, git_commit *c, void *ctx)
{
    struct kcp_history_size *s = ctx;
    uint64_t idx = history_trailer_u64(git_commit_message(c), "Raft-Index");
    int64_t t = (int64_t)git_commit_committer(c)->when.time;
    if (s->commits++ == 0) {
        s->last_index = idx;
        s->newest_time = t;
    }
    s->first_index = idx;
    s->oldest_time = t;
    return 0;
}

static int count_blobs(const char *root, const git_tree_entry *e, void *payload)
{
    if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
        (*(uint64_t *)payload)++;
    return 0;
}

static bool is_hex2(const char *s)
{
    return strlen(s) == 2 && strspn(s, "0123456789abcdef") == 2;
}

/* Bytes allocated on disk below dir (du), not following links. */
static uint64_t disk_usage(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t total = 0;
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = kcp_sprintf("%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0) {
            total += (uint64_t)st.st_blocks * 512;
            if (S_ISDIR(st.st_mode))
                total += disk_usage(p);
        }
        free(p);
    }
    closedir(d);
    return total;
}

void history_object_files(const char *gitdir, struct kcp_history_size *s)
{
    char *objects = kcp_sprintf("%s/objects", gitdir), *packs = kcp_sprintf("%s/pack", objects);
    DIR *d = opendir(packs);
    struct dirent *de;
    struct stat st;
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        bool pack = n > 5 && strcmp(de->d_name + n - 5, ".pack") == 0;
        bool idx = n > 4 && strcmp(de->d_name + n - 4, ".idx") == 0;
        char *p = kcp_sprintf("%s/%s", packs, de->d_name);
        if ((pack || idx) && stat(p, &st) == 0) {
            s->pack_bytes += (uint64_t)st.st_size;
            s->packs += pack;
        }
        free(p);
    }
    if (d)
        closedir(d);
    d = opendir(objects);
    while (d && (de = readdir(d)) != NULL) {
        if (!is_hex2(de->d_name))
            continue;
        char *sub = kcp_sprintf("%s/%s", objects, de->d_name);
        DIR *sd = opendir(sub);
        struct dirent *se;
        while (sd && (se = readdir(sd)) != NULL) {
            char *p = kcp_sprintf("%s/%s", sub, se->d_name);
            if (se->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                s->loose_objects++;
                s->loose_bytes += (uint64_t)st.st_size;
            }
            free(p);
        }
        if (sd)
            closedir(sd);
        free(sub);
    }
    if (d)
        closedir(d);
    free(objects);
    free(packs);
}

int kcp_history_size(struct kcp_history_size *out, const char *path)
{
    struct kcp_history_repo *r = NULL;
    git_commit *head = NULL;
    git_tree *tree = NULL;
    git_oid id;
    char **refs = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = kcp_history_repo_open(&r, path)) != 0)
        return rc;
    if ((rc = walk_main(r, size_on_commit, out)) != 0)
        goto done;
    if (git_reference_name_to_id(&id, r->git, HISTORY_MAIN_REF) == 0 &&
        (git_commit_lookup(&head, r->git, &id) != 0 || git_commit_tree(&tree, head) != 0 ||
         git_tree_walk(tree, GIT_TREEWALK_PRE, count_blobs, &out->head_objects) != 0)) {
        rc = KCP_EIO;
        goto done;
    }
    size_t n = 0;
    if (history_conflict_refs(r->git, &refs, &n) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    history_refs_free(refs, n);
    out->conflicts = n;
    history_object_files(git_repository_path(r->git), out);
    out->disk_bytes = disk_usage(git_repository_path(r->git));
done:
    git_tree_free(tree);
    git_commit_free(head);
    kcp_history_repo_free(r);
    return rc;
}
