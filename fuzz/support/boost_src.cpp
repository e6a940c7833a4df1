// Boost.JSON and Boost.URL compiled header-only into the fuzz build, so their parsers are
// instrumented (coverage + sanitizers) like the project's own code. See fuzz/fuzz.cmake.
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
