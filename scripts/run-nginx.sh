#!/usr/bin/env bash
# run-nginx.sh — `make run-nginx`: nginx with the repository's nginx.conf on a
# local port, in front of a chatd that is already running (`make run`).
#
#   NGINX_LISTEN   where nginx listens        (default 127.0.0.1:8081)
#   CHATD_UPSTREAM the chatd node(s) to proxy to, separated by commas or
#                  spaces (default 127.0.0.1:8080)
#   NGINX_BALANCE  hash: every request with one bearer token to one node, as
#                  in production (default); rr: round robin, every request
#                  possibly on another node (tests use it)
#   NGINX_DIR      pid, logs, temp files and the generated config (default var/nginx)
#
# nginx.conf is the production file; the lines it marks "local:" are rewritten
# here (listen, upstream servers and balancing, root, pid, logs, user) into
# NGINX_DIR/nginx.conf, which is checked with `nginx -t` and then run in the
# foreground as the current user: Ctrl-C (or SIGTERM to this script's PID,
# which becomes nginx's master) stops it. The end-to-end tests and
# scripts/cluster.sh start nginx the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${NGINX_LISTEN:-127.0.0.1:8081}
read -r -a upstreams <<<"$(echo "${CHATD_UPSTREAM:-127.0.0.1:8080}" | tr ',' ' ')"
[ ${#upstreams[@]} -gt 0 ] || { echo "run-nginx: CHATD_UPSTREAM names no node" >&2; exit 1; }
balance=${NGINX_BALANCE:-hash}
dir=${NGINX_DIR:-var/nginx}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "run-nginx: nginx is not installed (apt-get install nginx; scripts/deps.sh installs it)" >&2; exit 1; }

mkdir -p "$dir/tmp"
dir=$(cd "$dir" && pwd)
www=$PWD/www
conf="$dir/nginx.conf"

if [ "$(id -u)" -eq 0 ]; then user_line='user root;'; else user_line=''; fi
hard=$(ulimit -Hn)
nofile=65536
[ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ] && nofile=$hard
conns=$((nofile / 2))

# One "server" line per node, with the parameters of the marked line.
servers="" nl='\n'
for u in "${upstreams[@]}"; do servers+="${servers:+$nl}\\1server $u \\2"; done
case $balance in
  hash) balance_line='\1\2' ;;                       # the line as it stands
  rr) balance_line='\1# round robin (NGINX_BALANCE=rr)' ;;
  *) echo "run-nginx: NGINX_BALANCE must be hash or rr, not '$balance'" >&2; exit 1 ;;
esac

sed -e "s|^user .*# local:.*|$user_line|" \
    -e "s|^worker_rlimit_nofile .*# local:.*|worker_rlimit_nofile $nofile;|" \
    -e "s|^\( *\)worker_connections .*# local:.*|\1worker_connections $conns;|" \
    -e "s|^pid .*# local:.*|pid $dir/nginx.pid;|" \
    -e "s|^error_log .*# local:.*|error_log $dir/error.log warn;|" \
    -e "s|^\( *\)access_log [^ ;]*\([^#]*\)# local:.*|\1access_log $dir/access.log\2|" \
    -e "s|^\( *\)\(hash .*;\) *# local:.*|$balance_line|" \
    -e "s|^\( *\)server [^ ]* \(.*\)# local:.*|$servers|" \
    -e "s|^\( *\)listen .*# local:.*|\1listen $listen;|" \
    -e "s|^\( *\)root .*# local:.*|\1root $www;|" \
    -e "s|^http {|http {\n    client_body_temp_path $dir/tmp/body;\n    proxy_temp_path $dir/tmp/proxy;\n    fastcgi_temp_path $dir/tmp/fastcgi;\n    uwsgi_temp_path $dir/tmp/uwsgi;\n    scgi_temp_path $dir/tmp/scgi;|" \
    nginx.conf >"$conf"

# Every marked line must have been rewritten: a changed nginx.conf should fail
# here rather than start something that writes to /var/log or listens on :80.
if grep -q '# local:' "$conf"; then
  echo "run-nginx: could not adapt these lines of nginx.conf:" >&2
  grep -n '# local:' "$conf" >&2
  exit 1
fi

"$nginx" -p "$dir" -c "$conf" -e "$dir/error.log" -t -q
for u in "${upstreams[@]}"; do
  if ! curl -fsS -o /dev/null --max-time 2 "http://$u/healthz" 2>/dev/null; then
    echo "run-nginx: no chatd answers at $u yet (start it with 'make run')" >&2
  fi
done
echo "nginx: serving http://$listen/ in front of chatd at ${upstreams[*]} ($balance; logs in $dir)"
exec "$nginx" -p "$dir" -c "$conf" -e "$dir/error.log" -g 'daemon off;'
