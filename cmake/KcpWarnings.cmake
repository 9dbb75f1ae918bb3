# Compiler flags shared by every target: the warning set of docs/CONVENTIONS.md.
add_compile_definitions(_GNU_SOURCE)
add_compile_options(
  -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes
  -Wno-unused-parameter
  -Werror=implicit-function-declaration
  -Werror=incompatible-pointer-types
  -Werror=return-type
  -fno-strict-aliasing)
if(KCP_WERROR)
  add_compile_options(-Werror)
endif()
if(KCP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(KCP_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
