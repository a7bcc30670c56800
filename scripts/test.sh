#!/usr/bin/env bash
# test.sh — `make test`: every suite, failing on the first failure.
#   0. the C sources are as clang-format writes them (scripts/format.sh
#      check; `make format` fixes them), and the include rule between the
#      layers of src/ (scripts/check-layers.sh);
#      SKIP_LAYERS=1 skips it, for a branch that is not there yet (CI never
#      sets it)
#   1. C unit tests (cmocka), under AddressSanitizer/UBSan
#   1b. `make fuzz-replay`: every fuzz corpus and regression input once
#      through the fuzz targets built with gcc + ASan/UBSan (fuzz/)
#   2. `make tsan`: the unit tests and a short concurrency subset of the API
#      tests under ThreadSanitizer (scripts/tsan.sh)
#   3. the OpenAPI lint
#   4. the API tests (pytest over real HTTP) against build/chatd-asan and a
#      throwaway MariaDB that the test session starts and stops
#   4b. a clone of HEAD into an empty directory (tests/standalone/run.sh):
#      refers to nothing outside itself, builds, and `make demo` replays a
#      short sample of its own IRC logs through it with nothing lost
#   5. the cluster smoke test (tests/cluster/test_cluster_smoke.py): the whole
#      `make cluster` set-up in a temporary directory, a wake across nodes,
#      a logout seen by another node, and a chatd and the Galera writer
#      killed under a small load with nothing lost; `make test-cluster` runs
#      every cluster test
#   6. nginx.conf's tests (tests/nginx): TLS, the redirect, the security
#      headers, the limits and nginx's problem+json answers, in front of a
#      stub upstream
#   7. the browser tests (node --test, playwright-core driving Debian's
#      chromium) through nginx over HTTPS, against the same sanitizer build
#
# Arguments: the unit test binaries (the Makefile passes build/unit/*).
set -euo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}

echo "== format"
scripts/format.sh check

if [ "${SKIP_LAYERS:-}" = 1 ]; then
  echo "== layers: skipped (SKIP_LAYERS=1)"
else
  echo "== layers"
  scripts/check-layers.sh
fi

echo "== unit tests"
for t in "$@"; do "$t"; done

echo "== fuzz replay"
MAKEFLAGS=$(sed -E 's/ ?--jobserver-(auth|fds)=[^ ]*//g' <<<"${MAKEFLAGS:-}") \
  make --no-print-directory fuzz-replay

echo "== tsan"
# `make test` runs this script as a plain command, without the jobserver's
# descriptors: drop the jobserver from MAKEFLAGS (keeping -j and variables
# given on the command line) so that the inner make does not warn.
MAKEFLAGS=$(sed -E 's/ ?--jobserver-(auth|fds)=[^ ]*//g' <<<"${MAKEFLAGS:-}") \
  make --no-print-directory tsan

echo "== openapi lint"
scripts/lint-openapi.sh

echo "== api tests"
export CHATD_BIN=$PWD/build/chatd-asan
# Debian's python3, which carries python3-pytest (not a pyenv shim).
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/api

echo "== standalone: a clone with nothing beside it builds, serves and runs make demo"
tests/standalone/run.sh

echo "== cluster smoke test (3 Galera nodes, Redis, 3 chatd, nginx)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cluster/test_cluster_smoke.py

echo "== nginx tests (nginx.conf in front of a stub)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/nginx

echo "== e2e tests (browser, through nginx)"
tests/e2e/run.sh
