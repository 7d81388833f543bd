#!/usr/bin/env bash
# Shared by the per-format examples: makes a quantized checkpoint of the default model once (in the
# cache, next to the fp16 model) with `run-llm quantize`, then generates with it.
# Usage: quantized_example.sh NAME "QUANTIZE ARGS" "LOAD ARGS" [extra run-llm arguments...]
# The extra arguments win over the example's own prompt, temperature, seed and token limit.
# The examples use group size 64 (128 does not divide SmolLM2's hidden size 576) and a small
# calibration set (32 windows of 256 tokens) so that quantizing takes minutes on a laptop CPU.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_llm="${BUILD_DIR:-$root/build}/run-llm"
name="$1" quantize_args="$2" load_args="$3"
shift 3
# shellcheck source=examples/example_args.sh
source "$root/examples/example_args.sh" "$@"
example_default "--prompt|-p|--prompt-file" "Give three tips for writing clear code."
example_default "--temperature" 0.7
example_default "--seed" 1
example_default "-n|--max-tokens" 96
model_dir="$("$root/scripts/fetch_model.sh")"
out="$(dirname "$model_dir")/SmolLM2-135M-Instruct-$name"
calibration="$root/tests/data/text/pride_and_prejudice.txt"
if [ ! -f "$out/config.json" ]; then
  # --force: a run interrupted before config.json was written leaves a non-empty directory behind.
  # shellcheck disable=SC2086  # the argument strings are word lists on purpose
  "$run_llm" quantize --model "$model_dir" --out "$out" --force --calib "$calibration" \
    --calib-samples 32 --calib-len 256 $quantize_args
fi
# shellcheck disable=SC2086
"$run_llm" --model "$out" $load_args --verbose --chat "${example_args[@]}" "$@"
