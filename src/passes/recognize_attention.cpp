// Recognizes scaled dot-product attention as exporters write it,
//   Y = MatMul(Softmax(Add(Mul(MatMul(Q, K^T), s), mask), axis -1), V)
// and replaces it by one kiln.Attention node (ops/kiln_attention.cpp), which
// never writes the whole scores tensor. Accepted around that core:
//   - the scale as Mul by a scalar constant (either side) or Div by one, on
//     the scores, on Q or on K^T (torch's nn.MultiheadAttention, hence ViT
//     and nn.TransformerEncoder, divides Q by sqrt(D) before the MatMul),
//     several of them multiplying; none at all is scale 1;
//   - K^T written as Transpose(K) swapping the last two dims: the op then
//     reads K itself; any other K^T is read as it is (k_transposed = 1);
//   - the optional additive mask (Add, either side) after the scale.
// Every intermediate value must be read only by the next node of the chain.
#include <algorithm>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// A binary default-domain `op` node.
bool is_op(const Node* n, const char* op) {
  return n && n->op_type == op && n->domain.empty() && n->inputs.size() == 2;
}

bool is_f32_with_rank(const Value* v, int min_rank) {
  return v && v->type.dtype == DType::kFloat32 && v->type.rank() >= min_rank;
}

// The node reading v when it is v's only reader (v no graph output).
Node* sole_reader(const Graph& g, const Value* v) {
  if (v->consumers.size() != 1 || !only_read_by(g, v, v->consumers[0])) return nullptr;
  return v->consumers[0];
}

// When v = Mul(x, c) / Mul(c, x) / Div(x, c) with c a scalar constant and v
// read only by `reader`: x, with *factor multiplied by c (or 1/c) and the node
// appended to *matched. Else v itself.
Value* strip_scale(const Graph& g, Value* v, const Node* reader, double* factor, std::vector<Node*>* matched) {
  Node* n = v->producer;
  if (!n || !only_read_by(g, v, reader)) return v;
  double c;
  if (is_op(n, "Mul") && scalar_constant(n->inputs[1], &c) && n->inputs[0]) {
    *factor *= c;
  } else if (is_op(n, "Mul") && scalar_constant(n->inputs[0], &c) && n->inputs[1]) {
    *factor *= c;
    matched->push_back(n);
    return n->inputs[1];
  } else if (is_op(n, "Div") && scalar_constant(n->inputs[1], &c) && c != 0 && n->inputs[0]) {
    *factor /= c;
  } else {
    return v;
  }
  matched->push_back(n);
  return n->inputs[0];
}

// Softmax over the last axis of a value of known rank.
bool softmax_over_last_axis(const Node& s) {
  const int rank = s.inputs[0]->type.rank();
  if (rank < 1) return false;
  int64_t axis = s.attr_int("axis", s.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;
  return axis == rank - 1;
}

// The last-two-dims swap of a rank-r value.
bool swaps_last_two(const Node& t, int rank) {
  if (!t.has_attr("perm")) return rank == 2;
  std::vector<int64_t> perm = t.attr_ints("perm");
  if (static_cast<int>(perm.size()) != rank || rank < 2) return false;
  for (int i = 0; i < rank - 2; ++i)
    if (perm[static_cast<size_t>(i)] != i) return false;
  return perm[static_cast<size_t>(rank - 2)] == rank - 1 && perm[static_cast<size_t>(rank - 1)] == rank - 2;
}

// True when the mask's last two dims are each 1 or the scores' dim: the
// kernel's broadcast of a mask over the rows and columns of the scores.
bool mask_fits(const Value* mask, const Value* scores) {
  if (!is_f32_with_rank(mask, 1) || !scores->type.has_rank()) return false;
  const DimVector& m = *mask->type.shape;
  const DimVector& s = *scores->type.shape;
  if (m.size() > s.size()) return false;  // would add batch dims to the scores: fine, but keep it simple
  for (size_t i = 1; i <= std::min<size_t>(2, m.size()); ++i) {
    const Dim& md = m[m.size() - i];
    const Dim& sd = s[s.size() - i];
    const bool one = md.is_known() && md.value == 1;
    const bool same = md.is_known() ? md == sd : !md.symbol.empty() && md == sd;
    if (!one && !same) return false;
  }
  return true;
}

// The scores chain ending in value x, which `reader` alone reads:
// [scale] ← MatMul(Q, K^T) with Q and K^T possibly scaled.
struct ScoresMatch {
  Value* q = nullptr;
  Value* kt = nullptr;
  double scale = 1.0;
  std::vector<Node*> nodes;
};

bool match_scores(const Graph& g, Value* x, const Node* reader, ScoresMatch* m) {
  Value* scores = strip_scale(g, x, reader, &m->scale, &m->nodes);
  const Node* scores_reader = scores == x ? reader : m->nodes.back();
  Node* qk = scores->producer;
  if (!is_op(qk, "MatMul") || !only_read_by(g, scores, scores_reader)) return false;
  m->nodes.push_back(qk);
  m->q = strip_scale(g, qk->inputs[0], qk, &m->scale, &m->nodes);
  m->kt = strip_scale(g, qk->inputs[1], qk, &m->scale, &m->nodes);
  return is_f32_with_rank(m->q, 2) && is_f32_with_rank(m->kt, 2);
}

bool match_at_softmax(Graph& g, Node& softmax) {
  Value* s_in = softmax.inputs[0];
  Value* s_out = softmax.outputs[0];
  if (!is_f32_with_rank(s_in, 2) || !softmax_over_last_axis(softmax)) return false;
  // After: MatMul(softmax, V).
  Node* pv = sole_reader(g, s_out);
  if (!is_op(pv, "MatMul") || pv->inputs[0] != s_out || pv->inputs[1] == s_out || !is_f32_with_rank(pv->inputs[1], 2))
    return false;
  // Before: the scores chain, or Add(scores chain, mask) either way round.
  ScoresMatch m;
  Value* mask = nullptr;
  if (!match_scores(g, s_in, &softmax, &m)) {
    Node* add = s_in->producer;
    if (!is_op(add, "Add") || !only_read_by(g, s_in, &softmax)) return false;
    for (int i = 0; i < 2 && !mask; ++i) {
      Value* other = add->inputs[static_cast<size_t>(1 - i)];
      m = ScoresMatch();
      if (!add->inputs[static_cast<size_t>(i)] || other == add->inputs[static_cast<size_t>(i)] ||
          !mask_fits(other, s_in) || !match_scores(g, add->inputs[static_cast<size_t>(i)], add, &m))
        continue;
      mask = other;
      m.nodes.push_back(add);
    }
    if (!mask) return false;
  }
  Value* k = m.kt;
  int64_t k_transposed = 1;
  Node* t = producer_if(m.kt, "Transpose");
  if (t && t->has_input(0) && swaps_last_two(*t, m.kt->type.rank())) {
    k = t->inputs[0];
    k_transposed = 0;
  }
  std::vector<Value*> inputs = {m.q, k, pv->inputs[1]};
  if (mask) inputs.push_back(mask);
  Value* y = pv->outputs[0];
  m.nodes.push_back(&softmax);
  m.nodes.push_back(pv);
  for (Node* n : m.nodes) detach_node(g, n);
  Node* attn = add_node(g, "Attention", softmax.name + ".attention", inputs, {y}, 1);
  attn->domain = kKilnDomain;
  attn->origins = merged_origins(m.nodes);
  attn->attrs["scale"] = float_attr(static_cast<float>(m.scale));
  attn->attrs["k_transposed"] = int_attr(k_transposed);
  return true;
}

}  // namespace

bool recognize_attention(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();  // nodes added below are not revisited
  for (size_t i = 0; i < count; ++i) {
    Node& n = *g.nodes[i];
    if (n.op_type != "Softmax" || !n.domain.empty() || !n.has_input(0) || !n.has_output(0)) continue;
    changed |= match_at_softmax(g, n);
  }
  return changed;
}

}  // namespace kiln::passes
