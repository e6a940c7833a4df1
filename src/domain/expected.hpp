#pragma once
// Expected outcomes are values: Expected<T, E> holds either the value or a domain error.
// boost::system::result is used rather than std::expected because the project builds as
// C++20 with GCC 12 and clang 14 (fuzzing), where <expected> is not available.
#include <boost/system/result.hpp>

namespace registrar::domain {

template <class T, class E>
using Expected = boost::system::result<T, E>;

// Builds the error alternative explicitly (useful when T and E are convertible).
template <class T, class E>
Expected<T, E> make_error(E e) {
  return Expected<T, E>(boost::system::in_place_error, std::move(e));
}

}  // namespace registrar::domain
