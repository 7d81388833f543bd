#include "model/model_directory.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "model/quantize/quantizer.h"
#include "runtime/error.h"
#include "runtime/json_parse.h"
#include "runtime/progress.h"
#include "runtime/vocab_limit.h"
#include "tokenizer/chat_template.h"

namespace runllm {

namespace {

// Reads a JSON file that may be absent (null then); a present but malformed file is an error naming it.
nlohmann::json read_optional_json(const std::string& path) {
  return read_optional_json_file(path).value_or(nlohmann::json());
}

int32_t eos_token_id(const nlohmann::json& value, const std::string& source) {
  if (!value.is_number_unsigned())
    throw Error(source + ": eos_token_id " + value.dump() + " must be a non-negative integer token id");
  if (value.get<uint64_t>() >= static_cast<uint64_t>(kMaxVocabSize))
    throw Error(source + ": eos_token_id " + value.dump() + " is absurdly large (limit " +
                std::to_string(kMaxVocabSize - 1) + ")");
  return static_cast<int32_t>(value.get<uint64_t>());
}

void add_token_ids(const nlohmann::json& value, const std::string& source, std::set<int32_t>& ids) {
  if (value.is_null()) return;
  if (value.is_number_integer()) {
    ids.insert(eos_token_id(value, source));
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (!item.is_number_integer()) throw Error(source + ": eos_token_id list must hold integers");
      ids.insert(eos_token_id(item, source));
    }
  } else {
    throw Error(source + ": eos_token_id must be an integer or a list of integers");
  }
}

// Reports loading progress per decoder layer while delegating to the real source; the done line
// comes after lm_head. A load shorter than two seconds (the default model's) prints nothing.
class ProgressLinearSource : public LinearSource {
 public:
  ProgressLinearSource(LinearSource& inner, int64_t layers, const std::string& dir)
      : inner_(inner), progress_("loading " + dir, layers, "layers", quiet_options()) {}
  DecoderLayer load_layer(int64_t layer) override {
    DecoderLayer loaded = inner_.load_layer(layer);
    progress_.update(++done_);
    return loaded;
  }
  std::unique_ptr<Linear> load_lm_head() override {
    std::unique_ptr<Linear> head = inner_.load_lm_head();
    progress_.finish();
    return head;
  }

 private:
  static ProgressOptions quiet_options() {
    ProgressOptions options;
    options.quiet_seconds = 2.0;
    return options;
  }
  LinearSource& inner_;
  ProgressReporter progress_;
  int64_t done_ = 0;
};

}  // namespace

ModelDirectory open_model_directory(const std::string& dir, bool verbose, const LinearOptions& linears,
                                    LayerSink* sink) {
  const auto start = std::chrono::steady_clock::now();
  ModelDirectory result;
  result.path = dir;
  result.config = load_model_config(dir);
  result.quant = load_quant_config(dir);
  // --quantize awq-rtn / gptq-rtn: the group size must fit every linear; say which sizes do before loading.
  if (result.quant.method == QuantMethod::None &&
      (linears.quantize == LoadQuantization::AwqRtn || linears.quantize == LoadQuantization::GptqRtn))
    check_group_size_fits(result.config, linears.group_size);
  for (int64_t id : result.config.eos_token_ids) result.eos_ids.insert(static_cast<int32_t>(id));
  const std::string generation_config_path = dir + "/generation_config.json";
  const nlohmann::json generation_config = read_optional_json(generation_config_path);
  if (generation_config.is_object() && generation_config.contains("eos_token_id"))
    add_token_ids(generation_config["eos_token_id"], generation_config_path, result.eos_ids);

  result.tokenizer = load_tokenizer(dir);
  CheckpointChatTemplate chat_template = load_chat_template(dir);
  result.chat_template = std::move(chat_template.text);
  result.chat_template_source = std::move(chat_template.source);
  if (result.tokenizer->vocab_size() > result.config.vocab_size)
    throw Error(dir + ": tokenizer has " + std::to_string(result.tokenizer->vocab_size()) +
                " tokens but config.json vocab_size is " + std::to_string(result.config.vocab_size));
  for (int32_t id : result.eos_ids)
    if (id < 0 || id >= result.config.vocab_size)
      throw Error(dir + ": eos_token_id " + std::to_string(id) + " is outside the vocabulary");

  const Checkpoint checkpoint = Checkpoint::open_dir(dir);
  CheckpointLinearSource checkpoint_source(checkpoint, result.config, result.quant, linears);
  ProgressLinearSource source(checkpoint_source, result.config.num_hidden_layers, dir);
  if (verbose) std::fprintf(stderr, "format: %s\n", result.quant.describe().c_str());
  result.model = LlamaModel::load(checkpoint, result.config, source, sink);
  if (verbose) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "loaded %s: %lld layers, hidden %lld, vocab %lld in %.2f s\n", dir.c_str(),
                 static_cast<long long>(result.config.num_hidden_layers),
                 static_cast<long long>(result.config.hidden_size),
                 static_cast<long long>(result.config.vocab_size), seconds);
    for (const std::string& line : result.model->describe_layers()) std::fprintf(stderr, "  %s\n", line.c_str());
  }
  return result;
}

}  // namespace runllm
