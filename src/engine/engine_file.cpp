#include "engine/engine_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/file.h"
#include "kiln/error.h"

namespace kiln::engine {

namespace {

// Header field offsets (docs/engine-format.md).
constexpr size_t kVersionAt = 8, kHeaderBytesAt = 12, kFileBytesAt = 16, kSectionCountAt = 24, kPayloadHashAt = 32,
                 kHeaderHashAt = 56;
constexpr uint32_t kMaxSections = 64;

template <typename T>
T get(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // little-endian hosts only (x86-64, AArch64)
  return v;
}
template <typename T>
void put(std::string& s, size_t at, T v) {
  std::memcpy(s.data() + at, &v, sizeof v);
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

std::string hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

const char* section_name(SectionKind kind) {
  switch (kind) {
    case SectionKind::kMeta: return "meta";
    case SectionKind::kGraph: return "graph";
    case SectionKind::kWeights: return "weights";
  }
  return "unknown";
}

bool has_engine_magic(const void* data, size_t size) {
  return size >= sizeof kMagic && std::memcmp(data, kMagic, sizeof kMagic) == 0;
}

bool is_engine_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char buf[sizeof kMagic];
  return f.read(buf, sizeof buf) && has_engine_magic(buf, sizeof buf);
}

// ---- writing ------------------------------------------------------------------

uint64_t EngineWriter::add_weight(const void* data, size_t bytes) {
  const size_t at = align_up(weights_.size(), kWeightAlignment);
  weights_.resize(at);
  weights_.append(static_cast<const char*>(data), bytes);
  return at;
}

void EngineWriter::set_section(SectionKind kind, std::string bytes) {
  if (kind == SectionKind::kWeights) throw Error("the weights section is written through add_weight");
  for (auto& s : sections_)
    if (s.first == kind) {
      s.second = std::move(bytes);
      return;
    }
  sections_.emplace_back(kind, std::move(bytes));
}

std::string EngineWriter::serialize() const {
  std::vector<std::pair<SectionKind, const std::string*>> all;
  for (const auto& s : sections_) all.emplace_back(s.first, &s.second);
  all.emplace_back(SectionKind::kWeights, &weights_);
  const size_t table_end = kHeaderBytes + all.size() * kSectionEntryBytes;
  std::vector<uint64_t> offsets;
  size_t end = table_end;
  for (const auto& s : all) {
    end = align_up(end, kSectionAlignment);
    offsets.push_back(end);
    end += s.second->size();
  }
  std::string file(end, '\0');
  std::memcpy(file.data(), kMagic, sizeof kMagic);
  put<uint32_t>(file, kVersionAt, kFormatVersion);
  put<uint32_t>(file, kHeaderBytesAt, static_cast<uint32_t>(kHeaderBytes));
  put<uint64_t>(file, kFileBytesAt, file.size());
  put<uint32_t>(file, kSectionCountAt, static_cast<uint32_t>(all.size()));
  for (size_t i = 0; i < all.size(); ++i) {
    const size_t at = kHeaderBytes + i * kSectionEntryBytes;
    put<uint32_t>(file, at, static_cast<uint32_t>(all[i].first));
    put<uint64_t>(file, at + 8, offsets[i]);
    put<uint64_t>(file, at + 16, all[i].second->size());
    std::memcpy(file.data() + offsets[i], all[i].second->data(), all[i].second->size());
  }
  put<uint64_t>(file, kPayloadHashAt, XXH3_64bits(file.data() + kHeaderBytes, file.size() - kHeaderBytes));
  put<uint64_t>(file, kHeaderHashAt, XXH3_64bits(file.data(), kHeaderHashAt));
  return file;
}

void EngineWriter::write(const std::string& path) const { write_file(path, serialize()); }

// ---- reading ------------------------------------------------------------------

EngineFile::~EngineFile() {
  if (mapped_) munmap(const_cast<std::byte*>(data_), size_);
}

std::shared_ptr<const EngineFile> EngineFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::shared_ptr<EngineFile> f(new EngineFile());
  f->source_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    // MAP_POPULATE: the checksum reads every page anyway; one bulk fault is
    // much cheaper than one per page.
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(path + ": cannot map (" + std::strerror(errno) + ")");
    }
    f->data_ = static_cast<const std::byte*>(p);
    f->mapped_ = true;
  }
  ::close(fd);
  f->validate();
  return f;
}

std::shared_ptr<const EngineFile> EngineFile::from_bytes(const void* data, size_t size, const std::string& source) {
  std::shared_ptr<EngineFile> f(new EngineFile());
  f->source_ = source;
  f->size_ = size;
  // A page-aligned copy: weights are used in place, at the alignment they
  // were written with.
  void* p = size ? std::aligned_alloc(kSectionAlignment, align_up(size, kSectionAlignment)) : nullptr;
  if (size && !p) throw Error(source + ": out of memory copying " + std::to_string(size) + " bytes");
  if (size) std::memcpy(p, data, size);
  f->copy_ = std::unique_ptr<std::byte[], void (*)(void*)>(static_cast<std::byte*>(p), std::free);
  f->data_ = f->copy_.get();
  f->validate();
  return f;
}

void EngineFile::validate() {
  const std::string& src = source_;
  if (size_ < sizeof kMagic || !has_engine_magic(data_, size_))
    throw Error(src + ": not a kiln engine (no KILNENG magic at the start)");
  if (size_ < kHeaderBytes)
    throw Error(src + ": truncated engine: " + std::to_string(size_) + " bytes, shorter than its " +
                std::to_string(kHeaderBytes) + "-byte header");
  const uint32_t version = get<uint32_t>(data_ + kVersionAt);
  if (version != kFormatVersion)
    throw Error(src + ": engine format version " + std::to_string(version) + ", but this kiln (" + KILN_VERSION +
                ") reads version " + std::to_string(kFormatVersion) + " only; rebuild the engine with this kiln");
  const uint64_t header_hash = XXH3_64bits(data_, kHeaderHashAt);
  if (get<uint64_t>(data_ + kHeaderHashAt) != header_hash)
    throw Error(src + ": corrupted engine: header checksum mismatch");
  if (get<uint32_t>(data_ + kHeaderBytesAt) != kHeaderBytes)
    throw Error(src + ": corrupted engine: header size " + std::to_string(get<uint32_t>(data_ + kHeaderBytesAt)));
  const uint64_t file_bytes = get<uint64_t>(data_ + kFileBytesAt);
  if (file_bytes != size_)
    throw Error(src + (size_ < file_bytes ? ": truncated engine: " : ": engine has trailing data: ") +
                std::to_string(size_) + " bytes, its header says " + std::to_string(file_bytes));
  const uint64_t payload_hash = XXH3_64bits(data_ + kHeaderBytes, size_ - kHeaderBytes);
  if (get<uint64_t>(data_ + kPayloadHashAt) != payload_hash)
    throw Error(src + ": corrupted engine: payload checksum " + hex(payload_hash) + " does not match the header's " +
                hex(get<uint64_t>(data_ + kPayloadHashAt)));
  // The checksums make the rest a formality for honest files; a crafted one
  // (with recomputed checksums) must still fail cleanly.
  const uint32_t count = get<uint32_t>(data_ + kSectionCountAt);
  const size_t table_end = kHeaderBytes + size_t{count} * kSectionEntryBytes;  // no overflow: count < 2^32
  if (count > kMaxSections || table_end > size_)
    throw Error(src + ": corrupted engine: section table of " + std::to_string(count) + " entries");
  for (uint32_t i = 0; i < count; ++i) {
    const std::byte* e = data_ + kHeaderBytes + size_t{i} * kSectionEntryBytes;
    Section s{static_cast<SectionKind>(get<uint32_t>(e)), get<uint64_t>(e + 8), get<uint64_t>(e + 16)};
    if (s.offset > size_ || s.bytes > size_ - s.offset || s.offset % kSectionAlignment != 0)
      throw Error(src + ": corrupted engine: section " + std::to_string(i) + " (" + section_name(s.kind) +
                  ") lies outside the file");
    if (s.offset < table_end)
      throw Error(src + ": corrupted engine: section " + std::to_string(i) + " (" + section_name(s.kind) +
                  ") overlaps the header or the section table");
    if (has_section(s.kind))
      throw Error(src + ": corrupted engine: two " + std::string(section_name(s.kind)) + " sections");
    sections_.push_back(s);
  }
  for (SectionKind k : {SectionKind::kMeta, SectionKind::kGraph, SectionKind::kWeights})
    if (!has_section(k)) throw Error(src + ": corrupted engine: no " + section_name(k) + " section");
}

bool EngineFile::has_section(SectionKind kind) const {
  for (const Section& s : sections_)
    if (s.kind == kind) return true;
  return false;
}

std::string_view EngineFile::section(SectionKind kind) const {
  for (const Section& s : sections_)
    if (s.kind == kind) return {reinterpret_cast<const char*>(data_ + s.offset), static_cast<size_t>(s.bytes)};
  throw Error(source_ + ": engine has no " + section_name(kind) + " section");
}

}  // namespace kiln::engine
