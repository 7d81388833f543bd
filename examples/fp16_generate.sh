#!/usr/bin/env bash
# Example: the fp16 default model. Converts SmolLM2-135M-Instruct from its GGUF into a Hugging Face
# directory (once, in the cache) and asks it a question with its chat template.
# Run after scripts/build.sh; extra arguments go to run-llm.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model_dir="$("$root/scripts/fetch_model.sh")"
"${BUILD_DIR:-$root/build}/run-llm" --model "$model_dir" --chat \
  --prompt "Give three tips for writing clear code." --temperature 0.7 --seed 1 -n 128 "$@"
