// libFuzzer target over the weights readers (include/kiln/weights.h): torch
// zip checkpoints and their pickles, safetensors and .wts. Any input must
// load or throw kiln::Error: no crash, no sanitizer report, no runaway
// allocation (a view larger than 8 times the file is refused).
//
// An input that starts like a pickle (0x80, PROTO) would only be refused as a
// pre-1.6 checkpoint, so it is wrapped instead as archive/data.pkl of a zip
// with storages data/0..data/3 of 24 bytes: mutations then reach the
// unpickler without having to keep a zip directory consistent. Seeds:
// weights_seeds/ (files tests/weights_make_checkpoints.py writes, and their
// pickles); the dictionary weights.dict holds the pickle and zip tokens.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/error.h"
#include "kiln/weights.h"

namespace {

std::string le(uint64_t v, int n) {
  std::string s;
  for (int k = 0; k < n; ++k) s += static_cast<char>((v >> (8 * k)) & 0xff);
  return s;
}

// A zip of stored entries (CRCs 0: kiln does not check them).
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, dir;
  for (const auto& [name, data] : entries) {
    uint64_t offset = out.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 6) + le(0, 4) + le(data.size(), 4) + le(data.size(), 4) +
           le(name.size(), 2) + le(0, 2) + name + data;
    dir += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 8) + le(0, 4) + le(data.size(), 4) + le(data.size(), 4) +
           le(name.size(), 2) + le(0, 8) + le(0, 4) + le(offset, 4) + name;
  }
  uint64_t dir_offset = out.size();
  out += dir;
  out += le(0x06054b50, 4) + le(0, 4) + le(entries.size(), 2) + le(entries.size(), 2) + le(dir.size(), 4) +
         le(dir_offset, 4) + le(0, 2);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string wrapped;
  std::span<const uint8_t> bytes(data, size);
  if (size > 0 && data[0] == 0x80) {
    std::vector<std::pair<std::string, std::string>> entries = {
        {"archive/data.pkl", std::string(reinterpret_cast<const char*>(data), size)}};
    for (int k = 0; k < 4; ++k) entries.push_back({"archive/data/" + std::to_string(k), std::string(24, '\x3f')});
    wrapped = make_zip(entries);
    bytes = {reinterpret_cast<const uint8_t*>(wrapped.data()), wrapped.size()};
  }
  try {
    kiln::WeightMap m = kiln::load_weights_bytes(bytes, "fuzz");
    for (const kiln::NamedTensor& t : m.tensors)
      if (t.tensor.dtype() != kiln::DType::kBool) (void)kiln::weights_to_float32(t.tensor);
  } catch (const kiln::Error&) {
  }
  return 0;
}
