// The two shards the sharded-index target pairs its fuzzed model.safetensors.index.json with; the
// seed maker writes index seeds that name these, so a seed's index is valid as written.
#pragma once

namespace runllm::fuzz {

inline constexpr const char* kFirstShard = "model-00001-of-00002.safetensors";   // holds a, b
inline constexpr const char* kSecondShard = "model-00002-of-00002.safetensors";  // holds c

}  // namespace runllm::fuzz
