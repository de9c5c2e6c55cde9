// libFuzzer target over engine files (src/engine/): any byte string must
// either load through Session::load_bytes (and then run once on zero inputs
// of its first profile's min shapes) or throw kiln::Error. A crash, hang,
// leak, sanitizer report or giant allocation is a bug.
//
// Nearly every mutation of an engine breaks a checksum, which the loader
// checks before anything else. So the custom mutator mostly mutates one
// section (the metadata most often, then the graph, then the weights), lays
// the file out again and recomputes both checksums, as someone crafting a
// file would: the inputs reach the parsers behind the checksums, and the
// inputs libFuzzer saves reproduce as they are. One mutation in eight is of
// the whole file with its checksums recomputed (the header and section
// table), one in eight of the whole file as it is (the checksum checks
// themselves); KILN_FUZZ_RAW=1 makes every mutation a plain one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>

#include "engine_bytes.h"
#include "kiln/error.h"
#include "kiln/session.h"
#include "load_and_run.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using kiln::test::EngineSection;

// Mutates section `s` of `sections` in place; the packed file, or "" when
// it would not fit in max_size.
std::string mutate_section(std::vector<EngineSection>& sections, size_t s, uint32_t version, size_t max_size) {
  std::string& bytes = sections[s].bytes;
  const size_t size = bytes.size();
  bytes.resize(size + 4096);  // room to grow
  bytes.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(bytes.data()), size, bytes.size()));
  std::string file = kiln::test::pack_engine(sections, version);
  return file.size() <= max_size ? file : "";
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  static const bool raw = std::getenv("KILN_FUZZ_RAW") && std::strcmp(std::getenv("KILN_FUZZ_RAW"), "1") == 0;
  std::minstd_rand rng(seed);
  const unsigned pick = rng() % 8;
  std::string file(reinterpret_cast<const char*>(data), size);
  std::vector<EngineSection> sections;
  if (!raw && pick >= 2 && kiln::test::engine_sections(file, &sections) && !sections.empty()) {
    // Weights 1 in 6, graph 2 in 6, metadata 3 in 6 (by kind when present).
    const unsigned roll = rng() % 6;
    const uint32_t want = roll == 0   ? kiln::test::kWeightsSection
                          : roll <= 2 ? kiln::test::kGraphSection
                                      : kiln::test::kMetaSection;
    size_t s = rng() % sections.size();
    for (size_t i = 0; i < sections.size(); ++i)
      if (sections[i].kind == want) s = i;
    if (!sections[s].bytes.empty()) {
      const std::string packed =
          mutate_section(sections, s, kiln::test::get_le<uint32_t>(file, kiln::test::kEngineVersionAt), max_size);
      if (!packed.empty()) {
        std::memcpy(data, packed.data(), packed.size());
        return packed.size();
      }
    }
  }
  size_t n = LLVMFuzzerMutate(data, size, max_size);
  if (!raw && pick == 1 && n >= kiln::test::kEngineHeaderBytes) {
    file.assign(reinterpret_cast<const char*>(data), n);
    kiln::test::fix_engine_checksums(file);
    std::memcpy(data, file.data(), n);
  }
  return n;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return load_and_run(data, size); }
