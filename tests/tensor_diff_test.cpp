// diff_tensors (src/analysis/tensor_diff.h, behind kiln compare) against a
// plain re-computation of each measure on random tensors, and the edge
// cases: NaN, infinities, zeros, empty tensors, mixed element types, strings,
// shape mismatches.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/half.h"
#include "kiln/tensor_diff.h"

namespace kiln {
namespace {

Tensor floats(const Shape& shape, const std::vector<float>& v) {
  Tensor t(DType::kFloat32, shape);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

TEST(TensorDiff, MatchesPlainComputationOnRandomTensors) {
  std::mt19937 rng(7);
  std::normal_distribution<float> value(0.f, 3.f), noise(0.f, 1e-3f);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 257);
    std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      want[static_cast<size_t>(i)] = i % 17 == 0 ? 0.f : value(rng);
      got[static_cast<size_t>(i)] = want[static_cast<size_t>(i)] + (trial % 2 ? noise(rng) : 0.f);
    }
    const double rtol = 1e-4, atol = 1e-4;
    const TensorDiff d = diff_tensors(floats({n}, got), floats({n}, want), rtol, atol);
    double max_abs = 0, max_rel = 0, e2 = 0, w2 = 0, g2 = 0, gw = 0;
    int64_t failing = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double g = got[i], w = want[i], e = std::fabs(g - w);
      max_abs = std::max(max_abs, e);
      if (w != 0) max_rel = std::max(max_rel, e / std::fabs(w));
      e2 += e * e, w2 += w * w, g2 += g * g, gw += g * w;
      if (e > atol + rtol * std::fabs(w)) ++failing;
    }
    EXPECT_EQ(d.elements, n);
    EXPECT_EQ(d.failing, failing);
    EXPECT_EQ(d.pass, failing == 0);
    EXPECT_DOUBLE_EQ(d.max_abs, max_abs);
    EXPECT_DOUBLE_EQ(d.max_rel, max_rel);
    EXPECT_NEAR(d.rel_l2, std::sqrt(e2 / w2), 1e-12);
    EXPECT_NEAR(d.cosine, gw / std::sqrt(g2 * w2), 1e-12);
    if (trial % 2 == 0) {
      EXPECT_TRUE(d.pass);
    }
  }
}

TEST(TensorDiff, WorstIndexIsTheElementFurthestOutsideTheTolerance) {
  const TensorDiff d =
      diff_tensors(floats({5}, {1.f, 2.5f, 3.f, 4.2f, 5.f}), floats({5}, {1.f, 2.f, 3.f, 4.f, 5.f}), 0, 0.1);
  EXPECT_FALSE(d.pass);
  EXPECT_EQ(d.failing, 2);
  EXPECT_EQ(d.worst_index, 1);
  EXPECT_DOUBLE_EQ(d.max_abs, 0.5);
}

TEST(TensorDiff, NanAndInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(diff_tensors(floats({3}, {nan, inf, -inf}), floats({3}, {nan, inf, -inf}), 0, 0).pass);
  TensorDiff d = diff_tensors(floats({2}, {nan, 1.f}), floats({2}, {0.f, 1.f}), 1e-3, 1e-3);
  EXPECT_FALSE(d.pass);
  EXPECT_EQ(d.failing, 1);
  EXPECT_TRUE(std::isinf(d.max_abs));
  EXPECT_TRUE(std::isinf(d.rel_l2));
  d = diff_tensors(floats({1}, {inf}), floats({1}, {-inf}), 1, 1);
  EXPECT_FALSE(d.pass);
  d = diff_tensors(floats({1}, {1e30f}), floats({1}, {inf}), 1, 1);
  EXPECT_FALSE(d.pass);
}

TEST(TensorDiff, ZerosAndEmptyTensors) {
  TensorDiff d = diff_tensors(floats({3}, {0, 0, 0}), floats({3}, {0, 0, 0}), 0, 0);
  EXPECT_TRUE(d.pass);
  EXPECT_EQ(d.rel_l2, 0);
  EXPECT_EQ(d.cosine, 1);
  d = diff_tensors(floats({2}, {1e-3f, 0}), floats({2}, {0, 0}), 0, 0);
  EXPECT_FALSE(d.pass);
  EXPECT_TRUE(std::isinf(d.rel_l2));
  EXPECT_EQ(d.cosine, 0);
  EXPECT_EQ(d.max_rel, 0);  // no nonzero reference element
  d = diff_tensors(floats({0, 4}, {}), floats({0, 4}, {}), 0, 0);
  EXPECT_TRUE(d.pass);
  EXPECT_EQ(d.elements, 0);
}

TEST(TensorDiff, ShapeOrTypeMismatchFailsWithAReason) {
  TensorDiff d = diff_tensors(floats({2, 3}, {1, 2, 3, 4, 5, 6}), floats({3, 2}, {1, 2, 3, 4, 5, 6}), 1, 1);
  EXPECT_FALSE(d.pass);
  EXPECT_NE(d.mismatch.find("2x3"), std::string::npos) << d.mismatch;
  Tensor s(DType::kString, {1});
  s.data<std::string>()[0] = "a";
  d = diff_tensors(s, floats({1}, {1}), 1, 1);
  EXPECT_FALSE(d.pass);
  EXPECT_NE(d.mismatch.find("string"), std::string::npos) << d.mismatch;
}

TEST(TensorDiff, MixedNumericTypesAndIntegersAndStrings) {
  Tensor h(DType::kFloat16, {3});
  const float vals[] = {0.5f, -2.f, 1000.f};
  for (int i = 0; i < 3; ++i) h.data<Float16>()[i] = Float16(vals[i]);
  EXPECT_TRUE(diff_tensors(h, floats({3}, {0.5f, -2.f, 1000.f}), 0, 0).pass);
  Tensor a(DType::kInt64, {3}), b(DType::kInt64, {3});
  for (int i = 0; i < 3; ++i) a.data<int64_t>()[i] = b.data<int64_t>()[i] = i * 1000000007LL;
  EXPECT_TRUE(diff_tensors(a, b, 0, 0).pass);
  b.data<int64_t>()[2] += 1;
  TensorDiff d = diff_tensors(a, b, 0, 0);
  EXPECT_FALSE(d.pass);
  EXPECT_EQ(d.worst_index, 2);
  Tensor s1(DType::kString, {2}), s2(DType::kString, {2});
  s1.data<std::string>()[0] = s2.data<std::string>()[0] = "x";
  s1.data<std::string>()[1] = "y";
  s2.data<std::string>()[1] = "z";
  d = diff_tensors(s1, s2, 0, 0);
  EXPECT_FALSE(d.pass);
  EXPECT_EQ(d.failing, 1);
  EXPECT_EQ(d.worst_index, 1);
}

TEST(TensorDiff, MaxMagnitudeIgnoresNonFiniteValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_DOUBLE_EQ(max_magnitude(floats({5}, {1.f, -7.5f, nan, inf, 3.f})), 7.5);
  EXPECT_EQ(max_magnitude(floats({0}, {})), 0);
  Tensor s(DType::kString, {1});
  EXPECT_EQ(max_magnitude(s), 0);
}

}  // namespace
}  // namespace kiln
