#!/usr/bin/env bash
# Cross-builds build-aarch64/kcp, a static aarch64 binary, on a Debian 12 amd64 host.
#
# usage: scripts/build-aarch64.sh [--deps-only] [-DNAME=VALUE...]
#   --deps-only   install the cross toolchain and build the arm64 libraries, but not kcp
#   -D...         passed on to the cmake configure step, after the script's own; so
#                 -DKCP_TESTS=ON builds the unit tests too, and `ctest --test-dir build-aarch64`
#                 runs them under qemu (the toolchain file sets CMAKE_CROSSCOMPILING_EMULATOR)
#
# Steps, each idempotent: enable the arm64 architecture in dpkg; install the cross compiler,
# qemu and the arm64 -dev packages kcp links; build libgit2 and libwebsockets for arm64
# (scripts/deps-src.sh arm64) into ${KCP_DEPS_PREFIX_AARCH64:-$HOME/.cache/kcp-deps/aarch64};
# configure kcp with cmake/toolchain-aarch64.cmake into build-aarch64/ and build it; check that
# the result is a statically linked aarch64 executable. scripts/test-aarch64.sh runs it under
# qemu. Run as root or with sudo available.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

deps_only=0
cmake_args=()
for a in "$@"; do
  case $a in
    --deps-only) deps_only=1 ;;
    -D*) cmake_args+=("$a") ;;
    *) echo "usage: scripts/build-aarch64.sh [--deps-only] [-DNAME=VALUE...]" >&2; exit 2 ;;
  esac
done

SUDO=
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
log() { echo "build-aarch64: $*"; }
die() { echo "build-aarch64: $*" >&2; exit 1; }

# Host tools (the build runs protoc-c, compiles llhttp's sources, unpacks Debian sources) and the
# cross toolchain. libhttp-parser-dev is deliberately absent: it cannot be installed for two
# architectures at once, and scripts/deps-src.sh compiles http-parser into libgit2 instead.
host_packages=(
  build-essential cmake pkg-config file dpkg-dev protobuf-c-compiler node-llhttp
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu qemu-user-static
)
# What kcp and the source-built libraries link, for arm64 (through Debian multiarch); cmocka
# only for the unit tests.
arm64_packages=(
  libuv1-dev:arm64 libmbedtls-dev:arm64 liblmdb-dev:arm64 libprotobuf-c-dev:arm64
  libjansson-dev:arm64 zlib1g-dev:arm64 libc6-dev:arm64 libcmocka-dev:arm64
)

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

install_cross_deps() {
  local updated=0 missing=() p
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "enabling the arm64 architecture in dpkg"
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq
    updated=1
  fi
  for p in "${host_packages[@]}" "${arm64_packages[@]}"; do installed "$p" || missing+=("$p"); done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    ((updated)) || $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"
  fi
}

t0=$SECONDS
install_cross_deps
log "cross toolchain and arm64 packages ready ($((SECONDS - t0)) s)"

prefix=${KCP_DEPS_PREFIX_AARCH64:-$HOME/.cache/kcp-deps/aarch64}
t1=$SECONDS
KCP_DEPS_PREFIX=$prefix "$here/deps-src.sh" arm64
log "arm64 libraries ready in $prefix ($((SECONDS - t1)) s)"
((deps_only)) && exit 0

build=$repo/build-aarch64
t2=$SECONDS
cmake -S "$repo" -B "$build" \
  -DCMAKE_TOOLCHAIN_FILE="$repo/cmake/toolchain-aarch64.cmake" \
  -DKCP_DEPS_PREFIX="$prefix" -DKCP_STATIC=ON -DKCP_TESTS=OFF "${cmake_args[@]}"
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)"
log "kcp configured and built in $((SECONDS - t2)) s"

bin=$build/kcp
[[ -x $bin ]] || die "$bin was not produced"
desc=$(file -b "$bin")
echo "$bin: $desc"
echo "$bin: $(stat -c %s "$bin") bytes$([[ -f $build/kcp.stripped ]] &&
  echo ", stripped $(stat -c %s "$build/kcp.stripped") bytes")"
[[ $desc == *"ARM aarch64"* ]] || die "$bin is not an aarch64 executable"
[[ $desc == *"statically linked"* ]] || die "$bin is not statically linked"
log "ok"
