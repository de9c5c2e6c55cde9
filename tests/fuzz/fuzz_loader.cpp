// libFuzzer target over the model loader: any byte string must either load
// (and then run on zero inputs of its declared shapes) or throw kiln::Error.
// A crash, hang, leak or sanitizer report is a bug.
#include <cstdint>
#include <cstddef>

#include "kiln/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kiln::Session s = kiln::Session::load_bytes(data, size);
    std::vector<std::pair<std::string, kiln::Tensor>> feed;
    for (const auto& in : s.inputs()) {
      if (in.has_default || !in.has_shape) continue;
      kiln::Shape shape;
      int64_t n = 1;
      for (const auto& d : in.shape) {
        shape.push_back(d.size >= 0 ? d.size : 1);
        n *= std::max<int64_t>(1, shape.back());
        if (n > (1 << 16)) return 0;  // keep runs small
      }
      feed.emplace_back(in.name, kiln::Tensor(in.dtype, shape));
    }
    s.run(feed);
  } catch (const kiln::Error&) {
  }
  return 0;
}
