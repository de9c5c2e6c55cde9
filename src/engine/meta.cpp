#include "engine/meta.h"

namespace kiln::engine {

nlohmann::json parse_meta(const EngineFile& file) {
  using nlohmann::json;
  const std::string_view text = file.section(SectionKind::kMeta);
  // The metadata holds integers only: a fraction where an integer is read
  // would be converted, and one out of the integer's range is undefined
  // behaviour, so none passes. Nor does deep nesting, which nothing needs.
  constexpr int kMaxDepth = 16;
  std::string problem;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (problem.empty() && depth > kMaxDepth) problem = "is nested more than " + std::to_string(kMaxDepth) + " deep";
    if (problem.empty() && event == json::parse_event_t::value && parsed.is_number_float())
      problem = "has a fractional number (" + parsed.dump() + ")";
    return problem.empty();  // stop keeping values once it is refused
  };
  json meta = json::parse(text.begin(), text.end(), check, /*allow_exceptions=*/false);
  if (!problem.empty()) throw Error(file.source() + ": corrupted engine: the metadata " + problem);
  if (!meta.is_object()) throw Error(file.source() + ": corrupted engine: the metadata is not a JSON object");
  return meta;
}

CpuIsa isa_from_name(const std::string& name) {
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512})
    if (name == cpu_isa_name(isa)) return isa;
  throw Error("unknown instruction set '" + name + "'");
}

std::vector<std::string> isa_features(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar: return {"sse2"};
    case CpuIsa::kAvx2: return {"avx2", "fma"};
    case CpuIsa::kAvx512: return {"avx2", "fma", "avx512f", "avx512bw", "avx512vl"};
  }
  return {};
}

void check_profile(const ShapeProfile& profile, const Graph& g, const std::string& what) {
  if (profile.min.empty()) throw Error(what + ": a profile needs at least one input");
  for (const auto& [name, lo] : profile.min) {
    const Value* v = g.find(name);
    if (!v || !v->is_graph_input) throw Error(what + ": '" + name + "' is not an input of the model");
    if (!profile.opt.count(name) || !profile.max.count(name))
      throw Error(what + ": input '" + name + "' needs min, opt and max shapes");
    const Shape& opt = profile.opt.at(name);
    const Shape& hi = profile.max.at(name);
    if (opt.size() != lo.size() || hi.size() != lo.size())
      throw Error(what + ": input '" + name + "': min, opt and max shapes differ in rank");
    if (v->type.shape && v->type.shape->size() != lo.size())
      throw Error(what + ": input '" + name + "' has rank " + std::to_string(v->type.shape->size()) +
                  ", the profile gives " + shape_str(lo));
    for (size_t d = 0; d < lo.size(); ++d) {
      if (lo[d] < 0 || !(lo[d] <= opt[d] && opt[d] <= hi[d]))
        throw Error(what + ": input '" + name + "' dim " + std::to_string(d) + ": need 0 <= min <= opt <= max, got " +
                    std::to_string(lo[d]) + ", " + std::to_string(opt[d]) + ", " + std::to_string(hi[d]));
      const Dim* fixed = v->type.shape && (*v->type.shape)[d].is_known() ? &(*v->type.shape)[d] : nullptr;
      if (fixed && (lo[d] != fixed->value || hi[d] != fixed->value))
        throw Error(what + ": input '" + name + "' dim " + std::to_string(d) + " is fixed to " +
                    std::to_string(fixed->value) + " in the model, the profile asks " + std::to_string(lo[d]) + ".." +
                    std::to_string(hi[d]));
    }
  }
}

}  // namespace kiln::engine
