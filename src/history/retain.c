/*
 * Retention: the main line's past squashed into one root commit, then a repack that keeps only
 * what is reachable (docs/HISTORY.md "Retention").
 *
 * Happy path: walk refs/heads/main's first parents -> the cut: the oldest commit both rules keep
 * -> the cut rewritten as a root (its own tree: the whole state as of it; its message plus what
 * it replaces) and each newer commit rewritten on the new parent (same tree, message and
 * signatures, so the same repository and rules give the same ids anywhere) -> conflict branches
 * that refer only to kept commits rewritten onto their new ids, the others dropped -> one pack of
 * everything reachable from the new tips -> refs/heads/main, kcp-recorded and conflict refs
 * moved -> every other pack and loose object deleted.
 * Failure modes: a failure before the refs move leaves the old history and, at worst, one more
 * pack (the next squash drops it); after the refs move, what is left behind is only unreachable
 * objects. Every ref points at objects already on disk at every step, so a crash is harmless.
 */
#include "history_int.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2/sys/commit.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

static int fail(const char *what)
{
    const git_error *e = git_error_last();
    kcp_log(KCP_LOG_ERROR, "history", "squash: git %s: %s", what,
            e && e->message ? e->message : "error");
    return KCP_EIO;
}

/* The main line, newest first. */
struct line {
    git_oid *id;
    uint64_t *idx;
    int64_t *when;
    size_t n;
};

static void line_free(struct line *l)
{
    free(l->id);
    free(l->idx);
    free(l->when);
}

static int line_read(struct line *l, git_repository *repo)
{
    git_oid cur;
    size_t cap = 0;
    int rc = git_reference_name_to_id(&cur, repo, HISTORY_MAIN_REF);
    if (rc == GIT_ENOTFOUND)
        return 0;
    if (rc != 0)
        return fail("reading " HISTORY_MAIN_REF);
    for (;;) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, repo, &cur) != 0)
            return fail("reading the main line");
        if (l->n == cap) {
            cap = cap ? cap * 2 : 1024;
            l->id = kcp_realloc(l->id, cap * sizeof(*l->id));
            l->idx = kcp_realloc(l->idx, cap * sizeof(*l->idx));
            l->when = kcp_realloc(l->when, cap * sizeof(*l->when));
        }
        git_oid_cpy(&l->id[l->n], &cur);
        l->idx[l->n] = history_trailer_u64(git_commit_message(c), "Raft-Index");
        l->when[l->n] = (int64_t)git_commit_committer(c)->when.time;
        l->n++;
        bool more = git_commit_parentcount(c) > 0;
        if (more)
            git_oid_cpy(&cur, git_commit_parent_id(c, 0));
        git_commit_free(c);
        if (!more)
            return 0;
    }
}

/* How many of the newest commits both rules keep (at least one). Days count back from the
 * newest commit's date, not the clock: replicas at the same head cut at the same commit. */
static size_t kept_count(const struct line *l, const struct kcp_history_retention *keep)
{
    size_t kept = l->n;
    if (keep->keep_commits && keep->keep_commits < kept)
        kept = (size_t)keep->keep_commits;
    if (keep->keep_days && l->n) {
        int64_t cutoff = l->when[0] - (int64_t)keep->keep_days * 86400;
        size_t k = 1;
        while (k < l->n && l->when[k] >= cutoff)
            k++;
        if (k < kept)
            kept = k;
    }
    return kept ? kept : 1;
}

/* Old id -> rewritten id of the kept commits, sorted by old id. */
struct remap {
    git_oid from, to;
};

static int remap_cmp(const void *a, const void *b)
{
    return git_oid_cmp(&((const struct remap *)a)->from, &((const struct remap *)b)->from);
}

static const git_oid *remap_find(const struct remap *m, size_t n, const git_oid *from)
{
    struct remap key;
    git_oid_cpy(&key.from, from);
    const struct remap *hit = bsearch(&key, m, n, sizeof(*m), remap_cmp);
    return hit ? &hit->to : NULL;
}

/* The cut's message with what the root replaces: a sentence before the trailers, two trailers
 * after them. */
static char *root_message(const char *msg, uint64_t count, uint64_t first, uint64_t last)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *split = NULL;
    for (const char *p = strstr(msg, "\n\n"); p; p = strstr(p + 1, "\n\n"))
        split = p;
    size_t head = split ? (size_t)(split - msg) : strcspn(msg, "\n");
    kcp_buf_append(&b, msg, head);
    kcp_buf_printf(&b,
                   "\n\nHistory before this commit was squashed into it: %" PRIu64
                   " commits, Raft-Index %" PRIu64 "..%" PRIu64 ".\n\n",
                   count, first, last);
    const char *tail = split ? split + 2 : msg + head;
    while (*tail == '\n')
        tail++;
    kcp_buf_puts(&b, tail);
    if (b.len && b.data[b.len - 1] != '\n')
        kcp_buf_puts(&b, "\n");
    kcp_buf_printf(&b,
                   "Squashed-Commits: %" PRIu64 "\nSquashed-Raft-Index: %" PRIu64 "..%" PRIu64 "\n",
                   count, first, last);
    return kcp_buf_detach(&b);
}

/* A commit again with another parent (none: a root) and message; everything else as it was. */
static int rewrite(git_repository *repo, git_commit *c, const git_oid *parent, const char *msg,
                   git_oid *out)
{
    const git_oid *parents[1] = {parent};
    if (git_commit_create_from_ids(out, repo, NULL, git_commit_author(c), git_commit_committer(c),
                                   git_commit_message_encoding(c), msg, git_commit_tree_id(c),
                                   parent ? 1 : 0, parents) != 0)
        return fail("commit");
    return 0;
}

struct conflict_plan {
    char **keep_refs; /* rewritten or unchanged, with their (new) ids */
    git_oid *keep_ids;
    bool *changed;
    size_t nkeep;
    char **drop_refs;
    size_t ndrop;
};

static void plan_free(struct conflict_plan *p)
{
    history_refs_free(p->keep_refs, p->nkeep);
    history_refs_free(p->drop_refs, p->ndrop);
    free(p->keep_ids);
    free(p->changed);
}

/* The message with its Current-Commit trailer pointing at id. */
static char *with_current(const char *msg, const git_oid *id)
{
    const char *key = "\nCurrent-Commit: ";
    const char *at = strstr(msg, key);
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), id);
    if (!at)
        return kcp_strdup(msg);
    at += strlen(key);
    size_t old = strcspn(at, "\n");
    return kcp_sprintf("%.*s%s%s", (int)(at - msg), msg, hex, at + old);
}

/*
 * A conflict is kept when every main-line commit it refers to (its parent, its Current-Commit)
 * is kept, and is then rewritten onto their new ids; one that refers to none is kept when it is
 * not older than the cut. The others are about the squashed past: dropped.
 */
static int plan_conflicts(git_repository *repo, const struct remap *m, size_t nm,
                          uint64_t cut_index, struct conflict_plan *p)
{
    char **refs = NULL;
    size_t n = 0;
    int rc = 0;
    if (history_conflict_refs(repo, &refs, &n) != 0)
        return fail("listing " HISTORY_CONFLICTS_PREFIX);
    p->keep_refs = kcp_calloc(n ? n : 1, sizeof(*p->keep_refs));
    p->keep_ids = kcp_calloc(n ? n : 1, sizeof(*p->keep_ids));
    p->changed = kcp_calloc(n ? n : 1, sizeof(*p->changed));
    p->drop_refs = kcp_calloc(n ? n : 1, sizeof(*p->drop_refs));
    for (size_t i = 0; i < n && rc == 0; i++) {
        git_oid id, cur_id;
        git_commit *c = NULL;
        char *cur = NULL, *msg = NULL;
        const git_oid *parent_to = NULL, *cur_to = NULL;
        if (git_reference_name_to_id(&id, repo, refs[i]) != 0 ||
            git_commit_lookup(&c, repo, &id) != 0) {
            rc = fail("reading a conflict");
            break;
        }
        bool has_parent = git_commit_parentcount(c) > 0;
        bool has_cur = (cur = history_trailer(git_commit_message(c), "Current-Commit")) != NULL &&
                       git_oid_fromstr(&cur_id, cur) == 0;
        if (has_parent)
            parent_to = remap_find(m, nm, git_commit_parent_id(c, 0));
        if (has_cur)
            cur_to = remap_find(m, nm, &cur_id);
        bool keep = (!has_parent || parent_to) && (!has_cur || cur_to) &&
                    (has_parent || has_cur ||
                     history_trailer_u64(git_commit_message(c), "Raft-Index") >= cut_index);
        if (!keep) {
            p->drop_refs[p->ndrop++] = refs[i];
        } else {
            bool changed = (has_parent && !git_oid_equal(parent_to, git_commit_parent_id(c, 0))) ||
                           (has_cur && !git_oid_equal(cur_to, &cur_id));
            git_oid_cpy(&p->keep_ids[p->nkeep], &id);
            if (changed) {
                msg = has_cur ? with_current(git_commit_message_raw(c), cur_to)
                              : kcp_strdup(git_commit_message_raw(c));
                rc = rewrite(repo, c, parent_to, msg, &p->keep_ids[p->nkeep]);
            }
            p->changed[p->nkeep] = changed;
            p->keep_refs[p->nkeep++] = refs[i];
        }
        refs[i] = NULL;
        free(cur);
        free(msg);
        git_commit_free(c);
    }
    history_refs_free(refs, n);
    return rc;
}

static char *pack_dir(git_repository *repo)
{
    return kcp_sprintf("%sobjects/pack", git_repository_path(repo));
}

/* One pack of every object reachable from the new tips; its name into out (41 bytes). */
static int repack(git_repository *repo, const git_oid *head, const struct conflict_plan *p,
                  char *out)
{
    git_packbuilder *pb = NULL;
    git_revwalk *w = NULL;
    char *dir = pack_dir(repo);
    int rc = 0;
    if (git_packbuilder_new(&pb, repo) != 0 || git_revwalk_new(&w, repo) != 0 ||
        git_revwalk_push(w, head) != 0) {
        rc = fail("repack");
        goto done;
    }
    for (size_t i = 0; i < p->nkeep; i++)
        if (git_revwalk_push(w, &p->keep_ids[i]) != 0) {
            rc = fail("repack walk");
            goto done;
        }
    if (git_packbuilder_insert_walk(pb, w) != 0 ||
        git_packbuilder_write(pb, dir, 0, NULL, NULL) != 0) {
        rc = fail("writing the pack");
        goto done;
    }
    snprintf(out, GIT_OID_HEXSZ + 1, "%s", git_packbuilder_name(pb));
done:
    git_revwalk_free(w);
    git_packbuilder_free(pb);
    free(dir);
    return rc;
}

/* kcp-recorded names the old head: it now names the new one, with the same index. */
static void move_recorded(git_repository *repo, const git_oid *old_head, const git_oid *new_head)
{
    char *file = kcp_sprintf("%s" HISTORY_RECORDED_FILE, git_repository_path(repo)), *text = NULL;
    char hex[GIT_OID_HEXSZ + 1];
    unsigned long long idx = 0;
    size_t len = 0;
    git_oid oid;
    if (kcp_file_read(file, 256, &text, &len) == 0 && sscanf(text, "%llu %40s", &idx, hex) == 2 &&
        git_oid_fromstr(&oid, hex) == 0 && git_oid_equal(&oid, old_head)) {
        git_oid_tostr(hex, sizeof(hex), new_head);
        char *line = kcp_sprintf("%llu %s\n", idx, hex);
        if (kcp_file_write_atomic(file, line, strlen(line), 0644) != 0)
            kcp_log(KCP_LOG_WARN, "history", "cannot write %s", file);
        free(line);
    }
    free(text);
    free(file);
}

static int move_refs(git_repository *repo, const git_oid *old_head, const git_oid *new_head,
                     const struct conflict_plan *p)
{
    git_reference *ref = NULL;
    git_refdb *db = NULL;
    if (git_reference_create_matching(&ref, repo, HISTORY_MAIN_REF, new_head, 1, old_head,
                                      "squash") != 0)
        return fail("moving " HISTORY_MAIN_REF);
    git_reference_free(ref);
    move_recorded(repo, old_head, new_head);
    for (size_t i = 0; i < p->nkeep; i++) {
        if (!p->changed[i])
            continue;
        if (git_reference_create(&ref, repo, p->keep_refs[i], &p->keep_ids[i], 1, "squash") != 0)
            return fail("moving a conflict ref");
        git_reference_free(ref);
    }
    for (size_t i = 0; i < p->ndrop; i++)
        if (git_reference_remove(repo, p->drop_refs[i]) != 0)
            return fail("deleting a conflict ref");
    if (git_repository_refdb(&db, repo) != 0 || git_refdb_compress(db) != 0)
        kcp_log(KCP_LOG_WARN, "history", "squash: packing refs failed");
    git_refdb_free(db);
    return 0;
}

/* Deletes every pack but keep_name and every loose object: none is reachable any more. */
static void delete_unreachable(git_repository *repo, const char *keep_name)
{
    char *dir = pack_dir(repo), *objects = kcp_sprintf("%sobjects", git_repository_path(repo));
    char *keep = kcp_sprintf("pack-%s.", keep_name);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "pack-", 5) != 0 || strncmp(de->d_name, keep, strlen(keep)) == 0)
            continue;
        char *p = kcp_sprintf("%s/%s", dir, de->d_name);
        unlink(p);
        free(p);
    }
    if (d)
        closedir(d);
    d = opendir(objects);
    while (d && (de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 2 || strspn(de->d_name, "0123456789abcdef") != 2)
            continue;
        char *sub = kcp_sprintf("%s/%s", objects, de->d_name);
        DIR *sd = opendir(sub);
        struct dirent *se;
        while (sd && (se = readdir(sd)) != NULL) {
            if (se->d_name[0] == '.')
                continue;
            char *p = kcp_sprintf("%s/%s", sub, se->d_name);
            unlink(p);
            free(p);
        }
        if (sd)
            closedir(sd);
        rmdir(sub);
        free(sub);
    }
    if (d)
        closedir(d);
    free(keep);
    free(objects);
    free(dir);
}

static uint64_t object_bytes(git_repository *repo)
{
    struct kcp_history_size s = {0};
    history_object_files(git_repository_path(repo), &s);
    return s.pack_bytes + s.loose_bytes;
}

int kcp_history_squash(struct kcp_history_squash_result *out, const char *path,
                       const struct kcp_history_retention *keep)
{
    git_repository *repo = NULL;
    git_odb *odb = NULL;
    git_odb_backend *mempack = NULL;
    struct line l = {0};
    struct remap *m = NULL;
    struct conflict_plan plan = {0};
    git_commit *c = NULL;
    git_oid parent;
    char *msg = NULL, *prev = NULL, pack[GIT_OID_HEXSZ + 1];
    size_t kept = 0, cut = 0;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    history_git_init();
    if (git_repository_open_bare(&repo, path) != 0) {
        rc = fail("opening the repository");
        goto done;
    }
    if ((rc = line_read(&l, repo)) != 0)
        goto done;
    kept = kept_count(&l, keep);
    cut = kept - 1;
    out->kept = l.n;
    if (kept >= l.n)
        goto done; /* nothing older than what is kept */
    out->bytes_before = object_bytes(repo);
    /* New commits go to memory and reach disk in the one pack (as the recorder's do). */
    if (git_repository_odb(&odb, repo) != 0 || git_mempack_new(&mempack) != 0 ||
        git_odb_add_backend(odb, mempack, 1000) != 0) {
        rc = fail("in-memory object store");
        goto done;
    }

    /* What the root replaces, counting what an earlier squash had folded into the old root. */
    if (git_commit_lookup(&c, repo, &l.id[l.n - 1]) != 0) {
        rc = fail("reading the root");
        goto done;
    }
    out->squashed = l.n - kept + history_trailer_u64(git_commit_message(c), "Squashed-Commits");
    prev = history_trailer(git_commit_message(c), "Squashed-Raft-Index");
    out->first_index = prev ? strtoull(prev, NULL, 10) : l.idx[l.n - 1];
    out->last_index = l.idx[kept];
    git_commit_free(c);
    c = NULL;

    m = kcp_calloc(kept, sizeof(*m));
    for (size_t i = cut + 1; i-- > 0;) {
        if (git_commit_lookup(&c, repo, &l.id[i]) != 0) {
            rc = fail("reading a commit");
            goto done;
        }
        free(msg);
        msg = i == cut ? root_message(git_commit_message_raw(c), out->squashed, out->first_index,
                                      out->last_index)
                       : kcp_strdup(git_commit_message_raw(c));
        git_oid_cpy(&m[i].from, &l.id[i]);
        rc = rewrite(repo, c, i == cut ? NULL : &parent, msg, &m[i].to);
        git_commit_free(c);
        c = NULL;
        if (rc != 0)
            goto done;
        git_oid_cpy(&parent, &m[i].to);
    }
    qsort(m, kept, sizeof(*m), remap_cmp);
    if ((rc = plan_conflicts(repo, m, kept, l.idx[cut], &plan)) != 0)
        goto done;
    if ((rc = repack(repo, &parent, &plan, pack)) != 0)
        goto done;
    if ((rc = move_refs(repo, &l.id[0], &parent, &plan)) != 0)
        goto done;
    git_mempack_reset(mempack);
    delete_unreachable(repo, pack);
    out->kept = kept;
    out->conflicts_dropped = plan.ndrop;
    out->bytes_after = object_bytes(repo);
    kcp_log(KCP_LOG_INFO, "history",
            "squashed %" PRIu64 " commits (Raft-Index %" PRIu64 "..%" PRIu64
            ") into a root; kept %zu commits, dropped %zu conflict branches; objects %" PRIu64
            " -> %" PRIu64 " bytes",
            out->squashed, out->first_index, out->last_index, kept, plan.ndrop, out->bytes_before,
            out->bytes_after);
done:
    plan_free(&plan);
    free(m);
    free(msg);
    free(prev);
    line_free(&l);
    git_odb_free(odb);
    git_repository_free(repo);
    return rc;
}
