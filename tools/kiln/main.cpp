// kiln: load, check and run ONNX models on the CPU.
#include <cstdio>
#include <exception>

#include "cli.h"
#include "kiln/error.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln: an inference engine for ONNX models (CPU)"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the version and exit");
  kiln::cli::add_run_command(app);
  kiln::cli::add_conformance_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
  if (show_version) {
    std::printf("kiln %s\n", kiln::version().c_str());
    return 0;
  }
  if (app.get_subcommands().empty()) {
    std::printf("%s", app.help().c_str());
    return 0;
  }
  return 0;
}
