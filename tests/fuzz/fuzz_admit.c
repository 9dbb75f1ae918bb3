/*
 * libFuzzer driver: admission as a write does it. The first byte picks the resource; the rest is
 * a JSON object, normalised to the kind's schema (the write path's decoder), then defaulted and
 * validated, as a create and as an update over its own defaulted copy.
 */
#include "api_int.h"

#include <kcp/codec.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct kcp_schema_resource *r =
        kcp_schema_resource_at(data[0] % kcp_schema_resource_count());
    json_t *in = NULL, *obj = NULL;
    struct kcp_codec_err err = {{0}};
    if (kcp_codec_json_parse(&in, (const char *)data + 1, size - 1, NULL, &err) != 0)
        return 0;
    if (json_is_object(in) &&
        kcp_codec_normalize(&obj, in, kcp_schema_message_at(r->msg), 0, NULL, &err) == 0) {
        json_t *old = json_deep_copy(obj);
        api_admit_defaults(r, old);
        api_admit_defaults(r, obj);
        json_decref(api_admit_validate(r, obj, NULL));
        json_decref(api_admit_validate(r, obj, old));
        json_decref(old);
        json_decref(obj);
    }
    json_decref(in);
    return 0;
}
