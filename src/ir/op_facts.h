// What kiln knows about an op besides how to run it, declared in the op's
// own file next to its schema with KILN_OP_FACTS: its family (for pictures
// and summaries), its cost rule (MACs/FLOPs, ir/cost.h), how it may run on
// the channel-blocked layout, and its part in epilogue fusion. Analysis,
// pictures, passes and builders ask here; none keeps a list of op names, so
// a new op gets all of it from its own file. tests/op_facts_test.cpp walks
// the registry and fails on an op without facts.
//
//   KILN_OP_FACTS(Relu) {
//     return {.op = "Relu", .family = OpFamily::kActivation, .cost = cost::per_element(1),
//             .blocked = BlockedLayout::kUnary, .epilogue_step = epilogue_step_of(kEpilogueRelu)};
//   }
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ir/cost.h"
#include "ir/graph.h"
#include "kernels/cpu/epilogue.h"

namespace kiln {

enum class OpFamily {
  kConv,
  kMatMul,
  kNormalization,
  kActivation,
  kPooling,
  kElementwise,
  kShape,
  kReduction,
  kRecurrent,
  kAttention,
  kLayout,
  kControl,
  kOther,
};
// "conv", "matmul", ... ("other" last); all_op_families() in that order.
const char* op_family_name(OpFamily f);
const std::vector<OpFamily>& all_op_families();

// How an op may run on the channel-blocked layout (passes/layout_blocked.cpp)
// as it is, on its blocked input's twin.
enum class BlockedLayout {
  kNo,
  // Unary element-wise: maps the zero padding lanes to finite values, so the
  // blocked tensor stays valid (scalar extra inputs only, e.g. Clip's bounds).
  kUnary,
  // Binary element-wise with broadcasting against per-channel constants.
  kBinary,
};

// Producers: an activation op's epilogue_step gives the step a node of it
// amounts to (false: it cannot be one, e.g. a Clip bound that is not a
// constant).
using EpilogueStepFn = std::function<bool(const Node&, EpilogueStep*)>;
// The step `fn` with no parameters.
EpilogueStepFn epilogue_step_of(const EpilogueFn& fn);

struct OpFacts {
  std::string domain;  // "" = ai.onnx
  std::string op;
  OpFamily family = OpFamily::kOther;
  // Required: how to count its MACs and FLOPs (cost::none() when it computes
  // nothing, cost::not_counted(why) when kiln does not count it).
  CostFn cost;
  BlockedLayout blocked = BlockedLayout::kNo;
  // Activations that can run fused into their producer (passes/fuse_epilogue.cpp).
  EpilogueStepFn epilogue_step;
  // Steps epilogue_step may give that are not built in
  // (kernels/cpu/epilogue.h): registered by name with the facts.
  std::vector<const EpilogueFn*> epilogue_fns;
  // Producers whose kernels all honour an epilogue on their first output.
  bool accepts_epilogue = false;
};

class OpFactsRegistry {
 public:
  static OpFactsRegistry& global();
  // Adds facts (and registers their epilogue steps); two for one op throw.
  bool add(OpFacts facts);
  // The facts of (domain, op), nullptr when none were declared.
  const OpFacts* find(const std::string& domain, const std::string& op) const;
  std::vector<const OpFacts*> all() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<OpFacts>> facts_;  // by (domain, op)
};

// The facts of a node's op, nullptr when none.
const OpFacts* op_facts(const Node& n);

}  // namespace kiln

#define KILN_OP_FACTS_CONCAT2(a, b) a##b
#define KILN_OP_FACTS_CONCAT(a, b) KILN_OP_FACTS_CONCAT2(a, b)
// Declares and registers one op's facts (see the top of this file).
#define KILN_OP_FACTS(id)                                                               \
  static ::kiln::OpFacts KILN_OP_FACTS_CONCAT(kiln_facts_, id)();                       \
  [[maybe_unused]] static const bool KILN_OP_FACTS_CONCAT(kiln_facts_registered_, id) = \
      ::kiln::OpFactsRegistry::global().add(KILN_OP_FACTS_CONCAT(kiln_facts_, id)());   \
  static ::kiln::OpFacts KILN_OP_FACTS_CONCAT(kiln_facts_, id)()
