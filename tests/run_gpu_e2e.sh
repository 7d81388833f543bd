#!/usr/bin/env bash
# The GPU checks of the CUDA backend, run on the GPU machine over what scripts/gpu/pack_for_gpu.sh
# packed into .gpu-carry/ (binaries built elsewhere for sm_90a, their libraries, the GGUF in two
# pieces). Two stages, one per device call (each call carries at most 64 MiB):
#
#   tests/run_gpu_e2e.sh 1 OUT_DIR   bench --synthetic llama2-7b / llama3-8b in the linear formats
#                                    (BENCH_VARIANTS), bench --kernels; then the kernel suite (fp16
#                                    and bf16) and the whole-model [cuda] tests, with the kernel suite
#                                    under compute-sanitizer (SANITIZE_TOOLS, default memcheck and
#                                    racecheck) beside them
#                                    -> OUT_DIR/cuda_bench.txt, kernel_bench.txt, cuda_kernels.txt,
#                                       cuda_model.txt, cuda_sanitizers.txt
#   tests/run_gpu_e2e.sh 2 OUT_DIR   the default model (GGUF converted here): bench --model in fp16
#                                    and bf16, then the quantized checkpoints of it
#                                    (tests/run_gpu_quantized_e2e.sh). With FULL=1 also greedy 64
#                                    tokens for 5 prompts on cuda and cpu, perplexity in fp16 and
#                                    bf16, determinism over 5 runs, and the whole-model tests under
#                                    memcheck and synccheck
#                                    -> OUT_DIR/cuda_quantized_e2e.txt, cuda_e2e_benches.txt (FULL=1:
#                                       cuda_e2e.txt, cuda_model_sanitizers.txt)
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
  echo "command: tests/run_gpu_e2e.sh $stage (binaries of commit $(cat "$work/source_commit") built for sm_90a, packed by scripts/gpu/pack_for_gpu.sh)"
  echo
}

if [[ "$stage" == 1 ]]; then
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" \
    "$root/.gpu-carry/runllm-gpu.tar.xz" "$work" || exit 2
  cp "$root/.gpu-carry/source_commit" "$work/"
  # The model's first piece, when this call carried it (stage 2 brings the second).
  for piece in model.gguf.part1 wiki.test.raw; do
    [[ -f "$root/.gpu-carry/$piece" ]] && cp "$root/.gpu-carry/$piece" "$work/"
  done
  # Timings first, alone on the GPU.
  bench="$out/cuda_bench.txt"
  {
    header "run-llm bench on synthetic Llama-2-7B and Llama-3-8B shapes (random weights), every linear format"
    for variant in ${BENCH_VARIANTS:-"llama2-7b --dtype fp16" "llama2-7b --dtype fp16 --cublas-decode" \
                   "llama2-7b --format awq" "llama2-7b --format gptq-actorder" "llama2-7b --format w8a8" \
                   "llama2-7b --format awq --dtype bf16" "llama3-8b --format awq"}; do
      echo "## run-llm bench --synthetic $variant"
      # shellcheck disable=SC2086
      "$work/run-llm" bench --synthetic $variant --verbose 2>&1 | grep -vE '^cuda (weights|kernels):' || status=1
      echo
    done
  } > "$bench" 2>&1
  grep -E '^(## |decode)' "$bench"
  { header "run-llm bench --kernels: each linear kernel on real layer shapes against cuBLAS fp16 and the bandwidth floor"
    "$work/run-llm" bench --kernels 2>&1 || status=1; } > "$out/kernel_bench.txt"
  tail -n 8 "$out/kernel_bench.txt"
  # Then the kernel suite and the whole-model tests, with the kernel suite under compute-sanitizer
  # memcheck and racecheck beside them (the quick suite: the largest shapes left out).
  SANITIZE=1 SANITIZE_TOOLS="${SANITIZE_TOOLS:-memcheck racecheck}" SANITIZE_TIMEOUT=400 \
    "$root/tests/run_gpu_suite.sh" "$out/cuda_sanitizers.txt" "$work/cuda_kernel_tests" > /dev/null &
  sanitizer_pid=$!
  "$root/tests/run_gpu_suite.sh" "$out/cuda_kernels.txt" "$work/cuda_kernel_tests" > /dev/null || status=1
  results="$out/cuda_model.txt"
  {
    header "run-llm CUDA backend: whole-model [cuda] tests (tests/cuda_model): every format against the CPU reference"
    echo "## cuda_model_tests"
    "$work/cuda_model_tests" --durations yes > "$work/model_tests.log" 2>&1 || status=1
    grep -vE '^(measured|$)' "$work/model_tests.log" | tail -n 20
    grep -E '^measured' "$work/model_tests.log" | sed 's/^measured | //'
    echo
  } > "$results" 2>&1
  cat "$results"
  wait $sanitizer_pid || status=1
  grep -E '^(## |overall)' "$out/cuda_kernels.txt" "$out/cuda_sanitizers.txt"
  exit $status
fi

# Stage 2: the real model. The timed benches run first, alone on the GPU; then the sanitizers start
# in the background (they only slow the checks beside them) while the correctness checks of the
# default model and stage 3 (tests/run_gpu_quantized_e2e.sh: the quantized checkpoints) run.
cat "$work/model.gguf.part1" "$root/.gpu-carry/model.gguf.part2" > "$work/model.gguf" || exit 2
echo "$(cat "$root/.gpu-carry/model.gguf.sha256")  $work/model.gguf" | sha256sum -c --quiet || exit 2
results="$out/cuda_e2e.txt"
run_llm="$work/run-llm"
cpu_ppl=23.6178  # tests/data/reference/smollm2_perplexity.json, matched by the CPU path in CI
"$run_llm" convert "$work/model.gguf" --out "$work/smollm2" > /dev/null 2>&1 || { echo "convert failed"; exit 1; }
benches="$work/benches.txt"
for dtype in fp16 bf16; do
  echo "## run-llm bench --model (converted default model) --dtype $dtype"
  "$run_llm" bench --model "$work/smollm2" --dtype $dtype 2>&1 || status=1
  echo
done > "$benches"

# With FULL=1: the whole-model tests under memcheck and synccheck (racecheck leaves them out: their
# cuBLAS kernels report hazards that are not ours) and the default model's fp16/bf16 checks; without
# it (a short lease), only the quantized checkpoints of stage 3.
if [[ "${FULL:-0}" != 1 ]]; then
  "$root/tests/run_gpu_quantized_e2e.sh" "$out" || status=1
  cp "$benches" "$out/cuda_e2e_benches.txt"
  exit $status
fi
for tool in memcheck synccheck; do
  extra=()
  [[ $tool == memcheck ]] && extra=(--leak-check full)
  timeout 420 compute-sanitizer --tool $tool "${extra[@]}" --error-exitcode 1 "$work/cuda_model_tests" \
    > "$work/model_$tool.log" 2>&1 &
  eval "model_${tool}_pid=$!"
done

{
  header "run-llm CUDA backend on the default model (SmolLM2-135M-Instruct Q4_1 GGUF, converted to fp16 by run-llm convert)"
  echo "## greedy generation, 64 tokens, --device cuda (fp16) vs --device cpu (token ids)"
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
  # fp16 within 0.5% of the CPU (the issue's bar); bf16 (3 fewer mantissa bits) within 1%.
  for dtype in fp16 bf16; do
    limit=0.5
    [[ $dtype == bf16 ]] && limit=1.0
    echo "## perplexity, wiki.test.raw, --ctx 512 --chunks 8, --device cuda --dtype $dtype (CPU reference value: $cpu_ppl)"
    "$run_llm" perplexity --model "$work/smollm2" -f "$work/wiki.test.raw" --ctx 512 --chunks 8 --device cuda \
      --dtype $dtype > "$work/ppl.txt" 2> "$work/ppl.err" || status=1
    cat "$work/ppl.txt"
    tail -n 2 "$work/ppl.err"
    ppl="$(grep -oE 'PPL = [0-9.]+' "$work/ppl.txt" | awk '{print $3}')"
    python3 -c "import sys; d=abs(float('$ppl')/$cpu_ppl-1)*100; print(f'difference from the CPU value: {d:.3f}% (limit $limit%):', 'PASS' if d<$limit else 'FAIL'); sys.exit(0 if d<$limit else 1)" || status=1
    echo
  done
  # Where the ids differ, the CPU reference's top-2 logits at the first difference must be within 1e-2.
  if grep -q ': DIFFERENT' "$results"; then
    "$root/tests/check_greedy_divergence.sh" "$results" "$work/smollm2" "$work/top2_logits" || status=1
  fi
  echo "## determinism on the GPU: tests/run_determinism.sh --device cuda --tokens 64"
  "$root/tests/run_determinism.sh" --device cuda --run-llm "$run_llm" --tokens 64 "$work/smollm2" 2>&1 || status=1
  echo
  cat "$benches"
  echo "overall: $([[ $status -eq 0 ]] && echo PASS || echo FAIL)"
} > "$results" 2>&1
cat "$results"
"$root/tests/run_gpu_quantized_e2e.sh" "$out" || status=1

sanitizers="$out/cuda_model_sanitizers.txt"
{
  for tool in memcheck synccheck; do
    pid_var="model_${tool}_pid"
    wait "${!pid_var}"; rc=$?
    [[ $rc -eq 0 ]] || status=1
    echo "## compute-sanitizer --tool $tool over cuda_model_tests: exit $rc"
    grep -E 'ERROR SUMMARY|LEAK SUMMARY|All tests passed|test cases' "$work/model_$tool.log"
    grep -m 20 -E '^========= (Invalid|Error|Program hit|Leaked|Barrier|Divergent)' "$work/model_$tool.log"
    echo
  done
  echo "overall (stage 2): $([[ $status -eq 0 ]] && echo PASS || echo FAIL)"
} > "$sanitizers"
cat "$sanitizers"
exit $status
