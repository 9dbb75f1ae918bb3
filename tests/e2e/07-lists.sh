#!/usr/bin/env bash
# Large lists: 5,000 ConfigMaps listed as JSON, protobuf and Table, whole and in pages of 500
# (every item once, in order, continue tokens that chain, kubectl's output), and the server's
# memory while it answers: the lists are written in parts as the client takes them, so its peak
# RSS (VmHWM, reset before each measure) grows by less than LIST_RSS_BOUND_KB whatever the
# list's size, a slow reader included. Checks are in list_checks.py (stdlib client: kclient.py).
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
N=${N:-5000}
# Measured with N=5000 (docs/LIMITS.md): each scenario below grew the peak by at most ~0.5 MiB;
# the same lists built whole took 5-7 MiB for the Table (and a slow reader the whole body).
LIST_RSS_BOUND_KB=${LIST_RSS_BOUND_KB:-2048}

add_counts() {
  local out=$1 name=$2 line
  grep -a -v -E '^[0-9]+ passed, [0-9]+ failed$' "$out"
  line=$(tail -1 "$out")
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    PASS=$((PASS + BASH_REMATCH[1])); FAIL=$((FAIL + BASH_REMATCH[2]))
  else
    fail "list_checks.py $name ended without a summary: $(tail -3 "$out")"
  fi
}
py() {
  local g=$1
  python3 "$HERE/list_checks.py" 127.0.0.1 "$p" "$dir/pki" "$g" lists "$N" >"$E2E_TMP/py-$g.out" 2>&1
  add_counts "$E2E_TMP/py-$g.out" "$g"
}

dir=$E2E_TMP/lists; p=$(port)
# Without git history: its batches have peaks of their own that would blur the measure.
KCP_HISTORY=off start lists "$dir" "$p" --init
pid=$LAST_PID
kc=$dir/kubeconfig
ready "$kc" || { fail "server did not start"; done_testing; exit 1; }
k() { kubectl --kubeconfig "$kc" "$@"; }
k create ns lists >/dev/null

py create
# The reads check every list, and build the protobuf encodings each object keeps (a cache that
# lives with the object, not the lists' memory).
py read

hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"; }
# measure NAME CMD...: runs CMD and checks the peak RSS grew by less than the bound meanwhile.
measure() {
  local what=$1 before after; shift
  echo 5 >"/proc/$pid/clear_refs" 2>/dev/null # resets VmHWM to the current RSS (Linux >= 4.0)
  before=$(hwm)
  "$@" >"$E2E_TMP/measure.out" 2>&1 || fail "$what: $(tail -c 300 "$E2E_TMP/measure.out")"
  after=$(hwm)
  echo "     $what: peak RSS ${before} -> ${after} kB"
  if ((after - before < LIST_RSS_BOUND_KB)); then
    pass "$what: peak RSS grew by $((after - before)) kB (< $LIST_RSS_BOUND_KB)"
  else
    fail "$what: peak RSS grew by $((after - before)) kB (bound $LIST_RSS_BOUND_KB)"
  fi
}
measure "kubectl get cm -A (Table pages of 500)" k get cm -A
measure "kubectl get cm -A --chunk-size=0 (one Table of $N)" k get cm -A --chunk-size=0
measure "kubectl get cm -o json (JSON pages of 500)" k -n lists get cm -o json
measure "JSON, protobuf and Table lists, whole and paged" \
  python3 "$HERE/list_checks.py" 127.0.0.1 "$p" "$dir/pki" read lists "$N"
measure "a Table of $N read by a slow client" \
  python3 "$HERE/list_checks.py" 127.0.0.1 "$p" "$dir/pki" slow lists "$N"
py slow
py abandon

# kubectl's output of pages: the same rows as one Table, in order (kubectl's own rate limit, 5
# requests a second, keeps the pages from being small).
expect_eq "kubectl get cm lists $N ConfigMaps in pages of 500" "$N" \
  "$(k -n lists get cm --no-headers | wc -l)"
expect_eq "...the same names as --chunk-size=0 and as pages of 333, in order" \
  "$(k -n lists get cm --chunk-size=0 --no-headers | awk '{print $1}' | md5sum)" \
  "$(k -n lists get cm --chunk-size=333 --no-headers | awk '{print $1}' | md5sum)"
expect_eq "kubectl get cm -o name in pages of 100 over a label selector" \
  "$(seq 3 7 $((N - 1)) | xargs printf 'configmap/lcm-%05d\n')" \
  "$(k -n lists get cm -l n=3 -o name --chunk-size=100)"

kill -0 "$pid" 2>/dev/null && pass "server still up" || fail "server died"
done_testing
