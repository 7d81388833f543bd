#!/usr/bin/env bash
# Stage 3 of the GPU checks (after tests/run_gpu_e2e.sh 2 on the same warm machine, which left the
# binaries and the converted default model in $RUNLLM_GPU_DIR): every quantized checkpoint kind the
# quantizer writes, made here from the default model, run on the GPU with its own kernels against
# the CPU reference on the same checkpoint:
#   -v names the quantized kernels (decode and prompt) of every projection;
#   perplexity (wiki.test.raw, ctx 512, 8 windows) on cuda within 0.5% of the cpu value;
#   greedy 64 tokens for the five prompts of run_gpu_e2e.sh equal on cuda and cpu, or parting only
#   at a near-tie (tests/check_greedy_divergence.sh);
# and a Llama-2-7B-shaped AWQ checkpoint written here loads under 2 GB of anonymous host memory.
# Variants run side by side (each its own CPU threads); each writes its section, joined in order.
#
#   tests/run_gpu_quantized_e2e.sh OUT_DIR     -> OUT_DIR/cuda_quantized_e2e.txt
set -uo pipefail
out="${1:?usage: tests/run_gpu_quantized_e2e.sh OUT_DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${RUNLLM_GPU_DIR:-/tmp/runllm-gpu}"
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
run_llm="$work/run-llm"
model="$work/smollm2"
calib="$root/tests/data/text/pride_and_prejudice.txt"
text="$work/wiki.test.raw"
[[ -x $run_llm && -d $model ]] || { echo "run stage 2 of tests/run_gpu_e2e.sh first"; exit 2; }
prompts=("The capital of France is" "Once upon a time, in a small village," "def fibonacci(n):"
         "The three primary colors are" "Water boils at a temperature of")
export OPENBLAS_NUM_THREADS=2

# name | quantize arguments | run-time arguments
variants=(
  "awq-g64|--method awq --group-size 64|"
  "awq-g64-exllama|(awq-g64)|--awq-kernel exllama"
  "gptq-4bit-g64-act-order|--method gptq --bits 4 --group-size 64 --act-order|"
  "gptq-3bit-g64-act-order|--method gptq --bits 3 --group-size 64 --act-order|"
  "gptq-8bit-g64-act-order|--method gptq --bits 8 --group-size 64 --act-order|"
  "w8a8|--method w8a8|"
)

quantize() {  # name, arguments
  # shellcheck disable=SC2086
  "$run_llm" quantize --model "$model" $2 --out "$work/q-$1" --force --calib "$calib" --calib-samples 16 \
    --calib-len 256 --seed 0 > "$work/quantize-$1.log" 2>&1
}

check_variant() {  # name, checkpoint dir, run-time arguments -> section on stdout
  local name="$1" dir="$2" extra="$3" status=0
  echo "## $name ($dir${extra:+, $extra})"
  # shellcheck disable=SC2086
  "$run_llm" --model "$dir" $extra --prompt "Hello" -n 4 --temperature 0 --device cuda -v > /dev/null 2> "$work/v-$name.err"
  grep -E '^cuda kernels:' "$work/v-$name.err" | sed 's/^/  /'
  if grep -E '^cuda kernels: layers' "$work/v-$name.err" | grep -qE 'decode (fp16|bf16) '; then
    echo "  FAIL: a decoder linear runs dense"; status=1
  fi
  local ppl_cuda ppl_cpu
  for device in cuda cpu; do
    # shellcheck disable=SC2086
    "$run_llm" perplexity --model "$dir" $extra -f "$text" --ctx 512 --chunks 8 --device $device \
      > "$work/ppl-$name-$device.txt" 2> "$work/ppl-$name-$device.err" || status=1
  done
  ppl_cuda="$(grep -oE 'PPL = [0-9.]+' "$work/ppl-$name-cuda.txt" | awk '{print $3}')"
  ppl_cpu="$(grep -oE 'PPL = [0-9.]+' "$work/ppl-$name-cpu.txt" | awk '{print $3}')"
  python3 -c "import sys; a,b=float('${ppl_cuda:-nan}'),float('${ppl_cpu:-nan}'); d=abs(a/b-1)*100
print(f'  perplexity: cuda {a:.4f}, cpu {b:.4f}, difference {d:.3f}% (limit 0.5%):', 'PASS' if d<0.5 else 'FAIL'); sys.exit(0 if d<0.5 else 1)" || status=1
  local same=0
  for prompt in "${prompts[@]}"; do
    for device in cuda cpu; do
      # shellcheck disable=SC2086
      "$run_llm" --model "$dir" $extra --prompt "$prompt" -n 64 --temperature 0 --device $device --verbose \
        > /dev/null 2> "$work/gen-$name-$device.err"
    done
    local cuda_ids cpu_ids verdict
    cuda_ids="$(grep '^generated ids:' "$work/gen-$name-cuda.err")"
    cpu_ids="$(grep '^generated ids:' "$work/gen-$name-cpu.err")"
    if [[ -n "$cuda_ids" && "$cuda_ids" == "$cpu_ids" ]]; then verdict=same; same=$((same + 1)); else verdict=DIFFERENT; fi
    echo "prompt \"$prompt\": $verdict"
    if [[ $verdict == DIFFERENT ]]; then  # the layout tests/check_greedy_divergence.sh reads
      echo "  cuda: $(grep '^prompt:' "$work/gen-$name-cuda.err")"
      echo "  cpu:  $(grep '^prompt:' "$work/gen-$name-cpu.err")"
      echo "  cuda $cuda_ids"
      echo "  cpu  $cpu_ids"
    fi
  done
  echo "  greedy 64 tokens: same for $same of ${#prompts[@]} prompts"
  if (( same < ${#prompts[@]} )); then
    "$root/tests/check_greedy_divergence.sh" "$work/section-$name.txt.partial" "$dir" "$work/top2_logits" || status=1
  fi
  echo "  verdict: $([[ $status -eq 0 ]] && echo PASS || echo FAIL)"
  return $status
}

start=$(date +%s)
# Quantize first, all at once (the exllama variant reuses the AWQ checkpoint).
pids=()
for entry in "${variants[@]}"; do
  IFS='|' read -r name arguments extra <<< "$entry"
  [[ $arguments == \(* ]] && continue
  quantize "$name" "$arguments" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
quantize_seconds=$(( $(date +%s) - start ))

pids=()
for entry in "${variants[@]}"; do
  IFS='|' read -r name arguments extra <<< "$entry"
  source_name="$name"
  [[ $arguments == \(* ]] && source_name="${arguments//[()]/}"
  ( check_variant "$name" "$work/q-$source_name" "$extra" > "$work/section-$name.txt.partial" 2>&1
    rc=$?; mv "$work/section-$name.txt.partial" "$work/section-$name.txt"; exit $rc ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

memory="$work/memory.txt"
"$root/tests/run_gpu_memory_check.sh" "$memory" > /dev/null || status=1

results="$out/cuda_quantized_e2e.txt"
{
  echo "# run-llm quantized checkpoints on the GPU, each with its own kernels, against the CPU reference"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "command: tests/run_gpu_quantized_e2e.sh (binaries of commit $(cat "$work/source_commit") built for sm_90a)"
  echo "checkpoints: run-llm quantize of the default model (SmolLM2-135M-Instruct, converted from its Q4_1 GGUF),"
  echo "  calibration pride_and_prejudice.txt --calib-samples 16 --calib-len 256 --seed 0 ($quantize_seconds s for all)"
  echo "evaluation: wiki.test.raw --ctx 512 --chunks 8; fp16 activations on cuda, fp32 on cpu"
  echo
  for entry in "${variants[@]}"; do
    IFS='|' read -r name _ _ <<< "$entry"
    cat "$work/section-$name.txt"
    echo
  done
  cat "$memory"
  echo
  echo "overall: $([[ $status -eq 0 ]] && echo PASS || echo FAIL)"
} > "$results"
cat "$results"
exit $status
