#!/usr/bin/env python3
"""Service allocation checks against one kcp or the servers of one cluster: concurrent creates get
distinct ClusterIPs and NodePorts; a ClusterIP or NodePort in use is refused with upstream's 422;
a released one can be had again; a Service made an ExternalName gives its values back; a full
NodePort range answers upstream's 500. Prints `ok ...` or `FAIL ...` per check and ends with
"N passed, N failed".

Usage: services_checks.py GROUP NAMESPACE SERVER...   (SERVER = HOST:PORT:PKI_DIR; the writes of
the race groups are spread over every server given)"""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kclient import Checks, Client  # noqa: E402

group, ns = sys.argv[1:3]
clients = []
for spec in sys.argv[3:]:
    host, port, pki = spec.split(":", 2)
    clients.append(Client(host, port, pki))
c = clients[0]
SVCS = "/api/v1/namespaces/%s/services" % ns


checks = Checks()
check = checks.check


def service(name, type_="NodePort", ip=None, node_ports=(None,)):
    ports = []
    for i, np in enumerate(node_ports):
        p = {"name": "p%d" % i, "port": 80 + i, "protocol": "TCP", "targetPort": 80 + i}
        if np:
            p["nodePort"] = np
        ports.append(p)
    spec = {"type": type_, "ports": ports, "selector": {"app": name}}
    if ip:
        spec["clusterIP"] = ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def create_all(bodies):
    """POSTs every body at once, one thread each, round-robin over the servers."""
    results = [None] * len(bodies)
    gate = threading.Barrier(len(bodies))

    def run(i):
        gate.wait()
        try:
            results[i] = clients[i % len(clients)].post(SVCS, bodies[i], timeout=30)
        except Exception as e:  # a transport failure is a failed check, not a crash
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def values(items):
    ips = [s["spec"].get("clusterIP") for s in items]
    ports = [p.get("nodePort") for s in items for p in s["spec"].get("ports", [])]
    return ips, ports


def dups(xs):
    seen, out = set(), set()
    for x in xs:
        (out if x in seen else seen).add(x)
    return sorted(out, key=str)


def invalid(r, field, text):
    """A 422 Invalid Status naming the field, whose cause says text."""
    if not hasattr(r, "json"):
        return False
    s = r.json() or {}
    cs = (s.get("details") or {}).get("causes") or []
    return (r.status == 422 and s.get("reason") == "Invalid" and s.get("code") == 422 and
            any(x.get("field") == field and text in x.get("message", "") for x in cs) and
            text in s.get("message", ""))


def held():
    """The ClusterIPs and NodePorts every Service of the cluster holds now (a list waits for the
    read barrier, so it shows every acknowledged create, whichever server took it)."""
    r = c.get("/api/v1/services")
    ips, ports = values(r.json()["items"])
    return set(ips) - {None}, set(ports) - {None}


def race(n, prefix):
    """n Services (two ports each for every third) created at once: distinct values."""
    bodies = [service("%s-%d" % (prefix, i), node_ports=(None, None) if i % 3 == 0 else (None,))
              for i in range(n)]
    results = create_all(bodies)
    bad = [r for r in results if not hasattr(r, "status") or r.status != 201]
    check("%d concurrent creates over %d server(s) all succeed" % (n, len(clients)), not bad,
          bad[0] if bad and hasattr(bad[0], "describe") else None,
          "" if not bad else "%d failed: %r" % (len(bad), bad[0]))
    made = [r.json() for r in results if hasattr(r, "status") and r.status == 201]
    ips, ports = values(made)
    check("the answers carry a ClusterIP and NodePorts", not bad and all(ips) and all(ports) and
          len(ports) == sum(len(b["spec"]["ports"]) for b in bodies))
    check("ClusterIPs in the answers are distinct", not dups(ips), detail="repeated: %s" % dups(ips))
    check("NodePorts in the answers are distinct", not dups(ports),
          detail="repeated: %s" % dups(ports))
    # What is stored, as every server lists it (a follower may lag: its list waits for the read
    # barrier, so it sees every acknowledged create).
    for i, cl in enumerate(clients):
        r = cl.get(SVCS)
        items = [s for s in (r.json() or {}).get("items", []) if s["metadata"]["name"].startswith(prefix + "-")]
        ips, ports = values(items)
        check("server %d lists the %d services with distinct ClusterIPs and NodePorts" % (i + 1, n),
              r.status == 200 and len(items) == n and not dups(ips) and not dups(ports), r,
              "items %d, repeated %s %s" % (len(items), dups(ips), dups(ports)))


if group == "race":
    race(int(os.environ.get("N", "50")), os.environ.get("PREFIX", "race"))

elif group == "requested":
    r = c.post(SVCS, service("owner"))
    check("create owner", r.status == 201, r)
    ip = r.json()["spec"]["clusterIP"]
    np = r.json()["spec"]["ports"][0]["nodePort"]
    r = c.post(SVCS, service("thief-ip", ip=ip))
    check("a ClusterIP in use is refused: 422 spec.clusterIPs provided IP is already allocated",
          invalid(r, "spec.clusterIPs", "provided IP is already allocated"), r)
    check("...with upstream's message",
          (r.json() or {}).get("message") == 'Service "thief-ip" is invalid: spec.clusterIPs: '
          'Invalid value: ["%s"]: failed to allocate IP %s: provided IP is already allocated' % (ip, ip), r)
    r = c.post(SVCS, service("thief-port", node_ports=(np,)))
    check("a NodePort in use is refused: 422 spec.ports[0].nodePort provided port is already allocated",
          invalid(r, "spec.ports[0].nodePort", "provided port is already allocated"), r)
    r = c.delete(SVCS + "/owner")
    check("delete owner", r.status == 200, r)
    r = c.post(SVCS, service("heir", ip=ip, node_ports=(np,)))
    check("the released ClusterIP and NodePort can be requested again",
          r.status == 201 and r.json()["spec"]["clusterIP"] == ip and
          r.json()["spec"]["ports"][0]["nodePort"] == np, r)
    # A NodePort changed by an update is released, the new one is held.
    r = c.patch(SVCS + "/heir", [{"op": "replace", "path": "/spec/ports/0/nodePort", "value": 32700}],
                ctype="application/json-patch+json")
    check("an update moves the NodePort", r.status == 200, r)
    r = c.post(SVCS, service("after-move", node_ports=(np,)))
    check("...the old NodePort is free again", r.status == 201, r)
    r = c.post(SVCS, service("after-move-2", node_ports=(32700,)))
    check("...and the new one is held",
          invalid(r, "spec.ports[0].nodePort", "provided port is already allocated"), r)
    # Deleting a Service frees both its ClusterIP and its NodePort.
    r = c.delete(SVCS + "/heir")
    check("delete heir", r.status == 200, r)
    r = c.post(SVCS, service("after-heir", ip=ip, node_ports=(32700,)))
    check("...its ClusterIP and NodePort are free again", r.status == 201, r)

elif group == "same-ip":
    # Ten creates ask for one free ClusterIP at once: exactly one gets it. Free means free now:
    # earlier groups' creates that lost a race to another server picked again at random, so
    # any fixed value may be held by one of them (no write is in flight here, so a value free
    # in this list stays free until the creates below).
    held_ips, held_ports = held()
    ip = next(a for a in ("10.43.200.%d" % (7 + len(clients) + k) for k in range(200))
              if a not in held_ips)
    port = next(p for p in range(31999, 30000, -1) if p not in held_ports)
    results = create_all([service("same-%d" % i, type_="ClusterIP", ip=ip) for i in range(10)])
    won = [r for r in results if hasattr(r, "status") and r.status == 201]
    lost = [r for i, r in enumerate(results) if hasattr(r, "status") and
            invalid(r, "spec.clusterIPs", "provided IP is already allocated") and
            r.json()["message"] == 'Service "same-%d" is invalid: spec.clusterIPs: Invalid value: '
            '["%s"]: failed to allocate IP %s: provided IP is already allocated' % (i, ip, ip)]
    check("10 concurrent requests for one ClusterIP: one 201, nine 422",
          len(won) == 1 and len(lost) == 9, None,
          "%s: 201: %d, 422: %d, other: %r" % (ip, len(won), len(lost),
                                               [r for r in results if r not in won and r not in lost][:1]))
    results = create_all([service("same-port-%d" % i, node_ports=(port,)) for i in range(10)])
    won = [r for r in results if hasattr(r, "status") and r.status == 201]
    lost = [r for i, r in enumerate(results) if hasattr(r, "status") and
            invalid(r, "spec.ports[0].nodePort", "provided port is already allocated") and
            r.json()["message"] == 'Service "same-port-%d" is invalid: spec.ports[0].nodePort: '
            'Invalid value: %d: provided port is already allocated' % (i, port)]
    check("10 concurrent requests for one NodePort: one 201, nine 422",
          len(won) == 1 and len(lost) == 9, None,
          "%d: 201: %d, 422: %d" % (port, len(won), len(lost)))

elif group == "external-name":
    # A Service can become an ExternalName (a DNS alias, no address): the fields the client
    # left as they were (clusterIP, clusterIPs, the IP family fields, nodePorts,
    # externalTrafficPolicy) are dropped and the values released; changed ones are refused.
    r = c.post(SVCS, service("ext"))
    check("create a NodePort Service", r.status == 201, r)
    ip, np = r.json()["spec"]["clusterIP"], r.json()["spec"]["ports"][0]["nodePort"]
    r = c.patch(SVCS + "/ext", {"spec": {"type": "ExternalName", "externalName": "db.example.com"}})
    spec = (r.json() or {}).get("spec", {})
    gone = [k for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                        "externalTrafficPolicy") if k in spec]
    check("a merge patch makes it an ExternalName", r.status == 200 and
          spec.get("type") == "ExternalName" and spec.get("externalName") == "db.example.com", r)
    check("...without its address, IP family fields and externalTrafficPolicy", r.status == 200 and
          not gone, r, "still there: %s" % gone)
    check("...or nodePorts", r.status == 200 and
          all("nodePort" not in p for p in spec.get("ports", [])), r)
    r = c.post(SVCS, service("ext-ip", type_="ClusterIP", ip=ip))
    check("its ClusterIP is free again", r.status == 201, r)
    r = c.post(SVCS, service("ext-port", node_ports=(np,)))
    check("its NodePort is free again", r.status == 201, r)
    # Clearing clusterIP (a JSON patch as kubectl edit makes it) clears clusterIPs too.
    r = c.post(SVCS, service("ext2", type_="ClusterIP"))
    ip2 = r.json()["spec"]["clusterIP"]
    r = c.patch(SVCS + "/ext2", [{"op": "replace", "path": "/spec/type", "value": "ExternalName"},
                                 {"op": "add", "path": "/spec/externalName", "value": "x.example.com."},
                                 {"op": "replace", "path": "/spec/clusterIP", "value": ""}],
                ctype="application/json-patch+json")
    spec = (r.json() or {}).get("spec", {})
    check("clearing clusterIP while becoming an ExternalName clears clusterIPs",
          r.status == 200 and "clusterIP" not in spec and "clusterIPs" not in spec, r)
    r = c.post(SVCS, service("ext2-ip", type_="ClusterIP", ip=ip2))
    check("...and releases the address", r.status == 201, r)
    # An address the client changed is the client's, and an ExternalName may not have one.
    r = c.post(SVCS, service("ext3", type_="ClusterIP"))
    r = c.patch(SVCS + "/ext3", {"spec": {"type": "ExternalName", "externalName": "x.example.com",
                                          "clusterIP": "10.43.250.1"}})
    check("a changed clusterIP with ExternalName: 422 spec.clusterIPs Forbidden",
          r.status == 422 and (r.json() or {}).get("message") ==
          'Service "ext3" is invalid: spec.clusterIPs: Forbidden: may not be set for ExternalName '
          'services', r)
    r = c.patch(SVCS + "/ext3", {"spec": {"type": "ExternalName"}})
    check("an ExternalName without externalName: 422 Required",
          r.status == 422 and (r.json() or {}).get("message") ==
          'Service "ext3" is invalid: spec.externalName: Required value', r)
    # And back: a ClusterIP type gets an address again.
    r = c.patch(SVCS + "/ext", {"spec": {"type": "ClusterIP", "externalName": None}})
    spec = (r.json() or {}).get("spec", {})
    check("an ExternalName made a ClusterIP Service again gets a new address",
          r.status == 200 and spec.get("clusterIP") not in (None, "", ip) and
          spec.get("clusterIPs") == [spec.get("clusterIP")], r)

elif group == "full":
    # Every NodePort taken: the next one is upstream's 500, not a 422 (the request is valid).
    held_ports = held()[1]
    free = 32767 - 30000 + 1 - len(held_ports)
    # A few kept-alive connections, not one TLS handshake per create: a few thousand creates.
    statuses = []

    def fill(k, names):
        conn = c.conn(timeout=30)
        try:
            for name in names:
                conn.request("POST", SVCS, body=json.dumps(service(name)),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
        finally:
            conn.close()

    names = ["fill-%d" % i for i in range(free)]
    threads = [threading.Thread(target=fill, args=(k, names[k::32])) for k in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("%d NodePort Services fill the range" % free,
          len(statuses) == free and all(st == 201 for st in statuses), None,
          "answers: %r" % sorted(set(statuses)))
    r = c.post(SVCS, service("one-too-many"))
    s = r.json() or {}
    check("the next one: 500 InternalError failed to allocate a nodePort: range is full",
          r.status == 500 and s.get("reason") == "InternalError" and s.get("code") == 500 and
          s.get("message") == "Internal error occurred: failed to allocate a nodePort: range is full"
          and (s.get("details") or {}).get("causes") ==
          [{"message": "failed to allocate a nodePort: range is full"}], r)
    r = c.post(SVCS, service("asks-for-one", node_ports=(30000,)))
    check("...while asking for one in use is still 422",
          invalid(r, "spec.ports[0].nodePort", "provided port is already allocated"), r)

elif group == "distinct":
    # Everything stored so far in the namespace (after a restart, say) is still distinct.
    r = c.get(SVCS)
    ips, ports = values(r.json()["items"])
    check("stored services hold distinct ClusterIPs and NodePorts", not dups(ips) and not dups(ports),
          r, "repeated %s %s" % (dups(ips), dups(ports)))

else:
    print("FAIL unknown group %s" % group)
    checks.failed += 1

checks.finish()
