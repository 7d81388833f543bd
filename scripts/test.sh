#!/usr/bin/env bash
# Everything the tests need, then the tests (what CI runs through .ci/run):
#   1. dependencies, the Release build (CUDA kernels included), the default model, and ctest: the unit
#      and end-to-end suites. [cuda] tests need a GPU and are reported as skipped without one.
#   2. scripts/fuzz.sh: every libFuzzer target for FUZZ_SECONDS (default 30 here, to keep CI under 45
#      minutes on 2 cores) over its seeds and the committed regression inputs; any finding fails.
#   3. scripts/test_sanitized.sh: the unit and end-to-end suites again under ASan + UBSan.
# RUNLLM_TEST_FUZZ=0 or RUNLLM_TEST_SANITIZE=0 leaves out step 2 or 3 (quicker local runs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
step() { echo "test.sh: $1 ($(date -u +%H:%M:%S))" >&2; }

step "1/3 build and the unit and end-to-end suites"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
RUNLLM_TEST_MODEL_DIR="$("$root/scripts/fetch_model.sh" "$build_dir/run-llm")"
export RUNLLM_TEST_MODEL_DIR
# -V streams each suite's lines as they come (a line per e2e test case and quantized variant), so the
# long suites show progress instead of minutes of silence.
(cd "$build_dir" && ctest -V --output-on-failure --timeout 2400)

if [ "${RUNLLM_TEST_FUZZ:-1}" != 0 ]; then
  export FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
  step "2/3 fuzzing the parsers, $FUZZ_SECONDS s per target"
  "$root/scripts/fuzz.sh"
fi
if [ "${RUNLLM_TEST_SANITIZE:-1}" != 0 ]; then
  step "3/3 the suites under AddressSanitizer + UndefinedBehaviorSanitizer"
  "$root/scripts/test_sanitized.sh"
fi
step "all passed"
