#!/usr/bin/env python3
"""A write acknowledged by one server is visible to the next request on any other server.

Upstream, every apiserver reads the object it updates from etcd with a quorum read, so a client
(or a load balancer) may send the next request anywhere: a GET, an update, a patch or a delete
right after a create acknowledged elsewhere finds the object. Here: 3 servers; 20 times each, a
ConfigMap is created through the leader and, as soon as the 201 is read, a follower gets a GET,
a PUT (no resourceVersion), a merge PATCH or a DELETE of it. Checks: none of them answers
404 NotFound (nor 409 Conflict, for the PUT and the PATCH, which carry no precondition).

Usage: follower_writes.py; KCP= the binary."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, Report, Result, Session, cm_path, configmap  # noqa: E402

ROUNDS = 20


def patch(node, name, body):
    c = node.client().conn(15)
    try:
        c.request("PATCH", cm_path(name), body=json.dumps(body).encode(),
                  headers={"Content-Type": "application/merge-patch+json",
                           "Accept": "application/json"})
        r = c.getresponse()
        return Result("answered", r.status, r.read())
    except OSError as e:
        return Result("lost", error=repr(e))
    finally:
        c.close()


def main():
    rep = Report("follower-writes")
    cl = Cluster(3, prefix="kcp-int-fw-")
    try:
        if not cl.start(rep):
            return rep.finish()
        leader = cl.wait_leader()
        if not rep.check("a leader", leader):
            return rep.finish()
        followers = [n for n in cl.nodes if n is not leader]
        s = Session()
        for verb in ("GET", "PUT", "PATCH", "DELETE"):
            bad = []
            for i in range(ROUNDS):
                name = f"fw-{verb.lower()}-{i}"
                r = s.call(leader, "POST", cm_path(), configmap(name, {"a": "1"}))
                if r.status != 201:
                    bad.append(f"create {name}: {r!r:.80}")
                    continue
                f = followers[i % 2]
                if verb == "GET":
                    r = s.call(f, "GET", cm_path(name))
                elif verb == "PUT":
                    r = s.call(f, "PUT", cm_path(name), configmap(name, {"a": "2"}))
                elif verb == "PATCH":
                    r = patch(f, name, {"data": {"a": "3"}})
                else:
                    r = s.call(f, "DELETE", cm_path(name))
                if r.outcome != "answered" or r.status not in (200, 202):
                    bad.append(f"{verb} {name} on {f.name}: {r!r:.90}")
            rep.check(f"{verb} on a follower right after a create acknowledged by the leader "
                      f"finds the object ({ROUNDS - len(bad)} of {ROUNDS})", not bad,
                      "; ".join(bad[:3]))
    finally:
        cl.shutdown(rep)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
