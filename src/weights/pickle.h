// A restricted unpickler for the data.pkl of torch.save checkpoints. It
// builds plain values (None, bools, ints, floats, strings, tuples, lists,
// dicts) plus two torch leaves, storage references and tensor views, and
// knows a fixed set of globals; any other global is refused where it appears,
// before anything could call it. Nothing is ever executed.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kiln/dtype.h"

namespace kiln::weights {

struct PyObj {
  enum class Kind { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  int64_t i = 0;                                   // bool, int
  double f = 0;                                    // float
  std::string s;                                   // str; a global's "module.name"; a storage's key
  std::vector<PyObj*> items;                       // tuple, list
  std::vector<std::pair<PyObj*, PyObj*>> entries;  // dict, in insertion order
  // Storage: its element type and the element count the pickle declares.
  // Global: for a storage class, its element type.
  DType dtype = DType::kUndefined;
  int64_t numel = 0;
  // Tensor: a view of `storage` (a kStorage object).
  PyObj* storage = nullptr;
  int64_t offset = 0;  // in elements
  std::vector<int64_t> shape, stride;
};

// The objects of one unpickling; they point at each other (possibly in
// cycles, which a crafted pickle can make), so they live and die together.
class PyArena {
 public:
  PyObj* make(PyObj::Kind kind);
  size_t size() const { return objects_.size(); }

 private:
  std::deque<PyObj> objects_;  // a deque: pointers stay valid as it grows
};

// Unpickles `pkl` (protocols 2 to 5, the opcodes torch.save emits) into
// `arena` and returns the root object. `where` ("FILE: archive/data.pkl")
// starts every message. Throws kiln::Error naming the opcode and its byte
// offset for anything outside the supported subset.
PyObj* unpickle(std::span<const uint8_t> pkl, PyArena& arena, const std::string& where);

// "int", "str", "OrderedDict", "tensor", ... for messages.
std::string kind_name(const PyObj& o);

}  // namespace kiln::weights
