# Build facts for /version: the commit, whether the tree was clean, and the commit's date
# (not the build time, so that the same commit builds the same binary).
find_package(Git QUIET)
set(KCP_GIT_COMMIT "unknown")
set(KCP_GIT_TREE_STATE "unknown")
set(KCP_BUILD_DATE "1970-01-01T00:00:00Z")
if(GIT_FOUND AND EXISTS ${PROJECT_SOURCE_DIR}/.git)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse HEAD WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    OUTPUT_VARIABLE _c OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0)
    set(KCP_GIT_COMMIT ${_c})
    execute_process(COMMAND ${GIT_EXECUTABLE} status --porcelain --untracked-files=no
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE _s ERROR_QUIET)
    if(_s STREQUAL "")
      set(KCP_GIT_TREE_STATE "clean")
    else()
      set(KCP_GIT_TREE_STATE "dirty")
    endif()
    set(ENV{TZ} UTC)
    execute_process(COMMAND ${GIT_EXECUTABLE} log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE _d OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET)
    if(_d)
      set(KCP_BUILD_DATE ${_d})
    endif()
  endif()
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(KCP_GOARCH arm64)
else()
  set(KCP_GOARCH amd64)
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/version.h.in ${PROJECT_BINARY_DIR}/generated/kcp_version_gen.h)
