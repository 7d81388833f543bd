#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build run-llm (the binary only; scripts/test.sh
# builds the tests), fetch and convert the default model, and generate an answer. Extra arguments go to
# run-llm instead of the default prompt (e.g. --prompt "..." --temperature 0). At the end it prints the
# model directory, the DIR of the README's commands.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_llm="${BUILD_DIR:-$root/build}/run-llm"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh" run-llm
model_dir="$("$root/scripts/fetch_model.sh" "$run_llm")"
if [ $# -eq 0 ]; then
  set -- --chat --prompt "What is the capital of France? Answer in one sentence." --temperature 0 -n 64
fi
status=0
"$run_llm" --model "$model_dir" "$@" || status=$?
cat >&2 <<MSG

quickstart: the default model is in
  $model_dir
  use it as DIR in the README's commands, e.g.
  $run_llm --model $model_dir --chat --prompt "Hello"
MSG
exit "$status"
