/* libFuzzer driver: an original and a patch document through all three patch kinds. */
#include <kcp/base.h>
#include <kcp/patch.h>

#include "../unit/patch/smp_schema.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Input: the original JSON document, a NUL byte, the patch document. Without a NUL the whole
 * input is the patch and a small Deployment is the original, so plain JSON seeds work too.
 */
static const char *default_original =
    "{\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":\"web\"},\"finalizers\":[\"a\",\"b\"]},"
    "\"spec\":{\"replicas\":2,\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{}},"
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"env\":[{\"name\":"
    "\"A\",\"value\":\"1\"}],\"ports\":[{\"containerPort\":80}]},{\"name\":\"d\"}],"
    "\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}}}";

static int depth(const json_t *v)
{
    int max = 0;
    size_t i;
    const char *k;
    json_t *c;
    if (json_is_object(v)) {
        json_object_foreach ((json_t *)(uintptr_t)v, k, c) {
            int d = depth(c);
            max = d > max ? d : max;
        }
        return 1 + max;
    }
    if (json_is_array(v)) {
        json_array_foreach (v, i, c) {
            int d = depth(c);
            max = d > max ? d : max;
        }
        return 1 + max;
    }
    return 0;
}

/* Every call returns a document or a message, a known code, and nothing deeper than the limit. */
static void check(int rc, json_t *out, char *err, const int *codes)
{
    bool known = rc == 0;
    for (; *codes; codes++)
        known |= rc == *codes;
    if (!known || (rc == 0) != (out != NULL) || (rc == 0) == (err != NULL))
        abort();
    if (out) {
        if (depth(out) > KCP_PATCH_MAX_DEPTH)
            abort();
        char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s)
            abort();
        free(s);
    }
    json_decref(out);
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int json_codes[] = {KCP_EBADREQUEST, KCP_EINVALID, KCP_ETOOLARGE, 0};
    static const int merge_codes[] = {KCP_EBADREQUEST, KCP_EINTERNAL, 0};
    static const int smp_codes[] = {KCP_EBADREQUEST, KCP_EINVALID, KCP_EINTERNAL, 0};
    const uint8_t *nul = memchr(data, 0, size);
    json_t *orig, *patch;
    json_error_t e;
    if (nul) {
        orig = json_loadb((const char *)data, (size_t)(nul - data), JSON_DECODE_ANY, &e);
        patch =
            json_loadb((const char *)nul + 1, size - (size_t)(nul - data) - 1, JSON_DECODE_ANY, &e);
    } else {
        orig = json_loads(default_original, 0, &e);
        patch = json_loadb((const char *)data, size, JSON_DECODE_ANY, &e);
    }
    if (!orig || !patch)
        goto done;
    char *before = json_dumps(orig, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    char *pbefore = json_dumps(patch, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    json_t *out = NULL;
    char *err = NULL;
    int rc = kcp_patch_apply_json(&out, orig, patch, &err);
    check(rc, out, err, json_codes);
    rc = kcp_patch_apply_merge(&out, orig, patch, &err);
    check(rc, out, err, merge_codes);
    rc = kcp_patch_apply_strategic(&out, orig, patch, &smp_test_schema, &err);
    check(rc, out, err, smp_codes);
    rc = kcp_patch_apply_strategic(&out, orig, patch, NULL, &err);
    check(rc, out, err, smp_codes);
    /* with the roles swapped, the patch document's shapes meet the schema as an original */
    rc = kcp_patch_apply_strategic(&out, patch, orig, &smp_test_schema, &err);
    check(rc, out, err, smp_codes);
    /* inputs are never modified */
    char *after = json_dumps(orig, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    char *pafter = json_dumps(patch, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (strcmp(before, after) != 0 || strcmp(pbefore, pafter) != 0)
        abort();
    free(before);
    free(after);
    free(pbefore);
    free(pafter);
done:
    json_decref(orig);
    json_decref(patch);
    return 0;
}
