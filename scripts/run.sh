#!/usr/bin/env bash
# README command 1: install what is missing, build, and run a one-node cluster in ./data.
# Extra arguments go to `kcp server` (e.g. --listen 0.0.0.0:6443).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
scripts/build.sh release
data=${KCP_DATA_DIR:-$root/data}
echo "kcp: starting; the kubeconfig will be at $data/kubeconfig"
echo "kcp: try: kubectl --kubeconfig $data/kubeconfig get --raw /readyz"
exec "$root/build/kcp" server --init --data-dir "$data" --listen "${KCP_LISTEN:-127.0.0.1:6443}" "$@"
