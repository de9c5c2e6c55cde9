// The README's C++ API example, compiled and run as a test: classifies the
// ten sample digits shipped with models/digits.
//   build/examples/classify_digits models/digits/model.onnx models/digits/samples/digits10.npy
#include <cstdio>
#include <exception>

#include "kiln/session.h"
#include "kiln/tensor_io.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.onnx IMAGES.npy\n", argv[0]);
    return 1;
  }
  try {
    kiln::Session session = kiln::Session::load(argv[1]);
    for (const kiln::TensorInfo& in : session.inputs())
      std::printf("input  %s: %s\n", in.name.c_str(), in.str().c_str());
    for (const kiln::TensorInfo& out : session.outputs())
      std::printf("output %s: %s\n", out.name.c_str(), out.str().c_str());

    kiln::Tensor images = kiln::load_npy(argv[2]);  // [N, 1, 8, 8] float32
    std::vector<kiln::Tensor> outputs = session.run({{session.inputs()[0].name, images}});
    const kiln::Tensor& logits = outputs[0];  // [N, 10]
    std::printf("predicted:");
    for (int64_t n = 0; n < logits.dim(0); ++n) {
      const float* row = logits.data<float>() + n * logits.dim(1);
      int64_t best = 0;
      for (int64_t c = 1; c < logits.dim(1); ++c)
        if (row[c] > row[best]) best = c;
      std::printf(" %lld", static_cast<long long>(best));
    }
    std::printf("\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
