#include "kiln/tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <new>
#include <utility>

#include "kiln/error.h"

namespace kiln {

namespace {
constexpr size_t kAlignment = 64;

// A single tensor larger than the machine's physical memory is refused with
// a clear error instead of being handed to the OOM killer: it guards against
// a corrupt file or a data-dependent shape asking for an absurd allocation.
int64_t max_tensor_bytes() {
  static const int64_t limit = [] {
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    int64_t phys = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : int64_t{1} << 40;
    return std::min<int64_t>(phys, int64_t{1} << 40);
  }();
  return limit;
}

// Recently freed mapped blocks, handed out again for an allocation of
// exactly their size. A session's outputs never live in its arena (they are
// the caller's), so without this every run faulted in fresh pages for them:
// a [1, 3, 512, 512] image output cost ~1 ms of page faults per run, more
// than the op that wrote it. Bounded (8 blocks, 32 MiB) so that resident
// memory stays what the memory planner promises plus this much; the oldest
// block goes back to the system first.
class PageCache {
 public:
  static constexpr size_t kMaxBytes = size_t{32} << 20;
  static constexpr size_t kMaxBlocks = 8;

  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it)
      if (it->second == bytes) {
        void* p = it->first;
        blocks_.erase(it);
        total_ -= bytes;
        return p;
      }
    return nullptr;
  }

  void give(void* p, size_t bytes) {
    if (bytes > kMaxBytes) {
      munmap(p, bytes);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.emplace_back(p, bytes);
    total_ += bytes;
    while (total_ > kMaxBytes || blocks_.size() > kMaxBlocks) {
      munmap(blocks_.front().first, blocks_.front().second);
      total_ -= blocks_.front().second;
      blocks_.pop_front();
    }
  }

 private:
  std::mutex mu_;
  std::deque<std::pair<void*, size_t>> blocks_;
  size_t total_ = 0;
};

// Never destroyed: tensors may be freed during static destruction.
PageCache& page_cache() {
  static PageCache* cache = new PageCache;
  return *cache;
}
}  // namespace

// Owns either aligned raw bytes, an array of std::string, or nothing
// (borrowed memory).
struct Tensor::Storage {
  void* bytes = nullptr;
  size_t mapped = 0;  // bytes came from mmap (this many), not malloc
  std::unique_ptr<std::string[]> strings;
  std::shared_ptr<const void> owner;  // wrap() with an owner: bytes is not ours
  ~Storage() {
    if (owner) return;
    if (mapped)
      page_cache().give(bytes, mapped);
    else
      std::free(bytes);
  }
};

namespace {
// Large tensors get their own pages, returned to the system when freed.
// Through malloc they were not: glibc raises its mmap threshold to the size
// of a freed block, so the intermediates of a first (unplanned) run came from
// the heap and stayed resident beside the arena planned after it (DenseNet-121
// at batch 8: 334 + 64 MB resident instead of 334). Fresh pages are zero, so
// no memset either.
constexpr size_t kMappedBytes = size_t{1} << 20;
}  // namespace

int64_t shape_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("negative dimension " + std::to_string(d) + " in shape " + shape_str(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("shape " + shape_str(shape) + " overflows the element count");
    n *= d;
  }
  return n;
}

std::string shape_str(std::span<const int64_t> shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) { allocate(true); }

Tensor Tensor::uninitialized(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.allocate(false);
  return t;
}

void Tensor::allocate(bool zero) {
  numel_ = shape_numel(shape_);
  size_t elem = dtype_size(dtype_);
  if (elem == 0) throw Error("cannot allocate a tensor of type " + dtype_name(dtype_));
  if (numel_ > max_tensor_bytes() / static_cast<int64_t>(elem))
    throw Error("tensor of shape " + shape_str(shape_) + " and type " + dtype_name(dtype_) +
                " is too large to allocate (more than this machine's memory)");
  storage_ = std::make_shared<Storage>();
  if (dtype_ == DType::kString) {
    try {
      storage_->strings.reset(new std::string[static_cast<size_t>(numel_)]);
    } catch (const std::bad_alloc&) {
      throw Error("out of memory allocating " + std::to_string(numel_) + " strings (" +
                  std::to_string(static_cast<size_t>(numel_) * elem) + " bytes)");
    }
    data_ = storage_->strings.get();
    return;
  }
  size_t bytes = static_cast<size_t>(numel_) * elem;
  size_t padded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (padded == 0) padded = kAlignment;
  if (padded >= kMappedBytes) {
    void* p = page_cache().take(padded);
    if (p) {
      if (zero) std::memset(p, 0, padded);  // resident pages: a fraction of faulting in fresh ones
    } else {
      p = mmap(nullptr, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    storage_->bytes = p;
    storage_->mapped = padded;
    data_ = p;
    return;
  }
  storage_->bytes = std::aligned_alloc(kAlignment, padded);
  if (!storage_->bytes) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  if (zero) std::memset(storage_->bytes, 0, padded);
  data_ = storage_->bytes;
}

Tensor Tensor::wrap(DType dtype, Shape shape, void* data) {
  if (dtype == DType::kString) throw Error("string tensors cannot wrap external memory");
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.data_ = data;
  return t;
}

Tensor Tensor::wrap(DType dtype, Shape shape, void* data, std::shared_ptr<const void> owner) {
  Tensor t = wrap(dtype, std::move(shape), data);
  t.storage_ = std::make_shared<Storage>();
  t.storage_->owner = std::move(owner);
  return t;
}

Tensor Tensor::scalar_float(float v) {
  Tensor t(DType::kFloat32, {});
  *t.data<float>() = v;
  return t;
}

Tensor Tensor::from_strings(Shape shape, std::vector<std::string> values) {
  Tensor t(DType::kString, std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel())
    throw Error("string tensor of shape " + shape_str(t.shape()) + " needs " + std::to_string(t.numel()) +
                " values, got " + std::to_string(values.size()));
  for (size_t i = 0; i < values.size(); ++i) t.data<std::string>()[i] = std::move(values[i]);
  return t;
}

size_t Tensor::nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  int64_t n = shape_numel(shape);
  if (n != numel_) throw Error("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (dtype_ == DType::kString) {
    for (int64_t i = 0; i < numel_; ++i) t.data<std::string>()[i] = data<std::string>()[i];
  } else if (numel_ > 0) {
    std::memcpy(t.data_, data_, nbytes());
  }
  return t;
}

}  // namespace kiln
