#!/usr/bin/env bash
# Memory at load on the GPU machine: a Llama-2-7B-shaped AWQ g128 checkpoint (random weights, 3.9 GB,
# written there by run-llm itself, since only 64 MiB travels per device call) loads with each layer
# streamed to the GPU; its peak anonymous host memory (RssAnon, sampled per layer) must stay under
# 2 GB. Then bench decodes with it. Uses the binaries tests/run_gpu_e2e.sh 1 unpacked.
#
#   tests/run_gpu_memory_check.sh RESULTS_FILE
set -uo pipefail
results="${1:?usage: tests/run_gpu_memory_check.sh RESULTS_FILE}"
work="${RUNLLM_GPU_DIR:-/tmp/runllm-gpu}"
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
run_llm="$work/run-llm"
status=0
{
  echo "## a Llama-2-7B-shaped AWQ g128 checkpoint: load memory and decode speed"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); gpu: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  echo "command: tests/run_gpu_memory_check.sh (binaries of commit $(cat "$work/source_commit"))"
  "$run_llm" bench --synthetic llama2-7b --format awq --save-checkpoint "$work/awq-7b" 2>&1 || status=1
  du -sh "$work/awq-7b/model.safetensors"
  "$run_llm" bench --model "$work/awq-7b" --prompt-tokens 128 --gen-tokens 128 -v > "$work/memory-bench.txt" 2>&1 || status=1
  grep -vE '^(  |cuda weights)' "$work/memory-bench.txt"
  peak="$(grep -oE 'peak host memory [0-9.]+ MiB' "$work/memory-bench.txt" | grep -oE '[0-9.]+' | head -1)"
  python3 -c "import sys; p=float('${peak:-nan}'); ok=p<2048
print(f'peak anonymous host memory at load: {p:.1f} MiB (limit 2048 MiB):', 'PASS' if ok else 'FAIL'); sys.exit(0 if ok else 1)" || status=1
  echo "overall: $([[ $status -eq 0 ]] && echo PASS || echo FAIL)"
} > "$results" 2>&1
rm -rf "$work/awq-7b"
cat "$results"
exit $status
