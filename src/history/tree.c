/*
 * The head's tree in memory: each directory's entries, read from the repository the first time
 * a write goes through it, so that an entry rewrites only the directories on its paths, each
 * serialized and hashed once (git_tree_create_updated read every tree on the path back from the
 * object store, through a treebuilder, and wrote each through libgit2's odb). The trees are the
 * ones libgit2 wrote before, byte for byte: git's entry order, modes as git writes them, and an
 * emptied directory removed, up to the root (unit test test_golden_ids).
 */
#include "history_int.h"

#include <stdlib.h>
#include <string.h>

static int git_fail(const char *what)
{
    const git_error *e = git_error_last();
    kcp_log(KCP_LOG_ERROR, "history", "git %s: %s", what, e && e->message ? e->message : "error");
    return KCP_EIO;
}

struct history_dirent {
    char *name;
    size_t len;
    uint32_t mode;
    git_oid id;
    struct history_dir *dir; /* the subdirectory, once used */
};

struct history_dir {
    struct history_dirent *e;
    size_t n, cap;
    git_oid id;  /* as last written or read, when has_id */
    bool has_id; /* false: not written yet */
    bool loaded; /* e holds its entries (else they are read from id when needed) */
    bool dirty;  /* an entry changed since id */
};

struct history_dir *history_dir_new(const git_oid *id)
{
    struct history_dir *d = kcp_calloc(1, sizeof(*d));
    if (id) {
        git_oid_cpy(&d->id, id);
        d->has_id = true;
    } else {
        d->loaded = true; /* a new directory: empty */
    }
    return d;
}

void history_dir_free(struct history_dir *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->e[i].name);
        history_dir_free(d->e[i].dir);
    }
    free(d->e);
    free(d);
}

static int dir_load(struct history_rec *r, struct history_dir *d)
{
    git_tree *t = NULL;
    if (d->loaded)
        return 0;
    if (git_tree_lookup(&t, r->repo, &d->id) != 0)
        return git_fail("reading a tree");
    d->n = d->cap = git_tree_entrycount(t);
    d->e = kcp_calloc(d->cap ? d->cap : 1, sizeof(*d->e));
    for (size_t i = 0; i < d->n; i++) {
        const git_tree_entry *te = git_tree_entry_byindex(t, i);
        struct history_dirent *e = &d->e[i];
        e->name = kcp_strdup(git_tree_entry_name(te));
        e->len = strlen(e->name);
        e->mode = (uint32_t)git_tree_entry_filemode_raw(te);
        git_oid_cpy(&e->id, git_tree_entry_id(te));
    }
    git_tree_free(t);
    d->loaded = true;
    return 0;
}

/* git's order of tree entries: a directory's name compares as if it ended in '/'. */
static int name_cmp(const char *a, size_t alen, bool adir, const char *b, size_t blen, bool bdir)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    unsigned char ca = alen > n ? (unsigned char)a[n] : adir ? '/' : 0;
    unsigned char cb = blen > n ? (unsigned char)b[n] : bdir ? '/' : 0;
    return (ca > cb) - (ca < cb);
}

/* Whether d holds name (as a directory or not); *pos: where it is, or would go. */
static bool dir_find(const struct history_dir *d, const char *name, size_t len, bool isdir,
                     size_t *pos)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct history_dirent *e = &d->e[mid];
        int c = name_cmp(e->name, e->len, e->mode == GIT_FILEMODE_TREE, name, len, isdir);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

static struct history_dirent *dir_insert(struct history_dir *d, size_t pos, const char *name,
                                         size_t len, uint32_t mode)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->e = kcp_realloc(d->e, d->cap * sizeof(*d->e));
    }
    memmove(&d->e[pos + 1], &d->e[pos], (d->n - pos) * sizeof(*d->e));
    d->n++;
    d->e[pos] = (struct history_dirent){kcp_strndup(name, len), len, mode, {{0}}, NULL};
    return &d->e[pos];
}

static void dir_remove(struct history_dir *d, size_t pos)
{
    free(d->e[pos].name);
    history_dir_free(d->e[pos].dir);
    memmove(&d->e[pos], &d->e[pos + 1], (d->n - pos - 1) * sizeof(*d->e));
    d->n--;
}

/* The octal mode as git writes it in a tree ("100644", "40000"); returns its length. */
static size_t mode_text(char *out, uint32_t mode)
{
    char t[12];
    size_t n = 0, i = 0;
    do {
        t[n++] = (char)('0' + (mode & 7));
        mode >>= 3;
    } while (mode);
    while (n)
        out[i++] = t[--n];
    return i;
}

/* Writes the changed directories under d, then d (against its previous version). */
static int dir_write(struct history_rec *r, struct history_dir *d)
{
    struct kcp_buf b = KCP_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct history_dir *sub = d->e[i].dir;
        if (sub && sub->dirty) {
            if ((rc = dir_write(r, sub)) != 0)
                return rc;
            git_oid_cpy(&d->e[i].id, &sub->id);
        }
    }
    kcp_buf_reserve(&b, d->n * 64 + 1);
    for (size_t i = 0; i < d->n; i++) {
        const struct history_dirent *e = &d->e[i];
        char m[16];
        size_t ml = e->mode == GIT_FILEMODE_BLOB ? 6 : mode_text(m, e->mode);
        kcp_buf_reserve(&b, ml + 1 + e->len + 1 + GIT_OID_RAWSZ);
        memcpy(b.data + b.len, e->mode == GIT_FILEMODE_BLOB ? "100644" : m, ml);
        b.data[b.len + ml] = ' ';
        memcpy(b.data + b.len + ml + 1, e->name, e->len + 1); /* with its NUL */
        memcpy(b.data + b.len + ml + 1 + e->len + 1, e->id.id, GIT_OID_RAWSZ);
        b.len += ml + 1 + e->len + 1 + GIT_OID_RAWSZ;
    }
    git_oid prev;
    git_oid_cpy(&prev, &d->id);
    rc = history_pack_put(r, GIT_OBJECT_TREE, b.data ? b.data : "", b.len, d->has_id ? &prev : NULL,
                          &d->id);
    if (rc == 0) {
        d->has_id = true;
        d->dirty = false;
    }
    kcp_buf_free(&b);
    return rc;
}

bool history_dir_has_id(const struct history_dir *root, git_oid *out)
{
    git_oid_cpy(out, &root->id);
    return root->has_id;
}

/* The id of the tree under root, writing what changed. */
int history_dir_id(struct history_rec *r, struct history_dir *root, git_oid *out)
{
    int rc = root->dirty || !root->has_id ? dir_write(r, root) : 0;
    if (rc == 0)
        git_oid_cpy(out, &root->id);
    return rc;
}

#define PATH_DEPTH 8 /* of a path; history's are 4 deep */

/*
 * Puts yaml at path (NULL: removes path) in the tree under root. *out_skip: a removal of what
 * the tree lacks. Directories are created as needed and removed when emptied.
 */
int history_dir_apply(struct history_rec *r, struct history_dir *root, const char *path,
                      const struct kcp_buf *yaml, bool *out_skip)
{
    struct history_dir *stack[PATH_DEPTH + 1];
    const char *name[PATH_DEPTH + 1];
    size_t len[PATH_DEPTH + 1], depth = 0, pos;
    const char *p = path, *slash;
    int rc;
    *out_skip = false;
    stack[0] = root;
    while ((slash = strchr(p, '/')) != NULL) {
        struct history_dir *d = stack[depth];
        if (depth == PATH_DEPTH)
            return KCP_EIO;
        if ((rc = dir_load(r, d)) != 0)
            return rc;
        name[depth] = p;
        len[depth] = (size_t)(slash - p);
        if (dir_find(d, p, len[depth], true, &pos)) {
            struct history_dirent *e = &d->e[pos];
            if (!e->dir)
                e->dir = history_dir_new(&e->id);
        } else if (!yaml) {
            *out_skip = true;
            return 0;
        } else {
            dir_insert(d, pos, p, len[depth], GIT_FILEMODE_TREE)->dir = history_dir_new(NULL);
        }
        stack[++depth] = d->e[pos].dir;
        p = slash + 1;
    }
    struct history_dir *d = stack[depth];
    if ((rc = dir_load(r, d)) != 0)
        return rc;
    bool found = dir_find(d, p, strlen(p), false, &pos);
    if (!yaml) {
        if (!found) {
            *out_skip = true;
            return 0;
        }
        dir_remove(d, pos);
        /* git_tree_create_updated drops a directory the update emptied, and so on upwards. */
        while (depth > 0 && stack[depth]->n == 0) {
            depth--;
            if (dir_find(stack[depth], name[depth], len[depth], true, &pos))
                dir_remove(stack[depth], pos);
        }
    } else {
        git_oid blob;
        const git_oid *prev = found ? &d->e[pos].id : NULL;
        if ((rc = history_pack_put(r, GIT_OBJECT_BLOB, yaml->data, yaml->len, prev, &blob)) != 0)
            return rc;
        if (found && d->e[pos].mode == GIT_FILEMODE_BLOB && git_oid_equal(&d->e[pos].id, &blob))
            return 0; /* the same file: nothing changed */
        struct history_dirent *e = found ? &d->e[pos] : dir_insert(d, pos, p, strlen(p), 0);
        e->mode = GIT_FILEMODE_BLOB;
        git_oid_cpy(&e->id, &blob);
    }
    for (size_t i = 0; i <= depth; i++)
        stack[i]->dirty = true;
    return 0;
}
