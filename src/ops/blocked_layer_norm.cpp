// kiln.BlockedLayerNorm(x [N, C/B, H, W, B], scale [C], bias [C]?): the
// LayerNormalization over the channels of every pixel of a blocked tensor
// (ops/blocked.h), attrs channels, block, epsilon. What a channels-last
// LayerNorm between two Transposes (ConvNeXt's) becomes when the tensor
// stays blocked (passes/blocked_channels_last.cpp). Each pixel's channels
// are gathered into a row and normalized by the same row loop as
// LayerNormalization, so both give the same bits; padded channel lanes stay 0.
#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/vec_math_f32.h"
#include "ops/blocked.h"
#include "ops/common.h"

namespace kiln {

namespace {

void infer_blocked_layer_norm(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  const int64_t c = ctx.node().attr_int("channels", -1), block = ctx.node().attr_int("block", 0);
  if (x.dtype != DType::kFloat32 || x.rank() != 5) throw ctx.error("expects a float32 5-D blocked input");
  if (c <= 0 || (block != 8 && block != 16)) throw ctx.error("needs positive channels and a block of 8 or 16");
  for (size_t i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    const ValueType& p = ctx.input_type(i);
    if (p.dtype != DType::kFloat32 || !p.is_static() || shape_numel(p.static_shape()) != c)
      throw ctx.error("scale and bias must be float32 with one value per channel (" + std::to_string(c) + ")");
  }
  ctx.set_output(0, x.dtype, x.shape);
}

class BlockedLayerNormKernel : public Kernel {
 public:
  explicit BlockedLayerNormKernel(const Node& node)
      : channels_(node.attr_int("channels", -1)),
        block_(node.attr_int("block", 8)),
        epsilon_(node.attr_float("epsilon", 1e-5f)) {
    if (channels_ <= 0 || (block_ != 8 && block_ != 16))
      throw Error(node.describe() + ": needs positive channels and a block of 8 or 16");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& scale = ctx.input(1);
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    const int64_t C = channels_, B = block_;
    if (x.dtype() != DType::kFloat32 || x.rank() != 5 || x.dim(4) != B || x.dim(1) != (C + B - 1) / B)
      throw ctx.error("expects a float32 [N, " + std::to_string((C + B - 1) / B) + ", H, W, " + std::to_string(B) +
                      "] tensor, got " + shape_str(x.shape()));
    if (scale.numel() != C || (bias && bias->numel() != C))
      throw ctx.error("scale and bias need one value per channel");
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, x.shape());
    const int64_t N = x.dim(0), CB = x.dim(1), HW = x.dim(2) * x.dim(3);
    if (y.numel() == 0) return;
    constexpr int64_t kTile = 16;  // pixels whose rows are gathered at once
    const int64_t tiles = (HW + kTile - 1) / kTile;
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const float* ps = scale.data<float>();
    const float* pb = bias ? bias->data<float>() : nullptr;
    const double eps = epsilon_;
    const VecMathF32& vm = vec_math_f32();
    ThreadPool* pool = N * tiles * C >= 32768 ? ctx.thread_pool() : nullptr;
    // Each chunk's gathered rows: a slice of the run's scratch memory.
    const int64_t per_chunk = 2 * kTile * C;
    float* all_rows =
        static_cast<float*>(ctx.scratch(static_cast<size_t>(chunk_count(pool, N * tiles) * per_chunk) * sizeof(float)));
    parallel_chunks(pool, N * tiles, [&](int chunk, int64_t begin, int64_t end) {
      float* in = all_rows + chunk * per_chunk;
      float* out = in + kTile * C;
      for (int64_t item = begin; item < end; ++item) {
        const int64_t n = item / tiles, p0 = (item % tiles) * kTile, np = std::min(kTile, HW - p0);
        const float* xn = px + n * CB * HW * B;
        float* yn = py + n * CB * HW * B;
        for (int64_t cb = 0; cb < CB; ++cb) {
          const int64_t lanes = std::min(B, C - cb * B);
          for (int64_t p = 0; p < np; ++p) {
            const float* src = xn + (cb * HW + p0 + p) * B;
            for (int64_t l = 0; l < lanes; ++l) in[p * C + cb * B + l] = src[l];
          }
        }
        vm.layer_norm_rows(in, out, np, C, eps, ps, pb, nullptr, nullptr);
        for (int64_t cb = 0; cb < CB; ++cb) {
          const int64_t lanes = std::min(B, C - cb * B);
          for (int64_t p = 0; p < np; ++p) {
            float* dst = yn + (cb * HW + p0 + p) * B;
            for (int64_t l = 0; l < lanes; ++l) dst[l] = out[p * C + cb * B + l];
            for (int64_t l = lanes; l < B; ++l) dst[l] = 0.0f;
          }
        }
      }
    });
  }

 private:
  int64_t channels_, block_;
  float epsilon_;
};

}  // namespace

KILN_OP(BlockedLayerNorm) {
  return OpSchema{
      .domain = kKilnDomain,
      .name = "BlockedLayerNorm",
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = {DType::kFloat32},
      .infer = infer_blocked_layer_norm,
      .make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<BlockedLayerNormKernel>(node); },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(KilnBlockedLayerNorm) {
  return {.domain = kKilnDomain,
          .op = "BlockedLayerNorm",
          .family = OpFamily::kNormalization,
          .cost = cost::not_counted("kiln.BlockedLayerNorm is not counted")};
}

}  // namespace kiln
