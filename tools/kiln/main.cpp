// kiln: load, check and run ONNX models on the CPU.
#include <cstdio>
#include <exception>

#include "cli.h"
#include "kernels/cpu/cpu_isa.h"
#include "kiln/custom_op.h"
#include "kiln/error.h"
#include "kiln/session.h"

namespace {

// Like `gcc --version`: what was built, from which commit, how, and which
// kernel instruction sets are in the binary (and which one this CPU gets).
void print_version() {
  const kiln::BuildInfo info = kiln::build_info();
  std::string isas;
  for (const std::string& isa : info.isas) isas += (isas.empty() ? "" : ", ") + isa;
  std::printf("kiln %s\ncommit: %s\nbuild: %s, %s\nkernels: %s (this CPU runs %s)\n", info.version.c_str(),
              info.commit.c_str(), info.build_type.c_str(), info.compiler.c_str(), isas.c_str(),
              kiln::cpu_isa_name(kiln::cpu_isa_selected()));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln: an inference engine for ONNX models (CPU)"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the version and exit");
  kiln::cli::add_run_command(app);
  kiln::cli::add_conformance_command(app);
  kiln::cli::add_ops_command(app);
  kiln::cli::add_bench_command(app);
  kiln::cli::add_profile_command(app);
  kiln::cli::add_inspect_command(app);
  kiln::cli::add_build_command(app);
  kiln::cli::add_device_command(app);
  kiln::cli::add_compare_command(app);
  kiln::cli::add_export_onnx_command(app);
  kiln::cli::add_graph_command(app);
  kiln::cli::add_weights_command(app);
  // Every command takes --plugin LIB.so (repeatable): custom ops, loaded
  // before the command runs.
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    sub->add_option_function<std::vector<std::string>>(
        "--plugin",
        [](const std::vector<std::string>& libs) {
          for (const std::string& lib : libs) kiln::load_plugin(lib);
        },
        "Load custom ops from a plugin shared library (kiln/custom_op.h); repeatable");
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own failure, already reported (kiln compare: 2 = outside tolerance)
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "kiln: error: %s\nRun with --help for more information.\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
  if (show_version) {
    print_version();
    return 0;
  }
  if (app.get_subcommands().empty()) {
    std::printf("%s", app.help().c_str());
    return 0;
  }
  return 0;
}
