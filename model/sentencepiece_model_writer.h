// Writes a SentencePiece model file (tokenizer.model: a serialized sentencepiece.ModelProto) from a
// vocabulary, as the GGUF converter needs for tokenizer.ggml.model "llama". Debian's
// libsentencepiece-dev ships no sentencepiece_model.pb.h, so the few fields are encoded here in the
// protobuf wire format (field numbers from sentencepiece_model.proto); libsentencepiece reads the
// result like any tokenizer.model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runllm {

struct SentencePieceVocabulary {
  struct Piece {
    std::string text;
    float score = 0.0f;
    int type = 1;  // ModelProto.SentencePiece.Type: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE
  };
  std::vector<Piece> pieces;
  int model_type = 2;  // TrainerSpec.ModelType: 1 UNIGRAM, 2 BPE
  int32_t unk_id = 0, bos_id = -1, eos_id = -1, pad_id = -1;
  bool byte_fallback = false;
  // NormalizerSpec: identity normalization (no precompiled charsmap) as Llama and Mistral use.
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
};

// The serialized ModelProto.
std::string serialize_sentencepiece_model(const SentencePieceVocabulary& vocabulary);

}  // namespace runllm
