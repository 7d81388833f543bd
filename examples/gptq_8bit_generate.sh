#!/usr/bin/env bash
# Example: GPTQ 8-bit, group 64.
# Run after scripts/build.sh; extra arguments go to run-llm.
exec "$(dirname "${BASH_SOURCE[0]}")/quantized_example.sh" gptq-8-g64 "--method gptq --bits 8 --group-size 64" "" "$@"
