// Parsing uses simdjson's DOM: a 1x3x224x224 float32 image as JSON (1.6 MB)
// parses in 3.1 ms against nlohmann::json's 25 ms (docs/serving.md). Responses
// are written directly: their numbers with std::to_chars.
#include "protocol.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/half.h"
#include "model_config.h"

namespace kiln::serve {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

[[noreturn]] void bad(const std::string& what) { throw HttpError(400, what); }

constexpr int kMaxRank = 16;

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string_view string_of(element e, const std::string& what) {
  std::string_view s;
  if (e.get(s)) bad(what + " must be a string");
  return s;
}

int64_t int_of(element e, const std::string& what) {
  int64_t v = 0;
  if (e.get(v)) bad(what + " must be an integer");
  return v;
}

// Calls leaf(element) on every non-array element of nested arrays, in order.
template <typename Leaf>
void walk(element e, int depth, const std::string& input, Leaf&& leaf) {
  simdjson::dom::array a;
  if (e.get(a) == simdjson::SUCCESS) {
    if (depth > kMaxRank) bad(fmt::format("input '{}': data is nested deeper than {} levels", input, kMaxRank));
    for (element x : a) walk(x, depth + 1, input, leaf);
  } else {
    leaf(e);
  }
}

// Calls leaf(element, index) on each leaf of `data` (nested arrays, in
// order); HttpError 400 unless there are exactly `numel`, and never more
// calls than that.
template <typename Leaf>
void for_each_leaf(element data, int64_t numel, const std::string& name, Leaf&& leaf) {
  int64_t i = 0;
  walk(data, 0, name, [&](element e) {
    if (i == numel) bad(fmt::format("input '{}': data has more than the {} elements of its shape", name, numel));
    leaf(e, i++);
  });
  if (i != numel) bad(fmt::format("input '{}': data has {} elements, its shape needs {}", name, i, numel));
}

template <typename T>
void fill_numbers(element data, Tensor& t, const std::string& name) {
  T* out = t.data<T>();
  const std::string where = fmt::format("input '{}'", name);
  for_each_leaf(data, t.numel(), name, [&](element e, int64_t i) {
    if constexpr (std::is_same_v<T, bool>) {
      bool v = false;
      if (e.get(v)) bad(where + ": BOOL data must be true or false");
      out[i] = v;
    } else if constexpr (std::is_floating_point_v<T>) {
      double v = 0;
      if (e.get(v)) bad(fmt::format("{}: element {} is not a number", where, i));
      out[i] = static_cast<T>(v);
    } else if constexpr (std::is_unsigned_v<T>) {
      uint64_t v = 0;
      if (e.get(v) || v > std::numeric_limits<T>::max())
        bad(fmt::format("{}: element {} is not an integer in the range of its datatype", where, i));
      out[i] = static_cast<T>(v);
    } else {
      int64_t v = 0;
      if (e.get(v) || v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
        bad(fmt::format("{}: element {} is not an integer in the range of its datatype", where, i));
      out[i] = static_cast<T>(v);
    }
  });
}

void fill_halves(element data, Tensor& t, const std::string& name, bool bf16) {
  uint16_t* out = static_cast<uint16_t*>(t.raw());
  for_each_leaf(data, t.numel(), name, [&](element e, int64_t i) {
    double v = 0;
    if (e.get(v)) bad(fmt::format("input '{}': element {} is not a number", name, i));
    float f = static_cast<float>(v);
    out[i] = bf16 ? float_to_bf16_bits(f) : float_to_f16_bits(f);
  });
}

// Elements of `data`: an array's own size when it is flat (checked while
// filling: a nested element is then "not a number"), else counted.
int64_t count_elements(element data, const std::string& name) {
  simdjson::dom::array a;
  if (data.get(a) == simdjson::SUCCESS && a.size() < 0xFFFFFF) {
    auto first = a.begin();
    if (first == a.end() || !(*first).is_array()) return static_cast<int64_t>(a.size());
  }
  int64_t count = 0;
  walk(data, 0, name, [&](element) { ++count; });
  return count;
}

Tensor tensor_from_json(element data, DType dtype, const Shape& shape, const std::string& name) {
  const int64_t count = count_elements(data, name);
  const int64_t numel = shape_numel(shape);
  if (count != numel)
    bad(fmt::format("input '{}': data has {} elements, its shape [{}] needs {}", name, count, fmt::join(shape, ","),
                    numel));
  if (dtype == DType::kString) {
    std::vector<std::string> values;
    values.reserve(static_cast<size_t>(count));
    for_each_leaf(data, count, name, [&](element e, int64_t) {
      values.emplace_back(string_of(e, fmt::format("input '{}': BYTES data", name)));
    });
    return Tensor::from_strings(shape, std::move(values));
  }
  Tensor t = Tensor::uninitialized(dtype, shape);
  switch (dtype) {
    case DType::kFloat32: fill_numbers<float>(data, t, name); break;
    case DType::kFloat64: fill_numbers<double>(data, t, name); break;
    case DType::kFloat16: fill_halves(data, t, name, false); break;
    case DType::kBFloat16: fill_halves(data, t, name, true); break;
    case DType::kInt8: fill_numbers<int8_t>(data, t, name); break;
    case DType::kInt16: fill_numbers<int16_t>(data, t, name); break;
    case DType::kInt32: fill_numbers<int32_t>(data, t, name); break;
    case DType::kInt64: fill_numbers<int64_t>(data, t, name); break;
    case DType::kUInt8: fill_numbers<uint8_t>(data, t, name); break;
    case DType::kUInt16: fill_numbers<uint16_t>(data, t, name); break;
    case DType::kUInt32: fill_numbers<uint32_t>(data, t, name); break;
    case DType::kUInt64: fill_numbers<uint64_t>(data, t, name); break;
    case DType::kBool: fill_numbers<bool>(data, t, name); break;
    default: bad(fmt::format("input '{}': datatype {} is not served", name, kserve_datatype(dtype)));
  }
  return t;
}

// BYTES in binary form: each element a 4-byte little-endian length and its bytes.
Tensor strings_from_binary(std::string_view bytes, const Shape& shape, const std::string& name) {
  const int64_t numel = shape_numel(shape);
  if (numel > static_cast<int64_t>(bytes.size() / 4))
    bad(fmt::format("input '{}': {} binary bytes cannot hold {} BYTES elements", name, bytes.size(), numel));
  std::vector<std::string> values;
  values.reserve(static_cast<size_t>(numel));
  size_t pos = 0;
  for (int64_t i = 0; i < numel; ++i) {
    if (bytes.size() - pos < 4) bad(fmt::format("input '{}': binary BYTES data ends inside element {}", name, i));
    uint32_t len = 0;
    std::memcpy(&len, bytes.data() + pos, 4);
    pos += 4;
    if (bytes.size() - pos < len) bad(fmt::format("input '{}': binary BYTES element {} runs past its data", name, i));
    values.emplace_back(bytes.substr(pos, len));
    pos += len;
  }
  if (pos != bytes.size())
    bad(fmt::format("input '{}': binary_data_size {} leaves {} bytes after {} BYTES elements", name, bytes.size(),
                    bytes.size() - pos, numel));
  return Tensor::from_strings(shape, std::move(values));
}

int64_t binary_size_of(element parameters, const std::string& what) {
  simdjson::dom::object p;
  if (parameters.get(p)) bad(what + ": parameters must be an object");
  element size;
  if (p["binary_data_size"].get(size)) return -1;
  int64_t n = int_of(size, what + ": binary_data_size");
  if (n < 0) bad(what + ": binary_data_size is negative");
  return n;
}

bool bool_parameter(simdjson::dom::object p, const char* key, const std::string& what) {
  element v;
  if (p[key].get(v)) return false;
  bool b = false;
  if (v.get(b)) bad(fmt::format("{}: parameter {} must be true or false", what, key));
  return b;
}

}  // namespace

InferRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length, size_t capacity) {
  std::string_view json = body, binary;
  if (header_length) {
    if (*header_length > body.size())
      bad(fmt::format("Inference-Header-Content-Length is {}, but the body has only {} bytes", *header_length,
                      body.size()));
    json = body.substr(0, *header_length);
    binary = body.substr(*header_length);
  }
  thread_local simdjson::dom::parser parser;
  element root;
  // simdjson reads up to SIMDJSON_PADDING bytes past the JSON: when the
  // buffer has them, it parses in place rather than copying the body.
  static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING);
  const bool padded = capacity >= json.size() + kJsonPadding;
  if (auto err = parser.parse(json.data(), json.size(), !padded).get(root))
    bad(fmt::format("the request is not valid JSON: {}", simdjson::error_message(err)));
  simdjson::dom::object obj;
  if (root.get(obj)) bad("the request must be a JSON object");

  InferRequest r;
  element e;
  if (obj["id"].get(e) == simdjson::SUCCESS) r.id = std::string(string_of(e, "id"));
  if (obj["parameters"].get(e) == simdjson::SUCCESS) {
    simdjson::dom::object p;
    if (e.get(p)) bad("parameters must be an object");
    r.binary_outputs = bool_parameter(p, "binary_data_output", "request");
    element t;
    if (p["timeout"].get(t) == simdjson::SUCCESS) {
      r.timeout_us = int_of(t, "parameters.timeout");
      if (r.timeout_us < 0) bad("parameters.timeout must be >= 0 (microseconds)");
    }
  }
  simdjson::dom::array inputs;
  if (obj["inputs"].get(e)) bad("the request has no \"inputs\"");
  if (e.get(inputs)) bad("\"inputs\" must be an array");
  size_t binary_pos = 0;
  for (element in : inputs) {
    simdjson::dom::object io;
    if (in.get(io)) bad("each of \"inputs\" must be an object");
    element v;
    if (io["name"].get(v)) bad("an input has no \"name\"");
    std::string name(string_of(v, "an input's name"));
    const std::string where = fmt::format("input '{}'", name);
    for (const auto& [n, _] : r.inputs)
      if (n == name) bad(where + " is given twice");
    if (io["datatype"].get(v)) bad(where + " has no \"datatype\"");
    std::string_view dt = string_of(v, where + ": datatype");
    std::optional<DType> dtype = dtype_of_kserve(std::string(dt));
    if (!dtype) bad(fmt::format("{}: datatype '{}' is not a KServe v2 datatype", where, dt));
    if (io["shape"].get(v)) bad(where + " has no \"shape\"");
    simdjson::dom::array dims;
    if (v.get(dims)) bad(where + ": shape must be an array of integers");
    Shape shape;
    for (element d : dims) {
      shape.push_back(int_of(d, where + ": shape"));
      if (shape.back() < 0) bad(fmt::format("{}: shape has a negative dim {}", where, shape.back()));
      if (shape.size() > kMaxRank) bad(fmt::format("{}: shape has more than {} dims", where, kMaxRank));
    }
    int64_t numel = 0;
    try {
      numel = shape_numel(shape);
    } catch (const Error&) {
      bad(fmt::format("{}: shape [{}] has too many elements", where, fmt::join(shape, ",")));
    }
    int64_t binary_size = -1;
    if (io["parameters"].get(v) == simdjson::SUCCESS) binary_size = binary_size_of(v, where);
    element data;
    const bool has_data = io["data"].get(data) == simdjson::SUCCESS;
    Tensor t;
    if (binary_size >= 0) {
      if (has_data) bad(where + " has both \"data\" and binary_data_size");
      if (!header_length) bad(where + " has binary_data_size but the request has no Inference-Header-Content-Length");
      if (static_cast<uint64_t>(binary_size) > binary.size() - binary_pos)
        bad(fmt::format("{}: binary_data_size is {}, but only {} binary bytes remain in the body", where, binary_size,
                        binary.size() - binary_pos));
      std::string_view bytes = binary.substr(binary_pos, static_cast<size_t>(binary_size));
      binary_pos += static_cast<size_t>(binary_size);
      if (*dtype == DType::kString) {
        t = strings_from_binary(bytes, shape, name);
      } else {
        const uint64_t want = static_cast<uint64_t>(numel) * dtype_size(*dtype);
        if (want != bytes.size())
          bad(fmt::format("{}: binary_data_size is {}, but {} [{}] needs {} bytes", where, bytes.size(), dt,
                          fmt::join(shape, ","), want));
        t = Tensor::uninitialized(*dtype, shape);
        if (!bytes.empty()) std::memcpy(t.raw(), bytes.data(), bytes.size());
      }
    } else {
      if (!has_data) bad(where + " has neither \"data\" nor parameters.binary_data_size");
      t = tensor_from_json(data, *dtype, shape, name);
    }
    r.inputs.emplace_back(std::move(name), std::move(t));
  }
  if (binary_pos != binary.size())
    bad(fmt::format("the body has {} binary bytes after the inputs' binary data", binary.size() - binary_pos));

  if (obj["outputs"].get(e) == simdjson::SUCCESS) {
    simdjson::dom::array outs;
    if (e.get(outs)) bad("\"outputs\" must be an array");
    for (element o : outs) {
      simdjson::dom::object oo;
      if (o.get(oo)) bad("each of \"outputs\" must be an object");
      element v;
      if (oo["name"].get(v)) bad("a requested output has no \"name\"");
      RequestedOutput out{std::string(string_of(v, "an output's name")), r.binary_outputs};
      if (oo["parameters"].get(v) == simdjson::SUCCESS) {
        simdjson::dom::object p;
        if (v.get(p)) bad(fmt::format("output '{}': parameters must be an object", out.name));
        element b;
        if (p["binary_data"].get(b) == simdjson::SUCCESS)
          out.binary = bool_parameter(p, "binary_data", "output '" + out.name + "'");
      }
      r.outputs.push_back(std::move(out));
    }
  }
  return r;
}

namespace {

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "Infinity" : "-Infinity";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_number(std::string& out, float v) {
  if (!std::isfinite(v)) return append_number(out, static_cast<double>(v));
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

template <typename T>
void append_integers(std::string& out, const Tensor& t) {
  const T* p = t.data<T>();
  char buf[32];
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i) out += ',';
    auto r = std::to_chars(buf, buf + sizeof buf, p[i]);
    out.append(buf, r.ptr);
  }
}

void append_json_data(std::string& out, const Tensor& t) {
  out += '[';
  switch (t.dtype()) {
    case DType::kFloat32: {
      const float* p = t.data<float>();
      out.reserve(out.size() + static_cast<size_t>(t.numel()) * 12);
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (i) out += ',';
        append_number(out, p[i]);
      }
      break;
    }
    case DType::kFloat64:
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (i) out += ',';
        append_number(out, t.data<double>()[i]);
      }
      break;
    case DType::kFloat16:
    case DType::kBFloat16: {
      const uint16_t* p = static_cast<const uint16_t*>(t.raw());
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (i) out += ',';
        append_number(out, t.dtype() == DType::kFloat16 ? f16_bits_to_float(p[i]) : bf16_bits_to_float(p[i]));
      }
      break;
    }
    case DType::kBool:
      for (int64_t i = 0; i < t.numel(); ++i) out += (i ? "," : "") + std::string(t.data<bool>()[i] ? "true" : "false");
      break;
    case DType::kString:
      for (int64_t i = 0; i < t.numel(); ++i) out += (i ? "," : "") + json_string(t.data<std::string>()[i]);
      break;
    case DType::kInt8: append_integers<int8_t>(out, t); break;
    case DType::kInt16: append_integers<int16_t>(out, t); break;
    case DType::kInt32: append_integers<int32_t>(out, t); break;
    case DType::kInt64: append_integers<int64_t>(out, t); break;
    case DType::kUInt8: append_integers<uint8_t>(out, t); break;
    case DType::kUInt16: append_integers<uint16_t>(out, t); break;
    case DType::kUInt32: append_integers<uint32_t>(out, t); break;
    case DType::kUInt64: append_integers<uint64_t>(out, t); break;
    default: throw HttpError(500, "an output has a datatype the protocol cannot carry: " + dtype_name(t.dtype()));
  }
  out += ']';
}

}  // namespace

std::string tensor_binary_data(const Tensor& t) {
  if (t.dtype() != DType::kString) return std::string(static_cast<const char*>(t.raw()), t.nbytes());
  std::string out;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const std::string& s = t.data<std::string>()[i];
    uint32_t len = static_cast<uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += s;
  }
  return out;
}

std::string tensor_json_data(const Tensor& t) {
  std::string out;
  append_json_data(out, t);
  return out;
}

ResponseBody make_infer_response(const std::string& model, const std::string& version, const InferRequest& request,
                                 const std::vector<std::pair<std::string, Tensor>>& outputs) {
  std::string json = "{\"model_name\":" + json_string(model) + ",\"model_version\":" + json_string(version);
  if (!request.id.empty()) json += ",\"id\":" + json_string(request.id);
  json += ",\"outputs\":[";
  std::string binary;
  bool first = true;
  for (const auto& output : outputs) {
    const std::string& name = output.first;
    const Tensor& t = output.second;
    bool as_binary = request.binary_outputs;
    if (!request.outputs.empty()) {
      auto it = std::find_if(request.outputs.begin(), request.outputs.end(),
                             [&](const RequestedOutput& o) { return o.name == name; });
      if (it == request.outputs.end()) continue;
      as_binary = it->binary;
    }
    json += first ? "{" : ",{";
    first = false;
    json += "\"name\":" + json_string(name) + ",\"datatype\":\"" + kserve_datatype(t.dtype()) + "\",\"shape\":[" +
            fmt::format("{}", fmt::join(t.shape(), ",")) + "]";
    if (as_binary) {
      std::string bytes = tensor_binary_data(t);
      json += fmt::format(",\"parameters\":{{\"binary_data_size\":{}}}}}", bytes.size());
      binary += bytes;
    } else {
      json += ",\"data\":";
      append_json_data(json, t);
      json += '}';
    }
  }
  json += "]}";
  ResponseBody r;
  if (!binary.empty() ||
      std::any_of(request.outputs.begin(), request.outputs.end(), [](const RequestedOutput& o) { return o.binary; }) ||
      (request.outputs.empty() && request.binary_outputs)) {
    r.header_length = json.size();
    r.body = std::move(json);
    r.body += binary;
  } else {
    r.body = std::move(json);
  }
  return r;
}

std::string error_json(const std::string& message) { return "{\"error\":" + json_string(message) + "}"; }

}  // namespace kiln::serve
