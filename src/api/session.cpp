#include "kiln/session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <new>

#include "engine/engine_file.h"
#include "ir/graph.h"
#include "pipeline/inspect.h"
#include "pipeline/load_engine.h"
#include "pipeline/prepare.h"
#include "pipeline/session_impl.h"
#include "runtime/executor.h"

namespace kiln {

std::string version() { return KILN_VERSION; }

std::string TensorInfo::str() const {
  std::string s = dtype_name(dtype);
  if (!has_shape) return s + "[?]";
  s += "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += " x ";
    s += shape[i].size >= 0 ? std::to_string(shape[i].size) : shape[i].symbol.empty() ? "?" : shape[i].symbol;
  }
  return s + "]";
}

namespace {

void check_input(const Value& v, const Tensor& t) {
  if (t.dtype() != v.type.dtype)
    throw Error("input '" + v.name + "': expected element type " + dtype_name(v.type.dtype) + ", got " +
                dtype_name(t.dtype()));
  if (!v.type.shape) return;
  const DimVector& dims = *v.type.shape;
  if (static_cast<size_t>(t.rank()) != dims.size())
    throw Error("input '" + v.name + "': expected rank " + std::to_string(dims.size()) + " (" + v.type.str() +
                "), got shape " + shape_str(t.shape()));
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i].is_known() && dims[i].value != t.shape()[i])
      throw Error("input '" + v.name + "': expected shape " + v.type.str() + ", got " + shape_str(t.shape()) +
                  " (dim " + std::to_string(i) + " differs)");
}

// Whether every input of the run lies inside profile p.
bool fits(const ShapeProfile& p, const Graph& g, const std::vector<Tensor>& feed) {
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    auto lo = p.min.find(g.inputs[i]->name);
    if (lo == p.min.end() || !feed[i].defined()) continue;
    const Shape& hi = p.max.at(lo->first);
    const Shape& s = feed[i].shape();
    if (s.size() != lo->second.size()) return false;
    for (size_t d = 0; d < s.size(); ++d)
      if (s[d] < lo->second[d] || s[d] > hi[d]) return false;
  }
  return true;
}

// The profile a run uses: the fixed one, else of those its inputs fit, the
// one with the smallest memory plan. A kiln::Error naming the inputs and the
// allowed ranges when none fits.
int select_profile(const Session::Impl& impl, const std::vector<Tensor>& feed) {
  const Graph& g = *impl.model.graph;
  int best = -1;
  for (size_t p = 0; p < impl.profiles.size(); ++p) {
    if (impl.fixed_profile >= 0 && static_cast<int>(p) != impl.fixed_profile) continue;
    if (!fits(impl.profiles[p], g, feed)) continue;
    auto arena = [&](size_t q) {
      return q < impl.compiled->profile_count() ? impl.compiled->profile_arena_bytes(q) : 0;
    };
    if (best < 0 || arena(p) < arena(static_cast<size_t>(best))) best = static_cast<int>(p);
  }
  if (best >= 0) return best;
  std::string given;
  for (size_t i = 0; i < g.inputs.size(); ++i)
    if (feed[i].defined()) given += (given.empty() ? "" : ", ") + g.inputs[i]->name + ":" + shape_str(feed[i].shape());
  std::string msg = "input shapes " + given + " are outside ";
  msg += impl.fixed_profile >= 0 ? "profile " + std::to_string(impl.fixed_profile) : "every profile";
  msg += " of the engine; allowed:";
  for (size_t p = 0; p < impl.profiles.size(); ++p)
    if (impl.fixed_profile < 0 || static_cast<int>(p) == impl.fixed_profile)
      msg += "\n  profile " + std::to_string(p) + ": " + impl.profiles[p].str();
  throw Error(msg);
}

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

namespace {
// Every load error names the file, whatever stage raised it.
template <typename F>
Session::Impl* with_source(const std::string& source, F&& f) {
  auto prefixed = [&](const std::string& msg) { return msg.rfind(source, 0) == 0 ? msg : source + ": " + msg; };
  try {
    return f().release();
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(prefixed(e.what()));
  } catch (const Error& e) {
    throw Error(prefixed(e.what()));
  } catch (const std::bad_alloc&) {
    throw Error(source + ": out of memory while loading (an allocation the file asked for failed)");
  }
}
}  // namespace

namespace {
// A path that is a pipe or device (/dev/stdin) can be read once: it is read
// whole here, then loaded as bytes, and an ONNX model so read has no folder
// for external data (a regular file's folder is its own).
bool is_stream(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

std::string read_stream(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string bytes;
  char buf[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      throw Error(path + ": read failed (" + std::strerror(errno) + ")");
    }
    if (got == 0) break;
    if (bytes.size() + static_cast<size_t>(got) > static_cast<size_t>(INT_MAX)) {
      ::close(fd);
      throw Error(path + ": more than 2 GB; store the weights as external data");
    }
    bytes.append(buf, static_cast<size_t>(got));
  }
  ::close(fd);
  return bytes;
}

// Appends the nodes of `n`'s bodies (and theirs) to `profile`, with their
// times from `times` (none: not run this time).
void add_body_nodes(const Node& n, size_t top, const std::string& path, int depth, const NodeTimes& times,
                    Session::RunProfile& profile) {
  for (const auto& [attr, a] : n.attrs) {
    if (a.kind != Attribute::Kind::kGraph || !a.g) continue;
    const Graph& body = *a.g;
    for (size_t k = 0; k < body.nodes.size(); ++k) {
      const Node& b = *body.nodes[k];
      Session::RunProfile::BodyNode row;
      row.node = top;
      row.path = path + "/" + attr + "/" + (b.name.empty() ? b.op_type + "_" + std::to_string(k) : b.name);
      row.op = b.op_type;
      row.depth = depth;
      auto it = times.bodies.find(&b);
      if (it != times.bodies.end()) {
        row.total_us = static_cast<double>(it->second.total_ns) / 1e3;
        row.calls = it->second.calls;
      }
      const std::string inner = row.path;
      profile.body_nodes.push_back(std::move(row));
      add_body_nodes(b, top, inner, depth + 1, times, profile);
    }
  }
}
}  // namespace

Session Session::load(const std::string& path, const SessionOptions& options) {
  return Session(std::unique_ptr<Impl>(with_source(path, [&] {
    if (is_stream(path)) {
      const std::string bytes = read_stream(path);
      if (engine::has_engine_magic(bytes.data(), bytes.size()))
        return load_engine(engine::EngineFile::from_bytes(bytes.data(), bytes.size(), path), options);
      return prepare_session(load_onnx_bytes(bytes.data(), bytes.size(), "", path), options);
    }
    if (engine::is_engine_file(path)) return load_engine(engine::EngineFile::open(path), options);
    return prepare_session(load_onnx_file(path), options);
  })));
}

Session Session::load_bytes(const void* data, size_t size, const SessionOptions& options) {
  return Session(std::unique_ptr<Impl>(with_source("<memory>", [&] {
    if (engine::has_engine_magic(data, size))
      return load_engine(engine::EngineFile::from_bytes(data, size, "<memory>"), options);
    return prepare_session(load_onnx_bytes(data, size), options);
  })));
}

const std::vector<TensorInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Session::outputs() const { return impl_->outputs; }

std::vector<Tensor> Session::run(const std::vector<std::pair<std::string, Tensor>>& inputs) const {
  return run(inputs, nullptr);
}

const std::vector<Session::ExecutedNode>& Session::executed_nodes() const { return impl_->executed; }

std::vector<Tensor> Session::run(const std::vector<std::pair<std::string, Tensor>>& inputs, RunProfile* profile) const {
  const Graph& g = *impl_->model.graph;
  std::vector<Tensor> feed(g.inputs.size());
  for (const auto& input : inputs) {
    const std::string& name = input.first;
    const Tensor& t = input.second;
    auto it = std::find_if(g.inputs.begin(), g.inputs.end(), [&](const Value* v) { return v->name == name; });
    if (it == g.inputs.end()) {
      std::string names;
      for (const auto& i : impl_->inputs)
        if (!i.has_default) names += (names.empty() ? "" : ", ") + i.name;
      throw Error("'" + name + "' is not an input of the model (inputs: " + names + ")");
    }
    size_t pos = static_cast<size_t>(it - g.inputs.begin());
    if (feed[pos].defined()) throw Error("input '" + name + "' is given twice");
    check_input(**it, t);
    feed[pos] = t;
  }
  for (size_t i = 0; i < g.inputs.size(); ++i)
    if (!feed[i].defined() && !g.inputs[i]->initializer)
      throw Error("input '" + g.inputs[i]->name + "' (" + g.inputs[i]->type.str() + ") is required but not given");
  int shape_profile = impl_->profiles.empty() ? -1 : select_profile(*impl_, feed);
  if (shape_profile >= static_cast<int>(impl_->compiled->profile_count())) shape_profile = -1;  // planner off
  if (!profile) return impl_->compiled->run(feed, nullptr, impl_->pool.get(), nullptr, shape_profile);
  NodeTimes times;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> out = impl_->compiled->run(feed, nullptr, impl_->pool.get(), &times, shape_profile);
  const int64_t t0_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count();
  profile->total_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  profile->start_us.resize(times.nodes.size());
  profile->end_us.resize(times.nodes.size());
  for (size_t i = 0; i < times.nodes.size(); ++i) {
    profile->start_us[i] = static_cast<double>(times.nodes[i].start_ns - t0_ns) / 1e3;
    profile->end_us[i] = static_cast<double>(times.nodes[i].end_ns - t0_ns) / 1e3;
  }
  profile->body_nodes.clear();
  for (size_t i = 0; i < g.nodes.size(); ++i) add_body_nodes(*g.nodes[i], i, g.nodes[i]->name, 1, times, *profile);
  return out;
}

std::string inspect_json(const std::string& path, const std::map<std::string, Shape>& input_shapes, bool optimized) {
  if (engine::is_engine_file(path)) return inspect_engine(path).dump();
  return inspect_model(path, input_shapes, optimized).dump();
}

int64_t Session::ir_version() const { return impl_->model.ir_version; }
std::map<std::string, int> Session::opsets() const { return impl_->model.opsets; }
std::string Session::producer() const {
  return impl_->model.producer_name +
         (impl_->model.producer_version.empty() ? "" : " " + impl_->model.producer_version);
}
size_t Session::num_nodes() const { return impl_->model.graph->nodes.size(); }
bool Session::is_engine() const { return impl_->engine != nullptr; }
const std::vector<ShapeProfile>& Session::profiles() const { return impl_->profiles; }
const std::vector<std::string>& Session::load_warnings() const { return impl_->warnings; }
std::vector<std::string> Session::implementations() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < impl_->executed.size(); ++i) names.push_back(impl_->compiled->kernel(i).implementation());
  return names;
}

std::string ShapeProfile::str() const {
  std::string s;
  for (const auto& [name, lo] : min) {
    const Shape& hi = max.count(name) ? max.at(name) : lo;
    s += (s.empty() ? "" : ", ") + name + ":" + shape_str(lo);
    if (hi != lo) s += ".." + shape_str(hi);
    if (opt.count(name) && opt.at(name) != lo && opt.at(name) != hi) s += " (opt " + shape_str(opt.at(name)) + ")";
  }
  return s;
}

size_t Session::arena_bytes() const { return impl_->compiled->memory_stats().arena_bytes; }
size_t Session::planned_bytes() const { return impl_->compiled->memory_stats().planned_bytes; }

}  // namespace kiln
