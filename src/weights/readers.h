// The three readers behind load_weights (include/kiln/weights.h). Each takes
// the whole file in memory and `label` (the file name) for its messages.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "kiln/weights.h"

namespace kiln::weights {

WeightMap read_torch_zip(std::span<const uint8_t> bytes, const std::string& label);
WeightMap read_safetensors(std::span<const uint8_t> bytes, const std::string& label);
WeightMap read_wts(std::span<const uint8_t> bytes, const std::string& label);

// a * b, or kiln::Error `what` + " overflows" when it does not fit in int64.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);

}  // namespace kiln::weights
