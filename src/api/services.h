/* Internal to the api module: Service allocations (services.c) and their hooks in the pipeline. */
#ifndef KCP_API_SERVICES_H
#define KCP_API_SERVICES_H

#include "api_int.h"

/*
 * Before validation, for a Service being created (old NULL) or updated into obj: what the
 * client left out of an update is kept, clusterIPs follows clusterIP, and what obj's type has
 * no use for (an ExternalName's address, a ClusterIP's nodePorts) is dropped when the client
 * left it as old had it, as upstream's registry does (services_spec.c).
 */
void api_service_prepare(json_t *obj, const json_t *old);

/* Appends to causes upstream's 422 causes for a Service's address and type-dependent fields. */
void api_service_validate(json_t *causes, const json_t *obj, const json_t *old);

/*
 * Decides the ClusterIP and NodePorts of a Service being created (old NULL) or updated into
 * obj, against the committed services and the values other writes in flight on this server
 * hold, and reserves the new ones for r until its proposal returns (api_service_on_done) or r
 * ends (api_service_forget). A value the client asked for that cannot be had goes to causes
 * (422). Returns 0, or KCP_EINTERNAL when a range has no value left for one it must pick:
 * answer that with api_service_fail_full.
 */
int api_service_allocate(struct api_req *r, json_t *obj, const json_t *old, json_t *causes);

/* Upstream's answer to a full range: 500 InternalError "failed to allocate a serviceIP: range
 * is full" (or "a nodePort"). */
void api_service_fail_full(struct api_req *r);

/*
 * Called by api_propose on the entry it built (ops[0] PUTs obj, or DELETEs when obj is NULL):
 * for a Service key, adds the ops that put or delete its allocation keys
 * (/core/serviceips/_/<ip>, /core/servicenodeports/_/<port>) and makes the entry atomic. The
 * ops live in r's allocation state until the next call or the proposal's return. Anything else
 * is left alone.
 */
void api_service_entry(struct api_req *r, struct kcp_store_entry *e, const json_t *obj);

/*
 * Called when a proposal returns, before r->cont: releases r's reservations and, when one of
 * the allocation ops failed at apply while the object's own op passed (another server took
 * the value), proposes again with other values, or answers 422 for a value the client asked
 * for. True when it took the request over (r->cont must not run).
 */
bool api_service_on_done(struct api_req *r, int status, const struct kcp_store_result *res);

/* Drops r's allocation state and reservations (the request ends). Cheap when there are none. */
void api_service_forget(struct api_req *r);

/*
 * For entries built outside api_propose (namespace cleanup, deletecollection, bootstrap):
 * appends to keys (NUL-separated) the allocation keys of svc that the store holds now, each
 * with its mod revision in *revs (grown), for DELETE ops guarded by IF_REVISION. Returns how
 * many it added.
 */
size_t api_service_keys_held(struct kcp_store *s, const json_t *svc, struct kcp_buf *keys,
                             uint64_t **revs, size_t nrevs);

/*
 * For the bootstrap entry: fills pairs (empty on entry) with the keys and values, NUL-separated,
 * of PUT ops that give every committed Service (and svc, the one being bootstrapped, unless it
 * is there already; may be NULL) the allocation keys it lacks (a data directory from before the
 * keys existed). Returns how many pairs.
 */
size_t api_service_backfill(struct kcp_store *s, const json_t *svc, struct kcp_buf *pairs);

#endif
