/*
 * Table columns (src/api/table.c over the generated printer tables): for each case in
 * table_golden.json, the column definitions and the row kcp serves, byte for byte. The expected
 * tables were recorded from the hand-written printers that proto/printers.tsv replaced; with
 * KCP_GOLDEN_PRINT=1 the test prints the cases with the tables it computes instead.
 */
#include "api_int.h"

#include <kcp/codec.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct kcp_schema_resource *find(const char *spec)
{
    char group[128];
    const char *slash = strchr(spec, '/');
    snprintf(group, sizeof(group), "%.*s", (int)(slash - spec), spec);
    const char *g = strcmp(group, "core") == 0 ? "" : group;
    for (size_t i = 0; i < kcp_schema_resource_count(); i++) {
        const struct kcp_schema_resource *r = kcp_schema_resource_at(i);
        if (strcmp(r->group, g) == 0 && strcmp(r->resource, slash + 1) == 0)
            return r;
    }
    return NULL;
}

static char *encode(const json_t *v)
{
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_codec_json_write(&b, v);
    return kcp_buf_detach(&b);
}

static void test_golden(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *cases = json_load_file(KCP_API_TEST_DIR "/table_golden.json", 0, &jerr);
    if (!cases)
        fail_msg("table_golden.json: %s (line %d)", jerr.text, jerr.line);
    bool print = getenv("KCP_GOLDEN_PRINT") != NULL;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *res = json_string_value(json_object_get(c, "resource"));
        const struct kcp_schema_resource *rsrc = find(res);
        if (!rsrc)
            fail_msg("case %zu: no resource %s", i, res);
        json_t *t = api_table_new(rsrc, true);
        api_table_add_row(t, rsrc, json_object_get(c, "object"), "None",
                          json_integer_value(json_object_get(c, "now")));
        if (print) {
            json_object_set(c, "table", t);
        } else {
            char *got = encode(t), *want = encode(json_object_get(c, "table"));
            if (strcmp(got, want) != 0)
                fail_msg("case %zu (%s):\n got  %s\n want %s", i, res, got, want);
            free(got);
            free(want);
        }
        json_decref(t);
    }
    if (print) {
        char *all = json_dumps(cases, JSON_INDENT(1));
        printf("%s\n", all);
        free(all);
    }
    json_decref(cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
