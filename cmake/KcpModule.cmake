# kcp_module(NAME SOURCES... DEPS ...): one static library per component.
# Dependencies are explicit so that a call across a forbidden edge fails to link.
function(kcp_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(kcp_${name} STATIC ${M_SOURCES})
  target_include_directories(kcp_${name}
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  if(M_DEPS)
    target_link_libraries(kcp_${name} PUBLIC ${M_DEPS})
  endif()
endfunction()
