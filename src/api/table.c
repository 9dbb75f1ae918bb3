/*
 * meta.k8s.io/v1 Table rendering for `kubectl get`: the columns of proto/printers.tsv (upstream's
 * column sets for common kinds), rendered by printer.c.
 */
#include "api_int.h"
#include "printer.h"

#include "list.h"
#include "meta.h"

#include <kcp/codec.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *api_table_new(const struct kcp_schema_resource *rsrc, bool with_columns)
{
    json_t *t = json_object();
    json_object_set_new(t, "kind", json_string("Table"));
    json_object_set_new(t, "apiVersion", json_string("meta.k8s.io/v1"));
    json_object_set_new(t, "metadata", json_object());
    if (with_columns) {
        json_t *cols = json_array();
        const struct api_printer *p = api_printer_for(rsrc);
        for (size_t i = 0; i < p->ncolumns; i++) {
            const struct api_column *c = &p->columns[i];
            json_t *col = json_object();
            json_object_set_new(col, "name", json_string(c->name));
            json_object_set_new(col, "type", json_string(c->type));
            json_object_set_new(col, "format", json_string(c->format));
            json_object_set_new(col, "description", json_string(""));
            json_object_set_new(col, "priority", json_integer(c->priority));
            json_array_append_new(cols, col);
        }
        json_object_set_new(t, "columnDefinitions", cols);
    }
    json_object_set_new(t, "rows", json_array());
    return t;
}

json_t *api_table_row(const struct kcp_schema_resource *rsrc, const json_t *obj,
                      const char *include, int64_t now)
{
    json_t *row = json_object();
    json_t *cells = json_array();
    const struct api_printer *p = api_printer_for(rsrc);
    for (size_t i = 0; i < p->ncolumns; i++)
        json_array_append_new(cells, api_printer_cell(&p->columns[i], obj, now));
    json_object_set_new(row, "cells", cells);
    if (strcmp(include, "Object") == 0) {
        json_object_set(row, "object", (json_t *)obj);
    } else if (strcmp(include, "None") != 0) {
        json_t *partial = json_object();
        json_object_set_new(partial, "kind", json_string("PartialObjectMetadata"));
        json_object_set_new(partial, "apiVersion", json_string("meta.k8s.io/v1"));
        json_object_set(partial, "metadata", json_object_get(obj, "metadata"));
        json_object_set_new(row, "object", partial);
    }
    return row;
}

void api_table_add_row(json_t *table, const struct kcp_schema_resource *rsrc, const json_t *obj,
                       const char *include, int64_t now)
{
    json_array_append_new(json_object_get(table, "rows"), api_table_row(rsrc, obj, include, now));
}
