// Chat formats on real templates (tests/data/chat_templates/):
//   smollm2_135m_instruct.jinja   tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf
//   llama2_chat.jinja             meta-llama/Llama-2-13b-chat-hf tokenizer_config.json
//   llama3_instruct.jinja         meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json
//   mistral_instruct_v0.1.jinja   mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json
//   mixtral_instruct_system.jinja mistralai/Mixtral-8x7B-Instruct-v0.1, later revision (system folding)
// The expected strings are those templates rendered with jinja2 (HF's settings: trim_blocks,
// lstrip_blocks) for add_generation_prompt=True.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/catch.h"
#include "tests/test_support.h"
#include "tokenizer/chat_template.h"

using namespace runllm;

namespace {

std::string read_template(const std::string& name) {
  return test::read_file(test::source_dir() + "/tests/data/chat_templates/" + name);
}

const std::string kSystem = "You are terse.";
const std::string kUserWithSpaces = " What is 2+2? \n";  // shows which formats strip

}  // namespace

TEST_CASE("Chat format detection on real templates", "[tokenizer]") {
  CHECK(detect_chat_format(read_template("smollm2_135m_instruct.jinja")) == ChatFormat::ChatML);
  CHECK(detect_chat_format(read_template("llama2_chat.jinja")) == ChatFormat::Llama2);
  CHECK(detect_chat_format(read_template("llama3_instruct.jinja")) == ChatFormat::Llama3);
  CHECK(detect_chat_format(read_template("mistral_instruct_v0.1.jinja")) == ChatFormat::Mistral);
  CHECK(detect_chat_format(read_template("mixtral_instruct_system.jinja")) == ChatFormat::Mistral);
  CHECK_FALSE(detect_chat_format("{{ messages[0]['content'] }}"));
  CHECK_FALSE(detect_chat_format(""));
}

TEST_CASE("Chat format names round-trip", "[tokenizer]") {
  for (ChatFormat format : {ChatFormat::ChatML, ChatFormat::Llama2, ChatFormat::Llama3, ChatFormat::Mistral})
    CHECK(chat_format_from_name(chat_format_name(format)) == format);
  CHECK_FALSE(chat_format_from_name("alpaca"));
  CHECK(end_of_turn_text(ChatFormat::ChatML) == "<|im_end|>");
  CHECK(end_of_turn_text(ChatFormat::Llama3) == "<|eot_id|>");
  CHECK(end_of_turn_text(ChatFormat::Llama2) == "</s>");
  CHECK(end_of_turn_text(ChatFormat::Mistral) == "</s>");
}

TEST_CASE("Default system prompt is read from a ChatML template's literal", "[tokenizer]") {
  const std::string smollm = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
  CHECK(default_system_prompt(read_template("smollm2_135m_instruct.jinja")) == smollm);
  // The same template as tokenizer_config.json holds it: "\n" is a Jinja escape there.
  CHECK(default_system_prompt("{{ '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}") == "You are Qwen.");
  // A concatenated system message is not a default; a later literal one is.
  CHECK(default_system_prompt("{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>' }}").empty());
  CHECK(default_system_prompt("{{ '<|im_start|>system\\n' + m + '<|im_end|>' }}{% else %}"
                              "{{ '<|im_start|>system\\nDefault.<|im_end|>\\n' }}") == "Default.");
  CHECK(default_system_prompt(read_template("llama3_instruct.jinja")).empty());
  CHECK(default_system_prompt(read_template("llama2_chat.jinja")).empty());
}

TEST_CASE("apply_chat_format reproduces the templates' output", "[tokenizer]") {
  // ChatML (SmolLM2): no system given -> the template's own default system prompt.
  const std::string smollm_template = read_template("smollm2_135m_instruct.jinja");
  CHECK(apply_chat_format(ChatFormat::ChatML, kSystem, kUserWithSpaces, "") ==
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n What is 2+2? \n<|im_end|>\n"
        "<|im_start|>assistant\n");
  CHECK(apply_chat_format(ChatFormat::ChatML, default_system_prompt(smollm_template), "Hi there", "") ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");

  CHECK(apply_chat_format(ChatFormat::Llama3, kSystem, kUserWithSpaces, "<|begin_of_text|>") ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK(apply_chat_format(ChatFormat::Llama3, "", "Hi there", "<|begin_of_text|>") ==
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");

  CHECK(apply_chat_format(ChatFormat::Llama2, kSystem, kUserWithSpaces, "<s>") ==
        "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n What is 2+2? [/INST]");
  CHECK(apply_chat_format(ChatFormat::Llama2, "", "Hi there", "<s>") == "<s>[INST] Hi there [/INST]");

  // Mistral v0.1 rejects a system message; the later template folds it in as "S\n\nU" but writes
  // " [INST]" after BOS ("<s> [INST] You are terse.\n\n What is 2+2? \n [/INST]"), a space our
  // per-segment SentencePiece encode supplies itself.
  CHECK(apply_chat_format(ChatFormat::Mistral, "", "Hi there", "<s>") == "<s>[INST] Hi there [/INST]");
  CHECK(apply_chat_format(ChatFormat::Mistral, kSystem, kUserWithSpaces, "<s>") ==
        "<s>[INST] You are terse.\n\n What is 2+2? \n [/INST]");
}

TEST_CASE("render_chat writes a multi-turn conversation; each turn's rendering extends the last", "[tokenizer][interactive]") {
  const std::vector<ChatMessage> two_turns = {{"user", "Hi"}, {"assistant", " Hello! "}, {"user", "Bye"}};
  CHECK(render_chat(ChatFormat::ChatML, "S", two_turns, "") ==
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
  // Llama-2-chat: ' ' + answer.strip() + ' ' + eos, and BOS before every [INST].
  CHECK(render_chat(ChatFormat::Llama2, "", two_turns, "<s>") == "<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]");
  CHECK(render_chat(ChatFormat::Mistral, "", two_turns, "<s>") == "<s>[INST] Hi [/INST] Hello! </s>[INST] Bye [/INST]");
  CHECK(render_chat(ChatFormat::Llama3, "", two_turns, "<|begin_of_text|>") ==
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // Interactive chat feeds only what follows the cached tokens: the conversation so far (with its
  // generation prompt) must be a prefix of the next rendering, for every format, when the answer
  // carries no whitespace that the format strips.
  const std::vector<ChatMessage> first = {{"user", "Hi"}};
  const std::vector<ChatMessage> second = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  for (ChatFormat format : {ChatFormat::ChatML, ChatFormat::Llama2, ChatFormat::Llama3, ChatFormat::Mistral}) {
    INFO(chat_format_name(format));
    const std::string before = render_chat(format, "S", first, "<s>");
    const std::string after = render_chat(format, "S", second, "<s>");
    CHECK(after.compare(0, before.size(), before) == 0);
    CHECK(render_chat(format, "S", first, "<s>") == apply_chat_format(format, "S", "Hi", "<s>"));
  }
  CHECK_THROWS(render_chat(ChatFormat::ChatML, "", {{"assistant", "x"}}, ""));
  CHECK_THROWS(render_chat(ChatFormat::ChatML, "", {{"user", "x"}, {"assistant", "y"}}, ""));
}

TEST_CASE("A checkpoint's chat template from chat_template.jinja, a string key or a named list", "[tokenizer][chat-template]") {
  const std::string dir = test::make_temp_dir("chat-template");
  const std::string chatml = read_template("smollm2_135m_instruct.jinja");
  const std::string llama3 = read_template("llama3_instruct.jinja");

  SECTION("none: the reason names what was looked at") {
    CheckpointChatTemplate found = load_chat_template(dir);
    CHECK(found.text.empty());
    CHECK(found.source.find("chat_template.jinja") != std::string::npos);
    test::write_file(dir + "/tokenizer_config.json", R"({"bos_token": "<s>"})");
    found = load_chat_template(dir);
    CHECK(found.text.empty());
    CHECK(found.source.find("has no chat_template") != std::string::npos);
  }
  SECTION("transformers 5: chat_template.jinja beside tokenizer_config.json, and it wins over the key") {
    test::write_file(dir + "/tokenizer_config.json", R"({"chat_template": "[INST] {{ messages }}"})");
    test::write_file(dir + "/chat_template.jinja", chatml);
    const CheckpointChatTemplate found = load_chat_template(dir);
    CHECK(found.text == chatml);
    CHECK(found.source == dir + "/chat_template.jinja");
    CHECK(detect_chat_format(found.text) == ChatFormat::ChatML);
  }
  SECTION("older transformers: the chat_template key as a string") {
    nlohmann::json config = {{"chat_template", llama3}};
    test::write_file(dir + "/tokenizer_config.json", config.dump());
    const CheckpointChatTemplate found = load_chat_template(dir);
    CHECK(found.text == llama3);
    CHECK(detect_chat_format(found.text) == ChatFormat::Llama3);
  }
  SECTION("a list of named templates: the one named default") {
    nlohmann::json config = {{"chat_template", nlohmann::json::array({{{"name", "tool_use"}, {"template", llama3}},
                                                                       {{"name", "default"}, {"template", chatml}},
                                                                       {{"name", "rag"}, {"template", "{{ x }}"}}})}};
    test::write_file(dir + "/tokenizer_config.json", config.dump());
    const CheckpointChatTemplate found = load_chat_template(dir);
    CHECK(found.text == chatml);
    CHECK(found.source.find("default") != std::string::npos);
  }
  SECTION("a list without default is no template, naming what it holds") {
    nlohmann::json config = {{"chat_template", nlohmann::json::array({{{"name", "tool_use"}, {"template", llama3}}})}};
    test::write_file(dir + "/tokenizer_config.json", config.dump());
    const CheckpointChatTemplate found = load_chat_template(dir);
    CHECK(found.text.empty());
    CHECK(found.source.find("tool_use") != std::string::npos);
  }
  SECTION("malformed values are errors naming the file") {
    test::write_file(dir + "/tokenizer_config.json", R"({"chat_template": 42})");
    test::require_error([&] { load_chat_template(dir); }, {"tokenizer_config.json", "chat_template"});
    test::write_file(dir + "/tokenizer_config.json", R"({"chat_template": [{"name": "default"}]})");
    test::require_error([&] { load_chat_template(dir); }, {"tokenizer_config.json", "template"});
  }
  std::filesystem::remove_all(dir);
}
