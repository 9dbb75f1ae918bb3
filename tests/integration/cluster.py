"""Helpers for the HA integration tests: real kcp servers on loopback, a fault-injecting TCP
proxy in front of each server's Raft address, an HTTP call that classifies failures, and the
ok/FAIL reporting that scripts/test.sh counts. Standard library only; the API client is
tests/e2e/kclient.py.

Environment: KCP (the binary; default build/kcp under the project root), INTEGRATION_KEEP=1
keeps the data directories and logs of a run (printed at the end), INTEGRATION_SERVER_ARGS adds
flags to every `kcp server` (e.g. "-v 3")."""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import kclient  # noqa: E402

KCP = os.environ.get("KCP") or os.path.join(ROOT, "build", "kcp")
NS = "default"


def now():
    return time.monotonic()


_handed_out = set()


def free_port():
    """A free port on loopback, never one this process handed out before (servers are given
    their ports before any of them binds)."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _handed_out:
            _handed_out.add(p)
            return p


# ---- reporting -----------------------------------------------------------------------------

class Report:
    """ok/FAIL lines and the closing "N passed, N failed" that scripts/test.sh counts."""

    def __init__(self, name):
        self.name = name
        self.passed = self.failed = 0
        self.t0 = now()

    def log(self, msg):
        print(f"   [{self.name} {now() - self.t0:6.1f}s] {msg}", flush=True)

    def check(self, desc, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {self.name}: {desc}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {self.name}: {desc}" + (f": {detail}" if detail else ""), flush=True)
        return bool(cond)

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed ({now() - self.t0:.0f} s)",
              flush=True)
        return 0 if self.failed == 0 else 1


# ---- one HTTP call -------------------------------------------------------------------------

class Result:
    """What became of a request. outcome: 'unsent' (no connection: it cannot have taken effect),
    'lost' (sent, no answer: it may or may not have taken effect), or 'answered' (status, body)."""

    def __init__(self, outcome, status=0, body=None, error=""):
        self.outcome, self.status, self.body, self.error = outcome, status, body, error

    def json(self):
        try:
            return json.loads(self.body)
        except (TypeError, ValueError):
            return None

    def __repr__(self):
        if self.outcome != "answered":
            return f"{self.outcome} ({self.error})"
        return f"HTTP {self.status} {(self.body or b'')[:200].decode('utf-8', 'replace')}"


def call(client, method, path, body=None, timeout=15.0):
    """One request on a fresh connection (kclient's TLS context, admin certificate)."""
    c = client.conn(timeout)
    try:
        try:
            c.connect()
        except (OSError, ssl.SSLError, http.client.HTTPException) as e:
            return Result("unsent", error=repr(e))
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            return Result("answered", r.status, r.read())
        except (OSError, ssl.SSLError, http.client.HTTPException) as e:
            return Result("lost", error=repr(e))
    finally:
        c.close()


class Session:
    """One client's kept-alive connections, one per server (as a real client keeps them: a TLS
    handshake per request would cost the servers more CPU than the requests do). A request that
    fails on a connection already open may have been sent: it counts as 'lost', never 'unsent'."""

    def __init__(self):
        self.conns = {}

    def call(self, node, method, path, body=None, timeout=15.0, ctype="application/json"):
        c = self.conns.pop(node.name, None)
        if c is None:
            c = node.client().conn(timeout)
            try:
                c.connect()
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                c.close()
                return Result("unsent", error=repr(e))
        else:
            c.sock.settimeout(timeout)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        try:
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            res = Result("answered", r.status, r.read())
            if not r.will_close:
                self.conns[node.name] = c
            else:
                c.close()
            return res
        except (OSError, ssl.SSLError, http.client.HTTPException) as e:
            c.close()
            return Result("lost", error=repr(e))

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}


def cm_path(name=None, ns=NS):
    base = f"/api/v1/namespaces/{ns}/configmaps"
    return base + "/" + name if name else base


def configmap(name, data, rv=None):
    meta = {"name": name}
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


# ---- the proxy -----------------------------------------------------------------------------

def _hexaddr(port):
    return "0100007F:%04X" % port


class _Conn:
    def __init__(self, src, a, b):
        self.src = src          # name of the dialling server, or None
        self.a, self.b = a, b   # accepted socket, upstream socket
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        self.lock = threading.Lock()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        self.flowing.set()
        for s in (self.a, self.b):
            if s is None:
                continue
            try:
                # RST rather than FIN: the peer learns at once, as it would of a reset.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


class Proxy:
    """A TCP proxy in front of one server's Raft address (its --advertise-address). Every byte
    between two servers in the direction 'X dials this server' crosses it. It knows which server
    dialled a connection (the dialling socket's owner, from /proc), so cut(srcs, mode) can
    partition this server from some servers only:
      drop   connections from srcs are reset, new ones reset at once
      pause  nothing is forwarded on them (the bytes wait in the kernel, as on a link that
             lost every packet until it healed, then retransmitted); new ones are held too
    heal() lets everything through again (paused connections resume where they stopped)."""

    def __init__(self, owner, whois):
        self.owner = owner          # the Node behind it
        self.whois = whois          # pid -> node name lookup
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.cut_from = set()
        self.mode = "drop"
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        self.unknown = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _source(self, peer_port):
        """Name of the server whose socket is 127.0.0.1:peer_port connected to us."""
        want_local, want_rem = _hexaddr(peer_port), _hexaddr(self.port)
        inode = None
        try:
            with open("/proc/net/tcp") as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[1] == want_local and p[2] == want_rem:
                        inode = p[9]
                        break
        except OSError:
            return None
        if inode is None or inode == "0":
            return None
        target = f"socket:[{inode}]"
        for name, pid in self.whois():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                            return name
                    except OSError:
                        pass
            except OSError:
                pass
        return None

    def _accept(self):
        while not self.stopped:
            try:
                a, addr = self.lsock.accept()
            except OSError:
                return
            src = None
            for _ in range(5):
                src = self._source(addr[1])
                if src:
                    break
                time.sleep(0.01)
            with self.lock:
                blocked = (src in self.cut_from) or (src is None and self.cut_from)
                if src is None:
                    self.unknown += 1
                if blocked and self.mode == "drop":
                    _Conn(src, a, None).close()
                    continue
                try:
                    b = socket.create_connection(("127.0.0.1", self.owner.port), timeout=5)
                    b.settimeout(None)
                except OSError:
                    _Conn(src, a, None).close()
                    continue
                conn = _Conn(src, a, b)
                if blocked:
                    conn.flowing.clear()
                self.conns.append(conn)
            for s, d in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(conn, s, d), daemon=True).start()

    def _pump(self, conn, src, dst):
        try:
            while not conn.closed:
                data = src.recv(65536)
                if not data:
                    break
                while not conn.flowing.wait(0.2):
                    pass
                if conn.closed:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                if conn in self.conns:
                    self.conns.remove(conn)

    def cut(self, srcs, mode):
        with self.lock:
            self.cut_from = set(srcs)
            self.mode = mode
            victims = [c for c in self.conns if c.src in self.cut_from or c.src is None]
        for c in victims:
            if mode == "drop":
                c.close()
            else:
                c.flowing.clear()

    def heal(self):
        with self.lock:
            self.cut_from = set()
            conns = list(self.conns)
        for c in conns:
            c.flowing.set()

    def stop(self):
        self.stopped = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            c.close()


# ---- servers -------------------------------------------------------------------------------

class Node:
    def __init__(self, cluster, name, proxied):
        self.cluster = cluster
        self.name = name
        self.dir = os.path.join(cluster.root, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.logpath = os.path.join(cluster.log_dir, os.path.basename(cluster.root) + "-" + name
                                    + ".log")
        self.proc = None
        self.proxy = Proxy(self, cluster.pids) if proxied else None
        self.adv = f"127.0.0.1:{self.proxy.port}" if proxied else None
        self._client = None
        self._mconn = None
        self._mlock = threading.Lock()

    def argv(self, init=False, join=None):
        a = [KCP, "server", "--data-dir", self.dir, "--listen", f"127.0.0.1:{self.port}",
             "--node-name", self.name]
        if self.adv:
            a += ["--advertise-address", self.adv]
        if init:
            a.append("--init")
        if join:
            url, token = join
            a += ["--join", url, "--token", token]
        return a + os.environ.get("INTEGRATION_SERVER_ARGS", "").split()

    def start(self, init=False, join=None):
        log = open(self.logpath, "ab")
        log.write(f"==== {time.strftime('%H:%M:%S')} start {'init' if init else 'join' if join else 'restart'}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv(init, join), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9, and reap it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self):
        if self._client is None:
            self._client = kclient.Client("127.0.0.1", self.port, os.path.join(self.dir, "pki"))
        return self._client

    def ready(self):
        try:
            client = self.client()
        except (OSError, ssl.SSLError):  # certificates not written yet
            return False
        r = call(client, "GET", "/readyz", timeout=3)
        return r.outcome == "answered" and r.status == 200

    def wait_ready(self, limit=30):
        t0 = now()
        while now() - t0 < limit:
            if self.proc and self.proc.poll() is not None:
                return False
            if self.ready():
                return True
            time.sleep(0.1)
        return False

    def members(self, timeout=3):
        """[(name, address, role)] as this server sees them (what `kcp members` prints), or None.
        Over one kept-alive connection: polling must not load the server with TLS handshakes
        (each costs it milliseconds of CPU) while it is electing a leader."""
        with self._mlock:
            for attempt in (0, 1):
                try:
                    if self._mconn is None:
                        self._mconn = self.client().conn(timeout)
                    self._mconn.sock and self._mconn.sock.settimeout(timeout)
                    self._mconn.request("GET", "/raft/v1/members")
                    r = self._mconn.getresponse()
                    body = r.read()
                    if r.status != 200:
                        return None
                    return [tuple(line.split()) for line in body.decode().splitlines()
                            if line.strip()]
                except (OSError, ssl.SSLError, http.client.HTTPException):
                    try:
                        self._mconn.close()
                    except Exception:
                        pass
                    self._mconn = None
                    if attempt or not self.alive():
                        return None
            return None

    def leader(self, timeout=3):
        m = self.members(timeout)
        if not m:
            return None
        for name, _, role in m:
            if role == "leader":
                return name
        return None

    def list_cms(self, timeout=15):
        """{name: resourceVersion} of the namespace's ConfigMaps (a consistent read), or None."""
        r = call(self.client(), "GET", cm_path(), timeout=timeout)
        if r.outcome != "answered" or r.status != 200:
            return None
        return {i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                for i in r.json()["items"]}

    def log_tail(self, n=15):
        try:
            with open(self.logpath, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(f"      {self.name}| {line}" for line in lines[-n:])
        except OSError:
            return ""


class Cluster:
    """n servers: n1 founds the cluster (--init), the others join it."""

    def __init__(self, n=3, proxies=False, prefix="kcp-int-", root_dir=None, log_dir=None):
        self.root = tempfile.mkdtemp(prefix=prefix, dir=root_dir)
        self.log_dir = log_dir or self.root
        self.nodes = []
        self.nodes = [Node(self, f"n{i + 1}", proxies) for i in range(n)]
        self.by_name = {nd.name: nd for nd in self.nodes}

    def pids(self):
        return [(nd.name, nd.proc.pid) for nd in self.nodes if nd.alive()]

    def start(self, report):
        first = self.nodes[0]
        first.start(init=True)
        if not first.wait_ready(30):
            report.check(f"{first.name} starts (--init)", False, "\n" + first.log_tail())
            return False
        token = subprocess.run([KCP, "token", "--data-dir", first.dir], capture_output=True,
                               text=True, timeout=30).stdout.strip()
        for nd in self.nodes[1:]:
            nd.start(join=(f"https://127.0.0.1:{first.port}", token))
            if not nd.wait_ready(60):
                report.check(f"{nd.name} joins", False, "\n" + nd.log_tail())
                return False
        # Joined servers start as learners and are promoted once caught up.
        t0 = now()
        while now() - t0 < 30:
            m = first.members()
            if m and len(m) == len(self.nodes) and all(r in ("leader", "follower") for _, _, r in m):
                return True
            time.sleep(0.1)
        report.check("every server becomes a voter", False, f"members: {first.members()}")
        return False

    def alive(self):
        return [nd for nd in self.nodes if nd.alive()]

    def leader(self, among=None, timeout=2):
        """The leader that the given servers (default: all alive) agree on, or None."""
        seen = set()
        for nd in among or self.alive():
            seen.add(nd.leader(timeout))
        return self.by_name.get(seen.pop()) if len(seen) == 1 and None not in seen else None

    def wait_leader(self, among=None, limit=20, exclude=()):
        t0 = now()
        while now() - t0 < limit:
            ld = self.leader(among)
            if ld and ld.name not in exclude:
                return ld
            time.sleep(0.05)
        return None

    # Partitions: `groups` is a list of sets of names; servers in different groups cannot reach
    # each other (both directions). Servers not named are in a group of their own.
    def partition(self, groups, mode="drop"):
        side = {}
        for i, g in enumerate(groups):
            for name in g:
                side[name] = i
        for nd in self.nodes:
            others = {o.name for o in self.nodes if o is not nd and
                      side.get(o.name, "x" + o.name) != side.get(nd.name, "x" + nd.name)}
            nd.proxy.cut(others, mode)

    def isolate(self, node, mode="drop"):
        self.partition([{node.name}, {o.name for o in self.nodes if o is not node}], mode)

    def heal(self):
        for nd in self.nodes:
            nd.proxy.heal()

    def converged(self, limit=30):
        """Waits until every server lists the same {name: resourceVersion}; returns
        (ok, [lists])."""
        t0 = now()
        lists = []
        while now() - t0 < limit:
            lists = [nd.list_cms() for nd in self.nodes]
            if all(x is not None for x in lists) and all(x == lists[0] for x in lists):
                return True, lists
            time.sleep(0.3)
        return False, lists

    def shutdown(self, report):
        for nd in self.nodes:
            if nd.proxy:
                nd.proxy.stop()
        for nd in self.nodes:
            nd.stop()
        keep = os.environ.get("INTEGRATION_KEEP", "") not in ("", "0")
        if report.failed:
            for nd in self.nodes:
                print(f"   --- log tail of {nd.name}:\n{nd.log_tail(25)}")
        if keep:
            print(f"   data directories and logs kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def diff_lists(lists, names):
    """A short description of how the {name: rv} maps differ."""
    out = []
    base = lists[0] or {}
    for nm, lst in zip(names[1:], lists[1:]):
        lst = lst or {}
        only_a = sorted(set(base) - set(lst))[:5]
        only_b = sorted(set(lst) - set(base))[:5]
        rv = sorted(k for k in set(base) & set(lst) if base[k] != lst[k])[:5]
        out.append(f"{names[0]} vs {nm}: only in {names[0]} {only_a}, only in {nm} {only_b}, "
                   f"different resourceVersion {[(k, base[k], lst[k]) for k in rv]}")
    return "; ".join(out)
