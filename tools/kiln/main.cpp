// kiln: load, check and run ONNX models on the CPU.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

// Whether everything printed reached standard output; a full disk or a closed
// pipe (kiln run ... > /dev/full) is an error, not a silent success.
bool output_written() {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  std::fprintf(stderr, "kiln: error: writing to standard output: %s\n", std::strerror(errno));
  return false;
}

}  // namespace

// A short OpenMP spin-wait by default. Idle threads of kiln's pool (and
// oneDNN's: both are libgomp's OpenMP team) wait for the next parallel region
// by spinning, then sleep. libgomp spins 300,000 times by default, several
// milliseconds; on a machine where other processes also run, the spinning
// threads take the cores the working ones need (PaddleOCR det at 2 threads
// beside one busy process: median 524-736 ms with the default, 174-204 ms
// with OMP_WAIT_POLICY=PASSIVE). kiln's default is kDefaultSpinCount
// (docs/threads.md); OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment win.
//
// libgomp reads them once, in its constructor, before main and before any
// code of this program runs (.preinit_array is too early: libc's initializer
// resets the environment after it; and the loader initializes libgomp before
// any library that could set it, as libkiln and oneDNN depend on it). So the
// program answers libgomp's getenv itself: the dynamic linker binds every
// library's getenv calls to the program's definition first. It reads the
// environment exactly as libc's does, and only adds the default.
// tests/threads_cli_test.sh checks, through OMP_DISPLAY_ENV, what libgomp read.
//
// kiln serve spins longer (kServeSpinCount): between two requests of one
// client the pool's threads would otherwise sleep, and waking them cost a
// digits request 70 us of its 180 us round trip (docs/serving.md). They
// still sleep once the server is idle.
namespace {
constexpr char kDefaultSpinCount[] = "1000";
constexpr char kServeSpinCount[] = "10000";

// Whether this process is `kiln serve`: read from /proc with plain system
// calls, as libgomp asks before main.
bool is_serve_command() {
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  size_t first = std::strlen(buf) + 1;  // argv[1] follows argv[0]'s NUL
  return first < static_cast<size_t>(n) && std::strcmp(buf + first, "serve") == 0;
}

const char* find_env(const char* name) {
  const size_t n = std::strlen(name);
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return nullptr;
}
}  // namespace

extern "C" char* getenv(const char* name) {
  if (!*name || std::strchr(name, '=')) return nullptr;
  const char* value = find_env(name);
  if (!value && std::strcmp(name, "GOMP_SPINCOUNT") == 0 && !find_env("OMP_WAIT_POLICY"))
    value = is_serve_command() ? kServeSpinCount : kDefaultSpinCount;
  return const_cast<char*>(value);
}

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
  kiln::cli::add_serve_command(app);
  kiln::cli::add_perf_client_command(app);
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
    // A command's own failure, already reported (kiln compare: 2 = outside tolerance).
    return output_written() ? e.get_exit_code() : 1;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help
      app.exit(e);
      return output_written() ? 0 : 1;
    }
    std::fprintf(stderr, "kiln: error: %s\nRun with --help for more information.\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
  if (show_version)
    print_version();
  else if (app.get_subcommands().empty())
    std::printf("%s", app.help().c_str());
  return output_written() ? 0 : 1;
}
