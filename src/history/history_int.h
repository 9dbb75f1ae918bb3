/* Internal to the history module: object naming, rendering, the recorder and the loop side. */
#ifndef KCP_HISTORY_INT_H
#define KCP_HISTORY_INT_H

#include <kcp/history.h>

#include <git2.h>

#define HISTORY_MAIN_REF "refs/heads/main"
#define HISTORY_CONFLICTS_PREFIX "refs/conflicts/"
/* "<last index> <main commit id>\n": see history_rec_flush (record.c names it INDEX_FILE). */
#define HISTORY_RECORDED_FILE "kcp-recorded"

/* ---- render.c: store keys -> tree paths, exclusion rules, YAML without churn ------------ */

/* A store key "/<group>/<resource>/<namespace or _>/<name>", split (pointers into the key). */
struct history_key {
    const char *group, *resource, *ns, *name;
    size_t group_len, resource_len, ns_len, name_len;
};
/* KCP_EINVAL if key does not have that shape (such keys are not recorded). */
int history_key_parse(struct history_key *out, const char *key, size_t len);
/* "<group>/<resource>/<namespace or _cluster>/<name>.yaml" into out (reset first). */
void history_key_path(struct kcp_buf *out, const struct history_key *k);
/* "resource[.group]/namespace/name" or "resource[.group]/name", the CLI's spelling, appended. */
void history_key_spec(struct kcp_buf *out, const struct history_key *k);
/* The same with every byte outside [A-Za-z0-9._-] as %XX, for ref names; appended. */
void history_key_ref(struct kcp_buf *out, const struct history_key *k);

/* Resources not recorded, as "<group>/<resource>" strings. */
struct history_rules {
    char **skip;
    size_t n;
};
void history_rules_init(struct history_rules *r, const char *spec);
void history_rules_free(struct history_rules *r);
bool history_rules_skip(const struct history_rules *r, const struct history_key *k);

/*
 * The file an object becomes: its JSON as YAML (sorted keys) without metadata.resourceVersion
 * and managedFields[].time, which change on every write without saying anything. Appends to
 * out. KCP_EINVALID if json is not a JSON object.
 */
int history_render(struct kcp_buf *out, const char *json, size_t len);
/* The same through a jansson tree and kcp_codec_yaml_write: any JSON (render.c). */
int history_render_json(struct kcp_buf *out, const char *json, size_t len);
/* The same without jansson for the JSON the API writes (render_fast.c); false, with nothing
 * appended, for anything else. */
bool history_render_fast(struct kcp_buf *out, const char *json, size_t len);

/* ---- record.c: entries -> git objects (one thread at a time; no loop, no store) --------- */

/* Which main-branch commit holds the state as of each entry index, for conflict parents. */
struct history_idmap {
    uint64_t *idx;
    git_oid *oid;
    size_t n, cap;
};

struct history_rec {
    uint64_t term; /* the Raft term of the entry being recorded (its Raft-Term trailer) */
    git_repository *repo;
    git_odb *odb;
    struct history_pack *pack; /* the batch's objects until flushed (pack.c; odb owns it) */
    char **pending_refs; /* conflict refs to create at the flush, once their pack is on disk */
    git_oid *pending_ids;
    size_t npending;
    size_t loose_refs; /* conflict refs written since refs were last packed */
    char **small;      /* names of the packs written since the last fold (pack.c) */
    size_t nsmall;
    struct history_rules rules;
    git_oid head; /* refs/heads/main, valid when has_head */
    bool has_head;
    struct history_dir *tree; /* the head's tree, its directories loaded as used (tree.c) */
    uint64_t last;            /* last entry index processed (recorded or skipped) */
    struct history_idmap map;
    uint64_t commits, conflicts;
};

/* ---- tree.c: a tree in memory, written back directory by directory --------------------- */

struct history_dir;
/* The tree id (its directories read as they are needed), or a new empty one (id NULL). */
struct history_dir *history_dir_new(const git_oid *id);
void history_dir_free(struct history_dir *d);
/*
 * Puts yaml at path (NULL: removes path) in the tree under root: the blob to the batch
 * (history_pack_put), directories created as needed and removed when emptied. *out_skip: a
 * removal of what the tree lacks.
 */
int history_dir_apply(struct history_rec *r, struct history_dir *root, const char *path,
                      const struct kcp_buf *yaml, bool *out_skip);
/* The id of the tree under root, writing the directories that changed. */
int history_dir_id(struct history_rec *r, struct history_dir *root, git_oid *out);
/* Whether root has been written or read (a new empty tree has no id yet), and its id. */
bool history_dir_has_id(const struct history_dir *root, git_oid *out);

/* libgit2's global state, once per process (thread-safe). */
void history_git_init(void);
/*
 * Opens (creating a bare repository with HEAD -> refs/heads/main) the repository at path and
 * reads the last recorded index. exclude as in kcp_history_options. KCP_EIO on failure (logged).
 */
int history_rec_open(struct history_rec *r, const char *path, const char *exclude);
void history_rec_close(struct history_rec *r);
/*
 * Records one applied entry (skipped if index <= r->last): a commit on the main line when a
 * recorded object changed, a commit on refs/conflicts/... per op rejected with KCP_ECONFLICT.
 * ops[i] carries err and applied (prev/obj are not read). KCP_EIO on a libgit2 failure.
 */
int history_rec_entry(struct history_rec *r, uint64_t index, const struct kcp_store_entry *e,
                      const struct kcp_store_op_result *ops, size_t nops);
/* One object of a snapshot (borrowed). */
struct history_snap_obj {
    const char *key;
    size_t key_len;
    const char *json;
    size_t json_len;
};
/* A commit whose tree is exactly objs (the store's state at index), when entries were lost. */
int history_rec_snapshot(struct history_rec *r, uint64_t index, int64_t wall_s,
                         const struct history_snap_obj *objs, size_t n);
/* Moves refs/heads/main to the head and notes the last index (no fsync: docs/HISTORY.md). */
int history_rec_flush(struct history_rec *r);
/* The main-line commit holding the state as of revision; KCP_ENOTFOUND if none. */
int history_rec_commit_at(struct history_rec *r, uint64_t revision, git_oid *out);

/* ---- thread.c: the recorder's own thread, at the lowest CPU priority ------------------- */

struct history_thread;
/* Starts the thread; KCP_EIO if it cannot be created. */
int history_thread_start(struct history_thread **out, uv_loop_t *loop);
/* Runs work(arg) on the thread, then done(arg) on the loop. One job at a time: the caller
 * submits the next one only after done. */
void history_thread_submit(struct history_thread *t, void (*work)(void *), void (*done)(void *),
                           void *arg);
/* Ends the thread (no job may be running) and frees it; closed(data) on the loop after. */
void history_thread_stop(struct history_thread *t, void (*closed)(void *), void *data);

/* pack.c: the batch's objects in memory (an odb backend), then one pack; every 32, one. */
int history_pack_open(struct history_rec *r);
/* Adds an object (unless it exists), as a delta against base (an earlier version) if small. */
int history_pack_put(struct history_rec *r, git_object_t type, const void *data, size_t len,
                     const git_oid *base, git_oid *out);
int history_pack_write(struct history_rec *r);
int history_pack_fold(struct history_rec *r);
void history_pack_free(struct history_rec *r);

/* The value of trailer key in a commit message ("Raft-Index"), or 0 if absent. */
uint64_t history_trailer_u64(const char *message, const char *key);

/* ---- read.c: helpers shared with retain.c ----------------------------------------------- */

/* The (last) value of trailer key as a new string, or NULL. */
char *history_trailer(const char *message, const char *key);
/* The names of refs/conflicts/..., newest (highest index) first; free with history_refs_free. */
int history_conflict_refs(git_repository *repo, char ***out, size_t *out_n);
void history_refs_free(char **refs, size_t n);
/* Adds the pack and loose object counts and bytes under gitdir to s. */
void history_object_files(const char *gitdir, struct kcp_history_size *s);

/* ---- history.c: the API's reads beside the recorder (api.c) ----------------------------- */

/*
 * A read of the repository by the API. Reads run on the work pool beside recorder batches but
 * never beside a squash, which deletes packs: history_read_begin calls start (on the loop) now,
 * or after the squash in progress or due; start queues the work, whose after-work callback
 * calls history_read_end. A read still waiting when the history closes gets cancel instead.
 */
struct history_read {
    struct history_read *next;
    void (*start)(struct history_read *rd);
    void (*cancel)(struct history_read *rd);
};
void history_read_begin(struct kcp_history *h, struct history_read *rd);
void history_read_end(struct kcp_history *h);
/* The repository's path (as given to kcp_history_open), and the loop. */
const char *history_repo_dir(const struct kcp_history *h);
uv_loop_t *history_uv(const struct kcp_history *h);

#endif
