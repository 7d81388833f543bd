#!/usr/bin/env bash
# Everything the tests need, then the tests: dependencies, build (CUDA kernels included), the default
# model, and ctest (unit and end-to-end suites). [cuda] tests need a GPU and are reported as skipped
# without one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
RUNLLM_TEST_MODEL_DIR="$("$root/scripts/fetch_model.sh" "$build_dir/run-llm")"
export RUNLLM_TEST_MODEL_DIR
cd "$build_dir"
ctest --output-on-failure --timeout 2400
