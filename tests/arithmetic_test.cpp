// Add/Sub/Mul/Div against a plain reference, with numpy and legacy broadcast.
#include <gtest/gtest.h>

#include "op_harness.h"

namespace kiln::test {

TEST(Arithmetic, AddBroadcastsAgainstReference) {
  std::mt19937 rng(1);
  Tensor a = random_f32({2, 3, 4}, rng), b = random_f32({3, 1}, rng);
  auto out = run_node({.op = "Add", .opset = 14, .inputs = {a, b}});
  Tensor want(DType::kFloat32, {2, 3, 4});
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        want.data<float>()[(i * 3 + j) * 4 + k] = a.data<float>()[(i * 3 + j) * 4 + k] + b.data<float>()[j];
  EXPECT_TRUE(all_close(out[0], want));
}

TEST(Arithmetic, LegacyBroadcastWithAxis) {
  // Opset 6: B of shape [3] aligned to axis 1 of A [2,3,4].
  std::mt19937 rng(2);
  Tensor a = random_f32({2, 3, 4}, rng), b = random_f32({3}, rng);
  auto out = run_node(
      {.op = "Mul", .opset = 6, .inputs = {a, b}, .attrs = {{"broadcast", attr_int(1)}, {"axis", attr_int(1)}}});
  for (int i = 0; i < 24; ++i)
    EXPECT_FLOAT_EQ(out[0].data<float>()[i], a.data<float>()[i] * b.data<float>()[(i / 4) % 3]);
  EXPECT_THROW(run_node({.op = "Mul", .opset = 6, .inputs = {a, b}}), Error);  // broadcast=0, shapes differ
}

TEST(Arithmetic, IntegerDivisionByZeroDoesNotTrap) {
  auto out = run_node({.op = "Div", .opset = 14, .inputs = {make_i64({2}, {7, -9}), make_i64({2}, {0, 2})}});
  EXPECT_EQ(out[0].data<int64_t>()[0], 0);
  EXPECT_EQ(out[0].data<int64_t>()[1], -4);
}

TEST(Arithmetic, IncompatibleShapesNameTheNode) {
  std::mt19937 rng(3);
  try {
    run_node({.op = "Sub", .opset = 14, .inputs = {random_f32({2, 3}, rng), random_f32({4}, rng)}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Sub"), std::string::npos) << e.what();
  }
}

}  // namespace kiln::test
