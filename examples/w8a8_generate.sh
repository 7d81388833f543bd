#!/usr/bin/env bash
# Example: W8A8: SmoothQuant, int8 per-channel weights, dynamic per-token int8 activations (compressed-tensors).
# Run after scripts/build.sh; extra arguments go to run-llm.
exec "$(dirname "${BASH_SOURCE[0]}")/quantized_example.sh" w8a8 "--method w8a8" "" "$@"
