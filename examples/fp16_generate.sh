#!/usr/bin/env bash
# Example: the fp16 default model. Converts SmolLM2-135M-Instruct from its GGUF into a Hugging Face
# directory (once, in the cache) and asks it a question with its chat template.
# Run after scripts/build.sh; extra arguments go to run-llm and win over the example's own
# (e.g. `examples/fp16_generate.sh -n 32 --prompt "Hello" --temperature 0`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=examples/example_args.sh
source "$root/examples/example_args.sh" "$@"
example_default "--prompt|-p|--prompt-file" "Give three tips for writing clear code."
example_default "--temperature" 0.7
example_default "--seed" 1
example_default "-n|--max-tokens" 128
model_dir="$("$root/scripts/fetch_model.sh")"
"${BUILD_DIR:-$root/build}/run-llm" --model "$model_dir" --chat "${example_args[@]}" "$@"
