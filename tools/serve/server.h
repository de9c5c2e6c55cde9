// kiln serve: a KServe v2 (Open Inference Protocol) HTTP server over a model
// repository, on Boost.Beast. One I/O thread runs every connection
// asynchronously, so a slow or idle client holds a socket, not a thread; the
// scheduler's runner threads run inference within the thread budget
// (docs/serving.md).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "model.h"

namespace kiln::serve {

struct ServerOptions {
  std::string repository;
  std::string host = "127.0.0.1";
  int http_port = 8000;     // 0: any free port (the log says which)
  int metrics_port = 8002;  // -1: no metrics listener (GET /metrics still answers on the HTTP port)
  int threads = 0;          // the compute budget; 0: the physical cores
  size_t max_request_bytes = 64u << 20;
  int max_connections = 1024;
  int read_timeout_ms = 30'000;   // a request's header and body must arrive within this
  int idle_timeout_ms = 120'000;  // a keep-alive connection with no request is closed after this
  int drain_timeout_ms = 60'000;  // SIGTERM: how long in-flight requests may take to finish
  std::string auth_token;  // non-empty: every endpoint but health and metrics needs "Authorization: Bearer <token>"
  ServeLimits limits;
  std::function<void(const std::string&)> log;
};

// Serves until SIGTERM or SIGINT, then stops accepting, finishes the requests
// in flight and returns. kiln::Error when the repository or a port cannot be
// used.
void run_server(const ServerOptions& options);

}  // namespace kiln::serve
