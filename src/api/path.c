/* Parsing of /api and /apis request paths into group, version, namespace, resource, name. */
#include "path.h"

#include <kcp/base.h>

#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS 10

int api_path_parse(struct api_path *out, const char *path)
{
    memset(out, 0, sizeof(*out));
    out->buf = kcp_strdup(path);
    char *seg[MAX_SEGMENTS];
    int n = 0;
    char *save = NULL;
    size_t len = strlen(out->buf);
    /* A trailing slash is tolerated as upstream's mux does; empty inner segments are not. */
    if (len > 1 && out->buf[len - 1] == '/')
        out->buf[len - 1] = '\0';
    if (out->buf[0] != '/' || strstr(out->buf, "//"))
        goto none;
    for (char *s = strtok_r(out->buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGMENTS)
            goto none;
        seg[n++] = s;
    }
    int i;
    if (n >= 1 && strcmp(seg[0], "api") == 0) {
        out->group = "";
        if (n == 1) {
            out->kind = API_PATH_LEGACY_ROOT;
            return 0;
        }
        out->version = seg[1];
        i = 2;
    } else if (n >= 1 && strcmp(seg[0], "apis") == 0) {
        if (n == 1) {
            out->kind = API_PATH_GROUPS_ROOT;
            return 0;
        }
        out->group = seg[1];
        if (n == 2) {
            out->kind = API_PATH_GROUP;
            return 0;
        }
        out->version = seg[2];
        i = 3;
    } else {
        goto none;
    }
    if (i == n) {
        out->kind = API_PATH_GROUP_VERSION;
        return 0;
    }
    out->kind = API_PATH_RESOURCE;
    int left = n - i;
    bool ns_sub = left == 3 && strcmp(seg[i], "namespaces") == 0 &&
                  (strcmp(seg[i + 2], "status") == 0 || strcmp(seg[i + 2], "finalize") == 0);
    if (strcmp(seg[i], "namespaces") == 0 && left >= 3 && !ns_sub) {
        /* namespaces/{ns}/{resource}[/{name}[/{sub}]] */
        out->namespace_ = seg[i + 1];
        i += 2;
        left -= 2;
    }
    if (left > 3)
        goto none;
    out->resource = seg[i];
    out->name = left >= 2 ? seg[i + 1] : NULL;
    out->subresource = left == 3 ? seg[i + 2] : NULL;
    return 0;
none:
    free(out->buf);
    memset(out, 0, sizeof(*out));
    return KCP_ENOTFOUND;
}

void api_path_free(struct api_path *p)
{
    free(p->buf);
    p->buf = NULL;
}
