// NonMaxSuppression (opset 10; 11 only clarifies that box corners may come in
// either order, which kiln handles at every version). Per batch and class:
// drop boxes whose score is not above score_threshold, then repeatedly take
// the highest-scoring remaining box (ties: lower index first) unless its IoU
// with an already selected box of that class is above iou_threshold, until
// max_output_boxes_per_class are selected. Output: int64 [num_selected, 3] of
// (batch, class, box) triples. Arithmetic is in the input's precision (float
// for 16-bit floats), like the ONNX reference.
#include <algorithm>
#include <array>

#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

namespace {

// A box as [min_y, min_x, max_y, max_x] with sorted corners.
template <typename A>
struct Box {
  A y0, x0, y1, x1;
};

template <typename A>
Box<A> read_box(const A* b, bool center_point) {
  if (center_point) {  // [x_center, y_center, width, height]
    const A hw = b[2] / A(2), hh = b[3] / A(2);
    return {b[1] - hh, b[0] - hw, b[1] + hh, b[0] + hw};
  }
  // [y1, x1, y2, x2], corners in either order.
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

// True when IoU(a, b) > threshold. Boxes without area never suppress.
template <typename A>
bool suppresses(const Box<A>& a, const Box<A>& b, A threshold) {
  const A ix0 = std::max(a.x0, b.x0), ix1 = std::min(a.x1, b.x1);
  if (ix1 <= ix0) return false;
  const A iy0 = std::max(a.y0, b.y0), iy1 = std::min(a.y1, b.y1);
  if (iy1 <= iy0) return false;
  const A inter = (ix1 - ix0) * (iy1 - iy0);
  const A area_a = (a.x1 - a.x0) * (a.y1 - a.y0), area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
  const A uni = area_a + area_b - inter;
  if (inter <= A(0) || area_a <= A(0) || area_b <= A(0) || uni <= A(0)) return false;
  return inter / uni > threshold;
}

// Reads an optional scalar (or 1-element, or empty = absent) input.
bool optional_scalar(const KernelContext& ctx, size_t i, const char* what, double* v) {
  if (!ctx.has_input(i) || ctx.input(i).numel() == 0) return false;
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1)
    throw ctx.error(std::string(what) + " must be a scalar, got " + std::to_string(t.numel()) + " elements");
  *v = read_scalar(t);
  return true;
}

void infer_nms(InferContext& ctx) {
  for (size_t i = 0; i < 2; ++i) {
    const ValueType& t = ctx.input_type(i);
    if (t.shape && t.shape->size() != 3)
      throw ctx.error(std::string(i == 0 ? "boxes" : "scores") + " must have rank 3, got " +
                      std::to_string(t.shape->size()));
  }
  const ValueType& boxes = ctx.input_type(0);
  if (boxes.shape && (*boxes.shape)[2].is_known() && (*boxes.shape)[2].value != 4)
    throw ctx.error("boxes' last dim must be 4, got " + std::to_string((*boxes.shape)[2].value));
  if (ctx.has_input(1) && ctx.input_dtype(1) != DType::kUndefined && boxes.dtype != DType::kUndefined &&
      ctx.input_dtype(1) != boxes.dtype)
    throw ctx.error("boxes and scores types differ");
  ctx.set_output(0, DType::kInt64, DimVector{Dim::unknown(), Dim::known(3)});
}

void compute_nms(KernelContext& ctx) {
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  if (boxes.rank() != 3 || boxes.dim(2) != 4)
    throw ctx.error("boxes must have shape [num_batches, num_boxes, 4], got " + shape_str(boxes.shape()));
  if (scores.rank() != 3) throw ctx.error("scores must have rank 3, got " + shape_str(scores.shape()));
  if (scores.dim(0) != boxes.dim(0) || scores.dim(2) != boxes.dim(1))
    throw ctx.error("scores " + shape_str(scores.shape()) + " do not match boxes " + shape_str(boxes.shape()) +
                    " (expected [num_batches, num_classes, num_boxes])");
  if (scores.dtype() != boxes.dtype()) throw ctx.error("boxes and scores types differ");
  const int64_t center = ctx.node().attr_int("center_point_box", 0);
  const int64_t num_batches = boxes.dim(0), num_boxes = boxes.dim(1), num_classes = scores.dim(1);

  double v = 0;
  int64_t max_out = 0;  // absent: select nothing
  if (ctx.has_input(2) && ctx.input(2).numel() != 0) {
    std::vector<int64_t> m = read_ints(ctx.input(2), ctx, "max_output_boxes_per_class");
    if (m.size() != 1) throw ctx.error("max_output_boxes_per_class must be a scalar");
    max_out = std::max<int64_t>(m[0], 0);
  }
  double iou_threshold = 0;
  if (optional_scalar(ctx, 3, "iou_threshold", &v)) iou_threshold = v;
  if (!(iou_threshold >= 0.0 && iou_threshold <= 1.0))
    throw ctx.error("iou_threshold " + std::to_string(iou_threshold) + " is outside [0, 1]");
  double score_threshold = 0;
  const bool has_score_threshold = optional_scalar(ctx, 4, "score_threshold", &score_threshold);

  std::vector<std::array<int64_t, 3>> selected;
  dispatch<FloatTypes>(boxes.dtype(), "NonMaxSuppression", [&]<typename T>() {
    using A = acc_t<T>;
    const A iou_t = static_cast<A>(static_cast<T>(iou_threshold));
    const A score_t = static_cast<A>(static_cast<T>(score_threshold));
    std::vector<Box<A>> bx(static_cast<size_t>(num_boxes));
    std::vector<std::pair<A, int64_t>> cand;  // (score, box index)
    std::vector<int64_t> kept;
    for (int64_t b = 0; b < num_batches; ++b) {
      for (int64_t i = 0; i < num_boxes; ++i) {
        A raw[4];
        for (int k = 0; k < 4; ++k) raw[k] = static_cast<A>(boxes.data<T>()[(b * num_boxes + i) * 4 + k]);
        bx[static_cast<size_t>(i)] = read_box(raw, center == 1);
      }
      for (int64_t c = 0; c < num_classes; ++c) {
        const T* sc = scores.data<T>() + (b * num_classes + c) * num_boxes;
        cand.clear();
        for (int64_t i = 0; i < num_boxes; ++i) {
          const A s = static_cast<A>(sc[i]);
          if (!has_score_threshold || s > score_t) cand.emplace_back(s, i);
        }
        // Highest score first; equal scores keep the lower index first.
        std::stable_sort(cand.begin(), cand.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
        kept.clear();
        for (const auto& [s, i] : cand) {
          if (static_cast<int64_t>(kept.size()) >= max_out) break;
          bool ok = true;
          for (int64_t j : kept)
            if (suppresses(bx[static_cast<size_t>(i)], bx[static_cast<size_t>(j)], iou_t)) {
              ok = false;
              break;
            }
          if (!ok) continue;
          kept.push_back(i);
          selected.push_back({b, c, i});
        }
      }
    }
  });
  Tensor& out = ctx.output(0, DType::kInt64, {static_cast<int64_t>(selected.size()), 3});
  for (size_t r = 0; r < selected.size(); ++r)
    for (size_t k = 0; k < 3; ++k) out.data<int64_t>()[r * 3 + k] = selected[r][k];
}

}  // namespace

KILN_OP(NonMaxSuppression) {
  return OpSchema{
      .name = "NonMaxSuppression",
      .since = 10,
      .min_inputs = 2,
      .max_inputs = 5,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check = [](const Node& n) -> std::string {
        int64_t c = n.attr_int("center_point_box", 0);
        if (c != 0 && c != 1) return "center_point_box must be 0 or 1, got " + std::to_string(c);
        return "";
      },
      .infer = infer_nms,
      .compute = compute_nms,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(NonMaxSuppression) {
  return {.op = "NonMaxSuppression",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("NonMaxSuppression is not counted")};
}

}  // namespace kiln
