// kiln.Elementwise: a chain (a tree) of float32 element-wise ops run as one
// pass over memory (passes/fuse_elementwise.cpp builds it). The node's
// inputs are the chain's outside inputs, with numpy broadcasting; its
// program is a list of instructions over registers: registers 0..k-1 are
// the k inputs, instruction i writes register k + i, the last one is the
// output.
//
//   ops    (ints, 3 per instruction): opcode, operand a, operand b (-1: unary)
//   params (floats, 2 per instruction): alpha, beta of an activation step
//   fns    (strings, 1 per instruction): the activation step's name
//          (kernels/cpu/epilogue.h) for kStep, else ""
//   steps  (int): arithmetic steps per output element, for FLOP counts
//
// Kernel: the output is walked as rows over the longest suffix of dims over
// which every input is "ones, then the output's dims" (a [N, C, H, W] output
// with a per-channel [C, 1, 1] input has rows of H x W, in which that input is
// a scalar; a blocked [1, C/B, 1, 1, B] constant repeats with period B);
// rows are cut into blocks of at most kBlock elements, and every
// instruction runs over a whole block in L1-resident registers before the
// next one, with the same vector kernels (and so the same bits) as the
// unfused ops: binary rows for Add/Sub/Mul/Div, the epilogue steps, vec_math.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/binary_f32.h"
#include "kernels/cpu/vec_math_f32.h"
#include "ops/fused_elementwise.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

constexpr int64_t kBlock = 512;  // floats per register: 2 KiB
// Below this, one thread; low for the reason given in layer_norm.cpp (0.40 ->
// 0.32 ms for a conformer block's 20 fused chains at 2 threads).
constexpr int64_t kParallelElements = 1 << 12;

struct Instruction {
  ElementwiseOp op;
  int a, b;  // registers; b < 0 for unary ops
  EpilogueStep step;
};

struct Program {
  int inputs = 0;
  std::vector<Instruction> code;
};

Program decode(const Node& node) {
  Program p;
  p.inputs = static_cast<int>(node.inputs.size());
  const std::vector<int64_t>& ops = node.attr_ints("ops");
  const std::vector<float>& params = node.attr_floats("params");
  const std::vector<std::string>& fns = node.attr_strings("fns");
  const size_t n = ops.size() / 3;
  if (n == 0 || ops.size() != 3 * n || params.size() != 2 * n || fns.size() != n)
    throw Error(node.describe() + ": malformed program (ops, params and fns disagree)");
  for (const Value* v : node.inputs)
    if (!v) throw Error(node.describe() + ": every input of a fused element-wise program is required");
  for (size_t i = 0; i < n; ++i) {
    Instruction in{};
    const int64_t op = ops[3 * i];
    if (op < 0 || op > static_cast<int64_t>(ElementwiseOp::kLast))
      throw Error(node.describe() + ": unknown opcode " + std::to_string(op));
    in.op = static_cast<ElementwiseOp>(op);
    const int64_t a = ops[3 * i + 1], b = ops[3 * i + 2];
    const int64_t defined = p.inputs + static_cast<int64_t>(i);  // registers written so far
    const bool binary = elementwise_op_is_binary(in.op);
    if (a < 0 || a >= defined || (binary && (b < 0 || b >= defined)) || (!binary && b != -1))
      throw Error(node.describe() + ": instruction " + std::to_string(i) + " reads an undefined register");
    in.a = static_cast<int>(a);
    in.b = static_cast<int>(b);
    if (in.op == ElementwiseOp::kStep) {
      in.step.fn = find_epilogue_fn(fns[i]);
      if (!in.step.fn) throw Error(node.describe() + ": unknown element-wise step '" + fns[i] + "'");
      in.step.alpha = params[2 * i];
      in.step.beta = params[2 * i + 1];
    }
    p.code.push_back(in);
  }
  return p;
}

// A register over the current block: a pointer to kBlock floats (or to the
// input's own data), or one value broadcast.
struct Reg {
  const float* p = nullptr;
  float scalar = 0;
  bool is_scalar = false;
};

// How an input is read along a row: offset of row r's start (through the
// outer dims, 0 strides where broadcast), and within the row its values
// repeat with `period` (1: a scalar; the row length: contiguous).
struct InputWalk {
  std::vector<int64_t> outer_strides;
  int64_t period = 1;
};

void run_binary(ElementwiseOp op, const Reg& a, const Reg& b, float* y, int64_t n) {
  const float* pa = a.is_scalar ? &a.scalar : a.p;
  const float* pb = b.is_scalar ? &b.scalar : b.p;
  const int64_t as = a.is_scalar ? 0 : 1, bs = b.is_scalar ? 0 : 1;
  switch (op) {
    case ElementwiseOp::kAdd:
    case ElementwiseOp::kSub:
    case ElementwiseOp::kMul:
    case ElementwiseOp::kDiv: {
      static const BinaryRowsF32Fn rows = select_variant(kBinaryRowsF32Variants).fn;
      const BinaryOpF32 bop = op == ElementwiseOp::kAdd   ? BinaryOpF32::kAdd
                              : op == ElementwiseOp::kSub ? BinaryOpF32::kSub
                              : op == ElementwiseOp::kMul ? BinaryOpF32::kMul
                                                          : BinaryOpF32::kDiv;
      rows(bop, pa, as, 0, pb, bs, 0, y, n, 1);
      return;
    }
    case ElementwiseOp::kMax:
      for (int64_t i = 0; i < n; ++i) {
        const float x = pa[i * as], z = pb[i * bs];
        y[i] = std::isnan(x) || std::isnan(z) ? std::numeric_limits<float>::quiet_NaN() : std::max(x, z);
      }
      return;
    case ElementwiseOp::kMin:
      for (int64_t i = 0; i < n; ++i) {
        const float x = pa[i * as], z = pb[i * bs];
        y[i] = std::isnan(x) || std::isnan(z) ? std::numeric_limits<float>::quiet_NaN() : std::min(x, z);
      }
      return;
    default: throw std::logic_error("run_binary: not a binary op");
  }
}

void run_unary(const Instruction& in, const Reg& a, float* y, int64_t n) {
  if (a.is_scalar)
    std::fill(y, y + n, a.scalar);
  else if (a.p != y)
    std::memcpy(y, a.p, static_cast<size_t>(n) * sizeof(float));
  switch (in.op) {
    case ElementwiseOp::kStep: in.step.fn->f32(y, n, in.step.alpha, in.step.beta); return;
    case ElementwiseOp::kNeg:
      for (int64_t i = 0; i < n; ++i) y[i] = -y[i];
      return;
    case ElementwiseOp::kAbs:
      for (int64_t i = 0; i < n; ++i) y[i] = std::fabs(y[i]);
      return;
    case ElementwiseOp::kSqrt:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(y[i]);
      return;
    case ElementwiseOp::kReciprocal:
      for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / y[i];
      return;
    case ElementwiseOp::kExp: vec_math_f32().exp(y, y, n); return;
    case ElementwiseOp::kErf: vec_math_f32().erf(y, y, n); return;
    default: throw std::logic_error("run_unary: not a unary op");
  }
}

class FusedElementwiseKernel : public Kernel {
 public:
  explicit FusedElementwiseKernel(const Node& node) : node_(node), program_(decode(node)) {}

  void run(KernelContext& ctx) const override {
    const size_t k = ctx.num_inputs();
    std::vector<Shape> shapes;
    for (size_t i = 0; i < k; ++i) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != DType::kFloat32) throw ctx.error("input " + std::to_string(i) + " must be float32");
      shapes.push_back(t.shape());
    }
    const Shape out_shape = broadcast_shapes(shapes, node_);
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, out_shape);
    const int64_t total = y.numel();
    if (total == 0) return;
    const size_t rank = out_shape.size();

    // The row: the longest suffix of dims every input reads as "ones, then
    // the output's dims".
    size_t suffix = 0;
    std::vector<int64_t> periods(k, 1);
    for (size_t s = 1; s <= rank; ++s) {
      std::vector<int64_t> p(k);
      bool ok = true;
      for (size_t i = 0; i < k && ok; ++i) {
        const Shape& in = shapes[i];
        bool equal = true;  // still in the innermost run of dims equal to the output's
        int64_t period = 1;
        for (size_t d = 0; d < s; ++d) {
          const size_t od = rank - 1 - d;
          const int64_t o = out_shape[od];
          const int64_t v = d < in.size() ? in[in.size() - 1 - d] : 1;
          if (o == 1) continue;  // neutral
          if (equal && v == o) {
            period *= o;
          } else if (v == 1) {
            equal = false;
          } else {
            ok = false;
            break;
          }
        }
        p[i] = period;
      }
      if (!ok) break;
      suffix = s;
      periods = p;
    }
    int64_t row = 1;
    for (size_t d = rank - suffix; d < rank; ++d) row *= out_shape[d];
    const int64_t rows = total / row;
    const Shape outer(out_shape.begin(), out_shape.end() - static_cast<std::ptrdiff_t>(suffix));
    std::vector<InputWalk> walks(k);
    for (size_t i = 0; i < k; ++i) {
      const std::vector<int64_t> st = broadcast_strides(shapes[i], out_shape);
      walks[i].outer_strides.assign(st.begin(), st.begin() + static_cast<std::ptrdiff_t>(outer.size()));
      walks[i].period = periods[i];
    }

    const int64_t blocks_per_row = ceil_div(row, kBlock);
    const int64_t tasks = rows * blocks_per_row;
    // + periodic inputs' copies; in int64 (a long program times kBlock passes int)
    const int64_t temps = static_cast<int64_t>(program_.code.size()) + static_cast<int64_t>(k);
    ThreadPool* pool = total >= kParallelElements ? ctx.thread_pool() : nullptr;
    const int chunks = pool ? pool->chunk_count(tasks) : 1;
    float* scratch = static_cast<float*>(
        ctx.scratch(static_cast<size_t>(chunks) * static_cast<size_t>(temps * kBlock) * sizeof(float)));
    float* out = y.data<float>();
    parallel_chunks(pool, tasks, [&](int chunk, int64_t begin, int64_t end) {
      float* regs = scratch + static_cast<int64_t>(chunk) * temps * kBlock;
      std::vector<Reg> r(k + program_.code.size());
      std::vector<int64_t> idx(outer.size());
      for (int64_t t = begin; t < end; ++t) {
        const int64_t rw = t / blocks_per_row, j0 = (t % blocks_per_row) * kBlock;
        const int64_t n = std::min(kBlock, row - j0);
        // Row rw's multi-index over the outer dims.
        int64_t rem = rw;
        for (size_t d = outer.size(); d-- > 0;) {
          idx[d] = rem % outer[d];
          rem /= outer[d];
        }
        for (size_t i = 0; i < k; ++i) {
          const float* base = ctx.input(i).data<float>();
          for (size_t d = 0; d < outer.size(); ++d) base += idx[d] * walks[i].outer_strides[d];
          const int64_t period = walks[i].period;
          Reg& reg = r[i];
          reg.is_scalar = period == 1;
          if (period == 1) {
            reg.scalar = base[0];
          } else if (period >= row) {
            reg.p = base + j0;
          } else {  // a pattern repeating along the row: copy this block's stretch of it
            float* dst = regs + (static_cast<int64_t>(program_.code.size()) + static_cast<int64_t>(i)) * kBlock;
            for (int64_t j = 0; j < n;) {
              const int64_t at = (j0 + j) % period, len = std::min(period - at, n - j);
              std::memcpy(dst + j, base + at, static_cast<size_t>(len) * sizeof(float));
              j += len;
            }
            reg.p = dst;
          }
        }
        for (size_t c = 0; c < program_.code.size(); ++c) {
          const Instruction& in = program_.code[c];
          const bool last = c + 1 == program_.code.size();
          float* dst = last ? out + rw * row + j0 : regs + static_cast<int64_t>(c) * kBlock;
          if (elementwise_op_is_binary(in.op))
            run_binary(in.op, r[static_cast<size_t>(in.a)], r[static_cast<size_t>(in.b)], dst, n);
          else
            run_unary(in, r[static_cast<size_t>(in.a)], dst, n);
          r[k + c] = Reg{dst, 0, false};
        }
      }
    });
  }

 private:
  const Node& node_;
  Program program_;
};

void infer_fused_elementwise(InferContext& ctx) {
  decode(ctx.node());  // a malformed program fails here, naming the node
  for (size_t i = 0; i < ctx.node().inputs.size(); ++i)
    if (ctx.input_dtype(i) != DType::kFloat32) throw ctx.error("inputs must be float32");
  std::vector<size_t> all(ctx.node().inputs.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  ctx.set_output(0, DType::kFloat32, broadcast_dims(ctx, all));
}

}  // namespace

bool elementwise_op_is_binary(ElementwiseOp op) {
  return op == ElementwiseOp::kAdd || op == ElementwiseOp::kSub || op == ElementwiseOp::kMul ||
         op == ElementwiseOp::kDiv || op == ElementwiseOp::kMax || op == ElementwiseOp::kMin;
}

KILN_OP(KilnElementwise) {
  return OpSchema{
      .domain = kKilnDomain,
      .name = "Elementwise",
      .min_inputs = 1,
      .max_outputs = 1,
      .types = {DType::kFloat32},
      .infer = infer_fused_elementwise,
      .make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<FusedElementwiseKernel>(node); },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(KilnElementwise) {
  return {.domain = kKilnDomain, .op = "Elementwise", .family = OpFamily::kElementwise, .cost = [](const Node& n) {
            return cost::elementwise(cost::mul(cost::out_numel(n), n.attr_int("steps", 0)));
          }};
}

}  // namespace kiln
