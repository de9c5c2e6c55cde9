// RoiAlign: bilinear sampling of a regular grid in each region of interest,
// averaged (or max-ed) per output bin. Opset 10 behaves as
// coordinate_transformation_mode=output_half_pixel (no half-pixel offset);
// opset 16 adds the attribute with half_pixel as the default. Max mode takes,
// per sample, the largest weighted corner value, as the reference does.
#include <algorithm>
#include <cmath>

#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

namespace {

constexpr int64_t kMaxSamplingRatio = int64_t{1} << 16;
constexpr double kMaxSamples = static_cast<double>(int64_t{1} << 34);

void compute_roi_align(KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const std::vector<int64_t> batch = read_ints(ctx.input(2), ctx, "batch_indices");
  if (x.rank() != 4) throw ctx.error("X must be 4-D, got " + shape_str(x.shape()));
  if (rois.rank() != 2 || rois.dim(1) != 4)
    throw ctx.error("rois must be [num_rois, 4], got " + shape_str(rois.shape()));
  const int64_t R = rois.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  if (static_cast<int64_t>(batch.size()) != R) throw ctx.error("batch_indices must have one value per roi");
  const std::string mode = node.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") throw ctx.error("mode must be avg or max");
  const int64_t OH = node.attr_int("output_height", 1), OW = node.attr_int("output_width", 1);
  const int64_t sampling = node.attr_int("sampling_ratio", 0);
  const double scale = node.attr_float("spatial_scale", 1.0f);
  if (OH <= 0 || OW <= 0 || sampling < 0) throw ctx.error("output sizes must be positive and sampling_ratio >= 0");
  if (sampling > kMaxSamplingRatio)
    throw ctx.error("sampling_ratio " + std::to_string(sampling) + " is out of range (at most " +
                    std::to_string(kMaxSamplingRatio) + ")");
  // Samples taken over all rois, bounded as they are planned (a large
  // sampling ratio, or an adaptive one from a huge roi, would run for days).
  double samples = 0;
  const std::string ctm =
      node.opset >= 16 ? node.attr_string("coordinate_transformation_mode", "half_pixel") : "output_half_pixel";
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    throw ctx.error("coordinate_transformation_mode '" + ctm + "' is unknown");
  const bool half_pixel = ctm == "half_pixel";
  dispatch<FloatTypes>(x.dtype(), "RoiAlign", [&]<typename T>() {
    if (rois.dtype() != x.dtype()) throw ctx.error("rois must have X's type");
    Tensor& y = ctx.output(0, x.dtype(), {R, C, OH, OW});
    const T* px = x.data<T>();
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = batch[static_cast<size_t>(r)];
      if (b < 0 || b >= x.dim(0)) throw ctx.error("batch index " + std::to_string(b) + " is out of range");
      double box[4];
      for (int k = 0; k < 4; ++k) box[k] = static_cast<double>(static_cast<acc_t<T>>(rois.data<T>()[r * 4 + k]));
      const double off = half_pixel ? 0.5 : 0.0;
      const double sw = box[0] * scale - off, sh = box[1] * scale - off;
      double rw = box[2] * scale - off - sw, rh = box[3] * scale - off - sh;
      if (!half_pixel) {
        rw = std::max(rw, 1.0);
        rh = std::max(rh, 1.0);
      }
      const double bh = rh / static_cast<double>(OH), bw = rw / static_cast<double>(OW);
      const double gh_d = sampling > 0 ? static_cast<double>(sampling) : std::ceil(rh / static_cast<double>(OH));
      const double gw_d = sampling > 0 ? static_cast<double>(sampling) : std::ceil(rw / static_cast<double>(OW));
      samples += std::max(gh_d, 0.0) * std::max(gw_d, 0.0) * static_cast<double>(C) * static_cast<double>(OH) *
                 static_cast<double>(OW);
      if (!(samples <= kMaxSamples))  // NaN too: an adaptive grid from a non-finite roi
        throw ctx.error("roi " + std::to_string(r) + " takes the bilinear samples past 2^34 in all (sampling grid " +
                        std::to_string(gh_d) + " x " + std::to_string(gw_d) + ")");
      const int64_t gh = static_cast<int64_t>(gh_d), gw = static_cast<int64_t>(gw_d);
      const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
      for (int64_t c = 0; c < C; ++c) {
        const T* plane = px + (b * C + c) * H * W;
        for (int64_t ph = 0; ph < OH; ++ph)
          for (int64_t pw = 0; pw < OW; ++pw) {
            double sum = 0, best = 0;
            bool any = false;
            for (int64_t iy = 0; iy < gh; ++iy)
              for (int64_t ix = 0; ix < gw; ++ix) {
                double yy =
                    sh + static_cast<double>(ph) * bh + (static_cast<double>(iy) + 0.5) * bh / static_cast<double>(gh);
                double xx =
                    sw + static_cast<double>(pw) * bw + (static_cast<double>(ix) + 0.5) * bw / static_cast<double>(gw);
                double v[4] = {0, 0, 0, 0};
                if (!(yy < -1.0 || yy > static_cast<double>(H) || xx < -1.0 || xx > static_cast<double>(W)) && H > 0 &&
                    W > 0) {
                  yy = std::max(yy, 0.0);
                  xx = std::max(xx, 0.0);
                  int64_t y0 = static_cast<int64_t>(yy), x0 = static_cast<int64_t>(xx), y1, x1;
                  if (y0 >= H - 1) {
                    y0 = y1 = H - 1;
                    yy = static_cast<double>(y0);
                  } else {
                    y1 = y0 + 1;
                  }
                  if (x0 >= W - 1) {
                    x0 = x1 = W - 1;
                    xx = static_cast<double>(x0);
                  } else {
                    x1 = x0 + 1;
                  }
                  const double ly = yy - static_cast<double>(y0), lx = xx - static_cast<double>(x0);
                  const double hy = 1 - ly, hx = 1 - lx;
                  auto at = [&](int64_t i, int64_t j) {
                    return static_cast<double>(static_cast<acc_t<T>>(plane[i * W + j]));
                  };
                  v[0] = hy * hx * at(y0, x0);
                  v[1] = hy * lx * at(y0, x1);
                  v[2] = ly * hx * at(y1, x0);
                  v[3] = ly * lx * at(y1, x1);
                }
                if (mode == "avg") {
                  sum += v[0] + v[1] + v[2] + v[3];
                } else {
                  const double m = std::max(std::max(v[0], v[1]), std::max(v[2], v[3]));
                  best = any ? std::max(best, m) : m;
                  any = true;
                }
              }
            const double out = mode == "avg" ? sum / count : best;
            y.data<T>()[((r * C + c) * OH + ph) * OW + pw] = static_cast<T>(static_cast<acc_t<T>>(out));
          }
      }
    }
  });
}

OpSchema roi_align_schema(int since, int until) {
  return OpSchema{
      .name = "RoiAlign",
      .since = since,
      .until = until,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer =
          [](InferContext& ctx) {
            const ValueType& x = ctx.input_type(0);
            const ValueType& rois = ctx.input_type(1);
            DimVector d = {rois.shape && !rois.shape->empty() ? (*rois.shape)[0] : Dim::unknown(),
                           x.shape && x.shape->size() == 4 ? (*x.shape)[1] : Dim::unknown(),
                           Dim::known(ctx.node().attr_int("output_height", 1)),
                           Dim::known(ctx.node().attr_int("output_width", 1))};
            ctx.set_output(0, x.dtype, d);
          },
      .compute = compute_roi_align,
  };
}

}  // namespace

KILN_OP(RoiAlign_10) { return roi_align_schema(10, 15); }
KILN_OP(RoiAlign_16) { return roi_align_schema(16, INT_MAX); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(RoiAlign) {
  return {.op = "RoiAlign", .family = OpFamily::kPooling, .cost = cost::not_counted("RoiAlign is not counted")};
}

}  // namespace kiln
