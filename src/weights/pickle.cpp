// The pickle subset of torch.save (see Python's Lib/pickletools.py for the
// opcode reference). A pickle is a program for a stack machine: opcodes push
// values, build containers from the values above a MARK, store and fetch
// values in a memo, and STOP returns the top of the stack. Three opcodes are
// dangerous in general: GLOBAL/STACK_GLOBAL import any name, REDUCE/NEWOBJ
// call it, BUILD sets attributes. Here GLOBAL resolves only the names below
// (anything else is refused at once, with its byte offset), and REDUCE can
// only "call" those, which builds a value and runs nothing:
//
//   collections.OrderedDict           OrderedDict() and OrderedDict(pairs)
//   torch._utils._rebuild_tensor_v2   (storage, offset, size, stride,
//                                      requires_grad, hooks[, metadata])
//   torch._utils._rebuild_parameter   (tensor, requires_grad, hooks[, state])
//   torch.<T>Storage                  only inside persistent ids:
//                                      ('storage', T, key, location, numel)
//
// Every read is bounds-checked; object, memo, stack and mark counts are
// capped, so a crafted pickle can neither run code nor exhaust memory.
#include "weights/pickle.h"

#include <cstring>
#include <map>
#include <unordered_map>

#include "kiln/error.h"

namespace kiln::weights {

namespace {

constexpr size_t kMaxObjects = size_t{1} << 22;
constexpr size_t kMaxStack = size_t{1} << 22;
constexpr size_t kMaxMarks = size_t{1} << 16;

const std::map<std::string, DType>& storage_types() {
  static const std::map<std::string, DType> types = {
      {"torch.FloatStorage", DType::kFloat32},     {"torch.HalfStorage", DType::kFloat16},
      {"torch.BFloat16Storage", DType::kBFloat16}, {"torch.DoubleStorage", DType::kFloat64},
      {"torch.LongStorage", DType::kInt64},        {"torch.IntStorage", DType::kInt32},
      {"torch.ShortStorage", DType::kInt16},       {"torch.CharStorage", DType::kInt8},
      {"torch.ByteStorage", DType::kUInt8},        {"torch.BoolStorage", DType::kBool},
  };
  return types;
}

constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr const char* kRebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";

std::string hex_byte(uint8_t b) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

class Unpickler {
 public:
  Unpickler(std::span<const uint8_t> pkl, PyArena& arena, const std::string& where)
      : pkl_(pkl), arena_(arena), where_(where) {}

  PyObj* run() {
    while (pos_ < pkl_.size()) {
      op_pos_ = pos_;
      op_ = pkl_[pos_++];
      if (op_ == '.') return pop();
      step();
    }
    throw Error(where_ + ": the pickle ends at byte " + std::to_string(pkl_.size()) + " without STOP (truncated?)");
  }

 private:
  std::span<const uint8_t> pkl_;
  PyArena& arena_;
  const std::string& where_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  std::vector<PyObj*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyObj*> memo_;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_ + ": " + what + " (opcode " + hex_byte(op_) + " at byte " + std::to_string(op_pos_) + ")");
  }

  const uint8_t* take(size_t n) {
    if (n > pkl_.size() - pos_) fail("truncated: needs " + std::to_string(n) + " more bytes");
    const uint8_t* p = pkl_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t take_le(int n) {
    const uint8_t* p = take(static_cast<size_t>(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string take_line() {
    const uint8_t* start = pkl_.data() + pos_;
    const void* nl = std::memchr(start, '\n', pkl_.size() - pos_);
    if (!nl) fail("truncated: a GLOBAL name without its newline");
    size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nl) - start);
    pos_ += n + 1;
    return std::string(reinterpret_cast<const char*>(start), n);
  }

  PyObj* make(PyObj::Kind kind) {
    if (arena_.size() >= kMaxObjects) fail("more than " + std::to_string(kMaxObjects) + " objects");
    return arena_.make(kind);
  }
  PyObj* make_int(int64_t v, PyObj::Kind kind = PyObj::Kind::kInt) {
    PyObj* o = make(kind);
    o->i = v;
    return o;
  }
  void push(PyObj* o) {
    if (stack_.size() >= kMaxStack) fail("stack deeper than " + std::to_string(kMaxStack));
    stack_.push_back(o);
  }
  PyObj* pop() {
    size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() <= floor) fail("stack underflow");
    PyObj* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  PyObj* top() {
    size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() <= floor) fail("stack underflow");
    return stack_.back();
  }
  // The values pushed since the last MARK, which is removed.
  std::vector<PyObj*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyObj*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PyObj* make_seq(PyObj::Kind kind, std::vector<PyObj*> items) {
    PyObj* o = make(kind);
    o->items = std::move(items);
    return o;
  }
  void memo_put(uint64_t index) {
    if (memo_.size() >= kMaxObjects && !memo_.count(index)) fail("memo larger than " + std::to_string(kMaxObjects));
    memo_[index] = top();
  }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    push(it->second);
  }
  PyObj* expect(PyObj* o, PyObj::Kind kind, const char* what) {
    if (o->kind != kind) fail(std::string(what) + " is a " + kind_name(*o));
    return o;
  }

  void step();
  void global(const std::string& module, const std::string& name);
  void reduce();
  PyObj* rebuild_tensor(const std::vector<PyObj*>& args);
  void persistent_load();
  void set_items(PyObj* dict, const std::vector<PyObj*>& kv);
};

void Unpickler::step() {
  using K = PyObj::Kind;
  switch (op_) {
    case 0x80: {  // PROTO
      uint64_t proto = take_le(1);
      if (proto < 2 || proto > 5) fail("pickle protocol " + std::to_string(proto) + " (kiln reads 2 to 5)");
      return;
    }
    case 0x95: take(8); return;  // FRAME: a length hint for buffered readers
    case '}': push(make(K::kDict)); return;
    case ']': push(make(K::kList)); return;
    case ')': push(make(K::kTuple)); return;
    case '(':  // MARK
      if (marks_.size() >= kMaxMarks) fail("more than " + std::to_string(kMaxMarks) + " nested MARKs");
      marks_.push_back(stack_.size());
      return;
    case 't': push(make_seq(K::kTuple, pop_mark())); return;
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      std::vector<PyObj*> items(op_ - 0x84);
      for (size_t k = items.size(); k-- > 0;) items[k] = pop();
      push(make_seq(K::kTuple, std::move(items)));
      return;
    }
    case 'X':
    case 0x8c:
    case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
      uint64_t n = take_le(op_ == 'X' ? 4 : op_ == 0x8c ? 1 : 8);
      if (n > pkl_.size() - pos_) fail("truncated: a string of " + std::to_string(n) + " bytes");
      PyObj* o = make(K::kStr);
      const uint8_t* p = take(static_cast<size_t>(n));
      o->s.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
      push(o);
      return;
    }
    case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(take_le(4))))); return;  // BININT
    case 'K': push(make_int(static_cast<int64_t>(take_le(1)))); return;                         // BININT1
    case 'M': push(make_int(static_cast<int64_t>(take_le(2)))); return;                         // BININT2
    case 0x8a: {  // LONG1: n bytes of little-endian two's complement
      uint64_t n = take_le(1);
      if (n > 8) fail("an integer of " + std::to_string(n) + " bytes (kiln reads up to 8)");
      uint64_t v = n ? take_le(static_cast<int>(n)) : 0;
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
      push(make_int(static_cast<int64_t>(v)));
      return;
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      const uint8_t* p = take(8);
      uint64_t bits = 0;
      for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
      PyObj* o = make(K::kFloat);
      std::memcpy(&o->f, &bits, 8);
      push(o);
      return;
    }
    case 0x88: push(make_int(1, K::kBool)); return;  // NEWTRUE
    case 0x89: push(make_int(0, K::kBool)); return;  // NEWFALSE
    case 'N': push(make(K::kNone)); return;
    case 'q': memo_put(take_le(1)); return;     // BINPUT
    case 'r': memo_put(take_le(4)); return;     // LONG_BINPUT
    case 0x94: memo_put(memo_.size()); return;  // MEMOIZE
    case 'h': memo_get(take_le(1)); return;     // BINGET
    case 'j': memo_get(take_le(4)); return;     // LONG_BINGET
    case 's': {                                 // SETITEM
      PyObj* value = pop();
      PyObj* key = pop();
      set_items(top(), {key, value});
      return;
    }
    case 'u': {  // SETITEMS
      std::vector<PyObj*> kv = pop_mark();
      set_items(top(), kv);
      return;
    }
    case 'a': {  // APPEND
      PyObj* value = pop();
      expect(top(), K::kList, "APPEND's target")->items.push_back(value);
      return;
    }
    case 'e': {  // APPENDS
      std::vector<PyObj*> values = pop_mark();
      PyObj* list = expect(top(), K::kList, "APPENDS's target");
      list->items.insert(list->items.end(), values.begin(), values.end());
      return;
    }
    case 'c': {  // GLOBAL "module\nname\n"
      std::string module = take_line();
      std::string name = take_line();
      global(module, name);
      return;
    }
    case 0x93: {  // STACK_GLOBAL
      PyObj* name = expect(pop(), K::kStr, "STACK_GLOBAL's name");
      PyObj* module = expect(pop(), K::kStr, "STACK_GLOBAL's module");
      global(module->s, name->s);
      return;
    }
    case 'R': reduce(); return;
    case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict
      pop();
      PyObj* cls = pop();
      if (cls->kind != K::kGlobal || cls->s != kOrderedDict) fail("NEWOBJ of a " + kind_name(*cls));
      push(make(K::kDict));
      return;
    }
    case 'b': {  // BUILD: state for the object below
      pop();
      // A state_dict() is an OrderedDict carrying a _metadata attribute (module
      // versions), pickled as BUILD state: attributes kiln has no use for.
      PyObj* target = top();
      if (target->kind != K::kDict && target->kind != K::kTensor) fail("BUILD on a " + kind_name(*target));
      return;
    }
    case 'Q': persistent_load(); return;  // BINPERSID
    default: break;
  }
  fail("unsupported pickle opcode (kiln reads the subset torch.save writes)");
}

void Unpickler::global(const std::string& module, const std::string& name) {
  std::string full = module + "." + name;
  PyObj* g = make(PyObj::Kind::kGlobal);
  g->s = full;
  auto storage = storage_types().find(full);
  if (storage != storage_types().end()) {
    g->dtype = storage->second;
  } else if (full != kOrderedDict && full != kRebuildTensor && full != kRebuildParameter &&
             full != kRebuildParameterWithState) {
    std::string hint;
    if (module.rfind("__torch__", 0) == 0)
      hint = "; this looks like a TorchScript archive (torch.jit.save), kiln reads torch.save checkpoints";
    throw Error(where_ + ": refusing global '" + full + "' at byte " + std::to_string(op_pos_) +
                ": only tensors and dicts of tensors can be loaded (kiln never runs code from a checkpoint)" + hint);
  }
  push(g);
}

void Unpickler::reduce() {
  using K = PyObj::Kind;
  PyObj* args_obj = expect(pop(), K::kTuple, "REDUCE's argument");
  PyObj* callable = pop();
  if (callable->kind != K::kGlobal) fail("REDUCE calls a " + kind_name(*callable));
  const std::vector<PyObj*>& args = args_obj->items;
  const std::string& f = callable->s;
  if (f == kOrderedDict) {
    PyObj* d = make(K::kDict);
    if (args.size() > 1) fail("OrderedDict() with " + std::to_string(args.size()) + " arguments");
    if (args.size() == 1) {  // OrderedDict([(key, value), ...])
      PyObj* pairs = args[0];
      if (pairs->kind != K::kList && pairs->kind != K::kTuple) fail("OrderedDict() of a " + kind_name(*pairs));
      for (PyObj* p : pairs->items) {
        if ((p->kind != K::kTuple && p->kind != K::kList) || p->items.size() != 2)
          fail("OrderedDict() of an item that is not a pair");
        set_items(d, p->items);
      }
    }
    push(d);
  } else if (f == kRebuildTensor) {
    push(rebuild_tensor(args));
  } else if (f == kRebuildParameter || f == kRebuildParameterWithState) {
    // A Parameter is its tensor; requires_grad, hooks and state do not matter here.
    if (args.size() < 3 || args.size() > 4) fail(f + " with " + std::to_string(args.size()) + " arguments");
    push(expect(args[0], K::kTensor, "a parameter's data"));
  } else {
    fail("REDUCE calls '" + f + "', which is not callable here");
  }
}

PyObj* Unpickler::rebuild_tensor(const std::vector<PyObj*>& args) {
  using K = PyObj::Kind;
  if (args.size() < 6 || args.size() > 7)
    fail("_rebuild_tensor_v2 with " + std::to_string(args.size()) + " arguments (expected 6 or 7)");
  PyObj* t = make(K::kTensor);
  t->storage = expect(args[0], K::kStorage, "_rebuild_tensor_v2's storage");
  t->offset = expect(args[1], K::kInt, "_rebuild_tensor_v2's storage offset")->i;
  PyObj* size = expect(args[2], K::kTuple, "_rebuild_tensor_v2's size");
  PyObj* stride = expect(args[3], K::kTuple, "_rebuild_tensor_v2's stride");
  if (size->items.size() != stride->items.size())
    fail("_rebuild_tensor_v2 with " + std::to_string(size->items.size()) + " sizes and " +
         std::to_string(stride->items.size()) + " strides");
  for (size_t k = 0; k < size->items.size(); ++k) {
    t->shape.push_back(expect(size->items[k], K::kInt, "a tensor's size")->i);
    t->stride.push_back(expect(stride->items[k], K::kInt, "a tensor's stride")->i);
  }
  return t;
}

// BINPERSID: torch.save stores each storage outside the pickle, as
// archive/data/<key>, and refers to it by ('storage', type, key, location, numel).
void Unpickler::persistent_load() {
  using K = PyObj::Kind;
  PyObj* pid = expect(pop(), K::kTuple, "a persistent id");
  const std::vector<PyObj*>& f = pid->items;
  if (f.size() != 5 || f[0]->kind != K::kStr || f[0]->s != "storage")
    fail("a persistent id that is not ('storage', type, key, location, numel)");
  PyObj* type = f[1];
  if (type->kind != K::kGlobal || type->dtype == DType::kUndefined)
    fail("a storage of type " + (type->kind == K::kGlobal ? "'" + type->s + "'" : kind_name(*type)));
  PyObj* s = make(K::kStorage);
  s->dtype = type->dtype;
  s->s = expect(f[2], K::kStr, "a storage key")->s;
  s->numel = expect(f[4], K::kInt, "a storage's element count")->i;
  if (s->numel < 0) fail("a storage of " + std::to_string(s->numel) + " elements");
  push(s);
}

void Unpickler::set_items(PyObj* dict, const std::vector<PyObj*>& kv) {
  if (dict->kind != PyObj::Kind::kDict) fail("SETITEM on a " + kind_name(*dict));
  if (kv.size() % 2) fail("SETITEMS with an odd number of values");
  for (size_t k = 0; k < kv.size(); k += 2) dict->entries.emplace_back(kv[k], kv[k + 1]);
}

}  // namespace

PyObj* PyArena::make(PyObj::Kind kind) {
  objects_.emplace_back();
  objects_.back().kind = kind;
  return &objects_.back();
}

PyObj* unpickle(std::span<const uint8_t> pkl, PyArena& arena, const std::string& where) {
  return Unpickler(pkl, arena, where).run();
}

std::string kind_name(const PyObj& o) {
  switch (o.kind) {
    case PyObj::Kind::kNone: return "None";
    case PyObj::Kind::kBool: return "bool";
    case PyObj::Kind::kInt: return "int";
    case PyObj::Kind::kFloat: return "float";
    case PyObj::Kind::kStr: return "str";
    case PyObj::Kind::kTuple: return "tuple";
    case PyObj::Kind::kList: return "list";
    case PyObj::Kind::kDict: return "dict";
    case PyObj::Kind::kGlobal: return "global '" + o.s + "'";
    case PyObj::Kind::kStorage: return "storage";
    case PyObj::Kind::kTensor: return "tensor";
  }
  return "?";
}

}  // namespace kiln::weights
