#!/usr/bin/env bash
# Runs the [cuda] kernel tests on a GPU machine and writes a results file for bench/results/.
#
#   tests/run_gpu_suite.sh RESULTS_FILE [BINARY]
#
# BINARY defaults to build-gpu/cuda_kernel_tests (built elsewhere and carried over; libraries it
# needs that the GPU machine lacks, e.g. OpenBLAS, may sit in a lib/ folder beside it). With
# SANITIZE=1 the suite also runs under compute-sanitizer memcheck and racecheck, in its quick
# form (RUNLLM_CUDA_TESTS_QUICK=1: the largest shapes left out), each bounded by SANITIZE_TIMEOUT
# seconds (default 240). Exit status: non-zero if any run failed.
set -uo pipefail
results="${1:?usage: tests/run_gpu_suite.sh RESULTS_FILE [BINARY]}"
binary="${2:-build-gpu/cuda_kernel_tests}"
[[ -x "$binary" ]] || { echo "run_gpu_suite: no executable at $binary" >&2; exit 2; }
lib_dir="$(cd "$(dirname "$binary")" && pwd)/lib"
[[ -d "$lib_dir" ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$lib_dir"
log_dir="$(mktemp -d)"
status=0

{
  echo "# run-llm CUDA kernel tests (tests/kernels, [cuda]): CUDA kernels against their CPU twins"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "cuda runtime (nvcc on this machine): $(nvcc --version 2>/dev/null | tail -1)"
  echo "command: tests/run_gpu_suite.sh $* (SANITIZE=${SANITIZE:-0})"
  echo "error measure: max|out - ref| / max|ref| over the output; ref = kernels/cpu twin in fp32 on the same fp16-rounded inputs"
  echo
} > "$results"

run_step() {  # name, log, command...
  local name="$1" log="$2"
  shift 2
  local start end rc
  start=$(date +%s)
  "$@" > "$log" 2>&1
  rc=$?
  end=$(date +%s)
  echo "## $name: exit $rc, $((end - start)) s" >> "$results"
  echo "command: $*" >> "$results"
  [[ $rc -eq 0 ]] || status=1
  return 0
}

run_step "cuda_kernel_tests" "$log_dir/tests.log" "$binary" --durations yes
{
  grep -E '^(CUDA device|random seed)' "$log_dir/tests.log"
  grep -E '^(All tests passed|test cases:|assertions:)' "$log_dir/tests.log"
  echo
  echo "### measured errors"
  grep -E '^measured \|' "$log_dir/tests.log" | sed 's/^measured | //'
  echo
  echo "### durations (s)"
  grep -E '^[0-9]+\.[0-9]+ s: ' "$log_dir/tests.log"
  if grep -qE 'FAILED|failed' "$log_dir/tests.log"; then
    echo
    echo "### failures"
    grep -B3 -A12 -E 'FAILED' "$log_dir/tests.log" | head -200
  fi
  echo
} >> "$results"

if [[ "${SANITIZE:-0}" == 1 ]]; then
  # Left out: [api-error] (fails a CUDA call on purpose, which the sanitizer reports) and, for
  # racecheck, [cublas] (hazards reported inside cuBLAS's own kernels).
  for tool in memcheck racecheck; do
    extra=(--leak-check full)
    spec='~[api-error]'
    [[ $tool == racecheck ]] && extra=() && spec='~[api-error]~[cublas]'
    RUNLLM_CUDA_TESTS_QUICK=1 run_step "compute-sanitizer $tool (quick suite, tests $spec)" "$log_dir/$tool.log" \
      timeout "${SANITIZE_TIMEOUT:-240}" compute-sanitizer --tool "$tool" "${extra[@]}" --error-exitcode 1 \
      "$binary" "$spec"
    {
      grep -E '^(All tests passed|test cases:|assertions:)|ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY' \
        "$log_dir/$tool.log"
      grep -m 20 -E '^========= (Invalid|Race|Error|Program hit|Leaked)' "$log_dir/$tool.log"
      echo
    } >> "$results"
  done
fi

cp "$log_dir"/*.log "$(dirname "$results")/" 2>/dev/null
echo "overall: $([[ $status -eq 0 ]] && echo PASS || echo FAIL)" >> "$results"
cat "$results"
exit $status
