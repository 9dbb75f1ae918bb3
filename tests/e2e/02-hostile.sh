#!/usr/bin/env bash
# Hostile input end to end: 10,000 random/malformed requests, oversized bodies and headers,
# slow-loris connections; the server must keep serving and never crash.
source "$(dirname "$0")/lib.sh"
dir=$E2E_TMP/h; p=$(port)
start h "$dir" "$p" --init
pid=$LAST_PID
ready "$dir/kubeconfig" || { fail "server did not start"; done_testing; exit 1; }
python3 "$(dirname "$0")/hostile.py" 127.0.0.1 "$p" "$dir/pki" "${KCP_HOSTILE_COUNT:-10000}" >"$E2E_TMP/hostile.out" 2>&1
rc=$?
cat "$E2E_TMP/hostile.out"
line=$(tail -1 "$E2E_TMP/hostile.out")
PASS=$((PASS + $(grep -oE '^[0-9]+' <<<"$line" || echo 0)))
FAIL=$((FAIL + $(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '^[0-9]+' || echo 1)))
((rc == 0)) || [[ $line =~ failed ]] || fail "hostile.py exited $rc"
expect "process still alive" kill -0 "$pid"
expect_eq "still ready" ok "$(kubectl --kubeconfig "$dir/kubeconfig" get --raw /readyz 2>&1)"
# The per-check lines above were printed by hostile.py; the summary below adds them up.
kill -TERM "$pid"; exits_within "$pid" 2 && expect_eq "clean exit after hostile traffic" 0 "$EXIT_STATUS"
done_testing
