// Zip archives as torch.save writes them (PKWARE APPNOTE 6.3, the parts used):
//
//   [local header 30 B + name + extra][data] ...   one per entry; torch pads
//                                                   the extra field so data
//                                                   starts 64-byte aligned
//   [central directory: one 46-byte header + name + extra + comment per entry]
//   [zip64 end record 56 B][zip64 locator 20 B]    only when a count, size or
//                                                   offset overflows 16/32 bits
//   [end of central directory 22 B + comment]
//
// All integers are little-endian. A field of the 32-bit records that reads
// 0xFFFFFFFF (0xFFFF for counts) means "see zip64": the end record's in the
// zip64 end record, an entry's in its extra field 0x0001 (uncompressed size,
// compressed size, local header offset, in that order, each present only when
// its 32-bit field overflowed).
//
// Why our own reader rather than libzip or minizip: torch writes stored
// entries only, so a reader needs no inflate, and the ~150 lines below work on
// a buffer in memory (the fuzzer's input) and check each offset against it;
// a library would add a build dependency for the same. CRCs are not verified:
// safety comes from the bounds checks, and hashing a multi-gigabyte checkpoint
// would cost more than reading it.
#include "weights/zip.h"

#include <cstring>
#include <set>

#include "kiln/error.h"

namespace kiln::weights {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22, kZip64LocatorSize = 20, kZip64EndSize = 56;
constexpr size_t kCentralHeaderSize = 46, kLocalHeaderSize = 30;

// Little-endian reads at a position the caller has bounds-checked.
uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Reader {
  std::span<const uint8_t> bytes;
  const std::string& label;

  [[noreturn]] void fail(const std::string& what) const { throw Error(label + ": bad zip archive: " + what); }
  // True when [offset, offset + n) lies inside the buffer (no overflow).
  bool fits(uint64_t offset, uint64_t n) const { return offset <= bytes.size() && n <= bytes.size() - offset; }
  const uint8_t* at(uint64_t offset, uint64_t n, const char* what) const {
    if (!fits(offset, n))
      fail(std::string(what) + " at offset " + std::to_string(offset) + " (" + std::to_string(n) +
           " bytes) runs past the end of the file (" + std::to_string(bytes.size()) + " bytes)");
    return bytes.data() + offset;
  }
};

struct Directory {
  uint64_t entries = 0, size = 0, offset = 0;
};

// The end of central directory record: the last "PK\5\6" whose comment ends
// exactly at the end of the file.
size_t find_end_record(const Reader& r) {
  if (r.bytes.size() < kEndSize) r.fail("file too short for an end of central directory record");
  size_t last = r.bytes.size() - kEndSize;
  size_t first = last > 0xffff ? last - 0xffff : 0;
  for (size_t pos = last + 1; pos-- > first;) {
    const uint8_t* p = r.bytes.data() + pos;
    if (le(p, 4) == kEndSig && pos + kEndSize + le(p + 20, 2) == r.bytes.size()) return pos;
  }
  r.fail("no end of central directory record (truncated file?)");
}

Directory read_directory(const Reader& r) {
  size_t end = find_end_record(r);
  const uint8_t* e = r.bytes.data() + end;
  if (le(e + 4, 2) != 0 || le(e + 6, 2) != 0) r.fail("multi-disk archives are not supported");
  Directory d{le(e + 10, 2), le(e + 12, 4), le(e + 16, 4)};
  if (d.entries != 0xffff && d.size != 0xffffffff && d.offset != 0xffffffff) return d;
  // zip64: the locator sits just before the end record and points at the zip64 end record.
  if (end < kZip64LocatorSize) r.fail("zip64 fields without a zip64 locator");
  const uint8_t* loc = r.at(end - kZip64LocatorSize, kZip64LocatorSize, "zip64 locator");
  if (le(loc, 4) != kZip64LocatorSig) r.fail("zip64 fields without a zip64 locator");
  uint64_t z = le(loc + 8, 8);
  const uint8_t* z64 = r.at(z, kZip64EndSize, "zip64 end record");
  if (le(z64, 4) != kZip64EndSig) r.fail("bad zip64 end record signature at offset " + std::to_string(z));
  return {le(z64 + 32, 8), le(z64 + 40, 8), le(z64 + 48, 8)};
}

// Replaces the 32-bit fields that overflowed with their zip64 extra values.
void apply_zip64_extra(const Reader& r, const uint8_t* extra, size_t extra_len, uint64_t& usize, uint64_t& csize,
                       uint64_t& offset, const std::string& name) {
  size_t pos = 0;
  while (pos + 4 <= extra_len) {
    uint64_t id = le(extra + pos, 2), len = le(extra + pos + 2, 2);
    if (pos + 4 + len > extra_len) break;
    if (id == 0x0001) {
      const uint8_t* f = extra + pos + 4;
      size_t used = 0;
      for (uint64_t* field : {&usize, &csize, &offset}) {
        if (*field != 0xffffffff) continue;
        if (used + 8 > len) r.fail("entry '" + name + "': zip64 extra field too short");
        *field = le(f + used, 8);
        used += 8;
      }
      return;
    }
    pos += 4 + len;
  }
  if (usize == 0xffffffff || csize == 0xffffffff || offset == 0xffffffff)
    r.fail("entry '" + name + "': zip64 sizes without a zip64 extra field");
}

}  // namespace

std::vector<ZipEntry> read_zip(std::span<const uint8_t> bytes, const std::string& label) {
  Reader r{bytes, label};
  Directory d = read_directory(r);
  const uint8_t* dir = r.at(d.offset, d.size, "central directory");
  // Every header takes at least 46 bytes, which bounds the count we trust.
  if (d.entries > d.size / kCentralHeaderSize)
    r.fail("central directory of " + std::to_string(d.size) + " bytes cannot hold " + std::to_string(d.entries) +
           " entries");
  std::vector<ZipEntry> entries;
  entries.reserve(d.entries);
  std::set<std::string> seen;
  size_t pos = 0;
  for (uint64_t i = 0; i < d.entries; ++i) {
    if (d.size - pos < kCentralHeaderSize) r.fail("central directory ends inside entry " + std::to_string(i));
    const uint8_t* h = dir + pos;
    if (le(h, 4) != kCentralHeaderSig)
      r.fail("bad central directory header signature at offset " + std::to_string(d.offset + pos));
    uint64_t flags = le(h + 8, 2), method = le(h + 10, 2);
    uint64_t csize = le(h + 20, 4), usize = le(h + 24, 4);
    size_t name_len = le(h + 28, 2), extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
    uint64_t local = le(h + 42, 4);
    if (d.size - pos - kCentralHeaderSize < name_len + extra_len + comment_len)
      r.fail("central directory ends inside entry " + std::to_string(i));
    std::string name(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    apply_zip64_extra(r, h + kCentralHeaderSize + name_len, extra_len, usize, csize, local, name);
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;

    if (flags & 1) r.fail("entry '" + name + "' is encrypted");
    if (method != 0)
      r.fail("entry '" + name + "' is compressed (method " + std::to_string(method) +
             "); torch.save writes stored entries only, and kiln reads only those");
    if (csize != usize)
      r.fail("entry '" + name + "' is stored but its sizes differ (" + std::to_string(csize) + " and " +
             std::to_string(usize) + ")");
    if (!seen.insert(name).second) r.fail("entry '" + name + "' appears twice");
    const uint8_t* lh = r.at(local, kLocalHeaderSize, ("local header of '" + name + "'").c_str());
    if (le(lh, 4) != kLocalHeaderSig) r.fail("bad local header signature for '" + name + "'");
    uint64_t data = local + kLocalHeaderSize + le(lh + 26, 2) + le(lh + 28, 2);
    r.at(data, csize, ("data of '" + name + "'").c_str());
    entries.push_back({std::move(name), bytes.subspan(data, csize)});
  }
  return entries;
}

}  // namespace kiln::weights
