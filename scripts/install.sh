#!/usr/bin/env bash
# Installs build/kcp as /usr/local/bin/kcp with its systemd unit and starts it.
# Usage: sudo scripts/install.sh [path/to/kcp]   (default: build/kcp, or build-aarch64/kcp on arm64)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
if [[ -z $bin ]]; then
  case $(uname -m) in aarch64) bin=$root/build-aarch64/kcp ;; *) bin=$root/build/kcp ;; esac
  [[ -x $bin ]] || bin=$root/build/kcp
fi
[[ -x $bin ]] || { echo "install: $bin not found; build first (scripts/build.sh)" >&2; exit 1; }
"$bin" version >/dev/null || { echo "install: $bin does not run on this machine" >&2; exit 1; }
install -m 0755 "$bin" /usr/local/bin/kcp
install -m 0644 "$root/scripts/kcp.service" /etc/systemd/system/kcp.service
systemctl daemon-reload
systemctl enable --now kcp.service
echo "install: kcp is running; kubeconfig at /var/lib/kcp/kubeconfig"
echo "install: kubectl --kubeconfig /var/lib/kcp/kubeconfig get --raw /readyz"
