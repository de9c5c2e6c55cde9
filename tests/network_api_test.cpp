// Network-definition API: errors at add time naming the layer, symbolic
// dims, names and outputs, ONNX export (checked by onnx.checker), engines.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ir/verify.h"
#include "model_builder.h"
#include "network_test_util.h"
#include "onnx/import.h"

namespace kiln::test {

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("kiln_network_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// A small CNN over a symbolic batch: conv-bn-relu, a residual conv, max
// pool, global average pool, flatten and a linear layer.
Network small_cnn() {
  Network net("small_cnn");
  NetworkTensor x = net.input("x", DType::kFloat32, {"batch", 3, 16, 16});
  NetworkTensor y = net.conv(x, random_tensor({8, 3, 3, 3}, 1, -0.3f, 0.3f), {}, {.pads = {1, 1}}, "conv1");
  y = net.batch_norm(y, random_tensor({8}, 2, 0.5f, 1.5f), random_tensor({8}, 3), random_tensor({8}, 4),
                     random_tensor({8}, 5, 0.5f, 2), 1e-5f, "bn1");
  y = net.relu(y, "relu1");
  NetworkTensor z =
      net.conv(y, random_tensor({8, 8, 3, 3}, 6, -0.2f, 0.2f), random_tensor({8}, 7), {.pads = {1, 1}}, "conv2");
  y = net.relu(net.add(y, z, "residual"), "relu2");
  y = net.pool(y, PoolType::kMax, {.kernel = {2, 2}, .strides = {2, 2}}, "pool");
  y = net.flatten(net.global_pool(y, PoolType::kAverage, "gap"), 1, "flatten");
  y = net.linear(y, random_tensor({10, 8}, 8), random_tensor({10}, 9), "fc");
  net.mark_output(net.softmax(y, -1, "prob"), "prob");
  return net;
}

}  // namespace

TEST(NetworkApi, ShapeErrorsNameTheLayerAndLeaveTheNetworkAsItWas) {
  Network net("errors");
  NetworkTensor x = net.input("x", DType::kFloat32, {"batch", 64, 56, 56});
  NetworkTensor seq = net.input("seq", DType::kFloat32, {2, 5, 8});
  NetworkTensor w34 = net.constant(random_tensor({3, 4}, 4), "w34");
  const size_t nodes = net.model().graph->nodes.size(), values = net.model().graph->values.size();
  std::string e = error_of([&] { net.conv(x, random_tensor({64, 32, 3, 3}, 1), {}, {}, "layer1.0.conv1"); });
  EXPECT_TRUE(contains(e, "layer 'layer1.0.conv1' (Conv): input channels 64 do not match the weight's 32")) << e;
  e = error_of([&] { net.conv(x, random_tensor({64, 64, 3}, 1), {}, {}, "c"); });
  EXPECT_TRUE(contains(e, "layer 'c' (Conv): weight 64x64x3 must have the input's rank 4")) << e;
  e = error_of([&] { net.conv(x, random_tensor({64, 64, 3, 3}, 1), random_tensor({3}, 2), {}, "c"); });
  EXPECT_TRUE(contains(e, "layer 'c' (Conv): bias")) << e;
  e = error_of([&] { net.conv(x, random_tensor({64, 64, 3, 3}, 1), {}, {.strides = {1, 1, 1}}, "c"); });
  EXPECT_TRUE(contains(e, "strides has 3 values for 2 spatial dims")) << e;
  e = error_of([&] { net.reshape(seq, {-1, 7}, "bad_reshape"); });
  EXPECT_TRUE(contains(e, "layer 'bad_reshape' (Reshape): cannot reshape")) << e;
  e = error_of([&] { net.reshape(x, {0, 65, 0, 0}, "bad_reshape2"); });
  EXPECT_TRUE(contains(e, "layer 'bad_reshape2' (Reshape): cannot reshape")) << e;
  e = error_of([&] { net.linear(x, random_tensor({10, 8}, 3), {}, "fc"); });
  EXPECT_TRUE(contains(e, "layer 'fc' (Linear): input features 56 do not match the weight's 8")) << e;
  e = error_of([&] { net.matmul(x, w34, "mm"); });
  EXPECT_TRUE(contains(e, "layer 'mm' (MatMul): inner dims differ")) << e;
  e = error_of([&] {
    net.batch_norm(x, random_tensor({3}, 1), random_tensor({3}, 1), random_tensor({3}, 1), random_tensor({3}, 1), 1e-5f,
                   "bn");
  });
  EXPECT_TRUE(contains(e, "layer 'bn' (BatchNormalization): weight 3 must have 64 values")) << e;
  e = error_of([&] { net.pool(x, PoolType::kMax, {.kernel = {3}}, "pool"); });
  EXPECT_TRUE(contains(e, "layer 'pool' (MaxPool): kernel needs 2 values")) << e;
  e = error_of([&] { net.transpose(x, {0, 1, 2}, "t"); });
  EXPECT_TRUE(contains(e, "layer 't' (Transpose): perm")) << e;
  e = error_of([&] { net.layer_norm(x, random_tensor({55}, 1), {}, 1e-5f, "ln"); });
  EXPECT_TRUE(contains(e, "layer 'ln' (LayerNormalization)")) << e;
  e = error_of([&] { net.multi_head_attention(seq, seq, seq, 3, {random_tensor({24, 8}, 1)}, {}, "mha"); });
  EXPECT_TRUE(contains(e, "layer 'mha' (MultiHeadAttention): embedding size 8 is not divisible by 3 heads")) << e;
  e = error_of([&] { net.concat({x, seq}, 1, "cat"); });
  EXPECT_TRUE(contains(e, "layer 'cat' (Concat)")) << e;
  // An input of another network.
  Network other("other");
  NetworkTensor foreign = other.input("y", DType::kFloat32, {1});
  e = error_of([&] { net.relu(foreign, "r"); });
  EXPECT_TRUE(contains(e, "layer 'r' (Relu): input 'y' is of another network")) << e;
  // Nothing of the failed layers stayed, and what is left is consistent.
  EXPECT_EQ(net.model().graph->nodes.size(), nodes);
  EXPECT_EQ(net.model().graph->values.size(), values);
  EXPECT_NO_THROW(verify_graph(*net.model().graph));
  EXPECT_EQ(net.num_layers(), 1u);  // the constant
  // The names of failed layers are free again, and the network still works.
  NetworkTensor y = net.conv(x, random_tensor({4, 64, 1, 1}, 1), {}, {}, "layer1.0.conv1");
  EXPECT_EQ(y.str(), "float[batch x 4 x 56 x 56]");
  e = error_of([&] { net.relu(y, "layer1.0.conv1"); });
  EXPECT_TRUE(contains(e, "a layer of that name exists already")) << e;
  e = error_of([&] { net.input("x", DType::kFloat32, {1}); });
  EXPECT_TRUE(contains(e, "input 'x': the name is already used")) << e;
  e = error_of([&] { net.to_onnx(); });
  EXPECT_TRUE(contains(e, "has no outputs")) << e;
  // Load errors name the network.
  net.mark_output(y, "y");
  e = error_of([&] { net.session({.input_shapes = {{"nope", {1}}}}); });
  EXPECT_TRUE(contains(e, "network 'errors': --shapes names 'nope'")) << e;
}

TEST(NetworkApi, DefaultNamesCountPerKind) {
  Network net;
  NetworkTensor x = net.input("x", DType::kFloat32, {2, 3});
  NetworkTensor a = net.relu(x);
  NetworkTensor b = net.relu(a);
  NetworkTensor c = net.sigmoid(b);
  EXPECT_EQ(a.name(), "Relu_0");
  EXPECT_EQ(b.name(), "Relu_1");
  EXPECT_EQ(c.name(), "Sigmoid_0");
  net.mark_output(c, "out");
  EXPECT_EQ(c.name(), "out");    // a plain layer output is renamed
  net.mark_output(a);            // under its own name
  net.mark_output(x, "x_copy");  // an input goes through an Identity
  Session s = net.session();
  ASSERT_EQ(s.outputs().size(), 3u);
  EXPECT_EQ(s.outputs()[0].name, "out");
  EXPECT_EQ(s.outputs()[1].name, "Relu_0");
  EXPECT_EQ(s.outputs()[2].name, "x_copy");
  Tensor in = random_tensor({2, 3}, 1);
  std::vector<Tensor> out = s.run({{"x", in}});
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(out[2].data<float>()[i], in.data<float>()[i]);
    EXPECT_EQ(out[1].data<float>()[i], std::max(0.f, in.data<float>()[i]));
  }
}

TEST(NetworkApi, SymbolicDimsFlowThroughShapeLayers) {
  Network net;
  NetworkTensor x = net.input("x", DType::kFloat32, {"batch", 512, 1, 1});
  EXPECT_EQ(net.reshape(x, {0, -1}).str(), "float[batch x 512]");
  EXPECT_EQ(net.flatten(x).str(), "float[batch x 512]");
  EXPECT_EQ(net.reshape(x, {0, 8, -1, 1}).str(), "float[batch x 8 x 64 x 1]");
  EXPECT_EQ(net.transpose(x, {1, 0, 2, 3}).str(), "float[512 x batch x 1 x 1]");
  NetworkTensor seq = net.input("seq", DType::kFloat32, {"batch", "len", 16});
  EXPECT_EQ(net.linear(seq, random_tensor({4, 16}, 1)).str(), "float[batch x len x 4]");
  EXPECT_EQ(net.reshape(seq, {0, 0, 2, 8}).str(), "float[batch x len x 2 x 8]");
  EXPECT_EQ(net.inputs().size(), 2u);
  EXPECT_EQ(net.num_layers(), 6u);
}

TEST(NetworkApi, SymbolicBatchRunsAtBatchesOneAndThree) {
  Network net = small_cnn();
  NetworkTensor prob = net.outputs()[0];
  ASSERT_EQ(prob.rank(), 2);
  EXPECT_EQ(prob.dims()[0].symbol, "batch");
  EXPECT_EQ(prob.shape(), (Shape{-1, 10}));
  EXPECT_EQ(prob.str(), "float[batch x 10]");
  Session s = net.session();
  EXPECT_EQ(s.inputs()[0].str(), "float[batch x 3 x 16 x 16]");
  Tensor x3 = random_tensor({3, 3, 16, 16}, 11);
  Tensor y3 = s.run({{"x", x3}})[0];
  ASSERT_EQ(y3.shape(), (Shape{3, 10}));
  for (int64_t n = 0; n < 3; ++n) {
    Tensor one(DType::kFloat32, {1, 3, 16, 16});
    std::copy_n(x3.data<float>() + n * 768, 768, one.data<float>());
    Tensor y1 = s.run({{"x", one}})[0];
    ASSERT_EQ(y1.shape(), (Shape{1, 10}));
    for (int64_t j = 0; j < 10; ++j) EXPECT_NEAR(y1.data<float>()[j], y3.data<float>()[n * 10 + j], 1e-5);
  }
  // The same network unoptimized gives the same result.
  Tensor plain = run_x(net, x3, {.opt_level = 0});
  expect_close(plain, y3, 1e-5);
}

TEST(NetworkApi, OnnxExportPassesTheCheckerAndRoundTrips) {
  // Many layer kinds in one network.
  Network net = small_cnn();
  NetworkTensor seq = net.input("seq", DType::kFloat32, {"batch", 6, 8});
  MultiHeadAttentionWeights w{random_tensor({24, 8}, 21), random_tensor({24}, 22), random_tensor({8, 8}, 23),
                              random_tensor({8}, 24)};
  NetworkTensor h = net.layer_norm(seq, random_tensor({8}, 25), random_tensor({8}, 26), 1e-5f, "ln");
  h = net.multi_head_attention(h, h, h, 2, w, {}, "mha");
  h = net.gelu(net.linear(h, random_tensor({16, 8}, 27), random_tensor({16}, 28), "mlp.fc1"), "mlp.gelu");
  h = net.activation(h, Activation::kGeluTanh, "gelu_tanh");
  h = net.activation(h, Activation::kHardSwish, "hswish");
  h = net.reshape(h, {0, 0, 4, 4}, "to_image");
  NetworkTensor img = net.transpose(h, {0, 2, 1, 3}, "tr");
  img = net.deconv(img, random_tensor({4, 2, 2, 2}, 29), {}, {.strides = {2, 2}}, "up");
  img = net.resize(img, {.mode = ResizeOptions::Mode::kLinear, .sizes = {6, 8}}, "resize");
  std::vector<NetworkTensor> halves = net.split(img, 1, {1, 1}, "split");
  img = net.concat({halves[1], halves[0]}, 1, "cat");
  img = net.slice(img, {1}, {5}, {2}, {}, "crop");
  img = net.activation(img, Activation::kClip, -1.f, 1.f, "clip");
  net.mark_output(net.reduce(img, ReduceOp::kMean, {2, 3}, false, "mean"), "image_mean");
  EXPECT_EQ(net.outputs()[1].str(), "float[batch x 2]");
  EXPECT_NO_THROW(verify_graph(*net.model().graph));

  const std::string path = temp_path("many.onnx");
  net.save_onnx(path);
  const std::string cmd =
      "/usr/bin/python3 -c \"import onnx; onnx.checker.check_model(onnx.load('" + path + "'), full_check=True)\" 2>&1";
  if (std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") != 0) {
    std::remove(path.c_str());
    GTEST_SKIP() << "/usr/bin/python3 with onnx is not available";
  }
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // The file and the in-memory network give the same results.
  Session from_file = Session::load(path);
  std::remove(path.c_str());
  Session direct = net.session();
  std::vector<std::pair<std::string, Tensor>> feed = {{"x", random_tensor({2, 3, 16, 16}, 30)},
                                                      {"seq", random_tensor({2, 6, 8}, 31)}};
  std::vector<Tensor> a = from_file.run(feed), b = direct.run(feed);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].shape(), (Shape{2, 2}));
  for (size_t i = 0; i < a.size(); ++i) expect_close(a[i], b[i], 1e-6);
}

// The network and the same model written as ONNX by hand
// (model_builder.h's residual_conv_model) are one IR: the optimizer makes
// the same nodes of both, and they compute the same.
TEST(NetworkApi, SameAsTheHandWrittenOnnxModel) {
  const onnx::ModelProto proto = residual_conv_model();
  auto weight = [&](const std::string& name) {
    for (const onnx::TensorProto& t : proto.graph().initializer())
      if (t.name() == name) {
        Tensor out(DType::kFloat32, Shape(t.dims().begin(), t.dims().end()));
        std::memcpy(out.raw(), t.raw_data().data(), out.nbytes());
        return out;
      }
    ADD_FAILURE() << name;
    return Tensor();
  };
  Network net("residual");
  NetworkTensor x = net.input("x", DType::kFloat32, {"N", 16, 16, 16});
  NetworkTensor y = net.relu(net.conv(x, weight("c1_w"), weight("c1_b"), {.pads = {1, 1}}, "c1"), "relu1");
  y = net.conv(y, weight("c2_w"), weight("c2_b"), {.pads = {1, 1}}, "c2");
  y = net.relu(net.add(y, x, "residual"), "relu2");
  y = net.conv(y, weight("c3_w"), weight("c3_b"), {.strides = {2, 2}}, "c3");
  y = net.flatten(net.global_pool(y, PoolType::kAverage, "pool"), 1, "flatten");
  net.mark_output(net.linear(y, weight("fc_w"), weight("fc_b"), "fc"), "y");

  const std::string bytes = bytes_of(proto);
  Session hand = Session::load_bytes(bytes.data(), bytes.size());
  Session built = net.session();
  ASSERT_EQ(hand.executed_nodes().size(), built.executed_nodes().size());
  // (Ops only: the network's types may know more, e.g. Flatten's [N x 32]
  // where ONNX inference says [? x 32].)
  for (size_t i = 0; i < hand.executed_nodes().size(); ++i)
    EXPECT_EQ(hand.executed_nodes()[i].op, built.executed_nodes()[i].op);
  Tensor in = random_tensor({2, 16, 16, 16}, 50);
  expect_close(built.run({{"x", in}})[0], hand.run({{"x", in}})[0], 1e-6);
}

TEST(NetworkApi, BuildsAnEngineThatRunsTheSame) {
  Network net = small_cnn();
  const std::string engine = temp_path("cnn.kiln");
  BuildOptions options;
  options.time_tactics = false;
  options.profiles.push_back({{{"x", {1, 3, 16, 16}}}, {{"x", {2, 3, 16, 16}}}, {{"x", {4, 3, 16, 16}}}});
  BuildReport report = net.build_engine(engine, options);
  EXPECT_GT(report.engine_bytes, 0u);
  EXPECT_FALSE(std::filesystem::exists(engine + ".onnx"));  // the intermediate file is gone
  Session s = Session::load(engine);
  std::filesystem::remove(engine);
  EXPECT_TRUE(s.is_engine());
  for (int64_t n : {1, 3}) {
    Tensor x = random_tensor({n, 3, 16, 16}, static_cast<uint32_t>(40 + n));
    expect_close(s.run({{"x", x}})[0], run_x(net, x), 1e-5);
  }
}

}  // namespace kiln::test
