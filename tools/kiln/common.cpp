#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>

#include "cli.h"
#include "core/dispatch.h"
#include "kiln/tensor_io.h"

namespace kiln::cli {

std::map<std::string, Shape> parse_shapes(const std::string& text) {
  std::map<std::string, Shape> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t colon = item.rfind(':');
    if (colon == 0) throw Error("--shapes: '" + item + "' is not NAME:DIMxDIMx... (e.g. input:1x3x224x224)");
    std::string name = colon == std::string::npos ? "" : item.substr(0, colon);
    if (out.count(name))
      throw Error(name.empty() ? "--shapes: more than one shape without an input name ('" + item + "')"
                               : "--shapes: input '" + name + "' is given twice");
    out[name] = parse_dims(colon == std::string::npos ? item : item.substr(colon + 1), "--shapes", item);
  }
  return out;
}

Shape parse_dims(const std::string& dims, const std::string& flag, const std::string& item) {
  Shape shape;
  std::stringstream ds(dims);
  std::string d;
  while (std::getline(ds, d, 'x')) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(d.c_str(), &end, 10);
    if (d.empty() || *end || errno || v < 0 || v > (int64_t{1} << 40))
      throw Error(flag + ": bad dimension '" + d + "' in '" + item + "'");
    shape.push_back(v);
  }
  return shape;
}

ValueRanges parse_value_ranges(const std::vector<std::string>& specs) {
  ValueRanges out;
  for (const auto& spec : specs) {
    size_t colon = spec.rfind(':');
    std::string name = colon == std::string::npos ? "" : spec.substr(0, colon);
    std::string range = colon == std::string::npos ? spec : spec.substr(colon + 1);
    size_t comma = range.find(',');
    char* end_lo = nullptr;
    char* end_hi = nullptr;
    double lo = 0, hi = 0;
    if (comma != std::string::npos) {
      std::string lo_text = range.substr(0, comma), hi_text = range.substr(comma + 1);
      lo = std::strtod(lo_text.c_str(), &end_lo);
      hi = std::strtod(hi_text.c_str(), &end_hi);
      if (lo_text.empty() || hi_text.empty() || *end_lo || *end_hi) comma = std::string::npos;
    }
    if (comma == std::string::npos || colon == 0)
      throw Error("--val-range '" + spec + "' is not [NAME:]LO,HI (e.g. ids:0,30000)");
    if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
      throw Error("--val-range '" + spec + "': LO must be finite and at most HI");
    if (out.count(name))
      throw Error("--val-range '" + spec + "': a range for " + (name.empty() ? "every input" : "'" + name + "'") +
                  " is given twice");
    out[name] = {lo, hi};
  }
  return out;
}

Tensor random_input(const TensorInfo& info, const Shape& shape, const std::pair<double, double>* range, uint64_t seed) {
  Tensor t(info.dtype, shape);
  std::mt19937_64 rng(seed);
  const double lo = range ? range->first : -1.0, hi = range ? range->second : 1.0;
  std::uniform_real_distribution<double> uni(lo, std::nextafter(hi, INFINITY));
  dispatch<AllTypes>(info.dtype, "random input '" + info.name + "'", [&]<typename T>() {
    T* p = t.data<T>();
    if constexpr (std::is_same_v<T, std::string>) {
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = "s" + std::to_string(i);
    } else if constexpr (std::is_same_v<T, bool>) {
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = range ? uni(rng) >= 0.5 * (lo + hi) : (rng() & 1) != 0;
    } else if constexpr (std::is_integral_v<T>) {
      double ilo = range ? std::ceil(lo) : 0, ihi = range ? std::floor(hi) : 3;
      if (ilo > ihi || ilo < static_cast<double>(std::numeric_limits<T>::lowest()) ||
          ihi > static_cast<double>(std::numeric_limits<T>::max()))
        throw Error("--val-range " + std::to_string(lo) + "," + std::to_string(hi) + " holds no value of input '" +
                    info.name + "' (" + dtype_name(info.dtype) + ")");
      std::uniform_int_distribution<int64_t> ints(static_cast<int64_t>(ilo), static_cast<int64_t>(ihi));
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(ints(rng));
    } else {
      for (int64_t i = 0; i < t.numel(); ++i) {
        double v = lo == hi ? lo : std::min(uni(rng), hi);
        if constexpr (std::is_same_v<T, double>)
          p[i] = v;
        else
          p[i] = static_cast<T>(static_cast<float>(v));
      }
    }
  });
  return t;
}

namespace {

// Nested brackets of numbers or true/false: the values as text, row-major,
// and the shape the nesting gives.
class LiteralParser {
 public:
  explicit LiteralParser(const std::string& text) : s_(text) {}
  bool parse(Shape& shape) {
    if (!element(shape)) return false;
    skip_space();
    return i_ == s_.size();
  }
  std::vector<std::string> values;

 private:
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool element(Shape& shape) {
    skip_space();
    if (i_ < s_.size() && s_[i_] == '[') {
      ++i_;
      skip_space();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        shape = {0};
        return true;
      }
      std::optional<Shape> inner;
      int64_t n = 0;
      for (;;) {
        Shape sub;
        if (!element(sub) || (inner && *inner != sub)) return false;  // bad or ragged
        inner = sub;
        ++n;
        skip_space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          break;
        }
        return false;
      }
      shape = {n};
      shape.insert(shape.end(), inner->begin(), inner->end());
      return true;
    }
    size_t start = i_;
    while (i_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == '-' || s_[i_] == '+'))
      ++i_;
    if (i_ == start) return false;
    std::string token = s_.substr(start, i_ - start);
    char* end = nullptr;
    std::strtod(token.c_str(), &end);
    if (*end && token != "true" && token != "false") return false;
    values.push_back(token);
    shape = {};
    return true;
  }
  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<Tensor> parse_literal(const std::string& text, const TensorInfo& info) {
  LiteralParser parser(text);
  Shape shape;
  const bool bracketed =
      text.find_first_not_of(" \t") != std::string::npos && text[text.find_first_not_of(" \t")] == '[';
  if (!parser.parse(shape)) {
    if (bracketed)
      throw Error("input '" + info.name + "': '" + text +
                  "' is not a literal: numbers or true/false in brackets, rows of equal length (e.g. [[1,2],[3,4]])");
    return std::nullopt;
  }
  // One value for a tensor declared with one element of higher rank ([1, 1]).
  if (shape.empty() && info.has_shape && !info.shape.empty() &&
      std::all_of(info.shape.begin(), info.shape.end(), [](const TensorDim& d) { return d.size == 1 || d.size < 0; }))
    shape = Shape(info.shape.size(), 1);
  Tensor t(info.dtype, shape);
  dispatch<AllTypes>(info.dtype, "literal for input '" + info.name + "'", [&]<typename T>() {
    T* p = t.data<T>();
    for (size_t i = 0; i < parser.values.size(); ++i) {
      const std::string& v = parser.values[i];
      auto bad = [&] {
        return Error("input '" + info.name + "': '" + v + "' is not a " + dtype_name(info.dtype) + " value");
      };
      char* end = nullptr;
      errno = 0;
      if constexpr (std::is_same_v<T, std::string>) {
        p[i] = v;
      } else if constexpr (std::is_same_v<T, bool>) {
        if (v != "true" && v != "false" && v != "0" && v != "1") throw bad();
        p[i] = v == "true" || v == "1";
      } else if constexpr (std::is_integral_v<T>) {
        bool is_signed = std::is_signed_v<T>;
        long long x = is_signed ? std::strtoll(v.c_str(), &end, 10) : 0;
        unsigned long long u = is_signed ? 0 : std::strtoull(v.c_str(), &end, 10);
        if (*end || v.empty() || (!is_signed && v.find('-') != std::string::npos)) throw bad();
        const bool in_range = is_signed ? x >= static_cast<long long>(std::numeric_limits<T>::lowest()) &&
                                              x <= static_cast<long long>(std::numeric_limits<T>::max())
                                        : u <= static_cast<unsigned long long>(std::numeric_limits<T>::max());
        if (errno == ERANGE || !in_range)
          throw Error("input '" + info.name + "': " + v + " is out of the range of " + dtype_name(info.dtype));
        p[i] = is_signed ? static_cast<T>(x) : static_cast<T>(u);
      } else {
        double d = std::strtod(v.c_str(), &end);
        if (*end) throw bad();
        if constexpr (std::is_same_v<T, double>)
          p[i] = d;
        else
          p[i] = static_cast<T>(static_cast<float>(d));
      }
    }
  });
  return t;
}

Feed load_inputs(const std::vector<std::string>& specs, const std::vector<TensorInfo>& inputs) {
  Feed feed;
  for (const auto& spec : specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--input '" + spec + "' is not NAME=FILE or NAME=VALUE");
    std::string name = spec.substr(0, eq), value = spec.substr(eq + 1);
    auto info = std::find_if(inputs.begin(), inputs.end(), [&](const TensorInfo& i) { return i.name == name; });
    if (info == inputs.end()) {
      std::string names;
      for (const auto& i : inputs) names += (names.empty() ? "" : ", ") + i.name;
      throw Error("--input names '" + name + "', which is not an input of the model (its inputs: " + names + ")");
    }
    if (std::any_of(feed.begin(), feed.end(), [&](const auto& f) { return f.first == name; }))
      throw Error("--input gives '" + name + "' twice");
    if (auto literal = parse_literal(value, *info)) {
      feed.emplace_back(name, std::move(*literal));
      continue;
    }
    try {
      feed.emplace_back(name, load_tensor_file(value));
    } catch (const Error& e) {
      throw Error("--input " + spec + ": not a literal (16000, [1,2,3]) and not a tensor file: " + e.what());
    }
  }
  return feed;
}

namespace {

// The shape a random input takes (see complete_feed), or nullopt.
std::optional<Shape> random_shape(const Session& s, const TensorInfo& info,
                                  const std::map<std::string, Shape>& shapes) {
  if (auto it = shapes.find(info.name); it != shapes.end()) return it->second;
  if (info.has_shape &&
      std::all_of(info.shape.begin(), info.shape.end(), [](const TensorDim& d) { return d.size >= 0; })) {
    Shape shape;
    for (const auto& d : info.shape) shape.push_back(d.size);
    return shape;
  }
  for (const auto& p : s.profiles())
    if (auto it = p.opt.find(info.name); it != p.opt.end()) return it->second;
  return std::nullopt;
}

// "x: float[batch x 3 x H x W]" for the error, and "x:1x3x64x64" for its example.
std::string example_dims(const TensorInfo& info) {
  if (!info.has_shape) return "";
  std::string dims;
  for (size_t i = 0; i < info.shape.size(); ++i)
    dims += (i ? "x" : "") + std::to_string(info.shape[i].size >= 0 ? info.shape[i].size : i == 0 ? 1 : 64);
  return info.name + ":" + dims;
}

}  // namespace

void complete_feed(const Session& s, Feed& feed, const std::map<std::string, Shape>& given_shapes,
                   const ValueRanges& ranges, uint64_t seed, std::FILE* log) {
  std::map<std::string, Shape> shapes = given_shapes;
  if (auto unnamed = shapes.find(""); unnamed != shapes.end()) {
    std::vector<std::string> required;
    for (const auto& info : s.inputs())
      if (!info.has_default) required.push_back(info.name);
    if (required.size() != 1)
      throw Error("--shapes " + shape_str(unnamed->second) + " has no input name, and the model has " +
                  std::to_string(required.size()) + " inputs: write NAME:DIMxDIM...");
    shapes[required[0]] = unnamed->second;
    shapes.erase(unnamed);
  }
  for (const auto& range : ranges) {
    const std::string& name = range.first;  // not a structured binding: lambdas capture it (clang 14)
    if (!name.empty() &&
        std::none_of(s.inputs().begin(), s.inputs().end(), [&](const TensorInfo& i) { return i.name == name; }))
      throw Error("--val-range names '" + name + "', which is not an input of the model");
  }
  auto fed = [&](const TensorInfo& info) {
    return std::find_if(feed.begin(), feed.end(), [&](const auto& f) { return f.first == info.name; });
  };
  std::vector<TensorInfo> unresolved;
  for (const auto& info : s.inputs())
    if (!info.has_default && fed(info) == feed.end() && !random_shape(s, info, shapes)) unresolved.push_back(info);
  if (!unresolved.empty()) throw Error(unresolved_dims_message(unresolved));
  for (const auto& info : s.inputs()) {
    if (info.has_default) continue;
    auto given = fed(info);
    if (given == feed.end()) {
      const Shape shape = *random_shape(s, info, shapes);
      auto range = ranges.find(info.name);
      if (range == ranges.end()) range = ranges.find("");
      feed.emplace_back(info.name, random_input(info, shape, range == ranges.end() ? nullptr : &range->second, seed++));
      if (log)
        std::fprintf(log, "input  %s: random %s %s\n", info.name.c_str(), dtype_name(info.dtype).c_str(),
                     shape_str(feed.back().second.shape()).c_str());
    } else if (log) {
      const Tensor& t = given->second;
      std::fprintf(log, "input  %s: %s %s\n", info.name.c_str(), dtype_name(t.dtype()).c_str(),
                   shape_str(t.shape()).c_str());
    }
  }
}

std::string unresolved_dims_message(const std::vector<TensorInfo>& inputs) {
  std::string list, example;
  for (const auto& info : inputs) {
    list += "\n  " + info.name + ": " + info.str() + (info.has_shape ? "" : " (rank unknown)");
    std::string ex = example_dims(info);
    if (!ex.empty()) example += (example.empty() ? "" : ",") + ex;
  }
  return "the model has inputs with dims of unknown size, and kiln does not guess them: give their sizes with "
         "--shapes (or the inputs with --input NAME=FILE)" +
         list + (example.empty() ? "" : "\nfor example: --shapes " + example);
}

void add_test_data_inputs(const Session& s, const std::string& dir, Feed& feed) {
  std::vector<std::string> files;
  for (int k = 0; std::filesystem::exists(dir + "/input_" + std::to_string(k) + ".pb"); ++k)
    files.push_back(dir + "/input_" + std::to_string(k) + ".pb");
  auto fed = [&](const std::string& name) {
    return std::any_of(feed.begin(), feed.end(), [&](const auto& f) { return f.first == name; });
  };
  std::vector<std::string> required;  // the inputs without an initializer, in order
  for (const auto& info : s.inputs())
    if (!info.has_default) required.push_back(info.name);
  const Feed given = feed;
  auto is_given = [&](const std::string& name) {
    return std::any_of(given.begin(), given.end(), [&](const auto& f) { return f.first == name; });
  };
  for (size_t k = 0; k < files.size(); ++k) {
    std::string name;
    Tensor t = load_tensor_pb(files[k], &name);
    const bool is_input =
        std::any_of(s.inputs().begin(), s.inputs().end(), [&](const TensorInfo& i) { return i.name == name; });
    if (!is_input) {
      if (k >= required.size())
        throw Error(files[k] + ": more input files than the model has inputs without an initializer (" +
                    std::to_string(required.size()) + ")");
      name = required[k];
    }
    if (is_given(name)) continue;  // the user's own input wins
    if (fed(name)) throw Error(files[k] + ": a second tensor for input '" + name + "'");
    feed.emplace_back(name, std::move(t));
  }
}

Feed make_feed(const Session& s, const SessionFlags& f, const std::map<std::string, Shape>& shapes, std::FILE* log) {
  Feed feed = load_inputs(f.inputs, s);
  complete_feed(s, feed, shapes, parse_value_ranges(f.val_ranges), f.seed, log);
  return feed;
}

void write_outputs(const Session& s, const std::vector<Tensor>& outs, const std::string& dir,
                   const std::string& format) {
  std::filesystem::create_directories(dir);
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string& name = s.outputs()[i].name;
    std::string path = dir + "/" + output_file_stem(name) + (format == "pb" ? ".pb" : ".npy");
    if (format == "pb")
      save_tensor_pb(outs[i], name, path);
    else
      save_npy(outs[i], path);
  }
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string output_file_stem(const std::string& name) {
  std::string safe = name;
  std::replace_if(
      safe.begin(), safe.end(), [](char c) { return c == '/' || c == '\\' || c == ':'; }, '_');
  return safe;
}

std::string summarize(const Tensor& t) {
  char buf[256];
  if (t.numel() == 0) return "empty";
  if (t.dtype() == DType::kString) return "\"" + t.data<std::string>()[0] + "\"" + (t.numel() > 1 ? " ..." : "");
  double mn = INFINITY, mx = -INFINITY, sum = 0;
  int64_t nans = 0;
  dispatch<PodTypes>(t.dtype(), "summary", [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) {
      double v = static_cast<double>(acc_t<T>(t.data<T>()[i]));
      if (std::isnan(v)) {
        ++nans;
        continue;
      }
      mn = std::min(mn, v);
      mx = std::max(mx, v);
      sum += v;
    }
  });
  std::snprintf(buf, sizeof buf, "min %.6g  max %.6g  mean %.6g", mn, mx,
                sum / static_cast<double>(std::max<int64_t>(1, t.numel() - nans)));
  std::string s = buf;
  if (nans) s += "  nan " + std::to_string(nans);
  return s;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double pos = p / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return percentile(v, 50);
}

void add_session_flags(CLI::App* cmd, SessionFlags& f, unsigned which) {
  if (which & kModelFlag) cmd->add_option("model", f.model, "ONNX model or kiln engine (.kiln) file")->required();
  if (which & kInputsFlag) {
    cmd->add_option("--input,-i", f.inputs,
                    "NAME=FILE (.npy or TensorProto .pb) or NAME=VALUE, a literal in the input's dtype: sr=16000, "
                    "ids=[1,2,3], mask=[[1,0],[0,1]], flag=true; repeatable. Inputs not given are random");
    cmd->add_option("--val-range", f.val_ranges,
                    "[NAME:]LO,HI: random data of input NAME (without NAME: of every input) drawn from [LO, HI] "
                    "(default: floats in [-1, 1), integers in [0, 3]); repeatable");
  }
  if (which & kShapesFlag)
    cmd->add_option("--shapes", f.shapes,
                    "Sizes for the inputs' dynamic dims: NAME:1x3x224x224,... (or 1x3x224x224 for a model with one "
                    "input). Without them, a model whose inputs have dims of unknown size is refused");
  if (which & kThreadsFlag)
    cmd->add_option("--threads", f.threads, "Intra-op threads (0, the default: the physical cores)")
        ->check(CLI::Range(0, 1024));
  if (which & kOptLevelFlag)
    cmd->add_option("--opt-level,-O", f.opt_level, "Graph optimizer level 0|1|2")
        ->check(CLI::Range(0, 2))
        ->capture_default_str();
  if (which & kSeedFlag) cmd->add_option("--seed", f.seed, "Seed for random inputs")->capture_default_str();
}

}  // namespace kiln::cli
