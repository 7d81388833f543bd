#!/usr/bin/env bash
# Regenerates tests/data/reference/quantized_perplexity.json: runs the quantized-perplexity e2e suite
# in writing mode (the same quantize and perplexity commands the test runs) and adds where, when and
# how the numbers were made.
#   scripts/reference/make_quantized_reference.sh        (after scripts/build.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
MODEL_DIR="$("$ROOT/scripts/fetch_model.sh" | tail -n 1)"
OUT="$ROOT/tests/data/reference/quantized_perplexity.json"
MEASURED="$(mktemp)"
trap 'rm -f "$MEASURED"' EXIT

start=$(date +%s)
RUNLLM_TEST_MODEL_DIR="$MODEL_DIR" RUNLLM_WRITE_QUANT_REFERENCE="$MEASURED" \
  "$BUILD_DIR/tests/e2e_tests" "[quantized-ppl]"
seconds=$(( $(date +%s) - start ))

python3 - "$MEASURED" "$OUT" "$seconds" <<'PY'
import json, os, platform, subprocess, sys, datetime
measured, out, seconds = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
result = {
    "generated_by": "scripts/reference/make_quantized_reference.sh (tests/e2e/test_quantized_perplexity.cpp in writing mode)",
    "date": datetime.date.today().isoformat(),
    "commit": commit,
    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, CPU reference path (fp32, OpenBLAS)",
    "evaluation": "wiki.test.raw, --ctx 512 --chunks 8 (2,040 scored tokens)",
    "calibration": "pride_and_prejudice.txt, --calib-samples 16 --calib-len 256 --seed 0",
    "suite_seconds": seconds,
}
result.update(measured)
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print(f"wrote {out}")
PY
