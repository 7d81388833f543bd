# Sourced by the examples, with the user's arguments: `source example_args.sh "$@"`.
# run-llm refuses an option given twice ("At Most 1 required but received 2"), so the settings an
# example picks give way to the user's: `example_default ALIASES VALUE` appends "FIRST-ALIAS VALUE" to
# the array `example_args` unless the user's arguments hold one of ALIASES ("-n|--max-tokens"), as
# `-n 5`, `--max-tokens=5` or `-n5`. Run run-llm with "${example_args[@]}" "$@".
example_user_args=("$@")
example_args=()

example_user_gives() {
  local aliases="$1" alias arg
  for arg in ${example_user_args[@]+"${example_user_args[@]}"}; do
    local IFS='|'
    for alias in $aliases; do
      case "$arg" in
        "$alias" | "$alias"=*) return 0 ;;
      esac
      # A short option with its value glued on: -n64.
      if [ "${#alias}" -eq 2 ] && [ "${arg#"$alias"}" != "$arg" ] && [ "${arg#--}" = "$arg" ]; then return 0; fi
    done
  done
  return 1
}

example_default() {
  example_user_gives "$1" || example_args+=("${1%%|*}" "$2")
}
