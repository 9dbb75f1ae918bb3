#!/usr/bin/env bash
# Benchmark (not a test): a 3-member kcp cluster beside a 3-member etcd 3.4 cluster, one run.
# Usage: tests/bench/ha.sh [RUNS]            RUNS: fresh clusters per median (default 3; QUICK: 1)
# Environment:
#   KCP=path      the kcp binary (default build/kcp)
#   QUICK=1       one run of 2 s per case, about a minute instead of about five
#   ETCD_TLS=1    etcd's clients over HTTPS with client certificates too (peers stay plain HTTP)
#   BENCH_DIR=dir where the data directories go (default $TMPDIR or /tmp; a real disk)
# Prints write throughput and p50/p99 latency at 1 and 64 clients, bytes written to disk per
# entry summed over the 3 members, and server CPU per entry. Needs Debian's etcd-server,
# libmbedtls-dev and a C compiler; loopback only; every server it starts is stopped before it
# exits. See docs/BENCHMARKS.md, "3-member cluster".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kcp=${KCP:-$root/build/kcp}
quick=${QUICK:-0}
[[ $quick == 0 ]] && quick=
runs=${1:-$([[ -n $quick ]] && echo 1 || echo 3)}
fail() { echo "bench: $*" >&2; exit 1; }
command -v etcd >/dev/null || fail "etcd not found (apt-get install etcd-server)"
[[ -x $kcp ]] || fail "$kcp not found (scripts/build.sh, or set KCP=)"
[[ -f /usr/include/mbedtls/ssl.h ]] || fail "mbedTLS headers not found (apt-get install libmbedtls-dev)"
kcp=$(cd "$(dirname "$kcp")" && pwd)/$(basename "$kcp")

# The load generator, built as bench.sh builds it (shared with it).
bin=${BENCH_BIN:-${TMPDIR:-/tmp}/kcp-bench-bin}
mkdir -p "$bin"
if [[ ! -x $bin/loadgen || $root/tests/bench/loadgen.c -nt $bin/loadgen ]]; then
  ${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
    -Wno-unused-parameter -Werror -o "$bin/loadgen" "$root/tests/bench/loadgen.c" \
    -lmbedtls -lmbedx509 -lmbedcrypto -lpthread -lm
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
mem=$(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)
echo "== machine: $(nproc) cores, $cpu, $(uname -sr), $mem"
echo "   kcp: $("$kcp" version 2>/dev/null | head -1) ($kcp)"
echo "   etcd: $(etcd --version 2>/dev/null | head -1 | sed 's/^etcd Version: //'), 3 members"
echo "   mode: $([[ -n $quick ]] && echo QUICK || echo full), $runs run(s); started"\
  "$(date -u +%Y-%m-%dT%H:%M:%SZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "   WARNING: the machine is busy (load average above 0.5): other processes share the cores"
fi
python3 "$root/tests/bench/ha.py" "$kcp" "$bin/loadgen" ${quick:+--quick} --runs "$runs"
