// Unary math, activations and Cast/CastLike against plain references.
#include <cmath>
#include <functional>
#include <limits>

#include <gtest/gtest.h>

#include "elementwise_test_util.h"

namespace kiln::test {

namespace {

struct UnaryCase {
  const char* op;
  int opset;
  float lo, hi;  // input range
  std::function<double(double)> ref;
};

double ref_round_half_even(double x) {
  double f = std::floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0 ? f : f + 1;
}

}  // namespace

TEST(UnaryMath, FloatOpsMatchReference) {
  const double pi = std::acos(-1.0);
  std::vector<UnaryCase> cases = {
      {"Exp", 13, -3, 3, [](double x) { return std::exp(x); }},
      {"Exp", 6, -3, 3, [](double x) { return std::exp(x); }},
      {"Log", 13, 0.01f, 5, [](double x) { return std::log(x); }},
      {"Sqrt", 13, 0, 5, [](double x) { return std::sqrt(x); }},
      {"Reciprocal", 13, 0.5f, 3, [](double x) { return 1 / x; }},
      {"Sin", 7, -4, 4, [](double x) { return std::sin(x); }},
      {"Cos", 7, -4, 4, [](double x) { return std::cos(x); }},
      {"Tan", 7, -1.5f, 1.5f, [](double x) { return std::sin(x) / std::cos(x); }},
      {"Asin", 7, -1, 1, [](double x) { return std::asin(x); }},
      {"Acos", 7, -1, 1, [&](double x) { return pi / 2 - std::asin(x); }},
      {"Atan", 7, -5, 5, [](double x) { return std::atan(x); }},
      {"Sinh", 9, -3, 3, [](double x) { return (std::exp(x) - std::exp(-x)) / 2; }},
      {"Cosh", 9, -3, 3, [](double x) { return (std::exp(x) + std::exp(-x)) / 2; }},
      {"Asinh", 9, -3, 3, [](double x) { return std::log(x + std::sqrt(x * x + 1)); }},
      {"Acosh", 9, 1, 5, [](double x) { return std::log(x + std::sqrt(x * x - 1)); }},
      {"Atanh", 9, -0.9f, 0.9f, [](double x) { return 0.5 * std::log((1 + x) / (1 - x)); }},
      {"Erf", 13, -3, 3, [](double x) { return std::erf(x); }},
      {"Ceil", 13, -5, 5, [](double x) { return std::ceil(x); }},
      {"Floor", 13, -5, 5, [](double x) { return std::floor(x); }},
      {"Round", 11, -5, 5, ref_round_half_even},
      {"Sigmoid", 13, -8, 8, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"Tanh", 13, -4, 4, [](double x) { return (std::exp(2 * x) - 1) / (std::exp(2 * x) + 1); }},
      {"Softplus", 1, -8, 8, [](double x) { return std::log(std::exp(x) + 1); }},
      {"Softsign", 1, -8, 8, [](double x) { return x / (1 + std::fabs(x)); }},
      {"HardSwish", 14, -5, 5, [](double x) { return x * std::max(0.0, std::min(1.0, (x + 3) / 6)); }},
      {"Mish", 18, -5, 5, [](double x) { return x * std::tanh(std::log(1 + std::exp(x))); }},
      {"Abs", 13, -5, 5, [](double x) { return x < 0 ? -x : x; }},
      {"Neg", 13, -5, 5, [](double x) { return -x; }},
      {"Sign", 13, -2, 2, [](double x) { return x > 0   ? 1.0
                                                : x < 0 ? -1.0
                                                        : 0.0; }},
  };
  std::mt19937 rng(7);
  for (const UnaryCase& c : cases) {
    Tensor x = random_f32({3, 5, 7}, rng, c.lo, c.hi);
    auto out = run_node({.op = c.op, .opset = c.opset, .inputs = {x}});
    Tensor want(DType::kFloat32, {3, 5, 7});
    for (int64_t i = 0; i < x.numel(); ++i) want.data<float>()[i] = static_cast<float>(c.ref(x.data<float>()[i]));
    EXPECT_TRUE(all_close(out[0], want, 1e-5, 1e-6)) << c.op << "-" << c.opset;
  }
}

TEST(UnaryMath, RoundTiesGoToEven) {
  std::vector<float> v = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, 2.6f, 0.0f};
  auto out = run_node({.op = "Round", .opset = 11, .inputs = {make_f32({9}, v)}});
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(out[0].data<float>()[i], static_cast<float>(ref_round_half_even(v[i]))) << v[i];
}

TEST(UnaryMath, SixteenBitAndDoubleTypes) {
  std::mt19937 rng(8);
  Tensor xf = random_f32({4, 6}, rng, -2, 2);
  std::vector<Float16> h;
  std::vector<double> d;
  for (float f : to_f32(xf)) {
    h.push_back(Float16(f));
    d.push_back(f);
  }
  auto oh = run_node({.op = "Exp", .opset = 13, .inputs = {make<Float16>({4, 6}, h)}});
  auto od = run_node({.op = "Exp", .opset = 13, .inputs = {make<double>({4, 6}, d)}});
  ASSERT_EQ(oh[0].dtype(), DType::kFloat16);
  ASSERT_EQ(od[0].dtype(), DType::kFloat64);
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(static_cast<float>(oh[0].data<Float16>()[i]), static_cast<float>(Float16(std::exp(float(h[i])))));
    EXPECT_DOUBLE_EQ(od[0].data<double>()[i], std::exp(d[i]));
  }
}

TEST(UnaryMath, IntegerAbsNegSign) {
  auto a = run_node({.op = "Abs", .opset = 13, .inputs = {make<int8_t>({4}, {-128, -3, 0, 127})}});
  EXPECT_EQ(values<int8_t>(a[0]), (std::vector<int8_t>{-128, 3, 0, 127}));  // -128 wraps like numpy
  auto n = run_node({.op = "Neg", .opset = 13, .inputs = {make<int64_t>({3}, {INT64_MIN, -5, 7})}});
  EXPECT_EQ(values<int64_t>(n[0]), (std::vector<int64_t>{INT64_MIN, 5, -7}));
  auto u = run_node({.op = "Abs", .opset = 13, .inputs = {make<uint16_t>({2}, {65535, 3})}});
  EXPECT_EQ(values<uint16_t>(u[0]), (std::vector<uint16_t>{65535, 3}));
  auto s = run_node({.op = "Sign", .opset = 13, .inputs = {make<int32_t>({3}, {-9, 0, 4})}});
  EXPECT_EQ(values<int32_t>(s[0]), (std::vector<int32_t>{-1, 0, 1}));
  EXPECT_THROW(run_node({.op = "Neg", .opset = 13, .inputs = {make<uint8_t>({1}, {1})}}), Error);
  EXPECT_THROW(run_node({.op = "Exp", .opset = 13, .inputs = {make<int32_t>({1}, {1})}}), Error);
}

TEST(UnaryMath, IsNaNIsInfAndLogic) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::vector<float> v = {1, -inf, inf, nan, 0};
  auto isnan = run_node({.op = "IsNaN", .opset = 13, .inputs = {make_f32({5}, v)}});
  auto isinf = run_node({.op = "IsInf", .opset = 10, .inputs = {make_f32({5}, v)}});
  auto pos =
      run_node({.op = "IsInf", .opset = 10, .inputs = {make_f32({5}, v)}, .attrs = {{"detect_negative", attr_int(0)}}});
  auto neg =
      run_node({.op = "IsInf", .opset = 10, .inputs = {make_f32({5}, v)}, .attrs = {{"detect_positive", attr_int(0)}}});
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(isnan[0].data<bool>()[i], std::isnan(v[i]));
    EXPECT_EQ(isinf[0].data<bool>()[i], std::isinf(v[i]));
    EXPECT_EQ(pos[0].data<bool>()[i], std::isinf(v[i]) && v[i] > 0);
    EXPECT_EQ(neg[0].data<bool>()[i], std::isinf(v[i]) && v[i] < 0);
  }
  auto n = run_node({.op = "Not", .opset = 1, .inputs = {make_bool({3}, {true, false, true})}});
  EXPECT_EQ(n[0].data<bool>()[0], false);
  EXPECT_EQ(n[0].data<bool>()[1], true);
  auto b = run_node({.op = "BitwiseNot", .opset = 18, .inputs = {make<uint8_t>({2}, {0, 0x0f})}});
  EXPECT_EQ(values<uint8_t>(b[0]), (std::vector<uint8_t>{0xff, 0xf0}));
  auto bi = run_node({.op = "BitwiseNot", .opset = 18, .inputs = {make<int32_t>({2}, {0, -1})}});
  EXPECT_EQ(values<int32_t>(bi[0]), (std::vector<int32_t>{-1, 0}));
}

TEST(UnaryMath, EmptyTensor) {
  auto out = run_node({.op = "Sqrt", .opset = 13, .inputs = {Tensor(DType::kFloat32, {0, 3})}});
  EXPECT_EQ(out[0].shape(), (Shape{0, 3}));
  auto b = run_node({.op = "IsNaN", .opset = 13, .inputs = {Tensor(DType::kFloat32, {2, 0})}});
  EXPECT_EQ(b[0].shape(), (Shape{2, 0}));
}

// ---------------------------------------------------------------- activations

TEST(Activations, AttributesMatchReference) {
  struct Case {
    const char* op;
    int opset;
    std::map<std::string, Attribute> attrs;
    std::function<double(double)> ref;
  };
  const double selu_a = 1.67326319217681884765625, selu_g = 1.05070102214813232421875;
  std::vector<Case> cases = {
      {"LeakyRelu", 16, {}, [](double x) { return x >= 0 ? x : 0.01 * x; }},
      {"LeakyRelu", 6, {{"alpha", attr_float(0.3f)}}, [](double x) { return x >= 0 ? x : double(0.3f) * x; }},
      {"Elu", 6, {}, [](double x) { return x >= 0 ? x : std::exp(x) - 1; }},
      {"Elu", 22, {{"alpha", attr_float(2.0f)}}, [](double x) { return x >= 0 ? x : 2 * (std::exp(x) - 1); }},
      {"Selu", 6, {}, [&](double x) { return x > 0 ? selu_g * x : selu_g * selu_a * (std::exp(x) - 1); }},
      {"Selu",
       6,
       {{"alpha", attr_float(2)}, {"gamma", attr_float(3)}},
       [](double x) { return x > 0 ? 3 * x : 3 * 2 * (std::exp(x) - 1); }},
      {"Celu", 12, {}, [](double x) { return x > 0 ? x : std::exp(x) - 1; }},
      {"Celu", 12, {{"alpha", attr_float(2)}}, [](double x) { return x > 0 ? x : 2 * (std::exp(x / 2) - 1); }},
      {"HardSigmoid", 6, {}, [](double x) { return std::clamp(double(0.2f) * x + 0.5, 0.0, 1.0); }},
      {"HardSigmoid",
       6,
       {{"alpha", attr_float(0.5f)}, {"beta", attr_float(0.25f)}},
       [](double x) { return std::clamp(0.5 * x + 0.25, 0.0, 1.0); }},
      {"ThresholdedRelu", 10, {}, [](double x) { return x > 1 ? x : 0; }},
      {"ThresholdedRelu", 10, {{"alpha", attr_float(0.5f)}}, [](double x) { return x > 0.5 ? x : 0; }},
      {"Shrink", 9, {}, [](double x) { return x < -0.5  ? x
                                              : x > 0.5 ? x
                                                        : 0; }},
      {"Shrink",
       9,
       {{"lambd", attr_float(1)}, {"bias", attr_float(0.25f)}},
       [](double x) { return x < -1  ? x + 0.25
                             : x > 1 ? x - 0.25
                                     : 0; }},
      {"Gelu", 20, {}, [](double x) { return x * 0.5 * std::erfc(-x / std::sqrt(2.0)); }},
      {"Gelu",
       20,
       {{"approximate", attr_string("tanh")}},
       [](double x) {
         double u = std::sqrt(2 / std::acos(-1.0)) * (x + 0.044715 * std::pow(x, 3));
         return 0.5 * x * (1 + std::tanh(u));
       }},
      {"Swish", 24, {}, [](double x) { return x / (1 + std::exp(-x)); }},
      {"Swish", 24, {{"alpha", attr_float(2)}}, [](double x) { return x / (1 + std::exp(-2 * x)); }},
  };
  std::mt19937 rng(9);
  for (const Case& c : cases) {
    Tensor x = random_f32({2, 3, 9}, rng, -4, 4);
    auto out = run_node({.op = c.op, .opset = c.opset, .inputs = {x}, .attrs = c.attrs});
    Tensor want(DType::kFloat32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) want.data<float>()[i] = static_cast<float>(c.ref(x.data<float>()[i]));
    EXPECT_TRUE(all_close(out[0], want, 1e-5, 1e-6)) << c.op << "-" << c.opset;
  }
  EXPECT_THROW(run_node({.op = "Gelu",
                         .opset = 20,
                         .inputs = {random_f32({2}, rng)},
                         .attrs = {{"approximate", attr_string("erf")}}}),
               Error);
}

TEST(Activations, ShrinkOnIntegersSaturates) {
  std::vector<int8_t> v = {-128, -100, -2, -1, 0, 1, 2, 127};
  auto out = run_node({.op = "Shrink",
                       .opset = 9,
                       .inputs = {make<int8_t>({8}, v)},
                       .attrs = {{"lambd", attr_float(1.5f)}, {"bias", attr_float(-100)}}});
  for (size_t i = 0; i < v.size(); ++i) {
    int x = v[i];
    int want = x < -1.5 ? x - 100 : x > 1.5 ? x + 100 : 0;
    EXPECT_EQ(out[0].data<int8_t>()[i], std::clamp(want, -128, 127)) << x;
  }
}

TEST(Activations, PReluBroadcastsSlope) {
  std::mt19937 rng(10);
  Tensor x = random_f32({3, 4, 5}, rng), slope = random_f32({5}, rng);
  auto out = run_node({.op = "PRelu", .opset = 16, .inputs = {x, slope}});
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = x.data<float>()[i];
    EXPECT_FLOAT_EQ(out[0].data<float>()[i], v < 0 ? v * slope.data<float>()[i % 5] : v);
  }
  // Slope may not grow X (unidirectional broadcast).
  EXPECT_THROW(run_node({.op = "PRelu", .opset = 16, .inputs = {random_f32({5}, rng), random_f32({2, 5}, rng)}}),
               Error);
}

TEST(Activations, PReluOpset6PerChannelSlope) {
  // Opset 6: a 1-D slope of size C applies per channel (dim 1).
  std::mt19937 rng(11);
  Tensor x = random_f32({2, 4, 3}, rng), slope = random_f32({4}, rng);
  auto out = run_node({.op = "PRelu", .opset = 6, .inputs = {x, slope}});
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = x.data<float>()[i];
    EXPECT_FLOAT_EQ(out[0].data<float>()[i], v < 0 ? v * slope.data<float>()[(i / 3) % 4] : v);
  }
  // The same slope is not broadcastable to the trailing dim at opset 7+.
  EXPECT_THROW(run_node({.op = "PRelu", .opset = 9, .inputs = {x, slope}}), Error);
}

// ---------------------------------------------------------------- Cast

TEST(Cast, FloatToNarrowerFloatsRoundOnce) {
  // 1 + 2^-11 + 2^-40 is just above a float16 tie; rounding through float
  // first would land on the tie and round to even (1.0).
  double v = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  auto h = run_node({.op = "Cast",
                     .opset = 19,
                     .inputs = {make<double>({1}, {v})},
                     .attrs = {{"to", attr_int(static_cast<int>(DType::kFloat16))}}});
  EXPECT_EQ(static_cast<float>(h[0].data<Float16>()[0]), 1.0f + std::ldexp(1.0f, -10));
  double w = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);  // bfloat16 has 7 mantissa bits
  auto b = run_node({.op = "Cast",
                     .opset = 19,
                     .inputs = {make<double>({1}, {w})},
                     .attrs = {{"to", attr_int(static_cast<int>(DType::kBFloat16))}}});
  EXPECT_EQ(static_cast<float>(b[0].data<BFloat16>()[0]), 1.0f + std::ldexp(1.0f, -7));
  // Overflow to infinity, and float -> float16 agrees with the Float16 type.
  std::mt19937 rng(12);
  Tensor x = random_f32({50}, rng, -70000, 70000);
  auto f = run_node({.op = "Cast", .opset = 13, .inputs = {x}, .attrs = {{"to", attr_int(10)}}});
  for (int64_t i = 0; i < 50; ++i) {
    float want = static_cast<float>(Float16(x.data<float>()[i]));
    EXPECT_EQ(static_cast<float>(f[0].data<Float16>()[i]), want);
  }
}

TEST(Cast, NumbersBoolsAndStrings) {
  const float nan = std::nanf("");
  Tensor x = make_f32({6}, {1.7f, -2.9f, 0.0f, 300.0f, nan, -1e10f});
  auto i8 = run_node({.op = "Cast", .opset = 13, .inputs = {x}, .attrs = {{"to", attr_int(3)}}});
  EXPECT_EQ(values<int8_t>(i8[0]), (std::vector<int8_t>{1, -2, 0, 127, 0, -128}));
  auto b = run_node({.op = "Cast", .opset = 13, .inputs = {x}, .attrs = {{"to", attr_int(9)}}});
  EXPECT_EQ(values<bool>(b[0]), (std::vector<bool>{true, true, false, true, true, true}));
  auto wrap =
      run_node({.op = "Cast", .opset = 13, .inputs = {make<int32_t>({2}, {257, -1})}, .attrs = {{"to", attr_int(2)}}});
  EXPECT_EQ(values<uint8_t>(wrap[0]), (std::vector<uint8_t>{1, 255}));
  auto bf = run_node(
      {.op = "Cast", .opset = 13, .inputs = {make<bool>({2}, {true, false})}, .attrs = {{"to", attr_int(11)}}});
  EXPECT_EQ(values<double>(bf[0]), (std::vector<double>{1.0, 0.0}));
  // Strings both ways; the text reads back to the same float.
  auto s = run_node(
      {.op = "Cast", .opset = 13, .inputs = {make_f32({3}, {0.1f, -2.5f, 1e20f})}, .attrs = {{"to", attr_int(8)}}});
  ASSERT_EQ(s[0].dtype(), DType::kString);
  EXPECT_EQ(std::strtof(s[0].data<std::string>()[0].c_str(), nullptr), 0.1f);
  EXPECT_EQ(std::strtof(s[0].data<std::string>()[2].c_str(), nullptr), 1e20f);
  auto back = run_node({.op = "Cast",
                        .opset = 13,
                        .inputs = {make<std::string>({4}, {"3.5", "-INF", "NaN", "1e3"})},
                        .attrs = {{"to", attr_int(1)}}});
  std::vector<float> bv = values<float>(back[0]);
  EXPECT_EQ(bv[0], 3.5f);
  EXPECT_TRUE(std::isinf(bv[1]) && bv[1] < 0);
  EXPECT_TRUE(std::isnan(bv[2]));
  EXPECT_EQ(bv[3], 1000.0f);
  auto si = run_node({.op = "Cast",
                      .opset = 13,
                      .inputs = {make<std::string>({2}, {"-42", "9000000000"})},
                      .attrs = {{"to", attr_int(7)}}});
  EXPECT_EQ(values<int64_t>(si[0]), (std::vector<int64_t>{-42, 9000000000}));
  EXPECT_THROW(
      run_node(
          {.op = "Cast", .opset = 13, .inputs = {make<std::string>({1}, {"abc"})}, .attrs = {{"to", attr_int(1)}}}),
      Error);
}

TEST(Cast, OldAndNewAttributeForms) {
  // Cast-1 names the type as a string.
  auto a = run_node(
      {.op = "Cast", .opset = 1, .inputs = {make_f32({2}, {2.5f, -1.5f})}, .attrs = {{"to", attr_string("INT32")}}});
  EXPECT_EQ(values<int32_t>(a[0]), (std::vector<int32_t>{2, -1}));
  // saturate (19+) is accepted and ignored for non-float8 targets.
  auto b = run_node({.op = "Cast",
                     .opset = 19,
                     .inputs = {make_f32({1}, {2.5f})},
                     .attrs = {{"to", attr_int(11)}, {"saturate", attr_int(0)}}});
  EXPECT_EQ(values<double>(b[0]), (std::vector<double>{2.5}));
  // float8 targets (17) are unsupported, named in the error.
  EXPECT_THROW(run_node({.op = "Cast", .opset = 19, .inputs = {make_f32({1}, {1})}, .attrs = {{"to", attr_int(17)}}}),
               Error);
  EXPECT_THROW(run_node({.op = "Cast", .opset = 13, .inputs = {make_f32({1}, {1})}}), Error);  // no 'to'
  auto e = run_node(
      {.op = "Cast", .opset = 13, .inputs = {Tensor(DType::kFloat32, {0, 2})}, .attrs = {{"to", attr_int(7)}}});
  EXPECT_EQ(e[0].shape(), (Shape{0, 2}));
}

TEST(Cast, CastLikeTakesTheSecondInputsType) {
  std::mt19937 rng(13);
  Tensor x = random_f32({3, 4}, rng, -100, 100);
  auto out = run_node({.op = "CastLike", .opset = 15, .inputs = {x, make<int16_t>({1}, {0})}});
  ASSERT_EQ(out[0].dtype(), DType::kInt16);
  for (int64_t i = 0; i < x.numel(); ++i)
    EXPECT_EQ(out[0].data<int16_t>()[i], static_cast<int16_t>(std::trunc(x.data<float>()[i])));
  auto h = run_node({.op = "CastLike", .opset = 19, .inputs = {x, make<Float16>({0}, {})}});
  EXPECT_EQ(h[0].dtype(), DType::kFloat16);
  EXPECT_EQ(h[0].shape(), x.shape());
}

}  // namespace kiln::test
