#!/usr/bin/env bash
# run.sh — `make run`: a private MariaDB under var/db (unless CHAT_DB_URL is
# set), then chatd in the foreground. Ctrl-C stops chatd, then the database;
# the data stays in var/ for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
own_db=""
if [ -z "${CHAT_DB_URL:-}" ]; then
  scripts/db.sh start var/db >/dev/null
  own_db=1
  export CHAT_DB_URL="mysql://root@localhost/chat?socket=$PWD/var/db/mysql.sock"
fi
stop() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$own_db" ] && scripts/db.sh stop var/db
  echo "stopped; the data is kept in var/"
}
trap stop EXIT
trap 'exit 0' INT TERM
# Locally everything comes from 127.0.0.1: nginx (`make run-nginx`) and the
# replay (`make demo`, a poll per present user) alike.
export CHAT_CONNECTION_LIMIT_PER_ADDRESS=${CHAT_CONNECTION_LIMIT_PER_ADDRESS:-0}
# The local server runs the demo replay (thousands of messages a minute from
# one account) and the browser tests: no rate limits unless asked for.
export CHAT_RATE_LIMITS=${CHAT_RATE_LIMITS:-false}
build/chatd &
pid=$!
wait "$pid"
