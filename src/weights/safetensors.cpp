// .safetensors (https://huggingface.co/docs/safetensors, "Format"):
//
//   u64 N              little-endian: the header's length in bytes
//   N bytes            a JSON object, UTF-8, possibly padded with spaces:
//                        "NAME": {"dtype": "F32", "shape": [2, 3],
//                                 "data_offsets": [BEGIN, END]}, ...
//                        "__metadata__": {"key": "value", ...}  (optional)
//   the data           tensors, row-major, little-endian; BEGIN and END are
//                      byte offsets from the start of this region
//
// The spec caps the header at 100 MB; we also check each tensor's range lies
// inside the data and holds exactly numel * itemsize bytes.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <map>

#include "kiln/error.h"
#include "weights/readers.h"

namespace kiln::weights {

namespace {

constexpr uint64_t kMaxHeader = uint64_t{100} << 20;

DType safetensors_dtype(const std::string& s) {
  static const std::map<std::string, DType> types = {
      {"F64", DType::kFloat64}, {"F32", DType::kFloat32}, {"F16", DType::kFloat16}, {"BF16", DType::kBFloat16},
      {"I64", DType::kInt64},   {"I32", DType::kInt32},   {"I16", DType::kInt16},   {"I8", DType::kInt8},
      {"U64", DType::kUInt64},  {"U32", DType::kUInt32},  {"U16", DType::kUInt16},  {"U8", DType::kUInt8},
      {"BOOL", DType::kBool},
  };
  auto it = types.find(s);
  return it == types.end() ? DType::kUndefined : it->second;
}

uint64_t as_offset(const nlohmann::ordered_json& j, const std::string& where) {
  if (!j.is_number_unsigned()) throw Error(where + " is not a non-negative integer");
  return j.get<uint64_t>();
}

}  // namespace

WeightMap read_safetensors(std::span<const uint8_t> bytes, const std::string& label) {
  if (bytes.size() < 8) throw Error(label + ": too short for a safetensors header");
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | bytes[static_cast<size_t>(k)];
  if (n > kMaxHeader) throw Error(label + ": safetensors header of " + std::to_string(n) + " bytes (at most 100 MB)");
  if (n > bytes.size() - 8)
    throw Error(label + ": safetensors header of " + std::to_string(n) + " bytes runs past the end of the file");
  std::span<const uint8_t> data = bytes.subspan(8 + n);
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes.data() + 8, bytes.data() + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    throw Error(label + ": the safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(label + ": the safetensors header is not a JSON object");

  WeightMap out;
  out.format = WeightsFormat::kSafetensors;
  // Entries may share one data range, and each is copied: the same limit
  // as for torch checkpoints' views (8 times the file, at least 1 MiB)
  // keeps a small file from asking for gigabytes.
  uint64_t budget = std::max<uint64_t>(uint64_t{8} * bytes.size(), uint64_t{1} << 20);
  for (const auto& [name, info] : header.items()) {
    std::string where = label + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!info.is_object()) throw Error(label + ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) throw Error(label + ": __metadata__ entry '" + key + "' is not a string");
        out.values.push_back({key, "metadata", value.get<std::string>()});
      }
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw Error(where + ": expected an object with dtype, shape and data_offsets");
    const auto& dt = info["dtype"];
    DType dtype = dt.is_string() ? safetensors_dtype(dt.get<std::string>()) : DType::kUndefined;
    if (dtype == DType::kUndefined) throw Error(where + ": unsupported dtype " + dt.dump());
    const auto& shape_json = info["shape"];
    if (!shape_json.is_array()) throw Error(where + ": shape is not a list");
    Shape shape;
    int64_t numel = 1;
    for (const auto& d : shape_json) {
      uint64_t dim = as_offset(d, where + ": a dimension");
      if (dim > static_cast<uint64_t>(INT64_MAX)) throw Error(where + ": dimension " + d.dump() + " is too large");
      shape.push_back(static_cast<int64_t>(dim));
      numel = checked_mul(numel, shape.back(), where + ": element count");
    }
    const auto& offsets = info["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) throw Error(where + ": data_offsets is not [begin, end]");
    uint64_t begin = as_offset(offsets[0], where + ": data_offsets[0]");
    uint64_t end = as_offset(offsets[1], where + ": data_offsets[1]");
    if (begin > end || end > data.size())
      throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  "] lie outside the data (" + std::to_string(data.size()) + " bytes)");
    int64_t nbytes = checked_mul(numel, static_cast<int64_t>(dtype_size(dtype)), where + ": size");
    if (static_cast<uint64_t>(nbytes) != end - begin)
      throw Error(where + ": " + std::to_string(end - begin) + " bytes of data for " + shape_str(shape) + " " +
                  dtype_numpy_name(dtype) + " (" + std::to_string(nbytes) + " bytes)");
    if (static_cast<uint64_t>(nbytes) > budget)
      throw Error(where + ": its " + std::to_string(nbytes) +
                  " bytes exceed what is left of kiln's limit for this file (8 times its size): tensors sharing "
                  "data ranges this much are refused");
    budget -= static_cast<uint64_t>(nbytes);
    Tensor t(dtype, shape);
    if (nbytes > 0) std::memcpy(t.raw(), data.data() + begin, static_cast<size_t>(nbytes));
    out.tensors.push_back({name, std::move(t)});
  }
  return out;
}

}  // namespace kiln::weights
