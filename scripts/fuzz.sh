#!/usr/bin/env bash
# Fuzzes the parsers of files run-llm did not write (tests/fuzz/README.md): builds the libFuzzer
# targets of tests/fuzz/ with clang, makes their seed corpora from the default model's files and
# hand-made examples, replays the committed regression inputs (tests/fuzz/regressions/<target>/),
# then fuzzes every target for FUZZ_SECONDS. Exits non-zero on any finding (crash, sanitizer report,
# escaped exception, hang over 10 s, over 2 GB of memory), naming the target and the input.
#
# Environment: FUZZ_BUILD_DIR (build-fuzz), FUZZ_SECONDS (60 per target), FUZZ_TARGETS (all),
# JOBS (build parallelism, all cores), RUNLLM_CACHE (where scripts/fetch_model.sh put the model,
# default ~/.cache/run-llm; without the model there only the hand-made seeds are used).
# Packages: scripts/install_deps.sh --fuzz (clang, libFuzzer and the sanitizer runtimes, llvm-symbolizer
# for readable stack traces).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh" --fuzz
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"
cache="${RUNLLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/run-llm}"
all_targets="fuzz_safetensors fuzz_safetensors_index fuzz_config fuzz_gguf fuzz_bpe_tokenizer fuzz_utf8_detokenizer"
read -r -a targets <<< "${FUZZ_TARGETS:-$all_targets}"
# libFuzzer reads -max_total_time=0 as "no limit".
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "fuzz: FUZZ_SECONDS must be a whole number of seconds >= 1, got '$seconds'" >&2
  exit 2
fi
for target in "${targets[@]}"; do
  if [[ " $all_targets " != *" $target "* ]]; then
    echo "fuzz: unknown target '$target' in FUZZ_TARGETS (targets: $all_targets)" >&2
    exit 2
  fi
done
regressions="$root/tests/fuzz/regressions"
# Per input: 10 s, 2 GB resident, no single allocation over 512 MB (inputs are at most a few MB).
limits=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512)
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

CXX="${CXX:-clang++}" cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=None > /dev/null
cmake --build "$build" -j "${JOBS:-$(nproc)}"
rm -rf "$build/seeds"
"$build/make_fuzz_seeds" "$cache" "$build/seeds"

failed=()
report_finding() {  # target, log, artifact folder
  echo "fuzz: FINDING in $1 (log: $2)" >&2
  for artifact in "$3"/*; do
    [ -e "$artifact" ] && echo "fuzz:   input: $artifact" >&2
  done
  failed+=("$1")
}

for target in "${targets[@]}"; do
  mkdir -p "$build/corpus/$target" "$build/logs"
  artifacts="$build/artifacts/$target"
  rm -rf "$artifacts" && mkdir -p "$artifacts"
  inputs=()
  [ -d "$regressions/$target" ] && inputs=("$regressions/$target")

  # Replay: each committed input once, as a plain run.
  if [ ${#inputs[@]} -gt 0 ] && [ -n "$(ls -A "$regressions/$target")" ]; then
    log="$build/logs/$target.replay.log"
    if ! "$build/$target" "${limits[@]}" -artifact_prefix="$artifacts/" "$regressions/$target"/* > "$log" 2>&1; then
      tail -n 40 "$log" >&2
      report_finding "$target" "$log" "$artifacts"
      continue
    fi
    echo "fuzz: $target: replayed $(ls "$regressions/$target" | wc -l) regression inputs"
  fi

  # Fuzz: new inputs go to the first folder, the seeds and regressions are read.
  dictionary=()
  case "$target" in
    fuzz_gguf) dictionary=(-dict="$root/tests/fuzz/gguf.dict") ;;
    fuzz_utf8_detokenizer) ;;
    *) dictionary=(-dict="$root/tests/fuzz/json.dict") ;;
  esac
  log="$build/logs/$target.log"
  echo "fuzz: $target: fuzzing for ${seconds} s"
  if ! nice -n 10 "$build/$target" "${limits[@]}" "${dictionary[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$build/corpus/$target" "$build/seeds/$target" "${inputs[@]}" > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    report_finding "$target" "$log" "$artifacts"
    continue
  fi
  echo "fuzz: $target: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | cut -d' ' -f2) runs, no finding"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no findings in ${targets[*]}"
