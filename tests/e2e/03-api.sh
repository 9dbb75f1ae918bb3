#!/usr/bin/env bash
# API machinery end to end, beyond the acceptance floor, with upstream kube-apiserver 1.32 as the
# oracle: protobuf bodies/responses/watch frames, content negotiation (406/415, q-values, YAML,
# PartialObjectMetadata), Table responses and `kubectl get -w`, watch semantics (replay order,
# selector transitions, bookmarks, sendInitialEvents, timeouts, too-large and too-old RVs),
# pagination over one snapshot, Status errors, dryRun, fieldValidation, finalizers, namespace
# termination, generation and status, the scale subresource, server-side apply and managedFields,
# anonymous access, and a restart.
# Most checks are in api_checks.py (stdlib client: kclient.py); this script runs the server,
# kubectl and the restart.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

dir=$E2E_TMP/api; p=$(port)
start api "$dir" "$p" --init
pid=$LAST_PID
kc=$dir/kubeconfig
ready "$kc" || { fail "server did not start"; done_testing; exit 1; }
k() { kubectl --kubeconfig "$kc" "$@"; }

# add_counts FILE NAME: prints a python group's check lines and adds up its summary line.
add_counts() {
  local out=$1 name=$2 line
  grep -a -v -E '^[0-9]+ passed, [0-9]+ failed$' "$out"
  line=$(tail -1 "$out")
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    PASS=$((PASS + BASH_REMATCH[1])); FAIL=$((FAIL + BASH_REMATCH[2]))
  else
    fail "api_checks.py $name ended without a summary"
  fi
}

# server_up GROUP: the server survived GROUP; if it died, say so and start it again.
server_up() {
  if kill -0 "$pid" 2>/dev/null && [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]]; then return 0; fi
  wait "$pid"; local st=$?
  fail "kcp died during '$1' (exit status $st); log tail: $(tail -3 "$E2E_TMP/api.log" | tr '\n' ' ')"
  start api "$dir" "$p"; pid=$LAST_PID
  ready "$kc" || fail "kcp did not come back after dying in '$1'"
}

py() {
  local g=$1
  python3 "$HERE/api_checks.py" 127.0.0.1 "$p" "$dir/pki" "$g" "$E2E_TMP/state.json" >"$E2E_TMP/py-$g.out" 2>&1
  add_counts "$E2E_TMP/py-$g.out" "$g"
  server_up "$g"
}

# wait_for SECONDS CMD...: CMD succeeds within SECONDS.
wait_for() {
  local limit=$1 i; shift
  for ((i = 0; i < limit * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# A long watch runs in the background meanwhile: it must get a periodic bookmark within 35 s.
python3 "$HERE/api_checks.py" 127.0.0.1 "$p" "$dir/pki" bookmark-long >"$E2E_TMP/py-bookmark-long.out" 2>&1 &
bmpid=$!
PIDS+=("$bmpid")

for g in protobuf negotiation table watch pagination errors dryrun validation finalizers namespace \
         generation scale apply anonymous; do
  py "$g"
done

# kubectl against Table watch events: `get -w` prints the header once, then one row per event.
k create ns e2e-kubectl >/dev/null
k -n e2e-kubectl create configmap pre --from-literal=a=1 >/dev/null
timeout 30 kubectl --kubeconfig "$kc" -n e2e-kubectl get configmaps -w >"$E2E_TMP/getw.out" 2>&1 &
wpid=$!
PIDS+=("$wpid")
wait_for 10 grep -Eq '^pre ' "$E2E_TMP/getw.out" || fail "kubectl get -w: no initial list: $(head -c 300 "$E2E_TMP/getw.out")"
k -n e2e-kubectl create configmap w1 --from-literal=a=1 >/dev/null
k -n e2e-kubectl patch configmap w1 --type=merge -p '{"data":{"b":"2"}}' >/dev/null
wait_for 10 grep -Eq '^w1 +2 ' "$E2E_TMP/getw.out"
kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
getw=$(cat "$E2E_TMP/getw.out")
expect_eq "kubectl get -w prints the NAME DATA AGE header once" 1 "$(grep -cE '^NAME +DATA +AGE$' <<<"$getw")"
expect_match "kubectl get -w prints the listed row" $'(^|\n)pre +1 +[0-9]+s(\n|$)' "$getw"
expect_match "kubectl get -w prints a row for the ADDED event" $'(^|\n)w1 +1 +[0-9]+s(\n|$)' "$getw"
expect_match "kubectl get -w prints a row for the MODIFIED event" $'(^|\n)w1 +2 +[0-9]+s(\n|$)' "$getw"
for i in 1 2 3 4 5; do k -n e2e-kubectl create configmap c$i --from-literal=a=1 >/dev/null; done
chunked=$(k -n e2e-kubectl get configmaps --chunk-size=2 2>&1)
expect_eq "kubectl get --chunk-size=2 (Table pages): one header" 1 "$(grep -cE '^NAME +DATA +AGE$' <<<"$chunked")"
expect_eq "kubectl get --chunk-size=2 (Table pages): all 7 rows" 7 "$(grep -cE '^[a-z0-9-]+ +[0-9]+ +[0-9]+s$' <<<"$chunked")"
expect_match "kubectl create --dry-run=server (protobuf body + dryRun) reports the dry run" \
  'configmap/dry created \(server dry run\)' "$(k -n e2e-kubectl create configmap dry --from-literal=a=b --dry-run=server 2>&1)"
expect_match "and stores nothing" 'NotFound' "$(k -n e2e-kubectl get configmap dry 2>&1)"

if wait "$bmpid"; then :; fi
add_counts "$E2E_TMP/py-bookmark-long.out" bookmark-long

# Last before the restart, on its own: if this request takes the server down (it did at 7b268b0),
# server_up reports it and restarts the server, and the other groups are not disturbed.
py strictpatch

# Restart: everything kept, resourceVersions keep growing; what a pre-restart RV still means.
py prerestart
kill -TERM "$pid"
if exits_within "$pid" 5; then expect_eq "SIGTERM exits 0" 0 "$EXIT_STATUS"; else fail "SIGTERM: still running after 5 s"; fi
start api "$dir" "$p"
pid=$LAST_PID
expect "restart becomes ready" ready "$kc"
py postrestart

kill -TERM "$pid"; exits_within "$pid" 5 || fail "final stop"
done_testing
