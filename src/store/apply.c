/* Apply, phase one: preconditions and new versions, decided in memory on the loop thread. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Apply is a pure function of (state, index, entry): the state is the durable cache plus the
 * overlay of entries applied but not yet durable, in index order; nothing else (no clock, no
 * options, no randomness) is read, so every replica decides every precondition alike.
 * Phase two (commit.c) makes the outcome durable and only then shows it to readers.
 */

/* The key's current version as apply sees it: the overlay first, then the cache. */
static struct kcp_obj *current(struct kcp_store *s, const char *key, size_t len)
{
    struct store_node *n = store_map_find(&s->overlay, key, len);
    if (n)
        return n->obj; /* NULL: deleted by a pending entry */
    n = store_map_find(&s->cache, key, len);
    return n ? n->obj : NULL;
}

static int check(const struct kcp_store_op *op, const struct kcp_obj *cur)
{
    switch (op->precond) {
    case KCP_STORE_IF_ABSENT:
        return cur ? KCP_EEXIST : 0;
    case KCP_STORE_IF_PRESENT:
        return cur ? 0 : KCP_ENOTFOUND;
    case KCP_STORE_IF_REVISION:
        if (!cur)
            return KCP_ENOTFOUND;
        return cur->mod_revision == op->revision ? 0 : KCP_ECONFLICT;
    case KCP_STORE_IF_ANY:
        break;
    }
    /* Deleting what is not there is NotFound whatever the precondition. */
    return op->type == KCP_STORE_DELETE && !cur ? KCP_ENOTFOUND : 0;
}

void store_applied_free(struct store_applied *a)
{
    for (size_t i = 0; i < a->result.nops; i++) {
        kcp_obj_unref(a->ops[i].prev);
        kcp_obj_unref(a->ops[i].obj);
    }
    free(a->ops);
    kcp_store_entry_free(&a->entry);
    free(a->bytes);
    free(a);
}

void store_apply_entry(struct kcp_store *s, uint64_t index, uint64_t term, const void *entry,
                       size_t len, struct kcp_store_req *req)
{
    struct store_applied *a = kcp_calloc(1, sizeof(*a));
    a->index = index;
    a->req = req;
    a->bytes = kcp_malloc(len ? len : 1);
    if (len)
        memcpy(a->bytes, entry, len);
    a->len = len;
    a->result.index = index;
    a->result.term = term;

    if (kcp_store_entry_decode(&a->entry, a->bytes, len) != 0) {
        /* A committed entry that does not decode still takes its index, so replicas agree. */
        a->entry.verb = a->entry.user = a->entry.request_id = "";
        a->result.err = KCP_EBADREQUEST;
    } else {
        const struct kcp_store_entry *e = &a->entry;
        bool any_failed = false;
        a->ops = kcp_calloc(e->nops ? e->nops : 1, sizeof(*a->ops));
        a->result.nops = e->nops;
        for (size_t i = 0; i < e->nops; i++) {
            const struct kcp_store_op *op = &e->ops[i];
            struct kcp_store_op_result *r = &a->ops[i];
            struct kcp_obj *cur = current(s, op->key, op->key_len);
            r->prev = kcp_obj_ref(cur);
            r->err = check(op, cur);
            if (r->err == 0) {
                struct kcp_obj *obj = NULL;
                uint64_t created = cur ? cur->create_revision : index;
                if (op->type == KCP_STORE_PUT)
                    r->err = store_obj_build(&obj, op->key, op->key_len, op->value, op->value_len,
                                             index, created);
                else /* the object as deleted carries the deletion's revision (upstream's
                        DELETED events do) */
                    r->err = store_obj_build(&obj, op->key, op->key_len, cur->json, cur->json_len,
                                             index, created);
                r->obj = obj;
            }
            if (r->err != 0) {
                any_failed = true;
                if (a->result.err == 0)
                    a->result.err = r->err;
            }
        }
        bool all_or_nothing = (e->flags & KCP_STORE_ATOMIC) && any_failed;
        for (size_t i = 0; i < e->nops; i++) {
            struct kcp_store_op_result *r = &a->ops[i];
            if (r->err != 0 || all_or_nothing) {
                kcp_obj_unref(r->obj);
                r->obj = NULL;
                continue;
            }
            r->applied = true;
            store_map_put(&s->overlay, e->ops[i].key, e->ops[i].key_len,
                          e->ops[i].type == KCP_STORE_PUT ? kcp_obj_ref(r->obj) : NULL, index);
        }
    }
    a->result.ops = a->ops;

    s->tail = index;
    *s->pending_last = a;
    s->pending_last = &a->next;
    s->npending++;
    if (!s->inflight)
        store_kick(s);
}
