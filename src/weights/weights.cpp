// load_weights: picks the reader by the file's first bytes (see weights.h).
#include "kiln/weights.h"

#include <cstring>

#include "core/file.h"
#include "core/half.h"
#include "kiln/error.h"
#include "weights/readers.h"

namespace kiln {

namespace {

bool starts_with(std::span<const uint8_t> b, const char* magic, size_t n) {
  return b.size() >= n && std::memcmp(b.data(), magic, n) == 0;
}

// An 8-byte little-endian length that fits the file, then the JSON's '{'.
bool looks_like_safetensors(std::span<const uint8_t> b) {
  if (b.size() < 10) return false;
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | b[static_cast<size_t>(k)];
  return n >= 2 && n <= b.size() - 8 && b[8] == '{';
}

// A first line of decimal digits (spaces and a CR allowed around them).
bool looks_like_wts(std::span<const uint8_t> b) {
  bool digits = false;
  for (uint8_t c : b) {
    if (c == '\n') return digits;
    if (c >= '0' && c <= '9')
      digits = true;
    else if (c != ' ' && c != '\t' && c != '\r')
      return false;
  }
  return digits;
}

std::string first_bytes_hex(std::span<const uint8_t> b) {
  std::string s;
  const char* digits = "0123456789abcdef";
  for (size_t k = 0; k < b.size() && k < 8; ++k) {
    if (k) s += ' ';
    s += digits[b[k] >> 4];
    s += digits[b[k] & 15];
  }
  return s.empty() ? "an empty file" : "bytes " + s;
}

}  // namespace

std::string weights_format_name(WeightsFormat f) {
  switch (f) {
    case WeightsFormat::kTorchZip: return "torch";
    case WeightsFormat::kSafetensors: return "safetensors";
    case WeightsFormat::kWts: return "wts";
  }
  return "?";
}

const Tensor* WeightMap::find(std::string_view name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t.tensor;
  return nullptr;
}

WeightMap load_weights_bytes(std::span<const uint8_t> bytes, const std::string& label) {
  if (starts_with(bytes, "PK\x03\x04", 4) || starts_with(bytes, "PK\x05\x06", 4))
    return weights::read_torch_zip(bytes, label);
  if (looks_like_safetensors(bytes)) return weights::read_safetensors(bytes, label);
  if (looks_like_wts(bytes)) return weights::read_wts(bytes, label);
  // PyTorch before 1.6 (and _use_new_zipfile_serialization=False) wrote a
  // bare pickle stream with the storages appended; kiln reads only the zip.
  if (!bytes.empty() && bytes[0] == 0x80)
    throw Error(label +
                ": a bare pickle, as torch.save wrote before PyTorch 1.6 (or with "
                "_use_new_zipfile_serialization=False): kiln reads the zip format; re-save it with a newer torch.save");
  throw Error(label + ": not a PyTorch checkpoint (zip), safetensors or .wts file (starts with " +
              first_bytes_hex(bytes) + ")");
}

WeightMap load_weights(const std::string& path) {
  std::string bytes = read_file(path);
  return load_weights_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path);
}

Tensor weights_to_float32(const Tensor& t) {
  if (t.dtype() == DType::kFloat32) return t;
  Tensor out(DType::kFloat32, t.shape());
  float* o = out.data<float>();
  int64_t n = t.numel();
  auto convert = [&](auto tag) {
    using T = decltype(tag);
    const T* in = t.data<T>();
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(in[i]);
  };
  switch (t.dtype()) {
    case DType::kFloat16: {
      const uint16_t* in = t.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = f16_bits_to_float(in[i]);
      break;
    }
    case DType::kBFloat16: {
      const uint16_t* in = t.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = bf16_bits_to_float(in[i]);
      break;
    }
    case DType::kFloat64: convert(double{}); break;
    case DType::kInt64: convert(int64_t{}); break;
    case DType::kInt32: convert(int32_t{}); break;
    case DType::kInt16: convert(int16_t{}); break;
    case DType::kInt8: convert(int8_t{}); break;
    case DType::kUInt8: convert(uint8_t{}); break;
    case DType::kUInt16: convert(uint16_t{}); break;
    case DType::kUInt32: convert(uint32_t{}); break;
    case DType::kUInt64: convert(uint64_t{}); break;
    default: throw Error("weights_to_float32: cannot convert a " + dtype_numpy_name(t.dtype()) + " tensor");
  }
  return out;
}

}  // namespace kiln
