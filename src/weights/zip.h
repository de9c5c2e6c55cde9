// A reader for the zip archives torch.save writes: stored (uncompressed)
// entries, zip64 when large. It reads only the central directory and checks
// every offset and size against the bytes it was given.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::weights {

struct ZipEntry {
  std::string name;
  std::span<const uint8_t> data;  // the stored bytes, inside the archive's buffer
};

// The entries of the archive in `bytes`, in central-directory order.
// `label` names the file in messages. Compressed or encrypted entries,
// multi-disk archives and sizes or offsets outside the buffer throw
// kiln::Error.
std::vector<ZipEntry> read_zip(std::span<const uint8_t> bytes, const std::string& label);

}  // namespace kiln::weights
