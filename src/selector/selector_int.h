/* Internals shared by the selector module: upstream's validation messages and Go-style quoting. */
#ifndef KCP_SELECTOR_INT_H
#define KCP_SELECTOR_INT_H

#include <kcp/base.h>
#include <kcp/selector.h>

#include <stdbool.h>
#include <stdint.h>

/* Appends s as Go's %q prints it, which is how upstream quotes values in field errors. */
void selector_quote(struct kcp_buf *b, const char *s);

/*
 * Upstream's validation.IsQualifiedName and IsValidLabelValue: NULL when valid, else a new string
 * (caller frees) holding every complaint joined by "; ", word for word.
 */
char *selector_check_key(const char *key);
char *selector_check_value(const char *value);

/* Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, no overflow. */
bool selector_parse_int64(const char *s, int64_t *out);

/* Sets *out_err (if wanted) to a formatted message and returns KCP_EBADREQUEST. */
int selector_fail(char **out_err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
