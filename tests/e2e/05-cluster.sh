#!/usr/bin/env bash
# Cluster operations beyond 30-ha: tokens, members and their roles, a rejoin with a wiped data
# dir, removing a member, a snapshot sent to a server that is behind the compacted log, a
# graceful leader stop (leadership transfer), and recovery from a lost quorum with
# --force-new-cluster.
source "$(dirname "$0")/lib.sh"

declare -A DIR PORT PID
# up NAME [flags]: first server; join NAME [flags]: joins the cluster of n1.
up() {
  local n=$1; shift
  DIR[$n]=$E2E_TMP/$n; PORT[$n]=$(port)
  start "$n" "${DIR[$n]}" "${PORT[$n]}" "$@"; PID[$n]=$LAST_PID
  ready "${DIR[$n]}/kubeconfig" 30
}
join() {
  local n=$1 via=${2:-n1}; shift 2 || shift
  local token
  token=$("$KCP" token --data-dir "${DIR[$via]}") || return 1
  DIR[$n]=${DIR[$n]:-$E2E_TMP/$n}; PORT[$n]=${PORT[$n]:-$(port)}
  start "$n" "${DIR[$n]}" "${PORT[$n]}" --join "https://127.0.0.1:${PORT[$via]}" --token "$token" "$@"
  PID[$n]=$LAST_PID
  ready "${DIR[$n]}/kubeconfig" 60
}
restart() { local n=$1; shift; start "$n" "${DIR[$n]}" "${PORT[$n]}" "$@"; PID[$n]=$LAST_PID; ready "${DIR[$n]}/kubeconfig" 30; }
kc() { local n=$1; shift; kubectl --kubeconfig "${DIR[$n]}/kubeconfig" --request-timeout=10s "$@"; }
members() { "$KCP" members --data-dir "${DIR[$1]}" 2>&1; }
leader() { members "$1" | awk '$3 == "leader" {print $1; exit}'; }
count_cm() { kc "$1" get cm -o name 2>/dev/null | grep -c "$2"; }
eventually() { local i; for ((i = 0; i < $1 * 5; i++)); do "${@:2}" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

# A small snapshot interval so that the log is compacted within this test.
expect "first server" up n1 --init --raft-snapshot-entries 200
token=$("$KCP" token --data-dir "${DIR[n1]}")
expect_match "token pins the CA and carries a secret" '^kcp1\.[0-9a-f]{64}\.[0-9a-f]{64}$' "$token"
expect_eq "the same token every time" "$token" "$("$KCP" token --data-dir "${DIR[n1]}")"
expect_fail "a wrong secret is refused" "$KCP" server --join "https://127.0.0.1:${PORT[n1]}" \
  --token "${token%.*}.$(printf '0%.0s' {1..64})" --data-dir "$E2E_TMP/bad" --listen "127.0.0.1:$(port)" --node-name bad
expect_fail "a token for another CA is refused" "$KCP" server --join "https://127.0.0.1:${PORT[n1]}" \
  --token "kcp1.$(printf 'a%.0s' {1..64}).${token##*.}" --data-dir "$E2E_TMP/bad2" --listen "127.0.0.1:$(port)" --node-name bad2
expect "n2 joins" join n2 n1 --raft-snapshot-entries 200
expect "n3 joins" join n3 n1 --raft-snapshot-entries 200
expect "all three are voters" eventually 10 bash -c "[[ \$('$KCP' members --data-dir '${DIR[n1]}' | grep -c -E 'leader|follower') == 3 ]]"
expect_match "members: NAME ADDRESS ROLE" "n1 127.0.0.1:${PORT[n1]} leader" "$(members n2)"
expect_fail "anonymous clients cannot list members" curl -sfk "https://127.0.0.1:${PORT[n1]}/raft/v1/members"
expect_fail "a client without a peer certificate cannot send Raft messages" \
  kc n1 create --raw /raft/v1/msgs -f /dev/null

# Rejoin: n3 loses its disk and comes back under the same name.
kill -9 "${PID[n3]}"; wait "${PID[n3]}" 2>/dev/null
rm -rf "${DIR[n3]}"
expect "n3 rejoins with a wiped data dir" join n3 n1 --raft-snapshot-entries 200
expect "still three members" eventually 10 bash -c "[[ \$('$KCP' members --data-dir '${DIR[n1]}' | wc -l) == 3 ]]"
# Three servers, one history: the same entries make byte-identical commits everywhere.
kc n2 create cm x-same-history >/dev/null
same_heads() {
  local a b c
  a=$(git --git-dir "${DIR[n1]}/history.git" rev-parse refs/heads/main) || return 1
  b=$(git --git-dir "${DIR[n2]}/history.git" rev-parse refs/heads/main) || return 1
  c=$(git --git-dir "${DIR[n3]}/history.git" rev-parse refs/heads/main) || return 1
  [[ $a == "$b" && $b == "$c" ]] && git --git-dir "${DIR[n1]}/history.git" log -1 --format=%s refs/heads/main | grep -q x-same-history
}
expect "three servers record byte-identical history" eventually 20 same_heads

# Enough writes for snapshots (every 200 entries) while n3 is down: it must be sent one.
kill -9 "${PID[n3]}"; wait "${PID[n3]}" 2>/dev/null
for i in $(seq 1 450); do echo "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"s$i\"}}"; done |
  kc n1 create -f - >/dev/null 2>&1
expect_eq "450 writes while n3 is down" 450 "$(count_cm n1 'configmap/s[0-9]')"
expect_match "the leader compacted its log" 'snap-[0-9]+' "$(ls "${DIR[n1]}/raft")"
# The same entries make the same commits on every server (n2 received the log, not a snapshot).
expect "n1 and n2 record byte-identical history" eventually 20 bash -c "[[ -n \$(git --git-dir '${DIR[n1]}/history.git' rev-parse refs/heads/main) && \$(git --git-dir '${DIR[n1]}/history.git' rev-parse refs/heads/main) == \$(git --git-dir '${DIR[n2]}/history.git' rev-parse refs/heads/main) ]]"
expect_match "history commits carry the Raft term" 'Raft-Term: [1-9]' "$(git --git-dir "${DIR[n2]}/history.git" log -1 --format=%B refs/heads/main)"
metrics=$(kc n1 get --raw /metrics)
expect_match "metrics: Raft" 'kcp_raft_voters 3' "$metrics"
expect_match "metrics: history lag" 'kcp_history_lag_entries [0-9]+' "$metrics"
expect "n3 comes back" restart n3
expect "n3 receives a snapshot and catches up" eventually 20 bash -c "[[ \$(kubectl --kubeconfig '${DIR[n3]}/kubeconfig' get cm -o name | grep -c configmap/s[0-9]) == 450 ]]"
expect_match "n3 installed a snapshot" 'installing the leader.s snapshot' "$(cat "$E2E_TMP/n3.log")"
rv1=$(kc n1 get cm s450 -o jsonpath='{.metadata.resourceVersion}')
expect_eq "same resourceVersion after the install" "$rv1" "$(kc n3 get cm s450 -o jsonpath='{.metadata.resourceVersion}')"
expect "writes through n3 after the install" kc n3 create cm after-install

# SIGTERM of the leader hands leadership over: the other server leads at once.
# (three voters: the two left make a quorum)
l=$(leader n1); o=n1; [[ $l == n1 ]] && o=n2
kill -TERM "${PID[$l]}"
expect "the stopped leader exits" exits_within "${PID[$l]}" 5
expect "another server leads within 1 s of the stop" eventually 1 bash -c "x=\$('$KCP' members --data-dir '${DIR[$o]}' | awk '\$3==\"leader\"{print \$1}'); [[ -n \$x && \$x != $l ]]"
expect "the stopped server comes back" restart "$l"
expect "three voters again" eventually 10 bash -c "[[ \$('$KCP' members --data-dir '${DIR[n1]}' | grep -c -E 'leader|follower') == 3 ]]"

# Remove a member.
expect "remove n3" "$KCP" members remove n3 --data-dir "${DIR[$(leader n1)]}"
expect "two members remain" eventually 10 bash -c "[[ \$('$KCP' members --data-dir '${DIR[n1]}' | wc -l) == 2 ]]"
kill -9 "${PID[n3]}"; wait "${PID[n3]}" 2>/dev/null

# Quorum lost for good: n1 and n2 form the cluster; n2's disk dies.
kc n1 create cm before-loss >/dev/null 2>&1
kill -9 "${PID[n2]}"; wait "${PID[n2]}" 2>/dev/null; rm -rf "${DIR[n2]}"
expect_fail "without a quorum writes fail" kc n1 create cm no-quorum --request-timeout=6s
kill -TERM "${PID[n1]}"; exits_within "${PID[n1]}" 5
expect "n1 starts alone with --force-new-cluster" restart n1 --force-new-cluster
expect_eq "n1 is the only member" "n1" "$(members n1 | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')"
expect "writes succeed again" kc n1 create cm after-force
expect "data is kept" kc n1 get cm before-loss s450
kill -TERM "${PID[n1]}"; exits_within "${PID[n1]}" 5
expect "restarting without the flag keeps the one-member cluster" restart n1
expect "a wiped n2 joins the new cluster" join n2 n1
expect "n2 has the data" eventually 20 bash -c "kubectl --kubeconfig '${DIR[n2]}/kubeconfig' get cm after-force before-loss"
done_testing
