/* libFuzzer driver: arbitrary bytes through the YAML reader of apply-patch bodies. */
#include <kcp/codec.h>

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *out = NULL;
    struct kcp_codec_err err = {0};
    if (kcp_codec_yaml_parse(&out, (const char *)data, size, &err) == 0)
        json_decref(out);
    return 0;
}
