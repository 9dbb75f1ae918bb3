/* libFuzzer driver: arbitrary text through the label and field selector parsers and matchers. */
#include <kcp/base.h>
#include <kcp/selector.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static json_t *samples[4];

static void init_samples(void)
{
    if (samples[0])
        return;
    samples[0] = json_object();
    samples[1] = json_pack("{s:s}", "a", "b");
    samples[2] = json_pack("{s:s,s:s,s:s,s:s}", "app", "web", "tier", "1", "x", "", "in", "notin");
    samples[3] = json_pack("{s:s,s:i}", "n", "42", "bad", 1);
}

static int get_field(void *ctx, const char *field, const char **out)
{
    const char *const *kv = ctx;
    for (; kv[0]; kv += 2) {
        if (strcmp(kv[0], field) == 0) {
            *out = kv[1];
            return 0;
        }
    }
    return KCP_ENOTFOUND;
}

static bool supported(void *ctx, const char *field)
{
    return strcmp(field, "metadata.name") == 0 || strcmp(field, "status.phase") == 0;
}

static const char *const object[] = {
    "metadata.name", "web", "status.phase", "a,b=c\\", "", "", NULL};

/* A parse must either give a selector or an error message, never both or neither. */
static void check_result(int rc, const void *sel, char *err)
{
    if ((rc == 0) != (sel != NULL) || (rc == 0) == (err != NULL) ||
        (rc != 0 && rc != KCP_EBADREQUEST))
        abort();
    free(err);
}

static void fuzz_labels(const char *text)
{
    struct kcp_label_selector *sel = NULL, *again = NULL;
    char *err = NULL;
    int rc = kcp_selector_parse_labels(&sel, text, &err);
    check_result(rc, sel, err);
    if (rc != 0)
        return;
    bool m[4];
    for (int i = 0; i < 4; i++)
        m[i] = kcp_selector_labels_matches(sel, samples[i]);
    (void)kcp_selector_labels_matches(sel, NULL);
    /* labels built from the selector's own requirements reach every operator's paths */
    json_t *own = json_object();
    for (size_t i = 0; i < kcp_selector_labels_count(sel); i++) {
        struct kcp_selector_requirement r;
        kcp_selector_labels_get(sel, i, &r);
        json_object_set_new(own, r.key, json_string(r.nvalues ? r.values[r.nvalues - 1] : "1"));
        (void)kcp_selector_labels_exact(sel, r.key);
    }
    (void)kcp_selector_labels_matches(sel, own);
    json_decref(own);
    /* the canonical text reads back as the same selector */
    char *s = kcp_selector_labels_string(sel);
    err = NULL;
    rc = kcp_selector_parse_labels(&again, s, &err);
    if (rc != 0)
        abort();
    char *s2 = kcp_selector_labels_string(again);
    if (strcmp(s, s2) != 0)
        abort();
    for (int i = 0; i < 4; i++)
        if (kcp_selector_labels_matches(again, samples[i]) != m[i])
            abort();
    free(s);
    free(s2);
    kcp_selector_labels_free(again);
    kcp_selector_labels_free(sel);
}

static void fuzz_fields(const char *text)
{
    struct kcp_field_selector *sel = NULL, *again = NULL;
    char *err = NULL;
    int rc = kcp_selector_parse_fields(&sel, text, &err);
    check_result(rc, sel, err);
    if (rc != 0)
        return;
    err = NULL;
    rc = kcp_selector_fields_check(sel, supported, NULL, &err);
    if ((rc == 0) != (err == NULL))
        abort();
    free(err);
    bool m = kcp_selector_fields_matches(sel, get_field, (void *)object);
    for (size_t i = 0; i < kcp_selector_fields_count(sel); i++) {
        struct kcp_selector_term t;
        kcp_selector_fields_get(sel, i, &t);
        (void)kcp_selector_fields_exact(sel, t.field);
    }
    char *s = kcp_selector_fields_string(sel);
    if (kcp_selector_parse_fields(&again, s, NULL) != 0)
        abort();
    if (kcp_selector_fields_count(again) != kcp_selector_fields_count(sel) ||
        kcp_selector_fields_matches(again, get_field, (void *)object) != m)
        abort();
    free(s);
    kcp_selector_fields_free(again);
    kcp_selector_fields_free(sel);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_samples();
    char *text = kcp_strndup((const char *)data, size);
    fuzz_labels(text);
    fuzz_fields(text);
    free(text);
    return 0;
}
