// concurrency_check: several threads run one kiln::Session at once; every
// output must be bit-identical to a serial run of the same input.
//
//   concurrency_check MODEL [--workers N] [--runs M] [--threads T] [--inputs K]
//                     [--batch LO..HI] [--engine] [--dim D] [--seed S]
//
// MODEL is an ONNX model or an engine. K input sets are drawn at random
// (float32 in [-1, 1), integers in [0, 4), bools at random); with --batch the
// first dim of every input varies over LO..HI from one set to the next (an
// engine's profile bounds it), so concurrent runs mix batch sizes. Each set
// --engine first builds an engine of an ONNX MODEL with one profile whose
// batch (the first dim of every input) spans LO..HI (opt: HI) and whose
// other symbolic dims are D (default 16), then checks the engine. Each set
// is run serially twice first (the reference, and a check that serial runs
// agree with themselves); then N threads run M times each, thread w taking
// sets w, w+1, ... in turn, and compare every output with the reference.
// Prints one line per model and exits 0 when nothing differed, 2 when
// something did, 1 on an error.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kiln/session.h"

namespace {

using Feed = std::vector<std::pair<std::string, kiln::Tensor>>;

struct Options {
  std::string model;
  int workers = 8, runs = 100, threads = 1, inputs = 4;
  int64_t batch_lo = 0, batch_hi = 0;  // 0: the model's own first dim (or 1 when symbolic)
  unsigned seed = 1;
  bool engine = false;
  int64_t dim = 16;  // other symbolic dims
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "concurrency_check: %s\nusage: concurrency_check MODEL [--workers N] [--runs M] [--threads T] "
               "[--inputs K] [--batch LO..HI] [--engine] [--dim D] [--seed S]\n",
               why);
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--workers")
      o.workers = std::stoi(value());
    else if (a == "--runs")
      o.runs = std::stoi(value());
    else if (a == "--threads")
      o.threads = std::stoi(value());
    else if (a == "--inputs")
      o.inputs = std::stoi(value());
    else if (a == "--seed")
      o.seed = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--engine")
      o.engine = true;
    else if (a == "--dim")
      o.dim = std::stoll(value());
    else if (a == "--batch") {
      const std::string v = value();
      const size_t dots = v.find("..");
      if (dots == std::string::npos)
        o.batch_lo = o.batch_hi = std::stoll(v);
      else {
        o.batch_lo = std::stoll(v.substr(0, dots));
        o.batch_hi = std::stoll(v.substr(dots + 2));
      }
      if (o.batch_lo < 1 || o.batch_hi < o.batch_lo) usage("--batch wants LO..HI with 1 <= LO <= HI");
    } else if (a == "-h" || a == "--help")
      usage("checks that concurrent runs of one session match serial runs");
    else if (!a.empty() && a[0] == '-')
      usage(("unknown option " + a).c_str());
    else if (o.model.empty())
      o.model = a;
    else
      usage("one model only");
  }
  if (o.model.empty()) usage("no model given");
  if (o.workers < 1 || o.runs < 1 || o.inputs < 1 || o.threads < 0 || o.dim < 1) usage("counts must be positive");
  if (o.engine && o.batch_lo < 1) usage("--engine needs --batch LO..HI");
  return o;
}

// The shape of input `info` for one input set: the first dim `batch` when
// batch > 0 (a symbolic one 1 otherwise); other symbolic dims from an
// engine's opt shape, else `dim`.
kiln::Shape shape_for(const kiln::Session& s, const kiln::TensorInfo& info, int64_t batch, int64_t dim) {
  kiln::Shape shape;
  const kiln::Shape* profile_min = nullptr;
  if (s.is_engine() && !s.profiles().empty()) {
    auto it = s.profiles()[0].opt.find(info.name);
    if (it != s.profiles()[0].opt.end()) profile_min = &it->second;
  }
  for (size_t d = 0; d < info.shape.size(); ++d) {
    int64_t size = info.shape[d].size;
    if (size < 0) size = profile_min && d < profile_min->size() ? (*profile_min)[d] : dim;
    if (d == 0 && info.shape[d].size < 0 && batch == 0) size = 1;
    if (d == 0 && batch > 0) size = batch;
    shape.push_back(size);
  }
  return shape;
}

kiln::Tensor random_tensor(kiln::DType dtype, const kiln::Shape& shape, std::mt19937& rng) {
  kiln::Tensor t(dtype, shape);
  const int64_t n = t.numel();
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> small(0, 3);
  switch (dtype) {
    case kiln::DType::kFloat32:
      for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = u(rng);
      break;
    case kiln::DType::kFloat64:
      for (int64_t i = 0; i < n; ++i) t.data<double>()[i] = u(rng);
      break;
    case kiln::DType::kInt64:
      for (int64_t i = 0; i < n; ++i) t.data<int64_t>()[i] = small(rng);
      break;
    case kiln::DType::kInt32:
      for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = small(rng);
      break;
    case kiln::DType::kBool:
      for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = small(rng) & 1;
      break;
    default: throw kiln::Error("input of type " + kiln::dtype_name(dtype) + " is not generated by concurrency_check");
  }
  return t;
}

bool same_bits(const kiln::Tensor& a, const kiln::Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// max |a - b| / max |a| over float32 outputs (0 for other types).
double rel_diff(const kiln::Tensor& ref, const kiln::Tensor& got) {
  if (ref.dtype() != kiln::DType::kFloat32 || ref.shape() != got.shape()) return ref.shape() == got.shape() ? 0 : 1;
  double max_ref = 0, max_diff = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref.data<float>()[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(ref.data<float>()[i]) - got.data<float>()[i]));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

// Builds an engine of the ONNX model with a batch profile LO..HI; returns its path.
std::string build_engine(const Options& o) {
  const kiln::Session onnx = kiln::Session::load(o.model);
  kiln::ShapeProfile profile;
  for (const kiln::TensorInfo& in : onnx.inputs()) {
    if (in.has_default || !in.has_shape || in.shape.empty()) continue;
    kiln::Shape min, max;
    for (size_t d = 0; d < in.shape.size(); ++d) {
      const int64_t size = in.shape[d].size >= 0 ? in.shape[d].size : o.dim;
      min.push_back(d == 0 ? o.batch_lo : size);
      max.push_back(d == 0 ? o.batch_hi : size);
    }
    profile.min[in.name] = min;
    profile.opt[in.name] = max;
    profile.max[in.name] = max;
  }
  kiln::BuildOptions build;
  build.session.threads = o.threads;
  build.profiles = {profile};
  const std::string path = o.model + ".concurrency.kiln";
  kiln::build_engine(o.model, path, build);
  return path;
}

int check(Options o) {
  if (o.engine) o.model = build_engine(o);
  kiln::SessionOptions so;
  so.threads = o.threads;
  const kiln::Session session = kiln::Session::load(o.model, so);
  std::mt19937 rng(o.seed);
  std::vector<Feed> feeds(static_cast<size_t>(o.inputs));
  for (int k = 0; k < o.inputs; ++k) {
    const int64_t batch = o.batch_lo > 0 ? o.batch_lo + k % (o.batch_hi - o.batch_lo + 1) : 0;
    for (const kiln::TensorInfo& in : session.inputs()) {
      if (in.has_default) continue;
      if (!in.has_shape) throw kiln::Error("input " + in.name + " has no known rank");
      feeds[static_cast<size_t>(k)].emplace_back(in.name,
                                                 random_tensor(in.dtype, shape_for(session, in, batch, o.dim), rng));
    }
  }
  // Serial references, each run twice: a model whose serial runs differ
  // (random ops) cannot be checked this way.
  std::vector<std::vector<kiln::Tensor>> refs;
  for (const Feed& feed : feeds) {
    std::vector<kiln::Tensor> out = session.run(feed), again = session.run(feed);
    for (size_t i = 0; i < out.size(); ++i) {
      if (!same_bits(out[i], again[i])) throw kiln::Error("serial runs of output " + std::to_string(i) + " differ");
      out[i] = out[i].clone();
    }
    refs.push_back(std::move(out));
  }
  std::atomic<long> differing{0}, runs{0};
  std::atomic<bool> failed{false};
  std::vector<double> worst(static_cast<size_t>(o.workers), 0.0);
  std::string error;
  std::vector<std::thread> pool;
  for (int w = 0; w < o.workers; ++w) {
    pool.emplace_back([&, w] {
      try {
        for (int r = 0; r < o.runs && !failed; ++r) {
          const size_t k = static_cast<size_t>((w + r) % o.inputs);
          const std::vector<kiln::Tensor> out = session.run(feeds[k]);
          bool differs = out.size() != refs[k].size();
          for (size_t i = 0; !differs && i < out.size(); ++i) {
            if (!same_bits(out[i], refs[k][i])) {
              differs = true;
              worst[static_cast<size_t>(w)] = std::max(worst[static_cast<size_t>(w)], rel_diff(refs[k][i], out[i]));
            }
          }
          differing += differs;
          ++runs;
        }
      } catch (const std::exception& e) {
        if (!failed.exchange(true)) error = e.what();
      }
    });
  }
  for (std::thread& t : pool) t.join();
  if (failed) throw kiln::Error("a concurrent run failed: " + error);
  double max_rel = 0;
  for (double v : worst) max_rel = std::max(max_rel, v);
  std::printf(
      "%s: %d workers x %d runs, session threads %d, batches %lld..%lld: %ld of %ld runs differ "
      "(worst max|diff|/max|ref| %.3g)\n",
      o.model.c_str(), o.workers, o.runs, o.threads, static_cast<long long>(o.batch_lo),
      static_cast<long long>(o.batch_hi), differing.load(), runs.load(), max_rel);
  return differing == 0 ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    return check(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "concurrency_check: %s: %s\n", o.model.c_str(), e.what());
    return 1;
  }
}
