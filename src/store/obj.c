/* Immutable refcounted object versions and the encodings they carry. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* Rejecting duplicate keys keeps one meaning per text: "metadata" twice is not stored. */
#define STORE_JSON_FLAGS JSON_REJECT_DUPLICATES

static int obj_new(struct kcp_obj **out, const char *key, size_t key_len, char *json,
                   size_t json_len, uint64_t mod_revision, uint64_t create_revision)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, json_len, STORE_JSON_FLAGS, &jerr);
    if (!doc || !json_is_object(doc) || !json_is_object(json_object_get(doc, "metadata"))) {
        json_decref(doc);
        free(json);
        return KCP_EINVALID;
    }
    struct kcp_obj *o = kcp_malloc(sizeof(*o) + key_len + 1);
    char *k = (char *)(o + 1);
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    o->key = k;
    o->key_len = key_len;
    o->json = json;
    o->json_len = json_len;
    o->mod_revision = mod_revision;
    o->create_revision = create_revision;
    o->doc = doc;
    o->refs = 1;
    o->enc = NULL;
    *out = o;
    return 0;
}

int store_obj_build(struct kcp_obj **out, const char *key, size_t key_len, const char *json,
                    size_t json_len, uint64_t mod_revision, uint64_t create_revision)
{
    struct kcp_buf b = KCP_BUF_INIT;
    int rc = store_json_set_rv(&b, json, json_len, mod_revision);
    if (rc != 0) {
        kcp_buf_free(&b);
        return rc;
    }
    size_t n = b.len;
    return obj_new(out, key, key_len, kcp_buf_detach(&b), n, mod_revision, create_revision);
}

int store_obj_load(struct kcp_obj **out, const char *key, size_t key_len, const char *json,
                   size_t json_len, uint64_t mod_revision, uint64_t create_revision)
{
    char *copy = kcp_malloc(json_len + 1);
    memcpy(copy, json, json_len);
    copy[json_len] = '\0';
    return obj_new(out, key, key_len, copy, json_len, mod_revision, create_revision);
}

struct kcp_obj *kcp_obj_ref(const struct kcp_obj *obj)
{
    /* Objects are immutable to readers; the count is the store's bookkeeping. */
    struct kcp_obj *o = (struct kcp_obj *)obj;
    if (o)
        o->refs++;
    return o;
}

void kcp_obj_unref(const struct kcp_obj *obj)
{
    struct kcp_obj *o = (struct kcp_obj *)obj;
    if (!o || --o->refs > 0)
        return;
    if (o->enc) {
        for (int i = 0; i < KCP_OBJ_ENC_MAX; i++)
            if (o->enc->slot[i].data && o->enc->slot[i].free_fn)
                o->enc->slot[i].free_fn(o->enc->slot[i].data);
        free(o->enc);
    }
    json_decref(o->doc);
    free((char *)o->json);
    free(o);
}

const void *kcp_obj_encoding(const struct kcp_obj *obj, enum kcp_obj_encoding slot, size_t *out_len)
{
    if (!obj->enc || (unsigned)slot >= KCP_OBJ_ENC_MAX || !obj->enc->slot[slot].data)
        return NULL;
    if (out_len)
        *out_len = obj->enc->slot[slot].len;
    return obj->enc->slot[slot].data;
}

const void *kcp_obj_set_encoding(const struct kcp_obj *obj, enum kcp_obj_encoding slot, void *data,
                                 size_t len, void (*free_fn)(void *), size_t *out_len)
{
    struct kcp_obj *o = (struct kcp_obj *)obj;
    if ((unsigned)slot >= KCP_OBJ_ENC_MAX) {
        if (free_fn)
            free_fn(data);
        return NULL;
    }
    if (!o->enc)
        o->enc = kcp_calloc(1, sizeof(*o->enc));
    if (o->enc->slot[slot].data) {
        if (free_fn)
            free_fn(data);
    } else {
        o->enc->slot[slot].data = data;
        o->enc->slot[slot].len = len;
        o->enc->slot[slot].free_fn = free_fn;
    }
    if (out_len)
        *out_len = o->enc->slot[slot].len;
    return o->enc->slot[slot].data;
}
