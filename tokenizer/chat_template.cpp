#include "tokenizer/chat_template.h"

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/file_io.h"
#include "runtime/json_parse.h"

namespace runllm {

namespace {

bool contains(const std::string& text, const char* marker) { return text.find(marker) != std::string::npos; }

// Jinja's `trim` and Python's str.strip() (ASCII whitespace; enough for prompts typed at a console).
std::string strip(const std::string& text) {
  const char* whitespace = " \t\n\r\f\v";
  const size_t begin = text.find_first_not_of(whitespace);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(whitespace) - begin + 1);
}

}  // namespace

std::optional<ChatFormat> chat_format_from_name(const std::string& name) {
  if (name == "chatml") return ChatFormat::ChatML;
  if (name == "llama2") return ChatFormat::Llama2;
  if (name == "llama3") return ChatFormat::Llama3;
  if (name == "mistral") return ChatFormat::Mistral;
  return std::nullopt;
}

const char* chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML: return "chatml";
    case ChatFormat::Llama2: return "llama2";
    case ChatFormat::Llama3: return "llama3";
    case ChatFormat::Mistral: return "mistral";
  }
  return "unknown";
}

std::optional<ChatFormat> detect_chat_format(const std::string& chat_template) {
  if (contains(chat_template, "<|im_start|>")) return ChatFormat::ChatML;
  if (contains(chat_template, "<|start_header_id|>")) return ChatFormat::Llama3;
  if (contains(chat_template, "[INST]"))
    return contains(chat_template, "<<SYS>>") ? ChatFormat::Llama2 : ChatFormat::Mistral;
  return std::nullopt;
}

// Looks for a string literal '<|im_start|>system\n...<|im_end|>' whose body is plain text (no
// closing quote before <|im_end|>, so no `+ message['content']` concatenation). The newline after
// "system" is a real newline in GGUF metadata and the Jinja escape "\n" in tokenizer_config.json.
std::string default_system_prompt(const std::string& chat_template) {
  const std::string marker = "<|im_start|>system";
  const std::string end_marker = "<|im_end|>";
  for (size_t at = chat_template.find(marker); at != std::string::npos;
       at = chat_template.find(marker, at + 1)) {
    size_t i = at + marker.size();
    if (chat_template.compare(i, 1, "\n") == 0) i += 1;
    else if (chat_template.compare(i, 2, "\\n") == 0) i += 2;
    else continue;
    std::string prompt;
    bool literal = true;
    while (i < chat_template.size() && chat_template.compare(i, end_marker.size(), end_marker) != 0) {
      const char c = chat_template[i];
      if (c == '\'' || c == '"') {
        literal = false;
        break;
      }
      if (c == '\\' && i + 1 < chat_template.size()) {  // Jinja string escapes
        const char escaped = chat_template[i + 1];
        prompt += escaped == 'n' ? '\n' : escaped == 't' ? '\t' : escaped;
        i += 2;
        continue;
      }
      prompt += c;
      ++i;
    }
    if (literal && i < chat_template.size() && !prompt.empty()) return prompt;
  }
  return "";
}

// Each branch reproduces the reference template's output with add_generation_prompt=True for
// [system?, user] (tests/data/chat_templates/ holds the templates, rendered with jinja2 in the tests'
// expectations):
//  - ChatML (SmolLM2, Qwen2): no stripping.
//  - Llama-3 (Meta-Llama-3-8B-Instruct): `message['content'] | trim` for every message.
//  - Llama-2 (Llama-2-chat-hf): system folded into the first user message inside <<SYS>>, then
//    `content.strip()`.
//  - Mistral: Mistral-7B-Instruct-v0.1's "[INST] U [/INST]"; a system message is folded into the
//    user message as "S\n\nU" like the later Mistral/Mixtral templates do. Those templates write
//    " [INST]" after BOS because HF's tokenizer would otherwise glue the space mark differently; our
//    SentencePiece encode adds that space mark itself, so no leading space here.
std::string apply_chat_format(ChatFormat format, const std::string& system_prompt,
                              const std::string& user_message, const std::string& bos_text) {
  return render_chat(format, system_prompt, {{"user", user_message}}, bos_text);
}

std::string render_chat(ChatFormat format, const std::string& system_prompt, const std::vector<ChatMessage>& messages,
                        const std::string& bos_text) {
  if (messages.empty() || messages.back().role != "user")
    throw Error("render_chat: a conversation must end with a user message");
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].role != (i % 2 == 0 ? "user" : "assistant"))
      throw Error("render_chat: messages must alternate user and assistant, starting with user");
  const std::string end_of_turn = end_of_turn_text(format);
  std::string text;
  switch (format) {
    case ChatFormat::ChatML: {
      if (!system_prompt.empty()) text += "<|im_start|>system\n" + system_prompt + "<|im_end|>\n";
      for (const ChatMessage& message : messages)
        text += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
      return text + "<|im_start|>assistant\n";
    }
    case ChatFormat::Llama3: {
      text = bos_text;
      if (!system_prompt.empty())
        text += "<|start_header_id|>system<|end_header_id|>\n\n" + strip(system_prompt) + "<|eot_id|>";
      for (const ChatMessage& message : messages)
        text += "<|start_header_id|>" + message.role + "<|end_header_id|>\n\n" + strip(message.content) + "<|eot_id|>";
      return text + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    }
    case ChatFormat::Llama2: {
      for (size_t i = 0; i < messages.size(); ++i) {
        if (messages[i].role == "assistant") {
          text += " " + strip(messages[i].content) + " " + end_of_turn;
          continue;
        }
        const std::string content = i == 0 && !system_prompt.empty()
            ? "<<SYS>>\n" + system_prompt + "\n<</SYS>>\n\n" + messages[i].content : messages[i].content;
        text += bos_text + "[INST] " + strip(content) + " [/INST]";
      }
      return text;
    }
    case ChatFormat::Mistral: {
      text = bos_text;
      for (size_t i = 0; i < messages.size(); ++i) {
        if (messages[i].role == "assistant") {
          text += messages[i].content + end_of_turn;
          continue;
        }
        const std::string content = i == 0 && !system_prompt.empty()
            ? system_prompt + "\n\n" + messages[i].content : messages[i].content;
        text += "[INST] " + content + " [/INST]";
      }
      return text;
    }
  }
  return messages.back().content;
}

std::string end_of_turn_text(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML: return "<|im_end|>";
    case ChatFormat::Llama3: return "<|eot_id|>";
    case ChatFormat::Llama2:
    case ChatFormat::Mistral: return "</s>";
  }
  return "";
}

CheckpointChatTemplate load_chat_template(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  const std::string jinja_path = dir + "/chat_template.jinja";
  if (fs::is_regular_file(jinja_path, error)) {
    // Real templates are a few KB (the longest known, with tool use, ~30 KB); 4 MiB is far above them.
    if (fs::file_size(jinja_path, error) > (uint64_t{4} << 20))
      throw Error(jinja_path + ": larger than 4 MiB, not a chat template");
    return {read_whole_file(jinja_path, "a Jinja chat template"), jinja_path};
  }
  const std::string config_path = dir + "/tokenizer_config.json";
  const auto config = read_optional_json_file(config_path);
  const std::string none = "no chat_template.jinja, and " + config_path;
  if (!config) return {"", none + " does not exist"};
  if (!config->is_object() || !config->contains("chat_template") || (*config)["chat_template"].is_null())
    return {"", none + " has no chat_template"};
  const nlohmann::json& value = (*config)["chat_template"];
  if (value.is_string()) return {value.get<std::string>(), config_path};
  if (!value.is_array())
    throw Error(config_path + ": chat_template must be a string or a list of {\"name\", \"template\"}, got " +
                std::string(value.type_name()));
  std::string names;
  for (const nlohmann::json& entry : value) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
        !entry["template"].is_string())
      throw Error(config_path + ": each entry of the chat_template list must have a string \"name\" and \"template\"");
    const std::string name = entry["name"].get<std::string>();
    if (name == "default") return {entry["template"].get<std::string>(), config_path + " (chat_template \"default\")"};
    names += (names.empty() ? "" : ", ") + name;
  }
  return {"", none + " lists chat templates (" + (names.empty() ? std::string("none") : names) +
                  ") but none named \"default\""};
}

}  // namespace runllm
