#!/usr/bin/env bash
# check-commits.sh — `make check-commits BASE=<rev>`: the commit messages of
# BASE..HEAD follow the habit of the project:
#
#   - a subject line of at most 72 characters,
#   - then a blank line,
#   - then a body (at least one non-blank line) that says why.
#
# Merge commits are skipped. Prints every offending commit as
# "<short hash> <subject>: <problem>" and exits 1 when there is one.
# Not part of `make test`: CI checks out a clone whose history is what it is.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8 # count characters, not bytes

base=${1:-}
if [ -z "$base" ]; then
  echo "usage: $0 BASE   (e.g. make check-commits BASE=origin/main)" >&2
  exit 2
fi
git rev-parse --verify --quiet "$base^{commit}" >/dev/null ||
  { echo "check-commits: '$base' is not a commit" >&2; exit 2; }

max=${MAX_SUBJECT:-72}
bad=0
n=0
while read -r rev; do
  n=$((n + 1))
  msg=$(git log -1 --format=%B "$rev")
  subject=$(printf '%s\n' "$msg" | sed -n 1p)
  second=$(printf '%s\n' "$msg" | sed -n 2p)
  body=$(printf '%s\n' "$msg" | sed -n '3,$p' | grep -v '^[[:space:]]*$' || true)
  short=$(git rev-parse --short "$rev")
  len=${#subject} # characters, in a UTF-8 locale
  problems=()
  [ "$len" -le "$max" ] || problems+=("subject is $len characters (at most $max)")
  [ -z "$second" ] || problems+=("no blank line after the subject")
  [ -n "$body" ] || problems+=("no body saying why")
  if [ ${#problems[@]} -gt 0 ]; then
    bad=1
    shown=$subject
    [ ${#shown} -le 60 ] || shown="${shown:0:57}..."
    for p in "${problems[@]}"; do echo "$short \"$shown\": $p"; done
  fi
done < <(git rev-list --no-merges --reverse "$base..HEAD")

[ $bad -eq 0 ] && echo "commits: ok ($n since $base)"
exit $bad
