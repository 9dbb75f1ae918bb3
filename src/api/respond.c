/* Responses: Status bodies in upstream's words, objects in the negotiated encoding, warnings. */
#include "api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *api_meta_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

const char *api_group_version(const struct kcp_schema_resource *rsrc, char *buf, size_t cap)
{
    if (!rsrc->group[0])
        snprintf(buf, cap, "%s", rsrc->version);
    else
        snprintf(buf, cap, "%s/%s", rsrc->group, rsrc->version);
    return buf;
}

static void respond_status(struct api_req *r, int code, json_t *status)
{
    struct kcp_buf b = KCP_BUF_INIT;
    struct kcp_codec_err err;
    /* A client that prefers protobuf gets its Status in protobuf (WIRE.md §5). */
    if (r->media.format == API_FORMAT_PROTOBUF && kcp_codec_pb_encode_object(&b, status, &err) == 0) {
        json_decref(status);
        api_respond_json_text(r, code, "application/vnd.kubernetes.protobuf", b.data, b.len);
        kcp_buf_free(&b);
        return;
    }
    kcp_buf_reset(&b);
    bool yaml = r->media.format == API_FORMAT_YAML;
    if (yaml)
        kcp_codec_yaml_write(&b, status);
    else
        kcp_codec_json_write(&b, status);
    json_decref(status);
    api_respond_json_text(r, code, yaml ? "application/yaml" : "application/json", b.data, b.len);
    kcp_buf_free(&b);
}

void api_fail(struct api_req *r, int err, const char *name, json_t *causes, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->gone || !r->res) {
        json_decref(causes);
        api_req_finish(r);
        return;
    }
    int code = kcp_error_http(err);
    json_t *st = json_object();
    json_object_set_new(st, "kind", json_string("Status"));
    json_object_set_new(st, "apiVersion", json_string("v1"));
    json_object_set_new(st, "metadata", json_object());
    json_object_set_new(st, "status", json_string("Failure"));
    json_object_set_new(st, "message", json_string(msg));
    json_object_set_new(st, "reason", json_string(kcp_error_reason(err)));
    if (name || causes || err == KCP_ETOOMANY || err == KCP_ETIMEOUT) {
        json_t *d = json_object();
        if (name) {
            json_object_set_new(d, "name", json_string(name));
            if (r->rsrc) {
                json_object_set_new(d, "group", json_string(r->rsrc->group));
                /* Invalid names the Kind; the other reasons the plural resource. */
                json_object_set_new(d, "kind", json_string(err == KCP_EINVALID ? r->rsrc->kind
                                                                                : r->rsrc->resource));
            }
        }
        if (causes)
            json_object_set_new(d, "causes", causes);
        if (err == KCP_ETOOMANY || err == KCP_ETIMEOUT)
            json_object_set_new(d, "retryAfterSeconds", json_integer(1));
        json_object_set_new(st, "details", d);
    }
    json_object_set_new(st, "code", json_integer(code));
    if (err == KCP_ETOOMANY)
        kcp_http_set_header(r->res, "Retry-After", "1");
    respond_status(r, code, st);
}

void api_fail_options(struct api_req *r, const char *field, const char *value, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "Unsupported value: \"%s\": %s", value, why);
    api_fail_option(r, field, "FieldValueNotSupported", msg);
}

void api_fail_option(struct api_req *r, const char *field, const char *reason, const char *msg)
{
    const char *kind = r->verb == API_VERB_UPDATE ? "UpdateOptions"
                       : r->verb == API_VERB_PATCH ? "PatchOptions"
                       : r->verb == API_VERB_DELETE ? "DeleteOptions"
                                                    : "CreateOptions";
    json_t *st = json_object();
    json_object_set_new(st, "kind", json_string("Status"));
    json_object_set_new(st, "apiVersion", json_string("v1"));
    json_object_set_new(st, "metadata", json_object());
    json_object_set_new(st, "status", json_string("Failure"));
    char *text = kcp_sprintf("%s.meta.k8s.io \"\" is invalid: %s: %s", kind, field, msg);
    json_object_set_new(st, "message", json_string(text));
    free(text);
    json_object_set_new(st, "reason", json_string("Invalid"));
    json_object_set_new(st, "details",
                        json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "group", "meta.k8s.io",
                                  "kind", kind, "causes", "reason", reason,
                                  "message", msg, "field", field));
    json_object_set_new(st, "code", json_integer(422));
    if (r->gone || !r->res) {
        json_decref(st);
        api_req_finish(r);
        return;
    }
    respond_status(r, 422, st);
}

void api_fail_object(struct api_req *r, int err, const char *name)
{
    const char *res = r->rsrc ? r->rsrc->resource : "";
    char qualified[256];
    if (r->rsrc && r->rsrc->group[0])
        snprintf(qualified, sizeof(qualified), "%s.%s", res, r->rsrc->group);
    else
        snprintf(qualified, sizeof(qualified), "%s", res);
    switch (err) {
    case KCP_ENOTFOUND:
        return api_fail(r, err, name, NULL, "%s \"%s\" not found", qualified, name);
    case KCP_EEXIST:
        return api_fail(r, err, name, NULL, "%s \"%s\" already exists", qualified, name);
    case KCP_ECONFLICT:
        return api_fail(r, err, name, NULL,
                        "Operation cannot be fulfilled on %s \"%s\": the object has been "
                        "modified; please apply your changes to the latest version and try again",
                        qualified, name);
    default:
        return api_fail(r, err, name, NULL, "%s \"%s\": %s", qualified, name,
                        kcp_error_message(err));
    }
}

void api_respond_success(struct api_req *r, const char *name, const char *uid)
{
    json_t *st = json_object();
    json_object_set_new(st, "kind", json_string("Status"));
    json_object_set_new(st, "apiVersion", json_string("v1"));
    json_object_set_new(st, "metadata", json_object());
    json_object_set_new(st, "status", json_string("Success"));
    json_t *d = json_object();
    json_object_set_new(d, "name", json_string(name));
    json_object_set_new(d, "group", json_string(r->rsrc->group));
    json_object_set_new(d, "kind", json_string(r->rsrc->resource));
    if (uid)
        json_object_set_new(d, "uid", json_string(uid));
    json_object_set_new(st, "details", d);
    respond_status(r, 200, st);
}

static void send_now(struct api_req *r, int code, const char *content_type, const char *body,
                     size_t len)
{
    api_emit_warnings(r);
    kcp_http_respond(r->res, code, content_type, body, len);
    api_req_finish(r);
}

static void confirm_on_done(void *data, int status)
{
    struct api_req *r = data;
    r->in_store = false;
    r->unconfirmed = false;
    if (r->gone || !r->res) {
        api_req_finish(r);
        return;
    }
    if (status != 0) {
        kcp_buf_reset(&r->parked);
        return api_fail(r, status, NULL, NULL,
                        status == KCP_EUNAVAILABLE
                            ? "the cluster has no leader: cannot answer consistently"
                            : "timed out waiting for the cluster to confirm the answer");
    }
    send_now(r, r->parked_code, r->parked_type, r->parked.data, r->parked.len);
}

/*
 * Every response goes out here. One to a write that read local state the leader did not confirm
 * (api_req.unconfirmed) and whose own entry was never applied is held until the full barrier
 * confirms that this server still leads: were it deposed, the state it read could miss writes
 * acknowledged by its successor, and a 404 or a failed precondition read from it would be wrong.
 * (Answers taken from an applied entry need no such round: the entry committed after every
 * write acknowledged before it.)
 */
static void respond_send(struct api_req *r, int code, const char *content_type, const char *body,
                         size_t len)
{
    if (r->gone || !r->res) {
        api_req_finish(r);
        return;
    }
    if (r->unconfirmed && !r->in_store && r->api->barrier) {
        r->parked_code = code;
        r->parked_type = content_type;
        kcp_buf_reset(&r->parked);
        kcp_buf_append(&r->parked, body, len);
        r->in_store = true; /* keeps r alive if the client leaves meanwhile */
        r->api->barrier(r->api->barrier_data, confirm_on_done, r);
        return;
    }
    send_now(r, code, content_type, body, len);
}

void api_respond_json_text(struct api_req *r, int code, const char *content_type,
                           const char *json, size_t len)
{
    respond_send(r, code, content_type, json, len);
}

static void respond_table(struct api_req *r, int code, const json_t *obj)
{
    json_t *t = api_table_new(r->rsrc, true);
    const char *include = api_query(r, "includeObject");
    api_table_add_row(t, r->rsrc, obj, include ? include : "Metadata",
                      kcp_clock_wall_s(r->api->loop->clock));
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_codec_json_write(&b, t);
    json_decref(t);
    api_respond_json_text(r, code, "application/json", b.data, b.len);
    kcp_buf_free(&b);
}

json_t *api_partial_of(const json_t *obj)
{
    json_t *p = json_object();
    json_object_set_new(p, "kind", json_string("PartialObjectMetadata"));
    json_object_set_new(p, "apiVersion", json_string("meta.k8s.io/v1"));
    json_object_set(p, "metadata", json_object_get(obj, "metadata"));
    return p;
}

void api_respond_object(struct api_req *r, int code, const json_t *obj)
{
    if (r->media.as == API_AS_TABLE && r->rsrc && !r->sub)
        return respond_table(r, code, obj);
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (r->media.as == API_AS_PARTIAL && kind && strcmp(kind, "Status") != 0 &&
        strcmp(kind, "PartialObjectMetadataList") != 0) {
        json_t *p = api_partial_of(obj);
        r->media.as = API_AS_OBJECT;
        api_respond_object(r, code, p);
        json_decref(p);
        return;
    }
    struct kcp_buf b = KCP_BUF_INIT;
    const char *ct = "application/json";
    if (r->media.format == API_FORMAT_PROTOBUF) {
        struct kcp_codec_err err;
        if (kcp_codec_pb_encode_object(&b, obj, &err) == 0) {
            ct = "application/vnd.kubernetes.protobuf";
        } else {
            /* Types without a protobuf form are answered in JSON, which kubectl accepts. */
            kcp_buf_reset(&b);
            kcp_codec_json_write(&b, obj);
        }
    } else if (r->media.format == API_FORMAT_YAML) {
        kcp_codec_yaml_write(&b, obj);
        ct = "application/yaml";
    } else {
        kcp_codec_json_write(&b, obj);
    }
    respond_send(r, code, ct, b.data, b.len);
    kcp_buf_free(&b);
}

void api_respond_stored(struct api_req *r, int code, const struct kcp_obj *obj)
{
    if (r->media.format == API_FORMAT_JSON && r->media.as == API_AS_OBJECT) {
        /* The stored text is already upstream's JSON: serve it as it is, shared. */
        return api_respond_json_text(r, code, "application/json", obj->json, obj->json_len);
    }
    api_respond_object(r, code, obj->doc);
}

void api_emit_warnings(struct api_req *r)
{
    size_t i;
    json_t *w;
    if (!r->warnings || !r->res)
        return;
    json_array_foreach(r->warnings, i, w) {
        struct kcp_buf b = KCP_BUF_INIT;
        kcp_buf_puts(&b, "299 - ");
        kcp_buf_json_string(&b, json_string_value(w));
        kcp_http_set_header(r->res, "Warning", b.data);
        kcp_buf_free(&b);
    }
}
