/* Request paths of the Kubernetes REST API, parsed (API conventions, "Resource URIs"). */
#ifndef KCP_API_PATH_H
#define KCP_API_PATH_H

#include <stdbool.h>

enum api_path_kind {
    API_PATH_NONE,          /* not an API path */
    API_PATH_LEGACY_ROOT,   /* /api */
    API_PATH_GROUPS_ROOT,   /* /apis */
    API_PATH_GROUP,         /* /apis/{group} */
    API_PATH_GROUP_VERSION, /* /api/v1, /apis/{group}/{version} */
    API_PATH_RESOURCE,      /* .../[namespaces/{ns}/]{resource}[/{name}[/{subresource}]] */
};

/*
 * A parsed path. Strings point into the parser's own copy (freed by api_path_free); group is ""
 * for the core group. A path /api/v1/namespaces/{ns} is the namespace object itself
 * (resource "namespaces", name ns, namespace NULL), as upstream treats it.
 */
struct api_path {
    enum api_path_kind kind;
    const char *group;
    const char *version;
    const char *namespace_; /* NULL when the path names no namespace */
    const char *resource;
    const char *name;        /* NULL for collections */
    const char *subresource; /* NULL unless .../{name}/{subresource} */
    char *buf;
};

/* Parses a percent-decoded path. Returns 0, or KCP_ENOTFOUND when it is no API path. */
int api_path_parse(struct api_path *out, const char *path);
void api_path_free(struct api_path *p);

#endif
