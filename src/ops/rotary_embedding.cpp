// RotaryEmbedding (23): rotates the first rotary_embedding_dim (default: all)
// channels of each head by position-dependent angles.
//
// X is (B, H, S, D) or (B, S, H*D) with the num_heads attribute. cos/sin are
// (max_pos, R/2) indexed by position_ids (B, S), or (B, S, R/2) without them.
// Pairs are (x[k], x[k + R/2]) by default, (x[2k], x[2k+1]) when interleaved:
//   x1' = cos * x1 - sin * x2,  x2' = sin * x1 + cos * x2.
#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

void rotary_compute(KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  const Tensor& cos_t = ctx.input(1);
  const Tensor& sin_t = ctx.input(2);
  bool interleaved = node.attr_int("interleaved", 0) != 0;
  int64_t b, h, s, d;
  bool three_d = x.rank() == 3;
  if (three_d) {
    h = node.attr_int("num_heads", 0);
    if (h <= 0 || x.dim(2) % h != 0)
      throw ctx.error("3-D input needs a num_heads attribute dividing the hidden size " + std::to_string(x.dim(2)));
    b = x.dim(0);
    s = x.dim(1);
    d = x.dim(2) / h;
  } else if (x.rank() == 4) {
    b = x.dim(0);
    h = x.dim(1);
    s = x.dim(2);
    d = x.dim(3);
  } else {
    throw ctx.error("X must be 3-D or 4-D, got " + shape_str(x.shape()));
  }
  int64_t rd = node.attr_int("rotary_embedding_dim", 0);
  if (rd == 0) rd = d;
  if (rd < 0 || rd > d || rd % 2 != 0)
    throw ctx.error("rotary_embedding_dim " + std::to_string(rd) + " must be even and at most the head size " +
                    std::to_string(d));
  int64_t half = rd / 2;
  if (cos_t.shape() != sin_t.shape()) throw ctx.error("cos_cache and sin_cache shapes differ");
  if (cos_t.rank() < 1 || cos_t.dim(cos_t.rank() - 1) != half)
    throw ctx.error("the caches' last dim must be rotary_embedding_dim / 2 = " + std::to_string(half) + ", got " +
                    shape_str(cos_t.shape()));
  std::vector<int64_t> pos;
  if (ctx.has_input(3)) {
    pos = read_ints(ctx.input(3), ctx, "position_ids");
    if (ctx.input(3).shape() != Shape{b, s})
      throw ctx.error("position_ids must be (batch, sequence) = " + shape_str(Shape{b, s}) + ", got " +
                      shape_str(ctx.input(3).shape()));
    if (cos_t.rank() != 2) throw ctx.error("with position_ids the caches must be 2-D (max_position, R/2)");
    for (int64_t p : pos)
      if (p < 0 || p >= cos_t.dim(0))
        throw ctx.error("position id " + std::to_string(p) + " is outside the cache [0, " +
                        std::to_string(cos_t.dim(0)) + ")");
  } else if (cos_t.shape() != Shape{b, s, half}) {
    throw ctx.error("without position_ids the caches must be (batch, sequence, R/2) = " + shape_str(Shape{b, s, half}) +
                    ", got " + shape_str(cos_t.shape()));
  }
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> cv = to_doubles(cos_t, node.op_type), sv = to_doubles(sin_t, node.op_type);
  std::vector<double> y = xv;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t si = 0; si < s; ++si) {
        int64_t row = pos.empty() ? bi * s + si : pos[static_cast<size_t>(bi * s + si)];
        size_t base = three_d ? static_cast<size_t>((bi * s + si) * h * d + hi * d)
                              : static_cast<size_t>(((bi * h + hi) * s + si) * d);
        for (int64_t k = 0; k < half; ++k) {
          double c = cv[static_cast<size_t>(row * half + k)], sn = sv[static_cast<size_t>(row * half + k)];
          size_t i1 = base + static_cast<size_t>(interleaved ? 2 * k : k);
          size_t i2 = base + static_cast<size_t>(interleaved ? 2 * k + 1 : k + half);
          y[i1] = c * xv[i1] - sn * xv[i2];
          y[i2] = sn * xv[i1] + c * xv[i2];
        }
      }
  store_doubles(ctx, 0, x.dtype(), x.shape(), y);
}

}  // namespace

KILN_OP(RotaryEmbedding) {
  return OpSchema{
      .name = "RotaryEmbedding",
      .since = 23,
      .min_inputs = 3,
      .max_inputs = 4,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer =
          [](InferContext& ctx) {
            int r = ctx.input_type(0).rank();
            if (r != -1 && r != 3 && r != 4) throw ctx.error("X must be 3-D or 4-D, got rank " + std::to_string(r));
            if (r == 3 && ctx.node().attr_int("num_heads", 0) <= 0)
              throw ctx.error("3-D X needs the num_heads attribute");
            infer_same_as_input(ctx);
          },
      .compute = rotary_compute,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(RotaryEmbedding) {
  return {.op = "RotaryEmbedding",
          .family = OpFamily::kAttention,
          .cost = cost::not_counted("RotaryEmbedding is not counted")};
}

}  // namespace kiln
