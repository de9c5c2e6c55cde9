// The engine's metadata section (JSON, docs/engine-format.md): what build
// writes and load reads, and the checks both apply to profiles.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "engine/engine_file.h"
#include "ir/graph.h"
#include "kernels/cpu/cpu_isa.h"
#include "kiln/session.h"

namespace kiln::engine {

// External-data locations in the graph section: a weight's data lies in the
// weights section, or is not stored (a kernel's packed copy replaces it).
inline constexpr const char* kWeightsLocation = "kiln:weights";
inline constexpr const char* kNoData = "kiln:packed";

// The metadata of a validated file; kiln::Error when it is not a JSON object,
// holds a fraction (it has integers only) or is nested deeper than 16.
nlohmann::json parse_meta(const EngineFile& file);
// "scalar", "avx2", "avx512" (cpu_isa_name's spellings); kiln::Error otherwise.
CpuIsa isa_from_name(const std::string& name);
// The CPU features kernels chosen for `isa` need, for the metadata.
std::vector<std::string> isa_features(CpuIsa isa);
// That a profile names graph inputs with min <= opt <= max dim by dim, ranks
// that match, and fixed dims where the graph's shape is fixed.
void check_profile(const ShapeProfile& profile, const Graph& g, const std::string& what);

}  // namespace kiln::engine
