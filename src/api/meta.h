/* Object metadata facts the API layer decides before an entry is built: uids, times, names. */
#ifndef KCP_API_META_H
#define KCP_API_META_H

#include <stddef.h>
#include <stdint.h>

/* A random (version 4) UUID in its 36-character form; out must hold 37 bytes. */
int api_meta_uid(char out[37]);

/* RFC 3339 UTC with second precision ("2026-11-25T19:26:17Z", metav1.Time); out >= 21. */
void api_meta_time(char *out, size_t cap, int64_t seconds);
/* RFC 3339 UTC with microseconds ("...T19:26:17.123456Z", metav1.MicroTime); out >= 28. */
void api_meta_microtime(char *out, size_t cap, int64_t seconds, int32_t nanos);

/* The 5 random characters upstream appends to generateName (its consonant-digit alphabet). */
void api_meta_name_suffix(char out[6]);

/*
 * Name validation with upstream's messages (k8s.io/apimachinery validation): a DNS-1123
 * subdomain (most kinds) or label (namespaces; which kind uses which is proto/'s name-format).
 * Returns NULL when valid, else a message the caller frees.
 */
char *api_meta_check_dns1123_subdomain(const char *name);
char *api_meta_check_dns1123_label(const char *name);
/* A DNS-1035 label (Service names): a DNS-1123 label that starts with a letter. */
char *api_meta_check_dns1035_label(const char *name);
/* A name that is one URL path segment (RBAC names such as "system:node"). */
char *api_meta_check_path_segment(const char *name);
/* A ConfigMap or Secret key. */
char *api_meta_check_config_key(const char *key);

#endif
