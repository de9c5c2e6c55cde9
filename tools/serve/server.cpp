#include "server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <charconv>
#include <fstream>
#include <optional>
#include <thread>

#include "core/thread_pool.h"
#include "kiln/session.h"
#include "repository.h"

namespace kiln::serve {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Reply {
  http::status status = http::status::ok;
  std::string body;
  std::string content_type = "application/json";
  std::optional<size_t> header_length;  // Inference-Header-Content-Length
  bool retry_after = false;             // 503 from a full queue
};

Reply error_reply(int status, const std::string& message) {
  Reply r{static_cast<http::status>(status), error_json(message)};
  r.retry_after = status == 503;
  return r;
}

// Process CPU seconds and resident bytes, for /metrics.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

class Server;

// One client connection: reads a request, answers it (inference answers come
// back from a runner thread through post()), then reads the next.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, Server& server, bool metrics_only);
  ~Connection();
  void start() { read(); }
  void send(Reply reply);

 private:
  void read();
  void on_header(beast::error_code ec);
  void on_body(beast::error_code ec);
  void finish(bool keep_alive);
  void end_request();
  void send_too_large();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  Server& server_;
  // The server's count of open connections; shared, as the last connections
  // may be destroyed with the I/O loop, after the server.
  std::shared_ptr<std::atomic<int>> connections_;
  bool metrics_only_;
  bool keep_alive_ = true;
  bool in_flight_ = false;
  Clock::time_point received_;
  friend class Server;
};

class Server {
 public:
  explicit Server(const ServerOptions& o)
      : options_(o),
        scheduler_(o.threads),
        repository_(o.repository, scheduler_, o.limits, o.log),
        signals_(io_, SIGTERM, SIGINT) {}

  void run() {
    listen(options_.http_port, false);
    if (options_.metrics_port >= 0) listen(options_.metrics_port, true);
    signals_.async_wait([this](beast::error_code ec, int signal) {
      if (!ec) drain(signal);
    });
    // Models load on their own thread: the server answers health checks
    // (live, not yet ready) meanwhile.
    loader_ = std::thread([this] {
      repository_.load_all();
      loaded_ = true;
      options_.log("ready");
    });
    io_.run();
    if (loader_.joinable()) loader_.join();
    repository_.stop_all();
  }

  // Routes a request; infer answers later through `conn`.
  void handle(const std::shared_ptr<Connection>& conn, http::request<http::string_body>& req, bool metrics_only);
  // Requests in flight: from their header read to their answer written. A
  // drain waits for them.
  void request_started() { ++in_flight_; }
  void request_done() { --in_flight_; }
  bool draining() const { return draining_; }
  const ServerOptions& options() const { return options_; }
  std::shared_ptr<std::atomic<int>> connections = std::make_shared<std::atomic<int>>(0);

 private:
  void listen(int port, bool metrics_only) {
    auto acceptor = std::make_shared<tcp::acceptor>(io_);
    tcp::endpoint endpoint;
    try {
      endpoint = tcp::endpoint(net::ip::make_address(options_.host), static_cast<unsigned short>(port));
      acceptor->open(endpoint.protocol());
      acceptor->set_option(net::socket_base::reuse_address(true));
      acceptor->bind(endpoint);
      acceptor->listen(net::socket_base::max_listen_connections);
    } catch (const std::exception& e) {
      throw Error(fmt::format("cannot listen on {}:{}: {}", options_.host, port, e.what()));
    }
    options_.log(fmt::format("{} listening on {}:{}", metrics_only ? "metrics" : "HTTP", options_.host,
                             acceptor->local_endpoint().port()));
    acceptors_.push_back(acceptor);
    accept(acceptor, metrics_only);
  }
  void accept(const std::shared_ptr<tcp::acceptor>& acceptor, bool metrics_only) {
    acceptor->async_accept([this, acceptor, metrics_only](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // closed by drain()
      if (*connections >= options_.max_connections) {
        socket.close();  // over the limit: refused rather than queued without bound
      } else {
        socket.set_option(tcp::no_delay(true));
        std::make_shared<Connection>(std::move(socket), *this, metrics_only)->start();
      }
      accept(acceptor, metrics_only);
    });
  }
  // SIGTERM: no new connections or requests; those in flight finish; then
  // the I/O loop ends.
  void drain(int signal) {
    options_.log(fmt::format("{} received: draining {} request(s) in flight", signal == SIGTERM ? "SIGTERM" : "SIGINT",
                             in_flight_.load()));
    draining_ = true;
    for (auto& a : acceptors_) a->close();
    drain_deadline_ = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
    check_drained();
  }
  void check_drained() {
    if (in_flight_ == 0 || Clock::now() >= drain_deadline_) {
      if (in_flight_ > 0) options_.log(fmt::format("drain timeout: {} request(s) still in flight", in_flight_.load()));
      options_.log("stopped");
      io_.stop();
      return;
    }
    auto timer = std::make_shared<net::steady_timer>(io_, std::chrono::milliseconds(5));
    timer->async_wait([this, timer](beast::error_code) { check_drained(); });
  }

  Reply route(const std::shared_ptr<Connection>& conn, http::request<http::string_body>& req, bool& async);
  Reply infer(const std::shared_ptr<Connection>& conn, http::request<http::string_body>& req, const std::string& model,
              const std::string& version, bool& async);
  Reply repository_control(const std::shared_ptr<Connection>& conn, const std::string& model, const std::string& action,
                           bool& async);
  std::string metrics() const;

  ServerOptions options_;
  net::io_context io_{1};
  Scheduler scheduler_;  // outlives the repository's models
  Repository repository_;
  net::signal_set signals_;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors_;
  std::thread loader_;
  std::atomic<bool> loaded_{false};
  bool draining_ = false;
  std::atomic<int> in_flight_{0};
  Clock::time_point drain_deadline_;
  friend class Connection;
};

Connection::Connection(tcp::socket socket, Server& server, bool metrics_only)
    : stream_(std::move(socket)), server_(server), connections_(server.connections), metrics_only_(metrics_only) {
  ++*connections_;
}

Connection::~Connection() { --*connections_; }

void Connection::read() {
  parser_.emplace();
  parser_->header_limit(64 * 1024);
  parser_->body_limit(server_.options().max_request_bytes);
  stream_.expires_after(std::chrono::milliseconds(server_.options().idle_timeout_ms));
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

// Beast reports the limit from Content-Length, before reading the body, or
// while reading a chunked one.
void Connection::send_too_large() {
  send(error_reply(413, fmt::format("the request body is larger than the server's limit of {} bytes",
                                    server_.options().max_request_bytes)));
}

void Connection::on_header(beast::error_code ec) {
  if (ec == http::error::body_limit) return send_too_large();
  if (ec == http::error::header_limit) return send(error_reply(431, "the request's headers exceed 64 KiB"));
  if (ec) {
    if (ec != beast::error::timeout && ec != http::error::end_of_stream && ec != net::error::eof &&
        ec != net::error::operation_aborted && ec != net::error::connection_reset)
      return send(error_reply(400, std::string("malformed HTTP request: ") + ec.message()));
    return;  // the client left or was idle too long
  }
  received_ = Clock::now();
  in_flight_ = true;
  server_.request_started();
  // The whole body must arrive within the read timeout: a slow client holds
  // only its socket, and only for so long.
  stream_.expires_after(std::chrono::milliseconds(server_.options().read_timeout_ms));
  if (auto length = parser_->content_length(); length && *length > 0) {
    buffer_.reserve(static_cast<size_t>(std::min<uint64_t>(*length + 1024, 16u << 20)));
    // The body in one allocation, with room for the JSON parser's padding.
    parser_->get().body().reserve(static_cast<size_t>(*length) + kJsonPadding);
  }
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
}

void Connection::on_body(beast::error_code ec) {
  if (ec == http::error::body_limit) return send_too_large();
  if (ec == beast::error::timeout)
    return send(
        error_reply(408, fmt::format("the request did not arrive within {} ms", server_.options().read_timeout_ms)));
  if (ec) {
    if (ec != http::error::end_of_stream && ec != net::error::eof && ec != net::error::operation_aborted &&
        ec != net::error::connection_reset && ec != http::error::partial_message)
      return send(error_reply(400, std::string("malformed HTTP request: ") + ec.message()));
    return end_request();  // the client left mid-body
  }
  stream_.expires_never();
  http::request<http::string_body> req = parser_->release();
  keep_alive_ = req.keep_alive();
  // A large buffer is not kept by an idle connection.
  if (buffer_.capacity() > (256u << 10)) buffer_ = beast::flat_buffer();
  server_.handle(shared_from_this(), req, metrics_only_);
}

void Connection::send(Reply reply) {
  response_ = {};
  response_.version(11);
  response_.result(reply.status);
  response_.set(http::field::server, "kiln");
  response_.set(http::field::content_type, reply.content_type);
  if (reply.header_length) response_.set("Inference-Header-Content-Length", std::to_string(*reply.header_length));
  if (reply.retry_after) response_.set(http::field::retry_after, "1");
  const int code = static_cast<int>(reply.status);
  // After a framing error (413, 400 on a bad request line) the rest of the
  // stream cannot be trusted: close.
  const bool keep = keep_alive_ && !server_.draining() && code != 413 && code != 408 && code != 431 &&
                    !(code == 400 && !parser_->is_done());
  response_.keep_alive(keep);
  response_.body() = std::move(reply.body);
  response_.prepare_payload();
  stream_.expires_after(std::chrono::milliseconds(server_.options().read_timeout_ms));
  http::async_write(stream_, response_,
                    [self = shared_from_this(), keep](beast::error_code ec, size_t) { self->finish(!ec && keep); });
}

void Connection::end_request() {
  if (!in_flight_) return;
  in_flight_ = false;
  server_.request_done();
}

void Connection::finish(bool keep_alive) {
  end_request();
  if (keep_alive) return read();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
}

std::vector<std::string> split_path(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < target.size()) {
    size_t next = target.find('/', pos);
    if (next == std::string_view::npos) next = target.size();
    if (next > pos) parts.emplace_back(target.substr(pos, next - pos));
    pos = next + 1;
  }
  return parts;
}

void Server::handle(const std::shared_ptr<Connection>& conn, http::request<http::string_body>& req, bool metrics_only) {
  bool async = false;
  Reply reply;
  try {
    if (metrics_only) {
      auto parts = split_path(req.target());
      reply = parts.size() == 1 && parts[0] == "metrics"
                  ? Reply{http::status::ok, metrics(), "text/plain; version=0.0.4"}
                  : error_reply(404, "the metrics port serves only GET /metrics");
    } else {
      reply = route(conn, req, async);
    }
  } catch (const HttpError& e) {
    reply = error_reply(e.status(), e.what());
  } catch (const std::exception& e) {
    reply = error_reply(500, e.what());
  }
  if (!async) conn->send(std::move(reply));
}

Reply Server::route(const std::shared_ptr<Connection>& conn, http::request<http::string_body>& req, bool& async) {
  const std::vector<std::string> p = split_path(req.target());
  const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
  const bool health = p.size() == 3 && p[0] == "v2" && p[1] == "health";
  if (p.size() == 1 && p[0] == "metrics" && get) return Reply{http::status::ok, metrics(), "text/plain; version=0.0.4"};
  if (!options_.auth_token.empty() && !health) {
    auto it = req.find(http::field::authorization);
    if (it == req.end() || it->value() != "Bearer " + options_.auth_token)
      return error_reply(401, "this server needs \"Authorization: Bearer <token>\"");
  }
  if (p.empty() || p[0] != "v2")
    return error_reply(404, fmt::format("no such endpoint: {}", std::string(req.target())));
  if (draining_ && !(health && p[2] == "live")) return error_reply(503, "the server is shutting down");
  if (p.size() == 1 && get) {
    nlohmann::json j = {
        {"name", "kiln"},
        {"version", kiln::version()},
        {"extensions", {"binary_tensor_data", "model_repository", "model_configuration", "schedule_policy"}}};
    return Reply{http::status::ok, j.dump()};
  }
  if (health && get) {
    if (p[2] == "live") return Reply{http::status::ok, ""};
    if (p[2] == "ready") return loaded_ ? Reply{http::status::ok, ""} : error_reply(503, "models are still loading");
  }
  if (p.size() >= 2 && p[1] == "models") {
    if (p.size() < 3) return error_reply(404, "name a model: v2/models/{model}");
    const std::string& name = p[2];
    std::string version;
    size_t rest = 3;
    if (p.size() >= 5 && p[3] == "versions") {
      version = p[4];
      rest = 5;
    }
    const std::string action = p.size() > rest ? p[rest] : "";
    if (p.size() > rest + 1) return error_reply(404, fmt::format("no such endpoint: {}", std::string(req.target())));
    if (action.empty() && get) return Reply{http::status::ok, repository_.get(name, version)->metadata_json()};
    if (action == "ready" && get) {
      repository_.get(name, version);  // 404 unknown, 503 not ready
      return Reply{http::status::ok, ""};
    }
    if (action == "config" && get) return Reply{http::status::ok, repository_.get(name, version)->config_json()};
    if (action == "infer" && post) return infer(conn, req, name, version, async);
    return error_reply(
        action == "infer" || action.empty() || action == "ready" || action == "config" ? 405 : 404,
        fmt::format("{} {} is not an endpoint", std::string(req.method_string()), std::string(req.target())));
  }
  if (p.size() == 3 && p[1] == "repository" && p[2] == "index" && post)
    return Reply{http::status::ok, repository_.index_json()};
  if (p.size() == 5 && p[1] == "repository" && p[2] == "models" && post && (p[4] == "load" || p[4] == "unload"))
    return repository_control(conn, p[3], p[4], async);
  return error_reply(
      404, fmt::format("{} {} is not an endpoint", std::string(req.method_string()), std::string(req.target())));
}

Reply Server::infer(const std::shared_ptr<Connection>& conn, http::request<http::string_body>& req,
                    const std::string& name, const std::string& version, bool& async) {
  std::shared_ptr<ServedModel> model = repository_.get(name, version);
  std::optional<size_t> header_length;
  if (auto it = req.find("Inference-Header-Content-Length"); it != req.end()) {
    size_t n = 0;
    std::string_view v = it->value();
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size())
      return error_reply(400, fmt::format("Inference-Header-Content-Length '{}' is not a byte count", std::string(v)));
    header_length = n;
  }
  const auto received = conn->received_;
  auto request = std::make_shared<InferRequest>();
  try {
    *request = parse_infer_request(req.body(), header_length, req.body().capacity());
    req.body() = std::string();
    model->validate(*request);
  } catch (const HttpError&) {
    model->stats().failure++;
    throw;
  }
  // The answer is written on the runner thread (JSON of large outputs stays
  // off the I/O thread) and sent from the I/O thread. It holds the model's
  // counters, not the model: an unloaded model is gone once its queue is run.
  std::shared_ptr<ModelStats> stats = model->shared_stats();
  auto done = [conn, request, stats, name = model->name(), version = model->version(), received, this](
                  NamedTensors outputs, std::exception_ptr error) {
    Reply reply;
    try {
      if (error) std::rethrow_exception(error);
      ResponseBody body = make_infer_response(name, version, *request, outputs);
      reply.body = std::move(body.body);
      reply.header_length = body.header_length;
      if (body.header_length) reply.content_type = "application/octet-stream";
      stats->success++;
    } catch (const HttpError& e) {
      reply = error_reply(e.status(), e.what());
    } catch (const std::exception& e) {
      reply = error_reply(500, e.what());
    }
    stats->request_us +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received).count());
    net::post(io_, [conn, reply = std::move(reply)]() mutable { conn->send(std::move(reply)); });
  };
  try {
    model->submit(request, std::move(done));
  } catch (const HttpError&) {
    stats->failure++;  // a full queue, or the model unloading
    throw;
  }
  async = true;
  return {};
}

Reply Server::repository_control(const std::shared_ptr<Connection>& conn, const std::string& model,
                                 const std::string& action, bool& async) {
  // Loading can take seconds: it runs on its own thread, and the I/O thread
  // goes on serving.
  std::thread([this, conn, model, action] {
    Reply reply{http::status::ok, ""};
    try {
      if (action == "load")
        repository_.load(model);
      else
        repository_.unload(model);
    } catch (const HttpError& e) {
      reply = error_reply(e.status(), e.what());
    } catch (const std::exception& e) {
      reply = error_reply(400, e.what());
    }
    net::post(io_, [conn, reply = std::move(reply)]() mutable { conn->send(std::move(reply)); });
  }).detach();
  async = true;
  return {};
}

std::string Server::metrics() const {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    std::function<double(ModelStats&)> value;
  };
  const std::vector<Family> families = {
      {"nv_inference_request_success", "counter", "Successful inference requests",
       [](ModelStats& s) { return double(s.success); }},
      {"nv_inference_request_failure", "counter", "Failed inference requests",
       [](ModelStats& s) { return double(s.failure); }},
      {"nv_inference_count", "counter", "Inferences performed (a batch of n requests' items counts n)",
       [](ModelStats& s) { return double(s.inferences); }},
      {"nv_inference_exec_count", "counter", "Model executions (batches run)",
       [](ModelStats& s) { return double(s.executions); }},
      {"nv_inference_request_duration_us", "counter",
       "Cumulative request duration, from received to answered, in microseconds",
       [](ModelStats& s) { return double(s.request_us); }},
      {"nv_inference_queue_duration_us", "counter", "Cumulative time requests waited in the queue, in microseconds",
       [](ModelStats& s) { return double(s.queue_us); }},
      {"nv_inference_compute_infer_duration_us", "counter",
       "Cumulative time requests spent in model execution, in microseconds",
       [](ModelStats& s) { return double(s.compute_us); }},
      {"nv_inference_pending_request_count", "gauge", "Requests waiting in the queue",
       [](ModelStats& s) { return double(s.pending); }},
  };
  std::vector<std::shared_ptr<ServedModel>> models = repository_.ready_models();
  std::string out;
  for (const Family& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const auto& m : models)
      out +=
          fmt::format("{}{{model=\"{}\",version=\"{}\"}} {}\n", f.name, m->name(), m->version(), f.value(m->stats()));
  }
  out += fmt::format(
      "# HELP process_cpu_seconds_total User and system CPU time of the server\n"
      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {:.3f}\n"
      "# HELP process_resident_memory_bytes Resident memory of the server\n"
      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n",
      cpu_seconds(), resident_bytes());
  return out;
}

}  // namespace

void run_server(const ServerOptions& options) {
  ServerOptions o = options;
  if (o.threads <= 0) o.threads = physical_core_count();
  if (!o.log) o.log = [](const std::string&) {};
  Server server(o);
  server.run();
}

}  // namespace kiln::serve
