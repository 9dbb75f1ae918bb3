/*
 * Table columns per resource, generated from proto/printers.tsv (scripts/gen/apigen.py,
 * docs/SCHEMA.md "Table columns"); printer.c renders their cells.
 */
#ifndef KCP_API_PRINTER_H
#define KCP_API_PRINTER_H

#include <kcp/schema.h>

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A computed cell (api_cell_NAME in printer.c): a new reference. now: wall-clock seconds. */
typedef json_t *api_cell_fn(const json_t *obj, int64_t now);

enum api_cell_kind {
    API_CELL_STR,      /* the string at path, else dflt ("" if NULL) when absent or empty */
    API_CELL_INT,      /* the integer at path, else 0 */
    API_CELL_COUNT,    /* keys or items at each of the comma-separated paths, summed */
    API_CELL_JOIN,     /* the strings at path (one [*]) joined by "," */
    API_CELL_SELECTOR, /* a LabelSelector's matchLabels as k=v,... or <none> */
    API_CELL_KV,       /* a string map as k=v,... or <none> */
    API_CELL_AGE,      /* time since metadata.creationTimestamp, as kubectl prints it */
    API_CELL_CREATED,  /* metadata.creationTimestamp itself, or null */
    API_CELL_LIT,      /* dflt */
    API_CELL_FN,       /* fn */
};

struct api_column {
    const char *name;
    const char *type; /* string, integer, number, boolean, date */
    const char *format;
    int priority;     /* 0: shown by default; 1: with -o wide */
    uint8_t cell;     /* enum api_cell_kind */
    const char *path; /* ".spec.nodeName" */
    const char *dflt;
    api_cell_fn *fn;
};

struct api_printer {
    const char *group; /* "" for the core group */
    const char *resource;
    const struct api_column *columns; /* Name first */
    size_t ncolumns;
};

extern const struct api_printer api_printers[];
extern const size_t api_nprinters;
extern const struct api_printer api_printer_default; /* Name, Created At */

/* The printer of a resource (the default one when it has none). */
const struct api_printer *api_printer_for(const struct kcp_schema_resource *rsrc);
/* One cell of obj (a new reference). */
json_t *api_printer_cell(const struct api_column *col, const json_t *obj, int64_t now);

#endif
