#!/usr/bin/env bash
# Example: GPTQ 4-bit, group 64, no act-order (GPTQ v1 layout).
# Run after scripts/build.sh; extra arguments go to run-llm.
exec "$(dirname "${BASH_SOURCE[0]}")/quantized_example.sh" gptq-4-g64 "--method gptq --bits 4 --group-size 64" "" "$@"
