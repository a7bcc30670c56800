#!/usr/bin/env bash
# db.sh — a private MariaDB server in a directory of its own, on a unix socket,
# never touching a system server.
#
#   scripts/db.sh start DIR   create DIR/data on first use, start mariadbd,
#                             wait until it answers; prints the CHAT_DB_URL
#                             prefix (mysql://root@localhost/?socket=DIR/mysql.sock)
#   scripts/db.sh stop DIR    stop it (clean shutdown) and wait
#   scripts/db.sh url DIR     print the URL without starting anything
#
# Extra mariadbd options may be given in DB_OPTS. The server listens on no TCP
# port. root@localhost has no password; only the socket, in DIR, reaches it.
set -euo pipefail
cmd=${1:?usage: db.sh start|stop|url DIR}
dir=${2:?usage: db.sh start|stop|url DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
sock="$dir/mysql.sock"
pidf="$dir/mysqld.pid"
url="mysql://root@localhost/?socket=$sock"
user_opt=()
[ "$(id -u)" -eq 0 ] && user_opt=(--user=root)

running() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }

case "$cmd" in
url) echo "$url" ;;
start)
  if running; then echo "$url"; exit 0; fi
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$dir/data" \
      --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve --force \
      >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
  fi
  # shellcheck disable=SC2086
  mariadbd --no-defaults "${user_opt[@]}" --datadir="$dir/data" \
    --socket="$sock" --pid-file="$pidf" --skip-networking --skip-name-resolve \
    --log-error="$dir/mysqld.err" --innodb-flush-log-at-trx-commit=1 \
    --innodb-buffer-pool-size=256M --max-connections=500 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
    ${DB_OPTS:-} >/dev/null 2>&1 &
  for _ in $(seq 1 300); do
    if mariadb-admin --no-defaults --socket="$sock" -uroot ping >/dev/null 2>&1; then
      echo "$url"; exit 0
    fi
    kill -0 $! 2>/dev/null || break
    sleep 0.1
  done
  echo "db.sh: mariadbd did not start; see $dir/mysqld.err" >&2
  tail -20 "$dir/mysqld.err" >&2 || true
  exit 1 ;;
stop)
  running || exit 0
  pid=$(cat "$pidf")
  kill -TERM "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true ;;
*) echo "usage: db.sh start|stop|url DIR" >&2; exit 2 ;;
esac
