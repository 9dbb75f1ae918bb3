/* schema_int.h: what the generated tables (schema_tables.c, schema_openapi.c) define. */
#ifndef KCP_SCHEMA_INT_H
#define KCP_SCHEMA_INT_H

#include <stddef.h>

#include "kcp/schema.h"

struct schema_gvk {
    const char *group, *version, *kind;
    int msg;
};

struct schema_blob {
    const char *path; /* "" = OpenAPI v2; else the v3 path ("api/v1") */
    const unsigned char *data;
    size_t len;     /* compressed (zlib) */
    size_t raw_len; /* inflated */
};

extern const struct kcp_schema_message schema_messages[];
extern const size_t schema_nmessages;
extern const struct schema_gvk schema_gvks[]; /* sorted by group, version, kind */
extern const size_t schema_ngvks;
extern const struct kcp_schema_resource schema_resources[];
extern const size_t schema_nresources;
extern const struct schema_blob schema_openapi[];
extern const size_t schema_nopenapi;

#endif
