#include "core/settings.h"

#include <cstdlib>

namespace kiln {

namespace {

struct Variable {
  const char* name;
  const char* meaning;
};
// The table: every variable kiln reads, in the order `kiln device` lists them.
constexpr Variable kVariables[] = {
    {"KILN_CPU_ISA", "cap the kernels' instruction set: scalar, avx2 or avx512"},
    {"KILN_WINOGRAD", "0: no Winograd convolutions; 1: wherever they apply; unset: by shape"},
    {"KILN_WINOGRAD_TILES", "Winograd tiles per work block (tuning only)"},
    {"KILN_ARENA", "0: no memory planner"},
    {"KILN_PASS_REPORT", "1: print what each optimizer pass did"},
    {"KILN_VERIFY_PASSES", "1: verify the graph after every pass"},
    {"KILN_DUMP_PASSES", "1: print the graph after every pass"},
    {"KILN_ORT_DIR", "kiln compare --ref ort: folder holding node_modules/onnxruntime-node"},
    {"KILN_ORT_WORKER", "kiln compare --ref ort: the worker script"},
#ifdef KILN_TEST_HOOKS
    {"KILN_TEST_PERTURB_NODE", "tests only: perturb this node's output every run"},
#endif
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Settings read_settings() {
  Settings s;
  s.cpu_isa = env("KILN_CPU_ISA");
  const std::string w = env("KILN_WINOGRAD");
  s.winograd = w == "0" ? Settings::Winograd::kOff : w == "1" ? Settings::Winograd::kForce : Settings::Winograd::kAuto;
  s.winograd_tiles = std::atoll(env("KILN_WINOGRAD_TILES").c_str());
  s.arena = env("KILN_ARENA") != "0";
  s.pass_report = env("KILN_PASS_REPORT") == "1";
  s.verify_passes = env("KILN_VERIFY_PASSES") == "1";
  s.dump_passes = env("KILN_DUMP_PASSES") == "1";
  s.ort_dir = env("KILN_ORT_DIR");
  s.ort_worker = env("KILN_ORT_WORKER");
#ifdef KILN_TEST_HOOKS
  s.test_perturb_node = env("KILN_TEST_PERTURB_NODE");
#endif
  return s;
}

Settings& the_settings() {
  static Settings s = read_settings();
  return s;
}

}  // namespace

const Settings& settings() { return the_settings(); }

std::vector<SettingInfo> setting_infos() {
  std::vector<SettingInfo> v;
  for (const Variable& var : kVariables) v.push_back({var.name, env(var.name), var.meaning});
  return v;
}

#ifdef KILN_TEST_HOOKS
Settings& settings_for_tests() { return the_settings(); }
#endif

}  // namespace kiln
