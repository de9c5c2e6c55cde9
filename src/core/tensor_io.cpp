#include "kiln/tensor_io.h"

#include <cstring>

#include "core/file.h"
#include "kiln/error.h"

namespace kiln {

namespace {

struct NpyType {
  const char* descr;
  DType dtype;
};
constexpr NpyType kTypes[] = {
    {"<f4", DType::kFloat32}, {"<f8", DType::kFloat64}, {"<f2", DType::kFloat16}, {"|i1", DType::kInt8},
    {"<i2", DType::kInt16},   {"<i4", DType::kInt32},   {"<i8", DType::kInt64},   {"|u1", DType::kUInt8},
    {"<u2", DType::kUInt16},  {"<u4", DType::kUInt32},  {"<u8", DType::kUInt64},  {"|b1", DType::kBool},
};

// Extracts the value text after 'key': in the header dict.
std::string header_field(const std::string& h, const std::string& key, const std::string& what) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) throw Error(what + ": .npy header has no '" + key + "'");
  size_t colon = h.find(':', k);
  if (colon == std::string::npos) throw Error(what + ": malformed .npy header");
  size_t start = h.find_first_not_of(' ', colon + 1);
  if (start == std::string::npos) throw Error(what + ": malformed .npy header");
  size_t end;
  if (h[start] == '(') {
    end = h.find(')', start);
    if (end == std::string::npos) throw Error(what + ": malformed .npy shape");
    return h.substr(start, end - start + 1);
  }
  end = h.find_first_of(",}", start);
  return h.substr(start, end - start);
}

// The shape tuple, as numpy writes it: "()", "(4,)", "(2, 3)". Each entry is
// a plain non-negative decimal integer; anything else ("4abc", "4.9", "-1",
// "(,4)") is refused.
Shape parse_npy_shape(const std::string& txt, const std::string& what) {
  auto bad = [&]() { return Error(what + ": bad .npy shape " + txt); };
  if (txt.size() < 2 || txt.front() != '(' || txt.back() != ')') throw bad();
  Shape shape;
  std::string body = txt.substr(1, txt.size() - 2);
  size_t i = 0;
  while (true) {
    size_t j = body.find(',', i);
    std::string tok = body.substr(i, j == std::string::npos ? std::string::npos : j - i);
    size_t a = tok.find_first_not_of(' '), z = tok.find_last_not_of(' ');
    if (a == std::string::npos) {
      // Only the tail after a trailing comma (or "()") may be empty.
      if (j != std::string::npos) throw bad();
      break;
    }
    tok = tok.substr(a, z - a + 1);
    if (tok.size() > 18 || tok.find_first_not_of("0123456789") != std::string::npos) throw bad();
    shape.push_back(std::stoll(tok));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return shape;
}

}  // namespace

Tensor parse_npy(const std::string& b, const std::string& what) {
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) throw Error(what + ": not a .npy file");
  int major = static_cast<unsigned char>(b[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | (static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw Error(what + ": truncated .npy header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
    hstart = 12;
  } else {
    throw Error(what + ": unsupported .npy version " + std::to_string(major));
  }
  if (hstart + hlen > b.size()) throw Error(what + ": truncated .npy header");
  std::string h = b.substr(hstart, hlen);
  std::string descr = header_field(h, "descr", what);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"')) descr = descr.substr(1, descr.size() - 2);
  if (header_field(h, "fortran_order", what).find("True") != std::string::npos)
    throw Error(what + ": Fortran-order .npy arrays are not supported (save with numpy.ascontiguousarray)");
  std::string shape_txt = header_field(h, "shape", what);
  Shape shape = parse_npy_shape(shape_txt, what);
  DType dtype = DType::kUndefined;
  for (const auto& t : kTypes)
    if (descr == t.descr || (descr.size() == 3 && descr[0] == '=' && descr.substr(1) == std::string(t.descr).substr(1)))
      dtype = t.dtype;
  if (dtype == DType::kUndefined) throw Error(what + ": .npy element type '" + descr + "' is not supported");
  int64_t n = shape_numel(shape);
  size_t data = hstart + hlen;
  if (static_cast<uint64_t>(n) > (b.size() - data) / dtype_size(dtype) ||
      static_cast<uint64_t>(n) * dtype_size(dtype) != b.size() - data)
    throw Error(what + ": .npy data has " + std::to_string(b.size() - data) + " bytes, shape " + shape_str(shape) +
                " needs " + std::to_string(static_cast<uint64_t>(n) * dtype_size(dtype)));
  Tensor t(dtype, shape);
  if (n) std::memcpy(t.raw(), b.data() + data, t.nbytes());
  return t;
}

Tensor load_npy(const std::string& path) { return parse_npy(read_file(path), path); }

Tensor load_tensor_file(const std::string& path) {
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0) return load_npy(path);
  return load_tensor_pb(path);
}

void save_npy(const Tensor& t, const std::string& path) {
  const char* descr = nullptr;
  for (const auto& k : kTypes)
    if (k.dtype == t.dtype()) descr = k.descr;
  if (!descr) throw Error(path + ": cannot save " + dtype_name(t.dtype()) + " as .npy");
  std::string shape = "(";
  for (int64_t d : t.shape()) shape += std::to_string(d) + ", ";
  if (t.rank() > 1)
    shape.resize(shape.size() - 2);
  else if (t.rank() == 1)
    shape.resize(shape.size() - 1);
  shape += ")";
  std::string h = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  out += h;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  write_file(path, out);
}

}  // namespace kiln
