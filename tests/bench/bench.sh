#!/usr/bin/env bash
# Benchmarks (not tests): prints tables of kcp's figures beside etcd 3.4's, measured in one run.
# Usage: tests/bench/bench.sh [RUNS]        RUNS: start-ups per median (default 20; QUICK: 3)
# Environment:
#   KCP=path      the kcp binary (default build/kcp; e.g. KCP=build-release/kcp)
#   QUICK=1       smaller counts, about a minute instead of about ten
#   ONLY=a,b      only these tables: startup, rw, list, watch, disk
#   ETCD_TLS=1    etcd over HTTPS with client certificates too (default: plain HTTP, as its
#                 gateway is usually benchmarked)
#   BENCH_DIR=dir where the servers' data directories go (default $TMPDIR or /tmp; a real disk)
#   KCP_HISTORY=off  is passed on to kcp (its git history recorder off), like the rest of the
#                 environment
# Needs Debian's etcd-server, libmbedtls-dev and a C compiler; loopback only; every server it
# starts is stopped before it exits. See docs/BENCHMARKS.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kcp=${KCP:-$root/build/kcp}
quick=${QUICK:-0}
[[ $quick == 0 ]] && quick=
runs=${1:-$([[ -n $quick ]] && echo 3 || echo 20)}
only=${ONLY:-}
fail() { echo "bench: $*" >&2; exit 1; }
command -v etcd >/dev/null || fail "etcd not found (apt-get install etcd-server)"
[[ -x $kcp ]] || fail "$kcp not found (scripts/build.sh, or set KCP=)"
[[ -f /usr/include/mbedtls/ssl.h ]] || fail "mbedTLS headers not found (apt-get install libmbedtls-dev)"

# The load generator is built here with cc against Debian's mbedTLS (not part of the kcp build).
bin=${BENCH_BIN:-${TMPDIR:-/tmp}/kcp-bench-bin}
mkdir -p "$bin"
if [[ ! -x $bin/loadgen || $root/tests/bench/loadgen.c -nt $bin/loadgen ]]; then
  ${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
    -Wno-unused-parameter -Werror -o "$bin/loadgen" "$root/tests/bench/loadgen.c" \
    -lmbedtls -lmbedx509 -lmbedcrypto -lpthread -lm
fi

# 1000 watchers hold 1000 sockets in the load generator.
if (( $(ulimit -n) < 4096 )); then
  ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

want() { [[ -z $only || ,$only, == *,$1,* ]]; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
mem=$(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)
etcd_ver=$(etcd --version 2>/dev/null | head -1 | sed 's/^etcd Version: //')
etcd_how="plain HTTP"
[[ ${ETCD_TLS:-0} != 0 ]] && etcd_how="HTTPS with client certificates"
echo "== machine: $(nproc) cores, $cpu, $(uname -sr), $mem"
echo "   kcp: $("$kcp" version 2>/dev/null | head -1) ($kcp)"
echo "   etcd: $etcd_ver, over $etcd_how"
[[ -n ${KCP_HISTORY:-} ]] && echo "   KCP_HISTORY=$KCP_HISTORY in kcp's environment"
echo "   mode: $([[ -n $quick ]] && echo QUICK || echo full); started $(date -u +%Y-%m-%dT%H:%M:%SZ);"\
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "   WARNING: the machine is busy (load average above 0.5): other processes share the cores"
fi
t0=$SECONDS
if want startup; then
  echo
  echo "== start-up and idle memory ($(nproc) cores, $(uname -m))"
  python3 "$root/tests/bench/startup.py" "$kcp" "$runs"
fi
names=()
for b in rw list watch disk; do want $b && names+=("$b"); done
if (( ${#names[@]} )); then
  python3 "$root/tests/bench/api.py" "$kcp" "$bin/loadgen" ${quick:+--quick} \
    --only "$(IFS=,; echo "${names[*]}")"
fi
echo
echo "== done in $((SECONDS - t0)) s"
