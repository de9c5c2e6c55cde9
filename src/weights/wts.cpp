// tensorrtx's .wts text format (github.com/wang-xinyu/tensorrtx, gen_wts.py):
//
//   COUNT\n
//   NAME N HEX HEX ... HEX\n      COUNT lines like this
//
// each HEX the big-endian hex digits of a float32's bits (struct.pack('>f',
// v).hex(), so "3f800000" is 1.0), always 8 digits. The file keeps no shapes:
// each tensor comes back 1-D with N elements, as tensorrtx's own loader reads
// it. Tokens are separated by any whitespace, as tensorrtx's C++ reader
// (`>>`) accepts.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

#include "kiln/error.h"
#include "weights/readers.h"

namespace kiln::weights {

namespace {

class Tokens {
 public:
  Tokens(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  // The next whitespace-separated token, or "" at the end.
  std::string_view next() {
    while (pos_ < bytes_.size() && std::isspace(bytes_[pos_])) ++pos_;
    size_t start = pos_;
    while (pos_ < bytes_.size() && !std::isspace(bytes_[pos_])) ++pos_;
    return {reinterpret_cast<const char*>(bytes_.data()) + start, pos_ - start};
  }
  size_t left() const { return bytes_.size() - pos_; }
  size_t line() const { return 1 + static_cast<size_t>(std::count(bytes_.begin(), bytes_.begin() + pos_, '\n')); }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

// A decimal count, or -1 when `s` is not one (or is absurdly large).
int64_t parse_count(std::string_view s) {
  if (s.empty() || s.size() > 15) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// Exactly 8 digits, as gen_wts.py writes them: a shorter word is a truncated file.
bool parse_hex32(std::string_view s, uint32_t& bits) {
  if (s.size() != 8) return false;
  bits = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return false;
    bits = (bits << 4) | static_cast<uint32_t>(d);
  }
  return true;
}

}  // namespace

WeightMap read_wts(std::span<const uint8_t> bytes, const std::string& label) {
  Tokens tok(bytes);
  std::string_view first = tok.next();
  int64_t count = parse_count(first);
  if (count < 0) throw Error(label + ": a .wts file starts with a tensor count, not '" + std::string(first) + "'");
  // Every entry takes at least 4 bytes ("a 0\n"), which bounds what we reserve.
  if (static_cast<uint64_t>(count) > tok.left() / 4 + 1)
    throw Error(label + ": " + std::to_string(count) + " tensors do not fit in the rest of the file");
  WeightMap out;
  out.format = WeightsFormat::kWts;
  std::set<std::string> names;
  for (int64_t k = 0; k < count; ++k) {
    std::string name(tok.next());
    if (name.empty())
      throw Error(label + ": the file ends after " + std::to_string(k) + " of " + std::to_string(count) + " tensors");
    if (!names.insert(name).second) throw Error(label + ": tensor '" + name + "' appears twice");
    std::string_view n_text = tok.next();
    int64_t n = parse_count(n_text);
    // Each value takes at least 2 bytes (a digit and a separator).
    if (n < 0 || static_cast<uint64_t>(n) > tok.left() / 2 + 1)
      throw Error(label + ": line " + std::to_string(tok.line()) + ": tensor '" + name + "': bad value count '" +
                  std::string(n_text) + "'");
    Tensor t(DType::kFloat32, {n});
    float* v = t.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      std::string_view word = tok.next();
      uint32_t bits;
      if (!parse_hex32(word, bits))
        throw Error(label + ": line " + std::to_string(tok.line()) + ": tensor '" + name + "': value " +
                    std::to_string(i) + " is '" + std::string(word.substr(0, 16)) +
                    "', not the 8 hex digits of a float32's bits" + (word.empty() ? " (file truncated?)" : ""));
      std::memcpy(&v[i], &bits, 4);
    }
    out.tensors.push_back({std::move(name), std::move(t)});
  }
  if (!tok.next().empty())
    throw Error(label + ": line " + std::to_string(tok.line()) + ": more data after the " + std::to_string(count) +
                " tensors the first line announces");
  return out;
}

}  // namespace kiln::weights
