#!/usr/bin/env python3
"""Kill -9 the leader of a 3-server cluster in the middle of a write load; nothing acknowledged
may be lost, and the survivors must elect a new leader quickly.

Three real servers on loopback. 16 client threads make 1,000 ConfigMap creates in all (unique
names), each thread against a random server (followers forward to the leader). After 300
acknowledged creates the leader (found with `kcp members`) is killed with SIGKILL. Checks:
  - a survivor reports a new leader within 3 s of the kill (polled every 20 ms: GET
    /raft/v1/members, what `kcp members` prints); the time is printed
  - writes go on against the survivors (a client whose server died switches to another)
  - the killed server, restarted with the same flags, catches up: all three list the same
    ConfigMaps with the same resourceVersions
  - every acknowledged create (201) is there on every server (a GET without resourceVersion,
    i.e. a linearizable read, on each) with the resourceVersion its 201 reported
  - no create that never reached a server (connection refused) exists, and no unknown name
Creates that failed or timed out after reaching a server (503, 504, reset) may or may not exist.

Usage: kill_leader.py [--creates N] [--clients N] [--kill-after N]; KCP= the binary."""
import argparse
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import KCP, Cluster, Report, Session, cm_path, configmap, diff_lists, now  # noqa: E402


def members_cli(node):
    """`kcp members --data-dir DIR` of one server: [(name, address, role)]."""
    r = subprocess.run([KCP, "members", "--data-dir", node.dir], capture_output=True, text=True,
                       timeout=15)
    return [tuple(line.split()) for line in r.stdout.splitlines() if len(line.split()) == 3]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--kill-after", type=int, default=300)
    args = ap.parse_args()
    rep = Report("kill-leader")
    cl = Cluster(3, prefix="kcp-int-kill-")
    try:
        if not cl.start(rep):
            return rep.finish()
        rep.check("3 servers up, one leader", cl.wait_leader() is not None)
        run(cl, rep, args)
    finally:
        cl.shutdown(rep)
    return rep.finish()


def run(cl, rep, args):
    lock = threading.Lock()
    state = {"next": 0, "acked": 0, "unsent": 0}
    results = {}        # name -> ("acked", rv, server, t_invoke) | ("maybe", why) | ("unsent",)
    killed = set()      # names of servers that are down: clients leave them
    first_ack_after_kill = []
    kill_at = [None]
    rng = random.Random(os.getpid())

    def client(idx):
        sess = Session()
        server = rng.choice(cl.nodes)
        retry = None
        while True:
            with lock:
                if retry is None:
                    if state["next"] >= args.creates:
                        return
                    i = state["next"]
                    state["next"] += 1
                else:
                    i, retry = retry, None
                if server.name in killed:
                    server = rng.choice([n for n in cl.nodes if n.name not in killed])
            name = f"kl-{i:04d}"
            t = now()
            r = sess.call(server, "POST", cm_path(), configmap(name, {"i": str(i)}), timeout=20)
            with lock:
                if r.outcome == "answered" and r.status == 201:
                    results[name] = ("acked", r.json()["metadata"]["resourceVersion"],
                                     server.name, t)
                    state["acked"] += 1
                    if kill_at[0] is not None and t > kill_at[0] and not first_ack_after_kill:
                        first_ack_after_kill.append(now() - kill_at[0])
                elif r.outcome == "unsent":
                    # It never reached a server: try the same name elsewhere.
                    state["unsent"] += 1
                    results.setdefault(name, ("unsent",))
                    retry = i
                    server = rng.choice([n for n in cl.nodes if n is not server
                                         and n.name not in killed] or cl.nodes)
                else:
                    results[name] = ("maybe", repr(r)[:120], server.name)
                    if r.outcome == "lost":
                        server = rng.choice([n for n in cl.nodes if n is not server
                                             and n.name not in killed] or cl.nodes)
            if retry is not None:
                time.sleep(0.05)

    t0 = now()
    threads = [threading.Thread(target=client, args=(k,), daemon=True)
               for k in range(args.clients)]
    for th in threads:
        th.start()
    while state["acked"] < args.kill_after and any(th.is_alive() for th in threads):
        time.sleep(0.01)
    m = members_cli(cl.nodes[0])
    leader_name = next((n for n, _, role in m if role == "leader"), None)
    if not rep.check("`kcp members` names a leader before the kill", leader_name, str(m)):
        return
    leader = cl.by_name[leader_name]
    with lock:
        killed.add(leader.name)
        acked_before = state["acked"]
    leader.kill()
    kill_at[0] = now()
    rate = acked_before / (kill_at[0] - t0)
    rep.log(f"killed the leader {leader.name} (kill -9) after {acked_before} acknowledged creates "
            f"({rate:.0f}/s)")
    survivors = [n for n in cl.nodes if n is not leader]
    first = both = None
    while now() - kill_at[0] < 20 and both is None:
        seen = [n.leader(timeout=1) for n in survivors]
        t = now() - kill_at[0]
        if first is None and any(s and s != leader.name for s in seen):
            first = t
        if all(s and s != leader.name for s in seen) and len(set(seen)) == 1:
            both = t
        time.sleep(0.02)
    new_leader = survivors[0].leader()
    rep.log(f"new leader {new_leader}: reported after {first if first is None else round(first, 2)} s "
            f"by a survivor, {both if both is None else round(both, 2)} s by both")
    rep.check(f"a new leader is reported within 3 s of killing the leader "
              f"({'%.2f s' % first if first is not None else 'none in 20 s'})",
              first is not None and first < 3.0)
    for th in threads:
        th.join(timeout=180)
    rep.check("the clients finished", not any(th.is_alive() for th in threads))
    elapsed = now() - t0
    acked = {k: v for k, v in results.items() if v[0] == "acked"}
    maybe = {k: v for k, v in results.items() if v[0] == "maybe"}
    unsent = {k for k, v in results.items() if v[0] == "unsent"}
    after = sum(1 for v in acked.values() if v[3] > kill_at[0])
    rep.log(f"{len(results)} names tried in {elapsed:.1f} s: {len(acked)} acknowledged "
            f"({after} of them sent after the kill), {len(maybe)} failed or timed out, "
            f"{len(unsent)} never reached a server; connection refusals retried: {state['unsent']}")
    if first_ack_after_kill:
        rep.log(f"first acknowledged create sent after the kill: {first_ack_after_kill[0]:.2f} s "
                f"after it")
    reasons = {}
    for v in maybe.values():
        reasons[v[1][:60]] = reasons.get(v[1][:60], 0) + 1
    for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:6]:
        rep.log(f"  {n:4d} x {why}")
    rep.check(f"writes continue on the survivors after the kill ({after} acknowledged)", after > 0)
    rep.check(f"most creates acknowledged ({len(acked)} of {args.creates})",
              len(acked) >= args.creates // 2)

    leader.start()
    rep.check(f"the killed server {leader.name} restarts", leader.wait_ready(60),
              leader.log_tail())
    ok, lists = cl.converged(60)
    rep.check("all three servers list the same ConfigMaps with the same resourceVersions", ok,
              diff_lists(lists, [n.name for n in cl.nodes]))
    listed = lists[0] or {}
    ours = {k for k in listed if k.startswith("kl-")}
    rep.check("every acknowledged create is listed with the resourceVersion it was given",
              all(listed.get(k) == v[1] for k, v in acked.items()),
              str([(k, v[1], listed.get(k)) for k, v in acked.items()
                   if listed.get(k) != v[1]][:5]))
    rep.check("no create that never reached a server exists", not (unsent & ours),
              str(sorted(unsent & ours)[:5]))
    rep.check("no name exists that no client tried", ours <= set(results), str(sorted(ours - set(results))[:5]))
    present_maybe = len(set(maybe) & ours)
    rep.log(f"of the {len(maybe)} failed or timed-out creates, {present_maybe} exist")

    # A GET without resourceVersion (a linearizable read) of every acknowledged name, on each
    # server.
    bad = []
    for node in cl.nodes:
        names = sorted(acked)
        errs = []

        def worker(part):
            sess = Session()
            for nm in part:
                r = sess.call(node, "GET", cm_path(nm), timeout=15)
                rv = (r.json() or {}).get("metadata", {}).get("resourceVersion") \
                    if r.outcome == "answered" and r.status == 200 else None
                if rv != acked[nm][1]:
                    errs.append((node.name, nm, acked[nm][1], repr(r)[:100]))

        ths = [threading.Thread(target=worker, args=(names[k::8],)) for k in range(8)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        bad += errs
    rep.check(f"a GET of each of the {len(acked)} acknowledged creates answers it, with its "
              f"resourceVersion, on all three servers", not bad, str(bad[:5]))


if __name__ == "__main__":
    sys.exit(main())
