// torch.save checkpoints (the zip format, PyTorch 1.6 and later):
//
//   <stem>/data.pkl     the pickled object (a state_dict, a dict holding one,
//                       a bare tensor); tensors refer to storages by key
//   <stem>/data/<key>   one storage each: numel elements, native byte order
//   <stem>/byteorder    "little" or "big" (written since PyTorch 2.1; absent
//                       means little)
//   <stem>/version      the format version, plus other small entries we skip
//
// <stem> is the saved file's name without extension, so we look for the one
// top-level folder holding data.pkl. The pickle is read by the restricted
// unpickler (pickle.h); this file walks the result, flattening nested dicts
// and lists into dotted names, and copies each tensor view out of its storage
// after checking that the view lies inside it.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "kiln/error.h"
#include "weights/pickle.h"
#include "weights/readers.h"
#include "weights/zip.h"

namespace kiln::weights {

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxLeaves = size_t{1} << 20;
constexpr size_t kMaxNameBytes = size_t{1} << 26;  // all names together: long keys at every level add up
constexpr size_t kMaxRank = 64;
constexpr size_t kMaxValueText = 200;

using StorageMap = std::map<std::string, std::span<const uint8_t>>;  // key -> bytes

std::string python_text(const PyObj& o, int depth = 0);

std::string seq_text(const PyObj& o, int depth) {
  bool tuple = o.kind == PyObj::Kind::kTuple;
  std::string s = tuple ? "(" : "[";
  for (size_t k = 0; k < o.items.size() && s.size() <= kMaxValueText; ++k) {
    if (k) s += ", ";
    s += python_text(*o.items[k], depth + 1);
  }
  if (tuple && o.items.size() == 1) s += ",";
  return s + (tuple ? ")" : "]");
}

// A short Python-like rendering of a non-tensor leaf.
std::string python_text(const PyObj& o, int depth) {
  if (depth > 4) return "...";
  switch (o.kind) {
    case PyObj::Kind::kNone: return "None";
    case PyObj::Kind::kBool: return o.i ? "True" : "False";
    case PyObj::Kind::kInt: return std::to_string(o.i);
    case PyObj::Kind::kFloat: {  // the shortest text that reads back the same, like Python's repr
      char buf[64];
      std::string s(buf, std::to_chars(buf, buf + sizeof buf, o.f).ptr);
      if (s.find_first_of(".eni") == std::string::npos) s += ".0";
      return s;
    }
    case PyObj::Kind::kStr: return "'" + o.s.substr(0, kMaxValueText) + "'";
    case PyObj::Kind::kTuple:
    case PyObj::Kind::kList: return seq_text(o, depth);
    default: return "<" + kind_name(o) + ">";
  }
}

std::string cut(std::string s) {
  if (s.size() > kMaxValueText) s = s.substr(0, kMaxValueText) + "...";
  return s;
}

class Flattener {
 public:
  Flattener(const StorageMap& storages, size_t file_size, bool big_endian, const std::string& where)
      : storages_(storages), big_endian_(big_endian), where_(where) {
    // Views with zero strides (expand()) can be far larger than their
    // storage; cap what we materialize so a crafted file cannot ask for
    // terabytes.
    budget_ = std::max<uint64_t>(uint64_t{8} * file_size, uint64_t{1} << 20);
  }

  void walk(const PyObj& o, const std::string& name, int depth) {
    if (depth > kMaxDepth) fail(name, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (++visited_ > kMaxLeaves) fail(name, "more than " + std::to_string(kMaxLeaves) + " entries");
    name_bytes_ += name.size();
    if (name_bytes_ > kMaxNameBytes) fail(name.substr(0, 100) + "...", "names longer than 64 MiB in all");
    using K = PyObj::Kind;
    switch (o.kind) {
      case K::kTensor:
        add_name(name);
        out_.tensors.push_back({name.empty() ? "tensor" : name, materialize(o, name)});
        return;
      case K::kDict:
        for (const auto& [key, value] : o.entries) walk(*value, join(name, key_text(*key, name)), depth + 1);
        return;
      case K::kList:
      case K::kTuple:
        if (holds_containers(o)) {
          for (size_t k = 0; k < o.items.size(); ++k) walk(*o.items[k], join(name, std::to_string(k)), depth + 1);
          return;
        }
        break;
      default: break;
    }
    add_name(name);
    out_.values.push_back({name.empty() ? "value" : name, leaf_type(o), cut(python_text(o))});
  }

  WeightMap take() { return std::move(out_); }

 private:
  const StorageMap& storages_;
  std::map<std::string, DType> storage_dtypes_;  // the first dtype each storage was read as
  bool big_endian_;
  const std::string& where_;
  uint64_t budget_ = 0;
  size_t visited_ = 0, name_bytes_ = 0;
  WeightMap out_;
  std::set<std::string> names_;
  std::unordered_map<const PyObj*, Tensor> done_;  // tied weights: one tensor, several names

  [[noreturn]] void fail(const std::string& name, const std::string& what) const {
    throw Error(where_ + ": " + (name.empty() ? std::string("the root object") : "'" + name + "'") + ": " + what);
  }
  void add_name(const std::string& name) {
    if (!names_.insert(name).second) fail(name, "the name appears twice");
  }
  static std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
  }
  std::string key_text(const PyObj& key, const std::string& parent) const {
    if (key.kind == PyObj::Kind::kStr) return key.s;
    if (key.kind == PyObj::Kind::kInt) return std::to_string(key.i);
    fail(parent, "a dict key that is a " + kind_name(key) + " (kiln names entries by str and int keys)");
  }
  static bool holds_containers(const PyObj& o) {
    for (const PyObj* item : o.items) {
      PyObj::Kind k = item->kind;
      if (k == PyObj::Kind::kTensor || k == PyObj::Kind::kDict || k == PyObj::Kind::kList || k == PyObj::Kind::kTuple)
        return true;
    }
    return false;
  }
  static std::string leaf_type(const PyObj& o) { return o.kind == PyObj::Kind::kGlobal ? "global" : kind_name(o); }

  Tensor materialize(const PyObj& t, const std::string& name);
};

// Copies a strided view out of its storage into `dst`, element by element
// (a plain memcpy when the view is contiguous).
void gather(const uint8_t* src, int64_t offset, const std::vector<int64_t>& shape, const std::vector<int64_t>& stride,
            size_t esize, int64_t numel, uint8_t* dst) {
  bool contiguous = true;
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expected) contiguous = false;
    expected *= shape[d];
  }
  if (contiguous) {
    std::memcpy(dst, src + static_cast<size_t>(offset) * esize, static_cast<size_t>(numel) * esize);
    return;
  }
  std::vector<int64_t> index(shape.size(), 0);
  int64_t at = offset;
  for (int64_t n = 0; n < numel; ++n) {
    std::memcpy(dst + static_cast<size_t>(n) * esize, src + static_cast<size_t>(at) * esize, esize);
    for (size_t d = shape.size(); d-- > 0;) {  // advance the index, last dim fastest
      if (++index[d] < shape[d]) {
        at += stride[d];
        break;
      }
      at -= stride[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

Tensor Flattener::materialize(const PyObj& t, const std::string& name) {
  auto cached = done_.find(&t);
  if (cached != done_.end()) return cached->second;
  const PyObj& s = *t.storage;
  auto it = storages_.find(s.s);
  if (it == storages_.end()) fail(name, "its storage 'data/" + s.s + "' is missing from the archive");
  std::span<const uint8_t> storage = it->second;
  DType first = storage_dtypes_.emplace(s.s, s.dtype).first->second;
  if (first != s.dtype)
    fail(name,
         "storage 'data/" + s.s + "' is used as both " + dtype_numpy_name(first) + " and " + dtype_numpy_name(s.dtype));
  size_t esize = dtype_size(s.dtype);
  int64_t declared = checked_mul(s.numel, static_cast<int64_t>(esize), "'" + name + "': storage size");
  if (static_cast<uint64_t>(declared) != storage.size())
    fail(name, "storage 'data/" + s.s + "' holds " + std::to_string(storage.size()) +
                   " bytes, but the pickle declares " + std::to_string(s.numel) + " elements of " +
                   std::to_string(esize) + " bytes");
  if (t.shape.size() > kMaxRank) fail(name, "rank " + std::to_string(t.shape.size()) + " is more than 64");
  if (t.offset < 0) fail(name, "negative storage offset " + std::to_string(t.offset));
  int64_t numel = 1, last = t.offset;  // `last`: the highest element index the view touches
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0) fail(name, "negative size " + std::to_string(t.shape[d]) + " in dim " + std::to_string(d));
    if (t.stride[d] < 0) fail(name, "negative stride " + std::to_string(t.stride[d]) + " in dim " + std::to_string(d));
    numel = checked_mul(numel, t.shape[d], "'" + name + "': element count");
  }
  if (numel > 0) {
    for (size_t d = 0; d < t.shape.size(); ++d) {
      int64_t span = checked_mul(t.shape[d] - 1, t.stride[d], "'" + name + "': view extent");
      if (span > INT64_MAX - last) fail(name, "view extent overflows");
      last += span;
    }
    if (last >= s.numel)
      fail(name, "the view (offset " + std::to_string(t.offset) + ", shape " + shape_str(t.shape) +
                     ") reaches element " + std::to_string(last) + " of a storage of " + std::to_string(s.numel));
  }
  uint64_t bytes = static_cast<uint64_t>(checked_mul(numel, static_cast<int64_t>(esize), "'" + name + "': size"));
  if (bytes > budget_)
    fail(name, "its " + std::to_string(bytes) + " bytes exceed what is left of kiln's limit for this file (" +
                   "8 times its size): expanded views this large are refused");
  budget_ -= bytes;
  Tensor out(s.dtype, t.shape);
  if (numel > 0) gather(storage.data(), t.offset, t.shape, t.stride, esize, numel, out.data<uint8_t>());
  if (big_endian_ && esize > 1) {
    uint8_t* p = out.data<uint8_t>();
    for (int64_t n = 0; n < numel; ++n) std::reverse(p + n * esize, p + (n + 1) * esize);
  }
  done_.emplace(&t, out);
  return out;
}

// The one top-level folder holding data.pkl.
const ZipEntry& find_pickle(const std::vector<ZipEntry>& entries, const std::string& label) {
  const ZipEntry* found = nullptr;
  bool torchscript = false;
  for (const ZipEntry& e : entries) {
    size_t slash = e.name.find('/');
    if (slash == std::string::npos) continue;
    std::string rest = e.name.substr(slash + 1);
    if (rest == "constants.pkl") torchscript = true;
    if (rest != "data.pkl") continue;
    if (found) throw Error(label + ": two pickles in one archive: '" + found->name + "' and '" + e.name + "'");
    found = &e;
  }
  if (!found)
    throw Error(label + ": a zip archive without <folder>/data.pkl: not a torch.save checkpoint" +
                (torchscript ? " (it looks like a TorchScript archive, torch.jit.save)" : ""));
  return *found;
}

}  // namespace

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Error(what + " overflows");
  return r;
}

WeightMap read_torch_zip(std::span<const uint8_t> bytes, const std::string& label) {
  std::vector<ZipEntry> entries = read_zip(bytes, label);
  const ZipEntry& pkl = find_pickle(entries, label);
  std::string prefix = pkl.name.substr(0, pkl.name.size() - std::string("data.pkl").size());
  StorageMap data;
  bool big_endian = false;
  for (const ZipEntry& e : entries) {
    if (e.name.rfind(prefix + "data/", 0) == 0) data[e.name.substr(prefix.size() + 5)] = e.data;
    if (e.name == prefix + "byteorder") {
      std::string order(reinterpret_cast<const char*>(e.data.data()), e.data.size());
      if (order != "little" && order != "big")
        throw Error(label + ": " + e.name + " says '" + cut(order) + "' (expected 'little' or 'big')");
      big_endian = order == "big";
    }
  }
  PyArena arena;
  std::string where = label + ": " + pkl.name;
  PyObj* root = unpickle(pkl.data, arena, where);

  Flattener flat(data, bytes.size(), big_endian, where);
  flat.walk(*root, "", 0);
  WeightMap out = flat.take();
  out.format = WeightsFormat::kTorchZip;
  return out;
}

}  // namespace kiln::weights
