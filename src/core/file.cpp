#include "core/file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kiln/error.h"

namespace kiln {

std::string read_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  f.seekg(0, std::ios::end);
  auto size = f.tellg();
  if (size < 0) throw Error(path + ": cannot determine the file size");
  if (static_cast<size_t>(size) > max_bytes) throw Error(path + ": file is too large");
  std::string bytes(static_cast<size_t>(size), '\0');
  f.seekg(0);
  f.read(bytes.data(), size);
  if (!f) throw Error(path + ": read failed");
  return bytes;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot open for writing (" + std::strerror(errno) + ")");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error(path + ": write failed");
}

}  // namespace kiln
