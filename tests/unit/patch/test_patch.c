/* Unit tests of the patch module: RFC 6902 and 7386 tables, upstream's quirks, strategic merge. */
#include <kcp/base.h>
#include <kcp/patch.h>

#include "smp_schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad test json %s: %s", text, e.text);
    return j;
}

enum kind { JSONP, MERGE, SMP, SMP_NOSCHEMA };

static int apply(enum kind k, json_t **out, const json_t *o, const json_t *p, char **err)
{
    switch (k) {
    case JSONP:
        return kcp_patch_apply_json(out, o, p, err);
    case MERGE:
        return kcp_patch_apply_merge(out, o, p, err);
    case SMP:
        return kcp_patch_apply_strategic(out, o, p, &smp_test_schema, err);
    default:
        return kcp_patch_apply_strategic(out, o, p, NULL, err);
    }
}

/* Applies, checks the result, and checks that neither input was changed. */
static void ok(enum kind k, const char *orig, const char *patch, const char *want)
{
    json_t *o = J(orig), *p = J(patch), *w = J(want), *out = NULL;
    char *before_o = json_dumps(o, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *before_p = json_dumps(p, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *err = NULL;
    int rc = apply(k, &out, o, p, &err);
    if (rc != 0)
        fail_msg("patch %s on %s failed (%d): %s", patch, orig, rc, err);
    assert_null(err);
    if (!json_equal(out, w)) {
        char *got = json_dumps(out, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("patch %s on %s\n got: %s\nwant: %s", patch, orig, got, want);
    }
    char *after_o = json_dumps(o, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *after_p = json_dumps(p, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_string_equal(before_o, after_o);
    assert_string_equal(before_p, after_p);
    free(before_o);
    free(before_p);
    free(after_o);
    free(after_p);
    json_decref(o);
    json_decref(p);
    json_decref(w);
    json_decref(out);
}

/* Expects code and, when want is not NULL, exactly that message. */
static void bad(enum kind k, const char *orig, const char *patch, int code, const char *want)
{
    json_t *o = J(orig), *p = J(patch), *out = (json_t *)1;
    char *err = NULL;
    int rc = apply(k, &out, o, p, &err);
    if (rc != code)
        fail_msg("patch %s on %s: got %d (%s), want %d", patch, orig, rc, err ? err : "", code);
    assert_null(out);
    assert_non_null(err);
    if (want && strcmp(err, want) != 0)
        fail_msg("patch %s on %s\n got message: %s\nwant message: %s", patch, orig, err, want);
    free(err);
    json_decref(o);
    json_decref(p);
}

/* ---- RFC 6902, appendix A (cases written for these tests) ------------------------------------ */

static void test_json_rfc_examples(void **state)
{
    ok(JSONP, "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
       "{\"baz\":\"qux\",\"foo\":\"bar\"}");
    ok(JSONP, "{\"foo\":[\"bar\",\"baz\"]}",
       "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
       "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
    ok(JSONP, "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]",
       "{\"foo\":\"bar\"}");
    ok(JSONP, "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
       "{\"foo\":[\"bar\",\"baz\"]}");
    ok(JSONP, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
       "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
       "{\"baz\":\"boo\",\"foo\":\"bar\"}");
    ok(JSONP, "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
       "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
       "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
    ok(JSONP, "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
       "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
       "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
    ok(JSONP, "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
       "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
       "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
       "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
    bad(JSONP, "{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
        KCP_EINVALID, "testing value /baz failed: test failed");
    ok(JSONP, "{\"foo\":\"bar\"}",
       "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
       "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
    ok(JSONP, "{\"foo\":\"bar\"}",
       "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
       "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    bad(JSONP, "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
        KCP_EINVALID,
        "add operation does not apply: doc is missing path: \"/baz/bat\": missing value");
    ok(JSONP, "{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
       "{\"/\":9,\"~1\":10}");
    bad(JSONP, "{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]",
        KCP_EINVALID, "testing value /~01 failed: test failed");
    ok(JSONP, "{\"foo\":[\"bar\"]}",
       "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
       "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
}

static void test_json_pointer(void **state)
{
    ok(JSONP, "{\"a/b\":1,\"m~n\":2}",
       "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":3},"
       "{\"op\":\"remove\",\"path\":\"/m~0n\"}]",
       "{\"a/b\":3}");
    /* "~" not followed by 0 or 1 is kept as it is, as upstream does */
    ok(JSONP, "{}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]", "{\"a~2\":1}");
    /* the empty key */
    ok(JSONP, "{}", "[{\"op\":\"add\",\"path\":\"/\",\"value\":1}]", "{\"\":1}");
    /* upstream ignores the first token: "a/b" acts on "/b" */
    ok(JSONP, "{}", "[{\"op\":\"add\",\"path\":\"x/b\",\"value\":1}]", "{\"b\":1}");
    bad(JSONP, "{}", "[{\"op\":\"add\",\"path\":\"b\",\"value\":1}]", KCP_EINVALID,
        "add operation does not apply: doc is missing path: \"b\": missing value");
    /* through arrays, with negative indexes from the end */
    ok(JSONP, "{\"a\":[{\"b\":1},{\"b\":2}]}",
       "[{\"op\":\"replace\",\"path\":\"/a/-1/b\",\"value\":3},"
       "{\"op\":\"add\",\"path\":\"/a/0/c\",\"value\":4}]",
       "{\"a\":[{\"b\":1,\"c\":4},{\"b\":3}]}");
    /* a scalar or null on the way is no parent */
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", KCP_EINVALID, NULL);
    bad(JSONP, "{\"a\":null}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", KCP_EINVALID,
        NULL);
    /* the root may be an array */
    ok(JSONP, "[1,2]", "[{\"op\":\"add\",\"path\":\"/0\",\"value\":0}]", "[0,1,2]");
}

static void test_json_arrays(void **state)
{
    const char *a = "{\"a\":[1,2,3]}";
    ok(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/3\",\"value\":4}]", "{\"a\":[1,2,3,4]}");
    ok(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":4}]", "{\"a\":[1,2,3,4]}");
    ok(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/-1\",\"value\":9}]", "{\"a\":[1,2,3,9]}");
    ok(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/-4\",\"value\":9}]", "{\"a\":[9,1,2,3]}");
    ok(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":9}]", "{\"a\":[1,9,2,3]}");
    ok(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/+0\",\"value\":9}]", "{\"a\":[9,1,2,3]}");
    bad(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":4}]", KCP_EINVALID,
        "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index "
        "referenced");
    bad(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/-5\",\"value\":4}]", KCP_EINVALID,
        "error in add for path: '/a/-5': Unable to access invalid index: -5: invalid index "
        "referenced");
    bad(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/x\",\"value\":4}]", KCP_EINVALID,
        "error in add for path: '/a/x': value was not a proper array index: 'x': strconv.Atoi: "
        "parsing \"x\": invalid syntax");
    bad(JSONP, a, "[{\"op\":\"add\",\"path\":\"/a/99999999999999999999\",\"value\":4}]",
        KCP_EINVALID,
        "error in add for path: '/a/99999999999999999999': value was not a proper array index: "
        "'99999999999999999999': strconv.Atoi: parsing \"99999999999999999999\": value out of "
        "range");
    ok(JSONP, a, "[{\"op\":\"remove\",\"path\":\"/a/-1\"}]", "{\"a\":[1,2]}");
    bad(JSONP, a, "[{\"op\":\"remove\",\"path\":\"/a/3\"}]", KCP_EINVALID,
        "error in remove for path: '/a/3': Unable to access invalid index: 3: invalid index "
        "referenced");
    bad(JSONP, a, "[{\"op\":\"remove\",\"path\":\"/a/-\"}]", KCP_EINVALID,
        "error in remove for path: '/a/-': strconv.Atoi: parsing \"-\": invalid syntax");
    ok(JSONP, a, "[{\"op\":\"replace\",\"path\":\"/a/0\",\"value\":0}]", "{\"a\":[0,2,3]}");
    bad(JSONP, a, "[{\"op\":\"replace\",\"path\":\"/a/3\",\"value\":0}]", KCP_EINVALID,
        "replace operation does not apply: doc is missing key: /a/3: missing value");
    ok(JSONP, "{\"a\":[1,null]}", "[{\"op\":\"test\",\"path\":\"/a/1\",\"value\":null}]",
       "{\"a\":[1,null]}");
    bad(JSONP, a, "[{\"op\":\"test\",\"path\":\"/a/9\",\"value\":1}]", KCP_EINVALID,
        "error in test for path: '/a/9': Unable to access invalid index: 9: invalid index "
        "referenced");
}

static void test_json_upstream_quirks(void **state)
{
    /* replace of a missing object member adds it (evanphx v4) */
    ok(JSONP, "{\"metadata\":{}}",
       "[{\"op\":\"replace\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"b\"}}]",
       "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}");
    /* copy from a missing member adds null */
    ok(JSONP, "{\"a\":{}}", "[{\"op\":\"copy\",\"from\":\"/a/x\",\"path\":\"/b\"}]",
       "{\"a\":{},\"b\":null}");
    /* add without a value adds null */
    ok(JSONP, "{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", "{\"a\":null}");
    /* a missing member tests equal to null, and to no value at all */
    ok(JSONP, "{}",
       "[{\"op\":\"test\",\"path\":\"/a\",\"value\":null},"
       "{\"op\":\"test\",\"path\":\"/a\"}]",
       "{}");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\"}]", KCP_EINVALID,
        "testing value /a failed: test failed");
    bad(JSONP, "{}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]", KCP_EINVALID,
        "testing value /a failed: test failed");
    /* numbers compare by kind as well as value */
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1.0}]", KCP_EINVALID,
        NULL);
    ok(JSONP, "{\"a\":{\"x\":[1,{\"y\":true}]}}",
       "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"x\":[1,{\"y\":true}]}}]",
       "{\"a\":{\"x\":[1,{\"y\":true}]}}");
    /* the whole document: replace and test at "" */
    ok(JSONP, "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"b\":2}}]", "{\"b\":2}");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":3}]", KCP_EINVALID,
        "replace operation value must be object or array: %!w(<nil>)");
    ok(JSONP, "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"\",\"value\":{\"a\":1}}]", "{\"a\":1}");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"\",\"value\":{}}]", KCP_EINVALID,
        "testing value  failed: test failed");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", KCP_EINVALID,
        "remove operation does not apply: doc is missing path: \"\": missing value");
    /* moves */
    ok(JSONP, "{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]", "{\"a\":1}");
    ok(JSONP, "{\"a\":null}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]",
       "{\"b\":null}");
    bad(JSONP, "{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]",
        KCP_EINVALID,
        "move operation does not apply: doc is missing destination path: /a/b/c: missing value");
    bad(JSONP, "{}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/y\"}]", KCP_EINVALID,
        "error in move for path: 'x': Unable to remove nonexistent key: x: missing value");
    bad(JSONP, "{}", "[{\"op\":\"move\",\"from\":\"/x/y\",\"path\":\"/y\"}]", KCP_EINVALID,
        "move operation does not apply: doc is missing from path: /x/y: missing value");
    /* copies are deep */
    ok(JSONP, "{\"a\":{\"b\":[1]}}",
       "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},"
       "{\"op\":\"add\",\"path\":\"/c/b/-\",\"value\":2}]",
       "{\"a\":{\"b\":[1]},\"c\":{\"b\":[1,2]}}");
    bad(JSONP, "{}", "[{\"op\":\"copy\",\"from\":\"/x/y\",\"path\":\"/y\"}]", KCP_EINVALID,
        "copy operation does not apply: doc is missing from path: /x/y: missing value");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/x/y\"}]", KCP_EINVALID,
        "copy operation does not apply: doc is missing destination path: /x/y: missing value");
    /* removing a missing member */
    bad(JSONP, "{}", "[{\"op\":\"remove\",\"path\":\"/x\"}]", KCP_EINVALID,
        "error in remove for path: '/x': Unable to remove nonexistent key: x: missing value");
    bad(JSONP, "{}", "[{\"op\":\"remove\",\"path\":\"/x/y\"}]", KCP_EINVALID,
        "remove operation does not apply: doc is missing path: \"/x/y\": missing value");
    bad(JSONP, "{}", "[{\"op\":\"replace\",\"path\":\"/x/y\",\"value\":1}]", KCP_EINVALID,
        "replace operation does not apply: doc is missing path: /x/y: missing value");
    bad(JSONP, "{}", "[{\"op\":\"test\",\"path\":\"/x/y\",\"value\":1}]", KCP_EINVALID,
        "test operation does not apply: is missing path: /x/y: missing value");
}

static void test_json_malformed(void **state)
{
    /* decoding problems are 400, as upstream */
    bad(JSONP, "{}", "{\"op\":\"add\"}", KCP_EBADREQUEST,
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
    bad(JSONP, "{}", "\"x\"", KCP_EBADREQUEST,
        "json: cannot unmarshal string into Go value of type jsonpatch.Patch");
    bad(JSONP, "{}", "[{\"op\":\"test\",\"path\":\"/a\"}, 3]", KCP_EBADREQUEST,
        "json: cannot unmarshal number into Go value of type jsonpatch.Operation");
    ok(JSONP, "{\"a\":1}", "null", "{\"a\":1}");
    ok(JSONP, "{\"a\":1}", "[]", "{\"a\":1}");
    /* everything about single operations is 422 */
    bad(JSONP, "{}", "[null]", KCP_EINVALID, "Unexpected kind: unknown");
    bad(JSONP, "{}", "[{\"path\":\"/a\"}]", KCP_EINVALID, "Unexpected kind: unknown");
    bad(JSONP, "{}", "[{\"op\":7,\"path\":\"/a\"}]", KCP_EINVALID, "Unexpected kind: unknown");
    bad(JSONP, "{}", "[{\"op\":\"frob\",\"path\":\"/a\"}]", KCP_EINVALID, "Unexpected kind: frob");
    bad(JSONP, "{}", "[{\"op\":\"add\",\"value\":1}]", KCP_EINVALID,
        "add operation failed to decode path: missing value");
    bad(JSONP, "{}", "[{\"op\":\"remove\",\"path\":null}]", KCP_EINVALID,
        "remove operation failed to decode path: missing value");
    bad(JSONP, "{}", "[{\"op\":\"replace\",\"value\":1}]", KCP_EINVALID,
        "replace operation failed to decode path: operation missing path field: missing value");
    bad(JSONP, "{}", "[{\"op\":\"replace\",\"path\":1,\"value\":1}]", KCP_EINVALID,
        "replace operation failed to decode path: json: cannot unmarshal number into Go value of "
        "type string");
    bad(JSONP, "{}", "[{\"op\":\"test\",\"path\":[],\"value\":1}]", KCP_EINVALID,
        "test operation failed to decode path: json: cannot unmarshal array into Go value of "
        "type string");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"move\",\"path\":\"/b\"}]", KCP_EINVALID,
        "move operation failed to decode from: operation, missing from field: missing value");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\"}]", KCP_EINVALID,
        "move operation failed to decode path: operation missing path field: missing value");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"copy\",\"from\":true,\"path\":\"/b\"}]", KCP_EINVALID,
        "copy operation failed to decode from: json: cannot unmarshal bool into Go value of type "
        "string");
    bad(JSONP, "{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/a\"}]", KCP_EINVALID,
        "copy operation failed to decode path: missing value");
    /* a failed operation leaves nothing behind: the earlier ones are not applied either */
    bad(JSONP, "{}",
        "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},{\"op\":\"remove\",\"path\":\"/b\"}]",
        KCP_EINVALID, NULL);
    /* the original must be a container */
    bad(JSONP, "\"s\"", "[]", KCP_EINVALID,
        "json: cannot unmarshal string into Go value of type jsonpatch.partialDoc");
}

static void test_json_limits(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "[");
    for (int i = 0; i < KCP_PATCH_MAX_OPS; i++)
        kcp_buf_printf(&b, "%s{\"op\":\"add\",\"path\":\"/a\",\"value\":%d}", i ? "," : "", i);
    kcp_buf_puts(&b, "]");
    ok(JSONP, "{}", b.data, "{\"a\":9999}");
    b.data[b.len - 1] = ',';
    kcp_buf_puts(&b, "{\"op\":\"test\",\"path\":\"/a\",\"value\":9999}]");
    bad(JSONP, "{}", b.data, KCP_ETOOLARGE,
        "The allowed maximum operations in a JSON patch is 10000, got 10001");

    /* copies double a value until upstream's 3 MiB allowance runs out */
    kcp_buf_reset(&b);
    kcp_buf_puts(&b, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":\"");
    for (int i = 0; i < 1000; i++)
        kcp_buf_puts(&b, "xxxxxxxxxx");
    kcp_buf_puts(&b, "\"}");
    for (int i = 0; i < 2000; i++)
        kcp_buf_puts(&b, ",{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b/-\"}");
    kcp_buf_puts(&b, "]");
    json_t *co = J("{\"b\":[]}"), *cp = J(b.data), *out = NULL;
    char *err = NULL;
    assert_int_equal(kcp_patch_apply_json(&out, co, cp, &err), KCP_EINVALID);
    /* each copy is 10002 bytes of JSON: the 315th passes 3 MiB */
    assert_string_equal(err, "Unable to complete the copy, the accumulated size increase of copy "
                             "is 3150630, exceeding the limit 3145728");
    free(err);
    json_decref(co);
    json_decref(cp);

    /* nesting: inputs past the limit are refused, and so are results */
    kcp_buf_reset(&b);
    for (int i = 0; i < KCP_PATCH_MAX_DEPTH + 1; i++)
        kcp_buf_puts(&b, "[");
    for (int i = 0; i < KCP_PATCH_MAX_DEPTH + 1; i++)
        kcp_buf_puts(&b, "]");
    bad(JSONP, b.data, "[]", KCP_EBADREQUEST, "object is nested deeper than 100 levels");
    bad(MERGE, "{}", b.data, KCP_EBADREQUEST, "patch is nested deeper than 100 levels");
    bad(SMP, b.data, "{}", KCP_EBADREQUEST, "object is nested deeper than 100 levels");
    /* {"a":{"a":...}} 61 objects deep, twice */
    kcp_buf_reset(&b);
    kcp_buf_puts(&b, "{\"a\":");
    for (int i = 0; i < 60; i++)
        kcp_buf_puts(&b, "{\"a\":");
    kcp_buf_puts(&b, "1");
    for (int i = 0; i < 60; i++)
        kcp_buf_puts(&b, "}");
    kcp_buf_puts(&b, ",\"c\":");
    for (int i = 0; i < 60; i++)
        kcp_buf_puts(&b, "{\"c\":");
    kcp_buf_puts(&b, "1");
    for (int i = 0; i < 61; i++)
        kcp_buf_puts(&b, "}");
    char *doc = kcp_buf_detach(&b);
    char *deep_a = NULL, *deep_c = NULL;
    for (int i = 0; i < 60; i++)
        kcp_buf_puts(&b, "/a");
    deep_a = kcp_buf_detach(&b);
    for (int i = 0; i < 60; i++)
        kcp_buf_puts(&b, "/c");
    deep_c = kcp_buf_detach(&b);
    char patch[1024];
    /* putting the 60-deep /a at 60 tokens down would nest 120 deep */
    snprintf(patch, sizeof(patch), "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"%s/x\"}]", deep_a);
    bad(JSONP, doc, patch, KCP_EBADREQUEST,
        "json patch would nest the object deeper than 100 levels");
    snprintf(patch, sizeof(patch), "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"%s/x\"}]", deep_c);
    bad(JSONP, doc, patch, KCP_EBADREQUEST,
        "json patch would nest the object deeper than 100 levels");
    snprintf(patch, sizeof(patch), "[{\"op\":\"add\",\"path\":\"%s/x\",\"value\":%s}]", deep_c,
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    bad(JSONP, doc, patch, KCP_EBADREQUEST,
        "json patch would nest the object deeper than 100 levels");
    /* moving into itself: the destination is gone once the value is taken out */
    snprintf(patch, sizeof(patch), "[{\"op\":\"move\",\"from\":\"/a/a\",\"path\":\"%s/x\"}]",
             deep_a);
    bad(JSONP, doc, patch, KCP_EINVALID, NULL);
    /* shallow enough */
    snprintf(patch, sizeof(patch),
             "[{\"op\":\"move\",\"from\":\"/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/"
             "a/a/a/a\",\"path\":\"%s/x\"}]",
             deep_c);
    json_t *o = J(doc), *pp = J(patch), *res = NULL;
    assert_int_equal(kcp_patch_apply_json(&res, o, pp, NULL), 0);
    json_decref(res);
    json_decref(pp);
    json_decref(o);
    free(doc);
    free(deep_a);
    free(deep_c);
    kcp_buf_free(&b);
}

/* ---- RFC 7386, appendix A, and upstream's differences ------------------------------------- */

static void test_merge_rfc_examples(void **state)
{
    ok(MERGE, "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    ok(MERGE, "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    ok(MERGE, "{\"a\":\"b\"}", "{\"a\":null}", "{}");
    ok(MERGE, "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    ok(MERGE, "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    ok(MERGE, "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    ok(MERGE, "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
    ok(MERGE, "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    ok(MERGE, "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    ok(MERGE, "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    /* RFC: null and scalars replace the document; upstream answers 400 */
    bad(MERGE, "{\"a\":\"foo\"}", "null", KCP_EBADREQUEST, "Invalid JSON Patch");
    bad(MERGE, "{\"a\":\"foo\"}", "\"bar\"", KCP_EBADREQUEST, "Invalid JSON Patch");
    bad(MERGE, "{\"a\":\"foo\"}", "12", KCP_EBADREQUEST, "Invalid JSON Patch");
    ok(MERGE, "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    ok(MERGE, "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    ok(MERGE, "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

static void test_merge_upstream(void **state)
{
    /* nulls inside new values are pruned, through arrays too, but null items stay */
    ok(MERGE, "{}", "{\"a\":[{\"x\":null,\"y\":1},null]}", "{\"a\":[{\"y\":1},null]}");
    /* a non-object over an object is taken as it is */
    ok(MERGE, "{\"a\":{\"k\":1}}", "{\"a\":[{\"x\":null}]}", "{\"a\":[{\"x\":null}]}");
    /* over null, a value is new */
    ok(MERGE, "{\"a\":null}", "{\"a\":{\"b\":null,\"c\":1}}", "{\"a\":{\"c\":1}}");
    /* a kubectl patch --type=merge of labels */
    ok(MERGE, "{\"metadata\":{\"name\":\"x\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}},\"spec\":{}}",
       "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}}}",
       "{\"metadata\":{\"name\":\"x\",\"labels\":{\"b\":\"2\",\"c\":\"3\"}},\"spec\":{}}");
    /* lists always replace */
    ok(MERGE, "{\"l\":[1,2,3]}", "{\"l\":[]}", "{\"l\":[]}");
    bad(MERGE, "null", "{}", KCP_EINTERNAL, "Invalid JSON Document");
    ok(MERGE, "\"s\"", "{\"a\":null,\"b\":2}", "{\"b\":2}");
}

/* ---- strategic merge patch ------------------------------------------------------------------ */

static void test_smp_maps(void **state)
{
    ok(SMP_NOSCHEMA, "{\"a\":1,\"b\":{\"c\":1,\"d\":[1]}}", "{\"b\":{\"e\":2},\"f\":3}",
       "{\"a\":1,\"b\":{\"c\":1,\"d\":[1],\"e\":2},\"f\":3}");
    ok(SMP_NOSCHEMA, "{\"a\":1,\"b\":2}", "{\"a\":null,\"zz\":null}", "{\"b\":2}");
    /* new values lose their null members; lists are replaced without a schema */
    ok(SMP_NOSCHEMA, "{\"l\":[1,2]}", "{\"x\":{\"y\":null,\"z\":[{\"n\":null}]},\"l\":[3]}",
       "{\"l\":[3],\"x\":{\"z\":[{}]}}");
    /* a change of kind replaces */
    ok(SMP_NOSCHEMA, "{\"a\":{\"b\":1},\"c\":[1],\"d\":\"s\",\"e\":null}",
       "{\"a\":[1],\"c\":{\"x\":null},\"d\":true,\"e\":{\"f\":null}}",
       "{\"a\":[1],\"c\":{},\"d\":true,\"e\":{}}");
    ok(SMP_NOSCHEMA, "{\"a\":1}", "null", "{\"a\":1}");
    bad(SMP_NOSCHEMA, "{}", "[1]", KCP_EBADREQUEST,
        "json: cannot unmarshal array into Go value of type map[string]interface {}");
    bad(SMP_NOSCHEMA, "{}", "\"x\"", KCP_EBADREQUEST,
        "json: cannot unmarshal string into Go value of type map[string]interface {}");
    bad(SMP_NOSCHEMA, "[]", "{}", KCP_EBADREQUEST, "invalid JSON document");
    /* replace strategy on a map */
    ok(SMP, "{\"spec\":{\"replacedMap\":{\"a\":1,\"b\":2}}}",
       "{\"spec\":{\"replacedMap\":{\"c\":3}}}", "{\"spec\":{\"replacedMap\":{\"c\":3}}}");
    /* labels are a map: merged key by key */
    ok(SMP, "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}",
       "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}}}",
       "{\"metadata\":{\"labels\":{\"b\":\"2\",\"c\":\"3\"}}}");
}

static void test_smp_map_directives(void **state)
{
    ok(SMP, "{\"metadata\":{\"labels\":{\"a\":\"1\"}}}",
       "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"b\":\"2\",\"c\":null}}}",
       "{\"metadata\":{\"labels\":{\"b\":\"2\"}}}");
    ok(SMP, "{\"metadata\":{\"labels\":{\"a\":\"1\"},\"name\":\"x\"}}",
       "{\"metadata\":{\"labels\":{\"$patch\":\"delete\"}}}",
       "{\"metadata\":{\"labels\":{},\"name\":\"x\"}}");
    /* at the top */
    ok(SMP, "{\"a\":1}", "{\"$patch\":\"replace\",\"b\":2}", "{\"b\":2}");
    ok(SMP, "{\"a\":1}", "{\"$patch\":\"delete\"}", "{}");
    bad(SMP, "{\"a\":1}", "{\"$patch\":\"merge\",\"a\":2}", KCP_EINTERNAL,
        "unknown patch type: merge in map: map[$patch:merge a:2]");
    bad(SMP, "{\"s\":{}}", "{\"s\":{\"$patch\":7}}", KCP_EINTERNAL,
        "unknown patch type: %!s(int64=7) in map: map[$patch:7]");
    /* directives never leak into new values */
    ok(SMP, "{}",
       "{\"metadata\":{\"labels\":{\"$patch\":\"delete\",\"a\":\"1\"}},"
       "\"x\":{\"$retainKeys\":[\"a\"],\"$setElementOrder/l\":[1],\"$deleteFromPrimitiveList/"
       "l\":[2],"
       "\"l\":[{\"$patch\":\"delete\",\"k\":1}]}}",
       "{\"metadata\":{\"labels\":{\"a\":\"1\"}},\"x\":{\"l\":[{\"k\":1}]}}");
}

static void test_smp_retain_keys(void **state)
{
    /* kubectl apply switching a Deployment to Recreate */
    ok(SMP,
       "{\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1}}}}",
       "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"rollingUpdate\":null,"
       "\"type\":\"Recreate\"}}}",
       "{\"spec\":{\"strategy\":{\"type\":\"Recreate\"}}}");
    /* a volume changing its source */
    ok(SMP,
       "{\"spec\":{\"template\":{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}},"
       "{\"name\":\"w\",\"emptyDir\":{}}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"volumes\":[{\"$retainKeys\":[\"configMap\",\"name\"],"
       "\"name\":\"v\",\"configMap\":{\"name\":\"cm\"}}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"volumes\":[{\"name\":\"v\",\"configMap\":{\"name\":"
       "\"cm\"}},{\"name\":\"w\",\"emptyDir\":{}}]}}}}");
    bad(SMP, "{\"a\":{}}", "{\"a\":{\"$retainKeys\":[\"x\"],\"y\":1}}", KCP_EBADREQUEST,
        "invalid patch format of retainKeys");
    bad(SMP, "{\"a\":{}}", "{\"a\":{\"$retainKeys\":\"x\"}}", KCP_EBADREQUEST,
        "invalid patch format of retainKeys");
    /* upstream honours the directive wherever it is sent */
    ok(SMP_NOSCHEMA, "{\"a\":{\"x\":1,\"y\":2,\"z\":3}}",
       "{\"a\":{\"$retainKeys\":[\"x\",\"z\"],\"z\":4}}", "{\"a\":{\"x\":1,\"z\":4}}");
}

/* A live Deployment, as the server stores it after create (v1 of the test manifest). */
static const char *deploy_v1 =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
    "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"resourceVersion\":\"7\","
    "\"labels\":{\"app\":\"web\"},\"finalizers\":[\"example.com/keep\"]},"
    "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
    "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":\"25%\"}},"
    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{"
    "\"containers\":["
    "{\"name\":\"nginx\",\"image\":\"nginx:1.14\",\"imagePullPolicy\":\"IfNotPresent\","
    "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"Z\",\"value\":\"server\"}],"
    "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}]},"
    "{\"name\":\"sidecar\",\"image\":\"busybox\"}],"
    "\"restartPolicy\":\"Always\"}}},"
    "\"status\":{\"replicas\":2}}";

static void test_smp_apply_v1_to_v2(void **state)
{
    /* What kubectl apply sends when v2 of the manifest bumps the image, changes env A, adds env
     * B and a port, drops the sidecar and adds a label (computed from last-applied). */
    ok(SMP, deploy_v1,
       "{\"metadata\":{\"labels\":{\"tier\":\"frontend\"}},"
       "\"spec\":{\"replicas\":3,\"template\":{\"spec\":{"
       "\"$setElementOrder/containers\":[{\"name\":\"nginx\"}],"
       "\"containers\":[{\"$setElementOrder/env\":[{\"name\":\"A\"},{\"name\":\"B\"}],"
       "\"$setElementOrder/ports\":[{\"containerPort\":80},{\"containerPort\":443}],"
       "\"env\":[{\"name\":\"A\",\"value\":\"2\"},{\"name\":\"B\",\"value\":\"3\"}],"
       "\"image\":\"nginx:1.16\",\"name\":\"nginx\","
       "\"ports\":[{\"containerPort\":443}]},"
       "{\"$patch\":\"delete\",\"name\":\"sidecar\"}]}}}}",
       "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
       "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"resourceVersion\":\"7\","
       "\"labels\":{\"app\":\"web\",\"tier\":\"frontend\"},\"finalizers\":[\"example.com/keep\"]},"
       "\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
       "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":\"25%\"}},"
       "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{"
       "\"containers\":["
       "{\"name\":\"nginx\",\"image\":\"nginx:1.16\",\"imagePullPolicy\":\"IfNotPresent\","
       "\"env\":[{\"name\":\"A\",\"value\":\"2\"},{\"name\":\"B\",\"value\":\"3\"},"
       "{\"name\":\"Z\",\"value\":\"server\"}],"
       "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"},{\"containerPort\":443}]}],"
       "\"restartPolicy\":\"Always\"}}},"
       "\"status\":{\"replicas\":2}}");
}

static void test_smp_delete_container(void **state)
{
    /* kubectl patch deploy web --type=strategic -p
     *   '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}' */
    json_t *o = J(deploy_v1), *p = J("{\"spec\":{\"template\":{\"spec\":{\"containers\":"
                                     "[{\"name\":\"sidecar\",\"$patch\":\"delete\"}]}}}}");
    json_t *out = NULL;
    char *err = NULL;
    assert_int_equal(kcp_patch_apply_strategic(&out, o, p, &smp_test_schema, &err), 0);
    json_t *cs = json_object_get(
        json_object_get(json_object_get(json_object_get(out, "spec"), "template"), "spec"),
        "containers");
    assert_int_equal(json_array_size(cs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cs, 0), "name")), "nginx");
    /* everything else is untouched */
    json_object_del(
        json_object_get(json_object_get(json_object_get(o, "spec"), "template"), "spec"),
        "containers");
    json_object_del(
        json_object_get(json_object_get(json_object_get(out, "spec"), "template"), "spec"),
        "containers");
    assert_true(json_equal(o, out));
    json_decref(o);
    json_decref(p);
    json_decref(out);
    /* deleting what is not there is fine; deleting without the key is not */
    ok(SMP, "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"zz\",\"$patch\":\"delete\"}]"
       "}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}}}");
    bad(SMP, "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}}}",
        "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"$patch\":\"delete\"}]}}}}",
        KCP_EINTERNAL, "map: map[$patch:delete] does not contain declared merge key: name");
}

#define POD(list) "{\"spec\":{\"template\":{\"spec\":{\"containers\":" list "}}}}"

static void test_smp_list_merge_order(void **state)
{
    /* without $setElementOrder upstream puts new items before the server's others */
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"}]"), POD("[{\"name\":\"c\"}]"),
       POD("[{\"name\":\"c\"},{\"name\":\"a\"},{\"name\":\"b\"}]"));
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"}]"),
       POD("[{\"name\":\"b\",\"image\":\"x\"},{\"name\":\"c\"}]"),
       POD("[{\"name\":\"a\"},{\"name\":\"b\",\"image\":\"x\"},{\"name\":\"c\"}]"));
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"}]"),
       POD("[{\"name\":\"c\"},{\"name\":\"a\",\"image\":\"x\"}]"),
       POD("[{\"name\":\"c\"},{\"name\":\"a\",\"image\":\"x\"},{\"name\":\"b\"}]"));
    /* patch items keep the patch's order among themselves; b slots in by the live order */
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]"),
       POD("[{\"name\":\"c\",\"i\":1},{\"name\":\"a\",\"i\":2}]"),
       POD("[{\"name\":\"b\"},{\"name\":\"c\",\"i\":1},{\"name\":\"a\",\"i\":2}]"));
    /* nested merge: env by name, ports by an integer key */
    ok(SMP,
       POD("[{\"name\":\"a\",\"env\":[{\"name\":\"X\",\"value\":\"1\"}],"
           "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}]}]"),
       POD("[{\"name\":\"a\",\"env\":[{\"name\":\"X\",\"value\":null,\"valueFrom\":{\"k\":1}}],"
           "\"ports\":[{\"containerPort\":80,\"name\":\"http\"},{\"containerPort\":\"80\"}]}]"),
       POD("[{\"name\":\"a\",\"env\":[{\"name\":\"X\",\"valueFrom\":{\"k\":1}}],"
           "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\",\"name\":\"http\"},"
           "{\"containerPort\":\"80\"}]}]"));
    /* list directives */
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"}]"),
       POD("[{\"$patch\":\"replace\"},{\"name\":\"only\",\"x\":null}]"),
       POD("[{\"name\":\"only\"}]"));
    bad(SMP, POD("[{\"name\":\"a\"}]"), POD("[{\"$patch\":\"merge\"}]"), KCP_EINTERNAL,
        "merging lists cannot yet be specified in the patch");
    bad(SMP, POD("[{\"name\":\"a\"}]"), POD("[{\"$patch\":\"frob\",\"name\":\"a\"}]"),
        KCP_EINTERNAL, "unknown patch type: frob in map: map[$patch:frob name:a]");
    bad(SMP, POD("[{\"name\":\"a\"}]"), POD("[{\"image\":\"x\"}]"), KCP_EINTERNAL,
        "map: map[image:x] does not contain declared merge key: name");
    bad(SMP, POD("[{\"image\":\"a\"}]"), POD("[{\"name\":\"x\"}]"), KCP_EINTERNAL,
        "map: map[image:a] does not contain declared merge key: name");
    bad(SMP, POD("[{\"name\":\"a\"}]"), POD("[{\"name\":{\"x\":1}}]"), KCP_EINTERNAL,
        "runtime error: comparing uncomparable type map[string]interface {}");
    /* element kinds */
    bad(SMP, POD("[{\"name\":\"a\"}]"), POD("[\"x\"]"), KCP_EINTERNAL,
        "list element types are not identical: [[map[name:a]] [x]]");
    bad(SMP, POD("[[1]]"), POD("[[2]]"), KCP_EINVALID, "lists of lists are not supported");
    bad(SMP, "{\"spec\":{\"mergedKeyless\":[{\"a\":1}]}}",
        "{\"spec\":{\"mergedKeyless\":[{\"a\":2}]}}", KCP_EINTERNAL,
        "cannot merge lists without merge key for mergedKeyless");
    /* both empty */
    ok(SMP, POD("[]"), POD("[]"), POD("[]"));
    ok(SMP, POD("[{\"name\":\"a\"}]"), POD("[]"), POD("[{\"name\":\"a\"}]"));
}

static void test_smp_primitive_lists(void **state)
{
    /* finalizers merge as a set, ordered as upstream orders them */
    ok(SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
       "{\"metadata\":{\"finalizers\":[\"c\",\"a\"]}}",
       "{\"metadata\":{\"finalizers\":[\"c\",\"a\",\"b\"]}}");
    ok(SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
       "{\"metadata\":{\"finalizers\":[\"b\",\"b\"]}}",
       "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}");
    ok(SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"a\"]}}",
       "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\",\"z\"]}}",
       "{\"metadata\":{\"finalizers\":[\"b\"]}}");
    /* kubectl apply removing one finalizer and adding another */
    ok(SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
       "{\"metadata\":{\"$setElementOrder/finalizers\":[\"b\",\"c\"],"
       "\"$deleteFromPrimitiveList/finalizers\":[\"a\"],\"finalizers\":[\"c\"]}}",
       "{\"metadata\":{\"finalizers\":[\"b\",\"c\"]}}");
    ok(SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
       "{\"metadata\":{\"$setElementOrder/"
       "finalizers\":[\"b\",\"c\",\"a\"],\"finalizers\":[\"c\"]}}",
       "{\"metadata\":{\"finalizers\":[\"b\",\"c\",\"a\"]}}");
    /* a deletion list with nothing to delete from, or null */
    ok(SMP, "{\"metadata\":{}}", "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}}",
       "{\"metadata\":{}}");
    ok(SMP, "{\"metadata\":{\"finalizers\":[\"a\"]}}",
       "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":null}}", "{\"metadata\":{}}");
    /* on a list without merge strategy a deletion list replaces it, as upstream */
    ok(SMP_NOSCHEMA, "{\"args\":[\"x\",\"y\"]}", "{\"$deleteFromPrimitiveList/args\":[\"x\"]}",
       "{\"args\":[\"x\"]}");
    bad(SMP, "{\"metadata\":{\"finalizers\":[\"a\"]}}",
        "{\"metadata\":{\"$deleteFromPrimitiveListX\":[\"a\"]}}", KCP_EBADREQUEST,
        "invalid patch format of primitive list");
    bad(SMP, "{\"metadata\":{\"finalizers\":[\"a\"]}}", "{\"metadata\":{\"finalizers\":[\"b\",1]}}",
        KCP_EINTERNAL, "list element types are not identical: [[a] [b 1]]");
    bad(SMP, "{\"metadata\":{\"finalizers\":[\"a\"]}}", "{\"metadata\":{\"finalizers\":[null]}}",
        KCP_EINTERNAL, "list element types are not identical: [[a] [<nil>]]");
    bad(SMP, "{\"metadata\":{\"finalizers\":[1.5]}}", "{\"metadata\":{\"finalizers\":[2]}}",
        KCP_EINTERNAL, "list element types are not identical: [[1.5] [2]]");
}

static void test_smp_set_element_order(void **state)
{
    /* a pure reorder */
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]"),
       "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":"
       "[{\"name\":\"c\"},{\"name\":\"a\"},{\"name\":\"b\"}]}}}}",
       POD("[{\"name\":\"c\"},{\"name\":\"a\"},{\"name\":\"b\"}]"));
    /* items the patch does not name keep their place by the live order */
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"x\"},{\"name\":\"b\"}]"),
       "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":"
       "[{\"name\":\"b\"},{\"name\":\"a\"}]}}}}",
       POD("[{\"name\":\"x\"},{\"name\":\"b\"},{\"name\":\"a\"}]"));
    /* with additions */
    ok(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"}]"),
       "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":"
       "[{\"name\":\"a\"},{\"name\":\"n\"},{\"name\":\"b\"}],\"containers\":[{\"name\":\"n\"}]}}}}",
       POD("[{\"name\":\"a\"},{\"name\":\"n\"},{\"name\":\"b\"}]"));
    /* the list may be new */
    ok(SMP, "{\"spec\":{\"template\":{\"spec\":{}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":"
       "[{\"name\":\"b\"},{\"name\":\"a\"}],\"containers\":[{\"name\":\"b\"},{\"name\":\"a\"}]}}}}",
       POD("[{\"name\":\"b\"},{\"name\":\"a\"}]"));
    /* the patch list must follow the order list */
    bad(SMP, "{\"spec\":{\"template\":{\"spec\":{}}}}",
        "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":"
        "[{\"name\":\"b\"},{\"name\":\"a\"}],\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}}"
        "}",
        KCP_EINTERNAL, NULL);
    /* nothing to order: nothing happens */
    ok(SMP, "{\"spec\":{}}", "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"a\"}]}}",
       "{\"spec\":{}}");
    bad(SMP, POD("[{\"name\":\"a\"},{\"name\":\"b\"}]"),
        "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":"
        "[{\"name\":\"a\"}],\"containers\":[{\"name\":\"b\"}]}}}}",
        KCP_EINTERNAL,
        "The order in patch list:\n[map[name:b]]\n doesn't match $setElementOrder list:\n"
        "[map[name:a]]\n");
    bad(SMP, "{}", "{\"$setElementOrder/x\":\"a\"}", KCP_EINTERNAL,
        "expected a []interface {}, but received a string");
    bad(SMP, "{\"x\":1}", "{\"$setElementOrder/x\":[]}", KCP_EINTERNAL,
        "expected a []interface {}, but received a int64");
    bad(SMP, "{}", "{\"$setElementOrderX\":[]}", KCP_EBADREQUEST,
        "invalid patch format of setElementOrder list");
    bad(SMP, POD("[]"), "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":[]}}}}",
        KCP_EINTERNAL, "no elements in any of the given slices");
}

/* Orders far past 20 items run Go's block merge; reversing and shuffling must come out exact. */
static void test_smp_set_element_order_large(void **state)
{
    enum { N = 257 };
    int perm[N];
    unsigned seed = 12345;
    for (int i = 0; i < N; i++)
        perm[i] = i;
    for (int round = 0; round < 3; round++) {
        if (round == 1) {
            for (int i = 0; i < N; i++)
                perm[i] = N - 1 - i;
        } else if (round == 2) {
            for (int i = N - 1; i > 0; i--) {
                seed = seed * 1103515245u + 12345u;
                int j = (int)((seed >> 8) % (unsigned)(i + 1));
                int t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        json_t *o = json_object(), *p = json_object(), *list = json_array(), *order = json_array();
        for (int i = 0; i < N; i++) {
            char name[16];
            snprintf(name, sizeof(name), "c%d", i);
            json_array_append_new(list, json_pack("{s:s,s:i}", "name", name, "i", i));
            snprintf(name, sizeof(name), "c%d", perm[i]);
            json_array_append_new(order, json_pack("{s:s}", "name", name));
        }
        json_object_set_new(o, "containers", list);
        json_object_set_new(p, "$setElementOrder/containers", order);
        json_t *orig = json_pack("{s:{s:{s:o}}}", "spec", "template", "spec", o);
        json_t *patch = json_pack("{s:{s:{s:o}}}", "spec", "template", "spec", p);
        json_t *out = NULL;
        char *err = NULL;
        assert_int_equal(kcp_patch_apply_strategic(&out, orig, patch, &smp_test_schema, &err), 0);
        json_t *cs = json_object_get(
            json_object_get(json_object_get(json_object_get(out, "spec"), "template"), "spec"),
            "containers");
        assert_int_equal(json_array_size(cs), N);
        for (int i = 0; i < N; i++)
            assert_int_equal(
                json_integer_value(json_object_get(json_array_get(cs, (size_t)i), "i")), perm[i]);
        json_decref(orig);
        json_decref(patch);
        json_decref(out);
    }
}

/* A large list must merge in (near) linear time: upstream's scans would be quadratic. */
static void test_smp_large_lists(void **state)
{
    enum { N = 50000 };
    json_t *fin = json_array(), *add = json_array(), *del = json_array();
    for (int i = 0; i < N; i++) {
        char s[32];
        snprintf(s, sizeof(s), "f%d", i);
        json_array_append_new(fin, json_string(s));
        snprintf(s, sizeof(s), "g%d", i);
        json_array_append_new(add, json_string(s));
        if (i % 2)
            json_array_append_new(del, json_string(s));
    }
    json_t *o = json_pack("{s:{s:o}}", "metadata", "finalizers", fin);
    json_t *p = json_pack("{s:{s:o,s:o}}", "metadata", "finalizers", add,
                          "$deleteFromPrimitiveList/finalizers", del);
    json_t *out = NULL;
    char *err = NULL;
    assert_int_equal(kcp_patch_apply_strategic(&out, o, p, &smp_test_schema, &err), 0);
    /* deletions go first, so the odd g's added by the same patch stay */
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(out, "metadata"), "finalizers")), 2 * N);
    json_decref(o);
    json_decref(p);
    json_decref(out);
}

static void test_smp_no_schema_lists(void **state)
{
    /* unknown fields: lists of maps are replaced, not merged */
    ok(SMP_NOSCHEMA, POD("[{\"name\":\"a\"},{\"name\":\"b\"}]"),
       POD("[{\"name\":\"c\",\"x\":null}]"), POD("[{\"name\":\"c\"}]"));
    ok(SMP, "{\"spec\":{\"unknownList\":[{\"name\":\"a\"}]}}",
       "{\"spec\":{\"unknownList\":[{\"name\":\"b\",\"$patch\":\"delete\"}]}}",
       "{\"spec\":{\"unknownList\":[{\"name\":\"b\"}]}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_rfc_examples),
        cmocka_unit_test(test_json_pointer),
        cmocka_unit_test(test_json_arrays),
        cmocka_unit_test(test_json_upstream_quirks),
        cmocka_unit_test(test_json_malformed),
        cmocka_unit_test(test_json_limits),
        cmocka_unit_test(test_merge_rfc_examples),
        cmocka_unit_test(test_merge_upstream),
        cmocka_unit_test(test_smp_maps),
        cmocka_unit_test(test_smp_map_directives),
        cmocka_unit_test(test_smp_retain_keys),
        cmocka_unit_test(test_smp_apply_v1_to_v2),
        cmocka_unit_test(test_smp_delete_container),
        cmocka_unit_test(test_smp_list_merge_order),
        cmocka_unit_test(test_smp_primitive_lists),
        cmocka_unit_test(test_smp_set_element_order),
        cmocka_unit_test(test_smp_set_element_order_large),
        cmocka_unit_test(test_smp_large_lists),
        cmocka_unit_test(test_smp_no_schema_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
