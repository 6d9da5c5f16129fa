#!/usr/bin/env bash
# Byte-for-byte guard of refactors: runs a fixed set of CLI calls (CPU backend,
# fixed seeds: align under every rule x update for f32 and bf16 inputs, four
# samplings, score with ragged sequences) and writes every output into OUTDIR.
# Run it with the tool built before and after a change and `diff -r` the two
# directories: a refactor that promises bit-identical results must show none.
# usage: [BACKEND=cuda] scripts/cli_golden.sh path/to/linalign OUTDIR (cuda: the
# emulated CLI, tests/emu, compares the CUDA kernels' paths the same way)
set -e
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); D=$2
rm -rf "$D"
mkdir -p "$D"
cd "$D"
"$BIN" gen --rows 7 --vocab 5003 --seed 11 --mask-frac 0.01 --nan-row 2 --out-base z.npy --out-principle y.npy --out-targets t.npy --out-offsets o.npy --sequences 3 >/dev/null
"$BIN" gen --rows 5 --vocab 3001 --seed 12 --dtype bf16 --out-base zb.npy --out-principle yb.npy >/dev/null
for rule in fixed trust_region exact_kl; do for up in tilt linear; do
  "$BIN" align --base z.npy --principle y.npy --rule $rule --update $up --threads 2 --backend "${BACKEND:-cpu}" --out a_${rule}_$up.npy > d_${rule}_$up.txt
  "$BIN" align --base zb.npy --principle yb.npy --bf16 --rule $rule --update $up --threads 2 --backend "${BACKEND:-cpu}" --out ab_${rule}_$up.npy > db_${rule}_$up.txt
done; done
for args in "--greedy" "--top-p 0.8 --seed 7" "--top-k 20 --min-p 0.05 --seed 3" "--top-p 0.5 --temperature 1.5 --seed 9"; do
  n=$(echo "$args" | tr -c 'a-z0-9' '_')
  "$BIN" sample --base z.npy --principle y.npy $args --threads 2 --backend "${BACKEND:-cpu}" --out s_$n.npy > ds_$n.txt
done
"$BIN" score --base z.npy --principle y.npy --targets t.npy --offsets o.npy --threads 2 --backend "${BACKEND:-cpu}" --out sc.npy --out-base scb.npy --out-principle scp.npy --out-seq seq.npy > dsc.txt
ls | wc -l
