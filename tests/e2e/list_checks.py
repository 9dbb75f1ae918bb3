#!/usr/bin/env python3
"""Large-list checks against one running kcp: creates many ConfigMaps, then reads them back as
JSON, protobuf and Table lists, whole and in pages, checking every item arrives once, in order,
with continue tokens that chain. Prints `ok ...` or `FAIL ...` per check and ends with
"N passed, N failed".

Usage: list_checks.py HOST PORT PKI_DIR GROUP NAMESPACE [COUNT]
  GROUP create:  COUNT ConfigMaps lcm-00000... in NAMESPACE (16 at a time)
  GROUP read:    the lists (COUNT: how many NAMESPACE holds)
  GROUP slow:    a whole Table read by a slow client
  GROUP abandon: clients that leave in the middle of whole lists"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kclient import (PROTOBUF, TABLE, Checks, Client, decode_list, pb_decode, pb_first,  # noqa: E402
                     pb_str, q, unenvelope)

host, port, pki, group, ns = sys.argv[1:6]
count = int(sys.argv[6]) if len(sys.argv) > 6 else 5000
c = Client(host, port, pki)
CMS = "/api/v1/namespaces/%s/configmaps" % ns


checks = Checks()
check = checks.check


def name(i):
    return "lcm-%05d" % i


def create():
    errors = []
    lock = threading.Lock()
    todo = list(range(count))

    def worker():
        conn = c.conn(30)  # one keep-alive connection per thread: no handshake per create
        while True:
            with lock:
                if not todo:
                    break
                i = todo.pop()
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name(i), "labels": {"app": "lists", "n": str(i % 7)}},
                               "data": {"a": "x" * 200, "b": "value-%d" % i, "c": "y" * 100}})
            conn.request("POST", CMS, body=body, headers={"Content-Type": "application/json",
                                                          "Accept": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 201:
                with lock:
                    errors.append("%d %s" % (resp.status, data[:300]))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("created %d ConfigMaps" % count, not errors, None, errors[0] if errors else "")


def json_pages(limit, accept="application/json"):
    """Every page of a JSON list (or Table); returns (items or rows, pages, last response)."""
    out, pages, cont, r = [], 0, None, None
    while True:
        r = c.get(CMS + "?" + q(limit=limit, **({"continue": cont} if cont else {})),
                  headers={"Accept": accept}, timeout=60)
        if r.status != 200:
            return None, pages, r
        doc = r.json()
        pages += 1
        out += doc.get("rows" if doc.get("kind") == "Table" else "items") or []
        cont = (doc.get("metadata") or {}).get("continue")
        if not cont:
            return out, pages, r


def pb_pages(limit):
    """Every page of a protobuf list: (item names, pages, last response)."""
    names, pages, cont, r = [], 0, None, None
    while True:
        params = {"limit": limit} if limit else {}
        if cont:
            params["continue"] = cont
        r = c.get(CMS + ("?" + q(**params) if params else ""), headers={"Accept": PROTOBUF},
                  timeout=60)
        if r.status != 200 or r.header("Content-Type") != PROTOBUF:
            return None, pages, r
        _, _, raw = unenvelope(r.body)
        meta, items = decode_list(raw)
        for it in items:
            m = pb_decode(pb_first(pb_decode(it), 1, b""))
            names.append(pb_str(m, 1))
        pages += 1
        cont = meta["continue"]
        if not cont or not limit:
            return names, pages, r


def read():
    want = [name(i) for i in range(count)]
    r = c.get(CMS, timeout=60)
    items = (r.json() or {}).get("items") or []
    check("a JSON list of %d streams every item once, in order" % count,
          r.status == 200 and [i["metadata"]["name"] for i in items] == want, r,
          "got %d items" % len(items))
    items, pages, r = json_pages(500)
    check("JSON pages of 500: %d pages, every item once, in order" % ((count + 499) // 500),
          items is not None and pages == (count + 499) // 500 and
          [i["metadata"]["name"] for i in items] == want, r,
          "pages %d, items %s" % (pages, None if items is None else len(items)))
    rows, pages, r = json_pages(0, TABLE)
    check("a Table of %d rows" % count,
          rows is not None and pages == 1 and [x["cells"][0] for x in rows] == want and
          all(x["cells"][1] == 3 for x in rows) and
          all(x["object"]["kind"] == "PartialObjectMetadata" for x in rows), r)
    doc = r.json() or {}
    check("...with the ConfigMap columns", [cd["name"] for cd in doc.get("columnDefinitions", [])] ==
          ["Name", "Data", "Age"], r)
    rows, pages, r = json_pages(500, TABLE)
    check("Table pages of 500: every row once, in order",
          rows is not None and pages == (count + 499) // 500 and
          [x["cells"][0] for x in rows] == want, r)
    got, pages, r = pb_pages(0)
    check("a protobuf list of %d" % count, got == want, r,
          "got %s" % (None if got is None else len(got)))
    got, pages, r = pb_pages(500)
    check("protobuf pages of 500: every item once, in order",
          got == want and pages == (count + 499) // 500, r,
          "pages %d, got %s" % (pages, None if got is None else len(got)))
    # A selector with pages: items that do not match are skipped, pages still chain.
    sel = [name(i) for i in range(count) if i % 7 == 3]
    out, cont, n = [], None, 0
    while True:
        r = c.get(CMS + "?" + q(limit=300, labelSelector="n=3", **({"continue": cont} if cont else {})),
                  headers={"Accept": TABLE}, timeout=60)
        if r.status != 200:
            break
        n += 1
        out += [x["cells"][0] for x in r.json().get("rows") or []]
        cont = r.json()["metadata"].get("continue")
        if not cont:
            break
    check("Table pages with a label selector chain to every match", out == sel, r,
          "got %d of %d in %d pages" % (len(out), len(sel), n))


def slow():
    """A Table of every item read slowly: the server writes it as the client takes it."""
    conn = c.conn(120)
    conn.request("GET", CMS, headers={"Accept": TABLE})
    resp = conn.getresponse()
    body = bytearray()
    while True:
        part = resp.read(32 * 1024)
        if not part:
            break
        body += part
        time.sleep(0.01)
    conn.close()
    rows = json.loads(bytes(body)).get("rows") or []
    check("a Table of %d rows read slowly arrives whole (%d bytes)" % (count, len(body)),
          resp.status == 200 and [x["cells"][0] for x in rows] == [name(i) for i in range(count)],
          None, "status %d, %d rows" % (resp.status, len(rows)))


def abandon():
    """Clients that leave in the middle of big lists: the server stays up and lists again."""
    for accept in (TABLE, "application/json", PROTOBUF):
        conn = c.conn(30)
        conn.request("GET", CMS, headers={"Accept": accept})
        resp = conn.getresponse()
        resp.read(100 * 1024)
        time.sleep(0.2)  # the server fills the connection and waits for it to drain
        conn.sock.close()
        conn.close()
    time.sleep(0.2)
    r = c.get(CMS + "?limit=1")
    check("after clients left in the middle of lists, the server answers", r.status == 200, r)


if group == "create":
    create()
elif group == "read":
    read()
elif group == "slow":
    slow()
elif group == "abandon":
    abandon()
else:
    print("FAIL unknown group %s" % group)
    checks.failed += 1
checks.finish()
