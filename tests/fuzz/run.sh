#!/usr/bin/env bash
# Runs every libFuzzer driver built in BUILD_DIR for SECONDS each, starting from the seed corpus
# in tests/fuzz/corpus/<driver>/ when there is one. A crash, leak or timeout fails the driver.
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]
set -u
build=$1 secs=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0
work=$(mktemp -d /tmp/kcp-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
drivers=$(find "$build" -type f -name 'fuzz_*' -perm -u+x | sort)
[[ -n $drivers ]] || { echo "fuzz: no drivers in $build"; echo "0 passed, 1 failed"; exit 1; }
for d in $drivers; do
  name=$(basename "$d")
  corpus=$work/$name; mkdir -p "$corpus"
  [[ -d $here/corpus/$name ]] && cp "$here/corpus/$name"/* "$corpus"/ 2>/dev/null
  # Undefined behaviour is a failure too, not a line in the log.
  out=$(UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$d" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$name-" "$corpus" 2>&1); rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' <<<"$out" | grep -oE '[0-9]+$')
  if ((rc == 0)); then
    pass=$((pass + 1)); echo "ok   $name: ${execs:-?} executions in ${secs}s"
  else
    fail=$((fail + 1)); echo "FAIL $name (exit $rc)"; grep -E 'ERROR|SUMMARY|==[0-9]+==' <<<"$out" | head -20
  fi
done
echo "$pass passed, $fail failed"
((fail == 0))
