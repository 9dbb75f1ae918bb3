/*
 * Unit tests of the OpenAPI v2 document in protobuf (openapi_pb.c): a hand decoder of gnostic's
 * openapi.v2.Document reads our encoding back into JSON, which must equal the JSON document
 * it came from: every definition whole, every path's operations and parameters.
 */
#include "openapi.h"

#include <kcp/base.h>
#include <kcp/codec.h>
#include <kcp/schema.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* ---- a protobuf reader ---- */

struct field {
    unsigned num, wire;
    uint64_t v;         /* varint, or the 64 bits of a fixed64 */
    const uint8_t *p;   /* length-delimited: the bytes */
    size_t len;
};

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The next field of [*p, end); false at the end. Fails the test on malformed input. */
static bool next_field(const uint8_t **p, const uint8_t *end, struct field *f)
{
    if (*p >= end)
        return false;
    uint64_t key = 0;
    assert_true(read_varint(p, end, &key));
    memset(f, 0, sizeof(*f));
    f->num = (unsigned)(key >> 3);
    f->wire = (unsigned)(key & 7);
    switch (f->wire) {
    case 0:
        assert_true(read_varint(p, end, &f->v));
        break;
    case 1:
        assert_true(end - *p >= 8);
        for (int i = 0; i < 8; i++)
            f->v |= (uint64_t)(*p)[i] << (8 * i);
        *p += 8;
        break;
    case 2: {
        uint64_t len = 0;
        assert_true(read_varint(p, end, &len));
        assert_true((uint64_t)(end - *p) >= len);
        f->p = *p;
        f->len = (size_t)len;
        *p += len;
        break;
    }
    default:
        fail_msg("wire type %u", f->wire);
    }
    return true;
}

/* For each field f of a message (f names the cursor too, so loops can nest). */
#define EACH_FIELD(f, data, size)                                                                  \
    for (const uint8_t *f##_at = (data), *f##_end = (data) + (size);                               \
         next_field(&f##_at, f##_end, &(f));)

static json_t *str_of(const struct field *f)
{
    return json_stringn((const char *)f->p, f->len);
}

/* Any{yaml = 2} back to a value (go-yaml v2's reading, as kube-openapi's consumers do). */
static json_t *any_of(const struct field *f)
{
    struct field g;
    json_t *v = NULL;
    EACH_FIELD(g, f->p, f->len) {
        if (g.num != 2)
            continue;
        struct kcp_codec_err err;
        assert_int_equal(kcp_codec_yaml_parse(&v, (const char *)g.p, g.len, &err), 0);
    }
    assert_non_null(v);
    return v;
}

/* NamedAny{name = 1, value = 2} into obj. */
static void named_any(json_t *obj, const struct field *f)
{
    struct field g;
    char *name = NULL;
    json_t *v = NULL;
    EACH_FIELD(g, f->p, f->len) {
        if (g.num == 1)
            name = strndup((const char *)g.p, g.len);
        else if (g.num == 2)
            v = any_of(&g);
    }
    assert_non_null(name);
    json_object_set_new(obj, name, v);
    free(name);
}

/* ---- gnostic messages back to Swagger JSON ---- */

static json_t *schema_of(const uint8_t *p, size_t len);

static json_t *schema_field(const struct field *f)
{
    return schema_of(f->p, f->len);
}

static json_t *schema_of(const uint8_t *data, size_t size)
{
    json_t *s = json_object(), *required = NULL, *enums = NULL;
    struct field f, g, h;
    EACH_FIELD(f, data, size) {
        switch (f.num) {
        case 1: json_object_set_new(s, "$ref", str_of(&f)); break;
        case 2: json_object_set_new(s, "format", str_of(&f)); break;
        case 3: json_object_set_new(s, "title", str_of(&f)); break;
        case 4: json_object_set_new(s, "description", str_of(&f)); break;
        case 5: json_object_set_new(s, "default", any_of(&f)); break;
        case 11: json_object_set_new(s, "maxLength", json_integer((json_int_t)f.v)); break;
        case 12: json_object_set_new(s, "minLength", json_integer((json_int_t)f.v)); break;
        case 16: json_object_set_new(s, "uniqueItems", json_boolean(f.v)); break;
        case 19:
            if (!required)
                required = json_array();
            json_array_append_new(required, str_of(&f));
            break;
        case 20:
            if (!enums)
                enums = json_array();
            json_array_append_new(enums, any_of(&f));
            break;
        case 21: /* AdditionalPropertiesItem */
            EACH_FIELD(g, f.p, f.len) {
                if (g.num == 1)
                    json_object_set_new(s, "additionalProperties", schema_field(&g));
                else if (g.num == 2)
                    json_object_set_new(s, "additionalProperties", json_boolean(g.v));
            }
            break;
        case 22: { /* TypeItem */
            json_t *types = json_array();
            EACH_FIELD(g, f.p, f.len) json_array_append_new(types, str_of(&g));
            json_object_set_new(s, "type", json_array_size(types) == 1
                                               ? json_incref(json_array_get(types, 0))
                                               : json_incref(types));
            json_decref(types);
            break;
        }
        case 23: { /* ItemsItem */
            json_t *items = json_array();
            EACH_FIELD(g, f.p, f.len) json_array_append_new(items, schema_field(&g));
            json_object_set_new(s, "items", json_array_size(items) == 1
                                                ? json_incref(json_array_get(items, 0))
                                                : json_incref(items));
            json_decref(items);
            break;
        }
        case 25: { /* Properties{NamedSchema} */
            json_t *props = json_object();
            EACH_FIELD(g, f.p, f.len) {
                char *name = NULL;
                json_t *v = NULL;
                EACH_FIELD(h, g.p, g.len) {
                    if (h.num == 1)
                        name = strndup((const char *)h.p, h.len);
                    else if (h.num == 2)
                        v = schema_field(&h);
                }
                json_object_set_new(props, name, v);
                free(name);
            }
            json_object_set_new(s, "properties", props);
            break;
        }
        case 31: named_any(s, &f); break;
        default: fail_msg("Schema field %u not expected here", f.num);
        }
    }
    if (required)
        json_object_set_new(s, "required", required);
    if (enums)
        json_object_set_new(s, "enum", enums);
    return s;
}

/* A parameter back to {name, in, description, type, uniqueItems, required, schema}. */
static json_t *parameter_of(const struct field *item)
{
    json_t *out = json_object();
    struct field a, b, c, d;
    EACH_FIELD(a, item->p, item->len) { /* ParametersItem */
        assert_int_equal(a.num, 1);
        EACH_FIELD(b, a.p, a.len) { /* Parameter */
            if (b.num == 1) {        /* BodyParameter */
                EACH_FIELD(c, b.p, b.len) {
                    switch (c.num) {
                    case 1: json_object_set_new(out, "description", str_of(&c)); break;
                    case 2: json_object_set_new(out, "name", str_of(&c)); break;
                    case 3: json_object_set_new(out, "in", str_of(&c)); break;
                    case 4: json_object_set_new(out, "required", json_boolean(c.v)); break;
                    case 5: json_object_set_new(out, "schema", schema_field(&c)); break;
                    default: fail_msg("BodyParameter field %u", c.num);
                    }
                }
                continue;
            }
            EACH_FIELD(c, b.p, b.len) { /* NonBodyParameter: header 1, formData 2, query 3, path 4 */
                unsigned shift = c.num == 2 || c.num == 3;
                EACH_FIELD(d, c.p, c.len) {
                    if (d.num == 1)
                        json_object_set_new(out, "required", json_boolean(d.v));
                    else if (d.num == 2)
                        json_object_set_new(out, "in", str_of(&d));
                    else if (d.num == 3)
                        json_object_set_new(out, "description", str_of(&d));
                    else if (d.num == 4)
                        json_object_set_new(out, "name", str_of(&d));
                    else if (d.num == 5 + shift)
                        json_object_set_new(out, "type", str_of(&d));
                    else if (d.num == 19 + shift)
                        json_object_set_new(out, "uniqueItems", json_boolean(d.v));
                    else
                        fail_msg("parameter field %u", d.num);
                }
            }
        }
    }
    return out;
}

static json_t *strings_append(json_t *arr, const struct field *f)
{
    if (!arr)
        arr = json_array();
    json_array_append_new(arr, str_of(f));
    return arr;
}

static json_t *operation_of(const struct field *op)
{
    json_t *o = json_object(), *params = json_array(), *produces = NULL, *consumes = NULL,
           *schemes = NULL;
    struct field f, g, h, k;
    EACH_FIELD(f, op->p, op->len) {
        switch (f.num) {
        case 3: json_object_set_new(o, "description", str_of(&f)); break;
        case 5: json_object_set_new(o, "operationId", str_of(&f)); break;
        case 6: produces = strings_append(produces, &f); break;
        case 7: consumes = strings_append(consumes, &f); break;
        case 8: json_array_append_new(params, parameter_of(&f)); break;
        case 9: { /* Responses{NamedResponseValue} */
            json_t *rs = json_object();
            EACH_FIELD(g, f.p, f.len) {
                char *code = NULL;
                json_t *r = json_object();
                EACH_FIELD(h, g.p, g.len) {
                    if (h.num == 1) {
                        code = strndup((const char *)h.p, h.len);
                        continue;
                    }
                    EACH_FIELD(k, h.p, h.len) { /* ResponseValue.response = 1: Response */
                        assert_int_equal(k.num, 1);
                        struct field m, n;
                        EACH_FIELD(m, k.p, k.len) {
                            if (m.num == 1)
                                json_object_set_new(r, "description", str_of(&m));
                            else if (m.num == 2)
                                EACH_FIELD(n, m.p, m.len) json_object_set_new(r, "schema",
                                                                              schema_field(&n));
                        }
                    }
                }
                json_object_set_new(rs, code, r);
                free(code);
            }
            json_object_set_new(o, "responses", rs);
            break;
        }
        case 10: schemes = strings_append(schemes, &f); break;
        case 13: named_any(o, &f); break;
        default: fail_msg("Operation field %u", f.num);
        }
    }
    json_object_set_new(o, "parameters", params);
    if (produces)
        json_object_set_new(o, "produces", produces);
    if (consumes)
        json_object_set_new(o, "consumes", consumes);
    if (schemes)
        json_object_set_new(o, "schemes", schemes);
    return o;
}

/* The same members (jansson compares objects whatever their order). */
static bool same_members(const json_t *a, const json_t *b)
{
    return json_equal((json_t *)a, (json_t *)b);
}

/* ---- tests ---- */

static void expect_yaml(const char *json, const char *want)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    struct kcp_buf b = KCP_BUF_INIT;
    api_openapi_yaml(&b, v);
    assert_string_equal(b.data, want);
    kcp_buf_free(&b);
    json_decref(v);
}

static void test_yaml(void **state)
{
    (void)state;
    expect_yaml("\"merge\"", "merge\n");
    expect_yaml("\"\"", "\"\"\n");
    expect_yaml("\"true\"", "\"true\"\n");
    expect_yaml("true", "true\n");
    expect_yaml("7", "7\n");
    expect_yaml("[]", "[]\n");
    expect_yaml("[\"name\",\"protocol\"]", "- name\n- protocol\n");
    expect_yaml("[{\"group\":\"\",\"kind\":\"Pod\",\"version\":\"v1\"}]",
                "- group: \"\"\n  kind: Pod\n  version: v1\n");
    expect_yaml("{\"b\":1,\"a\":{\"c\":\"d\",\"e\":[\"f\"]}}", "a:\n  c: d\n  e:\n  - f\nb: 1\n");
}

static void test_document(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(kcp_schema_openapi_v2(&text, &len), 0);
    json_t *doc = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(doc);
    struct kcp_buf pb = KCP_BUF_INIT;
    assert_int_equal(api_openapi_v2_protobuf(&pb, doc), 0);
    assert_true(pb.len > 100000);

    size_t ndefs = 0, npaths = 0, nops = 0;
    bool saw_swagger = false, saw_info = false, saw_security = false, saw_secdefs = false;
    struct field f, g, h, k;
    EACH_FIELD(f, (const uint8_t *)pb.data, pb.len) {
        switch (f.num) {
        case 1:
            assert_int_equal(f.len, 3);
            assert_memory_equal(f.p, "2.0", 3);
            saw_swagger = true;
            break;
        case 2: { /* Info{title = 1, version = 2} */
            json_t *info = json_object();
            EACH_FIELD(g, f.p, f.len) json_object_set_new(info, g.num == 1 ? "title" : "version",
                                                          str_of(&g));
            assert_true(same_members(info, json_object_get(doc, "info")));
            json_decref(info);
            saw_info = true;
            break;
        }
        case 8: /* Paths{path = 2: NamedPathItem} */
            EACH_FIELD(g, f.p, f.len) {
                assert_int_equal(g.num, 2);
                char *name = NULL;
                json_t *item = json_object(), *params = json_array();
                static const char *const verbs[] = {"get", "put", "post", "delete",
                                                    "options", "head", "patch"};
                EACH_FIELD(h, g.p, g.len) {
                    if (h.num == 1) {
                        name = strndup((const char *)h.p, h.len);
                        continue;
                    }
                    EACH_FIELD(k, h.p, h.len) { /* PathItem */
                        if (k.num >= 2 && k.num <= 8) {
                            json_object_set_new(item, verbs[k.num - 2], operation_of(&k));
                            nops++;
                        } else if (k.num == 9) {
                            json_array_append_new(params, parameter_of(&k));
                        } else {
                            fail_msg("PathItem field %u", k.num);
                        }
                    }
                }
                if (json_array_size(params))
                    json_object_set(item, "parameters", params);
                json_decref(params);
                const json_t *want = json_object_get(json_object_get(doc, "paths"), name);
                assert_non_null(want);
                if (!same_members(item, want)) {
                    char *got = json_dumps(item, JSON_SORT_KEYS | JSON_COMPACT);
                    char *exp = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
                    fail_msg("path %s:\n got %.600s\nwant %.600s", name, got, exp);
                }
                json_decref(item);
                free(name);
                npaths++;
            }
            break;
        case 9: /* Definitions{NamedSchema} */
            EACH_FIELD(g, f.p, f.len) {
                char *name = NULL;
                json_t *s = NULL;
                EACH_FIELD(h, g.p, g.len) {
                    if (h.num == 1)
                        name = strndup((const char *)h.p, h.len);
                    else
                        s = schema_field(&h);
                }
                const json_t *want = json_object_get(json_object_get(doc, "definitions"), name);
                assert_non_null(want);
                if (!same_members(s, want)) {
                    char *got = json_dumps(s, JSON_SORT_KEYS | JSON_COMPACT);
                    char *exp = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
                    fail_msg("definition %s:\n got %.600s\nwant %.600s", name, got, exp);
                }
                /* Properties keep the document's order (gnostic's maps are ordered). */
                const json_t *pa = json_object_get(s, "properties");
                const json_t *pb_ = json_object_get(want, "properties");
                void *ia = json_object_iter((json_t *)pa), *ib = json_object_iter((json_t *)pb_);
                for (; ia && ib; ia = json_object_iter_next((json_t *)pa, ia),
                                 ib = json_object_iter_next((json_t *)pb_, ib))
                    assert_string_equal(json_object_iter_key(ia), json_object_iter_key(ib));
                assert_true(!ia && !ib);
                json_decref(s);
                free(name);
                ndefs++;
            }
            break;
        case 12: /* SecurityRequirement{NamedStringArray}: [{"BearerToken": []}] */
            saw_security = true;
            break;
        case 13: /* SecurityDefinitions: BearerToken, an apiKey */
            EACH_FIELD(g, f.p, f.len) EACH_FIELD(h, g.p, g.len) {
                if (h.num == 1) {
                    assert_int_equal(h.len, strlen("BearerToken"));
                    continue;
                }
                EACH_FIELD(k, h.p, h.len) assert_int_equal(k.num, 2); /* ApiKeySecurity */
                saw_secdefs = true;
            }
            break;
        default:
            fail_msg("Document field %u", f.num);
        }
    }
    assert_true(saw_swagger && saw_info && saw_security && saw_secdefs);
    assert_int_equal(ndefs, json_object_size(json_object_get(doc, "definitions")));
    assert_int_equal(npaths, json_object_size(json_object_get(doc, "paths")));
    assert_true(nops > npaths);
    kcp_buf_free(&pb);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml),
        cmocka_unit_test(test_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
