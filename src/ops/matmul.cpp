// MatMul (numpy semantics: batched broadcasting, 1-D operands promoted and
// squeezed), Gemm (transA/transB/alpha/beta, C broadcast; opset < 7 carries
// the `broadcast` attribute, opset < 11 requires C), MatMulInteger and
// QLinearMatMul. Float32 MatMul and Gemm run on the packed GEMM of
// kernels/cpu/gemm_f32.h, with a constant B packed once at kernel creation.
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/gemm_f32.h"
#include "ops/nn_util.h"
#include "ops/quant_util.h"

namespace kiln {

namespace {

// Output dims of numpy matmul from the operand types; nullopt if a rank is
// unknown. Throws on known mismatching dims.
std::optional<DimVector> matmul_dims(const InferContext& ctx, size_t ia, size_t ib) {
  const ValueType& a = ctx.input_type(ia);
  const ValueType& b = ctx.input_type(ib);
  if (!a.shape || !b.shape) return std::nullopt;
  DimVector da = *a.shape, db = *b.shape;
  if (da.empty() || db.empty()) throw ctx.error("MatMul operands must have rank >= 1");
  const bool a1 = da.size() == 1, b1 = db.size() == 1;
  if (a1) da.insert(da.begin(), Dim::known(1));
  if (b1) db.push_back(Dim::known(1));
  const Dim& ka = da[da.size() - 1];
  const Dim& kb = db[db.size() - 2];
  if (ka.is_known() && kb.is_known() && ka.value != kb.value)
    throw ctx.error("inner dims differ: " + ka.str() + " and " + kb.str());
  // Broadcast the batch dims.
  size_t ra = da.size() - 2, rb = db.size() - 2, r = std::max(ra, rb);
  DimVector out(r, Dim::known(1));
  for (size_t i = 0; i < r; ++i) {
    const Dim* x = i + ra >= r ? &da[i + ra - r] : nullptr;
    const Dim* y = i + rb >= r ? &db[i + rb - r] : nullptr;
    Dim& o = out[i];
    for (const Dim* v : {x, y}) {
      if (!v || (v->is_known() && v->value == 1)) continue;
      if (o.is_known() && o.value == 1) {
        o = *v;
      } else if (o.is_known() && v->is_known() && o.value != v->value) {
        throw ctx.error("batch dims " + o.str() + " and " + v->str() + " cannot be broadcast");
      } else if (!v->is_known() && !(o == *v)) {
        o = o.is_known() ? o : Dim::unknown();
      }
    }
  }
  if (!a1) out.push_back(da[da.size() - 2]);
  if (!b1) out.push_back(db[db.size() - 1]);
  return out;
}

}  // namespace

MatMulPlan plan_matmul(const Shape& a_in, const Shape& b_in, const KernelContext& ctx) {
  if (a_in.empty() || b_in.empty()) throw ctx.error("MatMul operands must have rank >= 1");
  Shape a = a_in, b = b_in;
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  MatMulPlan p;
  p.M = a[a.size() - 2];
  p.K = a[a.size() - 1];
  p.N = b[b.size() - 1];
  if (b[b.size() - 2] != p.K) throw ctx.error("inner dims differ: A " + shape_str(a_in) + " and B " + shape_str(b_in));
  Shape ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  Shape batch = broadcast_shapes({ba, bb}, ctx.node());
  const int64_t nb = shape_numel(batch);
  std::vector<int64_t> sa = broadcast_strides(ba, batch), sb = broadcast_strides(bb, batch);
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    p.a_offsets.push_back(oa * p.M * p.K);
    p.b_offsets.push_back(ob * p.K * p.N);
    for (size_t d = batch.size(); d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  p.out = batch;
  if (!a1) p.out.push_back(p.M);
  if (!b1) p.out.push_back(p.N);
  return p;
}

namespace {

using MatMulTypes = TypeList<float, double, Float16, BFloat16, int32_t, int64_t, uint32_t, uint64_t>;

template <typename T>
using mm_calc_t = std::conditional_t<std::is_integral_v<T>, T, calc_t<T>>;

void compute_matmul(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype()) throw ctx.error("A and B types differ");
  MatMulPlan p = plan_matmul(a.shape(), b.shape(), ctx);
  dispatch<MatMulTypes>(a.dtype(), "MatMul", [&]<typename T>() {
    using C = mm_calc_t<T>;
    Tensor& y = ctx.output(0, a.dtype(), p.out);
    if (y.numel() == 0) return;
    std::vector<C> as, bs;
    const C* pa = as_calc<C>(a.data<T>(), a.numel(), as);
    const C* pb = as_calc<C>(b.data<T>(), b.numel(), bs);
    std::vector<C> acc(static_cast<size_t>(p.M * p.N));
    for (size_t i = 0; i < p.a_offsets.size(); ++i) {
      std::fill(acc.begin(), acc.end(), C(0));
      gemm_acc<C>(p.M, p.N, p.K, pa + p.a_offsets[i], p.K, pb + p.b_offsets[i], p.N, acc.data(), p.N);
      T* dst = y.data<T>() + static_cast<int64_t>(i) * p.M * p.N;
      for (size_t j = 0; j < acc.size(); ++j) dst[j] = static_cast<T>(acc[j]);
    }
  });
}

// Copies a 2-D matrix as C, transposed when `trans`.
template <typename C, typename T>
std::vector<C> matrix_as(const T* p, int64_t rows, int64_t cols, bool trans) {
  std::vector<C> v(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      C x = static_cast<C>(static_cast<acc_t<T>>(p[i * cols + j]));
      v[static_cast<size_t>(trans ? j * rows + i : i * cols + j)] = x;
    }
  return v;
}

void infer_gemm(InferContext& ctx) {
  const ValueType& a = ctx.input_type(0);
  const ValueType& b = ctx.input_type(1);
  const bool ta = ctx.node().attr_int("transA", 0) != 0, tb = ctx.node().attr_int("transB", 0) != 0;
  std::optional<DimVector> dims;
  if (a.shape && b.shape) {
    if (a.shape->size() != 2 || b.shape->size() != 2) throw ctx.error("A and B must be 2-D");
    dims = DimVector{(*a.shape)[ta ? 1 : 0], (*b.shape)[tb ? 0 : 1]};
  }
  ctx.set_output(0, a.dtype, dims);
}

void compute_gemm(KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype()) throw ctx.error("A and B types differ");
  if (a.rank() != 2 || b.rank() != 2)
    throw ctx.error("A " + shape_str(a.shape()) + " and B " + shape_str(b.shape()) + " must be 2-D");
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const double alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t Kb = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
  if (K != Kb) throw ctx.error("inner dims differ: A " + shape_str(a.shape()) + " and B " + shape_str(b.shape()));
  const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (!c && node.opset < 11) throw ctx.error("input C is required before opset 11");
  std::vector<int64_t> cst;
  if (c) {
    if (c->dtype() != a.dtype()) throw ctx.error("C's type differs from A's");
    if (node.opset < 7 && node.attr_int("broadcast", 0) == 0 && c->shape() != Shape{M, N})
      throw ctx.error("C " + shape_str(c->shape()) + " must be " + shape_str(Shape{M, N}) + " when broadcast=0");
    if (c->rank() > 2) throw ctx.error("C " + shape_str(c->shape()) + " has rank > 2");
    Shape bc = broadcast_shapes({c->shape(), Shape{M, N}}, node);
    if (bc != Shape{M, N})
      throw ctx.error("C " + shape_str(c->shape()) + " cannot be broadcast to " + shape_str(Shape{M, N}));
    cst = broadcast_strides(c->shape(), Shape{M, N});
  }
  dispatch<MatMulTypes>(a.dtype(), "Gemm", [&]<typename T>() {
    using C = mm_calc_t<T>;
    Tensor& y = ctx.output(0, a.dtype(), {M, N});
    if (y.numel() == 0) return;
    std::vector<C> am = matrix_as<C>(a.data<T>(), a.dim(0), a.dim(1), ta);
    std::vector<C> bm = matrix_as<C>(b.data<T>(), b.dim(0), b.dim(1), tb);
    std::vector<C> acc(static_cast<size_t>(M * N), C(0));
    gemm_acc<C>(M, N, K, am.data(), K, bm.data(), N, acc.data(), N);
    T* py = y.data<T>();
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        C v = static_cast<C>(alpha * static_cast<double>(acc[static_cast<size_t>(i * N + j)]));
        if (alpha == 1.0) v = acc[static_cast<size_t>(i * N + j)];
        if (c) {
          C cv = static_cast<C>(static_cast<acc_t<T>>(c->data<T>()[i * cst[0] + j * cst[1]]));
          v += beta == 1.0 ? cv : static_cast<C>(beta * static_cast<double>(cv));
        }
        py[i * N + j] = static_cast<T>(v);
      }
  });
}

// MatMulInteger / QLinearMatMul share this: int32 products of zero-point
// adjusted operands. a_zp is per-tensor or per-row (M), b_zp per-tensor or
// per-column (N).
void matmul_int32(const KernelContext& ctx, const Tensor& a, const Tensor* azp, const Tensor& b, const Tensor* bzp,
                  const MatMulPlan& p, std::vector<int32_t>* out) {
  const std::vector<int32_t> va = quant_values(a, ctx, "A"), vb = quant_values(b, ctx, "B");
  std::vector<int32_t> za = azp ? quant_values(*azp, ctx, "A's zero point") : std::vector<int32_t>{0};
  std::vector<int32_t> zb = bzp ? quant_values(*bzp, ctx, "B's zero point") : std::vector<int32_t>{0};
  if (za.size() != 1 && static_cast<int64_t>(za.size()) != p.M)
    throw ctx.error("A's zero point must have 1 or M=" + std::to_string(p.M) + " values");
  if (zb.size() != 1 && static_cast<int64_t>(zb.size()) != p.N)
    throw ctx.error("B's zero point must have 1 or N=" + std::to_string(p.N) + " values");
  out->assign(p.a_offsets.size() * static_cast<size_t>(p.M * p.N), 0);
  std::vector<int32_t> am(static_cast<size_t>(p.M * p.K)), bm(static_cast<size_t>(p.K * p.N));
  for (size_t i = 0; i < p.a_offsets.size(); ++i) {
    for (int64_t r = 0; r < p.M; ++r)
      for (int64_t k = 0; k < p.K; ++k)
        am[static_cast<size_t>(r * p.K + k)] =
            va[static_cast<size_t>(p.a_offsets[i] + r * p.K + k)] - za[za.size() == 1 ? 0 : static_cast<size_t>(r)];
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t c = 0; c < p.N; ++c)
        bm[static_cast<size_t>(k * p.N + c)] =
            vb[static_cast<size_t>(p.b_offsets[i] + k * p.N + c)] - zb[zb.size() == 1 ? 0 : static_cast<size_t>(c)];
    gemm_acc<int32_t>(p.M, p.N, p.K, am.data(), p.K, bm.data(), p.N, out->data() + i * static_cast<size_t>(p.M * p.N),
                      p.N);
  }
}

void compute_matmul_integer(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  MatMulPlan p = plan_matmul(a.shape(), b.shape(), ctx);
  std::vector<int32_t> acc;
  matmul_int32(ctx, a, ctx.has_input(2) ? &ctx.input(2) : nullptr, b, ctx.has_input(3) ? &ctx.input(3) : nullptr, p,
               &acc);
  Tensor& y = ctx.output(0, DType::kInt32, p.out);
  std::copy(acc.begin(), acc.end(), y.data<int32_t>());
}

void compute_qlinear_matmul(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(3);
  MatMulPlan p = plan_matmul(a.shape(), b.shape(), ctx);
  std::vector<int32_t> acc;
  matmul_int32(ctx, a, &ctx.input(2), b, &ctx.input(5), p, &acc);
  const std::vector<float> sa = float_values(ctx.input(1), ctx, "a_scale");
  const std::vector<float> sb = float_values(ctx.input(4), ctx, "b_scale");
  const std::vector<float> sy = float_values(ctx.input(6), ctx, "y_scale");
  if (sy.size() != 1) throw ctx.error("y_scale must be a scalar");
  if (sa.size() != 1 && static_cast<int64_t>(sa.size()) != p.M) throw ctx.error("a_scale must have 1 or M values");
  if (sb.size() != 1 && static_cast<int64_t>(sb.size()) != p.N) throw ctx.error("b_scale must have 1 or N values");
  const Tensor& yzp = ctx.input(7);
  const int32_t zy = quant_values(yzp, ctx, "y_zero_point").at(0);
  Tensor& y = ctx.output(0, yzp.dtype(), p.out);
  const int64_t mn = p.M * p.N;
  store_quantized(y, [&](int64_t i) {
    const int64_t r = (i % mn) / p.N, c = i % p.N;
    const float scale =
        sa[sa.size() == 1 ? 0 : static_cast<size_t>(r)] * sb[sb.size() == 1 ? 0 : static_cast<size_t>(c)] / sy[0];
    return static_cast<double>(std::nearbyint(static_cast<float>(acc[static_cast<size_t>(i)]) * scale)) + zy;
  });
}

void infer_matmul_int(InferContext& ctx, size_t ib, DType out) { ctx.set_output(0, out, matmul_dims(ctx, 0, ib)); }

// Input 1 (B) when it is a 2-D float32 constant of the graph (not an
// overridable graph input): the operand worth packing once.
const Tensor* constant_f32_matrix(const Node& node) {
  const Value* v = node.inputs.size() > 1 ? node.inputs[1] : nullptr;
  if (!v || !v->initializer || v->is_graph_input) return nullptr;
  const Tensor& t = *v->initializer;
  if (t.dtype() != DType::kFloat32 || t.rank() != 2 || t.numel() == 0) return nullptr;
  return &t;
}

// B packed for gemm_f32, and the data it was packed from: a run uses it only
// when its B is that same tensor, or that tensor after the session freed its
// data (owns_constant_input).
struct PackedB {
  const float* source = nullptr;
  std::shared_ptr<const PackedMatrixF32> packed;
  const PackedMatrixF32* for_input(const Tensor& b) const {
    return packed && (b.data<float>() == source || b.raw() == nullptr) ? packed.get() : nullptr;
  }
};

// B as an engine saves it: the panels, for the microkernel named in
// `kernel` ("gemm/<microkernel>"). B itself is not stored then.
PackedState packed_state_of(const PackedB& b, bool replaces_b) {
  PackedState st;
  if (!b.packed) return st;
  st.kernel = std::string("gemm/") + b.packed->kernel().name;
  st.isa = cpu_isa_name(b.packed->kernel().isa);
  st.blobs.push_back({"panels", Tensor::wrap(DType::kFloat32, {static_cast<int64_t>(b.packed->size())},
                                             const_cast<float*>(b.packed->data()))});
  st.replaces_constants = replaces_b;
  return st;
}

// B (rows x cols after any transpose) from what an engine saved: used in
// place when packed for this CPU's microkernel, else unpacked and re-packed
// for it once. Null when `st` is not a GEMM's.
std::shared_ptr<const PackedMatrixF32> adopt_packed_b(const Node& node, const PackedState* st, int64_t rows,
                                                      int64_t cols) {
  if (!st || st->kernel.rfind("gemm/", 0) != 0) return nullptr;
  const Tensor* panels = st->blob("panels");
  if (!panels || panels->dtype() != DType::kFloat32) throw Error(node.describe() + ": packed B has no float panels");
  std::shared_ptr<const PackedMatrixF32> p;
  try {
    p = PackedMatrixF32::adopt(PackedMatrixF32::Side::kB, rows, cols, st->kernel.substr(5),
                               std::make_shared<const Tensor>(*panels), panels->data<float>(),
                               static_cast<size_t>(panels->numel()));
  } catch (const std::exception& e) {
    throw Error(node.describe() + ": " + e.what());
  }
  if (!p) throw Error(node.describe() + ": B was packed for microkernel '" + st->kernel.substr(5) + "', unknown here");
  if (&p->kernel() == &gemm_f32_default_kernel()) return p;
  std::vector<float> plain(static_cast<size_t>(rows * cols));
  p->unpack(plain.data());
  return PackedMatrixF32::pack(PackedMatrixF32::Side::kB, plain.data(), cols, false, rows, cols,
                               gemm_f32_default_kernel());
}

// B as it was given from its packed copy: rows x cols, or (transposed) cols x
// rows; undefined when not packed.
Tensor unpacked_b(const PackedB& b, bool transposed) {
  if (!b.packed) return {};
  const int64_t rows = b.packed->rows(), cols = b.packed->cols();
  Tensor plain(DType::kFloat32, {rows, cols});
  b.packed->unpack(plain.data<float>());
  if (!transposed) return plain;
  Tensor t(DType::kFloat32, {cols, rows});
  const float* src = plain.data<float>();
  float* dst = t.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  return t;
}

class MatMulKernel : public Kernel {
 public:
  MatMulKernel(const Node& node, const PackedState* packed) {
    if (const Tensor* b = constant_f32_matrix(node)) {
      b_.packed = adopt_packed_b(node, packed, b->dim(0), b->dim(1));
      if (b_.packed) return;
      if (!b->raw()) throw Error(node.describe() + ": B has no data (an engine without its packed copy)");
      b_.source = b->data<float>();
      b_.packed = PackedMatrixF32::pack(PackedMatrixF32::Side::kB, b_.source, b->dim(1), false, b->dim(0), b->dim(1),
                                        gemm_f32_default_kernel());
    }
  }

  PackedState packed_state() const override { return packed_state_of(b_, true); }
  Tensor original_constant_input(size_t i) const override { return i == 1 ? unpacked_b(b_, false) : Tensor(); }

  // The fast path below is the only one for a float32 B, and it reads the
  // packed copy only.
  bool owns_constant_input(size_t i) const override { return i == 1 && b_.packed; }

  void run(KernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32) return compute_matmul(ctx);
    MatMulPlan p = plan_matmul(a.shape(), b.shape(), ctx);
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, p.out);  // beta = 0: every element written
    if (y.numel() == 0) return;
    const size_t nb = p.a_offsets.size();
    // A's batches stacked over one shared B: a single GEMM with nb * M rows.
    bool stacked = true;
    for (size_t i = 0; i < nb && stacked; ++i)
      stacked = p.b_offsets[i] == 0 && p.a_offsets[i] == static_cast<int64_t>(i) * p.M * p.K;
    const PackedMatrixF32* packed = b_.for_input(b);
    if (stacked) {
      gemm_f32(static_cast<int64_t>(nb) * p.M, p.N, p.K, 1.0f, {a.data<float>(), p.K},
               {b.data<float>(), p.N, false, packed}, 0.0f, y.data<float>(), p.N, ctx.thread_pool());
      return;
    }
    auto one = [&](size_t i, ThreadPool* pool) {
      gemm_f32(p.M, p.N, p.K, 1.0f, {a.data<float>() + p.a_offsets[i], p.K},
               {b.data<float>() + p.b_offsets[i], p.N, false, p.b_offsets[i] == 0 ? packed : nullptr}, 0.0f,
               y.data<float>() + static_cast<int64_t>(i) * p.M * p.N, p.N, pool);
    };
    // Many small products (attention's q k^T per window and head: 49 x 32 x
    // 49, below gemm_f32's threading threshold) run side by side, each on
    // one thread: one after the other, a second thread sat idle. Few large
    // ones split each product.
    ThreadPool* pool = ctx.thread_pool();
    const int threads = pool ? pool->num_threads() : 1;
    if (threads > 1 && nb >= static_cast<size_t>(threads) && p.M * p.N * p.K < 1024 * 1024) {
      parallel_for(pool, static_cast<int64_t>(nb), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) one(static_cast<size_t>(i), nullptr);
      });
      return;
    }
    for (size_t i = 0; i < nb; ++i) one(i, pool);
  }

 private:
  PackedB b_;
};

class GemmKernel : public Kernel {
 public:
  GemmKernel(const Node& node, const PackedState* packed) {
    if (const Tensor* b = constant_f32_matrix(node)) {
      const bool tb = node.attr_int("transB", 0) != 0;
      trans_b_ = tb;
      // Before opset 11 every run takes compute_gemm, which reads B itself.
      owns_b_ = node.opset >= 11;
      b_.packed = adopt_packed_b(node, packed, tb ? b->dim(1) : b->dim(0), tb ? b->dim(0) : b->dim(1));
      if (b_.packed) return;
      if (!b->raw()) throw Error(node.describe() + ": B has no data (an engine without its packed copy)");
      b_.source = b->data<float>();
      b_.packed = PackedMatrixF32::pack(PackedMatrixF32::Side::kB, b_.source, b->dim(1), tb, tb ? b->dim(1) : b->dim(0),
                                        tb ? b->dim(0) : b->dim(1), gemm_f32_default_kernel());
    }
  }

  PackedState packed_state() const override { return packed_state_of(b_, owns_b_); }
  Tensor original_constant_input(size_t i) const override { return i == 1 ? unpacked_b(b_, trans_b_) : Tensor(); }

  bool owns_constant_input(size_t i) const override { return i == 1 && owns_b_; }

  void run(KernelContext& ctx) const override {
    const Node& node = ctx.node();
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    // Anything unusual (other types, ranks, opset < 11 rules) takes the
    // reference path, which also reports the errors.
    if (a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32 || a.rank() != 2 || b.rank() != 2 ||
        node.opset < 11 || (c && (c->dtype() != DType::kFloat32 || c->rank() > 2)))
      return compute_gemm(ctx);
    const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
    const float alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
    const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
    const int64_t Kb = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
    if (K != Kb) return compute_gemm(ctx);
    std::vector<int64_t> cst;
    if (c) {
      if (broadcast_shapes({c->shape(), Shape{M, N}}, node) != Shape{M, N}) return compute_gemm(ctx);
      cst = broadcast_strides(c->shape(), Shape{M, N});
    }
    // Every element is written: from C below, or by the GEMM with beta = 0.
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, {M, N});
    if (y.numel() == 0) return;
    float* py = y.data<float>();
    const bool use_c = c != nullptr;
    if (use_c) {
      const float* pc = c->data<float>();
      if (cst[0] == 0 && cst[1] == 1 && beta == 1.0f) {
        // A bias row (the usual C): copied row by row.
        for (int64_t i = 0; i < M; ++i) std::memcpy(py + i * N, pc, static_cast<size_t>(N) * sizeof(float));
      } else {
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) py[i * N + j] = beta * pc[i * cst[0] + j * cst[1]];
      }
    }
    gemm_f32(M, N, K, alpha, {a.data<float>(), a.dim(1), ta}, {b.data<float>(), b.dim(1), tb, b_.for_input(b)},
             use_c ? 1.0f : 0.0f, py, N, ctx.thread_pool());
  }

 private:
  PackedB b_;
  bool owns_b_ = false;
  bool trans_b_ = false;  // B is given transposed (transB): packed as its transpose
};

}  // namespace

KILN_OP(MatMul) {
  return OpSchema{
      .name = "MatMul",
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64,
                DType::kUInt32, DType::kUInt64},
      .infer =
          [](InferContext& ctx) {
            if (ctx.input_dtype(0) != ctx.input_dtype(1)) throw ctx.error("A and B types differ");
            ctx.set_output(0, ctx.input_dtype(0), matmul_dims(ctx, 0, 1));
          },
      .compute = compute_matmul,
      .make_kernel = [](const Node& node,
                        BuildContext& bc) { return std::make_unique<MatMulKernel>(node, bc.packed_state(node)); },
  };
}

static OpSchema gemm_schema(int since, int until) {
  return OpSchema{
      .name = "Gemm",
      .since = since,
      .until = until,
      .min_inputs = since >= 11 ? 2 : 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64,
                DType::kUInt32, DType::kUInt64},
      .infer = infer_gemm,
      .compute = compute_gemm,
      .make_kernel = [](const Node& node,
                        BuildContext& bc) { return std::make_unique<GemmKernel>(node, bc.packed_state(node)); },
  };
}
KILN_OP(Gemm_1) { return gemm_schema(1, 6); }
KILN_OP(Gemm_7) { return gemm_schema(7, 10); }
KILN_OP(Gemm_11) { return gemm_schema(11, INT_MAX); }

KILN_OP(MatMulInteger) {
  return OpSchema{
      .name = "MatMulInteger",
      .since = 10,
      .min_inputs = 2,
      .max_inputs = 4,
      .max_outputs = 1,
      .types = {DType::kUInt8, DType::kInt8},
      .infer = [](InferContext& ctx) { infer_matmul_int(ctx, 1, DType::kInt32); },
      .compute = compute_matmul_integer,
  };
}

KILN_OP(QLinearMatMul) {
  return OpSchema{
      .name = "QLinearMatMul",
      .since = 10,
      .min_inputs = 8,
      .max_inputs = 8,
      .max_outputs = 1,
      .types = {DType::kUInt8, DType::kInt8},
      .infer = [](InferContext& ctx) { infer_matmul_int(ctx, 3, ctx.input_dtype(7)); },
      .compute = compute_qlinear_matmul,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Gemm) {
  return {.op = "Gemm", .family = OpFamily::kMatMul, .cost = cost::gemm(), .accepts_epilogue = true};
}

KILN_OP_FACTS(MatMul) {
  return {.op = "MatMul", .family = OpFamily::kMatMul, .cost = cost::matmul(), .accepts_epilogue = true};
}

KILN_OP_FACTS(MatMulInteger) { return {.op = "MatMulInteger", .family = OpFamily::kMatMul, .cost = cost::matmul()}; }

KILN_OP_FACTS(QLinearMatMul) { return {.op = "QLinearMatMul", .family = OpFamily::kMatMul, .cost = cost::matmul()}; }

}  // namespace kiln
