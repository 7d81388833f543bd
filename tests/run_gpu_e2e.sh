#!/usr/bin/env bash
# The GPU checks of the CUDA backend, run on the GPU machine over what scripts/gpu/pack_for_gpu.sh
# packed into .gpu-carry/ (binaries built elsewhere for sm_90a, their libraries, the GGUF in two
# pieces). Two stages, one per device call (each call carries at most 64 MiB):
#
#   tests/run_gpu_e2e.sh 1 OUT_DIR   kernel suite + sanitizers, full-forward [cuda] tests (+ memcheck),
#                                    bench --synthetic llama2-7b          -> OUT_DIR/cuda_*_h100.txt
#   tests/run_gpu_e2e.sh 2 OUT_DIR   the default model (GGUF converted here): greedy 64 tokens for 5
#                                    prompts on cuda and cpu, perplexity, bench --model
#
# Stage 1 unpacks into $RUNLLM_GPU_DIR (default /tmp/runllm-gpu), where stage 2 finds it again
# (same machine, still warm). Exit status: non-zero if a check failed.
set -uo pipefail
stage="${1:?usage: tests/run_gpu_e2e.sh 1|2 OUT_DIR}"
out="${2:?usage: tests/run_gpu_e2e.sh 1|2 OUT_DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${RUNLLM_GPU_DIR:-/tmp/runllm-gpu}"
mkdir -p "$out" "$work"
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
header() {
  echo "# $1"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "command: tests/run_gpu_e2e.sh $stage (binaries built from this tree for sm_90a by scripts/gpu/pack_for_gpu.sh)"
  echo
}

if [[ "$stage" == 1 ]]; then
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" \
    "$root/.gpu-carry/runllm-gpu.tar.xz" "$work" || exit 2
  cp "$root/.gpu-carry/model.gguf.part1" "$root/.gpu-carry/wiki.test.raw" "$work/"
  # SKIP_KERNEL_SUITE=1: the kernels did not change since the last committed kernel-suite run.
  if [[ "${SKIP_KERNEL_SUITE:-0}" != 1 ]]; then
    SANITIZE=1 "$root/tests/run_gpu_suite.sh" "$out/cuda_kernels_h100.txt" "$work/cuda_kernel_tests" > /dev/null || status=1
  fi
  results="$out/cuda_model_h100.txt"
  {
    header "run-llm CUDA backend: whole-model [cuda] tests (tests/cuda_model) and the llama2-7b decode benchmark"
    echo "## cuda_model_tests"
    "$work/cuda_model_tests" --durations yes 2>&1 | grep -vE '^(measured|$)' | tail -n 20 || status=1
    "$work/cuda_model_tests" 2>&1 | grep -E '^measured' | sed 's/^measured | //'
    echo
    echo "## compute-sanitizer memcheck over cuda_model_tests"
    timeout 300 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 1 "$work/cuda_model_tests" \
      > "$out/model_memcheck.log" 2>&1; rc=$?
    echo "exit $rc"; [[ $rc -eq 0 ]] || status=1
    grep -E 'ERROR SUMMARY|LEAK SUMMARY|All tests passed|test cases' "$out/model_memcheck.log"
    echo
    echo "## run-llm bench --synthetic llama2-7b"
    "$work/run-llm" bench --synthetic llama2-7b --verbose 2>&1 || status=1
    echo
    echo "## run-llm bench --synthetic llama2-7b --no-graph"
    "$work/run-llm" bench --synthetic llama2-7b --no-graph 2>&1 | grep -E '^(decode|prompt)' || status=1
  } > "$results" 2>&1
  cat "$results"
  [[ -f "$out/cuda_kernels_h100.txt" ]] && grep -E '^(## |overall)' "$out/cuda_kernels_h100.txt"
  exit $status
fi

# Stage 2: the real model.
cat "$work/model.gguf.part1" "$root/.gpu-carry/model.gguf.part2" > "$work/model.gguf" || exit 2
echo "$(cat "$root/.gpu-carry/model.gguf.sha256")  $work/model.gguf" | sha256sum -c --quiet || exit 2
results="$out/cuda_e2e_h100.txt"
run_llm="$work/run-llm"
{
  header "run-llm CUDA backend on the default model (SmolLM2-135M-Instruct Q4_1 GGUF, converted to fp16 by run-llm convert)"
  "$run_llm" convert "$work/model.gguf" --out "$work/smollm2" > /dev/null 2>&1 || { echo "convert failed"; exit 1; }
  echo "## greedy generation, 64 tokens, --device cuda vs --device cpu (token ids)"
  prompts=("The capital of France is" "Once upon a time, in a small village," "def fibonacci(n):"
           "The three primary colors are" "Water boils at a temperature of")
  same=0
  for prompt in "${prompts[@]}"; do
    for device in cuda cpu; do
      "$run_llm" --model "$work/smollm2" --prompt "$prompt" -n 64 --temperature 0 --device $device --verbose \
        > "$work/gen_$device.txt" 2> "$work/gen_$device.err"
    done
    cuda_ids="$(grep '^generated ids:' "$work/gen_cuda.err")"
    cpu_ids="$(grep '^generated ids:' "$work/gen_cpu.err")"
    if [[ -n "$cuda_ids" && "$cuda_ids" == "$cpu_ids" ]]; then verdict=same; same=$((same + 1)); else verdict=DIFFERENT; fi
    echo "prompt \"$prompt\": $verdict ($(echo "$cuda_ids" | wc -w | awk '{print $1 - 2}') tokens)"
    echo "  cuda: $(grep '^prompt:' "$work/gen_cuda.err")"
    echo "  cpu:  $(grep '^prompt:' "$work/gen_cpu.err")"
    if [[ $verdict == DIFFERENT ]]; then echo "  cuda $cuda_ids"; echo "  cpu  $cpu_ids"; [[ -n "$cuda_ids" ]] || status=1; fi
    echo "  text: $(head -c 200 "$work/gen_cuda.txt" | tr '\n' ' ')"
  done
  echo "same tokens: $same of ${#prompts[@]}"
  echo
  grep -E '^cuda' "$work/gen_cuda.err"
  echo
  echo "## perplexity, wiki.test.raw, --ctx 512 --chunks 8, --device cuda (CPU reference value: 23.6178)"
  "$run_llm" perplexity --model "$work/smollm2" -f "$work/wiki.test.raw" --ctx 512 --chunks 8 --device cuda \
    > "$work/ppl.txt" 2> "$work/ppl.err" || status=1
  cat "$work/ppl.txt"
  tail -n 2 "$work/ppl.err"
  ppl="$(grep -oE 'PPL = [0-9.]+' "$work/ppl.txt" | awk '{print $3}')"
  python3 -c "import sys; d=abs(float('$ppl')/23.6178-1)*100; print(f'difference from the CPU value: {d:.3f}% (limit 0.5%):', 'PASS' if d<0.5 else 'FAIL'); sys.exit(0 if d<0.5 else 1)" || status=1
  echo
  # Where the ids differ, the CPU reference's top-2 logits at the first difference must be within 1e-2.
  if grep -q ': DIFFERENT' "$results"; then
    "$root/tests/check_greedy_divergence.sh" "$results" "$work/smollm2" "$work/top2_logits" || status=1
  fi
  echo "## run-llm bench --model (converted default model)"
  "$run_llm" bench --model "$work/smollm2" 2>&1 || status=1
  echo
  echo "overall: $([[ $status -eq 0 ]] && echo PASS || echo FAIL)"
} > "$results" 2>&1
cat "$results"
exit $status
