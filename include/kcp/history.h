/* kcp history: every applied entry as a git commit in a bare repository (docs/HISTORY.md). */
#ifndef KCP_HISTORY_H
#define KCP_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kcp/base.h>
#include <kcp/loop.h>
#include <kcp/store.h>

/*
 * The history module trails the store: the store's applied hook queues each durable entry
 * (bounded), and the recorder's own thread turns batches of entries into git objects: one commit
 * per entry that changed a recorded object, on refs/heads/main, whose tree holds every object
 * at <group or core>/<resource>/<namespace or _cluster>/<name>.yaml; a write rejected for a
 * stale resourceVersion becomes a commit on refs/conflicts/... whose parent is the commit the
 * writer had read. Commits depend only on the entries, so replicas get identical ids.
 *
 * Threading: kcp_history_open/close/stats run on the loop thread; recording runs on one thread
 * of its own at the lowest CPU priority, one batch at a time; the API's reads run on the work
 * pool. The CLI reads the repository with libgit2 directly, read-only.
 */

struct kcp_history;

struct kcp_history_options {
    /* Comma-separated "<group or core>/<resource>" not recorded; NULL: the default,
       "core/events,events.k8s.io/events,coordination.k8s.io/leases" (docs/HISTORY.md). */
    const char *exclude;
    size_t max_queue;          /* entries waiting for git (default 10,000); past it history
                                  falls behind and reads them back from the store */
    size_t max_queue_bytes;    /* ...and at most this many entry bytes (default 16 MiB) */
    size_t max_batch;          /* entries per work-pool batch (default 1,000) */
    uint64_t trim_interval_ms; /* how often recorded entries are released from the store's
                                  retained table (default 30 s); see "Durability" */
    /* Retention (docs/HISTORY.md "Retention"): 0 and 0 keep everything. Otherwise, between
       batches, the main line is squashed to what both rules keep (kcp_history_squash). */
    uint64_t keep_commits;
    uint32_t keep_days;
    uint64_t retain_interval_ms; /* how often retention is applied (default 1 h; the first
                                    time one minute after open, or sooner if this is shorter) */
};
void kcp_history_options_default(struct kcp_history_options *out);

/* DATA/history.git, as a new string the caller frees. */
char *kcp_history_repo_path(const char *data_dir);

/*
 * Opens (creating it) the bare repository at repo_path, installs the store's applied hook, and
 * catches up: entries the repository lacks are read back from the store's retained table (the
 * store must be open with retain_entries), or, if they are gone, one snapshot commit records
 * the store's current objects. opts NULL: defaults. The store must outlive the history.
 * KCP_EIO if the repository cannot be opened or created.
 */
int kcp_history_open(struct kcp_history **out, struct kcp_loop *loop, struct kcp_store *store,
                     const char *repo_path, const struct kcp_history_options *opts);

typedef void (*kcp_history_close_cb)(void *data);
/*
 * Removes the hook, lets the batch in flight finish (entries still queued are not written:
 * they are retained by the store and recorded at the next open), frees the history and calls
 * cb(data). Run the loop until it fires.
 */
void kcp_history_close(struct kcp_history *h, kcp_history_close_cb cb, void *data);

struct kcp_history_stats {
    uint64_t recorded;  /* last entry index written to the repository */
    uint64_t seen;      /* last entry index handed over by the store */
    uint64_t lag;       /* seen - recorded: entries not yet in git */
    uint64_t queued;    /* entries in memory waiting for git */
    uint64_t behind;    /* times the queue was full and history read back from the store */
    uint64_t commits;   /* commits written on refs/heads/main since open */
    uint64_t conflicts; /* conflict commits written since open */
    uint64_t batches;
    uint64_t squashes; /* retention runs that rewrote the main line since open */
    int failed;        /* 0, or the libgit2 failure that stopped recording */
};
void kcp_history_stats(const struct kcp_history *h, struct kcp_history_stats *out);

struct kcp_http_server;
/*
 * Serves the read-only API under /apis/history.kcp.io/v1/ (log, object, diff, conflicts;
 * docs/HISTORY.md "API") on srv, for clients with a cluster certificate. The repository is
 * read on the work pool, never beside a squash. Call before the server starts; h must outlive
 * the server's requests (stop the server before closing h).
 */
int kcp_history_routes(struct kcp_history *h, struct kcp_http_server *srv);

/* ---- Shared with the CLI and the API ---------------------------------------------------- */

/*
 * The tree path of an object named "RESOURCE[.GROUP]/NAMESPACE/NAME" or "RESOURCE[.GROUP]/NAME"
 * (cluster-scoped): "configmaps/default/hist" -> "core/configmaps/default/hist.yaml",
 * "deployments.apps/default/web" -> "apps/deployments/default/web.yaml", "namespaces/shop" ->
 * "core/namespaces/_cluster/shop.yaml". Into out (reset first). KCP_EINVAL on another shape.
 */
int kcp_history_object_path(struct kcp_buf *out, const char *spec);

/*
 * Reads the YAML history writes (kcp_codec_yaml_write's block style) back into a JSON tree
 * the caller frees. KCP_EBADREQUEST on text outside that subset.
 */
int kcp_history_yaml_parse(json_t **out, const char *text, size_t len);

/* ---- Reading a repository (the CLI and the API; src/history/read.c) --------------------- */

/*
 * A repository opened for reading, without a lock (the server may be recording). Use it from
 * one thread at a time. KCP_ENOTFOUND if there is no repository at path.
 */
struct kcp_history_repo;
int kcp_history_repo_open(struct kcp_history_repo **out, const char *path);
void kcp_history_repo_free(struct kcp_history_repo *repo);
/* Why the last call on repo failed, one line ("unknown commit main~99"). Borrowed. */
const char *kcp_history_repo_error(const struct kcp_history_repo *repo);

/* One main-line commit. Strings are borrowed for the callback's duration. */
struct kcp_history_commit {
    char id[41];
    const char *verb;   /* create, update, patch, delete, snapshot, ... */
    const char *object; /* RESOURCE[.GROUP]/[NAMESPACE/]NAME; "" for a snapshot */
    const char *user;
    int64_t time; /* seconds since the epoch, the entry's own */
    uint64_t raft_index;
    unsigned more; /* further objects the same entry changed */
};
/* Return non-zero to stop early (that value is then returned). */
typedef int (*kcp_history_commit_cb)(void *ctx, const struct kcp_history_commit *c);
/*
 * The main line newest first (refs/heads/main's first parents): every commit, or with object
 * set the commits that changed it (then c->object is object). At most limit (0: all);
 * *out_more (may be NULL) says whether the limit cut the list. KCP_EINVAL: not an object name.
 */
int kcp_history_log(struct kcp_history_repo *repo, const char *object, size_t limit,
                    kcp_history_commit_cb cb, void *ctx, bool *out_more);
/*
 * The object's YAML as of commit at (any revspec: id prefix, main~3), appended to out.
 * KCP_EINVAL: not an object name; KCP_ENOTFOUND: unknown commit or no such object there.
 */
int kcp_history_show(struct kcp_buf *out, struct kcp_history_repo *repo, const char *object,
                     const char *at);
/*
 * Unified diff of the object's file between commits from and to, appended to out. NULL from
 * or to: the first and the last commit that changed it; one such commit only: what it did.
 * KCP_ENOTFOUND: unknown commit, or (with a default) no commit changed the object.
 */
int kcp_history_diff(struct kcp_buf *out, struct kcp_history_repo *repo, const char *object,
                     const char *from, const char *to);

/* A write rejected for a stale resourceVersion (a refs/conflicts/... branch). Borrowed. */
struct kcp_history_conflict {
    const char *ref;
    const char *object; /* as in kcp_history_commit */
    const char *user;
    char id[41];      /* the rejected version */
    char current[41]; /* the main-line head when it was rejected (the version that won); "" */
    int64_t time;
    uint64_t raft_index;
    uint64_t read_revision; /* the resourceVersion the writer had read */
};
typedef int (*kcp_history_conflict_cb)(void *ctx, const struct kcp_history_conflict *c);
/* The conflict branches in ref order, at most limit (0: all); *out_more as in log. */
int kcp_history_conflicts(struct kcp_history_repo *repo, size_t limit, kcp_history_conflict_cb cb,
                          void *ctx, bool *out_more);

/* What the repository holds and what it costs (kcp history size). */
struct kcp_history_size {
    uint64_t commits;                 /* on the main line */
    uint64_t first_index, last_index; /* Raft-Index of its oldest and newest commit */
    int64_t oldest_time, newest_time; /* their dates */
    uint64_t head_objects;            /* recorded objects (files) in the head's tree */
    uint64_t conflicts;               /* conflict branches */
    uint64_t packs, pack_bytes;       /* objects/pack: .pack and .idx files */
    uint64_t loose_objects, loose_bytes;
    uint64_t disk_bytes; /* everything under the repository, in allocated blocks */
};
int kcp_history_size(struct kcp_history_size *out, const char *path);

/* ---- Retention (src/history/retain.c) --------------------------------------------------- */

struct kcp_history_retention {
    uint64_t keep_commits; /* keep at most the newest N main-line commits; 0: no limit */
    uint32_t keep_days;    /* keep those dated within D days of the newest commit; 0: no limit */
};
struct kcp_history_squash_result {
    uint64_t squashed;                  /* commits folded into the new root; 0: nothing to do */
    uint64_t first_index, last_index;   /* their Raft-Index range (with earlier squashes) */
    uint64_t kept;                      /* main-line commits after, the root included */
    uint64_t conflicts_dropped;         /* conflict branches about the squashed past */
    uint64_t bytes_before, bytes_after; /* objects on disk (packs and loose) */
};
/*
 * Rewrites the main line so that the oldest commit the rules keep becomes a root holding the
 * whole state as of it (its message says what was squashed), re-parents the newer ones on it
 * (same trees, messages, authors and dates: the same repository and rules give the same ids on
 * every replica), moves refs/heads/main and kcp-recorded, rewrites the conflict branches that
 * refer only to kept commits and deletes the others, then writes one pack of what is reachable
 * and deletes every other pack and loose object. Not safe beside a writer: the server runs it
 * between recorder batches, the CLI only while it holds the data directory's lock. A crash at
 * any point leaves a consistent repository. KCP_EIO on a libgit2 failure (logged).
 */
int kcp_history_squash(struct kcp_history_squash_result *out, const char *path,
                       const struct kcp_history_retention *keep);

#endif
