#pragma once
#include <string>

namespace kiln {

// Reads a whole file; kiln::Error naming the path when it cannot.
std::string read_file(const std::string& path, size_t max_bytes = size_t{1} << 33);
void write_file(const std::string& path, const std::string& bytes);

}  // namespace kiln
