/* Internal to the api module: the API object, the per-request context, shared helpers. */
#ifndef KCP_API_INT_H
#define KCP_API_INT_H

#include <kcp/api.h>
#include <kcp/base.h>
#include <kcp/codec.h>
#include <kcp/patch.h>
#include <kcp/schema.h>
#include <kcp/store.h>

#include <jansson.h>
#include <stdbool.h>

#include "media.h"
#include "path.h"

struct api_watch;

/*
 * An update or patch without a resourceVersion is retried by the server on a conflict with a
 * concurrent writer (upstream's GuaranteedUpdate retries without end); this bound only stops a
 * livelock, answered with 409.
 */
#define API_MAX_SERVER_RETRIES 100

struct kcp_api {
    struct kcp_loop *loop;
    struct kcp_http_server *http;
    struct kcp_store *store;
    size_t max_watchers;
    kcp_api_barrier_fn barrier;
    void *barrier_data;
    kcp_api_barrier_fn write_barrier;
    size_t nwatchers;
    struct api_watch *watches; /* open streams, for shutdown */
    char *openapi_v2;          /* inflated once, on first request */
    size_t openapi_v2_len;
    uint64_t request_seq;
};

enum api_verb {
    API_VERB_NONE,
    API_VERB_GET,
    API_VERB_LIST,
    API_VERB_WATCH,
    API_VERB_CREATE,
    API_VERB_UPDATE,
    API_VERB_PATCH,
    API_VERB_DELETE,
    API_VERB_DELETECOLLECTION,
};

/* One API request from routing to its response; freed by api_req_finish. */
struct api_req {
    struct kcp_api *api;
    struct kcp_http_request *http;
    struct kcp_http_response *res;
    struct api_path path;
    enum api_verb verb;
    const struct kcp_schema_resource *rsrc;
    const struct kcp_schema_subresource *sub;
    struct api_media media;
    bool gone;       /* the client went away; res must not be used */
    bool in_store;   /* a store request is outstanding; free when it returns */
    struct kcp_store_req store_req;
    /* Write state, kept across the async proposal. */
    json_t *obj;     /* the object to store */
    json_t *warnings; /* strings for Warning headers */
    bool dry_run;
    int attempts;    /* patch/update retries on conflict */
    struct kcp_buf key;
    void *verb_state; /* verb-specific (watch, delete collection) */
    /* Continuation of a proposal: runs on the loop when the store answers (never if gone). */
    void (*cont)(struct api_req *r, int status, const struct kcp_store_result *res);
    uint64_t expect_revision; /* precondition of the proposal (0 = must not exist) */
    bool client_revision;     /* the client named a resourceVersion: a conflict is theirs */
    bool finalizing;          /* the write removes the last finalizer of a deleted object */
    uint64_t rv_deadline_ms;  /* a read of a future resourceVersion waits until then */
    void (*retry)(struct api_req *r); /* re-runs the verb after a conflict it caused itself */
    bool managed_set;         /* managedFields are decided (apply): the pipeline keeps them */
    /* The write barrier answered from local state (KCP_API_BARRIER_LOCAL) and no entry of the
     * request has been applied since: a response waits in `parked` for the full barrier. */
    bool unconfirmed;
    int parked_code;
    const char *parked_type; /* borrowed: responses name their type with string literals */
    struct kcp_buf parked;
};

/* ---- server.c: request lifecycle ---- */
/* Completes the request: frees it unless a store request is outstanding (then on return). */
void api_req_finish(struct api_req *r);
/* A query parameter (decoded) or NULL. */
const char *api_query(const struct api_req *r, const char *key);
/* "true"/"1" → true. */
bool api_query_bool(const struct api_req *r, const char *key);

/* ---- respond.c ---- */
/*
 * A failure Status (API conventions): err is a KCP_E* code giving code and reason; message is
 * formatted; details (name/kind/group from the request's resource) are added when name is set.
 * causes: NULL or a JSON array of {reason, message, field} objects (stolen).
 * Completes the request.
 */
void api_fail(struct api_req *r, int err, const char *name, json_t *causes, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* NotFound/AlreadyExists/Conflict for the request's resource and a name, upstream's words. */
void api_fail_object(struct api_req *r, int err, const char *name);
/* Status Success (e.g. for an immediate delete). */
void api_respond_success(struct api_req *r, const char *name, const char *uid);
/* An object tree (kind/apiVersion present) in the negotiated format. Completes the request. */
void api_respond_object(struct api_req *r, int code, const json_t *obj);
/* PartialObjectMetadata of an object (new reference). */
json_t *api_partial_of(const json_t *obj);
/* A stored object (shared encodings used where possible). Completes the request. */
void api_respond_stored(struct api_req *r, int code, const struct kcp_obj *obj);
/* Raw JSON text, already encoded. Completes the request. */
void api_respond_json_text(struct api_req *r, int code, const char *content_type,
                           const char *json, size_t len);
/* Adds Warning headers for r->warnings. */
void api_emit_warnings(struct api_req *r);

/* ---- discovery.c, openapi.c ---- */
void api_discovery(struct api_req *r);
void api_openapi_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                            void *data);

/* ---- read.c ---- */
void api_get(struct api_req *r);
void api_list(struct api_req *r);
/* Builds the store key of the request's object (name NULL: the collection prefix). */
void api_key(struct api_req *r, struct kcp_buf *out, const char *name);
/* Selectors of a list/watch request; 0 or a completed 400. */
struct kcp_label_selector;
struct kcp_field_selector;
struct api_filter {
    struct kcp_label_selector *labels;
    struct kcp_field_selector *fields;
};
int api_filter_parse(struct api_req *r, struct api_filter *out);
bool api_filter_match(const struct api_req *r, const struct api_filter *f, const json_t *obj);
void api_filter_free(struct api_filter *f);
/* Appends a protobuf varint (list_pb.c; also used by the watch framing). */
void api_pb_varint(struct kcp_buf *b, uint64_t v);

/* ---- watch.c ---- */
void api_watch(struct api_req *r);

/* ---- write.c ---- */
void api_create(struct api_req *r);
void api_update(struct api_req *r);
void api_patch(struct api_req *r);
void api_delete(struct api_req *r);
void api_delete_collection(struct api_req *r);
/* The namespace controller's pass (delete.c): see there. */
void api_namespace_cleanup(struct kcp_api *api, const char *ns);
void api_namespace_changed(struct kcp_api *api, const char *ns);
/* POST pods/{name}/binding and pods/{name}/eviction (pods.c). */
void api_pod_subresource(struct api_req *r);

/* ---- write.c: the pipeline shared by the write verbs ---- */
/* Proposes one op (PUT obj, or DELETE when obj is NULL) for key; then r->cont. */
void api_propose(struct api_req *r, const char *verb, const char *key, size_t key_len,
                 const json_t *obj, int precond, uint64_t revision);
/* Decodes a request body into an object of the request's kind, normalised; completes the
 * request with 400/415/422 and returns NULL on failure. Unknown fields go to r->warnings or
 * fail under fieldValidation=Strict. */
json_t *api_decode_body(struct api_req *r);
/* Finishes an update of current into obj (metadata carried over, generation, status rules),
 * validates and proposes it; completes the request. */
void api_write_update(struct api_req *r, const struct kcp_obj *current, json_t *obj);
/* The Scale subresource of a workload object (autoscaling/v1), and applying one back. */
json_t *api_scale_of(const struct api_req *r, const json_t *obj);
int api_scale_apply(json_t *obj, const json_t *scale);

/* Queues a Warning header "<what> field \"<path>\"" (fieldValidation=Warn). */
void api_warn_field(struct api_req *r, const char *what, const char *path);
/* 422 for a bad query option, with upstream's details (kind CreateOptions/UpdateOptions/...). */
void api_fail_options(struct api_req *r, const char *field, const char *value, const char *why);
/* The same for any cause: reason (FieldValueRequired, ...) and its message ("Required value:
 * is required for apply patch"). */
void api_fail_option(struct api_req *r, const char *field, const char *reason, const char *msg);

/* Creates obj (decoded, of the request's kind; stolen): metadata decided here, defaults,
 * validation, the managedFields entry, proposal; completes the request (201). */
void api_write_create(struct api_req *r, json_t *obj);

/* ---- managed.c: field managers (metadata.managedFields) ---- */
struct ssa_node;
/* src/patch's structured-merge-diff schema over the generated tables; nodes live until free. */
struct api_ssa_schema {
    struct kcp_ssa_schema schema;
    struct ssa_node *arena;
};
void api_ssa_schema_init(struct api_ssa_schema *s, const struct kcp_schema_message *m);
void api_ssa_schema_free(struct api_ssa_schema *s);
/* The type's zero value as Go encodes it (what upstream compares a created object against). */
json_t *api_zero_object(const struct kcp_schema_message *m);
/* The request's manager: ?fieldManager=, else upstream's prefix of the User-Agent. */
const char *api_field_manager(struct api_req *r, char *buf, size_t cap);
/* 0, or a completed 422 for a fieldManager that is too long or not printable. */
int api_check_field_manager(struct api_req *r);
/* The reset fields of the request's endpoint (NULL-terminated into out[cap >= 3]). */
void api_ssa_reset(const struct api_req *r, const char **out, size_t cap);
/* Records the request's Update in obj's managedFields (old NULL for a create). */
void api_managed_update(struct api_req *r, const json_t *old, json_t *obj);
/* ---- apply.c: PATCH application/apply-patch+yaml ---- */
void api_apply(struct api_req *r);

/* ---- write.c: bodies of other kinds ---- */
/* Parses a JSON body (patch or options); NULL with a completed 400 on failure. */
json_t *api_parse_json_body(struct api_req *r);

/* ---- admit.c: defaults and validation ---- */
/* Fills defaults upstream applies on create/update (secret type, pod restartPolicy, ...). */
void api_admit_defaults(const struct kcp_schema_resource *rsrc, json_t *obj);
/* Validates; returns NULL or a JSON array of causes (caller owns). */
json_t *api_admit_validate(const struct kcp_schema_resource *rsrc, const json_t *obj,
                           const json_t *old);

/* ---- table.c ---- */
/* A Table for the objects (JSON trees); include: "None", "Metadata" (default), "Object". */
json_t *api_table_new(const struct kcp_schema_resource *rsrc, bool with_columns);
void api_table_add_row(json_t *table, const struct kcp_schema_resource *rsrc, const json_t *obj,
                       const char *include, int64_t now);

/* ---- json helpers (respond.c) ---- */
/* obj.metadata.<field> as a string, or NULL. */
const char *api_meta_str(const json_t *obj, const char *field);
/* The request's resource as "apps/v1" style apiVersion. */
const char *api_group_version(const struct kcp_schema_resource *rsrc, char *buf, size_t cap);

#endif
