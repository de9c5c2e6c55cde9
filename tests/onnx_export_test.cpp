// ONNX export: import -> export -> import gives the same graph and the same
// outputs, bit for bit, on ONNX backend node tests (subgraphs, tensor
// attributes, omitted optional inputs/outputs, strings), hand-built models,
// optimized graphs with kiln-domain ops, and weights kept outside the model
// (the external callback and the importer's resolver). The ONNX checker
// (python3-onnx) accepts what it writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "core/file.h"
#include "ir/infer.h"
#include "kernels/cpu/cpu_isa.h"
#include "kiln/session.h"
#include "kiln/tensor_io.h"
#include "model_builder.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "op_harness.h"
#include "passes/pass_manager.h"
#include "runtime/executor.h"

namespace kiln::test {

namespace fs = std::filesystem;

namespace {

// Backend tests with tensor inputs and outputs that kiln passes, chosen for
// what the exporter must carry: subgraphs with outer-scope references
// (If, Loop, Scan, functions expanded into Loops), tensor attributes
// (ConstantOfShape; Constant nodes, folded into initializers), omitted
// optional inputs and outputs, string tensors and several dtypes.
const char* const kBackendTests[] = {
    "test_if",
    "test_loop11",
    "test_scan9_sum",
    "test_scan9_multi_state",
    "test_scan_sum",  // Scan-8: an omitted sequence_lens input
    "test_range_float_type_positive_delta_expanded",
    "test_affine_grid_2d_expanded",
    "test_constant",
    "test_constantofshape_float_ones",
    "test_constantofshape_int_zeros",
    "test_celu_expanded",
    "test_dynamicquantizelinear_expanded",
    "test_clip_default_min",
    "test_dropout_default_mask",
    "test_lstm_defaults",
    "test_gru_with_initial_bias",
    "test_maxpool_with_argmax_2d_precomputed_pads",
    "test_resize_downsample_scales_linear",
    "test_layer_normalization_2d_axis0",
    "test_batchnorm_epsilon_training_mode",
    "test_split_variable_parts_default_axis_opset18",
    "test_unique_sorted_with_axis",
    "test_equal_string",
    "test_equal_string_broadcast",
    "test_conv_with_strides_padding",
    "test_convtranspose_pads",
    "test_qlinearconv",
    "test_dequantizelinear",
    "test_gemm_all_attributes",
    "test_softmax_axis_0",
    "test_einsum_batch_matmul",
    "test_nonzero_example",
    "test_reshape_allowzero_reordered",
    "test_cast_FLOAT_to_FLOAT16",
    "test_mod_mixed_sign_int64",
    "test_bitshift_left_uint16",
};

// Backend tests whose opset the checker of python3-onnx 1.12 knows (<= 17).
const char* const kCheckerBackendTests[] = {
    "test_if",
    "test_loop11",
    "test_scan9_sum",
    "test_scan_sum",
    "test_dynamicquantizelinear_expanded",
    "test_clip_default_min",
    "test_layer_normalization_2d_axis0",
    "test_batchnorm_epsilon_training_mode",
    "test_unique_sorted_with_axis",
    "test_gemm_all_attributes",
    "test_softmax_axis_0",
};

// The node tests' folder: $KILN_ONNX_BACKEND_TESTS, else the CMake option's.
fs::path backend_dir() {
  const char* env = std::getenv("KILN_ONNX_BACKEND_TESTS");
  return fs::path(env && *env ? env : KILN_ONNX_BACKEND_TESTS) / "node";
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/kiln-export-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

Model import(const std::string& bytes) { return load_onnx_bytes(bytes.data(), bytes.size()); }

// One thread, so that nothing depends on how work is split.
Session session(const std::string& bytes, int opt_level = 2) {
  SessionOptions o;
  o.threads = 1;
  o.opt_level = opt_level;
  return Session::load_bytes(bytes.data(), bytes.size(), o);
}

::testing::AssertionResult identical(const Tensor& got, const Tensor& want) {
  if (got.defined() != want.defined()) return ::testing::AssertionFailure() << "one output is absent";
  if (!want.defined()) return ::testing::AssertionSuccess();
  if (got.dtype() != want.dtype() || got.shape() != want.shape())
    return ::testing::AssertionFailure() << dtype_name(got.dtype()) << "[" << shape_str(got.shape()) << "] vs "
                                         << dtype_name(want.dtype()) << "[" << shape_str(want.shape()) << "]";
  if (want.dtype() == DType::kString) {
    for (int64_t i = 0; i < want.numel(); ++i)
      if (got.data<std::string>()[i] != want.data<std::string>()[i])
        return ::testing::AssertionFailure() << "string " << i << " differs";
  } else if (want.nbytes() && std::memcmp(got.raw(), want.raw(), want.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "the bytes differ";
  }
  return ::testing::AssertionSuccess();
}

void expect_identical(const std::vector<Tensor>& got, const std::vector<Tensor>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(identical(got[i], want[i])) << what << ": output " << i;
}

// Exports a freshly imported model and checks what the importer reads back:
// metadata, graph shape, and that exporting again gives the same bytes
// (nothing lost or renamed on the way). Returns the exported bytes.
std::string round_trip(const std::string& original, const std::string& what) {
  Model a = import(original);
  std::string exported = export_onnx(a);
  Model b = import(exported);
  EXPECT_EQ(b.graph->name, a.graph->name) << what;
  EXPECT_EQ(b.opsets, a.opsets) << what;
  EXPECT_EQ(b.ir_version, std::max<int64_t>(a.ir_version, 8)) << what;
  EXPECT_EQ(b.producer_name, a.producer_name.empty() ? "kiln" : a.producer_name) << what;
  EXPECT_EQ(b.graph->nodes.size(), a.graph->nodes.size()) << what;
  EXPECT_EQ(b.graph->inputs.size(), a.graph->inputs.size()) << what;
  for (size_t i = 0; i < a.graph->inputs.size() && i < b.graph->inputs.size(); ++i) {
    EXPECT_EQ(b.graph->inputs[i]->name, a.graph->inputs[i]->name) << what;
    EXPECT_EQ(b.graph->inputs[i]->type.str(), a.graph->inputs[i]->type.str()) << what;
    EXPECT_EQ(b.graph->inputs[i]->initializer.has_value(), a.graph->inputs[i]->initializer.has_value()) << what;
  }
  EXPECT_EQ(b.graph->dump(), a.graph->dump()) << what;
  EXPECT_TRUE(export_onnx(b) == exported) << what << ": exporting the re-imported model changed the bytes";
  return exported;
}

// A model for what backend tests lack: a symbolic batch dim, an initializer
// that is also an input, a string initializer, value_info, an If whose
// branches read the outer graph, an omitted optional input, producer data.
onnx::ModelProto feature_model() {
  onnx::ModelProto m = make_model(17, 8);
  m.set_producer_name("kiln-export-test");
  m.set_producer_version("1.2.3");
  auto* g = m.mutable_graph();
  g->set_name("features");
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  *g->add_input() = tensor_info("w", onnx::TensorProto::FLOAT, {3});
  *g->add_input() = tensor_info("flag", onnx::TensorProto::BOOL, {});
  *g->add_input() = tensor_info("word", onnx::TensorProto::STRING, {2});
  *g->add_initializer() = float_tensor("w", {3}, {1, 2, 3});
  *g->add_initializer() = float_tensor("hi", {}, {4});
  onnx::TensorProto vocab;
  vocab.set_name("vocab");
  vocab.set_data_type(onnx::TensorProto::STRING);
  vocab.add_dims(2);
  vocab.add_string_data("cat");
  vocab.add_string_data("dog");
  *g->add_initializer() = vocab;
  *g->add_value_info() = tensor_info("s", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  *g->add_node() = make_node("Add", {"x", "w"}, {"s"}, "add");
  onnx::NodeProto iff = make_node("If", {"flag"}, {"picked"}, "if");
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = iff.add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* body = a->mutable_g();
    body->set_name(branch);
    std::string out = std::string(branch) + "_out";
    if (branch[0] == 't')
      *body->add_node() = make_node("Mul", {"s", "s"}, {out}, "square");
    else
      *body->add_node() = make_node("Neg", {"s"}, {out}, "negate");
    *body->add_output() = tensor_info(out, onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  }
  *g->add_node() = iff;
  *g->add_node() = make_node("Clip", {"picked", "", "hi"}, {"clipped"}, "clip");
  *g->add_node() = make_node("Equal", {"word", "vocab"}, {"same"}, "equal");
  *g->add_output() = tensor_info("clipped", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  *g->add_output() = tensor_info("same", onnx::TensorProto::BOOL, {2});
  return m;
}

void add_scalar(onnx::GraphProto* g, const std::string& name, float v) {
  *g->add_initializer() = float_tensor(name, {}, {v});
}

// A conv net the optimizer rewrites thoroughly: a BatchNormalization to
// fold, Conv+Relu epilogues, a residual Add (a kiln.BlockedConv with a sum
// input at the Conv's opset, beside kiln ops at opset 1), pooling, and an
// erf GELU that becomes a Gelu-20 node in this opset-17 model.
onnx::ModelProto conv_net() {
  onnx::ModelProto m = make_model(17, 8);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, 3, 12, 12});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, 16});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  auto weights = [&](const std::string& name, std::vector<int64_t> dims, float lo = 0) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = lo + u(rng);
    *g->add_initializer() = float_tensor(name, dims, v);
  };
  auto conv = [&](const std::string& in, const std::string& w, const std::string& out) {
    onnx::NodeProto c = make_node("Conv", {in, w}, {out}, out);
    auto* pads = c.add_attribute();
    pads->set_name("pads");
    pads->set_type(onnx::AttributeProto::INTS);
    for (int k = 0; k < 4; ++k) pads->add_ints(1);
    *g->add_node() = c;
  };
  weights("w1", {16, 3, 3, 3});
  weights("w2", {16, 16, 3, 3});
  weights("bn_scale", {16}, 1);
  weights("bn_bias", {16});
  weights("bn_mean", {16});
  weights("bn_var", {16}, 1);
  conv("x", "w1", "c1");
  *g->add_node() = make_node("BatchNormalization", {"c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, {"bn"}, "bn");
  *g->add_node() = make_node("Relu", {"bn"}, {"r1"}, "relu1");
  conv("r1", "w2", "c2");
  *g->add_node() = make_node("Add", {"c2", "r1"}, {"res"}, "residual");
  *g->add_node() = make_node("Relu", {"res"}, {"r2"}, "relu2");
  *g->add_node() = make_node("GlobalAveragePool", {"r2"}, {"pool"}, "pool");
  *g->add_node() = make_node("Flatten", {"pool"}, {"flat"}, "flatten");
  add_scalar(g, "sqrt2", 1.4142135f);
  add_scalar(g, "one", 1);
  add_scalar(g, "half", 0.5f);
  *g->add_node() = make_node("Div", {"flat", "sqrt2"}, {"scaled"}, "gelu_div");
  *g->add_node() = make_node("Erf", {"scaled"}, {"erf"}, "gelu_erf");
  *g->add_node() = make_node("Add", {"erf", "one"}, {"erf1"}, "gelu_add");
  *g->add_node() = make_node("Mul", {"flat", "erf1"}, {"xerf"}, "gelu_mul");
  *g->add_node() = make_node("Mul", {"xerf", "half"}, {"y"}, "gelu_half");
  return m;
}

// The conv net imported and optimized as Session::load would (level 2).
Model optimized_conv_net() {
  Model m = import(bytes_of(conv_net()));
  std::vector<std::string> unsupported;
  infer_graph(*m.graph, &unsupported);
  EXPECT_TRUE(unsupported.empty());
  passes::PassOptions o;
  o.opt_level = 2;
  passes::optimize(*m.graph, o);
  return m;
}

std::vector<Tensor> run_graph(Graph& g, const std::vector<Tensor>& feed) {
  std::vector<std::string> unsupported;
  infer_graph(g, &unsupported);
  EXPECT_TRUE(unsupported.empty());
  return CompiledGraph::compile(g)->run(feed, nullptr);
}

// "domain.op" of every node, in order, for comparing graphs by their ops.
std::string ops_of(const Graph& g) {
  std::string s;
  for (const auto& n : g.nodes) s += (n->domain.empty() ? "" : n->domain + ".") + n->op_type + " ";
  return s;
}

int count_domain(const Graph& g, const std::string& domain) {
  int k = 0;
  for (const auto& n : g.nodes) k += n->domain == domain;
  return k;
}

Tensor string_tensor(Shape s, std::vector<std::string> v) { return Tensor::from_strings(std::move(s), std::move(v)); }

// Appends every initializer's bytes to `blob` (at 64-byte offsets) and
// records where, for the external callback; the resolver then wraps a
// 64-byte aligned copy, as a file mapped in memory would be.
struct SideBuffer {
  std::string blob;
  Tensor aligned;
  std::map<std::string, ExternalRef> refs;

  bool store(const Value& v, const Tensor& t, ExternalRef* ref) {
    auto it = refs.find(v.name);
    if (it == refs.end()) {
      if (!t.raw()) return false;  // freed before it was ever stored
      blob.resize((blob.size() + 63) / 64 * 64);
      ExternalRef r{"weights.bin", static_cast<int64_t>(blob.size()), static_cast<int64_t>(t.nbytes())};
      blob.append(static_cast<const char*>(t.raw()), t.nbytes());
      it = refs.emplace(v.name, r).first;
    }
    *ref = it->second;
    return true;
  }
  void freeze() {
    aligned = Tensor(DType::kUInt8, {static_cast<int64_t>(blob.size())});
    std::memcpy(aligned.raw(), blob.data(), blob.size());
  }
  char* at(int64_t offset) { return aligned.data<char>() + offset; }
  // A resolver that wraps the frozen buffer in place (no copy).
  ExternalResolver resolver() {
    return [this](const ExternalRef& ref, DType dtype, const Shape& shape, const std::string&) {
      if (ref.location != "weights.bin" || ref.offset + ref.length > aligned.numel())
        throw Error("no such external data");
      return Tensor::wrap(dtype, shape, at(ref.offset));
    };
  }
};

}  // namespace

TEST(OnnxExport, BackendNodeTestsRoundTrip) {
  const fs::path dir = backend_dir();
  if (!fs::exists(dir)) GTEST_SKIP() << "no ONNX backend tests at " << dir;
  for (const char* name : kBackendTests) {
    SCOPED_TRACE(name);
    const fs::path test = dir / name;
    ASSERT_TRUE(fs::exists(test / "model.onnx"));
    const std::string original = read_file((test / "model.onnx").string());
    const std::string exported = round_trip(original, name);
    Session want = session(original), got = session(exported);
    std::vector<std::pair<std::string, Tensor>> feed;
    for (size_t k = 0;; ++k) {
      const fs::path in = test / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb");
      if (!fs::exists(in)) break;
      feed.emplace_back(want.inputs()[k].name, load_tensor_pb(in.string()));
    }
    expect_identical(got.run(feed), want.run(feed), name);
  }
}

TEST(OnnxExport, HandBuiltModelsRoundTrip) {
  {
    const std::string original = bytes_of(conv_chain_model(3));
    const std::string exported = round_trip(original, "conv chain");
    std::mt19937 rng(1);
    Tensor x = random_f32({2, 8, 16, 16}, rng);
    expect_identical(session(exported).run({{"x", x}}), session(original).run({{"x", x}}), "conv chain");
  }
  const std::string original = bytes_of(feature_model());
  const std::string exported = round_trip(original, "features");
  Model back = import(exported);
  EXPECT_EQ(back.producer_name, "kiln-export-test");
  EXPECT_EQ(back.producer_version, "1.2.3");
  EXPECT_EQ(back.graph->inputs[0]->type.str(), "float[Nx3]");
  EXPECT_EQ(back.graph->find("s")->type.str(), "float[Nx3]");  // value_info
  ASSERT_TRUE(back.graph->find("vocab")->initializer);
  EXPECT_EQ(back.graph->find("vocab")->initializer->data<std::string>()[1], "dog");
  const Node* clip = nullptr;
  for (const auto& n : back.graph->nodes)
    if (n->name == "clip") clip = n.get();
  ASSERT_NE(clip, nullptr);
  EXPECT_EQ(clip->inputs.size(), 3u);
  EXPECT_EQ(clip->inputs[1], nullptr);
  Session want = session(original), got = session(exported);
  ASSERT_EQ(got.inputs().size(), 4u);
  EXPECT_TRUE(got.inputs()[1].has_default);
  EXPECT_EQ(got.inputs()[0].shape[0].symbol, "N");
  Tensor x = make_f32({2, 3}, {-3, -2, -1, 0, 1, 2});
  Tensor word = string_tensor({2}, {"cat", "cow"});
  for (bool flag : {true, false}) {
    std::vector<std::pair<std::string, Tensor>> feed = {{"x", x}, {"flag", make_bool({}, {flag})}, {"word", word}};
    expect_identical(got.run(feed), want.run(feed), flag ? "then" : "else");
  }
}

// An optimized graph written out and read back runs as it is (opt level 0):
// the same ops, kiln's included, and the same outputs as the optimized graph.
TEST(OnnxExport, OptimizedGraphRoundTrip) {
  Model opt = optimized_conv_net();
  const bool blocked = cpu_isa_selected() >= CpuIsa::kAvx2;  // else the layout pass keeps convs plain
  if (blocked) {
    EXPECT_GT(count_domain(*opt.graph, "kiln"), 0) << ops_of(*opt.graph);
  }
  EXPECT_NE(ops_of(*opt.graph).find("Gelu"), std::string::npos) << ops_of(*opt.graph);
  const std::string exported = export_onnx(opt);
  onnx::ModelProto mp;
  ASSERT_TRUE(mp.ParseFromString(exported));
  EXPECT_EQ(mp.functions_size(), 1);  // the Gelu-20, in an opset-17 model

  Model back = import(exported);
  EXPECT_EQ(back.opsets.at(""), 17);
  if (blocked) {
    EXPECT_EQ(back.opsets.count("kiln"), 1u);
  }
  std::vector<std::string> unsupported;
  infer_graph(*back.graph, &unsupported);
  EXPECT_TRUE(unsupported.empty());
  EXPECT_EQ(ops_of(*back.graph), ops_of(*opt.graph));
  for (const auto& n : back.graph->nodes) {
    if (n->op_type != "Gelu") continue;
    EXPECT_EQ(n->opset, 20);  // through a function with its own opset_import
  }

  std::mt19937 rng(5);
  Tensor x = random_f32({2, 3, 12, 12}, rng);
  const std::vector<Tensor> want = run_graph(*opt.graph, {x});
  expect_identical(run_graph(*back.graph, {x}), want, "re-imported graph");
  Session s = session(exported, /*opt_level=*/0);
  EXPECT_EQ(s.num_nodes(), opt.graph->nodes.size());
  expect_identical(s.run({{"x", x}}), want, "session at opt level 0");
}

// Every initializer goes to a side buffer through the callback and comes
// back through the resolver, which wraps the buffer in place; also after
// compile freed the weights its kernels packed.
TEST(OnnxExport, ExternalCallbackAndResolverRoundTrip) {
  Model opt = optimized_conv_net();
  SideBuffer side;
  OnnxExportOptions options;
  options.external = [&](const Value& v, const Tensor& t, ExternalRef* ref) { return side.store(v, t, ref); };
  const std::string exported = export_onnx(opt, options);
  side.freeze();
  EXPECT_FALSE(side.refs.empty());
  EXPECT_LT(exported.size(), side.blob.size());  // the weights are not inline

  std::mt19937 rng(6);
  Tensor x = random_f32({2, 3, 12, 12}, rng);
  const std::vector<Tensor> want = run_graph(*opt.graph, {x});
  Model back = load_onnx_bytes(exported.data(), exported.size(), side.resolver());
  for (const auto& v : back.graph->values) {
    if (!v->initializer || !side.refs.count(v->name)) continue;
    EXPECT_EQ(v->initializer->raw(), side.at(side.refs.at(v->name).offset)) << v->name;  // wrapped, not copied
  }
  expect_identical(run_graph(*back.graph, {x}), want, "resolved");
  // Without a resolver the same bytes need a folder to read weights.bin from.
  EXPECT_THROW(import(exported), Error);

  // compile frees the constants that its kernels packed: only the callback
  // can still export them.
  auto compiled = CompiledGraph::compile(*opt.graph, false, opt.graph.get());
  if (compiled->freed_constant_bytes() > 0) {
    try {
      export_onnx(opt);
      ADD_FAILURE() << "exported an initializer without data";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("has no data"), std::string::npos) << e.what();
    }
    const std::string again = export_onnx(opt, options);
    Model back2 = load_onnx_bytes(again.data(), again.size(), side.resolver());
    expect_identical(run_graph(*back2.graph, {x}), want, "resolved after freeing");
  }
}

TEST(OnnxExport, FreedInitializerNeedsTheCallback) {
  Model m = import(bytes_of(conv_chain_model(2)));
  Value* w = m.graph->find("w1");
  w->initializer = Tensor::wrap(DType::kFloat32, w->initializer->shape(), nullptr);
  try {
    export_onnx(m);
    FAIL() << "exported an initializer without data";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'w1'"), std::string::npos) << e.what();
  }
  // The callback may point at data stored earlier; it must give the length.
  OnnxExportOptions options;
  options.external = [](const Value& v, const Tensor& t, ExternalRef* ref) {
    if (v.name != "w1") return false;
    *ref = {"w1.bin", 0, static_cast<int64_t>(t.nbytes())};
    return true;
  };
  std::string bytes = export_onnx(m, options);
  int calls = 0;
  Model back = load_onnx_bytes(bytes.data(), bytes.size(),
                               [&](const ExternalRef& ref, DType dtype, const Shape& shape, const std::string& name) {
                                 ++calls;
                                 EXPECT_EQ(ref.location, "w1.bin");
                                 EXPECT_EQ(name, "w1");
                                 return Tensor::wrap(dtype, shape, nullptr);  // a tensor with no data
                               });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(back.graph->find("w1")->initializer->raw(), nullptr);
  EXPECT_EQ(back.graph->find("w1")->initializer->shape(), w->initializer->shape());
  // A wrong length from the callback is refused, naming the value.
  options.external = [](const Value& v, const Tensor&, ExternalRef* ref) {
    *ref = {"w.bin", 0, 1};
    return v.name == "w1";
  };
  try {
    export_onnx(m, options);
    FAIL() << "accepted a wrong external length";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'w1'"), std::string::npos) << e.what();
  }
}

TEST(OnnxExport, ResolverErrorsNameTheTensor) {
  Model m = import(bytes_of(conv_chain_model(2)));
  OnnxExportOptions options;
  options.external = [](const Value&, const Tensor& t, ExternalRef* ref) {
    *ref = {"all.bin", 0, static_cast<int64_t>(t.nbytes())};
    return true;
  };
  const std::string bytes = export_onnx(m, options);
  auto expect_error = [&](const ExternalResolver& r, const std::string& fragment) {
    try {
      load_onnx_bytes(bytes.data(), bytes.size(), r);
      ADD_FAILURE() << "no error for " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("initializer '"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error([](const ExternalRef&, DType, const Shape&, const std::string&) -> Tensor { throw Error("gone"); },
               "gone");
  expect_error([](const ExternalRef&, DType dtype, const Shape&, const std::string&) { return Tensor(dtype, {1}); },
               "returned");
}

// Tensor attributes go through the resolver too; a missing length is the
// tensor's byte size.
TEST(OnnxExport, ResolverServesTensorAttributes) {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2});
  onnx::NodeProto c = make_node("Constant", {}, {"k"}, "k");
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  auto* t = a->mutable_t();
  t->set_name("k_value");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(2);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value("k.bin");
  *g->add_node() = c;
  *g->add_node() = make_node("Add", {"x", "k"}, {"y"}, "add");
  const std::string bytes = bytes_of(m);
  float k[2] = {10, 20};
  Model back = load_onnx_bytes(bytes.data(), bytes.size(),
                               [&](const ExternalRef& ref, DType dtype, const Shape& shape, const std::string& name) {
                                 EXPECT_EQ(ref.location, "k.bin");
                                 EXPECT_EQ(ref.offset, 0);
                                 EXPECT_EQ(ref.length, 8);
                                 EXPECT_EQ(name, "k_value");
                                 return Tensor::wrap(dtype, shape, k);
                               });
  std::vector<Tensor> y = run_graph(*back.graph, {make_f32({2}, {1, 2})});
  EXPECT_TRUE(all_close(y[0], make_f32({2}, {11, 22}), 0, 0));
}

// The ONNX checker of python3-onnx accepts exported standard-domain models.
TEST(OnnxExport, OnnxCheckerAcceptsExports) {
  if (std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-onnx is not installed";
  TempDir tmp;
  std::vector<std::pair<std::string, std::string>> models = {{"conv_chain", bytes_of(conv_chain_model(3))},
                                                             {"features", bytes_of(feature_model())},
                                                             {"conv_net", bytes_of(conv_net())}};
  const fs::path dir = backend_dir();
  if (fs::exists(dir))
    for (const char* name : kCheckerBackendTests)
      models.emplace_back(name, read_file((dir / name / "model.onnx").string()));
  std::string paths;
  for (const auto& [name, bytes] : models) {
    const fs::path p = tmp.path / (name + ".onnx");
    save_onnx(import(bytes), p.string());
    paths += " '" + p.string() + "'";
  }
  const std::string script =
      "import onnx, sys\n"
      "bad = 0\n"
      "for p in sys.argv[1:]:\n"
      "    try:\n"
      "        onnx.checker.check_model(onnx.load(p))\n"
      "    except Exception as e:\n"
      "        bad += 1\n"
      "        print(p, e)\n"
      "sys.exit(1 if bad else 0)\n";
  const fs::path py = tmp.path / "check.py";
  write_file(py.string(), script);
  FILE* f = popen(("/usr/bin/python3 '" + py.string() + "'" + paths + " 2>&1").c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  EXPECT_EQ(pclose(f), 0) << out;
}

}  // namespace kiln::test
