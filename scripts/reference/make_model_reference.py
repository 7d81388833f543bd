#!/usr/bin/env python3
"""Golden numbers for the end-to-end tests, computed independently of run-llm.

PyTorch + Hugging Face transformers rebuild SmolLM2-135M-Instruct from the same GGUF file that
`run-llm convert` reads (transformers dequantizes it and undoes llama.cpp's q/k permutation itself).
The weights are rounded to fp16 on load -- exactly what our fp16 model.safetensors stores -- and the
forward runs in fp32, like run-llm's CPU reference.

Writes tests/data/reference/:
  smollm2_logits.json   the fixed prompt, its token ids, and which positions were saved
  smollm2_logits.f32    float32 little-endian logits [positions, vocab] for those positions
  smollm2_perplexity.json  llama.cpp-method perplexity on the evaluation text (8 windows of 512)

Command (CPU is enough; about a minute):
  python3 scripts/reference/make_model_reference.py ~/.cache/run-llm/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import datetime
import json
import math
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPT = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"
CTX = 512
CHUNKS = 8


def smollm2_tokenizer_from_gguf(gguf_dir, gguf_file):
    """transformers' tokenizer built from the GGUF, with the one thing its GGUF converter drops.

    transformers ignores `tokenizer.ggml.pre` and always uses plain GPT-2 ByteLevel pre-tokenization.
    SmolLM2's GGUF says "smollm": llama.cpp (and SmolLM2's own tokenizer.json) isolate every digit
    before the GPT-2 split. That changes whitespace before digits ("\r\n 1" is "\r\n " + "1", not
    "\r\n" + " 1"), so the reference gets the pre-tokenizer the GGUF names.
    """
    from tokenizers import pre_tokenizers
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    return tokenizer


def main():
    gguf_path = os.path.abspath(sys.argv[1])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_dir = os.path.join(root, "tests", "data", "reference")
    eval_path = os.path.join(root, "tests", "data", "text", "wiki.test.raw")
    gguf_dir, gguf_file = os.path.split(gguf_path)

    tokenizer = smollm2_tokenizer_from_gguf(gguf_dir, gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float16,
                                                 attn_implementation="eager")
    # transformers refuses .float() on a GGUF-loaded model; upcast the fp16 parameters in place.
    for parameter in model.parameters():
        parameter.data = parameter.data.float()
    model.eval()
    torch.set_grad_enabled(False)

    ids = tokenizer.encode(PROMPT, add_special_tokens=False)
    logits = model(torch.tensor([ids])).logits[0].numpy().astype(np.float32)
    positions = [0, len(ids) // 2, len(ids) - 1]
    logits[positions].astype("<f4").tofile(os.path.join(out_dir, "smollm2_logits.f32"))
    provenance = {
        "generator": "scripts/reference/make_model_reference.py",
        "date": datetime.date.today().isoformat(),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "gguf": gguf_file,
    }
    with open(os.path.join(out_dir, "smollm2_logits.json"), "w") as f:
        json.dump({**provenance, "prompt": PROMPT, "token_ids": ids, "positions": positions,
                   "vocab_size": int(logits.shape[1]),
                   "argmax_last": int(logits[-1].argmax())}, f, indent=1)

    # llama.cpp's perplexity: non-overlapping windows of CTX tokens; in each, the logits of positions
    # CTX/2 .. CTX-2 score the next token (CTX/2 - 1 tokens per window). No BOS for this tokenizer.
    # newline="" keeps the file's CRLF line ends: run-llm (like llama.cpp) reads the bytes as they are.
    with open(eval_path, encoding="utf-8", newline="") as f:
        tokens = tokenizer.encode(f.read(), add_special_tokens=False)
    nll_sum, nll2_sum, count = 0.0, 0.0, 0
    first = CTX // 2
    for chunk in range(CHUNKS):
        window = torch.tensor([tokens[chunk * CTX:(chunk + 1) * CTX]])
        log_probs = torch.log_softmax(model(window).logits[0].double(), dim=-1)
        targets = window[0, first + 1:]
        nll = -log_probs[first:CTX - 1].gather(1, targets[:, None])[:, 0]
        nll_sum += nll.sum().item()
        nll2_sum += (nll * nll).sum().item()
        count += nll.numel()
        print(f"[{chunk + 1}] {math.exp(nll_sum / count):.4f}", file=sys.stderr)
    mean = nll_sum / count
    ppl = math.exp(mean)
    uncertainty = math.sqrt((nll2_sum / count - mean * mean) / (count - 1)) * ppl
    with open(os.path.join(out_dir, "smollm2_perplexity.json"), "w") as f:
        json.dump({**provenance, "file": "tests/data/text/wiki.test.raw",
                   "file_tokens": len(tokens), "ctx": CTX, "chunks": CHUNKS, "scored_tokens": count,
                   "perplexity": ppl, "uncertainty": uncertainty}, f, indent=1)
    print(f"perplexity {ppl:.4f} +/- {uncertainty:.4f} over {count} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
