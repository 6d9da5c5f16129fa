#!/usr/bin/env bash
# Kill-and-resume test of `linalign score-job` (linalign/scoring_job.hpp):
# a job over a manifest of .npy shards is killed with SIGKILL at random
# moments, rerun until it finishes, and its output must be byte-identical to
# an uninterrupted run's, every sequence exactly once. Also: a checkpoint of
# other parameters is refused, the progress line appears only on a terminal
# (here: never, stderr is a file), and bad manifests fail with exit 1.
#
# usage: score_job_test.sh path/to/linalign [path/to/linalign_cli_emulated]
#   The second tool (CUDA backend on the SIMT emulator) runs a smaller
#   kill-and-resume on --backend cuda.
set -u
BIN=${1:?usage: score_job_test.sh path/to/linalign [emulated]}
EMU=${2:-}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
case "$EMU" in /* | "") ;; *) EMU="$PWD/$EMU" ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/linalign_job.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
FAILS=0
fail() {
  echo "FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}

# shards NAME COUNT ROWS VOCAB: COUNT shards of ROWS rows, 3 sequences each.
shards() {
  local name=$1 count=$2 rows=$3 vocab=$4
  : >"$name.txt"
  for i in $(seq 1 "$count"); do
    "$BIN" gen --rows "$rows" --vocab "$vocab" --seed "$i" --out-base "${name}_z$i.npy" \
      --out-principle "${name}_y$i.npy" --out-targets "${name}_t$i.npy" \
      --out-offsets "${name}_o$i.npy" --sequences 3 || fail "gen shard $i"
    echo "${name}_z$i.npy ${name}_y$i.npy ${name}_t$i.npy ${name}_o$i.npy" >>"$name.txt"
  done
}

# kill_and_resume TOOL MANIFEST REF TRIALS ARGS...: each trial kills a run
# once its checkpoint holds a random number of sequences (1 .. half of them),
# after a further random 0-29 ms (so the kill lands anywhere: inside a batch,
# a write or a checkpoint), reruns it (killing again, at most twice more)
# until it finishes; the output must equal REF, each sequence once.
kill_and_resume() {
  local tool=$1 manifest=$2 ref=$3 trials=$4
  shift 4
  local total interrupted=0
  total=$(grep -vc '^#' "$ref")
  for trial in $(seq 1 "$trials"); do
    rm -f job.tsv job.tsv.ckpt
    local done_ok=0
    for attempt in 1 2 3 4; do
      "$tool" score-job --manifest "$manifest" --out job.tsv "$@" 2>job.err &
      local pid=$!
      if [ "$attempt" -lt 4 ]; then
        # checkpoints come per chunk (a shard): a target in the first half
        # is passed while shards remain
        local target=$(((RANDOM % (total / 2)) + 1)) n=0
        while kill -0 "$pid" 2>/dev/null; do
          n=$(sed -n 's/^sequences //p' job.tsv.ckpt 2>/dev/null)
          [ "${n:-0}" -ge "$target" ] && break
          sleep 0.01
        done
        sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"
        if kill -9 "$pid" 2>/dev/null; then interrupted=$((interrupted + 1)); fi
      fi
      wait "$pid" 2>/dev/null
      local rc=$?
      if [ "$rc" -eq 0 ]; then
        done_ok=1
        break
      fi
      [ "$rc" -eq 137 ] || { fail "trial $trial attempt $attempt: exit $rc: $(cat job.err)"; break; }
    done
    [ "$done_ok" = 1 ] || { fail "trial $trial never finished"; continue; }
    if ! cmp -s job.tsv "$ref"; then
      fail "trial $trial: the resumed output differs from the uninterrupted one"
      diff "$ref" job.tsv | head -5 >&2
    fi
    if [ -n "$(grep -v '^#' job.tsv | cut -f1 | sort | uniq -d)" ]; then
      fail "trial $trial: a sequence was scored twice"
    fi
  done
  echo "kill_and_resume: $trials trials, $interrupted runs killed mid-job"
  [ "$interrupted" -gt 0 ] || fail "no run was killed mid-job"
}

shards cpu 6 300 32000
"$BIN" score-job --manifest cpu.txt --out ref.tsv --threads 1 2>ref.err || fail "uninterrupted run: $(cat ref.err)"
lines=$(grep -vc '^#' ref.tsv)
[ "$lines" -eq 18 ] || fail "expected 18 sequence lines, got $lines"
[ -s ref.err ] && fail "a job writing to a file printed to stderr: $(cat ref.err)"
kill_and_resume "$BIN" cpu.txt ref.tsv 5 --threads 1 --checkpoint-every 1

# Another job's checkpoint is refused.
cp ref.tsv other.tsv
cp ref.tsv.ckpt other.tsv.ckpt
"$BIN" score-job --manifest cpu.txt --out other.tsv --ratio 3 2>fp.err
rc=$?
[ "$rc" -eq 2 ] && grep -q "another job" fp.err || fail "fingerprint mismatch: exit $rc: $(cat fp.err)"

# Bad manifests: exit 1 naming the line.
echo "cpu_z1.npy cpu_y1.npy" >bad.txt
"$BIN" score-job --manifest bad.txt --out bad.tsv 2>bad.err
rc=$?
[ "$rc" -eq 1 ] && grep -q "line 1" bad.err || fail "short manifest line: exit $rc: $(cat bad.err)"
"$BIN" gen --rows 5 --vocab 7 --out-base s_z.npy --out-principle s_y.npy --out-offsets s_o.npy
echo "cpu_z1.npy cpu_y1.npy cpu_t1.npy s_o.npy" >bad2.txt
"$BIN" score-job --manifest bad2.txt --out bad2.tsv 2>bad2.err
rc=$?
[ "$rc" -eq 1 ] && grep -q "offsets must be" bad2.err || fail "mismatched offsets: exit $rc: $(cat bad2.err)"

if [ -n "$EMU" ]; then
  shards emu 3 40 3000
  "$EMU" score-job --manifest emu.txt --out emu_ref.tsv --backend cuda 2>emu.err ||
    fail "emulated CUDA run: $(cat emu.err)"
  kill_and_resume "$EMU" emu.txt emu_ref.tsv 2 --backend cuda --checkpoint-every 1 --max-rows 4
fi

if [ "$FAILS" -ne 0 ]; then
  echo "score_job_test: $FAILS failures" >&2
  exit 1
fi
echo "score_job_test: passed"
