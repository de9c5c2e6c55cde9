// kiln.BlockedInstanceNorm (ops/blocked.h): InstanceNormalization on the
// blocked layout, so a U-Net's Conv → InstanceNorm → LeakyRelu stays blocked
// (no FromBlocked/ToBlocked around each norm) and the activation runs as its
// epilogue. Each (image, channel block) plane [H*W, B] is one task; its B
// channels are B independent lanes: the mean, then the centred sum of
// squares (two passes, as the plain kernel's compensated statistics), each
// summed in float over runs of 256 pixels and in double across runs, then one
// affine per lane and the epilogue. Padding lanes read zeros and, with zero
// scale and bias, write zeros.
#include <cmath>

#include "ir/epilogue.h"
#include "ir/op_facts.h"
#include "ops/blocked.h"
#include "ops/blocked_util.h"

namespace kiln {

namespace {

using namespace blocked;

// Per-lane sums of f(x) over a plane of n pixels of B lanes.
template <int B, typename F>
void lane_sums(const float* __restrict x, int64_t n, F f, double* __restrict out) {
  constexpr int64_t kRun = 256;
  for (int j = 0; j < B; ++j) out[j] = 0;
  for (int64_t p0 = 0; p0 < n; p0 += kRun) {
    float acc[B] = {};
    const int64_t p1 = std::min(n, p0 + kRun);
    for (int64_t p = p0; p < p1; ++p)
      for (int j = 0; j < B; ++j) acc[j] += f(x[p * B + j], j);
    for (int j = 0; j < B; ++j) out[j] += acc[j];
  }
}

template <int B>
void normalize_plane(const float* __restrict x, float* __restrict y, int64_t n, const float* scale, const float* bias,
                     double eps) {
  double sum[B], sq[B];
  lane_sums<B>(
      x, n, [](float v, int) { return v; }, sum);
  float mean[B], k[B], b[B];
  const double count = static_cast<double>(n);
  for (int j = 0; j < B; ++j) mean[j] = static_cast<float>(sum[j] / count);
  lane_sums<B>(
      x, n, [&](float v, int j) { return (v - mean[j]) * (v - mean[j]); }, sq);
  for (int j = 0; j < B; ++j) {
    k[j] = static_cast<float>(scale[j] / std::sqrt(sq[j] / count + eps));
    b[j] = bias[j];
  }
  for (int64_t p = 0; p < n; ++p)
    for (int j = 0; j < B; ++j) y[p * B + j] = (x[p * B + j] - mean[j]) * k[j] + b[j];
}

class BlockedInstanceNormKernel : public Kernel {
 public:
  explicit BlockedInstanceNormKernel(const Node& node)
      : eps_(node.attr_float("epsilon", 1e-5f)), steps_(epilogue_of(node)) {}
  bool applies_epilogue() const override { return true; }

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& scale = ctx.input(1);
    const Tensor& bias = ctx.input(2);
    if (x.dtype() != DType::kFloat32 || x.rank() != 5 || (x.dim(4) != 8 && x.dim(4) != 16) ||
        scale.numel() != x.dim(1) * x.dim(4) || bias.numel() != scale.numel())
      throw ctx.error("unexpected shapes " + shape_str(x.shape()) + ", " + shape_str(scale.shape()));
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, x.shape());
    const int64_t cb = x.dim(1), block = x.dim(4), pixels = x.dim(2) * x.dim(3), plane = pixels * block;
    if (y.numel() == 0) return;
    const float* px = x.data<float>();
    const float* ps = scale.data<float>();
    const float* pb = bias.data<float>();
    float* py = y.data<float>();
    parallel_for(ctx.thread_pool(), x.dim(0) * cb, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const float* s = ps + (p % cb) * block;
        const float* b = pb + (p % cb) * block;
        if (block == 16)
          normalize_plane<16>(px + p * plane, py + p * plane, pixels, s, b, eps_);
        else
          normalize_plane<8>(px + p * plane, py + p * plane, pixels, s, b, eps_);
        apply_epilogue(steps_, py + p * plane, plane);
      }
    });
  }

 private:
  double eps_;
  std::vector<EpilogueStep> steps_;
};

}  // namespace

KILN_OP(BlockedInstanceNorm) {
  OpSchema s = kiln_schema("BlockedInstanceNorm", 3);
  s.min_inputs = 3;
  s.infer = [](InferContext& ctx) { infer_blocked_with_channel_params(ctx, "scale and B"); };
  s.make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<BlockedInstanceNormKernel>(node); };
  return s;
}

KILN_OP_FACTS(KilnBlockedInstanceNorm) {
  return {.domain = kKilnDomain,
          .op = "BlockedInstanceNorm",
          .family = OpFamily::kNormalization,
          .cost = cost::per_element(7),
          .accepts_epilogue = true};
}

}  // namespace kiln
