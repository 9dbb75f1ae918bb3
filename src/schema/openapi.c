/* openapi.c: inflates the OpenAPI documents the generator embedded (zlib). */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "kcp/base.h"
#include "schema_int.h"

static int inflate_blob(const struct schema_blob *b, char **out, size_t *out_len)
{
    char *buf = kcp_malloc(b->raw_len + 1);
    uLongf n = (uLongf)b->raw_len;
    if (uncompress((Bytef *)buf, &n, b->data, (uLong)b->len) != Z_OK || n != b->raw_len) {
        free(buf);
        return KCP_EINTERNAL;
    }
    buf[n] = '\0';
    *out = buf;
    if (out_len)
        *out_len = n;
    return 0;
}

int kcp_schema_openapi_v2(char **out, size_t *out_len)
{
    for (size_t i = 0; i < schema_nopenapi; i++)
        if (schema_openapi[i].path[0] == '\0')
            return inflate_blob(&schema_openapi[i], out, out_len);
    return KCP_ENOTFOUND;
}

size_t kcp_schema_openapi_v3_count(void)
{
    return schema_nopenapi - 1;
}

const char *kcp_schema_openapi_v3_path(size_t i)
{
    /* Entry 0 is v2; v3 documents follow. */
    return i + 1 < schema_nopenapi ? schema_openapi[i + 1].path : NULL;
}

int kcp_schema_openapi_v3(const char *path, char **out, size_t *out_len)
{
    for (size_t i = 1; i < schema_nopenapi; i++)
        if (strcmp(schema_openapi[i].path, path) == 0)
            return inflate_blob(&schema_openapi[i], out, out_len);
    return KCP_ENOTFOUND;
}
