// kiln/custom_op.h registered in-process: a custom op imports, infers and
// runs (against a plain loop), over several threads, with its attributes;
// registration errors and plugin-loading errors are clear. The plugin path
// itself is tested end to end by examples/custom_op/run_example.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "kiln/custom_op.h"
#include "kiln/session.h"
#include "model_builder.h"

namespace kiln::test {
namespace {

// test.kiln:AddScaled(a, b) = a + alpha * b, same shapes; the second output
// (optional) is the element count as an int64 scalar.
void register_add_scaled() {
  static bool done = false;
  if (done) return;
  done = true;
  CustomOp op;
  op.domain = "test.kiln";
  op.name = "AddScaled";
  op.min_inputs = op.max_inputs = 2;
  op.min_outputs = 1;
  op.max_outputs = 2;
  op.input_types = {DType::kFloat32};
  op.infer = [](CustomOpShapeContext& c) {
    if (c.input_shape(0) && c.input_shape(1) && c.input_shape(0)->size() != c.input_shape(1)->size())
      throw c.error("inputs differ in rank");
    c.set_output(0, c.input_dtype(0), c.input_shape(0));
    if (c.num_outputs() > 1) c.set_output(1, DType::kInt64, std::vector<TensorDim>{});
  };
  op.compute = [](CustomOpKernelContext& c) {
    const Tensor& a = c.input(0);
    const Tensor& b = c.input(1);
    if (a.shape() != b.shape()) throw c.error("inputs differ in shape");
    Tensor& y = c.output(0, DType::kFloat32, a.shape());
    const float alpha = c.attr_float("alpha", 1.0f);
    c.parallel_for(a.numel(), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) y.data<float>()[i] = a.data<float>()[i] + alpha * b.data<float>()[i];
    });
    if (c.num_outputs() > 1) c.output(1, DType::kInt64, {}).data<int64_t>()[0] = a.numel();
  };
  register_custom_op(op);
}

std::string add_scaled_model(float alpha, bool two_outputs) {
  onnx::ModelProto m = make_model(17);
  auto* o = m.add_opset_import();
  o->set_domain("test.kiln");
  o->set_version(1);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("a", onnx::TensorProto::FLOAT, {-1, 37}, {"n"});
  *g->add_input() = tensor_info("b", onnx::TensorProto::FLOAT, {-1, 37}, {"n"});
  onnx::NodeProto n = make_node("AddScaled", {"a", "b"},
                                two_outputs ? std::vector<std::string>{"s", "count"} : std::vector<std::string>{"s"},
                                "add_scaled", "test.kiln");
  auto* at = n.add_attribute();
  at->set_name("alpha");
  at->set_type(onnx::AttributeProto::FLOAT);
  at->set_f(alpha);
  *g->add_node() = n;
  *g->add_node() = make_node("Relu", {"s"}, {"y"}, "relu");
  g->add_output()->set_name("y");
  if (two_outputs) g->add_output()->set_name("count");
  return bytes_of(m);
}

TEST(CustomOp, ImportsInfersAndRunsLikeABuiltInOp) {
  register_add_scaled();
  const std::string bytes = add_scaled_model(-0.5f, true);
  SessionOptions opts;
  opts.threads = 2;
  Session s = Session::load_bytes(bytes.data(), bytes.size(), opts);
  EXPECT_EQ(s.outputs()[0].str(), "float[n x 37]");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-2, 2);
  for (int64_t n : {1, 5, 64}) {
    Tensor a(DType::kFloat32, {n, 37}), b(DType::kFloat32, {n, 37});
    for (int64_t i = 0; i < a.numel(); ++i) a.data<float>()[i] = u(rng), b.data<float>()[i] = u(rng);
    const std::vector<Tensor> out = s.run({{"a", a}, {"b", b}});
    ASSERT_EQ(out[0].shape(), (Shape{n, 37}));
    for (int64_t i = 0; i < a.numel(); ++i)
      ASSERT_FLOAT_EQ(out[0].data<float>()[i], std::max(0.0f, a.data<float>()[i] - 0.5f * b.data<float>()[i])) << i;
    EXPECT_EQ(out[1].data<int64_t>()[0], n * 37);
  }
}

TEST(CustomOp, ErrorsNameTheNodeAndTheOp) {
  register_add_scaled();
  const std::string bytes = add_scaled_model(1.0f, false);
  Session s = Session::load_bytes(bytes.data(), bytes.size());
  try {
    s.run({{"a", Tensor(DType::kFloat32, {2, 37})}, {"b", Tensor(DType::kFloat32, {3, 37})}});
    FAIL() << "mismatched shapes ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add_scaled"), std::string::npos) << e.what();
  }
  // An op of an unknown custom domain: the message says to load a plugin.
  onnx::ModelProto m = make_model(17);
  auto* o = m.add_opset_import();
  o->set_domain("com.nowhere");
  o->set_version(1);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2});
  *g->add_node() = make_node("Mystery", {"x"}, {"y"}, "m", "com.nowhere");
  g->add_output()->set_name("y");
  const std::string unknown = bytes_of(m);
  try {
    Session::load_bytes(unknown.data(), unknown.size());
    FAIL() << "unknown op loaded";
  } catch (const UnsupportedError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("com.nowhere:Mystery"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--plugin"), std::string::npos) << msg;
  }
}

TEST(CustomOp, RegistrationIsChecked) {
  register_add_scaled();
  CustomOp op;
  op.domain = "test.kiln";
  op.name = "AddScaled";
  op.infer = [](CustomOpShapeContext&) {};
  op.compute = [](CustomOpKernelContext&) {};
  EXPECT_THROW(register_custom_op(op), Error);  // overlaps the registration above
  op.since_version = 2;
  op.until_version = 1;
  EXPECT_THROW(register_custom_op(op), Error);  // empty range
  CustomOp reserved = op;
  reserved.since_version = 1;
  reserved.until_version = INT_MAX;
  reserved.domain = "";
  reserved.name = "Relu";
  EXPECT_THROW(register_custom_op(reserved), Error);
  CustomOp no_kernel = reserved;
  no_kernel.domain = "test.kiln";
  no_kernel.name = "NoKernel";
  no_kernel.compute = nullptr;
  EXPECT_THROW(register_custom_op(no_kernel), Error);
}

TEST(CustomOp, PluginLoadingErrorsNameTheLibrary) {
  try {
    load_plugin("/nonexistent/libplugin.so");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/libplugin.so"), std::string::npos) << e.what();
  }
  // A real shared library that is not a kiln plugin.
  for (const char* lib : {"/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"}) {
    if (!std::ifstream(lib)) continue;
    try {
      load_plugin(lib);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("kiln_register_plugin"), std::string::npos) << e.what();
    }
    break;
  }
  EXPECT_TRUE(loaded_plugins().empty());
}

}  // namespace
}  // namespace kiln::test

#include "kiln/network.h"

namespace kiln::test {
namespace {

// The network API adds custom ops like any layer: shape inference at add
// time, then a session (through ONNX export and import) runs the op.
TEST(CustomOp, NetworkApiAddsThem) {
  register_add_scaled();
  Network net("custom");
  NetworkTensor a = net.input("a", DType::kFloat32, {"n", 37});
  NetworkTensor b = net.input("b", DType::kFloat32, {"n", 37});
  std::vector<NetworkTensor> out = net.custom_layer("test.kiln", "AddScaled", {a, b}, {{"alpha", 2.0f}}, 2, 1, "mix");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].str(), "float[n x 37]");
  net.mark_output(out[0], "y");
  Tensor x(DType::kFloat32, {3, 37}), z(DType::kFloat32, {3, 37});
  for (int64_t i = 0; i < x.numel(); ++i)
    x.data<float>()[i] = 0.25f * static_cast<float>(i % 11), z.data<float>()[i] = -1.0f;
  const Tensor y = net.session().run({{"a", x}, {"b", z}})[0];
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_FLOAT_EQ(y.data<float>()[i], x.data<float>()[i] - 2.0f) << i;
  // Shape inference runs when the layer is added, and names it.
  NetworkTensor c = net.input("c", DType::kFloat32, {2, 3, 4});
  try {
    net.custom_layer("test.kiln", "AddScaled", {a, c}, {}, 1, 1, "bad_mix");
    FAIL() << "rank mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad_mix"), std::string::npos) << e.what();
  }
  EXPECT_THROW(net.custom_layer("test.kiln", "NoSuchOp", {a}), Error);
  EXPECT_THROW(net.custom_layer("test.kiln", "AddScaled", {a, b}, {}, 1, 2), Error);  // other opset for the domain
}

}  // namespace
}  // namespace kiln::test
