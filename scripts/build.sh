#!/usr/bin/env bash
# Builds kcp. Usage: scripts/build.sh [release|asan|fuzz] (default release).
#   release  build/kcp, static, stripped size printed, with unit tests
#   asan     build-asan/, AddressSanitizer + UBSan, dynamic, unit tests only
#   fuzz     build-fuzz/, clang + libFuzzer drivers
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-release}
jobs=$(nproc)
case $kind in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release -DKCP_STATIC=ON -DKCP_WERROR=ON) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DKCP_SANITIZE=ON -DKCP_WERROR=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=Debug -DKCP_FUZZ=ON -DKCP_TESTS=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
cmake -S "$root" -B "$root/$dir" "${args[@]}" >/dev/null
cmake --build "$root/$dir" -j "$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^Consolidate|^-- ' || true
test -x "$root/$dir/kcp" || { echo "build: $dir/kcp was not built" >&2; exit 1; }
