#!/usr/bin/env python3
"""Tiny random-weight checkpoints of each supported family, saved by transformers itself, with golden
logits of transformers' own forward (fp32), for tests/e2e/test_family_references.cpp.

For each family below, a model with hidden 64, 2 heads of head_dim 64 (not hidden / heads), 2 layers and
a vocabulary of a few hundred tokens is
built with transformers' configuration and model classes (random weights; biases and norm weights
randomized too, since transformers initializes them to 0 and 1), saved with save_pretrained
(safetensors, in the family's dtype), and reloaded from disk in fp32 with eager attention: the
golden logits are of the saved (rounded) weights, exactly what run-llm reads.

Writes tests/data/families/<name>/: the checkpoint (config.json, model.safetensors, tokenizer files)
and reference.json: the prompt, its token ids (from transformers' tokenizer), the logits of the
saved positions, and `sensitivity`: how far (max|diff| / max|ref|) the same weights land without
the family's feature (rope scaling, sliding window, biases), to show the test would notice it
being ignored.

Families:
  llama2_spm      LlamaForCausalLM, SentencePiece tokenizer.model (trained here), no GQA, fp16, separate lm_head
  llama31_llama3  LlamaForCausalLM, rope_parameters llama3, bf16, tied
  mistral_window  MistralForCausalLM, sliding_window 8 < the 24-token prompt, fp32
  qwen2_bias      Qwen2ForCausalLM, q/k/v biases, use_sliding_window on layer 1 only, bf16, tied
  llama_yarn      LlamaForCausalLM, rope_parameters yarn (factor 4, original 16 positions), attention_bias, fp16
  llama_dynamic   LlamaForCausalLM, legacy spelling (rope_theta + rope_scaling {"type": "dynamic"},
                  torch_dtype), max_position_embeddings 16 < the prompt, fp16, tied
  llama_mlp_bias  LlamaForCausalLM, mlp_bias (gate/up/down biases), fp16

Command (CPU only; `pip install torch transformers safetensors sentencepiece`, about a minute):
  python3 scripts/reference/make_family_references.py [FAMILY...]
With family names, only those are (re)written; the others' committed files stay as they are.
"""
import json
import os
import shutil
import sys
import tempfile

import sentencepiece as spm
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (AutoModelForCausalLM, LlamaConfig, MistralConfig, PreTrainedTokenizerFast,
                          Qwen2Config)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "families")
CORPUS = os.path.join(ROOT, "tests", "data", "text", "pride_and_prejudice.txt")
PROMPT = "It is a truth universally acknowledged, that a single man in possession of a good fortune"
PROMPT_TOKENS = 24
SEED = 1234
ONLY = set(sys.argv[1:])  # family names to write; empty = all


def corpus_lines(count=3000):
    with open(CORPUS, encoding="utf-8") as f:
        return [line.rstrip("\n") for _, line in zip(range(count), f) if line.strip()]


def train_byte_level_bpe(vocab_size=320):
    """A GPT-2 style byte-level BPE tokenizer.json, trained on the calibration text."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus_lines(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>")


def train_sentencepiece(directory, vocab_size=480):
    """A Llama-2 style SentencePiece BPE model (byte fallback, identity normalization)."""
    prefix = os.path.join(directory, "spm")
    with open(prefix + ".txt", "w", encoding="utf-8") as f:
        f.write("\n".join(corpus_lines()))
    spm.SentencePieceTrainer.train(
        input=prefix + ".txt", model_prefix=prefix, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, bos_id=1, eos_id=2, unk_id=0,
        minloglevel=2)
    return prefix + ".model"


def randomize(model, std=0.1):
    """transformers zeroes biases and sets norm weights to 1: make both random so ignoring them shows."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.normal_(0.0, std)
            elif "norm" in name:
                parameter.copy_(1.0 + std * torch.randn_like(parameter))


def logits_of(directory, ids, config_override=None):
    """transformers' fp32 forward of the saved checkpoint (optionally with config keys changed)."""
    kwargs = {"dtype": torch.float32, "attn_implementation": "eager"}
    if config_override is not None:
        config = transformers.AutoConfig.from_pretrained(directory)
        config_override(config)
        kwargs["config"] = config
    model = AutoModelForCausalLM.from_pretrained(directory, **kwargs).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


def write_family(name, config, dtype, tokenizer_writer, without_feature, describe, legacy_config=None):
    if ONLY and name not in ONLY:
        return
    directory = os.path.join(OUT, name)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    ids = tokenizer_writer(directory)
    assert len(ids) >= PROMPT_TOKENS, (name, len(ids))
    ids = ids[:PROMPT_TOKENS]

    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize(model)
    model.to(dtype).save_pretrained(directory, safe_serialization=True)
    if legacy_config is not None:  # rewrite config.json in an older transformers' spelling
        path = os.path.join(directory, "config.json")
        with open(path) as f:
            saved = json.load(f)
        legacy_config(saved)
        with open(path, "w") as f:
            json.dump(saved, f, indent=2, sort_keys=True)
            f.write("\n")
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(directory, extra)):
            os.remove(os.path.join(directory, extra))

    reference = logits_of(directory, ids)
    plain = logits_of(directory, ids, without_feature)
    positions = list(range(0, PROMPT_TOKENS, 3)) + [PROMPT_TOKENS - 2, PROMPT_TOKENS - 1]
    positions = sorted(set(positions))
    document = {
        "family": name,
        "what": describe,
        "made_by": "scripts/reference/make_family_references.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "prompt": PROMPT,
        "token_ids": ids,
        "vocab_size": int(reference.shape[1]),
        "positions": positions,
        "logits": [[float("%.7g" % v) for v in reference[p].tolist()] for p in positions],
        "sensitivity": relative(plain, reference),
    }
    with open(os.path.join(directory, "reference.json"), "w") as f:
        json.dump(document, f, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))
    print(f"{name}: {size / 1024:.0f} KiB, sensitivity {document['sensitivity']:.3g}", file=sys.stderr)


def bpe_writer(tokenizer):
    def write(directory):
        tokenizer.save_pretrained(directory)
        return tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    return write


def spm_writer(model_file):
    def write(directory):
        shutil.copy(model_file, os.path.join(directory, "tokenizer.model"))
        with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
            json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                       "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"}, f, indent=2)
        processor = spm.SentencePieceProcessor(model_file=model_file)
        return [processor.bos_id()] + processor.encode(PROMPT)
    return write


def small(config_class, vocab_size, **overrides):
    # bos/eos: <|endoftext|> (0) of the byte-level BPE; the SentencePiece family overrides them.
    # head_dim 64 (what the GPU kernels take) with hidden 64 and 2 heads: every family also has a
    # head_dim that differs from hidden / heads, and one kv head (GQA) unless overridden.
    values = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=64,
                  rms_norm_eps=1e-5, initializer_range=0.1, bos_token_id=0, eos_token_id=0,
                  tie_word_embeddings=False)
    values.update(overrides)
    return config_class(**values)


def main():
    torch.manual_seed(SEED)
    bpe = train_byte_level_bpe()
    bpe_vocab = len(bpe)
    with tempfile.TemporaryDirectory() as scratch:
        spm_model = train_sentencepiece(scratch)
        spm_vocab = spm.SentencePieceProcessor(model_file=spm_model).vocab_size()

        def default_rope(config):
            config.rope_parameters = {"rope_type": "default", "rope_theta": config.rope_parameters["rope_theta"]}

        write_family("llama2_spm", small(LlamaConfig, spm_vocab, num_key_value_heads=2, bos_token_id=1, eos_token_id=2), torch.float16,
                     spm_writer(spm_model), lambda c: setattr(c, "rms_norm_eps", 1e-1),
                     "Llama-2 style: SentencePiece tokenizer.model with BOS, fp16, separate lm_head "
                     "(sensitivity: rms_norm_eps 0.1 instead of 1e-5)")
        write_family("llama31_llama3",
                     small(LlamaConfig, bpe_vocab, tie_word_embeddings=True, rope_parameters={
                         "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
                     torch.bfloat16, bpe_writer(bpe), default_rope,
                     "Llama-3.1 style: llama3 rope scaling, GQA, bf16, "
                     "tied embeddings (sensitivity: plain rope)")
        write_family("mistral_window", small(MistralConfig, bpe_vocab, sliding_window=8), torch.float32,
                     bpe_writer(bpe), lambda c: setattr(c, "sliding_window", None),
                     "Mistral: sliding_window 8 shorter than the 24-token prompt, fp32 "
                     "(sensitivity: no window)")

        def no_bias_no_window(config):
            config.use_sliding_window = False
            config.sliding_window = None
            config.layer_types = ["full_attention"] * config.num_hidden_layers

        write_family("qwen2_bias",
                     small(Qwen2Config, bpe_vocab, tie_word_embeddings=True, use_sliding_window=True,
                           sliding_window=6, max_window_layers=1),
                     torch.bfloat16, bpe_writer(bpe), no_bias_no_window,
                     "Qwen2: q/k/v biases, use_sliding_window with window 6 on layer 1 only (max_window_layers 1), "
                     "bf16, tied (sensitivity: no window; the biases cannot be switched off by config)")
        write_family("llama_yarn",
                     small(LlamaConfig, bpe_vocab, attention_bias=True, rope_parameters={
                         "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                         "original_max_position_embeddings": 16}),
                     torch.float16, bpe_writer(bpe), default_rope,
                     "yarn rope scaling (factor 4, 16 original positions, attention factor from factor), "
                     "attention_bias (q/k/v/o biases), fp16 (sensitivity: plain rope)")

        def legacy(saved):
            parameters = saved.pop("rope_parameters")
            saved["rope_theta"] = parameters.pop("rope_theta")
            parameters["type"] = parameters.pop("rope_type")
            saved["rope_scaling"] = parameters
            saved["torch_dtype"] = saved.pop("dtype")

        write_family("llama_dynamic",
                     small(LlamaConfig, bpe_vocab, max_position_embeddings=16, tie_word_embeddings=True,
                           rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}),
                     torch.float16, bpe_writer(bpe), default_rope,
                     "dynamic NTK rope (factor 2, max_position_embeddings 16 < the prompt) in the legacy "
                     "spelling (rope_theta, rope_scaling type, torch_dtype), fp16, tied (sensitivity: plain rope)",
                     legacy_config=legacy)
        write_family("llama_mlp_bias", small(LlamaConfig, bpe_vocab, mlp_bias=True), torch.float16,
                     bpe_writer(bpe), lambda c: setattr(c, "mlp_bias", False),
                     "Llama with mlp_bias: gate_proj/up_proj/down_proj biases, fp16 "
                     "(sensitivity: the same weights without the MLP biases)")


if __name__ == "__main__":
    main()
