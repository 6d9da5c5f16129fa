#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz: clang, coverage + ASan + UBSan)
# in $FUZZ_BUILD_DIR (build-fuzz) and runs each for a fixed number of
# executions from the committed corpus (tests/fuzz/corpus/<target>), new
# inputs going to a scratch copy. CI runs it as is (a few minutes); a long
# run: FUZZ_SCALE=50 FUZZ_SEED=0 bash scripts/fuzz.sh (50× the executions, a
# time-based seed instead of CI's fixed seed 1). A failed
# property or a sanitizer report stops with the input saved under
# $FUZZ_BUILD_DIR/artifacts/: add it to the corpus (and a named regression
# test) once fixed. Prints, per target, libFuzzer's final line (cov:, ft:,
# corp:, exec/s) and the seconds it took.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SCALE=${FUZZ_SCALE:-1}
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLINALIGN_FUZZ=ON -DLINALIGN_ENABLE_CUDA=OFF -DLINALIGN_BUILD_BENCH=OFF \
  -DLINALIGN_BUILD_PYTHON=OFF -DLINALIGN_BUILD_EXAMPLES=OFF -DLINALIGN_BUILD_CLI=OFF >/dev/null
ninja -C "$BUILD" fuzz_npy fuzz_calls_cpu fuzz_calls_emu fuzz_batcher
mkdir -p "$BUILD/artifacts"
# target, executions at scale 1, max input length, extra flags
run() {
  local t=$1 n=$2 len=$3
  shift 3
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/linalign_fuzz_$t.XXXXXX")
  cp tests/fuzz/corpus/"$t"/* "$work"/
  local t0
  t0=$(date +%s)
  # -malloc_limit_mb: a reader that trusts a header's size before checking
  # the file allocates past it and stops the run.
  # -seed: the same mutations on every run (CI judges one known sequence;
  # FUZZ_SEED=0 for libFuzzer's own time-based seed in a long search).
  "$BUILD/tests/fuzz/$t" -seed="${FUZZ_SEED:-1}" -runs=$((n * SCALE)) -max_len="$len" -malloc_limit_mb=512 \
    -rss_limit_mb=4096 -timeout=60 -print_final_stats=0 -artifact_prefix="$BUILD/artifacts/$t-" \
    "$@" "$work" 2>"$BUILD/artifacts/$t.log" || {
    tail -60 "$BUILD/artifacts/$t.log"
    echo "fuzz: $t failed (input under $BUILD/artifacts/)" >&2
    exit 1
  }
  echo "fuzz: $t $((n * SCALE)) runs in $(($(date +%s) - t0)) s: $(grep -E '^#[0-9]+' "$BUILD/artifacts/$t.log" | tail -1)"
  rm -rf "$work"
}
# (scale 1 on CI's 2 cores: about 10, 50, 65 and 25 s)
run fuzz_npy 500000 4096 -dict=tests/fuzz/npy.dict
run fuzz_calls_cpu 100000 4096
run fuzz_calls_emu 4000 2048
run fuzz_batcher 20000 2048
