/* RFC 6902 JSON patch as upstream applies it (evanphx/json-patch v4, apiserver's patch handler). */
#include "patch_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Nodes the nesting check of deeper moves may visit per patch, so moves cannot stall the loop. */
#define MOVE_CHECK_BUDGET 10000000L

struct jp {
    json_t *doc;      /* owned, modified in place */
    size_t copied;    /* JSON bytes added by "copy" so far */
    long move_budget; /* see MOVE_CHECK_BUDGET */
    char **out_err;
};

/* Go's name for the JSON kind in json.UnmarshalTypeError messages. */
static const char *go_json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    default:
        return "bool";
    }
}

/* op[name] as a string: 0 and *out, or 1 and *out_err_text (upstream's wording, caller frees). */
static int op_string(const json_t *op, const char *name, const char *missing, const char **out,
                     char **err)
{
    const json_t *v = json_object_get(op, name);
    if (!v || json_is_null(v)) {
        *err = kcp_strdup(missing);
        return 1;
    }
    if (!json_is_string(v)) {
        *err =
            kcp_sprintf("json: cannot unmarshal %s into Go value of type string", go_json_kind(v));
        return 1;
    }
    *out = json_string_value(v);
    return 0;
}

#define MISSING_PATH "operation missing path field: missing value"
#define MISSING_FROM "operation, missing from field: missing value"

/* Fails with KCP_EINVALID: the formatted prefix, then cause (a message this takes over). */
static int fail_with(struct jp *jp, char *cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_with(struct jp *jp, char *cause, const char *fmt, ...)
{
    struct kcp_buf b = KCP_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    kcp_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    kcp_buf_puts(&b, cause);
    free(cause);
    int rc = patch_fail(jp->out_err, KCP_EINVALID, "%s", b.data);
    kcp_buf_free(&b);
    return rc;
}

/* patch_depth that also spends one unit of *budget per node it visits. */
static int depth_budgeted(const json_t *v, int limit, long *budget)
{
    int max = 0;
    if (--*budget < 0 || (!json_is_object(v) && !json_is_array(v)))
        return 0;
    if (limit <= 0)
        return 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach (PATCH_MUT(v), k, c) {
            int d = depth_budgeted(c, limit - 1, budget);
            max = d > max ? d : max;
            if (max >= limit || *budget < 0)
                break;
        }
    } else {
        size_t i;
        json_t *c;
        json_array_foreach (v, i, c) {
            int d = depth_budgeted(c, limit - 1, budget);
            max = d > max ? d : max;
            if (max >= limit || *budget < 0)
                break;
        }
    }
    return 1 + max;
}

/*
 * Our own limit on results: a value put at path must not nest past KCP_PATCH_MAX_DEPTH. Moves
 * are checked against a budget: without one, moving a large subtree down and up again could
 * stall the event loop.
 */
static int check_insert_depth(struct jp *jp, const char *path, const json_t *v, bool budgeted)
{
    int room = KCP_PATCH_MAX_DEPTH - patch_pointer_depth(path);
    int depth = 0;
    if (room >= 0)
        depth = budgeted ? depth_budgeted(v, room, &jp->move_budget) : patch_depth(v, room);
    if (budgeted && jp->move_budget < 0)
        return patch_fail(jp->out_err, KCP_ETOOLARGE,
                          "json patch moves too much data (limit %ld values)",
                          (long)MOVE_CHECK_BUDGET);
    if (room >= 0 && depth <= room)
        return 0;
    return patch_fail(jp->out_err, KCP_EBADREQUEST,
                      "json patch would nest the object deeper than %d levels",
                      KCP_PATCH_MAX_DEPTH);
}

static int op_add(struct jp *jp, const json_t *op)
{
    const char *path;
    char *err = NULL;
    struct patch_target t;
    if (op_string(op, "path", MISSING_PATH, &path, &err)) {
        free(err);
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "add operation failed to decode path: missing value");
    }
    const json_t *value = json_object_get(op, "value");
    patch_pointer_find(jp->doc, path, &t);
    if (!t.container)
        return patch_fail(
            jp->out_err, KCP_EINVALID,
            "add operation does not apply: doc is missing path: \"%s\": missing value", path);
    int rc = value ? check_insert_depth(jp, path, value, false) : 0;
    if (rc == 0) {
        err = patch_container_add(t.container, t.key, value ? json_deep_copy(value) : json_null());
        if (err)
            rc = fail_with(jp, err, "error in add for path: '%s': ", path);
    }
    patch_target_clear(&t);
    return rc;
}

static int op_remove(struct jp *jp, const json_t *op)
{
    const char *path;
    char *err = NULL;
    struct patch_target t;
    if (op_string(op, "path", MISSING_PATH, &path, &err)) {
        free(err);
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "remove operation failed to decode path: missing value");
    }
    patch_pointer_find(jp->doc, path, &t);
    if (!t.container)
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "remove operation does not apply: doc is missing path: \"%s\": missing "
                          "value",
                          path);
    int rc = 0;
    if ((err = patch_container_remove(t.container, t.key)) != NULL)
        rc = fail_with(jp, err, "error in remove for path: '%s': ", path);
    patch_target_clear(&t);
    return rc;
}

static int op_replace(struct jp *jp, const json_t *op)
{
    const char *path;
    char *err = NULL;
    struct patch_target t;
    if (op_string(op, "path", MISSING_PATH, &path, &err))
        return fail_with(jp, err, "replace operation failed to decode path: ");
    const json_t *value = json_object_get(op, "value");
    if (!*path) {
        /* upstream wraps a nil error here, which Go prints as %!w(<nil>) */
        if (!json_is_object(value) && !json_is_array(value))
            return patch_fail(jp->out_err, KCP_EINVALID,
                              "replace operation value must be object or array: %%!w(<nil>)");
        json_decref(jp->doc);
        jp->doc = json_deep_copy(value);
        return 0;
    }
    patch_pointer_find(jp->doc, path, &t);
    if (!t.container)
        return patch_fail(
            jp->out_err, KCP_EINVALID,
            "replace operation does not apply: doc is missing path: %s: missing value", path);
    json_t *cur;
    int rc = 0;
    if ((err = patch_container_get(t.container, t.key, &cur)) != NULL) {
        free(err);
        rc = patch_fail(jp->out_err, KCP_EINVALID,
                        "replace operation does not apply: doc is missing key: %s: missing value",
                        path);
    } else if (!value || (rc = check_insert_depth(jp, path, value, false)) == 0) {
        /* a missing object member is added, not refused: upstream v4 does that */
        err = patch_container_set(t.container, t.key, value ? json_deep_copy(value) : json_null());
        if (err)
            rc = fail_with(jp, err, "error in remove for path: '%s': ", path);
    }
    patch_target_clear(&t);
    return rc;
}

static int op_move(struct jp *jp, const json_t *op)
{
    const char *from, *path;
    char *err = NULL;
    struct patch_target t;
    json_t *val = NULL, *cur;
    int rc = 0;
    if (op_string(op, "from", MISSING_FROM, &from, &err))
        return fail_with(jp, err, "move operation failed to decode from: ");
    patch_pointer_find(jp->doc, from, &t);
    if (!t.container)
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "move operation does not apply: doc is missing from path: %s: missing "
                          "value",
                          from);
    int from_depth = patch_pointer_depth(from);
    if ((err = patch_container_get(t.container, t.key, &cur)) != NULL) {
        rc = fail_with(jp, err, "error in move for path: '%s': ", t.key);
        goto done;
    }
    val = cur ? json_incref(cur) : json_null();
    if ((err = patch_container_remove(t.container, t.key)) != NULL) {
        rc = fail_with(jp, err, "error in move for path: '%s': ", t.key);
        goto done;
    }
    patch_target_clear(&t);
    if (op_string(op, "path", MISSING_PATH, &path, &err)) {
        rc = fail_with(jp, err, "move operation failed to decode path: ");
        goto done;
    }
    patch_pointer_find(jp->doc, path, &t);
    if (!t.container) {
        rc = patch_fail(jp->out_err, KCP_EINVALID,
                        "move operation does not apply: doc is missing destination path: %s: "
                        "missing value",
                        path);
        goto done;
    }
    /* Moving up or sideways cannot nest deeper than the document already is. */
    if (patch_pointer_depth(path) > from_depth &&
        (rc = check_insert_depth(jp, path, val, true)) != 0)
        goto done;
    err = patch_container_add(t.container, t.key, val);
    val = NULL;
    if (err)
        rc = fail_with(jp, err, "error in move for path: '%s': ", path);
done:
    json_decref(val);
    patch_target_clear(&t);
    return rc;
}

static int op_test(struct jp *jp, const json_t *op)
{
    const char *path;
    char *err = NULL;
    struct patch_target t;
    json_t *cur;
    int rc = 0;
    if (op_string(op, "path", MISSING_PATH, &path, &err))
        return fail_with(jp, err, "test operation failed to decode path: ");
    const json_t *value = json_object_get(op, "value");
    if (!*path) {
        if (value && json_equal(jp->doc, PATCH_MUT(value)))
            return 0;
        return patch_fail(jp->out_err, KCP_EINVALID, "testing value  failed: test failed");
    }
    patch_pointer_find(jp->doc, path, &t);
    if (!t.container)
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "test operation does not apply: is missing path: %s: missing value",
                          path);
    if ((err = patch_container_get(t.container, t.key, &cur)) != NULL) {
        rc = fail_with(jp, err, "error in test for path: '%s': ", path);
    } else if (!cur) {
        /* a missing member and a null one both pass a test for null (or for nothing) */
        if (value && !json_is_null(value))
            rc =
                patch_fail(jp->out_err, KCP_EINVALID, "testing value %s failed: test failed", path);
    } else if (!value || !json_equal(cur, PATCH_MUT(value))) {
        rc = patch_fail(jp->out_err, KCP_EINVALID, "testing value %s failed: test failed", path);
    }
    patch_target_clear(&t);
    return rc;
}

static int count_bytes(const char *buffer, size_t size, void *data)
{
    (void)buffer;
    *(size_t *)data += size;
    return 0;
}

static int op_copy(struct jp *jp, const json_t *op)
{
    const char *from, *path;
    char *err = NULL;
    struct patch_target t;
    json_t *cur;
    int rc = 0;
    if (op_string(op, "from", MISSING_FROM, &from, &err))
        return fail_with(jp, err, "copy operation failed to decode from: ");
    patch_pointer_find(jp->doc, from, &t);
    if (!t.container)
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "copy operation does not apply: doc is missing from path: %s: missing "
                          "value",
                          from);
    err = patch_container_get(t.container, t.key, &cur);
    patch_target_clear(&t);
    if (err)
        return fail_with(jp, err, "error in copy for from: '%s': ", from);
    if (op_string(op, "path", MISSING_PATH, &path, &err)) {
        free(err);
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "copy operation failed to decode path: missing value");
    }
    patch_pointer_find(jp->doc, path, &t);
    if (!t.container)
        return patch_fail(jp->out_err, KCP_EINVALID,
                          "copy operation does not apply: doc is missing destination path: %s: "
                          "missing value",
                          path);
    /* upstream counts the copied value's JSON bytes against JSONPatchMaxCopyBytes */
    if (cur) {
        size_t sz = 0;
        json_dump_callback(cur, count_bytes, &sz, JSON_COMPACT | JSON_ENCODE_ANY);
        jp->copied += sz;
        if (jp->copied > KCP_PATCH_MAX_COPY_BYTES) {
            rc = patch_fail(jp->out_err, KCP_EINVALID,
                            "Unable to complete the copy, the accumulated size increase of copy "
                            "is %zu, exceeding the limit %d",
                            jp->copied, KCP_PATCH_MAX_COPY_BYTES);
            goto done;
        }
        if ((rc = check_insert_depth(jp, path, cur, false)) != 0)
            goto done;
    }
    err = patch_container_add(t.container, t.key, cur ? json_deep_copy(cur) : json_null());
    if (err)
        rc = fail_with(jp, err, "error while adding value during copy: ");
done:
    patch_target_clear(&t);
    return rc;
}

static int apply_op(struct jp *jp, const json_t *op)
{
    const json_t *kind = json_is_object(op) ? json_object_get(op, "op") : NULL;
    const char *k = json_is_string(kind) ? json_string_value(kind) : "unknown";
    if (strcmp(k, "add") == 0)
        return op_add(jp, op);
    if (strcmp(k, "remove") == 0)
        return op_remove(jp, op);
    if (strcmp(k, "replace") == 0)
        return op_replace(jp, op);
    if (strcmp(k, "move") == 0)
        return op_move(jp, op);
    if (strcmp(k, "test") == 0)
        return op_test(jp, op);
    if (strcmp(k, "copy") == 0)
        return op_copy(jp, op);
    return patch_fail(jp->out_err, KCP_EINVALID, "Unexpected kind: %s", k);
}

int kcp_patch_apply_json(json_t **out, const json_t *original, const json_t *patch, char **out_err)
{
    int rc;
    struct jp jp = {.move_budget = MOVE_CHECK_BUDGET, .out_err = out_err};
    *out = NULL;
    if (out_err)
        *out_err = NULL;
    if ((rc = patch_check_depth(original, "object", out_err)) != 0 ||
        (rc = patch_check_depth(patch, "patch", out_err)) != 0)
        return rc;
    /* Decoding the patch is upstream's 400; applying it, 422. null decodes to no operation. */
    if (!json_is_null(patch) && !json_is_array(patch))
        return patch_fail(out_err, KCP_EBADREQUEST,
                          "json: cannot unmarshal %s into Go value of type jsonpatch.Patch",
                          go_json_kind(patch));
    size_t i, n = json_array_size(patch);
    const json_t *op;
    json_array_foreach (patch, i, op) {
        if (!json_is_object(op) && !json_is_null(op))
            return patch_fail(out_err, KCP_EBADREQUEST,
                              "json: cannot unmarshal %s into Go value of type jsonpatch.Operation",
                              go_json_kind(op));
    }
    if (n > KCP_PATCH_MAX_OPS)
        return patch_fail(out_err, KCP_ETOOLARGE,
                          "The allowed maximum operations in a JSON patch is %d, got %zu",
                          KCP_PATCH_MAX_OPS, n);
    if (!json_is_object(original) && !json_is_array(original))
        return patch_fail(out_err, KCP_EINVALID,
                          "json: cannot unmarshal %s into Go value of type jsonpatch.partialDoc",
                          json_is_null(original) ? "null" : go_json_kind(original));
    jp.doc = json_deep_copy(original);
    json_array_foreach (patch, i, op) {
        if ((rc = apply_op(&jp, op)) != 0) {
            json_decref(jp.doc);
            return rc;
        }
    }
    *out = jp.doc;
    return 0;
}
