/* fuzz_codec_json.c: libFuzzer driver for JSON parsing, normalization and JSON->protobuf. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kcp/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* First byte picks the type, so one corpus covers many messages. */
    if (size < 1)
        return 0;
    size_t nmsg = kcp_schema_message_count();
    const struct kcp_schema_message *m = kcp_schema_message_at((int)(data[0] % nmsg));
    struct kcp_codec_err err;
    json_t *v = NULL, *n = NULL, *unknown = json_array(), *dups = json_array();
    if (kcp_codec_json_parse(&v, (const char *)data + 1, size - 1, dups, &err) == 0) {
        if (json_is_object(v) && m->kind == KCP_SCHEMA_MESSAGE &&
            kcp_codec_normalize(&n, v, m, 0, unknown, &err) == 0) {
            struct kcp_buf out = KCP_BUF_INIT, pb = KCP_BUF_INIT;
            kcp_codec_json_write(&out, n);
            if (kcp_codec_json_to_pb(&pb, m, n, &err) == 0) {
                json_t *back = NULL;
                if (kcp_codec_pb_to_json(&back, m, (const uint8_t *)pb.data, pb.len, &err) == 0)
                    json_decref(back);
            }
            kcp_buf_free(&out);
            kcp_buf_free(&pb);
            json_decref(n);
        }
        json_decref(v);
    }
    json_decref(unknown);
    json_decref(dups);
    return 0;
}
