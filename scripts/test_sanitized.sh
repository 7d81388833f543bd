#!/usr/bin/env bash
# The whole unit and end-to-end suite again, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (cmake -DRUNLLM_SANITIZE=ON) into build-asan/ (SANITIZE_BUILD_DIR overrides; JOBS sets parallelism).
# Any sanitizer report fails the run: the binary under test exits with code 86, which no test expects.
# The quantized-perplexity regression (ctest's e2e_quantized_ppl) is left out unless SANITIZE_ALL=1: it
# runs the quantizers and the quantized forward that the other e2e tests already run here, only over
# more text, and under the sanitizers it alone takes about 20 minutes on 2 cores.
# Dependencies and the default model come from scripts/install_deps.sh and scripts/fetch_model.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${SANITIZE_BUILD_DIR:-$root/build-asan}"
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

"$root/scripts/install_deps.sh"
# -O1 -g1: under both sanitizers GCC compiles -O2 -g about twice as slowly, for little gain at run time;
# -g1 keeps the line tables that the reports' stack traces need.
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRUNLLM_SANITIZE=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" >&2
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" >&2

# exitcode: run-llm's own errors exit with 1, so a sanitizer report must not. The run-llm processes
# the e2e tests start inherit these variables. protect_shadow_gap=0: on a GPU machine the CUDA driver
# maps memory where ASan would protect its shadow gap, and without it no device is found, so the
# [cuda] suites would report as skipped.
sanitizer_common="halt_on_error=1:print_stacktrace=1:exitcode=86"
export ASAN_OPTIONS="$sanitizer_common:protect_shadow_gap=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="$sanitizer_common${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

RUNLLM_TEST_MODEL_DIR="$("$root/scripts/fetch_model.sh" "$build_dir/run-llm")"
export RUNLLM_TEST_MODEL_DIR
cd "$build_dir"
exclude=()
[ "${SANITIZE_ALL:-0}" = 1 ] || exclude=(-E '^e2e_quantized_ppl$')
ctest -V --output-on-failure --timeout 2400 "${exclude[@]}"
