#!/usr/bin/env python3
"""A restarted server must answer each client with the outcome of that client's own write.

A server finds the client waiting for a committed entry by the tag the entry carries (the
proposing server's id and a sequence number). Entries its previous incarnation proposed can
commit after it restarts; they must not be taken for the new incarnation's writes.

Steps: the leader stops hearing the followers (its proxy holds their connections; its own
messages still reach them), so the creates sent to it now are replicated but it never learns
that they committed; it is killed with SIGKILL and restarted at once, and 40 requests go to it as
soon as it listens: creates of new objects and updates with a stale resourceVersion (which must
fail with 409 Conflict). Meanwhile the followers elect a leader that commits the old creates.
Checks: every 201 carries the object its request created; no update with a stale
resourceVersion answers 200; every acknowledged create exists with the resourceVersion it was
given, on all three servers.

Usage: restart_ack.py; KCP= the binary."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, Report, Session, cm_path, configmap, diff_lists, now  # noqa: E402

OLD, NEW = 8, 40


def main():
    rep = Report("restart-ack")
    cl = Cluster(3, proxies=True, prefix="kcp-int-ack-")
    try:
        if cl.start(rep):
            run(cl, rep)
    finally:
        cl.shutdown(rep)
    return rep.finish()


def run(cl, rep):
    s = Session()
    r = s.call(cl.nodes[0], "POST", cm_path(), configmap("ack-target", {"v": "0"}))
    if not rep.check("a ConfigMap to update", r.status == 201, repr(r)):
        return
    target_rv = r.json()["metadata"]["resourceVersion"]
    r = s.call(cl.nodes[0], "PUT", cm_path("ack-target"), configmap("ack-target", {"v": "1"}))
    rep.check("it is updated once (its first resourceVersion is now stale)", r.status == 200, repr(r))
    leader = cl.wait_leader()
    if not rep.check("a leader", leader):
        return
    others = [n for n in cl.nodes if n is not leader]
    leader.proxy.cut({n.name for n in others}, "pause")
    old = {}

    def old_create(i):
        old[i] = Session().call(leader, "POST", cm_path(), configmap(f"ack-old-{i}", {"a": "1"}),
                                timeout=20)

    olds = [threading.Thread(target=old_create, args=(i,)) for i in range(OLD)]
    for th in olds:
        th.start()
    time.sleep(1.0)
    leader.kill()
    cl.heal()
    rep.log(f"{leader.name} (leader) got {OLD} creates it could not see commit; killed, restarted")
    leader.start()
    new = {}

    def new_request(j):
        sess = Session()
        t0 = now()
        while now() - t0 < 20:
            if j % 2 == 0:
                r = sess.call(leader, "POST", cm_path(), configmap(f"ack-new-{j}", {"a": "2"}),
                              timeout=20)
            else:
                r = sess.call(leader, "PUT", cm_path("ack-target"),
                              configmap("ack-target", {"v": f"stale-{j}"}, rv=target_rv),
                              timeout=20)
            if r.outcome != "unsent":
                break
            time.sleep(0.005)
        new[j] = r

    news = [threading.Thread(target=new_request, args=(j,)) for j in range(NEW)]
    for th in news:
        th.start()
    for th in news + olds:
        th.join(60)
    wrong, stale_ok, acked = [], [], {}
    for j, r in sorted(new.items()):
        if r.outcome != "answered":
            continue
        body = r.json() or {}
        if j % 2 == 0 and r.status == 201:
            got = body.get("metadata", {}).get("name")
            if got != f"ack-new-{j}":
                wrong.append(f"create ack-new-{j} -> 201 for {got}")
            else:
                acked[got] = body["metadata"]["resourceVersion"]
        elif j % 2 == 1 and r.status == 200:
            stale_ok.append(f"update {j} with stale resourceVersion {target_rv} -> 200 "
                            f"{body.get('data')}")
    statuses = {}
    for j, r in new.items():
        k = r.status if r.outcome == "answered" else r.outcome
        statuses[k] = statuses.get(k, 0) + 1
    rep.log(f"answers to the {NEW} requests after the restart: {statuses}")
    rep.check("every 201 to a create names the object that request created", not wrong,
              "; ".join(wrong[:6]))
    rep.check("no update with a stale resourceVersion is answered 200", not stale_ok,
              "; ".join(stale_ok[:4]))
    ok, lists = cl.converged(30)
    rep.check("all three servers list the same ConfigMaps with the same resourceVersions", ok,
              diff_lists(lists, [n.name for n in cl.nodes]))
    listed = lists[0] or {}
    rep.check("every acknowledged create exists with its resourceVersion",
              all(listed.get(k) == v for k, v in acked.items()),
              str([(k, v, listed.get(k)) for k, v in acked.items() if listed.get(k) != v][:5]))
    r = Session().call(cl.nodes[0], "GET", cm_path("ack-target"))
    v = (r.json() or {}).get("data", {}).get("v")
    rep.check("the target still holds the value of its last accepted update", v == "1", repr(r))


if __name__ == "__main__":
    sys.exit(main())
