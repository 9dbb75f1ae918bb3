/* libFuzzer driver: entry decoding and re-encoding, and resourceVersion stamping of values. */
#include <kcp/store.h>

#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Three properties: decode never crashes or leaks on any bytes; whatever decodes re-encodes to
 * the identical bytes (one meaning per entry); apply's value handling (json_rv.c + jansson)
 * survives any PUT value. The CRC would stop almost every mutation at the door, so each input
 * is also tried with its length and checksum fields repaired.
 */
static void check(const uint8_t *data, size_t size)
{
    struct kcp_store_entry e;
    if (kcp_store_entry_decode(&e, data, size) != 0)
        return;
    struct kcp_buf b = KCP_BUF_INIT;
    if (kcp_store_entry_encode(&b, &e) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
        abort();
    kcp_buf_free(&b);
    for (size_t i = 0; i < e.nops; i++) {
        struct kcp_obj *o = NULL;
        if (e.ops[i].type != KCP_STORE_PUT)
            continue;
        if (store_obj_build(&o, e.ops[i].key, e.ops[i].key_len, e.ops[i].value, e.ops[i].value_len,
                            7, 3) == 0) {
            if (o->mod_revision != 7 || !json_is_object(o->doc))
                abort();
            kcp_obj_unref(o);
        }
    }
    kcp_store_entry_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size < 40 || size > (1u << 20))
        return 0;
    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    for (int i = 0; i < 4; i++) {
        copy[4 + i] = (uint8_t)(size >> (8 * i));
    }
    uint32_t crc = store_crc32c(0, copy, size - 4);
    for (int i = 0; i < 4; i++)
        copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    check(copy, size);
    free(copy);
    return 0;
}
