/* Accept and Content-Type parsing, following what kubectl 1.32 sends (../WIRE.md facts). */
#include "media.h"

#include <kcp/base.h>

#include <ctype.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_OFFERS 16

struct offer {
    char type[80];
    char as[48], g[48], v[16];
    double q;
    int order;
};

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    size_t i = 0;
    while (isspace((unsigned char)s[i]))
        i++;
    memmove(s, s + i, n - i + 1);
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    trim(dst);
}

/* Splits one media range "type/sub;k=v;k=v" into an offer. */
static void parse_offer(struct offer *o, char *text)
{
    char *save = NULL;
    char *part = strtok_r(text, ";", &save);
    memset(o, 0, sizeof(*o));
    o->q = 1.0;
    copy_field(o->type, sizeof(o->type), part ? part : "");
    while ((part = strtok_r(NULL, ";", &save))) {
        char *eq = strchr(part, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char key[16];
        copy_field(key, sizeof(key), part);
        const char *val = eq + 1;
        if (strcmp(key, "q") == 0)
            o->q = atof(val);
        else if (strcmp(key, "as") == 0)
            copy_field(o->as, sizeof(o->as), val);
        else if (strcmp(key, "g") == 0)
            copy_field(o->g, sizeof(o->g), val);
        else if (strcmp(key, "v") == 0)
            copy_field(o->v, sizeof(o->v), val);
    }
}

static int cmp_offer(const void *a, const void *b)
{
    const struct offer *x = a, *y = b;
    if (x->q != y->q)
        return x->q > y->q ? -1 : 1;
    return x->order - y->order;
}

/* Whether one offer is something we can produce; fills out if so. */
static bool supported(const struct offer *o, struct api_media *out, int allow_aggregated)
{
    enum api_format f;
    if (strcasecmp(o->type, "application/json") == 0 || strcmp(o->type, "*/*") == 0 ||
        strcasecmp(o->type, "application/*") == 0)
        f = API_FORMAT_JSON;
    else if (strcasecmp(o->type, "application/yaml") == 0)
        f = API_FORMAT_YAML;
    else if (strcasecmp(o->type, "application/vnd.kubernetes.protobuf") == 0)
        f = API_FORMAT_PROTOBUF;
    else
        return false;
    if (o->q <= 0)
        return false;
    out->format = f;
    out->as = API_AS_OBJECT;
    out->as_version = "v1";
    if (!o->as[0])
        return true;
    if (strcmp(o->as, "Table") == 0 && strcmp(o->g, "meta.k8s.io") == 0 &&
        (strcmp(o->v, "v1") == 0 || strcmp(o->v, "v1beta1") == 0)) {
        out->as = API_AS_TABLE;
        out->as_version = strcmp(o->v, "v1") == 0 ? "v1" : "v1beta1";
        return true;
    }
    if ((strcmp(o->as, "PartialObjectMetadata") == 0 ||
         strcmp(o->as, "PartialObjectMetadataList") == 0) &&
        strcmp(o->g, "meta.k8s.io") == 0 && strcmp(o->v, "v1") == 0) {
        out->as = API_AS_PARTIAL;
        return true;
    }
    if (allow_aggregated && strcmp(o->as, "APIGroupDiscoveryList") == 0 &&
        strcmp(o->g, "apidiscovery.k8s.io") == 0 &&
        (strcmp(o->v, "v2") == 0 || strcmp(o->v, "v2beta1") == 0) && f == API_FORMAT_JSON) {
        out->as = API_AS_DISCOVERY_AGGREGATED;
        out->as_version = strcmp(o->v, "v2") == 0 ? "v2" : "v2beta1";
        return true;
    }
    return false;
}

int api_media_negotiate(struct api_media *out, const char *accept, int allow_aggregated)
{
    struct offer offers[MAX_OFFERS];
    int n = 0;
    out->format = API_FORMAT_JSON;
    out->as = API_AS_OBJECT;
    out->as_version = "v1";
    if (!accept || !*accept)
        return 0;
    char *copy = kcp_strdup(accept);
    char *save = NULL;
    for (char *r = strtok_r(copy, ",", &save); r && n < MAX_OFFERS; r = strtok_r(NULL, ",", &save)) {
        parse_offer(&offers[n], r);
        offers[n].order = n;
        n++;
    }
    free(copy);
    qsort(offers, (size_t)n, sizeof(offers[0]), cmp_offer);
    for (int i = 0; i < n; i++)
        if (supported(&offers[i], out, allow_aggregated))
            return 0;
    return n == 0 ? 0 : KCP_ENOTACCEPTABLE;
}

const char *api_media_content_type(const struct api_media *m)
{
    if (m->as == API_AS_DISCOVERY_AGGREGATED)
        return strcmp(m->as_version, "v2") == 0
                   ? "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
                   : "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
    if (m->as == API_AS_TABLE)
        return m->format == API_FORMAT_PROTOBUF
                   ? "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
                   : "application/json;as=Table;v=v1;g=meta.k8s.io";
    switch (m->format) {
    case API_FORMAT_YAML: return "application/yaml";
    case API_FORMAT_PROTOBUF: return "application/vnd.kubernetes.protobuf";
    default: return "application/json";
    }
}

int api_media_body_type(enum api_body_type *out, const char *content_type)
{
    static const struct {
        const char *type;
        enum api_body_type body;
    } types[] = {
        {"application/json", API_BODY_JSON},
        {"application/yaml", API_BODY_YAML},
        {"application/vnd.kubernetes.protobuf", API_BODY_PROTOBUF},
        {"application/json-patch+json", API_BODY_JSON_PATCH},
        {"application/merge-patch+json", API_BODY_MERGE_PATCH},
        {"application/strategic-merge-patch+json", API_BODY_STRATEGIC_PATCH},
        {"application/apply-patch+yaml", API_BODY_APPLY_PATCH},
    };
    if (!content_type || !*content_type) {
        *out = API_BODY_JSON;
        return 0;
    }
    size_t len = strcspn(content_type, ";");
    while (len && isspace((unsigned char)content_type[len - 1]))
        len--;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i].type) == len && strncasecmp(content_type, types[i].type, len) == 0) {
            *out = types[i].body;
            return 0;
        }
    return KCP_EMEDIATYPE;
}
