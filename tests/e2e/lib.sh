# Shared helpers of kcp's end-to-end tests: real kcp processes on loopback, real kubectl.
set -u
E2E_TMP=$(mktemp -d /tmp/kcp-e2e.XXXXXX)
export KUBECACHEDIR=$E2E_TMP/kube-cache
KCP=${KCP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/kcp}
PASS=0
FAIL=0
PIDS=()

pass() { PASS=$((PASS + 1)); echo "ok   $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
expect() { local d=$1; shift; if "$@" >"$E2E_TMP/out" 2>&1; then pass "$d"; else fail "$d: $(head -c 300 "$E2E_TMP/out")"; fi; }
expect_fail() { local d=$1; shift; if "$@" >"$E2E_TMP/out" 2>&1; then fail "$d: unexpectedly succeeded"; else pass "$d"; fi; }
expect_eq() { if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
expect_match() { if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1: [$(head -c 300 <<<"$3")] !~ /$2/"; fi; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME DIR PORT [flags...]: starts kcp server in the background; PID in $LAST_PID.
start() {
  local name=$1 dir=$2 p=$3; shift 3
  "$KCP" server --data-dir "$dir" --listen "127.0.0.1:$p" --node-name "$name" "$@" \
    >>"$E2E_TMP/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# ready KUBECONFIG [SECONDS]: waits for /readyz = ok.
ready() {
  local kc=$1 limit=${2:-20} i
  for ((i = 0; i < limit * 10; i++)); do
    [[ -f $kc && $(kubectl --kubeconfig "$kc" --request-timeout=2s get --raw /readyz 2>/dev/null) == ok ]] && return 0
    sleep 0.1
  done
  return 1
}

# exits_within PID SECONDS: the process exits (and its status is $EXIT_STATUS) in time.
exits_within() {
  local pid=$1 limit=$2 i
  for ((i = 0; i < limit * 20; i++)); do
    if ! kill -0 "$pid" 2>/dev/null || [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then
      wait "$pid"; EXIT_STATUS=$?; return 0
    fi
    sleep 0.05
  done
  return 1
}

e2e_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if ((FAIL)) && [[ -z ${E2E_KEEP:-} ]]; then
    for f in "$E2E_TMP"/*.log; do [[ -f $f ]] && { echo "--- $f (tail)"; tail -15 "$f"; }; done
  fi
  [[ -n ${E2E_KEEP:-} ]] || rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT

done_testing() {
  echo "$PASS passed, $FAIL failed"
  [[ $FAIL == 0 ]]
}
