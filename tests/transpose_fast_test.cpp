// Transpose's fast path (axis collapsing, row copies, tiled 2-D transposes,
// threading; src/ops/concat_split.cpp) against the definition written as a
// loop over output indices, for element sizes 1, 2, 4 and 8.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

// A tensor whose elements all differ (as far as the element size allows).
Tensor iota_tensor(DType dtype, const Shape& shape) {
  Tensor t(dtype, shape);
  size_t size = t.numel() == 0 ? 0 : t.nbytes() / static_cast<size_t>(t.numel());
  auto* p = static_cast<unsigned char*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) {
    uint64_t v = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1;
    std::memcpy(p + static_cast<size_t>(i) * size, &v, size);
  }
  return t;
}

// out[o] = x[i] with i[perm[d]] = o[d], byte for byte.
Tensor transpose_reference(const Tensor& x, const std::vector<int64_t>& perm) {
  Shape out_shape;
  for (int64_t p : perm) out_shape.push_back(x.shape()[static_cast<size_t>(p)]);
  Tensor out(x.dtype(), out_shape);
  size_t size = x.numel() == 0 ? 0 : x.nbytes() / static_cast<size_t>(x.numel());
  int64_t o = 0;
  for (const auto& idx : all_indices(out_shape)) {
    std::vector<int64_t> in_idx(idx.size());
    for (size_t d = 0; d < idx.size(); ++d) in_idx[static_cast<size_t>(perm[d])] = idx[d];
    std::memcpy(static_cast<unsigned char*>(out.raw()) + static_cast<size_t>(o++) * size,
                static_cast<const unsigned char*>(x.raw()) + static_cast<size_t>(offset_of(x.shape(), in_idx)) * size,
                size);
  }
  return out;
}

void check_transpose(DType dtype, const Shape& shape, const std::vector<int64_t>& perm, ThreadPool* pool = nullptr) {
  std::string perm_str;
  for (int64_t p : perm) perm_str += std::to_string(p) + " ";
  SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) + " perm " + perm_str + (pool ? "pool" : ""));
  Tensor x = iota_tensor(dtype, shape);
  Tensor got =
      run_node({.op = "Transpose", .opset = 13, .inputs = {x}, .attrs = {{"perm", attr_ints(perm)}}, .pool = pool})[0];
  Tensor want = transpose_reference(x, perm);
  ASSERT_EQ(got.dtype(), dtype);
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0);
}

std::vector<int64_t> identity_perm(size_t rank) {
  std::vector<int64_t> p(rank);
  std::iota(p.begin(), p.end(), 0);
  return p;
}

}  // namespace

TEST(TransposeFast, AllPermutationsOf4dOddShape) {
  for (DType dt : {DType::kFloat32, DType::kInt64, DType::kFloat16, DType::kUInt8}) {
    std::vector<int64_t> perm = identity_perm(4);
    do check_transpose(dt, {3, 5, 7, 2}, perm);
    while (std::next_permutation(perm.begin(), perm.end()));
  }
}

TEST(TransposeFast, UnitAxesCollapse) {
  std::vector<int64_t> perm = identity_perm(4);
  do {
    check_transpose(DType::kFloat32, {3, 1, 7, 2}, perm);
    check_transpose(DType::kFloat32, {1, 5, 1, 9}, perm);
    check_transpose(DType::kFloat32, {1, 1, 1, 1}, perm);
  } while (std::next_permutation(perm.begin(), perm.end()));
}

TEST(TransposeFast, LowAndHighRanks) {
  check_transpose(DType::kFloat32, {}, {});
  check_transpose(DType::kFloat32, {7}, {0});
  check_transpose(DType::kFloat32, {17, 33}, {1, 0});
  check_transpose(DType::kFloat32, {17, 33}, {0, 1});
  check_transpose(DType::kFloat32, {1, 33}, {1, 0});
  for (auto perm : std::vector<std::vector<int64_t>>{{0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}})
    check_transpose(DType::kFloat32, {4, 19, 21}, perm);
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) {
    std::vector<int64_t> p5 = identity_perm(5), p6 = identity_perm(6);
    std::shuffle(p5.begin(), p5.end(), rng);
    std::shuffle(p6.begin(), p6.end(), rng);
    check_transpose(DType::kFloat32, {2, 3, 1, 4, 5}, p5);
    check_transpose(DType::kInt64, {2, 1, 3, 2, 2, 3}, p6);
    check_transpose(DType::kUInt8, {3, 2, 2, 5, 1, 2}, p6);
  }
}

TEST(TransposeFast, EmptyTensors) {
  check_transpose(DType::kFloat32, {0, 5}, {1, 0});
  check_transpose(DType::kFloat32, {3, 0, 2}, {2, 0, 1});
  check_transpose(DType::kInt64, {3, 4, 0}, {2, 1, 0});
}

TEST(TransposeFast, LargeTensorsWithAndWithoutPool) {
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    check_transpose(DType::kFloat32, {2, 50, 12, 64}, {0, 2, 1, 3}, p);  // [B,S,H,D] -> [B,H,S,D]
    check_transpose(DType::kFloat32, {2, 12, 50, 64}, {0, 1, 3, 2}, p);  // K^T
    check_transpose(DType::kFloat32, {1, 96, 29, 31}, {0, 2, 3, 1}, p);  // NCHW -> NHWC
    check_transpose(DType::kFloat32, {1, 29, 31, 96}, {0, 3, 1, 2}, p);  // NHWC -> NCHW
    check_transpose(DType::kFloat32, {197, 3, 768}, {1, 0, 2}, p);       // [S,B,H] -> [B,S,H]
    check_transpose(DType::kFloat32, {197, 2, 768}, {1, 2, 0}, p);
    check_transpose(DType::kFloat32, {3, 40000}, {1, 0}, p);  // a short axis against a long one
    check_transpose(DType::kInt64, {301, 257}, {1, 0}, p);
    check_transpose(DType::kUInt8, {3, 130, 170}, {2, 0, 1}, p);
  }
}

TEST(TransposeFast, StringsTakeTheGenericPath) {
  Tensor x = Tensor::from_strings({2, 3}, {"a", "b", "c", "d", "e", "f"});
  Tensor y = run_node({.op = "Transpose", .opset = 13, .inputs = {x}})[0];
  ASSERT_EQ(y.shape(), (Shape{3, 2}));
  const std::string* s = y.data<std::string>();
  EXPECT_EQ(std::vector<std::string>(s, s + 6), (std::vector<std::string>{"a", "d", "b", "e", "c", "f"}));
}

}  // namespace kiln::test
