#include <gtest/gtest.h>

#include "core/half.h"
#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln {

TEST(Tensor, AllocatesZeroedAligned) {
  Tensor t(DType::kFloat32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], 0.f);
}

TEST(Tensor, RejectsOverflowingShape) {
  EXPECT_THROW(Tensor(DType::kFloat32, {int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_THROW(Tensor(DType::kFloat32, {-1}), Error);
  EXPECT_THROW(Tensor(DType::kFloat32, {int64_t{1} << 42}), Error);  // 16 TiB
  EXPECT_THROW(Tensor(DType::kString, {int64_t{1} << 40}), Error);
}

TEST(Tensor, EmptyTensor) {
  Tensor t(DType::kInt64, {3, 0});
  EXPECT_EQ(t.numel(), 0);
}

TEST(Half, RoundTripsAndRoundsToNearestEven) {
  for (float f : {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.9604645e-08f, 1e-9f})
    EXPECT_EQ(static_cast<float>(Float16(f)), f > 0 && f < 2.9e-8f ? 0.f : f) << f;
  EXPECT_TRUE(std::isinf(static_cast<float>(Float16(1e6f))));
  EXPECT_TRUE(std::isnan(static_cast<float>(Float16(NAN))));
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: rounds to even (1).
  EXPECT_EQ(static_cast<float>(Float16(1.f + 1.f / 2048)), 1.f);
  EXPECT_EQ(static_cast<float>(BFloat16(1.f)), 1.f);
  EXPECT_EQ(static_cast<float>(BFloat16(3.f)), 3.f);
}

}  // namespace kiln

namespace kiln {

// Large tensors' pages are recycled (core/tensor.cpp's page cache): a new
// tensor is still zero-filled after one of the same size was written and
// freed, and an uninitialized one has the right size and alignment.
TEST(Tensor, RecycledPagesAreZeroedAgain) {
  const Shape shape = {3, 512, 512};  // 3 MiB: mapped, cacheable
  for (int round = 0; round < 3; ++round) {
    {
      Tensor t(DType::kFloat32, shape);
      for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.data<float>()[i], 0.0f) << "round " << round;
      std::fill(t.data<float>(), t.data<float>() + t.numel(), 7.0f);
    }
    Tensor u = Tensor::uninitialized(DType::kFloat32, shape);
    EXPECT_EQ(u.numel(), 3 * 512 * 512);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(u.raw()) % 64, 0u);
    std::fill(u.data<float>(), u.data<float>() + u.numel(), -1.0f);
  }
  Tensor s = Tensor::uninitialized(DType::kString, {2});
  EXPECT_EQ(s.data<std::string>()[1], "");
}

}  // namespace kiln
