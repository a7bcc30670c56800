#!/usr/bin/env bash
# run.sh — the end-to-end browser tests (`make test-e2e`, and the last stage
# of `make test`): headless Chromium drives the app in www/ through nginx
# (nginx.conf) in front of chatd, with a throwaway MariaDB.
#
#   1. installs what is missing: Debian's chromium and nginx (apt, sudo when
#      not root) and playwright-core, pinned in package-lock.json (npm ci;
#      it downloads no browser)
#   2. starts a private MariaDB in a temporary directory (scripts/db.sh),
#      chatd on a free port (CHATD_BIN, default build/chatd; `make test`
#      passes the sanitizer build), and nginx with nginx.conf adapted to those
#      ports (scripts/run-nginx.sh): HTTPS with a self-signed certificate made
#      in the directory, plain HTTP redirecting to it, the limits on
#   3. runs the tests (node --test) against nginx over HTTPS (Node trusts the
#      certificate through NODE_EXTRA_CA_CERTS; Chromium is told to accept
#      it); they save screenshots in docs/screenshots/ (E2E_SCREENSHOTS to put
#      them elsewhere)
#   4. stops nginx, chatd and the database by PID, and removes the directory
#      (kept, with the logs printed, when a test failed)
#
# Extra arguments go to `node --test` (e.g. --test-name-pattern=group).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
e2e=$root/tests/e2e

# ---- 1. tools ----
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  echo "e2e: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # policy-rc.d keeps the nginx package from starting a system nginx on :80.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  rc=0
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { $sudo apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } ||
    rc=$?
  [ -n "$made_policy" ] && $sudo rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || { echo "e2e: could not install ${need[*]}" >&2; exit 1; }
fi
if [ ! -d "$e2e/node_modules/playwright-core" ] || [ "$e2e/package-lock.json" -nt "$e2e/node_modules" ]; then
  (cd "$e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  touch "$e2e/node_modules"
fi
bin=${CHATD_BIN:-$root/build/chatd}
[ -x "$bin" ] || make -s build/chatd

# ---- 2. database, chatd, nginx ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chatd-e2e.XXXXXX")
chatd_pid=""
nginx_pid=""
status=1
# Stops a process by PID: SIGTERM, then SIGKILL after 10 s; sets stopped_rc.
stop_pid() {
  stopped_rc=0
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || stopped_rc=$?
}
stop() {
  [ -n "$nginx_pid" ] && stop_pid "$nginx_pid"
  if [ -n "$chatd_pid" ]; then
    stop_pid "$chatd_pid"
    # As in the API tests: a chatd that exits badly or reports a sanitizer
    # error (CHATD_BIN=build/chatd-asan under `make test`) fails the run.
    if [ "$stopped_rc" -ne 0 ] || grep -qE "$sanitizer_marks" "$tmp/chatd.err" 2>/dev/null; then
      echo "e2e: chatd exited with status $stopped_rc or reported a sanitizer error; its stderr:" >&2
      cat "$tmp/chatd.err" >&2
      status=1
    fi
  fi
  "$root/scripts/db.sh" stop "$tmp/db" || true
  if [ "$status" -eq 0 ]; then
    rm -rf "$tmp"
  else
    echo "e2e: FAILED; logs kept in $tmp" >&2
    for f in chatd.err nginx.out nginx/error.log; do
      [ -s "$tmp/$f" ] && { echo "--- $f (last 30 lines)" >&2; tail -30 "$tmp/$f" >&2; }
    done
  fi
  exit "$status"
}
sanitizer_marks='ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer'
trap 'stop' EXIT
trap 'exit 130' INT TERM

"$root/scripts/db.sh" start "$tmp/db" >/dev/null

CHAT_LISTEN=127.0.0.1:0 \
CHAT_DB_URL="mysql://root@localhost/chat?socket=$tmp/db/mysql.sock" \
CHAT_WWW_ROOT="$root/www" CHAT_SQL_DIR="$root/sql" CHAT_LOG_LEVEL=warn \
CHAT_CONNECTION_LIMIT_PER_ADDRESS=0 CHAT_RATE_LIMITS=false \
CHAT_MEDIA_DIR="$tmp/media" CHAT_MEDIA_ACCEL_REDIRECT=/_media/ \
  "$bin" >"$tmp/chatd.out" 2>"$tmp/chatd.err" &
chatd_pid=$!
chatd_addr=""
for _ in $(seq 1 300); do
  chatd_addr=$(sed -n 's|^chatd: listening on http://\([0-9.:]*\).*|\1|p' "$tmp/chatd.out" | head -1)
  [ -n "$chatd_addr" ] && break
  kill -0 "$chatd_pid" 2>/dev/null || { echo "e2e: chatd exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$chatd_addr" ] || { echo "e2e: chatd did not start" >&2; exit 1; }

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
base=""
http_base=""
for _ in 1 2 3; do
  port=$(free_port)
  http_port=$(free_port)
  NGINX_LISTEN=127.0.0.1:$port NGINX_HTTP_LISTEN=127.0.0.1:$http_port NGINX_TLS_DIR=$tmp/tls \
    CHATD_UPSTREAM=$chatd_addr NGINX_DIR=$tmp/nginx NGINX_MEDIA_DIR=$tmp/media \
    "$root/scripts/run-nginx.sh" >"$tmp/nginx.out" 2>&1 &
  nginx_pid=$!
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null --max-time 2 --cacert "$tmp/tls/cert.pem" "https://127.0.0.1:$port/readyz" 2>/dev/null; then
      base="https://127.0.0.1:$port"
      http_base="http://127.0.0.1:$http_port"
      break 2
    fi
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
  done
  stop_pid "$nginx_pid"
  nginx_pid=""
done
[ -n "$base" ] || { echo "e2e: nginx did not start" >&2; cat "$tmp/nginx.out" >&2; exit 1; }
echo "e2e: chatd at $chatd_addr, nginx at $base"

# ---- 3. the tests ----
set +e
NODE_EXTRA_CA_CERTS=$tmp/tls/cert.pem E2E_BASE_URL=$base E2E_HTTP_URL=$http_base E2E_CHATD_URL=http://$chatd_addr \
  E2E_SCREENSHOTS=${E2E_SCREENSHOTS:-$root/docs/screenshots} \
  node --test --test-reporter=spec "$@" "$e2e"/*.test.mjs
status=$?
set -e
exit "$status"
