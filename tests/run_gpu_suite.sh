#!/usr/bin/env bash
# Runs the [cuda] kernel tests on a GPU machine and writes a results file for bench/results/.
#
#   tests/run_gpu_suite.sh RESULTS_FILE [BINARY]
#
# BINARY defaults to build-gpu/cuda_kernel_tests (built elsewhere and carried over; libraries it
# needs that the GPU machine lacks, e.g. OpenBLAS, may sit in a lib/ folder beside it). With
# SANITIZE=1 the suite runs instead under compute-sanitizer memcheck, racecheck and synccheck (the
# three at once, or the tools SANITIZE_TOOLS names), in its quick form (RUNLLM_CUDA_TESTS_QUICK=1:
# the largest shapes left out), each bounded by SANITIZE_TIMEOUT seconds (default 480). Exit status: non-zero if any run failed.
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
  commit_file="$(dirname "$binary")/source_commit"
  [[ -f "$commit_file" ]] && echo "binaries of commit $(cat "$commit_file")"
  echo "error measure: max|out - ref| / max|ref| over the output; ref = kernels/cpu twin in fp32 on the same inputs (rounded to fp16 or bf16)"
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

summarize_tests() {
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
}

if [[ "${SANITIZE:-0}" != 1 ]]; then
  run_step "cuda_kernel_tests" "$log_dir/tests.log" "$binary" --durations yes
  summarize_tests
else
  # Left out: [api-error] (fails a CUDA call on purpose, which the sanitizer reports) and, for
  # racecheck, [cublas] (hazards reported inside cuBLAS's own kernels). The three tools run at
  # once (each instruments its own process); their results are written in a fixed order.
  pids=()
  tools="${SANITIZE_TOOLS:-memcheck racecheck synccheck}"
  for tool in $tools; do
    extra=()
    spec='~[api-error]'
    [[ $tool == memcheck ]] && extra=(--leak-check full)
    [[ $tool == racecheck ]] && spec='~[api-error]~[cublas]'
    (
      start=$(date +%s)
      RUNLLM_CUDA_TESTS_QUICK=1 timeout "${SANITIZE_TIMEOUT:-480}" compute-sanitizer --tool "$tool" "${extra[@]}" \
        --error-exitcode 1 "$binary" "$spec" > "$log_dir/$tool.log" 2>&1
      echo "$? $(( $(date +%s) - start )) $spec" > "$log_dir/$tool.status"
    ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for tool in $tools; do
    rc=1 seconds='?' spec='?'  # stay a failure if the tool's subshell died before writing its status
    [[ -f $log_dir/$tool.status ]] && read -r rc seconds spec < "$log_dir/$tool.status"
    [[ $rc -eq 0 ]] || status=1
    {
      echo "## compute-sanitizer --tool $tool (quick suite, tests $spec): exit $rc, $seconds s"
      grep -E '^(All tests passed|test cases:|assertions:)|ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY' \
        "$log_dir/$tool.log"
      grep -m 20 -E '^========= (Invalid|Race|Error|Program hit|Leaked|Barrier|Divergent)' "$log_dir/$tool.log"
      echo
    } >> "$results"
  done
fi

tar -C "$log_dir" -czf "${results%.txt}.logs.tar.gz" . 2>/dev/null
echo "overall: $([[ $status -eq 0 ]] && echo PASS || echo FAIL)" >> "$results"
cat "$results"
exit $status
