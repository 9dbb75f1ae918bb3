/* Internal to the recorder's object store: pack.c (the batch, pack files), delta.c, fold.c. */
#ifndef KCP_HISTORY_PACK_H
#define KCP_HISTORY_PACK_H

#include "history_int.h"

#include <stdint.h>

#include <git2/sys/odb_backend.h>
#include <zlib.h>

/* Batches folded into one pack (fold.c). */
#define HISTORY_PACKS_MAX 32
/* Longest delta chain (git's default too): a read applies at most this many deltas. */
#define HISTORY_DELTA_DEPTH 50
#define HISTORY_NONE UINT32_MAX

/* One object of the batch: its payload is the object, or a delta against o[base]. */
struct history_pobj {
    git_oid id;
    git_object_t type;
    uint32_t base;  /* HISTORY_NONE: payload is the object itself */
    uint32_t depth; /* deltas between it and a full object */
    uint32_t root;  /* that full object */
    size_t size;    /* the object's size */
    unsigned char *data;
    size_t len;
    unsigned char *full; /* a delta's object, kept while it is the newest of its chain */
};

/* An object of the batch packs stored whole, and its previous version: the fold's delta base. */
struct history_hint {
    git_oid id, base;
};

struct history_pack {
    git_odb_backend parent; /* first: libgit2 holds a git_odb_backend pointer */
    struct history_pobj *o;
    size_t n, cap;
    uint32_t *slot; /* open addressing: index + 1, or 0 */
    size_t nslot;
    z_stream z; /* see compress_into in pack.c */
    bool z_ready;
    struct history_hint *hint;
    size_t nhint, caphint;
};

/* pack.c */
/* The index of object id in the batch, or HISTORY_NONE. */
uint32_t history_pack_find(const struct history_pack *p, const git_oid *id);
/*
 * Adds object id (data, or *own: a buffer it takes) unless it is here, as a delta against the
 * object base (an earlier version of the same file or directory) when that is here and the
 * delta is small. Returns whether it is stored whole.
 */
bool history_pack_add(struct history_pack *p, git_object_t type, const void *data, size_t len,
                      unsigned char **own, const git_oid *id, const git_oid *base);
/* Object i in full: borrowed (*owned false) or a new buffer (*owned true). NULL: corrupt. */
unsigned char *history_pack_materialize(struct history_pack *p, uint32_t i, bool *owned);
/* Drops the batch's objects (after they were written). */
void history_pack_reset(struct history_pack *p);
/* Writes the batch as a pack and resets it. */
int history_pack_emit(struct history_rec *r);
/* DIR/objects/pack, as a new string. */
char *history_pack_dir(struct history_rec *r);
uint32_t history_be32(const unsigned char *c);
extern const unsigned char history_pack_magic[8];

/* What a pack index says of one object. */
struct history_pack_ent {
    git_oid id;
    uint32_t crc;
    uint64_t off;
};

/* delta.c */
/* The delta from base to obj as common prefix, middle, common suffix. */
void history_delta_make(struct kcp_buf *out, const unsigned char *base, size_t blen,
                        const unsigned char *obj, size_t len);
/* The delta between two tree objects many changes apart: their entries, merged. */
void history_delta_tree(struct kcp_buf *out, const unsigned char *base, size_t blen,
                        const unsigned char *obj, size_t len);
/* Applies a delta; a new buffer of size bytes, or NULL if it is not a delta of base to that. */
unsigned char *history_delta_apply(const unsigned char *base, size_t blen, const unsigned char *d,
                                   size_t dlen, size_t size);
/* A delta header's size (little-endian base 128); -1 past end. */
int history_varint_get(const unsigned char **p, const unsigned char *end, size_t *out);

#endif
