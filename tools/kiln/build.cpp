// kiln build MODEL.onnx -o MODEL.kiln: optimize, pack and plan once; write an
// engine file that loads in milliseconds (trtexec --saveEngine's role).
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "onnx/import.h"
#include "pipeline/prepare.h"

namespace kiln::cli {

namespace {

struct BuildArgs {
  std::string model, output;
  std::string shapes;
  std::vector<std::string> min_shapes, opt_shapes, max_shapes;
  int threads = 0;
  int opt_level = 2;
  bool verbose = false;
  bool json = false;
  std::string timing_cache;
  bool no_tactics = false;
  std::vector<std::string> inputs;  // --input NAME=FILE|VALUE for the recording run
};

// Profile i from the i-th --min-shapes, --opt-shapes and --max-shapes (opt
// defaults to max, the throughput case).
std::vector<ShapeProfile> profiles_of(const BuildArgs& a) {
  const size_t n = a.max_shapes.size();
  if (a.min_shapes.size() != n || (!a.opt_shapes.empty() && a.opt_shapes.size() != n))
    throw Error("each profile needs one --min-shapes and one --max-shapes (and optionally one --opt-shapes); got " +
                std::to_string(a.min_shapes.size()) + " min, " + std::to_string(a.opt_shapes.size()) + " opt, " +
                std::to_string(n) + " max");
  std::vector<ShapeProfile> profiles(n);
  for (size_t i = 0; i < n; ++i) {
    ShapeProfile& p = profiles[i];
    p.min = parse_shapes(a.min_shapes[i]);
    p.max = parse_shapes(a.max_shapes[i]);
    p.opt = a.opt_shapes.empty() ? p.max : parse_shapes(a.opt_shapes[i]);
    for (const auto* m : {&p.opt, &p.max})
      for (const auto& [name, shape] : *m)
        if (!p.min.count(name))
          throw Error("profile " + std::to_string(i) + ": input '" + name + "' has no --min-shapes");
    for (const auto& [name, shape] : p.min)
      if (!p.opt.count(name) || !p.max.count(name))
        throw Error("profile " + std::to_string(i) + ": input '" + name + "' needs --opt-shapes and --max-shapes too");
  }
  return profiles;
}

std::string default_output(const std::string& model) {
  const size_t dot = model.rfind('.');
  const size_t slash = model.rfind('/');
  const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
  return (has_ext ? model.substr(0, dot) : model) + ".kiln";
}

void build_main(const BuildArgs& a) {
  BuildOptions o;
  o.session.threads = a.threads;
  o.session.opt_level = a.opt_level;
  o.session.input_shapes = parse_shapes(a.shapes);
  o.profiles = profiles_of(a);
  o.timing_cache = a.timing_cache;
  o.time_tactics = !a.no_tactics;
  if (!a.inputs.empty()) {
    // The declared inputs, for literals in their dtypes.
    const Model model = load_onnx_file(a.model);
    std::vector<TensorInfo> infos;
    for (const Value* v : model.graph->inputs) infos.push_back(info_of(*v));
    o.inputs = load_inputs(a.inputs, infos);
  }
  const std::string out = a.output.empty() ? default_output(a.model) : a.output;
  const bool bar = isatty(STDERR_FILENO) && !a.json;
  o.progress = [&](const std::string& stage, double f) {
    if (a.verbose)
      std::fprintf(stderr, "build: %s\n", stage.c_str());
    else if (bar) {
      const int filled = static_cast<int>(f * 30);
      std::fprintf(stderr, "\rbuild    [%s%s] %3d%%  %-14s", std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(30 - filled), '.').c_str(), static_cast<int>(f * 100),
                   stage.c_str());
      if (f >= 1) std::fprintf(stderr, "\r%60s\r", "");
      std::fflush(stderr);
    }
  };
  const BuildReport r = build_engine(a.model, out, o);
  Session s = Session::load(out, SessionOptions{});  // what a user's load will see
  if (a.json) {
    nlohmann::json j;
    j["engine"] = out;
    j["model"] = a.model;
    j["engine_bytes"] = r.engine_bytes;
    j["weight_bytes"] = r.weight_bytes;
    j["packed_bytes"] = r.packed_bytes;
    j["nodes"] = r.nodes;
    j["build_s"] = r.seconds;
    j["tactics_timed"] = r.tactics_timed;
    j["tactics_cached"] = r.tactics_cached;
    nlohmann::json profiles = nlohmann::json::array();
    for (size_t i = 0; i < s.profiles().size(); ++i) {
      const ShapeProfile& p = s.profiles()[i];
      profiles.push_back({{"min", p.min}, {"opt", p.opt}, {"max", p.max}, {"arena_bytes", r.arena_bytes.at(i)}});
    }
    j["profiles"] = profiles;
    std::printf("%s\n", json_text(j).c_str());
    return;
  }
  std::printf("engine           %s (%.1f MiB)\n", out.c_str(), static_cast<double>(r.engine_bytes) / (1 << 20));
  std::printf("built in         %.2f s from %s\n", r.seconds, a.model.c_str());
  std::printf("nodes            %zu after optimization\n", r.nodes);
  if (r.tactics_timed + r.tactics_cached > 0)
    std::printf("tactics          %d conv(s) timed, %d from the timing cache\n", r.tactics_timed, r.tactics_cached);
  std::printf("weights          %.1f MiB as stored, %.1f MiB packed for the kernels\n",
              static_cast<double>(r.weight_bytes) / (1 << 20), static_cast<double>(r.packed_bytes) / (1 << 20));
  for (size_t i = 0; i < s.profiles().size(); ++i)
    std::printf("profile %zu        %s; memory plan %.1f MiB\n", i, s.profiles()[i].str().c_str(),
                static_cast<double>(r.arena_bytes.at(i)) / (1 << 20));
}

}  // namespace

void add_build_command(CLI::App& app) {
  auto a = std::make_shared<BuildArgs>();
  CLI::App* cmd = app.add_subcommand("build", "Build an engine file (.kiln) from an ONNX model");
  cmd->add_option("model", a->model, "ONNX model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output,--saveEngine", a->output, "Engine file to write (default: MODEL.kiln)");
  cmd->add_option("--shapes", a->shapes, "Static build: sizes of every input, NAME:1x3x224x224,...");
  cmd->add_option("--min-shapes,--minShapes", a->min_shapes,
                  "Smallest shapes of a profile, NAME:1x3x224x224,...; repeat (with --opt/--max) for more profiles")
      ->expected(1)
      ->take_all();
  cmd->add_option("--opt-shapes,--optShapes", a->opt_shapes, "Shapes kernels are tuned for (default: the max shapes)")
      ->expected(1)
      ->take_all();
  cmd->add_option("--max-shapes,--maxShapes", a->max_shapes, "Largest shapes of a profile; memory is planned for them")
      ->expected(1)
      ->take_all();
  cmd->add_option("--threads", a->threads, "Intra-op threads the engine is tuned for (0: physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-O,--opt-level", a->opt_level, "Graph optimizer level 0|1|2 (default 2)")->check(CLI::Range(0, 2));
  cmd->add_option("--input,-i", a->inputs,
                  "NAME=FILE or NAME=VALUE (as in kiln run): a value the build's recording run must use, at the "
                  "profile's max shape (a sample rate that picks a branch: --input sr=16000); other inputs get filler "
                  "data; repeatable");
  cmd->add_option("--timing-cache,--timingCacheFile", a->timing_cache,
                  "JSON file of kernel timings: read when it exists, updated after the build");
  cmd->add_flag("--no-tactic-timing", a->no_tactics,
                "Choose kernels by kiln's built-in rules instead of timing the candidates at the opt shapes");
  cmd->add_flag("-v,--verbose", a->verbose, "Print each build stage");
  cmd->add_flag("--json", a->json, "Print one JSON object describing the engine and nothing else on stdout");
  cmd->callback([a] { build_main(*a); });
}

}  // namespace kiln::cli
