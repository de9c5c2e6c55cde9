// Session API: input checking, symbolic dims, repeated and concurrent runs.
#include <gtest/gtest.h>

#include <thread>

#include "kiln/session.h"
#include "model_builder.h"

namespace kiln::test {

namespace {
// y = relu(x + x) with x: float[N, 3] (N symbolic).
Session relu_model() {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  *g->add_node() = make_node("Add", {"x", "x"}, {"t"}, "add");
  *g->add_node() = make_node("Relu", {"t"}, {"y"}, "relu");
  std::string b = bytes_of(m);
  return Session::load_bytes(b.data(), b.size());
}

std::string error_of(const Session& s, std::vector<std::pair<std::string, Tensor>> in) {
  try {
    s.run(in);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Session, ListsInputsWithSymbolicDims) {
  Session s = relu_model();
  ASSERT_EQ(s.inputs().size(), 1u);
  EXPECT_EQ(s.inputs()[0].name, "x");
  EXPECT_EQ(s.inputs()[0].shape[0].symbol, "N");
  EXPECT_EQ(s.inputs()[0].shape[1].size, 3);
  EXPECT_EQ(s.outputs()[0].str(), "float[N x 3]");
}

TEST(Session, RejectsBadInputsWithNamedErrors) {
  Session s = relu_model();
  EXPECT_NE(error_of(s, {{"nope", Tensor(DType::kFloat32, {1, 3})}}).find("'nope' is not an input"), std::string::npos);
  EXPECT_NE(error_of(s, {{"x", Tensor(DType::kInt64, {1, 3})}}).find("element type"), std::string::npos);
  EXPECT_NE(error_of(s, {{"x", Tensor(DType::kFloat32, {3})}}).find("rank"), std::string::npos);
  EXPECT_NE(error_of(s, {{"x", Tensor(DType::kFloat32, {2, 4})}}).find("dim 1"), std::string::npos);
  EXPECT_NE(error_of(s, {}).find("'x'"), std::string::npos);
}

TEST(Session, WrapsCallerMemoryAndRunsManyShapes) {
  Session s = relu_model();
  for (int64_t n : {1, 5, 0, 17}) {
    std::vector<float> buf(static_cast<size_t>(n * 3));
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(i) - 7;
    auto out = s.run({{"x", Tensor::wrap(DType::kFloat32, {n, 3}, buf.data())}});
    ASSERT_EQ(out[0].shape(), (Shape{n, 3}));
    for (size_t i = 0; i < buf.size(); ++i) EXPECT_FLOAT_EQ(out[0].data<float>()[i], std::max(0.f, 2 * buf[i]));
  }
}

TEST(Session, ConcurrentRunsOnOneSession) {
  Session s = relu_model();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int iter = 0; iter < 200; ++iter) {
        Tensor x(DType::kFloat32, {t + 1, 3});
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(t * 100 + iter - i);
        auto out = s.run({{"x", x}});
        for (int64_t i = 0; i < x.numel(); ++i)
          if (out[0].data<float>()[i] != std::max(0.f, 2 * x.data<float>()[i])) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace kiln::test
