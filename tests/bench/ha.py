#!/usr/bin/env python3
"""3-member cluster benchmark: kcp (Raft) beside etcd 3.4 (3 members), one run, one machine.

Prints one table (metric, kcp, etcd 3.4, kcp/etcd):
  create at 1 and 64 clients against the leader, and at 64 clients spread over the 3 members
  (followers forward to the leader; etcd's do too): requests/s, p50 and p99 latency
  bytes written to disk per entry: write_bytes of /proc/PID/io of the 3 server processes,
  summed, from the start of a run until the servers are idle again, divided by the entries
  server CPU per entry, summed over the 3 members
Every case runs on a fresh cluster; runs alternate between kcp and etcd; each figure is the
median of the runs. All servers on loopback; the load generator is loadgen.c (kcp: POST of a
~300-byte ConfigMap over HTTPS with a client certificate; etcd: /v3/kv/put of the same JSON
through its gateway).

Usage: ha.py KCP_BINARY LOADGEN_BINARY [--quick] [--runs N]
Environment: BENCH_DIR (data directories; a real disk, not tmpfs), ETCD_TLS=1 (etcd's clients
over HTTPS with client certificates, as kcp's; its peers stay plain HTTP)."""
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

KCP, LOADGEN = sys.argv[1], sys.argv[2]
os.environ["KCP"] = KCP
import cluster as kcl  # noqa: E402  (after KCP is set: it reads it at import)

QUICK = "--quick" in sys.argv
RUNS = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else (1 if QUICK else 3)
SECS = 2 if QUICK else 5
SETTLE = 5 if QUICK else 15
CLK_TCK = os.sysconf("SC_CLK_TCK")
ETCD_TLS = os.environ.get("ETCD_TLS", "0") not in ("", "0")
CASES = (("c1", "create, 1 client, at the leader", 1, False),
         ("c64", "create, 64 clients, at the leader", 64, False),
         ("spread", "create, 64 clients over the 3 members", 64, True))


def free_ports(n):
    """n distinct free ports (all held open while choosing, so none comes twice)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def free_port():
    return free_ports(1)[0]


def proc_io(pid):
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0


def fs_of(path):
    best = ("?", "?", "")
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[2]):
                best = (fstype, dev, mnt)
    return best[0], best[1]


class Quiet:
    """The integration helpers' Report, silent: the bench prints tables only."""
    failed = 0

    def check(self, desc, cond, detail=""):
        if not cond:
            raise RuntimeError(f"{desc}: {detail}")
        return True

    def log(self, msg):
        pass


# ---- the two clusters ----------------------------------------------------------------------

class KcpCluster:
    kind = "kcp"

    def __init__(self):
        self.c = kcl.Cluster(3, prefix="kcp-ha-", root_dir=ROOT, log_dir=LOGS)
        try:
            self.c.start(Quiet())
            leader = self.c.wait_leader(limit=20)
            if not leader:
                raise RuntimeError("kcp: no leader")
        except BaseException:
            self.c.shutdown(Quiet())
            raise
        self.leader = self.c.nodes.index(leader)
        self.pids = [n.proc.pid for n in self.c.nodes]
        self.ports = [n.port for n in self.c.nodes]

    def tls_args(self, i):
        pki = os.path.join(self.c.nodes[i].dir, "pki")
        return ["--ca", f"{pki}/ca.crt", "--cert", f"{pki}/admin.crt", "--key", f"{pki}/admin.key"]

    def alive(self):
        return all(n.alive() for n in self.c.nodes)

    def stop(self):
        self.c.shutdown(Quiet())


class EtcdCluster:
    kind = "etcd"

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="etcd-ha-", dir=ROOT)
        ports = free_ports(6)
        self.ports, peers = ports[:3], ports[3:]
        scheme = "https" if ETCD_TLS else "http"
        initial = ",".join(f"e{i}=http://127.0.0.1:{peers[i]}" for i in range(3))
        self.procs, self.logs = [], []
        for i in range(3):
            log = open(os.path.join(LOGS, os.path.basename(self.root) + f"-e{i}.log"), "wb")
            argv = ["etcd", "--name", f"e{i}", "--data-dir", os.path.join(self.root, f"e{i}"),
                    "--listen-client-urls", f"{scheme}://127.0.0.1:{self.ports[i]}",
                    "--advertise-client-urls", f"{scheme}://127.0.0.1:{self.ports[i]}",
                    "--listen-peer-urls", f"http://127.0.0.1:{peers[i]}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peers[i]}",
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", os.path.basename(self.root)]
            if ETCD_TLS:
                argv += ["--cert-file", f"{ETCD_PKI}/server.crt",
                         "--key-file", f"{ETCD_PKI}/server.key",
                         "--trusted-ca-file", f"{ETCD_PKI}/ca.crt", "--client-cert-auth"]
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=log))
            self.logs.append(log)
        self.pids = [p.pid for p in self.procs]
        t0 = time.time()
        self.leader = None
        try:
            while self.leader is None:
                if time.time() - t0 > 30:
                    raise RuntimeError(f"etcd: no leader in 30 s; logs in {LOGS}")
                if any(p.poll() is not None for p in self.procs):
                    raise RuntimeError(f"etcd exited; logs in {LOGS}")
                self.leader = self.find_leader()
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def conn(self, i):
        if ETCD_TLS:
            ctx = ssl.create_default_context(cafile=f"{ETCD_PKI}/ca.crt")
            ctx.load_cert_chain(f"{ETCD_PKI}/admin.crt", f"{ETCD_PKI}/admin.key")
            return http.client.HTTPSConnection("127.0.0.1", self.ports[i], context=ctx, timeout=5)
        return http.client.HTTPConnection("127.0.0.1", self.ports[i], timeout=5)

    def find_leader(self):
        """Index of the member whose id is the leader every member reports, or None."""
        ids, leaders = [], set()
        for i in range(3):
            try:
                c = self.conn(i)
                c.request("POST", "/v3/maintenance/status", body="{}",
                          headers={"Content-Type": "application/json"})
                st = json.loads(c.getresponse().read())
                c.close()
                ids.append(st["header"]["member_id"])
                leaders.add(st.get("leader"))
            except (OSError, ssl.SSLError, http.client.HTTPException, KeyError, ValueError):
                return None
        if len(leaders) != 1 or None in leaders:
            return None
        lid = leaders.pop()
        return ids.index(lid) if lid in ids else None

    def tls_args(self, i):
        if not ETCD_TLS:
            return []
        return ["--ca", f"{ETCD_PKI}/ca.crt", "--cert", f"{ETCD_PKI}/admin.crt",
                "--key", f"{ETCD_PKI}/admin.key"]

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()
        shutil.rmtree(self.root, ignore_errors=True)


# ---- one case ------------------------------------------------------------------------------

def settle(pids, cap):
    """Waits until the servers are idle (together under 5 % of a core for 0.5 s), at most cap s."""
    t0 = time.time()
    while True:
        c0 = sum(proc_cpu_s(p) for p in pids)
        time.sleep(0.5)
        if sum(proc_cpu_s(p) for p in pids) - c0 < 0.025:
            return time.time() - t0, True
        if time.time() - t0 >= cap:
            return time.time() - t0, False


def loadgen(cl, i, conns, prefix):
    argv = [LOADGEN, "--target", cl.kind, "--mode", "create", "--port", str(cl.ports[i]),
            *cl.tls_args(i), "--conns", str(conns), "--seconds", str(SECS), "--prefix", prefix]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def parse(p):
    out, err = p.communicate(timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err.strip()[:400]}")
    if err.strip():
        sys.stderr.write(f"  [loadgen] {err.strip()[:400]}\n")
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in out.split())}


def run_case(kind, conns, spread):
    cl = KcpCluster() if kind == "kcp" else EtcdCluster()
    try:
        settle(cl.pids, SETTLE)
        w0 = sum(proc_io(p) for p in cl.pids)
        c0 = sum(proc_cpu_s(p) for p in cl.pids)
        if spread:
            share = [conns // 3 + (1 if i < conns % 3 else 0) for i in range(3)]
            procs = [loadgen(cl, i, share[i], f"m{i}") for i in range(3)]
            rs = [parse(p) for p in procs]
            r = {"ops": sum(x["ops"] for x in rs), "rps": sum(x["rps"] for x in rs),
                 "p50_ms": statistics.median(x["p50_ms"] for x in rs),
                 "p99_ms": max(x["p99_ms"] for x in rs), "errors": sum(x["errors"] for x in rs)}
        else:
            r = parse(loadgen(cl, cl.leader, conns, "l"))
        time.sleep(1)   # etcd's backend commits every 100 ms, kcp's history recorder after
        busy, idle = settle(cl.pids, SETTLE)
        w1 = sum(proc_io(p) for p in cl.pids)
        c1 = sum(proc_cpu_s(p) for p in cl.pids)
        ops = r["ops"] or 1
        r["bytes"] = (w1 - w0) / ops
        r["cpu_us"] = (c1 - c0) * 1e6 / ops
        r["idle"] = idle
        if not cl.alive():
            print(f"  WARNING: a {kind} member died during the run; logs in {LOGS}")
        return r
    finally:
        cl.stop()


# ---- output --------------------------------------------------------------------------------

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


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def make_etcd_pki():
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, from kcp."""
    port = free_port()
    d = tempfile.mkdtemp(prefix="pki-src-", dir=ROOT)
    p = subprocess.Popen([KCP, "server", "--init", "--data-dir", d, "--listen",
                          f"127.0.0.1:{port}", "--node-name", "b"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not os.path.exists(os.path.join(d, "kubeconfig")) and time.time() - t0 < 30:
        time.sleep(0.1)
    p.terminate()
    p.wait()
    pki = tempfile.mkdtemp(prefix="pki-", dir=ROOT)
    for f in ("ca.crt", "server.crt", "server.key", "admin.crt", "admin.key"):
        shutil.copy(os.path.join(d, "pki", f), pki)
    return pki


def main():
    global ROOT, LOGS, ETCD_PKI
    base = os.environ.get("BENCH_DIR") or tempfile.gettempdir()
    fstype, dev = fs_of(base)
    if fstype in ("tmpfs", "ramfs"):
        print(f"  WARNING: {base} is {fstype}: bytes written will read 0; set BENCH_DIR")
    ROOT = tempfile.mkdtemp(prefix="kcp-bench-ha-", dir=base)
    LOGS = tempfile.mkdtemp(prefix="kcp-bench-ha-logs-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else ROOT)
    ETCD_PKI = make_etcd_pki() if ETCD_TLS else None
    keep_logs = False
    t0 = time.time()
    try:
        res = {kind: {c[0]: [] for c in CASES} for kind in ("kcp", "etcd")}
        for run in range(RUNS):
            for kind in ("kcp", "etcd"):
                for key, _, conns, spread in CASES:
                    try:
                        res[kind][key].append(run_case(kind, conns, spread))
                    except Exception as ex:  # report and go on
                        keep_logs = True
                        print(f"  {kind} {key} run {run + 1}: FAILED: {ex}")
            print(f"  run {run + 1} of {RUNS} done ({time.time() - t0:.0f} s)", flush=True)
        m = {kind: {key: ({f: med([r[f] for r in runs]) for f in runs[0]} if runs else None)
                    for key, runs in cases.items()} for kind, cases in res.items()}
        print(f"\n== 3-member cluster: writes (median of {RUNS} run{'s' if RUNS > 1 else ''} of "
              f"{SECS} s, a fresh cluster per run)")
        print(f"{'metric':46} {'kcp':>11} {'etcd 3.4':>11} {'kcp/etcd':>9}")

        def row(label, field, key, note=""):
            k = m["kcp"][key][field] if m["kcp"][key] else None
            e = m["etcd"][key][field] if m["etcd"][key] else None
            ks, es = fmt(k), fmt(e)
            if field in ("bytes", "cpu_us"):
                if m["kcp"][key] and not all(r["idle"] for r in res["kcp"][key]):
                    ks = ">" + ks
                if m["etcd"][key] and not all(r["idle"] for r in res["etcd"][key]):
                    es = ">" + es
            ratio = f"{k / e:.2f}" if k is not None and e else "n/a"
            print(f"{label:46} {ks:>11} {es:>11} {ratio:>9}")

        for key, label, conns, spread in CASES:
            row(f"{label} (req/s)", "rps", key)
            row("  p50 latency (ms)", "p50_ms", key)
            row("  p99 latency (ms)" + (", worst member" if spread else ""), "p99_ms", key)
            row("  bytes written per entry, 3 members", "bytes", key)
            row("  server CPU per entry, 3 members (us)", "cpu_us", key)
            errs = [m[k][key]["errors"] for k in ("kcp", "etcd") if m[k][key]]
            if any(errs):
                row("  errors", "errors", key)
        fstype, dev = fs_of(ROOT)
        print(f"  kcp: HTTPS with client certificates, peers over mutual TLS on the API port;\n"
              f"  etcd: {'HTTPS with client certificates' if ETCD_TLS else 'plain HTTP'} through "
              f"its gateway, peers over plain HTTP. Closed loop, one request in flight per\n"
              f"  connection. 'over the 3 members': a third of the connections at each member,\n"
              f"  req/s summed, p50 the median member's, p99 the worst member's. Bytes: write_bytes\n"
              f"  of the 3 processes (/proc/PID/io) from the start of the run until they are idle\n"
              f"  again (at most {SETTLE} s; '>' marks servers still busy then), data on {fstype}\n"
              f"  ({dev}); kcp's history recorder counts in too, as in the single-server tables.")
        print(f"  ({time.time() - t0:.0f} s)")
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
        if keep_logs:
            print(f"server logs kept in {LOGS}")
        else:
            shutil.rmtree(LOGS, ignore_errors=True)


main()
