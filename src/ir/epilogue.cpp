#include "ir/epilogue.h"

#include <algorithm>

#include "ir/op_facts.h"
#include "kiln/error.h"

namespace kiln {

namespace {

const char* const kStepsAttr = "kiln.epilogue";
const char* const kParamsAttr = "kiln.epilogue_params";

}  // namespace

bool accepts_epilogue(const Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1 || !n.outputs[0]) return false;
  const DType t = n.outputs[0]->type.dtype;
  if (t != DType::kFloat32 && t != DType::kFloat64) return false;
  const OpFacts* f = op_facts(n);
  return f && f->accepts_epilogue;
}

bool has_epilogue(const Node& n) { return n.has_attr(kStepsAttr); }

std::vector<EpilogueStep> epilogue_of(const Node& n) {
  std::vector<EpilogueStep> steps;
  if (!has_epilogue(n)) return steps;
  std::vector<std::string> names = n.attr_strings(kStepsAttr);
  std::vector<float> params = n.attr_floats(kParamsAttr);
  if (params.size() != 2 * names.size()) throw Error(n.describe() + ": malformed epilogue");
  for (size_t i = 0; i < names.size(); ++i) {
    const EpilogueFn* fn = find_epilogue_fn(names[i]);
    if (!fn) throw Error(n.describe() + ": unknown epilogue step '" + names[i] + "'");
    steps.push_back({fn, params[2 * i], params[2 * i + 1]});
  }
  return steps;
}

void append_epilogue(Node& n, const EpilogueStep& step) {
  Attribute& names = n.attrs[kStepsAttr];
  names.kind = Attribute::Kind::kStrings;
  names.strings.push_back(step.fn->name);
  Attribute& params = n.attrs[kParamsAttr];
  params.kind = Attribute::Kind::kFloats;
  params.floats.push_back(step.alpha);
  params.floats.push_back(step.beta);
}

std::string epilogue_str(const Node& n) {
  std::string s;
  for (const EpilogueStep& st : epilogue_of(n)) {
    if (!s.empty()) s += "+";
    s += st.fn->name;
    if (st.fn == &kEpilogueClip) s += "(" + std::to_string(st.alpha) + "," + std::to_string(st.beta) + ")";
  }
  return s;
}

}  // namespace kiln
