#include "ir/op_facts.h"

#include <memory>

#include "kiln/error.h"

namespace kiln {

namespace {

struct FamilyName {
  OpFamily family;
  const char* name;
};
constexpr FamilyName kFamilyNames[] = {
    {OpFamily::kConv, "conv"},
    {OpFamily::kMatMul, "matmul"},
    {OpFamily::kNormalization, "normalization"},
    {OpFamily::kActivation, "activation"},
    {OpFamily::kPooling, "pooling"},
    {OpFamily::kElementwise, "elementwise"},
    {OpFamily::kShape, "shape"},
    {OpFamily::kReduction, "reduction"},
    {OpFamily::kRecurrent, "recurrent"},
    {OpFamily::kAttention, "attention"},
    {OpFamily::kLayout, "layout"},
    {OpFamily::kControl, "control"},
    {OpFamily::kOther, "other"},
};

std::string domain_of(const std::string& d) { return d == "ai.onnx" ? "" : d; }

}  // namespace

const char* op_family_name(OpFamily f) {
  for (const FamilyName& fn : kFamilyNames)
    if (fn.family == f) return fn.name;
  return "other";
}

const std::vector<OpFamily>& all_op_families() {
  static const std::vector<OpFamily> all = [] {
    std::vector<OpFamily> v;
    for (const FamilyName& fn : kFamilyNames) v.push_back(fn.family);
    return v;
  }();
  return all;
}

EpilogueStepFn epilogue_step_of(const EpilogueFn& fn) {
  const EpilogueFn* f = &fn;
  return [f](const Node&, EpilogueStep* step) {
    *step = {f, 0, 0};
    return true;
  };
}

OpFactsRegistry& OpFactsRegistry::global() {
  static OpFactsRegistry r;
  return r;
}

bool OpFactsRegistry::add(OpFacts facts) {
  facts.domain = domain_of(facts.domain);
  for (const EpilogueFn* fn : facts.epilogue_fns) register_epilogue_fn(fn);
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(facts.domain, facts.op);
  if (facts_.count(key))
    throw Error("two declarations of the facts of op " + (facts.domain.empty() ? "" : facts.domain + ".") + facts.op);
  facts_[key] = std::make_unique<OpFacts>(std::move(facts));
  return true;
}

const OpFacts* OpFactsRegistry::find(const std::string& domain, const std::string& op) const {
  const std::string d = domain_of(domain);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = facts_.find({d, op});
  return it == facts_.end() ? nullptr : it->second.get();
}

std::vector<const OpFacts*> OpFactsRegistry::all() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const OpFacts*> v;
  for (const auto& [key, f] : facts_) v.push_back(f.get());
  return v;
}

const OpFacts* op_facts(const Node& n) { return OpFactsRegistry::global().find(n.domain, n.op_type); }

}  // namespace kiln
