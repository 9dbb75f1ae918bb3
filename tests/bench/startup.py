#!/usr/bin/env python3
"""Start-up and idle-memory benchmark: kcp beside etcd 3.4, measured the same way in one run.
Prints a table of medians. Usage: startup.py KCP_BINARY [RUNS]"""
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

kcp = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ready_https(port, pki):
    try:
        # on a first start the files appear while the server runs: not there yet = not ready
        ctx = ssl.create_default_context(cafile=f"{pki}/ca.crt")
        ctx.load_cert_chain(f"{pki}/admin.crt", f"{pki}/admin.key")
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(4096).startswith(b"HTTP/1.1 200")
    except (OSError, ValueError):
        return False


def ready_http(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
            return s.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def timed_start(argv, is_ready, timeout=30):
    """Seconds from exec until is_ready() first holds; the process is returned running."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < timeout:
            if is_ready():
                return time.perf_counter() - t0, p
            time.sleep(0.001)
    except BaseException:
        stop(p)
        raise
    stop(p)
    raise RuntimeError(f"not ready in {timeout}s: {argv}")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def kcp_case(tmp, first):
    port = free_port()
    d = tempfile.mkdtemp(dir=tmp)
    if not first:  # create the cluster once, then measure the restart
        t, p = timed_start([kcp, "server", "--init", "--data-dir", d, "--listen", f"127.0.0.1:{port}"],
                           lambda: ready_https(port, f"{d}/pki"))
        stop(p)
    argv = [kcp, "server", "--init", "--data-dir", d, "--listen", f"127.0.0.1:{port}"]
    return timed_start(argv, lambda: ready_https(port, f"{d}/pki"))


def etcd_case(tmp, first):
    port, peer = free_port(), free_port()
    d = tempfile.mkdtemp(dir=tmp)
    argv = ["etcd", "--data-dir", d, "--listen-client-urls", f"http://127.0.0.1:{port}",
            "--advertise-client-urls", f"http://127.0.0.1:{port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer}"]
    if not first:
        t, p = timed_start(argv, lambda: ready_http(port, b"/health"))
        stop(p)
    return timed_start(argv, lambda: ready_http(port, b"/health"))


def measure(name, case, tmp):
    rows = {}
    for first in (True, False):
        times = []
        for _ in range(runs):
            t, p = case(tmp, first)
            times.append(t * 1000)
            stop(p)
        rows["first start (ms)" if first else "restart (ms)"] = statistics.median(times)
    t, p = case(tmp, False)
    time.sleep(10)
    rows["idle RSS after 10 s (MB)"] = rss_kb(p.pid) / 1024
    stop(p)
    return rows


def main():
    with tempfile.TemporaryDirectory() as tmp:
        k = measure("kcp", kcp_case, tmp)
        e = measure("etcd", etcd_case, tmp)
    size = os.path.getsize(kcp)
    stripped = kcp + ".stripped" if os.path.exists(kcp + ".stripped") else None
    print(f"{'metric (median of ' + str(runs) + ')':34} {'kcp':>10} {'etcd 3.4':>10} {'kcp/etcd':>9}")
    etcd_bin = subprocess.run(["sh", "-c", "command -v etcd"], capture_output=True, text=True).stdout.strip()
    esize = os.path.getsize(etcd_bin)
    ksize = os.path.getsize(stripped) if stripped else size
    print(f"{'binary size (MB, kcp stripped)':34} {ksize / 1e6:10.2f} {esize / 1e6:10.2f} {ksize / esize:9.2f}")
    for key in k:
        print(f"{key:34} {k[key]:10.1f} {e[key]:10.1f} {k[key] / e[key]:9.2f}")
    print("kcp's first start includes creating the CA and certificates; its readiness probe is an")
    print("HTTPS request with a client certificate, etcd's a plain HTTP GET /health.")


main()
