// RNN, GRU and LSTM against a plain per-step reference written from the
// spec's equations (default layout; layout=1 by transposing), and the float32
// kernel against the reference kernel (the same node in double).
#include <cmath>

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

using Vec = std::vector<double>;

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

struct Case {
  std::string op;
  int S = 3, B = 2, I = 4, H = 3, D = 1;
  std::string direction = "forward";
  bool bias = true, init = true, peep = false, lens = false, lbr = false;
  std::vector<int64_t> seq_lens;
  int gates() const { return op == "RNN" ? 1 : op == "GRU" ? 3 : 4; }
};

struct Data {
  Tensor x, w, r, b, h0, c0, p, lens;
};

Data make_data(const Case& c, std::mt19937& rng) {
  Data d;
  int G = c.gates();
  d.x = random_f32({c.S, c.B, c.I}, rng);
  d.w = random_f32({c.D, G * c.H, c.I}, rng);
  d.r = random_f32({c.D, G * c.H, c.H}, rng);
  d.b = random_f32({c.D, 2 * G * c.H}, rng);
  d.h0 = random_f32({c.D, c.B, c.H}, rng);
  d.c0 = random_f32({c.D, c.B, c.H}, rng);
  d.p = random_f32({c.D, 3 * c.H}, rng);
  std::vector<int32_t> l = c.seq_lens.empty() ? std::vector<int32_t>(static_cast<size_t>(c.B), c.S)
                                              : std::vector<int32_t>(c.seq_lens.begin(), c.seq_lens.end());
  d.lens = Tensor(DType::kInt32, {c.B});
  for (int i = 0; i < c.B; ++i) d.lens.data<int32_t>()[i] = l[static_cast<size_t>(i)];
  return d;
}

// Row `row` of W (or R) of direction dir, dotted with v.
double dot(const Tensor& m, int dir, int rows, int row, const Vec& v) {
  int cols = static_cast<int>(v.size());
  double s = 0;
  for (int k = 0; k < cols; ++k) s += m.data<float>()[(dir * rows + row) * cols + k] * v[static_cast<size_t>(k)];
  return s;
}

// Returns {Y, Y_h, Y_c} in the default layout.
std::vector<Tensor> reference(const Case& c, const Data& d) {
  int G = c.gates(), H = c.H;
  Tensor Y(DType::kFloat32, {c.S, c.D, c.B, H}), Yh(DType::kFloat32, {c.D, c.B, H}), Yc(DType::kFloat32, {c.D, c.B, H});
  for (int dir = 0; dir < c.D; ++dir) {
    bool rev = c.direction == "reverse" || dir == 1;
    auto wb = [&](int row) { return c.bias ? d.b.data<float>()[dir * 2 * G * H + row] : 0.0; };
    auto rb = [&](int row) { return c.bias ? d.b.data<float>()[dir * 2 * G * H + G * H + row] : 0.0; };
    for (int b = 0; b < c.B; ++b) {
      Vec h(static_cast<size_t>(H)), cs(static_cast<size_t>(H));
      for (int j = 0; j < H; ++j) {
        h[static_cast<size_t>(j)] = c.init ? d.h0.data<float>()[(dir * c.B + b) * H + j] : 0;
        cs[static_cast<size_t>(j)] = c.init ? d.c0.data<float>()[(dir * c.B + b) * H + j] : 0;
      }
      int len = d.lens.data<int32_t>()[b];
      for (int step = 0; step < len; ++step) {
        int t = rev ? len - 1 - step : step;
        Vec x(static_cast<size_t>(c.I));
        for (int k = 0; k < c.I; ++k) x[static_cast<size_t>(k)] = d.x.data<float>()[(t * c.B + b) * c.I + k];
        Vec hn(static_cast<size_t>(H));
        if (c.op == "RNN") {
          for (int j = 0; j < H; ++j)
            hn[static_cast<size_t>(j)] =
                std::tanh(dot(d.w, dir, G * H, j, x) + dot(d.r, dir, G * H, j, h) + wb(j) + rb(j));
        } else if (c.op == "GRU") {
          Vec z(static_cast<size_t>(H)), r(static_cast<size_t>(H)), rh(static_cast<size_t>(H));
          for (int j = 0; j < H; ++j) {
            z[static_cast<size_t>(j)] =
                sigmoid(dot(d.w, dir, G * H, j, x) + dot(d.r, dir, G * H, j, h) + wb(j) + rb(j));
            r[static_cast<size_t>(j)] =
                sigmoid(dot(d.w, dir, G * H, H + j, x) + dot(d.r, dir, G * H, H + j, h) + wb(H + j) + rb(H + j));
            rh[static_cast<size_t>(j)] = r[static_cast<size_t>(j)] * h[static_cast<size_t>(j)];
          }
          for (int j = 0; j < H; ++j) {
            int row = 2 * H + j;
            double xpart = dot(d.w, dir, G * H, row, x) + wb(row);
            double hpart = c.lbr ? r[static_cast<size_t>(j)] * (dot(d.r, dir, G * H, row, h) + rb(row))
                                 : dot(d.r, dir, G * H, row, rh) + rb(row);
            double hh = std::tanh(xpart + hpart);
            hn[static_cast<size_t>(j)] =
                (1 - z[static_cast<size_t>(j)]) * hh + z[static_cast<size_t>(j)] * h[static_cast<size_t>(j)];
          }
        } else {  // LSTM, gate blocks i, o, f, c
          Vec cn(static_cast<size_t>(H));
          auto pre = [&](int gate, int j) {
            int row = gate * H + j;
            return dot(d.w, dir, G * H, row, x) + dot(d.r, dir, G * H, row, h) + wb(row) + rb(row);
          };
          auto peep = [&](int k, int j) { return c.peep ? d.p.data<float>()[dir * 3 * H + k * H + j] : 0.0; };
          for (int j = 0; j < H; ++j) {
            double cj = cs[static_cast<size_t>(j)];
            double i = sigmoid(pre(0, j) + peep(0, j) * cj);
            double f = sigmoid(pre(2, j) + peep(2, j) * cj);
            double g = std::tanh(pre(3, j));
            cn[static_cast<size_t>(j)] = f * cj + i * g;
            double o = sigmoid(pre(1, j) + peep(1, j) * cn[static_cast<size_t>(j)]);
            hn[static_cast<size_t>(j)] = o * std::tanh(cn[static_cast<size_t>(j)]);
          }
          cs = cn;
        }
        h = hn;
        for (int j = 0; j < H; ++j)
          Y.data<float>()[((t * c.D + dir) * c.B + b) * H + j] = static_cast<float>(h[static_cast<size_t>(j)]);
      }
      for (int j = 0; j < H; ++j) {
        Yh.data<float>()[(dir * c.B + b) * H + j] = static_cast<float>(h[static_cast<size_t>(j)]);
        Yc.data<float>()[(dir * c.B + b) * H + j] = static_cast<float>(cs[static_cast<size_t>(j)]);
      }
    }
  }
  return {Y, Yh, Yc};
}

std::vector<Tensor> run_case(const Case& c, const Data& d, int opset = 14) {
  NodeSpec spec{.op = c.op, .opset = opset};
  spec.inputs = {d.x, d.w, d.r};
  spec.inputs.push_back(c.bias ? std::optional<Tensor>(d.b) : std::nullopt);
  spec.inputs.push_back(c.lens ? std::optional<Tensor>(d.lens) : std::nullopt);
  spec.inputs.push_back(c.init ? std::optional<Tensor>(d.h0) : std::nullopt);
  if (c.op == "LSTM") {
    spec.inputs.push_back(c.init ? std::optional<Tensor>(d.c0) : std::nullopt);
    spec.inputs.push_back(c.peep ? std::optional<Tensor>(d.p) : std::nullopt);
  }
  spec.attrs["hidden_size"] = attr_int(c.H);
  spec.attrs["direction"] = attr_string(c.direction);
  if (c.lbr) spec.attrs["linear_before_reset"] = attr_int(1);
  spec.num_outputs = c.op == "LSTM" ? 3 : 2;
  return run_node(spec);
}

void check(const Case& c, std::mt19937& rng, int opset = 14) {
  Data d = make_data(c, rng);
  auto got = run_case(c, d, opset);
  auto want = reference(c, d);
  EXPECT_TRUE(all_close(got[0], want[0], 1e-4, 1e-5)) << c.op << " Y";
  EXPECT_TRUE(all_close(got[1], want[1], 1e-4, 1e-5)) << c.op << " Y_h";
  if (c.op == "LSTM") {
    EXPECT_TRUE(all_close(got[2], want[2], 1e-4, 1e-5)) << c.op << " Y_c";
  }
}

// [a, b, c, d] -> [b, a, c, d] for rank 3 or 4 (swaps the first two dims).
Tensor swap01(const Tensor& t) {
  Shape s = t.shape();
  std::swap(s[0], s[1]);
  Tensor out(t.dtype(), s);
  int64_t inner = t.numel() / (t.dim(0) * t.dim(1));
  for (int64_t i = 0; i < t.dim(0); ++i)
    for (int64_t j = 0; j < t.dim(1); ++j)
      for (int64_t k = 0; k < inner; ++k)
        out.data<float>()[(j * t.dim(0) + i) * inner + k] = t.data<float>()[(i * t.dim(1) + j) * inner + k];
  return out;
}

}  // namespace

TEST(Recurrent, AllCellsAllDirections) {
  std::mt19937 rng(11);
  for (const char* op : {"RNN", "GRU", "LSTM"})
    for (const char* dir : {"forward", "reverse", "bidirectional"}) {
      Case c{.op = op};
      c.direction = dir;
      c.D = c.direction == "bidirectional" ? 2 : 1;
      check(c, rng);
    }
}

TEST(Recurrent, OptionalInputsAbsent) {
  std::mt19937 rng(12);
  for (const char* op : {"RNN", "GRU", "LSTM"}) {
    Case c{.op = op};
    c.bias = false;
    c.init = false;
    check(c, rng);
  }
}

TEST(Recurrent, SequenceLengthsPadWithZeros) {
  std::mt19937 rng(13);
  for (const char* op : {"RNN", "GRU", "LSTM"}) {
    Case c{.op = op, .S = 4, .B = 3};
    c.direction = "bidirectional";
    c.D = 2;
    c.lens = true;
    c.seq_lens = {4, 2, 1};
    check(c, rng);
  }
}

TEST(Recurrent, LstmPeepholesAndGruLinearBeforeReset) {
  std::mt19937 rng(14);
  Case l{.op = "LSTM"};
  l.peep = true;
  check(l, rng);
  Case g{.op = "GRU"};
  g.lbr = true;
  check(g, rng);
  check(g, rng, 7);  // same semantics at opset 7 (no layout)
}

TEST(Recurrent, BatchFirstLayout) {
  std::mt19937 rng(15);
  for (const char* op : {"GRU", "LSTM"}) {
    Case c{.op = op};
    Data d = make_data(c, rng);
    auto want = reference(c, d);
    NodeSpec spec{.op = op, .opset = 14};
    spec.inputs = {swap01(d.x), d.w, d.r, d.b, std::nullopt, swap01(d.h0)};
    if (c.op == "LSTM") spec.inputs.push_back(swap01(d.c0));
    spec.attrs["hidden_size"] = attr_int(c.H);
    spec.attrs["layout"] = attr_int(1);
    spec.num_outputs = 2;
    auto got = run_node(spec);
    // Y [S, D, B, H] -> [B, S, D, H]: with D = 1, swapping S and B of [S, B, H].
    Tensor y = swap01(want[0].reshaped({c.S, c.B, c.H})).reshaped({c.B, c.S, 1, c.H});
    EXPECT_TRUE(all_close(got[0], y, 1e-4, 1e-5)) << op;
    EXPECT_TRUE(all_close(got[1], swap01(want[1]), 1e-4, 1e-5)) << op;
  }
  // layout does not exist before opset 14.
  Case c{.op = "RNN"};
  Data d = make_data(c, rng);
  EXPECT_THROW(run_node({.op = "RNN", .opset = 13, .inputs = {d.x, d.w, d.r}, .attrs = {{"layout", attr_int(1)}}}),
               Error);
}

TEST(Recurrent, ActivationsAndClip) {
  std::mt19937 rng(16);
  Case c{.op = "RNN"};
  Data d = make_data(c, rng);
  auto got = run_node({.op = "RNN",
                       .opset = 14,
                       .inputs = {d.x, d.w, d.r, d.b},
                       .attrs = {{"hidden_size", attr_int(c.H)},
                                 {"activations",
                                  [] {
                                    Attribute a;
                                    a.kind = Attribute::Kind::kStrings;
                                    a.strings = {"LeakyRelu"};
                                    return a;
                                  }()},
                                 {"activation_alpha", attr_floats({0.25f})},
                                 {"clip", attr_float(0.5f)}},
                       .num_outputs = 2});
  // h_t = leaky(clip(x W^T + h R^T + b)), h_0 = 0
  for (int b = 0; b < c.B; ++b) {
    std::vector<double> hb(3, 0.0);
    for (int t = 0; t < c.S; ++t) {
      std::vector<double> x(4);
      for (int k = 0; k < 4; ++k) x[static_cast<size_t>(k)] = d.x.data<float>()[(t * c.B + b) * 4 + k];
      std::vector<double> hn(3);
      for (int j = 0; j < 3; ++j) {
        double v = dot(d.w, 0, 3, j, x) + dot(d.r, 0, 3, j, hb) + d.b.data<float>()[j] + d.b.data<float>()[3 + j];
        v = std::max(-0.5, std::min(0.5, v));
        hn[static_cast<size_t>(j)] = v >= 0 ? v : 0.25 * v;
      }
      hb = hn;
      for (int j = 0; j < 3; ++j)
        EXPECT_NEAR(got[0].data<float>()[(t * c.B + b) * 3 + j], hb[static_cast<size_t>(j)], 1e-5);
    }
  }
}

TEST(Recurrent, BadInputsAreErrors) {
  std::mt19937 rng(17);
  Case c{.op = "LSTM"};
  Data d = make_data(c, rng);
  // W with the wrong number of gate rows.
  Tensor bad_w = random_f32({1, 3 * c.H, c.I}, rng);
  EXPECT_THROW(run_node({.op = "LSTM",
                         .opset = 14,
                         .inputs = {d.x, bad_w, d.r},
                         .attrs = {{"hidden_size", attr_int(c.H)}},
                         .num_outputs = 3}),
               Error);
  // sequence length beyond the sequence.
  Tensor lens(DType::kInt32, {c.B});
  lens.data<int32_t>()[0] = 9;
  EXPECT_THROW(run_node({.op = "LSTM",
                         .opset = 14,
                         .inputs = {d.x, d.w, d.r, std::nullopt, lens},
                         .attrs = {{"hidden_size", attr_int(c.H)}},
                         .num_outputs = 3}),
               Error);
  EXPECT_THROW(
      run_node(
          {.op = "LSTM", .opset = 14, .inputs = {d.x, d.w, d.r}, .attrs = {{"direction", attr_string("sideways")}}}),
      Error);
}

// ---------------------------------------------------------------- float32 fast path

namespace {

struct FastCase {
  std::string op;  // RNN, GRU, LSTM
  int S = 4, B = 3, I = 3, H = 5;
  std::string direction = "forward";
  int layout = 0;
  bool bias = false, init = false, lens = false, clip = false, lbr = false, peep = false, constant = false;
  std::vector<int32_t> seq_lens;  // used when lens; default {S, 0, 2, ...}
};

// Runs the case in float32 (the fast kernel) and in double (the reference)
// on the same random inputs, and compares every output. Larger sizes need a
// looser atol: float sums of ~50 products, amplified over the steps.
void check_fast(const FastCase& c, std::mt19937& rng, ThreadPool* pool = nullptr, double atol = 1e-6) {
  const int D = c.direction == "bidirectional" ? 2 : 1;
  const int G = c.op == "RNN" ? 1 : c.op == "GRU" ? 3 : 4;
  Shape x_shape = c.layout ? Shape{c.B, c.S, c.I} : Shape{c.S, c.B, c.I};
  Shape state = c.layout ? Shape{c.B, D, c.H} : Shape{D, c.B, c.H};
  std::vector<std::optional<Tensor>> in(c.op == "LSTM" ? 8 : 6);
  in[0] = random_f32(x_shape, rng, -2, 2);
  in[1] = random_f32({D, G * c.H, c.I}, rng);
  in[2] = random_f32({D, G * c.H, c.H}, rng);
  if (c.bias) in[3] = random_f32({D, 2 * G * c.H}, rng);
  if (c.lens) {
    Tensor l(DType::kInt32, {c.B});
    for (int b = 0; b < c.B; ++b)
      l.data<int32_t>()[b] = c.seq_lens.empty() ? (b == 0   ? c.S
                                                   : b == 1 ? 0
                                                            : b % c.S)
                                                : c.seq_lens[static_cast<size_t>(b)];
    in[4] = l;
  }
  if (c.init) in[5] = random_f32(state, rng);
  if (c.op == "LSTM" && c.init) in[6] = random_f32(state, rng, -2, 2);
  if (c.op == "LSTM" && c.peep) in[7] = random_f32({D, 3 * c.H}, rng);
  NodeSpec spec{.op = c.op, .opset = 14, .inputs = in, .num_outputs = c.op == "LSTM" ? 3 : 2};
  spec.attrs["hidden_size"] = attr_int(c.H);
  spec.attrs["direction"] = attr_string(c.direction);
  spec.attrs["layout"] = attr_int(c.layout);
  if (c.clip) spec.attrs["clip"] = attr_float(0.7f);
  if (c.op == "GRU") spec.attrs["linear_before_reset"] = attr_int(c.lbr ? 1 : 0);
  spec.constant_inputs = c.constant;
  spec.pool = pool;
  std::vector<Tensor> got = run_node(spec);
  for (std::optional<Tensor>& t : spec.inputs)
    if (t && t->dtype() == DType::kFloat32) t = to_f64(*t);
  std::vector<Tensor> want = run_node(spec);
  std::string what = c.op + " " + c.direction + " layout " + std::to_string(c.layout) + (c.bias ? " bias" : "") +
                     (c.init ? " init" : "") + (c.lens ? " lens" : "") + (c.clip ? " clip" : "") +
                     (c.lbr ? " lbr" : "") + (c.peep ? " peep" : "") + (c.constant ? " constant" : "");
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(all_close(got[i], to_f32_tensor(want[i]), 1e-5, atol)) << what << ", output " << i;
}

}  // namespace

TEST(RecurrentF32, MatchesReferenceOverOptionMatrix) {
  std::mt19937 rng(21);
  for (const char* op : {"RNN", "GRU", "LSTM"})
    for (const char* dir : {"forward", "reverse", "bidirectional"})
      for (int layout : {0, 1})
        for (int bits = 0; bits < 64; ++bits) {
          FastCase c{.op = op, .direction = dir, .layout = layout};
          c.bias = bits & 1;
          c.init = bits & 2;
          c.lens = bits & 4;
          c.clip = bits & 8;
          c.constant = bits & 16;
          // The cell's own variant: GRU's linear_before_reset, LSTM's peepholes.
          c.lbr = c.op == "GRU" && (bits & 32);
          c.peep = c.op == "LSTM" && (bits & 32);
          if (c.op == "RNN" && (bits & 32)) continue;
          check_fast(c, rng);
        }
}

// Sizes past the GEMM's register tiles, long sequences, and a thread pool.
TEST(RecurrentF32, LargerSizesAndThreads) {
  std::mt19937 rng(22);
  ThreadPool pool(2);
  for (const char* op : {"RNN", "GRU", "LSTM"})
    for (bool lbr : {false, true})
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        if (std::string(op) != "GRU" && lbr) continue;
        FastCase c{.op = op, .S = 9, .B = 7, .I = 19, .H = 37, .direction = "bidirectional"};
        c.bias = c.init = c.lens = c.constant = true;
        c.lbr = lbr;
        c.seq_lens = {9, 3, 0, 9, 8, 1, 5};
        check_fast(c, rng, p, 1e-5);
      }
  // An input projection big enough (4M multiply-adds) to run on the pool.
  FastCase big{.op = "LSTM", .S = 16, .B = 8, .I = 64, .H = 128};
  big.bias = big.init = big.constant = true;
  // 64- and 128-term float dot products over 16 steps: the float path's own
  // rounding leaves ~1e-5 from the double reference (as below; measured 1.3e-5
  // with exactly rounded activations).
  check_fast(big, rng, &pool, 5e-5);
  // Recurrences big enough (1M multiply-adds) to split the batch over the
  // pool, every cell, entries of different lengths, both directions.
  for (const char* op : {"RNN", "GRU", "LSTM"})
    for (bool lbr : {false, true}) {
      if (std::string(op) != "GRU" && lbr) continue;
      FastCase c{.op = op, .S = 16, .B = 16, .I = 8, .H = 64, .direction = "bidirectional"};
      c.bias = c.init = c.lens = c.constant = true;
      c.lbr = lbr;
      c.seq_lens = {16, 3, 0, 16, 9, 1, 5, 12, 16, 15, 2, 7, 16, 4, 11, 6};
      // 64-term float dot products over 16 steps drift up to ~1e-3 from the
      // double reference with or without the pool; a wrong split is O(1).
      check_fast(c, rng, &pool, 5e-3);
    }
}

// Non-default activations and input_forget take the reference path; the
// float32 result still matches the double one.
TEST(RecurrentF32, OtherActivationsFallBack) {
  std::mt19937 rng(23);
  Tensor x = random_f32({3, 2, 4}, rng), w = random_f32({1, 12, 4}, rng), r = random_f32({1, 12, 3}, rng);
  Attribute acts;
  acts.kind = Attribute::Kind::kStrings;
  acts.strings = {"HardSigmoid", "Tanh", "Relu"};
  for (bool constant : {false, true}) {
    NodeSpec spec{.op = "LSTM", .opset = 14, .inputs = {x, w, r}, .num_outputs = 3, .constant_inputs = constant};
    spec.attrs["hidden_size"] = attr_int(3);
    spec.attrs["activations"] = acts;
    std::vector<Tensor> got = run_node(spec);
    spec.inputs = {to_f64(x), to_f64(w), to_f64(r)};
    std::vector<Tensor> want = run_node(spec);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(all_close(got[i], to_f32_tensor(want[i]), 1e-5, 1e-6)) << i;
  }
}

}  // namespace kiln::test
