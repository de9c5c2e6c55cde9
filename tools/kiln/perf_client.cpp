// kiln perf-client: load a KServe v2 server (kiln serve, Triton, ...) with
// concurrent clients and report throughput and latency per concurrency, like
// Triton's perf_analyzer.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "../serve/model_config.h"
#include "../serve/protocol.h"
#include "cli.h"

namespace kiln::cli {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct PerfArgs {
  std::string model, url = "127.0.0.1:8000", version, format = "binary", shapes, concurrency = "1", auth_token;
  int64_t batch = 1;
  double duration_s = 5, warmup_s = 1;
  bool json = false;
  uint64_t seed = 0;
};

// A keep-alive HTTP/1.1 connection, blocking.
class Client {
 public:
  Client(const std::string& host, const std::string& port) : socket_(io_) {
    tcp::resolver resolver(io_);
    net::connect(socket_, resolver.resolve(host, port));
    socket_.set_option(tcp::no_delay(true));
  }
  http::response<http::string_body> send(http::request<http::string_body>& req) {
    http::write(socket_, req);
    http::response<http::string_body> res;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 30);
    http::read(socket_, buffer_, parser);
    return parser.release();
  }

 private:
  net::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

std::pair<std::string, std::string> host_port(const std::string& url) {
  std::string u = url;
  if (u.rfind("http://", 0) == 0) u = u.substr(7);
  u = u.substr(0, u.find('/'));
  size_t colon = u.rfind(':');
  if (colon == std::string::npos) return {u, "80"};
  return {u.substr(0, colon), u.substr(colon + 1)};
}

http::request<http::string_body> make_request(http::verb verb, const std::string& target, const PerfArgs& a) {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "kiln");
  if (!a.auth_token.empty()) req.set(http::field::authorization, "Bearer " + a.auth_token);
  return req;
}

std::vector<int> parse_concurrency(const std::string& spec) {
  std::vector<int> out;
  auto num = [&](const std::string& s) {
    try {
      size_t end = 0;
      int v = std::stoi(s, &end);
      if (end == s.size() && v >= 1 && v <= 4096) return v;
    } catch (const std::exception&) {
    }
    throw Error("--concurrency '" + spec + "': expected N, a list N,M,... or a range START:END[:STEP] of 1..4096");
  };
  if (spec.find(':') != std::string::npos) {
    std::vector<std::string> p;
    for (size_t pos = 0;;) {
      size_t next = spec.find(':', pos);
      p.push_back(spec.substr(pos, next - pos));
      if (next == std::string::npos) break;
      pos = next + 1;
    }
    if (p.size() < 2 || p.size() > 3) num("");
    int start = num(p[0]), end = num(p[1]), step = p.size() == 3 ? num(p[2]) : 1;
    for (int c = start; c <= end; c += step) out.push_back(c);
  } else {
    for (size_t pos = 0;;) {
      size_t next = spec.find(',', pos);
      out.push_back(num(spec.substr(pos, next - pos)));
      if (next == std::string::npos) break;
      pos = next + 1;
    }
  }
  if (out.empty()) num("");
  return out;
}

// The request body sent by every client: random inputs of the model's
// declared shapes (its batch dim set to --batch, other dynamic dims from
// --shapes), with every output asked for in the same form.
struct Payload {
  std::string body;
  std::optional<size_t> header_length;
};

Payload make_payload(const nlohmann::json& meta, const PerfArgs& a) {
  const std::map<std::string, Shape> shapes = parse_shapes(a.shapes);
  const bool binary = a.format == "binary";
  nlohmann::json header = {{"inputs", nlohmann::json::array()}, {"outputs", nlohmann::json::array()}};
  std::string data;
  uint64_t seed = a.seed;
  for (const auto& in : meta.at("inputs")) {
    const std::string name = in.at("name");
    std::optional<DType> dtype = serve::dtype_of_kserve(in.at("datatype").get<std::string>());
    if (!dtype) throw Error("input '" + name + "': the server declares an unknown datatype");
    Shape shape = in.at("shape").get<Shape>();
    auto given = shapes.find(name);
    if (given != shapes.end()) {
      shape = given->second;
    } else {
      for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] >= 0) continue;
        if (i == 0) {
          shape[i] = a.batch;
          continue;
        }
        throw Error(fmt::format("input '{}' has dynamic dims [{}]: give its shape with --shapes {}:{}", name,
                                fmt::join(in.at("shape").get<Shape>(), ","), name, "1x..."));
      }
    }
    TensorInfo info{name, *dtype, true, false, {}};
    Tensor t = random_input(info, shape, nullptr, seed++);
    nlohmann::json j = {{"name", name}, {"datatype", in.at("datatype")}, {"shape", shape}};
    if (binary) {
      std::string bytes = serve::tensor_binary_data(t);
      j["parameters"] = {{"binary_data_size", bytes.size()}};
      data += bytes;
      header["inputs"].push_back(j);
    } else {
      // Spliced in as text: nlohmann would take far longer to write the data.
      j["data"] = "@DATA@";
      std::string text = j.dump();
      text.replace(text.find("\"@DATA@\""), 8, serve::tensor_json_data(t));
      header["inputs"].push_back(nlohmann::json::parse(text));
    }
  }
  for (const auto& out : meta.at("outputs"))
    header["outputs"].push_back({{"name", out.at("name")}, {"parameters", {{"binary_data", binary}}}});
  Payload p;
  p.body = header.dump();
  if (binary) {
    p.header_length = p.body.size();
    p.body += data;
  }
  return p;
}

struct Level {
  int concurrency = 0;
  double seconds = 0;
  size_t ok = 0;
  std::map<int, size_t> errors;  // HTTP status (0: connection failure) -> count
  std::vector<double> latency_ms;
  double avg_batch = 0;  // the server's inferences / executions in the window (0: no metrics)
  std::string first_error;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

// nv_inference_count and nv_inference_exec_count of the model, from /metrics.
std::pair<double, double> server_counts(const std::string& host, const std::string& port, const PerfArgs& a) {
  try {
    Client c(host, port);
    auto req = make_request(http::verb::get, "/metrics", a);
    auto res = c.send(req);
    double inferences = 0, executions = 0;
    const std::string label = "{model=\"" + a.model + "\"";
    std::string_view body = res.body();
    for (size_t pos = 0; pos < body.size();) {
      size_t end = body.find('\n', pos);
      if (end == std::string_view::npos) end = body.size();
      std::string_view line = body.substr(pos, end - pos);
      pos = end + 1;
      if (line.find(label) == std::string_view::npos) continue;
      double v = std::strtod(std::string(line.substr(line.rfind(' ') + 1)).c_str(), nullptr);
      if (line.rfind("nv_inference_count{", 0) == 0) inferences += v;
      if (line.rfind("nv_inference_exec_count{", 0) == 0) executions += v;
    }
    return {inferences, executions};
  } catch (const std::exception&) {
    return {0, 0};
  }
}

Level run_level(int concurrency, const Payload& payload, const std::string& target, const PerfArgs& a,
                const std::string& host, const std::string& port) {
  Level level;
  level.concurrency = concurrency;
  std::mutex mu;
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration<double>(a.warmup_s);
  const auto end = measure_from + std::chrono::duration<double>(a.duration_s);
  std::pair<double, double> before{0, 0};
  std::vector<std::thread> clients;
  for (int i = 0; i < concurrency; ++i) {
    clients.emplace_back([&] {
      std::vector<double> mine;
      std::map<int, size_t> errors;
      std::string first_error;
      size_t ok = 0;
      auto req = make_request(http::verb::post, target, a);
      req.set(http::field::content_type, payload.header_length ? "application/octet-stream" : "application/json");
      if (payload.header_length) req.set("Inference-Header-Content-Length", std::to_string(*payload.header_length));
      req.body() = payload.body;
      req.prepare_payload();
      std::optional<Client> client;
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        int status = 0;
        std::string error;
        try {
          if (!client) client.emplace(host, port);
          auto res = client->send(req);
          status = res.result_int();
          if (status != 200) error = res.body();
          if (!res.keep_alive()) client.reset();
        } catch (const std::exception& e) {
          client.reset();
          error = e.what();
        }
        const auto t1 = Clock::now();
        // Requests that end inside the window count, whenever they started:
        // at high concurrency a request can take longer than the warm-up.
        if (t1 < measure_from) continue;
        if (t1 > end) break;
        if (status == 200) {
          ++ok;
          mine.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        } else {
          errors[status]++;
          if (first_error.empty()) first_error = error.substr(0, 300);
          // A refused connection would otherwise spin.
          if (status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
      std::lock_guard lock(mu);
      level.ok += ok;
      level.latency_ms.insert(level.latency_ms.end(), mine.begin(), mine.end());
      for (auto [s, n] : errors) level.errors[s] += n;
      if (level.first_error.empty()) level.first_error = first_error;
    });
  }
  // The server's counters at the start of the measured window.
  std::this_thread::sleep_until(measure_from);
  before = server_counts(host, port, a);
  for (std::thread& t : clients) t.join();
  const std::pair<double, double> after = server_counts(host, port, a);
  if (after.second > before.second) level.avg_batch = (after.first - before.first) / (after.second - before.second);
  level.seconds = a.duration_s;
  return level;
}

void perf_main(const PerfArgs& a) {
  const auto [host, port] = host_port(a.url);
  const std::string base = "/v2/models/" + a.model + (a.version.empty() ? "" : "/versions/" + a.version);
  nlohmann::json meta;
  {
    Client c(host, port);
    auto req = make_request(http::verb::get, base, a);
    auto res = c.send(req);
    if (res.result_int() != 200)
      throw Error(fmt::format("GET {} from {}: HTTP {}: {}", base, a.url, res.result_int(), res.body()));
    meta = nlohmann::json::parse(res.body());
  }
  const Payload payload = make_payload(meta, a);
  std::vector<Level> levels;
  for (int c : parse_concurrency(a.concurrency)) {
    levels.push_back(run_level(c, payload, base + "/infer", a, host, port));
    const Level& l = levels.back();
    if (!a.json) {
      size_t errors = 0;
      for (auto [s, n] : l.errors) errors += n;
      std::printf("concurrency %3d: %9.1f infer/s  p50 %8.3f ms  p90 %8.3f ms  p99 %8.3f ms  errors %zu", c,
                  static_cast<double>(l.ok) * static_cast<double>(a.batch) / l.seconds, percentile(l.latency_ms, 50),
                  percentile(l.latency_ms, 90), percentile(l.latency_ms, 99), errors);
      if (l.avg_batch > 0) std::printf("  server batch %.2f", l.avg_batch);
      std::printf("\n");
      if (!l.first_error.empty()) std::printf("  first error: %s\n", l.first_error.c_str());
      std::fflush(stdout);
    }
  }
  if (a.json) {
    nlohmann::json out = {{"model", a.model},
                          {"url", a.url},
                          {"format", a.format},
                          {"batch", a.batch},
                          {"request_bytes", payload.body.size()},
                          {"levels", nlohmann::json::array()}};
    for (const Level& l : levels) {
      nlohmann::json errors = nlohmann::json::object();
      for (auto [s, n] : l.errors) errors[std::to_string(s)] = n;
      double mean = 0;
      for (double v : l.latency_ms) mean += v;
      out["levels"].push_back(
          {{"concurrency", l.concurrency},
           {"requests", l.ok},
           {"throughput_rps", static_cast<double>(l.ok) / l.seconds},
           {"throughput_infer_per_s", static_cast<double>(l.ok) * static_cast<double>(a.batch) / l.seconds},
           {"latency_ms",
            {{"p50", percentile(l.latency_ms, 50)},
             {"p90", percentile(l.latency_ms, 90)},
             {"p99", percentile(l.latency_ms, 99)},
             {"mean", l.latency_ms.empty() ? 0 : mean / static_cast<double>(l.latency_ms.size())}}},
           {"errors", errors},
           {"first_error", l.first_error},
           {"server_avg_batch", l.avg_batch}});
    }
    std::printf("%s\n", json_text(out).c_str());
  }
}

}  // namespace

void add_perf_client_command(CLI::App& app) {
  auto a = std::make_shared<PerfArgs>();
  CLI::App* cmd =
      app.add_subcommand("perf-client", "Load a KServe v2 server and report throughput and latency per concurrency");
  cmd->add_option("-m,--model", a->model, "Model name")->required();
  cmd->add_option("-u,--url", a->url, "Server HOST:PORT")->capture_default_str();
  cmd->add_option("-x,--model-version", a->version, "Model version (default: the served one)");
  cmd->add_option("-c,--concurrency-range,--concurrency", a->concurrency, "N, N,M,... or START:END[:STEP]")
      ->capture_default_str();
  cmd->add_option("-i,--format", a->format, "binary (Triton's binary tensor extension) or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"binary", "json"}));
  cmd->add_option("-b,--batch-size", a->batch, "Batch dim of each request (models with a dynamic batch dim)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--shapes", a->shapes, "Shapes of inputs with dynamic dims: NAME:1x128x768,...");
  cmd->add_option("--duration-s,--measurement-interval", a->duration_s, "Measured seconds per concurrency level")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--warmup-s", a->warmup_s, "Unmeasured seconds before each level")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  cmd->add_option("--auth-token", a->auth_token, "Bearer token to send");
  cmd->add_option("--seed", a->seed, "Seed of the random inputs")->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the results as JSON");
  cmd->callback([a] { perf_main(*a); });
}

}  // namespace kiln::cli
