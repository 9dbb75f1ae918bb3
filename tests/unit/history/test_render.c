/* history_render_fast against history_render_json: the same bytes on generated documents. */
#include "th.h"

#include "history_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* JSON string bodies (already escaped): what YAML must quote, what it may not, escapes, UTF-8. */
static const char *const strs[] = {"",
                                   "a",
                                   "web",
                                   "a: b",
                                   "a:b",
                                   "a #b",
                                   "a#b",
                                   " x",
                                   "x ",
                                   "-",
                                   "-x",
                                   "~",
                                   "null",
                                   "Null",
                                   "yes",
                                   "Y",
                                   "off",
                                   "true",
                                   "1",
                                   "007",
                                   "1.5",
                                   ".5",
                                   "1e3",
                                   "+1",
                                   "-1",
                                   "0x1F",
                                   "inf",
                                   "nan",
                                   "Infinity",
                                   "9995",
                                   "?q",
                                   "%p",
                                   "@a",
                                   "`b",
                                   "[x]",
                                   "{y}",
                                   "<&>",
                                   "\\n",
                                   "a\\nb",
                                   "\\t",
                                   "\\\"q\\\"",
                                   "\\\\",
                                   "\\/",
                                   "\\b\\f",
                                   "\\r",
                                   "\\u0041",
                                   "\\u00e9",
                                   "caf\xc3\xa9",
                                   "\\ud83d\\ude00",
                                   "\x7f",
                                   "f:data",
                                   ".",
                                   "k8s.io/x",
                                   "2025-11-26T01:54:32Z"};
static const char *const keys[] = {"metadata",
                                   "resourceVersion",
                                   "managedFields",
                                   "time",
                                   "name",
                                   "data",
                                   "spec",
                                   "a",
                                   "b",
                                   "",
                                   "a: b",
                                   "-k",
                                   "1",
                                   "true",
                                   "f:data",
                                   ".",
                                   "k\\\"q",
                                   "\\u0041",
                                   "caf\xc3\xa9",
                                   "z"};
static const char *const nums[] = {"0",
                                   "7",
                                   "-5",
                                   "123456789012345678",
                                   "1234567890123456789",
                                   "-0",
                                   "1.5",
                                   "1e3",
                                   "-0.0",
                                   "1E400",
                                   "0.1",
                                   "2",
                                   "01"};

static void sp(struct kcp_buf *b, uint64_t *s)
{
    static const char *const w[] = {"", "", "", " ", "\n  ", "\t"};
    kcp_buf_puts(b, w[rnd(s) % 6]);
}

static void gen(struct kcp_buf *b, uint64_t *s, int depth);

static void gen_object(struct kcp_buf *b, uint64_t *s, int depth, bool meta)
{
    size_t n = rnd(s) % (depth > 3 ? 2 : 5);
    kcp_buf_puts(b, "{");
    for (size_t i = 0; i < n + (meta ? 2 : 0); i++) {
        if (i)
            kcp_buf_puts(b, ",");
        sp(b, s);
        if (meta && i == n) {
            kcp_buf_puts(b, "\"resourceVersion\":\"42\"");
        } else if (meta && i == n + 1) {
            kcp_buf_puts(b, "\"managedFields\":[{\"manager\":\"m\",\"time\":\"t\"},\"x\",");
            gen(b, s, depth + 1);
            kcp_buf_puts(b, "]");
        } else {
            kcp_buf_printf(b, "\"%s\"", keys[rnd(s) % (sizeof(keys) / sizeof(*keys))]);
            sp(b, s);
            kcp_buf_puts(b, ":");
            sp(b, s);
            gen(b, s, depth + 1);
        }
    }
    sp(b, s);
    kcp_buf_puts(b, "}");
}

static void gen(struct kcp_buf *b, uint64_t *s, int depth)
{
    uint64_t k = rnd(s) % (depth > 4 ? 6 : 10);
    if (k < 3)
        kcp_buf_printf(b, "\"%s\"", strs[rnd(s) % (sizeof(strs) / sizeof(*strs))]);
    else if (k == 3)
        kcp_buf_puts(b, nums[rnd(s) % (sizeof(nums) / sizeof(*nums))]);
    else if (k == 4)
        kcp_buf_puts(b, rnd(s) % 3 == 0 ? "true" : rnd(s) % 2 ? "false" : "null");
    else if (k == 5)
        kcp_buf_puts(b, rnd(s) % 2 ? "{}" : "[]");
    else if (k < 8)
        gen_object(b, s, depth, false);
    else {
        size_t n = rnd(s) % 4;
        kcp_buf_puts(b, "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                kcp_buf_puts(b, ",");
            sp(b, s);
            gen(b, s, depth + 1);
        }
        kcp_buf_puts(b, "]");
    }
}

static void test_render_fast(void **state)
{
    struct kcp_buf doc = KCP_BUF_INIT, fast = KCP_BUF_INIT, slow = KCP_BUF_INIT;
    uint64_t s = 1, taken = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        kcp_buf_reset(&doc);
        kcp_buf_reset(&fast);
        kcp_buf_reset(&slow);
        /* A top-level object with a metadata object (the fields dropped), or any document. */
        if (rnd(&s) % 4) {
            kcp_buf_puts(&doc, "{\"kind\":\"X\",\"metadata\":");
            gen_object(&doc, &s, 1, rnd(&s) % 3 != 0);
            kcp_buf_puts(&doc, ",\"spec\":");
            gen(&doc, &s, 1);
            kcp_buf_puts(&doc, "}");
        } else {
            gen(&doc, &s, 0);
        }
        if (rnd(&s) % 50 == 0)
            kcp_buf_puts(&doc, rnd(&s) % 2 ? " x" : "\n"); /* trailing garbage, or space */
        int rc = history_render_json(&slow, doc.data, doc.len);
        if (!history_render_fast(&fast, doc.data, doc.len)) {
            assert_int_equal(fast.len, 0);
            continue;
        }
        taken++;
        if (rc != 0 || fast.len != slow.len || memcmp(fast.data, slow.data, fast.len) != 0)
            fail_msg("document %d differs: %s\n--- json:\n%s\n--- fast:\n%s", i, doc.data,
                     slow.data ? slow.data : "(none)", fast.data);
    }
    /* A quarter or more of the documents are in the fast path's subset (5,461 of 20,000). */
    assert_true(taken > (uint64_t)n / 4);
    kcp_buf_free(&doc);
    kcp_buf_free(&fast);
    kcp_buf_free(&slow);
}

/* What the API stores takes the fast path. */
static void test_render_fast_api(void **state)
{
    const char *cm =
        "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"cm-u3\","
        "\"namespace\":\"default\",\"uid\":\"44e63f79-201f-4193-940b-495111d8618f\","
        "\"resourceVersion\":\"10018\",\"creationTimestamp\":\"2026-11-26T01:54:32Z\","
        "\"managedFields\":[{\"manager\":\"python\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
        "\"time\":\"2026-11-26T01:54:50Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:data\":"
        "{\".\":{},\"f:i\":{}}}}]},\"data\":{\"i\":\"9995\"}}";
    const char *want = "apiVersion: v1\n"
                       "data:\n"
                       "  i: \"9995\"\n"
                       "kind: ConfigMap\n"
                       "metadata:\n"
                       "  creationTimestamp: 2026-11-26T01:54:32Z\n"
                       "  managedFields:\n"
                       "  - apiVersion: v1\n"
                       "    fieldsType: FieldsV1\n"
                       "    fieldsV1:\n"
                       "      f:data:\n"
                       "        .: {}\n"
                       "        f:i: {}\n"
                       "    manager: python\n"
                       "    operation: Update\n"
                       "  name: cm-u3\n"
                       "  namespace: default\n"
                       "  uid: 44e63f79-201f-4193-940b-495111d8618f\n";
    struct kcp_buf y = KCP_BUF_INIT;
    assert_true(history_render_fast(&y, cm, strlen(cm)));
    assert_string_equal(y.data, want);
    kcp_buf_free(&y);
}

int test_render_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_fast),
        cmocka_unit_test(test_render_fast_api),
    };
    return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
