/* The durable Raft log and hard state (LMDB in logstore.c, segment files in logseg.c): the API. */
#ifndef KCP_CLUSTER_LOGSTORE_H
#define KCP_CLUSTER_LOGSTORE_H

#include <kcp/base.h>
#include <kcp/loop.h>
#include <kcp/raft.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Carries out steps 1, 3 and 7 of a kcp_raft_update (include/kcp/raft.h) and feeds
 * KCP_RAFT_EV_START. Everything is called on the loop thread; entries are written by one batch
 * at a time on libuv's work queue, in one LMDB transaction (one commit, one sync) per batch.
 *
 * Layout: DIR/data.mdb and DIR/lock.mdb (DIR mode 0700, files 0600). Integers are little-endian
 * except log keys.
 *   log:  u64 big-endian index -> u64 term | u8 type | data
 *   meta: "format" -> u32 1; "hard_state" -> u64 term | vote | commit | seq; "snapshot" -> u64
 *         index | u64 term | kcp_raft_config_encode(); "id" -> u64 (cl_logstore_id_*, or
 *         meta_put/get with the same 8 bytes); and the caller's own names (cl_logstore_meta_*).
 *
 * Threads: every LMDB transaction, the worker's included, holds one mutex (so the map can grow
 * from either side). A call that touches LMDB on the loop thread (load, save_hard_state with
 * sync, meta_*, id_*) while a batch commits waits for that batch's write and sync: acceptable
 * for startup, votes and term changes, which are rare. Hard state records carry a sequence
 * number so that a batch formed before a synchronous save never overwrites it with older values.
 *
 * Failure: a write that fails (disk full past the largest map, EIO from the sync) stops the
 * store: that batch's callbacks get KCP_EIO, every queued one KCP_EUNAVAILABLE, and every later
 * call KCP_EUNAVAILABLE. What is on disk stays a consistent earlier state (LMDB commits are
 * atomic), so the node can restart from it rather than diverge.
 */

struct cl_logstore;

#define CL_LOGSTORE_META_NAME_MAX 64          /* bytes of a meta name, NUL excluded */
#define CL_LOGSTORE_META_VALUE_MAX (1u << 20) /* bytes of a meta value */

struct cl_logstore_options {
    size_t map_size;     /* LMDB map at open (default 1 GiB) */
    size_t max_map_size; /* on MDB_MAP_FULL the map doubles up to this (default 8 GiB) */
};

/*
 * Opens (creating) the log in dir. On success *out is the caller's until cl_logstore_close.
 * KCP_EIO when the directory or LMDB cannot be opened or holds an unknown format (logged).
 */
int cl_logstore_open(struct cl_logstore **out, struct kcp_loop *loop, const char *dir);
/* The same with options (NULL or zero fields: defaults); tests use small maps. */
int cl_logstore_open_opts(struct cl_logstore **out, struct kcp_loop *loop, const char *dir,
                          const struct cl_logstore_options *opts);

/*
 * Everything on disk, for KCP_RAFT_EV_START: the hard state (zero if never saved), the snapshot
 * meta (has_snapshot false if none), and every log entry in index order. Entries are contiguous
 * and the first is at most snap_index + 1 (1 without a snapshot). What was queued and is not
 * yet durable is not included. The caller owns out and frees it with cl_logstore_loaded_free.
 * KCP_EIO (logged) when a record is corrupt or the log has a gap.
 */
struct cl_logstore_loaded {
    struct kcp_raft_hard_state hs;
    bool has_snapshot;
    uint64_t snap_index, snap_term;
    struct kcp_raft_config snap_config;
    struct kcp_raft_entry *entries; /* each data.base its own allocation (NULL when len is 0) */
    size_t n;
};
int cl_logstore_load(struct cl_logstore *ls, struct cl_logstore_loaded *out);
void cl_logstore_loaded_free(struct cl_logstore_loaded *l);

/*
 * Hard state (update step 1). sync = true: written and synced before return (votes and terms
 * must be durable before any message of the same update leaves); may wait for a batch being
 * committed. sync = false: kept and written with the next batch (a lost commit hint is
 * harmless); a later save, sync or not, supersedes it. close writes one still pending. The
 * commit is written as given: the core's is already at most its persisted index.
 * KCP_EIO when the sync write fails (the store stops), KCP_EUNAVAILABLE after a failure,
 * KCP_ECLOSED once closing.
 */
int cl_logstore_save_hard_state(struct cl_logstore *ls, const struct kcp_raft_hard_state *hs,
                                bool sync);

/*
 * Queues (update step 3): delete entries >= truncate_from (0: none), then append entries (copied
 * now, data too). After the truncation, entries[0].index must be one past the last index the
 * queue leaves (the snapshot index when the log is empty) and the entries must be contiguous:
 * KCP_EINVAL otherwise. n may be 0: a truncation alone, or a barrier whose callback says that
 * everything queued before it is durable.
 *
 * Operations apply in queue order. Appends queued while a batch is written go into the next
 * batch, however many. When a batch is durable, cb(ls, 0, data) fires for each of its appends
 * in order (the caller then steps KCP_RAFT_EV_PERSISTED with the last index and term it
 * queued). When it fails: KCP_EIO for that batch, then KCP_EUNAVAILABLE for each queued append.
 * Returns 0 (cb will fire exactly once), KCP_EINVAL, KCP_EUNAVAILABLE after a failure or
 * KCP_ECLOSED once closing (cb never fires). cb may call any function here, close included.
 */
typedef void (*cl_logstore_cb)(struct cl_logstore *ls, int status, void *data);
int cl_logstore_append(struct cl_logstore *ls, uint64_t truncate_from,
                       const struct kcp_raft_entry *entries, size_t n, cl_logstore_cb cb,
                       void *data);

/*
 * Queues (update step 7, or step 2 with upto = UINT64_MAX): records a snapshot's meta (cfg is
 * copied) and deletes entries <= upto. It rides in the next batch, in queue order with appends,
 * and starts none by itself: an install that must be durable before step 4 queues a barrier
 * (cl_logstore_append with n = 0) after it and waits for its callback. upto must leave a log
 * that starts at most at snap_index + 1 (upto <= snap_index, or the whole log): KCP_EINVAL.
 * KCP_EUNAVAILABLE after a failure, KCP_ECLOSED once closing.
 */
int cl_logstore_compact(struct cl_logstore *ls, uint64_t snap_index, uint64_t snap_term,
                        const struct kcp_raft_config *cfg, uint64_t upto);

/*
 * The caller's own small values (the node name, ...), synchronous and durable on return; may
 * wait for a batch being committed. name: 1 to CL_LOGSTORE_META_NAME_MAX bytes, not "format",
 * "hard_state" or "snapshot" (KCP_EINVAL); len at most CL_LOGSTORE_META_VALUE_MAX
 * (KCP_ETOOLARGE). get: *out is a new allocation (free()), NUL-terminated after *out_len for
 * convenience; KCP_ENOTFOUND when absent. KCP_EIO on an LMDB error (a failed put stops the
 * store); put: KCP_EUNAVAILABLE after a failure, KCP_ECLOSED once closing.
 */
int cl_logstore_meta_put(struct cl_logstore *ls, const char *name, const void *val, size_t len);
int cl_logstore_meta_get(struct cl_logstore *ls, const char *name, void **out, size_t *out_len);

/* This server's Raft id ("id" in meta), durable on return. get: KCP_ENOTFOUND when unset. */
int cl_logstore_id_set(struct cl_logstore *ls, uint64_t id);
int cl_logstore_id_get(struct cl_logstore *ls, uint64_t *out);

/*
 * Counters since open. fsyncs counts durable commits (a batch that changed something, and every
 * synchronous write); LMDB's commit is an fdatasync of data.mdb plus an O_DSYNC write of its
 * meta page. bytes_written counts keys and values put, not the B-tree pages around them.
 */
struct cl_logstore_stats {
    uint64_t batches, fsyncs, entries_written, bytes_written;
};
void cl_logstore_stats(const struct cl_logstore *ls, struct cl_logstore_stats *out);

/*
 * Lets queued operations finish (writing a pending hard state), then frees ls; cb(data) fires
 * after every append callback, from a later loop turn (run the loop). Writes asked for after
 * close return KCP_ECLOSED; reads work until cb. Once only.
 */
void cl_logstore_close(struct cl_logstore *ls, void (*cb)(void *data), void *data);

#endif
