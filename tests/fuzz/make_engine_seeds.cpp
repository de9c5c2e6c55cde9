// Writes the seeds of fuzz_engine into the folder given: engines of the
// residual conv test model (tests/model_builder.h), one static (batch 1) and
// one with a batch profile (1 to 2), built by this kiln so that they are
// current. Run before each fuzzing session (see tests/fuzz/CMakeLists.txt).
#include <cstdio>
#include <filesystem>

#include "core/file.h"
#include "kiln/error.h"
#include "kiln/session.h"
#include "model_builder.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    const std::string model = (dir / "residual.onnx.tmp").string();
    kiln::write_file(model, kiln::test::bytes_of(kiln::test::residual_conv_model()));
    kiln::BuildOptions fixed;
    fixed.session.input_shapes["x"] = {1, 16, 16, 16};
    kiln::build_engine(model, (dir / "residual_static.kiln").string(), fixed);
    kiln::BuildOptions profile;
    kiln::ShapeProfile p;
    p.min["x"] = {1, 16, 16, 16};
    p.opt["x"] = {2, 16, 16, 16};
    p.max["x"] = {2, 16, 16, 16};
    profile.profiles = {p};
    kiln::build_engine(model, (dir / "residual_batch_1_2.kiln").string(), profile);
    std::filesystem::remove(model);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "make_engine_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
