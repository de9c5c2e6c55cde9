// Helpers of the network-definition API tests: random tensors, running a
// network, comparing with a reference.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kiln/network.h"

namespace kiln::test {

inline Tensor random_tensor(Shape shape, uint32_t seed, float lo = -1, float hi = 1) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Runs a network with one input named "x" and returns its first output.
inline Tensor run_x(const Network& net, const Tensor& x, const SessionOptions& options = {}) {
  return net.session(options).run({{"x", x}})[0];
}

// Relative L2 error of got against want; shapes must agree.
inline double rel_l2(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() != want.shape()) return 1e9;
  double num = 0, den = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double d = static_cast<double>(got.data<float>()[i]) - want.data<float>()[i];
    num += d * d;
    den += static_cast<double>(want.data<float>()[i]) * want.data<float>()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline void expect_close(const Tensor& got, const Tensor& want, double tol = 1e-5) {
  EXPECT_LT(rel_l2(got, want), tol);
}

// The message of the kiln::Error f throws, or "" when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace kiln::test
