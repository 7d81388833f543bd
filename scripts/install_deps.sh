#!/usr/bin/env bash
# Installs the Debian packages run-llm builds against (the CUDA toolkit is expected to be present:
# nvcc on PATH or in /usr/local/cuda/bin). Safe to run again: installs only what is missing.
# --fuzz adds what scripts/fuzz.sh needs: clang, libFuzzer with the sanitizer runtimes, llvm-symbolizer.
set -euo pipefail

packages=(cmake g++ make pkg-config
          libsentencepiece-dev sentencepiece nlohmann-json3-dev catch2
          libopenblas-dev libpcre2-dev libcli11-dev libicu-dev)
case "${1:-}" in
  --fuzz) packages+=(clang libclang-rt-dev llvm) ;;
  "") ;;
  *) echo "install_deps: unknown option $1 (usage: install_deps.sh [--fuzz])" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "install_deps: nvcc not found; install the CUDA 12/13 toolkit (run-llm builds its CUDA kernels for sm_90a)" >&2
  exit 1
fi
