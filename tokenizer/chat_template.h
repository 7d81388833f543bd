// Chat formatting. We do not run Jinja: the common families are recognised from the checkpoint's
// template text and applied by hand; an unknown template is reported and `--chat-format` overrides.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace runllm {

enum class ChatFormat { ChatML, Llama2, Llama3, Mistral };

std::optional<ChatFormat> chat_format_from_name(const std::string& name);  // "chatml", "llama2", "llama3", "mistral"
const char* chat_format_name(ChatFormat format);
// Recognises the family from a Jinja chat_template's text (markers such as "<|im_start|>",
// "<|start_header_id|>", "[INST]" with/without "<<SYS>>"). nullopt when unknown.
std::optional<ChatFormat> detect_chat_format(const std::string& chat_template);
// A default system prompt the template itself inserts when none is given (ChatML templates such as
// SmolLM2's embed one); empty when the template has none.
std::string default_system_prompt(const std::string& chat_template);

// The prompt text for one user turn (plus optional system turn), ending where the assistant's reply
// starts. Special tokens appear literally and are matched by Tokenizer::encode. `bos_text` is
// prepended for formats whose template writes BOS itself (Llama-2/3, Mistral), empty otherwise.
std::string apply_chat_format(ChatFormat format, const std::string& system_prompt,
                              const std::string& user_message, const std::string& bos_text);
// The token text that ends the assistant's turn ("<|im_end|>", "<|eot_id|>", "</s>").
std::string end_of_turn_text(ChatFormat format);

}  // namespace runllm
