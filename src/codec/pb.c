/*
 * pb.c: Kubernetes protobuf bodies <-> trees, through the protobuf-c descriptors.
 *
 * Decoding unpacks with protobuf_c_message_unpack and walks the schema's fields (JSON order)
 * reading members by descriptor offset; encoding fills a message the same way and packs it.
 * Presence follows gogo-protobuf's Go structs (docs/SCHEMA.md): value fields are always on the
 * wire, pointers only when set, and a zero omitempty value is left out of JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

#define PB_MAX_DEPTH 100

static const uint8_t magic[4] = {0x6b, 0x38, 0x73, 0x00};

/* ---- envelope ------------------------------------------------------------------------------ */

static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Iterates the length-delimited fields of a message; skips others. */
static int rd_field(const uint8_t **p, const uint8_t *end, uint32_t *num, const uint8_t **val,
                    size_t *len)
{
    uint64_t key, n;
    if (rd_varint(p, end, &key))
        return -1;
    *num = (uint32_t)(key >> 3);
    switch (key & 7) {
    case 0:
        if (rd_varint(p, end, &n))
            return -1;
        *val = NULL, *len = 0;
        return 0;
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8, *val = NULL, *len = 0;
        return 0;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4, *val = NULL, *len = 0;
        return 0;
    case 2:
        if (rd_varint(p, end, &n) || n > (uint64_t)(end - *p))
            return -1;
        *val = *p, *len = (size_t)n;
        *p += n;
        return 0;
    default:
        return -1;
    }
}

int kcp_codec_envelope_decode(struct kcp_codec_envelope *out, const uint8_t *buf, size_t len,
                              struct kcp_codec_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len < 4 || memcmp(buf, magic, 4) != 0)
        return codec_fail(err, KCP_EBADREQUEST, "protobuf body without the k8s magic prefix");
    const uint8_t *p = buf + 4, *end = buf + len;
    const uint8_t *tm = NULL, *av = NULL, *kd = NULL;
    size_t tml = 0, avl = 0, kdl = 0;
    out->raw = (const uint8_t *)"";
    while (p < end) {
        uint32_t num;
        const uint8_t *v;
        size_t vl;
        if (rd_field(&p, end, &num, &v, &vl))
            return codec_fail(err, KCP_EBADREQUEST, "malformed protobuf envelope");
        if (num == 1 && v)
            tm = v, tml = vl;
        else if (num == 2 && v)
            out->raw = v, out->raw_len = vl;
    }
    if (tm) {
        const uint8_t *q = tm, *qend = tm + tml;
        while (q < qend) {
            uint32_t num;
            const uint8_t *v;
            size_t vl;
            if (rd_field(&q, qend, &num, &v, &vl))
                return codec_fail(err, KCP_EBADREQUEST, "malformed protobuf type meta");
            if (num == 1 && v)
                av = v, avl = vl;
            else if (num == 2 && v)
                kd = v, kdl = vl;
        }
    }
    out->storage_ = kcp_malloc(avl + kdl + 2);
    memcpy(out->storage_, av ? (const char *)av : "", avl);
    out->storage_[avl] = '\0';
    memcpy(out->storage_ + avl + 1, kd ? (const char *)kd : "", kdl);
    out->storage_[avl + 1 + kdl] = '\0';
    out->api_version = out->storage_;
    out->kind = out->storage_ + avl + 1;
    if (strlen(out->api_version) != avl || strlen(out->kind) != kdl) {
        kcp_codec_envelope_free(out);
        return codec_fail(err, KCP_EBADREQUEST, "NUL in protobuf type meta");
    }
    return 0;
}

void kcp_codec_envelope_free(struct kcp_codec_envelope *env)
{
    free(env->storage_);
    env->storage_ = NULL;
}

static void wr_varint(struct kcp_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    kcp_buf_append(b, tmp, n);
}

static void wr_bytes(struct kcp_buf *b, uint32_t num, const void *data, size_t len)
{
    wr_varint(b, (uint64_t)num << 3 | 2);
    wr_varint(b, len);
    kcp_buf_append(b, data, len);
}

void kcp_codec_envelope_encode(struct kcp_buf *out, const char *api_version, const char *kind,
                               const uint8_t *raw, size_t raw_len)
{
    struct kcp_buf tm = KCP_BUF_INIT;
    wr_bytes(&tm, 1, api_version, strlen(api_version));
    wr_bytes(&tm, 2, kind, strlen(kind));
    kcp_buf_append(out, magic, 4);
    wr_bytes(out, 1, tm.data, tm.len);
    wr_bytes(out, 2, raw, raw_len);
    wr_bytes(out, 3, "", 0);
    wr_bytes(out, 4, "", 0);
    kcp_buf_free(&tm);
}

/* ---- protobuf -> json ---------------------------------------------------------------------- */

struct dec {
    struct kcp_codec_err *err;
    int depth;
};

static int msg_to_json(json_t *obj, const ProtobufCMessage *pm,
                       const struct kcp_schema_message *m, struct dec *d);

static const struct kcp_schema_message *props_of(const struct kcp_schema_message *wrapper)
{
    char name[160];
    snprintf(name, sizeof(name), "%.*sJSONSchemaProps",
             (int)(strrchr(wrapper->name, '.') - wrapper->name + 1), wrapper->name);
    return kcp_schema_message_find(name);
}

static const ProtobufCFieldDescriptor *pb_field(const ProtobufCMessageDescriptor *desc,
                                                unsigned id)
{
    return protobuf_c_message_descriptor_get_field(desc, id);
}

/* Field `id` of a special message as a pointer to its member, or NULL when absent. */
static const void *member(const ProtobufCMessage *pm, unsigned id, bool *present)
{
    const ProtobufCFieldDescriptor *fd = pb_field(pm->descriptor, id);
    const char *base = (const char *)pm;
    *present = false;
    if (!fd)
        return NULL;
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        *present = *(const size_t *)(base + fd->quantifier_offset) > 0;
    } else if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        *present = *(const void *const *)(base + fd->offset) != NULL;
    } else {
        *present = *(const protobuf_c_boolean *)(base + fd->quantifier_offset);
    }
    return base + fd->offset;
}

static json_t *json_of_object_message(const ProtobufCMessage *pm,
                                      const struct kcp_schema_message *m, struct dec *d,
                                      int *rc)
{
    json_t *o = json_object();
    *rc = msg_to_json(o, pm, m, d);
    if (*rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *raw_json(const ProtobufCBinaryData *raw, struct dec *d, int *rc)
{
    if (raw->len == 0)
        return json_null();
    if (raw->len >= 4 && memcmp(raw->data, magic, 4) == 0) {
        json_t *o = NULL;
        *rc = kcp_codec_pb_decode_object(&o, raw->data, raw->len, d->err);
        return o;
    }
    json_error_t jerr;
    json_t *v = json_loadb((const char *)raw->data, raw->len, JSON_DECODE_ANY, &jerr);
    if (!v)
        *rc = codec_fail(d->err, KCP_EBADREQUEST, "embedded object is not json: %s", jerr.text);
    return v;
}

/* Converts one value; p points at the member storage (scalar, char *, binary, message *). */
static json_t *value_to_json(const struct kcp_schema_field *f, const ProtobufCFieldDescriptor *fd,
                             const void *p, struct dec *d, int *rc)
{
    const struct kcp_schema_message *fm = kcp_schema_field_message(f);
    const ProtobufCMessage *sub = fd->type == PROTOBUF_C_TYPE_MESSAGE
                                      ? *(const ProtobufCMessage *const *)p
                                      : NULL;
    bool has;
    char buf[64];
    switch (f->kind) {
    case KCP_SCHEMA_STRING: {
        const char *s = *(const char *const *)p;
        return json_stringn_nocheck(s ? s : "", s ? strlen(s) : 0);
    }
    case KCP_SCHEMA_BYTES: {
        const ProtobufCBinaryData *bd = p;
        char *s = codec_base64_encode(bd->data, bd->len);
        json_t *v = json_string(s);
        free(s);
        return v;
    }
    case KCP_SCHEMA_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case KCP_SCHEMA_INT32:
        return json_integer(*(const int32_t *)p);
    case KCP_SCHEMA_INT64:
        return json_integer(*(const int64_t *)p);
    case KCP_SCHEMA_DOUBLE:
        return json_real(*(const double *)p);
    case KCP_SCHEMA_MESSAGE:
        if (++d->depth > PB_MAX_DEPTH) {
            *rc = codec_fail(d->err, KCP_EBADREQUEST, "protobuf nesting too deep");
            return NULL;
        }
        {
            json_t *o = json_of_object_message(sub, fm, d, rc);
            d->depth--;
            return o;
        }
    case KCP_SCHEMA_TIME:
    case KCP_SCHEMA_MICROTIME: {
        const int64_t *secs = sub ? member(sub, 1, &has) : NULL;
        if (!sub || !has)
            return json_null(); /* the zero time */
        bool hn;
        const int32_t *nanos = member(sub, 2, &hn);
        if (f->kind == KCP_SCHEMA_TIME)
            kcp_codec_format_time(buf, *secs);
        else
            codec_format_microtime(buf, *secs, hn ? *nanos : 0);
        return json_string(buf);
    }
    case KCP_SCHEMA_DURATION: {
        const int64_t *ns = sub ? member(sub, 1, &has) : NULL;
        codec_format_duration(buf, sizeof(buf), ns && has ? *ns : 0);
        return json_string(buf);
    }
    case KCP_SCHEMA_QUANTITY: {
        const char *const *s = sub ? member(sub, 1, &has) : NULL;
        return json_string(s && has ? *s : "0");
    }
    case KCP_SCHEMA_INTORSTRING: {
        bool ht, hi, hs;
        const int64_t *type = sub ? member(sub, 1, &ht) : NULL;
        const int32_t *iv = sub ? member(sub, 2, &hi) : NULL;
        const char *const *sv = sub ? member(sub, 3, &hs) : NULL;
        if (type && ht && *type == 1)
            return json_string(hs ? *sv : "");
        return json_integer(iv && hi ? *iv : 0);
    }
    case KCP_SCHEMA_RAWJSON: {
        const ProtobufCBinaryData *raw = sub ? member(sub, 1, &has) : NULL;
        ProtobufCBinaryData empty = {0, NULL};
        return raw_json(raw && has ? raw : &empty, d, rc);
    }
    case KCP_SCHEMA_STRINGLIST: {
        json_t *arr = json_array();
        if (sub) {
            const ProtobufCFieldDescriptor *ifd = pb_field(sub->descriptor, 1);
            size_t n = *(const size_t *)((const char *)sub + ifd->quantifier_offset);
            char *const *items = *(char *const *const *)((const char *)sub + ifd->offset);
            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, json_stringn_nocheck(items[i], strlen(items[i])));
        }
        return arr;
    }
    case KCP_SCHEMA_SCHEMAORARRAY:
    case KCP_SCHEMA_SCHEMAORBOOL:
    case KCP_SCHEMA_SCHEMAORSTRINGARRAY: {
        const struct kcp_schema_message *props = props_of(fm);
        unsigned schema_id = f->kind == KCP_SCHEMA_SCHEMAORBOOL ? 2 : 1;
        const ProtobufCMessage *const *schema = sub ? member(sub, schema_id, &has) : NULL;
        if (schema && has) {
            if (++d->depth > PB_MAX_DEPTH) {
                *rc = codec_fail(d->err, KCP_EBADREQUEST, "protobuf nesting too deep");
                return NULL;
            }
            json_t *o = json_of_object_message(*schema, props, d, rc);
            d->depth--;
            return o;
        }
        if (f->kind == KCP_SCHEMA_SCHEMAORBOOL) {
            const protobuf_c_boolean *allows = sub ? member(sub, 1, &has) : NULL;
            return json_boolean(allows && has && *allows);
        }
        json_t *arr = json_array();
        if (sub) {
            const ProtobufCFieldDescriptor *afd = pb_field(sub->descriptor, 2);
            size_t n = *(const size_t *)((const char *)sub + afd->quantifier_offset);
            void *const *items = *(void *const *const *)((const char *)sub + afd->offset);
            for (size_t i = 0; i < n && *rc == 0; i++) {
                json_t *e;
                if (f->kind == KCP_SCHEMA_SCHEMAORARRAY)
                    e = json_of_object_message(items[i], props, d, rc);
                else
                    e = json_stringn_nocheck(items[i], strlen(items[i]));
                if (e)
                    json_array_append_new(arr, e);
            }
        }
        return arr;
    }
    }
    return json_null();
}

static bool scalar_is_zero(const struct kcp_schema_field *f, const void *p)
{
    switch (f->kind) {
    case KCP_SCHEMA_STRING: {
        const char *s = *(const char *const *)p;
        return !s || !*s;
    }
    case KCP_SCHEMA_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case KCP_SCHEMA_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case KCP_SCHEMA_INT32:
        return *(const int32_t *)p == 0;
    case KCP_SCHEMA_INT64:
        return *(const int64_t *)p == 0;
    case KCP_SCHEMA_DOUBLE:
        return *(const double *)p == 0;
    default:
        return false;
    }
}

static int field_to_json(json_t *obj, const ProtobufCMessage *pm,
                         const struct kcp_schema_field *f, const struct kcp_schema_message *m,
                         struct dec *d)
{
    const ProtobufCFieldDescriptor *fd = &m->desc->fields[f->pb_index];
    const char *base = (const char *)pm;
    int rc = 0;
    if (f->flags & KCP_SCHEMA_F_INLINE) {
        const ProtobufCMessage *sub = pm ? *(const ProtobufCMessage *const *)(base + fd->offset)
                                         : NULL;
        return msg_to_json(obj, sub, kcp_schema_field_message(f), d);
    }
    if (f->flags & (KCP_SCHEMA_F_REPEATED | KCP_SCHEMA_F_MAP)) {
        size_t n = pm ? *(const size_t *)(base + fd->quantifier_offset) : 0;
        if (n == 0)
            return 0;
        const char *arr = *(const char *const *)(base + fd->offset);
        size_t esz = fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE
                         ? sizeof(void *)
                     : fd->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
                     : fd->type == PROTOBUF_C_TYPE_BOOL  ? sizeof(protobuf_c_boolean)
                     : fd->type == PROTOBUF_C_TYPE_INT32 ? sizeof(int32_t)
                                                         : sizeof(int64_t);
        json_t *out = (f->flags & KCP_SCHEMA_F_MAP) ? json_object() : json_array();
        for (size_t i = 0; i < n && rc == 0; i++) {
            json_t *v;
            if (f->flags & KCP_SCHEMA_F_MAP) {
                const ProtobufCMessage *entry = ((const ProtobufCMessage *const *)arr)[i];
                const ProtobufCMessageDescriptor *ed = entry->descriptor;
                const char *key = *(const char *const *)((const char *)entry + ed->fields[0].offset);
                const ProtobufCFieldDescriptor *vfd = &ed->fields[1];
                const void *vp = (const char *)entry + vfd->offset;
                v = value_to_json(f, vfd, vp, d, &rc);
                if (v)
                    json_object_set_new_nocheck(out, key ? key : "", v);
            } else {
                v = value_to_json(f, fd, arr + i * esz, d, &rc);
                if (v)
                    json_array_append_new(out, v);
            }
        }
        if (rc == 0)
            json_object_set_new_nocheck(obj, f->json, out);
        else
            json_decref(out);
        return rc;
    }
    bool present = false;
    const void *p = pm ? base + fd->offset : NULL;
    if (pm) {
        if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE)
            present = *(const void *const *)p != NULL;
        else
            present = *(const protobuf_c_boolean *)(base + fd->quantifier_offset);
    }
    bool is_msg = fd->type == PROTOBUF_C_TYPE_MESSAGE;
    if (!present) {
        if (!(f->flags & KCP_SCHEMA_F_VALUE))
            return 0;
        /* A value field that was not on the wire: Go's zero value. */
        json_t *z;
        switch (f->kind) {
        case KCP_SCHEMA_STRING:
            z = json_string("");
            break;
        case KCP_SCHEMA_BOOL:
            z = json_false();
            break;
        case KCP_SCHEMA_INT32:
        case KCP_SCHEMA_INT64:
            z = json_integer(0);
            break;
        case KCP_SCHEMA_BYTES:
            z = json_string("");
            break;
        case KCP_SCHEMA_DOUBLE:
            z = json_real(0);
            break;
        case KCP_SCHEMA_MESSAGE:
            z = json_object();
            rc = msg_to_json(z, NULL, kcp_schema_field_message(f), d);
            break;
        default: {
            /* Special types are messages: convert "no message" to the type's zero. */
            static const ProtobufCMessage *const none = NULL;
            z = is_msg ? value_to_json(f, fd, &none, d, &rc) : json_null();
        }
        }
        if (z)
            json_object_set_new_nocheck(obj, f->json, z);
        return rc;
    }
    if (!is_msg && (f->flags & KCP_SCHEMA_F_OMITEMPTY) && scalar_is_zero(f, p))
        return 0;
    json_t *v = value_to_json(f, fd, p, d, &rc);
    if (v)
        json_object_set_new_nocheck(obj, f->json, v);
    return rc;
}

static int msg_to_json(json_t *obj, const ProtobufCMessage *pm,
                       const struct kcp_schema_message *m, struct dec *d)
{
    for (size_t i = 0; i < m->nfields; i++) {
        int rc = field_to_json(obj, pm, &m->fields[i], m, d);
        if (rc)
            return rc;
    }
    return 0;
}

int kcp_codec_pb_to_json(json_t **out, const struct kcp_schema_message *m, const uint8_t *raw,
                         size_t len, struct kcp_codec_err *err)
{
    struct dec d = {err, 0};
    ProtobufCMessage *pm = protobuf_c_message_unpack(m->desc, NULL, len, raw);
    if (!pm)
        return codec_fail(err, KCP_EBADREQUEST, "malformed protobuf %s", m->name);
    json_t *o = json_object();
    int rc = msg_to_json(o, pm, m, &d);
    protobuf_c_message_free_unpacked(pm, NULL);
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int split_api_version(const char *av, char *group, size_t gcap, const char **version)
{
    const char *slash = strchr(av, '/');
    if (!slash) {
        group[0] = '\0';
        *version = av;
        return 0;
    }
    if ((size_t)(slash - av) >= gcap)
        return -1;
    memcpy(group, av, (size_t)(slash - av));
    group[slash - av] = '\0';
    *version = slash + 1;
    return 0;
}

int kcp_codec_pb_decode_object(json_t **out, const uint8_t *body, size_t len,
                               struct kcp_codec_err *err)
{
    struct kcp_codec_envelope env;
    int rc = kcp_codec_envelope_decode(&env, body, len, err);
    if (rc)
        return rc;
    char group[256];
    const char *version;
    const struct kcp_schema_message *m = NULL;
    if (split_api_version(env.api_version, group, sizeof(group), &version) == 0)
        m = kcp_schema_message_by_gvk(group, version, env.kind);
    if (!m) {
        rc = codec_fail(err, KCP_EBADREQUEST, "no protobuf type for %s, Kind=%s",
                        env.api_version, env.kind);
        goto done;
    }
    struct dec d = {err, 0};
    ProtobufCMessage *pm = protobuf_c_message_unpack(m->desc, NULL, env.raw_len, env.raw);
    if (!pm) {
        rc = codec_fail(err, KCP_EBADREQUEST, "malformed protobuf %s", m->name);
        goto done;
    }
    json_t *o = json_object();
    if (m->flags & KCP_SCHEMA_M_TYPEMETA) {
        json_object_set_new(o, "kind", json_string(env.kind));
        json_object_set_new(o, "apiVersion", json_string(env.api_version));
    }
    rc = msg_to_json(o, pm, m, &d);
    protobuf_c_message_free_unpacked(pm, NULL);
    if (rc)
        json_decref(o);
    else
        *out = o;
done:
    kcp_codec_envelope_free(&env);
    return rc;
}

/* ---- json -> protobuf ---------------------------------------------------------------------- */

struct enc {
    struct kcp_codec_err *err;
    int depth;
};

static int fill_message(ProtobufCMessage **out, const json_t *obj,
                        const struct kcp_schema_message *m, struct enc *e);

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *pm = kcp_malloc(desc->sizeof_message);
    protobuf_c_message_init(desc, pm);
    return pm;
}

/* Sets a singular member of pm (descriptor field fd) from a C value. */
static void set_has(ProtobufCMessage *pm, const ProtobufCFieldDescriptor *fd)
{
    if (fd->label != PROTOBUF_C_LABEL_REPEATED && fd->type != PROTOBUF_C_TYPE_STRING &&
        fd->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)((char *)pm + fd->quantifier_offset) = 1;
}

static void set_string(ProtobufCMessage *pm, unsigned id, const char *s, size_t n)
{
    const ProtobufCFieldDescriptor *fd = pb_field(pm->descriptor, id);
    *(char **)((char *)pm + fd->offset) = kcp_strndup(s, n);
}

static int enc_fail(struct enc *e, const struct kcp_schema_field *f, const char *want)
{
    return codec_fail(e->err, KCP_EBADREQUEST, "field %s: expected %s", f->json, want);
}

/* Converts one JSON value into the storage at p (for messages: a ProtobufCMessage *). */
static int value_from_json(void *p, const ProtobufCFieldDescriptor *fd,
                           const struct kcp_schema_field *f, const json_t *v, struct enc *e)
{
    const struct kcp_schema_message *fm = kcp_schema_field_message(f);
    int rc = 0;
    switch (f->kind) {
    case KCP_SCHEMA_STRING:
        if (!json_is_string(v) && !json_is_null(v))
            return enc_fail(e, f, "a string");
        *(char **)p = kcp_strndup(json_is_string(v) ? json_string_value(v) : "",
                                  json_is_string(v) ? json_string_length(v) : 0);
        return 0;
    case KCP_SCHEMA_BYTES: {
        ProtobufCBinaryData *bd = p;
        if (!json_is_string(v) ||
            !codec_base64_decode(json_string_value(v), json_string_length(v), &bd->data,
                                 &bd->len))
            return enc_fail(e, f, "base64 data");
        return 0;
    }
    case KCP_SCHEMA_BOOL:
        if (!json_is_boolean(v))
            return enc_fail(e, f, "a boolean");
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case KCP_SCHEMA_INT32:
        if (!json_is_number(v))
            return enc_fail(e, f, "an integer");
        *(int32_t *)p = (int32_t)json_number_value(v);
        if (json_is_integer(v))
            *(int32_t *)p = (int32_t)json_integer_value(v);
        return 0;
    case KCP_SCHEMA_INT64:
        if (!json_is_number(v))
            return enc_fail(e, f, "an integer");
        *(int64_t *)p = json_is_integer(v) ? (int64_t)json_integer_value(v)
                                           : (int64_t)json_real_value(v);
        return 0;
    case KCP_SCHEMA_DOUBLE:
        if (!json_is_number(v))
            return enc_fail(e, f, "a number");
        *(double *)p = json_number_value(v);
        return 0;
    case KCP_SCHEMA_MESSAGE:
        if (!json_is_object(v))
            return enc_fail(e, f, "an object");
        if (++e->depth > PB_MAX_DEPTH)
            return codec_fail(e->err, KCP_EBADREQUEST, "object nesting too deep");
        rc = fill_message((ProtobufCMessage **)p, v, fm, e);
        e->depth--;
        return rc;
    default:
        break;
    }
    /* Special types: build the wrapper message. */
    ProtobufCMessage *sub = new_message(fm->desc);
    *(ProtobufCMessage **)p = sub;
    switch (f->kind) {
    case KCP_SCHEMA_TIME:
    case KCP_SCHEMA_MICROTIME: {
        if (json_is_null(v))
            return 0; /* the zero time: an empty message */
        int64_t s;
        int32_t ns;
        if (!json_is_string(v) || kcp_codec_parse_time(json_string_value(v), &s, &ns) != 0)
            return enc_fail(e, f, "an RFC 3339 time");
        if (f->kind == KCP_SCHEMA_TIME)
            ns = 0;
        else
            ns = ns / 1000 * 1000;
        const ProtobufCFieldDescriptor *sfd = pb_field(fm->desc, 1), *nfd = pb_field(fm->desc, 2);
        *(int64_t *)((char *)sub + sfd->offset) = s;
        set_has(sub, sfd);
        *(int32_t *)((char *)sub + nfd->offset) = ns;
        set_has(sub, nfd);
        return 0;
    }
    case KCP_SCHEMA_DURATION: {
        int64_t ns;
        if (!json_is_string(v) || codec_parse_duration(json_string_value(v), &ns) != 0)
            return enc_fail(e, f, "a duration");
        const ProtobufCFieldDescriptor *dfd = pb_field(fm->desc, 1);
        *(int64_t *)((char *)sub + dfd->offset) = ns;
        set_has(sub, dfd);
        return 0;
    }
    case KCP_SCHEMA_QUANTITY: {
        char buf[32];
        const char *s;
        size_t n;
        if (json_is_integer(v)) {
            n = (size_t)snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            s = buf;
        } else if (json_is_string(v)) {
            s = json_string_value(v), n = json_string_length(v);
        } else {
            return enc_fail(e, f, "a quantity");
        }
        set_string(sub, 1, s, n);
        return 0;
    }
    case KCP_SCHEMA_INTORSTRING: {
        const ProtobufCFieldDescriptor *tfd = pb_field(fm->desc, 1), *ifd = pb_field(fm->desc, 2);
        *(int64_t *)((char *)sub + tfd->offset) = json_is_string(v) ? 1 : 0;
        set_has(sub, tfd);
        *(int32_t *)((char *)sub + ifd->offset) =
            json_is_integer(v) ? (int32_t)json_integer_value(v) : 0;
        set_has(sub, ifd);
        if (json_is_string(v))
            set_string(sub, 3, json_string_value(v), json_string_length(v));
        else if (json_is_integer(v))
            set_string(sub, 3, "", 0);
        else
            return enc_fail(e, f, "an integer or a string");
        return 0;
    }
    case KCP_SCHEMA_RAWJSON: {
        if (json_is_null(v))
            return 0;
        struct kcp_buf b = KCP_BUF_INIT;
        kcp_codec_json_write(&b, v);
        const ProtobufCFieldDescriptor *rfd = pb_field(fm->desc, 1);
        ProtobufCBinaryData *bd = (ProtobufCBinaryData *)((char *)sub + rfd->offset);
        bd->len = b.len;
        bd->data = (uint8_t *)kcp_buf_detach(&b);
        set_has(sub, rfd);
        return 0;
    }
    case KCP_SCHEMA_STRINGLIST: {
        if (!json_is_array(v))
            return enc_fail(e, f, "an array of strings");
        const ProtobufCFieldDescriptor *ifd = pb_field(fm->desc, 1);
        size_t n = json_array_size(v);
        char **items = kcp_calloc(n ? n : 1, sizeof(char *));
        *(char ***)((char *)sub + ifd->offset) = items;
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(v, i);
            if (!json_is_string(s))
                return enc_fail(e, f, "an array of strings");
            items[i] = kcp_strndup(json_string_value(s), json_string_length(s));
            *(size_t *)((char *)sub + ifd->quantifier_offset) = i + 1;
        }
        return 0;
    }
    case KCP_SCHEMA_SCHEMAORARRAY:
    case KCP_SCHEMA_SCHEMAORBOOL:
    case KCP_SCHEMA_SCHEMAORSTRINGARRAY: {
        const struct kcp_schema_message *props = props_of(fm);
        if (json_is_object(v)) {
            const ProtobufCFieldDescriptor *sfd =
                pb_field(fm->desc, f->kind == KCP_SCHEMA_SCHEMAORBOOL ? 2 : 1);
            if (f->kind == KCP_SCHEMA_SCHEMAORBOOL) {
                const ProtobufCFieldDescriptor *afd = pb_field(fm->desc, 1);
                *(protobuf_c_boolean *)((char *)sub + afd->offset) = 1;
                set_has(sub, afd);
            }
            if (++e->depth > PB_MAX_DEPTH)
                return codec_fail(e->err, KCP_EBADREQUEST, "object nesting too deep");
            rc = fill_message((ProtobufCMessage **)((char *)sub + sfd->offset), v, props, e);
            e->depth--;
            return rc;
        }
        if (f->kind == KCP_SCHEMA_SCHEMAORBOOL) {
            if (!json_is_boolean(v))
                return enc_fail(e, f, "a boolean or a schema");
            const ProtobufCFieldDescriptor *afd = pb_field(fm->desc, 1);
            *(protobuf_c_boolean *)((char *)sub + afd->offset) = json_is_true(v);
            set_has(sub, afd);
            return 0;
        }
        if (!json_is_array(v))
            return enc_fail(e, f, "a schema or an array");
        const ProtobufCFieldDescriptor *afd = pb_field(fm->desc, 2);
        size_t n = json_array_size(v);
        void **items = kcp_calloc(n ? n : 1, sizeof(void *));
        *(void ***)((char *)sub + afd->offset) = items;
        for (size_t i = 0; i < n && rc == 0; i++) {
            json_t *x = json_array_get(v, i);
            if (f->kind == KCP_SCHEMA_SCHEMAORARRAY) {
                if (!json_is_object(x))
                    return enc_fail(e, f, "an array of schemas");
                rc = fill_message((ProtobufCMessage **)&items[i], x, props, e);
            } else {
                if (!json_is_string(x))
                    return enc_fail(e, f, "an array of strings");
                items[i] = kcp_strndup(json_string_value(x), json_string_length(x));
            }
            *(size_t *)((char *)sub + afd->quantifier_offset) = i + 1;
        }
        return rc;
    }
    default:
        return 0;
    }
}

static size_t elem_size(const ProtobufCFieldDescriptor *fd)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_INT64:
    default:
        return sizeof(int64_t);
    }
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int fill_field(ProtobufCMessage *pm, const struct kcp_schema_field *f,
                      const struct kcp_schema_message *m, const json_t *obj, struct enc *e)
{
    const ProtobufCFieldDescriptor *fd = &m->desc->fields[f->pb_index];
    char *base = (char *)pm;
    if (f->flags & KCP_SCHEMA_F_INLINE)
        return fill_message((ProtobufCMessage **)(base + fd->offset), obj,
                            kcp_schema_field_message(f), e);
    const json_t *v = json_object_get(obj, f->json);
    if (f->flags & KCP_SCHEMA_F_MAP) {
        if (!v || json_is_null(v))
            return 0;
        if (!json_is_object(v))
            return enc_fail(e, f, "an object");
        size_t n = json_object_size(v), i = 0;
        const char **keys = kcp_calloc(n ? n : 1, sizeof(char *));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof(char *), cmp_key); /* gogo writes map entries sorted by key */
        ProtobufCMessage **entries = kcp_calloc(n ? n : 1, sizeof(*entries));
        *(ProtobufCMessage ***)(base + fd->offset) = entries;
        const ProtobufCMessageDescriptor *ed = fd->descriptor;
        int rc = 0;
        for (i = 0; i < n && rc == 0; i++) {
            ProtobufCMessage *entry = new_message(ed);
            entries[i] = entry;
            *(size_t *)(base + fd->quantifier_offset) = i + 1;
            *(char **)((char *)entry + ed->fields[0].offset) = kcp_strdup(keys[i]);
            const ProtobufCFieldDescriptor *vfd = &ed->fields[1];
            json_t *val = json_object_get(v, keys[i]);
            rc = value_from_json((char *)entry + vfd->offset, vfd, f, val, e);
            set_has(entry, vfd);
        }
        free(keys);
        return rc;
    }
    if (f->flags & KCP_SCHEMA_F_REPEATED) {
        if (!v || json_is_null(v))
            return 0;
        if (!json_is_array(v))
            return enc_fail(e, f, "an array");
        size_t n = json_array_size(v), esz = elem_size(fd);
        char *arr = kcp_calloc(n ? n : 1, esz);
        *(char **)(base + fd->offset) = arr;
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = value_from_json(arr + i * esz, fd, f, json_array_get(v, i), e);
            *(size_t *)(base + fd->quantifier_offset) = i + 1;
        }
        return rc;
    }
    void *p = base + fd->offset;
    if (!v || json_is_null(v)) {
        /* gogo writes every non-pointer field; a missing one is its zero value. */
        if (!(f->flags & KCP_SCHEMA_F_VALUE))
            return 0;
        switch (f->kind) {
        case KCP_SCHEMA_STRING:
            *(char **)p = kcp_strdup("");
            return 0;
        case KCP_SCHEMA_MESSAGE: {
            json_t *empty = json_object();
            int rc = fill_message((ProtobufCMessage **)p, empty, kcp_schema_field_message(f), e);
            json_decref(empty);
            return rc;
        }
        case KCP_SCHEMA_TIME:
        case KCP_SCHEMA_MICROTIME:
            *(ProtobufCMessage **)p = new_message(kcp_schema_field_message(f)->desc);
            return 0;
        case KCP_SCHEMA_BOOL:
        case KCP_SCHEMA_INT32:
        case KCP_SCHEMA_INT64:
        case KCP_SCHEMA_DOUBLE:
            set_has(pm, fd);
            return 0;
        default:
            return 0;
        }
    }
    int rc = value_from_json(p, fd, f, v, e);
    set_has(pm, fd);
    return rc;
}

static int fill_message(ProtobufCMessage **out, const json_t *obj,
                        const struct kcp_schema_message *m, struct enc *e)
{
    ProtobufCMessage *pm = new_message(m->desc);
    *out = pm;
    for (size_t i = 0; i < m->nfields; i++) {
        int rc = fill_field(pm, &m->fields[i], m, obj, e);
        if (rc)
            return rc;
    }
    return 0;
}

int kcp_codec_json_to_pb(struct kcp_buf *out, const struct kcp_schema_message *m,
                         const json_t *obj, struct kcp_codec_err *err)
{
    struct enc e = {err, 0};
    ProtobufCMessage *pm = NULL;
    if (!json_is_object(obj))
        return codec_fail(err, KCP_EBADREQUEST, "expected a json object");
    int rc = fill_message(&pm, obj, m, &e);
    if (rc == 0) {
        size_t n = protobuf_c_message_get_packed_size(pm);
        kcp_buf_reserve(out, n + 1);
        protobuf_c_message_pack(pm, (uint8_t *)out->data + out->len);
        out->len += n;
        out->data[out->len] = '\0';
    }
    protobuf_c_message_free_unpacked(pm, NULL);
    return rc;
}

int kcp_codec_pb_encode_object(struct kcp_buf *out, const json_t *obj, struct kcp_codec_err *err)
{
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    char group[256];
    const char *version;
    if (!av || !kind || split_api_version(av, group, sizeof(group), &version) != 0)
        return codec_fail(err, KCP_EBADREQUEST, "object without apiVersion and kind");
    const struct kcp_schema_message *m = kcp_schema_message_by_gvk(group, version, kind);
    if (!m)
        return codec_fail(err, KCP_ENOTACCEPTABLE, "no protobuf type for %s, Kind=%s", av, kind);
    struct kcp_buf raw = KCP_BUF_INIT;
    int rc = kcp_codec_json_to_pb(&raw, m, obj, err);
    if (rc == 0)
        kcp_codec_envelope_encode(out, av, kind, (const uint8_t *)(raw.data ? raw.data : ""),
                                  raw.len);
    kcp_buf_free(&raw);
    return rc;
}
