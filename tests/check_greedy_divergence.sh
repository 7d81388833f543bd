#!/usr/bin/env bash
# For each prompt that tests/run_gpu_e2e.sh marked DIFFERENT (cuda vs cpu greedy ids), finds the first
# differing token and prints the CPU reference's top-2 logits there (tests/tools/top2_logits). The
# issue's rule: the runs may part ways only where the two top logits are within 1e-2.
#
#   tests/check_greedy_divergence.sh RESULTS_FILE MODEL_DIR TOP2_LOGITS_BINARY
set -uo pipefail
results="${1:?usage: RESULTS_FILE MODEL_DIR TOP2_LOGITS_BINARY}" model="${2:?}" top2="${3:?}"
status=0
{
  echo
  echo "## first differences (CPU reference top-2 logits; limit 1e-2) by tests/check_greedy_divergence.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
  awk '/^prompt ".*": DIFFERENT/ {p=$0; sub(/^prompt "/, "", p); sub(/": DIFFERENT.*/, "", p); getline; getline;
        getline c; getline q; sub(/^  cuda generated ids: /, "", c); sub(/^  cpu  generated ids: /, "", q);
        print p "\t" c "\t" q}' "$results" |
  while IFS=$'\t' read -r prompt cuda cpu; do
    read -ra a <<< "$cuda"; read -ra b <<< "$cpu"
    i=0; while [[ $i -lt ${#a[@]} && $i -lt ${#b[@]} && "${a[$i]}" == "${b[$i]}" ]]; do i=$((i + 1)); done
    line="$("$top2" "$model" "$prompt" "${a[@]:0:$i}")"
    diff="$(echo "$line" | grep -oE 'difference [0-9.]+' | awk '{print $2}')"
    verdict="$(python3 -c "print('PASS' if $diff < 1e-2 else 'FAIL')")"
    echo "prompt \"$prompt\": first difference at generated token $i (cuda ${a[$i]}, cpu ${b[$i]}): $line: $verdict"
    [[ $verdict == PASS ]] || exit 1
  done || status=1
}
exit $status
