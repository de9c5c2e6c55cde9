// The kiln::Error message of a call, for tests of bad input.
#pragma once
#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <string>

#include "kiln/error.h"

namespace kiln {

// The kiln::Error of `f`, "" when it succeeds; any other exception fails the
// test (bad input must be reported as a kiln::Error).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
    return "";
  } catch (const Error& e) {
    return std::string(e.what()).empty() ? "(empty message)" : e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "an exception that is not a kiln::Error: " << e.what();
    return e.what();
  }
}

}  // namespace kiln
