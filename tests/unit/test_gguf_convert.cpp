// GGUF -> HF conversion. Input files are built by the small GGUF writer in gguf_test_writer.h
// (independent of the reader), and the safetensors output is parsed here, so the converter is checked
// against independent statements of both formats.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sentencepiece_processor.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "model/config.h"
#include "model/gguf_to_hf.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/gguf_test_writer.h"

using namespace runllm;
using namespace runllm::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Parses a safetensors file here (header + F16 data) so this test does not depend on the reader.
struct SafetensorsContents {
  json header;
  Bytes data;
  std::vector<float> f16(const std::string& name) const {
    const auto& entry = header.at(name);
    const size_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    std::vector<float> out;
    for (size_t i = begin; i < end; i += 2) {
      uint16_t bits;
      std::memcpy(&bits, &data[i], 2);
      out.push_back(half_to_float(bits));
    }
    return out;
  }
};

SafetensorsContents read_safetensors(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  in.read(&header[0], static_cast<std::streamsize>(header_size));
  SafetensorsContents contents;
  contents.header = json::parse(header);
  contents.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return contents;
}

std::string convert_error(const GgufBuilder& builder) {
  const std::string path = write_scratch_file("model.gguf", builder.build());
  const std::string message = error_message(
      [&] { convert_gguf_to_hf(path, (scratch_dir() / "out_error").string(), [](const std::string&) {}); });
  return message.empty() ? "(converted without error)" : message;
}

}  // namespace

// ---- conversion ---------------------------------------------------------------------------------

TEST_CASE("convert_gguf_to_hf: tiny llama -> config, HF tensors, un-permuted q/k, tokenizer", "[gguf]") {
  for (bool tied : {true, false}) {
    TinyLlama model = tiny_llama(tied);
    const std::string path = write_scratch_file("tiny.gguf", model.builder.build());
    const fs::path out = scratch_dir() / (tied ? "hf_tied" : "hf_untied");
    std::vector<std::string> lines;
    std::vector<std::pair<int64_t, int64_t>> counts;  // what a progress bar is told
    convert_gguf_to_hf(
        path, out.string(), [&](const std::string& line) { lines.push_back(line); },
        [&](int64_t done, int64_t total) { counts.emplace_back(done, total); });
    const int64_t tensors = 1 + 9 * kLayers + 1 + (tied ? 0 : 1);
    REQUIRE(lines.size() == 2);  // the model's description and the summary; progress goes to the counts
    REQUIRE_THAT(lines.back(), HAS_SUBSTRING(std::to_string(tensors) + " tensors"));
    REQUIRE(counts.size() == static_cast<size_t>(tensors + 1));
    for (size_t i = 0; i < counts.size(); ++i) CHECK(counts[i] == std::make_pair(static_cast<int64_t>(i), tensors));

    const json config = read_json(out / "config.json");
    REQUIRE(config["architectures"] == json::array({"LlamaForCausalLM"}));
    REQUIRE(config["model_type"] == "llama");
    REQUIRE(config["hidden_size"] == kH);
    REQUIRE(config["intermediate_size"] == kI);
    REQUIRE(config["num_hidden_layers"] == kLayers);
    REQUIRE(config["num_attention_heads"] == kHeads);
    REQUIRE(config["num_key_value_heads"] == kKvHeads);
    REQUIRE(config["head_dim"] == kHeadDim);
    REQUIRE(config["rms_norm_eps"] == 1e-5);
    REQUIRE(config["rope_theta"] == 100000.0);
    REQUIRE(config["rope_scaling"].is_null());
    REQUIRE(config["max_position_embeddings"] == 2048);
    REQUIRE(config["vocab_size"] == kVocab);
    REQUIRE(config["tie_word_embeddings"] == tied);
    REQUIRE(config["bos_token_id"] == 1);
    REQUIRE(config["eos_token_id"] == 2);
    REQUIRE(config["torch_dtype"] == "float16");
    REQUIRE(config["hidden_act"] == "silu");

    const SafetensorsContents weights = read_safetensors(out / "model.safetensors");
    const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
        {"model.embed_tokens.weight", {kVocab, kH}},
        {"model.layers.1.input_layernorm.weight", {kH}},
        {"model.layers.1.self_attn.q_proj.weight", {kHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.k_proj.weight", {kKvHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.v_proj.weight", {kKvHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.o_proj.weight", {kH, kHeads * kHeadDim}},
        {"model.layers.1.post_attention_layernorm.weight", {kH}},
        {"model.layers.1.mlp.gate_proj.weight", {kI, kH}},
        {"model.layers.1.mlp.up_proj.weight", {kI, kH}},
        {"model.layers.1.mlp.down_proj.weight", {kH, kI}},
        {"model.norm.weight", {kH}},
    };
    for (const auto& [name, shape] : expected) {
      INFO(name);
      REQUIRE(weights.header.contains(name));
      REQUIRE(weights.header[name]["dtype"] == "F16");
      REQUIRE(weights.header[name]["shape"].get<std::vector<int64_t>>() == shape);
    }
    REQUIRE(weights.header.contains("lm_head.weight") == !tied);
    REQUIRE(weights.header.size() == 1 + 9 * kLayers + 1 + (tied ? 0 : 1) + 1);  // + __metadata__

    // llama.cpp's q/k permutation is undone exactly (k with the KV head count); v is untouched.
    REQUIRE(weights.f16("model.layers.0.self_attn.q_proj.weight") == model.hf_q0);
    REQUIRE(weights.f16("model.layers.0.self_attn.k_proj.weight") == model.hf_k0);
    REQUIRE(weights.f16("model.layers.0.self_attn.v_proj.weight") == pattern(kKvHeads * kHeadDim * kH, 40));
    REQUIRE(weights.f16("model.embed_tokens.weight") == pattern(kVocab * kH, 1));

    const json tokenizer = read_json(out / "tokenizer.json");
    REQUIRE(tokenizer["model"]["type"] == "BPE");
    REQUIRE(tokenizer["model"]["vocab"].size() == kVocab);
    REQUIRE(tokenizer["model"]["vocab"]["abc"] == 10);
    REQUIRE(tokenizer["model"]["merges"] == json::parse(R"([["a","b"],["ab","c"],["Ġ","a"]])"));
    REQUIRE(tokenizer["added_tokens"].size() == 4);
    REQUIRE(tokenizer["added_tokens"][1]["content"] == "<|im_start|>");
    REQUIRE(tokenizer["added_tokens"][1]["special"] == true);
    REQUIRE(tokenizer["added_tokens"][3]["content"] == "<think>");
    REQUIRE(tokenizer["added_tokens"][3]["special"] == false);
    REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][0]["type"] == "Digits");
    REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][1]["type"] == "ByteLevel");
    REQUIRE(tokenizer["decoder"]["type"] == "ByteLevel");

    const json tokenizer_config = read_json(out / "tokenizer_config.json");
    REQUIRE(tokenizer_config["add_bos_token"] == false);
    REQUIRE(tokenizer_config["bos_token"] == "<|im_start|>");
    REQUIRE(tokenizer_config["eos_token"] == "<|im_end|>");
    REQUIRE(tokenizer_config["pad_token"].is_null());
    REQUIRE(tokenizer_config["chat_template"] == "{{ messages }}");
    REQUIRE(tokenizer_config["model_max_length"] == 2048);
    const json generation = read_json(out / "generation_config.json");
    REQUIRE(generation["bos_token_id"] == 1);
    REQUIRE(generation["eos_token_id"] == 2);
  }
}

TEST_CASE("convert_gguf_to_hf: qwen2 keeps q/k rows as stored and writes biases", "[gguf]") {
  TinyLlama model = tiny_llama(true, "qwen2");
  const std::string path = write_scratch_file("qwen2.gguf", model.builder.build());
  const fs::path out = scratch_dir() / "hf_qwen2";
  convert_gguf_to_hf(path, out.string(), [](const std::string&) {});
  const json config = read_json(out / "config.json");
  REQUIRE(config["architectures"] == json::array({"Qwen2ForCausalLM"}));
  REQUIRE(config["model_type"] == "qwen2");
  REQUIRE(config["attention_bias"] == true);
  const SafetensorsContents weights = read_safetensors(out / "model.safetensors");
  REQUIRE(weights.f16("model.layers.0.self_attn.q_proj.weight") == model.hf_q0);
  REQUIRE(weights.f16("model.layers.0.self_attn.k_proj.weight") == model.hf_k0);
  REQUIRE(weights.f16("model.layers.1.self_attn.k_proj.bias") == pattern(kKvHeads * kHeadDim, 121));
  REQUIRE(weights.header["model.layers.1.self_attn.q_proj.bias"]["shape"] == json::array({kHeads * kHeadDim}));
  const json tokenizer = read_json(out / "tokenizer.json");
  REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][0]["type"] == "Split");
  REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][1]["use_regex"] == false);
}

TEST_CASE("convert_gguf_to_hf: refuses what it cannot convert faithfully", "[gguf]") {
  REQUIRE_THAT(convert_error(tiny_llama(true, "gpt2").builder),
               HAS_SUBSTRING("GGUF architecture 'gpt2' is not supported (supported: llama, qwen2)"));
  // A "llama" vocabulary without an unknown piece: libsentencepiece would not load its tokenizer.model.
  REQUIRE_THAT(convert_error(tiny_llama(true, "llama", "llama").builder),
               HAS_SUBSTRING("(tokenizer.ggml.model 'llama') does not make a valid tokenizer.model"));
  REQUIRE_THAT(convert_error(tiny_llama(true, "llama", "bert").builder),
               HAS_SUBSTRING("tokenizer.ggml.model 'bert' is not supported"));
  GgufBuilder duplicate = tiny_llama(true).builder;
  duplicate.kv_u32("llama.block_count", 3);
  REQUIRE_THAT(convert_error(duplicate), HAS_SUBSTRING("duplicate key (in KV"));

  // A type the reader knows (IQ4_NL: 32-element blocks of 18 bytes) but the converter cannot dequantize.
  GgufBuilder iq4 = tiny_llama(true).builder;
  iq4.tensors[2].type = 20;
  iq4.tensors[2].data.assign(18 * (kH * kHeads * kHeadDim / 32), 0);
  REQUIRE_THAT(convert_error(iq4), HAS_SUBSTRING("blk.0.attn_q.weight: GGUF tensor type IQ4_NL is not supported"));

  GgufBuilder rope_freqs = tiny_llama(true).builder;
  rope_freqs.tensor_f32("rope_freqs.weight", {kHeadDim / 2}, std::vector<float>(kHeadDim / 2, 1.0f));
  REQUIRE_THAT(convert_error(rope_freqs), HAS_SUBSTRING("rope_freqs.weight: these per-dimension rope factors"));

  GgufBuilder extra = tiny_llama(true).builder;
  extra.tensor_f32("blk.5.attn_norm.weight", {kH}, pattern(kH, 1));
  REQUIRE_THAT(convert_error(extra), HAS_SUBSTRING("unexpected tensor blk.5.attn_norm.weight"));

  GgufBuilder wrong_shape = tiny_llama(true).builder;
  wrong_shape.tensors[1].dims = {kH / 2};
  wrong_shape.tensors[1].data.resize(kH / 2 * 4);
  REQUIRE_THAT(convert_error(wrong_shape),
               HAS_SUBSTRING("blk.0.attn_norm.weight: expected shape [32] (PyTorch order), got [16]"));
}

// ---- SentencePiece ("llama") vocabularies -------------------------------------------------------

namespace {

// A small BPE SentencePiece model (800 pieces, 256 of them bytes) trained with spm_train (Llama's settings: identity normalization,
// whitespace kept, byte fallback), once per test run.
const fs::path& trained_sentencepiece_model() {
  static const fs::path model = [] {
    const fs::path dir = scratch_dir() / "spm";
    fs::create_directories(dir);
    std::ifstream text(text_data("pride_and_prejudice.txt"), std::ios::binary);
    std::ofstream corpus(dir / "corpus.txt", std::ios::binary);
    std::string line;
    for (int i = 0; i < 2000 && std::getline(text, line); ++i) corpus << line << "\n";
    corpus.close();
    const std::string command = "spm_train --input=" + (dir / "corpus.txt").string() + " --model_prefix=" +
                                (dir / "m").string() +
                                " --vocab_size=800 --model_type=bpe --byte_fallback=true --character_coverage=1.0"
                                " --normalization_rule_name=identity --remove_extra_whitespaces=false --minloglevel=2 > " +
                                (dir / "train.log").string() + " 2>&1";
    REQUIRE(std::system(command.c_str()) == 0);
    return dir / "m.model";
  }();
  return model;
}

// The vocabulary as llama.cpp's converter puts it into a GGUF: pieces, scores and piece types.
TinyVocabulary gguf_vocabulary_of(const fs::path& model_path) {
  sentencepiece::SentencePieceProcessor processor;
  REQUIRE(processor.Load(model_path.string()).ok());
  TinyVocabulary v;
  for (int id = 0; id < processor.GetPieceSize(); ++id) {
    v.tokens.push_back(processor.IdToPiece(id));
    v.scores.push_back(processor.GetScore(id));
    v.types.push_back(processor.IsUnknown(id) ? 2 : processor.IsControl(id) ? 3 : processor.IsUnused(id) ? 5
                      : processor.IsByte(id) ? 6 : 1);
  }
  v.unk = static_cast<uint32_t>(processor.unk_id());
  v.bos = static_cast<uint32_t>(processor.bos_id());
  v.eos = static_cast<uint32_t>(processor.eos_id());
  return v;
}

}  // namespace

TEST_CASE("convert_gguf_to_hf: a SentencePiece vocabulary becomes a tokenizer.model that tokenizes as the original",
          "[gguf][sentencepiece]") {
  const fs::path original = trained_sentencepiece_model();
  const TinyVocabulary vocabulary = gguf_vocabulary_of(original);
  REQUIRE(vocabulary.tokens.size() == 800);
  const std::string path = write_scratch_file("spm.gguf", tiny_llama(false, "llama", "llama", &vocabulary).builder.build());
  const fs::path out = scratch_dir() / "hf_spm";
  std::vector<std::string> lines;
  convert_gguf_to_hf(path, out.string(), [&](const std::string& line) { lines.push_back(line); });
  REQUIRE_THAT(lines.back(), HAS_SUBSTRING("800 SentencePiece pieces (tokenizer.model)"));
  REQUIRE(fs::exists(out / "tokenizer.model"));
  REQUIRE(!fs::exists(out / "tokenizer.json"));
  const json tokenizer_config = read_json(out / "tokenizer_config.json");
  REQUIRE(tokenizer_config["tokenizer_class"] == "LlamaTokenizer");
  REQUIRE(tokenizer_config["add_bos_token"] == true);  // llama.cpp's default for SentencePiece vocabularies
  REQUIRE(tokenizer_config["bos_token"] == "<s>");
  REQUIRE(read_json(out / "config.json")["vocab_size"] == 800);

  // The reference: libsentencepiece on the model spm_train wrote, through the same tokenizer class.
  const SentencePieceTokenizer reference(original.string(), TokenizerConfig{});
  const std::unique_ptr<Tokenizer> converted = load_tokenizer(out.string());
  REQUIRE(converted->vocab_size() == 800);
  REQUIRE(converted->bos_id() == reference.bos_id());
  REQUIRE(converted->adds_bos_by_default());
  for (const std::string text : {"It is a truth universally acknowledged, that a single man",
                                 "  two leading spaces and   inner runs  ", "Mr. Darcy's 1813 letter\n\nnew paragraph",
                                 "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 (byte fallback)", "<s>literal</s> control",
                                 "x"}) {
    INFO(text);
    const std::vector<int32_t> expected = reference.encode(text, true);
    CHECK(converted->encode(text, true) == expected);
    CHECK(converted->decode(expected) == reference.decode(expected));
  }
}

// ---- llama3 rope_freqs --------------------------------------------------------------------------

namespace {

// llama.cpp convert_hf_to_gguf.py (LlamaModel, rope_type llama3), written out again here: the
// rope_freqs.weight factors for the tiny model (head_dim 8, rope theta 100000).
std::vector<float> llama3_rope_freqs(double factor, double low, double high, double original) {
  std::vector<float> factors;
  for (int i = 0; i < kHeadDim; i += 2) {
    const double freq = 1.0 / std::pow(100000.0, static_cast<double>(i) / kHeadDim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < original / high) factors.push_back(1.0f);
    else if (wavelen > original / low) factors.push_back(static_cast<float>(factor));
    else {
      const double smooth = (original / wavelen - low) / (high - low);
      factors.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return factors;
}

}  // namespace

TEST_CASE("convert_gguf_to_hf: llama3 rope_freqs becomes rope_scaling llama3, other factors are refused",
          "[gguf][rope]") {
  SECTION("Llama 3.1's parameters") {
    GgufBuilder builder = tiny_llama(true).builder;
    builder.tensor_f32("rope_freqs.weight", {kHeadDim / 2}, llama3_rope_freqs(8, 1, 4, 8192));
    const std::string path = write_scratch_file("llama3.gguf", builder.build());
    const fs::path out = scratch_dir() / "hf_llama3";
    convert_gguf_to_hf(path, out.string(), [](const std::string&) {});
    const json rope = read_json(out / "config.json")["rope_scaling"];
    CHECK(rope == json::parse(R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"));
    const ModelConfig config = load_model_config(out.string());
    CHECK(config.rope_scaling.type == "llama3");
    CHECK(config.rope_scaling.factor == 8.0f);
    const SafetensorsContents weights = read_safetensors(out / "model.safetensors");
    CHECK(!weights.header.contains("rope_freqs.weight"));
  }
  SECTION("another original context: an equivalent llama3 scaling that reproduces every factor") {
    const std::vector<float> stored = llama3_rope_freqs(16, 1, 4, 4096);
    GgufBuilder builder = tiny_llama(true).builder;
    builder.tensor_f32("rope_freqs.weight", {kHeadDim / 2}, stored);
    const std::string path = write_scratch_file("llama3_4096.gguf", builder.build());
    const fs::path out = scratch_dir() / "hf_llama3_4096";
    convert_gguf_to_hf(path, out.string(), [](const std::string&) {});
    const json rope = read_json(out / "config.json")["rope_scaling"];
    REQUIRE(rope["rope_type"] == "llama3");
    CHECK(rope["factor"] == 16.0);
    const std::vector<float> recomputed =
        llama3_rope_freqs(16, rope["low_freq_factor"].get<double>(), rope["high_freq_factor"].get<double>(),
                          rope["original_max_position_embeddings"].get<double>());
    for (size_t i = 0; i < stored.size(); ++i) CHECK(std::abs(recomputed[i] - stored[i]) <= 1e-4 * stored[i]);
  }
  SECTION("factors no llama3 scaling makes") {
    GgufBuilder builder = tiny_llama(true).builder;
    builder.tensor_f32("rope_freqs.weight", {kHeadDim / 2}, {1.0f, 3.0f, 1.5f, 8.0f});
    REQUIRE_THAT(convert_error(builder), HAS_SUBSTRING("rope_freqs.weight: these per-dimension rope factors"));
    GgufBuilder wrong_length = tiny_llama(true).builder;
    wrong_length.tensor_f32("rope_freqs.weight", {kHeadDim}, std::vector<float>(kHeadDim, 2.0f));
    REQUIRE_THAT(convert_error(wrong_length), HAS_SUBSTRING("rope_freqs.weight: expected 4 factors"));
  }
}

// ---- memory ---------------------------------------------------------------------------------------

namespace {

// A llama GGUF with hidden size `H` (16 heads, I = H) and `layers` layers of F16 zeros.
Bytes wide_llama_gguf(uint64_t H, int layers) {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.embedding_length", static_cast<uint32_t>(H));
  b.kv_u32("llama.feed_forward_length", static_cast<uint32_t>(H));
  b.kv_u32("llama.block_count", static_cast<uint32_t>(layers));
  b.kv_u32("llama.attention.head_count", 16);
  b.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.kv_u32("llama.context_length", 2048);
  b.kv_string("tokenizer.ggml.model", "gpt2");
  b.kv_strings("tokenizer.ggml.tokens", {"a", "b", "ab", "c"});
  b.kv_strings("tokenizer.ggml.merges", {"a b"});
  auto zeros = [](uint64_t n) { return Bytes(n * 2, 0); };
  b.tensor("token_embd.weight", {H, 4}, 1, zeros(4 * H));
  for (int i = 0; i < layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    for (const char* name : {"attn_norm", "ffn_norm"}) b.tensor(p + name + ".weight", {H}, 1, zeros(H));
    for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
      b.tensor(p + name + ".weight", {H, H}, 1, zeros(H * H));
  }
  b.tensor("output_norm.weight", {H}, 1, zeros(H));
  return b.build();
}

// Runs `run-llm convert` and returns its peak resident set in bytes (from wait4's rusage).
int64_t convert_peak_rss(const std::string& gguf, const std::string& out) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A forked child starts with the parent's peak RSS as its own; "5" resets the peak to the current
    // RSS (proc(5), clear_refs), so what wait4 reports is run-llm's peak, not the test process's.
    const int clear = open("/proc/self/clear_refs", O_WRONLY);
    if (clear >= 0) {
      if (write(clear, "5", 1) != 1) _exit(126);
      close(clear);
    }
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execl(RUNLLM_BINARY, RUNLLM_BINARY, "convert", gguf.c_str(), "--out", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  REQUIRE(wait4(pid, &status, 0, &usage) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace

TEST_CASE("convert streams tensors: peak memory grows with the largest tensor, not the model", "[gguf][memory]") {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine (256 MiB), so peak RSS says nothing there.
  SUCCEED("skipped under AddressSanitizer");
  return;
#endif
  // 1 layer vs 8 layers of 7 tensors of 1024 x 1024 (2 MiB each in fp16, 4 MiB as fp32): the
  // 8-layer model has 112 MiB of fp16 weights, which the converter once buffered whole. (run-llm itself
  // starts at about 225 MiB, its libraries: the difference is what converting adds.)
  // Built in a child process: the allocator keeps freed memory, and a forked process starts with its
  // parent's resident pages. (scratch_dir() is made here first, so that the child uses the same one.)
  const fs::path dir = scratch_dir();
  const pid_t builder = fork();
  REQUIRE(builder >= 0);
  if (builder == 0) {
    try {
      write_scratch_file("wide1.gguf", wide_llama_gguf(1024, 1));
      write_scratch_file("wide8.gguf", wide_llama_gguf(1024, 8));
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(builder, &status, 0) == builder);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  const std::string small = (dir / "wide1.gguf").string(), large = (dir / "wide8.gguf").string();
  const int64_t small_peak = convert_peak_rss(small, (scratch_dir() / "wide1").string());
  const int64_t large_peak = convert_peak_rss(large, (scratch_dir() / "wide8").string());
  INFO("peak RSS: 1 layer " << small_peak / 1048576.0 << " MiB, 8 layers " << large_peak / 1048576.0 << " MiB");
  CHECK(fs::file_size(scratch_dir() / "wide8" / "model.safetensors") > (uint64_t{112} << 20));
  CHECK(large_peak - small_peak < (int64_t{24} << 20));
  fs::remove(small);
  fs::remove(large);
  fs::remove_all(scratch_dir() / "wide1");
  fs::remove_all(scratch_dir() / "wide8");
}
