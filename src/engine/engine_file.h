// The container of a .kiln engine file (docs/engine-format.md): a 64-byte
// header, a section table and page-aligned sections, all little-endian.
// Readers check everything before trusting anything: magic, format version,
// header checksum, the file's length, the payload checksum (XXH3-64) and
// that every section lies inside the file. The file is memory-mapped, so
// weights are used in place.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::engine {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 64;
inline constexpr size_t kSectionEntryBytes = 32;
inline constexpr size_t kSectionAlignment = 4096;  // a page: sections can be mapped as they are
inline constexpr size_t kWeightAlignment = 64;     // each weight in the weights section

enum class SectionKind : uint32_t {
  kMeta = 1,     // UTF-8 JSON: versions, CPU features, profiles, plans, packed weights
  kGraph = 2,    // ONNX ModelProto of the optimized graph; weights as external data
  kWeights = 3,  // raw tensor data, each tensor 64-byte aligned
};
const char* section_name(SectionKind kind);

// True when `data` starts with the engine magic (how loaders tell an engine
// from an ONNX model).
bool has_engine_magic(const void* data, size_t size);
bool is_engine_file(const std::string& path);

class EngineWriter {
 public:
  // Appends data to the weights section; returns its offset in that section.
  uint64_t add_weight(const void* data, size_t bytes);
  void set_section(SectionKind kind, std::string bytes);
  // The whole file.
  std::string serialize() const;
  void write(const std::string& path) const;

 private:
  std::string weights_;
  std::vector<std::pair<SectionKind, std::string>> sections_;
};

// A validated engine file, memory-mapped (open) or copied (from_bytes).
class EngineFile {
 public:
  // kiln::Error naming `path` when the file is not a valid engine.
  static std::shared_ptr<const EngineFile> open(const std::string& path);
  static std::shared_ptr<const EngineFile> from_bytes(const void* data, size_t size, const std::string& source);
  ~EngineFile();
  EngineFile(const EngineFile&) = delete;
  EngineFile& operator=(const EngineFile&) = delete;

  const std::string& source() const { return source_; }
  uint32_t format_version() const { return kFormatVersion; }
  size_t file_bytes() const { return size_; }
  bool has_section(SectionKind kind) const;
  // A section's bytes; kiln::Error when the file has none of that kind.
  std::string_view section(SectionKind kind) const;
  struct Section {
    SectionKind kind;
    uint64_t offset, bytes;
  };
  const std::vector<Section>& sections() const { return sections_; }

 private:
  EngineFile() = default;
  void validate();
  std::string source_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::unique_ptr<std::byte[], void (*)(void*)> copy_{nullptr, nullptr};
  std::vector<Section> sections_;
};

}  // namespace kiln::engine
