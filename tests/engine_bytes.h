// Engine files as bytes, for the tests and the fuzzer: the container of
// src/engine/engine_file.h spelled out again (so that the tests do not trust
// the code they test), split into its sections and packed back with both
// checksums recomputed, as someone crafting a file would.
#pragma once
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace kiln::test {

inline constexpr size_t kEngineHeaderBytes = 64, kEngineEntryBytes = 32, kEnginePage = 4096;
// Header fields: magic at 0, then these.
inline constexpr size_t kEngineVersionAt = 8, kEngineHeaderSizeAt = 12, kEngineFileBytesAt = 16, kEngineCountAt = 24,
                        kEnginePayloadHashAt = 32, kEngineHeaderHashAt = 56;
enum EngineSectionKind : uint32_t { kMetaSection = 1, kGraphSection = 2, kWeightsSection = 3 };

template <typename T>
T get_le(const std::string& f, size_t at) {
  T v;
  std::memcpy(&v, f.data() + at, sizeof v);
  return v;
}

template <typename T>
void put_le(std::string& f, size_t at, T v) {
  std::memcpy(f.data() + at, &v, sizeof v);
}

// The payload checksum (bytes 64.. at 32), then the header's (bytes 0..56 at 56).
inline void fix_engine_checksums(std::string& f) {
  if (f.size() < kEngineHeaderBytes) return;
  put_le<uint64_t>(f, kEnginePayloadHashAt, XXH3_64bits(f.data() + kEngineHeaderBytes, f.size() - kEngineHeaderBytes));
  put_le<uint64_t>(f, kEngineHeaderHashAt, XXH3_64bits(f.data(), kEngineHeaderHashAt));
}

struct EngineSection {
  uint32_t kind = 0;
  std::string bytes;
};

// The sections of `f` in table order; false when its table does not describe
// sections inside the file (the checksums are not looked at).
inline bool engine_sections(const std::string& f, std::vector<EngineSection>* out) {
  out->clear();
  if (f.size() < kEngineHeaderBytes) return false;
  const uint32_t count = get_le<uint32_t>(f, kEngineCountAt);
  if (count > 64 || kEngineHeaderBytes + size_t{count} * kEngineEntryBytes > f.size()) return false;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t entry = kEngineHeaderBytes + size_t{i} * kEngineEntryBytes;
    const uint64_t offset = get_le<uint64_t>(f, entry + 8), bytes = get_le<uint64_t>(f, entry + 16);
    if (offset > f.size() || bytes > f.size() - offset) return false;
    out->push_back({get_le<uint32_t>(f, entry), f.substr(offset, bytes)});
  }
  return true;
}

// A file of these sections laid out as kiln writes one (header, section
// table, each section at a page boundary), both checksums valid.
inline std::string pack_engine(const std::vector<EngineSection>& sections, uint32_t version = 1) {
  std::vector<size_t> offsets;
  size_t end = kEngineHeaderBytes + sections.size() * kEngineEntryBytes;
  for (const EngineSection& s : sections) {
    end = (end + kEnginePage - 1) / kEnginePage * kEnginePage;
    offsets.push_back(end);
    end += s.bytes.size();
  }
  std::string f(end, '\0');
  std::memcpy(f.data(), "KILNENG", 8);  // with its '\0'
  put_le<uint32_t>(f, kEngineVersionAt, version);
  put_le<uint32_t>(f, kEngineHeaderSizeAt, static_cast<uint32_t>(kEngineHeaderBytes));
  put_le<uint64_t>(f, kEngineFileBytesAt, f.size());
  put_le<uint32_t>(f, kEngineCountAt, static_cast<uint32_t>(sections.size()));
  for (size_t i = 0; i < sections.size(); ++i) {
    const size_t entry = kEngineHeaderBytes + i * kEngineEntryBytes;
    put_le<uint32_t>(f, entry, sections[i].kind);
    put_le<uint64_t>(f, entry + 8, offsets[i]);
    put_le<uint64_t>(f, entry + 16, sections[i].bytes.size());
    std::memcpy(f.data() + offsets[i], sections[i].bytes.data(), sections[i].bytes.size());
  }
  fix_engine_checksums(f);
  return f;
}

}  // namespace kiln::test
