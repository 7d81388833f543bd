// Determinism on the CPU: tests/run_determinism.sh runs run-llm five times per case and compares the
// stdout bytes (the same script checks the GPU with --device cuda).
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;

TEST_CASE("five runs with one seed print the same bytes, greedy too; another seed other bytes",
          "[e2e][generate][determinism]") {
  const std::string dir = test::make_temp_dir("determinism");
  const std::string report = dir + "/report.txt";
  const std::string command = "bash '" + test::source_dir() + "/tests/run_determinism.sh' --device cpu --run-llm '" +
                              RUNLLM_BINARY + "' --report '" + report + "' '" + test::model_dir() + "' >'" + dir +
                              "/stdout' 2>'" + dir + "/stderr'";
  const int status = std::system(command.c_str());
  // No report when a run failed; the script's stderr then says why.
  const std::string text = std::filesystem::exists(report) ? test::read_file(report) : "";
  INFO(text << test::read_file(dir + "/stderr"));
  std::filesystem::remove_all(dir);
  CHECK(status == 0);
  CHECK(text.find("sampled (--temperature 0.8 --seed 7): identical in 5 of 5 runs") != std::string::npos);
  CHECK(text.find("greedy (--temperature 0): identical in 5 of 5 runs") != std::string::npos);
  CHECK(text.find("other seed: --seed 8 differs from --seed 7") != std::string::npos);
  CHECK(text.find("result: PASS") != std::string::npos);
}
