/* Raft wire format: messages and configurations as length-checked little-endian bytes. */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * message  := u8 version(1) u8 type u64 from u64 to u64 term body
 * APPEND   := u64 prev_index u64 prev_term u64 commit u32 n entry*n
 * entry    := u64 term u8 type u32 len bytes
 * A_RESP   := u8 reject u64 index u64 hint
 * (PRE)VOTE := u64 last_index u64 last_term u8 transfer     (PRE)VOTE_RESP := u8 granted
 * SNAPSHOT := u64 index u64 term u64 offset u8 last u32 clen config u32 dlen data
 * S_RESP   := u64 index u64 offset u8 done                    TIMEOUT_NOW := (empty)
 * READ_INDEX := u64 token                                     R_RESP := u64 token u64 index u8 ok
 * HEARTBEAT := u64 commit u64 seq                             HB_RESP := u64 seq
 * config   := u32 n (u64 id u8 role u16 alen bytes)*n
 * Booleans are 0 or 1; anything else, a short field or trailing bytes is KCP_EBADREQUEST.
 */
#define WIRE_VERSION 1
#define ENTRY_MIN 13 /* bytes of an entry with an empty payload */

static const char *const type_names[] = {
    [KCP_RAFT_MSG_APPEND] = "append",
    [KCP_RAFT_MSG_APPEND_RESP] = "append_resp",
    [KCP_RAFT_MSG_VOTE] = "vote",
    [KCP_RAFT_MSG_VOTE_RESP] = "vote_resp",
    [KCP_RAFT_MSG_PREVOTE] = "prevote",
    [KCP_RAFT_MSG_PREVOTE_RESP] = "prevote_resp",
    [KCP_RAFT_MSG_SNAPSHOT] = "snapshot",
    [KCP_RAFT_MSG_SNAPSHOT_RESP] = "snapshot_resp",
    [KCP_RAFT_MSG_TIMEOUT_NOW] = "timeout_now",
    [KCP_RAFT_MSG_READ_INDEX] = "read_index",
    [KCP_RAFT_MSG_READ_INDEX_RESP] = "read_index_resp",
    [KCP_RAFT_MSG_HEARTBEAT] = "heartbeat",
    [KCP_RAFT_MSG_HEARTBEAT_RESP] = "heartbeat_resp",
};

const char *kcp_raft_msg_type_name(enum kcp_raft_msg_type type)
{
    if (type < 1 || type > KCP_RAFT_MSG_TYPE_MAX)
        return "unknown";
    return type_names[type];
}

/* ---- writing ---- */

static void put_u8(struct kcp_buf *b, uint8_t v)
{
    kcp_buf_append(b, &v, 1);
}

static void put_u16(struct kcp_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    kcp_buf_append(b, x, 2);
}

static void put_u32(struct kcp_buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    kcp_buf_append(b, x, 4);
}

static void put_u64(struct kcp_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    kcp_buf_append(b, x, 8);
}

/* ---- reading: every getter checks the remaining length and latches failure ---- */

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint64_t get_le(struct rd *r, size_t n)
{
    const uint8_t *p = take(r, n);
    uint64_t v = 0;
    if (!p)
        return 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t get_u8(struct rd *r)
{
    return (uint8_t)get_le(r, 1);
}

static uint64_t get_u64(struct rd *r)
{
    return get_le(r, 8);
}

static bool get_bool(struct rd *r)
{
    uint8_t v = get_u8(r);
    if (v > 1)
        r->bad = true;
    return v == 1;
}

/* ---- configuration ---- */

void kcp_raft_config_encode(const struct kcp_raft_config *c, struct kcp_buf *out)
{
    put_u32(out, c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        size_t alen = strnlen(c->servers[i].address, KCP_RAFT_ADDR_MAX - 1);
        put_u64(out, c->servers[i].id);
        put_u8(out, (uint8_t)c->servers[i].role);
        put_u16(out, (uint16_t)alen);
        kcp_buf_append(out, c->servers[i].address, alen);
    }
}

static int config_read(struct kcp_raft_config *out, struct rd *r)
{
    uint32_t n = (uint32_t)get_le(r, 4);
    if (r->bad || n > KCP_RAFT_MAX_SERVERS)
        return KCP_EBADREQUEST;
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < n; i++) {
        struct kcp_raft_server *s = &out->servers[i];
        s->id = get_u64(r);
        uint8_t role = get_u8(r);
        size_t alen = (size_t)get_le(r, 2);
        const uint8_t *a = alen < KCP_RAFT_ADDR_MAX ? take(r, alen) : NULL;
        if (r->bad || !s->id || (role != KCP_RAFT_VOTER && role != KCP_RAFT_LEARNER) ||
            (alen && !a) || alen >= KCP_RAFT_ADDR_MAX || memchr(a ? (const void *)a : "", 0, alen))
            return KCP_EBADREQUEST;
        s->role = role;
        if (alen)
            memcpy(s->address, a, alen);
        for (uint32_t j = 0; j < i; j++)
            if (out->servers[j].id == s->id)
                return KCP_EBADREQUEST;
    }
    out->n = n;
    return 0;
}

int kcp_raft_config_decode(struct kcp_raft_config *out, const void *data, size_t len)
{
    struct rd r = {data, len, false};
    if (!data && len)
        return KCP_EBADREQUEST;
    int rc = config_read(out, &r);
    if (rc < 0 || r.left)
        return KCP_EBADREQUEST;
    return 0;
}

/* ---- messages ---- */

void kcp_raft_msg_encode(const struct kcp_raft_msg *m, struct kcp_buf *out)
{
    put_u8(out, WIRE_VERSION);
    put_u8(out, (uint8_t)m->type);
    put_u64(out, m->from);
    put_u64(out, m->to);
    put_u64(out, m->term);
    switch (m->type) {
    case KCP_RAFT_MSG_APPEND:
        put_u64(out, m->append.prev_index);
        put_u64(out, m->append.prev_term);
        put_u64(out, m->append.commit);
        put_u32(out, (uint32_t)m->append.n_entries);
        for (size_t i = 0; i < m->append.n_entries; i++) {
            const struct kcp_raft_entry *e = &m->append.entries[i];
            put_u64(out, e->term);
            put_u8(out, (uint8_t)e->type);
            put_u32(out, (uint32_t)e->data.len);
            kcp_buf_append(out, e->data.base, e->data.len);
        }
        break;
    case KCP_RAFT_MSG_APPEND_RESP:
        put_u8(out, m->append_resp.reject);
        put_u64(out, m->append_resp.index);
        put_u64(out, m->append_resp.hint);
        break;
    case KCP_RAFT_MSG_VOTE:
    case KCP_RAFT_MSG_PREVOTE:
        put_u64(out, m->vote.last_index);
        put_u64(out, m->vote.last_term);
        put_u8(out, m->vote.transfer);
        break;
    case KCP_RAFT_MSG_VOTE_RESP:
    case KCP_RAFT_MSG_PREVOTE_RESP:
        put_u8(out, m->vote_resp.granted);
        break;
    case KCP_RAFT_MSG_SNAPSHOT: {
        struct kcp_buf cfg = KCP_BUF_INIT;
        if (m->snapshot.config)
            kcp_raft_config_encode(m->snapshot.config, &cfg);
        put_u64(out, m->snapshot.index);
        put_u64(out, m->snapshot.term);
        put_u64(out, m->snapshot.offset);
        put_u8(out, m->snapshot.last);
        put_u32(out, (uint32_t)cfg.len);
        kcp_buf_append(out, cfg.data, cfg.len);
        put_u32(out, (uint32_t)m->snapshot.data.len);
        kcp_buf_append(out, m->snapshot.data.base, m->snapshot.data.len);
        kcp_buf_free(&cfg);
        break;
    }
    case KCP_RAFT_MSG_SNAPSHOT_RESP:
        put_u64(out, m->snapshot_resp.index);
        put_u64(out, m->snapshot_resp.offset);
        put_u8(out, m->snapshot_resp.done);
        break;
    case KCP_RAFT_MSG_TIMEOUT_NOW:
        break;
    case KCP_RAFT_MSG_READ_INDEX:
        put_u64(out, m->read_index.token);
        break;
    case KCP_RAFT_MSG_READ_INDEX_RESP:
        put_u64(out, m->read_index_resp.token);
        put_u64(out, m->read_index_resp.index);
        put_u8(out, m->read_index_resp.ok);
        break;
    case KCP_RAFT_MSG_HEARTBEAT:
        put_u64(out, m->heartbeat.commit);
        put_u64(out, m->heartbeat.seq);
        break;
    case KCP_RAFT_MSG_HEARTBEAT_RESP:
        put_u64(out, m->heartbeat_resp.seq);
        break;
    }
}

static int decode_append(struct kcp_raft_msg *m, struct rd *r)
{
    m->append.prev_index = get_u64(r);
    m->append.prev_term = get_u64(r);
    m->append.commit = get_u64(r);
    uint32_t n = (uint32_t)get_le(r, 4);
    /* The count is checked against the bytes left before it sizes an allocation. */
    if (r->bad || n > r->left / ENTRY_MIN || m->append.prev_index > UINT64_MAX - n)
        return KCP_EBADREQUEST;
    m->append.n_entries = n;
    if (!n)
        return 0;
    struct kcp_raft_entry *e = kcp_calloc(n, sizeof(*e));
    m->append.entries = e;
    for (uint32_t i = 0; i < n; i++) {
        e[i].index = m->append.prev_index + 1 + i;
        e[i].term = get_u64(r);
        uint8_t type = get_u8(r);
        size_t len = (size_t)get_le(r, 4);
        const uint8_t *p = take(r, len);
        if (r->bad || type < KCP_RAFT_ENTRY_NORMAL || type > KCP_RAFT_ENTRY_CONFIG)
            return KCP_EBADREQUEST;
        e[i].type = type;
        e[i].data.base = len ? (void *)p : NULL;
        e[i].data.len = len;
    }
    return 0;
}

static int decode_snapshot(struct kcp_raft_msg *m, struct rd *r)
{
    m->snapshot.index = get_u64(r);
    m->snapshot.term = get_u64(r);
    m->snapshot.offset = get_u64(r);
    m->snapshot.last = get_bool(r);
    size_t clen = (size_t)get_le(r, 4);
    const uint8_t *cp = take(r, clen);
    if (r->bad)
        return KCP_EBADREQUEST;
    struct kcp_raft_config *c = kcp_malloc(sizeof(*c));
    m->snapshot.config = c;
    if (kcp_raft_config_decode(c, cp, clen) < 0)
        return KCP_EBADREQUEST;
    size_t dlen = (size_t)get_le(r, 4);
    const uint8_t *dp = take(r, dlen);
    if (r->bad)
        return KCP_EBADREQUEST;
    m->snapshot.data.base = dlen ? (void *)dp : NULL;
    m->snapshot.data.len = dlen;
    return 0;
}

int kcp_raft_msg_decode(struct kcp_raft_msg *out, const void *data, size_t len)
{
    struct rd r = {data, len, false};
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (!data && len)
        return KCP_EBADREQUEST;
    uint8_t version = get_u8(&r), type = get_u8(&r);
    out->from = get_u64(&r);
    out->to = get_u64(&r);
    out->term = get_u64(&r);
    if (r.bad || version != WIRE_VERSION || type < 1 || type > KCP_RAFT_MSG_TYPE_MAX) {
        rc = KCP_EBADREQUEST;
        goto done;
    }
    out->type = type;
    switch (out->type) {
    case KCP_RAFT_MSG_APPEND:
        rc = decode_append(out, &r);
        break;
    case KCP_RAFT_MSG_APPEND_RESP:
        out->append_resp.reject = get_bool(&r);
        out->append_resp.index = get_u64(&r);
        out->append_resp.hint = get_u64(&r);
        break;
    case KCP_RAFT_MSG_VOTE:
    case KCP_RAFT_MSG_PREVOTE:
        out->vote.last_index = get_u64(&r);
        out->vote.last_term = get_u64(&r);
        out->vote.transfer = get_bool(&r);
        break;
    case KCP_RAFT_MSG_VOTE_RESP:
    case KCP_RAFT_MSG_PREVOTE_RESP:
        out->vote_resp.granted = get_bool(&r);
        break;
    case KCP_RAFT_MSG_SNAPSHOT:
        rc = decode_snapshot(out, &r);
        break;
    case KCP_RAFT_MSG_SNAPSHOT_RESP:
        out->snapshot_resp.index = get_u64(&r);
        out->snapshot_resp.offset = get_u64(&r);
        out->snapshot_resp.done = get_bool(&r);
        break;
    case KCP_RAFT_MSG_TIMEOUT_NOW:
        break;
    case KCP_RAFT_MSG_READ_INDEX:
        out->read_index.token = get_u64(&r);
        break;
    case KCP_RAFT_MSG_READ_INDEX_RESP:
        out->read_index_resp.token = get_u64(&r);
        out->read_index_resp.index = get_u64(&r);
        out->read_index_resp.ok = get_bool(&r);
        break;
    case KCP_RAFT_MSG_HEARTBEAT:
        out->heartbeat.commit = get_u64(&r);
        out->heartbeat.seq = get_u64(&r);
        break;
    case KCP_RAFT_MSG_HEARTBEAT_RESP:
        out->heartbeat_resp.seq = get_u64(&r);
        break;
    }
    if (rc == 0 && (r.bad || r.left))
        rc = KCP_EBADREQUEST;
done:
    if (rc < 0)
        kcp_raft_msg_free(out);
    return rc;
}

void kcp_raft_msg_free(struct kcp_raft_msg *m)
{
    if (m->type == KCP_RAFT_MSG_APPEND)
        free((void *)m->append.entries);
    else if (m->type == KCP_RAFT_MSG_SNAPSHOT)
        free((void *)m->snapshot.config);
    memset(m, 0, sizeof(*m));
}
