// ReduceX, Softmax/LogSoftmax/Hardmax and the normalization ops against plain
// references computed here, plus edge cases and the old-opset variants.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "core/half.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

// Multi-index helpers for references written without strides tricks.
std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}

// Reference reduction: for each output element, folds the input elements
// whose non-reduced coordinates match, with f(acc, x) from `init`, then `fin`.
Tensor ref_reduce(const Tensor& x, std::vector<bool> red, bool keepdims, double init,
                  std::function<double(double, double)> f, std::function<double(double, int64_t)> fin) {
  Shape keep, out;
  for (size_t d = 0; d < x.shape().size(); ++d) {
    keep.push_back(red[d] ? 1 : x.shape()[d]);
    if (!red[d] || keepdims) out.push_back(red[d] ? 1 : x.shape()[d]);
  }
  Tensor r(DType::kFloat32, out);
  std::vector<float> xs = to_f32(x);
  for (int64_t o = 0; o < shape_numel(keep); ++o) {
    std::vector<int64_t> oi = unravel(o, keep);
    double acc = init;
    int64_t count = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      std::vector<int64_t> ii = unravel(i, x.shape());
      bool match = true;
      for (size_t d = 0; d < ii.size(); ++d)
        if (!red[d] && ii[d] != oi[d]) match = false;
      if (!match) continue;
      acc = f(acc, xs[static_cast<size_t>(i)]);
      ++count;
    }
    r.data<float>()[o] = static_cast<float>(fin(acc, count));
  }
  return r;
}

struct ReduceCase {
  const char* op;
  double init;
  std::function<double(double, double)> f;
  std::function<double(double, int64_t)> fin;
};

std::vector<ReduceCase> reduce_cases() {
  auto id = [](double a, int64_t) { return a; };
  double inf = std::numeric_limits<double>::infinity();
  return {
      {"ReduceSum", 0, [](double a, double x) { return a + x; }, id},
      {"ReduceMean", 0, [](double a, double x) { return a + x; }, [](double a, int64_t n) { return a / n; }},
      {"ReduceMax", -inf, [](double a, double x) { return std::max(a, x); }, id},
      {"ReduceMin", inf, [](double a, double x) { return std::min(a, x); }, id},
      {"ReduceProd", 1, [](double a, double x) { return a * x; }, id},
      {"ReduceL1", 0, [](double a, double x) { return a + std::fabs(x); }, id},
      {"ReduceL2", 0, [](double a, double x) { return a + x * x; }, [](double a, int64_t) { return std::sqrt(a); }},
      {"ReduceLogSum", 0, [](double a, double x) { return a + x; }, [](double a, int64_t) { return std::log(a); }},
      {"ReduceLogSumExp", 0, [](double a, double x) { return a + std::exp(x); },
       [](double a, int64_t) { return std::log(a); }},
      {"ReduceSumSquare", 0, [](double a, double x) { return a + x * x; }, id},
  };
}

}  // namespace

TEST(Reduce, AllOpsMatchReferenceAcrossAxesAndVersions) {
  std::mt19937 rng(7);
  Tensor x = random_f32({2, 3, 4}, rng, 0.1f, 2.0f);  // positive: LogSum is defined
  struct AxesCase {
    std::vector<int64_t> axes;
    std::vector<bool> red;
  };
  std::vector<AxesCase> axes_cases = {
      {{1}, {false, true, false}}, {{-1, 0}, {true, false, true}}, {{}, {true, true, true}}};
  for (const ReduceCase& rc : reduce_cases()) {
    int new_opset = std::string(rc.op) == "ReduceSum" ? 13 : 18;
    for (const AxesCase& ac : axes_cases)
      for (int keep = 0; keep <= 1; ++keep) {
        Tensor want = ref_reduce(x, ac.red, keep, rc.init, rc.f, rc.fin);
        // Old versions: axes attribute.
        NodeSpec old{.op = rc.op, .opset = new_opset - 1, .inputs = {x}, .attrs = {{"keepdims", attr_int(keep)}}};
        if (!ac.axes.empty()) old.attrs["axes"] = attr_ints(ac.axes);
        EXPECT_TRUE(all_close(run_node(old)[0], want, 1e-5, 1e-5)) << rc.op << " opset " << old.opset;
        // New versions: axes input (omitted when empty), as graph input and constant.
        for (bool constant : {false, true}) {
          NodeSpec nw{.op = rc.op,
                      .opset = new_opset,
                      .inputs = {x},
                      .attrs = {{"keepdims", attr_int(keep)}},
                      .constant_inputs = constant};
          if (!ac.axes.empty()) nw.inputs.push_back(make_i64({static_cast<int64_t>(ac.axes.size())}, ac.axes));
          EXPECT_TRUE(all_close(run_node(nw)[0], want, 1e-5, 1e-5)) << rc.op << " opset " << new_opset;
        }
      }
  }
}

// The float32 fast path (one contiguous block of reduced axes, threaded when
// large) against the reference: trailing blocks (global pooling), blocks with
// inner axes after them, kept size-1 axes inside the block, long rows.
TEST(Reduce, FloatBlocksMatchReference) {
  std::mt19937 rng(9);
  struct Case {
    Shape shape;
    std::vector<int64_t> axes;
  };
  const std::vector<Case> cases = {
      {{2, 5, 3, 7}, {2, 3}}, {{2, 5, 3, 7}, {1, 2}}, {{3, 4, 1, 5}, {1, 3}},
      {{2, 40000}, {-1}},     {{2, 16, 40}, {1}},     {{1, 1, 9}, {0, 1}},
  };
  for (const ReduceCase& rc : reduce_cases()) {
    const std::string op = rc.op;
    if (op != "ReduceSum" && op != "ReduceMean" && op != "ReduceMax" && op != "ReduceMin") continue;
    for (const Case& c : cases) {
      Tensor x = random_f32(c.shape, rng, -2.0f, 2.0f);
      std::vector<bool> red(c.shape.size(), false);
      for (int64_t a : c.axes) red[static_cast<size_t>(a < 0 ? a + static_cast<int64_t>(c.shape.size()) : a)] = true;
      Tensor want = ref_reduce(x, red, true, rc.init, rc.f, rc.fin);
      NodeSpec spec{.op = rc.op,
                    .opset = 18,
                    .inputs = {x, make_i64({static_cast<int64_t>(c.axes.size())}, c.axes)},
                    .constant_inputs = true};
      EXPECT_TRUE(all_close(run_node(spec)[0], want, 1e-5, 1e-5)) << op << " " << c.shape.size();
    }
  }
  // NaN propagates through max/min, -inf is a value like any other.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  Tensor x = make_f32({2, 3}, {1, nan, 2, -inf, -inf, -inf});
  for (const char* op : {"ReduceMax", "ReduceMin"}) {
    Tensor y = run_node({.op = op, .opset = 18, .inputs = {x, make_i64({1}, {1})}, .constant_inputs = true})[0];
    EXPECT_TRUE(std::isnan(y.data<float>()[0])) << op;
    EXPECT_EQ(y.data<float>()[1], -inf) << op;
  }
}

TEST(Reduce, NoopWithEmptyAxesKeepsElementwisePart) {
  std::mt19937 rng(8);
  Tensor x = random_f32({3, 2}, rng, 0.5f, 2.0f);
  Tensor empty_axes = make_i64({0}, {});
  auto run = [&](const char* op) {
    return run_node(
        {.op = op, .opset = 18, .inputs = {x, empty_axes}, .attrs = {{"noop_with_empty_axes", attr_int(1)}}})[0];
  };
  Tensor log_sum = run("ReduceLogSum"), sum_sq = run("ReduceSumSquare"), mean = run("ReduceMean");
  ASSERT_EQ(log_sum.shape(), x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = x.data<float>()[i];
    EXPECT_NEAR(log_sum.data<float>()[i], std::log(v), 1e-6);
    EXPECT_NEAR(sum_sq.data<float>()[i], v * v, 1e-6);
    EXPECT_FLOAT_EQ(mean.data<float>()[i], v);
  }
  // Without the flag, empty axes reduce everything.
  Tensor all =
      run_node({.op = "ReduceSum", .opset = 13, .inputs = {x, empty_axes}, .attrs = {{"keepdims", attr_int(0)}}})[0];
  double s = 0;
  for (int64_t i = 0; i < x.numel(); ++i) s += x.data<float>()[i];
  ASSERT_EQ(all.shape(), Shape{});
  EXPECT_NEAR(all.data<float>()[0], s, 1e-5);
}

TEST(Reduce, EmptySetGivesIdentityOfTheReduction) {
  Tensor x(DType::kFloat32, {2, 0, 3});
  Tensor axes = make_i64({1}, {1});
  auto run = [&](const char* op, const Tensor& in) {
    return run_node({.op = op, .opset = 18, .inputs = {in, axes}})[0];
  };
  float inf = std::numeric_limits<float>::infinity();
  Tensor mx = run("ReduceMax", x);
  ASSERT_EQ(mx.shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(mx.data<float>()[0], -inf);
  EXPECT_EQ(run("ReduceMin", x).data<float>()[5], inf);
  EXPECT_EQ(run("ReduceSum", x).data<float>()[2], 0.f);
  EXPECT_EQ(run("ReduceProd", x).data<float>()[1], 1.f);
  EXPECT_EQ(run("ReduceLogSumExp", x).data<float>()[3], -inf);
  EXPECT_EQ(run("ReduceLogSum", x).data<float>()[3], -inf);
  Tensor xi(DType::kInt32, {2, 0});
  Tensor mi = run_node({.op = "ReduceMax", .opset = 18, .inputs = {xi, axes}})[0];
  EXPECT_EQ(mi.data<int32_t>()[0], std::numeric_limits<int32_t>::lowest());
  Tensor xu(DType::kUInt8, {2, 0});
  Tensor mu = run_node({.op = "ReduceMin", .opset = 18, .inputs = {xu, axes}})[0];
  EXPECT_EQ(mu.data<uint8_t>()[1], 255);
}

TEST(Reduce, IntegerAndBoolTypes) {
  Tensor xi = make_i64({2, 3}, {1, -5, 7, 4000000000LL, 2, -3});
  Tensor axes = make_i64({1}, {1});
  Tensor s = run_node({.op = "ReduceSum", .opset = 13, .inputs = {xi, axes}})[0];
  EXPECT_EQ(s.dtype(), DType::kInt64);
  EXPECT_EQ(s.data<int64_t>()[0], 3);
  EXPECT_EQ(s.data<int64_t>()[1], 3999999999LL);
  Tensor m = run_node({.op = "ReduceMean", .opset = 18, .inputs = {xi, axes}})[0];
  EXPECT_EQ(m.data<int64_t>()[0], 1);  // 3 / 3
  Tensor b = make_bool({2, 3}, {true, false, false, false, false, false});
  Tensor bmax = run_node({.op = "ReduceMax", .opset = 20, .inputs = {b, axes}})[0];
  Tensor bmin =
      run_node({.op = "ReduceMin", .opset = 20, .inputs = {b, axes}, .attrs = {{"keepdims", attr_int(0)}}})[0];
  EXPECT_EQ(bmax.dtype(), DType::kBool);
  EXPECT_TRUE(bmax.data<bool>()[0]);
  EXPECT_FALSE(bmax.data<bool>()[1]);
  EXPECT_FALSE(bmin.data<bool>()[0]);
  EXPECT_EQ(bmin.shape(), Shape{2});
  // bool is only accepted from opset 20, and never for sums.
  EXPECT_THROW(run_node({.op = "ReduceMax", .opset = 18, .inputs = {b, axes}}), Error);
  EXPECT_THROW(run_node({.op = "ReduceSum", .opset = 13, .inputs = {b, axes}}), Error);
}

TEST(Reduce, BadAxesAreErrors) {
  std::mt19937 rng(9);
  Tensor x = random_f32({2, 3}, rng);
  EXPECT_THROW(run_node({.op = "ReduceSum", .opset = 13, .inputs = {x, make_i64({1}, {2})}}), Error);
  EXPECT_THROW(run_node({.op = "ReduceSum", .opset = 13, .inputs = {x, make_i64({2}, {1, -1})}}), Error);
  EXPECT_THROW(run_node({.op = "ReduceMax", .opset = 13, .inputs = {x}, .attrs = {{"axes", attr_ints({-3})}}}), Error);
  // A scalar reduces to itself.
  Tensor sc = make_f32({}, {2.5f});
  EXPECT_FLOAT_EQ(run_node({.op = "ReduceL2", .opset = 18, .inputs = {sc}})[0].data<float>()[0], 2.5f);
}

// ------------------------------------------------------------- softmax

namespace {
// Softmax family over rows of a [outer, n, inner] view.
Tensor ref_softmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, int kind) {
  Tensor y(DType::kFloat32, x.shape());
  const float* px = x.data<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      double mx = -1e300, sum = 0;
      int64_t arg = 0;
      for (int64_t k = 0; k < n; ++k)
        if (px[at(k)] > mx) mx = px[at(k)], arg = k;
      for (int64_t k = 0; k < n; ++k) sum += std::exp(px[at(k)] - mx);
      for (int64_t k = 0; k < n; ++k)
        y.data<float>()[at(k)] = static_cast<float>(kind == 0   ? std::exp(px[at(k)] - mx) / sum
                                                    : kind == 1 ? px[at(k)] - mx - std::log(sum)
                                                                : (k == arg ? 1.0 : 0.0));
    }
  return y;
}
}  // namespace

TEST(Softmax, AlongAxisAt13AndFlattenedBefore) {
  std::mt19937 rng(10);
  Tensor x = random_f32({2, 3, 4}, rng, -3, 3);
  const char* ops[] = {"Softmax", "LogSoftmax", "Hardmax"};
  for (int kind = 0; kind < 3; ++kind) {
    // Opset 13, axis 1: along dim 1 only.
    auto y13 = run_node({.op = ops[kind], .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(1)}}});
    EXPECT_TRUE(all_close(y13[0], ref_softmax(x, 2, 3, 4, kind), 1e-5, 1e-6)) << ops[kind];
    // Default axis -1 at 13.
    auto yd = run_node({.op = ops[kind], .opset = 13, .inputs = {x}});
    EXPECT_TRUE(all_close(yd[0], ref_softmax(x, 6, 4, 1, kind), 1e-5, 1e-6)) << ops[kind];
    // Opset 11, axis 1 (the default): coerced to [2, 12].
    auto y11 = run_node({.op = ops[kind], .opset = 11, .inputs = {x}});
    EXPECT_TRUE(all_close(y11[0], ref_softmax(x, 2, 12, 1, kind), 1e-5, 1e-6)) << ops[kind];
    auto y11n = run_node({.op = ops[kind], .opset = 11, .inputs = {x}, .attrs = {{"axis", attr_int(-1)}}});
    EXPECT_TRUE(all_close(y11n[0], ref_softmax(x, 6, 4, 1, kind), 1e-5, 1e-6)) << ops[kind];
  }
  EXPECT_THROW(run_node({.op = "Softmax", .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(3)}}}), Error);
}

TEST(Softmax, LargeValuesHardmaxTiesAndHalf) {
  Tensor x = make_f32({1, 4}, {1000, 1001, 1002, 1002});
  Tensor s = run_node({.op = "Softmax", .opset = 13, .inputs = {x}})[0];
  EXPECT_FALSE(std::isnan(s.data<float>()[0]));
  EXPECT_NEAR(s.data<float>()[3], std::exp(0.0) / (std::exp(-2.0) + std::exp(-1.0) + 2), 1e-6);
  Tensor h = run_node({.op = "Hardmax", .opset = 13, .inputs = {x}})[0];
  EXPECT_EQ(to_f32(h), (std::vector<float>{0, 0, 1, 0}));  // first max wins
  Tensor xh(DType::kFloat16, {2, 2});
  for (int i = 0; i < 4; ++i) xh.data<Float16>()[i] = Float16(static_cast<float>(i));
  Tensor sh = run_node({.op = "LogSoftmax", .opset = 13, .inputs = {xh}})[0];
  EXPECT_EQ(sh.dtype(), DType::kFloat16);
  EXPECT_NEAR(to_f32(sh)[0], -std::log(1 + std::exp(1.0)), 2e-3);
  Tensor empty(DType::kFloat32, {0, 3});
  EXPECT_EQ(run_node({.op = "Softmax", .opset = 13, .inputs = {empty}})[0].shape(), (Shape{0, 3}));
}

// ------------------------------------------------------ normalizations

TEST(Normalization, LayerNormWithBroadcastScaleAndStats) {
  std::mt19937 rng(11);
  Tensor x = random_f32({2, 3, 4}, rng), scale = random_f32({3, 4}, rng), bias = random_f32({4}, rng);
  auto out = run_node({.op = "LayerNormalization",
                       .opset = 17,
                       .inputs = {x, scale, bias},
                       .attrs = {{"axis", attr_int(-2)}, {"epsilon", attr_float(1e-3f)}},
                       .num_outputs = 3});
  Tensor y(DType::kFloat32, x.shape()), mean(DType::kFloat32, {2, 1, 1}), inv(DType::kFloat32, {2, 1, 1});
  for (int b = 0; b < 2; ++b) {
    const float* row = x.data<float>() + b * 12;
    double m = 0, v = 0;
    for (int k = 0; k < 12; ++k) m += row[k] / 12.0;
    for (int k = 0; k < 12; ++k) v += (row[k] - m) * (row[k] - m) / 12.0;
    double is = 1 / std::sqrt(v + 1e-3);
    for (int k = 0; k < 12; ++k)
      y.data<float>()[b * 12 + k] =
          static_cast<float>((row[k] - m) * is * scale.data<float>()[k] + bias.data<float>()[k % 4]);
    mean.data<float>()[b] = static_cast<float>(m);
    inv.data<float>()[b] = static_cast<float>(is);
  }
  EXPECT_TRUE(all_close(out[0], y, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(out[1], mean, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(out[2], inv, 1e-5, 1e-5));
  // Scale that does not broadcast to the normalized shape.
  EXPECT_THROW(run_node({.op = "LayerNormalization", .opset = 17, .inputs = {x, random_f32({5}, rng)}}), Error);
}

TEST(Normalization, RmsNormTakesScaleType) {
  std::mt19937 rng(12);
  Tensor x = random_f32({3, 5}, rng);
  Tensor scale(DType::kFloat64, {5});
  for (int i = 0; i < 5; ++i) scale.data<double>()[i] = 0.5 + i;
  Tensor y = run_node({.op = "RMSNormalization", .opset = 23, .inputs = {x, scale}})[0];
  ASSERT_EQ(y.dtype(), DType::kFloat64);
  for (int r = 0; r < 3; ++r) {
    double ms = 0;
    for (int k = 0; k < 5; ++k) ms += x.data<float>()[r * 5 + k] * x.data<float>()[r * 5 + k] / 5.0;
    for (int k = 0; k < 5; ++k)
      EXPECT_NEAR(y.data<double>()[r * 5 + k], x.data<float>()[r * 5 + k] / std::sqrt(ms + 1e-5) * (0.5 + k), 1e-6);
  }
}

TEST(Normalization, GroupNormScalePerGroupAt18PerChannelAt21) {
  std::mt19937 rng(13);
  Tensor x = random_f32({2, 4, 3}, rng);
  Tensor s4 = random_f32({4}, rng), b4 = random_f32({4}, rng), s2 = random_f32({2}, rng), b2 = random_f32({2}, rng);
  auto norm = [&](int n, int g, int c, int k) {  // normalized x for group g of sample n
    const float* p = x.data<float>() + (n * 4 + g * 2) * 3;
    double m = 0, v = 0;
    for (int i = 0; i < 6; ++i) m += p[i] / 6.0;
    for (int i = 0; i < 6; ++i) v += (p[i] - m) * (p[i] - m) / 6.0;
    return (x.data<float>()[(n * 4 + c) * 3 + k] - m) / std::sqrt(v + 1e-5);
  };
  Tensor y21 = run_node(
      {.op = "GroupNormalization", .opset = 21, .inputs = {x, s4, b4}, .attrs = {{"num_groups", attr_int(2)}}})[0];
  Tensor y18 = run_node(
      {.op = "GroupNormalization", .opset = 18, .inputs = {x, s2, b2}, .attrs = {{"num_groups", attr_int(2)}}})[0];
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 4; ++c)
      for (int k = 0; k < 3; ++k) {
        int i = (n * 4 + c) * 3 + k, g = c / 2;
        EXPECT_NEAR(y21.data<float>()[i], norm(n, g, c, k) * s4.data<float>()[c] + b4.data<float>()[c], 1e-5);
        EXPECT_NEAR(y18.data<float>()[i], norm(n, g, c, k) * s2.data<float>()[g] + b2.data<float>()[g], 1e-5);
      }
  // Per-group scale at 21 is the wrong size; 3 groups do not divide 4 channels.
  EXPECT_THROW(
      run_node(
          {.op = "GroupNormalization", .opset = 21, .inputs = {x, s2, b2}, .attrs = {{"num_groups", attr_int(2)}}}),
      Error);
  EXPECT_THROW(
      run_node(
          {.op = "GroupNormalization", .opset = 21, .inputs = {x, s4, b4}, .attrs = {{"num_groups", attr_int(3)}}}),
      Error);
}

TEST(Normalization, MeanVarianceAndLp) {
  std::mt19937 rng(14);
  Tensor x = random_f32({2, 3, 2, 2}, rng);
  Tensor y = run_node({.op = "MeanVarianceNormalization", .opset = 13, .inputs = {x}})[0];
  for (int c = 0; c < 3; ++c) {  // default axes {0, 2, 3}: per channel
    double m = 0, sq = 0;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 4; ++k) {
        double v = x.data<float>()[(n * 3 + c) * 4 + k];
        m += v / 8;
        sq += v * v / 8;
      }
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 4; ++k) {
        int i = (n * 3 + c) * 4 + k;
        EXPECT_NEAR(y.data<float>()[i], (x.data<float>()[i] - m) / (std::sqrt(sq - m * m) + 1e-9), 1e-4);
      }
  }
  Tensor v = make_f32({2, 3}, {3, 0, -4, 0, 0, 0});
  Tensor l2 = run_node({.op = "LpNormalization", .opset = 1, .inputs = {v}})[0];
  Tensor l1 = run_node(
      {.op = "LpNormalization", .opset = 1, .inputs = {v}, .attrs = {{"p", attr_int(1)}, {"axis", attr_int(0)}}})[0];
  EXPECT_EQ(to_f32(l2), (std::vector<float>{0.6f, 0, -0.8f, 0, 0, 0}));  // zero row stays zero
  EXPECT_EQ(to_f32(l1), (std::vector<float>{1, 0, -1, 0, 0, 0}));
  EXPECT_THROW(run_node({.op = "LpNormalization", .opset = 1, .inputs = {v}, .attrs = {{"p", attr_int(3)}}}), Error);
}

}  // namespace kiln::test
