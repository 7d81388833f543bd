#include "model/sentencepiece_model_writer.h"

#include <cstring>

namespace runllm {

namespace {

// Protobuf wire format: a key is (field << 3) | wire type; 0 = varint, 2 = length-delimited, 5 = 32-bit.
void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_key(std::string& out, int field, int wire_type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

// int32 fields encode negative values as 10-byte varints (sign-extended to 64 bits).
void put_int(std::string& out, int field, int64_t value) {
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(value));
}

void put_bool(std::string& out, int field, bool value) { put_int(out, field, value ? 1 : 0); }

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_float(std::string& out, int field, float value) {
  put_key(out, field, 5);
  char bytes[4];
  std::memcpy(bytes, &value, 4);  // little-endian host, as the wire format
  out.append(bytes, 4);
}

std::string piece_text(const SentencePieceVocabulary& v, int32_t id, const char* fallback) {
  return id >= 0 && static_cast<size_t>(id) < v.pieces.size() ? v.pieces[static_cast<size_t>(id)].text : fallback;
}

}  // namespace

std::string serialize_sentencepiece_model(const SentencePieceVocabulary& v) {
  std::string model;
  for (const SentencePieceVocabulary::Piece& piece : v.pieces) {  // ModelProto.pieces = 1
    std::string message;
    put_bytes(message, 1, piece.text);   // piece
    put_float(message, 2, piece.score);  // score
    put_int(message, 3, piece.type);     // type
    put_bytes(model, 1, message);
  }

  std::string trainer;  // ModelProto.trainer_spec = 2
  put_int(trainer, 3, v.model_type);           // model_type
  put_int(trainer, 4, static_cast<int64_t>(v.pieces.size()));  // vocab_size
  put_bool(trainer, 35, v.byte_fallback);      // byte_fallback
  put_int(trainer, 40, v.unk_id);              // unk_id
  put_int(trainer, 41, v.bos_id);              // bos_id
  put_int(trainer, 42, v.eos_id);              // eos_id
  put_int(trainer, 43, v.pad_id);              // pad_id
  // The processor finds BOS/EOS/UNK/PAD by these piece texts (SentencePieceProcessor::bos_id()).
  put_bytes(trainer, 45, piece_text(v, v.unk_id, "<unk>"));  // unk_piece
  put_bytes(trainer, 46, piece_text(v, v.bos_id, "<s>"));    // bos_piece
  put_bytes(trainer, 47, piece_text(v, v.eos_id, "</s>"));   // eos_piece
  put_bytes(trainer, 48, piece_text(v, v.pad_id, "<pad>"));  // pad_piece
  put_bytes(model, 2, trainer);

  std::string normalizer;  // ModelProto.normalizer_spec = 3
  put_bytes(normalizer, 1, "identity");                      // name
  put_bool(normalizer, 3, v.add_dummy_prefix);               // add_dummy_prefix
  put_bool(normalizer, 4, v.remove_extra_whitespaces);       // remove_extra_whitespaces (default true: written)
  put_bool(normalizer, 5, true);                             // escape_whitespaces
  put_bytes(model, 3, normalizer);
  return model;
}

}  // namespace runllm
