#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
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
    if (colon == std::string::npos || colon == 0)
      throw Error("--shapes: '" + item + "' is not NAME:DIMxDIMx... (e.g. input:1x3x224x224)");
    out[item.substr(0, colon)] = parse_dims(item.substr(colon + 1), "--shapes", item);
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

Tensor random_input(const TensorInfo& info, const std::map<std::string, Shape>& shapes, uint64_t seed) {
  Shape shape;
  auto it = shapes.find(info.name);
  if (it != shapes.end()) {
    shape = it->second;
  } else {
    if (!info.has_shape) throw Error("input '" + info.name + "' has unknown rank: give its shape with --shapes");
    for (const auto& d : info.shape) shape.push_back(d.size >= 0 ? d.size : 1);
  }
  Tensor t(info.dtype, shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  dispatch<AllTypes>(info.dtype, "random input '" + info.name + "'", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (std::is_same_v<T, std::string>)
        p[i] = "s" + std::to_string(i);
      else if constexpr (std::is_same_v<T, bool>)
        p[i] = rng() & 1;
      else if constexpr (std::is_integral_v<T>)
        p[i] = static_cast<T>(rng() % 4);
      else
        p[i] = static_cast<T>(uni(rng));
    }
  });
  return t;
}

Feed load_input_files(const std::vector<std::string>& specs) {
  Feed feed;
  for (const auto& spec : specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--input '" + spec + "' is not NAME=FILE");
    feed.emplace_back(spec.substr(0, eq), load_tensor_file(spec.substr(eq + 1)));
  }
  return feed;
}

void complete_feed(const Session& s, Feed& feed, const std::map<std::string, Shape>& shapes, uint64_t seed,
                   std::FILE* log) {
  for (const auto& info : s.inputs()) {
    if (info.has_default) continue;
    auto given = std::find_if(feed.begin(), feed.end(), [&](const auto& f) { return f.first == info.name; });
    if (given == feed.end()) {
      feed.emplace_back(info.name, random_input(info, shapes, seed++));
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
  if (which & kInputsFlag)
    cmd->add_option("--input,-i", f.inputs,
                    "NAME=FILE input (.npy or TensorProto .pb); repeatable. Missing inputs are random");
  if (which & kShapesFlag) cmd->add_option("--shapes", f.shapes, "Sizes for symbolic input dims: NAME:1x3x224x224,...");
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
