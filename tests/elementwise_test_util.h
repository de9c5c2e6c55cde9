// Small helpers shared by the element-wise op tests.
#pragma once
#include <random>
#include <vector>

#include "core/dispatch.h"
#include "op_harness.h"

namespace kiln::test {

// A tensor of T from values (T may be Float16/BFloat16, bool, std::string).
template <typename T>
Tensor make(Shape shape, const std::vector<T>& v) {
  Tensor t(dtype_of<T>, std::move(shape));
  EXPECT_EQ(static_cast<int64_t>(v.size()), t.numel());
  for (size_t i = 0; i < v.size() && static_cast<int64_t>(i) < t.numel(); ++i) t.data<T>()[i] = v[i];
  return t;
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  EXPECT_EQ(t.dtype(), dtype_of<T>);
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

// Uniform random integers in [lo, hi] as T.
template <typename T>
Tensor random_ints(Shape shape, std::mt19937& rng, int64_t lo, int64_t hi) {
  Tensor t(dtype_of<T>, std::move(shape));
  std::uniform_int_distribution<int64_t> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(d(rng));
  return t;
}

// Flat index into a tensor of shape `in` broadcast (numpy rules) to `out`,
// given the flat output index: an independent spelling of broadcasting for
// the references.
inline int64_t broadcast_index(const Shape& in, const Shape& out, int64_t flat) {
  int64_t idx = 0, stride = 1;
  size_t off = out.size() - in.size();
  for (size_t d = out.size(); d-- > 0;) {
    int64_t coord = flat % out[d];
    flat /= out[d];
    if (d >= off) {
      int64_t n = in[d - off];
      idx += (n == 1 ? 0 : coord) * stride;
      stride *= n;
    }
  }
  return idx;
}

}  // namespace kiln::test
