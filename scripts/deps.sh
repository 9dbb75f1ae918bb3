#!/usr/bin/env bash
# Installs everything kcp needs to build and test on Debian 12, then builds the libraries that
# Debian ships without a usable static archive (scripts/deps-src.sh). Idempotent; run as root
# (or with sudo available).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SUDO=
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi

packages=(
  build-essential cmake pkg-config git python3 curl ca-certificates file
  clang llvm lld
  libuv1-dev libmbedtls-dev liblmdb-dev lmdb-utils libprotobuf-c-dev protobuf-c-compiler
  libjansson-dev libcmocka-dev node-llhttp zlib1g-dev libhttp-parser-dev
  dpkg-dev
  etcd-server etcd-client
)
if [[ ${KCP_DEPS_AARCH64:-0} == 1 ]]; then
  packages+=(qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v kubectl >/dev/null; then
  # kubectl is not in Debian 12's archive; the machines this project runs on ship it. Say so
  # plainly rather than fetch a binary from elsewhere.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kubectl 2>/dev/null || {
    echo "deps: kubectl not found on PATH and not installable from the configured apt sources;" >&2
    echo "deps: install kubectl 1.32 and run again" >&2
    exit 1
  }
fi

"$here/deps-src.sh" "${KCP_DEPS_ARCH:-$(dpkg --print-architecture)}"
