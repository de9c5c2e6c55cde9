// RNN, GRU and LSTM: one naive recurrent runner, three cell functions.
// Versions: RNN/LSTM 1-13 and 14+ (the `layout` attribute), GRU 1-2 (no
// linear_before_reset), 3-13 and 14+. Opset 1 also carried `output_sequence`,
// which only said whether Y is wanted; it changes no value.
//
// Float32 with the default activations runs on RecurrentKernelF32: one packed
// GEMM projects the input of every time step, then each step is one small GEMM
// against R plus the gate math in float. Everything else (other types,
// activation lists, input_forget) runs the reference run_recurrent, which is
// the specification and also reports malformed inputs.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/gemm_f32.h"
#include "kernels/cpu/vec_math_f32.h"
#include "ops/common.h"

namespace kiln {

namespace {

enum class Cell { kRnn, kGru, kLstm };

int gates_of(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 3 : 4; }
int acts_of(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 2 : 3; }

// ------------------------------------------------------------ activations

struct Activation {
  enum Kind {
    kRelu,
    kTanh,
    kSigmoid,
    kAffine,
    kLeakyRelu,
    kThresholdedRelu,
    kScaledTanh,
    kHardSigmoid,
    kElu,
    kSoftsign,
    kSoftplus
  };
  Kind kind = kTanh;
  double alpha = 0, beta = 0;

  double operator()(double x) const {
    switch (kind) {
      case kRelu: return x > 0 ? x : 0;
      case kTanh: return std::tanh(x);
      case kSigmoid: return 1 / (1 + std::exp(-x));
      case kAffine: return alpha * x + beta;
      case kLeakyRelu: return x >= 0 ? x : alpha * x;
      case kThresholdedRelu: return x > alpha ? x : 0;
      case kScaledTanh: return alpha * std::tanh(beta * x);
      case kHardSigmoid: return std::max(0.0, std::min(1.0, alpha * x + beta));
      case kElu: return x >= 0 ? x : alpha * (std::exp(x) - 1);
      case kSoftsign: return x / (1 + std::fabs(x));
      case kSoftplus: return std::log1p(std::exp(-std::fabs(x))) + std::max(x, 0.0);
    }
    return x;
  }
};

struct ActivationInfo {
  const char* name;
  Activation::Kind kind;
  int uses;  // 0: none, 1: alpha, 2: alpha and beta
  double alpha, beta;
};

constexpr ActivationInfo kActivations[] = {
    {"relu", Activation::kRelu, 0, 0, 0},
    {"tanh", Activation::kTanh, 0, 0, 0},
    {"sigmoid", Activation::kSigmoid, 0, 0, 0},
    {"affine", Activation::kAffine, 2, 1.0, 0.0},
    {"leakyrelu", Activation::kLeakyRelu, 1, 0.01, 0},
    {"thresholdedrelu", Activation::kThresholdedRelu, 1, 1.0, 0},
    {"scaledtanh", Activation::kScaledTanh, 2, 1.0, 1.0},
    {"hardsigmoid", Activation::kHardSigmoid, 2, 0.2, 0.5},
    {"elu", Activation::kElu, 1, 1.0, 0},
    {"softsign", Activation::kSoftsign, 0, 0, 0},
    {"softplus", Activation::kSoftplus, 0, 0, 0},
};

// ------------------------------------------------------------ attributes

struct RnnAttrs {
  Cell cell = Cell::kRnn;
  int num_dirs = 1;
  bool reverse_only = false;
  int64_t hidden = -1;  // -1: from R's shape
  int layout = 0;
  double clip = 0;  // 0: none
  bool linear_before_reset = false;
  bool input_forget = false;
  std::vector<Activation> acts;  // acts_of(cell) per direction
};

RnnAttrs parse_attrs(const Node& n, Cell cell) {
  RnnAttrs a;
  a.cell = cell;
  auto fail = [&](const std::string& m) { return Error(n.describe() + ": " + m); };
  std::string dir = n.attr_string("direction", "forward");
  if (dir == "bidirectional")
    a.num_dirs = 2;
  else if (dir == "reverse")
    a.reverse_only = true;
  else if (dir != "forward")
    throw fail("direction must be forward, reverse or bidirectional, got '" + dir + "'");
  a.hidden = n.attr_int("hidden_size", -1);
  if (n.has_attr("hidden_size") && a.hidden <= 0)
    throw fail("hidden_size must be positive, got " + std::to_string(a.hidden));
  a.layout = static_cast<int>(n.opset >= 14 ? n.attr_int("layout", 0) : 0);
  if (a.layout != 0 && a.layout != 1) throw fail("layout must be 0 or 1, got " + std::to_string(a.layout));
  if (n.has_attr("clip")) {
    a.clip = n.attr_float("clip", 0);
    if (!(a.clip > 0)) throw fail("clip must be positive, got " + std::to_string(a.clip));
  }
  if (cell == Cell::kGru && n.opset >= 3) a.linear_before_reset = n.attr_int("linear_before_reset", 0) != 0;
  if (cell == Cell::kLstm) a.input_forget = n.attr_int("input_forget", 0) != 0;

  std::vector<std::string> names;
  if (n.has_attr("activations")) names = n.attr_strings("activations");
  size_t per_dir = static_cast<size_t>(acts_of(cell));
  if (names.empty()) {
    if (cell == Cell::kRnn)
      names = {"Tanh"};
    else if (cell == Cell::kGru)
      names = {"Sigmoid", "Tanh"};
    else
      names = {"Sigmoid", "Tanh", "Tanh"};
  }
  if (a.num_dirs == 2 && names.size() == per_dir) {
    std::vector<std::string> forward = names;  // the same functions for both directions
    names.insert(names.end(), forward.begin(), forward.end());
  }
  if (names.size() != per_dir * static_cast<size_t>(a.num_dirs))
    throw fail("activations lists " + std::to_string(names.size()) + " functions, expected " +
               std::to_string(per_dir * static_cast<size_t>(a.num_dirs)));
  // activation_alpha/beta are consumed in order by the functions that take them.
  std::vector<float> alphas = n.attr_floats("activation_alpha"), betas = n.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  for (const std::string& name : names) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    const ActivationInfo* info = nullptr;
    for (const ActivationInfo& k : kActivations)
      if (lower == k.name) info = &k;
    if (!info) throw fail("unknown activation '" + name + "'");
    Activation act;
    act.kind = info->kind;
    act.alpha = info->alpha;
    act.beta = info->beta;
    if (info->uses >= 1 && ai < alphas.size()) act.alpha = alphas[ai++];
    if (info->uses >= 2 && bi < betas.size()) act.beta = betas[bi++];
    a.acts.push_back(act);
  }
  return a;
}

// ------------------------------------------------------------ kernel

// Plain row-major views of the inputs in the compute type.
template <typename A>
struct Inputs {
  int64_t seq = 0, batch = 0, in = 0, hid = 0;
  std::vector<A> x, w, r, b, h0, c0, p;  // b, h0, c0, p empty when absent
  std::vector<int64_t> lens;
};

template <typename T, typename A>
std::vector<A> to_acc(const Tensor& t) {
  std::vector<A> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<A>(acc_t<T>(t.data<T>()[i]));
  return v;
}

void expect_shape(const KernelContext& ctx, const Tensor& t, const char* name, const Shape& want) {
  if (t.shape() != want)
    throw ctx.error(std::string(name) + " has shape [" + shape_str(t.shape()) + "], expected [" + shape_str(want) +
                    "]");
}

template <typename T>
void run_recurrent(KernelContext& ctx, const RnnAttrs& a) {
  using A = acc_t<T>;
  const int G = gates_of(a.cell);
  const Tensor& X = ctx.input(0);
  const Tensor& W = ctx.input(1);
  const Tensor& R = ctx.input(2);
  if (X.rank() != 3) throw ctx.error("X must have rank 3, got [" + shape_str(X.shape()) + "]");
  if (W.rank() != 3 || R.rank() != 3) throw ctx.error("W and R must have rank 3");
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input(i).dtype() != X.dtype() && i != 4)
      throw ctx.error("input " + std::to_string(i) + " is " + dtype_name(ctx.input(i).dtype()) + ", X is " +
                      dtype_name(X.dtype()));
  const int64_t D = a.num_dirs;
  Inputs<A> in;
  in.seq = a.layout ? X.dim(1) : X.dim(0);
  in.batch = a.layout ? X.dim(0) : X.dim(1);
  in.in = X.dim(2);
  in.hid = a.hidden > 0 ? a.hidden : R.dim(2);
  const int64_t S = in.seq, B = in.batch, I = in.in, H = in.hid;
  expect_shape(ctx, W, "W", {D, G * H, I});
  expect_shape(ctx, R, "R", {D, G * H, H});
  in.x = to_acc<T, A>(X);
  in.w = to_acc<T, A>(W);
  in.r = to_acc<T, A>(R);
  if (ctx.has_input(3)) {
    expect_shape(ctx, ctx.input(3), "B", {D, 2 * G * H});
    in.b = to_acc<T, A>(ctx.input(3));
  }
  in.lens.assign(static_cast<size_t>(B), S);
  if (ctx.has_input(4)) {
    in.lens = read_ints(ctx.input(4), ctx, "sequence_lens");
    if (static_cast<int64_t>(in.lens.size()) != B)
      throw ctx.error("sequence_lens has " + std::to_string(in.lens.size()) + " entries, batch size is " +
                      std::to_string(B));
    for (int64_t l : in.lens)
      if (l < 0 || l > S)
        throw ctx.error("sequence length " + std::to_string(l) + " is outside [0, " + std::to_string(S) + "]");
  }
  Shape state_shape = a.layout ? Shape{B, D, H} : Shape{D, B, H};
  if (ctx.has_input(5)) {
    expect_shape(ctx, ctx.input(5), "initial_h", state_shape);
    in.h0 = to_acc<T, A>(ctx.input(5));
  }
  if (a.cell == Cell::kLstm && ctx.has_input(6)) {
    expect_shape(ctx, ctx.input(6), "initial_c", state_shape);
    in.c0 = to_acc<T, A>(ctx.input(6));
  }
  if (a.cell == Cell::kLstm && ctx.has_input(7)) {
    expect_shape(ctx, ctx.input(7), "P", {D, 3 * H});
    in.p = to_acc<T, A>(ctx.input(7));
  }

  // Outputs, zero-filled: steps past a batch entry's length stay zero in Y.
  Tensor Y(X.dtype(), a.layout ? Shape{B, S, D, H} : Shape{S, D, B, H});
  Tensor Yh(X.dtype(), state_shape);
  Tensor Yc_t = a.cell == Cell::kLstm ? Tensor(X.dtype(), state_shape) : Tensor();
  Tensor* Yc = a.cell == Cell::kLstm ? &Yc_t : nullptr;
  auto state_at = [&](int64_t d, int64_t b) { return a.layout ? (b * D + d) * H : (d * B + b) * H; };
  auto y_at = [&](int64_t t, int64_t d, int64_t b) {
    return a.layout ? ((b * S + t) * D + d) * H : ((t * D + d) * B + b) * H;
  };
  auto x_at = [&](int64_t t, int64_t b) { return a.layout ? (b * S + t) * I : (t * B + b) * I; };
  auto clip = [&](A v) {
    return a.clip > 0 ? std::max(static_cast<A>(-a.clip), std::min(static_cast<A>(a.clip), v)) : v;
  };

  std::vector<A> h(static_cast<size_t>(H)), c(static_cast<size_t>(H)), xw(static_cast<size_t>(G * H)),
      hr(static_cast<size_t>(G * H)), h_new(static_cast<size_t>(H)), rh(static_cast<size_t>(H));
  // R's rows dotted with v, plus R's bias; for gates [g0, g1).
  auto rec = [&](int64_t d, const std::vector<A>& v, int64_t row0, int64_t row1, std::vector<A>& out) {
    for (int64_t row = row0; row < row1; ++row) {
      A s = in.b.empty() ? A(0) : in.b[static_cast<size_t>(d * 2 * G * H + G * H + row)];
      const A* rr = &in.r[static_cast<size_t>((d * G * H + row) * H)];
      for (int64_t k = 0; k < H; ++k) s += rr[k] * v[static_cast<size_t>(k)];
      out[static_cast<size_t>(row)] = s;
    }
  };
  for (int64_t d = 0; d < D; ++d) {
    bool reverse = a.reverse_only || d == 1;
    const Activation* act = &a.acts[static_cast<size_t>(d * acts_of(a.cell))];
    const A* pd = in.p.empty() ? nullptr : &in.p[static_cast<size_t>(d * 3 * H)];
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < H; ++j) {
        h[static_cast<size_t>(j)] = in.h0.empty() ? A(0) : in.h0[static_cast<size_t>(state_at(d, b) + j)];
        c[static_cast<size_t>(j)] = in.c0.empty() ? A(0) : in.c0[static_cast<size_t>(state_at(d, b) + j)];
      }
      int64_t len = in.lens[static_cast<size_t>(b)];
      for (int64_t step = 0; step < len; ++step) {
        int64_t t = reverse ? len - 1 - step : step;
        const A* xt = &in.x[static_cast<size_t>(x_at(t, b))];
        for (int64_t row = 0; row < G * H; ++row) {
          A s = in.b.empty() ? A(0) : in.b[static_cast<size_t>(d * 2 * G * H + row)];
          const A* wr = &in.w[static_cast<size_t>((d * G * H + row) * I)];
          for (int64_t k = 0; k < I; ++k) s += wr[k] * xt[k];
          xw[static_cast<size_t>(row)] = s;
        }
        rec(d, h, 0, G * H, hr);
        for (int64_t j = 0; j < H; ++j) {
          size_t u = static_cast<size_t>(j);
          if (a.cell == Cell::kRnn) {
            h_new[u] = static_cast<A>(act[0](clip(xw[u] + hr[u])));
          } else if (a.cell == Cell::kLstm) {  // gates i, o, f, c
            A pi = pd ? pd[j] : A(0), po = pd ? pd[H + j] : A(0), pf = pd ? pd[2 * H + j] : A(0);
            A ig = static_cast<A>(act[0](clip(xw[u] + hr[u] + pi * c[u])));
            A fg = a.input_forget ? A(1) - ig : static_cast<A>(act[0](clip(xw[2 * H + j] + hr[2 * H + j] + pf * c[u])));
            A cg = static_cast<A>(act[1](clip(xw[3 * H + j] + hr[3 * H + j])));
            A cn = fg * c[u] + ig * cg;
            A og = static_cast<A>(act[0](clip(xw[H + j] + hr[H + j] + po * cn)));
            c[u] = cn;  // c[j] is read only for unit j, so updating in place is safe
            h_new[u] = og * static_cast<A>(act[2](cn));
          }
        }
        if (a.cell == Cell::kGru) {  // gates z, r, h
          std::vector<A> z(static_cast<size_t>(H)), r(static_cast<size_t>(H));
          for (int64_t j = 0; j < H; ++j) {
            z[static_cast<size_t>(j)] = static_cast<A>(act[0](clip(xw[j] + hr[j])));
            r[static_cast<size_t>(j)] = static_cast<A>(act[0](clip(xw[H + j] + hr[H + j])));
          }
          if (!a.linear_before_reset) {
            for (int64_t j = 0; j < H; ++j)
              rh[static_cast<size_t>(j)] = r[static_cast<size_t>(j)] * h[static_cast<size_t>(j)];
            rec(d, rh, 2 * H, 3 * H, hr);  // hr's h-gate rows now hold (r . h) Rh^T + Rbh
          }
          for (int64_t j = 0; j < H; ++j) {
            size_t u = static_cast<size_t>(j);
            A rec_part = a.linear_before_reset ? r[u] * hr[2 * H + j] : hr[2 * H + j];
            A hh = static_cast<A>(act[1](clip(xw[2 * H + j] + rec_part)));
            h_new[u] = (A(1) - z[u]) * hh + z[u] * h[u];
          }
        }
        h = h_new;
        T* yp = Y.data<T>() + y_at(t, d, b);
        for (int64_t j = 0; j < H; ++j) yp[j] = static_cast<T>(h[static_cast<size_t>(j)]);
      }
      for (int64_t j = 0; j < H; ++j) {
        Yh.data<T>()[state_at(d, b) + j] = static_cast<T>(h[static_cast<size_t>(j)]);
        if (Yc) Yc->data<T>()[state_at(d, b) + j] = static_cast<T>(c[static_cast<size_t>(j)]);
      }
    }
  }
  Tensor outs[3] = {std::move(Y), std::move(Yh), std::move(Yc_t)};
  for (size_t i = 0; i < ctx.num_outputs() && i < 3; ++i) ctx.set_output(i, std::move(outs[i]));
}

// ------------------------------------------------------------ float32 gate math

// The gate math is short passes over one array each: element-wise adds and
// products that vectorize, and the activations through the vector math of
// kernels/cpu/vec_math_f32.h (the ISA's variant, a few ulp).

void add_into(int64_t n, const float* a, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a[i];
}
void mul_add_into(int64_t n, const float* a, const float* b, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a[i] * b[i];
}
void sigmoid_inplace(int64_t n, float* y) { vec_math_f32().sigmoid(y, y, n); }
void tanh_inplace(int64_t n, float* y) { vec_math_f32().tanh(y, y, n); }
// The node's clip (0: none), applied to pre-activations.
void clip_inplace(int64_t n, float clip, float* y) {
  if (clip <= 0) return;
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(-clip, std::min(clip, y[i]));
}

// One batch entry's step. xg: the input projection of step t with its biases;
// g: h_{t-1} R^T on entry, then the gates in place; h (and c) are updated.
void lstm_step(int64_t H, const float* xg, float* g, const float* peep, float clip, float* h, float* c) {
  float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;  // ONNX's gate order i, o, f, c
  add_into(4 * H, xg, g);
  if (peep) {
    mul_add_into(H, peep, c, gi);
    mul_add_into(H, peep + 2 * H, c, gf);
  }
  clip_inplace(H, clip, gi);
  clip_inplace(2 * H, clip, gf);  // f and c
  sigmoid_inplace(H, gi);
  sigmoid_inplace(H, gf);
  tanh_inplace(H, gc);
  for (int64_t j = 0; j < H; ++j) c[j] = gf[j] * c[j] + gi[j] * gc[j];
  if (peep) mul_add_into(H, peep + H, c, go);  // o's peephole sees the new c
  clip_inplace(H, clip, go);
  sigmoid_inplace(H, go);
  vec_math_f32().tanh(c, h, H);
  for (int64_t j = 0; j < H; ++j) h[j] *= go[j];
}

void rnn_step(int64_t H, const float* xg, float* g, float clip, float* h) {
  add_into(H, xg, g);
  clip_inplace(H, clip, g);
  vec_math_f32().tanh(g, h, H);
}

// GRU with linear_before_reset: g holds h R^T for gates z, r, h; rbh is the
// h gate's recurrence bias, which sits inside the reset product.
void gru_lbr_step(int64_t H, const float* xg, float* g, const float* rbh, float clip, float* h) {
  float *gz = g, *gr = g + H, *gh = g + 2 * H;
  add_into(2 * H, xg, g);
  clip_inplace(2 * H, clip, g);
  sigmoid_inplace(2 * H, g);
  for (int64_t j = 0; j < H; ++j) gh[j] = xg[2 * H + j] + gr[j] * (gh[j] + rbh[j]);
  clip_inplace(H, clip, gh);
  tanh_inplace(H, gh);
  for (int64_t j = 0; j < H; ++j) h[j] = (1.0f - gz[j]) * gh[j] + gz[j] * h[j];
}

// GRU without linear_before_reset, first half: g (h R^T for z and r) becomes
// z and r in place, and rh gets r . h.
void gru_reset_step(int64_t H, const float* xg, float* g, float clip, const float* h, float* rh) {
  add_into(2 * H, xg, g);
  clip_inplace(2 * H, clip, g);
  sigmoid_inplace(2 * H, g);
  for (int64_t j = 0; j < H; ++j) rh[j] = g[H + j] * h[j];
}

// Second half: hh holds (r . h) Rh^T; the h gate's biases are in xg.
void gru_update_step(int64_t H, const float* xg, float* hh, const float* z, float clip, float* h) {
  add_into(H, xg + 2 * H, hh);
  clip_inplace(H, clip, hh);
  tanh_inplace(H, hh);
  for (int64_t j = 0; j < H; ++j) h[j] = (1.0f - z[j]) * hh[j] + z[j] * h[j];
}

// ------------------------------------------------------------ float32 kernel

bool has_default_activations(const RnnAttrs& a) {
  const size_t per_dir = static_cast<size_t>(acts_of(a.cell));
  for (size_t i = 0; i < a.acts.size(); ++i) {
    bool first = i % per_dir == 0;
    Activation::Kind want = a.cell != Cell::kRnn && first ? Activation::kSigmoid : Activation::kTanh;
    if (a.acts[i].kind != want) return false;
  }
  return true;
}

// Input i when it is a rank-3 float32 constant of the graph (not an
// overridable graph input).
const Tensor* constant_f32(const Node& node, size_t i) {
  const Value* v = i < node.inputs.size() ? node.inputs[i] : nullptr;
  if (!v || !v->initializer || v->is_graph_input) return nullptr;
  const Tensor& t = *v->initializer;
  return t.dtype() == DType::kFloat32 && t.rank() == 3 && t.numel() > 0 && t.raw() ? &t : nullptr;
}

// The sizes of one run, once its inputs have been checked.
struct RunDims {
  int64_t S = 0, B = 0, I = 0, H = 0, D = 1, G = 1;
};

class RecurrentKernelF32 : public Kernel {
 public:
  RecurrentKernelF32(const Node& node, Cell cell) : attrs_(parse_attrs(node, cell)) {
    fast_ = has_default_activations(attrs_) && !attrs_.input_forget;
    const Tensor* w = constant_f32(node, 1);
    const Tensor* r = constant_f32(node, 2);
    if (!fast_ || !w || !r) return;
    const int64_t D = attrs_.num_dirs, G = gates_of(cell);
    const int64_t H = attrs_.hidden > 0 ? attrs_.hidden : r->dim(2), I = w->dim(2);
    if (w->shape() != Shape{D, G * H, I} || r->shape() != Shape{D, G * H, H}) return;
    const GemmF32Microkernel& mk = gemm_f32_default_kernel();
    using Side = PackedMatrixF32::Side;
    w_source_ = w->data<float>();
    r_source_ = r->data<float>();
    for (int64_t d = 0; d < D; ++d) {
      // op(B) is W^T (I x G*H) and R^T (H x the gates of the first step GEMM).
      const float* rd = r_source_ + d * G * H * H;
      w_packed_.push_back(PackedMatrixF32::pack(Side::kB, w_source_ + d * G * H * I, I, true, I, G * H, mk));
      r_packed_.push_back(PackedMatrixF32::pack(Side::kB, rd, H, true, H, first_gemm_gates() * H, mk));
      if (split_gru()) rh_packed_.push_back(PackedMatrixF32::pack(Side::kB, rd + 2 * H * H, H, true, H, H, mk));
    }
  }

  void run(KernelContext& ctx) const override {
    RunDims dims;
    std::vector<int64_t> lens;
    if (!fast_ || !fast_inputs(ctx, &dims, &lens)) return reference(ctx);
    run_fast(ctx, dims, lens);
  }

 private:
  // GRU without linear_before_reset needs r before the h gate's recurrence:
  // two GEMMs per step (gates z and r on h, then gate h on r . h).
  bool split_gru() const { return attrs_.cell == Cell::kGru && !attrs_.linear_before_reset; }
  int64_t first_gemm_gates() const { return split_gru() ? 2 : gates_of(attrs_.cell); }

  void reference(KernelContext& ctx) const {
    dispatch<FloatTypes>(ctx.input(0).dtype(), ctx.node().op_type,
                         [&]<typename T>() { run_recurrent<T>(ctx, attrs_); });
  }

  bool fast_inputs(const KernelContext& ctx, RunDims* d, std::vector<int64_t>* lens) const;
  void run_fast(KernelContext& ctx, const RunDims& d, const std::vector<int64_t>& lens) const;
  void run_direction(KernelContext& ctx, const RunDims& d, const std::vector<int64_t>& lens, int64_t dir, float* xw,
                     float* y, float* yh, float* yc) const;

  RnnAttrs attrs_;
  bool fast_ = false;
  const float* w_source_ = nullptr;  // the initializers that the packed operands hold
  const float* r_source_ = nullptr;
  std::vector<std::shared_ptr<const PackedMatrixF32>> w_packed_, r_packed_, rh_packed_;  // one per direction
};

// True when every input is float32 of the expected shape; anything else goes
// to the reference, which reports it.
bool RecurrentKernelF32::fast_inputs(const KernelContext& ctx, RunDims* d, std::vector<int64_t>* lens) const {
  const Tensor& X = ctx.input(0);
  const Tensor& W = ctx.input(1);
  const Tensor& R = ctx.input(2);
  if (X.dtype() != DType::kFloat32 || X.rank() != 3 || W.dtype() != DType::kFloat32 || W.rank() != 3 ||
      R.dtype() != DType::kFloat32 || R.rank() != 3)
    return false;
  d->G = gates_of(attrs_.cell);
  d->D = attrs_.num_dirs;
  d->S = attrs_.layout ? X.dim(1) : X.dim(0);
  d->B = attrs_.layout ? X.dim(0) : X.dim(1);
  d->I = X.dim(2);
  d->H = attrs_.hidden > 0 ? attrs_.hidden : R.dim(2);
  const int64_t GH = d->G * d->H;
  if (d->S == 0 || d->B == 0 || d->I == 0 || d->H == 0) return false;  // nothing to gain; the reference handles it
  if (W.shape() != Shape{d->D, GH, d->I} || R.shape() != Shape{d->D, GH, d->H}) return false;
  auto absent_or = [&](size_t i, const Shape& s) {
    return !ctx.has_input(i) || (ctx.input(i).dtype() == DType::kFloat32 && ctx.input(i).shape() == s);
  };
  const Shape state = attrs_.layout ? Shape{d->B, d->D, d->H} : Shape{d->D, d->B, d->H};
  if (!absent_or(3, {d->D, 2 * GH}) || !absent_or(5, state)) return false;
  if (attrs_.cell == Cell::kLstm && (!absent_or(6, state) || !absent_or(7, {d->D, 3 * d->H}))) return false;
  lens->assign(static_cast<size_t>(d->B), d->S);
  if (ctx.has_input(4)) {
    const Tensor& l = ctx.input(4);
    if ((l.dtype() != DType::kInt32 && l.dtype() != DType::kInt64) || l.numel() != d->B) return false;
    *lens = read_ints(l, ctx, "sequence_lens");
    for (int64_t v : *lens)
      if (v < 0 || v > d->S) return false;
  }
  return true;
}

void RecurrentKernelF32::run_fast(KernelContext& ctx, const RunDims& d, const std::vector<int64_t>& lens) const {
  const Shape state = attrs_.layout ? Shape{d.B, d.D, d.H} : Shape{d.D, d.B, d.H};
  const Shape y_shape = attrs_.layout ? Shape{d.B, d.S, d.D, d.H} : Shape{d.S, d.D, d.B, d.H};
  const size_t outs = ctx.num_outputs();
  float* y = outs > 0 ? ctx.output(0, DType::kFloat32, y_shape).data<float>() : nullptr;
  float* yh = outs > 1 ? ctx.output(1, DType::kFloat32, state).data<float>() : nullptr;
  float* yc = outs > 2 && attrs_.cell == Cell::kLstm ? ctx.output(2, DType::kFloat32, state).data<float>() : nullptr;
  std::vector<float> xw(static_cast<size_t>(d.S * d.B * d.G * d.H));
  for (int64_t dir = 0; dir < d.D; ++dir) run_direction(ctx, d, lens, dir, xw.data(), y, yh, yc);
}

// GEMMs below this many multiply-adds (~0.1 ms on one core) run on the
// calling thread: splitting them saves little, a step's GEMM (B rows) comes S
// times in a row, and on a busy machine one wake of the pool cost the zoo LSTM
// ~7 ms per run at 2 threads (its 2M multiply-add projection; 0.6 ms without).
constexpr int64_t kMinPooledMacs = int64_t{1} << 22;
// The recurrence of a batch of two or more splits over the pool by batch
// entry (one fork per sequence) from this many multiply-adds in all.
constexpr int64_t kMinSplitStepMacs = int64_t{1} << 20;

void RecurrentKernelF32::run_direction(KernelContext& ctx, const RunDims& d, const std::vector<int64_t>& lens,
                                       int64_t dir, float* xw, float* y, float* yh, float* yc) const {
  const int64_t S = d.S, B = d.B, I = d.I, H = d.H, D = d.D, G = d.G, GH = G * H;
  const bool reverse = attrs_.reverse_only || dir == 1;
  const bool lstm = attrs_.cell == Cell::kLstm;
  const float clip = static_cast<float>(attrs_.clip);  // 0: none
  ThreadPool* pool = ctx.thread_pool();
  const Tensor& W = ctx.input(1);
  const Tensor& R = ctx.input(2);
  const bool packed_r = R.data<float>() == r_source_;
  const float* wd = W.data<float>() + dir * GH * I;
  const float* rd = R.data<float>() + dir * GH * H;

  // Input projection of every step: xw[row] = x[row] W^T + Wb + Rb, where a
  // row is (t, b) in X's own order; GRU's linear_before_reset keeps Rbh apart.
  const float* bias = ctx.has_input(3) ? ctx.input(3).data<float>() + dir * 2 * GH : nullptr;
  std::vector<float> row_bias(static_cast<size_t>(GH), 0.0f), rbh(static_cast<size_t>(H), 0.0f);
  if (bias) {
    for (int64_t k = 0; k < GH; ++k) row_bias[static_cast<size_t>(k)] = bias[k] + bias[GH + k];
    if (attrs_.cell == Cell::kGru && attrs_.linear_before_reset)
      for (int64_t j = 0; j < H; ++j) {
        row_bias[static_cast<size_t>(2 * H + j)] = bias[2 * H + j];
        rbh[static_cast<size_t>(j)] = bias[GH + 2 * H + j];
      }
    for (int64_t row = 0; row < S * B; ++row) std::copy(row_bias.begin(), row_bias.end(), xw + row * GH);
  }
  const PackedMatrixF32* w_pack = W.data<float>() == w_source_ ? w_packed_[static_cast<size_t>(dir)].get() : nullptr;
  ThreadPool* proj_pool = S * B * GH * I >= kMinPooledMacs ? pool : nullptr;
  gemm_f32(S * B, GH, I, 1.0f, {ctx.input(0).data<float>(), I}, {wd, I, true, w_pack}, bias ? 1.0f : 0.0f, xw, GH,
           proj_pool);

  // State, one row per batch entry.
  std::vector<float> h(static_cast<size_t>(B * H), 0.0f), c(lstm ? static_cast<size_t>(B * H) : 0, 0.0f);
  auto state_at = [&](int64_t b) { return attrs_.layout ? (b * D + dir) * H : (dir * B + b) * H; };
  for (int64_t b = 0; b < B; ++b) {
    if (ctx.has_input(5)) std::copy_n(ctx.input(5).data<float>() + state_at(b), H, h.data() + b * H);
    if (lstm && ctx.has_input(6)) std::copy_n(ctx.input(6).data<float>() + state_at(b), H, c.data() + b * H);
  }
  const float* peep = lstm && ctx.has_input(7) ? ctx.input(7).data<float>() + dir * 3 * H : nullptr;

  const int64_t N1 = first_gemm_gates() * H;
  const PackedMatrixF32* r_pack = packed_r ? r_packed_[static_cast<size_t>(dir)].get() : nullptr;
  const PackedMatrixF32* rh_pack = packed_r && split_gru() ? rh_packed_[static_cast<size_t>(dir)].get() : nullptr;
  std::vector<float> hg(static_cast<size_t>(B * N1)), rh, hh;
  if (split_gru()) {
    rh.assign(static_cast<size_t>(B * H), 0.0f);
    hh.assign(static_cast<size_t>(B * H), 0.0f);
  }
  auto x_row = [&](int64_t t, int64_t b) { return attrs_.layout ? b * S + t : t * B + b; };
  auto y_at = [&](int64_t t, int64_t b) {
    return attrs_.layout ? ((b * S + t) * D + dir) * H : ((t * D + dir) * B + b) * H;
  };
  const int64_t max_len = *std::max_element(lens.begin(), lens.end());
  // The batch entries [b0, b1) through every step. Each entry's recurrence
  // depends on its own state only, so the batch splits over the pool with no
  // synchronization between steps (one fork for the whole sequence instead
  // of one per step). Entries past their length keep their state; their rows
  // of hg are computed and ignored.
  auto run_rows = [&](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    for (int64_t step = 0; step < max_len; ++step) {
      gemm_f32(rows, N1, H, 1.0f, {h.data() + b0 * H, H}, {rd, H, true, r_pack}, 0.0f, hg.data() + b0 * N1, N1,
               nullptr);
      if (split_gru()) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t len = lens[static_cast<size_t>(b)];
          if (step >= len) continue;
          const int64_t t = reverse ? len - 1 - step : step;
          gru_reset_step(H, xw + x_row(t, b) * GH, hg.data() + b * N1, clip, h.data() + b * H, rh.data() + b * H);
        }
        gemm_f32(rows, H, H, 1.0f, {rh.data() + b0 * H, H}, {rd + 2 * H * H, H, true, rh_pack}, 0.0f,
                 hh.data() + b0 * H, H, nullptr);
      }
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t len = lens[static_cast<size_t>(b)];
        if (step >= len) continue;
        const int64_t t = reverse ? len - 1 - step : step;
        const float* xg = xw + x_row(t, b) * GH;
        float* hgb = hg.data() + b * N1;
        float* hb = h.data() + b * H;
        switch (attrs_.cell) {
          case Cell::kRnn: rnn_step(H, xg, hgb, clip, hb); break;
          case Cell::kLstm: lstm_step(H, xg, hgb, peep, clip, hb, c.data() + b * H); break;
          case Cell::kGru:
            if (split_gru())
              gru_update_step(H, xg, hh.data() + b * H, hgb, clip, hb);
            else
              gru_lbr_step(H, xg, hgb, rbh.data(), clip, hb);
            break;
        }
        if (y) std::copy_n(hb, H, y + y_at(t, b));
      }
    }
  };
  const bool split = B >= 2 && max_len * B * N1 * H >= kMinSplitStepMacs;
  parallel_for(split ? pool : nullptr, B, run_rows);
  // Steps past a batch entry's length stay zero in Y.
  for (int64_t b = 0; b < B && y; ++b)
    for (int64_t t = lens[static_cast<size_t>(b)]; t < S; ++t) std::fill_n(y + y_at(t, b), H, 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    if (yh) std::copy_n(h.data() + b * H, H, yh + state_at(b));
    if (yc) std::copy_n(c.data() + b * H, H, yc + state_at(b));
  }
}

// ------------------------------------------------------------ inference

void infer_recurrent(InferContext& ctx, Cell cell) {
  RnnAttrs a = parse_attrs(ctx.node(), cell);
  const ValueType& x = ctx.input_type(0);
  Dim seq = Dim::unknown(), batch = Dim::unknown(), hid = Dim::unknown();
  if (x.shape && x.shape->size() == 3) {
    seq = (*x.shape)[a.layout ? 1 : 0];
    batch = (*x.shape)[a.layout ? 0 : 1];
  }
  if (a.hidden > 0) {
    hid = Dim::known(a.hidden);
  } else {
    const ValueType& r = ctx.input_type(2);
    if (r.shape && r.shape->size() == 3) hid = (*r.shape)[2];
  }
  Dim dirs = Dim::known(a.num_dirs);
  ctx.set_output(0, x.dtype, a.layout ? DimVector{batch, seq, dirs, hid} : DimVector{seq, dirs, batch, hid});
  DimVector state = a.layout ? DimVector{batch, dirs, hid} : DimVector{dirs, batch, hid};
  ctx.set_output(1, x.dtype, state);
  if (cell == Cell::kLstm) ctx.set_output(2, x.dtype, state);
}

OpSchema recurrent_schema(const char* name, Cell cell, int since, int until) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 3,
      .max_inputs = cell == Cell::kLstm ? 8 : 6,
      .min_outputs = 0,
      .max_outputs = cell == Cell::kLstm ? 3 : 2,
      .types = float_dtypes(),
      .check = [cell](const Node& n) -> std::string {
        try {
          parse_attrs(n, cell);
        } catch (const Error& e) {
          return e.what();
        }
        if (n.opset < 14 && n.has_attr("layout")) return "the layout attribute exists from opset 14";
        if (cell == Cell::kGru && n.opset < 3 && n.has_attr("linear_before_reset"))
          return "linear_before_reset exists from opset 3";
        return "";
      },
      .infer = [cell](InferContext& ctx) { infer_recurrent(ctx, cell); },
      .compute =
          [cell](KernelContext& ctx) {
            RnnAttrs a = parse_attrs(ctx.node(), cell);
            dispatch<FloatTypes>(ctx.input(0).dtype(), ctx.node().op_type,
                                 [&]<typename T>() { run_recurrent<T>(ctx, a); });
          },
      .make_kernel = [cell](const Node& node,
                            BuildContext&) { return std::make_unique<RecurrentKernelF32>(node, cell); },
  };
}

}  // namespace

KILN_OP(RNN_1) { return recurrent_schema("RNN", Cell::kRnn, 1, 13); }
KILN_OP(RNN_14) { return recurrent_schema("RNN", Cell::kRnn, 14, INT_MAX); }
KILN_OP(GRU_1) { return recurrent_schema("GRU", Cell::kGru, 1, 2); }
KILN_OP(GRU_3) { return recurrent_schema("GRU", Cell::kGru, 3, 13); }
KILN_OP(GRU_14) { return recurrent_schema("GRU", Cell::kGru, 14, INT_MAX); }
KILN_OP(LSTM_1) { return recurrent_schema("LSTM", Cell::kLstm, 1, 13); }
KILN_OP(LSTM_14) { return recurrent_schema("LSTM", Cell::kLstm, 14, INT_MAX); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(GRU) { return {.op = "GRU", .family = OpFamily::kRecurrent, .cost = cost::recurrent(18)}; }

KILN_OP_FACTS(LSTM) { return {.op = "LSTM", .family = OpFamily::kRecurrent, .cost = cost::recurrent(23)}; }

KILN_OP_FACTS(RNN) { return {.op = "RNN", .family = OpFamily::kRecurrent, .cost = cost::recurrent(3)}; }

}  // namespace kiln
