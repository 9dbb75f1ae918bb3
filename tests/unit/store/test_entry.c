/* Entry encoding and decoding, the key convention, and resourceVersion stamping (json_rv.c). */
#include "fixture.h"
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Re-seals a patched entry so that only the field under test is wrong, not the checksum. */
static void reseal(unsigned char *p, size_t len)
{
    le32(p + len - 4, store_crc32c(0, p, len - 4));
}

static void encode_sample(struct kcp_buf *b)
{
    struct kcp_store_op ops[3] = {
        fx_op_put("/core/configmaps/default/a", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0),
        fx_op_del("/core/configmaps/default/b", KCP_STORE_IF_REVISION, 42),
        fx_op_put("/apps/deployments/kube-system/c", "{\"metadata\":{\"name\":\"c\"}}",
                  KCP_STORE_IF_ANY, 0),
    };
    struct kcp_store_entry e = {.flags = KCP_STORE_ATOMIC,
                                .wall_s = -5,
                                .wall_ns = 999999999,
                                .verb = "update",
                                .user = "jane",
                                .request_id = "r-77",
                                .nops = 3,
                                .ops = ops};
    assert_int_equal(kcp_store_entry_encode(b, &e), 0);
}

static void test_roundtrip(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    struct kcp_store_entry d;
    encode_sample(&b);
    assert_int_equal(kcp_store_entry_decode(&d, b.data, b.len), 0);
    assert_int_equal(d.flags, KCP_STORE_ATOMIC);
    assert_int_equal(d.wall_s, -5);
    assert_int_equal(d.wall_ns, 999999999);
    assert_string_equal(d.verb, "update");
    assert_string_equal(d.user, "jane");
    assert_string_equal(d.request_id, "r-77");
    assert_int_equal(d.nops, 3);
    assert_int_equal(d.ops[0].type, KCP_STORE_PUT);
    assert_int_equal(d.ops[0].precond, KCP_STORE_IF_ABSENT);
    assert_memory_equal(d.ops[0].key, "/core/configmaps/default/a", d.ops[0].key_len);
    assert_int_equal(d.ops[0].value_len, strlen("{\"metadata\":{}}"));
    assert_memory_equal(d.ops[0].value, "{\"metadata\":{}}", d.ops[0].value_len);
    assert_int_equal(d.ops[1].type, KCP_STORE_DELETE);
    assert_int_equal(d.ops[1].precond, KCP_STORE_IF_REVISION);
    assert_int_equal(d.ops[1].revision, 42);
    assert_null(d.ops[1].value);
    assert_int_equal(d.ops[2].precond, KCP_STORE_IF_ANY);

    /* Re-encoding the decoded entry gives the same bytes: one encoding per entry. */
    struct kcp_buf again = KCP_BUF_INIT;
    assert_int_equal(kcp_store_entry_encode(&again, &d), 0);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    kcp_store_entry_free(&d);
    kcp_buf_free(&again);
    kcp_buf_free(&b);

    /* No ops and no metadata is a valid (no-op) entry. */
    struct kcp_store_entry empty = {0};
    assert_int_equal(kcp_store_entry_encode(&b, &empty), 0);
    assert_int_equal(kcp_store_entry_decode(&d, b.data, b.len), 0);
    assert_int_equal(d.nops, 0);
    assert_string_equal(d.verb, "");
    kcp_store_entry_free(&d);
    kcp_buf_free(&b);
}

static void test_truncated_and_flipped(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    struct kcp_store_entry d;
    encode_sample(&b);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(kcp_store_entry_decode(&d, b.data, n), KCP_EBADREQUEST);
    /* One more byte than the header says. */
    kcp_buf_append(&b, "x", 1);
    assert_int_equal(kcp_store_entry_decode(&d, b.data, b.len), KCP_EBADREQUEST);
    b.len--;
    /* Every single-bit flip is caught (by a field check or the CRC). */
    for (size_t i = 0; i < b.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (char)(1 << bit);
            assert_int_equal(kcp_store_entry_decode(&d, b.data, b.len), KCP_EBADREQUEST);
            b.data[i] ^= (char)(1 << bit);
        }
    assert_int_equal(kcp_store_entry_decode(&d, NULL, 0), KCP_EBADREQUEST);
    assert_int_equal(kcp_store_entry_decode(&d, b.data, b.len), 0);
    kcp_store_entry_free(&d);
    kcp_buf_free(&b);
}

/* A one-op entry to patch: header 36 + "v" 1, op header at 37. */
static size_t one_op(struct kcp_buf *b, struct kcp_store_op op)
{
    struct kcp_store_entry e = {.verb = "v", .nops = 1, .ops = &op};
    kcp_buf_reset(b);
    assert_int_equal(kcp_store_entry_encode(b, &e), 0);
    return 37;
}

static void expect_bad(struct kcp_buf *b)
{
    struct kcp_store_entry d;
    reseal((unsigned char *)b->data, b->len);
    assert_int_equal(kcp_store_entry_decode(&d, b->data, b->len), KCP_EBADREQUEST);
}

static void test_bad_fields(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    unsigned char *p;
    size_t op;

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[3] = 2; /* format version */
    expect_bad(&b);

    one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[8] = 4; /* unknown flag */
    expect_bad(&b);

    one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    le32(p + 20, 1000000000); /* nanoseconds out of range */
    expect_bad(&b);

    one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[34] = 1; /* reserved */
    expect_bad(&b);

    one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    le32(p + 24, 0xffffffffu); /* op count far beyond the bytes */
    expect_bad(&b);

    one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    le32(p + 24, 0); /* fewer ops than bytes: trailing garbage */
    expect_bad(&b);

    one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[36] = 0; /* NUL inside the verb */
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[op] = 3; /* op type */
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[op + 1] = 4; /* precondition */
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[op + 8] = 1; /* a revision without IF_REVISION */
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_REVISION, 1));
    p = (unsigned char *)b.data;
    p[op + 8] = 0; /* IF_REVISION without a revision */
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[op + 16 + 1] = 0; /* NUL in the key */
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[op + 2] = 0xff; /* key length past the end */
    p[op + 3] = 0xff;
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    p[op] = KCP_STORE_DELETE; /* a DELETE carrying a value */
    expect_bad(&b);

    op = one_op(&b, fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0));
    p = (unsigned char *)b.data;
    le32(p + 4, (uint32_t)b.len + 1); /* total length */
    expect_bad(&b);

    /* The same key twice in one entry. */
    struct kcp_store_op dup[2] = {fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0),
                                  fx_op_put("/j", "{}", KCP_STORE_IF_ANY, 0)};
    struct kcp_store_entry e = {.nops = 2, .ops = dup};
    kcp_buf_reset(&b);
    assert_int_equal(kcp_store_entry_encode(&b, &e), 0);
    p = (unsigned char *)b.data;
    op = 36 + 16 + 2 + 2; /* second op's key */
    assert_int_equal(p[op + 16 + 1], 'j');
    p[op + 16 + 1] = 'k';
    expect_bad(&b);
    kcp_buf_free(&b);
}

static void test_encode_rejects(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    char longkey[KCP_STORE_MAX_KEY + 2];
    memset(longkey, 'a', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    struct kcp_store_op bad[] = {
        fx_op_put("", "{}", KCP_STORE_IF_ANY, 0), fx_op_put(longkey, "{}", KCP_STORE_IF_ANY, 0),
        fx_op_put("/k", "", KCP_STORE_IF_ANY, 0), fx_op_put("/k", "{}", KCP_STORE_IF_REVISION, 0),
        fx_op_del("/k", KCP_STORE_IF_PRESENT, 3),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kcp_store_entry e = {.nops = 1, .ops = &bad[i]};
        assert_int_equal(kcp_store_entry_encode(&b, &e), KCP_EINVAL);
    }
    struct kcp_store_op dup[2] = {fx_op_put("/k", "{}", KCP_STORE_IF_ANY, 0),
                                  fx_op_del("/k", KCP_STORE_IF_ANY, 0)};
    struct kcp_store_entry e = {.nops = 2, .ops = dup};
    assert_int_equal(kcp_store_entry_encode(&b, &e), KCP_EINVAL);
    struct kcp_store_entry e2 = {.wall_ns = 1000000000};
    assert_int_equal(kcp_store_entry_encode(&b, &e2), KCP_EINVAL);
    struct kcp_store_entry e3 = {.user = "a\nb", .flags = 4};
    assert_int_equal(kcp_store_entry_encode(&b, &e3), KCP_EINVAL);
    assert_int_equal(b.len, 0);
    kcp_buf_free(&b);
}

static void test_key_convention(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_store_key(&b, "", "configmaps", "default", "x");
    assert_string_equal(b.data, "/core/configmaps/default/x");
    kcp_store_key(&b, "apps", "deployments", "kube-system", NULL);
    assert_string_equal(b.data, "/apps/deployments/kube-system/");
    kcp_store_key(&b, NULL, "nodes", NULL, "n1");
    assert_string_equal(b.data, "/core/nodes/_/n1");
    kcp_store_key(&b, "rbac.authorization.k8s.io", "clusterroles", NULL, NULL);
    assert_string_equal(b.data, "/rbac.authorization.k8s.io/clusterroles/");
    kcp_buf_free(&b);
}

static void expect_rv(const char *in, uint64_t rv, const char *want)
{
    struct kcp_buf b = KCP_BUF_INIT;
    assert_int_equal(store_json_set_rv(&b, in, strlen(in), rv), 0);
    assert_string_equal(b.data, want);
    kcp_buf_free(&b);
    /* And the result is an object store_obj_build accepts, with the same bytes. */
    struct kcp_obj *o = NULL;
    assert_int_equal(store_obj_build(&o, "/k", 2, in, strlen(in), rv, rv), 0);
    assert_string_equal(o->json, want);
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)rv);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o->doc, "metadata"), "resourceVersion")),
        num);
    kcp_obj_unref(o);
}

static void test_resource_version(void **state)
{
    /* Replaced in place; every other byte (spacing, number spelling) kept. */
    expect_rv("{ \"metadata\" : {\"name\":\"a\", \"resourceVersion\" : \"17\" }, \"x\": 0.1 }", 5,
              "{ \"metadata\" : {\"name\":\"a\", \"resourceVersion\" : \"5\" }, \"x\": 0.1 }");
    expect_rv("{\"metadata\":{\"resourceVersion\":null}}", 18446744073709551615ull,
              "{\"metadata\":{\"resourceVersion\":\"18446744073709551615\"}}");
    /* Inserted where upstream's field order puts it: after uid. */
    expect_rv("{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"uid\":\"u\",\"generation\":1}}", 9,
              "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"uid\":\"u\",\"resourceVersion\":"
              "\"9\",\"generation\":1}}");
    expect_rv("{\"metadata\":{}}", 1, "{\"metadata\":{\"resourceVersion\":\"1\"}}");
    expect_rv("{\"metadata\":{\"labels\":{}}}", 1,
              "{\"metadata\":{\"resourceVersion\":\"1\",\"labels\":{}}}");
    /* No metadata: one is added after kind/apiVersion. */
    expect_rv("{\"apiVersion\":\"v1\",\"kind\":\"X\",\"spec\":[1,{\"]\":\"}\"}]}", 3,
              "{\"apiVersion\":\"v1\",\"kind\":\"X\",\"metadata\":{\"resourceVersion\":\"3\"},"
              "\"spec\":[1,{\"]\":\"}\"}]}");
    expect_rv("{}", 2, "{\"metadata\":{\"resourceVersion\":\"2\"}}");
    /* Escaped member names mean the same member. */
    expect_rv("{\"met\\u0061data\":{\"resourceVersio\\u006e\":\"1\",\"a\":\"\\\"\"}}", 4,
              "{\"met\\u0061data\":{\"resourceVersio\\u006e\":\"4\",\"a\":\"\\\"\"}}");

    const char *bad[] = {"",
                         "[]",
                         "{\"metadata\":[]}",
                         "{\"metadata\":\"x\"}",
                         "{\"a\":}",
                         "{\"a\":1",
                         "{\"a\" 1}",
                         "\"str\"",
                         "{\"metadata\":{\"a\":1,}}",
                         "{\"a\":\"\\",
                         "{\"metadata\":{},\"metadata\":{}}",
                         "{} x",
                         "{\"metadata\":{\"resourceVersion\":\"1\",\"resourceVersion\":\"2\"}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kcp_obj *o = NULL;
        assert_int_equal(store_obj_build(&o, "/k", 2, bad[i], strlen(bad[i]), 1, 1), KCP_EINVALID);
        assert_null(o);
    }
}

int test_entry_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_bad_fields),     cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_key_convention), cmocka_unit_test(test_resource_version),
    };
    return cmocka_run_group_tests_name("store.entry", tests, NULL, NULL);
}
