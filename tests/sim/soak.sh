#!/usr/bin/env bash
# Raft simulation soak: many more seeded schedules than CI's sim.random, on every core.
# Usage: tests/sim/soak.sh BUILD_DIR [SCHEDULES] [SECONDS] [BASE_SEED]
#   SCHEDULES  total schedules (default 1000000), split across $(nproc) workers
#   SECONDS    stop starting schedules after this long (default 3600); 0 = no bound
#   BASE_SEED  first seed (default: from the clock, printed); worker i takes its own range
#   KCP_SIM_STEPS, KCP_SIM_TRACE pass through to sim_random.
# A failure prints its seed; replay it alone with: KCP_SEED=<seed> BUILD_DIR/.../sim_random
set -u
build=${1:?usage: soak.sh BUILD_DIR [SCHEDULES] [SECONDS] [BASE_SEED]}
total=${2:-1000000} secs=${3:-3600} base=${4:-$(date +%s)000}
bin=$(find "$build" -type f -name sim_random -perm -u+x | head -1)
[[ -n $bin ]] || { echo "soak: no sim_random in $build"; exit 1; }
workers=$(nproc)
per=$(( (total + workers - 1) / workers ))
work=$(mktemp -d /tmp/kcp-soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "soak: $total schedules on $workers workers from seed $base, at most ${secs}s ($bin)"
pids=()
for ((i = 0; i < workers; i++)); do
  KCP_SIM_SCHEDULES=$per KCP_SIM_BASE_SEED=$((base + i * per)) KCP_SIM_SECONDS=$secs \
    "$bin" >"$work/$i.out" 2>"$work/$i.err" &
  pids+=($!)
done
fail=0
for ((i = 0; i < workers; i++)); do
  wait "${pids[$i]}" || fail=1
  cut -c1-160 "$work/$i.out"
  grep -E 'FAILED|replay' "$work/$i.err"
done
done_n=$(grep -ohE '^sim.random: [0-9]+' "$work"/*.out | awk '{s += $2} END {print s + 0}')
if ((fail)); then
  echo "soak: FAILED after $done_n schedules (see the seed above)"
  exit 1
fi
echo "soak: $done_n schedules passed"
