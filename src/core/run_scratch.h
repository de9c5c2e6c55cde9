// Temporary memory of the kernels of one run (oneDNN's scratchpads). Each
// run owns one RunScratch, kept with the run's reusable state (runtime/
// arena.h RunState), so two runs never share it and the steady state does
// not allocate: this is what keeps a kernel's temporaries safe when several
// threads run one session. A kernel asks for it through
// KernelContext::scratch() and may use it until it returns.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <memory>

namespace kiln {

class RunScratch {
 public:
  // At least `bytes` bytes, 64-byte aligned; invalidates earlier pointers.
  void* get(size_t bytes) {
    if (bytes > capacity_) {
      const size_t rounded = (bytes + 63) / 64 * 64;
      data_.reset(static_cast<std::byte*>(std::aligned_alloc(64, rounded)));
      if (!data_) throw std::bad_alloc();
      capacity_ = rounded;
    }
    return data_.get();
  }
  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace kiln
