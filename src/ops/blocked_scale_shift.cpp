// kiln.BlockedScaleShift (ops/blocked.h): y = x * scale + shift per channel
// on the blocked layout (BatchNormalization left unfolded, per-channel
// Mul/Add pairs), with the node's epilogue.
#include "ops/blocked.h"

#include "ir/epilogue.h"
#include "ir/op_facts.h"
#include "ops/blocked_util.h"

namespace kiln {

namespace {

using namespace blocked;

// ---- BlockedScaleShift ------------------------------------------------------------

// y = x * scale + shift per channel (then the node's epilogue), on blocked
// tensors: scale and shift are [1, C/B, 1, 1, B]. What an inference-mode
// BatchNormalization that could not be folded into a conv becomes (DenseNet's
// pre-activation BN + ReLU), in one pass instead of a Mul and an Add.
class BlockedScaleShiftKernel : public Kernel {
 public:
  explicit BlockedScaleShiftKernel(const Node& node) : steps_(epilogue_of(node)) {}
  bool applies_epilogue() const override { return true; }

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& scale = ctx.input(1);
    const Tensor& shift = ctx.input(2);
    if (x.dtype() != DType::kFloat32 || x.rank() != 5 || (x.dim(4) != 8 && x.dim(4) != 16) ||
        scale.numel() != x.dim(1) * x.dim(4) || shift.numel() != scale.numel())
      throw ctx.error("unexpected shapes " + shape_str(x.shape()) + ", " + shape_str(scale.shape()));
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, x.shape());
    const int64_t cb = x.dim(1), block = x.dim(4), plane = x.dim(2) * x.dim(3) * block;
    const float* px = x.data<float>();
    const float* ps = scale.data<float>();
    const float* pt = shift.data<float>();
    float* py = y.data<float>();
    parallel_for(ctx.thread_pool(), x.dim(0) * cb, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const float* __restrict s = ps + (p % cb) * block;
        const float* __restrict t = pt + (p % cb) * block;
        const float* __restrict in = px + p * plane;
        float* __restrict out = py + p * plane;
        if (block == 8)
          apply<8>(in, s, t, out, plane);
        else if (block == 16)
          apply<16>(in, s, t, out, plane);
        else
          for (int64_t i = 0; i < plane; ++i) out[i] = in[i] * s[i % block] + t[i % block];
        apply_epilogue(steps_, out, plane);
      }
    });
  }

 private:
  template <int B>
  static void apply(const float* __restrict in, const float* __restrict s, const float* __restrict t,
                    float* __restrict out, int64_t n) {
    for (int64_t i = 0; i < n; i += B)
      for (int j = 0; j < B; ++j) out[i + j] = in[i + j] * s[j] + t[j];
  }

  std::vector<EpilogueStep> steps_;
};

}  // namespace

KILN_OP(BlockedScaleShift) {
  OpSchema s = kiln_schema("BlockedScaleShift", 3);
  s.min_inputs = 3;
  s.infer = [](InferContext& ctx) { infer_blocked_with_channel_params(ctx, "scale and shift"); };
  s.make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<BlockedScaleShiftKernel>(node); };
  return s;
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(KilnBlockedScaleShift) {
  return {.domain = kKilnDomain,
          .op = "BlockedScaleShift",
          .family = OpFamily::kNormalization,
          .cost = cost::per_element(2)};
}

}  // namespace kiln
