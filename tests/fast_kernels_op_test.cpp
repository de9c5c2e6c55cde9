// Conv, MatMul and Gemm on their float32 fast paths (packed GEMM, weights
// packed at kernel creation, thread pool) against the same ops in float64,
// which run the naive reference kernels.
#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "kernels/cpu/conv_f32.h"
#include "kiln/session.h"
#include "model_builder.h"
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
  return {{"kernel_shape", attr_ints(k)},
          {"strides", attr_ints(s)},
          {"dilations", attr_ints(d)},
          {"pads", attr_ints(pads)},
          {"group", attr_int(group)}};
}

}  // namespace

TEST(FastConv, ResNetLikeShapes) {
  std::mt19937 rng(21);
  // 3x3 pad 1, 1x1, strided 7x7, strided 1x1 with bias, and batch 2.
  expect_matches_f64(
      {.op = "Conv",
       .inputs = {random_f32({1, 16, 14, 14}, rng), random_f32({24, 16, 3, 3}, rng), random_f32({24}, rng)},
       .attrs = conv_attrs({3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1)});
  expect_matches_f64({.op = "Conv",
                      .inputs = {random_f32({2, 32, 9, 9}, rng), random_f32({40, 32, 1, 1}, rng)},
                      .attrs = conv_attrs({1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1)});
  expect_matches_f64({.op = "Conv",
                      .inputs = {random_f32({1, 3, 23, 21}, rng), random_f32({8, 3, 7, 7}, rng), random_f32({8}, rng)},
                      .attrs = conv_attrs({7, 7}, {2, 2}, {1, 1}, {3, 3, 3, 3}, 1)});
  expect_matches_f64(
      {.op = "Conv",
       .inputs = {random_f32({2, 12, 10, 11}, rng), random_f32({20, 12, 1, 1}, rng), random_f32({20}, rng)},
       .attrs = conv_attrs({1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1)});
}

TEST(FastConv, GroupedDilatedAsymmetricAndOneD) {
  std::mt19937 rng(22);
  expect_matches_f64({.op = "Conv",
                      .inputs = {random_f32({2, 8, 11, 9}, rng), random_f32({12, 4, 3, 2}, rng), random_f32({12}, rng)},
                      .attrs = conv_attrs({3, 2}, {2, 1}, {2, 3}, {1, 0, 2, 1}, 2)});
  expect_matches_f64({.op = "Conv",
                      .inputs = {random_f32({2, 6, 17}, rng), random_f32({5, 6, 3}, rng)},
                      .attrs = conv_attrs({3}, {2}, {2}, {1, 2}, 1)});
}

// Convs whose taps mostly read padding (DeepLab's ASPP) run one GEMM per tap
// over the outputs where the tap reads the image: the op, and the kernel with
// tap-packed weights against im2col + GEMM on the same shapes.
TEST(FastConv, SparseTapsMatchReference) {
  std::mt19937 rng(26);
  struct Case {
    Shape x, w;
    std::vector<int64_t> strides, dilations, pads;
  };
  const Case cases[] = {
      {{1, 16, 14, 14}, {24, 16, 3, 3}, {1, 1}, {12, 12}, {12, 12, 12, 12}},   // ASPP at 14x14
      {{2, 8, 9, 11}, {5, 8, 3, 3}, {1, 1}, {6, 4}, {6, 4, 5, 3}},             // asymmetric
      {{1, 6, 13, 10}, {7, 6, 3, 2}, {2, 1}, {5, 7}, {5, 7, 5, 7}},            // strided, 3x2 kernel
      {{1, 4, 5, 5}, {3, 4, 3, 3}, {1, 1}, {9, 9}, {9, 9, 9, 9}},              // only the center tap reads
      {{1, 512, 14, 14}, {8, 512, 3, 3}, {1, 1}, {12, 12}, {12, 12, 12, 12}},  // gathered on the pool's threads
  };
  for (const Case& c : cases) {
    Conv2dF32Shape s;
    s.N = c.x[0], s.C = c.x[1], s.H = c.x[2], s.W = c.x[3], s.M = c.w[0], s.KH = c.w[2], s.KW = c.w[3];
    s.stride_h = c.strides[0], s.stride_w = c.strides[1], s.dilation_h = c.dilations[0], s.dilation_w = c.dilations[1];
    s.pad_h = c.pads[0], s.pad_w = c.pads[1];
    s.OH = (s.H + c.pads[0] + c.pads[2] - (s.KH - 1) * s.dilation_h - 1) / s.stride_h + 1;
    s.OW = (s.W + c.pads[1] + c.pads[3] - (s.KW - 1) * s.dilation_w - 1) / s.stride_w + 1;
    ASSERT_TRUE(conv2d_f32_taps_sparse(s));
    Tensor x = random_f32(c.x, rng), w = random_f32(c.w, rng), b = random_f32({c.w[0]}, rng);
    expect_matches_f64(
        {.op = "Conv", .inputs = {x, w, b}, .attrs = conv_attrs({c.w[2], c.w[3]}, c.strides, c.dilations, c.pads, 1)});
    if (c.pads[0] != c.pads[2] || c.pads[1] != c.pads[3]) continue;  // the kernel below takes begin pads only
    auto taps = pack_conv_tap_weights_f32(w.data<float>(), s.M, s.C, s.KH, s.KW);
    std::vector<float> want(static_cast<size_t>(s.N * s.M * s.OH * s.OW)), got(want.size());
    ThreadPool pool(2);
    conv2d_f32(s, x.data<float>(), w.data<float>(), nullptr, b.data<float>(), want.data(), nullptr);
    conv2d_f32(s, x.data<float>(), w.data<float>(), taps.get(), b.data<float>(), got.data(), &pool);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + std::abs(want[i]))) << i;
  }
  // A dense conv is not sparse.
  Conv2dF32Shape dense;
  dense.C = 8, dense.H = dense.W = dense.OH = dense.OW = 14, dense.M = 8, dense.KH = dense.KW = 3,
  dense.pad_h = dense.pad_w = 1;
  EXPECT_FALSE(conv2d_f32_taps_sparse(dense));
}

// With a dynamic image size (an engine's profile over image sizes) the
// choice between im2col and one GEMM per tap is made per run: one session
// through sizes where the dilated conv's taps mostly read padding and sizes
// where they do not, each against the float64 reference.
TEST(FastConv, DynamicSizeChoosesTapsPerRun) {
  std::mt19937 rng(27);
  const Tensor w = random_f32({24, 16, 3, 3}, rng), b = random_f32({24}, rng);
  const auto attrs = conv_attrs({3, 3}, {1, 1}, {6, 6}, {6, 6, 6, 6}, 1);
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 16, -1, -1}, {"N", "", "H", "W"});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {-1, 24, -1, -1}, {"N", "", "H", "W"});
  *g->add_initializer() = float_tensor("w", {24, 16, 3, 3}, to_f32(w));
  *g->add_initializer() = float_tensor("b", {24}, to_f32(b));
  onnx::NodeProto* conv = g->add_node();
  *conv = make_node("Conv", {"x", "w", "b"}, {"y"}, "aspp");
  for (const char* name : {"dilations", "pads"}) {
    auto* a = conv->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : attrs.at(name).ints) a->add_ints(v);
  }
  const std::string bytes = bytes_of(m);
  SessionOptions o;
  o.opt_level = 0;  // the plain Conv kernel, not a blocked one
  o.threads = 2;
  Session s = Session::load_bytes(bytes.data(), bytes.size(), o);
  int sparse = 0;
  for (const Shape& shape :
       std::vector<Shape>{{1, 16, 7, 7}, {2, 16, 40, 36}, {1, 16, 5, 9}, {1, 16, 30, 30}, {2, 16, 7, 7}}) {
    Conv2dF32Shape cs;
    cs.N = shape[0], cs.C = 16, cs.H = cs.OH = shape[2], cs.W = cs.OW = shape[3], cs.M = 24, cs.KH = cs.KW = 3;
    cs.dilation_h = cs.dilation_w = cs.pad_h = cs.pad_w = 6;
    sparse += conv2d_f32_taps_sparse(cs);
    const Tensor x = random_f32(shape, rng);
    const Tensor want =
        to_f32_tensor(run_node({.op = "Conv", .inputs = {to_f64(x), to_f64(w), to_f64(b)}, .attrs = attrs})[0]);
    EXPECT_TRUE(all_close(s.run({{"x", x}})[0], want, 1e-4, 1e-5)) << shape_str(shape);
  }
  EXPECT_EQ(sparse, 3);  // both paths ran
}

TEST(FastConv, Depthwise) {
  std::mt19937 rng(23);
  for (int64_t stride : {1, 2})
    expect_matches_f64(
        {.op = "Conv",
         .inputs = {random_f32({2, 12, 13, 15}, rng), random_f32({12, 1, 3, 3}, rng), random_f32({12}, rng)},
         .attrs = conv_attrs({3, 3}, {stride, stride}, {1, 1}, {1, 1, 1, 1}, 12)});
  expect_matches_f64({.op = "Conv",
                      .inputs = {random_f32({1, 8, 12, 12}, rng), random_f32({8, 1, 5, 5}, rng)},
                      .attrs = conv_attrs({5, 5}, {2, 1}, {2, 1}, {4, 2, 3, 1}, 8)});
  // The unrolled KW = 3 / 5, stride 1 / 2 kernels: odd widths, asymmetric
  // pads, rows narrower than the kernel (no interior columns), row dilation.
  for (int64_t k : {3, 5})
    for (int64_t stride : {1, 2}) {
      expect_matches_f64(
          {.op = "Conv",
           .inputs = {random_f32({1, 3, 11, 29}, rng), random_f32({3, 1, k, k}, rng), random_f32({3}, rng)},
           .attrs = conv_attrs({k, k}, {stride, stride}, {1, 1}, {k / 2, k / 2, k / 2, k / 2}, 3)});
      expect_matches_f64({.op = "Conv",
                          .inputs = {random_f32({2, 2, 9, 3}, rng), random_f32({2, 1, k, k}, rng)},
                          .attrs = conv_attrs({k, k}, {stride, stride}, {2, 1}, {0, 2, 1, 0}, 2)});
      expect_matches_f64({.op = "Conv",
                          .inputs = {random_f32({1, 2, 6, 2}, rng), random_f32({2, 1, k, k}, rng)},
                          .attrs = conv_attrs({k, k}, {1, stride}, {1, 1}, {k / 2, k / 2, k / 2, k / 2}, 2)});
    }
  // Channel multiplier 2 (group == C, M == 2C): grouped GEMM path.
  expect_matches_f64({.op = "Conv",
                      .inputs = {random_f32({1, 4, 7, 7}, rng), random_f32({8, 1, 3, 3}, rng)},
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
    expect_matches_f64({.op = "Gemm",
                        .opset = 13,
                        .inputs = {a, b, c},
                        .attrs = {{"transA", attr_int(ta)},
                                  {"transB", attr_int(tb)},
                                  {"alpha", attr_float(0.5f)},
                                  {"beta", attr_float(t == 3 ? 0.0f : 1.5f)}}});
  }
  expect_matches_f64({.op = "Gemm",
                      .opset = 13,
                      .inputs = {random_f32({3, 200}, rng), random_f32({10, 200}, rng)},
                      .attrs = {{"transB", attr_int(1)}}});
  // A bias row with beta = 1 (what fuse_matmul_add makes), [N] and [1, N].
  for (const Shape& cs : {Shape{33}, Shape{1, 33}})
    expect_matches_f64({.op = "Gemm",
                        .opset = 13,
                        .inputs = {random_f32({21, 40}, rng), random_f32({40, 33}, rng), random_f32(cs, rng)}});
}

}  // namespace kiln::test
