#!/usr/bin/env bash
# bench/run.sh — `make bench` (short, ≤ 5 minutes) and `make bench-long`.
#
#   bench/run.sh short|long
#
# Starts its own MariaDB (scripts/db.sh, under var/bench/<run>/db) and its own
# build/chatd (release build, an ephemeral port on 127.0.0.1), runs the
# ceilings and the scenarios with build/loadgen, and writes every result as
# JSON into var/bench/<run>/, then docs/BENCHMARKS.md from those files
# (bench/report.py). Everything it starts it stops, by PID, also on Ctrl-C.
#
#   BENCH_DIR      results directory (default var/bench/<UTC time>-<mode>)
#   BENCH_REPORT   the report to write (default docs/BENCHMARKS.md)
#   BENCH_ONLY     run only these steps (space-separated names, e.g. "ceil s2");
#                  the report then covers what ran
#   BENCH_KEEP_DB  keep the run's MariaDB data directory (deleted by default)
#   BENCH_DB_OPTS  extra mariadbd options, e.g. the slow log with long_query_time=0
#
# Steps: ceil (healthz, nginx, MariaDB commits), bare (the bare libmicrohttpd
# long-poll anchor), s1 s2 s3 s4 s5 s6, search (bench/search.py: query
# latency over the IRC sample repeated to 1 M messages), searchcost (S3 1:1
# with the indexer off and on), flush2 (S3 1:1 and the commit ceiling
# with innodb_flush_log_at_trx_commit=2), cluster (bench/cluster.py: the
# scripts/cluster.sh set-up, cross-node latency, msgs/s on 1 and 3 nodes, one
# Galera writer vs three, parked polls, failover).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-short}
case "$MODE" in short|long|tiny) ;; *) echo "usage: bench/run.sh short|long" >&2; exit 2 ;; esac

RUN=${BENCH_DIR:-var/bench/$(date -u +%Y%m%dT%H%M%SZ)-$MODE}
REPORT=${BENCH_REPORT:-docs/BENCHMARKS.md}
ONLY=${BENCH_ONLY:-}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
LG=$ROOT/build/loadgen
CHATD=$ROOT/build/chatd
for b in "$LG" "$CHATD"; do
  [ -x "$b" ] || { echo "bench: $b is missing (make build/chatd build/loadgen)" >&2; exit 1; }
done
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# ------------------------------------------------------------------ sizes ---
HARD=$(ulimit -Hn)
[ "$HARD" = unlimited ] && HARD=1048576
ulimit -n "$HARD"
# The most parked polls the open-file limit allows one chatd: its limit less
# a margin for its own files (database connections, epoll, listen socket)
# and the bench's other connections.
NMAX=$(( HARD - 1000 ))
if [ "$MODE" = tiny ]; then
  # a check of the harness itself (seconds, small sizes), not a benchmark
  CEIL_S=1; CEIL_DB_S=1
  S1_SIZES="200 1000"; S1_IDLE=1
  S2_N=1000; S2_S=2
  S3_S=2; S3_GROUPS="1 10"
  S4_M=100; S4_K=2; S4_SETTLE=3
  S5_T=4; S5_D=200; S5_S=2
  S6_FILES=1; S6_LINES=100; S6_TIMEOUT=60
  SEARCH_N=30000
  F2_S=2
  DRAIN=5; FINAL_DRAIN=5; S4_CAP=5; LG_TIMEOUT=120
elif [ "$MODE" = short ]; then
  CEIL_S=3; CEIL_DB_S=2
  S1_SIZES="1000 10000 $NMAX"; S1_IDLE=2
  S2_N=10000; S2_S=4
  S3_S=5; S3_GROUPS="1 10 100 1000"
  S4_M=1000; S4_K=2; S4_SETTLE=6
  S5_T=32; S5_D=2000; S5_S=4
  S6_FILES=2; S6_LINES=200; S6_TIMEOUT=45
  SEARCH_N=1000000
  F2_S=5
  DRAIN=5; FINAL_DRAIN=5; S4_CAP=10; LG_TIMEOUT=240
else
  CEIL_S=10; CEIL_DB_S=10
  S1_SIZES="1000 10000 $NMAX"; S1_IDLE=20
  S2_N=10000; S2_S=30
  S3_S=30; S3_GROUPS="1 10 100 1000"
  S4_M=1000; S4_K=10; S4_SETTLE=60
  S5_T=64; S5_D=5000; S5_S=30
  S6_FILES=all; S6_LINES=0; S6_TIMEOUT=3600
  SEARCH_N=1000000
  F2_S=30
  DRAIN=15; FINAL_DRAIN=60; S4_CAP=30; LG_TIMEOUT=1800
fi
SENDERS=64
T0=$(date +%s)
# chatd's settings that shape the figures (the environment's CHAT_* win, as for chatd)
chatd_default() { "$CHATD" --help | awk -v k="$1" '$1 == k && $2 ~ /^CHAT_/ { print $NF }'; }
CHAT_MEM_KB=${CHAT_CONNECTION_MEMORY_KB:-$(chatd_default connection_memory_kb)}
CHAT_THREADS_N=${CHAT_THREADS:-$(chatd_default threads)}

want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
log() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$RUN/bench.log" >&2; }

# ------------------------------------------------------ processes we own ---
DBDIR=$RUN/db
SOCK=$DBDIR/mysql.sock
CHATD_PID=""; CHATD_URL=""; NGINX_PID=""; BARE_PID=""; DB_PID=""
cleanup() {
  set +e
  [ -n "$CHATD_PID" ] && kill -TERM "$CHATD_PID" 2>/dev/null && wait "$CHATD_PID" 2>/dev/null
  [ -n "$BARE_PID" ] && kill -TERM "$BARE_PID" 2>/dev/null && wait "$BARE_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  [ -n "$DB_PID" ] && scripts/db.sh stop "$DBDIR" >/dev/null 2>&1
  CHATD_PID=""; BARE_PID=""; NGINX_PID=""; DB_PID=""
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

db_start() { # flush setting
  DB_OPTS="--innodb-flush-log-at-trx-commit=$1 ${BENCH_DB_OPTS:-}" \
    scripts/db.sh start "$DBDIR" >/dev/null
  DB_PID=$(cat "$DBDIR/mysqld.pid")
  log "MariaDB up (pid $DB_PID, innodb_flush_log_at_trx_commit=$1)"
}
db_stop() { scripts/db.sh stop "$DBDIR" >/dev/null; DB_PID=""; }

# Starts chatd on an ephemeral port; its stderr goes to chatd-<name>.err.
chatd_start() { # name [VAR=value…]
  local name=$1; shift
  local out=$RUN/chatd-$name.out
  env CHAT_LISTEN=127.0.0.1:0 \
      CHAT_DB_URL="mysql://root@localhost/chatbench?socket=$SOCK" \
      CHAT_LOG_LEVEL=warn CHAT_SQL_DIR="$ROOT/sql" CHAT_WWW_ROOT="$ROOT/www" \
      CHAT_CONNECTION_LIMIT_PER_ADDRESS="${CHAT_CONNECTION_LIMIT_PER_ADDRESS:-0}" \
      CHAT_RATE_LIMITS="${CHAT_RATE_LIMITS:-false}" \
      CHAT_CONFIG=/dev/null "$@" \
      "$CHATD" >"$out" 2>"$RUN/chatd-$name.err" &
  CHATD_PID=$!
  for _ in $(seq 1 300); do
    if grep -q 'listening on' "$out" 2>/dev/null; then
      CHATD_URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$out" | head -1)
      return 0
    fi
    kill -0 "$CHATD_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "chatd did not start:"; cat "$RUN/chatd-$name.err" >&2; exit 1
}
chatd_stop() {
  [ -n "$CHATD_PID" ] || return 0
  kill -TERM "$CHATD_PID" 2>/dev/null || true
  wait "$CHATD_PID" 2>/dev/null || true
  CHATD_PID=""
}
chatd_restart() { chatd_stop; chatd_start "$@"; }

# CPU seconds (user + system) a process has used so far.
cpu_s() {
  local f
  read -r -a f < <(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  awk -v u="${f[11]}" -v s="${f[12]}" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (u + s) / t }'
}

# Each loadgen run gets source addresses of its own (127.0.0.x): connections
# closed by one run sit in TIME_WAIT without taking the next run's ports.
SRC_NEXT=10
src_ips() { # count → SRC
  local i
  SRC=""
  for i in $(seq 1 "$1"); do SRC+="${SRC:+,}127.0.0.$SRC_NEXT"; SRC_NEXT=$((SRC_NEXT + 1)); done
}

# MariaDB's status counters (statements, commits, rows, fsyncs) into a file,
# so that a run's work per message can be reported (the "profile" of S3).
dbstat() { # file
  [ -S "$SOCK" ] || return 0
  mysql -S "$SOCK" -u root -N -e "SHOW GLOBAL STATUS" >"$RUN/$1" 2>/dev/null || true
}

# Runs the load generator: lg NAME URL PID [args…] MODE; result in NAME.json.
lg() {
  local name=$1 url=$2 pid=$3; shift 3
  local cmd=("$LG" --url "$url" --server-pid "$pid" --db-pid "${DB_PID:-0}"
             --db-socket "$SOCK" --db-name chatbench --label "$name" --drain "$DRAIN" --final-drain "$FINAL_DRAIN"
             --out "$RUN/$name.json" "$@")
  printf '%s\n' "${cmd[*]#$ROOT/}" | sed "s|$RUN|\$RUN|g; s|$ROOT/||g" >>"$RUN/commands.txt"
  log "$name: ${*: -1} ${*:1:$(($#-1))}"
  dbstat "$name.dbstat-before"
  if ! timeout -k 10 "$LG_TIMEOUT" "${cmd[@]}" 2>>"$RUN/$name.log"; then
    log "$name FAILED (see $RUN/$name.log)"; tail -5 "$RUN/$name.log" >&2 || true
    echo "{\"mode\":\"failed\",\"label\":\"$name\"}" >"$RUN/$name.failed.json"
    return 0
  fi
  dbstat "$name.dbstat-after"
  [ -n "$CHATD_URL" ] && [ "$url" = "$CHATD_URL" ] && \
    curl -s --max-time 5 "$url/metrics" >"$RUN/$name.metrics" 2>/dev/null || true
}

# ---------------------------------------------------------- the machine ---
"$PY" - "$RUN/env.json" "$MODE" <<'EOF'
import json, os, platform, re, subprocess, sys
def sh(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True, timeout=10).stdout.strip() or \
               subprocess.run(c, capture_output=True, text=True, timeout=10).stderr.strip()
    except Exception as e:
        return f"not found ({e.__class__.__name__})"
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
import resource
env = {
    "mode": sys.argv[2], "cores": os.cpu_count(), "cpu_model": cpu, "mem_kib": mem,
    "kernel": platform.release(), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "git": sh("git", "rev-parse", "--short", "HEAD"),
    "git_dirty": bool(sh("git", "status", "--porcelain", "--untracked-files=no", "src", "handlers", "sql")),
    "versions": {
        "gcc": sh("gcc", "--version").splitlines()[0],
        "mariadb": sh("mariadbd", "--version"),
        "libmicrohttpd": sh("pkg-config", "--modversion", "libmicrohttpd"),
        "libmariadb": sh("pkg-config", "--modversion", "libmariadb"),
        "jansson": sh("pkg-config", "--modversion", "jansson"),
        "nginx": sh("nginx", "-v"),
        "python3": platform.python_version(),
    },
    "started": subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M:%S UTC"], capture_output=True, text=True).stdout.strip(),
}
json.dump(env, open(sys.argv[1], "w"), indent=1)
EOF
cat >"$RUN/sizes.json" <<EOF
{"mode":"$MODE","nofile_hard":$HARD,"s1_sizes":"$S1_SIZES","s1_idle_s":$S1_IDLE,"s2_n":$S2_N,
 "s2_s":$S2_S,"s3_s":$S3_S,"s3_groups":"$S3_GROUPS","senders":$SENDERS,"s4_members":$S4_M,
 "s4_messages":$S4_K,"s4_settle_s":$S4_SETTLE,"s5_threads":$S5_T,"s5_depth":$S5_D,"s5_s":$S5_S,
 "s6_files":"$S6_FILES","s6_lines":$S6_LINES,"ceil_s":$CEIL_S,"ceil_db_s":$CEIL_DB_S,"f2_s":$F2_S,
 "chat_connection_memory_kb":${CHAT_MEM_KB:-0},"chat_threads":${CHAT_THREADS_N:-0}}
EOF
env | grep '^CHAT_' | grep -v '^CHAT_URL=' >"$RUN/chat_env.txt" || true
log "mode $MODE, results in ${RUN#$ROOT/}"

# -------------------------------------------------------------- set-up ---
# The single-node steps share one MariaDB and chatd; the step `cluster` brings
# its own (BENCH_ONLY=cluster starts neither).
need_single() { local s; for s in ceil bare s1 s2 s3 s4 s5 s6 search searchcost flush2; do want "$s" && return 0; done; return 1; }
if need_single; then
  db_start 1
  chatd_start main
  "$LG" --url "$CHATD_URL" init >"$RUN/init.json" 2>>"$RUN/init.log" || {
    log "registering the seed user failed"; cat "$RUN/init.log" >&2; exit 1; }
fi

# ------------------------------------------------------------ ceilings ---
if want ceil; then
  src_ips 1
  lg ceil-healthz "$CHATD_URL" "$CHATD_PID" --src "$SRC" --path /healthz \
     --conns $SENDERS --seconds $CEIL_S http
  if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    ND=$RUN/nginx; mkdir -p "$ND"
    NPORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    user_line=""; [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$ND/nginx.conf" <<EOF
# the ceiling: nginx answering 204 from memory, keep-alive, no logging
$user_line
worker_processes auto;
pid $ND/nginx.pid;
error_log $ND/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $ND/body; proxy_temp_path $ND/proxy; fastcgi_temp_path $ND/fastcgi;
    uwsgi_temp_path $ND/uwsgi; scgi_temp_path $ND/scgi;
    server { listen 127.0.0.1:$NPORT; location / { return 204; } }
}
EOF
    "$NGINX" -p "$ND" -c "$ND/nginx.conf" -e "$ND/error.log" -g 'daemon off;' \
      >"$ND/out.log" 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
      curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$NPORT/" && break; sleep 0.1
    done
    src_ips 1
    lg ceil-nginx "http://127.0.0.1:$NPORT" "$NGINX_PID" --src "$SRC" --path / \
       --conns $SENDERS --seconds $CEIL_S http
    kill -QUIT "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
  else
    log "nginx is not installed: the nginx ceiling is skipped (apt-get install nginx)"
    echo '{"mode":"missing","label":"ceil-nginx","why":"nginx is not installed"}' >"$RUN/ceil-nginx.missing.json"
  fi
  # chatd holds one database connection per worker thread (CHAT_THREADS, 16):
  # the commit ceiling at the senders' concurrency, at chatd's, and at 8.
  for t in $(printf '%s\n' $SENDERS "$CHAT_THREADS_N" 8 | awk '!seen[$0]++'); do
    lg "ceil-db-$t" "$CHATD_URL" "$DB_PID" --threads "$t" --seconds $CEIL_DB_S dbcommit
  done
fi

# --------------------------------- the bare libmicrohttpd anchor (S1, S2) ---
bare_start() { # connection memory KiB
  "$LG" bare-server --port 0 --threads 2 --conn-mem-kb "$1" >"$RUN/bare-$1.out" 2>"$RUN/bare-$1.err" &
  BARE_PID=$!
  for _ in $(seq 1 50); do grep -q listening "$RUN/bare-$1.out" 2>/dev/null && break; sleep 0.1; done
  BURL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$RUN/bare-$1.out")
}
bare_stop() { kill -TERM "$BARE_PID" 2>/dev/null || true; wait "$BARE_PID" 2>/dev/null || true; BARE_PID=""; }
if want bare; then
  chatd_stop
  # with chatd's own per-connection memory (connection_memory_kb), then with 4 KiB;
  # a fresh server for each step (a suspended poll whose client left stays
  # until its timeout, holding a connection)
  bare_start "$CHAT_MEM_KB"
  src_ips 1
  lg bare-s1 "$BURL" "$BARE_PID" --bare --src "$SRC" --n "$S2_N" --idle "$S1_IDLE" park
  bare_stop
  bare_start "$CHAT_MEM_KB"
  src_ips 1
  lg bare-s2 "$BURL" "$BARE_PID" --bare --src "$SRC" --n "$S2_N" --rates 1000,5000 \
     --seconds "$S2_S" latency
  src_ips 1
  lg bare-healthz "$BURL" "$BARE_PID" --bare --src "$SRC" --path /healthz \
     --conns $SENDERS --seconds $CEIL_S http
  bare_stop
  if [ "$CHAT_MEM_KB" != 4 ]; then
    bare_start 4
    src_ips 1
    lg bare-s1-mem4 "$BURL" "$BARE_PID" --bare --src "$SRC" --n "$S2_N" --idle "$S1_IDLE" park
    bare_stop
  fi
fi

# ------------------------------------------------------------ S1 park ---
if want s1; then
  for n in $S1_SIZES; do
    chatd_restart "s1-$n"
    # above 10,000 the polls are split over two processes (and two source
    # addresses): the load generator has the same open-file limit as chatd
    procs=$(( (n + 9999) / 10000 ))
    src_ips $procs
    lg "s1-$n" "$CHATD_URL" "$CHATD_PID" --src "$SRC" --n "$n" --procs $procs \
       --idle "$S1_IDLE" park
  done
  # what chatd's per-connection memory setting alone changes (an experiment
  # beside the figures: chatd as configured is what the rows above measure)
  if [ "$CHAT_MEM_KB" != 4 ]; then
    chatd_restart s1-mem4 CHAT_CONNECTION_MEMORY_KB=4
    src_ips 1
    lg s1-mem4-10000 "$CHATD_URL" "$CHATD_PID" --src "$SRC" --n 10000 --idle "$S1_IDLE" park
  fi
fi

# --------------------------------------------------------- S2 latency ---
if want s2; then
  chatd_restart s2
  src_ips 1
  lg s2 "$CHATD_URL" "$CHATD_PID" --src "$SRC" --n "$S2_N" --rates 1000,5000 \
     --seconds "$S2_S" latency
fi

# ------------------------------------------------------ S3 throughput ---
if want s3; then
  for g in $S3_GROUPS; do
    chatd_restart "s3-g$g"
    src_ips 1
    # groups of 1,000: 12 of them (12,000 parked devices, inside the
    # open-file limit), each with its one sender
    senders=$SENDERS; [ "$g" -ge 1000 ] && senders=$(( SENDERS < 12 ? SENDERS : 12 ))
    lg "s3-g$g" "$CHATD_URL" "$CHATD_PID" --src "$SRC" --group "$g" \
       --senders "$senders" --seconds "$S3_S" throughput
  done
fi

# -------------------------------------------------------- S4 fan-out ---
if want s4; then
  chatd_restart s4
  src_ips 1
  lg s4 "$CHATD_URL" "$CHATD_PID" --src "$SRC" --members "$S4_M" --messages "$S4_K" \
     --settle "$S4_SETTLE" --deliver-cap "$S4_CAP" fanout
fi

# -------------------------------------------------------- S5 history ---
if want s5; then
  chatd_restart s5
  src_ips 1
  lg s5 "$CHATD_URL" "$CHATD_PID" --src "$SRC" --threads "$S5_T" --depth "$S5_D" \
     --conns $SENDERS --seconds "$S5_S" history
fi

# --------------------------------------------------------- S6 replay ---
if want s6; then
  chatd_restart s6
  data=$ROOT/data/ubuntu-irc
  files=()
  if [ -d "$data" ]; then
    if [ "$S6_FILES" = all ]; then
      demo_data=$data
    else
      # the short run replays the first S6_LINES lines of the first files
      demo_data=$RUN/irc; mkdir -p "$demo_data"
      for f in $(ls "$data"/*.txt | head -n "$S6_FILES"); do
        head -n "$S6_LINES" "$f" >"$demo_data/$(basename "$f")"
      done
    fi
    echo "CHAT_URL=\$URL DEMO_DATA=${demo_data/#$ROOT\//} scripts/demo.sh   # timeout ${S6_TIMEOUT}s" >>"$RUN/commands.txt"
    log "s6: replay ($S6_FILES files${S6_LINES:+, first $S6_LINES lines each when short}) through scripts/demo.sh"
    s0="$(date +%s.%N) $(cpu_s "$CHATD_PID") $(cpu_s "$DB_PID")"
    set +e
    CHAT_URL=$CHATD_URL DEMO_DATA=$demo_data timeout -k 10 "$S6_TIMEOUT" scripts/demo.sh \
      >"$RUN/s6.out" 2>"$RUN/s6.log"
    echo $? >"$RUN/s6.rc"
    set -e
    echo "$s0 $(date +%s.%N) $(cpu_s "$CHATD_PID") $(cpu_s "$DB_PID")" >"$RUN/s6.time"
    curl -s --max-time 5 "$CHATD_URL/metrics" >"$RUN/s6.metrics" 2>/dev/null || true
  else
    log "s6: no IRC sample at $data"
    echo 127 >"$RUN/s6.rc"
  fi
fi

# ------------------------------------------------------------ search ---
# bench/search.py: the IRC sample repeated to SEARCH_N messages, indexed by
# chatd's catch-up at start, then query latencies through HTTP. searchcost:
# S3 1:1 with the indexer off and on, alternating, twice (what indexing
# costs the send path).
if want search; then
  chatd_restart search-load
  log "search: loading $SEARCH_N messages (the IRC sample repeated)"
  echo "bench/search.py \$RUN \$URL \$SOCK $SEARCH_N; restart chatd; bench/search.py --query \$RUN \$URL \$SOCK \$START" >>"$RUN/commands.txt"
  if "$PY" bench/search.py "$RUN" "$CHATD_URL" "$SOCK" "$SEARCH_N" >"$RUN/search-load.out" 2>"$RUN/search.log"; then
    chatd_stop
    started=$(date +%s.%N)
    chatd_start search
    log "search: indexing (chatd's catch-up at start), then queries"
    "$PY" bench/search.py --query "$RUN" "$CHATD_URL" "$SOCK" "$started" >"$RUN/search.out" 2>>"$RUN/search.log" ||
      { log "search FAILED (see $RUN/search.log)"; echo '{"mode":"failed","label":"search"}' >"$RUN/search.failed.json"; }
  else
    log "search load FAILED (see $RUN/search.log)"; echo '{"mode":"failed","label":"search"}' >"$RUN/search.failed.json"
  fi
fi
if want searchcost; then
  for round in 1 2; do
    for idx in false true; do
      chatd_restart "sc-$idx-$round" CHAT_SEARCH_INDEX=$idx
      src_ips 1
      lg "searchcost-$idx-$round" "$CHATD_URL" "$CHATD_PID" --src "$SRC" --group 1 \
         --senders $SENDERS --seconds "$S3_S" throughput
    done
  done
fi

# ------------------------------------------- durability cost (flush=2) ---
if want flush2; then
  chatd_stop
  db_stop
  db_start 2
  chatd_start f2 CHAT_DB_REQUIRE_DURABLE=false
  src_ips 1
  lg f2-s3-g1 "$CHATD_URL" "$CHATD_PID" --src "$SRC" --group 1 --senders $SENDERS \
     --seconds "$F2_S" throughput
  lg f2-ceil-db-$SENDERS "$CHATD_URL" "$DB_PID" --threads $SENDERS --seconds $CEIL_DB_S dbcommit
fi

# --------------------------------------------- cluster (scripts/cluster.sh) ---
# bench/cluster.py: three Galera nodes, Redis, three chatd and nginx in a
# temporary directory (tests/cluster/cluster.py), the cluster scenarios, then
# everything stopped; its JSON files are cluster-*.json. The single-node
# MariaDB and chatd are stopped first: the machine is the cluster's alone.
# (--foreground: Ctrl-C reaches bench/cluster.py, which then stops the cluster.)
if want cluster; then
  chatd_stop
  [ -n "$DB_PID" ] && db_stop
  case $MODE in tiny) CL_BOUND=300 ;; short) CL_BOUND=320 ;; *) CL_BOUND=1200 ;; esac
  log "cluster: bench/cluster.py $MODE (three Galera nodes, Redis, three chatd, nginx; at most $CL_BOUND s)"
  echo "CHATD_BIN=build/chatd LOADGEN=build/loadgen bench/cluster.py \$RUN $MODE   # timeout ${CL_BOUND}s" >>"$RUN/commands.txt"
  if ! CHATD_BIN="$CHATD" LOADGEN="$LG" timeout --foreground -k 30 "$CL_BOUND" "$PY" bench/cluster.py "$RUN" "$MODE" \
       2>>"$RUN/cluster.log"; then
    log "cluster FAILED (see $RUN/cluster.log)"; tail -5 "$RUN/cluster.log" >&2 || true
    [ -f "$RUN/cluster.failed.json" ] || echo '{"mode":"failed","label":"cluster"}' >"$RUN/cluster.failed.json"
  fi
fi

cleanup
# The database of the run is large (≈ 1 GB) and of no use once stopped.
[ -n "${BENCH_KEEP_DB:-}" ] || rm -rf "$DBDIR"
"$PY" - "$RUN/env.json" "$T0" <<'EOF'
import json, sys, time
p = sys.argv[1]; e = json.load(open(p))
e["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
e["duration_s"] = round(time.time() - int(sys.argv[2]), 1)
json.dump(e, open(p, "w"), indent=1)
EOF
"$PY" bench/report.py "$RUN" "$REPORT"
log "done in $(( $(date +%s) - T0 )) s; wrote $REPORT"
