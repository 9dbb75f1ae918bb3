"""A small Kubernetes API client for kcp's end-to-end tests, standard library only.

TLS with the cluster CA and (unless anonymous) the admin client certificate from DIR/pki;
plain requests, JSON and protobuf watch streams, and a hand-written encoder/decoder for the
few protobuf messages the tests need (runtime.Unknown envelope, ObjectMeta, ConfigMap, ListMeta,
WatchEvent, Status)."""
import http.client
import json
import socket
import ssl
import struct
import sys
import time
import urllib.parse

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


class Checks:
    """The e2e scripts' tally: `check` prints one ok/FAIL line, `finish` the
    "N passed, N failed" summary (the line scripts/test.sh reads) and exits 1 on a failure."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, desc, cond, r=None, detail=""):
        if cond:
            self.passed += 1
            print("ok  ", desc)
        else:
            self.failed += 1
            extra = (r.describe() if r is not None else "")
            print("FAIL", desc + (": " + detail if detail else "") + (" | " + extra if extra else ""))
        return bool(cond)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class Response:
    def __init__(self, status, headers, body, req=""):
        self.req = req                  # "METHOD path [content-type] body..." for failure reports
        self.status = status
        self.headers = headers          # list of (name, value), names as sent
        self.body = body                # bytes

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.body[:400].decode("utf-8", "replace"))

    def describe(self):
        """The request and its response, for a FAIL line."""
        ct = self.header("Content-Type") or ""
        return "%s -> %d (%s) %s" % (self.req, self.status, ct,
                                     self.body[:400].decode("utf-8", "replace"))


class Client:
    def __init__(self, host, port, pki, anonymous=False):
        self.host, self.port = host, int(port)
        self.ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
        if not anonymous:
            self.ctx.load_cert_chain(pki + "/admin.crt", pki + "/admin.key")

    def conn(self, timeout=10.0):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """One request on a fresh connection; body may be bytes, str or a JSON-able object."""
        h = {"Accept": "application/json"}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        if headers:
            h.update(headers)
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            shown = ""
            if body:
                shown = body[:200].decode("utf-8", "replace") if not body.startswith(MAGIC) \
                    else "<protobuf %d bytes>" % len(body)
            hdr = " ".join("%s: %s" % (k, v) for k, v in h.items())
            return Response(r.status, r.getheaders(), data, "%s %s [%s] %s" % (method, path, hdr, shown))
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body=body, **kw)

    def patch(self, path, body, ctype="application/merge-patch+json", **kw):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        hdr = {"Content-Type": ctype}
        hdr.update(kw.pop("headers", {}) or {})
        return self.request("PATCH", path, body=body, headers=hdr, **kw)

    def watch(self, path, accept="application/json", timeout=10.0):
        return Watch(self, path, accept, timeout)


class Watch:
    """An open watch stream. events() yields (type, object) for JSON streams; frames() yields
    decoded protobuf WatchEvents. Reading stops at the end of the stream or at `deadline`."""

    def __init__(self, client, path, accept, timeout):
        self.c = client.conn(timeout)
        self.t0 = time.monotonic()
        self.c.request("GET", path, headers={"Accept": accept})
        self.r = self.c.getresponse()
        self.status = self.r.status
        self.headers = self.r.getheaders()
        self.clean_end = None           # True when the chunked stream ended with its last chunk
        self.error = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_deadline(self, seconds):
        self.c.sock.settimeout(seconds)

    def lines(self):
        try:
            while True:
                line = self.r.readline()
                if not line:
                    self.clean_end = True
                    return
                if line.strip():
                    yield line
        except (socket.timeout, TimeoutError):
            self.error = "timeout"
        except (http.client.IncompleteRead, ConnectionError, ssl.SSLError) as e:
            self.clean_end = False
            self.error = repr(e)

    def events(self, until=None, max_events=None):
        """JSON events as (type, object). Stops after max_events or when until(type, obj)."""
        out = []
        for line in self.lines():
            ev = json.loads(line)
            out.append((ev.get("type"), ev.get("object")))
            if (max_events and len(out) >= max_events) or (until and until(*out[-1])):
                break
        return out

    def frames(self, max_frames=None):
        """Protobuf WatchEvents: [(type, raw object bytes)]."""
        out = []
        try:
            while True:
                head = self.r.read(4)
                if len(head) == 0:
                    self.clean_end = True
                    break
                if len(head) < 4:
                    self.clean_end = False
                    break
                n = struct.unpack(">I", head)[0]
                msg = self.r.read(n)
                f = pb_decode(msg)
                etype = pb_str(f, 1)
                raw = pb_first(pb_decode(pb_first(f, 2, b"")), 1, b"")
                out.append((etype, raw))
                if max_frames and len(out) >= max_frames:
                    break
        except (socket.timeout, TimeoutError):
            self.error = "timeout"
        except (http.client.IncompleteRead, ConnectionError, ssl.SSLError, ValueError) as e:
            self.clean_end = False
            self.error = repr(e)
        return out

    def elapsed(self):
        return time.monotonic() - self.t0

    def close(self):
        try:
            self.c.close()
        except Exception:
            pass


def q(**params):
    """Query string from keyword arguments (None values dropped)."""
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


# ---- protobuf, by hand -----------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, value):
    """A length-delimited field (strings, bytes, embedded messages) or a varint (ints)."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def pb_map(num, d):
    return b"".join(pb_field(num, pb_field(1, k) + pb_field(2, v)) for k, v in d.items())


def read_varint(buf, i):
    n = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def pb_decode(buf):
    """{field number: [values]} with bytes for length-delimited fields and ints for varints."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field %d" % num)
            v = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def pb_first(f, num, default=None):
    return f.get(num, [default])[0]


def pb_str(f, num):
    v = pb_first(f, num, b"")
    return v.decode() if isinstance(v, bytes) else v


def pb_mapdecode(f, num):
    d = {}
    for entry in f.get(num, []):
        e = pb_decode(entry)
        d[pb_str(e, 1)] = pb_str(e, 2)
    return d


def envelope(api_version, kind, raw):
    """magic + runtime.Unknown{typeMeta, raw, contentEncoding "", contentType ""} (as Go writes it)."""
    tm = pb_field(1, api_version) + pb_field(2, kind)
    return MAGIC + pb_field(1, tm) + pb_field(2, raw) + pb_field(3, "") + pb_field(4, "")


def unenvelope(body):
    """(apiVersion, kind, raw) of an enveloped body; raises ValueError without the magic."""
    if body[:4] != MAGIC:
        raise ValueError("no k8s protobuf magic: %r" % body[:8])
    u = pb_decode(body[4:])
    tm = pb_decode(pb_first(u, 1, b""))
    return pb_str(tm, 1), pb_str(tm, 2), pb_first(u, 2, b"")


def object_meta(name="", namespace="", labels=None, generate_name=""):
    return (pb_field(1, name) + pb_field(2, generate_name) + pb_field(3, namespace) +
            (pb_map(11, labels) if labels else b""))


def configmap_pb(name, namespace, data, labels=None):
    return envelope("v1", "ConfigMap",
                    pb_field(1, object_meta(name, namespace, labels)) + pb_map(2, data))


def decode_meta(raw):
    m = pb_decode(raw)
    return {"name": pb_str(m, 1), "namespace": pb_str(m, 3), "uid": pb_str(m, 5),
            "resourceVersion": pb_str(m, 6), "labels": pb_mapdecode(m, 11)}


def decode_configmap(raw):
    f = pb_decode(raw)
    return {"metadata": decode_meta(pb_first(f, 1, b"")), "data": pb_mapdecode(f, 2)}


def decode_list(raw):
    """(ListMeta dict, [item raw bytes]) of any XxxList message."""
    f = pb_decode(raw)
    lm = pb_decode(pb_first(f, 1, b""))
    return ({"resourceVersion": pb_str(lm, 2), "continue": pb_str(lm, 3)}, f.get(2, []))


def decode_status(raw):
    f = pb_decode(raw)
    return {"status": pb_str(f, 2), "message": pb_str(f, 3), "reason": pb_str(f, 4),
            "code": pb_first(f, 6, 0)}
