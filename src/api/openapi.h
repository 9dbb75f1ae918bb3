/* Internal to the api module: the OpenAPI v2 document in protobuf (openapi_pb.c). */
#ifndef KCP_API_OPENAPI_H
#define KCP_API_OPENAPI_H

#include "api_int.h"

/*
 * Appends doc (a Swagger 2.0 tree, borrowed) encoded as gnostic's openapi.v2.Document message.
 * 0, or KCP_EINVAL when doc is not an object.
 */
int api_openapi_v2_protobuf(struct kcp_buf *out, const json_t *doc);

/* Appends v as the YAML text gnostic keeps in an Any (block style, ending in a newline). */
void api_openapi_yaml(struct kcp_buf *out, const json_t *v);

#endif
