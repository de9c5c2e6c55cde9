// kiln serve: serve a model repository over KServe v2 HTTP (docs/serving.md).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "../serve/server.h"
#include "cli.h"

namespace kiln::cli {

namespace {

struct ServeArgs {
  serve::ServerOptions server;
  std::string auth_token_file;
  int64_t max_queue_delay_us = 0;
  int64_t request_timeout_ms = 60'000;
};

// One line per event on stderr, with a UTC timestamp.
void log_line(const std::string& line) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::fprintf(stderr, "%s kiln serve: %s\n", stamp, line.c_str());
}

void serve_main(ServeArgs& a) {
  serve::ServerOptions o = a.server;
  if (!a.auth_token_file.empty()) {
    std::ifstream in(a.auth_token_file);
    if (!std::getline(in, o.auth_token) || o.auth_token.empty())
      throw Error(a.auth_token_file + ": cannot read a token from its first line");
  }
  o.limits.default_queue_delay_us = a.max_queue_delay_us;
  o.limits.request_timeout_us = a.request_timeout_ms * 1000;
  o.log = log_line;
  serve::run_server(o);
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  serve::ServerOptions& o = a->server;
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model repository over HTTP (KServe v2 / Triton protocol)");
  cmd->footer(
      "The repository has Triton's layout: DIR/<model>/<version>/model.onnx (or model.kiln) and an optional\n"
      "DIR/<model>/config.pbtxt. Endpoints: GET v2, v2/health/live, v2/health/ready, v2/models/<m>[/versions/<v>]\n"
      "[/ready|/config]; POST v2/models/<m>/infer (JSON or Triton's binary tensor extension);\n"
      "POST v2/repository/index, v2/repository/models/<m>/load|unload; GET /metrics (Prometheus).\n"
      "SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0. See docs/serving.md.");
  cmd->add_option("--model-repository", o.repository, "The model repository folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--http-port", o.http_port, "HTTP port (0: any free port, logged)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--metrics-port", o.metrics_port,
                  "Prometheus metrics port (-1: none; /metrics also answers on the HTTP port)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  cmd->add_option("--host", o.host, "Address to listen on (0.0.0.0: every interface)")->capture_default_str();
  cmd->add_option("--threads", o.threads,
                  "Compute threads of the whole server, shared by every model instance (0: the physical cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-batch-size", o.limits.default_max_batch,
                  "max_batch_size of a model without config.pbtxt whose inputs have a dynamic batch dim")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--max-queue-delay-us", a->max_queue_delay_us,
                  "Dynamic batching delay of a model without config.pbtxt, in microseconds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{10'000'000}));
  cmd->add_option("--max-queue-size", o.limits.default_max_queue,
                  "Requests a model may queue before answering 503 (config.pbtxt's max_queue_size wins)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--request-timeout-ms", a->request_timeout_ms,
                  "A request still queued after this gets 503 (a request's parameters.timeout may shorten it)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}));
  cmd->add_option("--max-request-bytes", o.max_request_bytes, "Larger request bodies get 413")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1024}, size_t{1} << 34));
  cmd->add_option("--max-connections", o.max_connections, "Open connections beyond this are refused")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--read-timeout-ms", o.read_timeout_ms, "A request's header and body must arrive within this")
      ->capture_default_str()
      ->check(CLI::Range(1, 3'600'000));
  cmd->add_option("--drain-timeout-ms", o.drain_timeout_ms, "On SIGTERM, how long requests in flight may take")
      ->capture_default_str()
      ->check(CLI::Range(0, 3'600'000));
  cmd->add_option(
         "--auth-token-file", a->auth_token_file,
         "Require \"Authorization: Bearer <token>\" (the file's first line) on every endpoint but health and metrics")
      ->check(CLI::ExistingFile);
  cmd->callback([a] { serve_main(*a); });
}

}  // namespace kiln::cli
