// Signal processing: HannWindow, HammingWindow, BlackmanWindow, DFT (17: axis
// attribute; 20: axis input), STFT and MelWeightMatrix. Transforms are plain
// O(N^2) sums in double precision; complex values are a trailing dim of 2.
#include <cmath>
#include <numbers>

#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

namespace {

constexpr double kPi = std::numbers::pi;

// Fills `out` (any numeric dtype) from doubles.
void write_doubles(Tensor& out, const std::vector<double>& v, const std::string& op) {
  dispatch<NumericTypes>(out.dtype(), op, [&]<typename T>() {
    for (size_t i = 0; i < v.size(); ++i) out.data<T>()[i] = static_cast<T>(static_cast<acc_t<T>>(v[i]));
  });
}

std::vector<double> read_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch<NumericTypes>(t.dtype(), "read", [&]<typename T>() {
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(acc_t<T>(t.data<T>()[i]));
  });
  return v;
}

int64_t read_int_scalar(const KernelContext& ctx, size_t i, const char* what) {
  std::vector<int64_t> v = read_ints(ctx.input(i), ctx, what);
  if (v.size() != 1)
    throw ctx.error(std::string(what) + " must be a scalar, got shape [" + shape_str(ctx.input(i).shape()) + "]");
  return v[0];
}

// Output dtype from the output_datatype attribute (default float).
std::string check_output_datatype(const Node& n) {
  int64_t t = n.attr_int("output_datatype", 1);
  DType d = static_cast<DType>(t);
  if (!dtype_is_supported(static_cast<int32_t>(t)) || !(dtype_is_float(d) || dtype_is_integer(d)))
    return "output_datatype " + std::to_string(t) + " is not a numeric type";
  return "";
}

// Guards against a size read from a file allocating without bound.
constexpr int64_t kMaxLength = int64_t{1} << 28;
// The most multiply-adds one DFT node may take (the kernel is O(n^2) per
// signal): tens of seconds.
constexpr double kMaxDftWork = static_cast<double>(int64_t{1} << 34);

// ---------------------------------------------------------------- windows

// w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size (periodic)
// or size - 1 (symmetric).
OpSchema window_schema(const char* name, double a0, double a1, double a2) {
  return OpSchema{
      .name = name,
      .since = 17,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = {DType::kInt32, DType::kInt64},
      .check = check_output_datatype,
      .infer =
          [](InferContext& ctx) {
            DType dt = static_cast<DType>(ctx.node().attr_int("output_datatype", 1));
            std::vector<int64_t> v;
            Dim d = ctx.input_ints(0, &v) && v.size() == 1 && v[0] >= 0 ? Dim::known(v[0]) : Dim::unknown();
            ctx.set_output(0, dt, DimVector{d});
          },
      .compute =
          [a0, a1, a2](KernelContext& ctx) {
            int64_t size = read_int_scalar(ctx, 0, "size");
            if (size < 0 || size > kMaxLength)
              throw ctx.error("window size " + std::to_string(size) + " is out of range");
            bool periodic = ctx.node().attr_int("periodic", 1) != 0;
            double n_div = periodic ? static_cast<double>(size) : static_cast<double>(size - 1);
            std::vector<double> w(static_cast<size_t>(size));
            for (int64_t n = 0; n < size; ++n) {
              double x = n_div > 0 ? static_cast<double>(n) / n_div : 0.0;
              w[static_cast<size_t>(n)] = a0 - a1 * std::cos(2 * kPi * x) + a2 * std::cos(4 * kPi * x);
            }
            Tensor& out = ctx.output(0, static_cast<DType>(ctx.node().attr_int("output_datatype", 1)), {size});
            write_doubles(out, w, ctx.node().op_type);
          },
  };
}

// ---------------------------------------------------------------- DFT

struct DftParams {
  bool inverse = false, onesided = false;
  int64_t axis = 1;     // normalised
  int64_t length = -1;  // dft_length; -1: default
};

// The transform of one signal of `in_len` complex values (stride `stride`)
// into `out_len` values. `irfft` reconstructs the full spectrum from its
// first half and returns the real part.
void dft_1d(const double* re, const double* im, int64_t in_len, int64_t stride, int64_t n, bool inverse, bool irfft,
            int64_t out_len, double* out_re, double* out_im, const std::vector<double>& cos_t,
            const std::vector<double>& sin_t) {
  std::vector<double> xr(static_cast<size_t>(n), 0.0), xi(static_cast<size_t>(n), 0.0);
  if (irfft) {
    int64_t half = std::min(in_len, n / 2 + 1);
    for (int64_t k = 0; k < half; ++k) {
      xr[static_cast<size_t>(k)] = re[k * stride];
      xi[static_cast<size_t>(k)] = im[k * stride];
    }
    for (int64_t k = n / 2 + 1; k < n; ++k) {  // X[k] = conj(X[n - k])
      xr[static_cast<size_t>(k)] = xr[static_cast<size_t>(n - k)];
      xi[static_cast<size_t>(k)] = -xi[static_cast<size_t>(n - k)];
    }
  } else {
    for (int64_t k = 0; k < std::min(in_len, n); ++k) {
      xr[static_cast<size_t>(k)] = re[k * stride];
      xi[static_cast<size_t>(k)] = im[k * stride];
    }
  }
  double sign = inverse ? 1.0 : -1.0;
  double scale = inverse ? 1.0 / static_cast<double>(n) : 1.0;
  for (int64_t k = 0; k < out_len; ++k) {
    double sr = 0, si = 0;
    for (int64_t j = 0; j < n; ++j) {
      size_t idx = static_cast<size_t>((k * j) % n);
      double c = cos_t[idx], s = sign * sin_t[idx];
      sr += xr[static_cast<size_t>(j)] * c - xi[static_cast<size_t>(j)] * s;
      si += xr[static_cast<size_t>(j)] * s + xi[static_cast<size_t>(j)] * c;
    }
    out_re[k] = sr * scale;
    if (out_im) out_im[k] = si * scale;
  }
}

void twiddles(int64_t n, std::vector<double>* c, std::vector<double>* s) {
  c->resize(static_cast<size_t>(n));
  s->resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double a = 2 * kPi * static_cast<double>(i) / static_cast<double>(n);
    (*c)[static_cast<size_t>(i)] = std::cos(a);
    (*s)[static_cast<size_t>(i)] = std::sin(a);
  }
}

int64_t dft_axis(int64_t axis, int64_t rank, const Node& node) {
  if (axis < -rank || axis > rank - 2 || axis == -1)
    throw Error(node.describe() + ": axis " + std::to_string(axis) + " is out of range for rank " +
                std::to_string(rank) + " (the last dim holds real/imaginary parts)");
  return axis < 0 ? axis + rank : axis;
}

void dft_compute(KernelContext& ctx, bool axis_is_input) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  if (x.rank() < 2 || (x.shape().back() != 1 && x.shape().back() != 2))
    throw ctx.error("input must end in a dim of 1 (real) or 2 (complex), got [" + shape_str(x.shape()) + "]");
  DftParams p;
  p.inverse = node.attr_int("inverse", 0) != 0;
  p.onesided = node.attr_int("onesided", 0) != 0;
  int64_t axis = axis_is_input ? -2 : node.attr_int("axis", 1);
  if (axis_is_input && ctx.has_input(2)) axis = read_int_scalar(ctx, 2, "axis");
  p.axis = dft_axis(axis, x.rank(), node);
  bool complex_in = x.shape().back() == 2;
  bool irfft = p.onesided && p.inverse;
  if (irfft && !complex_in) throw ctx.error("the inverse one-sided DFT (IRFFT) needs complex input");
  int64_t in_len = x.shape()[static_cast<size_t>(p.axis)];
  int64_t n = irfft ? 2 * (in_len - 1) : in_len;
  if (ctx.has_input(1)) n = read_int_scalar(ctx, 1, "dft_length");
  if (n < 1 || n > kMaxLength) throw ctx.error("dft_length " + std::to_string(n) + " is out of range");
  int64_t out_len = p.onesided && !p.inverse ? n / 2 + 1 : n;
  Shape out_shape = x.shape();
  out_shape[static_cast<size_t>(p.axis)] = out_len;
  out_shape.back() = irfft ? 1 : 2;

  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < p.axis; ++d) outer *= x.shape()[static_cast<size_t>(d)];
  for (int64_t d = p.axis + 1; d < x.rank() - 1; ++d) inner *= x.shape()[static_cast<size_t>(d)];
  // The transform is a plain O(n * out_len) sum per signal: bound the whole
  // (a dft_length of 2^28 is allowed, and would run for days).
  const double work =
      static_cast<double>(outer) * static_cast<double>(inner) * static_cast<double>(n) * static_cast<double>(out_len);
  if (work > kMaxDftWork)
    throw ctx.error("the transform of " + std::to_string(outer * inner) + " signal(s) of length " + std::to_string(n) +
                    " needs about " + std::to_string(static_cast<int64_t>(work)) +
                    " multiply-adds, more than kiln's limit of 2^34");
  std::vector<double> xs = read_doubles(x);
  int64_t c_in = x.shape().back(), c_out = out_shape.back();
  std::vector<double> cos_t, sin_t;
  twiddles(n, &cos_t, &sin_t);
  std::vector<double> ys(static_cast<size_t>(shape_numel(out_shape)));
  std::vector<double> re(static_cast<size_t>(in_len)), im(static_cast<size_t>(in_len)),
      yr(static_cast<size_t>(out_len)), yi(static_cast<size_t>(out_len));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t k = 0; k < in_len; ++k) {
        size_t at = static_cast<size_t>(((o * in_len + k) * inner + i) * c_in);
        re[static_cast<size_t>(k)] = xs[at];
        im[static_cast<size_t>(k)] = complex_in ? xs[at + 1] : 0.0;
      }
      dft_1d(re.data(), im.data(), in_len, 1, n, p.inverse, irfft, out_len, yr.data(), irfft ? nullptr : yi.data(),
             cos_t, sin_t);
      for (int64_t k = 0; k < out_len; ++k) {
        size_t at = static_cast<size_t>(((o * out_len + k) * inner + i) * c_out);
        ys[at] = yr[static_cast<size_t>(k)];
        if (!irfft) ys[at + 1] = yi[static_cast<size_t>(k)];
      }
    }
  Tensor& out = ctx.output(0, x.dtype(), out_shape);
  write_doubles(out, ys, node.op_type);
}

void dft_infer(InferContext& ctx, bool axis_is_input) {
  const ValueType& x = ctx.input_type(0);
  if (!x.shape) {
    ctx.set_output(0, x.dtype, std::nullopt);
    return;
  }
  const Node& node = ctx.node();
  bool inverse = node.attr_int("inverse", 0) != 0, onesided = node.attr_int("onesided", 0) != 0;
  bool irfft = inverse && onesided;
  DimVector out = *x.shape;
  int64_t rank = x.rank();
  if (rank < 2) throw ctx.error("input must have rank >= 2");
  out.back() = Dim::known(irfft ? 1 : 2);
  int64_t axis = axis_is_input ? -2 : node.attr_int("axis", 1);
  std::vector<int64_t> v;
  if (axis_is_input && ctx.has_input(2)) {
    if (!ctx.input_ints(2, &v) || v.size() != 1) {  // axis unknown: which dim changes is unknown
      for (size_t d = 0; d + 1 < out.size(); ++d) out[d] = Dim::unknown();
      ctx.set_output(0, x.dtype, out);
      return;
    }
    axis = v[0];
  }
  size_t a = static_cast<size_t>(dft_axis(axis, rank, node));
  Dim len = Dim::unknown();
  if (ctx.has_input(1)) {
    if (ctx.input_ints(1, &v) && v.size() == 1) len = Dim::known(v[0]);
  } else if ((*x.shape)[a].is_known()) {
    int64_t l = (*x.shape)[a].value;
    len = Dim::known(irfft ? 2 * (l - 1) : l);
  }
  out[a] = len.is_known() && onesided && !inverse ? Dim::known(len.value / 2 + 1) : len;
  ctx.set_output(0, x.dtype, out);
}

OpSchema dft_schema(int since, int until, bool axis_is_input) {
  return OpSchema{
      .name = "DFT",
      .since = since,
      .until = until,
      .min_inputs = 1,
      .max_inputs = axis_is_input ? 3 : 2,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = [axis_is_input](InferContext& ctx) { dft_infer(ctx, axis_is_input); },
      .compute = [axis_is_input](KernelContext& ctx) { dft_compute(ctx, axis_is_input); },
  };
}

// ---------------------------------------------------------------- STFT

void stft_compute(KernelContext& ctx) {
  const Tensor& sig = ctx.input(0);
  if (sig.rank() != 3 || (sig.dim(2) != 1 && sig.dim(2) != 2))
    throw ctx.error("signal must be [batch, length, 1 or 2], got [" + shape_str(sig.shape()) + "]");
  bool complex_in = sig.dim(2) == 2;
  int64_t step = read_int_scalar(ctx, 1, "frame_step");
  if (step < 1) throw ctx.error("frame_step must be positive, got " + std::to_string(step));
  std::vector<double> window;
  int64_t len = -1;
  if (ctx.has_input(2)) {
    if (ctx.input(2).rank() != 1) throw ctx.error("window must have rank 1");
    window = read_doubles(ctx.input(2));
    len = static_cast<int64_t>(window.size());
  }
  if (ctx.has_input(3)) {
    int64_t fl = read_int_scalar(ctx, 3, "frame_length");
    if (len >= 0 && fl != len)
      throw ctx.error("frame_length " + std::to_string(fl) + " differs from the window's length " +
                      std::to_string(len));
    len = fl;
  }
  if (len < 0) throw ctx.error("either window or frame_length is required");
  int64_t batch = sig.dim(0), sig_len = sig.dim(1);
  if (len < 1 || len > sig_len)
    throw ctx.error("frame length " + std::to_string(len) + " must be in [1, signal length " + std::to_string(sig_len) +
                    "]");
  if (window.empty()) window.assign(static_cast<size_t>(len), 1.0);
  bool onesided = ctx.node().attr_int("onesided", 1) != 0;
  if (onesided && complex_in) throw ctx.error("onesided output needs a real signal");
  int64_t frames = (sig_len - len) / step + 1;
  int64_t bins = onesided ? len / 2 + 1 : len;
  std::vector<double> xs = read_doubles(sig), cos_t, sin_t;
  twiddles(len, &cos_t, &sin_t);
  std::vector<double> out(static_cast<size_t>(batch * frames * bins * 2));
  std::vector<double> re(static_cast<size_t>(len)), im(static_cast<size_t>(len)), yr(static_cast<size_t>(bins)),
      yi(static_cast<size_t>(bins));
  int64_t c = sig.dim(2);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t k = 0; k < len; ++k) {
        size_t at = static_cast<size_t>((b * sig_len + f * step + k) * c);
        re[static_cast<size_t>(k)] = xs[at] * window[static_cast<size_t>(k)];
        im[static_cast<size_t>(k)] = complex_in ? xs[at + 1] * window[static_cast<size_t>(k)] : 0.0;
      }
      dft_1d(re.data(), im.data(), len, 1, len, false, false, bins, yr.data(), yi.data(), cos_t, sin_t);
      for (int64_t k = 0; k < bins; ++k) {
        size_t at = static_cast<size_t>(((b * frames + f) * bins + k) * 2);
        out[at] = yr[static_cast<size_t>(k)];
        out[at + 1] = yi[static_cast<size_t>(k)];
      }
    }
  Tensor& y = ctx.output(0, sig.dtype(), {batch, frames, bins, 2});
  write_doubles(y, out, "STFT");
}

void stft_infer(InferContext& ctx) {
  const ValueType& sig = ctx.input_type(0);
  Dim batch = Dim::unknown(), frames = Dim::unknown(), bins = Dim::unknown();
  int64_t len = -1, step = -1;
  std::vector<int64_t> v;
  if (ctx.has_input(3) && ctx.input_ints(3, &v) && v.size() == 1) len = v[0];
  if (len < 0 && ctx.has_input(2)) {
    const ValueType& w = ctx.input_type(2);
    if (w.shape && w.shape->size() == 1 && (*w.shape)[0].is_known()) len = (*w.shape)[0].value;
  }
  if (ctx.input_ints(1, &v) && v.size() == 1) step = v[0];
  bool onesided = ctx.node().attr_int("onesided", 1) != 0;
  if (len > 0) bins = Dim::known(onesided ? len / 2 + 1 : len);
  if (sig.shape && sig.shape->size() == 3) {
    batch = (*sig.shape)[0];
    const Dim& sl = (*sig.shape)[1];
    if (sl.is_known() && len > 0 && step > 0 && sl.value >= len) frames = Dim::known((sl.value - len) / step + 1);
  }
  ctx.set_output(0, sig.dtype, DimVector{batch, frames, bins, Dim::known(2)});
}

// ---------------------------------------------------------------- MelWeightMatrix

// Triangular filters between mel-spaced bin edges, following the spec's
// reference: edges are floored to spectrogram bin indices.
void mel_compute(KernelContext& ctx) {
  int64_t num_mel = read_int_scalar(ctx, 0, "num_mel_bins");
  int64_t dft_length = read_int_scalar(ctx, 1, "dft_length");
  int64_t sample_rate = read_int_scalar(ctx, 2, "sample_rate");
  if (num_mel < 1 || num_mel > kMaxLength)
    throw ctx.error("num_mel_bins " + std::to_string(num_mel) + " is out of range");
  if (dft_length < 1 || dft_length > kMaxLength)
    throw ctx.error("dft_length " + std::to_string(dft_length) + " is out of range");
  if (sample_rate < 1) throw ctx.error("sample_rate must be positive, got " + std::to_string(sample_rate));
  if (ctx.input(3).numel() != 1 || ctx.input(4).numel() != 1) throw ctx.error("lower/upper_edge_hertz must be scalars");
  double lower = read_scalar(ctx.input(3)), upper = read_scalar(ctx.input(4));
  if (!(lower >= 0 && upper > lower)) throw ctx.error("need 0 <= lower_edge_hertz < upper_edge_hertz");
  // Filters past the sample rate lie outside the spectrum; an edge of 1e15 Hz
  // made the filter loops below run for days.
  if (!(upper <= static_cast<double>(sample_rate)))
    throw ctx.error("upper_edge_hertz " + std::to_string(upper) + " is above the sample rate " +
                    std::to_string(sample_rate));
  int64_t num_bins = dft_length / 2 + 1;
  if (num_bins * num_mel > kMaxLength) throw ctx.error("the matrix would be too large");
  auto mel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
  double low_mel = mel(lower), high_mel = mel(upper);
  double mel_step = (high_mel - low_mel) / static_cast<double>(num_mel + 2);
  std::vector<int64_t> edges(static_cast<size_t>(num_mel + 2));
  for (int64_t i = 0; i < num_mel + 2; ++i) {
    double m = static_cast<double>(i) * mel_step + low_mel;
    double hz = 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
    edges[static_cast<size_t>(i)] =
        static_cast<int64_t>(std::floor(static_cast<double>(dft_length + 1) * hz / static_cast<double>(sample_rate)));
  }
  std::vector<double> w(static_cast<size_t>(num_bins * num_mel), 0.0);
  auto at = [&](int64_t bin, int64_t m) -> double* {
    if (bin < 0 || bin >= num_bins) return nullptr;  // an edge beyond the spectrum
    return &w[static_cast<size_t>(bin * num_mel + m)];
  };
  for (int64_t i = 0; i < num_mel; ++i) {
    int64_t lo = edges[static_cast<size_t>(i)], center = edges[static_cast<size_t>(i + 1)],
            hi = edges[static_cast<size_t>(i + 2)];
    // Only bins inside the spectrum are written: the loops visit those alone.
    if (center == lo) {
      if (double* p = at(center, i)) *p = 1;
    } else {
      for (int64_t j = std::max<int64_t>(lo, 0); j <= std::min(center, num_bins - 1); ++j)
        if (double* p = at(j, i)) *p = static_cast<double>(j - lo) / static_cast<double>(center - lo);
    }
    if (hi > center)
      for (int64_t j = std::max<int64_t>(center, 0); j < std::min(hi, num_bins); ++j)
        if (double* p = at(j, i)) *p = static_cast<double>(hi - j) / static_cast<double>(hi - center);
  }
  Tensor& out = ctx.output(0, static_cast<DType>(ctx.node().attr_int("output_datatype", 1)), {num_bins, num_mel});
  write_doubles(out, w, "MelWeightMatrix");
}

}  // namespace

KILN_OP(HannWindow) { return window_schema("HannWindow", 0.5, 0.5, 0.0); }
KILN_OP(HammingWindow) { return window_schema("HammingWindow", 25.0 / 46.0, 21.0 / 46.0, 0.0); }
KILN_OP(BlackmanWindow) { return window_schema("BlackmanWindow", 0.42, 0.5, 0.08); }

KILN_OP(DFT_17) { return dft_schema(17, 19, false); }
KILN_OP(DFT_20) { return dft_schema(20, INT_MAX, true); }

KILN_OP(STFT) {
  return OpSchema{
      .name = "STFT",
      .since = 17,
      .min_inputs = 2,
      .max_inputs = 4,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = stft_infer,
      .compute = stft_compute,
  };
}

KILN_OP(MelWeightMatrix) {
  return OpSchema{
      .name = "MelWeightMatrix",
      .since = 17,
      .min_inputs = 5,
      .max_inputs = 5,
      .max_outputs = 1,
      .types = {DType::kInt32, DType::kInt64},
      .check = check_output_datatype,
      .infer =
          [](InferContext& ctx) {
            DType dt = static_cast<DType>(ctx.node().attr_int("output_datatype", 1));
            std::vector<int64_t> v, m;
            Dim bins = ctx.input_ints(1, &v) && v.size() == 1 && v[0] >= 0 ? Dim::known(v[0] / 2 + 1) : Dim::unknown();
            Dim mels = ctx.input_ints(0, &m) && m.size() == 1 && m[0] >= 0 ? Dim::known(m[0]) : Dim::unknown();
            ctx.set_output(0, dt, DimVector{bins, mels});
          },
      .compute = mel_compute,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(BlackmanWindow) {
  return {
      .op = "BlackmanWindow", .family = OpFamily::kOther, .cost = cost::not_counted("signal windows are not counted")};
}

KILN_OP_FACTS(DFT) {
  return {.op = "DFT",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("DFT is not counted (an FFT's count depends on its algorithm)")};
}

KILN_OP_FACTS(HammingWindow) {
  return {
      .op = "HammingWindow", .family = OpFamily::kOther, .cost = cost::not_counted("signal windows are not counted")};
}

KILN_OP_FACTS(HannWindow) {
  return {.op = "HannWindow", .family = OpFamily::kOther, .cost = cost::not_counted("signal windows are not counted")};
}

KILN_OP_FACTS(MelWeightMatrix) {
  return {
      .op = "MelWeightMatrix", .family = OpFamily::kOther, .cost = cost::not_counted("MelWeightMatrix is not counted")};
}

KILN_OP_FACTS(STFT) {
  return {.op = "STFT", .family = OpFamily::kOther, .cost = cost::not_counted("STFT is not counted")};
}

}  // namespace kiln
