/*
 * The recorder: applied entries -> blobs, trees and commits. Runs on its own thread, one batch
 * at a time, and reads nothing but its arguments and the repository, so the same entries give
 * byte-identical commits everywhere: the tree is a function of the objects, the message of the
 * entry, and both signatures carry the entry's own timestamp.
 *
 * Objects are serialized here (commits) and in tree.c (trees), as libgit2's git_commit_create
 * and git_tree_create_updated wrote them, byte for byte (test_golden_ids), and go to the batch
 * in memory (pack.c) without a lookup on disk.
 */
#include "history_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#define MAIN_REF "refs/heads/main"
#define INDEX_FILE "kcp-recorded" /* "<last index> <main commit id>\n", see history_rec_flush */

static int git_fail(const char *what)
{
    const git_error *e = git_error_last();
    kcp_log(KCP_LOG_ERROR, "history", "git %s: %s", what, e && e->message ? e->message : "error");
    return KCP_EIO;
}

static void git_init_once(void)
{
    git_libgit2_init();
    /* The recorder references only objects it has just written or read. */
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
    /* A namespace's tree is rewritten on every write into it: keep it in the object cache
     * (libgit2 caches only trees under 4 KiB by default), within a 32 MiB budget. */
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, (size_t)1 << 20);
    git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)32 << 20);
    /* Pack files are mapped to read trees back; bound how much of them stays mapped. */
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)64 << 20);
    /* A fold deletes packs that may be open (a conflict's parent was read from one): libgit2
     * skips deleted packs when it looks objects up, but keeps an open one's descriptor, and so
     * its disk space, unless it closes its least recently used pack files past a limit. */
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT, (size_t)64);
}

void history_git_init(void)
{
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, git_init_once);
}

uint64_t history_trailer_u64(const char *message, const char *key)
{
    git_message_trailer_array arr = {0};
    uint64_t v = 0;
    if (git_message_trailers(&arr, message) != 0)
        return 0;
    for (size_t i = 0; i < arr.count; i++)
        if (strcmp(arr.trailers[i].key, key) == 0)
            v = strtoull(arr.trailers[i].value, NULL, 10);
    git_message_trailer_array_free(&arr);
    return v;
}

static void idmap_add(struct history_idmap *m, uint64_t idx, const git_oid *oid)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->idx = kcp_realloc(m->idx, m->cap * sizeof(*m->idx));
        m->oid = kcp_realloc(m->oid, m->cap * sizeof(*m->oid));
    }
    m->idx[m->n] = idx;
    git_oid_cpy(&m->oid[m->n], oid);
    m->n++;
}

/* ---- opening ---------------------------------------------------------------------------- */

/* The head as of opening: its tree in memory, each directory read when first written to. */
static int set_head(struct history_rec *r, const git_oid *commit_id)
{
    git_commit *c = NULL;
    if (git_commit_lookup(&c, r->repo, commit_id) != 0)
        return git_fail("reading the head commit");
    r->tree = history_dir_new(git_commit_tree_id(c));
    git_oid_cpy(&r->head, commit_id);
    r->has_head = true;
    git_commit_free(c);
    return 0;
}

/* The last index: the head's Raft-Index, or the index file when it names the same head (it
 * also counts entries that made no commit, so they are not looked at again). */
static void read_last(struct history_rec *r, const char *path)
{
    git_commit *c = NULL;
    r->last = 0;
    if (!r->has_head || git_commit_lookup(&c, r->repo, &r->head) != 0)
        return;
    r->last = history_trailer_u64(git_commit_message(c), "Raft-Index");
    git_commit_free(c);
    char *file = kcp_sprintf("%s/" INDEX_FILE, path), *text = NULL;
    size_t len = 0;
    char hex[GIT_OID_HEXSZ + 1];
    unsigned long long idx = 0;
    if (kcp_file_read(file, 256, &text, &len) == 0 && sscanf(text, "%llu %40s", &idx, hex) == 2 &&
        strlen(hex) == GIT_OID_HEXSZ) {
        git_oid oid;
        if (git_oid_fromstr(&oid, hex) == 0 && git_oid_equal(&oid, &r->head) && idx > r->last)
            r->last = idx;
    }
    free(text);
    free(file);
}

int history_rec_open(struct history_rec *r, const char *path, const char *exclude)
{
    git_reference *ref = NULL;
    git_repository_init_options io;
    memset(r, 0, sizeof(*r));
    git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    history_git_init();
    history_rules_init(&r->rules, exclude);
    io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
    io.mode = GIT_REPOSITORY_INIT_SHARED_UMASK;
    io.initial_head = "main";
    if (git_repository_open_bare(&r->repo, path) != 0 &&
        git_repository_init_ext(&r->repo, path, &io) != 0)
        return git_fail("opening the repository");
    /* New objects go to memory, then to disk as one pack per batch: loose objects would cost a
     * file (and a 4 KiB block) each, six per entry. */
    if (git_repository_odb(&r->odb, r->repo) != 0)
        return git_fail("object store");
    if (history_pack_open(r) != 0)
        return KCP_EIO;
    int rc = git_reference_lookup(&ref, r->repo, MAIN_REF);
    if (rc == 0) {
        git_oid id;
        git_oid_cpy(&id, git_reference_target(ref));
        git_reference_free(ref);
        if (set_head(r, &id) != 0)
            return KCP_EIO;
    } else if (rc != GIT_ENOTFOUND) {
        return git_fail("reading " MAIN_REF);
    }
    if (!r->tree)
        r->tree = history_dir_new(NULL);
    read_last(r, path);
    return 0;
}

void history_rec_close(struct history_rec *r)
{
    for (size_t i = 0; i < r->npending; i++)
        free(r->pending_refs[i]);
    free(r->pending_refs);
    free(r->pending_ids);
    history_pack_free(r);
    history_dir_free(r->tree);
    git_odb_free(r->odb);
    git_repository_free(r->repo);
    history_rules_free(&r->rules);
    free(r->map.idx);
    free(r->map.oid);
    memset(r, 0, sizeof(*r));
}

/* Names and emails are the entry's user; git refuses angle brackets and newlines in them. */
static char *sig_text(const char *s)
{
    char *t = kcp_strdup(s && *s ? s : "unknown");
    for (char *p = t; *p; p++)
        if (*p == '<' || *p == '>' || *p == '\n')
            *p = '_';
    return t;
}

static int signatures(git_signature **author, git_signature **committer, const char *user,
                      int64_t when)
{
    char *name = sig_text(user);
    char *email = kcp_sprintf("%s@kcp", name);
    int rc = git_signature_new(author, name, email, when, 0);
    if (rc == 0 && (rc = git_signature_new(committer, "kcp", "kcp@kcp", when, 0)) != 0)
        git_signature_free(*author);
    free(name);
    free(email);
    return rc == 0 ? 0 : git_fail("signature");
}

/* v in decimal, appended (printf is a large share of writing a commit). */
static void put_u64(struct kcp_buf *b, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    kcp_buf_append(b, d + sizeof(d) - n, n);
}

/* "author name <email> 1700000000 +0000", as libgit2 writes a signature (the time as an
 * unsigned 32-bit number). */
static void sig_line(struct kcp_buf *b, const char *header, const git_signature *s)
{
    kcp_buf_puts(b, header);
    kcp_buf_puts(b, s->name);
    kcp_buf_puts(b, " <");
    kcp_buf_puts(b, s->email);
    kcp_buf_puts(b, "> ");
    put_u64(b, (unsigned)s->when.time);
    kcp_buf_puts(b, " +0000\n");
}

static void oid_line(struct kcp_buf *b, const char *header, const git_oid *id)
{
    char hex[GIT_OID_HEXSZ];
    git_oid_fmt(hex, id);
    kcp_buf_puts(b, header);
    kcp_buf_append(b, hex, sizeof(hex));
    kcp_buf_puts(b, "\n");
}

/* The commit object git_commit_create wrote, byte for byte. */
static int commit(struct history_rec *r, git_oid *out, const char *user, int64_t when,
                  const char *message, const git_oid *tree_id, const git_oid *parent_id)
{
    git_signature *author = NULL, *committer = NULL;
    struct kcp_buf b = KCP_BUF_INIT;
    int rc = signatures(&author, &committer, user, when);
    if (rc != 0)
        return rc;
    oid_line(&b, "tree ", tree_id);
    if (parent_id)
        oid_line(&b, "parent ", parent_id);
    sig_line(&b, "author ", author);
    sig_line(&b, "committer ", committer);
    kcp_buf_puts(&b, "\n");
    kcp_buf_puts(&b, message);
    rc = history_pack_put(r, GIT_OBJECT_COMMIT, b.data, b.len, NULL, out);
    kcp_buf_free(&b);
    git_signature_free(author);
    git_signature_free(committer);
    return rc;
}

/*
 * Applies one op to the tree under root: the object's file written (its YAML as a blob) or
 * removed. *out_skip: nothing to record (a removal of what the tree lacks, or a value that is
 * not a JSON object: apply would have refused it too).
 */
static int tree_op(struct history_rec *r, struct history_dir *root, const struct kcp_store_op *op,
                   const struct history_key *k, bool *out_skip)
{
    struct kcp_buf path = KCP_BUF_INIT, yaml = KCP_BUF_INIT;
    int rc = 0;
    *out_skip = false;
    history_key_path(&path, k);
    if (op->type != KCP_STORE_DELETE && history_render(&yaml, op->value, op->value_len) != 0)
        *out_skip = true;
    else
        rc = history_dir_apply(r, root, path.data, op->type == KCP_STORE_DELETE ? NULL : &yaml,
                               out_skip);
    kcp_buf_free(&yaml);
    kcp_buf_free(&path);
    return rc;
}

static void trailers(struct kcp_buf *m, uint64_t term, uint64_t index,
                     const struct kcp_store_entry *e)
{
    /* The term comes with the applied entry (kcp_store_apply_term): the same on every replica. */
    kcp_buf_puts(m, "\nRaft-Term: ");
    put_u64(m, term);
    kcp_buf_puts(m, "\nRaft-Index: ");
    put_u64(m, index);
    kcp_buf_puts(m, "\nResource-Version: ");
    put_u64(m, index);
    kcp_buf_puts(m, "\n");
    if (e->request_id && *e->request_id) {
        kcp_buf_puts(m, "Request-Id: ");
        kcp_buf_puts(m, e->request_id);
        kcp_buf_puts(m, "\n");
    }
}

static const char *verb_of(const struct kcp_store_entry *e)
{
    return e->verb && *e->verb ? e->verb : "apply";
}

/*
 * A write rejected for a stale resourceVersion: a commit whose parent is the main-line commit
 * as of the revision the writer had read and whose tree is that one with the rejected version,
 * on refs/conflicts/<resource>/<namespace>/<name>/<index>.
 */
static int record_conflict(struct history_rec *r, uint64_t index, const struct kcp_store_entry *e,
                           const struct kcp_store_op *op, const struct history_key *k,
                           const git_oid *current)
{
    struct kcp_buf msg = KCP_BUF_INIT, ref = KCP_BUF_INIT;
    git_oid parent, tree_id, id;
    git_commit *pc = NULL;
    struct history_dir *base = NULL;
    bool skip = false, has_parent = history_rec_commit_at(r, op->revision, &parent) == 0;
    int rc = 0;
    if (has_parent && git_commit_lookup(&pc, r->repo, &parent) != 0) {
        rc = git_fail("conflict parent");
        goto done;
    }
    /* The parent's tree, its directories read as the path needs them. */
    base = history_dir_new(pc ? git_commit_tree_id(pc) : NULL);
    if ((rc = tree_op(r, base, op, k, &skip)) != 0 || (rc = history_dir_id(r, base, &tree_id)) != 0)
        goto done;
    kcp_buf_printf(&msg, "conflict: %s ", verb_of(e));
    history_key_spec(&msg, k);
    kcp_buf_printf(&msg,
                   " by %s\n\nRejected with 409 Conflict: the writer had read "
                   "resourceVersion %" PRIu64 ", which was no longer current.\n",
                   e->user, op->revision);
    trailers(&msg, r->term, index, e);
    kcp_buf_printf(&msg, "Read-Resource-Version: %" PRIu64 "\n", op->revision);
    if (current) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof(hex), current);
        kcp_buf_printf(&msg, "Current-Commit: %s\n", hex);
    }
    if ((rc = commit(r, &id, e->user, e->wall_s, msg.data, &tree_id,
                     has_parent ? &parent : NULL)) != 0)
        goto done;
    kcp_buf_puts(&ref, "refs/conflicts/");
    history_key_ref(&ref, k);
    kcp_buf_printf(&ref, "/%" PRIu64, index);
    /* Created at the flush, after the pack that holds the commit. Replaying the same entry after
     * a crash rewrites the same ref to the same commit. */
    r->pending_refs = kcp_realloc(r->pending_refs, (r->npending + 1) * sizeof(*r->pending_refs));
    r->pending_ids = kcp_realloc(r->pending_ids, (r->npending + 1) * sizeof(*r->pending_ids));
    r->pending_refs[r->npending] = kcp_buf_detach(&ref);
    git_oid_cpy(&r->pending_ids[r->npending], &id);
    r->npending++;
    r->conflicts++;
done:
    history_dir_free(base);
    git_commit_free(pc);
    kcp_buf_free(&msg);
    kcp_buf_free(&ref);
    return rc;
}

int history_rec_entry(struct history_rec *r, uint64_t index, const struct kcp_store_entry *e,
                      const struct kcp_store_op_result *ops, size_t nops)
{
    struct kcp_buf msg = KCP_BUF_INIT, body = KCP_BUF_INIT;
    size_t n = 0;
    git_oid before, before_tree, tree_id, id;
    bool had_head = r->has_head, had_tree = history_dir_has_id(r->tree, &before_tree);
    int rc = 0;
    if (index <= r->last)
        goto done; /* recorded before a crash or a restart: never twice */
    git_oid_cpy(&before, &r->head);
    for (size_t i = 0; i < nops && i < e->nops; i++) {
        const struct kcp_store_op *op = &e->ops[i];
        struct history_key k;
        bool skip = false;
        if (history_key_parse(&k, op->key, op->key_len) != 0 || history_rules_skip(&r->rules, &k))
            continue;
        if (ops[i].err == KCP_ECONFLICT && op->precond == KCP_STORE_IF_REVISION &&
            !(e->flags & KCP_STORE_SERVER_PRECOND)) {
            if ((rc = record_conflict(r, index, e, op, &k, had_head ? &before : NULL)) != 0)
                goto done;
            continue;
        }
        if (!ops[i].applied)
            continue;
        if ((rc = tree_op(r, r->tree, op, &k, &skip)) != 0)
            goto done;
        if (skip)
            continue;
        if (n == 0) {
            kcp_buf_puts(&msg, verb_of(e));
            kcp_buf_puts(&msg, " ");
            history_key_spec(&msg, &k);
            kcp_buf_puts(&msg, " by ");
            kcp_buf_puts(&msg, e->user);
        }
        kcp_buf_puts(&body, op->type == KCP_STORE_DELETE ? "delete " : "put ");
        history_key_spec(&body, &k);
        kcp_buf_puts(&body, "\n");
        n++;
    }
    if (!n)
        goto done;
    if ((rc = history_dir_id(r, r->tree, &tree_id)) != 0)
        goto done;
    /* A write that changed only what is not recorded (resourceVersion, managedFields times). */
    if (had_tree && git_oid_equal(&tree_id, &before_tree))
        goto done;
    if (n > 1)
        kcp_buf_printf(&msg, " (+%zu more)\n\n%s", n - 1, body.data);
    else
        kcp_buf_puts(&msg, "\n");
    trailers(&msg, r->term, index, e);
    if ((rc = commit(r, &id, e->user, e->wall_s, msg.data, &tree_id, had_head ? &before : NULL)) !=
        0)
        goto done;
    git_oid_cpy(&r->head, &id);
    r->has_head = true;
    idmap_add(&r->map, index, &id);
    r->commits++;
done:
    if (rc == 0 && index > r->last)
        r->last = index;
    kcp_buf_free(&msg);
    kcp_buf_free(&body);
    return rc;
}

int history_rec_snapshot(struct history_rec *r, uint64_t index, int64_t wall_s,
                         const struct history_snap_obj *objs, size_t n)
{
    struct kcp_buf msg = KCP_BUF_INIT;
    struct history_dir *root = NULL;
    size_t m = 0;
    git_oid tree_id, id;
    int rc = 0;
    if (index <= r->last)
        goto done;
    root = history_dir_new(NULL);
    for (size_t i = 0; i < n; i++) {
        struct history_key k;
        struct kcp_store_op op = {
            .type = KCP_STORE_PUT, .value = objs[i].json, .value_len = objs[i].json_len};
        bool skip = false;
        if (history_key_parse(&k, objs[i].key, objs[i].key_len) != 0 ||
            history_rules_skip(&r->rules, &k))
            continue;
        if ((rc = tree_op(r, root, &op, &k, &skip)) != 0)
            goto done;
        if (!skip)
            m++;
    }
    if ((rc = history_dir_id(r, root, &tree_id)) != 0)
        goto done;
    kcp_buf_printf(&msg,
                   "snapshot of %zu objects by kcp\n\nEntries before this index were not "
                   "recorded (history was off, or its repository was new).\n",
                   m);
    struct kcp_store_entry e = {.verb = "snapshot", .user = "kcp", .request_id = ""};
    trailers(&msg, 0, index, &e);
    if ((rc = commit(r, &id, "kcp", wall_s, msg.data, &tree_id, r->has_head ? &r->head : NULL)) !=
        0)
        goto done;
    history_dir_free(r->tree);
    r->tree = root;
    root = NULL;
    git_oid_cpy(&r->head, &id);
    r->has_head = true;
    idmap_add(&r->map, index, &id);
    r->commits++;
    r->last = index;
done:
    history_dir_free(root);
    kcp_buf_free(&msg);
    return rc;
}

int history_rec_flush(struct history_rec *r)
{
    git_reference *ref = NULL;
    char hex[GIT_OID_HEXSZ + 1] = "";
    if (history_pack_write(r) != 0)
        return KCP_EIO;
    for (size_t i = 0; i < r->npending; i++) {
        if (git_reference_create(&ref, r->repo, r->pending_refs[i], &r->pending_ids[i], 1, NULL) !=
            0)
            return git_fail("conflict ref");
        git_reference_free(ref);
        free(r->pending_refs[i]);
        r->pending_refs[i] = NULL; /* a failure after this one must not free it again */
    }
    r->loose_refs += r->npending;
    r->npending = 0;
    /* Loose refs cost a file (and a block) each: fold them into packed-refs now and then. */
    if (r->loose_refs >= 64) {
        git_refdb *db = NULL;
        if (git_repository_refdb(&db, r->repo) != 0 || git_refdb_compress(db) != 0)
            kcp_log(KCP_LOG_WARN, "history", "packing refs failed; will retry");
        else
            r->loose_refs = 0;
        git_refdb_free(db);
    }
    if (r->has_head) {
        if (git_reference_create(&ref, r->repo, MAIN_REF, &r->head, 1, NULL) != 0)
            return git_fail("update " MAIN_REF);
        git_reference_free(ref);
        git_oid_tostr(hex, sizeof(hex), &r->head);
    }
    /* Temp file and rename, without fsync: the file only saves re-reading skipped entries. */
    const char *dir = git_repository_path(r->repo);
    char *tmp = kcp_sprintf("%s" INDEX_FILE ".tmp", dir), *dst = kcp_sprintf("%s" INDEX_FILE, dir);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f || fprintf(f, "%" PRIu64 " %s\n", r->last, hex) < 0 || fclose(f) != 0 ||
        rename(tmp, dst) != 0) {
        kcp_log(KCP_LOG_WARN, "history", "cannot write %s", dst);
        rc = 0; /* not fatal: the head's Raft-Index is the fallback */
    }
    free(tmp);
    free(dst);
    /* After the refs: a failed fold leaves the small packs, which still hold everything. */
    if (history_pack_fold(r) != 0)
        kcp_log(KCP_LOG_WARN, "history", "folding packs failed; the small ones stay");
    return rc;
}

int history_rec_commit_at(struct history_rec *r, uint64_t revision, git_oid *out)
{
    struct history_idmap *m = &r->map;
    if (m->n && m->idx[0] <= revision) {
        size_t lo = 0, hi = m->n; /* the last entry with idx <= revision */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (m->idx[mid] <= revision)
                lo = mid;
            else
                hi = mid;
        }
        git_oid_cpy(out, &m->oid[lo]);
        return 0;
    }
    /* Older than this process's map: walk the first-parent line reading Raft-Index. */
    git_oid cur;
    bool have = m->n ? true : r->has_head;
    git_oid_cpy(&cur, m->n ? &m->oid[0] : &r->head);
    while (have) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, r->repo, &cur) != 0)
            return KCP_EIO;
        uint64_t idx = history_trailer_u64(git_commit_message(c), "Raft-Index");
        if (idx <= revision) {
            git_oid_cpy(out, &cur);
            git_commit_free(c);
            return 0;
        }
        have = git_commit_parentcount(c) > 0;
        if (have)
            git_oid_cpy(&cur, git_commit_parent_id(c, 0));
        git_commit_free(c);
    }
    return KCP_ENOTFOUND;
}
