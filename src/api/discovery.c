/*
 * Discovery: /api, /apis, /apis/{group}, and the group-version resource lists, in the legacy
 * documents and as the aggregated apidiscovery.k8s.io/v2 list kubectl 1.32 asks for first.
 * Everything is derived from the schema's resource table.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 64
#define MAX_VERSIONS 8

struct group {
    const char *name;
    const char *versions[MAX_VERSIONS];
    size_t nversions;
};

/* Kubernetes version priority: GA before beta before alpha, higher numbers first. */
static int version_rank(const char *v)
{
    int major = 0, minor = 0;
    char stage[16] = "";
    sscanf(v, "v%d%15[a-z]%d", &major, stage, &minor);
    int s = strcmp(stage, "") == 0 ? 3 : strcmp(stage, "beta") == 0 ? 2 : 1;
    return s * 1000000 + major * 1000 + minor;
}

static size_t collect_groups(struct group *out, bool core)
{
    size_t n = 0;
    for (size_t i = 0; i < kcp_schema_resource_count(); i++) {
        const struct kcp_schema_resource *res = kcp_schema_resource_at(i);
        if ((res->group[0] == '\0') != core)
            continue;
        size_t g = 0;
        while (g < n && strcmp(out[g].name, res->group) != 0)
            g++;
        if (g == n) {
            if (n == MAX_GROUPS)
                continue;
            out[n].name = res->group;
            out[n].nversions = 0;
            n++;
        }
        struct group *grp = &out[g];
        size_t v = 0;
        while (v < grp->nversions && strcmp(grp->versions[v], res->version) != 0)
            v++;
        if (v == grp->nversions && v < MAX_VERSIONS) {
            /* Insert keeping preference order. */
            size_t at = grp->nversions;
            while (at > 0 && version_rank(grp->versions[at - 1]) < version_rank(res->version)) {
                grp->versions[at] = grp->versions[at - 1];
                at--;
            }
            grp->versions[at] = res->version;
            grp->nversions++;
        }
    }
    return n;
}

static json_t *string_array(const char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list && list[i]; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

static json_t *verbs_array(unsigned verbs)
{
    json_t *a = json_array();
    for (unsigned bit = 1; bit <= KCP_VERB_DELETECOLLECTION; bit <<= 1)
        if (verbs & bit)
            json_array_append_new(a, json_string(kcp_schema_verb_name(bit)));
    return a;
}

static json_t *gvk(const char *group, const char *version, const char *kind)
{
    json_t *o = json_object();
    json_object_set_new(o, "group", json_string(group));
    json_object_set_new(o, "version", json_string(version));
    json_object_set_new(o, "kind", json_string(kind));
    return o;
}

static json_t *aggregated_resource(const struct kcp_schema_resource *res)
{
    json_t *o = json_object();
    json_object_set_new(o, "resource", json_string(res->resource));
    json_object_set_new(o, "responseKind", gvk(res->group, res->version, res->kind));
    json_object_set_new(o, "scope", json_string(res->namespaced ? "Namespaced" : "Cluster"));
    json_object_set_new(o, "singularResource", json_string(res->singular));
    json_object_set_new(o, "verbs", verbs_array(res->verbs));
    if (res->short_names && res->short_names[0])
        json_object_set_new(o, "shortNames", string_array(res->short_names));
    if (res->categories && res->categories[0])
        json_object_set_new(o, "categories", string_array(res->categories));
    if (res->nsubresources) {
        json_t *subs = json_array();
        for (size_t i = 0; i < res->nsubresources; i++) {
            const struct kcp_schema_subresource *s = &res->subresources[i];
            json_t *so = json_object();
            json_object_set_new(so, "subresource", json_string(s->name));
            if (s->kind && s->kind[0])
                json_object_set_new(so, "responseKind", gvk(s->group, s->version, s->kind));
            json_object_set_new(so, "verbs", verbs_array(s->verbs));
            json_array_append_new(subs, so);
        }
        json_object_set_new(o, "subresources", subs);
    }
    return o;
}

static json_t *aggregated_group(const struct group *g)
{
    json_t *item = json_object();
    json_t *meta = json_object();
    if (g->name[0])
        json_object_set_new(meta, "name", json_string(g->name));
    json_object_set_new(meta, "creationTimestamp", json_null());
    json_object_set_new(item, "metadata", meta);
    json_t *versions = json_array();
    for (size_t v = 0; v < g->nversions; v++) {
        json_t *ver = json_object();
        json_object_set_new(ver, "version", json_string(g->versions[v]));
        json_t *resources = json_array();
        for (size_t i = 0; i < kcp_schema_resource_count(); i++) {
            const struct kcp_schema_resource *res = kcp_schema_resource_at(i);
            if (strcmp(res->group, g->name) == 0 && strcmp(res->version, g->versions[v]) == 0)
                json_array_append_new(resources, aggregated_resource(res));
        }
        json_object_set_new(ver, "resources", resources);
        json_object_set_new(ver, "freshness", json_string("Current"));
        json_array_append_new(versions, ver);
    }
    json_object_set_new(item, "versions", versions);
    return item;
}

static json_t *aggregated_list(const struct api_media *m, bool core)
{
    struct group groups[MAX_GROUPS];
    size_t n = collect_groups(groups, core);
    json_t *list = json_object();
    json_object_set_new(list, "kind", json_string("APIGroupDiscoveryList"));
    json_object_set_new(list, "apiVersion",
                        json_string(strcmp(m->as_version, "v2") == 0 ? "apidiscovery.k8s.io/v2"
                                                                     : "apidiscovery.k8s.io/v2beta1"));
    json_object_set_new(list, "metadata", json_object());
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, aggregated_group(&groups[i]));
    json_object_set_new(list, "items", items);
    return list;
}

static json_t *group_doc(const struct group *g)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(g->name));
    json_t *versions = json_array();
    for (size_t v = 0; v < g->nversions; v++) {
        json_t *gv = json_object();
        char buf[128];
        snprintf(buf, sizeof(buf), "%s/%s", g->name, g->versions[v]);
        json_object_set_new(gv, "groupVersion", json_string(buf));
        json_object_set_new(gv, "version", json_string(g->versions[v]));
        if (v == 0)
            json_object_set_new(o, "preferredVersion", json_deep_copy(gv));
        json_array_append_new(versions, gv);
    }
    json_object_set_new(o, "versions", versions);
    json_t *pref = json_object_get(o, "preferredVersion");
    json_incref(pref);
    json_object_del(o, "preferredVersion");
    json_object_set_new(o, "preferredVersion", pref);
    return o;
}

static json_t *resource_list(const char *group, const char *version)
{
    json_t *list = json_object();
    char gv[128];
    if (group[0])
        snprintf(gv, sizeof(gv), "%s/%s", group, version);
    else
        snprintf(gv, sizeof(gv), "%s", version);
    json_object_set_new(list, "kind", json_string("APIResourceList"));
    json_object_set_new(list, "apiVersion", json_string("v1"));
    json_object_set_new(list, "groupVersion", json_string(gv));
    json_t *resources = json_array();
    size_t found = 0;
    for (size_t i = 0; i < kcp_schema_resource_count(); i++) {
        const struct kcp_schema_resource *res = kcp_schema_resource_at(i);
        if (strcmp(res->group, group) != 0 || strcmp(res->version, version) != 0)
            continue;
        found++;
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(res->resource));
        json_object_set_new(o, "singularName", json_string(res->singular));
        json_object_set_new(o, "namespaced", json_boolean(res->namespaced));
        json_object_set_new(o, "kind", json_string(res->kind));
        json_object_set_new(o, "verbs", verbs_array(res->verbs));
        if (res->short_names && res->short_names[0])
            json_object_set_new(o, "shortNames", string_array(res->short_names));
        if (res->categories && res->categories[0])
            json_object_set_new(o, "categories", string_array(res->categories));
        json_array_append_new(resources, o);
        for (size_t s = 0; s < res->nsubresources; s++) {
            const struct kcp_schema_subresource *sub = &res->subresources[s];
            json_t *so = json_object();
            char name[160];
            snprintf(name, sizeof(name), "%s/%s", res->resource, sub->name);
            json_object_set_new(so, "name", json_string(name));
            json_object_set_new(so, "singularName", json_string(""));
            json_object_set_new(so, "namespaced", json_boolean(res->namespaced));
            if (sub->group && sub->group[0])
                json_object_set_new(so, "group", json_string(sub->group));
            if (sub->version && sub->version[0])
                json_object_set_new(so, "version", json_string(sub->version));
            json_object_set_new(so, "kind", json_string(sub->kind ? sub->kind : res->kind));
            json_object_set_new(so, "verbs", verbs_array(sub->verbs));
            json_array_append_new(resources, so);
        }
    }
    json_object_set_new(list, "resources", resources);
    if (!found) {
        json_decref(list);
        return NULL;
    }
    return list;
}

static void respond_doc(struct api_req *r, json_t *doc, const char *content_type)
{
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_codec_json_write(&b, doc);
    json_decref(doc);
    if (r->res)
        kcp_http_set_header(r->res, "Vary", "Accept");
    api_respond_json_text(r, 200, content_type, b.data, b.len);
    kcp_buf_free(&b);
}

void api_discovery(struct api_req *r)
{
    const struct api_path *p = &r->path;
    if (strcmp(r->http->method, "GET") != 0 && strcmp(r->http->method, "HEAD") != 0)
        return api_fail(r, KCP_EMETHOD, NULL, NULL,
                        "the server does not allow this method on the requested resource");
    bool aggregated = r->media.as == API_AS_DISCOVERY_AGGREGATED;
    switch (p->kind) {
    case API_PATH_LEGACY_ROOT:
        if (aggregated)
            return respond_doc(r, aggregated_list(&r->media, true), api_media_content_type(&r->media));
        return respond_doc(r,
                           json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions",
                                     "versions", "v1", "serverAddressByClientCIDRs",
                                     "clientCIDR", "0.0.0.0/0", "serverAddress", ""),
                           "application/json");
    case API_PATH_GROUPS_ROOT: {
        if (aggregated)
            return respond_doc(r, aggregated_list(&r->media, false), api_media_content_type(&r->media));
        struct group groups[MAX_GROUPS];
        size_t n = collect_groups(groups, false);
        json_t *list = json_pack("{s:s, s:s}", "kind", "APIGroupList", "apiVersion", "v1");
        json_t *items = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(items, group_doc(&groups[i]));
        json_object_set_new(list, "groups", items);
        return respond_doc(r, list, "application/json");
    }
    case API_PATH_GROUP: {
        struct group groups[MAX_GROUPS];
        size_t n = collect_groups(groups, false);
        for (size_t i = 0; i < n; i++)
            if (strcmp(groups[i].name, p->group) == 0) {
                json_t *doc = json_pack("{s:s, s:s}", "kind", "APIGroup", "apiVersion", "v1");
                json_t *g = group_doc(&groups[i]);
                json_object_update(doc, g);
                json_decref(g);
                return respond_doc(r, doc, "application/json");
            }
        break;
    }
    case API_PATH_GROUP_VERSION: {
        json_t *doc = resource_list(p->group, p->version);
        if (doc)
            return respond_doc(r, doc, "application/json");
        break;
    }
    default:
        break;
    }
    api_fail(r, KCP_ENOTFOUND, NULL, NULL, "the server could not find the requested resource");
}
