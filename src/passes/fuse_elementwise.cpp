// Chains of float32 element-wise ops become one kiln.Elementwise node
// (ops/fused_elementwise.cpp) that reads its inputs once and writes one
// output, instead of one pass over memory per op: x * Clip(x + 3, 0, 6) / 6
// (hard-swish written out), GroupNorm's Mul + Add after InstanceNorm,
// x * Sigmoid(x) + y, a residual Add + Relu, ...
//
// A node joins the group of an operand's producer when that operand is the
// producer's only use (not a graph output) and has the node's own output
// shape, so that broadcasting happens only at the group's inputs; groups
// meeting at a node merge. Each group is a tree whose root's output is the
// fused node's output. Members: Add, Sub, Mul, Div, two-input Max/Min, Neg,
// Abs, Sqrt, Reciprocal, Exp, Erf and every activation that is an epilogue
// step (its op's facts), with the epilogue steps earlier passes gave them.
// Runs last, after the layout passes, so it fuses what they left, in
// whichever layout.
#include <algorithm>
#include <unordered_map>

#include "ir/epilogue.h"
#include "ir/op.h"
#include "ir/op_facts.h"
#include "ir/rewrite.h"
#include "ops/fused_elementwise.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

struct Member {
  ElementwiseOp op;
  EpilogueStep step;           // for kStep
  std::vector<Value*> inputs;  // the operands (1 or 2)
};

bool float_with_rank(const Value* v) { return v && v->type.dtype == DType::kFloat32 && v->type.has_rank(); }

// What node n computes as one instruction, or false when it is not a member.
bool member_of(const Node& n, Member* m) {
  if (!n.domain.empty() || n.outputs.size() != 1 || !float_with_rank(n.outputs[0])) return false;
  for (const EpilogueStep& s : epilogue_of(n))
    if (!s.fn) return false;
  static const std::unordered_map<std::string, ElementwiseOp> binary = {
      {"Add", ElementwiseOp::kAdd}, {"Sub", ElementwiseOp::kSub}, {"Mul", ElementwiseOp::kMul},
      {"Div", ElementwiseOp::kDiv}, {"Max", ElementwiseOp::kMax}, {"Min", ElementwiseOp::kMin}};
  static const std::unordered_map<std::string, ElementwiseOp> unary = {
      {"Neg", ElementwiseOp::kNeg}, {"Abs", ElementwiseOp::kAbs}, {"Sqrt", ElementwiseOp::kSqrt},
      {"Exp", ElementwiseOp::kExp}, {"Erf", ElementwiseOp::kErf}, {"Reciprocal", ElementwiseOp::kReciprocal}};
  if (auto it = binary.find(n.op_type); it != binary.end()) {
    if (n.inputs.size() != 2 || n.opset < 7) return false;  // before 7: legacy broadcast attributes
    m->op = it->second;
  } else if (auto u = unary.find(n.op_type); u != unary.end()) {
    if (n.inputs.size() != 1) return false;
    m->op = u->second;
  } else {
    const OpFacts* f = op_facts(n);
    if (!f || !f->epilogue_step || !n.has_input(0) || !f->epilogue_step(n, &m->step)) return false;
    m->op = ElementwiseOp::kStep;
  }
  const size_t operands = elementwise_op_is_binary(m->op) ? 2 : 1;
  m->inputs.assign(n.inputs.begin(), n.inputs.begin() + static_cast<std::ptrdiff_t>(operands));
  return std::all_of(m->inputs.begin(), m->inputs.end(), float_with_rank);
}

int steps_of(const Member& m) { return m.op == ElementwiseOp::kStep ? m.step.fn->flops : 1; }

class Fuser {
 public:
  explicit Fuser(Graph& g) : g_(g) {}

  bool run() {
    std::vector<Node*> order;
    for (const auto& up : g_.nodes) order.push_back(up.get());
    for (Node* n : order) {
      Member m;
      if (!member_of(*n, &m)) continue;
      members_[n] = m;
      // Groups this node can absorb: producers of single-use operands of its shape.
      std::vector<int> joined;
      for (Value* v : m.inputs) {
        Node* p = v->producer;
        if (!p || !group_.count(p) || !only_read_by(g_, v, n) || v->type.shape != n->outputs[0]->type.shape) continue;
        const int id = group_[p];
        if (std::find(joined.begin(), joined.end(), id) == joined.end()) joined.push_back(id);
      }
      const int id = joined.empty() ? new_group() : joined[0];
      for (size_t j = 1; j < joined.size(); ++j) merge(joined[j], id);
      groups_[static_cast<size_t>(id)].push_back(n);
      group_[n] = id;
    }
    bool changed = false;
    for (std::vector<Node*>& members : groups_)
      if (members.size() >= 2) changed |= fuse(members);
    return changed;
  }

 private:
  int new_group() {
    groups_.emplace_back();
    return static_cast<int>(groups_.size()) - 1;
  }

  void merge(int from, int into) {
    for (Node* n : groups_[static_cast<size_t>(from)]) {
      group_[n] = into;
      groups_[static_cast<size_t>(into)].push_back(n);
    }
    groups_[static_cast<size_t>(from)].clear();
  }

  // Replaces the group (members in graph order, the root last) by one node.
  bool fuse(std::vector<Node*> members) {
    std::unordered_map<const Node*, size_t> position;
    for (size_t i = 0; i < g_.nodes.size(); ++i) position[g_.nodes[i].get()] = i;
    std::sort(members.begin(), members.end(), [&](Node* a, Node* b) { return position[a] < position[b]; });
    Node* root = members.back();
    std::unordered_map<const Node*, bool> inside;
    for (Node* n : members) inside[n] = true;
    // The outside inputs first (registers 0..k-1), in order of first use.
    std::vector<Value*> inputs;
    std::unordered_map<const Value*, int> reg;
    for (Node* n : members)
      for (Value* v : members_[n].inputs)
        if (!(v->producer && inside.count(v->producer)) && !reg.count(v)) {
          reg[v] = static_cast<int>(inputs.size());
          inputs.push_back(v);
        }
    std::vector<int64_t> ops;
    std::vector<float> params;
    std::vector<std::string> fns;
    int64_t steps = 0;
    auto emit = [&](ElementwiseOp op, int a, int b, const EpilogueStep& step) {
      ops.insert(ops.end(), {static_cast<int64_t>(op), a, b});
      params.insert(params.end(), {step.alpha, step.beta});
      fns.push_back(op == ElementwiseOp::kStep ? step.fn->name : "");
      return static_cast<int>(inputs.size() + fns.size()) - 1;  // the register written
    };
    for (Node* n : members) {
      const Member& m = members_[n];
      const int a = reg.at(m.inputs[0]);
      const int b = m.inputs.size() > 1 ? reg.at(m.inputs[1]) : -1;
      int r = emit(m.op, a, b, m.step);
      steps += steps_of(m);
      for (const EpilogueStep& s : epilogue_of(*n)) {
        r = emit(ElementwiseOp::kStep, r, -1, s);
        steps += s.fn->flops;
      }
      reg[n->outputs[0]] = r;
    }
    Value* out = root->outputs[0];
    const std::vector<std::string> origins = merged_origins(members);
    for (Node* n : members) detach_node(g_, n);
    Node* fused = add_node(g_, "Elementwise", root->name, inputs, {out}, 1);
    fused->domain = kKilnDomain;
    fused->attrs["ops"] = ints_attr(std::move(ops));
    Attribute p;
    p.kind = Attribute::Kind::kFloats;
    p.floats = std::move(params);
    fused->attrs["params"] = std::move(p);
    Attribute f;
    f.kind = Attribute::Kind::kStrings;
    f.strings = std::move(fns);
    fused->attrs["fns"] = std::move(f);
    fused->attrs["steps"] = int_attr(steps);
    fused->origins = origins;
    return true;
  }

  Graph& g_;
  std::unordered_map<const Node*, Member> members_;
  std::unordered_map<const Node*, int> group_;
  std::vector<std::vector<Node*>> groups_;
};

}  // namespace

bool fuse_elementwise(Graph& g) { return Fuser(g).run(); }

}  // namespace kiln::passes
