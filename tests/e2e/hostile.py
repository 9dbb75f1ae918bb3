#!/usr/bin/env python3
"""Sends hostile traffic to a kcp server: random and malformed requests, oversized headers and
bodies, slow-loris connections. Prints one line per check and ends with "N passed, N failed".
Usage: hostile.py HOST PORT PKI_DIR [COUNT]"""
import random
import socket
import ssl
import sys
import time

host, port, pki = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
rng = random.Random(int(time.time()) if "KCP_SEED" not in __import__("os").environ
                    else int(__import__("os").environ["KCP_SEED"]))
passed = failed = 0


def check(desc, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok  ", desc)
    else:
        failed += 1
        print("FAIL", desc, detail)


ctx = ssl.create_default_context(cafile=f"{pki}/ca.crt")
ctx.load_cert_chain(f"{pki}/admin.crt", f"{pki}/admin.key")


def connect(timeout=5.0):
    raw = socket.create_connection((host, port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=host)


def read_response(s, limit=1 << 20):
    """Reads until the peer closes or the timeout: returns the bytes received."""
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]):
                    break
    except (socket.timeout, ssl.SSLError, ConnectionError):
        pass
    return data


def request(raw, timeout=5.0):
    s = connect(timeout)
    try:
        s.sendall(raw)
        return read_response(s)
    except (ssl.SSLError, ConnectionError, socket.timeout):
        return b""
    finally:
        s.close()


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def healthy():
    return status_of(request(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200


VALID = [b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
         b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
         b"GET /version?x=%zz&&=&a HTTP/1.1\r\nHost: x\r\n\r\n",
         b"PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"]


def mutate(b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 8)):
        op = rng.randint(0, 3)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] = rng.randrange(256)
        elif op == 1:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2 and b:
            del b[i:i + rng.randint(1, 8)]
        else:
            b[i:i] = rng.choice([b"\r\n", b"\n", b":", b" ", b"\x00", b"%", b"Content-Length: 99999999999\r\n",
                                 b"Transfer-Encoding: chunked\r\n", b"\r\n\r\n"])
    return bytes(b)


# 1. Many random and malformed requests, pipelined on a few connections each.
sent = 0
answered_badly = 0
t0 = time.time()
while sent < count:
    batch = []
    for _ in range(rng.randint(1, 50)):
        kind = rng.random()
        if kind < 0.15:
            batch.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))))
        elif kind < 0.85:
            batch.append(mutate(rng.choice(VALID)))
        else:
            batch.append(rng.choice(VALID))
    sent += len(batch)
    resp = request(b"".join(batch), timeout=3.0)
    # Every answer must be well-formed HTTP or nothing (the connection closed).
    if resp and not resp.startswith(b"HTTP/1.1 "):
        answered_badly += 1
check(f"{sent} random/malformed requests sent in {time.time() - t0:.1f}s", True)
check("every answer to garbage was HTTP or a close", answered_badly == 0, f"{answered_badly} bad")
check("server healthy after garbage", healthy())

# 2. Oversized bodies: declared and chunked.
big = 4 * 1024 * 1024
resp = request(b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % big + b"x" * 65536)
check("declared 4 MiB body gets 413", status_of(resp) == 413, resp[:200])
check("413 is a Status RequestEntityTooLarge", b'"reason":"RequestEntityTooLarge"' in resp, resp[:400])
chunk = b"%x\r\n" % 65536 + b"y" * 65536 + b"\r\n"
s = connect()
try:
    s.sendall(b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(64):
        s.sendall(chunk)
    resp = read_response(s)
except (ssl.SSLError, ConnectionError, socket.timeout):
    resp = read_response(s)
s.close()
check("chunked body over 3 MiB gets 413", status_of(resp) == 413, resp[:200])

# 3. Oversized headers.
resp = request(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n")
check("2 MiB of headers is refused (400/431)", status_of(resp) in (400, 431), resp[:200])
check("server healthy after oversized input", healthy())

# 4. Slow loris: connections that never finish their headers must not starve others.
loris = []
for _ in range(50):
    try:
        c = connect()
        c.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        loris.append(c)
    except OSError:
        pass
check(f"{len(loris)} slow-loris connections opened", len(loris) > 0)
t0 = time.time()
check("server serves others while slow-loris connections hang", healthy())
check("health answer under slow loris took < 1 s", time.time() - t0 < 1.0)
for c in loris:
    try:
        c.sendall(b"X-a: b\r\n")
    except OSError:
        pass
time.sleep(11)  # the header timeout is 10 s
closed = 0
for c in loris:
    c.settimeout(2)
    try:
        data = c.recv(4096)
        if not data or data.startswith(b"HTTP/1.1 4"):
            closed += 1
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
        closed += 1 if not isinstance(sys.exc_info()[1], socket.timeout) else 0
    c.close()
check("slow-loris connections closed after the header timeout", closed == len(loris), f"{closed}/{len(loris)}")
check("server healthy at the end", healthy())

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
