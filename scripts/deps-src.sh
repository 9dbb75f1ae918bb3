#!/usr/bin/env bash
# Builds the static libgit2 and libwebsockets kcp links, from pinned Debian source packages.
#
# usage: scripts/deps-src.sh [amd64|arm64]       (default amd64)
#
# Debian's libgit2.a needs Kerberos (gss_*) to link, and its libwebsockets uses OpenSSL and
# loads libuv support as a plugin; neither fits a static binary. So this script fetches each
# library's Debian source package with `apt-get source`, checks it against the sha256 sums
# pinned below, applies Debian's patches (dpkg-source) and builds just what kcp needs:
#   libgit2 1.5      no HTTPS, SSH, GSSAPI or NTLM; regcomp regex; system zlib; http-parser from
#                    Debian's http-parser source compiled into libgit2.a
#                    (third_party/libgit2-http-parser.cmake)
#   libwebsockets    mbedTLS, libuv compiled in (no event-lib plugins), static only
# The results go to ${KCP_DEPS_PREFIX:-$HOME/.cache/kcp-deps/<x86_64|aarch64>}, where
# cmake/KcpDeps.cmake looks; downloads and build trees to
# ${KCP_DEPS_SRC:-$HOME/.cache/kcp-deps/src}. A stamp per library in <prefix>/share/kcp-deps/
# skips a library already built with the same pins and options.
#
# Needs cmake, dpkg-dev, gcc, and zlib1g-dev, libmbedtls-dev and libuv1-dev for the target
# architecture (scripts/deps.sh installs the amd64 ones, scripts/build-aarch64.sh the arm64
# ones and gcc-aarch64-linux-gnu). If no deb-src entry offers the pinned versions, it adds one
# (/etc/apt/sources.list.d/kcp-deb-src.sources) copied from the system's Debian deb entries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

# --- Pins: Debian source package versions and the sha256 of every file apt-get source fetches.
# To move a pin, change the version, run `apt-get source --download-only PKG=VERSION` and
# replace the sums with the new files' sha256sum.
LIBGIT2_VERSION=1.5.1+ds-1+deb12u1
LIBGIT2_SHA256="\
96369433500bb528f036c16be9921bd437c098b745f1aaeccb91290815518970  libgit2_1.5.1+ds.orig.tar.xz
e869077309d8fa0bc56701970af7c6908d02674a89271f7cb29cb31814b69382  libgit2_1.5.1+ds-1+deb12u1.debian.tar.xz
b4de836d38cb2aca2687420754c5fa955f719934b92a4213d787d0b7dc2abebf  libgit2_1.5.1+ds-1+deb12u1.dsc"

HTTP_PARSER_VERSION=2.9.4-5
HTTP_PARSER_SHA256="\
467b9e30fd0979ee301065e70f637d525c28193449e1b13fbcb1b1fab3ad224f  http-parser_2.9.4.orig.tar.gz
2e7306f26c7edcd5c236a32e574c3e4bbb77638917e1b7762ee072194a688682  http-parser_2.9.4-5.debian.tar.xz
3ef34ef3eb1889482a790b5f1db2ed1aa5736da3bd3a04954fe5dfce4c0035f8  http-parser_2.9.4-5.dsc"

LWS_VERSION=4.1.6-3
LWS_SHA256="\
402e9a8df553c9cd2aff5d7a9758e9e5285bf3070c82539082864633db3deb83  libwebsockets_4.1.6.orig.tar.gz
8f141b844dcabdcae8ca7bc62b772ad071e73e3c77533cfc62519a8841cf1f5e  libwebsockets_4.1.6-3.debian.tar.xz
5084ff62d072edd9f4d6740979cea07bf9a23c72ed8c869a5c2c1b51466c435d  libwebsockets_4.1.6-3.dsc"

# --- Build options. Changing them changes the stamp, so the next run rebuilds.
# -ffunction-sections/-fdata-sections let a --gc-sections link drop the unused parts.
COMMON_CFLAGS="-O2 -g0 -ffunction-sections -fdata-sections"
LIBGIT2_OPTIONS=(
  -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTS=OFF -DBUILD_CLI=OFF -DBUILD_EXAMPLES=OFF
  -DBUILD_FUZZERS=OFF
  -DUSE_HTTPS=OFF -DUSE_SSH=OFF -DUSE_GSSAPI=OFF -DUSE_NTLMCLIENT=OFF
  -DUSE_SHA1=CollisionDetection -DUSE_SHA256=Builtin
  -DUSE_HTTP_PARSER=builtin -DREGEX_BACKEND=regcomp -DUSE_BUNDLED_ZLIB=OFF
  -DUSE_THREADS=ON -DUSE_NSEC=ON -DENABLE_REPRODUCIBLE_BUILDS=ON
)
LWS_OPTIONS=(
  -DLWS_WITH_SHARED=OFF -DLWS_WITH_STATIC=ON -DLWS_STATIC_PIC=OFF
  -DLWS_WITH_SSL=ON -DLWS_WITH_MBEDTLS=ON
  -DLWS_WITH_LIBUV=ON -DLWS_WITH_EVLIB_PLUGINS=OFF
  -DLWS_IPV6=ON -DLWS_WITH_HTTP2=ON
  -DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF
  -DLWS_WITH_PLUGINS=OFF -DLWS_WITH_LWSWS=OFF -DLWS_WITH_ZLIB=OFF -DLWS_WITHOUT_EXTENSIONS=ON
  -DLWS_WITH_SYS_ASYNC_DNS=OFF -DLWS_WITH_SECURE_STREAMS=OFF -DLWS_WITH_EXTERNAL_POLL=OFF
  -DDISABLE_WERROR=ON
  # No `git describe`, user or host name in the library: lws_get_library_version() says
  # "4.1.6-3", the Debian version it was built from.
  -DCMAKE_DISABLE_FIND_PACKAGE_Git=ON -DLWS_REPRODUCIBLE=ON -DLWS_BUILD_HASH="${LWS_VERSION##*-}"
)

die() { echo "deps-src: $*" >&2; exit 1; }
log() { echo "deps-src: $*"; }

arch=${1:-amd64}
case $arch in
  amd64) processor=x86_64 toolchain=() ;;
  arm64) processor=aarch64 toolchain=(-DCMAKE_TOOLCHAIN_FILE="$repo/cmake/toolchain-aarch64.cmake") ;;
  *) die "unknown architecture '$arch' (amd64 or arm64)" ;;
esac
prefix=${KCP_DEPS_PREFIX:-$HOME/.cache/kcp-deps/$processor}
srcroot=${KCP_DEPS_SRC:-$HOME/.cache/kcp-deps/src}
jobs=$(nproc 2>/dev/null || echo 2)

SUDO=
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
# apt-get source as root downloads as the _apt user, which cannot write into a home directory.
APT_SRC=(apt-get source --download-only -qq)
if [[ $(id -u) == 0 ]]; then APT_SRC+=(-o APT::Sandbox::User=root); fi

check_prereqs() {
  local missing=() p
  for p in cmake dpkg-source; do command -v "$p" >/dev/null || missing+=("$p"); done
  if [[ $arch == arm64 ]]; then
    command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
  fi
  for p in zlib1g-dev libmbedtls-dev libuv1-dev; do
    [[ $(dpkg-query -W -f='${Status}' "$p:$arch" 2>/dev/null) == "install ok installed" ]] ||
      missing+=("$p:$arch")
  done
  ((${#missing[@]} == 0)) ||
    die "missing ${missing[*]}; run scripts/deps.sh (amd64) or scripts/build-aarch64.sh (arm64)"
}

# Adds deb-src entries mirroring the system's Debian deb entries (same URIs, suites, components
# and keyring), so `apt-get source` can find the pinned versions. Writes nothing if the system
# has no Debian deb entries; the caller then reports the missing source package.
enable_deb_src() {
  local out=/etc/apt/sources.list.d/kcp-deb-src.sources text=
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    # deb822: copy each enabled stanza whose Types include "deb", as Types: deb-src.
    text=$(awk '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; enabled = "yes"; keep = ""; field = ""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          if (line ~ /^[ \t]/) { if (field != "") keep = keep "\n" line; continue }
          split(line, kv, ":"); field = ""
          if (kv[1] == "Types") { types = " " substr(line, 7) " " }
          else if (kv[1] == "Enabled") { enabled = substr(line, 9); gsub(/[ \t]/, "", enabled) }
          else if (kv[1] ~ /^(URIs|Suites|Components|Signed-By)$/) {
            field = kv[1]; keep = keep "\n" line
          }
        }
        if (types ~ /[ \t]deb[ \t]/ && enabled != "no" && keep != "") {
          if (n++) printf "\n"
          printf "Types: deb-src%s\n", keep
        }
      }' /etc/apt/sources.list.d/debian.sources)
  elif [[ -f /etc/apt/sources.list ]]; then
    out=/etc/apt/sources.list.d/kcp-deb-src.list
    text=$(sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list)
  fi
  [[ -n $text ]] || return 0
  log "adding deb-src entries ($out)"
  printf '# Written by kcp scripts/deps-src.sh: deb-src twins of the Debian deb entries.\n%s\n' \
    "$text" | $SUDO tee "$out" >/dev/null
  $SUDO apt-get update -qq
}

has_source() {
  local versions
  versions=$(apt-cache showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p')
  grep -qxF -- "$2" <<<"$versions"
}

# fetch PKG VERSION SUMS: downloads PKG=VERSION's source files into $srcroot/dl unless the
# pinned files are there already, and checks every file against SUMS ("sha256  file" lines).
fetch() {
  local pkg=$1 version=$2 sums=$3 dl=$srcroot/dl
  mkdir -p "$dl"
  if (cd "$dl" && sha256sum --quiet -c - <<<"$sums") >/dev/null 2>&1; then return 0; fi
  if ! has_source "$pkg" "$version"; then
    [[ -e /etc/apt/sources.list.d/kcp-deb-src.sources || -e /etc/apt/sources.list.d/kcp-deb-src.list ]] ||
      enable_deb_src
    has_source "$pkg" "$version" || $SUDO apt-get update -qq
    has_source "$pkg" "$version" ||
      die "source package $pkg=$version is not offered by the apt sources; if Debian replaced" \
        "it, update the pin (version and sha256 sums) at the top of scripts/deps-src.sh"
  fi
  log "downloading $pkg $version"
  (cd "$dl" && "${APT_SRC[@]}" "$pkg=$version") || die "apt-get source $pkg=$version failed"
  (cd "$dl" && sha256sum --quiet -c - <<<"$sums") ||
    die "$pkg $version: downloaded files do not match the pinned sha256 sums"
}

# unpack PKG VERSION: extracts the checked source package, with Debian's patches applied, into
# $srcroot/PKG-VERSION (once) and prints that directory.
unpack() {
  local pkg=$1 version=$2 dir=$srcroot/$1-$2
  if [[ ! -f $dir/.kcp-unpacked ]]; then
    rm -rf "$dir"
    # The .dsc's OpenPGP signature cannot be checked without debian-keyring, so dpkg-source
    # warns; the pinned sums above (and apt's signed index) vouch for the files instead.
    dpkg-source --no-copy -x "$srcroot/dl/${pkg}_${version#*:}.dsc" "$dir" >"$dir.unpack.log" 2>&1 ||
      { cat "$dir.unpack.log" >&2; die "dpkg-source -x $pkg $version failed"; }
    touch "$dir/.kcp-unpacked"
  fi
  echo "$dir"
}

# cmake_build NAME SRC OPTIONS...: configures, builds and installs into $prefix.
cmake_build() {
  local name=$1 src=$2 build=$srcroot/build/$1-$arch
  shift 2
  rm -rf "$build"
  mkdir -p "$srcroot/build"
  cmake -S "$src" -B "$build" -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$COMMON_CFLAGS" \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DKCP_DEPS_PREFIX="$prefix" "${toolchain[@]}" "$@" >"$build.configure.log" 2>&1 ||
    { tail -n 30 "$build.configure.log" >&2; die "$name: cmake configure failed (log: $build.configure.log)"; }
  cmake --build "$build" -j "$jobs" >"$build.build.log" 2>&1 ||
    { tail -n 30 "$build.build.log" >&2; die "$name: build failed (log: $build.build.log)"; }
  cmake --install "$build" >"$build.install.log" 2>&1 ||
    { tail -n 30 "$build.install.log" >&2; die "$name: install failed (log: $build.install.log)"; }
}

# stamp NAME TEXT...: the recipe a library was built from; built NAME tells whether it matches.
stamp_text() {
  local toolchain_sum=none
  if ((${#toolchain[@]})); then toolchain_sum=$(sha256sum <"$repo/cmake/toolchain-aarch64.cmake" | cut -c1-16); fi
  printf '%s\n' "$@" "cflags $COMMON_CFLAGS" "toolchain $toolchain_sum"
}
built() {
  local name=$1 archive=$2
  shift 2
  [[ -f $prefix/lib/$archive && -f $prefix/share/kcp-deps/$name.stamp ]] &&
    [[ $(cat "$prefix/share/kcp-deps/$name.stamp") == "$(stamp_text "$@")" ]]
}
write_stamp() {
  local name=$1
  shift
  mkdir -p "$prefix/share/kcp-deps"
  stamp_text "$@" >"$prefix/share/kcp-deps/$name.stamp"
}

build_libgit2() {
  local recipe=("libgit2 $LIBGIT2_VERSION" "$LIBGIT2_SHA256" "http-parser $HTTP_PARSER_VERSION"
    "$HTTP_PARSER_SHA256" "${LIBGIT2_OPTIONS[*]}"
    "glue $(sha256sum <"$repo/third_party/libgit2-http-parser.cmake" | cut -c1-16)")
  if built libgit2 libgit2.a "${recipe[@]}"; then
    log "libgit2 $LIBGIT2_VERSION already in $prefix"
    return 0
  fi
  fetch libgit2 "$LIBGIT2_VERSION" "$LIBGIT2_SHA256"
  fetch http-parser "$HTTP_PARSER_VERSION" "$HTTP_PARSER_SHA256"
  local src hp
  src=$(unpack libgit2 "$LIBGIT2_VERSION")
  hp=$(unpack http-parser "$HTTP_PARSER_VERSION")
  # Debian removed libgit2's deps/; put its own http-parser where libgit2's "builtin" looks.
  mkdir -p "$src/deps/http-parser"
  cp "$hp/http_parser.c" "$hp/http_parser.h" "$src/deps/http-parser/"
  cp "$repo/third_party/libgit2-http-parser.cmake" "$src/deps/http-parser/CMakeLists.txt"
  rm -rf "$prefix/include/git2" "$prefix/include/git2.h" "$prefix/lib/libgit2.a"
  local t0=$SECONDS
  log "building libgit2 $LIBGIT2_VERSION for $arch"
  cmake_build libgit2 "$src" "${LIBGIT2_OPTIONS[@]}"
  write_stamp libgit2 "${recipe[@]}"
  log "libgit2 built in $((SECONDS - t0)) s"
}

build_libwebsockets() {
  local recipe=("libwebsockets $LWS_VERSION" "$LWS_SHA256" "${LWS_OPTIONS[*]}")
  if built libwebsockets libwebsockets.a "${recipe[@]}"; then
    log "libwebsockets $LWS_VERSION already in $prefix"
    return 0
  fi
  fetch libwebsockets "$LWS_VERSION" "$LWS_SHA256"
  local src
  src=$(unpack libwebsockets "$LWS_VERSION")
  rm -rf "$prefix/include/libwebsockets" "$prefix/include/libwebsockets.h" \
    "$prefix/include/lws_config.h" "$prefix/lib/libwebsockets.a"
  local t0=$SECONDS
  log "building libwebsockets $LWS_VERSION for $arch"
  cmake_build libwebsockets "$src" "${LWS_OPTIONS[@]}"
  write_stamp libwebsockets "${recipe[@]}"
  log "libwebsockets built in $((SECONDS - t0)) s"
}

check_prereqs
mkdir -p "$prefix" "$srcroot"
build_libgit2
build_libwebsockets
log "$arch libraries ready in $prefix"
