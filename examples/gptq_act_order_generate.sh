#!/usr/bin/env bash
# Example: GPTQ 4-bit, group 64 with act-order (desc_act: g_idx written).
# Run after scripts/build.sh; extra arguments go to run-llm.
exec "$(dirname "${BASH_SOURCE[0]}")/quantized_example.sh" gptq-4-g64-act-order "--method gptq --bits 4 --group-size 64 --act-order" "" "$@"
