/* Propose: checks an entry, hands it to the proposer; the local proposer numbers and applies it. */
#include "store_int.h"

/*
 * The single-node proposer: there is nothing to agree on, so an entry is committed as soon as
 * it is proposed and gets the next index. Raft replaces this vtable (kcp_store_set_proposer) and
 * calls kcp_store_apply itself once entries commit; everything after that call is shared.
 */
static int local_propose(struct kcp_store_proposer *p, struct kcp_store *s, const void *entry,
                         size_t len, struct kcp_store_req *req)
{
    return kcp_store_apply(s, s->tail + 1, entry, len, req);
}

void store_proposer_local_init(struct kcp_store *s)
{
    s->local.propose = local_propose;
    s->local.data = s;
    s->proposer = &s->local;
}

static int writable(const struct kcp_store *s)
{
    if (s->closing)
        return KCP_ECLOSED;
    if (s->failed)
        return KCP_EUNAVAILABLE;
    return 0;
}

int kcp_store_propose(struct kcp_store *s, const void *entry, size_t len, struct kcp_store_req *req)
{
    struct kcp_store_entry e;
    int rc = writable(s);
    if (rc != 0)
        return rc;
    /* Bounded memory: entries waiting for LMDB are held in full. */
    if (store_queued(s) >= s->opts.max_pending)
        return KCP_ETOOMANY;
    if ((rc = kcp_store_entry_decode(&e, entry, len)) != 0)
        return rc;
    for (size_t i = 0; i < e.nops && rc == 0; i++)
        if (e.ops[i].type == KCP_STORE_PUT && e.ops[i].value_len > s->opts.max_value_bytes)
            rc = KCP_ETOOLARGE;
    kcp_store_entry_free(&e);
    if (rc != 0)
        return rc;
    return s->proposer->propose(s->proposer, s, entry, len, req);
}

int kcp_store_apply(struct kcp_store *s, uint64_t index, const void *entry, size_t len,
                    struct kcp_store_req *req)
{
    return kcp_store_apply_term(s, index, 0, entry, len, req);
}

int kcp_store_apply_term(struct kcp_store *s, uint64_t index, uint64_t term, const void *entry,
                         size_t len, struct kcp_store_req *req)
{
    int rc = writable(s);
    if (rc != 0)
        return rc;
    if (index <= s->durable)
        return KCP_EEXIST;
    if (index <= s->tail)
        return KCP_EINVAL;
    store_apply_entry(s, index, term, entry, len, req);
    return 0;
}

void kcp_store_req_fail(struct kcp_store_req *req, int status)
{
    req->cb(req, status, NULL);
}

void kcp_store_set_proposer(struct kcp_store *s, struct kcp_store_proposer *p)
{
    s->proposer = p ? p : &s->local;
}
