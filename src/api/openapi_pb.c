/*
 * The OpenAPI v2 document in protobuf: the JSON document (a Swagger 2.0 tree) encoded as
 * gnostic's openapi.v2.Document, which kube-apiserver serves for
 * application/com.github.proto-openapi.spec.v2[@.]v1.0+protobuf (kube-openapi's handler
 * converts its JSON with gnostic's ParseDocument, then proto.Marshal). Field numbers are those
 * of gnostic's published openapiv2/OpenAPIv2.proto; like Go's marshaller this writes fields in
 * field-number order, omits proto3 defaults (empty strings, false, 0) and writes every
 * sub-message the JSON has, empty or not. Values gnostic keeps as `Any` (defaults, enums,
 * examples, x- extensions) carry their YAML text, as gnostic's do.
 * Only what a Swagger document can hold is read; other members are left out, as gnostic does.
 */
#include "openapi.h"

#include <string.h>

/* ---- wire format ---- */

static void tag(struct kcp_buf *b, unsigned field, unsigned wire)
{
    api_pb_varint(b, (uint64_t)field << 3 | wire);
}

static void put_bytes(struct kcp_buf *b, unsigned field, const void *data, size_t len)
{
    tag(b, field, 2);
    api_pb_varint(b, len);
    kcp_buf_append(b, data, len);
}

/* A sub-message built in msg (then reset): written even when empty, as a set field is. */
static void put_msg(struct kcp_buf *b, unsigned field, struct kcp_buf *msg)
{
    put_bytes(b, field, msg->data ? msg->data : "", msg->len);
    kcp_buf_free(msg);
}

/* proto3 scalars: written only when not the default. */
static void put_str(struct kcp_buf *b, unsigned field, const json_t *v)
{
    const char *s = json_string_value(v);
    if (s && *s)
        put_bytes(b, field, s, json_string_length(v));
}

static void put_bool(struct kcp_buf *b, unsigned field, const json_t *v)
{
    if (json_is_true(v)) {
        tag(b, field, 0);
        api_pb_varint(b, 1);
    }
}

static void put_int64(struct kcp_buf *b, unsigned field, const json_t *v)
{
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_number_value(v);
    if (n) {
        tag(b, field, 0);
        api_pb_varint(b, (uint64_t)n);
    }
}

static void put_double(struct kcp_buf *b, unsigned field, const json_t *v)
{
    double d = json_number_value(v);
    if (d == 0)
        return;
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(bits >> (8 * i));
    tag(b, field, 1);
    kcp_buf_append(b, le, 8);
}

static void put_strings(struct kcp_buf *b, unsigned field, const json_t *arr)
{
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s) {
        const char *v = json_string_value(s);
        if (v) /* a repeated string is written even when empty */
            put_bytes(b, field, v, json_string_length(s));
    }
}

/* ---- Any and vendor extensions ---- */

/* v as YAML text, the way gnostic keeps an Any (block style; "merge\n", "- a\n- b\n"). */
void api_openapi_yaml(struct kcp_buf *out, const json_t *v)
{
    /* The YAML writer lays out members of a mapping: wrap v in one, then take the wrapper off. */
    json_t *wrap = json_pack("{s:O}", "v", (json_t *)v);
    struct kcp_buf y = KCP_BUF_INIT;
    kcp_codec_yaml_write(&y, wrap);
    json_decref(wrap);
    const char *p = y.data + 2; /* "v:" */
    if (*p == ' ') {
        kcp_buf_puts(out, p + 1); /* a scalar or an empty container on the key's line */
    } else if (json_is_array(v)) {
        kcp_buf_puts(out, p + 1); /* sequences sit at their key's indentation */
    } else {
        /* A mapping, indented by two under its key: each line comes back two columns. */
        for (const char *line = p + 1; *line;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
            size_t skip = len >= 2 && line[0] == ' ' && line[1] == ' ' ? 2 : 0;
            kcp_buf_append(out, line + skip, len - skip);
            line += len;
        }
    }
    kcp_buf_free(&y);
}

/* Any{yaml = 2}. */
static void put_any(struct kcp_buf *b, unsigned field, const json_t *v)
{
    struct kcp_buf any = KCP_BUF_INIT, y = KCP_BUF_INIT;
    api_openapi_yaml(&y, v);
    put_bytes(&any, 2, y.data ? y.data : "", y.len);
    kcp_buf_free(&y);
    put_msg(b, field, &any);
}

static void put_anys(struct kcp_buf *b, unsigned field, const json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) put_any(b, field, v);
}

/* repeated NamedAny{name = 1, value = 2}: the members whose name starts with "x-". */
static void put_extensions(struct kcp_buf *b, unsigned field, const json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (strncmp(k, "x-", 2) != 0)
            continue;
        struct kcp_buf named = KCP_BUF_INIT;
        put_bytes(&named, 1, k, strlen(k));
        put_any(&named, 2, v);
        put_msg(b, field, &named);
    }
}

#define GET(obj, key) json_object_get(obj, key)

/* ---- Schema ---- */

static void schema(struct kcp_buf *out, const json_t *s);

static void put_schema(struct kcp_buf *b, unsigned field, const json_t *s)
{
    struct kcp_buf m = KCP_BUF_INIT;
    schema(&m, s);
    put_msg(b, field, &m);
}

static void external_docs(struct kcp_buf *b, unsigned field, const json_t *d)
{
    if (!json_is_object(d))
        return;
    struct kcp_buf m = KCP_BUF_INIT;
    put_str(&m, 1, GET(d, "description"));
    put_str(&m, 2, GET(d, "url"));
    put_extensions(&m, 3, d);
    put_msg(b, field, &m);
}

static void schema(struct kcp_buf *out, const json_t *s)
{
    put_str(out, 1, GET(s, "$ref"));
    put_str(out, 2, GET(s, "format"));
    put_str(out, 3, GET(s, "title"));
    put_str(out, 4, GET(s, "description"));
    if (GET(s, "default"))
        put_any(out, 5, GET(s, "default"));
    put_double(out, 6, GET(s, "multipleOf"));
    put_double(out, 7, GET(s, "maximum"));
    put_bool(out, 8, GET(s, "exclusiveMaximum"));
    put_double(out, 9, GET(s, "minimum"));
    put_bool(out, 10, GET(s, "exclusiveMinimum"));
    put_int64(out, 11, GET(s, "maxLength"));
    put_int64(out, 12, GET(s, "minLength"));
    put_str(out, 13, GET(s, "pattern"));
    put_int64(out, 14, GET(s, "maxItems"));
    put_int64(out, 15, GET(s, "minItems"));
    put_bool(out, 16, GET(s, "uniqueItems"));
    put_int64(out, 17, GET(s, "maxProperties"));
    put_int64(out, 18, GET(s, "minProperties"));
    put_strings(out, 19, GET(s, "required"));
    put_anys(out, 20, GET(s, "enum"));
    const json_t *ap = GET(s, "additionalProperties");
    if (json_is_object(ap) || json_is_boolean(ap)) {
        /* AdditionalPropertiesItem: oneof {Schema schema = 1; bool boolean = 2} (a oneof member
         * is written even when false). */
        struct kcp_buf m = KCP_BUF_INIT;
        if (json_is_object(ap)) {
            put_schema(&m, 1, ap);
        } else {
            tag(&m, 2, 0);
            api_pb_varint(&m, json_is_true(ap));
        }
        put_msg(out, 21, &m);
    }
    const json_t *type = GET(s, "type");
    if (json_is_string(type) || json_is_array(type)) {
        struct kcp_buf m = KCP_BUF_INIT; /* TypeItem{repeated string value = 1} */
        if (json_is_string(type))
            put_bytes(&m, 1, json_string_value(type), json_string_length(type));
        else
            put_strings(&m, 1, type);
        put_msg(out, 22, &m);
    }
    const json_t *items = GET(s, "items");
    if (json_is_object(items) || json_is_array(items)) {
        struct kcp_buf m = KCP_BUF_INIT; /* ItemsItem{repeated Schema schema = 1} */
        if (json_is_object(items)) {
            put_schema(&m, 1, items);
        } else {
            size_t i;
            json_t *it;
            json_array_foreach(items, i, it) put_schema(&m, 1, it);
        }
        put_msg(out, 23, &m);
    }
    size_t i;
    json_t *it;
    json_array_foreach(GET(s, "allOf"), i, it) put_schema(out, 24, it);
    const json_t *props = GET(s, "properties");
    if (json_is_object(props)) {
        struct kcp_buf m = KCP_BUF_INIT; /* Properties{repeated NamedSchema = 1} */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)props, k, v) {
            struct kcp_buf named = KCP_BUF_INIT;
            put_bytes(&named, 1, k, strlen(k));
            put_schema(&named, 2, v);
            put_msg(&m, 1, &named);
        }
        put_msg(out, 25, &m);
    }
    put_str(out, 26, GET(s, "discriminator"));
    put_bool(out, 27, GET(s, "readOnly"));
    const json_t *xml = GET(s, "xml");
    if (json_is_object(xml)) {
        struct kcp_buf m = KCP_BUF_INIT;
        put_str(&m, 1, GET(xml, "name"));
        put_str(&m, 2, GET(xml, "namespace"));
        put_str(&m, 3, GET(xml, "prefix"));
        put_bool(&m, 4, GET(xml, "attribute"));
        put_bool(&m, 5, GET(xml, "wrapped"));
        put_extensions(&m, 6, xml);
        put_msg(out, 28, &m);
    }
    external_docs(out, 29, GET(s, "externalDocs"));
    if (GET(s, "example"))
        put_any(out, 30, GET(s, "example"));
    put_extensions(out, 31, s);
}

/* ---- parameters ---- */

/* PrimitivesItems: the items of a non-body parameter. */
static void primitives(struct kcp_buf *out, const json_t *p)
{
    put_str(out, 1, GET(p, "type"));
    put_str(out, 2, GET(p, "format"));
    if (json_is_object(GET(p, "items"))) {
        struct kcp_buf m = KCP_BUF_INIT;
        primitives(&m, GET(p, "items"));
        put_msg(out, 3, &m);
    }
    put_str(out, 4, GET(p, "collectionFormat"));
    if (GET(p, "default"))
        put_any(out, 5, GET(p, "default"));
    put_double(out, 6, GET(p, "maximum"));
    put_bool(out, 7, GET(p, "exclusiveMaximum"));
    put_double(out, 8, GET(p, "minimum"));
    put_bool(out, 9, GET(p, "exclusiveMinimum"));
    put_int64(out, 10, GET(p, "maxLength"));
    put_int64(out, 11, GET(p, "minLength"));
    put_str(out, 12, GET(p, "pattern"));
    put_int64(out, 13, GET(p, "maxItems"));
    put_int64(out, 14, GET(p, "minItems"));
    put_bool(out, 15, GET(p, "uniqueItems"));
    put_anys(out, 16, GET(p, "enum"));
    put_double(out, 17, GET(p, "multipleOf"));
    put_extensions(out, 18, p);
}

/*
 * {Header,FormData,Query,Path}ParameterSubSchema. They share one layout, except that query
 * and formData parameters have allowEmptyValue as field 5, which moves every later field by
 * one (shift).
 */
static void non_body_sub(struct kcp_buf *out, const json_t *p, unsigned shift)
{
    put_bool(out, 1, GET(p, "required"));
    put_str(out, 2, GET(p, "in"));
    put_str(out, 3, GET(p, "description"));
    put_str(out, 4, GET(p, "name"));
    if (shift)
        put_bool(out, 5, GET(p, "allowEmptyValue"));
    put_str(out, 5 + shift, GET(p, "type"));
    put_str(out, 6 + shift, GET(p, "format"));
    if (json_is_object(GET(p, "items"))) {
        struct kcp_buf m = KCP_BUF_INIT;
        primitives(&m, GET(p, "items"));
        put_msg(out, 7 + shift, &m);
    }
    put_str(out, 8 + shift, GET(p, "collectionFormat"));
    if (GET(p, "default"))
        put_any(out, 9 + shift, GET(p, "default"));
    put_double(out, 10 + shift, GET(p, "maximum"));
    put_bool(out, 11 + shift, GET(p, "exclusiveMaximum"));
    put_double(out, 12 + shift, GET(p, "minimum"));
    put_bool(out, 13 + shift, GET(p, "exclusiveMinimum"));
    put_int64(out, 14 + shift, GET(p, "maxLength"));
    put_int64(out, 15 + shift, GET(p, "minLength"));
    put_str(out, 16 + shift, GET(p, "pattern"));
    put_int64(out, 17 + shift, GET(p, "maxItems"));
    put_int64(out, 18 + shift, GET(p, "minItems"));
    put_bool(out, 19 + shift, GET(p, "uniqueItems"));
    put_anys(out, 20 + shift, GET(p, "enum"));
    put_double(out, 21 + shift, GET(p, "multipleOf"));
    put_extensions(out, 22 + shift, p);
}

/* Parameter: oneof {BodyParameter body_parameter = 1; NonBodyParameter non_body_parameter = 2}. */
static void parameter(struct kcp_buf *out, const json_t *p)
{
    struct kcp_buf sub = KCP_BUF_INIT;
    const char *in = json_string_value(GET(p, "in")) ?: "";
    if (strcmp(in, "body") == 0) {
        put_str(&sub, 1, GET(p, "description"));
        put_str(&sub, 2, GET(p, "name"));
        put_str(&sub, 3, GET(p, "in"));
        put_bool(&sub, 4, GET(p, "required"));
        if (json_is_object(GET(p, "schema")))
            put_schema(&sub, 5, GET(p, "schema"));
        put_extensions(&sub, 6, p);
        put_msg(out, 1, &sub);
        return;
    }
    /* NonBodyParameter: oneof {header = 1, formData = 2, query = 3, path = 4}. */
    struct kcp_buf nb = KCP_BUF_INIT;
    unsigned which = !strcmp(in, "header") ? 1 : !strcmp(in, "formData") ? 2
                                             : !strcmp(in, "query")      ? 3
                                                                         : 4;
    non_body_sub(&sub, p, which == 2 || which == 3);
    put_msg(&nb, which, &sub);
    put_msg(out, 2, &nb);
}

/* JsonReference{_ref = 1, description = 2}. */
static void json_reference(struct kcp_buf *out, const json_t *r)
{
    put_str(out, 1, GET(r, "$ref"));
    put_str(out, 2, GET(r, "description"));
}

/* ParametersItem: oneof {Parameter parameter = 1; JsonReference json_reference = 2}. */
static void put_parameter(struct kcp_buf *b, unsigned field, const json_t *p)
{
    struct kcp_buf item = KCP_BUF_INIT, m = KCP_BUF_INIT;
    if (GET(p, "$ref")) {
        json_reference(&m, p);
        put_msg(&item, 2, &m);
    } else {
        parameter(&m, p);
        put_msg(&item, 1, &m);
    }
    put_msg(b, field, &item);
}

/* ---- operations and paths ---- */

static bool is_response_code(const char *k)
{
    if (strcmp(k, "default") == 0)
        return true;
    return strlen(k) == 3 && k[0] >= '0' && k[0] <= '9' && k[1] >= '0' && k[1] <= '9' &&
           k[2] >= '0' && k[2] <= '9';
}

/* Response{description = 1, schema = 2, headers = 3, examples = 4, vendor_extension = 5}. */
static void response(struct kcp_buf *out, const json_t *r)
{
    put_str(out, 1, GET(r, "description"));
    const json_t *s = GET(r, "schema");
    if (json_is_object(s)) {
        /* SchemaItem: oneof {Schema schema = 1; FileSchema file_schema = 2}. */
        struct kcp_buf item = KCP_BUF_INIT;
        const char *t = json_string_value(GET(s, "type"));
        if (t && strcmp(t, "file") == 0) {
            struct kcp_buf f = KCP_BUF_INIT;
            put_str(&f, 1, GET(s, "format"));
            put_str(&f, 2, GET(s, "title"));
            put_str(&f, 3, GET(s, "description"));
            if (GET(s, "default"))
                put_any(&f, 4, GET(s, "default"));
            put_strings(&f, 5, GET(s, "required"));
            put_str(&f, 6, GET(s, "type"));
            put_bool(&f, 7, GET(s, "readOnly"));
            external_docs(&f, 8, GET(s, "externalDocs"));
            if (GET(s, "example"))
                put_any(&f, 9, GET(s, "example"));
            put_extensions(&f, 10, s);
            put_msg(&item, 2, &f);
        } else {
            put_schema(&item, 1, s);
        }
        put_msg(out, 2, &item);
    }
    put_extensions(out, 5, r);
}

/* Responses{repeated NamedResponseValue response_code = 1, vendor_extension = 2}. */
static void responses(struct kcp_buf *out, const json_t *rs)
{
    const char *code;
    json_t *r;
    json_object_foreach((json_t *)rs, code, r) {
        if (!is_response_code(code))
            continue;
        /* NamedResponseValue{name, value: ResponseValue{oneof response = 1 | ref = 2}}. */
        struct kcp_buf named = KCP_BUF_INIT, value = KCP_BUF_INIT, m = KCP_BUF_INIT;
        put_bytes(&named, 1, code, strlen(code));
        if (GET(r, "$ref")) {
            json_reference(&m, r);
            put_msg(&value, 2, &m);
        } else {
            response(&m, r);
            put_msg(&value, 1, &m);
        }
        put_msg(&named, 2, &value);
        put_msg(out, 1, &named);
    }
    put_extensions(out, 2, rs);
}

/* SecurityRequirement{repeated NamedStringArray = 1}. */
static void put_security(struct kcp_buf *b, unsigned field, const json_t *reqs)
{
    size_t i;
    json_t *req;
    json_array_foreach(reqs, i, req) {
        struct kcp_buf m = KCP_BUF_INIT;
        const char *k;
        json_t *scopes;
        json_object_foreach(req, k, scopes) {
            struct kcp_buf named = KCP_BUF_INIT, arr = KCP_BUF_INIT;
            put_bytes(&named, 1, k, strlen(k));
            put_strings(&arr, 1, scopes);
            put_msg(&named, 2, &arr);
            put_msg(&m, 1, &named);
        }
        put_msg(b, field, &m);
    }
}

static void operation(struct kcp_buf *out, const json_t *op)
{
    put_strings(out, 1, GET(op, "tags"));
    put_str(out, 2, GET(op, "summary"));
    put_str(out, 3, GET(op, "description"));
    external_docs(out, 4, GET(op, "externalDocs"));
    put_str(out, 5, GET(op, "operationId"));
    put_strings(out, 6, GET(op, "produces"));
    put_strings(out, 7, GET(op, "consumes"));
    size_t i;
    json_t *p;
    json_array_foreach(GET(op, "parameters"), i, p) put_parameter(out, 8, p);
    if (json_is_object(GET(op, "responses"))) {
        struct kcp_buf m = KCP_BUF_INIT;
        responses(&m, GET(op, "responses"));
        put_msg(out, 9, &m);
    }
    put_strings(out, 10, GET(op, "schemes"));
    put_bool(out, 11, GET(op, "deprecated"));
    put_security(out, 12, GET(op, "security"));
    put_extensions(out, 13, op);
}

static void path_item(struct kcp_buf *out, const json_t *item)
{
    static const char *const verbs[] = {"get", "put", "post", "delete", "options", "head", "patch"};
    put_str(out, 1, GET(item, "$ref"));
    for (unsigned v = 0; v < 7; v++) {
        const json_t *op = GET(item, verbs[v]);
        if (!json_is_object(op))
            continue;
        struct kcp_buf m = KCP_BUF_INIT;
        operation(&m, op);
        put_msg(out, 2 + v, &m);
    }
    size_t i;
    json_t *p;
    json_array_foreach(GET(item, "parameters"), i, p) put_parameter(out, 9, p);
    put_extensions(out, 10, item);
}

/* ---- the document ---- */

static void security_definition(struct kcp_buf *out, const json_t *d)
{
    /* SecurityDefinitionsItem: oneof by type (and flow, for OAuth2). */
    const char *type = json_string_value(GET(d, "type")) ?: "";
    const char *flow = json_string_value(GET(d, "flow")) ?: "";
    struct kcp_buf m = KCP_BUF_INIT;
    unsigned which;
    if (!strcmp(type, "basic")) {
        which = 1;
        put_str(&m, 1, GET(d, "type"));
        put_str(&m, 2, GET(d, "description"));
        put_extensions(&m, 3, d);
    } else if (!strcmp(type, "apiKey")) {
        which = 2;
        put_str(&m, 1, GET(d, "type"));
        put_str(&m, 2, GET(d, "name"));
        put_str(&m, 3, GET(d, "in"));
        put_str(&m, 4, GET(d, "description"));
        put_extensions(&m, 5, d);
    } else {
        /* OAuth2: implicit = 3, password = 4, application = 5, accessCode = 6. */
        which = !strcmp(flow, "implicit") ? 3 : !strcmp(flow, "password") ? 4
                : !strcmp(flow, "application")                             ? 5
                                                                           : 6;
        put_str(&m, 1, GET(d, "type"));
        put_str(&m, 2, GET(d, "flow"));
        if (json_is_object(GET(d, "scopes"))) {
            struct kcp_buf scopes = KCP_BUF_INIT;
            const char *k;
            json_t *v;
            json_object_foreach(GET(d, "scopes"), k, v) {
                struct kcp_buf named = KCP_BUF_INIT;
                put_bytes(&named, 1, k, strlen(k));
                put_str(&named, 2, v);
                put_msg(&scopes, 1, &named);
            }
            put_msg(&m, 3, &scopes);
        }
        unsigned f = 4;
        if (which == 3 || which == 6)
            put_str(&m, f++, GET(d, "authorizationUrl"));
        if (which != 3)
            put_str(&m, f++, GET(d, "tokenUrl"));
        put_str(&m, f++, GET(d, "description"));
        put_extensions(&m, f, d);
    }
    put_msg(out, which, &m);
}

/* Named<T>{name = 1, value = 2} for each member of obj, through enc. */
static void put_named_map(struct kcp_buf *b, unsigned field, const json_t *obj,
                          void (*enc)(struct kcp_buf *out, const json_t *v))
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (strncmp(k, "x-", 2) == 0 && enc == path_item)
            continue; /* Paths keeps its extensions apart */
        struct kcp_buf named = KCP_BUF_INIT, value = KCP_BUF_INIT;
        put_bytes(&named, 1, k, strlen(k));
        enc(&value, v);
        put_msg(&named, 2, &value);
        put_msg(b, field, &named);
    }
}

int api_openapi_v2_protobuf(struct kcp_buf *out, const json_t *doc)
{
    if (!json_is_object(doc))
        return KCP_EINVAL;
    put_str(out, 1, GET(doc, "swagger"));
    const json_t *info = GET(doc, "info");
    if (json_is_object(info)) {
        struct kcp_buf m = KCP_BUF_INIT;
        put_str(&m, 1, GET(info, "title"));
        put_str(&m, 2, GET(info, "version"));
        put_str(&m, 3, GET(info, "description"));
        put_str(&m, 4, GET(info, "termsOfService"));
        const json_t *c = GET(info, "contact");
        if (json_is_object(c)) {
            struct kcp_buf cm = KCP_BUF_INIT;
            put_str(&cm, 1, GET(c, "name"));
            put_str(&cm, 2, GET(c, "url"));
            put_str(&cm, 3, GET(c, "email"));
            put_extensions(&cm, 4, c);
            put_msg(&m, 5, &cm);
        }
        const json_t *l = GET(info, "license");
        if (json_is_object(l)) {
            struct kcp_buf lm = KCP_BUF_INIT;
            put_str(&lm, 1, GET(l, "name"));
            put_str(&lm, 2, GET(l, "url"));
            put_extensions(&lm, 3, l);
            put_msg(&m, 6, &lm);
        }
        put_extensions(&m, 7, info);
        put_msg(out, 2, &m);
    }
    put_str(out, 3, GET(doc, "host"));
    put_str(out, 4, GET(doc, "basePath"));
    put_strings(out, 5, GET(doc, "schemes"));
    put_strings(out, 6, GET(doc, "consumes"));
    put_strings(out, 7, GET(doc, "produces"));
    const json_t *paths = GET(doc, "paths");
    if (json_is_object(paths)) {
        struct kcp_buf m = KCP_BUF_INIT; /* Paths{vendor_extension = 1, path = 2} */
        put_extensions(&m, 1, paths);
        put_named_map(&m, 2, paths, path_item);
        put_msg(out, 8, &m);
    }
    if (json_is_object(GET(doc, "definitions"))) {
        struct kcp_buf m = KCP_BUF_INIT; /* Definitions{repeated NamedSchema = 1} */
        put_named_map(&m, 1, GET(doc, "definitions"), schema);
        put_msg(out, 9, &m);
    }
    if (json_is_object(GET(doc, "parameters"))) {
        struct kcp_buf m = KCP_BUF_INIT; /* ParameterDefinitions{repeated NamedParameter = 1} */
        put_named_map(&m, 1, GET(doc, "parameters"), parameter);
        put_msg(out, 10, &m);
    }
    if (json_is_object(GET(doc, "responses"))) {
        struct kcp_buf m = KCP_BUF_INIT; /* ResponseDefinitions{repeated NamedResponse = 1} */
        put_named_map(&m, 1, GET(doc, "responses"), response);
        put_msg(out, 11, &m);
    }
    put_security(out, 12, GET(doc, "security"));
    if (json_is_object(GET(doc, "securityDefinitions"))) {
        struct kcp_buf m = KCP_BUF_INIT; /* SecurityDefinitions{repeated Named... = 1} */
        put_named_map(&m, 1, GET(doc, "securityDefinitions"), security_definition);
        put_msg(out, 13, &m);
    }
    size_t i;
    json_t *t;
    json_array_foreach(GET(doc, "tags"), i, t) {
        struct kcp_buf m = KCP_BUF_INIT;
        put_str(&m, 1, GET(t, "name"));
        put_str(&m, 2, GET(t, "description"));
        external_docs(&m, 3, GET(t, "externalDocs"));
        put_extensions(&m, 4, t);
        put_msg(out, 14, &m);
    }
    external_docs(out, 15, GET(doc, "externalDocs"));
    put_extensions(out, 16, doc);
    return 0;
}
