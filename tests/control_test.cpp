// If, Loop and Scan on small hand-built graphs (bodies read outer-scope
// values), compared with plain loops; the timing of body nodes in profiled
// runs and the drawing of bodies (kiln profile, kiln graph).
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "analysis/graph_dot.h"
#include "ir/infer.h"
#include "op_harness.h"
#include "passes/pass_manager.h"
#include "runtime/executor.h"

namespace kiln::test {

namespace {

// Builds a graph by value names; bodies get `parent` so outer names resolve.
struct Builder {
  std::shared_ptr<Graph> g = std::make_shared<Graph>();
  explicit Builder(Graph* parent = nullptr) {
    g->parent = parent;
    g->opsets[""] = 17;
  }
  Value* get(const std::string& name) {
    if (Value* v = g->find(name)) return v;
    Value* v = g->add_value(name);
    if (g->parent && g->parent->find_in_scope(name)) v->is_outer = true;
    return v;
  }
  void input(const std::string& name, DType t, std::optional<Shape> shape = std::nullopt) {
    Value* v = get(name);
    v->is_graph_input = true;
    v->type.dtype = t;
    if (shape) v->type = ValueType::tensor(t, *shape);
    g->inputs.push_back(v);
  }
  void constant(const std::string& name, Tensor t) {
    Value* v = get(name);
    v->type = ValueType::tensor(t.dtype(), t.shape());
    v->initializer = std::move(t);
  }
  Node* node(const std::string& op, std::vector<std::string> ins, std::vector<std::string> outs, int opset = 17,
             std::map<std::string, Attribute> attrs = {}) {
    auto n = std::make_unique<Node>();
    n->name = op + std::to_string(g->nodes.size());
    n->op_type = op;
    n->opset = opset;
    n->attrs = std::move(attrs);
    for (auto& i : ins) n->inputs.push_back(i.empty() ? nullptr : get(i));
    for (auto& o : outs) n->outputs.push_back(get(o));
    return g->add_node(std::move(n));
  }
  void output(const std::string& name) { g->outputs.push_back(get(name)); }
};

Attribute graph_attr(const Builder& b) {
  Attribute a;
  a.kind = Attribute::Kind::kGraph;
  a.g = b.g;
  return a;
}

std::vector<Tensor> run_graph(Graph& g, const std::vector<Tensor>& feed) {
  g.sort_topologically();
  std::vector<std::string> unsupported;
  infer_graph(g, &unsupported);
  if (!unsupported.empty()) throw UnsupportedError(unsupported[0]);
  auto cg = CompiledGraph::compile(g);
  return cg->run(feed, nullptr);
}

Tensor scalar_i64(int64_t v) { return make_i64({}, {v}); }

// A model whose branch choice folds once shapes are known: an outer If on
// Shape(x)[0] == 2 whose taken branch reads an outer weight through a nested
// If on a runtime flag, and whose untaken branch squeezes axis 0 (size 2:
// wrong if it ran). Returns the top-level builder.
Builder shape_branch_model() {
  Builder top;
  top.input("x", DType::kFloat32, Shape{2, 3});
  top.input("flag", DType::kBool, Shape{});
  top.constant("w", make_f32({2, 3}, {1, -2, 3, -4, 5, -6}));
  top.constant("two", scalar_i64(2));
  top.constant("zero", scalar_i64(0));
  top.constant("axes0", make_i64({1}, {0}));
  top.node("Shape", {"x"}, {"shape"});
  top.node("Gather", {"shape", "zero"}, {"rows"});
  top.node("Equal", {"rows", "two"}, {"is_two"});
  Builder taken(top.g.get()), untaken(top.g.get());
  Builder inner_then(taken.g.get()), inner_else(taken.g.get());
  taken.node("Mul", {"x", "w"}, {"xw"});
  inner_then.node("Add", {"xw", "w"}, {"inner_t"});
  inner_then.output("inner_t");
  inner_else.node("Sub", {"xw", "w"}, {"inner_e"});
  inner_else.output("inner_e");
  taken.node("If", {"flag"}, {"taken_out"}, 17,
             {{"then_branch", graph_attr(inner_then)}, {"else_branch", graph_attr(inner_else)}});
  taken.node("Relu", {"taken_out"}, {"relu_out"});
  taken.output("relu_out");
  untaken.node("Squeeze", {"x", "axes0"}, {"squeezed"});
  untaken.output("squeezed");
  top.node("If", {"is_two"}, {"y"}, 17, {{"then_branch", graph_attr(taken)}, {"else_branch", graph_attr(untaken)}});
  top.output("y");
  return top;
}

size_t count_ops(const Graph& g, const std::string& op) {
  size_t n = 0;
  for (const auto& node : g.nodes) n += node->op_type == op;
  return n;
}

}  // namespace

TEST(ControlFlowPasses, ConstantIfIsInlinedAndBodiesAreOptimized) {
  std::mt19937 rng(3);
  Tensor x = random_f32({2, 3}, rng);
  for (bool flag : {true, false}) {
    Builder plain = shape_branch_model();
    std::vector<Tensor> want = run_graph(*plain.g, {x, make_bool({}, {flag})});

    Builder opt = shape_branch_model();
    opt.g->sort_topologically();
    std::vector<std::string> unsupported;
    infer_graph(*opt.g, &unsupported);
    ASSERT_TRUE(unsupported.empty());
    passes::PassOptions options;
    options.verify = true;
    passes::optimize(*opt.g, options);
    // The outer If folded away (its taken branch now lives in the top
    // graph); the runtime If on `flag` remains, with bodies that read the
    // weight as their own initializer.
    ASSERT_EQ(count_ops(*opt.g, "If"), 1u);
    const Node* inner = nullptr;
    for (const auto& n : opt.g->nodes)
      if (n->op_type == "If") inner = n.get();
    for (const char* branch : {"then_branch", "else_branch"}) {
      const Graph* body = inner->attr_graph(branch);
      ASSERT_NE(body, nullptr);
      EXPECT_EQ(body->parent, opt.g.get()) << branch;
      const Value* w = body->find("w");
      ASSERT_NE(w, nullptr) << branch;
      EXPECT_FALSE(w->is_outer) << branch;
      EXPECT_TRUE(w->initializer.has_value()) << branch;
    }
    std::vector<Tensor> got = run_graph(*opt.g, {x, make_bool({}, {flag})});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(all_close(got[0], want[0])) << "flag " << flag;
  }
}

TEST(ControlFlowPasses, UntakenBranchWithBadStaticShapesStillRuns) {
  // The runtime If picks the branch whose Squeeze is valid; the other one's
  // shapes do not check, which must not stop the model from loading.
  for (bool squeeze : {true, false}) {
    Builder top;
    top.input("c", DType::kBool, Shape{});
    top.input("x", DType::kFloat32, Shape{1, 3});
    top.constant("axes0", make_i64({1}, {0}));
    top.constant("axes1", make_i64({1}, {1}));
    Builder ok(top.g.get()), bad(top.g.get());
    ok.node("Squeeze", {"x", "axes0"}, {"s0"});
    ok.output("s0");
    bad.node("Squeeze", {"x", "axes1"}, {"s1"});
    bad.output("s1");
    top.node("If", {"c"}, {"out"}, 17, {{"then_branch", graph_attr(ok)}, {"else_branch", graph_attr(bad)}});
    top.output("out");
    Tensor x = make_f32({1, 3}, {1, 2, 3});
    if (squeeze) {
      auto out = run_graph(*top.g, {make_bool({}, {true}), x});
      EXPECT_EQ(out[0].shape(), (Shape{3}));
    } else {
      EXPECT_THROW(run_graph(*top.g, {make_bool({}, {false}), x}), Error);
    }
  }
}

TEST(If, RunsTheChosenBranchWithOuterScopeValues) {
  std::mt19937 rng(1);
  Tensor x = random_f32({2, 3}, rng), y = random_f32({2, 3}, rng);
  for (bool cond : {true, false}) {
    Builder top;
    top.input("c", DType::kBool, Shape{});
    top.input("x", DType::kFloat32, Shape{2, 3});
    top.input("y", DType::kFloat32, Shape{2, 3});
    Builder then_b(top.g.get()), else_b(top.g.get());
    then_b.node("Add", {"x", "y"}, {"t"});
    then_b.output("t");
    else_b.node("Mul", {"x", "y"}, {"e"});
    else_b.output("e");
    top.node("If", {"c"}, {"out"}, 17, {{"then_branch", graph_attr(then_b)}, {"else_branch", graph_attr(else_b)}});
    top.output("out");
    auto out = run_graph(*top.g, {make_bool({}, {cond}), x, y});
    Tensor want(DType::kFloat32, {2, 3});
    for (int i = 0; i < 6; ++i)
      want.data<float>()[i] = cond ? x.data<float>()[i] + y.data<float>()[i] : x.data<float>()[i] * y.data<float>()[i];
    EXPECT_TRUE(all_close(out[0], want));
    const ValueType& t = top.g->outputs[0]->type;
    EXPECT_EQ(t.dtype, DType::kFloat32);
    ASSERT_TRUE(t.shape.has_value());
    EXPECT_EQ(t.shape->size(), 2u);
  }
}

TEST(If, BranchOutputCountMustMatch) {
  Builder top;
  top.input("c", DType::kBool, Shape{});
  top.input("x", DType::kFloat32, Shape{2});
  Builder then_b(top.g.get()), else_b(top.g.get());
  then_b.node("Identity", {"x"}, {"t"});
  then_b.output("t");
  else_b.node("Identity", {"x"}, {"e1"});
  else_b.node("Identity", {"x"}, {"e2"});
  else_b.output("e1");
  else_b.output("e2");
  top.node("If", {"c"}, {"out"}, 17, {{"then_branch", graph_attr(then_b)}, {"else_branch", graph_attr(else_b)}});
  top.output("out");
  EXPECT_THROW(run_graph(*top.g, {make_bool({}, {true}), make_f32({2}, {1, 2})}), Error);
}

// Body: s_out = s + x (x from the outer scope); scan outputs: s (before the
// update) and the iteration number.
Builder sum_loop_body(Graph* parent, bool use_cond_passthrough = true) {
  Builder body(parent);
  body.input("i", DType::kInt64, Shape{});
  body.input("cond_in", DType::kBool, Shape{});
  body.input("s", DType::kFloat32, Shape{3});
  body.node("Identity", {"cond_in"}, {"cond_out"});
  body.node("Add", {"s", "x"}, {"s_out"});
  body.node("Identity", {"s"}, {"s_scan"});
  body.node("Identity", {"i"}, {"i_scan"});
  (void)use_cond_passthrough;
  for (const char* o : {"cond_out", "s_out", "s_scan", "i_scan"}) body.output(o);
  return body;
}

// A Loop over sum_loop_body with inputs M (the type and shape of `m`) and
// cond when given, then x and s0.
Builder sum_loop_model(const std::optional<Tensor>& m, bool cond) {
  Builder top;
  if (m) top.input("M", m->dtype(), m->shape());
  if (cond) top.input("cond", DType::kBool, Shape{});
  top.input("x", DType::kFloat32, Shape{3});
  top.input("s0", DType::kFloat32, Shape{3});
  Builder body = sum_loop_body(top.g.get());
  top.node("Loop", {m ? "M" : "", cond ? "cond" : "", "s0"}, {"s_final", "s_all", "i_all"}, 13,
           {{"body", graph_attr(body)}});
  for (const char* o : {"s_final", "s_all", "i_all"}) top.output(o);
  return top;
}

std::vector<Tensor> run_sum_loop(std::optional<Tensor> m, std::optional<Tensor> cond, const Tensor& x,
                                 const Tensor& s0) {
  Builder top = sum_loop_model(m, cond.has_value());
  std::vector<Tensor> feed;
  if (m) feed.push_back(*m);
  if (cond) feed.push_back(*cond);
  feed.push_back(x);
  feed.push_back(s0);
  return run_graph(*top.g, feed);
}

TEST(Loop, TripCountAccumulatesCarriedAndScanOutputs) {
  std::mt19937 rng(2);
  Tensor x = random_f32({3}, rng), s0 = random_f32({3}, rng);
  auto out = run_sum_loop(scalar_i64(5), std::nullopt, x, s0);
  std::vector<float> s(s0.data<float>(), s0.data<float>() + 3);
  Tensor want_all(DType::kFloat32, {5, 3});
  for (int it = 0; it < 5; ++it)
    for (int j = 0; j < 3; ++j) {
      want_all.data<float>()[it * 3 + j] = s[j];
      s[j] += x.data<float>()[j];
    }
  EXPECT_TRUE(all_close(out[0], make_f32({3}, s)));
  EXPECT_TRUE(all_close(out[1], want_all));
  ASSERT_EQ(out[2].shape(), Shape({5}));
  for (int it = 0; it < 5; ++it) EXPECT_EQ(out[2].data<int64_t>()[it], it);
}

TEST(Loop, ZeroAndNegativeTripCountsRunNoIteration) {
  std::mt19937 rng(3);
  Tensor x = random_f32({3}, rng), s0 = random_f32({3}, rng);
  for (int64_t m : {0, -4}) {
    auto out = run_sum_loop(scalar_i64(m), make_bool({}, {true}), x, s0);
    EXPECT_TRUE(all_close(out[0], s0));
    EXPECT_EQ(out[1].shape(), Shape({0, 3}));  // element shape from the body's declared type
    EXPECT_EQ(out[2].shape(), Shape({0}));
  }
}

TEST(Loop, FalseInitialConditionSkipsTheBody) {
  std::mt19937 rng(4);
  Tensor x = random_f32({3}, rng), s0 = random_f32({3}, rng);
  auto out = run_sum_loop(std::nullopt, make_bool({}, {false}), x, s0);
  EXPECT_TRUE(all_close(out[0], s0));
  EXPECT_EQ(out[1].shape()[0], 0);
}

TEST(Loop, BodyConditionStopsTheLoop) {
  // A shift register of bools: cond_out = a, a' = b, b' = false. Starting from
  // (true, true) the body reports true, true, false: three iterations.
  Builder top;
  top.input("M", DType::kInt64, Shape{});
  top.input("a0", DType::kBool, Shape{});
  top.input("b0", DType::kBool, Shape{});
  Builder body(top.g.get());
  body.input("i", DType::kInt64, Shape{});
  body.input("c", DType::kBool, Shape{});
  body.input("a", DType::kBool, Shape{});
  body.input("b", DType::kBool, Shape{});
  body.constant("no", make_bool({}, {false}));
  body.node("Identity", {"a"}, {"cond_out"});
  body.node("Identity", {"b"}, {"a_out"});
  body.node("Identity", {"no"}, {"b_out"});
  body.node("Identity", {"i"}, {"i_scan"});
  for (const char* o : {"cond_out", "a_out", "b_out", "i_scan"}) body.output(o);
  top.node("Loop", {"M", "", "a0", "b0"}, {"a_f", "b_f", "iters"}, 11, {{"body", graph_attr(body)}});
  for (const char* o : {"a_f", "b_f", "iters"}) top.output(o);
  auto out = run_graph(*top.g, {scalar_i64(100), make_bool({}, {true}), make_bool({}, {true})});
  ASSERT_EQ(out[2].shape(), Shape({3}));
  EXPECT_EQ(out[2].data<int64_t>()[2], 2);
  EXPECT_FALSE(out[0].data<bool>()[0]);
}

TEST(Loop, BadTripCountIsAnError) {
  std::mt19937 rng(5);
  Tensor x = random_f32({3}, rng), s0 = random_f32({3}, rng);
  EXPECT_THROW(run_sum_loop(make_i64({2}, {1, 2}), std::nullopt, x, s0), Error);
  EXPECT_THROW(run_sum_loop(make_f32({}, {3}), std::nullopt, x, s0), Error);
}

TEST(Loop, BodyArityIsChecked) {
  Builder top;
  top.input("M", DType::kInt64, Shape{});
  top.input("s0", DType::kFloat32, Shape{3});
  top.input("x", DType::kFloat32, Shape{3});
  Builder body = sum_loop_body(top.g.get());
  // Two carried inputs, but the body takes one.
  top.node("Loop", {"M", "", "s0", "s0"}, {"a", "b"}, 13, {{"body", graph_attr(body)}});
  top.output("a");
  EXPECT_THROW(run_graph(*top.g, {scalar_i64(1), make_f32({3}, {0, 0, 0}), make_f32({3}, {0, 0, 0})}), Error);
}

// Scan-9+ body: state' = state + x_t; scan output = state' * w (w outer).
Builder cumsum_body(Graph* parent) {
  Builder body(parent);
  body.input("st", DType::kFloat32, Shape{2});
  body.input("xt", DType::kFloat32, Shape{2});
  body.node("Add", {"st", "xt"}, {"st_out"});
  body.node("Mul", {"st_out", "w"}, {"y"});
  body.output("st_out");
  body.output("y");
  return body;
}

TEST(Scan, AxesAndDirectionsAgainstReference) {
  // x: [2, L, 3]? No: scan axis 1 of x [2(elem), L] transposed: x is [2, L] with
  // the element along axis 0, scanned along axis 1 in reverse; y stacked along
  // output axis 1 and prepended.
  const int L = 4;
  std::mt19937 rng(6);
  Tensor x = random_f32({2, L}, rng), st0 = random_f32({2}, rng), w = random_f32({2}, rng);
  Builder top;
  top.input("st0", DType::kFloat32, Shape{2});
  top.input("x", DType::kFloat32, Shape{2, L});
  top.input("w", DType::kFloat32, Shape{2});
  Builder body = cumsum_body(top.g.get());
  top.node("Scan", {"st0", "x"}, {"st_f", "ys"}, 11,
           {{"body", graph_attr(body)},
            {"num_scan_inputs", attr_int(1)},
            {"scan_input_axes", attr_ints({-1})},
            {"scan_input_directions", attr_ints({1})},
            {"scan_output_axes", attr_ints({1})},
            {"scan_output_directions", attr_ints({1})}});
  top.output("st_f");
  top.output("ys");
  auto out = run_graph(*top.g, {st0, x, w});
  float st[2] = {st0.data<float>()[0], st0.data<float>()[1]};
  Tensor want(DType::kFloat32, {2, L});
  for (int t = 0; t < L; ++t) {
    int src = L - 1 - t;  // reverse scan
    int dst = L - 1 - t;  // prepended
    for (int j = 0; j < 2; ++j) {
      st[j] += x.data<float>()[j * L + src];
      want.data<float>()[j * L + dst] = st[j] * w.data<float>()[j];
    }
  }
  EXPECT_TRUE(all_close(out[0], make_f32({2}, {st[0], st[1]})));
  EXPECT_TRUE(all_close(out[1], want));
  const ValueType& t = top.g->outputs[1]->type;
  ASSERT_TRUE(t.shape.has_value());
  EXPECT_EQ((*t.shape)[1].value, L);
}

TEST(Scan, EmptySequenceAndMismatchedLengths) {
  Builder top;
  top.input("st0", DType::kFloat32, Shape{2});
  top.input("x", DType::kFloat32, std::nullopt);
  top.input("w", DType::kFloat32, Shape{2});
  Builder body = cumsum_body(top.g.get());
  top.node("Scan", {"st0", "x"}, {"st_f", "ys"}, 9, {{"body", graph_attr(body)}, {"num_scan_inputs", attr_int(1)}});
  top.output("st_f");
  top.output("ys");
  Tensor st0 = make_f32({2}, {1, 2});
  auto out = run_graph(*top.g, {st0, Tensor(DType::kFloat32, {0, 2}), make_f32({2}, {1, 1})});
  EXPECT_TRUE(all_close(out[0], st0));
  EXPECT_EQ(out[1].shape(), Shape({0, 2}));

  Builder top2;
  top2.input("st0", DType::kFloat32, Shape{2});
  top2.input("x1", DType::kFloat32, Shape{3, 2});
  top2.input("x2", DType::kFloat32, Shape{4, 2});
  top2.input("w", DType::kFloat32, Shape{2});
  Builder body2(top2.g.get());
  body2.input("st", DType::kFloat32, Shape{2});
  body2.input("a", DType::kFloat32, Shape{2});
  body2.input("b", DType::kFloat32, Shape{2});
  body2.node("Add", {"a", "b"}, {"s"});
  body2.output("s");
  top2.node("Scan", {"st0", "x1", "x2"}, {"f"}, 16, {{"body", graph_attr(body2)}, {"num_scan_inputs", attr_int(2)}});
  top2.output("f");
  EXPECT_THROW(run_graph(*top2.g, {st0, Tensor(DType::kFloat32, {3, 2}), Tensor(DType::kFloat32, {4, 2}),
                                   make_f32({2}, {1, 1})}),
               Error);
}

TEST(Scan, Opset8BatchesWithSequenceLengths) {
  const int Bt = 3, L = 4;
  std::mt19937 rng(7);
  Tensor x = random_f32({Bt, L, 2}, rng), st0 = random_f32({Bt, 2}, rng), w = random_f32({2}, rng);
  std::vector<int64_t> lens = {4, 2, 0};
  Builder top;
  top.input("lens", DType::kInt64, Shape{Bt});
  top.input("st0", DType::kFloat32, Shape{Bt, 2});
  top.input("x", DType::kFloat32, Shape{Bt, L, 2});
  top.input("w", DType::kFloat32, Shape{2});
  Builder body = cumsum_body(top.g.get());
  top.node("Scan", {"lens", "st0", "x"}, {"st_f", "ys"}, 8,
           {{"body", graph_attr(body)}, {"num_scan_inputs", attr_int(1)}, {"directions", attr_ints({1})}});
  top.output("st_f");
  top.output("ys");
  auto out = run_graph(*top.g, {make_i64({Bt}, lens), st0, x, w});
  Tensor want_st(DType::kFloat32, {Bt, 2}), want_y(DType::kFloat32, {Bt, L, 2});
  for (int b = 0; b < Bt; ++b) {
    float st[2] = {st0.data<float>()[b * 2], st0.data<float>()[b * 2 + 1]};
    int n = static_cast<int>(lens[static_cast<size_t>(b)]);
    for (int t = 0; t < n; ++t) {
      int src = n - 1 - t;  // reverse within the valid length
      for (int j = 0; j < 2; ++j) {
        st[j] += x.data<float>()[(b * L + src) * 2 + j];
        want_y.data<float>()[(b * L + t) * 2 + j] = st[j] * w.data<float>()[j];
      }
    }
    want_st.data<float>()[b * 2] = st[0];
    want_st.data<float>()[b * 2 + 1] = st[1];
  }
  EXPECT_TRUE(all_close(out[0], want_st));
  EXPECT_TRUE(all_close(out[1], want_y));
  EXPECT_THROW(run_graph(*top.g, {make_i64({Bt}, {5, 1, 1}), st0, x, w}), Error);  // length > max
}

TEST(Scan, NumScanInputsIsValidated) {
  Builder top;
  top.input("st0", DType::kFloat32, Shape{2});
  top.input("x", DType::kFloat32, Shape{3, 2});
  top.input("w", DType::kFloat32, Shape{2});
  Builder body = cumsum_body(top.g.get());
  top.node("Scan", {"st0", "x"}, {"st_f", "ys"}, 9, {{"body", graph_attr(body)}, {"num_scan_inputs", attr_int(3)}});
  top.output("st_f");
  EXPECT_THROW(run_graph(*top.g, {make_f32({2}, {0, 0}), Tensor(DType::kFloat32, {3, 2}), make_f32({2}, {1, 1})}),
               Error);
}

// A profiled run times every node inside bodies: calls per run (a Loop's
// body once per iteration, an untaken branch never) and their time, which
// the node holding them includes.
TEST(ControlFlowProfile, BodyNodesAreTimedPerCall) {
  Builder top = sum_loop_model(scalar_i64(0), false);
  const Graph& body = *top.g->nodes[0]->attr_graph("body");
  top.g->sort_topologically();
  std::vector<std::string> unsupported;
  infer_graph(*top.g, &unsupported);
  ASSERT_TRUE(unsupported.empty());
  auto cg = CompiledGraph::compile(*top.g);
  std::mt19937 rng(7);
  for (int64_t trips : {4, 0}) {
    NodeTimes times;
    cg->run({scalar_i64(trips), random_f32({3}, rng), random_f32({3}, rng)}, nullptr, nullptr, &times);
    ASSERT_EQ(times.nodes.size(), 1u);
    const int64_t loop_ns = times.nodes[0].end_ns - times.nodes[0].start_ns;
    int64_t body_ns = 0;
    EXPECT_EQ(times.bodies.size(), trips ? body.nodes.size() : 0u);
    for (const auto& n : body.nodes) {
      auto it = times.bodies.find(n.get());
      if (!trips) continue;
      ASSERT_NE(it, times.bodies.end()) << n->name;
      EXPECT_EQ(it->second.calls, trips) << n->name;
      EXPECT_GE(it->second.total_ns, 0);
      body_ns += it->second.total_ns;
    }
    EXPECT_LE(body_ns, loop_ns);
  }

  // Nested Ifs: the taken branch's nodes and its inner If's taken branch.
  Builder ifs = shape_branch_model();
  ifs.g->sort_topologically();
  infer_graph(*ifs.g, &unsupported);
  auto cg_if = CompiledGraph::compile(*ifs.g);
  NodeTimes times;
  cg_if->run({random_f32({2, 3}, rng), make_bool({}, {true})}, nullptr, nullptr, &times);
  std::map<std::string, int64_t> calls;  // op -> calls
  for (const auto& [node, t] : times.bodies) calls[node->op_type] += t.calls;
  EXPECT_EQ(calls, (std::map<std::string, int64_t>{{"Add", 1}, {"If", 1}, {"Mul", 1}, {"Relu", 1}}));
}

// kiln graph draws each body as a cluster: every element defined once with
// its own id, edges from outer producers into the body, body outputs into
// the node.
TEST(GraphDot, ControlFlowBodiesAreClusters) {
  Builder top = shape_branch_model();
  top.g->sort_topologically();
  std::vector<std::string> unsupported;
  infer_graph(*top.g, &unsupported);
  DotStats st;
  const std::string dot = graph_to_dot(*top.g, DotOptions{}, &st);
  EXPECT_EQ(st.nodes, 4);
  EXPECT_EQ(st.bodies, 4);      // then/else of the outer If, then/else of the inner one
  EXPECT_EQ(st.body_nodes, 6);  // Mul, If, Relu; Add; Sub; Squeeze
  size_t at = 0;
  while (top.g->nodes[at]->op_type != "If") ++at;
  const std::string self = "n" + std::to_string(at);
  std::map<std::string, std::string> defs;
  std::set<std::pair<std::string, std::string>> edges;
  static const std::regex def(R"(^\s*([A-Za-z0-9_]+) \[(.*)\];$)"), edge(R"(^\s*(\S+) -> (\S+) \[.*$)");
  std::istringstream lines(dot);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, edge)) {
      edges.insert({m[1], m[2]});
    } else if (std::regex_match(line, m, def) && m[1] != "graph" && m[1] != "node" && m[1] != "edge") {
      EXPECT_EQ(defs.count(m[1]), 0u) << "defined twice: " << m[1];
      defs[m[1]] = m[2];
    }
  }
  for (const auto& [from, to] : edges) {
    EXPECT_EQ(defs.count(from), 1u) << from << " -> " << to;
    EXPECT_EQ(defs.count(to), 1u) << from << " -> " << to;
  }
  const std::string taken = self + "_then_branch_", inner = taken + "n1_then_branch_";
  for (const std::string& id :
       {taken + "n0", taken + "n1", taken + "n2", inner + "n0", taken + "n1_else_branch_n0", self + "_else_branch_n0"})
    EXPECT_EQ(defs.count(id), 1u) << id;
  EXPECT_NE(defs[taken + "n0"].find("label=\"Mul"), std::string::npos) << defs[taken + "n0"];
  EXPECT_NE(defs[inner + "n0"].find("#1 2x3"), std::string::npos) << "outer weight w in the inner Add";
  EXPECT_TRUE(edges.count({"in0", taken + "n0"})) << "x from the top level into the body";
  EXPECT_TRUE(edges.count({taken + "n0", inner + "n0"})) << "xw from the body into the nested body";
  EXPECT_TRUE(edges.count({taken + "out0", self})) << "body output into its If";
  EXPECT_TRUE(edges.count({inner + "out0", taken + "n1"}));
  EXPECT_NE(dot.find("then_branch of If"), std::string::npos);
}

}  // namespace kiln::test
