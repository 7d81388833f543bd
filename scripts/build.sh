#!/usr/bin/env bash
# Configures and builds run-llm and its tests into build/ (override with BUILD_DIR).
# Usage: scripts/build.sh [TARGET...]   e.g. `scripts/build.sh run-llm` builds only the binary (no tests);
# without targets everything is built.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" ${targets[@]+"${targets[@]}"} >&2
