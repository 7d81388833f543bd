#!/usr/bin/env bash
# Example: the AWQ checkpoint run through the ExLlama/GPTQ path (converted at load; same numbers).
# Run after scripts/build.sh; extra arguments go to run-llm.
exec "$(dirname "${BASH_SOURCE[0]}")/quantized_example.sh" awq-g64 "--method awq --bits 4 --group-size 64" "--awq-kernel exllama" "$@"
