// The float32 fast paths of pooling (kernels/cpu/pool_f32.h, GlobalAverage/
// MaxPool) and of Add/Sub/Mul/Div (kernels/cpu/binary_f32.h) against the same
// ops in float64, which run the reference kernels. Max pooling and the
// arithmetic must give the same bits (rounding the double result of one
// float operation to float is exact); average pooling is close.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

// Runs spec in float32, with and without a thread pool, and compares with
// the float64 run; exact when rtol is 0.
void expect_matches_f64(NodeSpec spec, double rtol = 0, double atol = 0) {
  NodeSpec ref = spec;
  for (auto& in : ref.inputs)
    if (in) in = to_f64(*in);
  const Tensor want = to_f32_tensor(run_node(ref)[0]);
  ThreadPool pool(3);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    spec.pool = p;
    EXPECT_TRUE(all_close(run_node(spec)[0], want, rtol, atol)) << spec.op << " threaded=" << (p != nullptr);
  }
}

std::map<std::string, Attribute> pool_attrs(Shape k, Shape s, Shape d, Shape pads, int64_t ceil_mode) {
  return {{"kernel_shape", attr_ints(k)},
          {"strides", attr_ints(s)},
          {"dilations", attr_ints(d)},
          {"pads", attr_ints(pads)},
          {"ceil_mode", attr_int(ceil_mode)}};
}

struct PoolCase {
  Shape x, k, s, d, pads;
  int64_t ceil_mode;
};

const std::vector<PoolCase> kPoolCases = {
    {{2, 5, 13, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0},  // inception branch
    {{1, 4, 14, 14}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1},  // googlenet stem, ceil_mode
    {{1, 3, 15, 17}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1},
    {{2, 3, 8, 9}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0},
    {{1, 2, 16, 16}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1},
    {{1, 3, 12, 13}, {3, 2}, {1, 2}, {2, 2}, {2, 0, 1, 1}, 0},  // dilated, asymmetric pads
    {{1, 2, 4, 5}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0},    // kernel larger than the input
    {{1, 2, 40, 37}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0},  // rows longer than a vector
    {{0, 3, 8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0},    // empty batch
    {{2, 3, 19}, {3}, {2}, {1}, {1, 1}, 1},                     // 1-D
    {{1, 2, 10}, {2}, {1}, {3}, {0, 2}, 0},
};

}  // namespace

TEST(FastPool, MaxPoolMatchesReference) {
  std::mt19937 rng(31);
  for (const PoolCase& c : kPoolCases)
    expect_matches_f64({.op = "MaxPool",
                        .opset = 12,
                        .inputs = {random_f32(c.x, rng, -3, 3)},
                        .attrs = pool_attrs(c.k, c.s, c.d, c.pads, c.ceil_mode)});
}

TEST(FastPool, AveragePoolMatchesReference) {
  std::mt19937 rng(32);
  for (const PoolCase& c : kPoolCases)
    for (int64_t include_pad : {0, 1}) {
      auto attrs = pool_attrs(c.k, c.s, c.d, c.pads, c.ceil_mode);
      attrs["count_include_pad"] = attr_int(include_pad);
      expect_matches_f64({.op = "AveragePool", .opset = 19, .inputs = {random_f32(c.x, rng, -3, 3)}, .attrs = attrs},
                         1e-5, 1e-6);
    }
}

TEST(FastPool, MaxPoolWithIndicesStillWorks) {
  Tensor x = make_f32({1, 1, 2, 3}, {1, 5, 2, 4, 3, 6});
  auto out = run_node(
      {.op = "MaxPool", .opset = 12, .inputs = {x}, .attrs = {{"kernel_shape", attr_ints({2, 2})}}, .num_outputs = 2});
  EXPECT_EQ(to_f32(out[0]), (std::vector<float>{5, 6}));
  EXPECT_EQ(out[1].data<int64_t>()[0], 1);
  EXPECT_EQ(out[1].data<int64_t>()[1], 5);
}

TEST(FastPool, GlobalPoolsMatchReference) {
  std::mt19937 rng(33);
  for (Shape s : std::vector<Shape>{{2, 3, 7, 9}, {1, 4, 1, 1}, {2, 5, 33}, {1, 2, 0, 4}, {0, 3, 5, 5}}) {
    expect_matches_f64({.op = "GlobalMaxPool", .inputs = {random_f32(s, rng, -3, 3)}});
    expect_matches_f64({.op = "GlobalAveragePool", .inputs = {random_f32(s, rng, -3, 3)}}, 1e-6, 1e-7);
  }
}

TEST(FastSoftmax, RowsMatchReference) {
  std::mt19937 rng(36);
  for (const char* op : {"Softmax", "LogSoftmax"})
    for (Shape shape : std::vector<Shape>{{3, 7, 197}, {130, 600}, {5, 1}, {0, 4}}) {
      expect_matches_f64({.op = op, .opset = 13, .inputs = {random_f32(shape, rng, -20, 20)}}, 1e-6, 1e-7);
      expect_matches_f64({.op = op, .opset = 11, .inputs = {random_f32(shape, rng, -20, 20)}}, 1e-6, 1e-7);
    }
  // Rows with infinities and NaN give what the reference gives.
  const float inf = std::numeric_limits<float>::infinity();
  for (const char* op : {"Softmax", "LogSoftmax"})
    expect_matches_f64(
        {.op = op, .opset = 13, .inputs = {make_f32({4, 3}, {-inf, 1, 2, -inf, -inf, -inf, inf, 0, 1, NAN, 1, 2})}},
        1e-6, 1e-7);
}

// Along an axis that is not innermost: the strided kernel (lanes across the
// inner positions, more of them than one task takes).
TEST(FastSoftmax, InnerAxesMatchReference) {
  std::mt19937 rng(37);
  struct Case {
    Shape shape;
    int64_t axis;
  };
  for (const char* op : {"Softmax", "LogSoftmax"})
    for (const Case& c : std::vector<Case>{
             {{2, 12, 9, 13}, 1}, {{3, 5, 300}, 1}, {{7, 4}, 0}, {{2, 3, 4, 5}, -2}, {{1, 1, 40}, 1}, {{2, 0, 5}, 1}})
      expect_matches_f64(
          {.op = op, .opset = 13, .inputs = {random_f32(c.shape, rng, -20, 20)}, .attrs = {{"axis", attr_int(c.axis)}}},
          1e-6, 1e-7);
  const float inf = std::numeric_limits<float>::infinity();
  for (const char* op : {"Softmax", "LogSoftmax"})
    expect_matches_f64({.op = op,
                        .opset = 13,
                        .inputs = {make_f32({3, 4}, {-inf, 1, inf, NAN, -inf, 2, 0, 1, -inf, 3, 1, 2})},
                        .attrs = {{"axis", attr_int(0)}}},
                       1e-6, 1e-7);
}

TEST(FastBinary, BroadcastPatternsMatchReference) {
  std::mt19937 rng(34);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}},  // same shape
      {{2, 3, 4, 5}, {1, 3, 1, 1}},  // per channel
      {{2, 3, 4, 5}, {2, 3, 1, 1}},  // squeeze-excite
      {{1, 3, 1, 1}, {2, 3, 4, 5}},  // per channel on the left
      {{2, 3, 4, 5}, {}},            // scalar
      {{1}, {3, 7}},
      {{4, 9}, {9}},     // last-dim row
      {{4, 1}, {1, 5}},  // outer product
      {{2, 1, 4}, {3, 1}},
      {{1, 1}, {1, 1}},
      {{0, 3}, {3}},         // empty
      {{3, 70000}, {3, 1}},  // long rows, cut in pieces
      {{4, 16, 33, 33}, {1, 16, 1, 1}},
      // Blocked layout [N, C/B, H, W, B] against a per-channel operand, both
      // sides, block 8 and 16, rows cut in pieces, and short odd rows.
      {{2, 3, 7, 5, 8}, {2, 3, 1, 1, 8}},
      {{1, 2, 1, 1, 16}, {1, 2, 9, 9, 16}},
      {{1, 2, 130, 130, 8}, {1, 2, 1, 1, 8}},
      {{3, 50, 7}, {3, 1, 7}},
      {{3, 50, 7}, {1, 50, 1}},
      {{6, 40, 2}, {6, 40, 2}},
  };
  for (const char* op : {"Add", "Sub", "Mul", "Div"})
    for (const auto& [a, b] : shapes)
      expect_matches_f64({.op = op, .inputs = {random_f32(a, rng, 0.5f, 2), random_f32(b, rng, 0.5f, 2)}});
}

TEST(FastBinary, LegacyBroadcastStillWorks) {
  std::mt19937 rng(35);
  expect_matches_f64({.op = "Add",
                      .opset = 6,
                      .inputs = {random_f32({2, 3, 4, 5}, rng), random_f32({3, 4}, rng)},
                      .attrs = {{"broadcast", attr_int(1)}, {"axis", attr_int(1)}}});
}

}  // namespace kiln::test
