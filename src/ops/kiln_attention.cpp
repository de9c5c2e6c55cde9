// kiln.Attention: scaled dot-product attention as one op, made by
// passes/recognize_attention.cpp from the MatMul → scale → [Add mask] →
// Softmax → MatMul chain exporters write (ONNX's own Attention-23 op is
// ops/attention.cpp).
//
//   Y = Softmax(scale * Q K^T + mask, last axis) V
//
//   Q    [..., Lq, D]
//   K    [..., Lk, D], or K^T [..., D, Lk] when k_transposed = 1
//   V    [..., Lk, Dv]
//   mask (optional, additive) [..., Lq or 1, Lk or 1]; rank 1 is [Lk or 1]
//   Y    [..., Lq, Dv]
//
// The leading (batch) dims of all four broadcast together as MatMul and Add
// broadcast them, so the op computes exactly what the unfused chain did.
// Attributes: scale (float, required), k_transposed (int, 0 or 1).
//
// float32 kernel: per (batch, block of query rows), the scores block
// Q_blk K^T is one GEMM into a buffer small enough to stay in cache, softmax
// runs over its rows, and a second GEMM multiplies it by V straight into Y.
// The scores never go to memory as a whole, and blocks spread over the
// session's pool. Each chunk's scores buffer is a slice of the run's scratch.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/gemm_f32.h"
#include "kernels/cpu/vec_math_f32.h"
#include "ops/common.h"

namespace kiln {

namespace {

// Leading dims of `s` before its last `tail` dims ([] when rank < tail).
Shape batch_of(const Shape& s, size_t tail) {
  return s.size() > tail ? Shape(s.begin(), s.end() - static_cast<std::ptrdiff_t>(tail)) : Shape{};
}

// The geometry of one run.
struct AttnGeometry {
  int64_t lq = 0, lk = 0, d = 0, dv = 0;
  Shape batch;  // broadcast batch dims of every input
  int64_t batches = 1;
  // Per input (Q, K, V, mask): the batch strides in matrices, broadcast.
  std::vector<int64_t> strides[4];
  // The mask's row and column strides (0 where broadcast).
  int64_t mask_row_stride = 0, mask_col_stride = 0, mask_matrix = 0;
};

AttnGeometry geometry(const KernelContext& ctx) {
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  const bool kt = ctx.node().attr_int("k_transposed", 0) != 0;
  if (q.rank() < 2 || k.rank() < 2 || v.rank() < 2)
    throw ctx.error("Q, K and V must have rank 2 or more, got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) +
                    ", " + shape_str(v.shape()));
  AttnGeometry a;
  a.lq = q.dim(q.rank() - 2);
  a.d = q.dim(q.rank() - 1);
  a.lk = kt ? k.dim(k.rank() - 1) : k.dim(k.rank() - 2);
  const int64_t kd = kt ? k.dim(k.rank() - 2) : k.dim(k.rank() - 1);
  if (kd != a.d)
    throw ctx.error("Q's and K's head sizes differ: " + shape_str(q.shape()) + ", " + shape_str(k.shape()));
  if (v.dim(v.rank() - 2) != a.lk)
    throw ctx.error("V's rows (" + std::to_string(v.dim(v.rank() - 2)) + ") differ from K's length " +
                    std::to_string(a.lk));
  a.dv = v.dim(v.rank() - 1);
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input(i).dtype() != DType::kFloat32)
      throw ctx.error("input " + std::to_string(i) + " must be float32 like Q");
  std::vector<Shape> batches = {batch_of(q.shape(), 2), batch_of(k.shape(), 2), batch_of(v.shape(), 2)};
  const bool has_mask = ctx.has_input(3);
  if (has_mask) {
    const Tensor& m = ctx.input(3);
    if (m.rank() < 1) throw ctx.error("the mask must have rank 1 or more");
    const int64_t rows = m.rank() >= 2 ? m.dim(m.rank() - 2) : 1, cols = m.dim(m.rank() - 1);
    if ((rows != 1 && rows != a.lq) || (cols != 1 && cols != a.lk))
      throw ctx.error("mask " + shape_str(m.shape()) + " does not broadcast to the scores' " + std::to_string(a.lq) +
                      "x" + std::to_string(a.lk));
    a.mask_row_stride = rows == 1 ? 0 : cols;
    a.mask_col_stride = cols == 1 ? 0 : 1;
    a.mask_matrix = rows * cols;
    batches.push_back(batch_of(m.shape(), 2));
  }
  a.batch = broadcast_shapes(batches, ctx.node());
  a.batches = shape_numel(a.batch);
  for (size_t i = 0; i < batches.size(); ++i) a.strides[i] = broadcast_strides(batches[i], a.batch);
  return a;
}

// Matrix index of batch `b` in an input with batch strides `strides`.
int64_t matrix_index(int64_t b, const Shape& batch, const std::vector<int64_t>& strides) {
  int64_t index = 0;
  for (size_t d = batch.size(); d-- > 0;) {
    index += (b % batch[d]) * strides[d];
    b /= batch[d];
  }
  return index;
}

// Query rows per block: the scores block stays within ~192 KB (L2-resident
// with room for the GEMM's packed panels of K and V), a multiple of 24 rows
// (whole microkernel panels for MR 6 and 8), and never more than Lq. Fewer,
// larger blocks repack K and V less often: each block's GEMMs pack them anew.
int64_t rows_per_block(int64_t lq, int64_t lk) {
  int64_t rows = std::max<int64_t>(24, (49152 / std::max<int64_t>(lk, 1)) / 24 * 24);
  return std::min(rows, lq);
}

// Softmax over each of `rows` rows of `s` (row stride lk), in place, after
// adding the mask rows (nullptr: none): Softmax's float32 row kernel
// (kernels/cpu/vec_math_f32.h: the vector exp, the sum in double, a row
// without a finite max shifted by 0).
void softmax_rows(float* s, int64_t rows, int64_t lk, const float* mask, int64_t mask_row_stride,
                  int64_t mask_col_stride, const VecMathF32& vm) {
  if (mask) {
    for (int64_t r = 0; r < rows; ++r) {
      float* row = s + r * lk;
      const float* mr = mask + r * mask_row_stride;
      if (mask_col_stride == 1)
        for (int64_t j = 0; j < lk; ++j) row[j] += mr[j];
      else
        for (int64_t j = 0; j < lk; ++j) row[j] += mr[0];
    }
  }
  vm.softmax_rows(s, s, rows, lk, false);
}

void attention_f32(KernelContext& ctx) {
  const AttnGeometry a = geometry(ctx);
  const Node& node = ctx.node();
  const float scale = node.attr_float("scale", 1.0f);
  const bool kt = node.attr_int("k_transposed", 0) != 0;
  Shape yshape = a.batch;
  yshape.push_back(a.lq);
  yshape.push_back(a.dv);
  Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, yshape);
  if (y.numel() == 0) return;
  const float* q = ctx.input(0).data<float>();
  const float* k = ctx.input(1).data<float>();
  const float* v = ctx.input(2).data<float>();
  const float* mask = ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
  float* py = y.data<float>();
  if (a.lk == 0) {  // softmax over nothing: no rows of V to weigh
    std::fill(py, py + y.numel(), 0.0f);
    return;
  }
  const int64_t block = rows_per_block(a.lq, a.lk);
  const int64_t blocks = (a.lq + block - 1) / block;
  const VecMathF32& vm = vec_math_f32();
  const GemmF32Microkernel& kernel = gemm_f32_default_kernel();
  // Each chunk's scores block in the run's scratch memory (the run keeps it:
  // no allocation once it has grown to the largest).
  const int64_t items = a.batches * blocks, per_chunk = block * a.lk;
  float* all_scores = static_cast<float*>(
      ctx.scratch(static_cast<size_t>(chunk_count(ctx.thread_pool(), items) * per_chunk) * sizeof(float)));
  parallel_chunks(ctx.thread_pool(), items, [&](int chunk, int64_t begin, int64_t end) {
    float* scores = all_scores + chunk * per_chunk;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / blocks, r0 = (t % blocks) * block, rows = std::min(block, a.lq - r0);
      const float* qb = q + (matrix_index(b, a.batch, a.strides[0]) * a.lq + r0) * a.d;
      const float* kb = k + matrix_index(b, a.batch, a.strides[1]) * a.lk * a.d;
      const float* vb = v + matrix_index(b, a.batch, a.strides[2]) * a.lk * a.dv;
      GemmF32Operand qa{qb, a.d, false};
      GemmF32Operand kb_op = kt ? GemmF32Operand{kb, a.lk, false} : GemmF32Operand{kb, a.d, true};
      if (a.d > 0)
        gemm_f32(rows, a.lk, a.d, scale, qa, kb_op, 0.0f, scores, a.lk, nullptr, kernel);
      else
        std::fill(scores, scores + rows * a.lk, 0.0f);
      const float* mb = nullptr;
      if (mask) mb = mask + matrix_index(b, a.batch, a.strides[3]) * a.mask_matrix + r0 * a.mask_row_stride;
      softmax_rows(scores, rows, a.lk, mb, a.mask_row_stride, a.mask_col_stride, vm);
      GemmF32Operand pa{scores, a.lk, false}, va{vb, a.dv, false};
      gemm_f32(rows, a.dv, a.lk, 1.0f, pa, va, 0.0f, py + (b * a.lq + r0) * a.dv, a.dv, nullptr, kernel);
    }
  });
}

// Broadcast of the batch dims (all but the last two) of inputs 0..3, as
// broadcast_dims does for whole shapes.
void attention_infer(InferContext& ctx) {
  const ValueType& q = ctx.input_type(0);
  const ValueType& k = ctx.input_type(1);
  const ValueType& v = ctx.input_type(2);
  if (!q.shape || !k.shape || !v.shape || (ctx.has_input(3) && !ctx.input_type(3).shape)) {
    ctx.set_output(0, DType::kFloat32, std::nullopt);
    return;
  }
  for (const ValueType* t : {&q, &k, &v})
    if (t->rank() < 2) throw ctx.error("Q, K and V must have rank 2 or more");
  // What the kernel checks again at run time, refused at load where known
  // (the kiln domain is open to any file).
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input_dtype(i) != DType::kFloat32 && ctx.input_dtype(i) != DType::kUndefined)
      throw ctx.error("input " + std::to_string(i) + " must be float32");
  const bool kt = ctx.node().attr_int("k_transposed", 0) != 0;
  const DimVector& ks = *k.shape;
  const Dim& qd = q.shape->back();
  const Dim& kd = kt ? ks[ks.size() - 2] : ks.back();
  const Dim& lk = kt ? ks.back() : ks[ks.size() - 2];
  const Dim& vrows = (*v.shape)[v.shape->size() - 2];
  if (qd.is_known() && kd.is_known() && qd.value != kd.value)
    throw ctx.error("Q's and K's head sizes differ: " + std::to_string(qd.value) + ", " + std::to_string(kd.value));
  if (lk.is_known() && vrows.is_known() && lk.value != vrows.value)
    throw ctx.error("V's rows (" + std::to_string(vrows.value) + ") differ from K's length " +
                    std::to_string(lk.value));
  std::vector<DimVector> batches;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i)) {
      const DimVector& s = *ctx.input_type(i).shape;
      batches.emplace_back(s.begin(), s.end() - std::min<std::ptrdiff_t>(2, static_cast<std::ptrdiff_t>(s.size())));
    }
  size_t rank = 0;
  for (const DimVector& s : batches) rank = std::max(rank, s.size());
  DimVector out(rank, Dim::known(1));
  for (const DimVector& s : batches)
    for (size_t d = 0; d < s.size(); ++d) {
      Dim& o = out[rank - s.size() + d];
      const Dim& x = s[d];
      if (x.is_known() && x.value == 1) continue;
      if (o.is_known() && o.value == 1)
        o = x;
      else if (o.is_known() && x.is_known() && o.value != x.value)
        throw ctx.error("batch dims " + std::to_string(o.value) + " and " + std::to_string(x.value) + " differ");
      else if (!o.is_known() && x.is_known())
        o = x;
      else if (!o.is_known() && !(o == x))
        o = Dim::unknown();
    }
  out.push_back((*q.shape)[q.shape->size() - 2]);
  out.push_back(v.shape->back());
  ctx.set_output(0, DType::kFloat32, out);
}

}  // namespace

KILN_OP(KilnAttention) {
  return OpSchema{
      .domain = kKilnDomain,
      .name = "Attention",
      .min_inputs = 3,
      .max_inputs = 4,
      .max_outputs = 1,
      .types = {DType::kFloat32},
      .check =
          [](const Node& n) {
            if (!n.has_attr("scale")) return std::string("the scale attribute is required");
            const int64_t kt = n.attr_int("k_transposed", 0);
            return kt == 0 || kt == 1 ? std::string() : "k_transposed must be 0 or 1, got " + std::to_string(kt);
          },
      .infer = attention_infer,
      .compute = attention_f32,
  };
}

namespace {

// Q K^T and P V: per output row (batch x Lq) Lk x (D + Dv) MACs; plus per
// score the scaling, the mask add when given and the softmax's 5 steps.
OpCost kiln_attention_cost(const Node& n) {
  const std::vector<int64_t> q = cost::in_dims(n, 0), y = cost::out_dims(n, 0);
  const std::vector<int64_t> k = cost::in_dims(n, 1);
  if (q.size() < 2 || y.size() < 2 || k.size() < 2) throw CostUnknown{"unexpected Attention ranks"};
  const int64_t d = q.back(), dv = y.back();
  const int64_t lk = n.attr_int("k_transposed", 0) ? k.back() : k[k.size() - 2];
  const int64_t rows = dv > 0 ? cost::out_numel(n) / dv : 0;
  const int64_t scores = cost::mul(rows, lk);
  return cost::matrix(cost::mul(scores, cost::add(d, dv)), cost::mul(scores, 1 + (n.has_input(3) ? 1 : 0) + 5));
}

}  // namespace

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(KilnAttention) {
  return {.domain = kKilnDomain, .op = "Attention", .family = OpFamily::kAttention, .cost = kiln_attention_cost};
}

}  // namespace kiln
