/* normalize.c: reorders a JSON object into upstream field order and canonical values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

struct norm {
    unsigned flags;
    json_t *unknown;
    struct kcp_codec_err *err;
    struct kcp_buf path;
};

static int norm_message(json_t **out, const json_t *in, const struct kcp_schema_message *m,
                        struct norm *n);

static int type_error(struct norm *n, const char *want)
{
    return codec_fail(n->err, KCP_EBADREQUEST, "%s: expected %s",
                      n->path.len ? n->path.data : ".", want);
}

static int norm_time(json_t **out, const json_t *v, bool micro, struct norm *n)
{
    int64_t s;
    int32_t ns;
    if (!json_is_string(v) || kcp_codec_parse_time(json_string_value(v), &s, &ns) != 0)
        return type_error(n, "an RFC 3339 time");
    char buf[40];
    if (micro)
        codec_format_microtime(buf, s, ns);
    else
        kcp_codec_format_time(buf, s);
    *out = json_string(buf);
    return 0;
}

/* One value of a field's kind (not a list or map). */
static int norm_value(json_t **out, const json_t *v, const struct kcp_schema_field *f,
                      struct norm *n)
{
    const struct kcp_schema_message *fm = kcp_schema_field_message(f);
    switch (f->kind) {
    case KCP_SCHEMA_STRING:
        if (!json_is_string(v))
            return type_error(n, "a string");
        break;
    case KCP_SCHEMA_BYTES: {
        uint8_t *data;
        size_t len;
        if (!json_is_string(v) ||
            !codec_base64_decode(json_string_value(v), json_string_length(v), &data, &len))
            return type_error(n, "base64 data");
        char *s = codec_base64_encode(data, len);
        *out = json_string(s);
        free(s);
        free(data);
        return 0;
    }
    case KCP_SCHEMA_BOOL:
        if (!json_is_boolean(v))
            return type_error(n, "a boolean");
        break;
    case KCP_SCHEMA_INT32:
    case KCP_SCHEMA_INT64: {
        json_int_t i;
        if (json_is_integer(v)) {
            i = json_integer_value(v);
        } else if (json_is_real(v) && json_real_value(v) == (double)(json_int_t)json_real_value(v)) {
            i = (json_int_t)json_real_value(v);
        } else {
            return type_error(n, "an integer");
        }
        if (f->kind == KCP_SCHEMA_INT32 && (i < INT32_MIN || i > INT32_MAX))
            return type_error(n, "a 32-bit integer");
        *out = json_integer(i);
        return 0;
    }
    case KCP_SCHEMA_DOUBLE:
        if (!json_is_number(v))
            return type_error(n, "a number");
        break;
    case KCP_SCHEMA_MESSAGE:
        if (!json_is_object(v))
            return type_error(n, "an object");
        return norm_message(out, v, fm, n);
    case KCP_SCHEMA_TIME:
        return norm_time(out, v, false, n);
    case KCP_SCHEMA_MICROTIME:
        return norm_time(out, v, true, n);
    case KCP_SCHEMA_DURATION: {
        int64_t ns;
        char buf[64];
        if (!json_is_string(v) || codec_parse_duration(json_string_value(v), &ns) != 0)
            return type_error(n, "a duration");
        codec_format_duration(buf, sizeof(buf), ns);
        *out = json_string(buf);
        return 0;
    }
    case KCP_SCHEMA_QUANTITY:
        if (json_is_integer(v)) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            *out = json_string(buf);
            return 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0)
            return type_error(n, "a quantity");
        break;
    case KCP_SCHEMA_INTORSTRING:
        if (json_is_integer(v)) {
            if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
                return type_error(n, "a 32-bit integer");
            break;
        }
        if (!json_is_string(v))
            return type_error(n, "an integer or a string");
        break;
    case KCP_SCHEMA_RAWJSON:
        *out = json_deep_copy(v);
        return 0;
    case KCP_SCHEMA_STRINGLIST:
        if (!json_is_array(v))
            return type_error(n, "an array of strings");
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)))
                return type_error(n, "an array of strings");
        break;
    case KCP_SCHEMA_SCHEMAORARRAY:
    case KCP_SCHEMA_SCHEMAORBOOL:
    case KCP_SCHEMA_SCHEMAORSTRINGARRAY: {
        /* The JSONSchemaProps message sits beside the wrapper in the same package. */
        char name[160];
        snprintf(name, sizeof(name), "%.*sJSONSchemaProps",
                 (int)(strrchr(fm->name, '.') - fm->name + 1), fm->name);
        const struct kcp_schema_message *props = kcp_schema_message_find(name);
        if (json_is_object(v))
            return norm_message(out, v, props, n);
        if (f->kind == KCP_SCHEMA_SCHEMAORBOOL) {
            if (!json_is_boolean(v))
                return type_error(n, "a boolean or a schema");
            break;
        }
        if (!json_is_array(v))
            return type_error(n, "a schema or an array");
        json_t *arr = json_array();
        size_t base = n->path.len;
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i), *ne = NULL;
            n->path.len = base;
            kcp_buf_printf(&n->path, "[%zu]", i);
            int rc;
            if (f->kind == KCP_SCHEMA_SCHEMAORARRAY)
                rc = json_is_object(e) ? norm_message(&ne, e, props, n)
                                       : type_error(n, "a schema");
            else
                rc = json_is_string(e) ? (ne = json_incref(e), 0) : type_error(n, "a string");
            if (rc) {
                json_decref(arr);
                return rc;
            }
            json_array_append_new(arr, ne);
        }
        n->path.len = base;
        n->path.data[base] = '\0';
        *out = arr;
        return 0;
    }
    }
    *out = json_deep_copy(v);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int norm_field(json_t **out, const json_t *v, const struct kcp_schema_field *f,
                      struct norm *n)
{
    size_t base = n->path.len;
    int rc = 0;
    if (f->flags & KCP_SCHEMA_F_REPEATED) {
        if (!json_is_array(v))
            return type_error(n, "an array");
        json_t *arr = json_array();
        for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
            json_t *e = json_array_get(v, i), *ne = NULL;
            n->path.len = base;
            kcp_buf_printf(&n->path, "[%zu]", i);
            if (json_is_null(e) && f->kind == KCP_SCHEMA_MESSAGE)
                ne = json_object();
            else if (!json_is_null(e) || f->kind != KCP_SCHEMA_STRING)
                rc = norm_value(&ne, e, f, n);
            else
                ne = json_string("");
            if (rc == 0)
                json_array_append_new(arr, ne);
        }
        if (rc)
            json_decref(arr);
        else
            *out = arr;
    } else if (f->flags & KCP_SCHEMA_F_MAP) {
        if (!json_is_object(v))
            return type_error(n, "an object");
        /* Go writes map keys sorted. */
        size_t cnt = json_object_size(v), i = 0;
        const char **keys = kcp_calloc(cnt ? cnt : 1, sizeof(*keys));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        qsort(keys, cnt, sizeof(*keys), cmp_str);
        json_t *obj = json_object();
        for (i = 0; i < cnt && rc == 0; i++) {
            json_t *e = json_object_get(v, keys[i]), *ne = NULL;
            n->path.len = base;
            kcp_buf_printf(&n->path, "[%s]", keys[i]);
            if (json_is_null(e))
                ne = json_null();
            else
                rc = norm_value(&ne, e, f, n);
            if (rc == 0)
                json_object_set_new(obj, keys[i], ne);
        }
        free(keys);
        if (rc)
            json_decref(obj);
        else
            *out = obj;
    } else {
        rc = norm_value(out, v, f, n);
    }
    n->path.len = base;
    if (n->path.data)
        n->path.data[base] = '\0';
    return rc;
}

static int norm_message(json_t **out, const json_t *in, const struct kcp_schema_message *m,
                        struct norm *n)
{
    json_t *o = json_object();
    size_t base = n->path.len;
    int rc = 0;
    if (m->flags & KCP_SCHEMA_M_TYPEMETA) {
        static const char *const tm[] = {"kind", "apiVersion"};
        for (int i = 0; i < 2; i++) {
            json_t *v = json_object_get(in, tm[i]);
            if (v && !json_is_null(v)) {
                if (!json_is_string(v)) {
                    json_decref(o);
                    return type_error(n, "a string");
                }
                json_object_set(o, tm[i], v);
            }
        }
    }
    size_t it = 0;
    const struct kcp_schema_field *f;
    while ((f = kcp_schema_field_next(m, &it, NULL)) != NULL) {
        json_t *v = json_object_get(in, f->json), *nv = NULL;
        if (!v || json_is_null(v))
            continue;
        n->path.len = base;
        kcp_buf_puts(&n->path, ".");
        kcp_buf_puts(&n->path, f->json);
        rc = norm_field(&nv, v, f, n);
        if (rc)
            break;
        json_object_set_new(o, f->json, nv);
    }
    if (rc == 0) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)in, k, v)
        {
            if (json_object_get(o, k))
                continue;
            const struct kcp_schema_field *uf, *inl;
            if (kcp_schema_field_find(&uf, &inl, m, k) == 0)
                continue; /* known but null */
            if ((m->flags & KCP_SCHEMA_M_TYPEMETA) &&
                (strcmp(k, "kind") == 0 || strcmp(k, "apiVersion") == 0))
                continue;
            n->path.len = base;
            kcp_buf_puts(&n->path, ".");
            kcp_buf_puts(&n->path, k);
            if (n->unknown)
                json_array_append_new(n->unknown, json_string(n->path.data));
            if (n->flags & KCP_CODEC_KEEP_UNKNOWN)
                json_object_set(o, k, v);
        }
    }
    n->path.len = base;
    if (n->path.data)
        n->path.data[base] = '\0';
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

int kcp_codec_normalize(json_t **out, const json_t *in, const struct kcp_schema_message *m,
                        unsigned flags, json_t *unknown, struct kcp_codec_err *err)
{
    struct norm n = {flags, unknown, err, KCP_BUF_INIT};
    if (!json_is_object(in))
        return codec_fail(err, KCP_EBADREQUEST, "expected a json object");
    kcp_buf_puts(&n.path, "");
    int rc = norm_message(out, in, m, &n);
    kcp_buf_free(&n.path);
    return rc;
}
