// kiln's Python extension, kiln._kiln: the public C++ API (include/kiln/)
// for python/kiln/__init__.py, which gives it onnxruntime's
// InferenceSession shape. numpy arrays go in without a copy when they are
// C-contiguous and of the input's type; outputs come back as numpy arrays
// that own kiln's tensors (no copy, nothing borrowed from the session). The
// GIL is released while a model runs, so Python threads run one session in
// parallel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kiln/session.h"
#include "kiln/tensor_diff.h"
#include "kiln/weights.h"

namespace py = pybind11;

namespace kiln::python {

namespace {

// Errors the binding raises itself, mapped to kiln.InvalidArgument and
// kiln.InvalidModel (kiln::Error is kiln.Error, kiln::UnsupportedError
// kiln.UnsupportedOpError).
struct InvalidArgument : Error {
  using Error::Error;
};
struct InvalidModel : Error {
  using Error::Error;
};

// onnxruntime's type strings: "tensor(float)", "tensor(int64)".
std::string ort_type(DType t) { return "tensor(" + dtype_name(t) + ")"; }

// The numpy dtype of a kiln dtype; bfloat16 and strings have none here.
std::optional<py::dtype> numpy_dtype(DType t) {
  switch (t) {
    case DType::kFloat32: return py::dtype("float32");
    case DType::kFloat64: return py::dtype("float64");
    case DType::kFloat16: return py::dtype("float16");
    case DType::kInt8: return py::dtype("int8");
    case DType::kInt16: return py::dtype("int16");
    case DType::kInt32: return py::dtype("int32");
    case DType::kInt64: return py::dtype("int64");
    case DType::kUInt8: return py::dtype("uint8");
    case DType::kUInt16: return py::dtype("uint16");
    case DType::kUInt32: return py::dtype("uint32");
    case DType::kUInt64: return py::dtype("uint64");
    case DType::kBool: return py::dtype("bool");
    default: return std::nullopt;
  }
}

// The kiln dtype of a numpy dtype (kUndefined: none).
DType kiln_dtype(const py::dtype& d) {
  const char kind = d.kind();
  const auto size = d.itemsize();
  if (kind == 'f')
    return size == 4 ? DType::kFloat32 : size == 8 ? DType::kFloat64 : size == 2 ? DType::kFloat16 : DType::kUndefined;
  if (kind == 'i')
    return size == 1   ? DType::kInt8
           : size == 2 ? DType::kInt16
           : size == 4 ? DType::kInt32
           : size == 8 ? DType::kInt64
                       : DType::kUndefined;
  if (kind == 'u')
    return size == 1   ? DType::kUInt8
           : size == 2 ? DType::kUInt16
           : size == 4 ? DType::kUInt32
           : size == 8 ? DType::kUInt64
                       : DType::kUndefined;
  if (kind == 'b' && size == 1) return DType::kBool;
  return DType::kUndefined;
}

std::string numpy_type_name(const py::dtype& d) {
  return py::str(static_cast<const py::handle&>(d)).cast<std::string>();
}

// A numpy array owning `t` (through a capsule that keeps the tensor), no copy.
py::array to_numpy(const Tensor& t, const std::string& what) {
  const std::optional<py::dtype> dt = numpy_dtype(t.dtype());
  if (!dt) throw Error(what + ": " + dtype_name(t.dtype()) + " has no numpy type");
  auto* keep = new Tensor(t);
  py::capsule owner(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  return py::array(*dt, shape, {}, keep->raw(), owner);
}

struct Options {
  SessionOptions session;
  bool cast_inputs = false;  // convert inputs of another numeric type instead of refusing them
};

// The inputs of one run as kiln tensors over the arrays' memory, and the
// arrays that memory belongs to (kept alive until the run is over).
struct Feed {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::vector<py::object> keep;
  std::vector<uintptr_t> addresses;  // the data each tensor reads, for tests
};

class PySession {
 public:
  PySession(const py::object& model, Options options) : options_(std::move(options)) {
    try {
      if (py::isinstance<py::bytes>(model) || py::isinstance<py::bytearray>(model) ||
          py::isinstance<py::memoryview>(model)) {
        bytes_ = py::module_::import("builtins").attr("bytes")(model).cast<std::string>();
        py::gil_scoped_release unlocked;
        session_ = std::make_unique<Session>(Session::load_bytes(bytes_.data(), bytes_.size(), options_.session));
      } else {
        path_ = py::str(py::module_::import("os").attr("fspath")(model)).cast<std::string>();
        py::gil_scoped_release unlocked;
        session_ = std::make_unique<Session>(Session::load(path_, options_.session));
      }
    } catch (const UnsupportedError&) {
      throw;
    } catch (const Error& e) {
      throw InvalidModel(e.what());
    }
  }

  const Session& session() const { return *session_; }
  const Options& options() const { return options_; }

  // The model as bytes: what it was loaded from (a path is read again).
  py::bytes model_bytes() const {
    if (!path_.empty()) {
      std::ifstream f(path_, std::ios::binary);
      if (!f) throw InvalidModel(path_ + ": cannot read the model again");
      std::stringstream s;
      s << f.rdbuf();
      return py::bytes(s.str());
    }
    return py::bytes(bytes_);
  }

  // The feed as kiln tensors: arrays of the input's type used in place when
  // C-contiguous, copied once otherwise; lists and scalars converted to the
  // input's type; another numeric type refused (converted with cast_inputs).
  Feed make_feed(const py::dict& feed) const {
    Feed out;
    const std::vector<TensorInfo>& inputs = session_->inputs();
    for (const auto& [key, value] : feed) {
      const std::string name = py::str(key).cast<std::string>();
      const TensorInfo* info = nullptr;
      for (const TensorInfo& i : inputs)
        if (i.name == name) info = &i;
      if (!info) {
        std::string names;
        for (const TensorInfo& i : inputs)
          if (!i.has_default) names += (names.empty() ? "" : ", ") + i.name;
        throw InvalidArgument("'" + name + "' is not an input of the model (inputs: " + names + ")");
      }
      const std::optional<py::dtype> want = numpy_dtype(info->dtype);
      if (!want) throw InvalidArgument("input '" + name + "': " + ort_type(info->dtype) + " cannot be fed from Python");
      py::object v = py::reinterpret_borrow<py::object>(value);
      py::array a;
      if (py::isinstance<py::array>(v)) {
        a = py::reinterpret_borrow<py::array>(v);
        if (!a.dtype().is(*want) && kiln_dtype(a.dtype()) != info->dtype) {
          if (!options_.cast_inputs || kiln_dtype(a.dtype()) == DType::kUndefined)
            throw InvalidArgument("input '" + name + "': expected " + ort_type(info->dtype) + " (numpy " +
                                  numpy_type_name(*want) + "), got numpy " + numpy_type_name(a.dtype()) +
                                  "; convert it (x.astype(numpy." + numpy_type_name(*want) +
                                  ")) or set SessionOptions.cast_inputs");
          a = a.attr("astype")(*want);
        }
      } else {
        // Python lists and scalars, as onnxruntime takes them.
        a = py::module_::import("numpy").attr("asarray")(v, *want);
      }
      if (!(a.flags() & py::array::c_style)) a = py::module_::import("numpy").attr("ascontiguousarray")(a);
      check_shape(*info, a);
      Shape shape(a.shape(), a.shape() + a.ndim());
      out.addresses.push_back(reinterpret_cast<uintptr_t>(a.data()));
      out.tensors.emplace_back(name, Tensor::wrap(info->dtype, shape, const_cast<void*>(a.data())));
      out.keep.push_back(std::move(a));
    }
    return out;
  }

  py::list run(const std::optional<std::vector<std::string>>& output_names, const py::dict& feed) const {
    std::vector<size_t> wanted = output_indices(output_names);
    Feed f = make_feed(feed);
    std::vector<Tensor> outs;
    {
      py::gil_scoped_release unlocked;
      outs = session_->run(f.tensors);
    }
    py::list result;
    for (size_t i : wanted) result.append(to_numpy(outs[i], "output '" + session_->outputs()[i].name + "'"));
    return result;
  }

 private:
  // Declared dims that are known must match; the rank too when it is known.
  static void check_shape(const TensorInfo& info, const py::array& a) {
    if (!info.has_shape) return;
    const auto rank = static_cast<size_t>(a.ndim());
    std::string got;
    for (size_t k = 0; k < rank; ++k) got += (k ? "x" : "") + std::to_string(a.shape(static_cast<py::ssize_t>(k)));
    if (rank != info.shape.size())
      throw InvalidArgument("input '" + info.name + "': expected rank " + std::to_string(info.shape.size()) + " (" +
                            info.str() + "), got shape " + (got.empty() ? "scalar" : got));
    for (size_t k = 0; k < rank; ++k)
      if (info.shape[k].size >= 0 && info.shape[k].size != a.shape(static_cast<py::ssize_t>(k)))
        throw InvalidArgument("input '" + info.name + "': dim " + std::to_string(k) + " must be " +
                              std::to_string(info.shape[k].size) + " (" + info.str() + "), got shape " + got);
  }

  std::vector<size_t> output_indices(const std::optional<std::vector<std::string>>& names) const {
    const std::vector<TensorInfo>& outputs = session_->outputs();
    std::vector<size_t> idx;
    if (!names || names->empty()) {
      for (size_t i = 0; i < outputs.size(); ++i) idx.push_back(i);
      return idx;
    }
    for (const std::string& n : *names) {
      size_t k = 0;
      while (k < outputs.size() && outputs[k].name != n) ++k;
      if (k == outputs.size()) {
        std::string all;
        for (const TensorInfo& o : outputs) all += (all.empty() ? "" : ", ") + o.name;
        throw InvalidArgument("'" + n + "' is not an output of the model (outputs: " + all + ")");
      }
      idx.push_back(k);
    }
    return idx;
  }

  Options options_;
  std::string path_, bytes_;
  std::unique_ptr<Session> session_;
};

// An input or output as onnxruntime's NodeArg has it: (name, type, shape)
// with ints for known dims, the symbol for named ones, None for unknown.
py::tuple node_arg(const TensorInfo& t) {
  py::object shape = py::none();
  if (t.has_shape) {
    py::list dims;
    for (const TensorDim& d : t.shape) {
      if (d.size >= 0)
        dims.append(d.size);
      else if (!d.symbol.empty())
        dims.append(d.symbol);
      else
        dims.append(py::none());
    }
    shape = dims;
  }
  return py::make_tuple(t.name, ort_type(t.dtype), shape);
}

Shape shape_of(const py::handle& h, const std::string& what) {
  Shape s;
  for (const py::handle& d : h) {
    const int64_t v = d.cast<int64_t>();
    if (v < 0) throw InvalidArgument(what + ": dims must be >= 0");
    s.push_back(v);
  }
  return s;
}

std::map<std::string, Shape> shapes_of(const py::object& o, const std::string& what) {
  std::map<std::string, Shape> out;
  if (o.is_none()) return out;
  for (const auto& [k, v] : o.cast<py::dict>()) {
    const std::string name = py::str(k).cast<std::string>();
    out[name] = shape_of(v, what + " '" + name + "'");
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_kiln, m) {
  m.doc() = "kiln's C++ core; use the kiln package (kiln.InferenceSession).";
  static py::exception<Error> error(m, "Error", PyExc_RuntimeError);
  static py::exception<InvalidModel> invalid_model(m, "InvalidModel", error.ptr());
  static py::exception<InvalidArgument> invalid_argument(m, "InvalidArgument", error.ptr());
  static py::exception<UnsupportedError> unsupported(m, "UnsupportedOpError", invalid_model.ptr());
  // Most specific first (pybind11 tries the translators registered last first).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UnsupportedError& e) {
      unsupported(e.what());
    } catch (const InvalidModel& e) {
      invalid_model(e.what());
    } catch (const InvalidArgument& e) {
      invalid_argument(e.what());
    } catch (const Error& e) {
      error(e.what());
    }
  });

  m.def("version", &version, "kiln's version, e.g. '0.1.0'.");
  m.def("build_info", [] {
    BuildInfo b = build_info();
    return py::dict(py::arg("version") = b.version, py::arg("commit") = b.commit, py::arg("build_type") = b.build_type,
                    py::arg("compiler") = b.compiler, py::arg("isas") = b.isas);
  });

  py::class_<PySession>(m, "Session")
      .def(py::init([](const py::object& model, int threads, int opt_level, const py::object& input_shapes, int profile,
                       bool memory_planner, std::vector<std::string> disabled_passes, bool cast_inputs) {
             Options o;
             o.session.threads = threads;
             if (opt_level < 0 || opt_level > 2) throw InvalidArgument("opt_level must be 0, 1 or 2");
             o.session.opt_level = opt_level;
             o.session.input_shapes = shapes_of(input_shapes, "input_shapes");
             o.session.profile = profile;
             o.session.memory_planner = memory_planner;
             o.session.disabled_passes = std::move(disabled_passes);
             o.cast_inputs = cast_inputs;
             return std::make_unique<PySession>(model, std::move(o));
           }),
           py::arg("model"), py::arg("threads") = 0, py::arg("opt_level") = 2, py::arg("input_shapes") = py::none(),
           py::arg("profile") = -1, py::arg("memory_planner") = true,
           py::arg("disabled_passes") = std::vector<std::string>{}, py::arg("cast_inputs") = false)
      .def("run", &PySession::run, py::arg("output_names"), py::arg("feed"))
      .def("inputs",
           [](const PySession& s) {
             py::list l;
             for (const TensorInfo& t : s.session().inputs())
               if (!t.has_default) l.append(node_arg(t));
             return l;
           })
      .def("outputs",
           [](const PySession& s) {
             py::list l;
             for (const TensorInfo& t : s.session().outputs()) l.append(node_arg(t));
             return l;
           })
      .def("producer", [](const PySession& s) { return s.session().producer(); })
      .def("ir_version", [](const PySession& s) { return s.session().ir_version(); })
      .def("opsets", [](const PySession& s) { return s.session().opsets(); })
      .def("is_engine", [](const PySession& s) { return s.session().is_engine(); })
      .def("profiles",
           [](const PySession& s) {
             py::list l;
             for (const ShapeProfile& p : s.session().profiles()) l.append(p.str());
             return l;
           })
      .def("model_bytes", &PySession::model_bytes)
      // The C++ API's own time per run (Session::run on tensors made once),
      // for bench/python_overhead: what session.run adds is measured against it.
      .def("_time_cpp_runs",
           [](const PySession& s, const py::dict& feed, int runs) {
             Feed f = s.make_feed(feed);
             std::vector<double> seconds;
             py::gil_scoped_release unlocked;
             for (int i = 0; i < runs; ++i) {
               const auto t0 = std::chrono::steady_clock::now();
               s.session().run(f.tensors);
               seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
             }
             return seconds;
           })
      .def("_feed_addresses", [](const PySession& s, const py::dict& feed) { return s.make_feed(feed).addresses; });

  m.def(
      "build_engine",
      [](const std::string& onnx_path, const std::string& engine_path, const py::object& shapes,
         const py::object& min_shapes, const py::object& opt_shapes, const py::object& max_shapes, int threads,
         int opt_level, bool time_tactics, const std::string& timing_cache) {
        BuildOptions o;
        o.session.threads = threads;
        o.session.opt_level = opt_level;
        o.session.input_shapes = shapes_of(shapes, "shapes");
        o.time_tactics = time_tactics;
        o.timing_cache = timing_cache;
        if (!min_shapes.is_none() || !opt_shapes.is_none() || !max_shapes.is_none()) {
          ShapeProfile p;
          p.min = shapes_of(min_shapes, "min_shapes");
          p.opt = shapes_of(opt_shapes, "opt_shapes");
          p.max = shapes_of(max_shapes, "max_shapes");
          if (p.min.empty() || p.max.empty())
            throw InvalidArgument("a profile needs min_shapes and max_shapes (opt_shapes defaults to max_shapes)");
          if (p.opt.empty()) p.opt = p.max;
          o.profiles.push_back(std::move(p));
        }
        BuildReport r;
        {
          py::gil_scoped_release unlocked;
          r = build_engine(onnx_path, engine_path, o);
        }
        return py::dict(py::arg("engine_bytes") = r.engine_bytes, py::arg("weight_bytes") = r.weight_bytes,
                        py::arg("packed_bytes") = r.packed_bytes, py::arg("nodes") = r.nodes,
                        py::arg("seconds") = r.seconds, py::arg("arena_bytes") = r.arena_bytes,
                        py::arg("tactics_timed") = r.tactics_timed, py::arg("tactics_cached") = r.tactics_cached);
      },
      py::arg("onnx_path"), py::arg("engine_path"), py::arg("shapes") = py::none(), py::arg("min_shapes") = py::none(),
      py::arg("opt_shapes") = py::none(), py::arg("max_shapes") = py::none(), py::arg("threads") = 0,
      py::arg("opt_level") = 2, py::arg("time_tactics") = true, py::arg("timing_cache") = "");

  m.def(
      "diff",
      [](const py::array& got, const py::array& want, double rtol, const std::optional<double>& atol) {
        // Views over the arrays (C order); numpy has converted other layouts.
        auto tensor = [](const py::array& a, const char* what) {
          const DType t = kiln_dtype(a.dtype());
          if (t == DType::kUndefined)
            throw InvalidArgument(std::string(what) + ": numpy " + numpy_type_name(a.dtype()) +
                                  " is not a type kiln compares");
          py::array c = py::module_::import("numpy").attr("ascontiguousarray")(a);
          return std::make_pair(Tensor::wrap(t, Shape(c.shape(), c.shape() + c.ndim()), const_cast<void*>(c.data())),
                                c);
        };
        auto [g, keep_g] = tensor(got, "got");
        auto [w, keep_w] = tensor(want, "want");
        const TensorDiff d = diff_tensors(g, w, rtol, atol ? *atol : rtol * max_magnitude(w));
        return py::dict(py::arg("passed") = d.pass, py::arg("mismatch") = d.mismatch, py::arg("elements") = d.elements,
                        py::arg("failing") = d.failing, py::arg("worst_index") = d.worst_index,
                        py::arg("max_abs") = d.max_abs, py::arg("max_rel") = d.max_rel, py::arg("rel_l2") = d.rel_l2,
                        py::arg("cosine") = d.cosine);
      },
      py::arg("got"), py::arg("want"), py::arg("rtol") = 1e-3, py::arg("atol") = py::none());

  m.def(
      "inspect_json",
      [](const std::string& path, const py::object& input_shapes, bool optimized) {
        const auto shapes = shapes_of(input_shapes, "input_shapes");
        py::gil_scoped_release unlocked;
        return inspect_json(path, shapes, optimized);
      },
      py::arg("path"), py::arg("input_shapes") = py::none(), py::arg("optimized") = false);

  m.def(
      "load_weights",
      [](const std::string& path) {
        WeightMap w;
        {
          py::gil_scoped_release unlocked;
          w = load_weights(path);
        }
        py::dict out;
        for (const NamedTensor& t : w.tensors) {
          // numpy has no bfloat16: such tensors come back as float32.
          const Tensor& src = t.tensor.dtype() == DType::kBFloat16 ? weights_to_float32(t.tensor) : t.tensor;
          out[py::str(t.name)] = to_numpy(src, path + ": '" + t.name + "'");
        }
        return out;
      },
      py::arg("path"));
}

}  // namespace kiln::python
