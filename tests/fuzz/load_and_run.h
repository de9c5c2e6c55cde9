// The body of both fuzz targets: any byte string must either load (an ONNX
// model or a kiln engine, told apart by its magic) and then run once on zero
// inputs of its declared shapes (an engine's: its first profile's min
// shapes), or throw kiln::Error. A crash, hang, leak or sanitizer report is a
// bug.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/error.h"
#include "kiln/session.h"

// Runs whose tensors would be large are skipped: a few bytes may ask for
// gigabytes (a Conv padded by 20 million columns), which is the model's
// right rather than a bug, and the fuzzer's memory limit would report it as
// one. The sizes are the executed nodes' bytes, known once the fed shapes
// are bound (a model with symbolic dims is loaded again with them).
constexpr int64_t kMaxNodeBytes = int64_t{64} << 20;

inline int load_and_run(const uint8_t* data, size_t size) {
  try {
    kiln::Session s = kiln::Session::load_bytes(data, size);
    std::vector<std::pair<std::string, kiln::Tensor>> feed;
    kiln::SessionOptions bound;
    bool symbolic = false;
    for (const auto& in : s.inputs()) {
      if (in.has_default || !in.has_shape) continue;
      kiln::Shape shape;
      if (!s.profiles().empty() && s.profiles()[0].min.count(in.name)) {
        shape = s.profiles()[0].min.at(in.name);
      } else {
        for (const auto& d : in.shape) shape.push_back(d.size >= 0 ? d.size : 1);
      }
      int64_t n = 1;
      for (int64_t d : shape) {
        if (d < 0 || d > (1 << 16)) return 0;
        n *= std::max<int64_t>(1, d);
        if (n > (1 << 16)) return 0;  // keep runs small
      }
      for (const auto& d : in.shape) symbolic |= d.size < 0;
      bound.input_shapes[in.name] = shape;
      feed.emplace_back(in.name, kiln::Tensor(in.dtype, shape));
    }
    if (symbolic && !s.is_engine()) s = kiln::Session::load_bytes(data, size, bound);
    for (const auto& n : s.executed_nodes())
      if (n.bytes > kMaxNodeBytes) return 0;
    s.run(feed);
  } catch (const kiln::Error&) {
  }
  return 0;
}
