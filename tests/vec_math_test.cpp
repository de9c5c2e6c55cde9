// The float32 vector math (kernels/cpu/vec_math_f32.h), scalar and AVX2
// builds, against double references: the largest error in ulp over many
// random inputs and the edge cases (0, +-inf, NaN, overflow and underflow
// boundaries, tiny and denormal inputs).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "kernels/cpu/vec_math_f32.h"

namespace kiln::test {

namespace {

double sigmoid_ref(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

// 0.5 x (1 + tanh(u)) written as x sigmoid(2u): the same function, without
// double's own cancellation in 1 + tanh(u) far left.
double gelu_tanh_ref(double x) { return x * sigmoid_ref(2 * std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)); }

// The error of got in units of the last place of the float nearest to want;
// denormal results count in denormal ulps.
double ulp_error(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : INFINITY;
  const float w = static_cast<float>(want);  // inf where want overflows float
  if (std::isinf(w) || std::isinf(got)) return got == w ? 0 : INFINITY;
  const double ulp = std::max(std::ldexp(1.0, -149), double(std::nextafter(std::fabs(w), INFINITY)) - std::fabs(w));
  return std::fabs(double(got) - want) / ulp;
}

std::vector<float> edge_cases() {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {0.0f,
                          -0.0f,
                          inf,
                          -inf,
                          std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::denorm_min(),
                          1e-40f,
                          1e-30f,
                          1e-8f,
                          0.5f,
                          1.0f,
                          9.0f,
                          9.1f,
                          10.0f,
                          20.0f,
                          87.0f,
                          88.0f,
                          88.72f,
                          88.73f,
                          89.0f,
                          89.5f,
                          100.0f,
                          103.0f,
                          103.97f,
                          104.0f,
                          105.0f,
                          200.0f,
                          1e10f};
  const size_t n = v.size();
  for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  return v;
}

// Inputs: the edge cases, uniform values over [-lo, lo], and random bit
// patterns (every exponent, NaNs included).
std::vector<float> test_inputs(float lo) {
  std::vector<float> v = edge_cases();
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-lo, lo);
  for (int i = 0; i < 200000; ++i) v.push_back(u(rng));
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &bits, sizeof f);
    v.push_back(f);
  }
  return v;
}

std::vector<CpuIsa> isas() {
  std::vector<CpuIsa> v = {CpuIsa::kScalar};
  if (static_cast<int>(cpu_isa_supported()) >= static_cast<int>(CpuIsa::kAvx2)) v.push_back(CpuIsa::kAvx2);
  if (static_cast<int>(cpu_isa_supported()) >= static_cast<int>(CpuIsa::kAvx512)) v.push_back(CpuIsa::kAvx512);
  return v;
}

// Largest ulp error of fn against ref, over inputs where |ref| >= min_abs;
// below that, the absolute error must be under min_abs / 256. (SiLU and GELU
// reach results below FLT_MIN through exp's denormal results, which carry
// fewer bits.)
// With `slack`, the error at x is divided by slack(x) (a conditioning factor).
double max_ulp_error(VecMathF32Fn fn, double (*ref)(double), const std::vector<float>& x, double min_abs = 0,
                     double (*slack)(double) = nullptr) {
  std::vector<float> y(x.size());
  fn(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = ref(x[i]);
    if (std::fabs(want) < min_abs) {
      EXPECT_LE(std::fabs(y[i] - want), min_abs * 0x1p-8) << "x=" << x[i] << " got " << y[i] << " want " << want;
      continue;
    }
    const double e = ulp_error(y[i], want) / (slack ? slack(x[i]) : 1.0);
    EXPECT_LE(e, 1e6) << "x=" << x[i] << " got " << y[i] << " want " << want;
    worst = std::max(worst, e);
  }
  return worst;
}

}  // namespace

TEST(VecMathF32, Exp) {
  const std::vector<float> x = test_inputs(110);
  for (CpuIsa isa : isas())
    EXPECT_LE(max_ulp_error(
                  vec_math_f32_for(isa).exp, [](double v) { return std::exp(v); }, x),
              2)
        << cpu_isa_name(isa);
}

TEST(VecMathF32, SigmoidAndSilu) {
  const std::vector<float> x = test_inputs(110);
  for (CpuIsa isa : isas()) {
    EXPECT_LE(max_ulp_error(vec_math_f32_for(isa).sigmoid, sigmoid_ref, x), 3) << cpu_isa_name(isa);
    EXPECT_LE(max_ulp_error(
                  vec_math_f32_for(isa).silu, [](double v) { return v * sigmoid_ref(v); }, x,
                  std::numeric_limits<float>::min()),
              3)
        << cpu_isa_name(isa);
  }
}

TEST(VecMathF32, Tanh) {
  const std::vector<float> x = test_inputs(12);
  for (CpuIsa isa : isas())
    EXPECT_LE(max_ulp_error(
                  vec_math_f32_for(isa).tanh, [](double v) { return std::tanh(v); }, x),
              3)
        << cpu_isa_name(isa);
}

// GELU's float evaluation rounds u = sqrt(2 / pi) (x + 0.044715 x^3) to a
// few ulp; far left that costs |2u| times as many ulp in the result.
double gelu_tanh_slack(double x) {
  return std::max(1.0, std::fabs(2 * std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

TEST(VecMathF32, GeluTanh) {
  const std::vector<float> x = test_inputs(12);
  for (CpuIsa isa : isas())
    EXPECT_LE(max_ulp_error(vec_math_f32_for(isa).gelu_tanh, gelu_tanh_ref, x, std::numeric_limits<float>::min(),
                            gelu_tanh_slack),
              3)
        << cpu_isa_name(isa);
}

TEST(VecMathF32, Erf) {
  const std::vector<float> x = test_inputs(6);
  for (CpuIsa isa : isas())
    EXPECT_LE(max_ulp_error(
                  vec_math_f32_for(isa).erf, [](double v) { return std::erf(v); }, x),
              3)
        << cpu_isa_name(isa);
}

// For x < 0 the reference takes erfc directly: 1 + erf(x / sqrt 2) in double
// cancels far left.
double gelu_erf_ref(double x) {
  return x < 0 ? 0.5 * x * std::erfc(-x / std::sqrt(2.0)) : 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}

TEST(VecMathF32, GeluErf) {
  const std::vector<float> x = test_inputs(16);
  for (CpuIsa isa : isas())
    EXPECT_LE(max_ulp_error(vec_math_f32_for(isa).gelu_erf, gelu_erf_ref, x, std::numeric_limits<float>::min()), 10)
        << cpu_isa_name(isa);
}

TEST(VecMathF32, InPlaceAndOddLengths) {
  for (CpuIsa isa : isas())
    for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 31, 33}) {
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 0.25f * static_cast<float>(i) - 2;
      std::vector<float> want = v;
      vec_math_f32_for(isa).exp(v.data(), v.data(), n);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_LE(ulp_error(v[static_cast<size_t>(i)], std::exp(double(want[static_cast<size_t>(i)]))), 2);
    }
}

TEST(VecMathF32, SoftmaxRowsAgainstDouble) {
  // Row lengths around every ISA's vector width, rows with a huge spread,
  // -inf entries, a row of all -inf (NaN, as the double reference), +inf, NaN.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-30, 30);
  for (CpuIsa isa : isas())
    for (int64_t n : {1, 5, 8, 15, 16, 17, 49, 64, 197}) {
      const int64_t rows = 11;  // a full group of 8 rows and a part of one
      std::vector<float> x(static_cast<size_t>(rows * n));
      for (float& f : x) f = u(rng);
      x[static_cast<size_t>(n) / 2] = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < n; ++k) x[static_cast<size_t>(n + k)] = -std::numeric_limits<float>::infinity();
      x[static_cast<size_t>(2 * n)] = std::numeric_limits<float>::infinity();
      x[static_cast<size_t>(3 * n + n - 1)] = std::numeric_limits<float>::quiet_NaN();
      for (bool log : {false, true}) {
        std::vector<float> y(x.size());
        vec_math_f32_for(isa).softmax_rows(x.data(), y.data(), rows, n, log);
        for (int64_t r = 0; r < rows; ++r) {
          const float* xr = x.data() + r * n;
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t k = 0; k < n; ++k) mx = std::max(mx, double(xr[k]));
          const double shift = std::isfinite(mx) ? mx : 0.0;
          double sum = 0;
          for (int64_t k = 0; k < n; ++k) sum += std::exp(double(xr[k]) - shift);
          for (int64_t k = 0; k < n; ++k) {
            const double e = double(xr[k]) - shift;
            const double want = log ? e - std::log(sum) : std::exp(e) / sum;
            const float got = y[static_cast<size_t>(r * n + k)];
            if (std::isnan(want)) {
              EXPECT_TRUE(std::isnan(got)) << cpu_isa_name(isa) << " n " << n << " row " << r << " log " << log;
            } else if (std::isinf(want)) {
              EXPECT_EQ(double(got), want) << cpu_isa_name(isa) << " n " << n << " row " << r;
            } else {
              EXPECT_NEAR(got, want, 4e-7 * std::max(1.0, std::fabs(want)))
                  << cpu_isa_name(isa) << " n " << n << " row " << r << " k " << k << " log " << log;
            }
          }
        }
      }
    }
}

}  // namespace kiln::test
