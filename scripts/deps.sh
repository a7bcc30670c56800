#!/usr/bin/env bash
# deps.sh — install the Debian packages the project needs, only the missing ones.
#
#   scripts/deps.sh run     what `make run` needs: compiler, libraries, MariaDB
#   scripts/deps.sh test    the above plus cmocka, pytest, node/npm for linting,
#                           chromium, clang-format, and the cluster's parts
#                           (`make test` runs a cluster smoke test; `make tsan`)
#   scripts/deps.sh cluster what `make cluster` adds: Galera, Redis, rsync
#   scripts/deps.sh bench   what `make run` needs plus python3 (the report)
#   scripts/deps.sh demo    python3 (the replay; the server runs elsewhere)
#   scripts/deps.sh format  clang-format (`make format`, `make format-check`)
#   scripts/deps.sh fuzz    what `make run` needs plus clang (libFuzzer, `make fuzz`)
#   (several at once: scripts/deps.sh run cluster)
#
# Only the make targets that run something call it (`make run`, `make test`,
# ...); plain `make`, the object files and the unit test binaries never do.
#
# Safe to run again: with everything present it installs nothing and says
# nothing. Uses sudo when not root.
set -euo pipefail

# libhiredis-dev: the Redis client library chatd links for cross-node
# wake-ups (redis_url, set only in a cluster); `make run` starts no Redis.
# libcrack2-dev and cracklib-runtime (its dictionary): new passwords are
# checked against common passwords. libmagic-dev (content types from the
# bytes), libexif-dev (GPS stripped from JPEG originals) and libvips-tools
# (vipsthumbnail, run as a sandboxed helper process) are for attachments.
run_pkgs=(gcc libc6-dev make pkg-config libmicrohttpd-dev libmariadb-dev
          libjansson-dev libsodium-dev libcurl4-openssl-dev libssl-dev libhiredis-dev
          libcrack2-dev cracklib-runtime libmagic-dev libexif-dev libvips-tools
          mariadb-server mariadb-client curl nginx openssl)
test_pkgs=(libcmocka-dev python3 python3-pytest python3-requests openssl chromium
           clang-format systemd)
# systemd: systemd-analyze checks tools/systemd/chatd.service (tests/api/test_ops.py).
# The Galera provider and its rsync state transfer (iproute2's ss finds the
# ports), and the Redis server with redis-cli.
cluster_pkgs=(galera-4 rsync iproute2 redis-server redis-tools)

want=()
modes=("${@:-run}")
for m in "${modes[@]}"; do
  case $m in
    run) want+=("${run_pkgs[@]}") ;;
    test) want+=("${run_pkgs[@]}" "${test_pkgs[@]}" "${cluster_pkgs[@]}") ;;
    cluster) want+=("${run_pkgs[@]}" "${cluster_pkgs[@]}") ;;
    bench) want+=("${run_pkgs[@]}" python3) ;;
    demo) want+=(python3) ;;
    format) want+=(clang-format) ;;
    fuzz) want+=("${run_pkgs[@]}" clang) ;;
    *) echo "usage: deps.sh [run|test|cluster|bench|demo|format|fuzz]..." >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
# node and npm: any install will do (this machine may carry another build of
# Node.js than Debian's), so check for the commands rather than the packages.
if [[ " ${modes[*]} " == *" test "* ]]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d keeps the packages from starting a system MariaDB, Redis or
# nginx: we run our own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
