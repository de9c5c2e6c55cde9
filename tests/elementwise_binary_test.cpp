// Pow, Mod, comparison/logic/bitwise ops, Max/Min/Sum/Mean, Clip and Where
// against plain references, with numpy and legacy broadcasting.
#include <cmath>
#include <functional>
#include <limits>

#include <gtest/gtest.h>

#include "elementwise_test_util.h"

namespace kiln::test {

namespace {

// want[i] = f(a[bcast], b[bcast]) over the numpy broadcast of a and b.
template <typename A, typename B, typename O, typename F>
std::vector<O> ref_binary(const Tensor& a, const Tensor& b, const Shape& out, F f) {
  std::vector<O> w(static_cast<size_t>(shape_numel(out)));
  for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i)
    w[static_cast<size_t>(i)] = static_cast<O>(
        f(a.data<A>()[broadcast_index(a.shape(), out, i)], b.data<B>()[broadcast_index(b.shape(), out, i)]));
  return w;
}

}  // namespace

// ---------------------------------------------------------------- Pow

TEST(Pow, FloatBroadcastAndMixedTypes) {
  std::mt19937 rng(20);
  Tensor a = random_f32({2, 3, 4}, rng, 0.1f, 3), b = random_f32({3, 1}, rng, -2, 2);
  auto out = run_node({.op = "Pow", .opset = 15, .inputs = {a, b}});
  Shape s{2, 3, 4};
  EXPECT_TRUE(all_close(out[0], make_f32(s, ref_binary<float, float, float>(a, b, s, [](float x, float y) {
                                           return std::pow(double(x), double(y));
                                         }))));
  // float base, int64 exponent (opset 12+).
  Tensor e = random_ints<int64_t>({4}, rng, -3, 3);
  auto fe = run_node({.op = "Pow", .opset = 12, .inputs = {a, e}});
  ASSERT_EQ(fe[0].dtype(), DType::kFloat32);
  EXPECT_TRUE(all_close(fe[0], make_f32(s, ref_binary<float, int64_t, float>(a, e, s, [](float x, int64_t y) {
                                          return std::pow(double(x), double(y));
                                        }))));
  // int32 base, float exponent: the result is truncated back to int32.
  auto ib =
      run_node({.op = "Pow", .opset = 15, .inputs = {make<int32_t>({3}, {2, 3, 4}), make_f32({3}, {0.5f, 2, 1.5f})}});
  EXPECT_EQ(values<int32_t>(ib[0]), (std::vector<int32_t>{int32_t(std::sqrt(2.0)), 9, 8}));
  // Mixed types before opset 12 are an error.
  EXPECT_THROW(run_node({.op = "Pow", .opset = 7, .inputs = {a, e}}), Error);
}

TEST(Pow, IntegerPowers) {
  std::mt19937 rng(21);
  Tensor a = random_ints<int64_t>({20}, rng, -6, 6), b = random_ints<int64_t>({20}, rng, 0, 9);
  auto out = run_node({.op = "Pow", .opset = 15, .inputs = {a, b}});
  for (int i = 0; i < 20; ++i) {
    int64_t want = 1;
    for (int64_t k = 0; k < b.data<int64_t>()[i]; ++k) want *= a.data<int64_t>()[i];
    EXPECT_EQ(out[0].data<int64_t>()[i], want);
  }
  // Negative exponents: only |base| == 1 survives truncation.
  auto neg = run_node(
      {.op = "Pow", .opset = 15, .inputs = {make<int32_t>({4}, {1, -1, 2, -1}), make<int32_t>({4}, {-3, -3, -1, -2})}});
  EXPECT_EQ(values<int32_t>(neg[0]), (std::vector<int32_t>{1, -1, 0, 1}));
}

TEST(Pow, Opset1LegacyBroadcast) {
  std::mt19937 rng(22);
  Tensor a = random_f32({2, 3, 4}, rng, 0.5f, 2), b = random_f32({3}, rng, -1, 1);
  auto out = run_node(
      {.op = "Pow", .opset = 1, .inputs = {a, b}, .attrs = {{"broadcast", attr_int(1)}, {"axis", attr_int(1)}}});
  for (int i = 0; i < 24; ++i)
    EXPECT_FLOAT_EQ(out[0].data<float>()[i],
                    static_cast<float>(std::pow(double(a.data<float>()[i]), double(b.data<float>()[(i / 4) % 3]))));
  EXPECT_THROW(run_node({.op = "Pow", .opset = 1, .inputs = {a, b}}), Error);
}

// ---------------------------------------------------------------- Mod

TEST(Mod, IntegerSignFollowsDivisorUnlessFmod) {
  std::mt19937 rng(23);
  Tensor a = random_ints<int32_t>({3, 10}, rng, -50, 50), b = random_ints<int32_t>({10}, rng, -7, 7);
  for (int i = 0; i < 10; ++i)
    if (b.data<int32_t>()[i] == 0) b.data<int32_t>()[i] = 3;
  auto m = run_node({.op = "Mod", .opset = 13, .inputs = {a, b}});
  auto f = run_node({.op = "Mod", .opset = 13, .inputs = {a, b}, .attrs = {{"fmod", attr_int(1)}}});
  for (int i = 0; i < 30; ++i) {
    int32_t x = a.data<int32_t>()[i], y = b.data<int32_t>()[i % 10];
    int32_t py = static_cast<int32_t>(x - y * std::floor(double(x) / y));  // Python's %
    EXPECT_EQ(m[0].data<int32_t>()[i], py) << x << " % " << y;
    EXPECT_EQ(f[0].data<int32_t>()[i], static_cast<int32_t>(std::fmod(double(x), double(y)))) << x << " fmod " << y;
  }
  // Division by zero and INT_MIN % -1 do not trap.
  auto z =
      run_node({.op = "Mod", .opset = 13, .inputs = {make<int64_t>({2}, {7, INT64_MIN}), make<int64_t>({2}, {0, -1})}});
  EXPECT_EQ(values<int64_t>(z[0]), (std::vector<int64_t>{0, 0}));
  auto u = run_node({.op = "Mod", .opset = 10, .inputs = {make<uint8_t>({2}, {250, 7}), make<uint8_t>({2}, {7, 250})}});
  EXPECT_EQ(values<uint8_t>(u[0]), (std::vector<uint8_t>{250 % 7, 7}));
  EXPECT_THROW(run_node({.op = "Mod", .opset = 13, .inputs = {a, b}, .attrs = {{"fmod", attr_int(2)}}}), Error);
}

TEST(Mod, FloatFmod) {
  std::mt19937 rng(24);
  Tensor a = random_f32({12}, rng, -10, 10), b = random_f32({12}, rng, 0.5f, 3);
  for (int i = 0; i < 12; i += 2) b.data<float>()[i] *= -1;
  auto f = run_node({.op = "Mod", .opset = 13, .inputs = {a, b}, .attrs = {{"fmod", attr_int(1)}}});
  for (int i = 0; i < 12; ++i)
    EXPECT_FLOAT_EQ(f[0].data<float>()[i], std::fmod(a.data<float>()[i], b.data<float>()[i]));
}

// ---------------------------------------------------------------- comparisons and logic

TEST(Compare, MatchReferenceWithBroadcast) {
  std::mt19937 rng(25);
  // Small integer range so equality happens.
  Tensor a = random_ints<int16_t>({2, 3, 4}, rng, -3, 3), b = random_ints<int16_t>({3, 1}, rng, -3, 3);
  Shape s{2, 3, 4};
  struct Case {
    const char* op;
    int opset;
    std::function<bool(int16_t, int16_t)> f;
  };
  std::vector<Case> cases = {{"Equal", 13, std::equal_to<int16_t>()},
                             {"Greater", 13, std::greater<int16_t>()},
                             {"Less", 9, std::less<int16_t>()},
                             {"GreaterOrEqual", 16, std::greater_equal<int16_t>()},
                             {"LessOrEqual", 12, std::less_equal<int16_t>()}};
  for (const Case& c : cases) {
    auto out = run_node({.op = c.op, .opset = c.opset, .inputs = {a, b}});
    ASSERT_EQ(out[0].dtype(), DType::kBool) << c.op;
    EXPECT_EQ(values<bool>(out[0]), (ref_binary<int16_t, int16_t, bool>(a, b, s, c.f))) << c.op;
  }
  Tensor fa = random_f32({5, 6}, rng), fb = random_f32({6}, rng);
  auto g = run_node({.op = "Greater", .opset = 13, .inputs = {fa, fb}});
  EXPECT_EQ(values<bool>(g[0]), (ref_binary<float, float, bool>(fa, fb, {5, 6}, std::greater<float>())));
  EXPECT_THROW(run_node({.op = "Less", .opset = 13, .inputs = {fa, a}}), Error);  // types differ
}

TEST(Compare, EqualOnStringsAndBools) {
  Tensor a = make<std::string>({2, 2}, {"a", "bc", "", "x"}), b = make<std::string>({2}, {"a", "x"});
  auto s = run_node({.op = "Equal", .opset = 19, .inputs = {a, b}});
  EXPECT_EQ(values<bool>(s[0]), (std::vector<bool>{true, false, false, true}));
  auto t = run_node({.op = "Equal",
                     .opset = 13,
                     .inputs = {make_bool({3}, {true, false, true}), make_bool({3}, {true, true, false})}});
  EXPECT_EQ(values<bool>(t[0]), (std::vector<bool>{true, false, false}));
}

TEST(Compare, Opset1LegacyBroadcast) {
  // Greater-1: B of shape [3] aligned at axis 1 of A [2,3,2].
  std::mt19937 rng(26);
  Tensor a = random_f32({2, 3, 2}, rng), b = random_f32({3}, rng);
  auto out = run_node(
      {.op = "Greater", .opset = 1, .inputs = {a, b}, .attrs = {{"broadcast", attr_int(1)}, {"axis", attr_int(1)}}});
  for (int i = 0; i < 12; ++i) EXPECT_EQ(out[0].data<bool>()[i], a.data<float>()[i] > b.data<float>()[(i / 2) % 3]);
  EXPECT_THROW(run_node({.op = "Greater", .opset = 1, .inputs = {a, b}}), Error);
  auto o = run_node({.op = "Or",
                     .opset = 1,
                     .inputs = {make_bool({2, 2}, {true, false, false, false}), make_bool({2}, {false, true})},
                     .attrs = {{"broadcast", attr_int(1)}, {"axis", attr_int(0)}}});
  EXPECT_EQ(values<bool>(o[0]), (std::vector<bool>{true, false, true, true}));
}

TEST(Logic, AndOrXorBroadcast) {
  std::mt19937 rng(27);
  Tensor a = random_ints<bool>({3, 4, 5}, rng, 0, 1), b = random_ints<bool>({4, 1}, rng, 0, 1);
  Shape s{3, 4, 5};
  auto x_and = run_node({.op = "And", .opset = 7, .inputs = {a, b}});
  auto x_or = run_node({.op = "Or", .opset = 7, .inputs = {a, b}});
  auto x_xor = run_node({.op = "Xor", .opset = 7, .inputs = {a, b}});
  EXPECT_EQ(values<bool>(x_and[0]), (ref_binary<bool, bool, bool>(a, b, s, [](bool p, bool q) { return p && q; })));
  EXPECT_EQ(values<bool>(x_or[0]), (ref_binary<bool, bool, bool>(a, b, s, [](bool p, bool q) { return p || q; })));
  EXPECT_EQ(values<bool>(x_xor[0]), (ref_binary<bool, bool, bool>(a, b, s, [](bool p, bool q) { return p != q; })));
  EXPECT_THROW(run_node({.op = "And", .opset = 7, .inputs = {random_f32({2}, rng), random_f32({2}, rng)}}), Error);
}

TEST(Bitwise, ShiftsAndBitOps) {
  auto l = run_node({.op = "BitShift",
                     .opset = 11,
                     .inputs = {make<uint8_t>({4}, {1, 3, 255, 7}), make<uint8_t>({4}, {1, 2, 7, 8})},
                     .attrs = {{"direction", attr_string("LEFT")}}});
  EXPECT_EQ(values<uint8_t>(l[0]), (std::vector<uint8_t>{2, 12, 128, 0}));
  auto r = run_node({.op = "BitShift",
                     .opset = 11,
                     .inputs = {make<uint64_t>({3}, {1ull << 63, 1000, 5}), make<uint64_t>({1}, {64})},
                     .attrs = {{"direction", attr_string("RIGHT")}}});
  EXPECT_EQ(values<uint64_t>(r[0]), (std::vector<uint64_t>{0, 0, 0}));
  EXPECT_THROW(run_node({.op = "BitShift",
                         .opset = 11,
                         .inputs = {make<uint8_t>({1}, {1}), make<uint8_t>({1}, {1})},
                         .attrs = {{"direction", attr_string("UP")}}}),
               Error);
  std::mt19937 rng(28);
  Tensor a = random_ints<int32_t>({3, 4}, rng, -1000, 1000), b = random_ints<int32_t>({4}, rng, -1000, 1000);
  auto band = run_node({.op = "BitwiseAnd", .opset = 18, .inputs = {a, b}});
  auto bor = run_node({.op = "BitwiseOr", .opset = 18, .inputs = {a, b}});
  auto bxor = run_node({.op = "BitwiseXor", .opset = 18, .inputs = {a, b}});
  EXPECT_EQ(values<int32_t>(band[0]), (ref_binary<int32_t, int32_t, int32_t>(a, b, {3, 4}, std::bit_and<int32_t>())));
  EXPECT_EQ(values<int32_t>(bor[0]), (ref_binary<int32_t, int32_t, int32_t>(a, b, {3, 4}, std::bit_or<int32_t>())));
  EXPECT_EQ(values<int32_t>(bxor[0]), (ref_binary<int32_t, int32_t, int32_t>(a, b, {3, 4}, std::bit_xor<int32_t>())));
}

// ---------------------------------------------------------------- variadic

TEST(Variadic, MaxMinSumMeanBroadcastThreeInputs) {
  std::mt19937 rng(29);
  Tensor a = random_f32({2, 3, 4}, rng), b = random_f32({3, 1}, rng), c = random_f32({4}, rng);
  Shape s{2, 3, 4};
  for (const char* op : {"Max", "Min", "Sum", "Mean"}) {
    auto out = run_node({.op = op, .opset = 13, .inputs = {a, b, c}});
    Tensor want(DType::kFloat32, s);
    for (int64_t i = 0; i < 24; ++i) {
      float x = a.data<float>()[broadcast_index(a.shape(), s, i)];
      float y = b.data<float>()[broadcast_index(b.shape(), s, i)];
      float z = c.data<float>()[broadcast_index(c.shape(), s, i)];
      std::string o = op;
      want.data<float>()[i] = o == "Max"   ? std::max({x, y, z})
                              : o == "Min" ? std::min({x, y, z})
                              : o == "Sum" ? x + y + z
                                           : (x + y + z) / 3;
    }
    EXPECT_TRUE(all_close(out[0], want)) << op;
  }
}

TEST(Variadic, OneInputIntegersNaNAndOldOpsets) {
  std::mt19937 rng(30);
  Tensor a = random_f32({5}, rng);
  auto one = run_node({.op = "Sum", .opset = 13, .inputs = {a}});
  EXPECT_TRUE(all_close(one[0], a));
  auto im = run_node(
      {.op = "Max", .opset = 12, .inputs = {make<uint32_t>({3}, {1, 9, 4000000000u}), make<uint32_t>({3}, {5, 2, 3})}});
  EXPECT_EQ(values<uint32_t>(im[0]), (std::vector<uint32_t>{5, 9, 4000000000u}));
  const float nan = std::nanf("");
  auto n = run_node({.op = "Min", .opset = 13, .inputs = {make_f32({2}, {nan, 1}), make_f32({2}, {0, nan})}});
  EXPECT_TRUE(std::isnan(n[0].data<float>()[0]));
  EXPECT_TRUE(std::isnan(n[0].data<float>()[1]));
  // Opset 6 needs equal shapes; opset 8 broadcasts.
  Tensor b = random_f32({2, 5}, rng);
  EXPECT_THROW(run_node({.op = "Mean", .opset = 6, .inputs = {a, b}}), Error);
  auto m8 = run_node({.op = "Mean", .opset = 8, .inputs = {a, b}});
  EXPECT_EQ(m8[0].shape(), (Shape{2, 5}));
  auto m6 = run_node({.op = "Mean", .opset = 6, .inputs = {b, b}});
  EXPECT_TRUE(all_close(m6[0], b));
  EXPECT_THROW(run_node({.op = "Sum", .opset = 13, .inputs = {a, make<double>({5}, {1, 2, 3, 4, 5})}}), Error);
}

// ---------------------------------------------------------------- Clip

TEST(Clip, InputBoundsOpset13) {
  std::mt19937 rng(31);
  Tensor x = random_f32({4, 5}, rng, -3, 3);
  auto both = run_node({.op = "Clip", .opset = 13, .inputs = {x, make_f32({}, {-1}), make_f32({}, {0.5f})}});
  auto only_max = run_node({.op = "Clip", .opset = 13, .inputs = {x, std::nullopt, make_f32({}, {0.5f})}});
  auto inverted = run_node({.op = "Clip", .opset = 13, .inputs = {x, make_f32({}, {2}), make_f32({}, {1})}});
  auto none = run_node({.op = "Clip", .opset = 11, .inputs = {x}});
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = x.data<float>()[i];
    EXPECT_EQ(both[0].data<float>()[i], v < -1 ? -1 : v > 0.5f ? 0.5f : v);
    EXPECT_EQ(only_max[0].data<float>()[i], v > 0.5f ? 0.5f : v);
    EXPECT_EQ(inverted[0].data<float>()[i], 1.0f);  // min > max: max wins, like np.clip
    EXPECT_EQ(none[0].data<float>()[i], v);
  }
  auto i8 =
      run_node({.op = "Clip",
                .opset = 12,
                .inputs = {make<int8_t>({4}, {-128, -5, 5, 127}), make<int8_t>({}, {-10}), make<int8_t>({}, {6})}});
  EXPECT_EQ(values<int8_t>(i8[0]), (std::vector<int8_t>{-10, -5, 5, 6}));
  EXPECT_THROW(run_node({.op = "Clip", .opset = 13, .inputs = {x, make_f32({2}, {0, 1})}}), Error);  // not scalar
  EXPECT_THROW(run_node({.op = "Clip", .opset = 13, .inputs = {x, make_i64({}, {0})}}), Error);      // wrong type
}

TEST(Clip, AttributeBoundsOldOpsets) {
  std::mt19937 rng(32);
  Tensor x = random_f32({10}, rng, -3, 3);
  auto c6 =
      run_node({.op = "Clip", .opset = 6, .inputs = {x}, .attrs = {{"min", attr_float(-1)}, {"max", attr_float(2)}}});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c6[0].data<float>()[i], std::clamp(x.data<float>()[i], -1.0f, 2.0f));
  // Opset 6 defaults to +-FLT_MAX; opset 1 without attributes does not clip.
  auto d6 = run_node({.op = "Clip", .opset = 6, .inputs = {make<double>({2}, {1e300, -1e300})}});
  EXPECT_EQ(values<double>(d6[0]),
            (std::vector<double>{std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()}));
  auto d1 = run_node({.op = "Clip", .opset = 1, .inputs = {make<double>({2}, {1e300, -1e300})}});
  EXPECT_EQ(values<double>(d1[0]), (std::vector<double>{1e300, -1e300}));
  auto m1 = run_node({.op = "Clip", .opset = 1, .inputs = {x}, .attrs = {{"min", attr_float(0)}}});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(m1[0].data<float>()[i], std::max(x.data<float>()[i], 0.0f));
}

// ---------------------------------------------------------------- Where

TEST(Where, BroadcastsThreeInputs) {
  std::mt19937 rng(33);
  Tensor c = random_ints<bool>({3, 1, 4}, rng, 0, 1), x = random_f32({2, 1}, rng), y = random_f32({4}, rng);
  Shape s{3, 2, 4};
  auto out = run_node({.op = "Where", .opset = 16, .inputs = {c, x, y}});
  ASSERT_EQ(out[0].shape(), s);
  for (int64_t i = 0; i < shape_numel(s); ++i) {
    bool cond = c.data<bool>()[broadcast_index(c.shape(), s, i)];
    float want =
        cond ? x.data<float>()[broadcast_index(x.shape(), s, i)] : y.data<float>()[broadcast_index(y.shape(), s, i)];
    EXPECT_EQ(out[0].data<float>()[i], want);
  }
  auto str = run_node({.op = "Where",
                       .opset = 9,
                       .inputs = {make_bool({2}, {true, false}), make<std::string>({1}, {"yes"}),
                                  make<std::string>({2}, {"n1", "n2"})}});
  EXPECT_EQ(values<std::string>(str[0]), (std::vector<std::string>{"yes", "n2"}));
  EXPECT_THROW(run_node({.op = "Where", .opset = 16, .inputs = {x, x, y}}), Error);  // condition not bool
  EXPECT_THROW(run_node({.op = "Where", .opset = 16, .inputs = {c, x, make_i64({1}, {0})}}), Error);
  auto e = run_node({.op = "Where", .opset = 16, .inputs = {Tensor(DType::kBool, {0, 4}), make_f32({1}, {1}), y}});
  EXPECT_EQ(e[0].shape(), (Shape{0, 4}));
}

}  // namespace kiln::test
