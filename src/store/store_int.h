/* Internals shared by the store's files: the store, its maps, the pipeline, history, watchers. */
#ifndef KCP_STORE_INT_H
#define KCP_STORE_INT_H

#include <kcp/store.h>

#include <lmdb.h>
#include <uv.h>

/* ---- obj.c ------------------------------------------------------------------------------ */

struct store_enc {
    struct {
        void *data;
        size_t len;
        void (*free_fn)(void *);
    } slot[KCP_OBJ_ENC_MAX];
};

/*
 * A new object (refs = 1) for key holding json with metadata.resourceVersion set to
 * mod_revision (json_rv.c). KCP_EINVALID if json is not an object with an object metadata.
 */
int store_obj_build(struct kcp_obj **out, const char *key, size_t key_len, const char *json,
                    size_t json_len, uint64_t mod_revision, uint64_t create_revision);
/* A new object from bytes already stamped (loading from LMDB). KCP_EINVALID if not an object. */
int store_obj_load(struct kcp_obj **out, const char *key, size_t key_len, const char *json,
                   size_t json_len, uint64_t mod_revision, uint64_t create_revision);
/* Stamps "resourceVersion":"rv" into the object text's metadata, keeping every other byte. */
int store_json_set_rv(struct kcp_buf *out, const char *json, size_t len, uint64_t rv);

/* ---- map.c: an ordered map (skiplist) of key -> object, used for the cache and overlay -- */

#define STORE_MAP_LEVELS 24
struct store_node {
    struct kcp_obj *obj; /* a reference owned by the map; NULL marks a deletion (overlay) */
    uint64_t tag;        /* overlay: index of the entry that wrote it */
    size_t key_len;
    char *key; /* points into this allocation, after next[] */
    int level;
    struct store_node *next[];
};
struct store_map {
    struct store_node *head;
    int level;
    size_t count;
    uint64_t rng;
};
void store_map_init(struct store_map *m);
void store_map_free(struct store_map *m);
struct store_node *store_map_find(const struct store_map *m, const void *key, size_t len);
/* The first node with key >= (or > when after) the given key; NULL at the end. */
struct store_node *store_map_seek(const struct store_map *m, const void *key, size_t len,
                                  bool after);
static inline struct store_node *store_map_first(const struct store_map *m)
{
    return m->head->next[0];
}
static inline struct store_node *store_map_next(const struct store_node *n)
{
    return n->next[0];
}
/* Sets key to obj (whose reference moves to the map; the old one is dropped). */
void store_map_put(struct store_map *m, const void *key, size_t len, struct kcp_obj *obj,
                   uint64_t tag);
/* Removes key, dropping its reference. No-op when absent. */
void store_map_del(struct store_map *m, const void *key, size_t len);
int store_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* ---- the pipeline: an entry applied in memory, waiting to be durable -------------------- */

struct store_applied {
    struct store_applied *next;
    uint64_t index;
    char *bytes; /* the entry's own copy; entry points into it */
    size_t len;
    struct kcp_store_entry entry;
    struct kcp_store_result result;
    struct kcp_store_op_result *ops; /* references on prev and obj */
    struct kcp_store_req *req;       /* NULL for a peer's entry */
};

struct store_batch {
    uv_work_t work;
    struct kcp_store *s;
    struct store_applied *head;
    size_t n;
    uint64_t last_index;
    uint64_t trim_to; /* retained entries up to here are deleted in this transaction */
    bool deferred;    /* its entries were published before it was written */
    /* Written by the worker, read after it. */
    int rc;
    uint64_t bytes;
    size_t map_size;
};

/* ---- history.c: the bounded ring of recent events --------------------------------------- */

struct store_event_rec {
    uint64_t revision;
    struct kcp_obj *obj;  /* reference; for DELETED the object as deleted */
    struct kcp_obj *prev; /* reference or NULL */
    uint8_t type;
};
struct store_history {
    struct store_event_rec *ring;
    size_t cap, head, count;
    size_t bytes;
    size_t max_bytes;
    uint64_t floor; /* every event with a revision above floor is in the ring */
};
void store_history_init(struct store_history *h, size_t max_events, size_t max_bytes,
                        uint64_t floor);
void store_history_free(struct store_history *h);
/* Appends (taking new references) and evicts the oldest past either bound. */
void store_history_append(struct store_history *h, uint8_t type, uint64_t revision,
                          const struct kcp_obj *obj, const struct kcp_obj *prev);
static inline struct store_event_rec *store_history_at(const struct store_history *h, size_t i)
{
    return &h->ring[(h->head + i) % h->cap];
}
/* Position of the first event with revision > rev (count if none). */
size_t store_history_after(const struct store_history *h, uint64_t rev);

/* ---- watch.c ---------------------------------------------------------------------------- */

struct kcp_store_watch {
    struct kcp_store *s;
    struct kcp_store_watch *prev, *next;
    char *prefix;
    size_t prefix_len;
    uint64_t from; /* deliver events with a revision above this */
    kcp_store_watch_cb cb;
    void *ctx;
    bool live;      /* replayed; receives events as they are published */
    bool cancelled; /* waiting for the fan-out to unwind before it is freed */
};
void store_watch_publish(struct kcp_store *s, const struct kcp_store_event *ev);
/* Replays history to watches registered since the last call. */
void store_watch_replay(struct kcp_store *s);
/* Ends every watch with an ERROR event carrying err (KCP_ECLOSED at close, KCP_EGONE after a
 * snapshot install). */
void store_watch_end_all(struct kcp_store *s, int err);

/* ---- the store -------------------------------------------------------------------------- */

struct kcp_store {
    struct kcp_loop *loop;
    struct kcp_store_options opts;
    MDB_env *env;
    MDB_dbi dbi_objects, dbi_meta, dbi_entries;
    size_t map_size;
    /* Held by a reader of retained entries on the loop thread, and by the worker while it grows
     * the map: mdb_env_set_mapsize must not run while any transaction is open. */
    uv_mutex_t resize_lock;
    uint64_t trim_to; /* kcp_store_trim_retained: the next batch deletes entries up to here */

    struct store_map cache;   /* durable state: what readers see */
    struct store_map overlay; /* keys written by entries not yet durable */
    uint64_t durable;         /* last durable index: the revision readers see */
    uint64_t delivered;       /* last index whose events every live watch has received */
    uint64_t tail;            /* last index handed to apply */

    struct store_applied *pending, **pending_last; /* applied, waiting for a batch */
    size_t npending;
    struct store_batch *inflight; /* the batch being committed off the loop thread */
    uv_idle_t kick;               /* starts batches, replays and the close at the next turn */
    bool kick_active;
    int failed; /* a commit failed: writes stop (never diverge) */
    int handles_open;
    uint64_t synced; /* last index whose LMDB commit is durable: where a restart comes back */

    /*
     * Deferred durability (kcp_store_set_deferred): the proposer's log is the durable copy, so
     * entries are published at the next loop turn and reach LMDB later, many per transaction.
     */
    uint32_t defer_ms;                               /* 0: off */
    struct store_applied *unsynced, **unsynced_last; /* published, not yet in a batch */
    size_t nunsynced;
    uint64_t flush_upto; /* kcp_store_flush: commit at once until synced reaches this */
    uv_timer_t defer_timer;

    struct store_history hist;
    struct kcp_store_watch *watches; /* doubly linked, newest first */
    size_t nwatches;
    bool replay_wanted;
    int fanout_depth;
    bool zombies;

    struct kcp_store_proposer *proposer;
    struct kcp_store_proposer local;
    kcp_store_applied_cb hook;
    void *hook_data;
    kcp_store_install_cb install_hook;
    void *install_data;

    bool closing;
    kcp_store_close_cb close_cb;
    void *close_data;

    struct kcp_store_stats st;
};

/* Arms the idle handle so store_on_kick runs at the next loop turn. */
void store_kick(struct kcp_store *s);

/* apply.c: phase one of apply, on the loop thread: preconditions, new versions, the overlay. */
void store_apply_entry(struct kcp_store *s, uint64_t index, uint64_t term, const void *entry,
                       size_t len,
                       struct kcp_store_req *req);
/* Releases an applied entry's references and memory (not its req). */
void store_applied_free(struct store_applied *a);

/* commit.c: group commit and publication. */
void store_commit_start(struct kcp_store *s);
/* Entries written to LMDB in a batch (the pending or, deferred, the unsynced queue) and in
 * flight: what propose counts against max_pending. */
size_t store_queued(const struct kcp_store *s);
/* Fails every pending entry (writes stop): after a commit error. */
void store_fail(struct kcp_store *s, int err, struct store_applied *batch_head);

/* lmdb.c */
int store_lmdb_open(struct kcp_store *s, const char *dir);
void store_lmdb_close(struct kcp_store *s);
/* Writes a batch in one transaction (worker thread; touches no refcount). */
int store_lmdb_write(struct kcp_store *s, struct store_batch *b);
#define STORE_RECORD_HEADER 17 /* u8 version, u64 mod revision, u64 create revision */
/* In a write transaction: obj's record into `objects` (flags: 0 or MDB_APPEND), and the applied
 * index into `meta`. Both add the logical bytes to *bytes. LMDB codes. */
int store_lmdb_put_object(struct kcp_store *s, MDB_txn *txn, const struct kcp_obj *obj,
                          unsigned flags, uint64_t *bytes);
int store_lmdb_put_applied(struct kcp_store *s, MDB_txn *txn, uint64_t index, uint64_t *bytes);

/* retain.c: the retained-entries database (kcp_store_retained). */
/* In the open transaction: creates or drops the table per opts.retain_entries. */
int store_retain_open(struct kcp_store *s, MDB_txn *txn);
/* In a batch's write transaction: appends its entries, then trims up to b->trim_to. */
int store_retain_write(struct kcp_store *s, MDB_txn *txn, struct store_batch *b);
void store_be64(unsigned char *p, uint64_t v);
/* In a write transaction: drops every retained entry and starts the floor at `floor` (a
 * snapshot install); a no-op without retain_entries. LMDB codes. */
int store_retain_reset(struct kcp_store *s, MDB_txn *txn, uint64_t floor);

/* propose_local.c */
void store_proposer_local_init(struct kcp_store *s);

/* entry.c */
uint32_t store_crc32c(uint32_t crc, const void *data, size_t len);

#endif
