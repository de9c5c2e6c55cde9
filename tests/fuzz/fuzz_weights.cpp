// libFuzzer target over the weights readers (include/kiln/weights.h): torch
// zip checkpoints and their pickles, safetensors and .wts. Any input must
// load or throw kiln::Error: no crash, no sanitizer report, no runaway
// allocation (a view larger than 8 times the file is refused). Seeds:
// weights_seeds/ (files tests/weights_make_checkpoints.py writes); the
// dictionary weights.dict holds the pickle and zip tokens.
#include <cstddef>
#include <cstdint>

#include "kiln/error.h"
#include "kiln/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kiln::WeightMap m = kiln::load_weights_bytes({data, size}, "fuzz");
    for (const kiln::NamedTensor& t : m.tensors) (void)kiln::weights_to_float32(t.tensor);
  } catch (const kiln::Error&) {
  }
  return 0;
}
