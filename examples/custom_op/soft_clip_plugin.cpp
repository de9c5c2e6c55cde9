// A kiln plugin: the custom op com.example:SoftClip,
//   y = bound * tanh(x / bound)
// (a smooth clamp to (-bound, bound); attribute `bound`, default 1), for
// float tensors of any shape. Built as a shared library; load it with
//   kiln run model.onnx --plugin libsoft_clip_plugin.so
// or kiln::load_plugin("libsoft_clip_plugin.so") in C++.
#include <cmath>

#include "kiln/custom_op.h"

KILN_PLUGIN {
  kiln::CustomOp op;
  op.domain = "com.example";
  op.name = "SoftClip";
  op.input_types = {kiln::DType::kFloat32};
  op.infer = [](kiln::CustomOpShapeContext& c) {
    if (c.attr_float("bound", 1.0f) <= 0) throw c.error("bound must be > 0");
    c.set_output(0, c.input_dtype(0), c.input_shape(0));  // element-wise: same type and shape
  };
  op.compute = [](kiln::CustomOpKernelContext& c) {
    const kiln::Tensor& x = c.input(0);
    kiln::Tensor& y = c.output(0, x.dtype(), x.shape());
    const float bound = c.attr_float("bound", 1.0f);
    const float* in = x.data<float>();
    float* out = y.data<float>();
    c.parallel_for(x.numel(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = bound * std::tanh(in[i] / bound);
    });
  };
  kiln::register_custom_op(op);
}
