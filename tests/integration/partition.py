#!/usr/bin/env python3
"""Cut the leader of a 3-server cluster off from the other two, then heal.

Each server advertises (--advertise-address) a TCP proxy that this test controls, so Raft
traffic between servers crosses it while clients still reach every server directly. Two rounds:
the proxies first reset every connection between the leader and the others ("drop"), then, with
the next leader, hold them without forwarding a byte ("pause": a link that loses everything;
what waited is delivered after the heal). Each round checks:
  - the old leader cannot commit: a create sent to it fails or times out (within 15 s), and the
    object never appears anywhere, also after the heal
  - a read without resourceVersion on the old leader does not answer stale data, nor does a
    write that reads (a patch of an object created by the majority is not answered 404)
  - the old leader stops calling itself leader (CheckQuorum)
  - the other two elect a new leader within a few seconds (time printed) and accept writes
    through both of them
  - after the heal the old leader catches up: all three list the same ConfigMaps with the same
    resourceVersions, with every acknowledged write; the new leader keeps leading (PreVote: the
    returning server does not force an election)

Usage: partition.py; KCP= the binary."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, Report, Session, cm_path, configmap, diff_lists, now  # noqa: E402

NEW_LEADER_LIMIT = 5.0


def main():
    rep = Report("partition")
    cl = Cluster(3, proxies=True, prefix="kcp-int-part-")
    try:
        if not cl.start(rep):
            return rep.finish()
        acked = {}
        sess = Session()
        for nd in cl.nodes:
            r = sess.call(nd, "POST", cm_path(), configmap(f"p-base-{nd.name}", {"a": "1"}))
            if r.status == 201:
                acked[f"p-base-{nd.name}"] = r.json()["metadata"]["resourceVersion"]
        rep.check("writes through every server before the partition", len(acked) == 3)
        for rnd, mode in enumerate(("drop", "pause"), 1):
            if not round_(cl, rep, rnd, mode, acked):
                break
    finally:
        cl.shutdown(rep)
    return rep.finish()


def round_(cl, rep, rnd, mode, acked):
    tag = f"round {rnd} ({mode})"
    old = cl.wait_leader()
    if not rep.check(f"{tag}: a leader before the partition", old):
        return False
    majority = [n for n in cl.nodes if n is not old]
    rep.log(f"{tag}: isolating the leader {old.name} from {majority[0].name} and {majority[1].name}")
    cl.isolate(old, mode)
    t0 = now()

    # A write sent to the old leader, in the background: it must not succeed.
    old_name = f"p-old-{rnd}"
    old_res = {}

    def old_write():
        t = now()
        r = Session().call(old, "POST", cm_path(), configmap(old_name, {"a": "old"}), timeout=30)
        old_res["r"], old_res["t"] = r, now() - t

    wt = threading.Thread(target=old_write)
    wt.start()

    # The majority elects a leader of its own.
    new = None
    while now() - t0 < 20:
        seen = [n.leader(timeout=1) for n in majority]
        if seen[0] and seen[0] == seen[1] and seen[0] != old.name:
            new = cl.by_name[seen[0]]
            break
        time.sleep(0.02)
    took = now() - t0
    rep.check(f"{tag}: the majority elects a new leader within {NEW_LEADER_LIMIT:g} s "
              f"({'%.2f s: %s' % (took, new.name) if new else 'none in 20 s'})",
              new is not None and took < NEW_LEADER_LIMIT)
    if not new:
        cl.heal()
        return False

    # Writes through both servers of the majority.
    sess = Session()
    new_names = []
    for nd in majority:
        name = f"p-new-{rnd}-{nd.name}"
        t = now()
        r = None
        while now() - t < 15:
            r = sess.call(nd, "POST", cm_path(), configmap(name, {"a": "new"}), timeout=15)
            if r.outcome == "answered" and r.status in (201, 409):
                break
            time.sleep(0.2)
        ok = r is not None and r.status == 201
        if ok:
            acked[name] = r.json()["metadata"]["resourceVersion"]
            new_names.append(name)
        rep.check(f"{tag}: the majority accepts a write through {nd.name} "
                  f"({'leader' if nd is new else 'follower'})", ok, repr(r))

    # The isolated server must not answer a consistent read with what it has (stale).
    if new_names:
        r = Session().call(old, "GET", cm_path(new_names[0]), timeout=15)
        rep.check(f"{tag}: a read without resourceVersion on the isolated old leader is refused, "
                  f"not answered stale", r.outcome != "answered" or r.status not in (200, 404),
                  repr(r))
        r = Session().call(old, "GET", cm_path(), timeout=15)
        rep.check(f"{tag}: a list without resourceVersion on the isolated old leader is refused",
                  r.outcome != "answered" or r.status != 200, repr(r)[:200])
        # A write reads local state without a heartbeat round on a leader: the 404 the old
        # leader finds for the new object must wait for a round it cannot complete.
        r = Session().call(old, "PATCH", cm_path(new_names[0]), {"data": {"b": "2"}},
                           timeout=15, ctype="application/merge-patch+json")
        rep.check(f"{tag}: a patch on the isolated old leader of an object created by the "
                  f"majority is refused, not answered 404 or 200",
                  r.outcome != "answered" or r.status not in (200, 404), repr(r)[:200])

    wt.join(40)
    r = old_res.get("r")
    rep.check(f"{tag}: a create sent to the isolated old leader fails or times out within 15 s "
              f"({r!r:.90}, after {old_res.get('t', -1):.1f} s)",
              r is not None and not (r.outcome == "answered" and r.status in (200, 201)) and
              old_res["t"] < 15, repr(r))
    role = dict((m[0], m[2]) for m in (old.members() or []))
    rep.check(f"{tag}: the isolated old leader no longer calls itself leader (CheckQuorum)",
              role.get(old.name) != "leader", str(role))

    # Heal; the old leader catches up and the new leader stays.
    cl.heal()
    t1 = now()
    ok, lists = cl.converged(30)
    rep.check(f"{tag}: after the heal all three list the same ConfigMaps with the same "
              f"resourceVersions ({now() - t1:.1f} s)", ok,
              diff_lists(lists, [n.name for n in cl.nodes]))
    listed = lists[0] or {}
    rep.check(f"{tag}: the write sent to the old leader exists nowhere",
              all(old_name not in (x or {}) for x in lists))
    rep.check(f"{tag}: every acknowledged write is there with its resourceVersion",
              all(listed.get(k) == v for k, v in acked.items()),
              str([(k, v, listed.get(k)) for k, v in acked.items() if listed.get(k) != v]))
    after = cl.wait_leader(limit=10)
    rep.check(f"{tag}: the three agree on a leader after the heal, the same one "
              f"({after.name if after else None}; was {new.name})", after is new)
    return True


if __name__ == "__main__":
    sys.exit(main())
