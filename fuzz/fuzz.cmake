# Fuzz build settings, included from the top-level CMakeLists.txt when REGISTRAR_FUZZ is ON, before
# any target is defined and before find_package(Boost): the flags below must reach every project
# library, and the Boost.JSON / Boost.URL targets must exist before Boost's own config defines them.
#
# Every project library is compiled with -fsanitize=fuzzer-no-link (coverage instrumentation for
# libFuzzer, without its main()) plus AddressSanitizer and UndefinedBehaviorSanitizer, every report
# fatal; each fuzz target then links with -fsanitize=fuzzer (see registrar_add_fuzzer in
# fuzz/CMakeLists.txt). Other executables (registrar itself) still link, with the sanitizer
# runtimes only.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "REGISTRAR_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++ "
                      "(scripts/fuzz.sh does)")
endif()
if(REGISTRAR_SANITIZE)
  message(FATAL_ERROR "REGISTRAR_FUZZ already builds with address,undefined: leave REGISTRAR_SANITIZE empty")
endif()

set(REGISTRAR_FUZZ_SANITIZERS "address,undefined")
# -fno-sanitize=function: clang 14 cannot emit UBSan's function-type check for C++20 coroutine
# frames (the server and the auth routes are coroutines): it fails with "Cannot represent a
# difference across sections". That check only catches calls through a function pointer of the
# wrong type; every other UBSan check stays on.
add_compile_options(-O1 -fsanitize=fuzzer-no-link,${REGISTRAR_FUZZ_SANITIZERS} -fno-sanitize=function
                    -fno-sanitize-recover=all -fno-omit-frame-pointer)
add_link_options(-fsanitize=${REGISTRAR_FUZZ_SANITIZERS} -fno-sanitize-recover=all)
# The conventional macro for "this is a fuzzing build"; project code does not depend on it.
add_compile_definitions(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)

# Boost.JSON and Boost.URL come from Debian as compiled shared libraries. Linked as they are, the
# JSON parser (which reads every request body, JWT segment and AMQP body) and the URL parser (every
# --*-url setting) would be invisible to libFuzzer's coverage feedback and to ASan/UBSan's
# instrumentation: the fuzzer would have to guess its way through them blind. Both libraries support
# a header-only mode (include <boost/{json,url}/src.hpp> in exactly one translation unit), so the fuzz
# build compiles them from the installed headers into one instrumented static library and defines
# Boost::json / Boost::url as that library. find_package(Boost) leaves an existing Boost::<component>
# target alone (FindBoost: `if(... NOT TARGET Boost::${COMPONENT})`; Boost's own config files:
# `if(TARGET Boost::json) return()`), so the rest of the build links the instrumented copy without
# knowing, and no libboost_*.so is linked. The normal build is unchanged.
add_library(registrar_fuzz_boost STATIC ${CMAKE_CURRENT_LIST_DIR}/support/boost_src.cpp)
target_compile_options(registrar_fuzz_boost PRIVATE -w)  # third-party code: its warnings are not ours
foreach(component json url)
  add_library(Boost::${component} INTERFACE IMPORTED)
  target_link_libraries(Boost::${component} INTERFACE registrar_fuzz_boost)
endforeach()
