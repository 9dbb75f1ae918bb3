# Imported targets for the third-party libraries (see third_party/README.md).
# Debian's packages provide libuv, mbedTLS, LMDB, protobuf-c, jansson, cmocka and the llhttp
# C sources; scripts/deps.sh builds libgit2 and libwebsockets from their Debian source packages
# into KCP_DEPS_PREFIX, outside the source tree.
set(KCP_DEPS_PREFIX "$ENV{KCP_DEPS_PREFIX}" CACHE PATH "Prefix of the libraries scripts/deps.sh builds")
if(NOT KCP_DEPS_PREFIX)
  set(KCP_DEPS_PREFIX "$ENV{HOME}/.cache/kcp-deps/${CMAKE_SYSTEM_PROCESSOR}")
endif()
set(KCP_LLHTTP_DIR "/usr/share/llhttp" CACHE PATH "llhttp C sources (Debian's node-llhttp)")
set(KCP_LLHTTP_INCLUDE "/usr/share/include/llhttp" CACHE PATH "llhttp header")

# kcp_find_dep(TARGET HEADER LIBNAMES...): prefer the static archive when KCP_STATIC.
function(kcp_find_dep target header)
  set(names ${ARGN})
  if(KCP_STATIC)
    set(saved ${CMAKE_FIND_LIBRARY_SUFFIXES})
    set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
  endif()
  find_library(KCP_LIB_${target} NAMES ${names} HINTS ${KCP_DEPS_PREFIX}/lib NO_CACHE)
  find_path(KCP_INC_${target} ${header} HINTS ${KCP_DEPS_PREFIX}/include NO_CACHE)
  if(KCP_STATIC)
    set(CMAKE_FIND_LIBRARY_SUFFIXES ${saved})
  endif()
  if(NOT KCP_LIB_${target} OR NOT KCP_INC_${target})
    message(FATAL_ERROR "kcp: ${target} not found (${names}); run scripts/deps.sh")
  endif()
  add_library(dep::${target} UNKNOWN IMPORTED GLOBAL)
  set_target_properties(dep::${target} PROPERTIES
    IMPORTED_LOCATION ${KCP_LIB_${target}}
    INTERFACE_INCLUDE_DIRECTORIES ${KCP_INC_${target}})
endfunction()

find_package(Threads REQUIRED)
kcp_find_dep(uv uv.h uv_a uv)
target_link_libraries(dep::uv INTERFACE Threads::Threads dl)
kcp_find_dep(mbedcrypto mbedtls/version.h mbedcrypto)
kcp_find_dep(mbedx509 mbedtls/x509_crt.h mbedx509)
target_link_libraries(dep::mbedx509 INTERFACE dep::mbedcrypto)
kcp_find_dep(mbedtls mbedtls/ssl.h mbedtls)
target_link_libraries(dep::mbedtls INTERFACE dep::mbedx509)
kcp_find_dep(lmdb lmdb.h lmdb)
target_link_libraries(dep::lmdb INTERFACE Threads::Threads)
kcp_find_dep(jansson jansson.h jansson)
kcp_find_dep(protobufc protobuf-c/protobuf-c.h protobuf-c)
kcp_find_dep(git2 git2.h git2)
kcp_find_dep(websockets libwebsockets.h websockets)
target_link_libraries(dep::websockets INTERFACE dep::mbedtls dep::uv)
find_library(KCP_LIB_z NAMES libz.a z)
target_link_libraries(dep::git2 INTERFACE ${KCP_LIB_z} Threads::Threads)

# llhttp: compiled from the generated C sources Debian's node-llhttp installs.
if(NOT EXISTS ${KCP_LLHTTP_DIR}/llhttp.c)
  message(FATAL_ERROR "kcp: llhttp sources not found in ${KCP_LLHTTP_DIR}; run scripts/deps.sh")
endif()
add_library(kcp_llhttp STATIC
  ${KCP_LLHTTP_DIR}/llhttp.c ${KCP_LLHTTP_DIR}/api.c ${KCP_LLHTTP_DIR}/http.c)
target_include_directories(kcp_llhttp SYSTEM PUBLIC ${KCP_LLHTTP_INCLUDE})
target_compile_options(kcp_llhttp PRIVATE -w)
