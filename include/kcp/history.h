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
 * (bounded), and a libuv work-pool thread turns batches of entries into git objects: one commit
 * per entry that changed a recorded object, on refs/heads/main, whose tree holds every object
 * at <group or core>/<resource>/<namespace or _cluster>/<name>.yaml; a write rejected for a
 * stale resourceVersion becomes a commit on refs/conflicts/... whose parent is the commit the
 * writer had read. Commits depend only on the entries, so replicas get identical ids.
 *
 * Threading: kcp_history_open/close/stats run on the loop thread; libgit2 runs only on the work
 * pool, one batch at a time. The CLI reads the repository with libgit2 directly, read-only.
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
    int failed; /* 0, or the libgit2 failure that stopped recording */
};
void kcp_history_stats(const struct kcp_history *h, struct kcp_history_stats *out);

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

#endif
