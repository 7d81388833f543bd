#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, fetch and convert the default model,
# and generate an answer. Extra arguments go to run-llm (e.g. --prompt "..." --temperature 0).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
model_dir="$("$root/scripts/fetch_model.sh")"
if [ $# -eq 0 ]; then
  set -- --chat --prompt "What is the capital of France? Answer in one sentence." --temperature 0 -n 64
fi
"${BUILD_DIR:-$root/build}/run-llm" --model "$model_dir" "$@"
