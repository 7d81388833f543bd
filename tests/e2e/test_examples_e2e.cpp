// The example scripts pass extra arguments to run-llm, and those win over the example's own settings
// (run-llm refuses an option given twice).
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
namespace fs = std::filesystem;

TEST_CASE("examples/fp16_generate.sh: the user's -n, --prompt, --temperature and --seed win", "[e2e][examples]") {
  const fs::path model = test::model_dir();
  // fetch_model.sh finds the model in $RUNLLM_CACHE by name, next to the GGUF it was converted from.
  if (model.filename() != "SmolLM2-135M-Instruct-f16" ||
      !fs::exists(model.parent_path() / "SmolLM2-135M-Instruct.Q4_1.gguf")) {
    WARN("the test model is not in a fetch_model.sh cache directory; the example is not run");
    return;
  }
  const std::string dir = test::make_temp_dir("example");
  const std::string command = "cd " + test::source_dir() + " && RUNLLM_CACHE='" + model.parent_path().string() +
                              "' BUILD_DIR='" + fs::path(RUNLLM_BINARY).parent_path().string() +
                              "' examples/fp16_generate.sh -n 3 --prompt 'Say hi.' --temperature 0 --seed 7 >'" +
                              dir + "/out' 2>'" + dir + "/err' </dev/null";
  const int status = std::system(command.c_str());
  const std::string err = test::read_file(dir + "/err");
  INFO("stderr: " << err);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(err.find("generation: 3 tokens") != std::string::npos);
  CHECK(err.find("At Most 1") == std::string::npos);
  fs::remove_all(dir);
}
