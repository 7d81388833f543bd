#!/usr/bin/env python3
"""W8A8 checkpoints written by compressed-tensors' own IntQuantizationCompressor, and PyTorch
references of their forward with vLLM's dynamic per-token int8 activations (FORMATS.md §6).

Each checkpoint is made as llm-compressor's round-to-nearest W8A8 (no smoothing) makes it:
compressed-tensors' preset "W8A8" scheme (int8 symmetric per-channel weights, dynamic per-token int8
activations), weight scales from compressed_tensors' calculate_qparams on each row's min/max in the
checkpoint's dtype (absmax / 127.5, kept in that dtype), int8 weights from
IntQuantizationCompressor.compress, `ignore: ["lm_head"]`, and the quantization_config that
QuantizationConfig.model_dump() writes (with `moe_sparsity_config: null` etc.).

The reference forward (PyTorch, fp32, the int8 products summed exactly in float64) is vLLM's
compressed_tensors_w8a8_int8 scheme: per token t, s_t = max|x[t,:]| / 127,
xq = clamp(round_half_even(x * (127 / max|x[t,:]|)), -127, 127), y = (xq . wq) * w_scale * s_t.

Modes:
  tiny (default)  tiny random Llamas (hidden 64, head_dim 64, 2 layers, as make_family_references.py)
                  saved by transformers, quantized as above into tests/data/families/w8a8_compressed/
                  (fp16, untied) and w8a8_compressed_bf16/ (bf16, tied), each with reference.json:
                  golden logits of the reference forward on fixed token ids, in the families' format,
                  for tests/e2e/test_family_references.cpp.
  model SRC OUT [CHUNKS] [TOKENS.logits]
                  quantizes the fp16 checkpoint directory SRC (the default model) into OUT and prints
                  the reference's perplexity (fp32, and all in fp64) on the first CHUNKS (2) 512-token
                  windows of tests/data/text/wiki.test.raw, scored as run-llm perplexity scores them
                  (the second half of each window). Pass a `run-llm perplexity --save-logits` file of
                  the same windows to take run-llm's token ids from it (transformers' tokenizer of the
                  converted default model does not split digits as SmolLM2's does, so its ids differ).

Findings on the default model (issue 12; first 2 windows of 512, 8 in brackets): fp16 21.2794 in
run-llm and in PyTorch alike. The compressed-tensors checkpoint: PyTorch fp32 22.02 [24.19], fp64 21.92 [24.02];
run-llm 22.57 [24.55] with OPENBLAS_NUM_THREADS=2, 22.18 [24.24] with 1. Same checkpoint, same math:
per-token int8 rounding of every linear's input turns last-bit fp32 differences into whole int8 steps
that the later layers carry on, so W8A8 perplexities over 1-4k tokens spread by about 2% with the
summation order alone. On the tiny checkpoint run-llm's logits are within 5e-7 relative of this reference.

Needs (CPU only): pip install torch transformers safetensors compressed-tensors
"""
import json
import math
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def quantization_config():
    from compressed_tensors.quantization import QuantizationConfig, preset_name_to_scheme
    import compressed_tensors
    scheme = preset_name_to_scheme("W8A8", ["Linear"])
    config = QuantizationConfig(config_groups={"group_0": scheme}, ignore=["lm_head"], format="int-quantized",
                                quantization_status="compressed")
    document = json.loads(json.dumps(config.model_dump(), default=str))
    document["version"] = compressed_tensors.__version__
    document.setdefault("sparsity_config", {})
    document.setdefault("transform_config", {})
    return scheme, document


def compress_state_dict(state, scheme):
    """Quantizes every decoder linear of `state` (name -> tensor) with IntQuantizationCompressor."""
    from compressed_tensors.compressors.naive_quantized.base import IntQuantizationCompressor
    from compressed_tensors.quantization.utils import calculate_qparams
    out = {}
    for name, tensor in state.items():
        module = name[: -len(".weight")] if name.endswith(".weight") else None
        if module is None or not module.split(".")[-1] in LINEARS:
            out[name] = tensor
            continue
        # llm-compressor's MinMax observer, per channel: min/max of each row, in the weight's dtype.
        min_vals = tensor.amin(dim=1, keepdim=True)
        max_vals = tensor.amax(dim=1, keepdim=True)
        scale, zero_point = calculate_qparams(min_vals, max_vals, scheme.weights)
        compressed = IntQuantizationCompressor.compress(
            {"weight": tensor, "weight_scale": scale.to(tensor.dtype), "weight_zero_point": zero_point}, scheme)
        for key, value in compressed.items():
            out[module + "." + key] = value.contiguous()
    return out


class W8A8Reference(torch.nn.Module):
    """vLLM's dynamic per-token int8 linear on stored int8 weights and scales."""

    def __init__(self, qweight, scale, bias=None):
        super().__init__()
        self.qweight = qweight.to(torch.float64)          # [N, K], exact integers
        self.scale = scale.reshape(-1).to(torch.float32)  # [N]
        self.bias = None if bias is None else bias.to(torch.float32)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1]).to(torch.float32)
        absmax = x.abs().amax(dim=1, keepdim=True)
        token_scale = absmax / 127.0
        inverse = torch.where(absmax > 0, 127.0 / absmax, torch.zeros_like(absmax))
        xq = torch.clamp(torch.round(x * inverse), -127, 127)
        acc = (xq.to(torch.float64) @ self.qweight.t()).to(torch.float32)  # exact int32 sums
        y = (acc * self.scale) * token_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], -1)


def reference_model(directory):
    """transformers' fp32 model of `directory` with every quantized linear replaced by W8A8Reference."""
    from transformers import AutoConfig, AutoModelForCausalLM
    config = AutoConfig.from_pretrained(directory)
    quant = getattr(config, "quantization_config", None)
    if quant is not None:
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager").eval()
    state = load_file(os.path.join(directory, "model.safetensors"))
    dense = {k: v.to(torch.float32) for k, v in state.items() if not k.endswith("weight_scale")
             and not (k.endswith(".weight") and v.dtype == torch.int8)}
    missing, unexpected = model.load_state_dict(dense, strict=False)
    assert not unexpected, unexpected
    for name, module in list(model.named_modules()):
        if name + ".weight_scale" in state:
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            bias = state.get(name + ".bias")
            setattr(parent, name.rsplit(".", 1)[1],
                    W8A8Reference(state[name + ".weight"], state[name + ".weight_scale"], bias))
            missing = [m for m in missing if not m.startswith(name + ".")]
    missing = [m for m in missing if m != "lm_head.weight" or not config.tie_word_embeddings]
    assert not missing, missing
    if config.tie_word_embeddings:
        model.tie_weights()
    return model


def write_checkpoint(src_state, src_dir, out_dir, extra_files):
    scheme, qconfig = quantization_config()
    state = compress_state_dict(src_state, scheme)
    os.makedirs(out_dir, exist_ok=True)
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src_dir, "config.json")) as f:
        config = json.load(f)
    config["quantization_config"] = qconfig
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for name in extra_files:
        if os.path.exists(os.path.join(src_dir, name)):
            shutil.copy(os.path.join(src_dir, name), os.path.join(out_dir, name))
    return state


def perplexity(model, tokens, context, chunks):
    """llama.cpp's method as runtime/perplexity.cpp: the second half of each window is scored."""
    nll, count = 0.0, 0
    first = context // 2
    for chunk in range(chunks):
        window = tokens[chunk * context:(chunk + 1) * context]
        with torch.no_grad():
            logits = model(torch.tensor([window])).logits[0].to(torch.float64)
        logprobs = torch.log_softmax(logits, dim=-1)
        for j in range(first, context - 1):
            nll -= float(logprobs[j, window[j + 1]])
            count += 1
    return math.exp(nll / count)


def logits_file_tokens(path):
    """The evaluated token ids stored in a run-llm --save-logits file (runtime/logits_file.h)."""
    import struct
    with open(path, "rb") as f:
        header = f.read(36)
        assert header[:8] == b"RLLMLOGP", path
        count = struct.unpack("<Q", header[28:36])[0]
        return list(struct.unpack("<%di" % count, f.read(4 * count)))


def model_mode(src, out, chunks=2, tokens_file=None, context=512):
    from transformers import AutoTokenizer
    state = load_file(os.path.join(src, "model.safetensors"))
    write_checkpoint(state, src, out, ["tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                       "special_tokens_map.json", "chat_template.jinja"])
    if tokens_file is not None:
        tokens = logits_file_tokens(tokens_file)
    else:
        tokenizer = AutoTokenizer.from_pretrained(src)
        with open(os.path.join(ROOT, "tests", "data", "text", "wiki.test.raw"), encoding="utf-8") as f:
            tokens = tokenizer(f.read()[: 200000], add_special_tokens=False)["input_ids"]
    print(f"reference W8A8 (per-token int8 activations, absmax/127) perplexity over {chunks} x {context}: "
          f"fp32 {perplexity(reference_model(out), tokens, context, chunks):.4f}, fp64 "
          f"{perplexity(replaced(reference_model(out).double(), W8A8Float64), tokens, context, chunks):.4f}")


class W8A8Float64(torch.nn.Module):
    """W8A8Reference in float64 throughout: how far the reference's own fp32 rounding moves the logits."""

    def __init__(self, reference):
        super().__init__()
        self.qweight, self.scale = reference.qweight, reference.scale.to(torch.float64)
        self.bias = None if reference.bias is None else reference.bias.to(torch.float64)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1]).to(torch.float64)
        absmax = x.abs().amax(dim=1, keepdim=True)
        xq = torch.clamp(torch.round(x * torch.where(absmax > 0, 127.0 / absmax, torch.zeros_like(absmax))), -127, 127)
        y = (xq @ self.qweight.t()) * self.scale * (absmax / 127.0)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], -1)


class DequantizedOnly(torch.nn.Module):
    """The stored int8 weights dequantized, activations NOT quantized (for the test's sensitivity)."""

    def __init__(self, reference):
        super().__init__()
        self.weight = (reference.qweight.to(torch.float32) * reference.scale[:, None])
        self.bias = reference.bias

    def forward(self, x):
        return torch.nn.functional.linear(x.to(torch.float32), self.weight, self.bias)


def replaced(model, wrapper):
    for name, module in list(model.named_modules()):
        if isinstance(module, W8A8Reference):
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1], wrapper(module))
    return model


def tiny_mode():
    # fp16 and untied: lm_head is a dense fp16 Linear that `ignore: ["lm_head"]` must keep dense.
    tiny_checkpoint("w8a8_compressed", torch.float16, tied=False)
    # bf16 and tied, as the default model is: weight_scale is stored in bf16.
    tiny_checkpoint("w8a8_compressed_bf16", torch.bfloat16, tied=True)


def tiny_checkpoint(name, dtype, tied):
    """tests/data/families/NAME: a tiny Llama in the families' pattern, quantized as above."""
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_family_references as fam
    import transformers
    from transformers import AutoModelForCausalLM, LlamaConfig
    import compressed_tensors

    directory = os.path.join(fam.OUT, name)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    torch.manual_seed(fam.SEED)
    bpe = fam.train_byte_level_bpe()
    ids = fam.bpe_writer(bpe)(directory)[: fam.PROMPT_TOKENS]
    config = fam.small(LlamaConfig, len(bpe), tie_word_embeddings=tied)
    torch.manual_seed(fam.SEED)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fam.randomize(model)
    with tempfile.TemporaryDirectory() as scratch:
        model.to(dtype).save_pretrained(scratch, safe_serialization=True)
        state = load_file(os.path.join(scratch, "model.safetensors"))
        write_checkpoint(state, scratch, directory, [])

    reference = reference_model(directory)
    with torch.no_grad():
        logits = reference(torch.tensor([ids])).logits[0].float()
        exact = replaced(reference_model(directory).double(), W8A8Float64)(torch.tensor([ids])).logits[0].float()
        plain = replaced(reference_model(directory), DequantizedOnly)(torch.tensor([ids])).logits[0].float()

    def relative(a, b):
        return float((a - b).abs().max() / b.abs().max())

    positions = sorted(set(list(range(0, fam.PROMPT_TOKENS, 3)) + [fam.PROMPT_TOKENS - 2, fam.PROMPT_TOKENS - 1]))
    document = {
        "family": name,
        "what": "W8A8 int8 written by compressed-tensors' IntQuantizationCompressor (preset W8A8: per-channel "
                f"int8 weights with {str(dtype).split('.')[-1]} scales absmax/127.5 computed in that dtype, dynamic "
                f"per-token int8 activations, ignore lm_head, {'tied' if tied else 'untied'}), logits of vLLM's "
                "per-token int8 math emulated in PyTorch (sensitivity: the same int8 weights without activation "
                "quantization)",
        "made_by": "scripts/reference/make_w8a8_compressed_reference.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "compressed_tensors_version": compressed_tensors.__version__,
        "prompt": fam.PROMPT,
        "token_ids": ids,
        "vocab_size": int(logits.shape[1]),
        "positions": positions,
        "logits": [[float("%.7g" % v) for v in logits[p].tolist()] for p in positions],
        "sensitivity": relative(plain, logits),
        "float64_vs_float32": relative(exact, logits),
        # Positions where the fp32 and fp64 references agree (1e-5): at the others some linear's input
        # sits so near an int8 rounding boundary that the summation order decides the step, and the
        # flip is carried to the later positions; no implementation can be held to either answer there.
        "stable_positions": [p for p in positions if relative(exact[p], logits[p]) < 1e-5],
    }
    with open(os.path.join(directory, "reference.json"), "w") as f:
        json.dump(document, f, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))
    print(f"{name}: {size / 1024:.0f} KiB, sensitivity {document['sensitivity']:.3g}, "
          f"float64 vs float32 {document['float64_vs_float32']:.3g}, stable positions "
          f"{document['stable_positions']} of {positions}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "model":
        model_mode(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 2,
                   sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        tiny_mode()
