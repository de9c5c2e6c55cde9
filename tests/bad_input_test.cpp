// Replays the checked-in corpus of bad model files (tests/bad_models): each
// must fail with a kiln::Error whose message names the file and says what is
// wrong; none may crash, hang or allocate absurdly.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "kiln/session.h"

namespace kiln {

TEST(BadInput, CorpusFailsWithClearErrors) {
  std::string dir = std::string(KILN_SOURCE_DIR) + "/tests/bad_models/";
  std::ifstream list(dir + "expected_errors.tsv");
  ASSERT_TRUE(list) << "missing expected_errors.tsv";
  std::string line;
  int cases = 0;
  while (std::getline(list, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string file = line.substr(0, line.find('\t'));
    std::string phrase = line.substr(line.find('\t') + 1);
    std::string path = dir + file;
    try {
      Session::load(path);
      ADD_FAILURE() << file << ": loaded without error";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(phrase), std::string::npos) << file << ": message lacks '" << phrase << "': " << msg;
      EXPECT_NE(msg.find(file), std::string::npos) << file << ": message does not name the file: " << msg;
    }
    ++cases;
  }
  EXPECT_GE(cases, 15);
}

TEST(BadInput, MissingFileAndDirectory) {
  EXPECT_THROW(Session::load("/nonexistent/model.onnx"), Error);
  EXPECT_THROW(Session::load(KILN_SOURCE_DIR), Error);
}

TEST(BadInput, UnsupportedListsEveryNode) {
  try {
    Session::load(std::string(KILN_SOURCE_DIR) + "/tests/bad_models/unsupported_ops.onnx");
    FAIL();
  } catch (const UnsupportedError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("fancy1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("com.example:FancyOp"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fancy2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("NotAnOnnxOp is unknown"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("'relu'"), std::string::npos) << "a supported node was listed: " << msg;
  }
}

}  // namespace kiln
