/*
 * Server-side apply as kube-apiserver 1.32 runs it: managers decoded from and encoded to
 * metadata.managedFields, Update tracking, the apply merge, pruning of fields an applier gave
 * up, conflicts, and the cap on Update entries. The upstream pieces reproduced here are
 * structured-merge-diff's Updater (Update, Apply, prune) and the apiserver's field manager
 * chain (stripMeta, managedFieldsUpdater, capManagers, skipNonApplied, buildManagerInfo).
 */
#include "patch_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- managers ---- */

struct ssa_mgr {
    char *manager, *operation, *api_version, *subresource, *time; /* owned; NULL when unset */
    char *id;    /* upstream's manager identifier (JSON of the entry without time and fields) */
    json_t *set; /* owned trie */
};

struct ssa_mgrs {
    struct ssa_mgr *v;
    size_t n;
};

static bool is_apply(const struct ssa_mgr *m)
{
    return m->operation && strcmp(m->operation, "Apply") == 0;
}

/* BuildManagerIdentifier: the entry as JSON without time and fields, and without apiVersion for
 * appliers (so an applier keeps its identity across versions). */
static char *build_id(const char *manager, const char *operation, const char *api_version,
                      const char *subresource)
{
    struct kcp_buf b = KCP_BUF_INIT;
    int n = 0;
    kcp_buf_puts(&b, "{");
    if (manager && *manager) {
        kcp_buf_puts(&b, "\"manager\":");
        kcp_buf_json_string(&b, manager);
        n++;
    }
    if (operation && *operation) {
        kcp_buf_puts(&b, n++ ? ",\"operation\":" : "\"operation\":");
        kcp_buf_json_string(&b, operation);
    }
    if (api_version && *api_version && !(operation && strcmp(operation, "Apply") == 0)) {
        kcp_buf_puts(&b, n++ ? ",\"apiVersion\":" : "\"apiVersion\":");
        kcp_buf_json_string(&b, api_version);
    }
    if (subresource && *subresource) {
        kcp_buf_puts(&b, n++ ? ",\"subresource\":" : "\"subresource\":");
        kcp_buf_json_string(&b, subresource);
    }
    kcp_buf_puts(&b, "}");
    return kcp_buf_detach(&b);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? kcp_strdup(s) : NULL;
}

static void mgr_clear(struct ssa_mgr *m)
{
    free(m->manager);
    free(m->operation);
    free(m->api_version);
    free(m->subresource);
    free(m->time);
    free(m->id);
    json_decref(m->set);
    memset(m, 0, sizeof(*m));
}

static void mgrs_free(struct ssa_mgrs *ms)
{
    for (size_t i = 0; i < ms->n; i++)
        mgr_clear(&ms->v[i]);
    free(ms->v);
    ms->v = NULL;
    ms->n = 0;
}

static struct ssa_mgr *mgrs_find(struct ssa_mgrs *ms, const char *id)
{
    for (size_t i = 0; i < ms->n; i++)
        if (strcmp(ms->v[i].id, id) == 0)
            return &ms->v[i];
    return NULL;
}

/* Finds or adds the entry with this identity; a new entry has an empty set. */
static struct ssa_mgr *mgrs_get(struct ssa_mgrs *ms, const char *manager, const char *operation,
                                const char *api_version, const char *subresource)
{
    char *id = build_id(manager, operation, api_version, subresource);
    struct ssa_mgr *m = mgrs_find(ms, id);
    if (m) {
        free(id);
        return m;
    }
    ms->v = kcp_realloc(ms->v, (ms->n + 1) * sizeof(*ms->v));
    m = &ms->v[ms->n++];
    memset(m, 0, sizeof(*m));
    m->manager = dup_or_null(manager);
    m->operation = dup_or_null(operation);
    m->api_version = dup_or_null(api_version);
    m->subresource = dup_or_null(subresource);
    m->id = id;
    m->set = ssa_set_new();
    return m;
}

static void mgrs_remove(struct ssa_mgrs *ms, size_t i)
{
    mgr_clear(&ms->v[i]);
    memmove(&ms->v[i], &ms->v[i + 1], (ms->n - i - 1) * sizeof(*ms->v));
    ms->n--;
}

static void mgrs_drop_empty(struct ssa_mgrs *ms)
{
    for (size_t i = ms->n; i-- > 0;)
        if (ssa_set_empty(ms->v[i].set))
            mgrs_remove(ms, i);
}

static const char *entry_str(const json_t *e, const char *key)
{
    return json_string_value(json_object_get(e, key));
}

/* DecodeManagedFields, with upstream's checks. */
static int mgrs_decode(struct ssa_mgrs *ms, const json_t *arr, char **out_err)
{
    size_t i;
    json_t *e;
    if (arr && !json_is_array(arr) && !json_is_null(arr))
        return patch_fail(out_err, KCP_EBADREQUEST, "managedFields must be a list");
    json_array_foreach (PATCH_MUT(arr), i, e) {
        const char *op = entry_str(e, "operation"), *av = entry_str(e, "apiVersion");
        const char *ft = entry_str(e, "fieldsType");
        if (!json_is_object(e) || !op || (strcmp(op, "Apply") != 0 && strcmp(op, "Update") != 0))
            return patch_fail(out_err, KCP_EBADREQUEST, "operation must be `Apply` or `Update`");
        if (!av || !*av)
            return patch_fail(out_err, KCP_EBADREQUEST, "apiVersion must not be empty");
        if (!ft || !*ft)
            return patch_fail(out_err, KCP_EBADREQUEST,
                              "missing fieldsType in managed fields "
                              "entry %zu",
                              i);
        if (strcmp(ft, "FieldsV1") != 0)
            return patch_fail(out_err, KCP_EBADREQUEST,
                              "invalid fieldsType \"%s\" in managed "
                              "fields entry %zu",
                              ft, i);
        json_t *set = NULL;
        const json_t *v1 = json_object_get(e, "fieldsV1");
        int rc =
            v1 && !json_is_null(v1) ? ssa_set_from_v1(&set, v1, out_err) : (set = ssa_set_new(), 0);
        if (rc)
            return rc;
        struct ssa_mgr *m =
            mgrs_get(ms, entry_str(e, "manager"), op, av, entry_str(e, "subresource"));
        /* A later entry of the same identity wins, as upstream's map assignment does. */
        json_decref(m->set);
        m->set = set;
        free(m->api_version);
        m->api_version = kcp_strdup(av);
        free(m->time);
        m->time = dup_or_null(entry_str(e, "time"));
    }
    return 0;
}

static int str_cmp_null(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

/* sortEncodedManagedFields: operation, time, manager, apiVersion, subresource. */
static int entry_order(const void *pa, const void *pb)
{
    const struct ssa_mgr *a = *(const struct ssa_mgr *const *)pa,
                         *b = *(const struct ssa_mgr *const *)pb;
    int c;
    if ((c = str_cmp_null(a->operation, b->operation)) != 0)
        return c;
    if ((c = str_cmp_null(a->time, b->time)) != 0)
        return c;
    if ((c = str_cmp_null(a->manager, b->manager)) != 0)
        return c;
    if ((c = str_cmp_null(a->api_version, b->api_version)) != 0)
        return c;
    return str_cmp_null(a->subresource, b->subresource);
}

/* The managedFields array (entries in upstream's field order and sort order). */
static json_t *mgrs_encode(const struct ssa_mgrs *ms)
{
    const struct ssa_mgr **order = kcp_calloc(ms->n + 1, sizeof(*order));
    size_t n = 0;
    for (size_t i = 0; i < ms->n; i++)
        if (!ssa_set_empty(ms->v[i].set))
            order[n++] = &ms->v[i];
    qsort(order, n, sizeof(*order), entry_order);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct ssa_mgr *m = order[i];
        json_t *e = json_object();
        if (m->manager)
            json_object_set_new(e, "manager", json_string(m->manager));
        json_object_set_new(e, "operation", json_string(m->operation));
        json_object_set_new(e, "apiVersion", json_string(m->api_version));
        if (m->time)
            json_object_set_new(e, "time", json_string(m->time));
        json_object_set_new(e, "fieldsType", json_string("FieldsV1"));
        json_object_set_new(e, "fieldsV1", ssa_set_to_v1(m->set));
        if (m->subresource)
            json_object_set_new(e, "subresource", json_string(m->subresource));
        json_array_append_new(arr, e);
    }
    free(order);
    return arr;
}

/* printManager: how a conflict names a manager. */
static void print_manager(struct kcp_buf *b, const struct ssa_mgr *m)
{
    patch_go_quote(b, m->manager ? m->manager : "");
    if (m->subresource) {
        kcp_buf_puts(b, " with subresource ");
        patch_go_quote(b, m->subresource);
    }
    if (!is_apply(m))
        kcp_buf_printf(b, " using %s", m->api_version ? m->api_version : "");
}

/* capManagersManager: the oldest Update entries fold into "ancient-changes" per apiVersion. */
static int updater_order(const void *pa, const void *pb)
{
    const struct ssa_mgr *a = *(const struct ssa_mgr *const *)pa,
                         *b = *(const struct ssa_mgr *const *)pb;
    int c = str_cmp_null(a->time, b->time);
    return c ? c : strcmp(a->id, b->id);
}

static void mgrs_cap(struct ssa_mgrs *ms)
{
    size_t n = 0;
    for (size_t i = 0; i < ms->n; i++)
        n += !is_apply(&ms->v[i]);
    if (n <= KCP_SSA_MAX_UPDATE_MANAGERS)
        return;
    /* Work on identities: the array moves as entries go. */
    struct ssa_mgr **up = kcp_calloc(n, sizeof(*up));
    size_t k = 0;
    for (size_t i = 0; i < ms->n; i++)
        if (!is_apply(&ms->v[i]))
            up[k++] = &ms->v[i];
    qsort(up, n, sizeof(*up), updater_order);
    char **ids = kcp_calloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = kcp_strdup(up[i]->id);
    free(up);
    json_t *first = json_object(); /* apiVersion -> id of the first (oldest) entry */
    size_t length = n;
    for (size_t i = 0; i < n && length > KCP_SSA_MAX_UPDATE_MANAGERS; i++) {
        struct ssa_mgr *m = mgrs_find(ms, ids[i]);
        if (!m)
            continue;
        char *version = kcp_strdup(m->api_version ? m->api_version : "");
        const char *first_id = json_string_value(json_object_get(first, version));
        if (!first_id) {
            json_object_set_new(first, version, json_string(m->id));
            free(version);
            continue;
        }
        char *bucket_id = build_id("ancient-changes", "Update", version, NULL);
        struct ssa_mgr *bucket = mgrs_find(ms, bucket_id);
        if (!bucket) {
            /* The first entry of this version becomes the bucket. */
            struct ssa_mgr *f = mgrs_find(ms, first_id);
            free(f->manager);
            free(f->subresource);
            free(f->id);
            f->manager = kcp_strdup("ancient-changes");
            f->subresource = NULL;
            f->id = kcp_strdup(bucket_id);
            bucket = f;
            m = mgrs_find(ms, ids[i]);
        }
        json_t *u = ssa_set_union(bucket->set, m->set);
        json_decref(bucket->set);
        bucket->set = u;
        free(bucket->time);
        bucket->time = m->time ? kcp_strdup(m->time) : NULL;
        mgrs_remove(ms, (size_t)(m - ms->v));
        length--;
        free(bucket_id);
        free(version);
    }
    json_decref(first);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* ---- fixed sets ---- */

/* stripMetaManager's paths: fields no manager owns. */
static json_t *strip_set(void)
{
    static const char *const meta[] = {
        "name",        "namespace",  "creationTimestamp", "selfLink",        "uid",
        "clusterName", "generation", "managedFields",     "resourceVersion", NULL};
    json_t *s = json_object(), *m = json_object();
    json_object_set_new(s, "f:apiVersion", json_pack("{s:n}", SSA_SELF));
    json_object_set_new(s, "f:kind", json_pack("{s:n}", SSA_SELF));
    json_object_set_new(m, SSA_SELF, json_null());
    for (size_t i = 0; meta[i]; i++) {
        char *pe = kcp_sprintf("f:%s", meta[i]);
        json_object_set_new(m, pe, json_pack("{s:n}", SSA_SELF));
        free(pe);
    }
    json_object_set_new(s, "f:metadata", m);
    return s;
}

/* The reset fields of the endpoint, removed with everything below them. */
static json_t *ignored_set(const struct kcp_ssa_op *op)
{
    json_t *s = json_object();
    for (size_t i = 0; op->reset && op->reset[i]; i++) {
        char *pe = kcp_sprintf("f:%s", op->reset[i]);
        json_object_set_new(s, pe, json_pack("{s:n}", SSA_SELF));
        free(pe);
    }
    return s;
}

/* A shallow view of obj without metadata.managedFields (nothing shared is modified). */
static json_t *without_managed(const json_t *obj)
{
    json_t *c = json_copy(PATCH_MUT(obj));
    json_t *meta = json_object_get(obj, "metadata");
    if (json_is_object(meta) && json_object_get(meta, "managedFields")) {
        json_t *m = json_copy(meta);
        json_object_del(m, "managedFields");
        json_object_set_new(c, "metadata", m);
    }
    return c;
}

static void set_managed(json_t *obj, const struct ssa_mgrs *ms)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    json_t *arr = mgrs_encode(ms);
    json_object_del(meta, "managedFields");
    if (json_array_size(arr))
        json_object_set_new(meta, "managedFields", arr);
    else
        json_decref(arr);
}

/* ---- Update ---- */

/* Updater.Update through managedFieldsUpdater and stripMeta: what old -> new added or changed
 * becomes the manager's; removed fields leave everyone. old/new have no managedFields. */
static int track_update(struct ssa_walk *w, struct ssa_mgrs *ms, const json_t *old,
                        const json_t *new, const struct kcp_ssa_op *op, const char *manager)
{
    struct ssa_cmp c = {ssa_set_new(), ssa_set_new(), ssa_set_new()};
    json_t *ignored = ignored_set(op), *strip = strip_set();
    int rc = ssa_compare(w, &c, old, new, w->schema ? w->schema->root : NULL);
    if (rc == 0) {
        json_t *u = ssa_set_union(c.added, c.modified);
        json_t *changed = ssa_set_recursive_difference(u, ignored);
        json_t *removed = ssa_set_recursive_difference(c.removed, ignored);
        json_decref(u);
        for (size_t i = 0; i < ms->n; i++) {
            json_t *a = ssa_set_difference(ms->v[i].set, changed);
            json_t *b = ssa_set_difference(a, removed);
            json_decref(a);
            json_decref(ms->v[i].set);
            ms->v[i].set = b;
        }
        json_t *own = ssa_set_difference(changed, strip);
        if (!ssa_set_empty(own)) {
            struct ssa_mgr *m = mgrs_get(ms, manager, "Update", op->api_version, op->subresource);
            json_t *s = ssa_set_union(m->set, own);
            json_decref(m->set);
            m->set = s;
            free(m->time);
            m->time = dup_or_null(op->time);
        }
        json_decref(own);
        json_decref(changed);
        json_decref(removed);
        mgrs_drop_empty(ms);
    }
    json_decref(c.added);
    json_decref(c.modified);
    json_decref(c.removed);
    json_decref(ignored);
    json_decref(strip);
    return rc;
}

int kcp_ssa_update(json_t *obj, const json_t *old, bool create, const struct kcp_ssa_schema *schema,
                   const struct kcp_ssa_op *op, char **out_err)
{
    struct ssa_walk w = {.schema = schema, .out_err = out_err};
    struct ssa_mgrs ms = {0};
    json_t *meta = json_object_get(obj, "metadata");
    const json_t *given = json_object_get(meta, "managedFields");
    json_t *old_bare = NULL, *new_bare = NULL;
    int rc = 0;
    if (out_err)
        *out_err = NULL;
    if ((rc = patch_check_depth(obj, "object", out_err)) != 0 ||
        (rc = patch_check_depth(old, "object", out_err)) != 0)
        goto done;
    /* [{}] is how a client clears managedFields (upstream's documented reset). */
    bool reset = json_array_size(given) == 1 && json_is_object(json_array_get(given, 0)) &&
                 json_object_size(json_array_get(given, 0)) == 0;
    bool from_new = !reset && !op->subresource && json_array_size(given) > 0 &&
                    mgrs_decode(&ms, given, NULL) == 0 && ms.n > 0;
    if (!from_new) {
        mgrs_free(&ms);
        if (!reset &&
            mgrs_decode(&ms, json_object_get(json_object_get(old, "metadata"), "managedFields"),
                        NULL) != 0)
            mgrs_free(&ms);
    }
    /* skipNonAppliedManager: an existing object nobody tracks stays untracked. */
    if (ms.n == 0 && !create)
        goto done;
    old_bare = without_managed(old);
    new_bare = without_managed(obj);
    if ((rc = track_update(&w, &ms, old_bare, new_bare, op, op->manager)) != 0)
        goto done;
    mgrs_cap(&ms);
done:
    ssa_walk_clear(&w);
    if (rc == 0 && (ms.n > 0 || create)) {
        set_managed(obj, &ms);
    } else if (json_is_object(meta)) {
        json_object_del(meta, "managedFields");
    }
    mgrs_free(&ms);
    json_decref(old_bare);
    json_decref(new_bare);
    return rc;
}

/* ---- the apply merge ---- */

static int merge(struct ssa_walk *w, const json_t *l, const json_t *r, const void *node,
                 json_t **out);

/* Items of a list by path element; a repeated element maps to JSON null (upstream's observed
 * map holds no item for duplicates). pes gets each item's element in order. */
static int observe(struct ssa_walk *w, const json_t *list, const void *node,
                   const struct kcp_ssa_type *t, json_t *obs, json_t *pes)
{
    struct kcp_buf pe = KCP_BUF_INIT;
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach (PATCH_MUT(list), i, item) {
        if ((rc = ssa_item_pe(w, node, t, item, i, &pe)) != 0)
            break;
        json_array_append_new(pes, json_string(pe.data));
        if (json_object_get(obs, pe.data))
            json_object_set_new(obs, pe.data, json_null());
        else
            json_object_set(obs, pe.data, item);
    }
    kcp_buf_free(&pe);
    return rc;
}

static const json_t *observed(const json_t *obs, const char *pe)
{
    const json_t *v = json_object_get(obs, pe);
    return json_is_null(v) ? NULL : v;
}

/* structured-merge-diff's mergingWalker.visitListItems: the order of merged items. */
static int merge_list(struct ssa_walk *w, const json_t *l, const json_t *r, const void *node,
                      const struct kcp_ssa_type *t, json_t **out)
{
    json_t *lobs = json_object(), *robs = json_object(), *lpes = json_array(), *rpes = json_array();
    json_t *merged_rhs = json_object(), *res = json_array();
    const void *inode = ssa_items_node(w, node);
    int rc = observe(w, r, node, t, robs, rpes);
    if (rc == 0)
        rc = observe(w, l, node, t, lobs, lpes);
    size_t ln = json_array_size(lpes), rn = json_array_size(rpes);
    /* The right-hand elements also on the left, in the right-hand order. */
    const char **shared = kcp_calloc(rn + 1, sizeof(*shared));
    size_t nshared = 0, next = 0;
    for (size_t i = 0; i < rn && rc == 0; i++) {
        const char *pe = json_string_value(json_array_get(rpes, i));
        if (json_object_get(lobs, pe))
            shared[nshared++] = pe;
    }
    const char *next_shared = nshared ? shared[next++] : NULL;
    size_t li = 0, ri = 0;
    while (rc == 0 && (li < ln || ri < rn)) {
        json_t *item = NULL;
        if (li < ln && ri < rn) {
            const char *lpe = json_string_value(json_array_get(lpes, li));
            const char *rpe = json_string_value(json_array_get(rpes, ri));
            if (strcmp(lpe, rpe) == 0) {
                json_object_set_new(merged_rhs, lpe, json_true());
                if ((rc = ssa_push(w, lpe)) != 0)
                    break;
                rc = merge(w, observed(lobs, lpe), observed(robs, rpe), inode, &item);
                ssa_pop(w);
                if (rc)
                    break;
                json_array_append_new(res, item);
                li++;
                ri++;
                next_shared = next < nshared ? shared[next++] : NULL;
                continue;
            }
            if (json_object_get(robs, lpe) && next_shared && strcmp(next_shared, lpe) != 0) {
                li++; /* a shared item, emitted where the right-hand side has it */
                continue;
            }
        }
        if (li < ln) {
            const char *lpe = json_string_value(json_array_get(lpes, li));
            if (!json_object_get(robs, lpe)) {
                json_array_append_new(res, json_deep_copy(json_array_get(l, li)));
                li++;
                continue;
            }
            if (json_object_get(merged_rhs, lpe)) {
                li++;
                continue;
            }
        }
        if (ri < rn) {
            const char *rpe = json_string_value(json_array_get(rpes, ri));
            json_object_set_new(merged_rhs, rpe, json_true());
            if ((rc = ssa_push(w, rpe)) != 0)
                break;
            rc = merge(w, observed(lobs, rpe), observed(robs, rpe), inode, &item);
            ssa_pop(w);
            if (rc)
                break;
            json_array_append_new(res, item);
            ri++;
            if (next_shared && strcmp(next_shared, rpe) == 0)
                next_shared = next < nshared ? shared[next++] : NULL;
        }
    }
    free(shared);
    json_decref(lobs);
    json_decref(robs);
    json_decref(lpes);
    json_decref(rpes);
    json_decref(merged_rhs);
    if (rc) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* Merges r (the applied configuration) into l (the live value); a new tree through *out. */
static int merge(struct ssa_walk *w, const json_t *l, const json_t *r, const void *node,
                 json_t **out)
{
    if (!r) {
        *out = json_deep_copy(PATCH_MUT(l));
        return 0;
    }
    if (!l || json_is_null(l)) {
        *out = json_deep_copy(PATCH_MUT(r));
        return 0;
    }
    struct kcp_ssa_type t;
    ssa_resolve(w, node, r, &t);
    if (t.kind == KCP_SSA_LIST && !t.atomic && json_is_array(l) && json_is_array(r))
        return merge_list(w, l, r, node, &t, out);
    if ((t.kind == KCP_SSA_STRUCT || t.kind == KCP_SSA_MAP) && !t.atomic && json_is_object(l) &&
        json_is_object(r)) {
        json_t *res = json_deep_copy(PATCH_MUT(l));
        const char *k;
        json_t *x;
        json_object_foreach (PATCH_MUT(r), k, x) {
            bool declared;
            const void *fnode = ssa_field_node(w, node, &t, k, &declared);
            json_t *child = NULL;
            int rc = ssa_push_field(w, k);
            if (rc == 0) {
                rc = merge(w, json_object_get(l, k), x, fnode, &child);
                ssa_pop(w);
            }
            if (rc) {
                json_decref(res);
                return rc;
            }
            json_object_set_new(res, k, child);
        }
        *out = res;
        return 0;
    }
    *out = json_deep_copy(PATCH_MUT(r));
    return 0;
}

/* ---- pruning ---- */

/* Whether a path element is in a set once named fields count as members
 * (EnsureNamedFieldsAreMembers). */
static bool owned(const json_t *s, bool named)
{
    return ssa_set_member(s) || (named && ssa_set_has_children(s));
}

/* Updater.prune: removes from v (mutable) what the applier owned last time (last) and no
 * manager owns now (managed, which includes the applier's new set). Like upstream, only what
 * v's own field set (have) names can go: an empty list the configuration keeps stays. */
static void prune(struct ssa_walk *w, json_t *v, const void *node, const json_t *last,
                  const json_t *managed, const json_t *have)
{
    struct kcp_ssa_type t;
    ssa_resolve(w, node, v, &t);
    if (t.atomic)
        return;
    if ((t.kind == KCP_SSA_STRUCT || t.kind == KCP_SSA_MAP) && json_is_object(v)) {
        const char *k;
        json_t *x;
        void *tmp;
        json_object_foreach_safe (v, tmp, k, x) {
            char buf[256], *heap;
            const char *pe = ssa_field_key(buf, sizeof(buf), k, &heap);
            const json_t *ls = json_object_get(last, pe);
            const json_t *mset = managed ? json_object_get(managed, pe) : NULL;
            const json_t *hs = have ? json_object_get(have, pe) : NULL;
            free(heap);
            if (!ls)
                continue;
            bool declared;
            const void *fnode = ssa_field_node(w, node, &t, k, &declared);
            if (owned(ls, declared) && !owned(mset, declared) && owned(hs, declared))
                json_object_del(v, k);
            else if (ssa_set_has_children(ls))
                prune(w, x, fnode, ls, mset, hs);
        }
    } else if (t.kind == KCP_SSA_LIST && json_is_array(v)) {
        const void *inode = ssa_items_node(w, node);
        struct kcp_buf pe = KCP_BUF_INIT;
        for (size_t i = json_array_size(v); i-- > 0;) {
            json_t *item = json_array_get(v, i);
            if (ssa_item_pe(w, node, &t, item, i, &pe) != 0)
                continue;
            const json_t *ls = json_object_get(last, pe.data);
            const json_t *mset = managed ? json_object_get(managed, pe.data) : NULL;
            const json_t *hs = have ? json_object_get(have, pe.data) : NULL;
            if (!ls)
                continue;
            if (owned(ls, false) && !owned(mset, false) && owned(hs, false))
                json_array_remove(v, i);
            else if (ssa_set_has_children(ls))
                prune(w, item, inode, ls, mset, hs);
        }
        kcp_buf_free(&pe);
        if (w->out_err) { /* item errors only skip pruning of that item */
            free(*w->out_err);
            *w->out_err = NULL;
        }
    }
}

/* ---- Apply ---- */

struct conflict_msg {
    struct kcp_buf *text;
    json_t *causes;
    const char *who; /* "conflict with ..." */
    size_t n;
    bool lines;
};

static void conflict_on_path(const char *path, void *data)
{
    struct conflict_msg *c = data;
    json_array_append_new(c->causes, json_pack("{s:s, s:s, s:s}", "reason", "FieldManagerConflict",
                                               "message", c->who, "field", path));
    if (c->lines)
        kcp_buf_printf(c->text, "\n- %s", path);
    else
        kcp_buf_printf(c->text, "%s: %s", c->who, path);
    c->n++;
}

static void count_path(const char *path, void *data)
{
    (void)path;
    (*(size_t *)data)++;
}

static int id_order(const void *pa, const void *pb)
{
    const struct ssa_mgr *a = *(const struct ssa_mgr *const *)pa,
                         *b = *(const struct ssa_mgr *const *)pb;
    return strcmp(a->id, b->id);
}

/* ConflictsFromManagers and upstream's messages; conflicts[i] belongs to ms->v[i]. */
static void conflict_report(const struct ssa_mgrs *ms, json_t *const *conflicts,
                            json_t **out_causes, char **out_err)
{
    size_t total = 0, n = 0;
    const struct ssa_mgr **order = kcp_calloc(ms->n + 1, sizeof(*order));
    for (size_t i = 0; i < ms->n; i++)
        if (conflicts[i]) {
            ssa_set_iterate(conflicts[i], count_path, &total);
            order[n++] = &ms->v[i];
        }
    qsort(order, n, sizeof(*order), id_order);
    struct kcp_buf text = KCP_BUF_INIT;
    if (total == 1)
        kcp_buf_puts(&text, "Apply failed with 1 conflict: ");
    else
        kcp_buf_printf(&text, "Apply failed with %zu conflicts: ", total);
    json_t *causes = json_array();
    for (size_t j = 0; j < n; j++) {
        const struct ssa_mgr *m = order[j];
        struct kcp_buf who = KCP_BUF_INIT;
        kcp_buf_puts(&who, "conflict with ");
        print_manager(&who, m);
        if (total != 1)
            kcp_buf_printf(&text, "%sconflicts with %s:", j ? "\n" : "",
                           who.data + strlen("conflict with "));
        struct conflict_msg c = {&text, causes, who.data, 0, total != 1};
        ssa_set_iterate(conflicts[m - ms->v], conflict_on_path, &c);
        kcp_buf_free(&who);
    }
    free(order);
    *out_causes = causes;
    if (out_err) {
        free(*out_err);
        *out_err = kcp_buf_detach(&text);
    } else {
        kcp_buf_free(&text);
    }
}

int kcp_ssa_apply(json_t **out, bool *out_changed, const json_t *live, const json_t *zero,
                  const json_t *config, const struct kcp_ssa_schema *schema,
                  const struct kcp_ssa_op *op, json_t **out_causes, char **out_err)
{
    struct ssa_walk w = {.schema = schema, .out_err = out_err};
    struct ssa_mgrs ms = {0};
    json_t *live_bare = NULL, *zero_bare = NULL, *cfg_set = NULL, *last = NULL;
    json_t *merged = NULL, *ignored = ignored_set(op), *strip = strip_set(), *all = NULL;
    json_t **conflicts = NULL;
    size_t nconflicts = 0;
    struct ssa_cmp c = {NULL, NULL, NULL};
    const void *root = schema ? schema->root : NULL;
    int rc;
    *out = NULL;
    if (out_changed)
        *out_changed = false;
    if (out_causes)
        *out_causes = NULL;
    if (out_err)
        *out_err = NULL;
    if ((rc = patch_check_depth(config, "apply patch", out_err)) != 0 ||
        (rc = patch_check_depth(live, "object", out_err)) != 0)
        goto done;
    if (!json_is_object(config)) {
        rc = patch_fail(out_err, KCP_EBADREQUEST, "the apply patch is not an object");
        goto done;
    }
    const json_t *cmf = json_object_get(json_object_get(config, "metadata"), "managedFields");
    if (cmf && !json_is_null(cmf)) {
        rc = patch_fail(out_err, KCP_EBADREQUEST, "metadata.managedFields must be nil");
        goto done;
    }
    char *derr = NULL;
    if (mgrs_decode(&ms, json_object_get(json_object_get(live, "metadata"), "managedFields"),
                    &derr) != 0) {
        rc = patch_fail(out_err, KCP_EINTERNAL, "failed to decode managed fields: %s", derr);
        free(derr);
        goto done;
    }
    live_bare = without_managed(live);
    /* skipNonAppliedManager: the first apply to an untracked object records what is there. */
    if (ms.n == 0 && zero) {
        zero_bare = without_managed(zero);
        struct kcp_ssa_op first = *op;
        first.subresource = NULL;
        if ((rc = track_update(&w, &ms, zero_bare, live_bare, &first, "before-first-apply")) != 0)
            goto done;
    }
    /* The applier's new set: what the configuration names. */
    w.check_dups = true;
    json_t *raw = ssa_set_new();
    rc = ssa_to_set(&w, raw, config, root);
    w.check_dups = false;
    if (rc) {
        json_decref(raw);
        goto done;
    }
    cfg_set = ssa_set_recursive_difference(raw, ignored);
    json_decref(raw);
    if ((rc = merge(&w, live_bare, config, root, &merged)) != 0)
        goto done;
    char *self_id = build_id(op->manager, "Apply", op->api_version, op->subresource);
    struct ssa_mgr *self = mgrs_find(&ms, self_id);
    free(self_id);
    bool was_new = self == NULL;
    if (self)
        last = json_incref(self->set);
    self = mgrs_get(&ms, op->manager, "Apply", op->api_version, op->subresource);
    json_decref(self->set);
    self->set = json_incref(cfg_set);
    free(self->api_version);
    self->api_version = dup_or_null(op->api_version);
    if (!ssa_set_empty(last)) {
        all = ssa_set_new();
        for (size_t i = 0; i < ms.n; i++) {
            json_t *u = ssa_set_union(all, ms.v[i].set);
            json_decref(all);
            all = u;
        }
        /* The merged object's own set: a live object this cannot read is not pruned. */
        json_t *have = ssa_set_new();
        if (ssa_to_set(&w, have, merged, root) == 0)
            prune(&w, merged, root, last, all, have);
        ssa_walk_clear(&w);
        if (out_err) {
            free(*out_err);
            *out_err = NULL;
        }
        json_decref(have);
    }
    /* Updater.update: conflicts with the other managers, and removed fields leave them. */
    c.added = ssa_set_new();
    c.modified = ssa_set_new();
    c.removed = ssa_set_new();
    if ((rc = ssa_compare(&w, &c, live_bare, merged, root)) != 0)
        goto done;
    json_t *u = ssa_set_union(c.added, c.modified);
    json_t *changed = ssa_set_recursive_difference(u, ignored);
    json_t *removed = ssa_set_recursive_difference(c.removed, ignored);
    json_decref(u);
    size_t self_i = (size_t)(self - ms.v);
    nconflicts = ms.n;
    conflicts = kcp_calloc(ms.n + 1, sizeof(*conflicts));
    bool any = false;
    for (size_t i = 0; i < ms.n; i++) {
        if (i == self_i)
            continue;
        json_t *x = ssa_set_intersection(ms.v[i].set, changed);
        if (ssa_set_empty(x)) {
            json_decref(x);
            continue;
        }
        conflicts[i] = x;
        any = true;
    }
    if (any && !op->force) {
        json_t *causes = NULL;
        conflict_report(&ms, conflicts, &causes, out_err);
        if (out_causes)
            *out_causes = causes;
        else
            json_decref(causes);
        json_decref(changed);
        json_decref(removed);
        rc = KCP_ECONFLICT;
        goto done;
    }
    for (size_t i = 0; i < ms.n; i++) {
        if (i == self_i)
            continue;
        json_t *a =
            conflicts[i] ? ssa_set_difference(ms.v[i].set, conflicts[i]) : json_incref(ms.v[i].set);
        json_t *b = ssa_set_difference(a, removed);
        json_decref(a);
        json_decref(ms.v[i].set);
        ms.v[i].set = b;
    }
    json_decref(changed);
    json_decref(removed);
    /* stripMetaManager on the applier's entry. */
    json_t *own = ssa_set_difference(self->set, strip);
    json_decref(self->set);
    self->set = own;
    json_t *merged_cmp = without_managed(merged);
    bool differs = !json_equal(live_bare, merged_cmp);
    json_decref(merged_cmp);
    if (differs || was_new || !self->time) {
        free(self->time);
        self->time = dup_or_null(op->time);
    }
    mgrs_drop_empty(&ms);
    mgrs_cap(&ms);
    set_managed(merged, &ms);
    if (out_changed)
        *out_changed = differs;
    *out = merged;
    merged = NULL;
done:
    ssa_walk_clear(&w);
    if (conflicts) {
        for (size_t i = 0; i < nconflicts; i++)
            json_decref(conflicts[i]);
        free(conflicts);
    }
    mgrs_free(&ms);
    json_decref(live_bare);
    json_decref(zero_bare);
    json_decref(cfg_set);
    json_decref(last);
    json_decref(merged);
    json_decref(ignored);
    json_decref(strip);
    json_decref(all);
    json_decref(c.added);
    json_decref(c.modified);
    json_decref(c.removed);
    return rc;
}

int kcp_ssa_fieldset(json_t **out, const json_t *value, const struct kcp_ssa_schema *schema,
                     char **out_err)
{
    struct ssa_walk w = {.schema = schema, .out_err = out_err, .check_dups = true};
    json_t *s = ssa_set_new();
    *out = NULL;
    if (out_err)
        *out_err = NULL;
    int rc = patch_check_depth(value, "value", out_err);
    if (rc == 0)
        rc = ssa_to_set(&w, s, value, schema ? schema->root : NULL);
    ssa_walk_clear(&w);
    if (rc == 0)
        *out = ssa_set_to_v1(s);
    json_decref(s);
    return rc;
}
