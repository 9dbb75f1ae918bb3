#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, build, run every test, print one summary.
# Stages: unit (release), unit (ASan+UBSan), e2e, integration (HA), fuzz (short), aarch64 under
# qemu, acceptance.
# Env: KCP_SKIP="fuzz aarch64" skips stages; KCP_SHARED points at shared/ (default ../shared).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shared=${KCP_SHARED:-$root/../shared}
logs=$root/build-logs
mkdir -p "$logs"
declare -A passed failed
stages=()
groups=(1 3 4)
required_failed=0

skip() { [[ " ${KCP_SKIP:-} " == *" $1 "* ]]; }
record() { # record STAGE PASSED FAILED REQUIRED
  stages+=("$1"); passed[$1]=$2; failed[$1]=$3
  if [[ $4 == required && $3 != 0 ]]; then required_failed=1; fi
}
# ctest's "N% tests passed, F tests failed out of T"
ctest_stage() {
  local name=$1 dir=$2 out
  out=$(cd "$dir" && ctest --output-on-failure -j 2 2>&1); echo "$out" | tail -25
  local line; line=$(grep -E 'tests passed, [0-9]+ tests failed out of' <<<"$out" | tail -1)
  local f t; f=$(awk '{print $4}' <<<"${line:-x x x 1}"); t=$(awk '{print $NF}' <<<"${line:-1}")
  record "$name" $((t - f)) "$f" required
}
# Scripts that end with "N passed, N failed".
script_stage() {
  local name=$1 req=$2; shift 2
  local out rc; out=$("$@" 2>&1); rc=$?
  echo "$out"
  local line; line=$(grep -E '^([a-z0-9-]+: )?[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -1)
  local p f; p=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{print $1}'); f=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{print $1}')
  p=${p:-0}; f=${f:-0}
  if ((rc != 0 && f == 0)); then f=1; fi
  record "$name" "$p" "$f" "$req"
}

echo "== deps"
scripts/deps.sh || { echo "deps failed"; exit 1; }
echo "== build (release, static)"
scripts/build.sh release || { echo "release build failed"; exit 1; }
file build/kcp
echo "== build (asan+ubsan)"
scripts/build.sh asan || { echo "asan build failed"; exit 1; }

echo "== unit (release)"; ctest_stage unit build
echo "== unit (asan+ubsan)"; ctest_stage unit-asan build-asan

echo "== e2e"
for t in tests/e2e/[0-9]*.sh; do
  echo "-- $t"
  script_stage "e2e/$(basename "$t" .sh)" required env KCP="$root/build/kcp" bash "$t"
done

echo "== integration (3-server clusters: kill -9, partitions, linearizability; ~2.5 min)"
script_stage integration required env KCP="$root/build/kcp" bash tests/integration/run.sh

if ! skip fuzz; then
  echo "== fuzz (short runs)"
  if scripts/build.sh fuzz >"$logs/fuzz-build.log" 2>&1; then
    script_stage fuzz required tests/fuzz/run.sh "$root/build-fuzz" "${KCP_FUZZ_SECONDS:-20}"
  else
    tail -20 "$logs/fuzz-build.log"; record fuzz 0 1 required
  fi
fi

if ! skip aarch64; then
  echo "== aarch64 (cross build, run under qemu)"
  if scripts/build-aarch64.sh >"$logs/aarch64-build.log" 2>&1; then
    script_stage aarch64 required scripts/test-aarch64.sh
  else
    tail -20 "$logs/aarch64-build.log"; record aarch64 0 1 required
  fi
fi

if [[ -x $shared/acceptance/run.sh ]] || [[ -f $shared/acceptance/run.sh ]]; then
  # Groups 2x (workloads, scheduling, node lifecycle, CRDs) need controllers, `kcp hollow` and
  # the CRD engine, which no open issue covers yet; they cost minutes of timeouts, so they run
  # only with KCP_ACCEPTANCE=all. The summary says which groups ran.
  [[ ${KCP_ACCEPTANCE:-} == all ]] && groups=()
  echo "== acceptance (groups: ${groups[*]:-all})"
  out=$(KCP="$root/build/kcp" bash "$shared/acceptance/run.sh" "${groups[@]}" 2>&1); echo "$out" >"$logs/acceptance.log"
  echo "$out" | grep -E '^(== |FAIL|scenarios with|acceptance:)' | head -200
  # Required checks grow as issues land: a scenario named here must pass whole; a check named
  # in required_checks must print "ok" (the rest of its scenario may still fail).
  # Scenarios that pass whole are required so they cannot regress (issues 3, 4, 5 and 6).
  required_scenarios=(10-discovery 11-crud 12-apply-patch 13-list-watch 14-consistency
                      16-persistence 17-printing 18-services 19-server-side-apply 30-ha 40-history)
  required_checks=("server version answers" "healthz" "livez")
  p=0; f=0
  for s in "${required_scenarios[@]}"; do
    if ! grep -q "^== $s\$" <<<"$out" || grep -qE "^scenarios with failures:.* $s( |\$)" <<<"$out"; then
      f=$((f + 1)); echo "required scenario failed or did not run: $s"
    else p=$((p + 1)); fi
  done
  for c in "${required_checks[@]}"; do
    if grep -qE "^ok +$c\$" <<<"$out"; then p=$((p + 1)); else f=$((f + 1)); echo "required check failed: $c"; fi
  done
  record acceptance-required "$p" "$f" required
  line=$(grep -E '^acceptance: ' <<<"$out" | tail -1)
  ap=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{print $1}'); af=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{print $1}')
  record acceptance-all "${ap:-0}" "${af:-0}" informational
else
  echo "== acceptance: $shared/acceptance not found"; record acceptance-required 0 1 required
fi

echo
echo "== summary"
printf '%-28s %8s %8s\n' stage passed failed
tp=0; tf=0
for s in "${stages[@]}"; do
  printf '%-28s %8s %8s\n' "$s" "${passed[$s]}" "${failed[$s]}"
  if [[ $s != acceptance-all ]]; then tp=$((tp + passed[$s])); tf=$((tf + failed[$s])); fi
done
echo "(acceptance-all is informational: scenarios that need later issues may fail;"
echo " groups run: ${groups[*]:-all}; KCP_ACCEPTANCE=all runs every scenario)"
echo "$tp passed, $tf failed"
exit $required_failed
