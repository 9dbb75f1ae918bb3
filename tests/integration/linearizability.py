#!/usr/bin/env python3
"""Linearizability of one ConfigMap under crashes and partitions, and the checker that decides it.

The register is the value data.v of one ConfigMap. Clients, each against a random server per
operation, do:
  read    GET without resourceVersion                        -> the value
  write   PUT without resourceVersion (unconditional update)  sets a fresh unique value
  cas     PUT with the resourceVersion last seen by the client: compare-and-swap; 409 = failed
Every written value is unique, so "the object still has resourceVersion R" is the same as "the
register still holds the value that went with R": a cas is cas(expected value, new value).
Meanwhile a nemesis kills servers with SIGKILL and restarts them, and partitions one server
(sometimes the leader) from the others through the TCP proxies in front of their Raft addresses
(cluster.py), resetting connections or holding them silent.

The history records per operation its invocation and return times (one monotonic clock), kind,
arguments and outcome. An operation whose outcome is unknown (timeout, reset, 5xx) never returns:
its return time is infinite and it may or may not have taken effect. A read with no answer and a
write that never reached a server (connection refused) cannot have had an effect and are left
out; an unconditional write answered 409 was not applied either.

The checker is the Wing & Gong search with Lowe's memoisation, as in Porcupine: walk the events
in time order, try to linearise each pending call whose model step is valid, memoise
(set of linearised operations, register value), backtrack at the first return whose operation is
not yet linearised. Unknown operations may be linearised anywhere after their invocation, or not
at all (an unknown cas that would fail is the same as one that never happened). Two reductions
keep the search small, both safe: an unknown operation whose value nobody ever observed is left
out first (it can always go last), and is only put back, in a second bounded search, when the
first fails (a failed cas may need it to explain the 409); an unknown write whose value a read
observed must take effect before that read returns, which bounds it.

Usage:
  linearizability.py --self-test              the checker against known histories (seconds)
  linearizability.py [--seconds S] [--clients N] [--seed N] [--history FILE]
                                              3 servers, workload and nemesis, then the check
  linearizability.py --check FILE             check a history saved with --history
KCP= the binary (default build/kcp). Prints ok/FAIL lines and "N passed, N failed"."""
import argparse
import json
import os
import random
import sys
import threading
import time

INF = float("inf")


# ---- the checker ---------------------------------------------------------------------------

class Op:
    """kind: 'r' (out = value read), 'w' (arg = value), 'cas' (arg = (expected, new); out = True
    for success, False for a 409). known = False: outcome unknown, ret = INF."""
    __slots__ = ("id", "client", "kind", "arg", "out", "inv", "ret", "known", "node", "note")

    def __init__(self, client, kind, arg, out, inv, ret, known=True, node="", note=""):
        self.id = -1
        self.client, self.kind, self.arg, self.out = client, kind, arg, out
        self.inv, self.ret, self.known = inv, (ret if known else INF), known
        self.node, self.note = node, note

    def to_json(self):
        return {"client": self.client, "kind": self.kind, "arg": self.arg, "out": self.out,
                "inv": self.inv, "ret": None if self.ret == INF else self.ret,
                "known": self.known, "node": self.node, "note": self.note}

    @staticmethod
    def from_json(d):
        arg = tuple(d["arg"]) if d["kind"] == "cas" else d["arg"]
        return Op(d["client"], d["kind"], arg, d["out"], d["inv"],
                  INF if d["ret"] is None else d["ret"], d["known"], d.get("node", ""),
                  d.get("note", ""))

    def __repr__(self):
        what = {"r": lambda: f"read -> {self.out!r}",
                "w": lambda: f"write {self.arg!r}",
                "cas": lambda: f"cas {self.arg[0]!r} -> {self.arg[1]!r}" +
                ("" if not self.known else " ok" if self.out else " failed (409)")}[self.kind]()
        end = "?" if self.ret == INF else f"{self.ret:.3f}"
        return (f"[{self.inv:.3f}, {end}] client {self.client}{' @' + self.node if self.node else ''}"
                f": {what}{'' if self.known else ' (outcome unknown)'}")


def step(state, op):
    """The register's next value after op at this point, or None when op cannot happen here."""
    if op.kind == "r":
        return state if state == op.out else None
    if op.kind == "w":
        return op.arg
    expected, new = op.arg
    if not op.known or op.out:
        return new if state == expected else None
    return state if state != expected else None      # a failed cas saw another value


class _Entry:
    __slots__ = ("op", "call", "match", "prev", "next")

    def __init__(self, op, call):
        self.op, self.call = op, call
        self.match = self.prev = self.next = None


def _search(ops, init, budget):
    """True / False, or None when the budget (steps) ran out; plus a description of the deepest
    point reached when False."""
    events = []
    for op in ops:
        c, r = _Entry(op, True), _Entry(op, False)
        c.match, r.match = r, c
        events.append((op.inv, 0, op.id, c))
        events.append((op.ret, 1, op.id, r))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, False)
    prev = head
    for e in events:
        prev.next = e[3]
        e[3].prev = prev
        prev = e[3]

    def lift(entry):
        entry.prev.next = entry.next
        if entry.next:
            entry.next.prev = entry.prev
        m = entry.match
        m.prev.next = m.next
        if m.next:
            m.next.prev = m.prev

    def unlift(entry):
        m = entry.match
        m.prev.next = m
        if m.next:
            m.next.prev = m
        entry.prev.next = entry
        if entry.next:
            entry.next.prev = entry

    cache = set()
    stack = []
    state, linearized = init, 0
    entry = head.next
    steps = 0
    deepest = (-1, None)
    while head.next is not None:
        steps += 1
        if budget and steps > budget:
            return None, f"search budget of {budget} steps exhausted"
        if entry.call:
            op = entry.op
            new = step(state, op)
            if new is not None:
                lin = linearized | (1 << op.id)
                key = (lin, new)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new, lin
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not entry.op.known:
                return True, ""      # every operation with a known outcome is linearised
            if len(stack) > deepest[0]:
                window, e = [], head.next
                while e is not None and e.call:
                    window.append(e.op)
                    e = e.next
                deepest = (len(stack), (state, entry.op, window))
            if not stack:
                break
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op.id)
            unlift(entry)
            entry = entry.next
    else:
        return True, ""
    n, (st, blocker, window) = deepest
    lines = [f"no linearization: after {n} operations the register holds {st!r}, and this "
             f"operation cannot be placed before it returns:", f"    {blocker!r}",
             "  operations pending then:"]
    lines += [f"    {o!r}" for o in sorted(window, key=lambda o: o.inv)[:12]]
    return False, "\n".join(lines)


def check(history, init, budget=3_000_000):
    """(True | False | None (undecided within the budget), message)."""
    ops = [o for o in history if not (o.kind == "r" and not o.known)]
    # What each value's readers tell: who observed it, and by when.
    seen_by = {}
    for o in ops:
        if not o.known:
            continue
        v = o.out if o.kind == "r" else o.arg[0] if o.kind == "cas" and o.out else None
        if v is not None or o.kind == "r":
            seen_by[v] = min(seen_by.get(v, INF), o.ret)

    def written(o):
        return o.arg if o.kind == "w" else o.arg[1]

    full = []
    for o in ops:
        if not o.known and o.kind in ("w", "cas"):
            t = seen_by.get(written(o), INF)
            if t != INF:
                # It must take effect before its first observer returns.
                o = Op(o.client, o.kind, o.arg, o.out, o.inv, max(t, o.inv), True, o.node,
                       o.note + " (unknown; observed)")
                if o.kind == "cas":
                    o.out = True
        full.append(o)
    reduced = [o for o in full if o.known]
    for i, o in enumerate(reduced):
        o.id = i
    ok, msg = _search(reduced, init, budget)
    if ok or len(reduced) == len(full):
        return ok, msg
    for i, o in enumerate(full):
        o.id = i
    ok2, msg2 = _search(full, init, budget)
    return ok2, msg if ok2 is False else msg2


# ---- self-test -----------------------------------------------------------------------------

def _h(*specs):
    """Ops from (client, kind, arg, out, inv, ret) tuples; ret None = unknown outcome."""
    return [Op(c, k, a, o, i, INF if r is None else r, r is not None) for c, k, a, o, i, r in specs]


def random_history(rng, n_clients, n_ops, p_unknown=0.02, values_read_back=True):
    """A linearizable history by construction: each op takes effect at a random instant within
    its interval, on a sequential register."""
    t = [0.0] * n_clients
    pending = []
    seq = 0
    for _ in range(n_ops):
        c = rng.randrange(n_clients)
        inv = t[c] + rng.random() * 0.5
        dur = rng.random() * 2
        seq += 1
        kind = rng.choice(("r", "r", "w", "cas"))
        unknown = kind != "r" and rng.random() < p_unknown
        point = inv + rng.random() * dur
        takes_effect = not unknown or rng.random() < 0.5
        pending.append([point, c, kind, f"v{seq}", inv, inv + dur, unknown, takes_effect])
        t[c] = inv + dur + (1000 if unknown else 0)    # a client with a lost op stops
        if all(x > 999 for x in t):
            break
    pending.sort()
    state = "init"
    last_seen = {}
    ops = []
    for point, c, kind, val, inv, ret, unknown, effect in pending:
        if kind == "r":
            ops.append(Op(c, "r", None, state, inv, ret))
            last_seen[c] = state
        elif kind == "w":
            if effect:
                state = val
            ops.append(Op(c, "w", val, None, inv, ret, not unknown))
        else:
            exp = last_seen.get(c, state if rng.random() < 0.5 else "init")
            okc = state == exp
            if effect and okc:
                state = val
            ops.append(Op(c, "cas", (exp, val), okc, inv, ret, not unknown))
    return ops


def self_test():
    passed = failed = 0

    def expect(desc, history, want, init="init"):
        nonlocal passed, failed
        t = time.monotonic()
        got, msg = check(history, init)
        took = time.monotonic() - t
        if got is want:
            passed += 1
            print(f"ok   checker: {desc} ({took * 1000:.0f} ms)")
        else:
            failed += 1
            print(f"FAIL checker: {desc}: expected {want}, got {got}\n{msg}")

    expect("sequential write then read", _h((1, "w", "a", None, 0, 1), (2, "r", None, "a", 2, 3)),
           True)
    expect("stale read after a completed write is rejected",
           _h((1, "w", "a", None, 0, 1), (2, "r", None, "init", 2, 3)), False)
    expect("read of a value never written is rejected", _h((1, "r", None, "zzz", 0, 1)), False)
    expect("a read concurrent with a write may see either value",
           _h((1, "w", "a", None, 0, 10), (2, "r", None, "init", 1, 2),
              (3, "r", None, "a", 3, 4)), True)
    expect("once a read saw the new value, a later read cannot see the old one",
           _h((1, "w", "a", None, 0, 10), (2, "r", None, "a", 1, 2),
              (3, "r", None, "init", 3, 4)), False)
    expect("two concurrent writes, reads agree on one order",
           _h((1, "w", "a", None, 0, 5), (2, "w", "b", None, 0, 5),
              (3, "r", None, "a", 6, 7), (3, "r", None, "a", 8, 9)), True)
    expect("two reads after two writes disagree",
           _h((1, "w", "a", None, 0, 5), (2, "w", "b", None, 0, 5),
              (3, "r", None, "a", 6, 7), (3, "r", None, "b", 8, 9)), False)
    expect("two successful cas from the same value are rejected",
           _h((1, "cas", ("init", "a"), True, 0, 1), (2, "cas", ("init", "b"), True, 2, 3)),
           False)
    expect("cas chain", _h((1, "cas", ("init", "a"), True, 0, 1),
                           (2, "cas", ("a", "b"), True, 2, 3), (1, "r", None, "b", 4, 5)), True)
    expect("a failed cas while its value was certainly there is rejected",
           _h((1, "w", "a", None, 0, 1), (2, "cas", ("a", "b"), False, 2, 3)), False)
    expect("a failed cas justified by a concurrent write",
           _h((1, "w", "a", None, 0, 1), (2, "cas", ("a", "b"), False, 2, 5),
              (3, "w", "c", None, 3, 4)), True)
    expect("an unknown write may have taken effect (read later)",
           _h((1, "w", "a", None, 0, None), (2, "r", None, "a", 10, 11)), True)
    expect("an unknown write may not have taken effect",
           _h((1, "w", "a", None, 0, None), (2, "r", None, "init", 10, 11)), True)
    expect("an unknown write cannot take effect twice",
           _h((1, "w", "a", None, 0, None), (2, "r", None, "a", 10, 11),
              (3, "w", "b", None, 12, 13), (2, "r", None, "a", 14, 15)), False)
    expect("an unknown write cannot take effect before it was sent",
           _h((2, "r", None, "a", 0, 1), (1, "w", "a", None, 2, None)), False)
    expect("an unknown cas took effect (its value was read)",
           _h((1, "cas", ("init", "a"), None, 0, None), (2, "r", None, "a", 5, 6)), True)
    expect("an unknown cas cannot take effect from the wrong value",
           _h((1, "w", "x", None, 0, 1), (1, "cas", ("init", "a"), None, 2, None),
              (2, "r", None, "a", 5, 6)), False)
    expect("a failed cas explained only by an unobserved unknown write (second search)",
           _h((1, "w", "q", None, 0, None), (2, "cas", ("init", "b"), False, 5, 6)), True)
    expect("a failed cas that nothing explains",
           _h((2, "cas", ("init", "b"), False, 5, 6)), False)

    rng = random.Random(7)
    for i in range(40):
        h = random_history(rng, rng.randrange(2, 6), rng.randrange(5, 60), p_unknown=0.1)
        got, msg = check(h, "init")
        if got is not True:
            failed += 1
            print(f"FAIL checker: random linearizable history {i} rejected: {got}\n{msg}")
            break
    else:
        passed += 1
        print("ok   checker: 40 random linearizable histories (2-5 clients, unknown outcomes)")
    # A history of realistic size, then the same with one read made stale.
    h = random_history(random.Random(11), 6, 6000, p_unknown=0.005)
    expect(f"a linearizable history of {len(h)} operations", h, True)
    h = random_history(random.Random(11), 6, 6000, p_unknown=0.005)
    reads = [o for o in h if o.kind == "r" and o.known]
    target = reads[len(reads) // 2]
    earlier = [o for o in h if o.kind == "w" and o.known and o.ret < target.inv - 3
               and o.arg != target.out]
    stale = earlier[-5]        # a value overwritten well before this read began
    target.out = stale.arg
    expect(f"the same history with one read made stale", h, False)
    print(f"checker self-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


# ---- the workload --------------------------------------------------------------------------

def run_workload(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cluster import Cluster, Report, Session, cm_path, configmap, now

    rep = Report("linearizability")
    rng = random.Random(args.seed)
    rep.log(f"seed {args.seed}")
    cl = Cluster(3, proxies=True, prefix="kcp-int-lin-")
    history = []
    hlock = threading.Lock()
    stats = {}
    name = "lin-reg"
    stop = threading.Event()
    t_base = [0.0]

    def count(k):
        with hlock:
            stats[k] = stats.get(k, 0) + 1

    def record(op):
        op.inv -= t_base[0]
        if op.ret != INF:
            op.ret -= t_base[0]
        with hlock:
            history.append(op)

    def client(cid):
        crng = random.Random(args.seed * 1000 + cid)
        sess = Session()
        seq = 0
        last = None         # (value, resourceVersion) last seen by this client
        while not stop.is_set():
            node = crng.choice(cl.nodes)
            r_ = crng.random()
            kind = "r" if r_ < 0.5 or (r_ >= 0.75 and last is None) else "w" if r_ < 0.75 else "cas"
            seq += 1
            val = f"c{cid}-{seq}"
            if kind == "r":
                t0 = now()
                res = sess.call(node, "GET", cm_path(name), timeout=15)
                t1 = now()
                if res.outcome == "answered" and res.status == 200:
                    obj = res.json()
                    v = obj["data"]["v"]
                    last = (v, obj["metadata"]["resourceVersion"])
                    record(Op(cid, "r", None, v, t0, t1, node=node.name, note=last[1]))
                    count("read ok")
                else:
                    count("read failed")
            else:
                body = configmap(name, {"v": val}, rv=last[1] if kind == "cas" else None)
                t0 = now()
                res = sess.call(node, "PUT", cm_path(name), body, timeout=15)
                t1 = now()
                arg = val if kind == "w" else (last[0], val)
                if res.outcome == "unsent":
                    count(f"{kind} not sent (server down)")
                elif res.outcome == "answered" and res.status == 200:
                    obj = res.json()
                    last = (obj["data"]["v"], obj["metadata"]["resourceVersion"])
                    record(Op(cid, kind, arg, True if kind == "cas" else None, t0, t1,
                              node=node.name, note=last[1]))
                    count(f"{kind} ok")
                elif res.outcome == "answered" and res.status == 409 and kind == "cas":
                    record(Op(cid, "cas", arg, False, t0, t1, node=node.name))
                    count("cas failed (409)")
                    last = None
                elif res.outcome == "answered" and res.status == 409:
                    count("write answered 409 (not applied)")
                else:
                    record(Op(cid, kind, arg, None, t0, INF, known=False, node=node.name,
                              note=repr(res)[:80]))
                    count(f"{kind} unknown ({res.outcome if res.outcome != 'answered' else res.status})")
            if res.outcome == "unsent":
                time.sleep(0.05)
            time.sleep(crng.random() * 0.01)
        sess.close()

    def nemesis(deadline):
        events = []

        def event(e):
            rep.log(f"nemesis: {e}")
            events.append(e)

        first_two = rng.sample(["kill", "isolate"], 2)
        while now() < deadline:
            time.sleep(rng.uniform(1.0, 2.5))
            if now() >= deadline:
                break
            leader = cl.leader(timeout=2)
            # The first two faults are one kill and one partition, in a seeded order, so every
            # run exercises both; the rest are drawn at random.
            choice = (first_two.pop(0) if first_two else
                      rng.choice(("kill", "kill", "isolate", "isolate", "isolate-follower")))
            if choice == "isolate-follower" or not leader:
                victim = rng.choice([n for n in cl.nodes if n is not leader])
            else:
                victim = leader if rng.random() < 0.7 else rng.choice(cl.nodes)
            role = "leader" if victim is leader else "follower"
            if choice == "kill":
                victim.kill()
                event(f"kill -9 {victim.name} ({role})")
                time.sleep(rng.uniform(1.0, 4.0))
                victim.start()
                if not victim.wait_ready(30):
                    event(f"{victim.name} not ready 30 s after restart")
            else:
                mode = rng.choice(("drop", "pause"))
                cl.isolate(victim, mode)
                event(f"isolate {victim.name} ({role}, {mode})")
                time.sleep(rng.uniform(2.0, 5.0))
                cl.heal()
        return events

    try:
        if not cl.start(rep):
            return rep.finish()
        sess = Session()
        r = sess.call(cl.nodes[0], "POST", cm_path(), configmap(name, {"v": "init"}))
        if not rep.check("the register is created", r.status == 201, repr(r)):
            return rep.finish()
        t_base[0] = now()
        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(args.clients)]
        for th in threads:
            th.start()
        events = nemesis(now() + args.seconds)
        # Quiet time: everything healed and running; the clients go on for a while.
        cl.heal()
        for nd in cl.nodes:
            if not nd.alive():
                nd.start()
                nd.wait_ready(30)
        time.sleep(3)
        stop.set()
        for th in threads:
            th.join(30)
        # A final read on every server closes the history.
        for nd in cl.nodes:
            t0 = now()
            res = Session().call(nd, "GET", cm_path(name), timeout=15)
            if res.outcome == "answered" and res.status == 200:
                record(Op(99, "r", None, res.json()["data"]["v"], t0, now(), node=nd.name,
                          note=res.json()["metadata"]["resourceVersion"]))
            rep.check(f"a final read on {nd.name} answers", res.status == 200, repr(res))
        for k in sorted(stats):
            rep.log(f"{stats[k]:6d} {k}")
        rep.check("the nemesis killed and partitioned servers",
                  any(e.startswith("kill") for e in events) and
                  any(e.startswith("isolate") for e in events) or args.seconds < 20,
                  str(events))
        rep.check("writes succeeded during the run", stats.get("w ok", 0) + stats.get("cas ok", 0)
                  > 20, str(stats))
        hist_file = args.history or os.path.join(cl.root, "history.jsonl")
        with open(hist_file, "w") as f:
            for op in sorted(history, key=lambda o: o.inv):
                f.write(json.dumps(op.to_json()) + "\n")
        # The same value always with the same resourceVersion.
        rv_of, clash = {}, []
        for op in history:
            if op.note and op.known and (op.kind == "r" or op.out is not False):
                v = op.out if op.kind == "r" else (op.arg if op.kind == "w" else op.arg[1])
                if rv_of.setdefault(v, op.note) != op.note:
                    clash.append((v, rv_of[v], op.note))
        rep.check("every value is seen with one resourceVersion", not clash, str(clash[:5]))
        t0 = now()
        ok, msg = check(history, "init")
        rep.check(f"the history of {len(history)} operations is linearizable "
                  f"(checked in {now() - t0:.1f} s)", ok is True,
                  ("undecided: " if ok is None else "") + msg +
                  f"\n   history: {hist_file}" + ("" if args.history else
                                                     " (kept with INTEGRATION_KEEP=1)"))
    finally:
        stop.set()
        cl.shutdown(rep)
    return rep.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--check", metavar="FILE")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--history", metavar="FILE")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.check:
        with open(args.check) as f:
            history = [Op.from_json(json.loads(line)) for line in f if line.strip()]
        ok, msg = check(history, "init")
        print(f"{len(history)} operations: {'linearizable' if ok else 'NOT linearizable' if ok is False else 'undecided'}")
        if msg:
            print(msg)
        return 0 if ok else 1
    if args.seed is None:
        args.seed = random.randrange(1, 1 << 30)
    return run_workload(args)


if __name__ == "__main__":
    sys.exit(main())
