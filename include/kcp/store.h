/* kcp store: the one write path (entry, propose, apply), LMDB, the object cache, list, watch. */
#ifndef KCP_STORE_H
#define KCP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kcp/base.h>
#include <kcp/loop.h>

/*
 * Every mutation of the cluster is one entry: a deterministic, self-contained description built
 * by the API layer (uids, timestamps, allocations are all decided before it), encoded to bytes,
 * proposed, and applied. Apply is a pure function of (state, index, entry), so Raft replicas that
 * apply the same committed entries reach the same state, and the history module can record each
 * applied entry. docs/STORE.md describes the write path, the disk layout and the history window.
 *
 * Threading: every function here runs on the loop thread; every callback fires on it.
 *
 * Keys are byte strings without NUL, 1..KCP_STORE_MAX_KEY bytes, ordered by memcmp. The API
 * layer's convention (kcp_store_key) is "/<group>/<resource>/<namespace>/<name>" with "core" for
 * the legacy group and "_" for cluster-scoped objects, so that "/<group>/<resource>/" lists a
 * resource and "/<group>/<resource>/<namespace>/" lists one namespace, both as ordered scans.
 * Values are JSON object texts (Kubernetes objects).
 */

/* Format limits: fixed, so that every replica decodes the same bytes the same way. */
#define KCP_STORE_MAX_KEY 511           /* LMDB's default maximum key size */
#define KCP_STORE_MAX_OPS 65536         /* ops in one entry */
#define KCP_STORE_MAX_ENTRY (64u << 20) /* encoded entry bytes */
#define KCP_STORE_MAX_META 1024         /* verb, user and request id, each */

/* ---- Objects ---------------------------------------------------------------------------- */

/* Lazily built encodings an object can carry, each built once and shared by every reader. */
enum kcp_obj_encoding {
    KCP_OBJ_ENC_JSON,     /* JSON as served (e.g. re-encoded in upstream field order) */
    KCP_OBJ_ENC_PROTOBUF, /* the object's protobuf message (no envelope), as list items */
    KCP_OBJ_ENC_TABLE,    /* a meta.k8s.io Table row */
    KCP_OBJ_ENC_META,     /* PartialObjectMetadata */
    KCP_OBJ_ENC_MAX
};

/*
 * One version of one object: immutable and refcounted. The store holds a reference while the
 * object is current (cache) or in the event history; readers borrow it for a callback, or take
 * their own reference with kcp_obj_ref and drop it with kcp_obj_unref. Loop thread only.
 */
struct kcp_obj {
    const char *key; /* NUL-terminated; key_len excludes the NUL */
    size_t key_len;
    const char *json;         /* the stored JSON text, metadata.resourceVersion = mod_revision */
    size_t json_len;          /* NUL-terminated too */
    uint64_t mod_revision;    /* index of the entry that wrote this version */
    uint64_t create_revision; /* index of the entry that created the object */
    json_t *doc;              /* parsed json, shared: never modify it (json_incref to keep it) */
    /* Private. */
    uint32_t refs;
    struct store_enc *enc;
};
struct kcp_obj *kcp_obj_ref(const struct kcp_obj *obj);
/* Drops a reference; the last one frees the object, its doc and its encodings. NULL is a no-op. */
void kcp_obj_unref(const struct kcp_obj *obj);
/* A cached encoding, or NULL if none was set. The bytes live as long as the object. */
const void *kcp_obj_encoding(const struct kcp_obj *obj, enum kcp_obj_encoding slot,
                             size_t *out_len);
/*
 * Attaches an encoding (ownership of data moves to the object; free_fn(data) runs when the
 * object is freed). If the slot is already set, data is freed with free_fn at once and the
 * existing encoding is kept: the first builder wins, so readers never see the bytes change.
 * Returns the encoding the slot now holds.
 */
const void *kcp_obj_set_encoding(const struct kcp_obj *obj, enum kcp_obj_encoding slot, void *data,
                                 size_t len, void (*free_fn)(void *), size_t *out_len);

/* ---- Entries ---------------------------------------------------------------------------- */

enum kcp_store_op_type { KCP_STORE_PUT = 1, KCP_STORE_DELETE = 2 };
enum kcp_store_precond {
    KCP_STORE_IF_ANY = 0,      /* no precondition */
    KCP_STORE_IF_ABSENT = 1,   /* create: KCP_EEXIST if the key exists */
    KCP_STORE_IF_PRESENT = 2,  /* KCP_ENOTFOUND if the key does not exist */
    KCP_STORE_IF_REVISION = 3, /* KCP_ECONFLICT unless the key's mod revision is `revision`
                                  (KCP_ENOTFOUND if it does not exist) */
};
/* Entry flags. */
#define KCP_STORE_ATOMIC 1u /* if any op's precondition fails, no op is applied */
/* The IF_REVISION preconditions were chosen by the server for its own read-modify-write (the
 * client sent no resourceVersion; the API retries a rejection itself), so a rejection is not a
 * conflict anyone saw: history does not record it as a conflict branch. */
#define KCP_STORE_SERVER_PRECOND 2u
#define KCP_STORE_FLAGS (KCP_STORE_ATOMIC | KCP_STORE_SERVER_PRECOND)

struct kcp_store_op {
    enum kcp_store_op_type type;
    enum kcp_store_precond precond;
    uint64_t revision; /* KCP_STORE_IF_REVISION only; 0 otherwise */
    const char *key;
    size_t key_len;
    const char *value; /* PUT: a JSON object text; DELETE: NULL */
    size_t value_len;
};

/*
 * A decoded or to-be-encoded entry. Ops are applied independently unless KCP_STORE_ATOMIC; one
 * entry never names the same key twice. verb/user/request_id are NUL-terminated, without NUL,
 * at most KCP_STORE_MAX_META bytes; they and the timestamp are history metadata only.
 */
struct kcp_store_entry {
    uint32_t flags;
    int64_t wall_s;   /* wall-clock time decided by the proposer */
    uint32_t wall_ns; /* < 1e9 */
    const char *verb;
    const char *user;
    const char *request_id;
    size_t nops;
    const struct kcp_store_op *ops;
    /* Private: what decode allocated. */
    void *alloc;
};

/* Encodes e into out (appended). KCP_EINVAL if e breaks a format rule or limit. */
int kcp_store_entry_encode(struct kcp_buf *out, const struct kcp_store_entry *e);
/*
 * Decodes and checks an entry. On success out's keys and values point into data (which must
 * outlive out) and kcp_store_entry_free(out) releases the rest. KCP_EBADREQUEST on any
 * malformed input (out is then left empty, nothing to free).
 */
int kcp_store_entry_decode(struct kcp_store_entry *out, const void *data, size_t len);
void kcp_store_entry_free(struct kcp_store_entry *e);

/* Builds "/<group or core>/<resource>/<namespace or _>/<name>" into out (reset first). A NULL or
 * empty group is "core"; a NULL or empty namespace is "_". With name NULL, the prefix (ending in
 * '/') that lists the resource (namespace NULL) or one namespace. */
void kcp_store_key(struct kcp_buf *out, const char *group, const char *resource,
                   const char *namespace_, const char *name);

/* ---- The store -------------------------------------------------------------------------- */

struct kcp_store;

struct kcp_store_options {
    size_t map_size;        /* LMDB map size at open (default 1 GiB) */
    size_t max_map_size;    /* on MDB_MAP_FULL the map doubles up to this (default 8 GiB) */
    size_t history_events;  /* events kept for watch replay and old lists (default 10,000) */
    size_t history_bytes;   /* ...and at most this many object bytes (default 64 MiB) */
    size_t max_watchers;    /* KCP_ETOOMANY past it (default 10,000) */
    size_t max_value_bytes; /* a PUT value; KCP_ETOOLARGE past it (default 1.5 MiB) */
    size_t max_pending;     /* entries applied but not yet in LMDB; KCP_ETOOMANY past it
                               (default 100,000) */
    size_t max_batch;       /* entries in one LMDB transaction (default 10,000) */
    bool retain_entries;    /* keep every applied entry in LMDB until kcp_store_trim_retained
                               (for the history module's crash recovery; default false) */
};
void kcp_store_options_default(struct kcp_store_options *out);

/*
 * Opens (creating it, mode 0700, files 0600) the store in dir: LMDB env, last applied index,
 * and every object into the cache. opts NULL: defaults. The store is freed by kcp_store_close.
 * KCP_EIO if the environment cannot be opened or holds a record that does not decode.
 */
int kcp_store_open(struct kcp_store **out, struct kcp_loop *loop, const char *dir,
                   const struct kcp_store_options *opts);

typedef void (*kcp_store_close_cb)(void *data);
/*
 * Stops accepting proposals (KCP_ECLOSED), lets entries already accepted become durable and
 * answer, ends every remaining watch with an ERROR event (KCP_ECLOSED), closes LMDB, frees the
 * store, then calls cb(data) (cb may be NULL). Run the loop until it fires.
 */
void kcp_store_close(struct kcp_store *s, kcp_store_close_cb cb, void *data);

/* The latest durable revision: what GET/LIST with revision 0 reflect; use it for BOOKMARKs.
 * (Deferred durability: durable in the proposer's log, perhaps not yet in LMDB.) */
uint64_t kcp_store_revision(const struct kcp_store *s);

struct kcp_store_stats {
    uint64_t revision;        /* latest durable index */
    uint64_t entries_applied; /* entries made durable since open */
    uint64_t ops_applied;     /* ops that passed their precondition */
    uint64_t batches;         /* LMDB write transactions committed */
    uint64_t fsyncs;          /* durable commits: one per batch (see docs/STORE.md) */
    uint64_t bytes_written;   /* logical bytes put into LMDB (keys, records, meta) */
    uint64_t objects;         /* in the cache */
    uint64_t pending;         /* applied, not yet durable (not yet visible) */
    uint64_t unsynced;        /* deferred: visible, not yet in LMDB */
    uint64_t synced;          /* index of the last entry whose LMDB commit is durable */
    uint64_t watchers;
    uint64_t history_events;
    uint64_t history_bytes;
    uint64_t history_floor; /* every event after this revision is retained */
    uint64_t map_size;
    int failed; /* 0, or the error that stopped writes (disk full, EIO) */
    uint64_t retained_trim; /* retained entries up to this index are (being) trimmed */
};
void kcp_store_stats(const struct kcp_store *s, struct kcp_store_stats *out);

/* ---- Write path ------------------------------------------------------------------------- */

/* The outcome of one op. Objects are borrowed for the callback; kcp_obj_ref to keep one. */
struct kcp_store_op_result {
    int err;      /* 0, KCP_EEXIST, KCP_ENOTFOUND, KCP_ECONFLICT, or KCP_EINVALID (the value is
                     not a JSON object with an object metadata) */
    bool applied; /* false when err != 0, or when another op of an atomic entry failed */
    const struct kcp_obj *prev; /* the key's object before the entry (applied or not), or NULL */
    const struct kcp_obj *obj;  /* applied PUT: the new version; applied DELETE: the object as
                                   deleted, with resourceVersion = the entry's index */
};
struct kcp_store_result {
    uint64_t index; /* the entry's index = the new resourceVersion */
    uint64_t term;  /* the Raft term it was appended in (kcp_store_apply_term), else 0 */
    int err;        /* the first failing op's error, 0 if every op applied */
    size_t nops;
    const struct kcp_store_op_result *ops;
};

struct kcp_store_req;
/*
 * status 0: the entry was applied and is durable; result says what each op did.
 * status < 0: the entry was not applied (KCP_EIO/KCP_EUNAVAILABLE: the disk failed and the store
 * stopped taking writes; KCP_ECLOSED; or a proposer's error such as a lost leadership); result
 * is NULL.
 */
typedef void (*kcp_store_cb)(struct kcp_store_req *req, int status,
                             const struct kcp_store_result *result);
/* Caller-owned; must stay valid until its callback. */
struct kcp_store_req {
    void *data;
    kcp_store_cb cb;
    /* Private. */
    struct kcp_store_req *next;
};

/*
 * Proposes an encoded entry (copied; the caller keeps entry). Checks it first: KCP_EBADREQUEST
 * if it does not decode, KCP_ETOOLARGE if a value passes max_value_bytes, KCP_ECLOSED after
 * close, KCP_EUNAVAILABLE after a disk failure, KCP_ETOOMANY past max_pending. On an error the
 * callback never fires; on 0 it fires exactly once, after the entry is durable.
 */
int kcp_store_propose(struct kcp_store *s, const void *entry, size_t len,
                      struct kcp_store_req *req);

/*
 * Where proposals go. The default, local, proposer assigns consecutive indexes and applies at
 * once. The Raft module replaces it: propose() appends the entry to the replicated log, and for
 * each committed entry (its own or a peer's) Raft calls kcp_store_apply, passing the req of a
 * local proposal. The store keeps the proposer pointer; it must outlive the store.
 */
struct kcp_store_proposer {
    /*
     * entry was checked by kcp_store_propose and is borrowed for the call. Returns 0 and then
     * owns req until it hands it to kcp_store_apply or kcp_store_req_fail; or an error, and
     * req is untouched.
     */
    int (*propose)(struct kcp_store_proposer *p, struct kcp_store *s, const void *entry, size_t len,
                   struct kcp_store_req *req);
    void *data;
};
/* NULL restores the local proposer. Only while nothing is pending. */
void kcp_store_set_proposer(struct kcp_store *s, struct kcp_store_proposer *p);

/*
 * Deferred durability, for a proposer that applies only entries already durable in a log of
 * its own (Raft: apply stops at min(commit, persisted)), so that the log, not LMDB, is what
 * makes a write durable. interval_ms > 0: an applied entry is published (cache, watchers,
 * applied hook, its request's callback) at the next loop turn without waiting for LMDB, and
 * entries reach LMDB in one synced transaction every interval_ms (sooner past max_batch, after
 * kcp_store_flush, and at close), instead of one per batch of writers. A crash loses what LMDB
 * did not get: the store reopens at kcp_store_synced(), and the proposer must be able to apply
 * every later entry again (so its log must not be compacted past kcp_store_synced()). LMDB's
 * own commit stays fully synced: the file is consistent after a power loss at any point.
 * 0 (the default): each entry is published once its batch is durable in LMDB. Call it only
 * while the store is idle (kcp_store_idle).
 */
void kcp_store_set_deferred(struct kcp_store *s, uint32_t interval_ms);
/*
 * The index of the last entry whose LMDB commit is durable: what a reopen comes back to. Equal
 * to kcp_store_revision() unless deferred (then at most one interval behind, or further if the
 * disk is slow).
 */
uint64_t kcp_store_synced(const struct kcp_store *s);
/* Deferred: writes every entry visible now to LMDB without waiting for the interval (a caller
 * that needs kcp_store_synced() to reach kcp_store_revision(), e.g. before compacting its log,
 * calls it and checks again on a later loop turn). A no-op otherwise. */
void kcp_store_flush(struct kcp_store *s);

/*
 * Applies a committed entry at index (> the last index handed to apply; gaps are allowed, e.g.
 * for Raft's own entries). The entry is copied. req may be NULL (a peer's entry). Apply is total:
 * an entry that does not decode still consumes its index and every op fails with
 * KCP_EBADREQUEST, identically on every replica.
 * Returns 0 (req's callback will fire once durable), KCP_EEXIST if index is not above the
 * durable applied index (already applied before a restart: skip it; req untouched), KCP_EINVAL if
 * it is not above the last index given, KCP_ECLOSED, KCP_EUNAVAILABLE.
 */
int kcp_store_apply(struct kcp_store *s, uint64_t index, const void *entry, size_t len,
                    struct kcp_store_req *req);
/* kcp_store_apply for an entry appended in Raft term `term`, which history records. */
int kcp_store_apply_term(struct kcp_store *s, uint64_t index, uint64_t term, const void *entry,
                         size_t len, struct kcp_store_req *req);
/* The last index handed to apply, durable or not (kcp_store_revision is the last durable one). */
uint64_t kcp_store_applied_index(const struct kcp_store *s);
/* Completes a proposer-owned request with an error (status < 0). The callback fires now. */
void kcp_store_req_fail(struct kcp_store_req *req, int status);

/*
 * Called for every entry once it is durable, in index order, before the proposer's callback:
 * where the history module records the cluster's changes (including failed preconditions, which
 * are decided here identically on every replica). entry and result are borrowed for the call.
 */
typedef void (*kcp_store_applied_cb)(void *data, const struct kcp_store_entry *entry,
                                     const struct kcp_store_result *result);
void kcp_store_set_applied_hook(struct kcp_store *s, kcp_store_applied_cb cb, void *data);

/*
 * Retained entries (docs/STORE.md, "Retained entries"). With opts.retain_entries, every applied
 * entry is also written, with its per-op outcome, to an `entries` database in the same LMDB
 * transaction as its objects (no extra sync), so that a consumer of the applied hook that lost
 * its in-memory queue in a crash can read the entries again. Opening with retain_entries false
 * drops what was retained. The table holds every entry after a floor: the durable index when
 * retention began, moved up by trims.
 *
 * Calls cb, synchronously and in index order, for at most limit retained entries with an index
 * above `after`, up to the durable revision (deferred durability: the entries published but not
 * yet in LMDB come from memory, after the table's). entry bytes and result are borrowed for the
 * call (copy what you keep); result->ops have err and applied only (prev and obj are NULL); an
 * entry that does not decode has nops 0 and err KCP_EBADREQUEST. *out_last (may be NULL) receives
 * the last index delivered, or `after` if none. Returns 0, KCP_EGONE if entries after `after` were
 * never retained or were trimmed (after < floor), KCP_EINVAL without retain_entries, KCP_EIO,
 * or cb's non-zero return. A short read transaction on the loop thread; safe while a batch
 * commits.
 */
typedef int (*kcp_store_retained_cb)(void *ctx, uint64_t index, const void *entry, size_t len,
                                     const struct kcp_store_result *result);
int kcp_store_retained(struct kcp_store *s, uint64_t after, size_t limit, kcp_store_retained_cb cb,
                       void *ctx, uint64_t *out_last);
/*
 * Lets the store forget retained entries up to index upto (the consumer has made them durable
 * on its side). The deletions ride in the next batch's transaction, so they cost no sync of
 * their own; a trim is never undone. Indexes below an earlier trim are ignored.
 */
void kcp_store_trim_retained(struct kcp_store *s, uint64_t upto);

/*
 * True when nothing is waiting for the disk: no entry applied but not yet durable, none
 * published but not yet in LMDB (deferred), and no batch being committed. kcp_store_install
 * needs it (deferred: kcp_store_flush, then ask again on a later loop turn). The last entry
 * of a batch is published (applied hook, proposer callback) while its batch still counts as in
 * flight: from inside those callbacks the store is never idle; ask again on a later loop turn.
 */
bool kcp_store_idle(const struct kcp_store *s);

/* ---- Snapshots (docs/STORE.md, "Snapshots") --------------------------------------------- */

/*
 * Writes the objects of the store as of revision (0: the latest durable; else a revision inside
 * the history window, as kcp_store_list) to the file at path, atomically: path.tmp (mode 0600),
 * fsync, rename over path, fsync of the directory. The format is self-describing and fixed
 * (docs/STORE.md): a header (magic "KCPSNAP1", the revision, the object count), per object its
 * key, mod and create revisions and stored JSON (with its resourceVersion), then a CRC-32C of
 * every byte before it. Synchronous, on the loop thread: two walks of the cache (count, then
 * write) into a buffered file, so memory does not grow with the number of objects; the loop is
 * blocked for the time it takes to write the file (no sync per object: one fsync at the end).
 * Returns 0, KCP_EGONE (revision older than the window), KCP_ETIMEOUT (newer than the store),
 * KCP_EIO (path.tmp is removed and path is as it was, unless only the directory's fsync failed
 * after the rename). *out_bytes (may be NULL) gets the file's size on success, else 0. The store
 * neither names nor deletes snapshot files: the caller does.
 */
int kcp_store_snapshot_write(struct kcp_store *s, uint64_t revision, const char *path,
                             uint64_t *out_bytes);

/*
 * Replaces everything the store holds with the snapshot file at path and makes index the store's
 * applied and durable index (the Raft index the snapshot stands for: index >= the snapshot's own
 * revision; objects keep their own mod and create revisions). The file is validated completely
 * (magic, lengths, counts, CRC, keys well-formed and strictly ascending, revisions consistent,
 * each value a JSON object with an object metadata whose resourceVersion is its mod revision)
 * before anything changes. One LMDB write transaction (the objects table emptied and refilled,
 * `applied`, the retained-entries table), committed with one sync, on the loop thread:
 * synchronous, so the loop is blocked for the whole read, parse and commit, and memory peaks at
 * the old and the new cache together (docs/STORE.md gives the numbers).
 *
 * Afterwards: GET/LIST/the cache hold exactly the snapshot's objects; kcp_store_revision and
 * kcp_store_applied_index return index, and kcp_store_apply accepts index + 1 and on; every
 * watch has ended with an ERROR event KCP_EGONE (delivered inside this call; clients re-list, as
 * after upstream's 410); a watch opened from that callback or later, at revision 0 or index,
 * gets every event from index + 1; the history window restarts empty at index (GET/LIST/watch
 * at an older revision: KCP_EGONE);
 * retained entries are dropped and their floor is index (kcp_store_retained(after < index):
 * KCP_EGONE). The applied hook is not called for the entries the snapshot skips; the install
 * hook is, once, before this returns. A restart comes back with the installed state and index.
 *
 * Returns 0;
 * KCP_ECONFLICT while entries are pending or a batch is in flight (!kcp_store_idle: stop handing
 *   entries to kcp_store_apply and call again on a later loop turn; nothing changed);
 * KCP_EINVAL if index is below kcp_store_revision (nothing changed);
 * KCP_ENOTFOUND if there is no file at path, KCP_EBADREQUEST for a malformed file or one whose
 *   revision is above index, KCP_EIO if the file cannot be read (in all three nothing changed
 *   and the store still takes writes);
 * KCP_ECLOSED after close; KCP_EUNAVAILABLE after a disk failure;
 * KCP_EIO when LMDB fails (a write error, a map full beyond max_map_size): then the store stops
 *   taking writes like after a failed commit (kcp_store_stats().failed is set; reads keep the
 *   old state), so a caller tells the two KCP_EIO apart by stats.failed.
 */
int kcp_store_install(struct kcp_store *s, uint64_t index, const char *path);

/*
 * Called once per successful kcp_store_install, after the new state is durable and visible and
 * the watches have ended, with the installed index: where the history module records a snapshot
 * commit instead of the entries it will never see.
 */
typedef void (*kcp_store_install_cb)(void *data, uint64_t index);
void kcp_store_set_install_hook(struct kcp_store *s, kcp_store_install_cb cb, void *data);

/* ---- Reads ------------------------------------------------------------------------------ */

/*
 * The object at key as of revision (0: latest durable), as a new reference the caller drops.
 * KCP_ENOTFOUND, KCP_EGONE if revision is older than the history window, KCP_ETIMEOUT if it
 * is newer than the store ("too large resource version").
 */
int kcp_store_get(struct kcp_store *s, const void *key, size_t key_len, uint64_t revision,
                  struct kcp_obj **out);

/* Returns 0 to continue, anything else stops the list and is returned by kcp_store_list. */
typedef int (*kcp_store_list_cb)(void *ctx, const struct kcp_obj *obj);
struct kcp_store_list_result {
    uint64_t revision; /* the snapshot the items reflect (use it in continue tokens) */
    size_t count;      /* items delivered */
    bool more;         /* items remain after the last one delivered */
};
/*
 * Calls cb, synchronously and in key order, for each object whose key starts with prefix, as of
 * revision (0: latest durable), with a key greater than start_after (NULL: from the start),
 * at most limit items (0: no limit). Objects are borrowed for the callback. Memory does not
 * grow with the number of items (the history window bounds an old snapshot's bookkeeping).
 * KCP_EGONE if revision is older than the window (upstream answers 410 Expired), KCP_ETIMEOUT
 * if newer than the store, or the callback's non-zero return.
 */
int kcp_store_list(struct kcp_store *s, const void *prefix, size_t prefix_len, uint64_t revision,
                   const void *start_after, size_t start_after_len, size_t limit,
                   kcp_store_list_cb cb, void *ctx, struct kcp_store_list_result *out);

/* ---- Watch ------------------------------------------------------------------------------ */

enum kcp_store_event_type {
    KCP_STORE_ADDED = 1,
    KCP_STORE_MODIFIED = 2,
    KCP_STORE_DELETED = 3,
    KCP_STORE_ERROR = 4, /* the watch ended: err says why; it is freed when the callback returns */
};
struct kcp_store_event {
    enum kcp_store_event_type type;
    uint64_t revision;
    const char *key;
    size_t key_len;
    const struct kcp_obj *obj;  /* ADDED/MODIFIED: the new version; DELETED: the object as
                                   deleted (resourceVersion = revision) */
    const struct kcp_obj *prev; /* MODIFIED/DELETED: the version before */
    int err;                    /* ERROR: KCP_EGONE (the window moved past the watch before it
                                   was replayed) or KCP_ECLOSED (the store closed) */
};
struct kcp_store_watch;
/* Borrowed event; keep objects with kcp_obj_ref. Must be cheap: it runs inside the fan-out. */
typedef void (*kcp_store_watch_cb)(struct kcp_store_watch *w, const struct kcp_store_event *ev,
                                   void *ctx);
/*
 * Watches keys starting with prefix for events after from_revision (0: from now). Events already
 * in the history are replayed from the next loop iteration, then live events follow in revision
 * order, each once its batch is durable. KCP_EGONE if from_revision is older than the window,
 * KCP_ETOOMANY past max_watchers, KCP_ECLOSED after close. The watch lives until
 * kcp_store_watch_cancel or an ERROR event.
 */
int kcp_store_watch(struct kcp_store *s, const void *prefix, size_t prefix_len,
                    uint64_t from_revision, kcp_store_watch_cb cb, void *ctx,
                    struct kcp_store_watch **out);
/* Stops and frees the watch; no callback fires after it returns. Safe inside any callback. */
void kcp_store_watch_cancel(struct kcp_store_watch *w);
/*
 * The revision a BOOKMARK may carry: every event up to it that matches the watch has been
 * delivered. Before the replay it is from_revision.
 */
uint64_t kcp_store_watch_revision(const struct kcp_store_watch *w);

#endif
