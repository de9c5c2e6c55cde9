// kiln::Error is the one error type of the library: anything a user or a file
// can cause throws it, with a message naming the file, node, op or input at
// fault. Internal invariants use assert; the library never aborts the host.
#pragma once
#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The model uses ops, opsets, types or attributes kiln does not support; the
// message lists every such node.
class UnsupportedError : public Error {
 public:
  using Error::Error;
};

}  // namespace kiln
