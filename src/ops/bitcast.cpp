// BitCast-26: reinterprets each element's bytes as another type of the same
// width (little endian, which is also kiln's in-memory layout). The shape is
// unchanged. Strings have no fixed width and are rejected; a byte reinterpreted
// as bool must be 0 or 1, the only bit patterns a bool can hold.
#include <cstring>

#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

namespace {

bool bitcastable(DType t) { return t != DType::kString && t != DType::kUndefined; }

DType target_dtype(const Node& n) { return static_cast<DType>(n.attr_int("to", 0)); }

}  // namespace

KILN_OP(BitCast_26) {
  return OpSchema{
      .name = "BitCast",
      .since = 26,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt8, DType::kInt16,
                DType::kInt32, DType::kInt64, DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64,
                DType::kBool},
      .check = [](const Node& n) -> std::string {
        if (!n.has_attr("to")) return "attribute 'to' is required";
        int64_t to = n.attr_int("to", 0);
        if (to < INT32_MIN || to > INT32_MAX || !dtype_is_supported(static_cast<int32_t>(to)) ||
            !bitcastable(static_cast<DType>(to)))
          return "'to' = " + std::to_string(to) + " is not a supported non-string element type";
        return "";
      },
      .infer =
          [](InferContext& ctx) {
            DType from = ctx.input_dtype(0), to = target_dtype(ctx.node());
            if (from != DType::kUndefined && dtype_size(from) != dtype_size(to))
              throw ctx.error("cannot bitcast " + dtype_name(from) + " (" + std::to_string(dtype_size(from) * 8) +
                              " bits) to " + dtype_name(to) + " (" + std::to_string(dtype_size(to) * 8) +
                              " bits): the widths differ");
            infer_same_shape(ctx, to);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            DType to = target_dtype(ctx.node());
            if (!bitcastable(x.dtype())) throw ctx.error("cannot bitcast from " + dtype_name(x.dtype()));
            if (dtype_size(x.dtype()) != dtype_size(to))
              throw ctx.error("cannot bitcast " + dtype_name(x.dtype()) + " to " + dtype_name(to) +
                              ": the widths differ");
            if (to == DType::kBool && x.dtype() != DType::kBool) {
              const auto* bytes = static_cast<const uint8_t*>(x.raw());
              for (int64_t i = 0; i < x.numel(); ++i)
                if (bytes[i] > 1)
                  throw ctx.error("element " + std::to_string(i) + " has bit pattern " + std::to_string(bytes[i]) +
                                  ", which is not a bool (0 or 1)");
            }
            Tensor& y = ctx.output(0, to, x.shape());
            if (x.nbytes() != 0) std::memcpy(y.raw(), x.raw(), x.nbytes());
          },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(BitCast) { return {.op = "BitCast", .family = OpFamily::kElementwise, .cost = cost::none()}; }

}  // namespace kiln
