/* unit.yaml_parse: the YAML reader, on hand-written manifests and on every upstream .yaml
 * fixture of ../shared/k8s-ref (each must read back as its .json twin). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kcp/base.h"
#include "kcp/codec.h"

static void yaml_is(const char *yaml, const char *want_json)
{
    json_t *got = NULL;
    struct kcp_codec_err err = {{0}};
    int rc = kcp_codec_yaml_parse(&got, yaml, strlen(yaml), &err);
    if (rc != 0)
        fail_msg("yaml %s: %s", yaml, err.msg);
    json_error_t je;
    json_t *want = json_loads(want_json, JSON_DECODE_ANY, &je);
    if (!want)
        fail_msg("bad test json %s", want_json);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        fail_msg("yaml:\n%s\n got: %s\nwant: %s", yaml, g, want_json);
    }
    json_decref(got);
    json_decref(want);
}

static void yaml_fails(const char *yaml, const char *msg)
{
    json_t *got = NULL;
    struct kcp_codec_err err = {{0}};
    assert_int_equal(kcp_codec_yaml_parse(&got, yaml, strlen(yaml), &err), KCP_EBADREQUEST);
    assert_null(got);
    if (!strstr(err.msg, msg))
        fail_msg("yaml %s: message %s lacks %s", yaml, err.msg, msg);
}

static void test_manifests(void **state)
{
    (void)state;
    yaml_is("apiVersion: apps/v1\n"
            "kind: Deployment\n"
            "metadata:\n"
            "  name: web   # a comment\n"
            "  labels: {app: web}\n"
            "spec:\n"
            "  replicas: 2\n"
            "  template:\n"
            "    spec:\n"
            "      containers:\n"
            "      - name: app\n"
            "        image: \"registry.local/web:1.0\"\n"
            "        ports: [{containerPort: 8080}]\n"
            "        env:\n"
            "        - {name: MODE, value: prod}\n"
            "        - name: EXTRA\n"
            "          value: \"yes\"\n"
            "        args:\n"
            "          - -c\n"
            "          - 'it''s'\n",
            "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
            "\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":2,\"template\":{\"spec\":{"
            "\"containers\":[{\"name\":\"app\",\"image\":\"registry.local/web:1.0\",\"ports\":"
            "[{\"containerPort\":8080}],\"env\":[{\"name\":\"MODE\",\"value\":\"prod\"},{\"name\":"
            "\"EXTRA\",\"value\":\"yes\"}],\"args\":[\"-c\",\"it's\"]}]}}}}");
    /* YAML 1.1 scalars, as go-yaml v2 reads them. */
    yaml_is("a: yes\nb: off\nc: ~\nd:\ne: 0x1F\nf: 0777\ng: 1_000\nh: 1.5\ni: 1e3\nj: 08\n"
            "k: 1.2.3\nl: \"true\"\nm: -7\nn: http://x/y\n",
            "{\"a\":true,\"b\":false,\"c\":null,\"d\":null,\"e\":31,\"f\":511,\"g\":1000,\"h\":1.5,"
            "\"i\":1000.0,\"j\":8.0,\"k\":\"1.2.3\",\"l\":\"true\",\"m\":-7,\"n\":\"http://x/y\"}");
    /* Block scalars: literal, folded, chomping, explicit indentation. */
    yaml_is("a: |\n  line 1\n    indented\n\n  line 3\nb: >-\n  folded\n  text\n\n  para\nc: |+\n  "
            "keep\n\n"
            "d: |2\n    two\n",
            "{\"a\":\"line 1\\n  indented\\n\\nline 3\\n\",\"b\":\"folded text\\npara\","
            "\"c\":\"keep\\n\\n\",\"d\":\"  two\\n\"}");
    /* Quoted scalars: escapes and folding over lines; multi-line flow collections. */
    yaml_is("a: \"tab\\there \\u00e9 \\x41\"\nb: \"one\n  two\"\nc: [1,\n  2, {x: z},\n  ]\n",
            "{\"a\":\"tab\\there \\u00e9 A\",\"b\":\"one two\",\"c\":[1,2,{\"x\":\"z\"}]}");
    /* A sequence at its key's indentation, nested sequences, a plain scalar over two lines. */
    yaml_is("---\nl:\n- - a\n  - b\n- c\nm: first\n  second\n...\n",
            "{\"l\":[[\"a\",\"b\"],\"c\"],\"m\":\"first second\"}");
    /* JSON is YAML. */
    yaml_is("# kubectl sends JSON\n{\"a\": [1, true, null], \"b\": {\"c\": \"d\"}}",
            "{\"a\":[1,true,null],\"b\":{\"c\":\"d\"}}");
    yaml_is("", "null");
    yaml_is("- 1\n- x\n", "[1,\"x\"]");
}

static void test_refused(void **state)
{
    (void)state;
    yaml_fails("a: &x 1\nb: *x\n", "not supported");
    yaml_fails("a: !!str 1\n", "not supported");
    yaml_fails("a: 1\n---\nb: 2\n", "several documents");
    yaml_fails("a: b: c\n", "mapping values are not allowed");
    yaml_fails("a:\n\tb: 1\n", "cannot start any token");
    yaml_fails("a:\n  b: 1\n   c: 2\n", "line 3");
    yaml_fails("a: [1, 2\n", "did not find expected");
    yaml_fails("a: \"open\n", "unexpected end of stream");
    yaml_fails("? a\n: b\n", "complex mapping keys");
    yaml_fails("a: .inf\n", "no JSON form");
    /* Nesting is bounded. */
    struct kcp_buf b = KCP_BUF_INIT;
    for (int i = 0; i < 150; i++)
        kcp_buf_puts(&b, "[");
    for (int i = 0; i < 150; i++)
        kcp_buf_puts(&b, "]");
    yaml_fails(b.data, "exceeded max depth");
    kcp_buf_reset(&b);
    for (int i = 0; i < 150; i++)
        kcp_buf_printf(&b, "%*sa:\n", i, "");
    yaml_fails(b.data, "exceeded max depth");
    kcp_buf_free(&b);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct kcp_buf b = KCP_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        kcp_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return kcp_buf_detach(&b);
}

/* Numbers compare by value (YAML has no int/float distinction upstream's JSON keeps). */
static bool same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach ((json_t *)a, k, v) {
            if (!same(v, json_object_get(b, k)))
                return false;
        }
        return true;
    }
    return json_equal(a, b);
}

static void test_fixtures(void **state)
{
    (void)state;
    DIR *d = opendir(KCP_TESTDATA_DIR);
    if (!d) {
        print_message("no fixtures at %s; skipped\n", KCP_TESTDATA_DIR);
        skip();
    }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml") != 0)
            continue;
        char path[1024], jpath[1024];
        snprintf(path, sizeof(path), "%s/%s", KCP_TESTDATA_DIR, e->d_name);
        snprintf(jpath, sizeof(jpath), "%s/%.*s.json", KCP_TESTDATA_DIR, (int)(l - 5), e->d_name);
        size_t ylen, jlen;
        char *y = slurp(path, &ylen), *j = slurp(jpath, &jlen);
        if (!y || !j)
            fail_msg("cannot read %s or its .json", path);
        json_t *got = NULL, *want = json_loadb(j, jlen, 0, NULL);
        struct kcp_codec_err err = {{0}};
        if (kcp_codec_yaml_parse(&got, y, ylen, &err) != 0)
            fail_msg("%s: %s", e->d_name, err.msg);
        if (!same(got, want)) {
            char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
            char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
            size_t i = 0;
            while (g[i] && g[i] == w[i])
                i++;
            fail_msg("%s differs at %zu:\n got ...%.120s\nwant ...%.120s", e->d_name, i,
                     g + (i > 40 ? i - 40 : 0), w + (i > 40 ? i - 40 : 0));
        }
        json_decref(got);
        json_decref(want);
        free(y);
        free(j);
        n++;
    }
    closedir(d);
    assert_true(n >= 80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifests),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
