/* Content negotiation: the Accept header and request Content-Type of the Kubernetes API. */
#ifndef KCP_API_MEDIA_H
#define KCP_API_MEDIA_H

enum api_format { API_FORMAT_JSON, API_FORMAT_YAML, API_FORMAT_PROTOBUF };

/* What a response is rendered as ("as=" of the Accept parameters). */
enum api_as {
    API_AS_OBJECT,              /* the object or list itself */
    API_AS_TABLE,               /* meta.k8s.io/v1 Table */
    API_AS_PARTIAL,             /* PartialObjectMetadata(List) */
    API_AS_DISCOVERY_AGGREGATED /* apidiscovery.k8s.io/v2 APIGroupDiscoveryList */
};

struct api_media {
    enum api_format format;
    enum api_as as;
    const char *as_version; /* "v1", "v2", "v2beta1" (static strings) */
};

/*
 * Picks the response media type from an Accept header (NULL or "" = JSON), honouring q-values
 * and the order of equal ones, and the "as"/"g"/"v" parameters kubectl sends. Returns 0, or
 * KCP_ENOTACCEPTABLE when nothing offered is supported (406 upstream).
 * allow_aggregated: the endpoint is /api or /apis, which can answer APIGroupDiscoveryList.
 */
int api_media_negotiate(struct api_media *out, const char *accept, int allow_aggregated);

/* Content-Type of a response in this media (without the "as" parameters for plain objects). */
const char *api_media_content_type(const struct api_media *m);

/* Request bodies. */
enum api_body_type {
    API_BODY_JSON,
    API_BODY_YAML,
    API_BODY_PROTOBUF,
    API_BODY_JSON_PATCH,
    API_BODY_MERGE_PATCH,
    API_BODY_STRATEGIC_PATCH,
    API_BODY_APPLY_PATCH,
};
/* Classifies a Content-Type; KCP_EMEDIATYPE for anything else (415 upstream). */
int api_media_body_type(enum api_body_type *out, const char *content_type);

#endif
