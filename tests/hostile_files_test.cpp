// Hostile files found by red-teaming: each crafted model, weights or tensor
// file must fail with a kiln::Error naming what is at fault (or, where the
// file is valid, give the right answer) — never crash, hang, answer wrongly
// or allocate without bound. The models are built here through protobuf
// (tests/model_builder.h); none allocates much: the guards refuse first.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <thread>

#include "core/file.h"
#include "error_of.h"
#include "kiln/custom_op.h"
#include "kiln/error.h"
#include "kiln/session.h"
#include "kiln/tensor_io.h"
#include "kiln/weights.h"
#include "model_builder.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using namespace kiln::test;

void set_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void set_ints(onnx::NodeProto& n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void set_floats(onnx::NodeProto& n, const std::string& name, std::vector<float> v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float x : v) a->add_floats(x);
}

void set_strings(onnx::NodeProto& n, const std::string& name, std::vector<std::string> v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRINGS);
  for (const auto& x : v) a->add_strings(x);
}

void add_opset(onnx::ModelProto& m, const std::string& domain, int version) {
  auto* o = m.add_opset_import();
  o->set_domain(domain);
  o->set_version(version);
}

std::string load_error(const onnx::ModelProto& m) {
  const std::string bytes = bytes_of(m);
  return error_of([&] { Session::load_bytes(bytes.data(), bytes.size()); });
}

std::string run_error(const onnx::ModelProto& m, const std::vector<std::pair<std::string, Tensor>>& inputs) {
  const std::string bytes = bytes_of(m);
  return error_of([&] { Session::load_bytes(bytes.data(), bytes.size()).run(inputs); });
}

#define EXPECT_SAYS(msg, words) \
  EXPECT_NE((msg).find(words), std::string::npos) << "'" << (msg) << "' lacks: " << (words)

Tensor floats(Shape shape, std::vector<float> v) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

Tensor int64s(Shape shape, std::vector<int64_t> v) {
  Tensor t(DType::kInt64, std::move(shape));
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

// ---- 1. output element counts

TEST(HostileFiles, ResizeWithHugeSizesIsRefused) {
  // sizes from an input: only the kernel sees them (the naive path sized a
  // buffer of outer * O * inner doubles, which wrapped).
  onnx::ModelProto m = make_model(13);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 1, 2, 2});
  *g->add_input() = tensor_info("sizes", onnx::TensorProto::INT64, {4});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  *g->add_initializer() = float_tensor("roi", {0}, {});
  onnx::NodeProto n = make_node("Resize", {"x", "roi", "", "sizes"}, {"y"}, "resize");
  *g->add_node() = n;
  const std::string msg = run_error(
      m, {{"x", floats({1, 1, 2, 2}, {1, 2, 3, 4})}, {"sizes", int64s({4}, {1, 1, (int64_t{1} << 62) + 4, 1})}});
  EXPECT_SAYS(msg, "node 'resize' (Resize");
  EXPECT_SAYS(msg, "too large");
}

TEST(HostileFiles, InferredShapesThatOverflowAreRefusedAtLoad) {
  onnx::ModelProto m = make_model(13);
  auto* g = m.mutable_graph();
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  *g->add_initializer() = int64_tensor("shape", {int64_t{1} << 40, int64_t{1} << 40});
  *g->add_node() = make_node("ConstantOfShape", {"shape"}, {"y"}, "fill");
  const std::string msg = load_error(m);
  EXPECT_SAYS(msg, "node 'fill' (ConstantOfShape");
  EXPECT_SAYS(msg, "overflows the element count");
}

// ---- 2. the kiln domain is open to every file

onnx::ModelProto from_blocked_model(int64_t block_dim) {
  onnx::ModelProto m = make_model(13);
  add_opset(m, "kiln", 1);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 1, 2, 2, block_dim}, {"", "", "", "", "B"});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  onnx::NodeProto n = make_node("FromBlocked", {"x"}, {"y"}, "unblock", "kiln");
  set_int(n, "channels", 3);
  *g->add_node() = n;
  return m;
}

TEST(HostileFiles, KilnFromBlockedChecksItsBlock) {
  EXPECT_SAYS(load_error(from_blocked_model(3)), "must be 8 or 16, got 3");
  // The block dim left symbolic: the kernel checks it.
  const std::string msg = run_error(from_blocked_model(-1), {{"x", Tensor(DType::kFloat32, {1, 1, 2, 2, 3})}});
  EXPECT_SAYS(msg, "node 'unblock' (kiln:FromBlocked");
  EXPECT_SAYS(msg, "8 or 16");
}

TEST(HostileFiles, KilnBlockedOpsCheckTheirInputs) {
  onnx::ModelProto m = make_model(13);
  add_opset(m, "kiln", 1);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 1, 2, 2, 5});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  *g->add_initializer() = float_tensor("s", {1, 1, 1, 1, 5}, {1, 1, 1, 1, 1});
  *g->add_node() = make_node("BlockedScaleShift", {"x", "s", "s"}, {"y"}, "ss", "kiln");
  EXPECT_SAYS(load_error(m), "8 or 16, got 5");
}

TEST(HostileFiles, KilnElementwiseRegistersAreChecked) {
  onnx::ModelProto m = make_model(13);
  add_opset(m, "kiln", 1);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {4});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  onnx::NodeProto n = make_node("Elementwise", {"x"}, {"y"}, "fused", "kiln");
  // Add(r0, r[2^32]): an int cast of 2^32 read register 0.
  set_ints(n, "ops", {0, 0, int64_t{1} << 32});
  set_floats(n, "params", {0, 0});
  set_strings(n, "fns", {""});
  *g->add_node() = n;
  EXPECT_SAYS(load_error(m), "undefined register");
}

TEST(HostileFiles, KilnAttentionChecksItsShapesAtLoad) {
  onnx::ModelProto m = make_model(13);
  add_opset(m, "kiln", 1);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("q", onnx::TensorProto::FLOAT, {1, 4, 8});
  *g->add_input() = tensor_info("k", onnx::TensorProto::FLOAT, {1, 5, 6});
  *g->add_input() = tensor_info("v", onnx::TensorProto::FLOAT, {1, 5, 8});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  onnx::NodeProto n = make_node("Attention", {"q", "k", "v"}, {"y"}, "attn", "kiln");
  auto* scale = n.add_attribute();
  scale->set_name("scale");
  scale->set_type(onnx::AttributeProto::FLOAT);
  scale->set_f(0.5f);
  *g->add_node() = n;
  const std::string msg = load_error(m);
  EXPECT_SAYS(msg, "node 'attn' (kiln:Attention");
  EXPECT_SAYS(msg, "head sizes differ");
}

// ---- 4, 5. model-local functions

onnx::FunctionProto function(const std::string& name, std::vector<std::string> in, std::vector<std::string> out) {
  onnx::FunctionProto f;
  f.set_name(name);
  f.set_domain("local");
  for (auto& s : in) f.add_input(s);
  for (auto& s : out) f.add_output(s);
  auto* o = f.add_opset_import();
  o->set_domain("");
  o->set_version(13);
  return f;
}

TEST(HostileFiles, NestedFunctionCallsReadTheCallersValues) {
  // Outer(a) = Inner(Relu(a)), Inner(t) = Neg(t); the main graph also has an
  // input named "tmp", the name of Outer's local value: it must not be read.
  onnx::ModelProto m = make_model(13);
  add_opset(m, "local", 1);
  onnx::FunctionProto outer = function("Outer", {"a"}, {"b"});
  *outer.add_node() = make_node("Relu", {"a"}, {"tmp"});
  *outer.add_node() = make_node("Inner", {"tmp"}, {"b"}, "", "local");
  onnx::FunctionProto inner = function("Inner", {"t"}, {"u"});
  *inner.add_node() = make_node("Neg", {"t"}, {"u"});
  *m.add_functions() = outer;
  *m.add_functions() = inner;
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2});
  *g->add_input() = tensor_info("tmp", onnx::TensorProto::FLOAT, {2});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2});
  *g->add_output() = tensor_info("z", onnx::TensorProto::FLOAT, {2});
  *g->add_node() = make_node("Outer", {"x"}, {"y"}, "call", "local");
  *g->add_node() = make_node("Identity", {"tmp"}, {"z"}, "id");
  const std::string bytes = bytes_of(m);
  Session s = Session::load_bytes(bytes.data(), bytes.size());
  std::vector<Tensor> out = s.run({{"x", floats({2}, {-1, 2})}, {"tmp", floats({2}, {5, 5})}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].data<float>()[0], 0.0f);
  EXPECT_EQ(out[0].data<float>()[1], -2.0f);
  EXPECT_EQ(out[1].data<float>()[0], 5.0f);
}

TEST(HostileFiles, ExponentialInliningIsCapped) {
  // F_i(a) = F_{i+1}(F_{i+1}(a)), 24 levels: a tiny file, 2^24 nodes inlined.
  onnx::ModelProto m = make_model(13);
  add_opset(m, "local", 1);
  const int levels = 24;
  for (int i = 0; i < levels; ++i) {
    onnx::FunctionProto f = function("F" + std::to_string(i), {"a"}, {"b"});
    if (i + 1 < levels) {
      const std::string next = "F" + std::to_string(i + 1);
      *f.add_node() = make_node(next, {"a"}, {"t"}, "", "local");
      *f.add_node() = make_node(next, {"t"}, {"b"}, "", "local");
    } else {
      *f.add_node() = make_node("Relu", {"a"}, {"b"});
    }
    *m.add_functions() = f;
  }
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {1});
  *g->add_node() = make_node("F0", {"x"}, {"y"}, "call", "local");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_SAYS(load_error(m), "function inlining expands the model to more than");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// ---- 8. outputs defined twice, Slice steps, pads

TEST(HostileFiles, OutputsDefinedTwiceAreRefused) {
  {
    onnx::ModelProto m = make_model(13);
    auto* g = m.mutable_graph();
    *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {4});
    *g->add_output() = tensor_info("a", onnx::TensorProto::FLOAT, {});
    *g->add_initializer() = int64_tensor("split", {2, 2});
    *g->add_node() = make_node("Split", {"x", "split"}, {"a", "a"}, "split");
    const std::string msg = load_error(m);
    EXPECT_SAYS(msg, "node 'split' (Split");
    EXPECT_SAYS(msg, "output 'a' is listed twice");
  }
  {
    onnx::ModelProto m = make_model(13);
    auto* g = m.mutable_graph();
    *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {4});
    *g->add_output() = tensor_info("a", onnx::TensorProto::FLOAT, {});
    *g->add_node() = make_node("Relu", {"x"}, {"a"}, "first");
    *g->add_node() = make_node("Neg", {"x"}, {"a"}, "second");
    EXPECT_SAYS(load_error(m), "output 'a' is already defined");
  }
}

TEST(HostileFiles, SliceWithExtremeStepsFollowsTheSpec) {
  auto slice = [](int64_t start, int64_t end, int64_t step) {
    onnx::ModelProto m = make_model(13);
    auto* g = m.mutable_graph();
    *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {10});
    *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
    *g->add_initializer() = int64_tensor("starts", {start});
    *g->add_initializer() = int64_tensor("ends", {end});
    *g->add_initializer() = int64_tensor("axes", {0});
    *g->add_initializer() = int64_tensor("steps", {step});
    *g->add_node() = make_node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"}, "slice");
    const std::string bytes = bytes_of(m);
    Tensor x(DType::kFloat32, {10});
    for (int i = 0; i < 10; ++i) x.data<float>()[i] = static_cast<float>(i);
    Tensor y = Session::load_bytes(bytes.data(), bytes.size()).run({{"x", x}})[0];
    return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
  };
  EXPECT_EQ(slice(0, 10, INT64_MAX), std::vector<float>{0});
  EXPECT_EQ(slice(3, INT64_MAX, INT64_MAX), std::vector<float>{3});
  EXPECT_EQ(slice(9, INT64_MIN, INT64_MIN), std::vector<float>{9});
  EXPECT_EQ(slice(-1, INT64_MIN, INT64_MIN + 1), std::vector<float>{9});
  EXPECT_EQ(slice(INT64_MAX, INT64_MIN, -4), (std::vector<float>{9, 5, 1}));
}

TEST(HostileFiles, PoolsWithAbsurdPadsAreRefused) {
  onnx::ModelProto m = make_model(13);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 1, 4, 4});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  onnx::NodeProto n = make_node("MaxPool", {"x"}, {"y"}, "pool");
  set_ints(n, "kernel_shape", {2, 2});
  set_ints(n, "pads", {INT64_MAX, 0, INT64_MAX, 0});
  *g->add_node() = n;
  const std::string msg = load_error(m);
  EXPECT_SAYS(msg, "node 'pool' (MaxPool");
  EXPECT_SAYS(msg, "out of range");
}

// ---- 7. work bounded

TEST(HostileFiles, DftOfAHugeLengthIsRefused) {
  onnx::ModelProto m = make_model(17);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 4, 1});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  *g->add_initializer() = int64_tensor("n", {int64_t{1} << 28});
  g->mutable_initializer(0)->clear_dims();  // a scalar
  *g->add_node() = make_node("DFT", {"x", "n"}, {"y"}, "dft");
  const std::string msg = run_error(m, {{"x", Tensor(DType::kFloat32, {1, 4, 1})}});
  EXPECT_SAYS(msg, "node 'dft' (DFT");
  EXPECT_SAYS(msg, "more than kiln's limit");
}

TEST(HostileFiles, MelWeightMatrixWithAHugeEdgeIsRefused) {
  onnx::ModelProto m = make_model(17);
  auto* g = m.mutable_graph();
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  auto scalar_i = [&](const std::string& name, int64_t v) {
    onnx::TensorProto t = int64_tensor(name, {v});
    t.clear_dims();
    *g->add_initializer() = t;
  };
  scalar_i("mels", 8);
  scalar_i("dft", 64);
  scalar_i("rate", 16000);
  *g->add_initializer() = float_tensor("lo", {}, {0});
  *g->add_initializer() = float_tensor("hi", {}, {1e15f});
  *g->add_node() = make_node("MelWeightMatrix", {"mels", "dft", "rate", "lo", "hi"}, {"y"}, "mel");
  const std::string msg = run_error(m, {});
  EXPECT_SAYS(msg, "node 'mel' (MelWeightMatrix");
  EXPECT_SAYS(msg, "upper_edge_hertz");
}

TEST(HostileFiles, RoiAlignWithAHugeSamplingRatioIsRefused) {
  onnx::ModelProto m = make_model(16);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 1, 4, 4});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  *g->add_initializer() = float_tensor("rois", {1, 4}, {0, 0, 3, 3});
  *g->add_initializer() = int64_tensor("batch", {0});
  onnx::NodeProto n = make_node("RoiAlign", {"x", "rois", "batch"}, {"y"}, "roi");
  set_int(n, "sampling_ratio", INT32_MAX);
  *g->add_node() = n;
  const std::string msg = run_error(m, {{"x", Tensor(DType::kFloat32, {1, 1, 4, 4})}});
  EXPECT_SAYS(msg, "node 'roi' (RoiAlign");
  EXPECT_SAYS(msg, "sampling_ratio");
}

TEST(HostileFiles, ScanOverAnEmptyButLongSequenceIsRefused) {
  onnx::ModelProto m = make_model(16);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 0}, {"L"});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  onnx::NodeProto n = make_node("Scan", {"x"}, {"y"}, "scan");
  set_int(n, "num_scan_inputs", 1);
  auto* body_attr = n.add_attribute();
  body_attr->set_name("body");
  body_attr->set_type(onnx::AttributeProto::GRAPH);
  onnx::GraphProto* body = body_attr->mutable_g();
  body->set_name("body");
  *body->add_input() = tensor_info("xi", onnx::TensorProto::FLOAT, {0});
  *body->add_output() = tensor_info("yi", onnx::TensorProto::FLOAT, {0});
  *body->add_node() = make_node("Identity", {"xi"}, {"yi"}, "id");
  *g->add_node() = n;
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = run_error(m, {{"x", Tensor(DType::kFloat32, {int64_t{1} << 40, 0})}});
  EXPECT_SAYS(msg, "node 'scan' (Scan");
  EXPECT_SAYS(msg, "sequence length");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// ---- 9. empty inputs stay empty

TEST(HostileFiles, EmptyInputsGiveEmptyOutputsWithoutScratch) {
  const int64_t wide = int64_t{1} << 40;
  {
    onnx::ModelProto m = make_model(13);
    auto* g = m.mutable_graph();
    *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {0, wide});
    *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
    *g->add_node() = make_node("Hardmax", {"x"}, {"y"}, "hardmax");
    const std::string bytes = bytes_of(m);
    std::vector<Tensor> y =
        Session::load_bytes(bytes.data(), bytes.size()).run({{"x", Tensor(DType::kFloat32, {0, wide})}});
    EXPECT_EQ(y[0].shape(), (Shape{0, wide}));
  }
  {
    onnx::ModelProto m = make_model(17);
    auto* g = m.mutable_graph();
    *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {0, wide});
    *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
    *g->add_initializer() = float_tensor("scale", {1}, {1});
    *g->add_node() = make_node("LayerNormalization", {"x", "scale"}, {"y"}, "ln");
    const std::string bytes = bytes_of(m);
    std::vector<Tensor> y =
        Session::load_bytes(bytes.data(), bytes.size()).run({{"x", Tensor(DType::kFloat32, {0, wide})}});
    EXPECT_EQ(y[0].shape(), (Shape{0, wide}));
  }
}

TEST(HostileFiles, ALongChainLoadsInLinearTime) {
  // 25k activations, fused into one node's epilogue: each absorbed node's
  // origins were copied and searched again (25k: 14 s; 100k: minutes).
  onnx::ModelProto m = make_model(13);
  auto* g = m.mutable_graph();
  const int n = 25000;
  *g->add_input() = tensor_info("v0", onnx::TensorProto::FLOAT, {1, 4});
  *g->add_output() = tensor_info("v" + std::to_string(n), onnx::TensorProto::FLOAT, {1, 4});
  for (int i = 0; i < n; ++i)
    *g->add_node() =
        make_node("Relu", {"v" + std::to_string(i)}, {"v" + std::to_string(i + 1)}, "r" + std::to_string(i));
  const std::string bytes = bytes_of(m);
  const auto start = std::chrono::steady_clock::now();
  Session s = Session::load_bytes(bytes.data(), bytes.size());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(s.run({{"v0", floats({1, 4}, {-1, 2, -3, 4})}})[0].data<float>()[1], 2.0f);
}

TEST(HostileFiles, OutOfMemoryInAKernelNamesTheNode) {
  // A kernel whose working buffer cannot be allocated (simulated: a real
  // one would need the memory) fails with a kiln::Error naming node and op.
  static const bool registered = [] {
    CustomOp op;
    op.domain = "test.hostile";
    op.name = "Greedy";
    op.min_inputs = op.max_inputs = 1;
    op.min_outputs = op.max_outputs = 1;
    op.input_types = {DType::kFloat32};
    op.infer = [](CustomOpShapeContext& c) { c.set_output(0, c.input_dtype(0), c.input_shape(0)); };
    op.compute = [](CustomOpKernelContext&) { throw std::bad_alloc(); };
    register_custom_op(op);
    return true;
  }();
  ASSERT_TRUE(registered);
  onnx::ModelProto m = make_model(13);
  add_opset(m, "test.hostile", 1);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {4});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {});
  *g->add_node() = make_node("Greedy", {"x"}, {"y"}, "greedy", "test.hostile");
  const std::string msg = run_error(m, {{"x", Tensor(DType::kFloat32, {4})}});
  EXPECT_SAYS(msg, "node 'greedy' (test.hostile:Greedy");
  EXPECT_SAYS(msg, "out of memory");
  EXPECT_SAYS(msg, "16 bytes of inputs");
}

// ---- 6. safetensors

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

TEST(HostileFiles, SafetensorsSharingOneRangeAreBounded) {
  // 4000 entries over the same 64 KiB: 256 MiB copied from a 64 KiB file.
  const size_t data_bytes = 64 * 1024;
  std::string header = "{";
  for (int i = 0; i < 4000; ++i)
    header += (i ? "," : "") + std::string("\"t") + std::to_string(i) +
              "\":{\"dtype\":\"U8\",\"shape\":[65536],\"data_offsets\":[0,65536]}";
  header += "}";
  std::string file = le64(header.size()) + header + std::string(data_bytes, '\0');
  const std::string msg = error_of([&] {
    load_weights_bytes({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, "shared.safetensors");
  });
  EXPECT_SAYS(msg, "shared.safetensors");
  EXPECT_SAYS(msg, "8 times its size");
  // The same entries, few enough, load.
  std::string small =
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[65536],\"data_offsets\":[0,65536]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[65536],\"data_offsets\":[0,65536]}}";
  std::string ok = le64(small.size()) + small + std::string(data_bytes, '\0');
  EXPECT_EQ(error_of([&] { load_weights_bytes({reinterpret_cast<const uint8_t*>(ok.data()), ok.size()}); }), "");
}

// ---- 9. .npy headers

std::string npy(const std::string& shape, size_t data_bytes) {
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string b = "\x93NUMPY";
  b += '\x01';
  b += '\x00';
  b += static_cast<char>(h.size() & 0xff);
  b += static_cast<char>(h.size() >> 8);
  return b + h + std::string(data_bytes, '\0');
}

TEST(HostileFiles, NpyShapesAreParsedStrictly) {
  EXPECT_EQ(parse_npy(npy("(4,)", 16), "a.npy").shape(), (Shape{4}));
  EXPECT_EQ(parse_npy(npy("(2, 3)", 24), "a.npy").shape(), (Shape{2, 3}));
  EXPECT_EQ(parse_npy(npy("()", 4), "a.npy").shape(), Shape{});
  for (const char* bad : {"(4abc,)", "(4.9,)", "(-4,)", "(,4)", "(4,,)", "(0x4,)", "(99999999999999999999,)"})
    EXPECT_SAYS(error_of([&] { parse_npy(npy(bad, 16), "a.npy"); }), "bad .npy shape") << bad;
}

// ---- 7, 9. external data only from regular files beside a regular model

onnx::ModelProto external_model() {
  onnx::ModelProto m = make_model(13);
  auto* g = m.mutable_graph();
  *g->add_output() = tensor_info("w", onnx::TensorProto::FLOAT, {4});
  onnx::TensorProto w;
  w.set_name("w");
  w.set_data_type(onnx::TensorProto::FLOAT);
  w.add_dims(4);
  w.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* loc = w.add_external_data();
  loc->set_key("location");
  loc->set_value("w.bin");
  *g->add_initializer() = w;
  return m;
}

class HostileFilesOnDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_hostile_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(HostileFilesOnDisk, ExternalDataFromAFifoIsRefused) {
  ASSERT_EQ(mkfifo((dir_ / "w.bin").c_str(), 0600), 0);
  write_file((dir_ / "model.onnx").string(), bytes_of(external_model()));
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { Session::load((dir_ / "model.onnx").string()); });
  EXPECT_SAYS(msg, "is not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(HostileFilesOnDisk, AModelReadFromAPipeHasNoFolder) {
  // w.bin lies beside the pipe, as /dev's files lie beside /dev/stdin.
  std::ofstream(dir_ / "w.bin", std::ios::binary) << std::string(16, '\0');
  const fs::path pipe = dir_ / "model.pipe";
  ASSERT_EQ(mkfifo(pipe.c_str(), 0600), 0);
  const std::string bytes = bytes_of(external_model());
  std::thread writer([&] { std::ofstream(pipe, std::ios::binary) << bytes; });
  const std::string msg = error_of([&] { Session::load(pipe.string()); });
  writer.join();
  EXPECT_SAYS(msg, "not loaded from a regular file");
  // From a regular file beside it, the same model loads.
  write_file((dir_ / "model.onnx").string(), bytes);
  EXPECT_EQ(error_of([&] { Session::load((dir_ / "model.onnx").string()); }), "");
}

}  // namespace
}  // namespace kiln
