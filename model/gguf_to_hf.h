// `run-llm convert`: a llama-architecture GGUF file (FORMATS.md §7) -> a Hugging Face checkpoint
// directory (§1) with fp16 weights and a byte-level BPE tokenizer.json (§8) or, for SentencePiece
// ("llama") vocabularies, a tokenizer.model.
#pragma once
#include <functional>
#include <string>

namespace runllm {

// Reads and validates the whole GGUF (architecture, sizes, every tensor's name, shape and type, the
// tokenizer) before writing anything, then creates `out_dir` and writes config.json,
// model.safetensors (fp16, HF names and shapes, llama.cpp's q/k row permutation undone),
// tokenizer.json, tokenizer_config.json and generation_config.json. `progress` receives a line
// describing the model and a final summary. Throws runllm::Error naming the file, key or tensor on anything it
// cannot convert faithfully (other architectures, other tokenizer models, rope_freqs that are not
// llama3 scaling, unsupported quantization types, unexpected tensors).
// `on_tensor` (optional) is told (0, tensors) before the first tensor and (i, tensors) after each.
void convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir,
                        const std::function<void(const std::string&)>& progress,
                        const std::function<void(int64_t done, int64_t tensors)>& on_tensor = {});

}  // namespace runllm
