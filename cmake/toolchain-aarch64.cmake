# CMake toolchain file: cross-compile for aarch64 Linux on a Debian amd64 host.
#
# Needs gcc-aarch64-linux-gnu, and the arm64 -dev packages installed through Debian multiarch
# (dpkg --add-architecture arm64), which put libraries in /usr/lib/aarch64-linux-gnu and
# arch-specific headers in /usr/include/aarch64-linux-gnu; scripts/build-aarch64.sh installs
# them. Used for kcp itself and for the libraries scripts/deps-src.sh builds.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_AR aarch64-linux-gnu-ar CACHE FILEPATH "")
set(CMAKE_RANLIB aarch64-linux-gnu-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP aarch64-linux-gnu-strip CACHE FILEPATH "")

# Search only aarch64 locations, never the host's. CMake keeps a search path that lies inside
# a root as it is and moves every other path under each root, so with these roots:
#   the kcp-deps prefix             libgit2 and libwebsockets from scripts/deps-src.sh
#   /usr/aarch64-linux-gnu          the cross C library (libc6-dev-arm64-cross)
#   /usr/lib/aarch64-linux-gnu      multiarch arm64 libraries, searched via CMAKE_LIBRARY_PATH
#   /usr/include                    headers: arm64-specific ones in its aarch64-linux-gnu/,
#                                   arch-independent ones (uv.h, lmdb.h, mbedtls/) at the top
# /usr/lib/x86_64-linux-gnu and /usr/local/lib stay out of reach.
if(KCP_DEPS_PREFIX)
  set(_kcp_deps_prefix "${KCP_DEPS_PREFIX}")
elseif(DEFINED ENV{KCP_DEPS_PREFIX})
  set(_kcp_deps_prefix "$ENV{KCP_DEPS_PREFIX}")
else()
  set(_kcp_deps_prefix "$ENV{HOME}/.cache/kcp-deps/aarch64")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KCP_DEPS_PREFIX)
set(CMAKE_FIND_ROOT_PATH
  ${_kcp_deps_prefix} /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/include)
set(CMAKE_LIBRARY_PATH /usr/lib/aarch64-linux-gnu)
set(CMAKE_INCLUDE_PATH /usr/include/aarch64-linux-gnu /usr/include)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must report arm64 .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "${_kcp_deps_prefix}/lib/pkgconfig")

# try_run() and ctest run aarch64 programs under qemu when it is installed.
find_program(KCP_QEMU_AARCH64 qemu-aarch64-static qemu-aarch64)
if(KCP_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${KCP_QEMU_AARCH64})
endif()
