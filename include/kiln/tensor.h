// Tensor: an element type, a shape and a reference-counted buffer. Copies
// share the buffer (like a shared_ptr); clone() copies the data.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/dtype.h"

namespace kiln {

using Shape = std::vector<int64_t>;

// Product of the dims; throws kiln::Error on a negative dim or overflow.
int64_t shape_numel(std::span<const int64_t> shape);
std::string shape_str(std::span<const int64_t> shape);  // "1x3x224x224"

class Tensor {
 public:
  Tensor() = default;
  // Allocates (64-byte aligned, zero-filled) storage.
  Tensor(DType dtype, Shape shape);
  // The same without zero-filling, for a caller that writes every element
  // (strings are still empty strings).
  static Tensor uninitialized(DType dtype, Shape shape);
  // Wraps caller-owned memory without copying; the caller keeps it alive for
  // as long as the tensor (or any copy of it) is in use.
  static Tensor wrap(DType dtype, Shape shape, void* data);
  // Wraps memory that `owner` keeps alive (e.g. a memory-mapped engine file):
  // the tensor and its copies hold a reference to it.
  static Tensor wrap(DType dtype, Shape shape, void* data, std::shared_ptr<const void> owner);
  static Tensor scalar_float(float v);
  static Tensor from_strings(Shape shape, std::vector<std::string> values);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i)]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const;
  bool empty_storage() const { return storage_ == nullptr; }
  bool defined() const { return dtype_ != DType::kUndefined; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }

  // A view with another shape of the same element count; shares storage.
  Tensor reshaped(Shape shape) const;
  // Deep copy.
  Tensor clone() const;

 private:
  struct Storage;
  void allocate(bool zero);  // storage for dtype_ x shape_
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<Storage> storage_;
  void* data_ = nullptr;
};

}  // namespace kiln
