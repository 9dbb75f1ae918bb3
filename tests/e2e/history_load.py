"""Concurrent ConfigMap writes for the history tests and benchmark (standard library only).

usage: history_load.py DIR PORT COUNT CONCURRENCY PREFIX [create|update]
create: COUNT ConfigMaps PREFIX-0..; update: COUNT updates, each client thread
writing its own ConfigMap PREFIX-u<thread> (created first), so that no write races another. Prints "writes N seconds S rate R/s errors E". Errors (e.g. a connection reset by
a server killed on purpose) are counted, not raised."""
import http.client
import json
import ssl
import sys
import threading
import time

d, port, count, conc, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
mode = sys.argv[6] if len(sys.argv) > 6 else "create"
ctx = ssl.create_default_context(cafile=f"{d}/pki/ca.crt")
ctx.check_hostname = False
ctx.load_cert_chain(f"{d}/pki/admin.crt", f"{d}/pki/admin.key")
base = "/api/v1/namespaces/default/configmaps"
lock = threading.Lock()
state = {"next": 0, "errors": 0, "done": 0}


def conn():
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)


def body(name, i):
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name}, "data": {"i": str(i)}})


def worker(tid):
    c = conn()
    while True:
        with lock:
            i = state["next"]
            if i >= count:
                return
            state["next"] += 1
        try:
            if mode == "create":
                c.request("POST", base, body(f"{prefix}-{i}", i), {"Content-Type": "application/json"})
            else:
                c.request("PUT", f"{base}/{prefix}-u{tid}", body(f"{prefix}-u{tid}", i),
                          {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            ok = r.status in (200, 201)
        except Exception:
            ok = False
            c = conn()
        with lock:
            state["done" if ok else "errors"] += 1


if mode == "update":
    c = conn()
    for k in range(conc):
        c.request("POST", base, body(f"{prefix}-u{k}", 0), {"Content-Type": "application/json"})
        c.getresponse().read()
t0 = time.time()
threads = [threading.Thread(target=worker, args=(t,)) for t in range(conc)]
for t in threads:
    t.start()
for t in threads:
    t.join()
dt = time.time() - t0
print(f"writes {state['done']} seconds {dt:.2f} rate {state['done'] / dt:.0f}/s errors {state['errors']}")
