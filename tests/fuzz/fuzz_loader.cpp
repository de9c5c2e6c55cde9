// libFuzzer target over the model loader: see load_and_run.h.
#include <cstddef>
#include <cstdint>

#include "load_and_run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return load_and_run(data, size); }
