/* A hash index of scalar JSON values compared as Go's == compares decoded JSON. */
#include "patch_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Upstream finds list items with linear scans (quadratic, or worse inside sorts); an index keeps
 * a large list in a patch from stalling the single event loop, with the same answers.
 */
struct slot {
    const json_t *v; /* borrowed; NULL if free */
    size_t pos;
};

struct patch_index {
    struct slot *slots;
    size_t mask, used;
};

bool patch_scalar_equal(const json_t *a, const json_t *b)
{
    if (!patch_same_kind(a, b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL:
        return json_real_value(a) == json_real_value(b);
    case JSON_TRUE:
    case JSON_FALSE:
        return json_is_true(a) == json_is_true(b);
    case JSON_NULL:
        return true;
    default:
        return false; /* Go panics comparing maps or slices; callers reject them first */
    }
}

static uint64_t mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL; /* FNV-1a */
    }
    return h;
}

static uint64_t hash(const json_t *v)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    unsigned char tag = json_is_boolean(v) ? JSON_TRUE : (unsigned char)json_typeof(v);
    h = mix(h, &tag, 1);
    switch (json_typeof(v)) {
    case JSON_STRING:
        return mix(h, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        return mix(h, &i, sizeof(i));
    }
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d == 0)
            d = 0; /* -0 == 0 */
        return mix(h, &d, sizeof(d));
    }
    case JSON_TRUE:
    case JSON_FALSE: {
        unsigned char t = json_is_true(v);
        return mix(h, &t, 1);
    }
    default:
        return h;
    }
}

struct patch_index *patch_index_new(size_t n)
{
    struct patch_index *ix = kcp_malloc(sizeof(*ix));
    size_t cap = 8;
    while (cap < 2 * n + 1)
        cap *= 2;
    ix->slots = kcp_calloc(cap, sizeof(*ix->slots));
    ix->mask = cap - 1;
    ix->used = 0;
    return ix;
}

void patch_index_free(struct patch_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i <= ix->mask; i++)
        json_decref(PATCH_MUT(ix->slots[i].v));
    free(ix->slots);
    free(ix);
}

static bool is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* Grows the table when half full, so an index can take more entries than it was sized for. */
static void grow(struct patch_index *ix)
{
    size_t cap = ix->mask + 1;
    if (2 * (ix->used + 1) <= cap)
        return;
    struct slot *old = ix->slots;
    ix->slots = kcp_calloc(cap * 2, sizeof(*ix->slots));
    ix->mask = cap * 2 - 1;
    for (size_t i = 0; i < cap; i++) {
        if (!old[i].v)
            continue;
        size_t j = hash(old[i].v) & ix->mask;
        while (ix->slots[j].v)
            j = (j + 1) & ix->mask;
        ix->slots[j] = old[i];
    }
    free(old);
}

int patch_index_add(struct patch_index *ix, const json_t *v, size_t pos)
{
    if (!is_scalar(v))
        return -1;
    size_t j = hash(v) & ix->mask;
    while (ix->slots[j].v) {
        if (patch_scalar_equal(ix->slots[j].v, v))
            return 0;
        j = (j + 1) & ix->mask;
    }
    /* a reference: merging may replace the node in the list it came from */
    ix->slots[j].v = json_incref(PATCH_MUT(v));
    ix->slots[j].pos = pos;
    ix->used++;
    grow(ix);
    return 1;
}

long patch_index_find(const struct patch_index *ix, const json_t *v)
{
    if (!v || !is_scalar(v))
        return -1;
    size_t j = hash(v) & ix->mask;
    while (ix->slots[j].v) {
        if (patch_scalar_equal(ix->slots[j].v, v))
            return (long)ix->slots[j].pos;
        j = (j + 1) & ix->mask;
    }
    return -1;
}
