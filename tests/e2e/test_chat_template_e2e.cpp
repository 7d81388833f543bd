// A checkpoint directory as transformers 5 saves it keeps its chat template in chat_template.jinja, not
// in tokenizer_config.json: `--chat` on it must answer exactly as on the converted directory.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
namespace fs = std::filesystem;

TEST_CASE("--chat reads chat_template.jinja as transformers 5 saves it", "[e2e][generate][chat-template]") {
  const std::string model = test::model_dir();
  const std::string dir = test::make_temp_dir("transformers5-dir");
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"})
    fs::create_symlink(fs::absolute(model + "/" + name), dir + "/" + name);
  nlohmann::json tokenizer_config = nlohmann::json::parse(test::read_file(model + "/tokenizer_config.json"));
  const std::string chat_template = tokenizer_config.at("chat_template").get<std::string>();
  tokenizer_config.erase("chat_template");
  test::write_file(dir + "/tokenizer_config.json", tokenizer_config.dump(2));

  // Without the .jinja file there is no template: the error names what was looked at and the way out.
  const auto missing = test::run_llm({"--model", dir, "--chat", "--prompt", "Hi", "-n", "1"});
  INFO("stderr: " << missing.err);
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("chat_template.jinja") != std::string::npos);
  CHECK(missing.err.find("--chat-format") != std::string::npos);

  test::write_file(dir + "/chat_template.jinja", chat_template);
  const std::vector<std::string> chat = {"--chat", "--prompt", "What is the capital of France?", "--temperature", "0",
                                         "-n", "12"};
  std::vector<std::string> converted_args = {"--model", model}, saved_args = {"--model", dir};
  converted_args.insert(converted_args.end(), chat.begin(), chat.end());
  saved_args.insert(saved_args.end(), chat.begin(), chat.end());
  const auto converted = test::run_llm(converted_args);
  const auto saved = test::run_llm(saved_args);
  INFO("converted stderr: " << converted.err << "\nsaved stderr: " << saved.err);
  REQUIRE(converted.exit_code == 0);
  REQUIRE(saved.exit_code == 0);
  CHECK(!saved.out.empty());
  CHECK(saved.out == converted.out);
  fs::remove_all(dir);
}
