/* libFuzzer driver: arbitrary bytes through the Raft wire decoder, and decoded messages into a
 * core. */
#include <kcp/base.h>
#include <kcp/raft.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * 1. The whole input decodes or is refused with KCP_EBADREQUEST; what decodes re-encodes to the
 *    same bytes. The same for the input as a configuration.
 * 2. The input as a series of u16-length-prefixed messages, each decoded and (addressed to it)
 *    fed to a fresh follower of a 3-voter cluster, with a tick between them: whatever a peer
 *    sends, the core neither crashes nor asserts.
 */

static void roundtrip(const uint8_t *data, size_t size)
{
    struct kcp_raft_msg m;
    int rc = kcp_raft_msg_decode(&m, data, size);
    if (rc != 0) {
        if (rc != KCP_EBADREQUEST)
            abort();
        return;
    }
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_msg_encode(&m, &b);
    if (b.len != size || memcmp(b.data, data, size) != 0)
        abort();
    kcp_buf_free(&b);
    kcp_raft_msg_free(&m);

    struct kcp_raft_config c;
    if (kcp_raft_config_decode(&c, data, size) == 0) {
        kcp_raft_config_encode(&c, &b);
        if (b.len != size || memcmp(b.data, data, size) != 0)
            abort();
        kcp_buf_free(&b);
    }
}

static void feed(const uint8_t *data, size_t size)
{
    struct kcp_raft_options o;
    struct kcp_raft *r;
    kcp_raft_options_default(&o, 2);
    o.election_timeout_ms = 100;
    o.heartbeat_ms = 10;
    if (kcp_raft_new(&r, &o) != 0)
        abort();
    struct kcp_raft_config c = {.n = 3};
    for (int i = 0; i < 3; i++) {
        c.servers[i].id = (uint64_t)i + 1;
        c.servers[i].role = KCP_RAFT_VOTER;
    }
    struct kcp_buf cb = KCP_BUF_INIT;
    kcp_raft_config_encode(&c, &cb);
    struct kcp_raft_entry e = {1, 1, KCP_RAFT_ENTRY_CONFIG, {cb.data, cb.len}};
    struct kcp_raft_update u;
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_START, .now_ms = 1};
    ev.start.hard_state = (struct kcp_raft_hard_state){1, 0, 1};
    ev.start.entries = &e;
    ev.start.n_entries = 1;
    if (kcp_raft_step(r, &ev, &u) != 0)
        abort();
    uint64_t now = 1;
    while (size >= 2) {
        size_t len = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        struct kcp_raft_msg m;
        if (kcp_raft_msg_decode(&m, data, len) == 0) {
            m.to = 2;
            ev = (struct kcp_raft_event){.type = KCP_RAFT_EV_RECEIVE, .now_ms = now};
            ev.receive.msg = &m;
            if (kcp_raft_step(r, &ev, &u) != 0)
                abort();
            /* Play the disk: everything the core wrote becomes durable. */
            if (u.n_entries) {
                ev = (struct kcp_raft_event){.type = KCP_RAFT_EV_PERSISTED, .now_ms = now};
                ev.persisted.index = u.entries[u.n_entries - 1].index;
                ev.persisted.term = u.entries[u.n_entries - 1].term;
                kcp_raft_msg_free(&m);
                if (kcp_raft_step(r, &ev, &u) != 0)
                    abort();
            } else {
                kcp_raft_msg_free(&m);
            }
            if (u.n_chunks && u.chunks[u.n_chunks - 1].last) {
                ev = (struct kcp_raft_event){.type = KCP_RAFT_EV_SNAPSHOT_PERSISTED, .now_ms = now};
                ev.persisted.index = u.chunks[u.n_chunks - 1].index;
                ev.persisted.term = u.chunks[u.n_chunks - 1].term;
                if (kcp_raft_step(r, &ev, &u) != 0)
                    abort();
            }
        }
        data += len;
        size -= len;
        now += 37;
        ev = (struct kcp_raft_event){.type = KCP_RAFT_EV_TICK, .now_ms = now};
        if (kcp_raft_step(r, &ev, &u) != 0)
            abort();
    }
    kcp_raft_free(r);
    kcp_buf_free(&cb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    roundtrip(data, size);
    feed(data, size);
    return 0;
}
