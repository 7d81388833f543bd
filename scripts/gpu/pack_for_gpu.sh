#!/usr/bin/env bash
# Packs what the GPU machine needs but cannot build (it lacks the tokenizer's headers) into
# .gpu-carry/ (git-ignored): the binaries built here for sm_90a, the shared
# libraries they need that the GPU machine lacks, the evaluation text, and the default GGUF model
# split in two pieces (each device call carries at most 64 MiB).
#
#   scripts/gpu/pack_for_gpu.sh BUILD_DIR [GGUF]
set -euo pipefail
build="${1:?usage: scripts/gpu/pack_for_gpu.sh BUILD_DIR [GGUF]}"
gguf="${2:-$HOME/.cache/run-llm/SmolLM2-135M-Instruct.Q4_1.gguf}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
carry="$root/.gpu-carry"
rm -rf "$carry" && mkdir -p "$carry/stage/lib"
cp "$build/run-llm" "$build/tests/cuda_kernel_tests" "$build/tests/cuda_model_tests" "$build/tests/top2_logits" \
  "$carry/stage/"
# Every library of the binaries outside libc/libstdc++ and the CUDA toolkit (present there).
for binary in "$carry"/stage/run-llm "$carry"/stage/cuda_*; do
  ldd "$binary" | awk '/=>/ {print $3}' | grep -vE '/usr/local/cuda|libcudart|libcublas|libc\.so|libm\.so|libstdc\+\+|libgcc_s|libdl|libpthread|librt' || true
done | sort -u | while read -r lib; do cp -L "$lib" "$carry/stage/lib/"; done
# xz: the GPU machine has no zstd, but its python3 reads xz (lzma).
tar -C "$carry/stage" -cf - . | xz -7 -T2 > "$carry/runllm-gpu.tar.xz"
rm -rf "$carry/stage"
cp "$root/tests/data/text/wiki.test.raw" "$carry/"
# The commit the binaries were built from, for the results' headers.
source_dir="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")"
git -C "$source_dir" describe --always --dirty > "$carry/source_commit"
# 40 MiB with the binaries in the first call, the rest in the second.
head -c $((40 << 20)) "$gguf" > "$carry/model.gguf.part1"
tail -c +$(((40 << 20) + 1)) "$gguf" > "$carry/model.gguf.part2"
sha256sum "$gguf" | awk '{print $1}' > "$carry/model.gguf.sha256"
ls -la "$carry"
