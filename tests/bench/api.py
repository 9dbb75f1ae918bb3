#!/usr/bin/env python3
"""API benchmarks: kcp beside etcd 3.4, driven by the same load generator in one run.

Prints one table per benchmark (metric, kcp, etcd 3.4, kcp/etcd):
  writes and reads   create at 1 and 64 clients (etcd: put), GET of one object at 64 (etcd: range)
  list               LIST of 10,000 ConfigMaps (etcd: range over 10,000 keys): time and peak RSS
  watch              1000 watchers, 200 updates: delay from the write's acknowledgment to delivery
  disk               bytes written to the block layer per update of one object (/proc/PID/io)
Every server is started fresh for each benchmark, on loopback, one server at a time.

Usage: api.py KCP_BINARY LOADGEN_BINARY [--quick] [--only NAME[,NAME]]
Environment: BENCH_DIR (where data directories go; default $TMPDIR or /tmp; must be a real
disk, not tmpfs, for the disk table to mean anything); ETCD_TLS=1 serves etcd over HTTPS with
client-certificate authentication (certificates from a throwaway `kcp server --init`), so both
servers pay for TLS; the default is plain HTTP for etcd.
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

KCP, LOADGEN = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv
ONLY = None
if "--only" in sys.argv:
    ONLY = set(sys.argv[sys.argv.index("--only") + 1].split(","))

# Sizes of the full and the QUICK runs.
if QUICK:
    REPS, SECS = 1, 1.5
    LIST_N, LIST_RUNS = 2000, 3
    WATCHERS, UPDATES, RATE = 200, 40, 20
    DISK_N = 300
    SETTLE, LIST_SETTLE = 5, 10
else:
    REPS, SECS = 3, 5
    LIST_N, LIST_RUNS = 10000, 5
    WATCHERS, UPDATES, RATE = 1000, 200, 20
    DISK_N = 2000
    SETTLE, LIST_SETTLE = 15, 60
CLK_TCK = os.sysconf("SC_CLK_TCK")
ETCD_TLS = os.environ.get("ETCD_TLS", "0") not in ("", "0")
ETCD_PKI = None  # set by main() when ETCD_TLS


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_io(pid, key="write_bytes"):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_cpu_s(pid):
    """User + system CPU seconds of the whole process (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0), so VmHWM afterwards is the peak since."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def fs_of(path):
    """(fstype, device) of the mount holding path."""
    best = ("?", "?", "")
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[2]):
                best = (fstype, dev, mnt)
    return best[0], best[1]


class Server:
    """A kcp or etcd process with its own data directory; logs go to tmpfs when there is one,
    so that logging never counts in the disk figures."""

    def __init__(self, kind, root, logdir):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=kind + "-", dir=root)
        self.port = free_port()
        self.log = open(os.path.join(logdir, os.path.basename(self.dir) + ".log"), "wb")
        if kind == "kcp":
            argv = [KCP, "server", "--init", "--data-dir", self.dir, "--listen",
                    f"127.0.0.1:{self.port}", "--node-name", "b"]
        else:
            peer = free_port()
            scheme = "https" if ETCD_TLS else "http"
            argv = ["etcd", "--name", "default", "--data-dir", self.dir,
                    "--listen-client-urls", f"{scheme}://127.0.0.1:{self.port}",
                    "--advertise-client-urls", f"{scheme}://127.0.0.1:{self.port}",
                    "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-cluster", f"default=http://127.0.0.1:{peer}"]
            if ETCD_TLS:
                argv += ["--cert-file", f"{ETCD_PKI}/server.crt",
                         "--key-file", f"{ETCD_PKI}/server.key",
                         "--trusted-ca-file", f"{ETCD_PKI}/ca.crt", "--client-cert-auth"]
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        t0 = time.time()
        while not self.ready():
            if self.p.poll() is not None:
                raise RuntimeError(f"{kind} exited with {self.p.returncode}; log: {self.log.name}")
            if time.time() - t0 > 30:
                raise RuntimeError(f"{kind} not ready in 30 s; log: {self.log.name}")
            time.sleep(0.02)
        self.pid = self.p.pid

    @property
    def pki(self):
        return os.path.join(self.dir, "pki") if self.kind == "kcp" else ETCD_PKI

    @property
    def tls(self):
        return self.kind == "kcp" or ETCD_TLS

    def tls_args(self):
        if not self.tls:
            return []
        return ["--ca", f"{self.pki}/ca.crt", "--cert", f"{self.pki}/admin.crt",
                "--key", f"{self.pki}/admin.key"]

    def conn(self):
        if self.tls:
            ctx = ssl.create_default_context(cafile=f"{self.pki}/ca.crt")
            ctx.load_cert_chain(f"{self.pki}/admin.crt", f"{self.pki}/admin.key")
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=60)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method, path, body=None, ctype="application/json"):
        c = self.conn()
        try:
            headers = {"Content-Type": ctype} if body is not None else {}
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def ready(self):
        try:
            st, body = self.request("GET", "/readyz" if self.kind == "kcp" else "/health")
            return st == 200
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def loadgen(srv, mode, *args, timeout=600):
    argv = [LOADGEN, "--target", srv.kind, "--mode", mode, "--port", str(srv.port),
            *srv.tls_args(), *[str(a) for a in args]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen {mode} against {srv.kind} failed: {r.stderr.strip()}")
    if r.stderr.strip():
        sys.stderr.write(f"  [{srv.kind} {mode}] {r.stderr.strip()[:600]}\n")
    out = {}
    for kv in r.stdout.split():
        k, v = kv.split("=", 1)
        out[k] = float(v)
    return out


# ---- table output ----

def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(title, rows, note=None):
    print(f"\n== {title}")
    print(f"{'metric':46} {'kcp':>11} {'etcd 3.4':>11} {'kcp/etcd':>9}")
    for name, k, e, *flags in rows:
        ratio = "n/a" if "noratio" not in flags else ""
        if isinstance(k, (int, float)) and isinstance(e, (int, float)) and e and not flags:
            ratio = f"{k / e:.2f}"
        print(f"{name:46} {fmt(k):>11} {fmt(e):>11} {ratio:>9}")
    if note:
        for line in note.strip().splitlines():
            print("  " + line)
    sys.stdout.flush()


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---- the benchmarks ----

def with_server(kind, fn):
    srv = Server(kind, ROOT, LOGS)
    try:
        res = fn(srv)
        if not srv.alive():
            print(f"  WARNING: {kind} died during the benchmark; log: {srv.log.name}")
        return res
    finally:
        srv.stop()


def settle(srv, cap):
    """Waits until the server is idle (under 5 % of a core for 0.5 s), at most cap seconds:
    work a server defers past the replies (kcp's history recorder, etcd's backend commits)
    belongs to the requests that caused it. Returns (seconds waited, idle at the end)."""
    t0 = time.time()
    while True:
        c0 = proc_cpu_s(srv.pid)
        time.sleep(0.5)
        if proc_cpu_s(srv.pid) - c0 < 0.025:
            return time.time() - t0, True
        if time.time() - t0 >= cap:
            return time.time() - t0, False


def rate_case(kind, mode, conns):
    """One timed run on a fresh server: a backlog one case leaves (kcp's history recorder can
    run for minutes after a burst of creates) must not slow the next case, or the other server.
    Server CPU per request counts the run and the time until the server is idle again."""
    srv = Server(kind, ROOT, LOGS)
    try:
        name = "one-0-0"
        if mode == "get":
            loadgen(srv, "create", "--total", 1, "--prefix", "one")
            settle(srv, SETTLE)
        c0 = proc_cpu_s(srv.pid)
        r = loadgen(srv, mode, "--conns", conns, "--seconds", SECS, "--name", name)
        busy, idle = settle(srv, SETTLE)
        r["cpu_us"] = (proc_cpu_s(srv.pid) - c0) * 1e6 / r["ops"] if r["ops"] else None
        r["busy_s"] = max(busy - 0.5, 0)
        r["idle"] = 1.0 if idle else 0.0
        if not srv.alive():
            print(f"  WARNING: {kind} died during the benchmark; log: {srv.log.name}")
        return r
    finally:
        srv.stop()


def bench_rw():
    # Runs alternate between the servers, so that a change in the machine's background load
    # falls on both alike.
    res = {kind: {"c1": [], "c64": [], "get": []} for kind in ("kcp", "etcd")}
    for rep in range(REPS):
        for kind in ("kcp", "etcd"):
            r = res[kind]
            r["c1"].append(rate_case(kind, "create", 1))
            r["c64"].append(rate_case(kind, "create", 64))
            r["get"].append(rate_case(kind, "get", 64))
    k, e = ({case: {key: med([r[key] for r in runs]) for key in runs[0]}
             for case, runs in res[kind].items()} for kind in ("kcp", "etcd"))
    for d, kind in ((k, "kcp"), (e, "etcd")):
        for case in d:
            d[case]["all_idle"] = min(r["idle"] for r in res[kind][case])
    rows = []
    for case, label in (("c1", "create, 1 client"), ("c64", "create, 64 clients"),
                        ("get", "GET one object, 64 clients")):
        rows.append((f"{label} (req/s)", k[case]["rps"], e[case]["rps"]))
        rows.append((f"  p50 latency (ms)", k[case]["p50_ms"], e[case]["p50_ms"]))
        rows.append((f"  p99 latency (ms)", k[case]["p99_ms"], e[case]["p99_ms"]))
        cpu_k, cpu_e = k[case]["cpu_us"], e[case]["cpu_us"]
        if not k[case]["all_idle"]:
            cpu_k = f">{fmt(cpu_k)}"
        if not e[case]["all_idle"]:
            cpu_e = f">{fmt(cpu_e)}"
        rows.append((f"  server CPU per request (us)", cpu_k, cpu_e))
        rows.append((f"  server busy after the run (s)", k[case]["busy_s"], e[case]["busy_s"],
                     "noratio"))
        rows.append((f"  load generator CPU per request (us)", k[case]["client_cpu_us"],
                     e[case]["client_cpu_us"]))
        errs = k[case]["errors"] + e[case]["errors"]
        if errs:
            rows.append((f"  errors", k[case]["errors"], e[case]["errors"]))
    table(f"writes and reads (median of {REPS} runs of {SECS:g} s; etcd: put and range)", rows,
          "kcp: POST of a ~300-byte ConfigMap over HTTPS with a client certificate (validation,\n"
          "defaults, uid, JSON reply); etcd: /v3/kv/put of the same JSON as the value, through\n"
          f"its grpc-gateway, {ETCD_MODE}. Closed loop, one request in flight per connection,\n"
          "one client thread, a fresh server per run. Server CPU = user+system time of the\n"
          "server process from the start of the run until it is idle again / requests; 'busy\n"
          f"after' = how long that took (at most {SETTLE} s; '>' marks a server still busy then).")


def bench_list():
    def run(srv):
        if srv.kind == "kcp":
            st, body = srv.request("POST", "/api/v1/namespaces",
                                   {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": "bench-list"}})
            assert st == 201, (st, body)
        t0 = time.time()
        r = loadgen(srv, "create", "--conns", 64, "--total", LIST_N, "--ns", "bench-list",
                    "--prefix", "l")
        fill_s = time.time() - t0
        if r["ops"] != LIST_N:
            raise RuntimeError(f"{srv.kind}: created {r['ops']:.0f} of {LIST_N}")
        # check the count once, outside the timed runs
        if srv.kind == "kcp":
            st, body = srv.request("GET", "/api/v1/namespaces/bench-list/configmaps")
            count = len(json.loads(body)["items"])
        else:
            import base64
            p = b"/registry/configmaps/bench-list/"
            st, body = srv.request("POST", "/v3/kv/range",
                                   {"key": base64.b64encode(p).decode(),
                                    "range_end": base64.b64encode(p[:-1] + b"0").decode(),
                                    "count_only": True})
            count = int(json.loads(body)["count"])
        if count != LIST_N:
            raise RuntimeError(f"{srv.kind}: list has {count} items, expected {LIST_N}")
        busy, idle = settle(srv, LIST_SETTLE)
        times, peaks, before, sizes, anon = [], [], [], [], []
        for _ in range(LIST_RUNS):
            rss0 = proc_status(srv.pid, "VmRSS")
            anon.append(proc_status(srv.pid, "RssAnon") / 1024)
            hwm_ok = reset_hwm(srv.pid)
            r = loadgen(srv, "list", "--total", 1, "--ns", "bench-list")
            hwm = proc_status(srv.pid, "VmHWM")
            times.append(r["p50_ms"])
            sizes.append(r["bytes_per_op"])
            before.append(rss0 / 1024)
            peaks.append(hwm / 1024 if hwm_ok else None)
        return {"ms": med(times), "peak": med(peaks), "before": med(before), "anon": med(anon),
                "growth": med([p - b for p, b in zip(peaks, before)]) if peaks[0] else None,
                "mb": med(sizes) / 1e6, "fill": LIST_N / fill_s,
                "busy": max(busy - 0.5, 0) if idle else f">{busy:.0f}"}

    k = with_server("kcp", run)
    e = with_server("etcd", run)
    table(f"LIST {LIST_N:,} ConfigMaps, JSON (median of {LIST_RUNS}; etcd: range over a prefix)", [
        ("time to fetch the whole list (ms)", k["ms"], e["ms"]),
        ("response size (MB)", k["mb"], e["mb"]),
        ("server RSS before (MB)", k["before"], e["before"]),
        ("  of which anonymous memory (MB)", k["anon"], e["anon"]),
        ("server peak RSS during the list (MB)", k["peak"], e["peak"]),
        ("  peak minus before (MB)", k["growth"], e["growth"]),
        (f"creating the {LIST_N:,} objects, 64 clients (req/s)", k["fill"], e["fill"]),
        ("  server busy after creating them (s)", k["busy"], e["busy"], "noratio"),
    ], "Peak RSS: VmHWM after the request, reset to the current RSS just before it\n"
       "(echo 5 > /proc/PID/clear_refs). etcd's values are base64 in its JSON, hence larger.\n"
       f"The lists start once the server is idle after the creates (or after {LIST_SETTLE} s).")


def bench_watch():
    def run(srv):
        return loadgen(srv, "watch", "--watchers", WATCHERS, "--updates", UPDATES, "--rate", RATE,
                       "--threads", 2, "--wait", 10, timeout=900)

    k = with_server("kcp", run)
    e = with_server("etcd", run)
    rows = [
        ("write sent -> event delivered, p50 (ms)", k["send_p50_ms"], e["send_p50_ms"]),
        ("write sent -> event delivered, p99 (ms)", k["send_p99_ms"], e["send_p99_ms"]),
        ("write acked -> event delivered, p50 (ms)", k["p50_ms"], e["p50_ms"]),
        ("write acked -> event delivered, p99 (ms)", k["p99_ms"], e["p99_ms"]),
        ("write acked -> event delivered, max (ms)", k["max_ms"], e["max_ms"]),
        ("events delivered before the ack (%)", 100 * k["early"] / max(k["delivered"], 1),
         100 * e["early"] / max(e["delivered"], 1)),
        ("write latency with the watchers, p50 (ms)", k["write_p50_ms"], e["write_p50_ms"]),
        ("write latency with the watchers, p99 (ms)", k["write_p99_ms"], e["write_p99_ms"]),
        ("events delivered", k["delivered"], e["delivered"]),
        ("events missing", k["missing"], e["missing"]),
        ("time to open the watches (s)", k["setup_s"], e["setup_s"]),
    ]
    table(f"{WATCHERS} watchers, {UPDATES} updates of one object at {RATE:g}/s "
          f"(etcd: /v3/watch via its gateway)", rows,
          "One connection per watcher. kcp: TLS with a client certificate, ?watch=1 from the\n"
          f"current resourceVersion; etcd: a prefix watch, {ETCD_MODE}.\n"
          "Over every watcher and update: when the client parsed the event minus when the writer\n"
          "sent the update, or minus when it read the acknowledgment (events that arrive before\n"
          "it count as 0). The writer is one more connection, one update in flight.")


def bench_disk():
    def run(srv):
        if srv.kind == "kcp":
            st, body = srv.request("POST", "/api/v1/namespaces/default/configmaps",
                                   {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "disk"}, "data": {"payload": "x" * 200}})
            assert st == 201, (st, body)
        out = {}
        for conns in (1, 64):
            # deferred writes (etcd's backend commits every 100 ms, kcp's history) count too
            time.sleep(1)
            settle(srv, SETTLE)
            w0 = proc_io(srv.pid)
            r = loadgen(srv, "update", "--conns", conns, "--total", DISK_N, "--name", "disk")
            time.sleep(1)
            busy, idle = settle(srv, SETTLE)
            w1 = proc_io(srv.pid)
            out[conns] = {"bpu": (w1 - w0) / r["ops"], "rps": r["rps"], "errors": r["errors"],
                          "p50": r["p50_ms"]}
            if not idle:
                out[conns]["bpu"] = f">{fmt(out[conns]['bpu'])}"
        out["size"] = sum(os.stat(os.path.join(d, f)).st_blocks * 512
                          for d, _, fs in os.walk(srv.dir) for f in fs) / 1e6
        return out

    k = with_server("kcp", run)
    e = with_server("etcd", run)
    rows = []
    for conns in (1, 64):
        rows.append((f"bytes written per update, {conns} client{'s' if conns > 1 else ''}",
                     k[conns]["bpu"], e[conns]["bpu"]))
        rows.append((f"  updates/s", k[conns]["rps"], e[conns]["rps"]))
    rows.append(("data directory afterwards (MB allocated)", k["size"], e["size"]))
    fstype, dev = fs_of(ROOT)
    table(f"disk writes per update of one object ({DISK_N} updates; /proc/PID/io write_bytes)",
          rows,
          f"Data on {fstype} ({dev}). kcp: merge PATCH of a ~300-byte ConfigMap, LMDB, fsync per\n"
          "group commit; etcd: put of a ~300-byte value, WAL fdatasync per raft batch plus bbolt\n"
          "commits (every 100 ms), default --snapshot-count (100,000: no snapshot in this run).")


ETCD_MODE = "HTTPS with a client certificate" if ETCD_TLS else "plain HTTP"
BENCHES = {"rw": bench_rw, "list": bench_list, "watch": bench_watch, "disk": bench_disk}


def make_etcd_pki():
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, from kcp."""
    srv = Server("kcp", ROOT, LOGS)
    pki = tempfile.mkdtemp(prefix="pki-", dir=ROOT)
    for f in ("ca.crt", "server.crt", "server.key", "admin.crt", "admin.key"):
        shutil.copy(os.path.join(srv.pki, f), pki)
    srv.stop()
    return pki


def main():
    global ROOT, LOGS, ETCD_PKI
    base = os.environ.get("BENCH_DIR") or tempfile.gettempdir()
    fstype, dev = fs_of(base)
    if fstype in ("tmpfs", "ramfs"):
        print(f"  WARNING: {base} is {fstype}: the disk table will read 0; set BENCH_DIR")
    ROOT = tempfile.mkdtemp(prefix="kcp-bench-", dir=base)
    LOGS = tempfile.mkdtemp(prefix="kcp-bench-logs-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else ROOT)
    keep_logs = False
    try:
        if ETCD_TLS:
            ETCD_PKI = make_etcd_pki()
        for name, fn in BENCHES.items():
            if ONLY is None or name in ONLY:
                t0 = time.time()
                try:
                    fn()
                except Exception as ex:  # report and go on with the next benchmark
                    keep_logs = True
                    print(f"\n== {name}: FAILED: {ex}")
                print(f"  ({time.time() - t0:.0f} s)")
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
        if keep_logs:
            print(f"server logs kept in {LOGS}")
        else:
            shutil.rmtree(LOGS, ignore_errors=True)


main()
