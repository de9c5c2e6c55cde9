#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

#include "cli.h"
#include "core/dispatch.h"

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
    std::string name = item.substr(0, colon);
    std::string dims = item.substr(colon + 1);
    Shape shape;
    std::stringstream ds(dims);
    std::string d;
    while (std::getline(ds, d, 'x')) {
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(d.c_str(), &end, 10);
      if (d.empty() || *end || errno || v < 0 || v > (int64_t{1} << 40))
        throw Error("--shapes: bad dimension '" + d + "' in '" + item + "'");
      shape.push_back(v);
    }
    out[name] = shape;
  }
  return out;
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
      if constexpr (std::is_same_v<T, std::string>) p[i] = "s" + std::to_string(i);
      else if constexpr (std::is_same_v<T, bool>) p[i] = rng() & 1;
      else if constexpr (std::is_integral_v<T>) p[i] = static_cast<T>(rng() % 4);
      else p[i] = static_cast<T>(uni(rng));
    }
  });
  return t;
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
      if (std::isnan(v)) { ++nans; continue; }
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

}  // namespace kiln::cli
