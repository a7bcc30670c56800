#!/usr/bin/env bash
# tsan.sh — `make tsan` (and a step of `make test`): ThreadSanitizer.
#   1. the C unit tests built with -fsanitize=thread (build/unit-tsan/*,
#      passed as arguments by the Makefile); a report fails the run
#   2. a short subset of the API tests, the ones that drive chatd's threads
#      hardest, against build/chatd-tsan and a throwaway MariaDB; conftest.py
#      fails the session on any ThreadSanitizer report in chatd's stderr
#
# tests/tsan.supp holds the suppressions: false reports of code outside
# chatd only, each with its reason. TSAN_TESTS replaces the API subset (pytest
# arguments, space-separated); TSAN_OPTIONS, when set, replaces the options.
set -euo pipefail
cd "$(dirname "$0")/.."

export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/tests/tsan.supp:second_deadlock_stack=1}

# The API subset (about a minute): parallel sends and the send batches,
# inbox long-polls parked and woken and the tail, the acknowledgement batches
# and live receipts, the presence sweeper and typing, the push notifier
# thread (and its stop). Every chatd start and stop in them also runs the
# shutdown of every thread.
default_tests=(
  tests/api/test_concurrency.py
  tests/api/test_inbox.py
  tests/api/test_receipts_live.py
  tests/api/test_presence.py::test_presence_online_and_offline_reach_a_co_member
  tests/api/test_presence.py::test_reconnect_storm_publishes_at_most_one_change
  tests/api/test_presence.py::test_presence_change_reaches_a_poll_that_comes_just_after
  tests/api/test_presence.py::test_typing_reaches_the_other_members_parked_poll
  tests/api/test_presence.py::test_typing_reaches_a_poll_that_comes_just_after_once
  tests/api/test_push.py::test_offline_member_gets_exactly_one_push_per_message
  tests/api/test_push.py::test_every_device_of_an_offline_member_gets_one_push_apns_and_fcm
  "tests/api/test_push.py::test_restart_while_the_request_is_in_flight_pushes_again[sigterm]"
  tests/api/test_push.py::test_zz_the_fake_found_no_problem_in_any_request
)
if [ -n "${TSAN_TESTS:-}" ]; then
  read -r -a tests <<<"$TSAN_TESTS"
else
  tests=("${default_tests[@]}")
fi

# gcc 12's TSan needs the address-space layout it knows; on a kernel that
# randomizes mmap with more bits it stops with "unexpected memory mapping".
# Then run everything with ASLR off (setarch -R), chatd through a wrapper.
run=()
chatd=$PWD/build/chatd-tsan
if build/chatd-tsan --help 2>&1 | grep -q 'FATAL: ThreadSanitizer: unexpected memory mapping'; then
  echo "tsan: this kernel's mmap randomization is too wide for TSan; running with setarch -R"
  run=(setarch "$(uname -m)" -R)
  chatd=$PWD/build/chatd-tsan-norandom
  printf '#!/bin/sh\nexec setarch "%s" -R "%s" "$@"\n' "$(uname -m)" "$PWD/build/chatd-tsan" >"$chatd"
  chmod +x "$chatd"
fi

echo "== tsan: unit tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
  # quiet unless it fails: the ASan run above already showed every test
  if ! "${run[@]}" "$t" >"$log" 2>&1 || grep -q 'ThreadSanitizer' "$log"; then
    cat "$log"
    echo "tsan: $t failed (or ThreadSanitizer reported)" >&2
    exit 1
  fi
  echo "  $(basename "$t"): ok"
done

echo "== tsan: api subset (${#tests[@]} pytest arguments) against build/chatd-tsan"
export CHATD_BIN=$chatd
/usr/bin/python3 -m pytest -q -p no:cacheprovider "${tests[@]}"
