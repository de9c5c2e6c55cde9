// How far one tensor is from a reference (kiln compare, kiln.compare in
// Python; docs/compare.md): the error measures deployment tools report
// (Polygraphy, ONNX Runtime's tests), and pass/fail with numpy.allclose's
// rule |got - want| <= atol + rtol * |want|.
#pragma once
#include <cstdint>
#include <string>

#include "kiln/tensor.h"

namespace kiln {

struct TensorDiff {
  bool pass = false;
  // Why it fails before any element is compared (shape or type differ); "" otherwise.
  std::string mismatch;
  int64_t elements = 0;
  int64_t failing = 0;       // elements outside the tolerance
  int64_t worst_index = -1;  // flat index of the element furthest outside it (-1: none)
  double max_abs = 0;        // max |got - want|
  double max_rel = 0;        // max |got - want| / |want| over elements with want != 0
  double rel_l2 = 0;         // ||got - want|| / ||want|| (0 when both are 0, inf when only want is)
  double cosine = 1;         // got . want / (||got|| ||want||); 1 when both are 0, 0 when only one is
};

// Compares element by element, in double. Both tensors must have the same
// shape; element types may differ when both are numeric (a float16 model's
// output against a float32 reference). NaN matches NaN and infinities match
// themselves; a NaN against a number fails. Strings must be equal.
TensorDiff diff_tensors(const Tensor& got, const Tensor& want, double rtol, double atol);

// The largest finite |element| of a numeric tensor (0 for an empty, string
// or all-non-finite one): kiln compare's default atol is rtol times this, so
// that an error is judged against the scale of the value it is in.
double max_magnitude(const Tensor& t);

}  // namespace kiln
