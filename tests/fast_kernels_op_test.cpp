// Conv, MatMul and Gemm on their float32 fast paths (packed GEMM, weights
// packed at kernel creation, thread pool) against the same ops in float64,
// which run the naive reference kernels.
#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

// Runs spec in float32 with constant (packed) and with fed weights, threaded
// and not, and checks all against the float64 result.
void expect_matches_f64(NodeSpec spec, double rtol = 1e-4, double atol = 1e-5) {
  NodeSpec ref = spec;
  for (auto& in : ref.inputs)
    if (in) in = to_f64(*in);
  const Tensor want = to_f32_tensor(run_node(ref)[0]);
  ThreadPool pool(2);
  for (bool constant : {false, true})
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      spec.constant_inputs = constant;
      spec.pool = p;
      EXPECT_TRUE(all_close(run_node(spec)[0], want, rtol, atol))
          << spec.op << " constant=" << constant << " threaded=" << (p != nullptr);
    }
}

std::map<std::string, Attribute> conv_attrs(Shape k, Shape s, Shape d, Shape pads, int64_t group) {
  return {{"kernel_shape", attr_ints(k)}, {"strides", attr_ints(s)}, {"dilations", attr_ints(d)},
          {"pads", attr_ints(pads)}, {"group", attr_int(group)}};
}

}  // namespace

TEST(FastConv, ResNetLikeShapes) {
  std::mt19937 rng(21);
  // 3x3 pad 1, 1x1, strided 7x7, strided 1x1 with bias, and batch 2.
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({1, 16, 14, 14}, rng), random_f32({24, 16, 3, 3}, rng), random_f32({24}, rng)},
                      .attrs = conv_attrs({3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1)});
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({2, 32, 9, 9}, rng), random_f32({40, 32, 1, 1}, rng)},
                      .attrs = conv_attrs({1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1)});
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({1, 3, 23, 21}, rng), random_f32({8, 3, 7, 7}, rng), random_f32({8}, rng)},
                      .attrs = conv_attrs({7, 7}, {2, 2}, {1, 1}, {3, 3, 3, 3}, 1)});
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({2, 12, 10, 11}, rng), random_f32({20, 12, 1, 1}, rng), random_f32({20}, rng)},
                      .attrs = conv_attrs({1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1)});
}

TEST(FastConv, GroupedDilatedAsymmetricAndOneD) {
  std::mt19937 rng(22);
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({2, 8, 11, 9}, rng), random_f32({12, 4, 3, 2}, rng), random_f32({12}, rng)},
                      .attrs = conv_attrs({3, 2}, {2, 1}, {2, 3}, {1, 0, 2, 1}, 2)});
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({2, 6, 17}, rng), random_f32({5, 6, 3}, rng)},
                      .attrs = conv_attrs({3}, {2}, {2}, {1, 2}, 1)});
}

TEST(FastConv, Depthwise) {
  std::mt19937 rng(23);
  for (int64_t stride : {1, 2})
    expect_matches_f64({.op = "Conv", .inputs = {random_f32({2, 12, 13, 15}, rng), random_f32({12, 1, 3, 3}, rng), random_f32({12}, rng)},
                        .attrs = conv_attrs({3, 3}, {stride, stride}, {1, 1}, {1, 1, 1, 1}, 12)});
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({1, 8, 12, 12}, rng), random_f32({8, 1, 5, 5}, rng)},
                      .attrs = conv_attrs({5, 5}, {2, 1}, {2, 1}, {4, 2, 3, 1}, 8)});
  // The unrolled KW = 3 / 5, stride 1 / 2 kernels: odd widths, asymmetric
  // pads, rows narrower than the kernel (no interior columns), row dilation.
  for (int64_t k : {3, 5})
    for (int64_t stride : {1, 2}) {
      expect_matches_f64({.op = "Conv", .inputs = {random_f32({1, 3, 11, 29}, rng), random_f32({3, 1, k, k}, rng), random_f32({3}, rng)},
                          .attrs = conv_attrs({k, k}, {stride, stride}, {1, 1}, {k / 2, k / 2, k / 2, k / 2}, 3)});
      expect_matches_f64({.op = "Conv", .inputs = {random_f32({2, 2, 9, 3}, rng), random_f32({2, 1, k, k}, rng)},
                          .attrs = conv_attrs({k, k}, {stride, stride}, {2, 1}, {0, 2, 1, 0}, 2)});
      expect_matches_f64({.op = "Conv", .inputs = {random_f32({1, 2, 6, 2}, rng), random_f32({2, 1, k, k}, rng)},
                          .attrs = conv_attrs({k, k}, {1, stride}, {1, 1}, {k / 2, k / 2, k / 2, k / 2}, 2)});
    }
  // Channel multiplier 2 (group == C, M == 2C): grouped GEMM path.
  expect_matches_f64({.op = "Conv", .inputs = {random_f32({1, 4, 7, 7}, rng), random_f32({8, 1, 3, 3}, rng)},
                      .attrs = conv_attrs({3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 4)});
}

TEST(FastMatMul, BatchedBroadcastAndVectors) {
  std::mt19937 rng(24);
  expect_matches_f64({.op = "MatMul", .inputs = {random_f32({2, 3, 37, 65}, rng), random_f32({65, 40}, rng)}});
  expect_matches_f64({.op = "MatMul", .inputs = {random_f32({3, 17, 9}, rng), random_f32({3, 9, 130}, rng)}});
  expect_matches_f64({.op = "MatMul", .inputs = {random_f32({5, 1, 3, 8}, rng), random_f32({2, 8, 7}, rng)}});
  expect_matches_f64({.op = "MatMul", .inputs = {random_f32({33}, rng), random_f32({33, 20}, rng)}});
  expect_matches_f64({.op = "MatMul", .inputs = {random_f32({4, 33}, rng), random_f32({33}, rng)}});
}

TEST(FastGemm, TransposesAlphaBetaAndBroadcastC) {
  std::mt19937 rng(25);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int64_t M = 19, K = 70, N = 45;
    Tensor a = ta ? random_f32({K, M}, rng) : random_f32({M, K}, rng);
    Tensor b = tb ? random_f32({N, K}, rng) : random_f32({K, N}, rng);
    Tensor c = t == 0 ? random_f32({N}, rng) : t == 1 ? random_f32({M, 1}, rng) : random_f32({M, N}, rng);
    expect_matches_f64({.op = "Gemm", .opset = 13, .inputs = {a, b, c},
                        .attrs = {{"transA", attr_int(ta)}, {"transB", attr_int(tb)}, {"alpha", attr_float(0.5f)},
                                  {"beta", attr_float(t == 3 ? 0.0f : 1.5f)}}});
  }
  expect_matches_f64({.op = "Gemm", .opset = 13, .inputs = {random_f32({3, 200}, rng), random_f32({10, 200}, rng)},
                      .attrs = {{"transB", attr_int(1)}}});
  // A bias row with beta = 1 (what fuse_matmul_add makes), [N] and [1, N].
  for (const Shape& cs : {Shape{33}, Shape{1, 33}})
    expect_matches_f64({.op = "Gemm", .opset = 13,
                        .inputs = {random_f32({21, 40}, rng), random_f32({40, 33}, rng), random_f32(cs, rng)}});
}

}  // namespace kiln::test
