#!/usr/bin/env bash
# Example: AWQ 4-bit, group 64 (AutoAWQ gemm layout), made with the activation-aware scale search.
# Run after scripts/build.sh; extra arguments go to run-llm.
exec "$(dirname "${BASH_SOURCE[0]}")/quantized_example.sh" awq-g64 "--method awq --bits 4 --group-size 64" "" "$@"
