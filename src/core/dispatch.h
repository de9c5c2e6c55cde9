// Calling a templated kernel body for a run-time dtype:
//   dispatch<AllNumeric>(t.dtype(), "Add", [&]<typename T>() { ... });
// The type lists name which dtypes a kernel was written for; any other dtype
// is a kiln::Error naming the op.
#pragma once
#include <string>
#include <type_traits>

#include "core/half.h"
#include "kiln/dtype.h"
#include "kiln/error.h"

namespace kiln {

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kFloat64;
};
template <>
struct DTypeOf<Float16> {
  static constexpr DType value = DType::kFloat16;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::kBFloat16;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::kInt8;
};
template <>
struct DTypeOf<int16_t> {
  static constexpr DType value = DType::kInt16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kInt32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::kInt64;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::kUInt8;
};
template <>
struct DTypeOf<uint16_t> {
  static constexpr DType value = DType::kUInt16;
};
template <>
struct DTypeOf<uint32_t> {
  static constexpr DType value = DType::kUInt32;
};
template <>
struct DTypeOf<uint64_t> {
  static constexpr DType value = DType::kUInt64;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType value = DType::kBool;
};
template <>
struct DTypeOf<std::string> {
  static constexpr DType value = DType::kString;
};
template <typename T>
constexpr DType dtype_of = DTypeOf<T>::value;

template <typename... Ts>
struct TypeList {};

using FloatTypes = TypeList<float, double, Float16, BFloat16>;
using IntTypes = TypeList<int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t>;
using SignedTypes = TypeList<float, double, Float16, BFloat16, int8_t, int16_t, int32_t, int64_t>;
using NumericTypes = TypeList<float, double, Float16, BFloat16, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t,
                              uint32_t, uint64_t>;
using AllTypes = TypeList<float, double, Float16, BFloat16, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t,
                          uint32_t, uint64_t, bool, std::string>;
using PodTypes = TypeList<float, double, Float16, BFloat16, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t,
                          uint32_t, uint64_t, bool>;

namespace detail {
template <typename F, typename T, typename... Rest>
bool dispatch_one(DType t, F& f) {
  if (t == dtype_of<T>) {
    f.template operator()<T>();
    return true;
  }
  if constexpr (sizeof...(Rest) > 0) return dispatch_one<F, Rest...>(t, f);
  return false;
}
template <typename F, typename... Ts>
bool dispatch_list(DType t, F& f, TypeList<Ts...>) {
  return dispatch_one<F, Ts...>(t, f);
}
}  // namespace detail

template <typename List, typename F>
void dispatch(DType t, const std::string& what, F&& f) {
  if (!detail::dispatch_list(t, f, List{})) throw Error(what + ": element type " + dtype_name(t) + " is not supported");
}

// Compute type for arithmetic: 16-bit floats compute in float.
template <typename T>
struct AccOf {
  using type = T;
};
template <>
struct AccOf<Float16> {
  using type = float;
};
template <>
struct AccOf<BFloat16> {
  using type = float;
};
template <typename T>
using acc_t = typename AccOf<T>::type;

}  // namespace kiln
