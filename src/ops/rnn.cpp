// RNN, GRU and LSTM: one naive recurrent runner, three cell functions.
// Versions: RNN/LSTM 1-13 and 14+ (the `layout` attribute), GRU 1-2 (no
// linear_before_reset), 3-13 and 14+. Opset 1 also carried `output_sequence`,
// which only said whether Y is wanted; it changes no value.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "ops/common.h"

namespace kiln {

namespace {

enum class Cell { kRnn, kGru, kLstm };

int gates_of(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 3 : 4; }
int acts_of(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 2 : 3; }

// ------------------------------------------------------------ activations

struct Activation {
  enum Kind { kRelu, kTanh, kSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid, kElu,
              kSoftsign, kSoftplus };
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
  if (dir == "bidirectional") a.num_dirs = 2;
  else if (dir == "reverse") a.reverse_only = true;
  else if (dir != "forward") throw fail("direction must be forward, reverse or bidirectional, got '" + dir + "'");
  a.hidden = n.attr_int("hidden_size", -1);
  if (n.has_attr("hidden_size") && a.hidden <= 0) throw fail("hidden_size must be positive, got " + std::to_string(a.hidden));
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
    if (cell == Cell::kRnn) names = {"Tanh"};
    else if (cell == Cell::kGru) names = {"Sigmoid", "Tanh"};
    else names = {"Sigmoid", "Tanh", "Tanh"};
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
    throw ctx.error(std::string(name) + " has shape [" + shape_str(t.shape()) + "], expected [" + shape_str(want) + "]");
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
      throw ctx.error("sequence_lens has " + std::to_string(in.lens.size()) + " entries, batch size is " + std::to_string(B));
    for (int64_t l : in.lens)
      if (l < 0 || l > S) throw ctx.error("sequence length " + std::to_string(l) + " is outside [0, " + std::to_string(S) + "]");
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
  auto y_at = [&](int64_t t, int64_t d, int64_t b) { return a.layout ? ((b * S + t) * D + d) * H : ((t * D + d) * B + b) * H; };
  auto x_at = [&](int64_t t, int64_t b) { return a.layout ? (b * S + t) * I : (t * B + b) * I; };
  auto clip = [&](A v) { return a.clip > 0 ? std::max(static_cast<A>(-a.clip), std::min(static_cast<A>(a.clip), v)) : v; };

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
            A fg = a.input_forget ? A(1) - ig
                                  : static_cast<A>(act[0](clip(xw[2 * H + j] + hr[2 * H + j] + pf * c[u])));
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
            for (int64_t j = 0; j < H; ++j) rh[static_cast<size_t>(j)] = r[static_cast<size_t>(j)] * h[static_cast<size_t>(j)];
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
  OpSchema s;
  s.name = name;
  s.since = since;
  s.until = until;
  s.min_inputs = 3;
  s.max_inputs = cell == Cell::kLstm ? 8 : 6;
  s.min_outputs = 0;
  s.max_outputs = cell == Cell::kLstm ? 3 : 2;
  s.types = float_dtypes();
  s.check = [cell](const Node& n) -> std::string {
    try {
      parse_attrs(n, cell);
    } catch (const Error& e) {
      return e.what();
    }
    if (n.opset < 14 && n.has_attr("layout")) return "the layout attribute exists from opset 14";
    if (cell == Cell::kGru && n.opset < 3 && n.has_attr("linear_before_reset"))
      return "linear_before_reset exists from opset 3";
    return "";
  };
  s.infer = [cell](InferContext& ctx) { infer_recurrent(ctx, cell); };
  s.compute = [cell](KernelContext& ctx) {
    RnnAttrs a = parse_attrs(ctx.node(), cell);
    dispatch<FloatTypes>(ctx.input(0).dtype(), ctx.node().op_type, [&]<typename T>() { run_recurrent<T>(ctx, a); });
  };
  return s;
}

}  // namespace

KILN_OP(RNN_1) { return recurrent_schema("RNN", Cell::kRnn, 1, 13); }
KILN_OP(RNN_14) { return recurrent_schema("RNN", Cell::kRnn, 14, INT_MAX); }
KILN_OP(GRU_1) { return recurrent_schema("GRU", Cell::kGru, 1, 2); }
KILN_OP(GRU_3) { return recurrent_schema("GRU", Cell::kGru, 3, 13); }
KILN_OP(GRU_14) { return recurrent_schema("GRU", Cell::kGru, 14, INT_MAX); }
KILN_OP(LSTM_1) { return recurrent_schema("LSTM", Cell::kLstm, 1, 13); }
KILN_OP(LSTM_14) { return recurrent_schema("LSTM", Cell::kLstm, 14, INT_MAX); }

}  // namespace kiln
