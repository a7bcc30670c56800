#!/usr/bin/env bash
# tests/standalone/run.sh — the repository runs on its own (issue 13): a
# clone of the committed HEAD into an empty temporary directory, with no
# sibling directory `shared` beside it, refers to nothing outside itself,
# builds, serves on an ephemeral port of 127.0.0.1 with its own MariaDB, and
# `make demo` replays a short sample of its own IRC logs with nothing lost,
# duplicated or out of order. Stops what it started, by PID, and removes
# the directory.
#
#   STANDALONE_FILES   how many log files the demo replays (default 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tmp=$(mktemp -d /tmp/chat-standalone.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -S "$tmp/repo/var/db/mysql.sock" ]; then "$tmp/repo/scripts/db.sh" stop "$tmp/repo/var/db" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

git clone -q "$root" "$tmp/repo"
cd "$tmp/repo"
outside=..'/shared'
if [ -e "$outside" ]; then
  echo "standalone: $tmp/shared exists" >&2
  exit 1
fi
if grep -rIlF --exclude-dir=.git -e "$outside" . ; then
  echo "standalone: the files above refer to the directory beside the repository" >&2
  exit 1
fi
make -s build/chatd
scripts/db.sh start var/db >/dev/null
CHAT_DB_URL="mysql://root@localhost/chat?socket=$PWD/var/db/mysql.sock" \
  CHAT_LISTEN=127.0.0.1:0 CHAT_RATE_LIMITS=false build/chatd >var/chatd.out 2>var/chatd.err &
pid=$!
url=""
for _ in $(seq 1 300); do
  url=$(sed -n 's/^chatd: listening on \(http:[^ ]*\)$/\1/p' var/chatd.out var/chatd.err | head -1)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat var/chatd.err >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "standalone: chatd printed no listening line" >&2; exit 1; }
echo "standalone: a clone in $tmp/repo serves $url; make demo on ${STANDALONE_FILES:-1} file(s)"
CHAT_URL=$url DEMO_FILES=${STANDALONE_FILES:-1} make -s demo
