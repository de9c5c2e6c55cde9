// Every op kiln runs declares its facts (ir/op_facts.h) in its own file: a
// family and a cost rule at least, and facts name only ops that exist. Ops
// from other domains (custom ops, plugins) are exempt.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

#include "ir/op.h"
#include "ir/op_facts.h"

namespace kiln::test {
namespace {

bool kilns_own(const std::string& domain) { return domain.empty() || domain == "ai.onnx" || domain == kKilnDomain; }

TEST(OpFacts, EveryOpHasAFamilyAndACostRule) {
  std::set<std::pair<std::string, std::string>> ops;
  for (const OpSchema* s : OpRegistry::global().all())
    if (kilns_own(s->domain)) ops.insert({s->domain == "ai.onnx" ? "" : s->domain, s->name});
  ASSERT_GT(ops.size(), 150u);
  for (const auto& [domain, op] : ops) {
    const OpFacts* f = OpFactsRegistry::global().find(domain, op);
    ASSERT_NE(f, nullptr) << (domain.empty() ? "" : domain + ".") << op << " declares no KILN_OP_FACTS";
    EXPECT_TRUE(static_cast<bool>(f->cost))
        << op << " has no cost rule (cost::none() or cost::not_counted(why) say so)";
    EXPECT_STRNE(op_family_name(f->family), "") << op;
  }
}

TEST(OpFacts, FactsNameRegisteredOps) {
  for (const OpFacts* f : OpFactsRegistry::global().all()) {
    bool found = false;
    for (const OpSchema* s : OpRegistry::global().all())
      found |= s->name == f->op && (s->domain == "ai.onnx" ? std::string() : s->domain) == f->domain;
    EXPECT_TRUE(found) << "facts for " << f->op << " but no such op is registered";
  }
}

TEST(OpFacts, EpilogueActivationsAreElementwiseAndProducersAcceptThem) {
  int activations = 0, producers = 0;
  for (const OpFacts* f : OpFactsRegistry::global().all()) {
    if (f->epilogue_step) {
      ++activations;
      EXPECT_EQ(f->family, OpFamily::kActivation) << f->op;
    }
    producers += f->accepts_epilogue;
  }
  EXPECT_GE(activations, 8);
  EXPECT_GE(producers, 5);
}

}  // namespace
}  // namespace kiln::test
