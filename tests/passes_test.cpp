// Graph optimizer: each pass on a small model. Every test runs the model
// before and after the pass on the same random inputs and checks that the
// outputs agree, and that the pattern was actually rewritten (the op list).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <thread>

#include "core/thread_pool.h"
#include "ir/epilogue.h"
#include "ir/infer.h"
#include "ir/rewrite.h"
#include "ir/verify.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/dnnl_glue.h"
#include "kiln/session.h"
#include "model_builder.h"
#include "onnx/import.h"
#include "op_harness.h"
#include "passes/pass_manager.h"
#include "runtime/executor.h"

namespace kiln::test {

namespace {

// A model under construction: inputs, constants and nodes by name.
struct Builder {
  onnx::ModelProto m;
  explicit Builder(int opset = 17) : m(make_model(opset)) {}
  onnx::GraphProto* g() { return m.mutable_graph(); }
  Builder& input(const std::string& name, std::vector<int64_t> dims) {
    *g()->add_input() = tensor_info(name, onnx::TensorProto::FLOAT, dims);
    return *this;
  }
  Builder& output(const std::string& name) {
    g()->add_output()->set_name(name);
    return *this;
  }
  Builder& constant(const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    *g()->add_initializer() = float_tensor(name, dims, v);
    return *this;
  }
  Builder& random_constant(const std::string& name, std::vector<int64_t> dims, float lo = -1, float hi = 1) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>()(name)));
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = u(rng);
    return constant(name, dims, v);
  }
  Builder& ints(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> v) {
    onnx::TensorProto* t = g()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t x : v) t->add_int64_data(x);
    return *this;
  }
  onnx::NodeProto* node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
    onnx::NodeProto* n = g()->add_node();
    *n = make_node(op, in, out, op + "_" + std::to_string(g()->node_size()));
    return n;
  }
};

void set_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void set_float(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void set_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

Model load(const Builder& b) {
  std::string bytes = bytes_of(b.m);
  Model model = load_onnx_bytes(bytes.data(), bytes.size());
  std::vector<std::string> unsupported;
  infer_graph(*model.graph, &unsupported);
  EXPECT_TRUE(unsupported.empty());
  return model;
}

std::vector<Tensor> run(const Graph& g, const std::vector<Tensor>& feed) {
  return CompiledGraph::compile(g)->run(feed, nullptr);
}

// The layout pass only blocks convs oneDNN runs with a JIT kernel, which it
// has for AVX2 and up: below that (KILN_CPU_ISA=scalar) convs stay plain.
bool blocked_convs_available() { return cpu_isa_selected() >= CpuIsa::kAvx2; }

// The node lists some layout tests expect are the pass's choices with AVX2's
// 8-channel blocks; with AVX-512's 16-channel blocks (and its own oneDNN
// kernels) the pass rightly leaves some of their odd-width convs plain.
// Outputs are checked at every ISA (check_passes); the node lists only with
// 8-channel blocks, which ctest also runs on AVX-512 machines (test
// unit_avx2: KILN_CPU_ISA=avx2).
bool blocks_of_avx2() { return dnnl_glue::channel_block() == 8; }

// "Conv+Relu" for a Conv with a Relu epilogue.
std::string ops_of(const Graph& g) {
  std::string s;
  for (const auto& n : g.nodes) {
    if (!s.empty()) s += " ";
    s += n->op_type;
    if (has_epilogue(*n)) s += "+" + epilogue_str(*n);
  }
  return s;
}

// Runs one pass by name on a linked graph.
bool run_pass(Graph& g, const std::string& name) {
  g.relink();
  for (const passes::Pass& p : passes::all_passes())
    if (p.name == name) return p.run(g);
  ADD_FAILURE() << "no pass " << name;
  return false;
}

// Runs the named passes (then dead-code elimination) on the model, checks
// the result against the unoptimized model on random inputs, and returns
// the optimized graph's ops.
std::string check_passes(const Builder& b, std::vector<std::string> names, double rtol = 1e-5, double atol = 1e-5) {
  Model ref = load(b), opt = load(b);
  names.push_back("eliminate_dead_code");
  bool changed = false;
  for (const std::string& name : names)
    for (const passes::Pass& p : passes::all_passes())
      if (p.name == name) {
        opt.graph->relink();
        changed |= p.run(*opt.graph);
        erase_detached_nodes(*opt.graph);
        opt.graph->sort_topologically();
        std::vector<std::string> unsupported;
        infer_graph(*opt.graph, &unsupported);
        EXPECT_TRUE(unsupported.empty()) << name;
        verify_graph(*opt.graph);
        break;
      }
  EXPECT_TRUE(changed);
  std::mt19937 rng(7);
  std::vector<Tensor> feed;
  for (const Value* in : ref.graph->inputs) feed.push_back(random_f32(in->type.static_shape(), rng, -3, 3));
  std::vector<Tensor> want = run(*ref.graph, feed), got = run(*opt.graph, feed);
  EXPECT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    EXPECT_EQ(ref.graph->outputs[i]->name, opt.graph->outputs[i]->name);
    EXPECT_TRUE(all_close(got[i], want[i], rtol, atol)) << "output " << i;
  }
  return ops_of(*opt.graph);
}

}  // namespace

TEST(Passes, FoldConstantsRunsNodesOnInitializers) {
  Builder b;
  b.input("x", {2, 3}).output("y").random_constant("a", {3}).random_constant("c", {3});
  b.node("Add", {"a", "c"}, {"s"});
  b.node("Exp", {"s"}, {"e"});
  b.node("Mul", {"x", "e"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_constants"}), "Mul");
}

TEST(Passes, FoldConstantsLeavesRandomOpsAlone) {
  Builder b;
  b.input("x", {2, 3}).output("y").random_constant("a", {2, 3});
  b.node("Bernoulli", {"a"}, {"r"});
  b.node("Mul", {"x", "r"}, {"y"});
  Model m = load(b);
  EXPECT_FALSE(run_pass(*m.graph, "fold_constants"));
}

TEST(Passes, FoldShapeFoldsTheReshapeChain) {
  // y = Reshape(x, Concat(Unsqueeze(Shape(x)[0]), [-1])): PyTorch's flatten.
  Builder b;
  b.input("x", {2, 3, 4}).output("y").ints("zero", {}, {0}).ints("axes", {1}, {0}).ints("minus1", {1}, {-1});
  b.node("Shape", {"x"}, {"s"});
  set_int(b.node("Gather", {"s", "zero"}, {"n"}), "axis", 0);
  b.node("Unsqueeze", {"n", "axes"}, {"nu"});
  set_int(b.node("Concat", {"nu", "minus1"}, {"shape"}), "axis", 0);
  b.node("Reshape", {"x", "shape"}, {"r"});
  b.node("Relu", {"r"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_shape", "fold_constants", "fold_constants", "fold_constants"}), "Reshape Relu");
}

TEST(Passes, FoldShapeFoldsKnownDimsOfASymbolicShape) {
  Builder b;
  *b.g()->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  b.output("y").ints("one", {}, {1});
  b.node("Shape", {"x"}, {"s"});
  set_int(b.node("Gather", {"s", "one"}, {"c"}), "axis", 0);
  b.node("Cast", {"c"}, {"cf"})->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("to");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(onnx::TensorProto::FLOAT);
    return a;
  }());
  b.node("Mul", {"x", "cf"}, {"y"});
  Model m = load(b);
  passes::PassOptions o;
  o.verify = true;
  passes::optimize(*m.graph, o);
  EXPECT_EQ(ops_of(*m.graph), "Mul") << m.graph->dump();
}

TEST(Passes, DeadCodeGoesWithItsInitializers) {
  Builder b;
  b.input("x", {2, 3}).output("y").random_constant("w", {3}).random_constant("unused", {5});
  b.node("Mul", {"x", "w"}, {"dead"});
  b.node("Relu", {"x"}, {"y"});
  Model m = load(b);
  EXPECT_TRUE(run_pass(*m.graph, "eliminate_dead_code"));
  verify_graph(*m.graph);
  EXPECT_EQ(ops_of(*m.graph), "Relu");
  EXPECT_EQ(m.graph->find("w"), nullptr);
  EXPECT_EQ(m.graph->find("unused"), nullptr);
}

TEST(Passes, IdentityEliminationKeepsOutputNames) {
  Builder b(11);
  b.input("x", {2, 3}).output("y").output("z");
  b.node("Identity", {"x"}, {"i"});
  b.node("Dropout", {"i"}, {"d"});
  b.node("Relu", {"d"}, {"r"});
  b.node("Identity", {"r"}, {"y"});  // a graph output: Relu takes its name
  b.node("Identity", {"x"}, {"z"});  // must stay: x is a graph input
  EXPECT_EQ(check_passes(b, {"eliminate_identity"}), "Identity Relu");
}

TEST(Passes, CommonSubexpressionsAreMerged) {
  Builder b;
  b.input("x", {2, 3}).output("y").ints("axes_a", {1}, {0}).ints("axes_b", {1}, {0});
  b.node("Relu", {"x"}, {"r1"});
  b.node("Relu", {"x"}, {"r2"});
  b.node("Unsqueeze", {"r1", "axes_a"}, {"u1"});
  b.node("Unsqueeze", {"r2", "axes_b"}, {"u2"});
  b.node("Add", {"u1", "u2"}, {"y"});
  EXPECT_EQ(check_passes(b, {"eliminate_common_subexpressions"}), "Relu Unsqueeze Add");
}

TEST(Passes, BatchNormFoldsIntoConv) {
  Builder b;
  b.input("x", {1, 3, 7, 6}).output("y").random_constant("w", {4, 3, 3, 3}).random_constant("bias", {4});
  b.random_constant("scale", {4}).random_constant("shift", {4}).random_constant("mean", {4});
  b.random_constant("var", {4}, 0.5f, 2.0f);
  set_ints(b.node("Conv", {"x", "w", "bias"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c", "scale", "shift", "mean", "var"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_batchnorm"}, 1e-4), "Conv");
}

TEST(Passes, BatchNormFoldsIntoGemm) {
  Builder b;
  b.input("x", {3, 5}).output("y").random_constant("w", {4, 5}).random_constant("scale", {4});
  b.random_constant("shift", {4}).random_constant("mean", {4}).random_constant("var", {4}, 0.5f, 2.0f);
  set_int(b.node("Gemm", {"x", "w"}, {"c"}), "transB", 1);
  b.node("BatchNormalization", {"c", "scale", "shift", "mean", "var"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_batchnorm"}, 1e-4), "Gemm");
}

TEST(Passes, ConvBiasAddMovesIntoTheConv) {
  Builder b;
  b.input("x", {1, 2, 5, 5}).output("y").random_constant("w", {3, 2, 1, 1}).random_constant("b", {3, 1, 1});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Add", {"b", "c"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fuse_conv_bias"}), "Conv");
}

TEST(Passes, ActivationsBecomeEpilogues) {
  struct Case {
    std::string op;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{{"Relu", "Conv+Relu"},
                                         {"Sigmoid", "Conv+Sigmoid"},
                                         {"HardSwish", "Conv+HardSwish"},
                                         {"HardSigmoid", "Conv+HardSigmoid"},
                                         {"LeakyRelu", "Conv+LeakyRelu"},
                                         {"Tanh", "Conv+Tanh"}}) {
    Builder b;
    b.input("x", {2, 3, 5, 4}).output("y").random_constant("w", {4, 3, 3, 3});
    b.node("Conv", {"x", "w"}, {"c"});
    b.node(c.op, {"c"}, {"y"});
    EXPECT_EQ(check_passes(b, {"fuse_epilogue"}), c.expect);
  }
}

// Depthwise convs apply the epilogue per channel inside the conv kernel.
TEST(Passes, EpiloguesOnDepthwiseConv) {
  for (const char* op : {"Sigmoid", "HardSwish", "Tanh", "SiLU"}) {
    Builder b;
    b.input("x", {2, 6, 9, 7}).output("y").random_constant("w", {6, 1, 3, 3}).random_constant("bias", {6});
    onnx::NodeProto* conv = b.node("Conv", {"x", "w", "bias"}, {"c"});
    set_int(conv, "group", 6);
    set_ints(conv, "pads", {1, 1, 1, 1});
    if (std::string(op) == "SiLU") {
      b.node("Sigmoid", {"c"}, {"s"});
      b.node("Mul", {"c", "s"}, {"y"});
    } else {
      b.node(op, {"c"}, {"y"});
    }
    EXPECT_EQ(check_passes(b, {"fuse_epilogue"}), std::string("Conv+") + op);
  }
}

TEST(Passes, Relu6AndSiluOnGemmMatMulAndAdd) {
  Builder b;
  b.input("x", {3, 5}).input("z", {3, 4}).output("y1").output("y2").output("y3");
  b.random_constant("w", {5, 4}).constant("lo", {}, {0}).constant("hi", {}, {6});
  b.node("Gemm", {"x", "w"}, {"g"});
  b.node("Clip", {"g", "lo", "hi"}, {"y1"});
  b.node("MatMul", {"x", "w"}, {"m"});
  b.node("Sigmoid", {"m"}, {"s"});
  b.node("Mul", {"s", "m"}, {"y2"});
  b.node("Add", {"x", "x"}, {"a"});
  b.node("Relu", {"a"}, {"y3"});
  EXPECT_EQ(check_passes(b, {"fuse_epilogue"}), "Gemm+Clip(0.000000,6.000000) MatMul+SiLU Add+Relu");
}

TEST(Passes, EpilogueStaysOffAValueReadTwice) {
  Builder b;
  b.input("x", {2, 3, 5, 4}).output("y").output("c").random_constant("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Relu", {"c"}, {"y"});
  Model m = load(b);
  EXPECT_FALSE(run_pass(*m.graph, "fuse_epilogue"));
}

TEST(Passes, GeluIsRecognizedAndFused) {
  Builder b;
  b.input("x", {4, 6}).output("y").random_constant("w", {6, 5}).constant("sqrt2", {}, {1.4142135f});
  b.constant("one", {}, {1.0f}).constant("half", {}, {0.5f});
  b.node("MatMul", {"x", "w"}, {"m"});
  b.node("Div", {"m", "sqrt2"}, {"d"});
  b.node("Erf", {"d"}, {"e"});
  b.node("Add", {"e", "one"}, {"a"});
  b.node("Mul", {"m", "a"}, {"p"});
  b.node("Mul", {"p", "half"}, {"y"});
  EXPECT_EQ(check_passes(b, {"recognize_gelu"}), "MatMul Gelu");
  EXPECT_EQ(check_passes(b, {"recognize_gelu", "fuse_epilogue"}), "MatMul+Gelu");
}

// gelu(approximate='tanh') as PyTorch 1.13 exports it at opset 17 (x * x * x,
// constants first), and as hand-written code often has it (Pow, x * 0.5 first).
TEST(Passes, GeluTanhFormIsRecognizedAndFused) {
  for (bool torch_form : {true, false}) {
    Builder b;
    b.input("x", {4, 6}).output("y").random_constant("w", {6, 5});
    b.constant("c", {}, {0.044715f}).constant("k", {}, {0.7978846f}).constant("one", {}, {1.0f});
    b.constant("half", {}, {0.5f}).constant("three", {}, {3.0f});
    b.node("MatMul", {"x", "w"}, {"m"});
    if (torch_form) {
      b.node("Mul", {"m", "m"}, {"sq"});
      b.node("Mul", {"m", "sq"}, {"cube"});
      b.node("Mul", {"c", "cube"}, {"cc"});
      b.node("Add", {"m", "cc"}, {"inner"});
      b.node("Mul", {"k", "inner"}, {"scaled"});
      b.node("Tanh", {"scaled"}, {"t"});
      b.node("Add", {"one", "t"}, {"a"});
      b.node("Mul", {"m", "a"}, {"p"});
      b.node("Mul", {"half", "p"}, {"y"});
    } else {
      b.node("Pow", {"m", "three"}, {"cube"});
      b.node("Mul", {"cube", "c"}, {"cc"});
      b.node("Add", {"cc", "m"}, {"inner"});
      b.node("Mul", {"inner", "k"}, {"scaled"});
      b.node("Tanh", {"scaled"}, {"t"});
      b.node("Add", {"t", "one"}, {"a"});
      b.node("Mul", {"m", "half"}, {"h"});
      b.node("Mul", {"h", "a"}, {"y"});
    }
    EXPECT_EQ(check_passes(b, {"recognize_gelu"}), "MatMul Gelu");
    EXPECT_EQ(check_passes(b, {"recognize_gelu", "fuse_epilogue"}), "MatMul+GeluTanh") << torch_form;
    Model m = load(b);
    EXPECT_TRUE(run_pass(*m.graph, "recognize_gelu"));
    EXPECT_EQ(m.graph->find("y")->producer->attr_string("approximate", ""), "tanh");
  }
}

TEST(Passes, GeluTanhFormNeedsItsConstantsAndPrivateIntermediates) {
  // Another cubic coefficient; x^2 read elsewhere too; Tanh of something else.
  for (int variant = 0; variant < 3; ++variant) {
    Builder b;
    b.input("x", {4, 6}).output("y");
    b.constant("c", {}, {variant == 0 ? 0.05f : 0.044715f}).constant("k", {}, {0.7978846f});
    b.constant("one", {}, {1.0f}).constant("half", {}, {0.5f});
    b.node("Mul", {"x", "x"}, {"sq"});
    b.node("Mul", {"x", "sq"}, {"cube"});
    b.node("Mul", {"c", "cube"}, {"cc"});
    b.node("Add", {variant == 2 ? "sq" : "x", "cc"}, {"inner"});
    b.node("Mul", {"k", "inner"}, {"scaled"});
    b.node("Tanh", {"scaled"}, {"t"});
    b.node("Add", {"one", "t"}, {"a"});
    b.node("Mul", {"x", "a"}, {"p"});
    b.node("Mul", {"half", "p"}, {variant == 1 ? "z" : "y"});
    if (variant == 1) b.node("Add", {"z", "sq"}, {"y"});
    Model m = load(b);
    EXPECT_FALSE(run_pass(*m.graph, "recognize_gelu")) << variant;
  }
}

TEST(Passes, LayerNormIsRecognized) {
  Builder b;
  b.input("x", {2, 3, 8}).output("y").constant("two", {}, {2.0f}).constant("eps", {}, {1e-5f});
  b.random_constant("gamma", {8}).random_constant("beta", {8});
  set_ints(b.node("ReduceMean", {"x"}, {"mu"}), "axes", {-1});
  b.node("Sub", {"x", "mu"}, {"d"});
  b.node("Pow", {"d", "two"}, {"sq"});
  set_ints(b.node("ReduceMean", {"sq"}, {"var"}), "axes", {-1});
  b.node("Add", {"var", "eps"}, {"ve"});
  b.node("Sqrt", {"ve"}, {"sd"});
  b.node("Div", {"d", "sd"}, {"n"});
  b.node("Mul", {"n", "gamma"}, {"nm"});
  b.node("Add", {"nm", "beta"}, {"y"});
  EXPECT_EQ(check_passes(b, {"recognize_layernorm"}, 1e-4), "LayerNormalization");
}

// ---- fold_transposes -------------------------------------------------------------

// The perm of the Transpose producing `name` in g, or {-1} when none does.
std::vector<int64_t> transpose_perm(const Graph& g, const std::string& name) {
  const Value* v = g.find(name);
  if (!v || !v->producer || v->producer->op_type != "Transpose") return {-1};
  return v->producer->attr_ints("perm");
}

TEST(FoldTransposes, ChainComposingToTheIdentityGoes) {
  Builder b;
  b.input("x", {2, 3, 4}).output("y");
  set_ints(b.node("Transpose", {"x"}, {"t1"}), "perm", {1, 2, 0});
  set_ints(b.node("Transpose", {"t1"}, {"t2"}), "perm", {2, 0, 1});
  b.node("Relu", {"t2"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_transposes"}), "Relu");
}

TEST(FoldTransposes, IdentityChainBeforeAGraphOutputKeepsItsName) {
  Builder b;
  b.input("x", {2, 3, 4}).output("y");
  b.node("Relu", {"x"}, {"r"});
  b.node("Transpose", {"r"}, {"t1"});  // default perm: reversed
  b.node("Transpose", {"t1"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_transposes"}), "Relu");  // checks the output name too
}

TEST(FoldTransposes, ChainBecomesOneTransposeWithTheComposedPerm) {
  Builder b;
  b.input("x", {2, 3, 4, 5}).output("y");
  set_ints(b.node("Transpose", {"x"}, {"t1"}), "perm", {0, 2, 1, 3});
  set_ints(b.node("Transpose", {"t1"}, {"t2"}), "perm", {0, 1, 3, 2});
  set_ints(b.node("Transpose", {"t2"}, {"y"}), "perm", {3, 1, 2, 0});
  EXPECT_EQ(check_passes(b, {"fold_transposes"}), "Transpose");
  Model m = load(b);
  EXPECT_TRUE(run_pass(*m.graph, "fold_transposes"));
  // t1 reads x[0, 2, 1, 3]; t2 then t1[0, 1, 3, 2] = x[0, 2, 3, 1]; y = t2[3, 1, 2, 0].
  EXPECT_EQ(transpose_perm(*m.graph, "y"), (std::vector<int64_t>{1, 2, 3, 0}));
  EXPECT_EQ(m.graph->find("y")->producer->inputs[0], m.graph->find("x"));
}

TEST(FoldTransposes, InnerTransposeReadByOthersStays) {
  Builder b;
  b.input("x", {2, 3, 4}).output("y").output("z");
  set_ints(b.node("Transpose", {"x"}, {"t1"}), "perm", {1, 0, 2});
  set_ints(b.node("Transpose", {"t1"}, {"t2"}), "perm", {0, 2, 1});
  b.node("Relu", {"t1"}, {"y"});
  b.node("Neg", {"t2"}, {"z"});
  EXPECT_EQ(check_passes(b, {"fold_transposes"}), "Transpose Transpose Relu Neg");
  Model m = load(b);
  EXPECT_TRUE(run_pass(*m.graph, "fold_transposes"));
  EXPECT_EQ(transpose_perm(*m.graph, "t2"), (std::vector<int64_t>{1, 2, 0}));
  EXPECT_EQ(m.graph->find("t2")->producer->inputs[0], m.graph->find("x"));
  EXPECT_EQ(m.graph->find("t1")->consumers.size(), 1u);  // the Relu only
}

TEST(FoldTransposes, IdentityPermGoes) {
  Builder b;
  b.input("x", {2, 3}).output("y");
  set_ints(b.node("Transpose", {"x"}, {"t"}), "perm", {0, 1});
  b.node("Relu", {"t"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_transposes"}), "Relu");
}

TEST(FoldTransposes, TransposeMovingOnlyUnitDimsIsAReshape) {
  Builder b;
  b.input("x", {5, 1, 8}).output("y");
  set_ints(b.node("Transpose", {"x"}, {"t"}), "perm", {1, 0, 2});  // [1, 5, 8], the data unmoved
  b.node("Relu", {"t"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fold_transposes"}), "Reshape Relu");
}

TEST(FoldTransposes, LeavesRealTransposesAlone) {
  // A transpose that moves data; the identity between a graph input and a
  // graph output (which needs a node of its own); a unit-dim move that
  // reorders the other dims.
  for (auto [shape, perm] :
       {std::pair<Shape, std::vector<int64_t>>{{3, 2, 4}, {1, 0, 2}}, {{3, 2}, {0, 1}}, {{3, 1, 4}, {2, 1, 0}}}) {
    Builder b;
    b.input("x", shape).output("y");
    set_ints(b.node("Transpose", {"x"}, {"y"}), "perm", perm);
    Model m = load(b);
    EXPECT_FALSE(run_pass(*m.graph, "fold_transposes")) << shape_str(shape);
    EXPECT_EQ(ops_of(*m.graph), "Transpose");
  }
}

// ---- recognize_attention + kiln.Attention ---------------------------------------

struct AttentionCase {
  Shape batch;
  int64_t lq, lk, d, dv;
  Shape mask;  // empty: no mask
  // 0: Transpose(K) swapping the last two dims; 1: K^T given; 2: K^T = Transpose(x, other perm)
  int k_form;
  // 0: none; 1: Mul(c, scores); 2: Div(scores, c); 3: Div(Q, c) (torch's MHA); 4: Mul(Q) and Mul(K^T)
  int scale_form;
  bool mask_first;  // Add(mask, scores)
};

Shape with(Shape s, std::initializer_list<int64_t> tail) {
  s.insert(s.end(), tail);
  return s;
}

Builder attention_model(const AttentionCase& c) {
  Builder b;
  b.input("q", with(c.batch, {c.lq, c.d})).input("v", with(c.batch, {c.lk, c.dv})).output("y");
  // The usual 1 / sqrt(D), multiplied or divided by.
  const float root = std::sqrt(static_cast<float>(c.d));
  b.constant("c", {}, {c.scale_form == 2 || c.scale_form == 3 ? root : 1 / root}).constant("half", {}, {0.5f});
  std::string kt = "kt";
  if (c.k_form == 0) {
    b.input("k", with(c.batch, {c.lk, c.d}));
    std::vector<int64_t> perm;
    for (size_t i = 0; i < c.batch.size(); ++i) perm.push_back(static_cast<int64_t>(i));
    perm.push_back(static_cast<int64_t>(c.batch.size()) + 1);
    perm.push_back(static_cast<int64_t>(c.batch.size()));
    set_ints(b.node("Transpose", {"k"}, {"kt"}), "perm", perm);
  } else if (c.k_form == 1) {
    b.input("kt", with(c.batch, {c.d, c.lk}));
  } else {  // K^T from [Lk, batch, D] as nn.MultiheadAttention's (1, 2, 0) on a 3-D [L, N*H, D]
    b.input("k", {c.lk, c.batch.at(0), c.d});
    set_ints(b.node("Transpose", {"k"}, {"kt"}), "perm", {1, 2, 0});
  }
  std::string q = "q";
  if (c.scale_form == 3) {
    b.node("Div", {"q", "c"}, {"qs"});
    q = "qs";
  } else if (c.scale_form == 4) {
    b.node("Mul", {"q", "c"}, {"qs"});
    b.node("Mul", {"half", "kt"}, {"kts"});
    q = "qs";
    kt = "kts";
  }
  b.node("MatMul", {q, kt}, {"s"});
  std::string scores = "s";
  if (c.scale_form == 1) b.node("Mul", {"c", "s"}, {"ss"});
  if (c.scale_form == 2) b.node("Div", {"s", "c"}, {"ss"});
  if (c.scale_form == 1 || c.scale_form == 2) scores = "ss";
  if (!c.mask.empty()) {
    b.input("mask", c.mask);
    if (c.mask_first)
      b.node("Add", {"mask", scores}, {"sm"});
    else
      b.node("Add", {scores, "mask"}, {"sm"});
    scores = "sm";
  }
  b.node("Softmax", {scores}, {"p"});
  b.node("MatMul", {"p", "v"}, {"y"});
  return b;
}

TEST(RecognizeAttention, MatchesTheUnfusedChain) {
  const std::vector<AttentionCase> cases = {
      {{2, 3}, 7, 13, 5, 6, {}, 0, 1, false},           {{6}, 61, 300, 16, 8, {61, 300}, 1, 2, false},  // a 2-D mask
      {{2}, 200, 601, 8, 4, {}, 0, 1, false},            // three blocks of query rows
      {{2, 3}, 9, 11, 4, 4, {2, 1, 1, 11}, 0, 3, true},  // a padding mask over heads and rows
      {{12}, 197, 197, 64, 64, {}, 2, 3, false},         // ViT-B/16
      {{4}, 1, 5, 3, 7, {1, 5}, 1, 4, false},            // one query row
      {{}, 33, 17, 8, 3, {33, 1}, 0, 0, true},           // no batch dims, a mask per row
  };
  for (const AttentionCase& c : cases) {
    SCOPED_TRACE(shape_str(with(c.batch, {c.lq, c.lk})));
    const std::string ops = check_passes(attention_model(c), {"recognize_attention"}, 1e-4);
    EXPECT_EQ(ops, c.k_form == 2 ? "Transpose Attention" : "Attention");
    Model m = load(attention_model(c));
    EXPECT_TRUE(run_pass(*m.graph, "recognize_attention"));
    const Node* attn = m.graph->find("y")->producer;
    ASSERT_EQ(attn->domain, "kiln");
    EXPECT_EQ(attn->attr_int("k_transposed", -1), c.k_form == 0 ? 0 : 1);
    const float root = std::sqrt(static_cast<float>(c.d));
    const float want_scale[] = {1.0f, 1 / root, 1 / root, 1 / root, 0.5f / root};
    EXPECT_FLOAT_EQ(attn->attr_float("scale", 0), want_scale[c.scale_form]);
  }
}

TEST(RecognizeAttention, KernelSplitsOverThreads) {
  AttentionCase c = {{2, 5}, 130, 77, 24, 12, {2, 1, 130, 77}, 0, 2, false};
  Model ref = load(attention_model(c)), opt = load(attention_model(c));
  EXPECT_TRUE(run_pass(*opt.graph, "recognize_attention"));
  erase_detached_nodes(*opt.graph);
  opt.graph->sort_topologically();
  std::vector<std::string> unsupported;
  infer_graph(*opt.graph, &unsupported);
  ASSERT_TRUE(unsupported.empty());
  std::mt19937 rng(11);
  std::vector<Tensor> feed;
  for (const Value* in : ref.graph->inputs) feed.push_back(random_f32(in->type.static_shape(), rng, -3, 3));
  std::vector<Tensor> want = run(*ref.graph, feed);
  ThreadPool pool(4);
  auto compiled = CompiledGraph::compile(*opt.graph);
  for (int i = 0; i < 2; ++i) {  // the second run reuses the threads' scratch
    std::vector<Tensor> got = compiled->run(feed, nullptr, &pool);
    EXPECT_TRUE(all_close(got[0], want[0], 1e-4, 1e-5));
  }
}

TEST(RecognizeAttention, LeavesOtherChainsAlone) {
  for (int variant = 0; variant < 4; ++variant) {
    Builder b;
    b.input("q", {3, 5, 4}).input("kt", {3, 4, 6}).input("v", {3, 6, 2}).output("y");
    b.random_constant("per_head", {3, 1, 1});
    b.node("MatMul", {"q", "kt"}, {"s"});
    std::string scores = "s";
    if (variant == 0) {  // a scale per head is no scalar attribute
      b.node("Mul", {"s", "per_head"}, {"ss"});
      scores = "ss";
    }
    onnx::NodeProto* softmax = b.node("Softmax", {scores}, {"p"});
    if (variant == 1) set_int(softmax, "axis", 1);  // not over the keys
    b.node("MatMul", {"p", "v"}, {"y"});
    if (variant == 2) b.output("s");  // the scores are wanted as well
    if (variant == 3) b.output("p");  // the probabilities too
    Model m = load(b);
    EXPECT_FALSE(run_pass(*m.graph, "recognize_attention")) << variant;
  }
}

TEST(Passes, MatMulAddBecomesGemm) {
  Builder b;
  b.input("x", {3, 5}).output("y").random_constant("w", {5, 4}).random_constant("bias", {4});
  b.node("MatMul", {"x", "w"}, {"m"});
  b.node("Add", {"bias", "m"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fuse_matmul_add"}), "Gemm");
}

TEST(FuseMatMulAdd, LinearOnThreeAndFourDInputsThroughReshapes) {
  // [batch, tokens, features] and channels-last [N, H, W, C], then the
  // activation moves through the output Reshape into the Gemm.
  for (const Shape& in : {Shape{2, 7, 5}, Shape{1, 3, 4, 5}}) {
    Builder b;
    b.input("x", in).output("y").random_constant("w", {5, 6}).random_constant("bias", {6});
    b.node("MatMul", {"x", "w"}, {"m"});
    b.node("Add", {"m", "bias"}, {"a"});
    b.node("Tanh", {"a"}, {"y"});
    EXPECT_EQ(check_passes(b, {"fuse_matmul_add", "fuse_epilogue"}, 1e-5), "Reshape Gemm+Tanh Reshape");
  }
  // A dynamic middle dim: left alone.
  Builder b;
  *b.g()->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, -1, 5}, {"", "T"});
  b.output("y").random_constant("w", {5, 6}).random_constant("bias", {6});
  b.node("MatMul", {"x", "w"}, {"m"});
  b.node("Add", {"m", "bias"}, {"y"});
  Model m = load(b);
  for (const passes::Pass& p : passes::all_passes())
    if (p.name == "fuse_matmul_add") {
      EXPECT_FALSE(p.run(*m.graph));
    }
}

TEST(PassManager, OptLevelsAndDisabledPasses) {
  Builder b;
  b.input("x", {1, 2, 5, 5}).output("y").random_constant("w", {3, 2, 3, 3});
  b.node("Identity", {"x"}, {"i"});
  b.node("Conv", {"i", "w"}, {"c"});
  b.node("Relu", {"c"}, {"y"});
  auto ops_at = [&](int level, std::vector<std::string> disabled) {
    Model m = load(b);
    passes::PassOptions o;
    o.opt_level = level;
    o.disabled = disabled;
    o.verify = true;
    passes::optimize(*m.graph, o);
    return ops_of(*m.graph);
  };
  EXPECT_EQ(ops_at(0, {}), "Identity Conv Relu");
  EXPECT_EQ(ops_at(1, {}), "Conv Relu");
  EXPECT_EQ(ops_at(2, {}), blocked_convs_available() ? "BlockedConv+Relu FromBlocked" : "Conv+Relu");
  EXPECT_EQ(ops_at(2, {"layout_blocked"}), "Conv+Relu");
  EXPECT_EQ(ops_at(2, {"layout_blocked", "fuse_epilogue"}), "Conv Relu");
  EXPECT_THROW(ops_at(2, {"no_such_pass"}), Error);
}

TEST(PassManager, SessionRunsTheSameAtEveryLevel) {
  Builder b;
  b.input("x", {2, 3, 6, 6}).output("y").random_constant("w", {4, 3, 3, 3}).random_constant("b", {4, 1, 1});
  b.constant("lo", {}, {0}).constant("hi", {}, {6});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Add", {"c", "b"}, {"cb"});
  b.node("Clip", {"cb", "lo", "hi"}, {"y"});
  std::string bytes = bytes_of(b.m);
  std::mt19937 rng(3);
  Tensor x = random_f32({2, 3, 6, 6}, rng, -3, 3);
  std::vector<Tensor> want;
  for (int level : {0, 1, 2}) {
    SessionOptions o;
    o.opt_level = level;
    Session s = Session::load_bytes(bytes.data(), bytes.size(), o);
    if (level == 2) {
      EXPECT_EQ(s.num_nodes(), blocked_convs_available() ? 2u : 1u);  // BlockedConv+Clip, FromBlocked
    }
    std::vector<Tensor> got = s.run({{"x", x}});
    if (want.empty())
      want = got;
    else
      EXPECT_TRUE(all_close(got[0], want[0], 1e-5, 1e-5));
  }
}

TEST(Verifier, CatchesUseBeforeDefinition) {
  Builder b;
  b.input("x", {2}).output("y");
  b.node("Relu", {"x"}, {"r"});
  b.node("Neg", {"r"}, {"y"});
  Model m = load(b);
  verify_graph(*m.graph);
  std::swap(m.graph->nodes[0], m.graph->nodes[1]);
  EXPECT_THROW(verify_graph(*m.graph), Error);
}

// ---- layout_blocked: every test compares against the plain graph ----------------

int count_op(const std::string& ops, const std::string& op) {
  int n = 0;
  for (size_t pos = ops.find(op); pos != std::string::npos; pos = ops.find(op, pos + 1)) ++n;
  return n;
}

TEST(LayoutBlocked, ConvChainStaysBlockedBetweenEdges) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  Builder b;
  b.input("x", {2, 3, 17, 15}).output("y");
  b.random_constant("w1", {13, 3, 3, 3}).random_constant("b1", {13});
  b.random_constant("w2", {20, 13, 3, 3}).random_constant("w3", {20, 13, 1, 1});
  set_ints(b.node("Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  onnx::NodeProto* mp = b.node("MaxPool", {"r1"}, {"p1"});
  set_ints(mp, "kernel_shape", {3, 3});
  set_ints(mp, "strides", {2, 2});
  set_ints(mp, "pads", {1, 1, 1, 1});
  set_ints(b.node("Conv", {"p1", "w2"}, {"c2"}), "pads", {1, 1, 1, 1});
  b.node("Conv", {"p1", "w3"}, {"c3"});
  b.node("Add", {"c2", "c3"}, {"a"});
  b.node("Sigmoid", {"a"}, {"s"});
  b.node("GlobalAveragePool", {"s"}, {"g"});
  b.node("Flatten", {"g"}, {"y"});
  const std::string ops = check_passes(b, {"fuse_epilogue", "layout_blocked"}, 1e-4);
  if (!blocks_of_avx2()) return;
  EXPECT_EQ(count_op(ops, "BlockedConv"), 3) << ops;

  EXPECT_EQ(count_op(ops, "BlockedPool"), 2) << ops;
  EXPECT_EQ(count_op(ops, "ToBlocked"), 0) << ops;    // the RGB stem reads NCHW
  EXPECT_EQ(count_op(ops, "FromBlocked"), 1) << ops;  // only before Flatten
}

TEST(LayoutBlocked, ConvGeometriesAndEpilogues) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  struct Case {
    int64_t c, m, k, group, stride, dilation;
    std::vector<int64_t> pads;
    const char* act;
  };
  const Case cases[] = {
      {16, 16, 3, 16, 1, 1, {1, 1, 1, 1}, "Relu"},       // depthwise
      {24, 24, 5, 24, 2, 1, {2, 2, 2, 2}, "HardSwish"},  // depthwise, strided
      {16, 32, 3, 2, 1, 2, {2, 1, 2, 1}, "Sigmoid"},     // grouped, dilated, asymmetric pads
      {12, 9, 1, 1, 2, 1, {0, 0, 0, 0}, "Tanh"},         // strided 1x1, odd channels
      {8, 16, 7, 1, 1, 1, {3, 3, 3, 3}, "LeakyRelu"},   {16, 8, 3, 1, 1, 1, {0, 1, 1, 0}, "HardSigmoid"},
  };
  for (const Case& c : cases) {
    Builder b;
    b.input("x", {2, c.c, 11, 13}).output("y");
    b.random_constant("w0", {c.c, 3, 1, 1})
        .random_constant("w", {c.m, c.c / c.group, c.k, c.k})
        .random_constant("b", {c.m});
    b.input("x0", {2, 3, 11, 13});
    b.node("Conv", {"x0", "w0"}, {"h"});  // a blocked producer for the conv under test
    b.node("Add", {"h", "x"}, {"hx"});
    onnx::NodeProto* conv = b.node("Conv", {"hx", "w", "b"}, {"c"});
    set_int(conv, "group", c.group);
    set_ints(conv, "strides", {c.stride, c.stride});
    set_ints(conv, "dilations", {c.dilation, c.dilation});
    set_ints(conv, "pads", c.pads);
    b.node(c.act, {"c"}, {"y"});
    const std::string ops = check_passes(b, {"fuse_epilogue", "layout_blocked"}, 1e-4);
    if (!blocks_of_avx2()) continue;
    EXPECT_EQ(count_op(ops, "BlockedConv"), 2) << ops << " for group " << c.group << " k " << c.k;
    EXPECT_NE(ops.find(std::string("BlockedConv+") + (std::string(c.act) == "HardSwish" ? "HardSwish" : c.act)),
              std::string::npos)
        << ops;
  }
}

TEST(LayoutBlocked, SqueezeExciteConcatAndChannelConstants) {
  Builder b;
  b.input("x", {1, 16, 9, 9}).output("y");
  b.random_constant("w1", {16, 16, 3, 3}).random_constant("w2", {8, 16, 1, 1}).random_constant("w3", {16, 8, 1, 1});
  b.random_constant("w4", {8, 16, 1, 1}).random_constant("scale", {24, 1, 1}).constant("half", {}, {0.5f});
  set_ints(b.node("Conv", {"x", "w1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("GlobalAveragePool", {"c1"}, {"g"});
  b.node("Conv", {"g", "w2"}, {"s1"});
  b.node("Relu", {"s1"}, {"s2"});
  b.node("Conv", {"s2", "w3"}, {"s3"});
  b.node("HardSigmoid", {"s3"}, {"s4"});
  b.node("Mul", {"c1", "s4"}, {"se"});
  b.node("Conv", {"se", "w4"}, {"c4"});
  set_int(b.node("Concat", {"se", "c4"}, {"cat"}), "axis", 1);
  b.node("Mul", {"cat", "scale"}, {"scaled"});
  b.node("Add", {"scaled", "half"}, {"y"});
  // The 16-channel 3x3 conv runs Winograd: its rounding differs from the
  // direct reference by ~1e-6 of the sum of the terms' magnitudes.
  const std::string ops = check_passes(b, {"fuse_epilogue", "layout_blocked"}, 1e-4, 2e-4);
  if (!blocks_of_avx2()) return;
  EXPECT_EQ(count_op(ops, "BlockedConv"), 4) << ops;
  EXPECT_EQ(count_op(ops, "FromBlocked"), 1) << ops;  // the graph output
  EXPECT_EQ(count_op(ops, "ToBlocked"), 1) << ops;    // the graph input
}

TEST(LayoutBlocked, AveragePoolModes) {
  for (int64_t include_pad : {0, 1})
    for (int64_t ceil : {0, 1}) {
      Builder b;
      b.input("x", {1, 3, 10, 11}).output("y").random_constant("w", {8, 3, 1, 1});
      b.node("Conv", {"x", "w"}, {"c"});
      onnx::NodeProto* p = b.node("AveragePool", {"c"}, {"y"});
      set_ints(p, "kernel_shape", {3, 3});
      set_ints(p, "strides", {2, 2});
      set_ints(p, "pads", {1, 1, 1, 1});
      set_int(p, "ceil_mode", ceil);
      set_int(p, "count_include_pad", include_pad);
      const std::string ops = check_passes(b, {"layout_blocked"}, 1e-4);
      // The ceil-mode overhang past the padding is not counted (ONNX).
      EXPECT_EQ(count_op(ops, "BlockedPool"), 1) << ops;
    }
}

TEST(LayoutBlocked, PoolGeometries) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  struct Case {
    const char* op;
    std::vector<int64_t> kernel, strides, dilations, pads;
    int64_t ceil;
  };
  const Case cases[] = {
      {"MaxPool", {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1},        // SqueezeNet's
      {"MaxPool", {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0},        // GoogLeNet's branch pool
      {"MaxPool", {2, 3}, {1, 2}, {2, 1}, {1, 0, 0, 2}, 0},        // dilated, asymmetric pads
      {"AveragePool", {5, 5}, {3, 3}, {1, 1}, {2, 2, 2, 2}, 1},    // window larger than the rest
      {"AveragePool", {13, 13}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0},  // the whole plane
      {"MaxPool", {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1},
  };
  for (const Case& c : cases) {
    Builder b;
    b.input("x", {2, 3, 13, 14}).output("y").random_constant("w", {20, 3, 1, 1});
    b.node("Conv", {"x", "w"}, {"c"});
    onnx::NodeProto* p = b.node(c.op, {"c"}, {"y"});
    set_ints(p, "kernel_shape", c.kernel);
    set_ints(p, "strides", c.strides);
    set_ints(p, "pads", c.pads);
    if (c.dilations != std::vector<int64_t>{1, 1}) set_ints(p, "dilations", c.dilations);
    set_int(p, "ceil_mode", c.ceil);
    const std::string ops = check_passes(b, {"layout_blocked"}, 1e-5);
    EXPECT_EQ(count_op(ops, "BlockedPool"), 1) << ops << " " << c.op;
  }
}

TEST(LayoutBlocked, DynamicBatchRunsEveryBatchSize) {
  Builder b;
  *b.g()->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 8, 7, 7}, {"N"});
  b.output("y").random_constant("w", {16, 8, 3, 3}).random_constant("w2", {16, 16, 1, 1});
  set_ints(b.node("Conv", {"x", "w"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"});
  b.node("Conv", {"r", "w2"}, {"y"});
  const std::string bytes = bytes_of(b.m);
  SessionOptions plain, blocked;
  plain.opt_level = 1;
  blocked.opt_level = 2;
  Session ref = Session::load_bytes(bytes.data(), bytes.size(), plain);
  Session opt = Session::load_bytes(bytes.data(), bytes.size(), blocked);
  std::mt19937 rng(5);
  for (int64_t n : {1, 3, 1, 0}) {
    Tensor x = random_f32({n, 8, 7, 7}, rng);
    EXPECT_TRUE(all_close(opt.run({{"x", x}})[0], ref.run({{"x", x}})[0], 1e-4, 1e-5)) << "batch " << n;
  }
}

// An input of dynamic height and width (an engine's profile over image
// sizes): the convs are blocked all the same (oneDNN is asked about a
// stand-in size; BlockedConv makes its primitives per shape), and one
// session runs sizes up and down like the plain graph.
TEST(LayoutBlocked, DynamicImageSizeStaysBlocked) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  Builder b;
  *b.g()->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 8, -1, -1}, {"N", "", "H", "W"});
  b.output("y").random_constant("w1", {16, 8, 3, 3}).random_constant("b1", {16});
  b.random_constant("w2", {16, 16, 3, 3}).random_constant("w3", {16, 16, 1, 1});
  set_ints(b.node("Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  onnx::NodeProto* down = b.node("Conv", {"r1", "w2"}, {"c2"});
  set_ints(down, "pads", {1, 1, 1, 1});
  set_ints(down, "strides", {2, 2});
  b.node("Conv", {"c2", "w3"}, {"c3"});
  b.node("Add", {"c3", "c2"}, {"a"});
  b.node("Relu", {"a"}, {"y"});
  const std::string bytes = bytes_of(b.m);
  SessionOptions plain;
  plain.opt_level = 1;
  Session ref = Session::load_bytes(bytes.data(), bytes.size(), plain);
  Session opt = Session::load_bytes(bytes.data(), bytes.size());
  int blocked = 0;
  for (const auto& n : opt.executed_nodes()) blocked += n.op == "kiln.BlockedConv";
  EXPECT_EQ(blocked, 3);
  std::mt19937 rng(8);
  const Shape sizes[] = {{1, 8, 9, 9}, {2, 8, 16, 13}, {1, 8, 31, 30}, {1, 8, 1, 1}, {1, 8, 5, 7}, {2, 8, 16, 13}};
  for (const Shape& s : sizes) {
    Tensor x = random_f32(s, rng);
    EXPECT_TRUE(all_close(opt.run({{"x", x}})[0], ref.run({{"x", x}})[0], 1e-4, 1e-4)) << shape_str(s);
  }
}

// Several threads run one session whose blocked convs and reorders share
// their oneDNN argument sets (dnnl_glue::Call), at two batch sizes at once.
TEST(LayoutBlocked, ConcurrentRunsOfOneSession) {
  Builder b;
  *b.g()->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 5, 9, 9}, {"N"});
  b.output("y").random_constant("w", {16, 5, 3, 3}).random_constant("bias", {16}).random_constant("w2", {8, 16, 1, 1});
  set_ints(b.node("Conv", {"x", "w", "bias"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"});
  b.node("Conv", {"r", "w2"}, {"y"});
  const std::string bytes = bytes_of(b.m);
  SessionOptions plain;
  plain.opt_level = 1;
  Session ref = Session::load_bytes(bytes.data(), bytes.size(), plain);
  Session opt = Session::load_bytes(bytes.data(), bytes.size());
  std::mt19937 rng(6);
  std::vector<Tensor> xs, want;
  for (int64_t n : {1, 2, 1, 2}) {
    xs.push_back(random_f32({n, 5, 9, 9}, rng));
    want.push_back(ref.run({{"x", xs.back()}})[0]);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < xs.size(); ++t)
    threads.emplace_back([&, t] {
      for (int iter = 0; iter < 50; ++iter)
        if (!all_close(opt.run({{"x", xs[t]}})[0], want[t], 1e-4, 1e-5)) ++mismatches;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// The residual Add of a ResNet block moves into the conv before it: with the
// oneDNN path (1x1), the Winograd path (3x3, 64 channels, 12x12) and a
// strided conv, the Add's ReLU after the sum; not when the conv output has
// another reader or the conv already has an epilogue.
TEST(FuseConvSum, ResidualAddsMoveIntoTheConv) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  struct Case {
    int64_t c, k, stride;
    bool relu_on_conv, second_reader;
    int fused;
  };
  const Case cases[] = {
      {16, 1, 1, false, false, 1}, {64, 3, 1, false, false, 1}, {24, 3, 2, false, false, 1},
      {16, 1, 1, true, false, 0},  {16, 1, 1, false, true, 0},
  };
  for (const Case& c : cases) {
    Builder b;
    b.input("x", {2, c.c, 12, 12}).output("y");
    b.random_constant("w0", {c.c, c.c, 1, 1}).random_constant("w", {c.c, c.c, c.k, c.k}).random_constant("bias", {c.c});
    b.random_constant("ws", {c.c, c.c, 1, 1});
    b.node("Conv", {"x", "w0"}, {"h"});  // blocked producer of the block input
    onnx::NodeProto* conv = b.node("Conv", {"h", "w", "bias"}, {"c"});
    set_ints(conv, "pads", std::vector<int64_t>(4, c.k / 2));
    set_ints(conv, "strides", {c.stride, c.stride});
    std::string residual = "h";
    if (c.stride != 1) {  // a projection shortcut, like ResNet's downsample
      set_ints(b.node("Conv", {"h", "ws"}, {"short"}), "strides", {c.stride, c.stride});
      residual = "short";
    }
    std::string sum_in = "c";
    if (c.relu_on_conv) {
      b.node("Relu", {"c"}, {"cr"});
      sum_in = "cr";
    }
    b.node("Add", {sum_in, residual}, {"a"});
    if (c.second_reader) {
      b.node("Relu", {"a"}, {"r"});
      b.node("Add", {"r", "c"}, {"y"});
    } else {
      b.node("Relu", {"a"}, {"y"});
    }
    // Winograd (the 64-channel 3x3 case) rounds differently from the direct
    // conv, by ~2e-6 of the sum of the terms' magnitudes (here ~800).
    const double atol = c.c == 64 ? 5e-3 : 1e-5;
    const std::string ops =
        check_passes(b, {"fuse_epilogue", "layout_blocked", "eliminate_dead_code", "fuse_conv_sum"}, 1e-4, atol);
    const int adds = count_op(ops, "Add");
    EXPECT_EQ(adds, (c.second_reader ? 2 : 1) - c.fused) << ops << " case c=" << c.c << " k=" << c.k;
    if (c.fused) {
      EXPECT_NE(ops.find("BlockedConv+Relu"), std::string::npos) << ops;
    }
  }
}

// A ConvNeXt block: depthwise conv, then channels-last LayerNorm and MLP
// between two Transposes, a layer scale and the residual Add. All of it
// stays blocked: BlockedLayerNorm, two 1x1 BlockedConvs (the layer scale
// folded into the second), no Transpose left. Also without the layer scale,
// with a LayerNorm only (ConvNeXt's downsampling), and not when the island
// is read elsewhere.
TEST(BlockedChannelsLast, ConvNeXtBlocksStayBlocked) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  for (int variant = 0; variant < 5; ++variant) {
    // 4: the Linear layers as explicit Reshape + Gemm(transB = 1), scaled.
    const bool scale = variant == 0 || variant == 4, mlp = variant != 2, extra_reader = variant == 3;
    const bool gemm_t = variant == 4;
    const int64_t c = 12, h = 5;
    Builder b;
    b.input("x", {2, c, h, h}).output("y");
    b.random_constant("dw", {c, 1, 3, 3}).random_constant("ln_s", {c}).random_constant("ln_b", {c});
    b.random_constant("w1", {c, 4 * c}).random_constant("b1", {4 * c}).random_constant("w2", {4 * c, c});
    b.random_constant("b2", {c}).random_constant("gamma", {c, 1, 1});
    onnx::NodeProto* dw = b.node("Conv", {"x", "dw"}, {"d"});
    set_int(dw, "group", c);
    set_ints(dw, "pads", {1, 1, 1, 1});
    set_ints(b.node("Transpose", {"d"}, {"t"}), "perm", {0, 2, 3, 1});
    set_int(b.node("LayerNormalization", {"t", "ln_s", "ln_b"}, {"ln"}), "axis", -1);
    std::string last = "ln";
    if (mlp && gemm_t) {
      b.random_constant("w1t", {4 * c, c}).random_constant("w2t", {c, 4 * c});
      b.ints("rows_i", {2}, {-1, c}).ints("back_i", {4}, {2, h, h, c});
      b.node("Reshape", {"ln", "rows_i"}, {"lr"});
      set_int(b.node("Gemm", {"lr", "w1t", "b1"}, {"g1"}), "transB", 1);
      b.node("Relu", {"g1"}, {"r1"});
      set_int(b.node("Gemm", {"r1", "w2t", "b2"}, {"g2"}), "transB", 1);
      b.node("Reshape", {"g2", "back_i"}, {"a2"});
      last = "a2";
    } else if (mlp) {
      b.node("MatMul", {"ln", "w1"}, {"m1"});
      b.node("Add", {"m1", "b1"}, {"a1"});
      b.node("Relu", {"a1"}, {"r1"});
      b.node("MatMul", {"r1", "w2"}, {"m2"});
      b.node("Add", {"m2", "b2"}, {"a2"});
      last = "a2";
    }
    set_ints(b.node("Transpose", {last}, {"back"}), "perm", {0, 3, 1, 2});
    std::string res = "back";
    if (scale) {
      b.node("Mul", {"back", "gamma"}, {"scaled"});
      res = "scaled";
    }
    if (extra_reader) {  // the LayerNorm's output also read outside the island
      b.node("Add", {res, "x"}, {"sum"});
      set_ints(b.node("ReduceMean", {"ln"}, {"lnm"}), "axes", {3});
      set_ints(b.node("Transpose", {"lnm"}, {"lnm_t"}), "perm", {0, 3, 1, 2});
      b.node("Add", {"sum", "lnm_t"}, {"y"});
    } else {
      b.node("Add", {res, "x"}, {"y"});
    }
    const std::string ops = check_passes(
        b, {"fuse_matmul_add", "fuse_epilogue", "layout_blocked", "eliminate_dead_code", "blocked_channels_last"},
        1e-4);
    if (extra_reader) {
      EXPECT_EQ(count_op(ops, "BlockedLayerNorm"), 0) << ops;
      continue;
    }
    EXPECT_EQ(count_op(ops, "Transpose"), 0) << ops << " variant " << variant;
    EXPECT_EQ(count_op(ops, "BlockedLayerNorm"), 1) << ops;
    EXPECT_EQ(count_op(ops, "BlockedConv"), mlp ? 3 : 1) << ops;
    EXPECT_EQ(count_op(ops, "Mul"), 0) << ops;
    if (mlp) {
      EXPECT_NE(ops.find("BlockedConv+Relu"), std::string::npos) << ops;
    }
  }
}

// kiln.BlockedLayerNorm against LayerNormalization over the channels of a
// channels-last copy: both block sizes, channels that fill no whole block,
// padded lanes written as zeros.
TEST(BlockedChannelsLast, BlockedLayerNormMatchesLayerNorm) {
  std::mt19937 rng(12);
  for (int64_t block : {8, 16})
    for (int64_t c : {3, 12, 21}) {
      Tensor x = random_f32({2, c, 3, 5}, rng), scale = random_f32({c}, rng), bias = random_f32({c}, rng);
      Tensor xb =
          run_node({.op = "ToBlocked", .domain = "kiln", .inputs = {x}, .attrs = {{"block", attr_int(block)}}})[0];
      Tensor yb = run_node(
          {.op = "BlockedLayerNorm",
           .domain = "kiln",
           .inputs = {xb, scale, bias},
           .attrs = {{"block", attr_int(block)}, {"channels", attr_int(c)}, {"epsilon", attr_float(1e-5f)}}})[0];
      for (int64_t i = 0; i < yb.numel(); ++i)
        if ((i % block) + (i / (block * 15)) % ((c + block - 1) / block) * block >= c) {
          ASSERT_EQ(yb.data<float>()[i], 0.0f) << "padded lane " << i;
        }
      Tensor y =
          run_node({.op = "FromBlocked", .domain = "kiln", .inputs = {yb}, .attrs = {{"channels", attr_int(c)}}})[0];
      Tensor xt = run_node({.op = "Transpose", .inputs = {x}, .attrs = {{"perm", attr_ints({0, 2, 3, 1})}}})[0];
      Tensor lt = run_node({.op = "LayerNormalization", .opset = 17, .inputs = {xt, scale, bias}})[0];
      Tensor want = run_node({.op = "Transpose", .inputs = {lt}, .attrs = {{"perm", attr_ints({0, 3, 1, 2})}}})[0];
      EXPECT_TRUE(all_close(y, want, 0, 0)) << "C " << c << " block " << block;
    }
}

TEST(LayoutBlocked, ReordersAndConvForBothBlockSizes) {
  std::mt19937 rng(11);
  for (int64_t block : {8, 16})
    for (int64_t c : {3, 8, 13, 16, 21}) {
      Tensor x = random_f32({2, c, 5, 6}, rng);
      Tensor blocked =
          run_node({.op = "ToBlocked", .domain = "kiln", .inputs = {x}, .attrs = {{"block", attr_int(block)}}})[0];
      EXPECT_EQ(blocked.shape(), (Shape{2, (c + block - 1) / block, 5, 6, block}));
      Tensor back = run_node(
          {.op = "FromBlocked", .domain = "kiln", .inputs = {blocked}, .attrs = {{"channels", attr_int(c)}}})[0];
      EXPECT_TRUE(all_close(back, x, 0, 0)) << "C " << c << " block " << block;

      Tensor w = random_f32({7, c, 3, 3}, rng), bias = random_f32({7}, rng);
      const std::map<std::string, Attribute> conv_attrs = {{"pads", attr_ints({1, 0, 1, 2})},
                                                           {"strides", attr_ints({1, 2})}};
      Tensor want = run_node({.op = "Conv", .inputs = {x, w, bias}, .attrs = conv_attrs})[0];
      auto attrs = conv_attrs;
      attrs["block"] = attr_int(block);
      for (bool plain_src : {true, false}) {
        NodeSpec conv{
            .op = "BlockedConv", .domain = "kiln", .inputs = {plain_src ? x : blocked, w, bias}, .attrs = attrs};
        conv.constant_inputs = true;  // W and B must be constants
        Tensor y = run_node(conv)[0];
        Tensor got =
            run_node({.op = "FromBlocked", .domain = "kiln", .inputs = {y}, .attrs = {{"channels", attr_int(7)}}})[0];
        EXPECT_TRUE(all_close(got, want, 1e-4, 1e-5)) << "C " << c << " block " << block << " plain " << plain_src;
      }
    }
}

TEST(Passes, LeftoverBatchNormBecomesPerChannelAffine) {
  Builder b;
  b.input("x", {2, 5, 4, 3}).input("z", {2, 3, 4, 3}).output("y");
  b.random_constant("scale", {8}).random_constant("bias", {8}).random_constant("mean", {8});
  b.random_constant("var", {8}, 0.5f, 2.0f);
  set_int(b.node("Concat", {"x", "z"}, {"c"}), "axis", 1);
  set_float(b.node("BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"y"}), "epsilon", 1e-3f);
  EXPECT_EQ(check_passes(b, {"batchnorm_to_affine"}), "Concat Mul Add");
}

TEST(LayoutBlocked, SpatialPadRunsBlocked) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  Builder b;
  b.input("x", {1, 4, 6, 7}).output("y").random_constant("w", {16, 4, 1, 1});
  b.ints("pads", {8}, {0, 0, 1, 2, 0, 0, 2, 1});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Pad", {"c", "pads"}, {"p"});
  onnx::NodeProto* pool = b.node("AveragePool", {"p"}, {"y"});
  set_ints(pool, "kernel_shape", {3, 3});
  const std::string ops = check_passes(b, {"layout_blocked"}, 1e-4);
  EXPECT_EQ(ops, "BlockedConv Pad BlockedPool FromBlocked");
}

TEST(LayoutBlocked, InstanceNormRunsBlockedWithItsActivation) {
  if (!blocked_convs_available()) GTEST_SKIP() << "no oneDNN JIT convolution at this ISA (KILN_CPU_ISA)";
  // 20 channels: the last block is partial (padding lanes must stay zero for
  // the conv after it); 9x11 pixels, more than one image, a LeakyRelu fused in.
  Builder b;
  b.input("x", {2, 3, 9, 11}).output("y").random_constant("w", {20, 3, 3, 3}).random_constant("w2", {8, 20, 1, 1});
  b.random_constant("scale", {20}, 0.5f, 2.0f).random_constant("bias", {20});
  set_ints(b.node("Conv", {"x", "w"}, {"c"}), "pads", {1, 1, 1, 1});
  set_float(b.node("InstanceNormalization", {"c", "scale", "bias"}, {"n"}), "epsilon", 1e-3f);
  set_float(b.node("LeakyRelu", {"n"}, {"a"}), "alpha", 0.2f);
  b.node("Conv", {"a", "w2"}, {"y"});
  const std::string ops = check_passes(b, {"fuse_epilogue", "layout_blocked"}, 1e-4, 1e-4);
  EXPECT_EQ(ops, "BlockedConv BlockedInstanceNorm+LeakyRelu BlockedConv FromBlocked");
}

TEST(ReleaseOwnedConstants, FreesPackedWeightsOnlyWhenEveryReaderOwnsThem) {
  Builder b;
  b.input("x", {3, 8}).output("y").output("z");
  b.random_constant("w", {8, 5}).random_constant("shared", {8, 5}).random_constant("w2", {8, 8, 1, 1});
  b.node("MatMul", {"x", "w"}, {"m"});        // w: only a packing MatMul reads it
  b.node("MatMul", {"x", "shared"}, {"m2"});  // shared: also read by an Add
  b.node("Add", {"m", "m2"}, {"y"});
  b.node("Add", {"shared", "shared"}, {"z"});
  Model model = load(b);
  std::mt19937 rng(9);
  Tensor x = random_f32({3, 8}, rng);
  const std::vector<Tensor> want = CompiledGraph::compile(*model.graph)->run({x}, nullptr);
  auto cg = CompiledGraph::compile(*model.graph, false, model.graph.get());
  EXPECT_EQ(cg->freed_constant_bytes(), 8u * 5u * sizeof(float));
  EXPECT_EQ(model.graph->find("w")->initializer->raw(), nullptr);
  EXPECT_NE(model.graph->find("shared")->initializer->raw(), nullptr);
  EXPECT_EQ(model.graph->find("w")->initializer->shape(), (Shape{8, 5}));
  for (int run = 0; run < 2; ++run) {
    const std::vector<Tensor> got = cg->run({x}, nullptr);
    EXPECT_TRUE(all_close(got[0], want[0], 0, 0));
    EXPECT_TRUE(all_close(got[1], want[1], 0, 0));
  }
}

TEST(Passes, ConvTapsThatOnlyReadPaddingAreDropped) {
  struct Case {
    std::vector<int64_t> in, dil, pads, strides;
    std::string kernel;  // expected kernel_shape after the pass
  };
  const Case cases[] = {
      {{6, 6}, {6, 6}, {6, 6, 6, 6}, {1, 1}, "1x1"},  // ASPP-like: only the centre reaches the image
      {{6, 9}, {7, 2}, {7, 2, 7, 2}, {1, 1}, "1x3"},  // one axis shrinks
      {{3, 3}, {4, 3}, {4, 1, 4, 5}, {2, 2}, "1x2"},  // asymmetric pads, strided
  };
  for (const Case& c : cases) {
    Builder b;
    b.input("x", {2, 3, c.in[0], c.in[1]}).output("y").random_constant("w", {4, 3, 3, 3}).random_constant("b", {4});
    onnx::NodeProto* conv = b.node("Conv", {"x", "w", "b"}, {"y"});
    set_ints(conv, "dilations", c.dil);
    set_ints(conv, "pads", c.pads);
    set_ints(conv, "strides", c.strides);
    EXPECT_EQ(check_passes(b, {"shrink_conv_taps"}), "Conv");
    Model m = load(b);
    run_pass(*m.graph, "shrink_conv_taps");
    const Shape k = m.graph->nodes[0]->attr_ints("kernel_shape");
    EXPECT_EQ(std::to_string(k[0]) + "x" + std::to_string(k[1]), c.kernel);
  }
}

TEST(Passes, ZeroPadFoldsIntoConvAndAveragePool) {
  for (const char* op : {"Conv", "AveragePool"}) {
    Builder b;
    b.input("x", {2, 3, 7, 6}).output("y").random_constant("w", {4, 3, 3, 3});
    b.ints("pads", {8}, {0, 0, 1, 2, 0, 0, 2, 0});
    b.node("Pad", {"x", "pads"}, {"p"});
    onnx::NodeProto* n =
        std::string(op) == "Conv" ? b.node("Conv", {"p", "w"}, {"y"}) : b.node("AveragePool", {"p"}, {"y"});
    if (std::string(op) == "Conv")
      set_ints(n, "pads", {1, 1, 1, 1});
    else
      set_ints(n, "kernel_shape", {3, 3});
    EXPECT_EQ(check_passes(b, {"fuse_pad"}), op);
  }
  // Not folded: a pool with pads of its own, a non-zero pad value.
  Builder own;
  own.input("x", {1, 2, 5, 5}).output("y").ints("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  own.node("Pad", {"x", "pads"}, {"p"});
  onnx::NodeProto* pool = own.node("AveragePool", {"p"}, {"y"});
  set_ints(pool, "kernel_shape", {3, 3});
  set_ints(pool, "pads", {1, 1, 1, 1});
  Model m = load(own);
  EXPECT_FALSE(run_pass(*m.graph, "fuse_pad"));
  Builder value;
  value.input("x", {1, 2, 5, 5}).output("y").ints("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1}).constant("v", {}, {1.0f});
  value.node("Pad", {"x", "pads", "v"}, {"p"});
  set_ints(value.node("AveragePool", {"p"}, {"y"}), "kernel_shape", {3, 3});
  Model mv = load(value);
  EXPECT_FALSE(run_pass(*mv.graph, "fuse_pad"));
}

TEST(LayoutBlocked, PreActivationBatchNormIsOneScaleShift) {
  Builder b;
  b.input("x", {2, 8, 6, 5}).output("y");
  b.random_constant("w1", {16, 8, 3, 3}).random_constant("w2", {8, 24, 1, 1});
  b.random_constant("scale", {24}).random_constant("bias", {24}).random_constant("mean", {24});
  b.random_constant("var", {24}, 0.5f, 2.0f);
  set_ints(b.node("Conv", {"x", "w1"}, {"c1"}), "pads", {1, 1, 1, 1});
  set_int(b.node("Concat", {"x", "c1"}, {"cat"}), "axis", 1);
  b.node("BatchNormalization", {"cat", "scale", "bias", "mean", "var"}, {"bn"});
  b.node("Relu", {"bn"}, {"r"});
  b.node("Conv", {"r", "w2"}, {"y"});
  const std::string ops = check_passes(b, {"batchnorm_to_affine", "fuse_epilogue", "layout_blocked"}, 1e-4);
  if (!blocks_of_avx2()) return;
  EXPECT_EQ(count_op(ops, "BlockedScaleShift+Relu"), 1) << ops;
  EXPECT_EQ(count_op(ops, "FromBlocked"), 1) << ops;
}

}  // namespace kiln::test

namespace kiln::test {

// Node::origins: after the whole optimizer, each fused node names the
// imported nodes it does the work of, and every imported node that still
// computes something is named by exactly one executed node.
TEST(Provenance, FusedNodesNameTheirImportedNodes) {
  Builder b;
  b.input("x", {2, 8, 12, 12}).output("y").output("z");
  b.random_constant("w1", {8, 8, 3, 3}).random_constant("scale", {8}).random_constant("shift", {8});
  b.random_constant("mean", {8}).random_constant("var", {8}, 0.5f, 2.0f);
  b.random_constant("w2", {8, 8, 3, 3}).random_constant("mm", {12, 5}).random_constant("mb", {5});
  set_ints(b.node("Conv", {"x", "w1"}, {"c1"}), "pads", {1, 1, 1, 1});            // Conv_1
  b.node("BatchNormalization", {"c1", "scale", "shift", "mean", "var"}, {"bn"});  // BatchNormalization_2
  b.node("Relu", {"bn"}, {"r1"});                                                 // Relu_3
  set_ints(b.node("Conv", {"r1", "w2"}, {"c2"}), "pads", {1, 1, 1, 1});           // Conv_4
  b.node("Add", {"c2", "x"}, {"s"});                                              // Add_5
  b.node("Relu", {"s"}, {"y"});                                                   // Relu_6
  b.node("MatMul", {"y", "mm"}, {"m"});                                           // MatMul_7
  b.node("Add", {"m", "mb"}, {"z"});                                              // Add_8
  Model ref = load(b), opt = load(b);
  passes::optimize(*opt.graph, passes::PassOptions::from_env(2, {}));
  std::map<std::string, int> named;
  std::vector<std::string> with_bn, with_matmul;
  for (const auto& n : opt.graph->nodes) {
    const std::vector<std::string> o = n->origin_names();
    for (const std::string& name : o) ++named[name];
    if (std::find(o.begin(), o.end(), "BatchNormalization_2") != o.end()) with_bn = o;
    if (std::find(o.begin(), o.end(), "MatMul_7") != o.end()) with_matmul = o;
  }
  for (const auto& n : ref.graph->nodes) EXPECT_EQ(named[n->name], 1) << n->name << "\n" << opt.graph->dump();
  EXPECT_EQ(with_bn, (std::vector<std::string>{"Conv_1", "BatchNormalization_2", "Relu_3"})) << opt.graph->dump();
  EXPECT_EQ(with_matmul, (std::vector<std::string>{"MatMul_7", "Add_8"})) << opt.graph->dump();
  // The residual Add and its Relu join Conv_4 where oneDNN fuses the sum
  // (blocked layout, AVX2); the outputs agree either way.
  std::mt19937 rng(3);
  const std::vector<Tensor> feed = {random_f32({2, 8, 12, 12}, rng, -1, 1)};
  const std::vector<Tensor> want = run(*ref.graph, feed), got = run(*opt.graph, feed);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(all_close(got[i], want[i], 1e-4, 1e-4)) << i;
}

}  // namespace kiln::test

// ---- fuse_elementwise

namespace kiln::test {

TEST(Passes, FuseElementwiseHardSwishWrittenOut) {
  Builder b;
  b.input("x", {2, 16, 9, 11}).output("y").constant("three", {}, {3}).constant("zero", {}, {0});
  b.constant("six", {}, {6});
  b.node("Add", {"x", "three"}, {"a"});
  b.node("Clip", {"a", "zero", "six"}, {"c"});
  b.node("Mul", {"x", "c"}, {"m"});
  b.node("Div", {"m", "six"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fuse_elementwise"}), "Elementwise");
}

TEST(Passes, FuseElementwiseBroadcastsPeriodsAndShortRows) {
  Builder b;
  b.input("x", {2, 8, 5, 7}).input("y", {2, 8, 5, 7}).input("z", {1, 1, 5, 1}).output("out");
  b.random_constant("per_channel", {8, 1, 1}).random_constant("row", {7});
  b.node("Add", {"x", "per_channel"}, {"a"});
  b.node("Mul", {"a", "y"}, {"m"});
  b.node("Sigmoid", {"m"}, {"s"});
  b.node("Sub", {"s", "row"}, {"d"});
  b.node("Max", {"d", "z"}, {"out"});  // z varies along H only: rows of W
  EXPECT_EQ(check_passes(b, {"fuse_elementwise"}), "Elementwise");

  // A [4, 50] pattern repeating along rows of 3 x 4 x 50 = 600 elements,
  // longer than one register block (512): the pattern wraps inside a block.
  Builder p;
  p.input("x", {2, 3, 4, 50}).output("out").random_constant("pattern", {4, 50}, 0.5f, 2.0f);
  p.node("Div", {"x", "pattern"}, {"q"});
  p.node("Tanh", {"q"}, {"t"});
  p.node("Min", {"t", "x"}, {"out"});
  EXPECT_EQ(check_passes(p, {"fuse_elementwise"}), "Elementwise");
}

TEST(Passes, FuseElementwiseMergesBranchesAndKeepsSharedValues) {
  // exp(x) + (-x): both branches single-use, x read by both as one input.
  Builder b;
  b.input("x", {3, 40}).output("y");
  b.node("Exp", {"x"}, {"e"});
  b.node("Neg", {"x"}, {"n"});
  b.node("Add", {"e", "n"}, {"y"});
  EXPECT_EQ(check_passes(b, {"fuse_elementwise"}), "Elementwise");

  // s is also a graph output: computed once, outside the fused chain; t is
  // broadcast to another shape: not fused into the node that broadcasts it.
  Builder s;
  s.input("x", {3, 40}).input("c", {40}).output("s").output("y");
  s.node("Abs", {"x"}, {"ab"});
  s.node("Sqrt", {"ab"}, {"s"});
  s.node("Reciprocal", {"s"}, {"r"});
  s.node("Exp", {"c"}, {"ce"});
  s.node("Neg", {"ce"}, {"t"});
  s.node("Mul", {"r", "t"}, {"y"});
  EXPECT_EQ(check_passes(s, {"fuse_elementwise"}, 1e-5, 1e-5), "Elementwise Elementwise Elementwise");
}

TEST(Passes, FuseElementwiseLeavesLoneOpsAndOtherTypes) {
  Builder b;
  b.input("x", {4, 4}).output("y").random_constant("w", {4, 4});
  b.node("MatMul", {"x", "w"}, {"m"});
  b.node("Relu", {"m"}, {"y"});
  Model m = load(b);
  EXPECT_FALSE(run_pass(*m.graph, "fuse_elementwise"));
}

}  // namespace kiln::test

namespace kiln::test {

// Groups narrower than the channel block become block-wide groups with
// block-diagonal weights: same outputs, fewer groups (where the blocked
// kernels then run it: AVX2 and up).
TEST(Passes, WidenConvGroupsKeepsOutputs) {
  const int64_t block = dnnl_glue::channel_block();
  for (int64_t width : {4, 8, 24}) {
    if (width % block == 0) continue;
    int64_t r = 2;  // the fewest merged groups that make whole blocks
    while ((r * width) % block != 0) ++r;
    Builder b;
    const int64_t C = 2 * r * width, M = 2 * C;
    b.input("x", {1, C, 13, 11}).output("y").random_constant("w", {M, width, 3, 3}).random_constant("bias", {M});
    onnx::NodeProto* conv = b.node("Conv", {"x", "w", "bias"}, {"y"});
    set_int(conv, "group", C / width);
    set_ints(conv, "pads", {1, 1, 1, 1});
    Model ref = load(b), opt = load(b);
    const bool changed = run_pass(*opt.graph, "widen_conv_groups");
    if (blocked_convs_available()) {
      EXPECT_TRUE(changed) << "width " << width;
    }
    if (!changed) continue;
    int64_t groups = 0;
    for (const auto& n : opt.graph->nodes)
      if (n->op_type == "Conv") groups = n->attr_int("group", 1);
    EXPECT_EQ(groups, C / (r * width));
    std::mt19937 rng(9);
    std::vector<Tensor> feed = {random_f32({1, C, 13, 11}, rng)};
    EXPECT_TRUE(all_close(run(*opt.graph, feed)[0], run(*ref.graph, feed)[0], 1e-5, 1e-5));
  }
}

}  // namespace kiln::test

namespace kiln::test {

namespace {

// x.gather(axis, idx.expand(...)) with idx of shape idx_dims; returns the
// builder. Index values cycle through [-rows, rows) so negatives are covered.
Builder gather_of_expand(Shape x, std::vector<int64_t> idx_dims, std::vector<int64_t> expand_to, int64_t axis) {
  Builder b;
  b.input("x", x).output("y");
  int64_t n = 1;
  for (int64_t d : idx_dims) n *= d;
  const int64_t rows = x[static_cast<size_t>(axis)];
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = (i * 7) % (2 * rows) - rows;
  b.ints("idx", idx_dims, v);
  b.ints("to", {static_cast<int64_t>(expand_to.size())}, expand_to);
  b.node("Expand", {"idx", "to"}, {"e"});
  set_int(b.node("GatherElements", {"x", "e"}, {"y"}), "axis", axis);
  return b;
}

}  // namespace

TEST(GatherRows, ExpandedRowIndicesBecomeGatherND) {
  // [batch, points, features] gathered at k neighbours per point.
  EXPECT_EQ(check_passes(gather_of_expand({2, 5, 3}, {2, 12, 1}, {2, 12, 3}, 1), {"gather_rows"}), "Reshape GatherND");
  // Two batch dims and rows of two dims.
  EXPECT_EQ(check_passes(gather_of_expand({2, 3, 4, 2, 5}, {2, 3, 6, 1, 1}, {2, 3, 6, 2, 5}, 2), {"gather_rows"}),
            "Reshape GatherND");
  // Axis 0: no batch dims.
  EXPECT_EQ(check_passes(gather_of_expand({4, 3}, {7, 1}, {7, 3}, 0), {"gather_rows"}), "Reshape GatherND");
}

TEST(GatherRows, OtherIndexShapesAreLeftAlone) {
  auto untouched = [](const Builder& b) {
    Model m = load(b);
    return !run_pass(*m.graph, "gather_rows");
  };
  // Broadcast along a batch dim, a partial row, and an index varying along
  // the row: not a row gather.
  EXPECT_TRUE(untouched(gather_of_expand({2, 5, 3}, {1, 12, 1}, {2, 12, 3}, 1)));
  EXPECT_TRUE(untouched(gather_of_expand({2, 5, 3}, {2, 12, 1}, {2, 12, 2}, 1)));
  EXPECT_TRUE(untouched(gather_of_expand({2, 5, 3}, {2, 12, 3}, {2, 12, 3}, 1)));
}

}  // namespace kiln::test
