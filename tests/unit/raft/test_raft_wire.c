/* Unit tests of the Raft wire format: round trips of every message, and malformed input. */
#include <kcp/base.h>
#include <kcp/raft.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

int raft_wire_tests(void);

static struct kcp_raft_config three(void)
{
    struct kcp_raft_config c;
    memset(&c, 0, sizeof(c));
    c.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        c.servers[i].id = i + 1;
        c.servers[i].role = i == 2 ? KCP_RAFT_LEARNER : KCP_RAFT_VOTER;
        strcpy(c.servers[i].address, i ? "10.0.0.2:6443" : "node-1.example.com:6443");
    }
    return c;
}

/* Encodes, decodes and re-encodes: the second encoding must equal the first. */
static void roundtrip(const struct kcp_raft_msg *m, struct kcp_raft_msg *out)
{
    struct kcp_buf a = KCP_BUF_INIT, b = KCP_BUF_INIT;
    kcp_raft_msg_encode(m, &a);
    assert_int_equal(kcp_raft_msg_decode(out, a.data, a.len), 0);
    assert_int_equal(out->type, m->type);
    assert_int_equal(out->from, m->from);
    assert_int_equal(out->to, m->to);
    assert_int_equal(out->term, m->term);
    kcp_raft_msg_encode(out, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    /* Every strict prefix is malformed. */
    for (size_t n = 0; n < a.len; n++) {
        struct kcp_raft_msg t;
        assert_int_equal(kcp_raft_msg_decode(&t, a.data, n), KCP_EBADREQUEST);
    }
    /* And so is one byte too many. */
    kcp_buf_append(&a, "x", 1);
    struct kcp_raft_msg t;
    assert_int_equal(kcp_raft_msg_decode(&t, a.data, a.len), KCP_EBADREQUEST);
    kcp_buf_free(&a);
    kcp_buf_free(&b);
}

static void test_roundtrip_all(void **state)
{
    struct kcp_raft_config cfg = three();
    struct kcp_raft_entry entries[3] = {
        {4, 11, KCP_RAFT_ENTRY_NORMAL, {"hello", 5}},
        {4, 12, KCP_RAFT_ENTRY_NOOP, {NULL, 0}},
        {5, 13, KCP_RAFT_ENTRY_NORMAL, {"\0\1\2", 3}},
    };
    struct kcp_raft_msg m, out;
    for (int type = 1; type <= KCP_RAFT_MSG_TYPE_MAX; type++) {
        memset(&m, 0, sizeof(m));
        m.type = type;
        m.from = 1;
        m.to = 0x0102030405060708ULL;
        m.term = 5;
        switch (m.type) {
        case KCP_RAFT_MSG_APPEND:
            m.append.prev_index = 10;
            m.append.prev_term = 3;
            m.append.commit = 9;
            m.append.n_entries = 3;
            m.append.entries = entries;
            break;
        case KCP_RAFT_MSG_APPEND_RESP:
            m.append_resp.reject = true;
            m.append_resp.index = 10;
            m.append_resp.hint = 7;
            break;
        case KCP_RAFT_MSG_VOTE:
        case KCP_RAFT_MSG_PREVOTE:
            m.vote.last_index = 42;
            m.vote.last_term = 4;
            m.vote.transfer = true;
            break;
        case KCP_RAFT_MSG_VOTE_RESP:
        case KCP_RAFT_MSG_PREVOTE_RESP:
            m.vote_resp.granted = true;
            break;
        case KCP_RAFT_MSG_SNAPSHOT:
            m.snapshot.index = 100;
            m.snapshot.term = 4;
            m.snapshot.offset = 4096;
            m.snapshot.last = true;
            m.snapshot.config = &cfg;
            m.snapshot.data = (struct kcp_raft_buf){"chunk", 5};
            break;
        case KCP_RAFT_MSG_SNAPSHOT_RESP:
            m.snapshot_resp.index = 100;
            m.snapshot_resp.offset = 8192;
            m.snapshot_resp.done = true;
            break;
        case KCP_RAFT_MSG_READ_INDEX:
            m.read_index.token = 77;
            break;
        case KCP_RAFT_MSG_READ_INDEX_RESP:
            m.read_index_resp.token = 77;
            m.read_index_resp.index = 55;
            m.read_index_resp.ok = true;
            break;
        case KCP_RAFT_MSG_HEARTBEAT:
            m.heartbeat.commit = 9;
            m.heartbeat.seq = 3;
            break;
        case KCP_RAFT_MSG_HEARTBEAT_RESP:
            m.heartbeat_resp.seq = 3;
            break;
        default:
            break;
        }
        roundtrip(&m, &out);
        if (m.type == KCP_RAFT_MSG_APPEND) {
            assert_int_equal(out.append.n_entries, 3);
            assert_int_equal(out.append.entries[0].index, 11);
            assert_int_equal(out.append.entries[2].index, 13);
            assert_int_equal(out.append.entries[1].type, KCP_RAFT_ENTRY_NOOP);
            assert_null(out.append.entries[1].data.base);
            assert_memory_equal(out.append.entries[0].data.base, "hello", 5);
            assert_int_equal(out.append.commit, 9);
        } else if (m.type == KCP_RAFT_MSG_SNAPSHOT) {
            assert_int_equal(out.snapshot.config->n, 3);
            assert_string_equal(out.snapshot.config->servers[0].address, "node-1.example.com:6443");
            assert_int_equal(out.snapshot.config->servers[2].role, KCP_RAFT_LEARNER);
            assert_true(out.snapshot.last);
            assert_int_equal(out.snapshot.offset, 4096);
        } else if (m.type == KCP_RAFT_MSG_READ_INDEX_RESP) {
            assert_int_equal(out.read_index_resp.index, 55);
            assert_true(out.read_index_resp.ok);
        } else if (m.type == KCP_RAFT_MSG_APPEND_RESP) {
            assert_true(out.append_resp.reject);
            assert_int_equal(out.append_resp.hint, 7);
        }
        kcp_raft_msg_free(&out);
        assert_string_not_equal(kcp_raft_msg_type_name(type), "unknown");
    }
    assert_string_equal(kcp_raft_msg_type_name(0), "unknown");
    assert_string_equal(kcp_raft_msg_type_name(99), "unknown");
}

static void test_config(void **state)
{
    struct kcp_raft_config c = three(), d;
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_config_encode(&c, &b);
    assert_int_equal(kcp_raft_config_decode(&d, b.data, b.len), 0);
    assert_int_equal(d.n, 3);
    assert_non_null(kcp_raft_config_find(&d, 2));
    assert_null(kcp_raft_config_find(&d, 4));
    assert_string_equal(kcp_raft_config_find(&d, 3)->address, "10.0.0.2:6443");
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(kcp_raft_config_decode(&d, b.data, n), KCP_EBADREQUEST);
    /* Duplicate id, id 0, a bad role, an address with a NUL, too many servers. */
    struct kcp_raft_config bad = c;
    bad.servers[1].id = 1;
    kcp_buf_reset(&b);
    kcp_raft_config_encode(&bad, &b);
    assert_int_equal(kcp_raft_config_decode(&d, b.data, b.len), KCP_EBADREQUEST);
    bad = c;
    bad.servers[0].id = 0;
    kcp_buf_reset(&b);
    kcp_raft_config_encode(&bad, &b);
    assert_int_equal(kcp_raft_config_decode(&d, b.data, b.len), KCP_EBADREQUEST);
    bad = c;
    bad.servers[0].role = 9;
    kcp_buf_reset(&b);
    kcp_raft_config_encode(&bad, &b);
    assert_int_equal(kcp_raft_config_decode(&d, b.data, b.len), KCP_EBADREQUEST);
    kcp_buf_reset(&b);
    kcp_raft_config_encode(&c, &b);
    b.data[4 + 8 + 1 + 2 + 3] = '\0'; /* inside the first address */
    assert_int_equal(kcp_raft_config_decode(&d, b.data, b.len), KCP_EBADREQUEST);
    uint8_t many[4] = {KCP_RAFT_MAX_SERVERS + 1, 0, 0, 0};
    assert_int_equal(kcp_raft_config_decode(&d, many, 4), KCP_EBADREQUEST);
    uint8_t none[4] = {0, 0, 0, 0};
    assert_int_equal(kcp_raft_config_decode(&d, none, 4), 0);
    assert_int_equal(d.n, 0);
    kcp_buf_free(&b);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_malformed(void **state)
{
    struct kcp_raft_msg m;
    assert_int_equal(kcp_raft_msg_decode(&m, NULL, 0), KCP_EBADREQUEST);
    assert_int_equal(kcp_raft_msg_decode(&m, NULL, 10), KCP_EBADREQUEST);
    uint8_t hdr[26] = {1, KCP_RAFT_MSG_TIMEOUT_NOW};
    put64(hdr + 2, 1);
    put64(hdr + 10, 2);
    put64(hdr + 18, 3);
    assert_int_equal(kcp_raft_msg_decode(&m, hdr, sizeof(hdr)), 0);
    hdr[0] = 2; /* unknown version */
    assert_int_equal(kcp_raft_msg_decode(&m, hdr, sizeof(hdr)), KCP_EBADREQUEST);
    hdr[0] = 1;
    hdr[1] = 0; /* unknown types */
    assert_int_equal(kcp_raft_msg_decode(&m, hdr, sizeof(hdr)), KCP_EBADREQUEST);
    hdr[1] = KCP_RAFT_MSG_TYPE_MAX + 1;
    assert_int_equal(kcp_raft_msg_decode(&m, hdr, sizeof(hdr)), KCP_EBADREQUEST);

    /* A boolean that is neither 0 nor 1. */
    uint8_t vr[27];
    memcpy(vr, hdr, 26);
    vr[1] = KCP_RAFT_MSG_VOTE_RESP;
    vr[26] = 2;
    assert_int_equal(kcp_raft_msg_decode(&m, vr, sizeof(vr)), KCP_EBADREQUEST);
    vr[26] = 1;
    assert_int_equal(kcp_raft_msg_decode(&m, vr, sizeof(vr)), 0);

    /* An entry count far beyond the bytes present never sizes an allocation. */
    uint8_t ap[26 + 28];
    memset(ap, 0, sizeof(ap));
    memcpy(ap, hdr, 26);
    ap[1] = KCP_RAFT_MSG_APPEND;
    memset(ap + 26 + 24, 0xff, 4);
    assert_int_equal(kcp_raft_msg_decode(&m, ap, sizeof(ap)), KCP_EBADREQUEST);
    /* prev_index + n overflowing. */
    put64(ap + 26, UINT64_MAX);
    ap[26 + 24] = 1;
    memset(ap + 26 + 25, 0, 3);
    assert_int_equal(kcp_raft_msg_decode(&m, ap, sizeof(ap)), KCP_EBADREQUEST);

    /* An entry of an unknown type; then an entry whose length runs past the end. */
    struct kcp_raft_entry e = {1, 1, KCP_RAFT_ENTRY_NORMAL, {"abc", 3}};
    struct kcp_raft_msg a = {.type = KCP_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1};
    a.append.n_entries = 1;
    a.append.entries = &e;
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_msg_encode(&a, &b);
    b.data[26 + 28 + 8] = 7;
    assert_int_equal(kcp_raft_msg_decode(&m, b.data, b.len), KCP_EBADREQUEST);
    b.data[26 + 28 + 8] = KCP_RAFT_ENTRY_NORMAL;
    b.data[26 + 28 + 9] = 4;
    assert_int_equal(kcp_raft_msg_decode(&m, b.data, b.len), KCP_EBADREQUEST);
    kcp_buf_free(&b);

    /* Random bytes and random mutations of valid messages: decoded or refused, never a crash. */
    uint64_t x = 88172645463325252ULL;
    struct kcp_raft_config cfg = three();
    struct kcp_raft_msg s = {.type = KCP_RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 3};
    s.snapshot.config = &cfg;
    s.snapshot.data = (struct kcp_raft_buf){"data", 4};
    struct kcp_buf valid[2] = {KCP_BUF_INIT, KCP_BUF_INIT};
    kcp_raft_msg_encode(&a, &valid[0]);
    kcp_raft_msg_encode(&s, &valid[1]);
    uint8_t buf[512];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const struct kcp_buf *v = &valid[i & 1];
        size_t len = v->len;
        memcpy(buf, v->data, len);
        buf[x % len] ^= (uint8_t)(x >> 32);
        if (i % 3 == 0)
            len = (x >> 20) % len;
        int rc = kcp_raft_msg_decode(&m, buf, len);
        assert_true(rc == 0 || rc == KCP_EBADREQUEST);
        if (rc == 0)
            kcp_raft_msg_free(&m);
    }
    kcp_buf_free(&valid[0]);
    kcp_buf_free(&valid[1]);
}

int raft_wire_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests_name("raft wire", tests, NULL, NULL);
}
