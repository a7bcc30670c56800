#!/usr/bin/env bash
# run-nginx.sh — `make run-nginx`: nginx with the repository's nginx.conf on
# local ports, in front of a chatd that is already running (`make run`).
#
#   NGINX_LISTEN      where the HTTPS server listens (default 127.0.0.1:8443)
#   NGINX_HTTP_LISTEN where plain HTTP answers with a redirect to it
#                     (default 127.0.0.1:8081)
#   NGINX_TLS         on (default): HTTPS with a self-signed certificate and
#                     the redirect, as in production; off: one plain HTTP
#                     server on NGINX_LISTEN, no redirect (scripts/cluster.sh
#                     and the cluster tests, on loopback only)
#   NGINX_TLS_DIR     where the self-signed certificate is made, once, and
#                     kept: cert.pem and key.pem (default var/tls)
#   NGINX_LIMITS      on (default): the limits per address of nginx.conf;
#                     off: none (the cluster tests and benchmarks send
#                     thousands of requests from 127.0.0.1)
#   CHATD_UPSTREAM    the chatd node(s) to proxy to, separated by commas or
#                     spaces (default 127.0.0.1:8080)
#   NGINX_BALANCE     hash: every request with one bearer token to one node,
#                     as in production (default); rr: round robin, every
#                     request possibly on another node (tests use it)
#   NGINX_DIR         pid, logs, temp files and the generated config
#                     (default var/nginx)
#   NGINX_MEDIA_DIR   chatd's media_dir, which /_media/ serves the downloads
#                     chatd hands over from (default var/media)
#
# nginx.conf is the production file; the lines it marks "local:" are rewritten
# here (listen addresses, the redirect's port, certificate, upstream servers
# and balancing, root, pid, logs, user; OCSP stapling dropped, HSTS sent with
# max-age=0 so that a browser does not then insist on HTTPS for every port
# of localhost) into NGINX_DIR/nginx.conf, which is checked with `nginx -t`
# and then run in the foreground as the current user: Ctrl-C (or SIGTERM to
# this script's PID, which becomes nginx's master) stops it. The end-to-end
# tests (tests/e2e/run.sh), the nginx tests (tests/nginx) and
# scripts/cluster.sh start nginx the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${NGINX_LISTEN:-127.0.0.1:8443}
http_listen=${NGINX_HTTP_LISTEN:-127.0.0.1:8081}
tls=${NGINX_TLS:-on}
limits=${NGINX_LIMITS:-on}
read -r -a upstreams <<<"$(echo "${CHATD_UPSTREAM:-127.0.0.1:8080}" | tr ',' ' ')"
[ ${#upstreams[@]} -gt 0 ] || { echo "run-nginx: CHATD_UPSTREAM names no node" >&2; exit 1; }
balance=${NGINX_BALANCE:-hash}
dir=${NGINX_DIR:-var/nginx}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "run-nginx: nginx is not installed (apt-get install nginx; scripts/deps.sh installs it)" >&2; exit 1; }
case $tls in on | off) ;; *) echo "run-nginx: NGINX_TLS must be on or off, not '$tls'" >&2; exit 1 ;; esac
case $limits in on | off) ;; *) echo "run-nginx: NGINX_LIMITS must be on or off, not '$limits'" >&2; exit 1 ;; esac

mkdir -p "$dir/tmp"
dir=$(cd "$dir" && pwd)
www=$PWD/www
# The attachments directory chatd hands downloads over from (its media_dir).
media=${NGINX_MEDIA_DIR:-$PWD/var/media}
mkdir -p "$media"
media=$(cd "$media" && pwd)
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

# The self-signed certificate, made once: a P-256 key, valid for localhost
# and 127.0.0.1 for 825 days (the longest a browser accepts), made again
# when it has less than a day left. Browsers warn about it once; the e2e
# tests tell Chromium to accept it.
tls_rules=()
if [ "$tls" = on ]; then
  tls_dir=${NGINX_TLS_DIR:-var/tls}
  mkdir -p "$tls_dir"
  tls_dir=$(cd "$tls_dir" && pwd)
  if [ ! -s "$tls_dir/cert.pem" ] || [ ! -s "$tls_dir/key.pem" ] ||
    ! openssl x509 -in "$tls_dir/cert.pem" -noout -checkend 86400 >/dev/null 2>&1; then
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -days 825 -subj "/CN=chatd local" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2>/dev/null) ||
      { echo "run-nginx: openssl could not make a certificate in $tls_dir" >&2; exit 1; }
    echo "run-nginx: made a self-signed certificate in $tls_dir"
  fi
  port=${listen##*:}
  [ "$port" = 443 ] && to="" || to=":$port"
  tls_rules=(
    -e "s|^\( *server {\) *# local: the redirect server.*|\1|"
    -e "s|^\( *}\) *# local: the end of the redirect server.*|\1|"
    -e "s|^\( *\)listen 80; *# local:.*|\1listen $http_listen;|"
    -e "s|^\( *\)return 301 https://\\\$host\\\$request_uri; *# local:.*|\1return 301 https://\$host$to\$request_uri;|"
    -e "s|^\( *\)listen 443 ssl http2; *# local:.*|\1listen $listen ssl http2;|"
    -e "s|^\( *\)ssl_certificate  *[^ ;]*; *# local:.*|\1ssl_certificate $tls_dir/cert.pem;|"
    -e "s|^\( *\)ssl_certificate_key  *[^ ;]*; *# local:.*|\1ssl_certificate_key $tls_dir/key.pem;|"
    -e "s|^\( *add_header Strict-Transport-Security \"\)max-age=[0-9]*\(\" always;\) *# local:.*|\1max-age=0\2|"
  )
else
  tls_rules=(
    -e "/# local: the redirect server/,/# local: the end of the redirect server/d"
    -e "s|^\( *\)listen 443 ssl http2; *# local:.*|\1listen $listen;|"
    -e "/^ *ssl_certificate\(_key\)\?  *[^ ;]*; *# local:/d"
    -e "/^ *add_header Strict-Transport-Security .*# local:/d"
  )
fi
limit_rules=()
[ "$limits" = off ] && limit_rules=(-e "/^ *limit_req zone=/d" -e "/^ *limit_conn chat_conn /d")

sed "${tls_rules[@]}" "${limit_rules[@]}" \
    -e "/# local: dropped\$/d" \
    -e "s|^user .*# local:.*|$user_line|" \
    -e "s|^worker_rlimit_nofile .*# local:.*|worker_rlimit_nofile $nofile;|" \
    -e "s|^\( *\)worker_connections .*# local:.*|\1worker_connections $conns;|" \
    -e "s|^pid .*# local:.*|pid $dir/nginx.pid;|" \
    -e "s|^error_log .*# local:.*|error_log $dir/error.log warn;|" \
    -e "s|^\( *\)access_log [^ ;]*\([^#]*\)# local:.*|\1access_log $dir/access.log\2|" \
    -e "s|^\( *\)\(hash .*;\) *# local:.*|$balance_line|" \
    -e "s|^\( *\)server [^ ]* \(.*\)# local:.*|$servers|" \
    -e "s|^\( *\)root .*# local:.*|\1root $www;|" \
    -e "s|^\( *\)alias .*# local: NGINX_MEDIA_DIR|\1alias $media/;|" \
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
if [ "$tls" = on ]; then
  echo "nginx: serving https://$listen/ (http://$http_listen/ redirects there) in front of chatd at ${upstreams[*]} ($balance, limits $limits; logs in $dir)"
else
  echo "nginx: serving http://$listen/ (no TLS) in front of chatd at ${upstreams[*]} ($balance, limits $limits; logs in $dir)"
fi
exec "$nginx" -p "$dir" -c "$conf" -e "$dir/error.log" -g 'daemon off;'
