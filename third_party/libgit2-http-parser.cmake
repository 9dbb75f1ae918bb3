# Build glue: Debian's http-parser, compiled into libgit2.a as its "bundled" HTTP parser.
#
# Debian strips libgit2's deps/ directory (the "+ds" in its version), and libhttp-parser-dev
# cannot be installed for amd64 and arm64 at once. scripts/deps-src.sh therefore copies
# http_parser.c and http_parser.h from the pinned http-parser source package, and this file as
# CMakeLists.txt, into <libgit2 source>/deps/http-parser/ and configures libgit2 with
# USE_HTTP_PARSER=builtin. The objects land inside libgit2.a, so linking libgit2 needs only
# zlib and pthreads, on both architectures.
add_library(http-parser OBJECT http_parser.c http_parser.h)
# The same setting Debian's libhttp_parser.a is built with (the Makefile's CPPFLAGS_FAST).
target_compile_definitions(http-parser PRIVATE HTTP_PARSER_STRICT=0)
