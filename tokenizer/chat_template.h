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

// A checkpoint's chat template and where it came from.
struct CheckpointChatTemplate {
  std::string text;    // the Jinja source; empty when the checkpoint has none
  std::string source;  // "DIR/chat_template.jinja", "DIR/tokenizer_config.json"; when `text` is empty,
                       // what was looked at and why nothing was found (for the --chat error)
};
// Reads DIR's chat template where the tools put it: `chat_template.jinja` beside tokenizer_config.json
// (transformers >= 4.4x and 5.x save_pretrained; it wins over the key, as in transformers), else
// tokenizer_config.json's "chat_template", a string (older transformers) or a list of
// {"name", "template"} objects of which the one named "default" is used (transformers'
// multiple-template form; a list without "default" counts as no template, naming what it holds).
// A "chat_template" of another type, or a list entry without a string name and template, is an error
// naming the file.
CheckpointChatTemplate load_chat_template(const std::string& dir);

// The prompt text for one user turn (plus optional system turn), ending where the assistant's reply
// starts. Special tokens appear literally and are matched by Tokenizer::encode. `bos_text` is
// prepended for formats whose template writes BOS itself (Llama-2/3, Mistral), empty otherwise.
std::string apply_chat_format(ChatFormat format, const std::string& system_prompt,
                              const std::string& user_message, const std::string& bos_text);
// One message of a conversation: role "user" or "assistant".
struct ChatMessage {
  std::string role;
  std::string content;
};
// A whole conversation (alternating user/assistant messages, ending with a user message) as the
// template renders it with add_generation_prompt=True. For one user message it equals
// apply_chat_format. The rendering of a conversation is a prefix of the rendering of the same
// conversation with an answer and a new user message appended, which lets interactive chat feed only
// the new turn's tokens: each format's assistant turn is what the reference template writes
//  - ChatML: "<|im_start|>assistant\n" + content + "<|im_end|>\n"
//  - Llama-3: header + trim(content) + "<|eot_id|>"
//  - Llama-2: " " + strip(content) + " </s>", and every user turn starts with BOS again
//  - Mistral (v0.1): content + "</s>"; BOS only at the start.
std::string render_chat(ChatFormat format, const std::string& system_prompt, const std::vector<ChatMessage>& messages,
                        const std::string& bos_text);
// The token text that ends the assistant's turn ("<|im_end|>", "<|eot_id|>", "</s>").
std::string end_of_turn_text(ChatFormat format);

}  // namespace runllm
