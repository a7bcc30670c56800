#!/usr/bin/env bash
# cluster.sh — `make cluster`: the multi-node set-up on one machine, as the
# current user, from Debian packages only: a 3-node MariaDB Galera cluster
# (g1 g2 g3), one Redis, three chatd nodes (c1 c2 c3) and nginx in front.
#
#   scripts/cluster.sh start        start everything in the foreground; prints
#                                   the URL; Ctrl-C (or SIGTERM) stops it all
#   scripts/cluster.sh up           the same in the background; returns once
#                                   every part is ready (for tests)
#   scripts/cluster.sh down         stop everything (clean Galera shutdown)
#   scripts/cluster.sh status       what runs, its state and memory
#   scripts/cluster.sh env          the ports and URLs as shell assignments
#   scripts/cluster.sh kill NAME    kill -9 one part: g1 g2 g3 redis c1 c2 c3 nginx
#   scripts/cluster.sh stop NAME    SIGSTOP it (a hung process)
#   scripts/cluster.sh cont NAME    SIGCONT it
#   scripts/cluster.sh restart NAME bring one part back (a Galera node rejoins
#                                   by IST from its recovered position)
#
# Everything lives in CLUSTER_DIR (default var/cluster): data, sockets, logs,
# pid files and ports.env, the ports picked at the first start (a free block
# below the ephemeral range, checked with `ss -ltn`) and reused afterwards.
# docs/scale-out.md describes the layout, the settings and what they cost.
#
# Environment:
#   CLUSTER_DIR          where everything lives          (default var/cluster)
#   CHATD_BIN            the chatd binary                (default build/chatd)
#   CHAT_DB_SINGLE_HOST  1: give chatd only g1 in CHAT_DB_URL (no failover;
#                        for comparisons)
#   NGINX_BALANCE        hash (default: sticky by token) or rr (round robin)
#   CLUSTER_TIMEOUT      seconds to wait for each part to be ready (default 300)
#   CLUSTER_BUFFER_POOL  InnoDB buffer pool per Galera node (default 128M)
#   CLUSTER_WSREP_EXTRA  more wsrep_provider_options, appended (experiments)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
name=${2:-}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
case $cmd in start|up|down|status|env|kill|stop|cont|restart) ;; *) usage ;; esac

dir=${CLUSTER_DIR:-$root/var/cluster}
case $cmd in
  start|up) mkdir -p "$dir/run" ;;
  down) [ -d "$dir/run" ] || exit 0 ;;
  *) [ -d "$dir/run" ] || { echo "cluster: no cluster in $dir (scripts/cluster.sh start)" >&2; exit 1; } ;;
esac
dir=$(cd "$dir" && pwd)
export CLUSTER_DIR=$dir
run=$dir/run

chatd_bin=${CHATD_BIN:-$root/build/chatd}
timeout_s=${CLUSTER_TIMEOUT:-300}
chatd_nodes=(c1 c2 c3)
all_parts=(g1 g2 g3 redis c1 c2 c3 nginx)
provider=/usr/lib/galera/libgalera_smm.so
user_opt=()
[ "$(id -u)" -eq 0 ] && user_opt=(--user=root)

say() { echo "cluster: $*" >&2; }
die() { say "$*"; exit 1; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------
# Processes: run/NAME.pid holds "PID STARTTIME" (the start time in clock ticks
# from /proc/PID/stat), so a recycled PID is never taken for ours, and a
# zombie (killed, not yet reaped) counts as gone.

proc_field() { # PID N -> field N of /proc/PID/stat (N >= 3); fails when gone or a zombie
  local s n=$(($2 - 2))
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) } # the fields after the command name, which may hold spaces
  # shellcheck disable=SC2086
  set -- $s
  case $1 in Z|X) return 1 ;; esac
  echo "${!n}"
}
proc_start_time() { proc_field "$1" 22; } # PID -> start time (clock ticks since boot)
record_pid() { # NAME PID
  local st
  st=$(proc_start_time "$2") || st=0
  echo "$2 $st" >"$run/$1.pid"
}
pid_of() { # NAME -> PID when it runs
  local pid st now
  [ -f "$run/$1.pid" ] || return 1
  read -r pid st <"$run/$1.pid" || return 1
  now=$(proc_start_time "$pid") || return 1
  [ "$now" = "$st" ] || return 1
  echo "$pid"
}
wait_gone() { # PID SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    proc_start_time "$1" >/dev/null || return 0
    sleep 0.1
  done
  return 1
}
# Each part leads a process group of its own (spawn): nginx's workers, and
# a Galera node's state transfer scripts and rsync, are in it. A signal that
# models a crash or a hang goes to the whole group.
signal_part() { # SIGNAL PID
  local pgid
  pgid=$(proc_field "$2" 5 || true)
  if [ "$pgid" = "$2" ]; then kill "-$1" -- "-$2"; else kill "-$1" "$2"; fi
}
stop_part() { # NAME [SECONDS]: SIGTERM, wait, then SIGKILL
  local pid
  pid=$(pid_of "$1") || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "${2:-30}"; then
    say "$1 (pid $pid) did not stop within ${2:-30} s; killing it"
    signal_part KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || true
  fi
  # Nothing of it may stay behind (an SST helper of a node that died).
  kill -KILL -- "-$pid" 2>/dev/null || true
}
# Starts a command detached: its own session (Ctrl-C in the terminal reaches
# only this script, which stops the parts in order), no terminal, output to
# LOG. Sets $started to its PID.
spawn() { # NAME LOG CMD...
  local n=$1 log=$2
  shift 2
  setsid "$@" </dev/null >>"$log" 2>&1 &
  started=$!
  disown "$started" # no "Killed" notes from bash: the parts are watched by PID
  record_pid "$n" "$started"
  started_at[$n]=$(now_ms)
}
declare -A started_at
took() { # NAME -> seconds since it was started
  awk -v ms=$(( $(now_ms) - ${started_at[$1]:-$(now_ms)} )) 'BEGIN {printf "%.1f", ms / 1000}'
}

# ---------------------------------------------------------------------------
# Ports: a block of 64 from a base B, B+1.. for the parts (see port_vars).

port_taken() { ss -Htln "sport = :$1" 2>/dev/null | grep . >/dev/null; }
pick_base() {
  local lo hi b off ok taken
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  hi=$(( (lo < 32768 ? lo : 32768) - 100 ))
  [ "$hi" -gt 20000 ] || hi=60000
  taken=" $(ss -Htln | awk '{n=split($4,a,":"); print a[n]}' | tr '\n' ' ') "
  for _ in $(seq 1 200); do
    b=$(( 20000 + RANDOM % ((hi - 20000) / 100) * 100 ))
    ok=1
    for ((off = 0; off < 64; off++)); do
      case $taken in *" $((b + off)) "*) ok=""; break ;; esac
    done
    [ -n "$ok" ] && { echo "$b"; return 0; }
  done
  return 1
}
port_vars() { # B -> the assignments written to ports.env
  local b=$1 i
  echo "CLUSTER_DIR=$dir"
  echo "CLUSTER_BASE=$b"
  for i in 1 2 3; do
    echo "G${i}_PORT=$((b + i))"          # MariaDB client port
    echo "G${i}_GCOMM_PORT=$((b + 10 + i))" # group communication
    echo "G${i}_IST_PORT=$((b + 20 + i))"   # incremental state transfer
    echo "G${i}_SST_PORT=$((b + 30 + i))"   # rsync state transfer
  done
  echo "REDIS_PORT=$((b + 40))"
  for i in 1 2 3; do echo "C${i}_PORT=$((b + 50 + i))"; done
  echo "NGINX_PORT=$((b + 60))"
}
load_ports() { # [create]
  if [ ! -f "$dir/ports.env" ]; then
    [ "${1:-}" = create ] || die "no cluster in $dir yet (scripts/cluster.sh start)"
    local b
    b=$(pick_base) || die "found no block of 64 free ports"
    port_vars "$b" >"$dir/ports.env"
  fi
  # shellcheck disable=SC1091
  . "$dir/ports.env"
  CLUSTER_DIR=$dir
  NGINX_URL=http://127.0.0.1:$NGINX_PORT
  C1_URL=http://127.0.0.1:$C1_PORT
  C2_URL=http://127.0.0.1:$C2_PORT
  C3_URL=http://127.0.0.1:$C3_PORT
  REDIS_URL=redis://127.0.0.1:$REDIS_PORT
  if [ "${CHAT_DB_SINGLE_HOST:-}" = 1 ]; then
    DB_URL="mysql://chat:chat@127.0.0.1:$G1_PORT/chat"
  else
    # All chatd nodes walk this list in the same order, so all of them write
    # through one Galera node at a time (docs/scale-out.md).
    DB_URL="mysql://chat:chat@127.0.0.1:$G1_PORT,127.0.0.1:$G2_PORT,127.0.0.1:$G3_PORT/chat"
  fi
  # A part restarted later gets what the others got at the start.
  if [ "$cmd" != start ] && [ -f "$run/db_url" ]; then DB_URL=$(cat "$run/db_url"); fi
}
print_env() {
  local v
  q() { # VALUE: as is when safe for a shell, else in single quotes
    if [[ $1 =~ ^[A-Za-z0-9_./:,@%+=-]*$ ]]; then echo "$1"; else printf "'%s'\n" "${1//\'/\'\\\'\'}"; fi
  }
  for v in CLUSTER_DIR CLUSTER_BASE G1_PORT G2_PORT G3_PORT G1_GCOMM_PORT G2_GCOMM_PORT \
           G3_GCOMM_PORT G1_IST_PORT G2_IST_PORT G3_IST_PORT G1_SST_PORT G2_SST_PORT \
           G3_SST_PORT REDIS_PORT C1_PORT C2_PORT C3_PORT NGINX_PORT NGINX_URL C1_URL \
           C2_URL C3_URL REDIS_URL; do
    echo "$v=$(q "${!v}")"
  done
  echo "CHAT_DB_URL=$(q "$DB_URL")"
  echo "CHAT_REDIS_URL=$(q "$REDIS_URL")"
}
idx() { echo "${1#?}"; } # g2 -> 2
port_of() { # NAME -> its client port
  local v
  case $1 in
    g?) v="G$(idx "$1")_PORT"; echo "${!v}" ;;
    c?) v="C$(idx "$1")_PORT"; echo "${!v}" ;;
    redis) echo "$REDIS_PORT" ;;
    nginx) echo "$NGINX_PORT" ;;
  esac
}
check_free() { # NAME PORT...: refuse to start on a port someone else holds
  local n=$1 p
  shift
  for p in "$@"; do
    port_taken "$p" && die "port $p (for $n) is taken by another process; stop it, or remove $dir/ports.env to pick new ports"
  done
  return 0
}

# ---------------------------------------------------------------------------
# Galera

# Run as root, the rsync daemon that receives a state transfer would switch
# to the user "nobody" and could not write the data directory. The SST method
# "rsync_asroot" (these two wrappers in $dir/bin) is Debian's wsrep_sst_rsync
# with an rsync daemon that stays root. As any other user it is plain rsync.
sst_method() {
  if [ "$(id -u)" -ne 0 ]; then echo rsync; return; fi
  mkdir -p "$dir/bin"
  cat >"$dir/bin/wsrep_sst_rsync_asroot" <<EOF
#!/bin/sh
# Written by scripts/cluster.sh: wsrep_sst_rsync with the rsync below first in PATH.
PATH="$dir/bin:\$PATH" exec wsrep_sst_rsync "\$@"
EOF
  cat >"$dir/bin/rsync" <<'EOF'
#!/bin/sh
# Written by scripts/cluster.sh: an rsync daemon run by root keeps root
# (by default it would switch to "nobody" and could not write the data).
if [ "$1" = --daemon ]; then
  shift
  exec /usr/bin/rsync --daemon --dparam=uid=root --dparam=gid=root "$@"
fi
exec /usr/bin/rsync "$@"
EOF
  chmod +x "$dir/bin/wsrep_sst_rsync_asroot" "$dir/bin/rsync"
  echo rsync_asroot
}

# The options of node I (1..3), shared by the server and its --wsrep-recover.
galera_opts() { # I
  local i=$1 g=$dir/g$1 gcv istv sstv donors
  gcv="G${i}_GCOMM_PORT"; istv="G${i}_IST_PORT"; sstv="G${i}_SST_PORT"
  # State transfers come from a standby rather than from the writer (g1)
  # when one is there; the trailing comma allows any node otherwise.
  case $i in 1) donors=g2,g3, ;; 2) donors=g3,g1, ;; 3) donors=g2,g1, ;; esac
  opts=(--no-defaults "${user_opt[@]}" --datadir="$g/data"
    --port="$(port_of "g$i")" --bind-address=127.0.0.1 --socket="$g/mysql.sock"
    --pid-file="$g/mysqld.pid" --skip-name-resolve
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin
    --max-connections=300 --table-open-cache=400 --table-definition-cache=400
    --key-buffer-size=8M --aria-pagecache-buffer-size=8M
    --innodb-buffer-pool-size="${CLUSTER_BUFFER_POOL:-128M}"
    --innodb-flush-log-at-trx-commit=1
    --default-storage-engine=InnoDB --binlog-format=ROW --innodb-autoinc-lock-mode=2
    --wsrep-on=ON --wsrep-provider="$provider" --wsrep-cluster-name=chatd-cluster
    --wsrep-node-name="g$i" --wsrep-node-address="127.0.0.1:${!gcv}"
    --wsrep-node-incoming-address="127.0.0.1:$(port_of "g$i")"
    --wsrep-cluster-address="gcomm://127.0.0.1:$G1_GCOMM_PORT,127.0.0.1:$G2_GCOMM_PORT,127.0.0.1:$G3_GCOMM_PORT"
    --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:${!gcv};ist.recv_addr=127.0.0.1:${!istv};gcache.size=128M;gcs.fc_limit=64;gcs.fc_single_primary=yes;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S${CLUSTER_WSREP_EXTRA:+;$CLUSTER_WSREP_EXTRA}"
    --wsrep-sst-method="$sst" --wsrep-sst-receive-address="127.0.0.1:${!sstv}"
    --wsrep-sst-donor="$donors" --wsrep-slave-threads=2)
}

sql_root() { # I SQL: as root on node I's socket
  mariadb --no-defaults -uroot --socket="$dir/g$1/mysql.sock" --connect-timeout=5 -N -B -e "$2"
}
wsrep_status() { # I -> "state ready cluster_status size" or failure
  sql_root "$1" "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state','wsrep_ready','wsrep_cluster_status','wsrep_cluster_size')" 2>/dev/null |
    awk '{v[$1]=$2} END {if (!("wsrep_local_state" in v)) exit 1;
      print v["wsrep_local_state"], v["wsrep_ready"], v["wsrep_cluster_status"], v["wsrep_cluster_size"]}'
}
galera_synced() { # I: Synced (4), ready, in the primary component
  local s
  s=$(wsrep_status "$1") || return 1
  # shellcheck disable=SC2086
  set -- $s
  [ "$1" = 4 ] && [ "$2" = ON ] && [ "$3" = Primary ]
}
grastate() { # I FIELD -> uuid | seqno | safe_to_bootstrap
  sed -n "s/^$2: *//p" "$dir/g$1/data/grastate.dat" 2>/dev/null
}
has_data() { [ -d "$dir/g$1/data/mysql" ]; }

# The last committed position (uuid:seqno) of node I's data, from
# grastate.dat after a clean shutdown, else from InnoDB (`--wsrep-recover`,
# what Debian's galera_recovery does).
galera_position() { # I
  local i=$1 uuid seqno pos
  uuid=$(grastate "$i" uuid)
  seqno=$(grastate "$i" seqno)
  if [ -n "$seqno" ] && [ "$seqno" != -1 ]; then echo "$uuid:$seqno"; return; fi
  has_data "$i" || { echo "$uuid:-1"; return; }
  galera_opts "$i"
  mariadbd "${opts[@]}" --log-error="$dir/g$i/recover.err" --skip-networking \
    --socket="$dir/g$i/recover.sock" --pid-file="$dir/g$i/recover.pid" \
    --wsrep-recover >/dev/null 2>&1 || true
  pos=$(sed -n 's/.*WSREP: Recovered position: *//p' "$dir/g$i/recover.err" | tail -1)
  [ -n "$pos" ] || { say "g$i: --wsrep-recover found no position (see $dir/g$i/recover.err)"; pos="$uuid:-1"; }
  echo "$pos"
}

galera_start() { # I [EXTRA OPTS...]: start node I in the background
  local i=$1
  shift
  mkdir -p "$dir/g$i/data"
  check_free "g$i" "$(port_of "g$i")" "$(eval echo "\$G${i}_GCOMM_PORT")"
  galera_opts "$i"
  # Debian's wsrep scripts and the wrappers in $dir/bin must be found.
  PATH="$dir/bin:$PATH" spawn "g$i" "$dir/g$i/mysqld.out" \
    mariadbd "${opts[@]}" --log-error="$dir/g$i/mysqld.err" "$@"
}
galera_wait() { # I: until Synced; fails when it exits or after timeout_s
  local i=$1 t0 pid
  t0=$(now_ms)
  while ! galera_synced "$i"; do
    pid=$(pid_of "g$i") || { say "g$i exited; the end of $dir/g$i/mysqld.err:"; tail -25 "$dir/g$i/mysqld.err" >&2; return 1; }
    if [ $(( $(now_ms) - t0 )) -gt $((timeout_s * 1000)) ]; then
      say "g$i (pid $pid) not Synced after $timeout_s s; see $dir/g$i/mysqld.err"
      return 1
    fi
    sleep 0.2
  done
  say "g$i Synced ($(took "g$i") s after its start)"
}
# Restarting a node that was running before: from its recovered position, so
# it rejoins by IST (from the donors' gcache) rather than a full copy.
galera_rejoin() { # I
  local i=$1 pos
  pos=$(galera_position "$i")
  case $pos in
    *:-1|"") galera_start "$i" ;;
    *) galera_start "$i" --wsrep-start-position="$pos" ;;
  esac
}
create_user() { # I: the account chatd uses, over TCP from 127.0.0.1
  sql_root "$1" "CREATE USER IF NOT EXISTS 'chat'@'127.0.0.1' IDENTIFIED BY 'chat';
                 GRANT ALL PRIVILEGES ON \`chat\`.* TO 'chat'@'127.0.0.1';"
}

# Brings the Galera cluster up: a new one from g1, or the existing data from
# the node that is safe to bootstrap (the last to stop cleanly), else from the
# most advanced one.
galera_up() {
  local i boot="" best=-2 pos seqno any="" why
  for i in 1 2 3; do has_data "$i" && any=1; done
  if [ -z "$any" ]; then
    say "new Galera cluster: g1 bootstraps, g2 and g3 join by rsync SST"
    rm -rf "$dir/g1/data"
    mkdir -p "$dir/g1"
    mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$dir/g1/data" \
      --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve --force \
      >"$dir/g1/install.log" 2>&1 || { cat "$dir/g1/install.log" >&2; die "mariadb-install-db failed"; }
    galera_start 1 --wsrep-new-cluster
    galera_wait 1
    create_user 1
    galera_start 2
    galera_start 3
    galera_wait 2
    galera_wait 3
    return
  fi
  for i in 1 2 3; do
    has_data "$i" && [ "$(grastate "$i" safe_to_bootstrap)" = 1 ] && { boot=$i; why="safe_to_bootstrap: 1"; break; }
  done
  if [ -z "$boot" ]; then
    # No clean last shutdown (a crash, or the nodes stopped at once): the
    # node with the highest committed seqno bootstraps (ties: the first).
    for i in 1 2 3; do
      has_data "$i" || continue
      pos=$(galera_position "$i")
      seqno=${pos##*:}
      [[ $seqno =~ ^-?[0-9]+$ ]] || seqno=-1
      say "g$i: last committed position $pos"
      if [ "$seqno" -gt "$best" ]; then best=$seqno; boot=$i; fi
    done
    [ -n "$boot" ] || die "no Galera node has data to bootstrap from"
    why="the most advanced, at seqno $best"
    # What the Galera documentation has the operator do by hand.
    [ ! -f "$dir/g$boot/data/grastate.dat" ] ||
      sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$dir/g$boot/data/grastate.dat"
  fi
  say "Galera: g$boot bootstraps ($why), the others rejoin"
  pos=$(galera_position "$boot")
  if [ "${pos##*:}" = -1 ]; then galera_start "$boot" --wsrep-new-cluster
  else galera_start "$boot" --wsrep-new-cluster --wsrep-start-position="$pos"; fi
  galera_wait "$boot"
  create_user "$boot"
  for i in 1 2 3; do [ "$i" = "$boot" ] || galera_rejoin "$i"; done
  for i in 1 2 3; do [ "$i" = "$boot" ] || galera_wait "$i"; done
}

# ---------------------------------------------------------------------------
# Redis, chatd, nginx

redis_start() {
  mkdir -p "$dir/redis"
  check_free redis "$REDIS_PORT"
  # A notifier and cache, never the truth: no persistence. Subscribers that
  # fall behind are cut off only past 64 MB (16 MB for a minute).
  spawn redis "$dir/redis/redis.out" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save "" --appendonly no --dir "$dir/redis" --logfile "$dir/redis/redis.log" \
    --daemonize no --client-output-buffer-limit "pubsub 64mb 16mb 60"
}
redis_wait() {
  local t0
  t0=$(now_ms)
  until [ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; do
    pid_of redis >/dev/null || { say "redis exited; see $dir/redis/redis.log"; tail -10 "$dir/redis/redis.log" >&2; return 1; }
    [ $(( $(now_ms) - t0 )) -lt $((timeout_s * 1000)) ] || { say "redis not ready after $timeout_s s"; return 1; }
    sleep 0.1
  done
}

chatd_env() { # NAME: the environment of chatd node NAME
  env_list=(CHAT_LISTEN="127.0.0.1:$(port_of "$1")" CHAT_NODE_ID="$1"
    CHAT_DB_URL="$DB_URL" CHAT_REDIS_URL="$REDIS_URL"
    CHAT_WWW_ROOT="$root/www" CHAT_SQL_DIR="$root/sql"
    CHAT_THREADS="${CHAT_THREADS:-2}" CHAT_SEND_WORKERS="${CHAT_SEND_WORKERS:-1}"
    CHAT_ACK_WORKERS="${CHAT_ACK_WORKERS:-1}" CHAT_MIGRATE="$(node_migrate)"
    CHAT_CONNECTION_LIMIT_PER_ADDRESS="${CHAT_CONNECTION_LIMIT_PER_ADDRESS:-0}"
    CHAT_RATE_LIMITS="${CHAT_RATE_LIMITS:-false}"
    # One attachments directory for every node: on one host a shared
    # directory is the simplest shared store (docs/attachments.md).
    CHAT_MEDIA_DIR="${CHAT_MEDIA_DIR:-$dir/media}")
}
# Nodes only check the migrations when `chatd --migrate` ran them before
# (several nodes applying them at once would contend for the lock row).
node_migrate() {
  if "$chatd_bin" --help 2>/dev/null | grep -e '--migrate' >/dev/null; then echo check; else echo auto; fi
}
chatd_hint() {
  case $DB_URL in
    *,*) say "(a chatd that does not take a host list in CHAT_DB_URL yet fails here; CHAT_DB_SINGLE_HOST=1 gives it g1 only)" ;;
  esac
}
# Migrations once, before the nodes start, when chatd has --migrate.
chatd_migrate() {
  "$chatd_bin" --help 2>/dev/null | grep -e '--migrate' >/dev/null || return 1
  say "migrations: $chatd_bin --migrate"
  chatd_env c1
  env_list+=(CHAT_NODE_ID=migrate)
  if ! env -C "$root" "${env_list[@]}" timeout "$timeout_s" "$chatd_bin" --migrate \
       </dev/null >"$dir/migrate.log" 2>&1; then
    say "chatd --migrate failed; $dir/migrate.log:"
    tail -20 "$dir/migrate.log" >&2
    chatd_hint
    exit 1
  fi
}
chatd_start() { # NAME
  local n=$1 log=$dir/$1.log
  check_free "$n" "$(port_of "$n")"
  touch "$log"
  echo "--- cluster.sh: starting $n at $(date '+%F %T')" >>"$log"
  # Where this start's output begins, for the 'listening' line.
  eval "log_from_$n=\$(stat -c %s \"\$log\")"
  chatd_env "$n"
  # In the repository (chatd.conf, if any, as for `make run`); env execs chatd.
  spawn "$n" "$log" env -C "$root" "${env_list[@]}" "$chatd_bin"
}
chatd_wait() { # NAME: the 'listening' line, then GET /readyz = 200
  local n=$1 t0 from v
  v="log_from_$n"; from=${!v:-0}
  t0=$(now_ms)
  until tail -c +"$((from + 1))" "$dir/$n.log" | grep '^chatd: listening on http://' >/dev/null &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$(port_of "$n")/readyz")" = 200 ]; do
    if ! pid_of "$n" >/dev/null; then
      say "$n exited; the end of $dir/$n.log:"
      tail -c +"$((from + 1))" "$dir/$n.log" | tail -20 >&2
      chatd_hint
      return 1
    fi
    [ $(( $(now_ms) - t0 )) -lt $((timeout_s * 1000)) ] || { say "$n not ready after $timeout_s s; see $dir/$n.log"; return 1; }
    sleep 0.1
  done
}

nginx_start() {
  check_free nginx "$NGINX_PORT"
  # run-nginx.sh execs nginx: its PID is the nginx master's. Plain HTTP on
  # loopback and no limits per address: the cluster tests and benchmarks
  # send thousands of requests from 127.0.0.1 (tests/nginx tests the TLS and
  # the limits of nginx.conf; docs/deploy.md).
  NGINX_TLS=off NGINX_LIMITS=off \
  NGINX_LISTEN="127.0.0.1:$NGINX_PORT" NGINX_DIR="$dir/nginx" \
  NGINX_BALANCE="${NGINX_BALANCE:-hash}" \
  CHATD_UPSTREAM="127.0.0.1:$C1_PORT,127.0.0.1:$C2_PORT,127.0.0.1:$C3_PORT" \
    spawn nginx "$dir/nginx.out" "$root/scripts/run-nginx.sh"
}
nginx_wait() {
  local t0
  t0=$(now_ms)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$NGINX_URL/readyz")" = 200 ]; do
    pid_of nginx >/dev/null || { say "nginx exited; $dir/nginx.out:"; tail -20 "$dir/nginx.out" >&2; return 1; }
    [ $(( $(now_ms) - t0 )) -lt $((timeout_s * 1000)) ] || { say "nginx not ready after $timeout_s s"; return 1; }
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------
# Whole cluster

supervisor_pid() { pid_of cluster; }
any_running() { local n; for n in "${all_parts[@]}"; do pid_of "$n" >/dev/null && return 0; done; return 1; }

# Stops what runs, front to back: nginx, chatd, Redis, then the Galera nodes
# one after the other, g1 last: it is then the one safe to bootstrap from.
stop_all() {
  local n
  any_running && say "stopping nginx, c1 c2 c3, redis, g3 g2 g1"
  stop_part nginx 15
  # The chatd nodes stop together (each drains its own requests).
  local pid
  for n in "${chatd_nodes[@]}"; do
    if pid=$(pid_of "$n"); then kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for n in "${chatd_nodes[@]}"; do stop_part "$n" 20; done
  stop_part redis 15
  # A node that answers gets time for a clean shutdown (its position in
  # grastate.dat); one that does not (still joining, waiting for a primary
  # component) does not act on SIGTERM before it has joined.
  for n in g3 g2 g1; do
    if wsrep_status "$(idx "$n")" >/dev/null; then stop_part "$n" 120; else stop_part "$n" 15; fi
  done
}

do_start() {
  local t0 n
  t0=$(now_ms)
  if supervisor_pid >/dev/null || any_running; then
    die "a cluster already runs in $dir (scripts/cluster.sh status; scripts/cluster.sh down)"
  fi
  [ -x "$chatd_bin" ] || die "$chatd_bin is not built (make build/chatd)"
  [ -f "$provider" ] || die "$provider is missing (apt-get install galera-4; scripts/deps.sh cluster)"
  command -v redis-server >/dev/null || die "redis-server is missing (apt-get install redis-server; scripts/deps.sh cluster)"
  load_ports create
  echo "$DB_URL" >"$run/db_url"
  record_pid cluster $$
  rm -f "$dir/ready"
  trap 'stop_all; rm -f "$dir/ready" "$run/cluster.pid"; say "stopped; the data stays in $dir"' EXIT
  trap 'trap "" INT TERM; exit 0' INT TERM
  sst=$(sst_method)
  say "in $dir, ports $CLUSTER_BASE+ (ports.env)"
  galera_up
  redis_start
  redis_wait
  if chatd_migrate; then
    for n in "${chatd_nodes[@]}"; do chatd_start "$n"; done
  else
    # No --migrate yet: the first node runs the migrations at start-up,
    # then the others start.
    chatd_start c1
    chatd_wait c1
    chatd_start c2
    chatd_start c3
  fi
  for n in "${chatd_nodes[@]}"; do chatd_wait "$n"; done
  nginx_start
  nginx_wait
  local secs
  secs=$(awk -v ms=$(( $(now_ms) - t0 )) 'BEGIN {printf "%.1f", ms / 1000}')
  echo "$secs" >"$dir/ready"
  say "ready in $secs s: g1 g2 g3 Synced, redis, c1 c2 c3, nginx (${NGINX_BALANCE:-hash})"
  echo "chatd cluster: $NGINX_URL/  (nodes $C1_URL $C2_URL $C3_URL; Ctrl-C stops it all)"
  local was="" is
  while :; do
    # Say when a part goes away or comes back (kill/restart from elsewhere).
    is=""
    for n in "${all_parts[@]}"; do pid_of "$n" >/dev/null && is+="$n "; done
    [ -n "$was" ] && [ "$is" != "$was" ] && say "running now: ${is:-nothing}"
    was=$is
    sleep 1
  done
}

do_up() {
  if supervisor_pid >/dev/null; then
    [ -f "$dir/ready" ] && { say "already up"; return 0; }
    die "a cluster is starting in $dir"
  fi
  any_running && die "parts of a cluster run in $dir without a supervisor (scripts/cluster.sh down)"
  rm -f "$dir/ready"
  : >"$dir/cluster.log"
  setsid "$0" start </dev/null >>"$dir/cluster.log" 2>&1 &
  local sup=$! t0
  t0=$(now_ms)
  until [ -f "$dir/ready" ]; do
    if ! proc_start_time "$sup" >/dev/null; then
      wait "$sup" 2>/dev/null || true
      say "the cluster did not start; $dir/cluster.log:"
      tail -40 "$dir/cluster.log" >&2
      return 1
    fi
    if [ $(( $(now_ms) - t0 )) -gt $(( (timeout_s * 4 + 60) * 1000 )) ]; then
      say "not ready in time; stopping it"
      do_down
      return 1
    fi
    sleep 0.2
  done
  load_ports
  say "up in $(cat "$dir/ready") s: $NGINX_URL/"
}

do_down() {
  local sup
  if sup=$(supervisor_pid); then
    kill -TERM "$sup" 2>/dev/null || true
    wait_gone "$sup" 400 || say "the supervisor (pid $sup) did not finish; stopping the parts"
  fi
  stop_all
  rm -f "$dir/ready" "$run/cluster.pid"
}

rss_kb() { # PID -> resident KiB of it and its children (nginx's workers)
  local kids c total
  total=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)
  total=${total:-0}
  kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
  for c in $kids; do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$c/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
do_status() {
  load_ports
  local n pid rss total=0 state bad=0 s
  printf '%-6s %-8s %-6s %-9s %s\n' NAME PID PORT RSS_MB STATE
  for n in "${all_parts[@]}"; do
    if pid=$(pid_of "$n"); then
      rss=$(rss_kb "$pid")
      total=$((total + rss))
      case $n in
        g?) if s=$(wsrep_status "$(idx "$n")"); then
              # shellcheck disable=SC2086
              set -- $s
              case $1 in 1) state=Joining ;; 2) state=Donor ;; 3) state=Joined ;; 4) state=Synced ;; *) state="state $1" ;; esac
              state="$state $3 size=$4"
              [ "$1" = 4 ] || bad=1
            else state="no answer"; bad=1; fi ;;
        redis) if [ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then state=PONG
               else state="no answer"; bad=1; fi ;;
        *) s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$(port_of "$n")/readyz" || true)
           state="readyz $s"; [ "$s" = 200 ] || bad=1 ;;
      esac
      [ "$(proc_field "$pid" 3 || true)" = T ] && state="$state (stopped)"
      printf '%-6s %-8s %-6s %-9s %s\n' "$n" "$pid" "$(port_of "$n")" "$((rss / 1024))" "$state"
    else
      printf '%-6s %-8s %-6s %-9s %s\n' "$n" - "$(port_of "$n")" - down
      bad=1
    fi
  done
  echo "total RSS: $((total / 1024)) MB; data: $(du -sm "$dir" | cut -f1) MB in $dir"
  if sup=$(supervisor_pid); then echo "supervisor: pid $sup"; fi
  return $((bad ? 3 : 0))
}

do_restart() { # NAME
  local n=$1
  load_ports
  sst=$(sst_method)
  if pid_of "$n" >/dev/null; then stop_part "$n" 120; fi
  case $n in
    g?)
      local i others=0 j
      i=$(idx "$n")
      for j in 1 2 3; do [ "$j" != "$i" ] && galera_synced "$j" && others=1; done
      [ "$others" = 1 ] || die "no other Galera node is Synced to rejoin: scripts/cluster.sh down, then start"
      galera_rejoin "$i"
      galera_wait "$i" ;;
    redis) redis_start; redis_wait ;;
    c?) chatd_start "$n"; chatd_wait "$n" ;;
    nginx) nginx_start; nginx_wait ;;
  esac
  say "$n is back (pid $(pid_of "$n"))"
}

part_name() {
  case " ${all_parts[*]} " in *" $1 "*) ;; *) die "unknown part '$1' (one of: ${all_parts[*]})" ;; esac
}

case $cmd in
  start) do_start ;;
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  env) load_ports; print_env ;;
  kill|stop|cont)
    part_name "$name"
    pid=$(pid_of "$name") || die "$name does not run"
    case $cmd in
      kill) signal_part KILL "$pid"; wait_gone "$pid" 10 || die "$name (pid $pid) survived SIGKILL" ;;
      stop) signal_part STOP "$pid" ;;
      cont) signal_part CONT "$pid" ;;
    esac ;;
  restart) part_name "$name"; do_restart "$name" ;;
esac
