// TensorProto <-> Tensor, including external data.
#include "onnx/tensor_proto.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "core/file.h"
#include "kiln/error.h"

namespace kiln {

namespace fs = std::filesystem;

namespace {

template <typename Src, typename Dst>
void copy_typed(const google::protobuf::RepeatedField<Src>& src, Tensor& t, const std::string& what) {
  if (src.size() != t.numel())
    throw Error(what + ": has " + std::to_string(src.size()) + " values but its shape " + shape_str(t.shape()) +
                " needs " + std::to_string(t.numel()));
  Dst* dst = t.data<Dst>();
  for (int i = 0; i < src.size(); ++i) dst[i] = static_cast<Dst>(src.Get(i));
}

// Resolves an external-data location under base_dir, refusing anything that
// could read outside it: absolute paths, "..", and symlinks pointing out.
std::string resolve_external_path(const std::string& location, const std::string& base_dir, const std::string& what) {
  if (base_dir.empty())
    throw Error(what + ": uses external data ('" + location +
                "') but the model was not loaded from a regular file (bytes, a pipe or a device), so there is no "
                "folder to read it from");
  fs::path loc(location);
  if (location.empty()) throw Error(what + ": external data has an empty location");
  if (loc.is_absolute())
    throw Error(what + ": external data location '" + location +
                "' is an absolute path; only paths inside the model's folder are allowed");
  for (const auto& part : loc)
    if (part == "..") throw Error(what + ": external data location '" + location + "' escapes the model's folder");
  std::error_code ec;
  fs::path base = fs::canonical(base_dir, ec);
  if (ec) throw Error(what + ": cannot resolve model folder '" + base_dir + "'");
  fs::path full = fs::weakly_canonical(base / loc, ec);
  if (ec) throw Error(what + ": cannot resolve external data file '" + location + "'");
  auto rel = full.lexically_relative(base);
  if (rel.empty() || *rel.begin() == "..")
    throw Error(what + ": external data location '" + location + "' resolves outside the model's folder (symlink?)");
  return full.string();
}

// The location/offset/length keys of an EXTERNAL tensor; length is -1 when
// the file gives none. Offset and length are checked so that their sum
// cannot overflow.
ExternalRef parse_external_ref(const onnx::TensorProto& p, const std::string& what) {
  ExternalRef ref;
  ref.length = -1;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      ref.location = kv.value();
    } else if (kv.key() == "offset" || kv.key() == "length") {
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(kv.value().c_str(), &end, 10);
      if (errno || !end || *end || v < 0)
        throw Error(what + ": external data " + kv.key() + " '" + kv.value() + "' is not a valid number");
      (kv.key() == "offset" ? ref.offset : ref.length) = v;
    }
  }
  if (ref.length > 0 && ref.offset > INT64_MAX - ref.length)
    throw Error(what + ": external data offset " + std::to_string(ref.offset) + " + length " +
                std::to_string(ref.length) + " overflows");
  return ref;
}

void check_external_length(const ExternalRef& ref, int64_t need, const Shape& shape, const std::string& what) {
  if (ref.length >= 0 && ref.length != need)
    throw Error(what + ": external data length " + std::to_string(ref.length) + " does not match its shape " +
                shape_str(shape) + " (" + std::to_string(need) + " bytes)");
}

void read_external(const ExternalRef& ref, Tensor& t, const std::string& base_dir, const std::string& what) {
  std::string path = resolve_external_path(ref.location, base_dir, what);
  int64_t need = static_cast<int64_t>(t.nbytes());
  check_external_length(ref, need, t.shape(), what);
  // O_NONBLOCK: opening a FIFO must not wait for a writer; anything but a
  // regular file (FIFO, device, socket) is refused before reading.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw Error(what + ": cannot open external data file '" + path + "' (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(what + ": external data file '" + path + "' is not a regular file");
  }
  const int64_t size = static_cast<int64_t>(st.st_size);
  if (ref.offset > size || need > size - ref.offset) {
    ::close(fd);
    throw Error(what + ": external data file '" + path + "' is too short (" + std::to_string(size) +
                " bytes) for offset " + std::to_string(ref.offset) + " + " + std::to_string(need) + " bytes");
  }
  char* dst = static_cast<char*>(t.raw());
  int64_t done = 0;
  while (done < need) {
    ssize_t got = ::pread(fd, dst + done, static_cast<size_t>(need - done), static_cast<off_t>(ref.offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      ::close(fd);
      throw Error(what + ": reading external data file '" + path + "' failed");
    }
    done += got;
  }
  ::close(fd);
}

// Asks the caller's resolver for the tensor instead of reading a file, and
// checks that what comes back is the tensor the proto declares.
Tensor resolve_external(const onnx::TensorProto& p, ExternalRef ref, DType dtype, const Shape& shape, int64_t numel,
                        const ExternalResolver& resolver, const std::string& what) {
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
  if (numel > INT64_MAX / elem) throw Error(what + ": shape " + shape_str(shape) + " overflows the byte size");
  check_external_length(ref, numel * elem, shape, what);
  ref.length = numel * elem;
  Tensor t;
  try {
    t = resolver(ref, dtype, shape, p.name());
  } catch (const std::exception& e) {
    throw Error(what + ": external data '" + ref.location + "': " + e.what());
  }
  if (t.dtype() != dtype || t.shape() != shape)
    throw Error(what + ": the external data resolver returned " + dtype_name(t.dtype()) + "[" + shape_str(t.shape()) +
                "] for a tensor of " + dtype_name(dtype) + "[" + shape_str(shape) + "]");
  return t;
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir, const std::string& what_in,
                         const ExternalResolver* resolver) {
  std::string what = what_in.empty() ? "tensor '" + p.name() + "'" : what_in;
  if (!dtype_is_supported(p.data_type()))
    throw Error(what + ": element type " + std::to_string(p.data_type()) + " is not supported");
  DType dtype = static_cast<DType>(p.data_type());
  Shape shape(p.dims().begin(), p.dims().end());
  for (int64_t d : shape)
    if (d < 0) throw Error(what + ": negative dimension in shape");
  int64_t numel = 0;
  try {
    numel = shape_numel(shape);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  if (p.has_data_location() && p.data_location() == onnx::TensorProto::EXTERNAL) {
    if (dtype == DType::kString) throw Error(what + ": string tensors cannot use external data");
    ExternalRef ref = parse_external_ref(p, what);
    if (resolver) return resolve_external(p, std::move(ref), dtype, shape, numel, *resolver, what);
    Tensor t(dtype, shape);
    read_external(ref, t, base_dir, what);
    return t;
  }
  if (dtype == DType::kString) {
    if (p.string_data_size() != numel)
      throw Error(what + ": has " + std::to_string(p.string_data_size()) + " strings but its shape " +
                  shape_str(shape) + " needs " + std::to_string(numel));
    return Tensor::from_strings(shape, {p.string_data().begin(), p.string_data().end()});
  }
  // Check the data length before allocating, so a tiny corrupt file cannot
  // make us allocate a huge tensor.
  size_t elem = dtype_size(dtype);
  if (p.has_raw_data()) {
    if (static_cast<uint64_t>(numel) * elem != p.raw_data().size())
      throw Error(what + ": raw_data has " + std::to_string(p.raw_data().size()) + " bytes but its shape " +
                  shape_str(shape) + " of " + dtype_name(dtype) + " needs " +
                  std::to_string(static_cast<uint64_t>(numel) * elem));
    Tensor t(dtype, shape);
    if (numel) std::memcpy(t.raw(), p.raw_data().data(), p.raw_data().size());
    return t;
  }
  int64_t available = 0;
  switch (dtype) {
    case DType::kFloat32: available = p.float_data_size(); break;
    case DType::kFloat64: available = p.double_data_size(); break;
    case DType::kInt64: available = p.int64_data_size(); break;
    case DType::kUInt32:
    case DType::kUInt64: available = p.uint64_data_size(); break;
    default: available = p.int32_data_size(); break;
  }
  if (available != numel)
    throw Error(what + ": has " + std::to_string(available) + " values but its shape " + shape_str(shape) + " needs " +
                std::to_string(numel));
  Tensor t(dtype, shape);
  switch (dtype) {
    case DType::kFloat32: copy_typed<float, float>(p.float_data(), t, what); break;
    case DType::kFloat64: copy_typed<double, double>(p.double_data(), t, what); break;
    case DType::kInt64: copy_typed<int64_t, int64_t>(p.int64_data(), t, what); break;
    case DType::kUInt32: copy_typed<uint64_t, uint32_t>(p.uint64_data(), t, what); break;
    case DType::kUInt64: copy_typed<uint64_t, uint64_t>(p.uint64_data(), t, what); break;
    case DType::kInt32: copy_typed<int32_t, int32_t>(p.int32_data(), t, what); break;
    case DType::kInt16: copy_typed<int32_t, int16_t>(p.int32_data(), t, what); break;
    case DType::kInt8: copy_typed<int32_t, int8_t>(p.int32_data(), t, what); break;
    case DType::kUInt16:
    case DType::kFloat16:
    case DType::kBFloat16: copy_typed<int32_t, uint16_t>(p.int32_data(), t, what); break;
    case DType::kUInt8: copy_typed<int32_t, uint8_t>(p.int32_data(), t, what); break;
    case DType::kBool: copy_typed<int32_t, bool>(p.int32_data(), t, what); break;
    default: throw Error(what + ": unsupported element type");
  }
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(static_cast<int>(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  if (t.dtype() == DType::kString) {
    for (int64_t i = 0; i < t.numel(); ++i) p->add_string_data(t.data<std::string>()[i]);
  } else {
    p->set_raw_data(t.raw(), t.nbytes());
  }
}

Tensor parse_tensor_pb(const void* data, size_t size, const std::string& what, std::string* name) {
  if (size > static_cast<size_t>(INT_MAX)) throw Error(what + ": file larger than 2 GB");
  onnx::TensorProto p;
  if (!p.ParseFromArray(data, static_cast<int>(size)))
    throw Error(what + ": not a valid TensorProto (protobuf parse failed)");
  if (name) *name = p.name();
  return tensor_from_proto(p, "", what);
}

Tensor load_tensor_pb(const std::string& path, std::string* name) {
  std::string bytes = read_file(path);
  return parse_tensor_pb(bytes.data(), bytes.size(), path, name);
}

Tensor load_tensor_pb(const std::string& path) { return load_tensor_pb(path, nullptr); }

void save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path) {
  onnx::TensorProto p;
  tensor_to_proto(t, name, &p);
  std::string bytes;
  p.SerializeToString(&bytes);
  write_file(path, bytes);
}

}  // namespace kiln
