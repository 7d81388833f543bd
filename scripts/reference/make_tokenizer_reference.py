#!/usr/bin/env python3
"""Expected SmolLM2 token ids for the tokenizer tests, from an independent implementation.

Reads tests/data/tokenizer/lines.txt (one entry per line; the escapes \\n \\r \\t \\\\ and \\u{HEX}
stand for the characters they name, any other backslash is literal; empty lines are skipped) and
writes tests/data/tokenizer/smollm2_expected_ids.json with, for every entry, the exact text and the
ids Hugging Face transformers produces with the tokenizer it builds from the GGUF file itself:

    AutoTokenizer.from_pretrained(CACHE, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        .encode(text, add_special_tokens=False)

with one correction: transformers' GGUF loader ignores `tokenizer.ggml.pre` and always pre-tokenizes
with the plain GPT-2 ByteLevel regex. SmolLM2's GGUF says `smollm`, which llama.cpp and the published
SmolLM2 tokenizer.json (HuggingFaceTB/SmolLM2-135M) both define as Digits(individual_digits) followed
by ByteLevel; the plain loader differs from the model's own tokenizer on text with non-ASCII numerals
("x²", "Ⅻ", "①", "١٢٣", "4 ½"). So the script sets that pre-tokenizer on the HF tokenizer before
encoding (vocab, merges, added tokens and the BPE itself stay HF's) and prints the lines on which the
plain loader would differ.

It also records the id count and an FNV-1a 64-bit hash of the ids (each id as 4 little-endian bytes)
for the whole of wikitext-2-raw's wiki.test.raw, so the test can compare a 1.3 MB encode without
storing 300k ids. Never derive these from run-llm's own converted tokenizer.json.

Produced with transformers 5.24.0 (tokenizers 0.23.3). Command, from the repository root:

    python3 scripts/reference/make_tokenizer_reference.py [--cache ~/.cache/run-llm]
"""
import argparse
import json
import os
import re

import transformers
from gguf import GGUFReader
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# tokenizer.ggml.pre -> the HF pre-tokenizer it names (llama.cpp llama-vocab.cpp; the model's tokenizer.json).
PRE_TOKENIZERS = {
    "smollm": lambda: pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]),
}
ESCAPE = re.compile(r"\\(n|r|t|\\|u\{([0-9A-Fa-f]+)\})")


def unescape(line):
    def replace(match):
        code = match.group(1)
        if code.startswith("u{"):
            return chr(int(match.group(2), 16))
        return {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[code]

    return ESCAPE.sub(replace, line)


def fnv1a64_of_ids(ids):
    value = 0xCBF29CE484222325
    for token_id in ids:
        for byte in int(token_id).to_bytes(4, "little", signed=True):
            value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/run-llm"))
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.cache, gguf_file=GGUF_NAME)
    plain_loader = AutoTokenizer.from_pretrained(args.cache, gguf_file=GGUF_NAME)
    pre = GGUFReader(os.path.join(args.cache, GGUF_NAME)).fields["tokenizer.ggml.pre"].contents()
    if pre not in PRE_TOKENIZERS:
        raise SystemExit(f"tokenizer.ggml.pre '{pre}' has no entry in PRE_TOKENIZERS")
    tokenizer.backend_tokenizer.pre_tokenizer = PRE_TOKENIZERS[pre]()
    data_dir = os.path.join(ROOT, "tests", "data", "tokenizer")
    with open(os.path.join(data_dir, "lines.txt"), encoding="utf-8", newline="") as f:
        raw_lines = f.read().split("\n")
    texts = [unescape(line) for line in raw_lines if line]
    entries = [{"text": t, "ids": tokenizer.encode(t, add_special_tokens=False)} for t in texts]
    for entry in entries:
        if plain_loader.encode(entry["text"], add_special_tokens=False) != entry["ids"]:
            print(f"plain GGUF loader differs on {entry['text']!r}")

    wiki_path = os.path.join(ROOT, "tests", "data", "text", "wiki.test.raw")
    with open(wiki_path, "rb") as f:
        wiki_ids = tokenizer.encode(f.read().decode("utf-8"), add_special_tokens=False)

    result = {
        "source": f"transformers {transformers.__version__} AutoTokenizer from {GGUF_NAME} with the "
                  f"'{pre}' pre-tokenizer, encode(text, add_special_tokens=False); "
                  "scripts/reference/make_tokenizer_reference.py",
        "entries": entries,
        "wiki_test_raw": {"num_ids": len(wiki_ids), "fnv1a64": f"{fnv1a64_of_ids(wiki_ids):016x}"},
    }
    out_path = os.path.join(data_dir, "smollm2_expected_ids.json")
    with open(out_path, "w", encoding="utf-8") as f:
        # One entry per line keeps the file diffable.
        body = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
        f.write(f'{{"source": {json.dumps(result["source"])},\n"wiki_test_raw": '
                f'{json.dumps(result["wiki_test_raw"])},\n"entries": [\n{body}\n]}}\n')
    print(f"wrote {out_path}: {len(entries)} entries, wiki.test.raw {len(wiki_ids)} ids")


if __name__ == "__main__":
    main()
