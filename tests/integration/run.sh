#!/usr/bin/env bash
# HA integration tests: real 3-server clusters on loopback, crashes and partitions (README below).
# Usage: tests/integration/run.sh [NAME...]   NAME: self-test kill-leader partition restart-ack
#                          follower-writes linearizability (default: all, about 2.5 minutes)
# Environment: KCP (the binary, default build/kcp), LIN_SECONDS (nemesis time of the
# linearizability run, default 60), INTEGRATION_KEEP=1 (keep data directories and logs).
# Ends with "integration: N passed, N failed" (scripts/test.sh counts it).
#
#   self-test        the linearizability checker against known good and bad histories
#   kill-leader      kill -9 the leader under 16 writers: new leader < 3 s, nothing acked lost
#   partition        cut the leader off (connections reset, then held): minority cannot commit,
#                    majority elects and writes, the old leader catches up after the heal
#   restart-ack      a restarted server answers each client with its own write's outcome
#   follower-writes  GET/PUT/PATCH/DELETE on a follower right after a create acknowledged by the
#                    leader find the object
#   linearizability  GET / PUT / compare-and-swap of one ConfigMap under kills and partitions,
#                    history checked for linearizability
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export KCP=${KCP:-$root/build/kcp}
[[ -x $KCP ]] || { echo "integration: $KCP not found (scripts/build.sh, or set KCP=)"; echo "integration: 0 passed, 1 failed"; exit 1; }
names=("$@")
(( ${#names[@]} )) || names=(self-test kill-leader partition restart-ack follower-writes linearizability)
passed=0; failed=0; t0=$SECONDS
for n in "${names[@]}"; do
  echo "-- $n"
  case $n in
    self-test) cmd=(python3 "$here/linearizability.py" --self-test) ;;
    kill-leader) cmd=(python3 "$here/kill_leader.py") ;;
    partition) cmd=(python3 "$here/partition.py") ;;
    restart-ack) cmd=(python3 "$here/restart_ack.py") ;;
    follower-writes) cmd=(python3 "$here/follower_writes.py") ;;
    linearizability) cmd=(python3 "$here/linearizability.py" --seconds "${LIN_SECONDS:-60}") ;;
    *) echo "unknown test $n"; failed=$((failed + 1)); continue ;;
  esac
  out=$(timeout 400 "${cmd[@]}" 2>&1); rc=$?
  echo "$out"
  line=$(grep -E '^([a-z-]+: )?[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -1)
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{print $1}'); f=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{print $1}')
  p=${p:-0}; f=${f:-0}
  if ((rc != 0 && f == 0)); then
    echo "FAIL $n: exited with status $rc$( ((rc == 124)) && echo ' (timed out after 400 s)')"; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
done
echo "integration: $passed passed, $failed failed ($((SECONDS - t0)) s)"
((failed == 0))
