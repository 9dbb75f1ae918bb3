/* The entry: a versioned binary encoding of one mutation, and its length-checked decoder. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Layout, version 1, integers little-endian (docs/STORE.md):
 *   header (36 bytes): "kse" 0x01 | u32 total length | u32 flags | i64 wall_s | u32 wall_ns |
 *                      u32 nops | u16 verb_len | u16 user_len | u16 request_id_len | u16 0
 *   verb, user, request id bytes
 *   nops x op: u8 type | u8 precond | u16 key_len | u32 value_len | u64 revision | key | value
 *   u32 CRC-32C of every byte before it
 * The decoder accepts exactly what the encoder produces: any other byte string is rejected, so
 * an entry has one meaning on every replica.
 */
#define HEADER_SIZE 36
#define OP_HEADER_SIZE 16
#define CRC_SIZE 4
static const unsigned char magic[4] = {'k', 's', 'e', 1};

static uint32_t crc_table[8][256];
static bool crc_ready;

static void crc_init(void)
{
    /* Castagnoli polynomial, reflected; slicing-by-8 tables. Idempotent, so a race is benign. */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_ready = true;
}

uint32_t store_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (!crc_ready)
        crc_init();
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

static void put_u16(struct kcp_buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    kcp_buf_append(b, x, 2);
}
static void put_u32(struct kcp_buf *b, uint32_t v)
{
    unsigned char x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    kcp_buf_append(b, x, 4);
}
static void put_u64(struct kcp_buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    kcp_buf_append(b, x, 8);
}
static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static bool meta_ok(const char *s, size_t len)
{
    return len <= KCP_STORE_MAX_META && (!len || !memchr(s, '\0', len));
}

/* The rules an op obeys on both sides of the codec. */
static bool op_ok(const struct kcp_store_op *op)
{
    if (op->type != KCP_STORE_PUT && op->type != KCP_STORE_DELETE)
        return false;
    if ((unsigned)op->precond > KCP_STORE_IF_REVISION)
        return false;
    if ((op->precond == KCP_STORE_IF_REVISION) != (op->revision != 0))
        return false;
    if (op->key_len == 0 || op->key_len > KCP_STORE_MAX_KEY || memchr(op->key, '\0', op->key_len))
        return false;
    if (op->type == KCP_STORE_PUT)
        return op->value_len > 0 && op->value_len <= KCP_STORE_MAX_ENTRY;
    return op->value_len == 0;
}

static int op_ptr_cmp(const void *a, const void *b)
{
    const struct kcp_store_op *x = *(const struct kcp_store_op *const *)a;
    const struct kcp_store_op *y = *(const struct kcp_store_op *const *)b;
    return store_key_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* One entry never names a key twice, so apply need not define an order between such ops. */
static bool keys_unique(const struct kcp_store_op *ops, size_t n)
{
    if (n < 2)
        return true;
    if (n == 2)
        return store_key_cmp(ops[0].key, ops[0].key_len, ops[1].key, ops[1].key_len) != 0;
    const struct kcp_store_op **v = kcp_malloc(n * sizeof(*v));
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        v[i] = &ops[i];
    qsort(v, n, sizeof(*v), op_ptr_cmp);
    for (size_t i = 1; i < n && ok; i++)
        ok = op_ptr_cmp(&v[i - 1], &v[i]) != 0;
    free(v);
    return ok;
}

int kcp_store_entry_encode(struct kcp_buf *out, const struct kcp_store_entry *e)
{
    const char *verb = e->verb ? e->verb : "", *user = e->user ? e->user : "";
    const char *rid = e->request_id ? e->request_id : "";
    size_t vl = strlen(verb), ul = strlen(user), rl = strlen(rid);
    uint64_t total = HEADER_SIZE + vl + ul + rl + CRC_SIZE;
    if ((e->flags & ~KCP_STORE_FLAGS) || e->wall_ns >= 1000000000u || e->nops > KCP_STORE_MAX_OPS)
        return KCP_EINVAL;
    if (!meta_ok(verb, vl) || !meta_ok(user, ul) || !meta_ok(rid, rl))
        return KCP_EINVAL;
    for (size_t i = 0; i < e->nops; i++) {
        if (!op_ok(&e->ops[i]))
            return KCP_EINVAL;
        total += OP_HEADER_SIZE + e->ops[i].key_len + e->ops[i].value_len;
    }
    if (total > KCP_STORE_MAX_ENTRY || !keys_unique(e->ops, e->nops))
        return KCP_EINVAL;

    size_t start = out->len;
    kcp_buf_reserve(out, (size_t)total);
    kcp_buf_append(out, magic, 4);
    put_u32(out, (uint32_t)total);
    put_u32(out, e->flags);
    put_u64(out, (uint64_t)e->wall_s);
    put_u32(out, e->wall_ns);
    put_u32(out, (uint32_t)e->nops);
    put_u16(out, (uint16_t)vl);
    put_u16(out, (uint16_t)ul);
    put_u16(out, (uint16_t)rl);
    put_u16(out, 0);
    kcp_buf_append(out, verb, vl);
    kcp_buf_append(out, user, ul);
    kcp_buf_append(out, rid, rl);
    for (size_t i = 0; i < e->nops; i++) {
        const struct kcp_store_op *op = &e->ops[i];
        unsigned char h[2] = {(unsigned char)op->type, (unsigned char)op->precond};
        kcp_buf_append(out, h, 2);
        put_u16(out, (uint16_t)op->key_len);
        put_u32(out, (uint32_t)op->value_len);
        put_u64(out, op->revision);
        kcp_buf_append(out, op->key, op->key_len);
        if (op->value_len)
            kcp_buf_append(out, op->value, op->value_len);
    }
    put_u32(out, store_crc32c(0, out->data + start, out->len - start));
    return 0;
}

int kcp_store_entry_decode(struct kcp_store_entry *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    int rc = KCP_EBADREQUEST;
    char *block = NULL;
    memset(out, 0, sizeof(*out));
    if (!p || len < HEADER_SIZE + CRC_SIZE || len > KCP_STORE_MAX_ENTRY)
        return rc;
    if (memcmp(p, magic, 4) != 0 || get_u32(p + 4) != len)
        return rc;
    if (store_crc32c(0, p, len - CRC_SIZE) != get_u32(p + len - CRC_SIZE))
        return rc;
    uint32_t flags = get_u32(p + 8), ns = get_u32(p + 20), nops = get_u32(p + 24);
    size_t vl = get_u16(p + 28), ul = get_u16(p + 30), rl = get_u16(p + 32);
    if ((flags & ~KCP_STORE_FLAGS) || ns >= 1000000000u || get_u16(p + 34) != 0)
        return rc;
    size_t body = len - CRC_SIZE, pos = HEADER_SIZE;
    /* Each op takes at least its header, so nops is bounded by the input before we allocate. */
    if (nops > KCP_STORE_MAX_OPS || vl + ul + rl > body - pos ||
        (uint64_t)nops * OP_HEADER_SIZE > body - pos - (vl + ul + rl))
        return rc;
    const char *verb = (const char *)p + pos, *user = verb + vl, *rid = user + ul;
    if (!meta_ok(verb, vl) || !meta_ok(user, ul) || !meta_ok(rid, rl))
        return rc;
    pos += vl + ul + rl;

    size_t ops_size = nops * sizeof(struct kcp_store_op);
    block = kcp_malloc(ops_size + vl + ul + rl + 3);
    struct kcp_store_op *ops = (struct kcp_store_op *)block;
    for (uint32_t i = 0; i < nops; i++) {
        if (body - pos < OP_HEADER_SIZE)
            goto done;
        const unsigned char *h = p + pos;
        struct kcp_store_op *op = &ops[i];
        op->type = (enum kcp_store_op_type)h[0];
        op->precond = (enum kcp_store_precond)h[1];
        op->key_len = get_u16(h + 2);
        op->value_len = get_u32(h + 4);
        op->revision = get_u64(h + 8);
        pos += OP_HEADER_SIZE;
        if (op->key_len > body - pos || op->value_len > body - pos - op->key_len)
            goto done;
        op->key = (const char *)p + pos;
        op->value = op->value_len ? (const char *)p + pos + op->key_len : NULL;
        pos += op->key_len + op->value_len;
        if (!op_ok(op))
            goto done;
    }
    if (pos != body || !keys_unique(ops, nops))
        goto done;

    char *strs = block + ops_size;
    memcpy(strs, verb, vl);
    strs[vl] = '\0';
    memcpy(strs + vl + 1, user, ul);
    strs[vl + 1 + ul] = '\0';
    memcpy(strs + vl + ul + 2, rid, rl);
    strs[vl + ul + 2 + rl] = '\0';
    out->flags = flags;
    out->wall_s = (int64_t)get_u64(p + 12);
    out->wall_ns = ns;
    out->verb = strs;
    out->user = strs + vl + 1;
    out->request_id = strs + vl + ul + 2;
    out->nops = nops;
    out->ops = ops;
    out->alloc = block;
    block = NULL;
    rc = 0;
done:
    free(block);
    return rc;
}

void kcp_store_entry_free(struct kcp_store_entry *e)
{
    free(e->alloc);
    memset(e, 0, sizeof(*e));
}

void kcp_store_key(struct kcp_buf *out, const char *group, const char *resource,
                   const char *namespace_, const char *name)
{
    kcp_buf_reset(out);
    kcp_buf_printf(out, "/%s/%s/", group && *group ? group : "core", resource);
    if (name || namespace_)
        kcp_buf_printf(out, "%s/", namespace_ && *namespace_ ? namespace_ : "_");
    if (name)
        kcp_buf_puts(out, name);
}
