/* Unit tests of the selector module: label and field grammar, matching, messages and limits. */
#include <kcp/base.h>
#include <kcp/selector.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static struct kcp_label_selector *labels_ok(const char *text)
{
    struct kcp_label_selector *sel = NULL;
    char *err = NULL;
    int rc = kcp_selector_parse_labels(&sel, text, &err);
    if (rc != 0)
        fail_msg("parse of '%s' failed: %s", text, err);
    assert_null(err);
    assert_non_null(sel);
    return sel;
}

static void labels_err(const char *text, const char *want)
{
    struct kcp_label_selector *sel = (void *)1;
    char *err = NULL;
    assert_int_equal(kcp_selector_parse_labels(&sel, text, &err), KCP_EBADREQUEST);
    assert_null(sel);
    assert_non_null(err);
    if (want)
        assert_string_equal(err, want);
    free(err);
}

/* Parses "k=v,k2=v2" style JSON-ish label sets from a jansson literal. */
static json_t *L(const char *json)
{
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    if (!j)
        fail_msg("bad test json %s: %s", json, e.text);
    return j;
}

static bool match(const char *selector, const char *labels_json)
{
    struct kcp_label_selector *sel = labels_ok(selector);
    json_t *labels = labels_json ? L(labels_json) : NULL;
    bool m = kcp_selector_labels_matches(sel, labels);
    json_decref(labels);
    kcp_selector_labels_free(sel);
    return m;
}

static void canonical(const char *text, const char *want)
{
    struct kcp_label_selector *sel = labels_ok(text);
    char *s = kcp_selector_labels_string(sel);
    assert_string_equal(s, want);
    free(s);
    kcp_selector_labels_free(sel);
}

/* ---- label selectors ------------------------------------------------------------------------ */

static void test_labels_empty(void **state)
{
    struct kcp_label_selector *sel = labels_ok("");
    assert_true(kcp_selector_labels_empty(sel));
    assert_true(kcp_selector_labels_matches(sel, NULL));
    kcp_selector_labels_free(sel);
    sel = labels_ok(" \t\r\n ");
    assert_int_equal(kcp_selector_labels_count(sel), 0);
    kcp_selector_labels_free(sel);
    kcp_selector_labels_free(NULL);
}

static void test_labels_equality(void **state)
{
    assert_true(match("app=web", "{\"app\":\"web\"}"));
    assert_false(match("app=web", "{\"app\":\"db\"}"));
    assert_false(match("app=web", "{}"));
    assert_false(match("app=web", NULL));
    assert_true(match("app==web", "{\"app\":\"web\",\"x\":\"y\"}"));
    assert_false(match("app==web", "{\"apps\":\"web\"}"));
    /* != matches objects without the key, as upstream */
    assert_true(match("app!=web", "{}"));
    assert_true(match("app!=web", NULL));
    assert_true(match("app!=web", "{\"app\":\"db\"}"));
    assert_false(match("app!=web", "{\"app\":\"web\"}"));
    /* an empty value */
    assert_true(match("app=", "{\"app\":\"\"}"));
    assert_false(match("app=", "{}"));
    assert_true(match("app!=", "{}"));
    /* non-string label values are absent labels */
    assert_false(match("app", "{\"app\":1}"));
    assert_true(match("!app", "{\"app\":null}"));
    /* labels that are not an object are no labels */
    assert_true(match("!app", "[1]"));
}

static void test_labels_sets(void **state)
{
    assert_true(match("env in (prod,qa)", "{\"env\":\"qa\"}"));
    assert_false(match("env in (prod,qa)", "{\"env\":\"dev\"}"));
    assert_false(match("env in (prod,qa)", "{}"));
    assert_true(match("env notin (prod,qa)", "{\"env\":\"dev\"}"));
    assert_true(match("env notin (prod,qa)", "{}"));
    assert_false(match("env notin (prod,qa)", "{\"env\":\"prod\"}"));
    /* empty entries are the empty value */
    assert_true(match("env in (a,,b)", "{\"env\":\"\"}"));
    assert_true(match("env in ()", "{\"env\":\"\"}"));
    assert_true(match("env in (,a)", "{\"env\":\"\"}"));
    assert_true(match("env in (a,)", "{\"env\":\"\"}"));
    assert_false(match("env in (a)", "{\"env\":\"\"}"));
    canonical("x in (b,,a,b)", "x in (,a,b)");
    canonical("x notin ( c , a )", "x notin (a,c)");
}

static void test_labels_exists(void **state)
{
    assert_true(match("app", "{\"app\":\"\"}"));
    assert_false(match("app", "{}"));
    assert_true(match("!app", "{}"));
    assert_false(match("!app", "{\"app\":\"x\"}"));
    assert_true(match("a,!b", "{\"a\":\"1\"}"));
    assert_false(match("a,!b", "{\"a\":\"1\",\"b\":\"2\"}"));
    assert_true(match("! app", "{}"));
}

static void test_labels_gt_lt(void **state)
{
    assert_true(match("n>5", "{\"n\":\"6\"}"));
    assert_false(match("n>5", "{\"n\":\"5\"}"));
    assert_false(match("n>5", "{\"n\":\"x\"}"));
    assert_false(match("n>5", "{}"));
    assert_true(match("n<3", "{\"n\":\"-4\"}"));
    /* a negative bound is not a valid label value, so upstream cannot express it either */
    labels_err("n<-3", NULL);
    assert_true(match("n < 10", "{\"n\":\"+9\"}"));
    assert_false(match("n<10", "{\"n\":\"99999999999999999999\"}"));
    labels_err("n>a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', "
                      "'Lt' operators, the value must be an integer");
    labels_err("n>", "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', "
                     "'Lt' operators, the value must be an integer");
    /* two complaints aggregate in brackets */
    labels_err("n>a_", "unable to parse requirement: [values[0]: Invalid value: \"a_\": for 'Gt', "
                       "'Lt' operators, the value must be an integer, values[0][n]: Invalid value: "
                       "\"a_\": a valid label must be an empty string or consist of alphanumeric "
                       "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                       "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                       "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]");
}

static void test_labels_whitespace_and_keywords(void **state)
{
    canonical("  a = b ,\tc\n!= d , e in ( f , g ) ", "a=b,c!=d,e in (f,g)");
    canonical("a==b", "a==b");
    /* "in" and "notin" are plain words as keys and values */
    assert_true(match("in in (in)", "{\"in\":\"in\"}"));
    assert_true(match("notin=notin", "{\"notin\":\"notin\"}"));
    assert_true(match("x notin (notin,in)", "{\"x\":\"y\"}"));
    /* "!=" binds before "=" */
    assert_true(match("a!=b", "{\"a\":\"c\"}"));
    canonical("a!=b", "a!=b");
    canonical("x>1,y<2", "x>1,y<2");
}

static void test_labels_keys(void **state)
{
    assert_true(match("example.com/app=web", "{\"example.com/app\":\"web\"}"));
    assert_true(match("a.b-c_d.e=x", "{\"a.b-c_d.e\":\"x\"}"));
    canonical("z=1,a=2,m", "a=2,m,z=1");
    canonical("!z,a in (x)", "a in (x),!z");
    /* duplicate keys both apply */
    assert_false(match("a=1,a=2", "{\"a\":\"1\"}"));
    assert_true(match("a!=1,a!=2", "{\"a\":\"3\"}"));
}

#define QNAME_TAIL                                                                                 \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "    \
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "         \
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

static void test_labels_key_errors(void **state)
{
    /* as kubectl users see it from upstream */
    labels_err("app:monolith", "unable to parse requirement: <nil>: Invalid value: "
                               "\"app:monolith\": name part " QNAME_TAIL);
    labels_err("app.kubernetes_io/name=x",
               "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": "
               "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
               "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
               "character (e.g. 'example.com', regex used for validation is "
               "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    labels_err("a/b/c ?=? def", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a "
                                "qualified name " QNAME_TAIL " with an optional DNS subdomain "
                                "prefix and '/' (e.g. 'example.com/MyName')");
    labels_err("/x", "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must "
                     "be non-empty");
    labels_err("x/", "unable to parse requirement: <nil>: Invalid value: \"x/\": name part must "
                     "be non-empty; name part " QNAME_TAIL);
    labels_err("-a",
               "unable to parse requirement: <nil>: Invalid value: \"-a\": name part " QNAME_TAIL);
    char key[80];
    memset(key, 'k', 64);
    key[64] = 0;
    char want[400];
    snprintf(want, sizeof(want),
             "unable to parse requirement: <nil>: Invalid value: \"%s\": name part must be no more "
             "than 63 characters",
             key);
    labels_err(key, want);
    /* Go's %q escapes quotes and control bytes */
    labels_err(
        "a\"b",
        "unable to parse requirement: <nil>: Invalid value: \"a\\\"b\": name part " QNAME_TAIL);
    labels_err("a\x01", "unable to parse requirement: <nil>: Invalid value: \"a\\x01\": name "
                        "part " QNAME_TAIL);
}

static void test_labels_value_errors(void **state)
{
    char text[100], want[600];
    char v[70];
    memset(v, 'v', 64);
    v[64] = 0;
    snprintf(text, sizeof(text), "k=%s", v);
    snprintf(want, sizeof(want),
             "unable to parse requirement: values[0][k]: Invalid value: \"%s\": must be no more "
             "than 63 characters",
             v);
    labels_err(text, want);
    labels_err("k in (ok,b@d)", "unable to parse requirement: values[0][k]: Invalid value: "
                                "\"b@d\": a valid label must be an empty string or consist of "
                                "alphanumeric characters, '-', '_' or '.', and must start and end "
                                "with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
                                "or '12345', regex used for validation is "
                                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
    v[63] = 0;
    snprintf(text, sizeof(text), "k=%s", v);
    assert_true(match(text, "{\"k\":\""
                            "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
                            "\"}"));
}

static void test_labels_syntax_errors(void **state)
{
    labels_err("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'");
    labels_err("x=a=b", "found '=', expected: ',' or 'end of string'");
    labels_err("x=a,", "found '', expected: identifier after ','");
    labels_err("x=a,,y", "found ',', expected: identifier after ','");
    labels_err(",x", "found ',', expected: !, identifier, or 'end of string'");
    labels_err("=x", "found '=', expected: !, identifier, or 'end of string'");
    labels_err("x in", "unable to parse requirement: found '' expected: '('");
    labels_err("x in a", "unable to parse requirement: found 'a' expected: '('");
    labels_err("x in (a", "unable to parse requirement: found '', expected: ',' or ')'");
    labels_err("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or "
                           "identifier");
    labels_err("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or "
                             "identifier");
    labels_err("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, "
                      "gt, lt");
    labels_err("x (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, "
                      "gt, lt");
    labels_err("x=(", "unable to parse requirement: found '(', expected: identifier");
    labels_err("!", "unable to parse requirement: found '', expected: identifier");
    labels_err("!!x", "unable to parse requirement: found '!', expected: identifier");
    labels_err("!x=y", "found '=', expected: ',' or 'end of string'");
    labels_err("x in (a)b", "found 'b', expected: ',' or 'end of string'");
    labels_err("x===y", "unable to parse requirement: found '=', expected: identifier");
    /* NULL out_err is allowed */
    struct kcp_label_selector *sel;
    assert_int_equal(kcp_selector_parse_labels(&sel, "x y", NULL), KCP_EBADREQUEST);
}

static void test_labels_limits(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    for (int i = 0; i < KCP_SELECTOR_MAX_REQUIREMENTS; i++)
        kcp_buf_printf(&b, "%sk%d", i ? "," : "", i);
    struct kcp_label_selector *sel = labels_ok(b.data);
    assert_int_equal(kcp_selector_labels_count(sel), KCP_SELECTOR_MAX_REQUIREMENTS);
    kcp_selector_labels_free(sel);
    kcp_buf_puts(&b, ",one-more");
    labels_err(b.data, "too many requirements (limit 1000)");

    kcp_buf_reset(&b);
    kcp_buf_puts(&b, "k in (");
    for (int i = 0; i < KCP_SELECTOR_MAX_VALUES; i++)
        kcp_buf_printf(&b, "%sv%d", i ? "," : "", i);
    kcp_buf_puts(&b, ")");
    sel = labels_ok(b.data);
    struct kcp_selector_requirement r;
    kcp_selector_labels_get(sel, 0, &r);
    assert_int_equal(r.nvalues, KCP_SELECTOR_MAX_VALUES);
    kcp_selector_labels_free(sel);
    b.data[b.len - 1] = ',';
    kcp_buf_puts(&b, "x)");
    labels_err(b.data, "unable to parse requirement: too many values (limit 1000)");

    kcp_buf_reset(&b);
    while (b.len <= KCP_SELECTOR_MAX_LEN)
        kcp_buf_puts(&b, "          ");
    labels_err(b.data, NULL);
    kcp_buf_free(&b);
}

static void test_labels_accessors(void **state)
{
    struct kcp_label_selector *sel = labels_ok("y in (b),x=a,z in (c,d),!w,x=q");
    struct kcp_selector_requirement r;
    assert_int_equal(kcp_selector_labels_count(sel), 5);
    kcp_selector_labels_get(sel, 0, &r);
    assert_string_equal(r.key, "w");
    assert_int_equal(r.op, KCP_SELECTOR_NOT_EXISTS);
    assert_int_equal(r.nvalues, 0);
    kcp_selector_labels_get(sel, 4, &r);
    assert_string_equal(r.key, "z");
    assert_int_equal(r.op, KCP_SELECTOR_IN);
    assert_int_equal(r.nvalues, 2);
    assert_string_equal(r.values[1], "d");
    assert_string_equal(kcp_selector_labels_exact(sel, "x"), "a");
    assert_string_equal(kcp_selector_labels_exact(sel, "y"), "b");
    assert_null(kcp_selector_labels_exact(sel, "z"));
    assert_null(kcp_selector_labels_exact(sel, "w"));
    assert_null(kcp_selector_labels_exact(sel, "nope"));
    kcp_selector_labels_free(sel);
}

/* ---- field selectors ------------------------------------------------------------------------ */

static struct kcp_field_selector *fields_ok(const char *text)
{
    struct kcp_field_selector *sel = NULL;
    char *err = NULL;
    if (kcp_selector_parse_fields(&sel, text, &err) != 0)
        fail_msg("parse of '%s' failed: %s", text, err);
    assert_null(err);
    return sel;
}

static void fields_err(const char *text, const char *want)
{
    struct kcp_field_selector *sel = (void *)1;
    char *err = NULL;
    assert_int_equal(kcp_selector_parse_fields(&sel, text, &err), KCP_EBADREQUEST);
    assert_null(sel);
    if (want)
        assert_string_equal(err, want);
    free(err);
}

/* A pod-like object: ctx is a NULL-terminated list of field, value pairs. */
static int pod_get(void *ctx, const char *field, const char **out)
{
    for (const char **kv = ctx; *kv; kv += 2) {
        if (strcmp(kv[0], field) == 0) {
            *out = kv[1];
            return 0;
        }
    }
    return KCP_ENOTFOUND;
}

static bool pod_supported(void *ctx, const char *field)
{
    return strcmp(field, "metadata.name") == 0 || strcmp(field, "metadata.namespace") == 0 ||
           strcmp(field, "spec.nodeName") == 0 || strcmp(field, "status.phase") == 0;
}

static const char *pod[] = {"metadata.name",
                            "web-1",
                            "metadata.namespace",
                            "default",
                            "spec.nodeName",
                            "",
                            "status.phase",
                            "Running",
                            "metadata.label",
                            "a,b=c",
                            NULL};

static bool fmatch(const char *text)
{
    struct kcp_field_selector *sel = fields_ok(text);
    bool m = kcp_selector_fields_matches(sel, pod_get, pod);
    kcp_selector_fields_free(sel);
    return m;
}

static void test_fields_match(void **state)
{
    assert_true(fmatch(""));
    assert_true(fmatch("metadata.name=web-1"));
    assert_true(fmatch("metadata.name==web-1"));
    assert_false(fmatch("metadata.name=web-2"));
    assert_true(fmatch("metadata.name!=web-2"));
    assert_true(fmatch("metadata.name=web-1,status.phase=Running"));
    assert_false(fmatch("metadata.name=web-1,status.phase!=Running"));
    /* an empty field value, and a field the getter does not know, both read as "" */
    assert_true(fmatch("spec.nodeName="));
    assert_false(fmatch("spec.nodeName!="));
    assert_true(fmatch("spec.unknown="));
    assert_true(fmatch("spec.unknown!=x"));
    /* escapes */
    assert_true(fmatch("metadata.label=a\\,b\\=c"));
    assert_false(fmatch("metadata.label=a\\,b"));
    /* empty terms are skipped */
    assert_true(fmatch(",metadata.name=web-1,,"));
    /* whitespace is part of the name, as upstream */
    assert_false(fmatch("metadata.name =web-1"));
}

static void test_fields_parse(void **state)
{
    struct kcp_field_selector *sel = fields_ok("b!=x\\,y,a==1,c=!d,e=f\\\\g");
    struct kcp_selector_term t;
    assert_int_equal(kcp_selector_fields_count(sel), 4);
    kcp_selector_fields_get(sel, 0, &t);
    assert_string_equal(t.field, "a");
    assert_int_equal(t.op, KCP_SELECTOR_DEQ);
    assert_string_equal(t.value, "1");
    kcp_selector_fields_get(sel, 1, &t);
    assert_string_equal(t.field, "b");
    assert_int_equal(t.op, KCP_SELECTOR_NEQ);
    assert_string_equal(t.value, "x,y");
    kcp_selector_fields_get(sel, 2, &t);
    assert_int_equal(t.op, KCP_SELECTOR_EQ);
    assert_string_equal(t.value, "!d");
    kcp_selector_fields_get(sel, 3, &t);
    assert_string_equal(t.value, "f\\g");
    char *s = kcp_selector_fields_string(sel);
    assert_string_equal(s, "a=1,b!=x\\,y,c=!d,e=f\\\\g");
    free(s);
    assert_string_equal(kcp_selector_fields_exact(sel, "a"), "1");
    assert_string_equal(kcp_selector_fields_exact(sel, "c"), "!d");
    assert_null(kcp_selector_fields_exact(sel, "b"));
    assert_false(kcp_selector_fields_empty(sel));
    kcp_selector_fields_free(sel);
    sel = fields_ok("=x");
    kcp_selector_fields_get(sel, 0, &t);
    assert_string_equal(t.field, "");
    kcp_selector_fields_free(sel);
    sel = fields_ok(",,");
    assert_true(kcp_selector_fields_empty(sel));
    kcp_selector_fields_free(sel);
    kcp_selector_fields_free(NULL);
}

static void test_fields_errors(void **state)
{
    fields_err("abc", "invalid selector: 'abc'; can't understand 'abc'");
    fields_err("x=1,abc,zz", "invalid selector: 'x=1,abc,zz'; can't understand 'abc'");
    fields_err("a=b=c", "invalid field selector: unescaped character in value: 61");
    fields_err("a===b", "invalid field selector: unescaped character in value: 61");
    fields_err("a=b\\,c,d=e,f", "invalid selector: 'a=b\\,c,d=e,f'; can't understand 'f'");
    fields_err("a=b\\x", "invalid field selector: invalid escape sequence: \\x");
    fields_err("a=b\\", "invalid field selector: invalid escape sequence: \\");
    fields_err("a=b\\\xc3\xa9", "invalid field selector: invalid escape sequence: \\\xc3\xa9");
    /* the sorted order decides which bad part is reported */
    fields_err("z,a", "invalid selector: 'z,a'; can't understand 'a'");
}

static void test_fields_check(void **state)
{
    struct kcp_field_selector *sel = fields_ok("metadata.name=x,spec.nodeName=n");
    char *err = (char *)1;
    assert_int_equal(kcp_selector_fields_check(sel, pod_supported, NULL, &err), 0);
    assert_null(err);
    kcp_selector_fields_free(sel);
    sel = fields_ok("spec.host=x,metadata.name=y");
    assert_int_equal(kcp_selector_fields_check(sel, pod_supported, NULL, &err), KCP_EBADREQUEST);
    assert_string_equal(err, "field label not supported: spec.host");
    free(err);
    assert_int_equal(kcp_selector_fields_check(sel, pod_supported, NULL, NULL), KCP_EBADREQUEST);
    kcp_selector_fields_free(sel);
}

static void test_fields_limits(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    for (int i = 0; i < KCP_SELECTOR_MAX_REQUIREMENTS; i++)
        kcp_buf_printf(&b, "%sf%d=v", i ? "," : "", i);
    struct kcp_field_selector *sel = fields_ok(b.data);
    assert_int_equal(kcp_selector_fields_count(sel), KCP_SELECTOR_MAX_REQUIREMENTS);
    kcp_selector_fields_free(sel);
    kcp_buf_puts(&b, ",g=1");
    fields_err(b.data, "too many field selector terms (limit 1000)");
    kcp_buf_reset(&b);
    while (b.len <= KCP_SELECTOR_MAX_LEN)
        kcp_buf_puts(&b, ",,,,,,,,");
    fields_err(b.data, NULL);
    kcp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_empty),
        cmocka_unit_test(test_labels_equality),
        cmocka_unit_test(test_labels_sets),
        cmocka_unit_test(test_labels_exists),
        cmocka_unit_test(test_labels_gt_lt),
        cmocka_unit_test(test_labels_whitespace_and_keywords),
        cmocka_unit_test(test_labels_keys),
        cmocka_unit_test(test_labels_key_errors),
        cmocka_unit_test(test_labels_value_errors),
        cmocka_unit_test(test_labels_syntax_errors),
        cmocka_unit_test(test_labels_limits),
        cmocka_unit_test(test_labels_accessors),
        cmocka_unit_test(test_fields_match),
        cmocka_unit_test(test_fields_parse),
        cmocka_unit_test(test_fields_errors),
        cmocka_unit_test(test_fields_check),
        cmocka_unit_test(test_fields_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
