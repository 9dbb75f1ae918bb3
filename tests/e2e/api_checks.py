#!/usr/bin/env python3
"""API-machinery checks against one running kcp, with upstream kube-apiserver 1.32 as the oracle
(facts from ../shared/k8s-ref/WIRE.md and upstream's apiserver sources). Prints `ok ...` or
`FAIL ...` per check (a FAIL line carries the request and the response) and ends with
"N passed, N failed". Each group works in its own namespace.

Usage: api_checks.py HOST PORT PKI_DIR GROUP [STATE_FILE]"""
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kclient import (MAGIC, PROTOBUF, TABLE, Checks, Client, configmap_pb, decode_configmap,  # noqa: E402
                     decode_list, decode_meta, decode_status, pb_decode, pb_first, q, unenvelope)

host, port, pki, group = sys.argv[1:5]
state_file = sys.argv[5] if len(sys.argv) > 5 else None
c = Client(host, port, pki)

PARTIAL = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"


checks = Checks()
check = checks.check


def status_ok(r, code, reason):
    """r is a JSON Status with this code and reason, and the HTTP status matches."""
    s = r.json() or {}
    return (r.status == code and s.get("kind") == "Status" and s.get("apiVersion") == "v1" and
            s.get("status") == "Failure" and s.get("code") == code and s.get("reason") == reason)


def details(r):
    return (r.json() or {}).get("details") or {}


def causes(r):
    return details(r).get("causes") or []


def cm(name, data=None, labels=None, **meta):
    m = {"name": name}
    if labels:
        m["labels"] = labels
    m.update(meta)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m, "data": data or {"k": "v"}}


def namespace(name, **meta):
    m = {"name": name}
    m.update(meta)
    r = c.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": m})
    if r.status not in (201, 409):
        print("FAIL setup: create namespace %s | %s" % (name, r.describe()))
    return "/api/v1/namespaces/%s/configmaps" % name


def list_rv(path):
    return c.get(path).json()["metadata"]["resourceVersion"]


def names(items):
    return [i["metadata"]["name"] for i in items]


def deployment(name, replicas=1):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "registry.local/x:1"}]}}}}


# ---- protobuf --------------------------------------------------------------------------

def g_protobuf():
    N = namespace("e2e-pb")
    hdr = {"Content-Type": PROTOBUF, "Accept": "application/json"}
    r = c.post(N, configmap_pb("pb1", "e2e-pb", {"a": "b", "c": "d"}, {"l": "v"}), headers=hdr)
    o = r.json() or {}
    check("protobuf body (6b 38 73 00 + runtime.Unknown) creates a ConfigMap: 201 JSON answer",
          r.status == 201 and o.get("kind") == "ConfigMap" and o["metadata"].get("name") == "pb1", r)
    r = c.get(N + "/pb1")
    o = r.json() or {}
    check("protobuf-created ConfigMap reads back in JSON with its data and labels",
          r.status == 200 and o.get("data") == {"a": "b", "c": "d"} and
          o["metadata"].get("labels") == {"l": "v"}, r)

    r = c.post(N, configmap_pb("pb2", "e2e-pb", {"x": "y"}), headers={"Content-Type": PROTOBUF, "Accept": PROTOBUF})
    ok = r.status == 201 and r.header("Content-Type") == PROTOBUF and r.body[:4] == MAGIC
    if ok:
        av, kind, raw = unenvelope(r.body)
        ok = (av, kind) == ("v1", "ConfigMap") and decode_configmap(raw)["metadata"]["name"] == "pb2"
    check("protobuf create answered in protobuf: envelope v1/ConfigMap named pb2", ok, r)

    js = c.get(N + "/pb1").json()
    r = c.get(N + "/pb1", headers={"Accept": PROTOBUF})
    ok = r.status == 200 and r.header("Content-Type") == PROTOBUF and r.body[:4] == MAGIC
    if ok:
        av, kind, raw = unenvelope(r.body)
        got = decode_configmap(raw)
        ok = ((av, kind) == ("v1", "ConfigMap") and got["data"] == {"a": "b", "c": "d"} and
              got["metadata"]["uid"] == js["metadata"]["uid"] and
              got["metadata"]["resourceVersion"] == js["metadata"]["resourceVersion"] and
              got["metadata"]["namespace"] == "e2e-pb")
    check("GET Accept protobuf: magic, envelope v1/ConfigMap, same uid/resourceVersion/data as JSON", ok, r)

    jl = c.get(N).json()
    r = c.get(N, headers={"Accept": PROTOBUF})
    ok = r.status == 200 and r.body[:4] == MAGIC
    if ok:
        av, kind, raw = unenvelope(r.body)
        lm, items = decode_list(raw)
        # Other groups write concurrently (the background bookmark watch): the later list may
        # carry a newer resourceVersion, never an older one.
        ok = ((av, kind) == ("v1", "ConfigMapList") and
              int(lm["resourceVersion"]) >= int(jl["metadata"]["resourceVersion"])
              and sorted(decode_configmap(i)["metadata"]["name"] for i in items) == ["pb1", "pb2"])
    check("LIST Accept protobuf: envelope v1/ConfigMapList, ListMeta resourceVersion not older, both items", ok, r)

    r = c.get(N + "/pb1", headers={"Accept": "application/vnd.kubernetes.protobuf,application/json"})
    check("kubectl's Accept (protobuf,json) gets protobuf", r.status == 200 and r.body[:4] == MAGIC, r)

    r = c.get(N + "/missing", headers={"Accept": PROTOBUF})
    ok = r.status == 404 and r.body[:4] == MAGIC
    if ok:
        av, kind, raw = unenvelope(r.body)
        st = decode_status(raw)
        ok = (av, kind) == ("v1", "Status") and st["code"] == 404 and st["reason"] == "NotFound"
    check("404 with Accept protobuf only is a protobuf Status (envelope v1/Status, code 404, NotFound)", ok, r)

    rv = list_rv(N)
    w = c.watch(N + "?" + q(watch="true", resourceVersion=rv, timeoutSeconds=2), accept=PROTOBUF)
    check("protobuf watch Content-Type is application/vnd.kubernetes.protobuf;stream=watch",
          w.status == 200 and w.header("Content-Type") == PROTOBUF + ";stream=watch",
          detail="HTTP %d %s" % (w.status, w.header("Content-Type")))
    c.post(N, cm("pw"))
    c.patch(N + "/pw", {"data": {"k": "v2"}})
    c.delete(N + "/pw")
    frames = w.frames()
    seen = []
    for etype, raw in frames:
        try:
            av, kind, obj = unenvelope(raw)
            got = decode_configmap(obj)
            seen.append((etype, av, kind, got["metadata"]["name"], got["data"].get("k")))
        except ValueError as e:
            seen.append((etype, "undecodable", str(e)))
    check("protobuf watch frames (4-byte length + WatchEvent, object enveloped): ADDED, MODIFIED, DELETED",
          seen == [("ADDED", "v1", "ConfigMap", "pw", "v"), ("MODIFIED", "v1", "ConfigMap", "pw", "v2"),
                   ("DELETED", "v1", "ConfigMap", "pw", "v2")], detail="frames %r" % seen)
    check("protobuf watch stream ends cleanly at timeoutSeconds", w.clean_end is True,
          detail="error %s after %.1fs" % (w.error, w.elapsed()))
    w.close()

    r = c.post(N, MAGIC + b"\x0a\xff\xff\xff\x0f\x00", headers={"Content-Type": PROTOBUF})
    check("truncated protobuf body is 400 BadRequest", status_ok(r, 400, "BadRequest"), r)
    r = c.post(N, json.dumps(cm("notpb")).encode(), headers={"Content-Type": PROTOBUF})
    check("protobuf Content-Type without the k8s magic is 400 BadRequest", status_ok(r, 400, "BadRequest"), r)


# ---- content negotiation -----------------------------------------------------------------

def g_negotiation():
    N = namespace("e2e-neg")
    c.post(N, cm("one", {"a": "1", "b": "2"}))
    r = c.get(N + "/one", headers={"Accept": "text/html"})
    check("Accept: text/html only is 406 NotAcceptable Status (JSON)",
          status_ok(r, 406, "NotAcceptable") and r.header("Content-Type") == "application/json", r)
    r = c.get(N, headers={"Accept": "application/xml, text/plain;q=0.9"})
    check("LIST with only unsupported types is 406 NotAcceptable", status_ok(r, 406, "NotAcceptable"), r)
    r = c.patch(N + "/one", "a=b", ctype="text/plain")
    check("PATCH with Content-Type text/plain is 415 UnsupportedMediaType", status_ok(r, 415, "UnsupportedMediaType"), r)
    r = c.patch(N + "/one", {"data": {"z": "1"}}, ctype="application/json")
    check("PATCH with Content-Type application/json (not a patch type) is 415", status_ok(r, 415, "UnsupportedMediaType"), r)
    r = c.post(N, "x", headers={"Content-Type": "text/plain"})
    check("POST with Content-Type text/plain is 415 UnsupportedMediaType", status_ok(r, 415, "UnsupportedMediaType"), r)
    r = c.get(N + "/one", headers={"Accept": "application/vnd.kubernetes.protobuf;q=0.5, application/json"})
    check("q-values: json preferred over protobuf;q=0.5", r.status == 200 and r.header("Content-Type") == "application/json", r)
    r = c.get(N + "/one", headers={"Accept": "application/json;q=0.5, application/vnd.kubernetes.protobuf"})
    check("q-values: protobuf preferred over json;q=0.5", r.status == 200 and r.body[:4] == MAGIC, r)
    r = c.get(N + "/one", headers={"Accept": "*/*"})
    check("Accept */* gets JSON", r.status == 200 and (r.json() or {}).get("kind") == "ConfigMap", r)
    r = c.get(N + "/one", headers={"Accept": "application/yaml"})
    check("Accept application/yaml gets YAML (Content-Type application/yaml)",
          r.status == 200 and r.header("Content-Type") == "application/yaml" and
          r.body.startswith(b"apiVersion: v1\n"), r)
    r = c.post(N, {"metadata": {"name": "nokind"}, "data": {"a": "b"}})
    check("POST without kind/apiVersion: defaulted from the URL like upstream (201)",
          r.status == 201 and (r.json() or {}).get("kind") == "ConfigMap", r)
    r = c.post(N, {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "wronggv"}})
    check("POST of a ConfigMap claiming apiVersion apps/v1 is 400 BadRequest", status_ok(r, 400, "BadRequest"), r)
    r = c.get(N + "/one", headers={"Accept": PARTIAL})
    o = r.json() or {}
    check("Accept as=PartialObjectMetadata: kind PartialObjectMetadata, metadata only",
          r.status == 200 and o.get("kind") == "PartialObjectMetadata" and o.get("apiVersion") == "meta.k8s.io/v1"
          and o.get("metadata", {}).get("name") == "one" and "data" not in o, r)
    r = c.get(N, headers={"Accept": PARTIAL_LIST})
    o = r.json() or {}
    items = o.get("items") or []
    check("Accept as=PartialObjectMetadataList: items are PartialObjectMetadata without data",
          r.status == 200 and o.get("kind") == "PartialObjectMetadataList" and o.get("apiVersion") == "meta.k8s.io/v1"
          and len(items) >= 1 and all(i.get("kind") == "PartialObjectMetadata" and "data" not in i for i in items), r)


# ---- tables ------------------------------------------------------------------------------

def g_table():
    N = namespace("e2e-tbl")
    c.post(N, cm("t1", {"a": "1"}))
    c.post(N, cm("t2", {"a": "1", "b": "2", "c": "3"}))
    r = c.get(N, headers={"Accept": TABLE})
    t = r.json() or {}
    check("LIST as Table: kind Table, apiVersion meta.k8s.io/v1",
          r.status == 200 and t.get("kind") == "Table" and t.get("apiVersion") == "meta.k8s.io/v1", r)
    check("Table answered with Content-Type application/json (as upstream)",
          r.header("Content-Type") == "application/json", r)
    cols = [(d.get("name"), d.get("type"), d.get("format"), d.get("priority")) for d in t.get("columnDefinitions") or []]
    check("configmaps columns: Name(string,name) Data(integer) Age(string)",
          cols == [("Name", "string", "name", 0), ("Data", "integer", "", 0), ("Age", "string", "", 0)],
          detail="columns %r" % cols)
    rows = t.get("rows") or []
    cells = [row.get("cells") for row in rows]
    check("rows: name, integer data count, age",
          len(cells) == 2 and cells[0][:2] == ["t1", 1] and cells[1][:2] == ["t2", 3] and
          all(re.fullmatch(r"[0-9]+s", str(x[2])) for x in cells), detail="cells %r" % cells)
    check("Table metadata carries the list resourceVersion",
          (t.get("metadata") or {}).get("resourceVersion") == list_rv(N), r)
    objs = [row.get("object") or {} for row in rows]
    check("default includeObject=Metadata: row objects are PartialObjectMetadata without data",
          len(objs) == 2 and all(o.get("kind") == "PartialObjectMetadata" and o.get("apiVersion") == "meta.k8s.io/v1"
                                 and "data" not in o for o in objs) and objs[0]["metadata"]["name"] == "t1", r)
    r = c.get(N + "?includeObject=None", headers={"Accept": TABLE})
    rows = (r.json() or {}).get("rows") or []
    check("includeObject=None: rows carry no object",
          r.status == 200 and len(rows) == 2 and all(row.get("object") is None for row in rows), r)
    r = c.get(N + "?includeObject=Object", headers={"Accept": TABLE})
    rows = (r.json() or {}).get("rows") or []
    check("includeObject=Object: rows carry the full ConfigMap",
          r.status == 200 and len(rows) == 2 and rows[1].get("object", {}).get("kind") == "ConfigMap" and
          rows[1]["object"].get("apiVersion") == "v1" and rows[1]["object"].get("data") == {"a": "1", "b": "2", "c": "3"}, r)
    r = c.get(N + "/t2", headers={"Accept": TABLE})
    t = r.json() or {}
    check("GET one object as Table: one row with its cells and the column definitions",
          r.status == 200 and t.get("kind") == "Table" and len(t.get("rows") or []) == 1 and
          t["rows"][0]["cells"][:2] == ["t2", 3] and len(t.get("columnDefinitions") or []) == 3, r)
    r = c.get(N + "/absent", headers={"Accept": TABLE})
    check("GET of a missing object with Table Accept is a 404 Status", status_ok(r, 404, "NotFound"), r)
    r = c.get(N + "?limit=1", headers={"Accept": TABLE})
    t = r.json() or {}
    tok = (t.get("metadata") or {}).get("continue")
    ok = r.status == 200 and len(t.get("rows") or []) == 1 and bool(tok)
    if ok:
        r = c.get(N + "?" + q(limit=1, **{"continue": tok}), headers={"Accept": TABLE})
        t2 = r.json() or {}
        ok = [x["cells"][0] for x in t2.get("rows") or []] == ["t2"] and not (t2.get("metadata") or {}).get("continue")
    check("Table pages: limit=1 gives one row and a continue token; the next page the other row", ok, r)

    rv = list_rv(N)
    w = c.watch(N + "?" + q(watch="true", resourceVersion=rv, timeoutSeconds=2), accept=TABLE)
    c.post(N, cm("t3"))
    c.patch(N + "/t3", {"data": {"k": "v", "k2": "v"}})
    evs = w.events(max_events=2)
    w.close()
    ok = (len(evs) == 2 and [e[0] for e in evs] == ["ADDED", "MODIFIED"] and
          all(o.get("kind") == "Table" and len(o.get("rows") or []) == 1 for _, o in evs))
    check("watch as Table: each event is a Table with one row",
          ok, detail="events %s" % json.dumps(evs)[:400])
    check("watch as Table: only the first event carries columnDefinitions",
          ok and len(evs[0][1].get("columnDefinitions") or []) == 3 and not evs[1][1].get("columnDefinitions"),
          detail="events %s" % json.dumps(evs)[:400])
    check("watch as Table: the MODIFIED row shows the new data count",
          ok and evs[1][1]["rows"][0]["cells"][:2] == ["t3", 2], detail="events %s" % json.dumps(evs)[:400])


# ---- watch -------------------------------------------------------------------------------

def g_watch():
    N = namespace("e2e-watch")
    rv0 = list_rv(N)
    c.post(N, cm("a"))
    c.patch(N + "/a", {"metadata": {"labels": {"x": "1"}}})
    c.post(N, cm("b"))
    c.delete(N + "/a")
    w = c.watch(N + "?" + q(watch="1", resourceVersion=rv0, timeoutSeconds=1))
    evs = w.events()
    got = [(t, o["metadata"]["name"]) for t, o in evs]
    check("watch from a resourceVersion replays in order: ADDED a, MODIFIED a, ADDED b, DELETED a",
          got == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")], detail="got %r" % got)
    rvs = [int(o["metadata"]["resourceVersion"]) for _, o in evs]
    check("replayed events have strictly increasing resourceVersions, all after the start",
          len(rvs) == 4 and rvs == sorted(set(rvs)) and rvs[0] > int(rv0), detail="rvs %r from %s" % (rvs, rv0))
    check("the DELETED event carries the last state (label x=1)",
          len(evs) == 4 and (evs[3][1]["metadata"].get("labels") or {}).get("x") == "1", detail=json.dumps(evs[-1:])[:300])
    check("timeoutSeconds=1 ends the stream cleanly (last chunk) in about a second",
          w.clean_end is True and 0.8 <= w.elapsed() <= 3.0, detail="clean=%s error=%s after %.2fs" % (w.clean_end, w.error, w.elapsed()))
    w.close()

    # A label-selector watch turns MODIFIED into ADDED/DELETED as the labels start/stop matching.
    rv1 = list_rv(N)
    w = c.watch(N + "?" + q(watch="1", resourceVersion=rv1, labelSelector="app=x", timeoutSeconds=2))
    c.post(N, cm("l"))                                              # no match: nothing
    c.patch(N + "/l", {"metadata": {"labels": {"app": "x"}}})       # ADDED
    c.patch(N + "/l", {"data": {"k": "v2"}})                        # MODIFIED
    rel = c.patch(N + "/l", {"metadata": {"labels": {"app": "y"}}})  # DELETED
    c.patch(N + "/l", {"data": {"k": "v3"}})                        # not matching: nothing
    c.patch(N + "/l", {"metadata": {"labels": {"app": "x"}}})       # ADDED
    c.delete(N + "/l")                                              # DELETED
    evs = w.events()
    w.close()
    got = [t for t, _ in evs]
    check("label-selector watch: ADDED, MODIFIED, DELETED (stops matching), ADDED (matches again), DELETED",
          got == ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"], detail="got %r" % got)
    if len(evs) >= 3:
        d = evs[2][1]["metadata"]
        relrv = (rel.json() or {}).get("metadata", {}).get("resourceVersion")
        check("the DELETED-on-unmatch event carries the resourceVersion of the relabel",
              d.get("resourceVersion") == relrv, detail="event rv %s, relabel rv %s" % (d.get("resourceVersion"), relrv))
        check("the DELETED-on-unmatch event carries the previous object (labels app=x), as upstream",
              (d.get("labels") or {}).get("app") == "x", detail="event labels %r" % d.get("labels"))
    else:
        check("label-selector watch events present", False, detail="got %r" % got)

    rv2 = list_rv(N)
    w = c.watch(N + "?" + q(watch="1", resourceVersion=rv2, fieldSelector="metadata.name=f1", timeoutSeconds=1))
    c.post(N, cm("f0"))
    c.post(N, cm("f1"))
    c.post(N, cm("f2"))
    got = [(t, o["metadata"]["name"]) for t, o in w.events()]
    check("field-selector watch (metadata.name=f1) sees only f1", got == [("ADDED", "f1")], detail="got %r" % got)
    w.close()

    existing = sorted(names(c.get(N).json()["items"]))
    for rvq in (None, "0"):
        w = c.watch(N + "?" + q(watch="1", resourceVersion=rvq, timeoutSeconds=2))
        first = w.events(max_events=len(existing))
        c.post(N, cm("n%s" % (rvq or "unset")))
        later = w.events(max_events=1)
        w.close()
        c.delete(N + "/n%s" % (rvq or "unset"))
        check("watch with resourceVersion=%s starts with ADDED for every existing object, then changes" % (rvq or "unset"),
              sorted(n for t, n in [(t, o["metadata"]["name"]) for t, o in first] if t == "ADDED") == existing and
              [(t, o["metadata"]["name"]) for t, o in later] == [("ADDED", "n%s" % (rvq or "unset"))],
              detail="first %r later %r" % ([(t, o["metadata"]["name"]) for t, o in first], [(t, o["metadata"]["name"]) for t, o in later]))

    # Upstream's watch cache sends a bookmark 2 s before a watch's deadline (cache_watcher.go
    # nextBookmarkTime) carrying the cache's revision, when that is newer than what the watcher
    # has seen: a write elsewhere (another namespace) moves it on for this filtered watcher.
    other = namespace("e2e-watch-other")
    w = c.watch(N + "?" + q(watch="1", resourceVersion=list_rv(N), allowWatchBookmarks="true", timeoutSeconds=4))
    orv = int(c.post(other, cm("elsewhere")).json()["metadata"]["resourceVersion"])
    evs = w.events()
    w.close()
    bms = [int(o["metadata"]["resourceVersion"]) for t, o in evs if t == "BOOKMARK"]
    check("allowWatchBookmarks + timeoutSeconds=4: a BOOKMARK before the deadline (upstream: deadline-2s), "
          "carrying progress made elsewhere", bool(bms) and max(bms) >= orv,
          detail="events %r after %.1fs; write elsewhere at %d" % ([t for t, _ in evs], w.elapsed(), orv))

    # sendInitialEvents with a label selector: matching objects, the end bookmark, then changes.
    c.post(N, cm("s1", labels={"keep": "yes"}))
    last = c.post(N, cm("s2", labels={"keep": "no"})).json()["metadata"]["resourceVersion"]
    w = c.watch(N + "?" + q(watch="1", sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
                            allowWatchBookmarks="true", labelSelector="keep=yes", timeoutSeconds=2))
    first = w.events(until=lambda t, o: t == "BOOKMARK")
    c.post(N, cm("s3", labels={"keep": "yes"}))
    later = w.events(max_events=1)
    w.close()
    got = [(t, o["metadata"].get("name")) for t, o in first]
    check("sendInitialEvents + labelSelector: ADDED s1 only, then the initial-events-end BOOKMARK",
          got == [("ADDED", "s1"), ("BOOKMARK", None)] and
          first[-1][1]["metadata"].get("annotations", {}).get("k8s.io/initial-events-end") == "true", detail="got %r" % got)
    check("the initial-events-end bookmark's resourceVersion is at least the last write's",
          len(first) == 2 and int(first[-1][1]["metadata"]["resourceVersion"]) >= int(last),
          detail="bookmark %s last write %s" % (first[-1][1]["metadata"].get("resourceVersion") if first else None, last))
    check("after the end bookmark the watch delivers new matching objects",
          [(t, o["metadata"]["name"]) for t, o in later] == [("ADDED", "s3")], detail="later %r" % later)

    cur = int(list_rv(N))
    r = c.get(N + "?" + q(resourceVersion=cur + 100000, resourceVersionMatch="NotOlderThan"))
    check("LIST at a future resourceVersion: 504 Timeout 'Too large resource version: ...'",
          status_ok(r, 504, "Timeout") and (r.json() or {}).get("message", "").startswith("Too large resource version: "), r)
    check("the 504 carries cause ResourceVersionTooLarge and retryAfterSeconds 1 (client-go looks for the cause)",
          any(x.get("reason") == "ResourceVersionTooLarge" for x in causes(r)) and details(r).get("retryAfterSeconds") == 1, r)
    # Upstream's watch cache waits up to 3 s for a requested revision before giving up
    # (waitUntilFreshAndBlock): a list at the next revision is answered once a write lands.
    cur = int(list_rv(N))
    out = {}
    t = threading.Thread(target=lambda: out.update(r=c.get(N + "?" + q(resourceVersion=cur + 1, resourceVersionMatch="NotOlderThan"))))
    t.start()
    time.sleep(0.5)
    c.post(N, cm("future"))
    t.join(10)
    r = out.get("r")
    check("LIST at the next resourceVersion waits for it (a write 0.5 s later) and answers 200, as upstream",
          r is not None and r.status == 200 and int(r.json()["metadata"]["resourceVersion"]) > cur, r)


def g_bookmark_long():
    """Run in the background for ~35 s: a long watch gets at least one periodic bookmark."""
    N = namespace("e2e-bm")
    c.post(N, cm("bm0"))
    rv = list_rv(N)
    w = c.watch(N + "?" + q(watch="1", resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds=35), timeout=45)
    c.post(N, cm("bm1"))
    evs = w.events()
    w.close()
    bms = [o for t, o in evs if t == "BOOKMARK"]
    check("a 35 s watch with allowWatchBookmarks gets a BOOKMARK", bool(bms), detail="events %r" % [t for t, _ in evs])
    if bms:
        b = bms[-1]
        adds = [int(o["metadata"]["resourceVersion"]) for t, o in evs if t == "ADDED"]
        m = b.get("metadata", {})
        check("BOOKMARK object: kind ConfigMap, apiVersion v1, metadata.resourceVersion and nothing of an object",
              b.get("kind") == "ConfigMap" and b.get("apiVersion") == "v1" and m.get("resourceVersion") and
              not m.get("name") and not m.get("uid") and "data" not in b, detail=json.dumps(b))
        check("BOOKMARK resourceVersion is not older than the events before it",
              adds and int(b["metadata"]["resourceVersion"]) >= max(adds), detail="bookmark %s events %r" % (b["metadata"].get("resourceVersion"), adds))


# ---- pagination --------------------------------------------------------------------------

def g_pagination():
    N = namespace("e2e-page")
    for i in range(10):
        c.post(N, cm("c%02d" % i, {"v": "old"}))
    r = c.get(N + "?limit=3")
    p = r.json()
    snap = p["metadata"]["resourceVersion"]
    got = names(p["items"])
    rvs = [snap]
    # writes between the pages: a new object that sorts into a later page, a delete and an update
    c.post(N, cm("c04z"))
    c.delete(N + "/c07")
    c.patch(N + "/c05", {"data": {"v": "new"}})
    tok = p["metadata"].get("continue")
    data = {}
    pages = 1
    last = r
    while tok and pages < 10:
        last = c.get(N + "?" + q(limit=3, **{"continue": tok}))
        p = last.json() or {}
        if last.status != 200:
            break
        rvs.append(p["metadata"].get("resourceVersion"))
        got += names(p["items"])
        data.update({i["metadata"]["name"]: i["data"]["v"] for i in p["items"]})
        tok = p["metadata"].get("continue")
        pages += 1
    check("paging with limit=3 takes 4 pages, the last without continue", pages == 4 and not tok, last,
          detail="%d pages" % pages)
    check("every page has the first page's resourceVersion (one snapshot)", len(set(rvs)) == 1, detail="rvs %r" % rvs)
    check("the pages hold exactly the snapshot: no object created after page 1, the deleted one still there",
          got == ["c%02d" % i for i in range(10)], detail="got %r" % got)
    check("an object updated between pages shows its snapshot value", data.get("c05") == "old", detail="c05=%r" % data.get("c05"))
    now = names(c.get(N).json()["items"])
    check("a fresh list shows the current state", "c04z" in now and "c07" not in now, detail="now %r" % now)
    r = c.get(N + "?" + q(limit=3, **{"continue": "not-a-token!"}))
    check("malformed continue token is 400 BadRequest", status_ok(r, 400, "BadRequest"), r)
    r = c.get(N + "?limit=500")
    check("limit larger than the list: everything, no continue",
          r.status == 200 and len(r.json()["items"]) == 10 and not r.json()["metadata"].get("continue"), r)


# ---- errors ------------------------------------------------------------------------------

def g_errors():
    N = namespace("e2e-err")
    r = c.get(N + "/nope")
    check("404: NotFound Status, message 'configmaps \"nope\" not found', details {name, kind: configmaps}",
          status_ok(r, 404, "NotFound") and r.json()["message"] == 'configmaps "nope" not found' and
          details(r).get("name") == "nope" and details(r).get("kind") == "configmaps" and not details(r).get("group")
          and r.header("Content-Type") == "application/json", r)
    r = c.get("/apis/apps/v1/namespaces/e2e-err/deployments/nope")
    check("404 in a named group: 'deployments.apps \"nope\" not found', details group apps",
          status_ok(r, 404, "NotFound") and r.json()["message"] == 'deployments.apps "nope" not found' and
          details(r).get("group") == "apps" and details(r).get("kind") == "deployments", r)
    c.post(N, cm("dup"))
    r = c.post(N, cm("dup"))
    check("409 AlreadyExists: 'configmaps \"dup\" already exists', details {name, kind}",
          status_ok(r, 409, "AlreadyExists") and r.json()["message"] == 'configmaps "dup" already exists' and
          details(r).get("name") == "dup" and details(r).get("kind") == "configmaps", r)
    stale = c.get(N + "/dup").json()
    c.patch(N + "/dup", {"metadata": {"labels": {"bump": "1"}}})
    stale["data"] = {"k": "stale"}
    r = c.put(N + "/dup", stale)
    check("409 Conflict on PUT with a stale resourceVersion, upstream message",
          status_ok(r, 409, "Conflict") and r.json()["message"] ==
          'Operation cannot be fulfilled on configmaps "dup": the object has been modified; '
          'please apply your changes to the latest version and try again' and details(r).get("kind") == "configmaps", r)
    r = c.patch(N + "/dup", {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}, "data": {"k": "p"}})
    check("409 Conflict on PATCH carrying a stale metadata.resourceVersion", status_ok(r, 409, "Conflict"), r)
    r = c.delete(N + "/dup", {"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})
    check("409 Conflict on DELETE with a mismatched uid precondition",
          status_ok(r, 409, "Conflict") and "Precondition failed: UID in precondition" in r.json().get("message", ""), r)
    check("failed writes changed nothing", c.get(N + "/dup").json().get("data") == {"k": "v"})

    r = c.post(N, cm("Bad_Name"))
    cs = causes(r)
    check("422 Invalid: details {kind ConfigMap, name Bad_Name}, cause FieldValueInvalid on metadata.name",
          status_ok(r, 422, "Invalid") and details(r).get("kind") == "ConfigMap" and details(r).get("name") == "Bad_Name"
          and r.json()["message"].startswith('ConfigMap "Bad_Name" is invalid: ') and
          any(x.get("field") == "metadata.name" and x.get("reason") == "FieldValueInvalid" for x in cs), r)
    r = c.post(N, cm("good-name", {"bad key!": "x"}))
    check("422 Invalid for a bad ConfigMap key, cause field data[bad key!]",
          status_ok(r, 422, "Invalid") and any(x.get("field") == "data[bad key!]" for x in causes(r)), r)
    r = c.post(N, cm("Bad_Name", {"bad key!": "x"}))
    check("422 lists every invalid field (metadata.name and data[bad key!])",
          status_ok(r, 422, "Invalid") and {x.get("field") for x in causes(r)} >= {"metadata.name", "data[bad key!]"}, r)
    r = c.post("/apis/apps/v1/namespaces/e2e-err/deployments", deployment("neg", replicas=-1))
    check("422 Invalid for a Deployment with replicas -1, cause spec.replicas",
          status_ok(r, 422, "Invalid") and details(r).get("kind") == "Deployment" and details(r).get("group") == "apps"
          and any(x.get("field") == "spec.replicas" for x in causes(r)), r)

    r = c.post(N + "/dup", cm("dup"))
    check("405 MethodNotAllowed for POST to a named object", status_ok(r, 405, "MethodNotAllowed"), r)
    r = c.get(N + "?" + q(labelSelector="a in ("))
    check("400 BadRequest for labelSelector 'a in ('", status_ok(r, 400, "BadRequest"), r)
    r = c.get(N + "?" + q(labelSelector="a=b=c"))
    check("400 BadRequest for labelSelector 'a=b=c'", status_ok(r, 400, "BadRequest"), r)
    r = c.get(N + "?" + q(fieldSelector="spec.foo=1"))
    check("400 BadRequest for an unsupported fieldSelector spec.foo on configmaps",
          status_ok(r, 400, "BadRequest") and "spec.foo" in r.json().get("message", ""), r)
    r = c.get(N + "?" + q(watch="1", fieldSelector="spec.foo=1"))
    check("400 BadRequest for an unsupported fieldSelector on a watch", status_ok(r, 400, "BadRequest"), r)
    r = c.put(N + "/other", cm("dup"))
    check("400 BadRequest for PUT whose body name differs from the URL (checked before lookup)",
          status_ok(r, 400, "BadRequest") and "does not match the name on the URL" in r.json().get("message", ""), r)
    o = cm("dup")
    o["metadata"]["namespace"] = "default"
    r = c.put(N + "/dup", o)
    check("400 BadRequest for PUT whose body namespace differs from the URL", status_ok(r, 400, "BadRequest"), r)
    r = c.put(N + "/ghost", cm("ghost"))
    check("404 for PUT of a missing ConfigMap (no create on update)", status_ok(r, 404, "NotFound"), r)
    r = c.post(N, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},', headers={"Content-Type": "application/json"})
    check("400 BadRequest for truncated JSON", status_ok(r, 400, "BadRequest"), r)
    r = c.patch(N + "/dup", "[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"nope\"}]", ctype="application/json-patch+json")
    check("JSON patch test failure is a 422 Invalid Status", status_ok(r, 422, "Invalid"), r)


# ---- dry run -----------------------------------------------------------------------------

def g_dryrun():
    N = namespace("e2e-dry")
    base = c.post(N, cm("base", {"k": "v"})).json()
    rv = base["metadata"]["resourceVersion"]
    w = c.watch(N + "?" + q(watch="1", resourceVersion=rv, timeoutSeconds=3))
    r = c.post(N + "?dryRun=All", cm("ghost", {"a": "b"}))
    o = r.json() or {}
    check("dryRun=All create answers 201 with the object", r.status == 201 and o.get("metadata", {}).get("name") == "ghost"
          and o.get("data") == {"a": "b"} and o["metadata"].get("uid"), r)
    r = c.get(N + "/ghost")
    check("dryRun=All create stored nothing", status_ok(r, 404, "NotFound"), r)
    r = c.post(N + "?dryRun=All", cm("base"))
    check("dryRun=All create of an existing name is 409 AlreadyExists", status_ok(r, 409, "AlreadyExists"), r)
    r = c.post(N + "?dryRun=All", cm("Bad_Name"))
    check("dryRun=All create is validated (422)", status_ok(r, 422, "Invalid"), r)
    r = c.post(N + "?dryRun=All", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}})
    n = (r.json() or {}).get("metadata", {}).get("name", "")
    check("dryRun=All create with generateName answers a generated name", r.status == 201 and re.fullmatch(r"gen-[a-z0-9]{5}", n), r)
    upd = dict(base, data={"k": "put"})
    r = c.put(N + "/base?dryRun=All", upd)
    check("dryRun=All update answers 200 with the new data", r.status == 200 and (r.json() or {}).get("data") == {"k": "put"}, r)
    r = c.patch(N + "/base?dryRun=All", {"data": {"k": "patched"}})
    check("dryRun=All patch answers 200 with the patched data", r.status == 200 and (r.json() or {}).get("data") == {"k": "patched"}, r)
    r = c.delete(N + "/base", {"propagationPolicy": "Background", "dryRun": ["All"]})
    check("dryRun in DeleteOptions body answers 200", r.status == 200, r)
    r = c.delete(N + "/base?dryRun=All")
    check("dryRun=All delete (query) answers 200", r.status == 200, r)
    r = c.get(N + "/base")
    o = r.json() or {}
    check("after dry-run update/patch/delete the object is unchanged (data, resourceVersion)",
          r.status == 200 and o.get("data") == {"k": "v"} and o["metadata"]["resourceVersion"] == rv, r)
    c.post(N, cm("marker"))
    evs = w.events(max_events=1)
    w.close()
    check("dry runs emitted no watch event (the first event is the later real write)",
          [(t, o["metadata"]["name"]) for t, o in evs] == [("ADDED", "marker")],
          detail="events %r" % [(t, o["metadata"]["name"]) for t, o in evs])
    r = c.post(N + "?dryRun=Foo", cm("x"))
    check("dryRun=Foo is 422 Invalid, details kind CreateOptions group meta.k8s.io (as upstream)",
          status_ok(r, 422, "Invalid") and details(r).get("kind") == "CreateOptions" and details(r).get("group") == "meta.k8s.io"
          and any(x.get("field") == "dryRun" for x in causes(r)), r)


# ---- field validation ---------------------------------------------------------------------

def g_validation():
    N = namespace("e2e-fv")
    x = cm("fv", {"a": "b"})
    x["datta"] = {"a": "b"}
    r = c.post(N + "?fieldValidation=Strict", x)
    check("Strict + unknown field: 400 BadRequest 'strict decoding error: unknown field \"datta\"'",
          status_ok(r, 400, "BadRequest") and 'strict decoding error: unknown field "datta"' in r.json().get("message", ""), r)
    check("Strict rejection stored nothing", c.get(N + "/fv").status == 404)
    y = cm("fvm")
    y["metadata"]["foo"] = 1
    r = c.post(N + "?fieldValidation=Strict", y)
    check("Strict names a nested unknown field by path (metadata.foo)",
          status_ok(r, 400, "BadRequest") and 'unknown field "metadata.foo"' in r.json().get("message", ""), r)
    r = c.post(N + "?fieldValidation=Strict",
               b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dupf"},"data":{"a":"1"},"data":{"b":"2"}}',
               headers={"Content-Type": "application/json"})
    check("Strict + duplicate field: 400 naming duplicate field \"data\"",
          status_ok(r, 400, "BadRequest") and 'duplicate field "data"' in r.json().get("message", ""), r)
    r = c.post(N + "?fieldValidation=Warn", x)
    check("Warn + unknown field: 201 and header Warning: 299 - \"unknown field \\\"datta\\\"\"",
          r.status == 201 and r.header_all("Warning") == ['299 - "unknown field \\"datta\\""'], r,
          detail="Warning headers %r" % r.header_all("Warning"))
    x["metadata"]["name"] = "fv-default"
    r = c.post(N, x)
    check("no fieldValidation parameter behaves as Warn (server default)",
          r.status == 201 and any("unknown field" in h for h in r.header_all("Warning")), r,
          detail="Warning headers %r" % r.header_all("Warning"))
    x["metadata"]["name"] = "fv-ignore"
    r = c.post(N + "?fieldValidation=Ignore", x)
    check("Ignore + unknown field: 201, no Warning header", r.status == 201 and not r.header_all("Warning"), r)
    o = c.get(N + "/fv-ignore").json()
    check("the unknown field is not stored", "datta" not in o and o.get("data") == {"a": "b"}, detail=json.dumps(o)[:300])
    r = c.post(N + "?fieldValidation=Bogus", cm("bogus"))
    check("fieldValidation=Bogus is 422 Invalid, details kind CreateOptions (as upstream)",
          status_ok(r, 422, "Invalid") and details(r).get("kind") == "CreateOptions" and details(r).get("group") == "meta.k8s.io", r)
    o = c.get(N + "/fv").json()
    o["datta"] = 1
    r = c.put(N + "/fv?fieldValidation=Strict", o)
    check("Strict PUT with an unknown field is 400", status_ok(r, 400, "BadRequest"), r)
    r = c.put(N + "/fv?fieldValidation=Warn", o)
    check("Warn PUT with an unknown field: 200 + Warning", r.status == 200 and any('unknown field \\"datta\\"' in h for h in r.header_all("Warning")), r,
          detail="Warning headers %r" % r.header_all("Warning"))
    r = c.patch(N + "/fv?fieldValidation=Warn", {"datta": 1})
    check("Warn merge PATCH with an unknown field: 200 + Warning (as upstream)",
          r.status == 200 and any('unknown field \\"datta\\"' in h for h in r.header_all("Warning")), r,
          detail="Warning headers %r" % r.header_all("Warning"))


def g_strictpatch():
    """Kept apart: a request that once took the server down (SIGSEGV at 7b268b0)."""
    N = namespace("e2e-fvp")
    c.post(N, cm("sp"))
    try:
        r = c.patch(N + "/sp?fieldValidation=Strict", {"datta": 1})
        check("Strict merge PATCH with an unknown field: 400 'strict decoding error: unknown field \"datta\"'",
              status_ok(r, 400, "BadRequest") and 'unknown field "datta"' in r.json().get("message", ""), r)
    except Exception as e:  # noqa: BLE001 - any transport failure is the finding
        check("Strict merge PATCH with an unknown field: 400 'strict decoding error: unknown field \"datta\"'", False,
              detail="PATCH %s/sp?fieldValidation=Strict [Content-Type: application/merge-patch+json] "
                     "{\"datta\": 1} -> no response: %r" % (N, e))


# ---- finalizers ----------------------------------------------------------------------------

def g_finalizers():
    N = namespace("e2e-fin")
    created = c.post(N, cm("held", finalizers=["example.com/hold"])).json()
    rv = created["metadata"]["resourceVersion"]
    w = c.watch(N + "?" + q(watch="1", resourceVersion=rv, timeoutSeconds=3))
    r = c.delete(N + "/held")
    o = r.json() or {}
    check("DELETE of an object with finalizers: 200 with the object (not a Status), deletionTimestamp set",
          r.status == 200 and o.get("kind") == "ConfigMap" and o["metadata"].get("deletionTimestamp") and
          o["metadata"].get("deletionGracePeriodSeconds") == 0, r)
    r = c.get(N + "/held")
    o = r.json() or {}
    dts = o.get("metadata", {}).get("deletionTimestamp")
    check("the marked object is still readable, finalizers intact",
          r.status == 200 and dts and o["metadata"].get("finalizers") == ["example.com/hold"], r)
    time.sleep(1.1)
    r = c.delete(N + "/held")
    check("a second DELETE keeps the first deletionTimestamp",
          r.status == 200 and (r.json() or {}).get("metadata", {}).get("deletionTimestamp") == dts, r)
    r = c.patch(N + "/held", {"metadata": {"finalizers": ["example.com/hold", "example.com/new"]}})
    check("adding a finalizer during deletion: 422 Invalid, cause FieldValueForbidden on metadata.finalizers",
          status_ok(r, 422, "Invalid") and any(x.get("field") == "metadata.finalizers" and x.get("reason") == "FieldValueForbidden"
                                              for x in causes(r)), r)
    r = c.patch(N + "/held", {"metadata": {"finalizers": None}})
    check("removing the last finalizer answers 200", r.status == 200, r)
    r = c.get(N + "/held")
    check("then the object is gone (404)", status_ok(r, 404, "NotFound"), r)
    evs = w.events(max_events=2)
    w.close()
    got = [(t, bool(o["metadata"].get("deletionTimestamp"))) for t, o in evs]
    check("watch saw MODIFIED (marked) then DELETED, nothing else",
          got == [("MODIFIED", True), ("DELETED", True)], detail="got %r" % got)
    check("the DELETED event has a newer resourceVersion than the MODIFIED one",
          len(evs) == 2 and int(evs[1][1]["metadata"]["resourceVersion"]) > int(evs[0][1]["metadata"]["resourceVersion"]),
          detail="rvs %r" % [o["metadata"]["resourceVersion"] for _, o in evs])

    c.post(N, cm("two", finalizers=["example.com/a", "example.com/b"]))
    c.delete(N + "/two")
    c.patch(N + "/two", {"metadata": {"finalizers": ["example.com/b"]}})
    r = c.get(N + "/two")
    check("removing one of two finalizers keeps the object", r.status == 200 and r.json()["metadata"]["finalizers"] == ["example.com/b"], r)
    o = r.json()
    o["metadata"]["finalizers"] = []
    r = c.put(N + "/two", o)
    check("emptying finalizers by PUT answers 200", r.status == 200, r)
    check("and removes the object", c.get(N + "/two").status == 404)


# ---- namespaces -----------------------------------------------------------------------------

def eventually(fn, seconds):
    end = time.monotonic() + seconds
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.1)


def g_namespace():
    # Content with a finalizer keeps a deleted namespace Terminating: creates are refused meanwhile.
    NSP = "/api/v1/namespaces/e2e-term"
    N = namespace("e2e-term")
    c.post(N, cm("a"))
    c.post(NSP + "/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}})
    c.post(N, cm("held", finalizers=["example.com/hold"]))
    r = c.delete(NSP)
    o = r.json() or {}
    check("DELETE namespace: 200 with the namespace, phase Terminating, deletionTimestamp",
          r.status == 200 and o.get("kind") == "Namespace" and o.get("status", {}).get("phase") == "Terminating"
          and o.get("metadata", {}).get("deletionTimestamp"), r)
    gone = eventually(lambda: names(c.get(N).json().get("items") or []) == ["held"] and
                      not c.get(NSP + "/secrets").json().get("items"), 15)
    check("the namespace's ConfigMaps and Secrets are deleted, the finalizer-held one stays", gone,
          detail="left: %r" % names(c.get(N).json().get("items") or []))
    r = c.post(N, cm("late"))
    check("create in a terminating namespace: 403 Forbidden 'unable to create new content in namespace e2e-term "
          "because it is being terminated'", status_ok(r, 403, "Forbidden") and
          "unable to create new content in namespace e2e-term because it is being terminated" in r.json().get("message", ""), r)
    check("the 403 carries cause NamespaceTerminating on metadata.namespace (controllers test for it)",
          any(x.get("reason") == "NamespaceTerminating" and x.get("field") == "metadata.namespace" for x in causes(r)), r)
    c.patch(N + "/held", {"metadata": {"finalizers": None}})
    gone = eventually(lambda: c.get(NSP).status == 404, 15)
    check("releasing the held object lets the namespace go", gone)
    r = c.post(N, cm("late"))
    check("create in a missing namespace: 404 'namespaces \"e2e-term\" not found', details kind namespaces",
          status_ok(r, 404, "NotFound") and r.json().get("message") == 'namespaces "e2e-term" not found'
          and details(r).get("kind") == "namespaces" and details(r).get("name") == "e2e-term", r)

    # The namespace's own metadata.finalizers hold the namespace object (not its content).
    NSP = "/api/v1/namespaces/e2e-nsfin"
    N = namespace("e2e-nsfin", finalizers=["example.com/hold"])
    c.post(N, cm("a"))
    c.delete(NSP)
    gone = eventually(lambda: c.get(N).status == 200 and not c.get(N).json().get("items"), 15)
    check("a namespace with a metadata finalizer: its content is deleted", gone)
    r = c.get(NSP)
    o = r.json() or {}
    check("and the namespace stays, Terminating, while its own finalizer is there",
          r.status == 200 and o.get("status", {}).get("phase") == "Terminating", r)
    c.patch(NSP, {"metadata": {"finalizers": None}})
    gone = eventually(lambda: c.get(NSP).status == 404, 15)
    check("removing the namespace's finalizer removes it", gone)

    N2 = namespace("e2e-reborn")
    c.post(N2, cm("old"))
    c.delete("/api/v1/namespaces/e2e-reborn")
    gone = eventually(lambda: c.get("/api/v1/namespaces/e2e-reborn").status == 404, 15)
    check("a namespace without finalizers is removed", gone)
    namespace("e2e-reborn")
    r = c.get(N2)
    check("a namespace recreated under the same name starts empty",
          r.status == 200 and r.json().get("items") == [], r)


# ---- generation, status, subresources --------------------------------------------------------

def g_generation():
    D = "/apis/apps/v1/namespaces/e2e-gen/deployments"
    namespace("e2e-gen")
    r = c.post(D, deployment("web"))
    check("a new Deployment has generation 1", r.status == 201 and r.json()["metadata"].get("generation") == 1, r)

    def cur():
        return c.get(D + "/web").json()

    def gen():
        return cur()["metadata"].get("generation")

    rv = cur()["metadata"]["resourceVersion"]
    c.patch(D + "/web", {"metadata": {"labels": {"extra": "1"}}})
    o = cur()
    check("a label change keeps generation 1 (but writes)", o["metadata"]["generation"] == 1 and o["metadata"]["resourceVersion"] != rv)
    c.patch(D + "/web", {"metadata": {"annotations": {"note": "x"}}})
    check("an annotation change keeps generation 1", gen() == 1)
    rv = cur()["metadata"]["resourceVersion"]
    r = c.patch(D + "/web", {"metadata": {"annotations": {"note": "x"}}})
    check("a no-op patch writes nothing (resourceVersion unchanged)",
          r.status == 200 and r.json()["metadata"]["resourceVersion"] == rv, r)
    r = c.patch(D + "/web/status", {"status": {"replicas": 5, "observedGeneration": 1}})
    o = cur()
    check("a status write through /status is stored and keeps generation 1",
          r.status == 200 and o["metadata"]["generation"] == 1 and o.get("status", {}).get("replicas") == 5, r)
    r = c.patch(D + "/web", {"status": {"replicas": 7}})
    check("status in a write to the main resource is ignored", cur().get("status", {}).get("replicas") == 5, r)
    r = c.patch(D + "/web/status", {"spec": {"replicas": 9}})
    o = cur()
    check("spec in a write to /status is ignored (replicas 1, generation 1)",
          o["spec"]["replicas"] == 1 and o["metadata"]["generation"] == 1, r)
    o = cur()
    o["metadata"]["labels"]["put"] = "1"
    r = c.put(D + "/web", o)
    check("a PUT changing only labels keeps generation 1", r.status == 200 and r.json()["metadata"]["generation"] == 1, r)
    c.patch(D + "/web", {"spec": {"replicas": 3}})
    check("a spec change bumps generation to 2", gen() == 2)
    r = c.patch(D + "/web", {"spec": {"replicas": -1}})
    check("a spec change to replicas -1 is 422 Invalid (spec.replicas)",
          status_ok(r, 422, "Invalid") and any(x.get("field") == "spec.replicas" for x in causes(r)), r)
    held = deployment("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    c.post(D, held)
    r = c.delete(D + "/held")
    check("marking a Deployment (with a finalizer) for deletion bumps its generation to 2 (upstream markAsDeleting)",
          r.status == 200 and (r.json() or {}).get("metadata", {}).get("generation") == 2, r)
    c.patch(D + "/held", {"metadata": {"finalizers": None}})
    N = namespace("e2e-gen")
    r = c.post(N, cm("nogen"))
    check("ConfigMaps carry no generation", r.status == 201 and "generation" not in r.json()["metadata"], r)
    r = c.post("/api/v1/namespaces/e2e-gen/secrets",
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd"}, "stringData": {"a": "b"}})
    o = r.json() or {}
    check("Secret stringData is write-only: merged into data as base64, not returned",
          r.status == 201 and o.get("data") == {"a": "Yg=="} and "stringData" not in o, r)


def g_scale():
    namespace("e2e-scale")
    D = "/apis/apps/v1/namespaces/e2e-scale/deployments"
    dep = c.post(D, deployment("web", replicas=2)).json()
    r = c.get(D + "/web/scale")
    s = r.json() or {}
    check("GET deployments/scale is an autoscaling/v1 Scale with the deployment's uid and resourceVersion",
          r.status == 200 and s.get("kind") == "Scale" and s.get("apiVersion") == "autoscaling/v1" and
          s.get("metadata", {}).get("uid") == dep["metadata"]["uid"] and
          s["metadata"].get("resourceVersion") == dep["metadata"]["resourceVersion"] and
          s["metadata"].get("name") == "web" and s["metadata"].get("namespace") == "e2e-scale", r)
    check("Scale spec.replicas and status.selector (label selector string)",
          s.get("spec", {}).get("replicas") == 2 and s.get("status", {}).get("selector") == "app=web", r)
    r = c.get(D + "/web/scale", headers={"Accept": PROTOBUF})
    ok = r.status == 200 and r.body[:4] == MAGIC and unenvelope(r.body)[:2] == ("autoscaling/v1", "Scale")
    check("Scale in protobuf: envelope autoscaling/v1/Scale", ok, r)
    s["spec"]["replicas"] = 4
    r = c.put(D + "/web/scale", s)
    check("PUT scale (replicas 4) answers a Scale", r.status == 200 and (r.json() or {}).get("kind") == "Scale"
          and r.json()["spec"]["replicas"] == 4, r)
    d = c.get(D + "/web").json()
    check("the deployment follows: replicas 4, generation 2", d["spec"]["replicas"] == 4 and d["metadata"]["generation"] == 2,
          detail="replicas %s generation %s" % (d["spec"]["replicas"], d["metadata"].get("generation")))
    r = c.put(D + "/web/scale", s)
    check("PUT scale with a stale resourceVersion is 409 Conflict", status_ok(r, 409, "Conflict"), r)
    r = c.patch(D + "/web/scale", {"spec": {"replicas": 1}})
    check("merge PATCH scale answers a Scale with replicas 1",
          r.status == 200 and (r.json() or {}).get("kind") == "Scale" and r.json()["spec"]["replicas"] == 1, r)
    r = c.patch(D + "/web/scale", {"spec": {"replicas": -1}})
    check("PATCH scale to replicas -1 is 422 Invalid (Scale, spec.replicas)",
          status_ok(r, 422, "Invalid") and any(x.get("field") == "spec.replicas" for x in causes(r)), r)
    check("the invalid scale changed nothing", c.get(D + "/web").json()["spec"]["replicas"] == 1)
    r = c.get(D + "/nope/scale")
    check("scale of a missing deployment: 404 deployments.apps \"nope\" not found",
          status_ok(r, 404, "NotFound") and details(r).get("kind") == "deployments" and details(r).get("group") == "apps", r)
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "rs"}},
                   "template": {"metadata": {"labels": {"app": "rs"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    c.post("/apis/apps/v1/namespaces/e2e-scale/replicasets", rs)
    r = c.get("/apis/apps/v1/namespaces/e2e-scale/replicasets/rs/scale")
    check("replicasets/scale is a Scale with replicas 3",
          r.status == 200 and (r.json() or {}).get("kind") == "Scale" and r.json()["spec"]["replicas"] == 3, r)


# ---- anonymous -------------------------------------------------------------------------------

def g_anonymous():
    a = Client(host, port, pki, anonymous=True)
    for path in ("/api", "/apis", "/api/v1/namespaces/default/configmaps", "/apis/apps/v1/deployments"):
        r = a.get(path)
        check("anonymous GET %s is 401 Unauthorized Status" % path, status_ok(r, 401, "Unauthorized"), r)
    r = a.post("/api/v1/namespaces/default/configmaps", cm("anon"))
    check("anonymous POST is 401 and creates nothing",
          status_ok(r, 401, "Unauthorized") and c.get("/api/v1/namespaces/default/configmaps/anon").status == 404, r)
    for path in ("/healthz", "/readyz", "/livez"):
        r = a.get(path)
        check("anonymous GET %s is 200 ok" % path, r.status == 200 and r.body == b"ok", r)
    r = a.get("/version")
    check("anonymous GET /version is 200 with minor 32", r.status == 200 and (r.json() or {}).get("minor") == "32", r)


# ---- restart ---------------------------------------------------------------------------------

def g_prerestart():
    N = namespace("e2e-restart")
    first = c.post(N, cm("r1", {"v": "1"})).json()
    c.post("/apis/apps/v1/namespaces/e2e-restart/deployments", deployment("rd"))
    c.patch("/apis/apps/v1/namespaces/e2e-restart/deployments/rd", {"spec": {"replicas": 2}})
    before = first["metadata"]["resourceVersion"]
    for i in range(2, 6):
        c.post(N, cm("r%d" % i, {"v": str(i)}))
    page = c.get(N + "?limit=2").json()
    c.post(N, cm("r6", {"v": "6"}))    # so the token's snapshot is older than the latest revision
    last = list_rv(N)
    st = {"before": before, "last": last, "continue": page["metadata"].get("continue"),
          "r1": c.get(N + "/r1").json(), "rd": c.get("/apis/apps/v1/namespaces/e2e-restart/deployments/rd").json()}
    json.dump(st, open(state_file, "w"))
    check("state recorded before restart", bool(st["continue"]) and int(last) > int(before))


def g_postrestart():
    N = "/api/v1/namespaces/e2e-restart/configmaps"
    st = json.load(open(state_file))
    r = c.get(N + "/r1")
    check("an object reads back identically after restart (uid, resourceVersion, timestamps, data)",
          r.status == 200 and r.json() == st["r1"], r, detail="before %s" % json.dumps(st["r1"])[:300])
    r = c.get("/apis/apps/v1/namespaces/e2e-restart/deployments/rd")
    check("a Deployment reads back identically after restart (generation 2 kept)",
          r.status == 200 and r.json() == st["rd"] and r.json()["metadata"].get("generation") == 2, r)
    lrv = list_rv(N)
    check("the list resourceVersion after restart is not older than before", int(lrv) >= int(st["last"]),
          detail="before %s after %s" % (st["last"], lrv))
    r = c.patch(N + "/r1", {"data": {"v": "after"}})
    nrv = int((r.json() or {}).get("metadata", {}).get("resourceVersion", "0"))
    check("an update after restart gets a resourceVersion above every earlier one", r.status == 200 and nrv > int(st["last"]), r)
    r = c.post(N, cm("r-new"))
    check("a create after restart gets a higher resourceVersion still",
          r.status == 201 and int(r.json()["metadata"]["resourceVersion"]) > nrv, r)

    w = c.watch(N + "?" + q(watch="1", resourceVersion=st["before"], timeoutSeconds=1))
    evs = w.events()
    w.close()
    if evs and evs[0][0] == "ERROR":
        s = evs[0][1]
        check("watch from a pre-restart resourceVersion: 410 Expired ERROR event ('too old resource version'), stream ends",
              s.get("code") == 410 and s.get("reason") in ("Expired", "Gone") and len(evs) == 1 and
              s.get("message", "").startswith("too old resource version: %s (" % st["before"]), detail=json.dumps(evs)[:300])
        print("#    (pre-restart watch: answered 410 Expired, as upstream's restarted watch cache does)")
    else:
        got = [(t, o["metadata"]["name"]) for t, o in evs]
        want = [("ADDED", "r%d" % i) for i in range(2, 7)] + [("MODIFIED", "r1"), ("ADDED", "r-new")]
        check("watch from a pre-restart resourceVersion replays everything after it, in order", got == want, detail="got %r" % got)
        print("#    (pre-restart watch: replayed %d events)" % len(evs))

    r = c.get(N + "?" + q(limit=2, **{"continue": st["continue"]}))
    if r.status == 200:
        got = names(r.json()["items"])
        check("a pre-restart continue token still pages the old snapshot", got == ["r3", "r4"], r, detail="got %r" % got)
        print("#    (pre-restart continue token: served)")
    else:
        check("a pre-restart continue token is 410 Expired (a Status, like an expired token upstream)",
              status_ok(r, 410, "Expired"), r)
        print("#    (pre-restart continue token: 410 Expired)")

    rv = list_rv(N)
    w = c.watch(N + "?" + q(watch="1", resourceVersion=rv, timeoutSeconds=2))
    c.post(N, cm("r-watched"))
    evs = w.events(max_events=1)
    w.close()
    check("a list resourceVersion taken after restart is watchable",
          [(t, o["metadata"]["name"]) for t, o in evs] == [("ADDED", "r-watched")], detail="events %r" % evs)
    w = c.watch(N + "?" + q(watch="1", resourceVersion="1", timeoutSeconds=1))
    evs = w.events()
    w.close()
    check("watch from resourceVersion 1 after restart: a single 410 Expired ERROR event",
          len(evs) == 1 and evs[0][0] == "ERROR" and evs[0][1].get("code") == 410, detail=json.dumps(evs)[:300])


# ---- server-side apply and managedFields -------------------------------------------------------

APPLY = "application/apply-patch+yaml"


def entries(obj):
    return (obj or {}).get("metadata", {}).get("managedFields") or []


def entry_of(obj, manager, operation):
    for e in entries(obj):
        if e.get("manager") == manager and e.get("operation") == operation:
            return e
    return None


def g_apply():
    N = namespace("e2e-apply")
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a1"}, "data": {"a": "1", "b": "2"}}
    r = c.patch(N + "/a1", cfg, ctype=APPLY)
    check("apply without fieldManager: 422 PatchOptions fieldManager Required",
          status_ok(r, 422, "Invalid") and details(r).get("kind") == "PatchOptions" and
          r.json()["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
          'is required for apply patch' and causes(r)[0].get("reason") == "FieldValueRequired", r)
    r = c.patch(N + "/a1?fieldManager=x&force=true", {"data": {}})
    check("force on a merge patch: 422 force Forbidden",
          status_ok(r, 422, "Invalid") and causes(r)[0].get("field") == "force" and
          "may not be specified for non-apply patch" in r.json()["message"], r)
    r = c.patch(N + "/a1?fieldManager=" + "m" * 129, cfg, ctype=APPLY)
    check("a fieldManager over 128 bytes: 422 FieldValueTooLong",
          status_ok(r, 422, "Invalid") and causes(r)[0].get("reason") == "FieldValueTooLong", r)
    r = c.patch(N + "/a1?fieldManager=e2e&force=false", cfg, ctype=APPLY)
    o = r.json() or {}
    e = entry_of(o, "e2e", "Apply")
    check("apply to a missing object creates it: 201 with one Apply entry",
          r.status == 201 and len(entries(o)) == 1 and e is not None and e.get("apiVersion") == "v1" and
          e.get("fieldsType") == "FieldsV1" and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", e.get("time", "")), r)
    check("the Apply entry owns exactly the applied fields",
          e is not None and e.get("fieldsV1") == {"f:data": {"f:a": {}, "f:b": {}}}, r)
    check("managedFields entry keys in upstream's order",
          e is not None and list(e.keys()) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"], r)
    rv = o.get("metadata", {}).get("resourceVersion")
    r = c.patch(N + "/a1?fieldManager=e2e", cfg, ctype=APPLY)
    check("the same apply again is a no-op: 200, resourceVersion kept",
          r.status == 200 and (r.json() or {}).get("metadata", {}).get("resourceVersion") == rv, r)
    r = c.patch(N + "/a1?fieldManager=edit", {"data": {"a": "changed"}})
    o = r.json() or {}
    check("a merge patch records an Update entry for its fieldManager and takes the field",
          r.status == 200 and (entry_of(o, "edit", "Update") or {}).get("fieldsV1") == {"f:data": {"f:a": {}}} and
          (entry_of(o, "e2e", "Apply") or {}).get("fieldsV1") == {"f:data": {"f:b": {}}}, r)
    check("entries sort Apply before Update", [x.get("operation") for x in entries(o)] == ["Apply", "Update"], r)
    r = c.patch(N + "/a1?fieldManager=e2e", cfg, ctype=APPLY)
    check("re-applying another value: 409 Conflict in upstream's words, a FieldManagerConflict cause",
          status_ok(r, 409, "Conflict") and
          r.json().get("message") == 'Apply failed with 1 conflict: conflict with "edit" using v1: .data.a' and
          causes(r) == [{"reason": "FieldManagerConflict", "message": 'conflict with "edit" using v1',
                         "field": ".data.a"}], r)
    r = c.patch(N + "/a1?fieldManager=e2e&force=true", cfg, ctype=APPLY)
    o = r.json() or {}
    check("force=true takes the field: value applied, the emptied Update entry is gone",
          r.status == 200 and o.get("data") == {"a": "1", "b": "2"} and entry_of(o, "edit", "Update") is None, r)
    r = c.patch(N + "/a1?fieldManager=e2e", dict(cfg, data={"a": "1"}), ctype=APPLY)
    check("applying fewer fields removes the ones only this manager had",
          r.status == 200 and (r.json() or {}).get("data") == {"a": "1"}, r)
    r = c.patch(N + "/a1?fieldManager=e2e&dryRun=All", dict(cfg, data={"a": "dry"}), ctype=APPLY)
    check("a dry-run apply answers the result and stores nothing",
          r.status == 200 and (r.json() or {}).get("data") == {"a": "dry"} and
          c.get(N + "/a1").json().get("data") == {"a": "1"}, r)
    r = c.patch(N + "/a1?fieldManager=e2e", dict(cfg, apiVersion="apps/v1"), ctype=APPLY)
    check("an apply patch of another version: 400 Incorrect version specified",
          status_ok(r, 400, "BadRequest") and r.json()["message"] == "Incorrect version specified in apply "
          "patch. Specified patch version: apps/v1, expected: v1", r)
    bad = dict(cfg, metadata={"name": "a1", "managedFields": [{"manager": "x"}]})
    r = c.patch(N + "/a1?fieldManager=e2e", bad, ctype=APPLY)
    check("managedFields in an apply patch: 400 metadata.managedFields must be nil",
          status_ok(r, 400, "BadRequest") and r.json()["message"] == "metadata.managedFields must be nil", r)
    r = c.patch(N + "/a1?fieldManager=e2e", dict(cfg, spec={"x": 1}), ctype=APPLY)
    check("an undeclared field in an apply patch: 400 field not declared in schema",
          status_ok(r, 400, "BadRequest") and "field not declared in schema" in r.json()["message"], r)

    r = c.post(N, cm("ua"), headers={"User-Agent": "mytool/1.2 (linux/amd64) kubernetes/abc"})
    check("without fieldManager the manager is the User-Agent before '/' (Update, created fields)",
          r.status == 201 and (entry_of(r.json(), "mytool", "Update") or {}).get("fieldsV1") ==
          {"f:data": {".": {}, "f:k": {}}}, r)
    r = c.get(N + "/ua", headers={"Accept": PROTOBUF})
    check("an object with managedFields encodes as protobuf", r.status == 200 and r.body[:4] == MAGIC, r)

    D = "/apis/apps/v1/namespaces/e2e-apply/deployments"
    dep = deployment("web", replicas=2)
    r = c.patch(D + "/web?fieldManager=kubectl", dep, ctype=APPLY)
    check("apply creates a Deployment", r.status == 201, r)
    kubectl = {"User-Agent": "kubectl/v1.32.4 (linux/amd64) kubernetes/abc"}
    r = c.patch(D + "/web/scale", {"spec": {"replicas": 5}}, headers=kubectl)
    d = c.get(D + "/web").json()
    sc = entry_of(d, "kubectl", "Update") or {}
    check("kubectl scale records manager kubectl, subresource scale, owning .spec.replicas",
          r.status == 200 and sc.get("subresource") == "scale" and sc.get("apiVersion") == "apps/v1" and
          sc.get("fieldsV1") == {"f:spec": {"f:replicas": {}}}, r, detail=json.dumps(entries(d))[:400])
    r = c.patch(D + "/web?fieldManager=kubectl", deployment("web", replicas=3), ctype=APPLY)
    check("re-applying replicas conflicts with the scale subresource's manager",
          status_ok(r, 409, "Conflict") and r.json().get("message") ==
          'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: '
          '.spec.replicas', r)
    r = c.patch(D + "/web?fieldManager=kubectl&force=true", deployment("web", replicas=3), ctype=APPLY)
    d = r.json() or {}
    fv = (entry_of(d, "kubectl", "Apply") or {}).get("fieldsV1") or {}
    items = fv.get("f:spec", {}).get("f:template", {}).get("f:spec", {}).get("f:containers", {})
    check("force: replicas 3, the scale entry gone, containers owned by key (k:{\"name\":\"c\"})",
          r.status == 200 and d["spec"]["replicas"] == 3 and entry_of(d, "kubectl", "Update") is None and
          list(items) == ['k:{"name":"c"}'] and fv["f:spec"].get("f:selector") == {}, r)
    st = c.get(D + "/web/status").json()
    st["status"] = {"replicas": 3}
    r = c.put(D + "/web/status", st, headers={"User-Agent": "controller/1"})
    su = entry_of(r.json(), "controller", "Update") or {}
    check("a status write records subresource status, owning status fields only",
          r.status == 200 and su.get("subresource") == "status" and list(su.get("fieldsV1", {})) == ["f:status"], r)
    r = c.patch(D + "/web/status?fieldManager=ctl&force=true", {"apiVersion": "apps/v1", "kind": "Deployment",
                                                               "metadata": {"name": "web"}, "spec": {"replicas": 9},
                                                               "status": {"replicas": 4}}, ctype=APPLY)
    d = r.json() or {}
    sa = entry_of(d, "ctl", "Apply") or {}
    check("apply through /status (force: controller owned it) changes status only; subresource status",
          r.status == 200 and d.get("status", {}).get("replicas") == 4 and d["spec"]["replicas"] == 3 and
          sa.get("subresource") == "status" and sa.get("fieldsV1") == {"f:status": {"f:replicas": {}}}, r)
    yaml_body = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y1\ndata:\n  script: |\n"
                 "    echo hi\n  flag: \"yes\"  # quoted: a YAML 1.1 boolean otherwise\n")
    r = c.patch(N + "/y1?fieldManager=e2e", yaml_body, ctype=APPLY)
    check("a YAML apply patch (block scalar, comment, quoted scalar)",
          r.status == 201 and (r.json() or {}).get("data") == {"script": "echo hi\n", "flag": "yes"}, r)
    r = c.patch(N + "/y1?fieldManager=e2e", "data:\n  a: b: c\n", ctype=APPLY)
    check("malformed YAML: 400 in upstream's words",
          status_ok(r, 400, "BadRequest") and r.json()["message"] ==
          "error converting YAML to JSON: yaml: line 2: mapping values are not allowed in this context", r)

GROUPS = {
    "protobuf": g_protobuf, "negotiation": g_negotiation, "table": g_table, "watch": g_watch,
    "bookmark-long": g_bookmark_long, "pagination": g_pagination, "errors": g_errors, "dryrun": g_dryrun,
    "validation": g_validation, "strictpatch": g_strictpatch, "finalizers": g_finalizers,
    "namespace": g_namespace, "generation": g_generation, "scale": g_scale, "anonymous": g_anonymous,
    "prerestart": g_prerestart, "postrestart": g_postrestart, "apply": g_apply,
}

if __name__ == "__main__":
    try:
        GROUPS[group]()
    except Exception as e:  # noqa: BLE001 - a crash of the group is one failure, reported
        import traceback
        checks.failed += 1
        print("FAIL group %s stopped: %r" % (group, e))
        traceback.print_exc(file=sys.stdout)
    checks.finish()
