#!/usr/bin/env bash
# fuzz.sh — run or replay the fuzz targets (fuzz/, docs/fuzzing.md).
#
#   scripts/fuzz.sh run SECONDS TARGET...   each build/fuzz/fuzz_<target>
#       under libFuzzer for SECONDS, one at a time in one process: new
#       inputs go to a scratch directory and are merged (-merge=1) into
#       fuzz/corpus/<target>/, keeping only those that add coverage; a crash
#       is saved to fuzz/regressions/<target>/ and fails the run. Prints the
#       executions and the corpus size per target.
#   scripts/fuzz.sh replay TARGET...        each build/fuzz-replay/fuzz_<target>
#       (gcc, ASan/UBSan, fuzz/replay.c) once over every file of
#       fuzz/corpus/<target>/ and fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Library allocations made once and kept (OpenSSL, libcurl) are not leaks.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}

mode=${1:-}
shift || true
case $mode in
  run)
    secs=$1
    shift
    rc=0
    for t in "$@"; do
      corpus=fuzz/corpus/$t
      crashes=fuzz/regressions/$t
      new=$(mktemp -d)
      mkdir -p "$corpus" "$crashes"
      dict=()
      [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
      echo "== fuzz $t (${secs} s)"
      if ! build/fuzz/fuzz_"$t" -max_total_time="$secs" -max_len=4096 \
          -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 "${dict[@]}" \
          -artifact_prefix="$crashes/" "$new" "$corpus" 2>"$new.log"; then
        rc=1
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$new.log" >&2 || tail -20 "$new.log" >&2
      fi
      grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$new.log" || true
      build/fuzz/fuzz_"$t" -merge=1 "$corpus" "$new" 2>/dev/null >&2 || true
      echo "corpus: $(ls "$corpus" | wc -l) inputs"
      rm -rf "$new" "$new.log"
    done
    exit $rc
    ;;
  replay)
    for t in "$@"; do
      files=(fuzz/corpus/"$t"/* fuzz/regressions/"$t"/*)
      existing=()
      for f in "${files[@]}"; do [ -f "$f" ] && existing+=("$f"); done
      echo "fuzz replay $t: ${#existing[@]} inputs"
      [ ${#existing[@]} -eq 0 ] || build/fuzz-replay/fuzz_"$t" "${existing[@]}"
    done
    ;;
  *) echo "usage: fuzz.sh run SECONDS TARGET... | replay TARGET..." >&2; exit 2 ;;
esac
