/* fuzz_codec_pb.c: libFuzzer driver for the protobuf envelope and protobuf->JSON decoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kcp/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kcp_codec_err err;
    json_t *obj = NULL;
    /* Whole bodies (envelope + the type it names). */
    if (kcp_codec_pb_decode_object(&obj, data, size, &err) == 0) {
        struct kcp_buf out = KCP_BUF_INIT, pb = KCP_BUF_INIT;
        kcp_codec_json_write(&out, obj);
        if (kcp_codec_pb_encode_object(&pb, obj, &err) == 0) {
            json_t *back = NULL;
            if (kcp_codec_pb_decode_object(&back, (const uint8_t *)pb.data, pb.len, &err) == 0)
                json_decref(back);
        }
        kcp_buf_free(&out);
        kcp_buf_free(&pb);
        json_decref(obj);
    }
    /* Raw messages of a type chosen by the first byte. */
    if (size >= 1) {
        const struct kcp_schema_message *m =
            kcp_schema_message_at((int)(data[0] % kcp_schema_message_count()));
        if (m->kind == KCP_SCHEMA_MESSAGE &&
            kcp_codec_pb_to_json(&obj, m, data + 1, size - 1, &err) == 0) {
            struct kcp_buf pb = KCP_BUF_INIT;
            kcp_codec_json_to_pb(&pb, m, obj, &err);
            kcp_buf_free(&pb);
            json_decref(obj);
        }
    }
    return 0;
}
