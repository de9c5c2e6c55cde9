#include "ir/epilogue.h"

#include <algorithm>

#include "kiln/error.h"

namespace kiln {

namespace {

const char* const kStepsAttr = "kiln.epilogue";
const char* const kParamsAttr = "kiln.epilogue_params";

struct KindName {
  EpilogueStep::Kind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {
    {EpilogueStep::Kind::kRelu, "Relu"},       {EpilogueStep::Kind::kClip, "Clip"},
    {EpilogueStep::Kind::kLeakyRelu, "LeakyRelu"}, {EpilogueStep::Kind::kSigmoid, "Sigmoid"},
    {EpilogueStep::Kind::kHardSigmoid, "HardSigmoid"}, {EpilogueStep::Kind::kHardSwish, "HardSwish"},
    {EpilogueStep::Kind::kSilu, "SiLU"},       {EpilogueStep::Kind::kGelu, "Gelu"},
    {EpilogueStep::Kind::kGeluTanh, "GeluTanh"}, {EpilogueStep::Kind::kTanh, "Tanh"},
};

const char* kind_name(EpilogueStep::Kind k) {
  for (const KindName& kn : kKindNames)
    if (kn.kind == k) return kn.name;
  return "?";
}

}  // namespace

bool accepts_epilogue(const Node& n) {
  static const char* const kOps[] = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add"};
  if (!n.domain.empty() || n.outputs.size() != 1 || !n.outputs[0]) return false;
  const DType t = n.outputs[0]->type.dtype;
  if (t != DType::kFloat32 && t != DType::kFloat64) return false;
  return std::any_of(std::begin(kOps), std::end(kOps), [&](const char* op) { return n.op_type == op; });
}

bool has_epilogue(const Node& n) { return n.has_attr(kStepsAttr); }

std::vector<EpilogueStep> epilogue_of(const Node& n) {
  std::vector<EpilogueStep> steps;
  if (!has_epilogue(n)) return steps;
  std::vector<std::string> names = n.attr_strings(kStepsAttr);
  std::vector<float> params = n.attr_floats(kParamsAttr);
  if (params.size() != 2 * names.size()) throw Error(n.describe() + ": malformed epilogue");
  for (size_t i = 0; i < names.size(); ++i) {
    const KindName* kn = std::find_if(std::begin(kKindNames), std::end(kKindNames),
                                      [&](const KindName& k) { return names[i] == k.name; });
    if (kn == std::end(kKindNames)) throw Error(n.describe() + ": unknown epilogue step '" + names[i] + "'");
    steps.push_back({kn->kind, params[2 * i], params[2 * i + 1]});
  }
  return steps;
}

void append_epilogue(Node& n, const EpilogueStep& step) {
  Attribute& names = n.attrs[kStepsAttr];
  names.kind = Attribute::Kind::kStrings;
  names.strings.push_back(kind_name(step.kind));
  Attribute& params = n.attrs[kParamsAttr];
  params.kind = Attribute::Kind::kFloats;
  params.floats.push_back(step.alpha);
  params.floats.push_back(step.beta);
}

std::string epilogue_str(const Node& n) {
  std::string s;
  for (const EpilogueStep& st : epilogue_of(n)) {
    if (!s.empty()) s += "+";
    s += kind_name(st.kind);
    if (st.kind == EpilogueStep::Kind::kClip)
      s += "(" + std::to_string(st.alpha) + "," + std::to_string(st.beta) + ")";
  }
  return s;
}

}  // namespace kiln
