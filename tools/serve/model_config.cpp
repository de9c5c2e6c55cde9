// config.pbtxt reading: a small parser of protobuf's text format into a tree
// of fields, then the fields kiln uses. A generic tree (rather than protobuf's
// TextFormat with a copy of Triton's .proto) keeps unknown fields harmless
// and leaves Triton's schema out of this repository.
#include "model_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "kiln/error.h"

namespace kiln::serve {

namespace {

struct Field {
  std::string name;
  int line = 0;
  bool is_message = false;
  std::string value;          // scalar: the token (strings unquoted)
  std::vector<Field> fields;  // message: its fields in order
};

class TextFormatParser {
 public:
  TextFormatParser(const std::string& text, const std::string& origin) : s_(text), origin_(origin) {}

  std::vector<Field> parse() {
    std::vector<Field> fields = parse_fields(0);
    skip_space();
    if (pos_ < s_.size()) fail(fmt::format("unexpected '{}'", s_[pos_]));
    return fields;
  }

 private:
  static constexpr int kMaxDepth = 32;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("{}:{}: config.pbtxt: {}", origin_, line_, what));
  }
  void skip_space() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') ++line_;
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else {
        break;
      }
    }
  }
  bool accept(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c))
      fail(pos_ < s_.size() ? fmt::format("expected '{}', found '{}'", c, s_[pos_])
                            : fmt::format("expected '{}' before the end", c));
  }
  std::string identifier() {
    skip_space();
    size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '.'))
      ++pos_;
    if (start == pos_)
      fail(pos_ < s_.size() ? fmt::format("expected a field name, found '{}'", s_[pos_])
                            : "expected a field name before the end");
    return s_.substr(start, pos_ - start);
  }
  // A number, identifier (enum, true/false) or quoted string.
  std::string scalar() {
    skip_space();
    if (pos_ < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'')) {
      char quote = s_[pos_++];
      std::string out;
      while (pos_ < s_.size() && s_[pos_] != quote) {
        if (s_[pos_] == '\n') fail("a string runs past the end of its line");
        if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
        out += s_[pos_++];
      }
      if (pos_ == s_.size()) fail("a string is not closed");
      ++pos_;
      return out;
    }
    size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || std::strchr("_.+-", s_[pos_])))
      ++pos_;
    if (start == pos_)
      fail(pos_ < s_.size() ? fmt::format("expected a value, found '{}'", s_[pos_])
                            : "expected a value before the end");
    return s_.substr(start, pos_ - start);
  }
  Field message(const std::string& name, int line, int depth) {
    if (depth >= kMaxDepth) fail("messages nested too deeply");
    char close = '}';
    if (accept('<'))
      close = '>';
    else
      expect('{');
    Field f{name, line, true, {}, parse_fields(depth + 1)};
    expect(close);
    return f;
  }
  bool message_follows() {
    skip_space();
    return pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '<');
  }
  std::vector<Field> parse_fields(int depth) {
    std::vector<Field> out;
    for (;;) {
      skip_space();
      if (pos_ == s_.size() || s_[pos_] == '}' || s_[pos_] == '>') return out;
      int line = line_;
      std::string name = identifier();
      bool colon = accept(':');
      if (accept('[')) {  // a repeated field's list: values or messages
        if (!accept(']')) {
          do {
            if (message_follows())
              out.push_back(message(name, line_, depth));
            else
              out.push_back(Field{name, line_, false, scalar(), {}});
          } while (accept(','));
          expect(']');
        }
      } else if (message_follows()) {
        out.push_back(message(name, line, depth));
      } else {
        if (!colon) fail(fmt::format("expected ':' after '{}'", name));
        out.push_back(Field{name, line, false, scalar(), {}});
      }
      if (!accept(',')) accept(';');
    }
  }

  const std::string& s_;
  const std::string& origin_;
  size_t pos_ = 0;
  int line_ = 1;
};

class ConfigReader {
 public:
  explicit ConfigReader(const std::string& origin) : origin_(origin) {}
  [[noreturn]] void fail(const Field& f, const std::string& what) const {
    throw Error(fmt::format("{}:{}: config.pbtxt: {}", origin_, f.line, what));
  }
  int64_t integer(const Field& f) const {
    if (f.is_message) fail(f, fmt::format("'{}' must be a number", f.name));
    int64_t v = 0;
    auto [end, ec] = std::from_chars(f.value.data(), f.value.data() + f.value.size(), v);
    if (ec != std::errc() || end != f.value.data() + f.value.size())
      fail(f, fmt::format("'{}' must be an integer, not '{}'", f.name, f.value));
    return v;
  }
  std::string text(const Field& f) const {
    if (f.is_message) fail(f, fmt::format("'{}' must be a value", f.name));
    return f.value;
  }
  TensorConfig tensor(const Field& m) const {
    if (!m.is_message) fail(m, fmt::format("'{}' must be a message", m.name));
    TensorConfig t;
    for (const Field& f : m.fields) {
      if (f.name == "name") {
        t.name = text(f);
      } else if (f.name == "data_type") {
        std::optional<DType> d = dtype_of_triton(text(f));
        if (!d) fail(f, fmt::format("data_type '{}' is not one kiln serves", f.value));
        t.dtype = *d;
      } else if (f.name == "dims") {
        int64_t d = integer(f);
        if (d < -1) fail(f, fmt::format("dims of {} has size {}", t.name, d));
        t.dims.push_back(d);
      }
    }
    if (t.name.empty()) fail(m, fmt::format("an {} has no name", m.name));
    return t;
  }

 private:
  const std::string& origin_;
};

const std::vector<std::pair<DType, const char*>>& datatype_names() {
  static const std::vector<std::pair<DType, const char*>> names = {
      {DType::kBool, "BOOL"},     {DType::kUInt8, "UINT8"},   {DType::kUInt16, "UINT16"}, {DType::kUInt32, "UINT32"},
      {DType::kUInt64, "UINT64"}, {DType::kInt8, "INT8"},     {DType::kInt16, "INT16"},   {DType::kInt32, "INT32"},
      {DType::kInt64, "INT64"},   {DType::kFloat16, "FP16"},  {DType::kFloat32, "FP32"},  {DType::kFloat64, "FP64"},
      {DType::kString, "BYTES"},  {DType::kBFloat16, "BF16"},
  };
  return names;
}

}  // namespace

std::string kserve_datatype(DType dtype) {
  for (const auto& [d, name] : datatype_names())
    if (d == dtype) return name;
  return dtype_name(dtype);
}

std::optional<DType> dtype_of_kserve(const std::string& name) {
  for (const auto& [d, n] : datatype_names())
    if (name == n) return d;
  return std::nullopt;
}

std::optional<DType> dtype_of_triton(const std::string& name) {
  if (name == "TYPE_STRING") return DType::kString;
  if (name.rfind("TYPE_", 0) != 0 || name == "TYPE_BYTES") return std::nullopt;
  return dtype_of_kserve(name.substr(5));
}

ModelConfig parse_model_config(const std::string& text, const std::string& origin) {
  std::vector<Field> fields = TextFormatParser(text, origin).parse();
  ConfigReader r(origin);
  ModelConfig c;
  c.instance_count = 0;
  bool have_instances = false;
  for (const Field& f : fields) {
    if (f.name == "name") {
      c.name = r.text(f);
    } else if (f.name == "max_batch_size") {
      c.max_batch_size = r.integer(f);
      if (c.max_batch_size < 0) r.fail(f, "max_batch_size must be >= 0");
    } else if (f.name == "input") {
      c.inputs.push_back(r.tensor(f));
    } else if (f.name == "output") {
      c.outputs.push_back(r.tensor(f));
    } else if (f.name == "dynamic_batching") {
      if (!f.is_message) r.fail(f, "dynamic_batching must be a message");
      c.dynamic_batching = true;
      for (const Field& g : f.fields) {
        if (g.name == "max_queue_delay_microseconds") {
          c.max_queue_delay_us = r.integer(g);
          if (c.max_queue_delay_us < 0) r.fail(g, "max_queue_delay_microseconds must be >= 0");
        } else if (g.name == "preferred_batch_size") {
          c.preferred_batch_sizes.push_back(r.integer(g));
          if (c.preferred_batch_sizes.back() < 1) r.fail(g, "preferred_batch_size must be >= 1");
        } else if (g.name == "default_queue_policy" && g.is_message) {
          for (const Field& h : g.fields)
            if (h.name == "max_queue_size") c.max_queue_size = r.integer(h);
          if (c.max_queue_size < 0) r.fail(g, "max_queue_size must be >= 0");
        }
      }
    } else if (f.name == "instance_group") {
      if (!f.is_message) r.fail(f, "instance_group must be a message");
      int64_t count = 1;
      for (const Field& g : f.fields) {
        if (g.name == "count") count = r.integer(g);
        if (g.name == "kind" && r.text(g) != "KIND_CPU" && r.text(g) != "KIND_AUTO")
          r.fail(g, fmt::format("instance_group kind {} is not served by kiln (CPU only)", g.value));
      }
      if (count < 1 || count > 64) r.fail(f, fmt::format("instance_group count {} is outside 1..64", count));
      c.instance_count += static_cast<int>(count);
      have_instances = true;
    }
  }
  if (!have_instances) c.instance_count = 1;
  std::sort(c.preferred_batch_sizes.begin(), c.preferred_batch_sizes.end());
  return c;
}

namespace {

// The leading dim of every input and output is symbolic: the model takes a
// batch there.
bool batchable(const Session& s) {
  auto leading_dynamic = [](const std::vector<TensorInfo>& infos) {
    for (const TensorInfo& t : infos)
      if (!t.has_shape || t.shape.empty() || t.shape[0].size >= 0) return false;
    return !infos.empty();
  };
  return leading_dynamic(s.inputs()) && leading_dynamic(s.outputs());
}

// The largest batch an engine's profiles accept (its inputs' leading dim).
int64_t engine_max_batch(const Session& s) {
  int64_t best = 0;
  for (const ShapeProfile& p : s.profiles()) {
    int64_t m = INT64_MAX;
    for (const auto& [name, shape] : p.max)
      if (!shape.empty()) m = std::min(m, shape[0]);
    if (m != INT64_MAX) best = std::max(best, m);
  }
  return best;
}

std::vector<TensorConfig> tensors_of(const std::vector<TensorInfo>& infos, bool drop_batch) {
  std::vector<TensorConfig> out;
  for (const TensorInfo& t : infos) {
    if (t.has_default) continue;  // an initializer: not something requests must send
    TensorConfig c{t.name, t.dtype, {}};
    if (t.has_shape)
      for (size_t i = drop_batch ? 1 : 0; i < t.shape.size(); ++i) c.dims.push_back(t.shape[i].size);
    else
      c.dims = {};  // rank unknown: the request's shape is taken as is
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

ModelConfig derive_model_config(const std::string& name, const Session& session, int64_t default_max_batch) {
  ModelConfig c;
  c.name = name;
  if (batchable(session)) {
    c.max_batch_size = default_max_batch;
    if (session.is_engine() && !session.profiles().empty())
      c.max_batch_size = std::min(c.max_batch_size, engine_max_batch(session));
    if (c.max_batch_size <= 1) c.max_batch_size = 0;
  }
  c.dynamic_batching = c.max_batch_size > 0;
  complete_model_config(c, session);
  return c;
}

void complete_model_config(ModelConfig& config, const Session& session) {
  const bool batched = config.max_batch_size > 0;
  if (batched && !batchable(session))
    throw Error(
        fmt::format("model '{}': max_batch_size {} needs a model whose inputs and outputs all have a "
                    "symbolic leading (batch) dim; set max_batch_size: 0 and send the full shapes",
                    config.name, config.max_batch_size));
  if (batched && session.is_engine() && !session.profiles().empty() &&
      config.max_batch_size > engine_max_batch(session))
    throw Error(
        fmt::format("model '{}': max_batch_size {} is above the largest batch of the engine's profiles ({}); "
                    "lower it, or rebuild the engine with a larger --max-shapes batch",
                    config.name, config.max_batch_size, engine_max_batch(session)));
  auto complete = [&](std::vector<TensorConfig>& configured, const std::vector<TensorInfo>& infos, const char* what) {
    std::vector<TensorConfig> actual = tensors_of(infos, batched);
    if (configured.empty()) {
      configured = actual;
      return;
    }
    for (TensorConfig& c : configured) {
      auto it = std::find_if(actual.begin(), actual.end(), [&](const TensorConfig& a) { return a.name == c.name; });
      if (it == actual.end()) {
        std::string names;
        for (const TensorConfig& a : actual) names += (names.empty() ? "" : ", ") + a.name;
        throw Error(fmt::format("model '{}': config.pbtxt names {} '{}', which the model does not have (it has: {})",
                                config.name, what, c.name, names));
      }
      if (c.dtype != it->dtype)
        throw Error(fmt::format("model '{}': config.pbtxt gives {} '{}' data_type {}, the model has {}", config.name,
                                what, c.name, kserve_datatype(c.dtype), kserve_datatype(it->dtype)));
      bool fits = it->dims.empty() || c.dims.size() == it->dims.size();
      for (size_t i = 0; fits && i < c.dims.size() && !it->dims.empty(); ++i)
        fits = it->dims[i] < 0 || c.dims[i] < 0 || c.dims[i] == it->dims[i];
      if (!fits)
        throw Error(fmt::format("model '{}': config.pbtxt gives {} '{}' dims [{}]{}, the model has [{}]", config.name,
                                what, c.name, fmt::join(c.dims, ","), batched ? " (after the batch dim)" : "",
                                fmt::join(it->dims, ",")));
      // A model dim that is fixed makes a configured -1 fixed too.
      for (size_t i = 0; i < c.dims.size() && i < it->dims.size(); ++i)
        if (c.dims[i] < 0) c.dims[i] = it->dims[i];
    }
  };
  complete(config.inputs, session.inputs(), "input");
  complete(config.outputs, session.outputs(), "output");
  for (const TensorInfo& t : session.inputs()) {
    if (t.has_default) continue;
    bool listed = std::any_of(config.inputs.begin(), config.inputs.end(),
                              [&](const TensorConfig& c) { return c.name == t.name; });
    if (!listed)
      throw Error(fmt::format("model '{}': config.pbtxt does not list the model's input '{}'", config.name, t.name));
  }
}

}  // namespace kiln::serve
