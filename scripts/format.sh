#!/usr/bin/env bash
# format.sh — clang-format over the C sources, with the style in .clang-format.
#
#   scripts/format.sh fix     `make format`: rewrite every .c/.h under src/
#                             handlers/ tests/unit/ bench/ fuzz/ in place
#   scripts/format.sh check   `make format-check`: list the files that are not
#                             formatted, show a short diff, exit 1 if any
#
# CLANG_FORMAT picks the binary (default: clang-format). The style is pinned
# to what clang-format 14 (Debian 12) does; other versions may differ a little.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-check}
cf=${CLANG_FORMAT:-clang-format}
dirs=(src handlers tests/unit bench fuzz)
diff_lines=${FORMAT_DIFF_LINES:-60} # how much of the diff `check` shows

command -v "$cf" >/dev/null || { echo "format: $cf not found (scripts/deps.sh test installs it)" >&2; exit 2; }

mapfile -t files < <(find "${dirs[@]}" -name '*.[ch]' -type f | sort)

case $mode in
  fix)
    "$cf" -i --style=file "${files[@]}"
    ;;
  check)
    bad=()
    diffs=$(mktemp)
    trap 'rm -f "$diffs"' EXIT
    for f in "${files[@]}"; do
      if ! "$cf" --style=file "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - >>"$diffs"; then
        bad+=("$f")
      fi
    done
    if [ ${#bad[@]} -eq 0 ]; then
      echo "format: ok (${#files[@]} files)"
      exit 0
    fi
    echo "format: ${#bad[@]} of ${#files[@]} files are not formatted (make format fixes them):"
    printf '  %s\n' "${bad[@]}"
    changed=$(awk '/^-/ && !/^--- /' "$diffs" | wc -l)
    echo "format: $changed lines would change; the first $diff_lines lines of the diff:"
    head -n "$diff_lines" "$diffs"
    exit 1
    ;;
  *)
    echo "usage: $0 fix|check" >&2
    exit 2
    ;;
esac
