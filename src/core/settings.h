// Every KILN_* environment variable kiln reads, in one table, read once (at
// first use) into one struct. `kiln device` prints them with their values and
// the README lists them; nothing else in kiln calls getenv.
#pragma once
#include <string>
#include <vector>

namespace kiln {

struct Settings {
  // KILN_CPU_ISA=scalar|avx2|avx512: caps the instruction set of kiln's
  // kernels and oneDNN's (to test a lower path on a machine with a higher
  // one); never raises it. "" = no cap.
  std::string cpu_isa;
  // KILN_WINOGRAD=0|1: Winograd convolutions never / wherever they apply;
  // unset: where the shape rule (or an engine's timing) picks them.
  enum class Winograd { kAuto, kOff, kForce } winograd = Winograd::kAuto;
  // KILN_WINOGRAD_TILES=N: tiles per work block of the Winograd kernel
  // (tuning only; 0 = from the cache size).
  long long winograd_tiles = 0;
  // KILN_ARENA=0: no memory planner (every tensor on the heap).
  bool arena = true;
  // KILN_PASS_REPORT=1: print what each optimizer pass did.
  bool pass_report = false;
  // KILN_VERIFY_PASSES=1: run the graph verifier after every pass (always on
  // in debug builds).
  bool verify_passes = false;
  // KILN_DUMP_PASSES=1: print the graph after every pass.
  bool dump_passes = false;
  // KILN_ORT_DIR, KILN_ORT_WORKER: where kiln compare --ref ort finds
  // onnxruntime-node and its worker script (the CLI only).
  std::string ort_dir, ort_worker;
  // KILN_TEST_PERTURB_NODE=NAME (builds with KILN_TEST_HOOKS only): every
  // run perturbs that node's first float output, so tests can prove that
  // kiln compare --per-layer finds a broken kernel.
  std::string test_perturb_node;
};

// The settings, read from the environment on the first call.
const Settings& settings();

// One line of the table: the variable, its value in this process ("" when
// unset) and what it does.
struct SettingInfo {
  std::string name, value, meaning;
};
std::vector<SettingInfo> setting_infos();

#ifdef KILN_TEST_HOOKS
// Tests change settings in-process (as if the variable had been set before
// the first read); what is already built keeps what it read.
Settings& settings_for_tests();
#endif

}  // namespace kiln
