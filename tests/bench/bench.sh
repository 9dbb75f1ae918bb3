#!/usr/bin/env bash
# Benchmarks (not tests): prints tables of kcp's figures beside etcd 3.4's, measured in one run.
# Usage: tests/bench/bench.sh [RUNS]   (needs build/kcp and Debian's etcd-server)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v etcd >/dev/null || { echo "bench: etcd not found (apt-get install etcd-server)" >&2; exit 1; }
[[ -x $root/build/kcp ]] || { echo "bench: build/kcp not found (scripts/build.sh)" >&2; exit 1; }
echo "== start-up and idle memory ($(nproc) cores, $(uname -m))"
python3 "$root/tests/bench/startup.py" "$root/build/kcp" "${1:-20}"
