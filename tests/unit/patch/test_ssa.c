/* Unit tests of server-side apply: field sets, Update tracking, apply merge, prune, conflicts. */
#include <kcp/base.h>
#include <kcp/patch.h>

#include "ssa_schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
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

/* Compact JSON in tree order (key order matters for FieldsV1). */
static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void assert_json(const json_t *got, const char *want)
{
    char *g = dump(got);
    json_t *w = J(want);
    char *ws = dump(w);
    if (strcmp(g, ws) != 0)
        fail_msg("\n got: %s\nwant: %s", g, ws);
    free(g);
    free(ws);
    json_decref(w);
}

static const json_t *managed(const json_t *obj)
{
    return json_object_get(json_object_get(obj, "metadata"), "managedFields");
}

/* The entry of a manager (and operation), or NULL. */
static const json_t *entry(const json_t *obj, const char *manager, const char *operation)
{
    size_t i;
    json_t *e;
    json_array_foreach (managed(obj), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "manager")), manager) == 0 &&
            strcmp(json_string_value(json_object_get(e, "operation")), operation) == 0)
            return e;
    }
    return NULL;
}

static const char *const reset_status[] = {"status", NULL};

static struct kcp_ssa_op op_of(const char *manager, const char *time)
{
    struct kcp_ssa_op op = {manager, "apps/v1", NULL, time, reset_status, false};
    return op;
}

/* The zero value of the test Deployment, as Go encodes it. */
#define ZERO                                                                                       \
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"template\":{\"metadata\":{},"          \
    "\"spec\":{\"containers\":null}}},\"status\":{}}"

static json_t *apply_ok(const json_t *live, const char *config, struct kcp_ssa_op op, bool *changed)
{
    json_t *z = J(ZERO), *c = J(config), *out = NULL, *causes = NULL;
    char *err = NULL;
    int rc = kcp_ssa_apply(&out, changed, live, z, c, &ssa_test_schema, &op, &causes, &err);
    if (rc != 0)
        fail_msg("apply %s failed (%d): %s", config, rc, err);
    assert_null(causes);
    json_decref(z);
    json_decref(c);
    return out;
}

/* ---- field sets ------------------------------------------------------------------------------ */

static void test_fieldset(void **state)
{
    (void)state;
    json_t *v =
        J("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
          "\"labels\":{\"b\":\"1\",\"a\":\"2\"},\"finalizers\":[\"z\",\"a\"]},"
          "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
          "\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"i\","
          "\"ports\":[{\"containerPort\":443},{\"containerPort\":80,\"protocol\":\"UDP\"}],"
          "\"env\":[{\"name\":\"B\",\"value\":\"1\"},{\"name\":\"A\"}],\"args\":[\"x\"],"
          "\"resources\":{}}]}}},\"extra\":{\"x\":{\"y\":1}}}");
    json_t *fs = NULL;
    char *err = NULL;
    assert_int_equal(kcp_ssa_fieldset(&fs, v, &ssa_test_schema, &err), 0);
    /* Sorted as upstream: fields by name, keys by value (80 before 443), "." first; atomic
     * values and empty structs are leaves; map keys and set items are owned themselves. */
    assert_json(
        fs, "{\"f:apiVersion\":{},\"f:extra\":{\"f:x\":{\".\":{},\"f:y\":{}}},\"f:kind\":{},"
            "\"f:metadata\":{\"f:finalizers\":{\"v:\\\"a\\\"\":{},\"v:\\\"z\\\"\":{}},"
            "\"f:labels\":{\"f:a\":{},\"f:b\":{}},\"f:name\":{}},"
            "\"f:spec\":{\"f:replicas\":{},\"f:selector\":{},\"f:template\":{\"f:spec\":{"
            "\"f:containers\":{\"k:{\\\"name\\\":\\\"app\\\"}\":{\".\":{},\"f:args\":{},"
            "\"f:env\":{\"k:{\\\"name\\\":\\\"A\\\"}\":{\".\":{},\"f:name\":{}},"
            "\"k:{\\\"name\\\":\\\"B\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}}},"
            "\"f:image\":{},\"f:name\":{},"
            "\"f:ports\":{\"k:{\\\"containerPort\\\":80,\\\"protocol\\\":\\\"UDP\\\"}\":{\".\":{},"
            "\"f:containerPort\":{},\"f:protocol\":{}},"
            "\"k:{\\\"containerPort\\\":443,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},"
            "\"f:containerPort\":{}}},\"f:resources\":{}}}}}}}");
    json_decref(fs);
    json_decref(v);
}

static void test_fieldset_errors(void **state)
{
    (void)state;
    static const struct {
        const char *value, *msg;
    } cases[] = {
        {"{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"env\":[{\"name\":"
         "\"A\"},"
         "{\"name\":\"A\",\"value\":\"x\"}]}]}}}}",
         ".spec.template.spec.containers[name=\"app\"].env: duplicate entries for key "
         "[name=\"A\"]"},
        {"{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}}}",
         ".spec.template.spec.containers: element 0: associative list with keys has an element "
         "that omits key field \"name\" (and doesn't have default value)"},
        {"{\"spec\":{\"template\":{\"spec\":{\"containers\":[\"x\"]}}}}",
         ".spec.template.spec.containers: element 0: associative list with keys may not have "
         "non-map elements"},
        {"{\"metadata\":{\"finalizers\":[{\"a\":1}]}}",
         ".metadata.finalizers: element 0: associative list without keys has an element that's a "
         "map type"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = J(cases[i].value), *fs = NULL;
        char *err = NULL;
        assert_int_equal(kcp_ssa_fieldset(&fs, v, &ssa_test_schema, &err), KCP_EBADREQUEST);
        assert_null(fs);
        assert_string_equal(err, cases[i].msg);
        free(err);
        json_decref(v);
    }
    /* Nesting past the patch module's limit is refused before any walk. */
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "{\"extra\":");
    for (int i = 0; i < 150; i++)
        kcp_buf_puts(&b, "{\"a\":");
    kcp_buf_puts(&b, "1");
    for (int i = 0; i < 151; i++)
        kcp_buf_puts(&b, "}");
    json_t *deep = J(b.data), *fs = NULL;
    char *err = NULL;
    assert_int_equal(kcp_ssa_fieldset(&fs, deep, &ssa_test_schema, &err), KCP_EBADREQUEST);
    free(err);
    json_decref(deep);
    kcp_buf_free(&b);
}

/* ---- Update --------------------------------------------------------------------------------- */

#define CREATED                                                                                    \
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","          \
    "\"namespace\":\"d\",\"creationTimestamp\":\"2024-01-01T00:00:00Z\",\"labels\":"               \
    "{\"app\":\"web\"}},\"spec\":{\"replicas\":1,\"template\":{\"metadata\":{"                     \
    "\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"app\","                   \
    "\"image\":\"i\"}]}}},\"status\":{\"replicas\":1}}"

static json_t *created(void)
{
    json_t *obj = J(CREATED), *zero = J(ZERO);
    struct kcp_ssa_op op = op_of("kubectl-create", "2024-01-01T00:00:01Z");
    char *err = NULL;
    assert_int_equal(kcp_ssa_update(obj, zero, true, &ssa_test_schema, &op, &err), 0);
    json_decref(zero);
    return obj;
}

static void test_update_create(void **state)
{
    (void)state;
    json_t *obj = created();
    /* New maps and items are owned themselves ("."); server fields and status are nobody's. */
    assert_json(
        managed(obj),
        "[{\"manager\":\"kubectl-create\",\"operation\":\"Update\",\"apiVersion\":\"apps/v1\","
        "\"time\":\"2024-01-01T00:00:01Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{"
        "\"f:metadata\":{\"f:labels\":{\".\":{},\"f:app\":{}}},\"f:spec\":{\"f:replicas\":{},"
        "\"f:template\":{\"f:metadata\":{\"f:labels\":{\".\":{},\"f:app\":{}}},\"f:spec\":{"
        "\"f:containers\":{\"k:{\\\"name\\\":\\\"app\\\"}\":{\".\":{},\"f:image\":{},"
        "\"f:name\":{}}}}}}}}]");
    json_decref(obj);
}

static void test_update_moves_ownership(void **state)
{
    (void)state;
    json_t *old = created();
    json_t *obj = json_deep_copy(old);
    json_t *spec = json_object_get(obj, "spec");
    json_object_set_new(spec, "replicas", json_integer(3));
    json_object_set_new(json_object_get(json_object_get(obj, "metadata"), "labels"), "b",
                        json_string("x"));
    struct kcp_ssa_op op = op_of("kubectl-edit", "2024-01-01T00:00:02Z");
    char *err = NULL;
    assert_int_equal(kcp_ssa_update(obj, old, false, &ssa_test_schema, &op, &err), 0);
    assert_json(json_object_get(entry(obj, "kubectl-edit", "Update"), "fieldsV1"),
                "{\"f:metadata\":{\"f:labels\":{\"f:b\":{}}},\"f:spec\":{\"f:replicas\":{}}}");
    const json_t *c = json_object_get(entry(obj, "kubectl-create", "Update"), "fieldsV1");
    assert_null(json_object_get(json_object_get(c, "f:spec"), "f:replicas"));
    assert_non_null(json_object_get(json_object_get(c, "f:spec"), "f:template"));
    /* Entries sort by operation, then time. */
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(managed(obj), 1), "manager")),
        "kubectl-edit");

    /* A write that changes nothing leaves managedFields as they were (time included). */
    json_t *again = json_deep_copy(obj);
    op.time = "2024-01-01T00:00:09Z";
    assert_int_equal(kcp_ssa_update(again, obj, false, &ssa_test_schema, &op, &err), 0);
    assert_true(json_equal(again, obj));

    /* Removing a field takes it from its owner; a removed item goes with its fields. */
    json_t *rm = json_deep_copy(obj);
    json_object_set_new(json_object_get(json_object_get(rm, "spec"), "template"), "spec",
                        J("{\"containers\":[{\"name\":\"other\",\"image\":\"i\"}]}"));
    op.manager = "kubectl-replace";
    assert_int_equal(kcp_ssa_update(rm, obj, false, &ssa_test_schema, &op, &err), 0);
    c = json_object_get(entry(rm, "kubectl-create", "Update"), "fieldsV1");
    char *s = dump(c);
    assert_null(strstr(s, "k:{\\\"name\\\":\\\"app\\\"}"));
    free(s);
    assert_non_null(entry(rm, "kubectl-replace", "Update"));
    json_decref(rm);
    json_decref(again);
    json_decref(old);
    json_decref(obj);
}

static void test_update_untracked_and_reset(void **state)
{
    (void)state;
    /* An existing object without managedFields stays without them (skipNonAppliedManager). */
    json_t *old = J(CREATED), *obj = J(CREATED);
    json_object_set_new(json_object_get(obj, "spec"), "replicas", json_integer(2));
    struct kcp_ssa_op op = op_of("kubectl-edit", "2024-01-01T00:00:02Z");
    char *err = NULL;
    assert_int_equal(kcp_ssa_update(obj, old, false, &ssa_test_schema, &op, &err), 0);
    assert_null(managed(obj));
    json_decref(old);
    json_decref(obj);

    /* managedFields: [{}] clears them; an empty list keeps the stored ones. */
    old = created();
    obj = json_deep_copy(old);
    json_object_set_new(json_object_get(obj, "metadata"), "managedFields", J("[{}]"));
    assert_int_equal(kcp_ssa_update(obj, old, false, &ssa_test_schema, &op, &err), 0);
    assert_null(managed(obj));
    json_decref(obj);
    obj = json_deep_copy(old);
    json_object_set_new(json_object_get(obj, "metadata"), "managedFields", J("[]"));
    assert_int_equal(kcp_ssa_update(obj, old, false, &ssa_test_schema, &op, &err), 0);
    assert_true(json_equal(managed(obj), managed(old)));
    json_decref(obj);

    /* A client may replace them with valid entries; invalid ones fall back to the stored. */
    obj = json_deep_copy(old);
    json_object_set_new(json_object_get(obj, "metadata"), "managedFields",
                        J("[{\"manager\":\"x\",\"operation\":\"Bogus\",\"apiVersion\":\"apps/v1\","
                          "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{}}]"));
    assert_int_equal(kcp_ssa_update(obj, old, false, &ssa_test_schema, &op, &err), 0);
    assert_true(json_equal(managed(obj), managed(old)));
    json_decref(obj);
    obj = json_deep_copy(old);
    json_object_set_new(
        json_object_get(obj, "metadata"), "managedFields",
        J("[{\"manager\":\"mine\",\"operation\":\"Update\",\"apiVersion\":\"apps/v1\","
          "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{\"f:replicas\":{}}}}]"));
    assert_int_equal(kcp_ssa_update(obj, old, false, &ssa_test_schema, &op, &err), 0);
    assert_int_equal(json_array_size(managed(obj)), 1);
    assert_non_null(entry(obj, "mine", "Update"));
    json_decref(obj);
    json_decref(old);
}

static void test_update_cap(void **state)
{
    (void)state;
    json_t *obj = created();
    char when[32], name[32];
    char *err = NULL;
    for (int i = 0; i < 11; i++) {
        json_t *old = obj;
        obj = json_deep_copy(old);
        snprintf(name, sizeof(name), "m%02d", i);
        snprintf(when, sizeof(when), "2024-01-02T00:00:%02dZ", i);
        json_object_set_new(json_object_get(json_object_get(obj, "metadata"), "labels"), name,
                            json_string("x"));
        struct kcp_ssa_op op = op_of(name, when);
        assert_int_equal(kcp_ssa_update(obj, old, false, &ssa_test_schema, &op, &err), 0);
        json_decref(old);
    }
    /* Past 10 Update entries the oldest fold into ancient-changes, which takes the time of the
     * newest it absorbed: kubectl-create and m00 at the 11th entry, m01 at the next. */
    assert_int_equal(json_array_size(managed(obj)), KCP_SSA_MAX_UPDATE_MANAGERS);
    const json_t *anc = entry(obj, "ancient-changes", "Update");
    assert_non_null(anc);
    assert_null(entry(obj, "kubectl-create", "Update"));
    assert_null(entry(obj, "m00", "Update"));
    assert_null(entry(obj, "m01", "Update"));
    assert_non_null(entry(obj, "m02", "Update"));
    assert_string_equal(json_string_value(json_object_get(anc, "time")), "2024-01-02T00:00:01Z");
    const json_t *labels = json_object_get(
        json_object_get(json_object_get(anc, "fieldsV1"), "f:metadata"), "f:labels");
    assert_non_null(json_object_get(labels, "f:m00"));
    assert_non_null(json_object_get(labels, "f:m01"));
    assert_non_null(json_object_get(labels, "f:app"));
    json_decref(obj);
}

/* ---- Apply ---------------------------------------------------------------------------------- */

#define WEB1                                                                                       \
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","          \
    "\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":"        \
    "{\"app\":\"web\"}},\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\","                \
    "\"image\":\"web:1.0\",\"env\":[{\"name\":\"MODE\",\"value\":\"prod\"},{\"name\":"             \
    "\"LEVEL\",\"value\":\"info\"}]},{\"name\":\"sidecar\",\"image\":\"log:2\"}]}}}}"
#define WEB2                                                                                       \
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","          \
    "\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":"        \
    "{\"app\":\"web\"}},\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\","                \
    "\"image\":\"web:1.1\",\"env\":[{\"name\":\"MODE\",\"value\":\"prod\"},{\"name\":"             \
    "\"LEVEL\",\"value\":\"debug\"},{\"name\":\"EXTRA\",\"value\":\"yes\"}]},{\"name\":"           \
    "\"sidecar\",\"image\":\"log:2\"}]}}}}"

static const char *env_names(const json_t *obj, char *buf, size_t cap)
{
    const json_t *c = json_array_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(obj, "spec"), "template"), "spec"),
            "containers"),
        0);
    size_t i, o = 0;
    json_t *e;
    buf[0] = '\0';
    json_array_foreach (json_object_get(c, "env"), i, e)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? " " : "",
                              json_string_value(json_object_get(e, "name")));
    return buf;
}

static void test_apply_lifecycle(void **state)
{
    (void)state;
    char buf[128], *err = NULL;
    bool changed = false;
    json_t *zero = J(ZERO);
    /* Apply to a missing object: the configuration over the zero value, one Apply entry. */
    json_t *v1 = apply_ok(zero, WEB1, op_of("kubectl", "2024-01-01T00:00:01Z"), &changed);
    assert_true(changed);
    assert_int_equal(json_array_size(managed(v1)), 1);
    const json_t *e = entry(v1, "kubectl", "Apply");
    assert_string_equal(json_string_value(json_object_get(e, "time")), "2024-01-01T00:00:01Z");
    assert_null(json_object_get(e, "subresource"));
    assert_json(json_object_get(json_object_get(e, "fieldsV1"), "f:metadata"),
                "{\"f:labels\":{\"f:app\":{}}}");

    /* The same apply again changes nothing, not even the time. */
    json_t *same = apply_ok(v1, WEB1, op_of("kubectl", "2024-01-01T00:00:05Z"), &changed);
    assert_false(changed);
    assert_true(json_equal(same, v1));
    json_decref(same);

    /* kubectl scale: an Update through /scale takes .spec.replicas. */
    json_t *scaled = json_deep_copy(v1);
    json_object_set_new(json_object_get(scaled, "spec"), "replicas", json_integer(5));
    struct kcp_ssa_op sop = op_of("kubectl", "2024-01-01T00:00:02Z");
    sop.subresource = "scale";
    assert_int_equal(kcp_ssa_update(scaled, v1, false, &ssa_test_schema, &sop, &err), 0);
    assert_json(json_object_get(entry(scaled, "kubectl", "Update"), "fieldsV1"),
                "{\"f:spec\":{\"f:replicas\":{}}}");
    assert_string_equal(
        json_string_value(json_object_get(entry(scaled, "kubectl", "Update"), "subresource")),
        "scale");

    /* Applying another replicas conflicts with it. */
    json_t *cfg = J(WEB2), *out = NULL, *causes = NULL;
    struct kcp_ssa_op aop = op_of("kubectl", "2024-01-01T00:00:03Z");
    assert_int_equal(
        kcp_ssa_apply(&out, &changed, scaled, zero, cfg, &ssa_test_schema, &aop, &causes, &err),
        KCP_ECONFLICT);
    assert_null(out);
    assert_string_equal(err, "Apply failed with 1 conflict: conflict with \"kubectl\" with "
                             "subresource \"scale\" using apps/v1: .spec.replicas");
    assert_json(causes, "[{\"reason\":\"FieldManagerConflict\",\"message\":\"conflict with "
                        "\\\"kubectl\\\" with subresource \\\"scale\\\" using apps/v1\","
                        "\"field\":\".spec.replicas\"}]");
    json_decref(causes);
    free(err);
    err = NULL;

    /* force takes it: the scale entry, left empty, goes. */
    aop.force = true;
    json_t *v2 = apply_ok(scaled, WEB2, aop, &changed);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v2, "spec"), "replicas")),
                     3);
    assert_null(entry(v2, "kubectl", "Update"));
    assert_string_equal(env_names(v2, buf, sizeof(buf)), "MODE LEVEL EXTRA");

    /* A second applier naming the same value co-owns it without a conflict. */
    json_t *partial =
        apply_ok(v2,
                 "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":"
                 "{\"name\":\"web\"},\"spec\":{\"template\":{\"spec\":{\"containers\":"
                 "[{\"name\":\"app\",\"image\":\"web:1.1\"}]}}}}",
                 op_of("other", "2024-01-01T00:00:04Z"), &changed);
    assert_false(changed);
    assert_non_null(entry(partial, "other", "Apply"));
    assert_non_null(entry(partial, "kubectl", "Apply"));

    /* Fewer fields: what kubectl applied before and nobody owns now goes; the image stays
     * (other owns it), and so do fields nobody ever applied. */
    json_object_set_new(json_object_get(partial, "spec"), "paused", json_false());
    json_t *shrunk = apply_ok(partial,
                              "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                              "\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":3,"
                              "\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\","
                              "\"env\":[{\"name\":\"MODE\",\"value\":\"prod\"}]}]}}}}",
                              op_of("kubectl", "2024-01-01T00:00:06Z"), &changed);
    assert_true(changed);
    assert_string_equal(env_names(shrunk, buf, sizeof(buf)), "MODE");
    const json_t *spec = json_object_get(shrunk, "spec");
    assert_null(json_object_get(spec, "selector"));
    assert_null(json_object_get(json_object_get(shrunk, "metadata"), "labels"));
    assert_non_null(json_object_get(spec, "paused"));
    const json_t *cs =
        json_object_get(json_object_get(json_object_get(spec, "template"), "spec"), "containers");
    assert_int_equal(json_array_size(cs), 1); /* the sidecar was kubectl's alone */
    assert_string_equal(json_string_value(json_object_get(json_array_get(cs, 0), "image")),
                        "web:1.1");

    json_decref(shrunk);
    json_decref(partial);
    json_decref(v2);
    json_decref(cfg);
    json_decref(scaled);
    json_decref(v1);
    json_decref(zero);
}

static void test_apply_list_order(void **state)
{
    (void)state;
    bool changed;
    json_t *zero = J(ZERO);
    json_t *live = apply_ok(zero,
                            "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"},"
                            "{\"name\":\"b\"},{\"name\":\"c\"}]}}}}",
                            op_of("one", "2024-01-01T00:00:01Z"), &changed);
    /* structured-merge-diff's order: live items not applied keep their place, applied ones
     * follow the configuration's order. */
    json_t *out = apply_ok(live,
                           "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\"},"
                           "{\"name\":\"d\"},{\"name\":\"a\"}]}}}}",
                           op_of("two", "2024-01-01T00:00:02Z"), &changed);
    assert_json(
        json_object_get(
            json_object_get(json_object_get(json_object_get(out, "spec"), "template"), "spec"),
            "containers"),
        "[{\"name\":\"b\"},{\"name\":\"c\"},{\"name\":\"d\"},{\"name\":\"a\"}]");
    json_decref(out);
    json_decref(live);
    json_decref(zero);
}

static void test_apply_conflicts_and_errors(void **state)
{
    (void)state;
    bool changed;
    char *err = NULL;
    json_t *zero = J(ZERO), *out = NULL, *causes = NULL;
    json_t *live = apply_ok(zero, WEB1, op_of("kubectl", "2024-01-01T00:00:01Z"), &changed);
    /* Two conflicts with one manager: upstream's multi-line message. */
    json_t *cfg = J("{\"metadata\":{\"labels\":{\"app\":\"x\"}},\"spec\":{\"replicas\":9}}");
    struct kcp_ssa_op op = op_of("other", "2024-01-01T00:00:02Z");
    assert_int_equal(
        kcp_ssa_apply(&out, &changed, live, zero, cfg, &ssa_test_schema, &op, &causes, &err),
        KCP_ECONFLICT);
    assert_string_equal(err, "Apply failed with 2 conflicts: conflicts with \"kubectl\":\n"
                             "- .metadata.labels.app\n- .spec.replicas");
    assert_int_equal(json_array_size(causes), 2);
    free(err);
    json_decref(causes);
    json_decref(cfg);

    /* managedFields in the configuration, and a configuration that does not fit the schema. */
    cfg = J("{\"metadata\":{\"managedFields\":[]}}");
    assert_int_equal(
        kcp_ssa_apply(&out, &changed, live, zero, cfg, &ssa_test_schema, &op, &causes, &err),
        KCP_EBADREQUEST);
    assert_string_equal(err, "metadata.managedFields must be nil");
    free(err);
    json_decref(cfg);
    cfg = J("{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"a\"}]}"
            "}}}");
    assert_int_equal(
        kcp_ssa_apply(&out, &changed, live, zero, cfg, &ssa_test_schema, &op, &causes, &err),
        KCP_EBADREQUEST);
    assert_string_equal(err,
                        ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]");
    free(err);
    json_decref(cfg);

    /* Status is reset on the main resource: applying it owns nothing and conflicts with no one. */
    cfg = J("{\"status\":{\"replicas\":7}}");
    assert_int_equal(
        kcp_ssa_apply(&out, &changed, live, zero, cfg, &ssa_test_schema, &op, &causes, &err), 0);
    assert_null(entry(out, "other", "Apply"));
    json_decref(out);
    json_decref(cfg);

    /* The first apply to an object nobody tracked records its fields as before-first-apply. */
    json_t *untracked = J(CREATED);
    cfg = J("{\"spec\":{\"replicas\":4}}");
    assert_int_equal(
        kcp_ssa_apply(&out, &changed, untracked, zero, cfg, &ssa_test_schema, &op, &causes, &err),
        KCP_ECONFLICT);
    assert_string_equal(err, "Apply failed with 1 conflict: conflict with \"before-first-apply\" "
                             "using apps/v1: .spec.replicas");
    free(err);
    json_decref(causes);
    json_decref(cfg);
    json_decref(untracked);
    json_decref(live);
    json_decref(zero);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fieldset),
        cmocka_unit_test(test_fieldset_errors),
        cmocka_unit_test(test_update_create),
        cmocka_unit_test(test_update_moves_ownership),
        cmocka_unit_test(test_update_untracked_and_reset),
        cmocka_unit_test(test_update_cap),
        cmocka_unit_test(test_apply_lifecycle),
        cmocka_unit_test(test_apply_list_order),
        cmocka_unit_test(test_apply_conflicts_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
