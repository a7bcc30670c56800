#!/usr/bin/env bash
# demo.sh — `make demo`: replay the #ubuntu IRC logs in data/ubuntu-irc
# through a running chatd (start it with `make run` in another terminal) and
# check that every stored message reached every member's device exactly once,
# in order. See docs/demo.md.
#
#   CHAT_URL    the server (default http://127.0.0.1:8080)
#   SPEED       0 = as fast as possible (default); N = log time divided by N
#               (SPEED=600 plays ten minutes of log per second)
#   DEMO_FILES  a count (the first N files) or a glob (e.g. '2016-*'); all by default
#   DEMO_DATA   the log directory (default data/ubuntu-irc)
#
# Exit status: 0 when nothing was lost, duplicated or delivered out of order;
# 1 when something was (or could not be checked); 2 when no server is ready.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${CHAT_URL:-http://127.0.0.1:8080}
speed=${SPEED:-0}
data=${DEMO_DATA:-data/ubuntu-irc}
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ]; then
  echo "demo: python3 is needed (Debian: apt-get install python3)" >&2
  exit 2
fi
if [ ! -d "$data" ]; then
  echo "demo: no logs in $data (set DEMO_DATA)" >&2
  exit 2
fi

# Is a server there, and is its database up? (prints what to do if not)
"$py" tools/demo/replay.py --url "$url" --check || exit 2

args=(--url "$url" --speed "$speed" --data "$data")
[ -n "${DEMO_FILES:-}" ] && args+=(--files "$DEMO_FILES")
exec "$py" tools/demo/replay.py "${args[@]}"
