#!/usr/bin/env bash
# Runs one fuzz target for a bounded time: fuzz/run.sh <target> <seconds> [extra libFuzzer flags]
# Live corpus in fuzz/corpus-work/<target> (not kept), seeded from fuzz/corpus/<target> and
# fuzz/seeds/<target> (fuzz/seed-corpus.py); crashes in fuzz/artifacts/<target>. One process at
# nice 19, on a 2 MiB stack (a tokio worker's) so deep nesting overflows as it would in the
# engine; fork mode keeps going past a crash, a timeout (10 s) or an out-of-memory (2 GB).
set -euo pipefail
cd "$(dirname "$0")"
target=$1 seconds=$2
shift 2
dict=
case $target in
  bpmn_read) dict=dict/bpmn.dict ;;
  dmn_parse) dict=dict/dmn.dict ;;
  feel_parse_eval | dmn_feel) dict=dict/feel.dict; set -- -max_len=4096 "$@" ;;
esac
mkdir -p "corpus-work/$target" "corpus/$target" "seeds/$target"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cpq-platform/fuzz-target}
ulimit -s 2048
exec nice -n 19 cargo +nightly fuzz run "$target" --sanitizer none \
  "corpus-work/$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$seconds" -dict="$dict" -timeout=10 -rss_limit_mb=2048 \
  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 "$@"
