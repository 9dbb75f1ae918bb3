#!/usr/bin/env bash
# Smoke-tests the aarch64 binary under qemu: version, server readiness, clean SIGTERM exit.
#
# usage: scripts/test-aarch64.sh [path/to/aarch64/kcp]      (default build-aarch64/kcp)
#
# Runs the binary with qemu-aarch64-static (KCP_QEMU overrides), so it needs no binfmt setup:
#   1. `kcp version` succeeds;
#   2. `kcp server --init` on a fresh data directory and a free loopback port answers
#      GET /readyz with "ok" within KCP_AARCH64_READY_TIMEOUT seconds (default 60; emulation
#      makes key generation slow);
#   3. after SIGTERM the server exits with status 0 within 30 s.
# Prints one line per check, then "test-aarch64: PASS" or "test-aarch64: FAIL", then a count.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
kcp=${1:-$repo/build-aarch64/kcp}
qemu=${KCP_QEMU:-qemu-aarch64-static}
ready_timeout=${KCP_AARCH64_READY_TIMEOUT:-60}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kcp-aarch64.XXXXXX")
server_pid=
# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if ((failed)) && [[ -f $tmp/server.log ]]; then
    echo "--- server log (last 30 lines)"
    tail -n 30 "$tmp/server.log"
  fi
  if [[ -n ${KCP_TEST_KEEP:-} ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

finish() {
  if ((failed == 0)); then echo "test-aarch64: PASS"; else echo "test-aarch64: FAIL"; fi
  echo "aarch64: $passed passed, $failed failed"
  exit $((failed ? 1 : 0))
}

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    echo $((20000 + RANDOM % 20000))
  fi
}

# readyz PORT: prints the body of GET /readyz, or nothing.
readyz() {
  if command -v curl >/dev/null; then
    curl -sk --max-time 5 "https://127.0.0.1:$1/readyz" 2>/dev/null
  elif command -v kubectl >/dev/null && [[ -f $tmp/data/kubeconfig ]]; then
    kubectl --kubeconfig "$tmp/data/kubeconfig" --request-timeout=5s get --raw /readyz 2>/dev/null
  fi
}

# Preconditions: without them nothing below means anything.
if ! command -v "$qemu" >/dev/null; then
  bad "$qemu not found (apt-get install qemu-user-static)"
  finish
fi
if [[ ! -x $kcp ]]; then
  bad "$kcp not found; build it with scripts/build-aarch64.sh"
  finish
fi
desc=$(file -b "$kcp" 2>/dev/null || echo unknown)
if [[ $desc == *"ARM aarch64"* && $desc == *"statically linked"* ]]; then
  ok "$(basename "$kcp") is a static aarch64 executable"
else
  bad "$kcp is not a static aarch64 executable: $desc"
fi

# 1. kcp version
if out=$("$qemu" "$kcp" version 2>&1); then
  ok "kcp version: $(head -n 1 <<<"$out")"
else
  bad "kcp version exited $?: $(head -c 300 <<<"$out")"
fi

# 2. server --init, then /readyz
port=$(free_port)
"$qemu" "$kcp" server --init --data-dir "$tmp/data" --listen "127.0.0.1:$port" --node-name pi \
  >"$tmp/server.log" 2>&1 &
server_pid=$!
start=$SECONDS
ready=0
while ((SECONDS - start < ready_timeout)); do
  if [[ $(readyz "$port") == ok ]]; then
    ready=1
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
if ((ready)); then
  ok "server ready on 127.0.0.1:$port after $((SECONDS - start)) s under qemu"
elif ! kill -0 "$server_pid" 2>/dev/null; then
  wait "$server_pid"
  bad "server exited with status $? before it was ready"
  server_pid=
  finish
else
  bad "server not ready within $ready_timeout s (GET /readyz: '$(readyz "$port" | head -c 200)')"
fi

# 3. SIGTERM: exit 0, promptly
kill -TERM "$server_pid"
start=$SECONDS
while kill -0 "$server_pid" 2>/dev/null && ((SECONDS - start < 30)); do sleep 0.2; done
if kill -0 "$server_pid" 2>/dev/null; then
  bad "server still running 30 s after SIGTERM"
else
  wait "$server_pid"
  status=$?
  server_pid=
  if ((status == 0)); then
    ok "server exited 0 after SIGTERM ($((SECONDS - start)) s)"
  else
    bad "server exited with status $status after SIGTERM"
  fi
fi
finish
