// The float32 fast paths of LayerNormalization and RMSNormalization
// (src/ops/layer_norm.cpp) against the reference kernels: the same node in
// float64 takes the reference path, whose results rounded to float are the
// expected values.
#include <gtest/gtest.h>

#include <random>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

struct LnCase {
  Shape x, scale;
  int64_t axis = -1;
  std::optional<Shape> bias;  // nullopt: no B
  float epsilon = 1e-5f;
  float offset = 0;       // added to x: a mean far from zero
  bool constant = false;  // Scale and B as initializers
  ThreadPool* pool = nullptr;
};

std::string describe(const LnCase& c) {
  return "x " + shape_str(c.x) + " scale " + shape_str(c.scale) + " axis " + std::to_string(c.axis) +
         (c.bias ? " bias " + shape_str(*c.bias) : " no bias") + " eps " + std::to_string(c.epsilon) + " offset " +
         std::to_string(c.offset) + (c.pool ? " pool" : "");
}

// Runs the case in float32 (fast path) and float64 (reference) and compares
// Y, Mean and InvStdDev.
void check_layer_norm(const LnCase& c, std::mt19937& rng) {
  SCOPED_TRACE(describe(c));
  Tensor x = random_f32(c.x, rng, c.offset - 1, c.offset + 1);
  Tensor scale = random_f32(c.scale, rng, -2, 2);
  std::optional<Tensor> bias;
  if (c.bias) bias = random_f32(*c.bias, rng);
  std::map<std::string, Attribute> attrs = {{"axis", attr_int(c.axis)}, {"epsilon", attr_float(c.epsilon)}};
  auto fast = run_node({.op = "LayerNormalization",
                        .inputs = {x, scale, bias},
                        .attrs = attrs,
                        .num_outputs = 3,
                        .constant_inputs = c.constant,
                        .pool = c.pool});
  std::optional<Tensor> bias64;
  if (bias) bias64 = to_f64(*bias);
  auto ref = run_node(
      {.op = "LayerNormalization", .inputs = {to_f64(x), to_f64(scale), bias64}, .attrs = attrs, .num_outputs = 3});
  ASSERT_EQ(fast[0].dtype(), DType::kFloat32);
  EXPECT_TRUE(all_close(fast[0], to_f32_tensor(ref[0]), 2e-5, 5e-6));
  ASSERT_EQ(fast[1].shape(), ref[1].shape());
  EXPECT_TRUE(all_close(fast[1], ref[1], 1e-6, 1e-6));  // stash_type float: Mean is float32 in both
  EXPECT_TRUE(all_close(fast[2], ref[2], 1e-5, 1e-6));
}

}  // namespace

TEST(LayerNormFast, RowsAndWidthsAlongLastAxis) {
  std::mt19937 rng(1);
  for (int64_t d : {1, 3, 96, 768})
    for (int64_t rows : {1, 2, 7, 257}) {
      check_layer_norm({.x = {rows, d}, .scale = {d}, .bias = Shape{d}}, rng);
      check_layer_norm({.x = {rows, d}, .scale = {d}, .axis = 1}, rng);
    }
}

TEST(LayerNormFast, TrailingBlocksOfSeveralAxes) {
  std::mt19937 rng(2);
  check_layer_norm({.x = {4, 5, 96}, .scale = {5, 96}, .axis = -2, .bias = Shape{5, 96}}, rng);
  check_layer_norm({.x = {2, 3, 4, 5}, .scale = {3, 4, 5}, .axis = 1, .bias = Shape{3, 4, 5}}, rng);
  check_layer_norm({.x = {3, 4, 5}, .scale = {3, 4, 5}, .axis = 0, .bias = Shape{3, 4, 5}}, rng);
  check_layer_norm({.x = {3, 4, 5}, .scale = {3, 4, 5}, .axis = -3}, rng);
  // Leading 1s on either side of the block.
  check_layer_norm({.x = {6, 1, 96}, .scale = {96}, .axis = 1, .bias = Shape{1, 96}}, rng);
  check_layer_norm({.x = {6, 96}, .scale = {1, 96}, .bias = Shape{1, 96}}, rng);
  // More leading 1s than x has dims: does not broadcast (the reference says so).
  EXPECT_THROW(run_node({.op = "LayerNormalization",
                         .inputs = {random_f32({6, 96}, rng), random_f32({96}, rng), random_f32({1, 1, 96}, rng)}}),
               Error);
}

TEST(LayerNormFast, SingleValueScaleAndBias) {
  std::mt19937 rng(3);
  check_layer_norm({.x = {5, 96}, .scale = {1}, .bias = Shape{1}}, rng);
  check_layer_norm({.x = {5, 96}, .scale = {}, .bias = Shape{96}}, rng);
  check_layer_norm({.x = {5, 4, 6}, .scale = {4, 6}, .axis = -2, .bias = Shape{1, 1}}, rng);
}

TEST(LayerNormFast, EpsilonsOffsetsAndConstantParameters) {
  std::mt19937 rng(4);
  for (float eps : {1e-12f, 1e-5f, 0.5f})
    check_layer_norm({.x = {9, 768}, .scale = {768}, .bias = Shape{768}, .epsilon = eps}, rng);
  // A mean far from zero relative to the spread: the float mean's rounding
  // error must not leak into the variance.
  for (float offset : {100.0f, -3000.0f})
    check_layer_norm({.x = {9, 768}, .scale = {768}, .bias = Shape{768}, .offset = offset}, rng);
  check_layer_norm({.x = {9, 96}, .scale = {96}, .bias = Shape{96}, .constant = true}, rng);
  check_layer_norm({.x = {9, 96}, .scale = {96}, .constant = true}, rng);
}

TEST(LayerNormFast, ThreadedRows) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  check_layer_norm({.x = {257, 768}, .scale = {768}, .bias = Shape{768}, .pool = &pool}, rng);
  check_layer_norm({.x = {3, 56, 56, 96}, .scale = {96}, .bias = Shape{96}, .pool = &pool}, rng);
  check_layer_norm({.x = {2, 197, 768}, .scale = {768}, .pool = &pool}, rng);
  check_layer_norm({.x = {2, 96}, .scale = {96}, .bias = Shape{96}, .pool = &pool}, rng);  // below the threshold
}

TEST(LayerNormFast, ConstantRowsAndEmptyTensors) {
  // A constant row has variance 0: y = bias, InvStdDev = 1 / sqrt(epsilon).
  Tensor x = make_f32({2, 4}, {3, 3, 3, 3, -1, -1, -1, -1});
  Tensor scale = make_f32({4}, {1, 2, 3, 4}), bias = make_f32({4}, {0.5f, 0.25f, 0, -1});
  auto out = run_node({.op = "LayerNormalization",
                       .inputs = {x, scale, bias},
                       .attrs = {{"epsilon", attr_float(0.25f)}},
                       .num_outputs = 3});
  EXPECT_EQ(to_f32(out[0]), (std::vector<float>{0.5f, 0.25f, 0, -1, 0.5f, 0.25f, 0, -1}));
  EXPECT_EQ(to_f32(out[1]), (std::vector<float>{3, -1}));
  EXPECT_EQ(to_f32(out[2]), (std::vector<float>{2, 2}));
  Tensor empty(DType::kFloat32, {0, 4});
  auto e = run_node({.op = "LayerNormalization", .inputs = {empty, scale, bias}, .num_outputs = 3});
  EXPECT_EQ(e[0].shape(), (Shape{0, 4}));
  EXPECT_EQ(e[1].shape(), (Shape{0, 1}));
}

TEST(RmsNormFast, AgainstReference) {
  std::mt19937 rng(6);
  ThreadPool pool(2);
  struct Case {
    Shape x, scale;
    int64_t axis;
    ThreadPool* pool;
  };
  for (const Case& c : std::vector<Case>{{{7, 96}, {96}, -1, nullptr},
                                         {{3, 4, 5}, {4, 5}, 1, nullptr},
                                         {{5, 3}, {1}, -1, nullptr},
                                         {{257, 768}, {768}, -1, &pool}}) {
    SCOPED_TRACE("x " + shape_str(c.x));
    Tensor x = random_f32(c.x, rng), scale = random_f32(c.scale, rng);
    std::map<std::string, Attribute> attrs = {{"axis", attr_int(c.axis)}};
    Tensor fast =
        run_node({.op = "RMSNormalization", .opset = 23, .inputs = {x, scale}, .attrs = attrs, .pool = c.pool})[0];
    Tensor ref =
        run_node({.op = "RMSNormalization", .opset = 23, .inputs = {to_f64(x), to_f64(scale)}, .attrs = attrs})[0];
    EXPECT_TRUE(all_close(fast, to_f32_tensor(ref), 1e-5, 1e-6));
  }
}

}  // namespace kiln::test
