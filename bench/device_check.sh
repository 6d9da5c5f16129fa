#!/usr/bin/env bash
# The prepared device check of issue 3: on a machine with an NVIDIA GPU, in one
# run of under 6 minutes,
#   1. records the machine (nvidia-smi, nvcc, date) and the project's commit,
#   2. configures a Release build for the local GPU only and builds it,
#  2a. measures the decision rows first (issue 19: align fp32 V = 128256 over
#      B = 1 … 128, fused vs multi-kernel vs copy, top-p, bf16 B = 256,
#      exact_kl, the graph step) and prints their table and fitted per-row
#      time into summary.txt,
#   3. runs every test (ctest, GPU tests included) but the two long emulated
#      CoreShapes tests, which run in CI and pass the 100 s limit here,
#   4. runs the four compute-sanitizer tools — memcheck, racecheck, initcheck,
#      synccheck — on every test of each GPU test binary but the large core
#      shapes,
#   5. runs the GPU benchmarks (bench/gpu_bench.cu, JSON + console), then
#      Nsight Compute (ncu) on the headline rows: per-kernel time, DRAM
#      bytes, instructions (issue 9),
#   6. runs the PyTorch reference (bench/torch_reference.py) if torch is there,
# each step bounded by `timeout`, each step's failure recorded and the next
# step run anyway. Everything goes to $OUT (default ./device_out), 8 files
# (the device tool brings back at most 8, so none is ever dropped):
#   summary.txt     pass/fail and wall time per step, the benchmark headline,
#                   and a copy of the PyTorch reference table
#   build_test.log  machine facts, configure, build, ctest and the four
#                   sanitizers, one section each (lines "##### <section>")
#   bench_gpu.log   benchmark console output;  bench_gpu.json  its JSON
#   torch.log       the PyTorch reference table (whole output)
#   decide_fused.json, decide_multi.json   the decision rows (step 2a)
#   ncu.log         Nsight Compute metrics (CSV rows) of the headline rows' kernels
#
# Usage, from the repository root:
#   bash bench/device_check.sh               on the GPU machine (or a dry run
#                                            without a GPU: configures, then exits 0)
#   bash bench/device_check.sh --stage-deps  on a Debian/Ubuntu machine that has
#       libgtest-dev, libgmock-dev and libbenchmark-dev: copies them into
#       build-deps/prefix (ignored by git), to carry to a machine that lacks
#       them; the check uses them only when the machine's own are missing.
#       Writes the source stamp too (--stamp).
#   bash bench/device_check.sh --stamp       in the git checkout, right before
#       the tree is sent: writes build-deps/source.txt (commit, uncommitted
#       paths, tree hash); carry build-deps with the tree.
#
# The commit: the device machine gets a copy of the working tree without .git,
# placed inside another repository, whose HEAD `git rev-parse` would report
# (the 2026-11-30 run did). So git is asked only when the repository root is
# itself the top of a git work tree; otherwise the commit is LINALIGN_COMMIT,
# else the one in build-deps/source.txt. Either way the check hashes the
# sources (tree_hash: sha256 of every source file under include host kernels
# tests bench cmake, and CMakeLists.txt, by path) and, for a stamp, says
# whether the tree is still the one stamped (hash equal) or has changed since.
#
# Environment: OUT, LINALIGN_CUDA_ARCH (default: the GPU's compute capability,
# 90a-real for 9.0), LINALIGN_COMMIT (the commit, when the root has no .git),
# SANITIZER_GTEST_FILTER (default: every test of the binary but the core
# shapes), DEVICE_CHECK_CTEST_EXCLUDE (ctest -E regex; default the two
# emulated CoreShapes tests; empty: run all), DEVICE_CHECK_CTEST_TIMEOUT
# (per test, default 100 s), DEVICE_CHECK_DEADLINE_S (default 345: later
# steps get what is left), DEVICE_CHECK_BUILD=1 (dry run: build too),
# LINALIGN_BENCH_MIN_TIME (default 0.05), DEVICE_CHECK_BENCH_RESERVE_S
# (default 110: seconds ctest and the sanitizers leave to the benchmarks),
# DEVICE_CHECK_CMAKE_ARGS (extra configure arguments).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT" || exit 1
DEPS="$ROOT/build-deps/prefix"
STAMP="$ROOT/build-deps/source.txt"

# The sources' hash: sha256 over "hash  path" of every source-like file, paths
# relative to the root, in C order. The same on a checkout and on its copy.
tree_hash() {
  find include host kernels tests bench cmake CMakeLists.txt -type f \
    \( -name '*.hpp' -o -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' -o -name '*.c' \
    -o -name '*.txt' -o -name '*.cmake' -o -name '*.py' -o -name '*.sh' \) -print0 2>/dev/null |
    LC_ALL=C sort -z | xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-16
}
# True when $ROOT is the top of a git work tree (not a copy inside another one).
own_git() {
  local top
  top=$(git -C "$ROOT" rev-parse --show-toplevel 2>/dev/null) || return 1
  [[ -n "$top" && "$(cd "$top" && pwd -P)" == "$ROOT" ]]
}
write_stamp() {
  if ! own_git; then
    echo "stamp: $ROOT is not the top of a git checkout; nothing written" >&2
    return 1
  fi
  mkdir -p "$(dirname "$STAMP")" || return 1
  {
    echo "commit $(git -C "$ROOT" rev-parse HEAD)"
    echo "uncommitted $(git -C "$ROOT" status --porcelain | wc -l | tr -d ' ')"
    echo "tree $(tree_hash)"
    echo "stamped $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  } >"$STAMP" || return 1
  echo "stamp: $(paste -sd' ' "$STAMP") in $STAMP (carry build-deps)"
}

# -------------------------------------------------------------------- stamp --
if [[ "${1:-}" == "--stamp" ]]; then
  write_stamp
  exit
fi

# ---------------------------------------------------------------- stage deps --
if [[ "${1:-}" == "--stage-deps" ]]; then
  rm -rf "$DEPS" && mkdir -p "$DEPS" || exit 1
  for pkg in libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian; do
    if ! dpkg -L "$pkg" >/dev/null 2>&1; then
      echo "stage-deps: package $pkg is not installed here" >&2
      exit 1
    fi
    dpkg -L "$pkg" | while read -r f; do
      case "$f" in
        /usr/include/* | /usr/lib/*)
          if [[ -f "$f" ]]; then  # files and links to files, copied as files
            rel=${f#/usr/}
            mkdir -p "$DEPS/$(dirname "$rel")" && cp -L "$f" "$DEPS/$rel"
          fi
          ;;
      esac
    done
  done
  echo "stage-deps: $(du -sh "$DEPS" | cut -f1) in $DEPS (carry build-deps)"
  write_stamp || true
  exit 0
fi

# ------------------------------------------------------------------- helpers --
OUT=${OUT:-./device_out}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
BUILD="$ROOT/build-device"
DEADLINE_S=${DEVICE_CHECK_DEADLINE_S:-345}
# Eight files in $OUT: setup, ctest and the sanitizers share build_test.log.
SUMMARY="$OUT/summary.txt"
LOG="$OUT/build_test.log"
BENCH_LOG="$OUT/bench_gpu.log"
BENCH_JSON="$OUT/bench_gpu.json"
TORCH_LOG="$OUT/torch.log"
: >"$SUMMARY"
: >"$LOG"
# Each step's own output, also kept apart for parsing (outside $OUT).
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX") || exit 1
trap 'rm -rf "$SCRATCH"' EXIT
STEP_OUT="$SCRATCH/step.out"
T0_NS=$(date +%s%N)
FAILED=0
NOTES=()
RESERVE_S=0 # seconds run_step leaves to the steps after it

[[ -d /usr/local/cuda/bin ]] && export PATH="/usr/local/cuda/bin:$PATH"
export PYTHONUNBUFFERED=1

elapsed_s() { echo $((($(date +%s%N) - T0_NS) / 1000000000)); }
say() { echo "[device_check +$(elapsed_s)s] $*"; }
# section NAME: a header in build_test.log.
section() { printf '\n##### %s (+%ss)\n' "$1" "$(elapsed_s)" >>"$LOG"; }
# record STEP RESULT MILLISECONDS NOTE
record() {
  printf '%-10s %-8s %7.1fs  %s\n' "$1" "$2" "$(awk "BEGIN{print $3/1000}")" "$4" >>"$SUMMARY"
  say "$1: $2 ($4)"
  [[ "$2" == FAIL* || "$2" == TIMEOUT ]] && FAILED=1
  return 0
}

# run_step STEP LOG MAX_SECONDS CMD... : runs CMD with its output appended to
# LOG (as it comes) and written to $STEP_OUT (this step's alone), bounded by
# MAX_SECONDS and by the global deadline. Sets STEP_RC and STEP_MS; returns 0
# on success.
run_step() {
  local step=$1 log=$2 max=$3
  shift 3
  local left=$((DEADLINE_S - $(elapsed_s) - 5 - RESERVE_S))
  local limit=$((max < left ? max : left))
  STEP_MS=0
  : >"$STEP_OUT"
  if ((limit < 5)); then
    STEP_RC=125
    echo "=== $step: not run, the ${DEADLINE_S}s deadline is spent" >>"$log"
    return 1
  fi
  echo "=== $step ($(date -u +%H:%M:%S), limit ${limit}s): $*" >>"$log"
  local t
  t=$(date +%s%N)
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$STEP_OUT" >>"$log"
  STEP_RC=${PIPESTATUS[0]}
  STEP_MS=$((($(date +%s%N) - t) / 1000000))
  echo "=== $step: exit $STEP_RC after ${STEP_MS} ms" >>"$log"
  return "$STEP_RC"
}
# result_of RC: PASS, TIMEOUT, NOT RUN or FAIL(rc)
result_of() {
  case $1 in
    0) echo PASS ;;
    124 | 137) echo TIMEOUT ;;
    125) echo "NOT RUN" ;;
    *) echo "FAIL($1)" ;;
  esac
}

# ------------------------------------------------------------ 1. the machine --
section "machine"
t=$(date +%s%N)
TREE=$(tree_hash)
# The commit (see the header): this checkout's own git, else LINALIGN_COMMIT,
# else the stamp, which is checked against the tree.
if own_git; then
  COMMIT=$(git -C "$ROOT" rev-parse HEAD)
  DIRTY=$(git -C "$ROOT" status --porcelain | wc -l | tr -d ' ')
  COMMIT="$COMMIT (git; $DIRTY uncommitted paths)"
elif [[ -n "${LINALIGN_COMMIT:-}" ]]; then
  COMMIT="$LINALIGN_COMMIT (LINALIGN_COMMIT; no .git here)"
elif [[ -s "$STAMP" ]]; then
  s_commit=$(awk '$1 == "commit" { print $2 }' "$STAMP")
  s_dirty=$(awk '$1 == "uncommitted" { print $2 }' "$STAMP")
  s_tree=$(awk '$1 == "tree" { print $2 }' "$STAMP")
  s_when=$(sed -n 's/^stamped //p' "$STAMP")
  if [[ "$s_tree" == "$TREE" ]]; then
    COMMIT="${s_commit:-?} (build-deps/source.txt of $s_when, ${s_dirty:-?} uncommitted paths; the tree is the one stamped)"
  else
    COMMIT="${s_commit:-?} (build-deps/source.txt of $s_when; STALE: the tree has changed since, stamped $s_tree)"
  fi
else
  COMMIT="unknown (no .git here, no LINALIGN_COMMIT, no build-deps/source.txt: run --stamp before sending)"
fi
GPU_CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' ')
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $COMMIT"
  echo "tree sha256 (sources): $TREE"
  echo "host: $(uname -srm), $(nproc) CPUs"
  echo "--- nvidia-smi"
  nvidia-smi 2>&1 || echo "(nvidia-smi failed or is missing)"
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.sm \
    --format=csv 2>&1 || true
  echo "--- nvcc --version"
  nvcc --version 2>&1 || echo "(nvcc missing)"
  echo "--- tools"
  cmake --version 2>&1 | head -n1 || echo "(cmake missing)"
  ninja --version 2>&1 | sed 's/^/ninja /' || echo "(ninja missing)"
  command -v compute-sanitizer || ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>&1
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -n1
} >>"$LOG" 2>&1
{
  echo "linalign device check, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit $COMMIT, tree $TREE"
  echo "GPU: ${GPU_NAME:-none} (compute capability ${GPU_CC:-?}); $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'no nvcc')"
  echo
  printf '%-10s %-8s %8s  %s\n' step result wall note
} >>"$SUMMARY"
record env PASS $((($(date +%s%N) - t) / 1000000)) "machine facts in build_test.log"

NO_GPU=0
if [[ -z "$GPU_CC" ]] || ! nvidia-smi -L >/dev/null 2>&1; then
  NO_GPU=1
  NOTES+=("no GPU on this machine: dry run (configure only; DEVICE_CHECK_BUILD=1 builds too)")
  say "no NVIDIA GPU detected: dry run"
fi
if [[ -n "${LINALIGN_CUDA_ARCH:-}" ]]; then
  ARCH=$LINALIGN_CUDA_ARCH
elif [[ "$GPU_CC" == "9.0" || -z "$GPU_CC" ]]; then
  ARCH=90a-real # Hopper (H100/H200): sm_90a for wgmma/TMA/setmaxnreg
else
  ARCH="${GPU_CC/./}-real"
fi

# ------------------------------------------------------- 2. configure, build --
section "configure, build"
GEN="Unix Makefiles"
command -v ninja >/dev/null 2>&1 && GEN=Ninja
COMMON=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$ARCH" -DLINALIGN_WERROR=OFF)
# shellcheck disable=SC2206 # extra configure arguments, split on spaces on purpose
COMMON+=(${DEVICE_CHECK_CMAKE_ARGS:-})
rm -rf "$BUILD"
# Attempts, in order: the machine's own GoogleTest/Benchmark; the carried ones;
# without benchmarks; without tests; without both.
CONFIG_NOTE=""
TESTS_ON=1
t=$(date +%s%N)
configured=0
for attempt in system carried no-bench no-tests no-tests-no-bench; do
  extra=()
  case $attempt in
    carried)
      [[ -d "$DEPS" ]] || continue
      extra=("-DCMAKE_PREFIX_PATH=$DEPS")
      ;;
    no-bench)
      [[ -d "$DEPS" ]] && extra=("-DCMAKE_PREFIX_PATH=$DEPS")
      extra+=(-DLINALIGN_BUILD_BENCH=OFF)
      ;;
    no-tests)
      [[ -d "$DEPS" ]] && extra=("-DCMAKE_PREFIX_PATH=$DEPS")
      extra+=(-DLINALIGN_BUILD_TESTS=OFF)
      TESTS_ON=0
      ;;
    no-tests-no-bench)
      extra=(-DLINALIGN_BUILD_TESTS=OFF -DLINALIGN_BUILD_BENCH=OFF)
      TESTS_ON=0
      ;;
  esac
  if run_step "configure($attempt)" "$LOG" 150 \
    cmake -S "$ROOT" -B "$BUILD" -G "$GEN" "${COMMON[@]}" -DLINALIGN_BUILD_TESTS=ON \
    -DLINALIGN_BUILD_BENCH=ON ${extra[@]+"${extra[@]}"}; then
    configured=1
    break
  fi
  ((STEP_RC == 124 || STEP_RC == 137 || STEP_RC == 125)) && break # out of time: stop trying
done
CONFIG_MS=$((($(date +%s%N) - t) / 1000000))
CUDA_ON=0
grep -q "linalign: CUDA backend ON" "$LOG" && CUDA_ON=1
if ((configured)); then
  case $attempt in
    system) CONFIG_NOTE="GoogleTest + Google Benchmark of the machine" ;;
    carried) CONFIG_NOTE="GoogleTest + Google Benchmark carried in build-deps/prefix" ;;
    no-bench) CONFIG_NOTE="SKIPPED the benchmarks: no Google Benchmark (nor build-deps/prefix)" ;;
    no-tests) CONFIG_NOTE="SKIPPED the tests: no GoogleTest (nor build-deps/prefix)" ;;
    no-tests-no-bench) CONFIG_NOTE="SKIPPED tests and benchmarks: no GoogleTest, no Google Benchmark" ;;
  esac
  ((CUDA_ON)) || CONFIG_NOTE="$CONFIG_NOTE; CUDA backend OFF (nvcc not found?)"
  record configure PASS "$CONFIG_MS" "$GEN, archs $ARCH; $CONFIG_NOTE"
else
  record configure "$(result_of "$STEP_RC")" "$CONFIG_MS" "every attempt failed, see build_test.log"
fi

BUILT=0
if ((configured)) && ((NO_GPU == 0 || ${DEVICE_CHECK_BUILD:-0} == 1)); then
  keep_going=(-- -k 0)
  [[ "$GEN" == Ninja ]] || keep_going=(-- -k)
  run_step build "$LOG" 270 cmake --build "$BUILD" -j "$(nproc)" "${keep_going[@]}"
  rc=$STEP_RC
  BUILT=1
  note="$(grep -c '^FAILED: \|Error [0-9]' "$STEP_OUT" | tr -d ' ') failed build commands, see build_test.log"
  ((rc == 0)) && note="all targets"
  record build "$(result_of "$rc")" "$STEP_MS" "$note"
elif ((configured)); then
  record build SKIP 0 "no GPU: dry run"
fi

BENCH_BIN="$BUILD/bench/linalign_bench_gpu"
GPU_TESTS=()
for src in tests/gpu/test_*.cpp tests/gpu/test_*.cu; do
  [[ -e "$src" ]] || continue
  bin="$BUILD/tests/$(basename "${src%.*}")"
  [[ -x "$bin" ]] && GPU_TESTS+=("$bin")
done

SANITIZER_TOOLS=(memcheck racecheck initcheck synccheck)
if ((NO_GPU)); then
  for s in decide ctest "${SANITIZER_TOOLS[@]}" bench_gpu bench_batcher torch; do record "$s" SKIP 0 "no GPU"; done
  {
    echo
    for n in ${NOTES[@]+"${NOTES[@]}"}; do echo "note: $n"; done
    echo "total $(elapsed_s)s"
  } >>"$SUMMARY"
  cat "$SUMMARY"
  exit 0
fi

# -------------------------------------------------- 2a. the decision rows --
# Right after the build (issue 19): the rows that decide the fused kernels'
# fate, in about a minute, before anything else can run out of time. Align
# fp32 V = 128256 at B = 1 … 128 and its copy; the same align rows on the
# multi-kernel path (LINALIGN_CUDA_FUSED=0, a second process); top-p at
# T = 1 and 0.5 (B = 1, 64); bf16 B = 256 V = 151936; exact_kl B = 64; the
# B = 1 graph step. bench/decide_summary.py prints µs, the ratio to a copy of
# the same bytes and the fitted per-row time into summary.txt, to be read
# against the predictions in bench/NOTES.md ("Issue 19: predictions").
DECIDE_JSON="$OUT/decide_fused.json"
DECIDE_MULTI_JSON="$OUT/decide_multi.json"
DECIDE_ALIGN='(copy_d2d|align_linalign)/fp32/B:(1|2|3|4|8|16|32|64|128)/V:128256'
DECIDE_FILTER="^($DECIDE_ALIGN|sample_topp(_t05)?_linalign/fp32/B:(1|64)/V:128256|align_linalign/bf16/B:256/V:151936|align_exactkl_linalign/fp32/B:64/V:128256|step_graph/bf16/B:1/V:128256)(/|\$)"
if [[ -x "$BENCH_BIN" ]]; then
  run_step decide "$BENCH_LOG" 60 env LINALIGN_BENCH_MIN_TIME=0.02 "$BENCH_BIN" \
    "--benchmark_filter=$DECIDE_FILTER" "--benchmark_out=$DECIDE_JSON" \
    --benchmark_out_format=json --benchmark_counters_tabular=true
  rc=$STEP_RC
  run_step decide_multi "$BENCH_LOG" 40 env LINALIGN_CUDA_FUSED=0 LINALIGN_BENCH_MIN_TIME=0.02 \
    "$BENCH_BIN" "--benchmark_filter=^($DECIDE_ALIGN)(/|\$)" "--benchmark_out=$DECIDE_MULTI_JSON" \
    --benchmark_out_format=json --benchmark_counters_tabular=true
  ((rc == 0)) && rc=$STEP_RC
  python3 bench/decide_summary.py "$DECIDE_JSON" "$DECIDE_MULTI_JSON" >"$SCRATCH/decide.txt" 2>&1
  record decide "$(result_of "$rc")" "$STEP_MS" "$(grep -c 'per-row' "$SCRATCH/decide.txt") fits; table below"
  {
    echo
    cat "$SCRATCH/decide.txt"
    echo
  } >>"$SUMMARY"
else
  record decide SKIP 0 "linalign_bench_gpu not built ($CONFIG_NOTE)"
fi

# ------------------------------------------------------------------ 3. ctest --
# ctest and the sanitizers leave time for the benchmarks. The two emulated
# CoreShapes tests and the emulated multi-kernel rerun (the kernels on the
# CPU at every core shape, ~100 s each on one core) run in CI; here they
# only hit the per-test limit.
RESERVE_S=${DEVICE_CHECK_BENCH_RESERVE_S:-110}
CTEST_EXCLUDE=${DEVICE_CHECK_CTEST_EXCLUDE-'^CudaVsCpu\.(CoreShapes.*|WithoutFusedKernels)\.emulated$'}
CTEST_TIMEOUT=${DEVICE_CHECK_CTEST_TIMEOUT:-100}
section "ctest"
if ((BUILT && TESTS_ON)); then
  exclude=()
  [[ -n "$CTEST_EXCLUDE" ]] && exclude=(-E "$CTEST_EXCLUDE")
  run_step ctest "$LOG" 150 ctest --test-dir "$BUILD" --output-on-failure \
    --timeout "$CTEST_TIMEOUT" -j "$(nproc)" ${exclude[@]+"${exclude[@]}"}
  rc=$STEP_RC
  note=$(grep -E '[0-9]+% tests passed' "$STEP_OUT" | tail -n1)
  failed=$(sed -n '/The following tests FAILED/,$p' "$STEP_OUT" | grep -E '^\s+[0-9]+ - ' |
    head -n 5 | sed -E 's/^\s+[0-9]+ - //; s/ \(.*//' | paste -sd, -)
  [[ -n "$failed" ]] && note="$note; first failures: $failed"
  [[ -n "$CTEST_EXCLUDE" ]] && note="$note; excluded -E '$CTEST_EXCLUDE' (run in CI)"
  record ctest "$(result_of "$rc")" "$STEP_MS" "${note:-see build_test.log}"
else
  record ctest SKIP 0 "tests not configured or not built ($CONFIG_NOTE)"
fi

# ---------------------------------------------------------- 4. sanitizers --
SANITIZER=$(command -v compute-sanitizer || true)
[[ -z "$SANITIZER" && -x /usr/local/cuda/compute-sanitizer/compute-sanitizer ]] &&
  SANITIZER=/usr/local/cuda/compute-sanitizer/compute-sanitizer
# The tests a sanitizer runs in one binary: SANITIZER_GTEST_FILTER, else every
# test the binary lists but the large core shapes (CoreShapes*: V up to 151936,
# ~19 s each natively): in tests/gpu/test_cuda_backend.cpp the temperatures,
# odd and misaligned V, layouts, shards, per-row parameters, the mask selection
# (MasksDecideTheDraw, with its seeds in device memory), row errors, scoring,
# graph capture and bad arguments; all of tests/gpu/test_cuda_scores_input.cpp.
# On the H200 (2026-11-30) each tool took 2-13 s over those.
pick_filter() {
  if [[ -n "${SANITIZER_GTEST_FILTER:-}" ]]; then
    echo "$SANITIZER_GTEST_FILTER"
    return
  fi
  timeout 30 "$1" --gtest_list_tests 2>/dev/null | awk '
    /^[^ ]/ { suite = $1; next }
    /^  /   { print suite $1 }' | grep -viE 'core_?shapes|large|huge' | paste -sd: -
}
for tool in "${SANITIZER_TOOLS[@]}"; do
  section "compute-sanitizer --tool $tool"
  if [[ -z "$SANITIZER" ]]; then
    record "$tool" SKIP 0 "compute-sanitizer not found"
    continue
  fi
  if ((${#GPU_TESTS[@]} == 0)); then
    record "$tool" SKIP 0 "no GPU test binary built (tests/gpu)"
    continue
  fi
  t=$(date +%s%N)
  worst=0
  ran=0
  counts=""
  for bin in ${GPU_TESTS[@]+"${GPU_TESTS[@]}"}; do
    filter=$(pick_filter "$bin")
    [[ -z "$filter" ]] && continue
    echo "--- $tool on $(basename "$bin"), --gtest_filter=$filter" >>"$LOG"
    run_step "$tool:$(basename "$bin")" "$LOG" 90 "$SANITIZER" --tool "$tool" \
      --error-exitcode 1 --print-limit 20 "$bin" "--gtest_filter=$filter"
    rc=$STEP_RC
    ran=$((ran + $(echo "$filter" | tr ':' '\n' | grep -c .)))
    ((rc != 0 && worst == 0)) && worst=$rc
    # "ERROR SUMMARY: 0 errors" / "RACECHECK SUMMARY: 0 hazards displayed ..."
    found=$(grep -oE '(ERROR|RACECHECK) SUMMARY: [0-9]+ [a-z]+' "$STEP_OUT" | head -n1 |
      sed -E 's/.*SUMMARY: //')
    counts="${counts:+$counts, }$(basename "$bin") ${found:-no summary}"
  done
  ms=$((($(date +%s%N) - t) / 1000000))
  if ((ran == 0)); then
    record "$tool" SKIP "$ms" "no tests listed in the GPU test binaries"
  else
    record "$tool" "$(result_of "$worst")" "$ms" "$ran tests in ${#GPU_TESTS[@]} binaries: $counts"
  fi
  counts=""
done

# ---------------------------------------------------------- 5. benchmarks --
if [[ -x "$BENCH_BIN" ]]; then
  RESERVE_S=0
  run_step bench_gpu "$BENCH_LOG" 170 \
    env LINALIGN_BENCH_MIN_TIME="${LINALIGN_BENCH_MIN_TIME:-0.05}" "$BENCH_BIN" \
    "--benchmark_out=$BENCH_JSON" --benchmark_out_format=json --benchmark_counters_tabular=true
  rc=$STEP_RC
  nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv \
    >>"$BENCH_LOG" 2>&1
  errors=$(grep -c 'ERROR OCCURRED' "$BENCH_LOG" | tr -d ' ')
  note="$errors rows skipped with an error; min time ${LINALIGN_BENCH_MIN_TIME:-0.05}s per row"
  skipped=$(grep -m1 '^linalign_bench_gpu: \(skipped\|FAILED\)' "$BENCH_LOG")
  [[ -n "$skipped" ]] && note=$skipped
  ((rc == 0 && errors > 0)) && rc=1
  record bench_gpu "$(result_of "$rc")" "$STEP_MS" "$note"
else
  record bench_gpu SKIP 0 "linalign_bench_gpu not built ($CONFIG_NOTE)"
fi

# ------------------------------------------- 5a. the host API's batcher --
# Batcher throughput against direct calls and a lone step's latency on the
# CUDA backend (bench/batcher_bench.cpp; predictions in bench/NOTES.md, "Host
# API"), into the same bench.log; skipped when the deadline is near.
BATCHER_BIN="$BUILD/bench/linalign_bench_batcher"
if [[ -x "$BATCHER_BIN" ]] && (($(elapsed_s) + 60 < DEADLINE_S)); then
  run_step bench_batcher "$BENCH_LOG" 40 env LINALIGN_BENCH_BACKEND=cuda "$BATCHER_BIN" \
    --benchmark_min_time=0.05 --benchmark_counters_tabular=true
  rc=$STEP_RC
  note=$(grep -E '^batcher/B:64/V:128256/submitters:64' "$STEP_OUT" | grep -oE 'vs_direct=[0-9.]+|[0-9.]+ *$' | head -n1)
  record bench_batcher "$(result_of "$rc")" "$STEP_MS" "batcher vs direct (CUDA) in bench.log ${note}"
else
  record bench_batcher SKIP 0 "linalign_bench_batcher not built, or no time left"
fi

# ------------------------------------------------ 5b. Nsight Compute --
# Per-kernel time, DRAM bytes and instructions for the headline rows (issue
# 9): align fp32 B=64, top-p fp32 B=64, top-p bf16 B=1, at V=128256, into
# $OUT/ncu.log (ncu's CSV rows among the benchmark's own lines); skipped
# when ncu is missing or the deadline is near.
NCU_CSV="$OUT/ncu.log"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null || true)
if [[ -x "$BENCH_BIN" && -n "$NCU" ]] && (($(elapsed_s) + 150 < DEADLINE_S)); then
  run_step ncu "$NCU_CSV" 140 \
    env LINALIGN_BENCH_MIN_TIME=0.001 "$NCU" --clock-control none --cache-control none --csv \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,smsp__inst_executed.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,launch__block_size,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active \
    -k 'regex:(StatsKernel|PlanKernel|MomentsKernel|FinishKernel|AlignKernel|SelectPassKernel|SampleKernel|ScoreKernel)' \
    --launch-count 40 "$BENCH_BIN" \
    '--benchmark_filter=^(align_linalign/fp32/B:64/V:128256|sample_topp_linalign/fp32/B:64/V:128256|sample_topp_t05_linalign/fp32/B:64/V:128256|sample_topp_linalign/bf16/B:1/V:128256)$'
  record ncu "$(result_of "$STEP_RC")" "$STEP_MS" "$(grep -c '"gpu__time_duration.sum"' "$NCU_CSV" | tr -d ' ') kernel launches profiled, ncu.log"
else
  record ncu SKIP 0 "ncu not found, no benchmark binary, or too close to the deadline"
fi

# ---------------------------------------------------- 6. PyTorch reference --
TORCH_RAN=0
if command -v python3 >/dev/null 2>&1 && python3 -c 'import torch' >/dev/null 2>&1; then
  left=$((DEADLINE_S - $(elapsed_s) - 15))
  run_step torch "$TORCH_LOG" 200 python3 bench/torch_reference.py --budget-s "$((left > 10 ? left - 10 : 1))"
  rc=$STEP_RC
  TORCH_RAN=1
  record torch "$(result_of "$rc")" "$STEP_MS" "$(grep -E 'rows skipped|done in' "$TORCH_LOG" | paste -sd';' -)"
else
  record torch SKIP 0 "python3 with torch not found"
fi

# ------------------------------------------------------ benchmark headline --
if [[ -s "$BENCH_JSON" ]] && command -v python3 >/dev/null 2>&1; then
  python3 - "$BENCH_JSON" >>"$SUMMARY" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ctx = d.get("context", {})
print(f"\nbenchmarks on {ctx.get('gpu', '?')}: peak copy {float(ctx.get('peak_copy_GBps', 0)):.0f} GB/s")
rows = {}
for b in d.get("benchmarks", []):
    parts = b["name"].split("/")
    if len(parts) < 4 or b.get("error_occurred"):
        continue
    kind, dtype = parts[0], parts[1]
    B = int(parts[2].split(":")[1]); V = int(parts[3].split(":")[1])
    rows[(kind, dtype, B, V)] = b
errors = [b["name"] + ": " + b.get("error_message", "") for b in d.get("benchmarks", []) if b.get("error_occurred")]
print("targets: align >= 0.90 of copy at B >= 64; top-p sample >= 0.77 (1/1.3) of copy; B=1 graph step < 8 us")
print(f"{'dtype':5s} {'B':>4s} {'V':>7s} | {'align us':>9s} {'GB/s':>7s} {'copy':>5s} {'xunf':>6s} | "
      f"{'topp us':>8s} {'copy':>5s} {'T0.5 us':>8s} | {'greedy':>7s} {'score':>7s} | checks")
bad = []
for (kind, dtype, B, V), b in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][3], kv[0][2])):
    if kind != "align_linalign":
        continue
    def get(k, key, default=float("nan")):
        r = rows.get((k, dtype, B, V))
        return r.get(key, default) if r else default
    a_frac = b.get("copy_frac", float("nan"))
    t_frac = get("sample_topp_linalign", "copy_frac")
    flags = []
    if B >= 64 and not a_frac >= 0.90: flags.append("align<0.90")
    if not t_frac >= 1 / 1.3: flags.append("topp<0.77")
    chk = []
    if b.get("chk_failed", 0): chk.append("align check failed")
    if b.get("chk_maxdiff_unfused", 0) > 1e-3: chk.append(f"dl*={b['chk_maxdiff_unfused']:.2g}")
    if b.get("chk_nonfinite", 0): chk.append(f"nonfinite={b['chk_nonfinite']:.0f}")
    if b.get("chk_bad_rows", 0): chk.append(f"bad_rows={b['chk_bad_rows']:.0f}")
    if max(b.get("chk_mu_diff", 0), b.get("chk_sigma_diff", 0)) > 1e-3: chk.append("mu/sigma")
    if get("sample_greedy_linalign", "chk_greedy_mismatch", 0): chk.append("greedy!=argmax")
    for k in ("sample_topp_linalign", "sample_topp_t05_linalign", "sample_greedy_linalign"):
        if get(k, "chk_bad_tokens", 0) or get(k, "chk_bad_logprob", 0) or get(k, "chk_failed", 0):
            chk.append(k.split("_")[1] + " tokens")
    if get("score_linalign", "chk_failed", 0) or get("score_linalign", "chk_score_diff", 0) > 1e-3:
        chk.append("score")
    bad += chk
    print(f"{dtype:5s} {B:4d} {V:7d} | {b.get('us_call', float('nan')):9.1f} {b.get('GBps', float('nan')):7.0f} "
          f"{a_frac:5.2f} {b.get('speedup', float('nan')):6.1f} | {get('sample_topp_linalign', 'us_call'):8.1f} "
          f"{t_frac:5.2f} {get('sample_topp_t05_linalign', 'us_call'):8.1f} | "
          f"{get('sample_greedy_linalign', 'us_call'):7.1f} {get('score_linalign', 'us_call'):7.1f} | "
          f"{' '.join(flags + chk) or 'ok'}")
for (kind, dtype, B, V), b in sorted(rows.items()):
    if kind in ("step_graph", "step_stream"):
        us = b.get("us_call", float("nan"))
        flag = "" if kind != "step_graph" else (" ok" if us < 8 else " > 8 us target")
        print(f"{kind:11s} {dtype} B=1 V={V:<6d} {us:7.2f} us/step{flag}")
print(f"cross-checks: {'all ok' if not bad else str(len(bad)) + ' problems (see rows)'}")
for e in errors[:10]:
    print("error:", e)
PY
fi

# ------------------------------------------- the PyTorch table, repeated --
# torch.log is its own file; its table is copied here too, so it comes back
# with the summary even if the caller's own files crowd the 8 the device tool
# returns.
if ((TORCH_RAN)) && [[ -s "$TORCH_LOG" ]]; then
  {
    echo
    echo "PyTorch reference (bench/torch_reference.py; whole output in torch.log):"
    awk '/^torch_reference: torch / { print; next }
         /^op +mode/ { table = 1 }
         table && !/^=== / { print }' "$TORCH_LOG"
  } >>"$SUMMARY"
fi

{
  echo
  for n in ${NOTES[@]+"${NOTES[@]}"}; do echo "note: $n"; done
  echo "total $(elapsed_s)s; logs in $OUT"
} >>"$SUMMARY"
echo
cat "$SUMMARY"
exit $FAILED
