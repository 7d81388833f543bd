// A checkpoint directory of a synthetic model's shapes (synthetic_config) with random weights,
// written in an on-disk format: for load-time and memory checks of large models where only the
// project itself can make the files (no downloads on the GPU machine). config.json,
// model.safetensors and a byte-level tokenizer.json; AWQ as AutoAWQ's gemm layout (group 128),
// fp16 as plain weights. Values are random: for speed and memory only.
#pragma once
#include <string>

namespace runllm {

// format: "awq" or "fp16". Throws naming what it could not write.
void write_synthetic_checkpoint(const std::string& model_name, const std::string& format, const std::string& dir);

}  // namespace runllm
