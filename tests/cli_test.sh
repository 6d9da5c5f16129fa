#!/usr/bin/env bash
# End-to-end test of the linalign command-line tool: gen -> align -> sample ->
# score on generated inputs, output shapes and dtypes, consistency between the
# three calls, determinism of seeded sampling, row-level errors, and clean
# failures (nonzero exit < 128, a message naming the problem) for malformed
# files, bad flags and bad parameters. Needs bash, awk and coreutils only.
#
# usage: cli_test.sh path/to/linalign [path/to/linalign_with_cuda]
#   The optional second tool runs the --backend cuda cases (bad score input
#   fails exactly as on the CPU backend; l* and scores agree with it). CI
#   passes linalign_cli_emulated, whose CUDA backend runs the kernels on the
#   SIMT emulator (tests/emu); without it the first tool's --backend cuda is
#   used where it works (a CUDA build on a machine with a device).
# env:   LINALIGN_CLI_BACKEND=cpu|cuda|auto (default cpu)
set -u
BIN=${1:?usage: cli_test.sh path/to/linalign [path/to/linalign_with_cuda]}
CUDA_BIN=${2:-}
BACKEND=${LINALIGN_CLI_BACKEND:-cpu}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
case "$CUDA_BIN" in /* | "") ;; *) CUDA_BIN="$PWD/$CUDA_BIN" ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/linalign_cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

FAILS=0
CHECKS=0
fail() {
  echo "FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}
pass() { CHECKS=$((CHECKS + 1)); }

# run NAME WANT ARGS... : runs the tool with ARGS; stdout/stderr in NAME.out /
# NAME.err. WANT is "ok" (exit 0) or the expected nonzero exit code. Never
# accepts a crash (exit >= 128: a signal).
# The tool run is $RUN_BIN when set (a second build, see usage), else $BIN.
run() {
  local name=$1 want=$2
  shift 2
  "${RUN_BIN:-$BIN}" "$@" >"$name.out" 2>"$name.err"
  local rc=$?
  if [ "$rc" -ge 128 ]; then
    fail "$name: crashed with exit $rc: linalign $*"
    sed 's/^/    /' "$name.err" >&2
    return 1
  fi
  local expect=$want
  [ "$want" = ok ] && expect=0
  if [ "$rc" -ne "$expect" ]; then
    fail "$name: exit $rc, expected $expect: linalign $*"
    sed 's/^/    /' "$name.err" >&2
    return 1
  fi
  pass
  return 0
}
ok() {
  local name=$1
  shift
  run "$name" ok "$@"
}
# bad NAME RC PATTERN ARGS... : expects exit RC and PATTERN (grep -E, case
# insensitive) in the error message.
bad() {
  local name=$1 rc=$2 pattern=$3
  shift 3
  run "$name" "$rc" "$@" || return 1
  if ! grep -qiE -- "$pattern" "$name.err"; then
    fail "$name: stderr does not match /$pattern/: linalign $*"
    sed 's/^/    /' "$name.err" >&2
    return 1
  fi
  if [ -s "$name.out" ]; then
    fail "$name: a failed command wrote to stdout"
    return 1
  fi
  pass
}
# has FILE DTYPE SHAPE : `linalign info` reports that dtype and shape.
has() {
  local line
  line=$("$BIN" info "$1" 2>&1)
  case "$line" in
    *"dtype=$2 "*"shape=$3 "*) pass ;;
    *) fail "$1: expected dtype=$2 shape=$3, info says: $line" ;;
  esac
}
# values FILE : the elements, one per line.
values() { "$BIN" info --values "$@" | tail -n +2; }
same() {
  if command -v cmp >/dev/null 2>&1; then
    cmp -s "$1" "$2"
  else
    [ "$(od -An -v -tx1 "$1")" = "$(od -An -v -tx1 "$2")" ]
  fi
}
expect_same() { if same "$1" "$2"; then pass; else fail "$3: $1 and $2 differ"; fi; }
expect_differ() { if same "$1" "$2"; then fail "$3: $1 and $2 are identical"; else pass; fi; }
# close A B TOL WHAT : two value lists agree elementwise within TOL (nan == nan).
close() {
  if paste -d' ' "$1" "$2" | awk -v tol="$3" '
      { if ($1 == "nan" || $2 == "nan") { if ($1 != $2) bad++; next }
        d = $1 - $2; if (d < 0) d = -d; if (d > tol) bad++ }
      END { exit bad ? 1 : 0 }'; then
    pass
  else
    fail "$4: values differ by more than $3"
    paste -d' ' "$1" "$2" | head -5 >&2
  fi
}
# contains FILE PATTERN WHAT : grep -E PATTERN in FILE.
contains() {
  if grep -qE -- "$2" "$1"; then pass; else fail "$3: no /$2/ in $1"; fi
}
line_count() { wc -l <"$1" | tr -d ' '; }
expect_eq() { if [ "$1" = "$2" ]; then pass; else fail "$3: got '$1', expected '$2'"; fi; }

# A .npy file by hand: mkhdr PATH HEADER_TEXT [MAJOR] writes magic, version,
# header length and the header padded as NumPy pads it (no data).
mkhdr() {
  local path=$1 hdr=$2 major=${3:-1}
  local total=$((10 + ${#hdr} + 1))
  local pad=$(((64 - total % 64) % 64))
  hdr="$hdr$(printf '%*s' "$pad" '')"
  local len=$((${#hdr} + 1))
  {
    printf '\x93NUMPY'
    printf "\\x$(printf %02x "$major")\\x00"
    printf "\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))"
    printf '%s\n' "$hdr"
  } >"$path"
}
# mknpy PATH DESCR FORTRAN SHAPE DATA_BYTES [MAJOR]: header + DATA_BYTES zeros.
mknpy() {
  mkhdr "$1" "{'descr': '$2', 'fortran_order': $3, 'shape': $4, }" "${6:-1}"
  head -c "$5" /dev/zero >>"$1"
}
# Little-endian int32 bytes as printf escapes.
i32le() {
  local v=$1
  [ "$v" -lt 0 ] && v=$((v + 4294967296))
  printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) \
    $(((v >> 24) & 255))
}
i64le() {
  local v=$1
  if [ "$v" -lt 0 ]; then
    printf '%s\\xff\\xff\\xff\\xff' "$(i32le "$v")"
  else
    printf '%s\\x00\\x00\\x00\\x00' "$(i32le "$v")"
  fi
}
# int32 [n] file with the given values: mkint32 PATH V0 V1 ...
mkint32() {
  local path=$1
  shift
  mknpy "$path" '<i4' False "($#,)" 0
  local v
  for v in "$@"; do printf "$(i32le "$v")"; done >>"$path"
}
mkint64() {
  local path=$1
  shift
  mknpy "$path" '<i8' False "($#,)" 0
  local v
  for v in "$@"; do printf "$(i64le "$v")"; done >>"$path"
}

B=6
V=37
RT=(--backend "$BACKEND")

# ---------------------------------------------------------------- help / usage
ok help --help && contains help.out "usage: linalign <command>" "--help"
for c in align sample score demo gen info; do
  ok "help_$c" "$c" --help && contains "help_$c.out" "usage: linalign $c" "$c --help"
done
ok help_cmd help sample && contains help_cmd.out "--top-p" "help sample"
# Every command's line shows its whole name before its summary (it once read "score-joscore").
contains help.out "^  score-job +score many sequences" "--help lists score-job"
contains help.out "^  story +a real model" "--help lists story"
bad noargs 1 "usage"
bad unknown_cmd 1 "unknown command 'frobnicate'" frobnicate

# ------------------------------------------------------------------- gen / info
ok gen gen --rows $B --vocab $V --seed 11 --out-base z.npy --out-principle y.npy \
  --out-targets t.npy --out-offsets o.npy --sequences 3
has z.npy '<f4' "[$B,$V]"
has y.npy '<f4' "[$B,$V]"
has t.npy '<i4' "[$B]"
has o.npy '<i8' "[4]"
ok gen_again gen --rows $B --vocab $V --seed 11 --out-base z2.npy --out-principle y2.npy
expect_same z.npy z2.npy "gen is deterministic"
ok gen_other gen --rows $B --vocab $V --seed 12 --out-base z3.npy --out-principle y3.npy
expect_differ z.npy z3.npy "gen depends on the seed"
values o.npy >o.txt
expect_eq "$(head -1 o.txt) $(tail -1 o.txt)" "0 $B" "offsets span the rows"

# ------------------------------------------------------------------------ align
ok align align --base z.npy --principle y.npy --out l.npy "${RT[@]}"
has l.npy '<f4' "[$B,$V]"
expect_eq "$(line_count align.out)" "$B" "align: one JSON line per row"
expect_eq "$(grep -c '"status":\[\]' align.out)" "$B" "align: every row valid"
grep -q '^{"row":0,"eta":3,"mu":' align.out && pass || fail "align: JSON line format: $(head -1 align.out)"
for k in sigma kl_base kl_principle entropy; do
  grep -q "\"$k\":" align.out && pass || fail "align: JSON lacks $k"
done
grep -q "\"support\":$V," align.out && pass || fail "align: support != V"
# Every row of l* is a normalised log-distribution: logsumexp = 0.
values l.npy >l.txt
if awk -v V=$V '{ x[NR % V] = $1 }
    NR % V == 0 { m = -1e30; for (i in x) if (x[i] > m) m = x[i]; s = 0;
                  for (i in x) s += exp(x[i] - m); lse = m + log(s);
                  if (lse > 1e-4 || lse < -1e-4) bad++ }
    END { exit bad ? 1 : 0 }' l.txt; then pass; else fail "align: rows of l* do not normalise"; fi
# --out-bf16: the same l*, as bfloat16 bits (within bf16 rounding of float32)
ok align_bf16 align --base z.npy --principle y.npy --out-bf16 --no-diagnostics --out lb.npy "${RT[@]}"
has lb.npy '<u2' "[$B,$V]"
values --bf16 lb.npy >lb.txt
close lb.txt l.txt 0.08 "align --out-bf16 == float32 l* within bf16 rounding"
ok align_ratio0 align --base z.npy --principle y.npy --ratio -1 --no-diagnostics --out l0.npy "${RT[@]}"
expect_eq "$(line_count align_ratio0.out)" 0 "--no-diagnostics: no stdout"
ok align_diagfile align --base z.npy --principle y.npy --diagnostics d.jsonl "${RT[@]}"
expect_eq "$(line_count align_diagfile.out)" 0 "--diagnostics FILE: no stdout"
expect_eq "$(line_count d.jsonl)" "$B" "--diagnostics FILE: one line per row"
for rule in "--rule trust_region --epsilon 0.05" "--rule exact_kl --epsilon 0.05 --eta-max 4" \
  "--update linear --ratio 0.5" "--temperature 0.7"; do
  # shellcheck disable=SC2086
  ok align_variant align --base z.npy --principle y.npy --out lv.npy $rule "${RT[@]}"
  expect_eq "$(grep -c '"status":\[\]' align_variant.out)" "$B" "align $rule: rows valid"
done
ok align_expkl align --base z.npy --principle y.npy --rule exact-kl --epsilon 0.05 "${RT[@]}"
# exact_kl: KL(pi*|pi) = eps (to 1e-4 relative) unless eta hit eta_max.
if awk -F'[:,]' '{ for (i = 1; i < NF; i++) { if ($i == "\"eta\"") e = $(i+1); if ($i == "\"kl_base\"") k = $(i+1) }
    if (e < 7.999 && (k - 0.05 > 1e-5 || 0.05 - k > 1e-5)) bad++ } END { exit bad ? 1 : 0 }' align_expkl.out; then
  pass
else
  fail "exact_kl: kl_base != epsilon"
fi

# ----------------------------------------------------------------------- sample
ok sample1 sample --base z.npy --principle y.npy --seed 42 --out s1.npy --out-logprob p1.npy "${RT[@]}"
ok sample2 sample --base z.npy --principle y.npy --seed 42 --out s2.npy --out-logprob p2.npy "${RT[@]}"
has s1.npy '<i4' "[$B]"
has p1.npy '<f4' "[$B]"
expect_same s1.npy s2.npy "sample: same seed, same tokens"
expect_same p1.npy p2.npy "sample: same seed, same log-probs"
expect_same sample1.out sample2.out "sample: same seed, same diagnostics"
values s1.npy >s1.txt
if awk -v V=$V '$1 < 0 || $1 >= V { bad++ } END { exit bad ? 1 : 0 }' s1.txt; then pass; else fail "sample: token outside [0,V)"; fi
# The chosen token's log-prob is l*[token] from align.
awk -v V=$V 'NR == FNR { l[NR - 1] = $1; next } { print l[(FNR - 1) * V + $1] }' l.txt s1.txt >lt.txt
values p1.npy >p1.txt
close lt.txt p1.txt 1e-5 "sample log-prob == align l*[token]"
# Seeds and offsets matter on a larger batch.
ok gen_big gen --rows 64 --vocab 1000 --seed 5 --scale 1 --out-base zb.npy --out-principle yb.npy
ok sample_a sample --base zb.npy --principle yb.npy --seed 1 --out sa.npy "${RT[@]}"
ok sample_b sample --base zb.npy --principle yb.npy --seed 2 --out sb.npy "${RT[@]}"
ok sample_c sample --base zb.npy --principle yb.npy --seed 1 --offset 1 --out sc.npy "${RT[@]}"
ok sample_h sample --base zb.npy --principle yb.npy --seed 0x1 --out sh.npy "${RT[@]}"
expect_differ sa.npy sb.npy "sample: different seeds"
expect_differ sa.npy sc.npy "sample: different offsets"
expect_same sa.npy sh.npy "sample: --seed 1 == --seed 0x1"
# Greedy ignores the seed and is the argmax of l*; T = 0 is greedy.
ok greedy1 sample --base z.npy --principle y.npy --greedy --seed 1 --out g1.npy "${RT[@]}"
ok greedy2 sample --base z.npy --principle y.npy --greedy --seed 2 --out g2.npy "${RT[@]}"
ok temp0 sample --base z.npy --principle y.npy --temperature 0 --out g0.npy "${RT[@]}"
expect_same g1.npy g2.npy "greedy: independent of the seed"
expect_same g1.npy g0.npy "temperature 0 == greedy"
awk -v V=$V '{ i = (NR - 1) % V; if (i == 0 || $1 > m) { m = $1; a = i } if (i == V - 1) print a }' l.txt >argmax.txt
values g1.npy >g1.txt
expect_same argmax.txt g1.txt "greedy == argmax of align l*"
ok sample_masks sample --base z.npy --principle y.npy --top-p 0.8 --top-k 5 --min-p 0.01 \
  --nucleus-source aligned --min-tokens-to-keep 2 --seed 3 --out sm.npy "${RT[@]}"
ok sample_topk1 sample --base z.npy --principle y.npy --top-k 1 --nucleus-source aligned \
  --seed 9 --out sk.npy "${RT[@]}"
expect_same sk.npy g1.npy "top-k 1 on the aligned distribution == greedy"

# ------------------------------------------------------------------------ score
ok score score --base z.npy --principle y.npy --targets t.npy --offsets o.npy --out ra.npy \
  --out-base rb.npy --out-principle rp.npy --out-seq q.npy --out-seq-base qb.npy \
  --out-seq-principle qp.npy "${RT[@]}"
for f in ra rb rp; do has $f.npy '<f4' "[$B]"; done
for f in q qb qp; do has $f.npy '<f4' "[3]"; done
expect_eq "$(grep -c '"row":' score.out) $(grep -c '"sequence":' score.out)" "$B 3" "score: JSON lines"
# Aligned scores are l*[target]; sequence sums are the sums of the rows.
values t.npy >t.txt
awk -v V=$V 'NR == FNR { l[NR - 1] = $1; next } { print l[(FNR - 1) * V + $1] }' l.txt t.txt >lt2.txt
values ra.npy >ra.txt
close lt2.txt ra.txt 1e-5 "score == align l*[target]"
awk 'NR == FNR { s[NR - 1] = $1; next } FNR > 1 { x = 0; for (r = prev; r < $1; r++) x += s[r]; printf "%.9g\n", x } { prev = $1 }' \
  ra.txt o.txt >qsum.txt
values q.npy >q.txt
close qsum.txt q.txt 1e-4 "sequence sums"
# Scoring the sampled tokens gives the sampled log-probs.
ok score_tok score --base z.npy --principle y.npy --targets s1.npy --out st.npy "${RT[@]}"
values st.npy >st.txt
close st.txt p1.txt 1e-5 "score(sampled token) == sample log-prob"
# ignore_index rows score 0; int64 targets are accepted.
mkint64 ti.npy 0 -100 5 -100 36 1
ok score_ignore score --base z.npy --principle y.npy --targets ti.npy --out si.npy "${RT[@]}"
values si.npy >si.txt
expect_eq "$(sed -n '2p;4p' si.txt | tr '\n' ' ')" "0 0 " "ignored rows score 0"
mkint32 ti7.npy 0 7 5 7 36 1
ok score_ignore7 score --base z.npy --principle y.npy --targets ti7.npy --ignore-index 7 --out si7.npy "${RT[@]}"
values si7.npy >si7.txt
expect_eq "$(sed -n '2p;4p' si7.txt | tr '\n' ' ')" "0 0 " "--ignore-index 7"

# ------------------------------------------------------------------- dtypes
ok gen_f16 gen --rows $B --vocab $V --seed 11 --dtype f16 --out-base z16.npy --out-principle y16.npy
has z16.npy '<f2' "[$B,$V]"
ok align_f16 align --base z16.npy --principle y16.npy --out l16.npy "${RT[@]}"
has l16.npy '<f4' "[$B,$V]"
ok gen_bf16 gen --rows $B --vocab $V --seed 11 --dtype bf16 --out-base zbf.npy --out-principle ybf.npy
has zbf.npy '<u2' "[$B,$V]"
bad bf16_needs_flag 1 "pass --bf16" align --base zbf.npy --principle ybf.npy "${RT[@]}"
ok align_bf16 align --base zbf.npy --principle ybf.npy --bf16 --out lbf.npy "${RT[@]}"
has lbf.npy '<f4' "[$B,$V]"
ok info_bf16 info --bf16 zbf.npy && contains info_bf16.out "bfloat16" "info --bf16"
ok sample_bf16 sample --base zbf.npy --principle ybf.npy --bf16 --seed 4 --out sbf.npy "${RT[@]}"

# ------------------------------------------------------- 1-D inputs, edge sizes
ok gen_flat gen --rows 1 --vocab $V --flat --out-base zf.npy --out-principle yf.npy --out-targets tf.npy
has zf.npy '<f4' "[$V]"
ok align_flat align --base zf.npy --principle yf.npy --out lf.npy "${RT[@]}"
has lf.npy '<f4' "[$V]"
ok sample_flat sample --base zf.npy --principle yf.npy --out sf.npy "${RT[@]}"
has sf.npy '<i4' "[1]"
ok score_flat score --base zf.npy --principle yf.npy --targets tf.npy --out scf.npy "${RT[@]}"
has scf.npy '<f4' "[1]"
ok gen_v1 gen --rows 3 --vocab 1 --out-base z1.npy --out-principle y1.npy
ok sample_v1 sample --base z1.npy --principle y1.npy --out s1v.npy "${RT[@]}"
expect_eq "$(values s1v.npy | tr '\n' ' ')" "0 0 0 " "V = 1: token 0"
ok gen_b0 gen --rows 0 --vocab 5 --out-base z0.npy --out-principle y0.npy
ok align_b0 align --base z0.npy --principle y0.npy --out l0b.npy "${RT[@]}"
has l0b.npy '<f4' "[0,5]"
ok sample_b0 sample --base z0.npy --principle y0.npy --out s0.npy "${RT[@]}"
has s0.npy '<i4' "[0]"
ok gen_odd gen --rows 3 --vocab 50257 --mask-frac 0.3 --out-base zo.npy --out-principle yo.npy
ok sample_odd sample --base zo.npy --principle yo.npy --top-p 0.9 --out so.npy "${RT[@]}"

# ------------------------------------------------------------ row-level errors
ok gen_rowerr gen --rows $B --vocab $V --seed 11 --nan-row 1 --posinf-row 2 --empty-row 3 \
  --out-base zr.npy --out-principle yr.npy
ok align_rowerr align --base zr.npy --principle yr.npy --out lr.npy "${RT[@]}"
sed -n 2p align_rowerr.out | grep -q '"status":\["nan"\]' && pass || fail "row 1 status nan: $(sed -n 2p align_rowerr.out)"
sed -n 3p align_rowerr.out | grep -q '"status":\["pos_inf"\]' && pass || fail "row 2 status pos_inf: $(sed -n 3p align_rowerr.out)"
sed -n 4p align_rowerr.out | grep -q '"empty_support"' && pass || fail "row 3 status empty_support: $(sed -n 4p align_rowerr.out)"
sed -n 2p align_rowerr.out | grep -q '"eta":null' && pass || fail "invalid row: eta null"
values lr.npy | sed -n "$((V + 1)),$((4 * V))p" | sort -u >lr_bad.txt
expect_eq "$(cat lr_bad.txt)" "nan" "invalid rows: l* all NaN"
ok sample_rowerr sample --base zr.npy --principle yr.npy --seed 42 --out sr.npy "${RT[@]}"
values sr.npy >sr.txt
expect_eq "$(sed -n '2,4p' sr.txt | tr '\n' ' ')" "-1 -1 -1 " "invalid rows: token -1"
# Every other row is computed as if it were alone (same seed, same sub-stream).
expect_eq "$(sed -n '1p;5p;6p' sr.txt | tr '\n' ' ')" "$(sed -n '1p;5p;6p' s1.txt | tr '\n' ' ')" \
  "valid rows unaffected by invalid ones"
ok score_rowerr score --base zr.npy --principle yr.npy --targets t.npy --out srr.npy "${RT[@]}"
expect_eq "$(values srr.npy | sed -n '2,4p' | tr '\n' ' ')" "nan nan nan " "invalid rows: score NaN"

# --------------------------------------------------------- malformed input files
mkdir adir
printf 'hello, world\n' >text.npy
head -c 200 z.npy >trunc.npy
mknpy fortran.npy '<f4' True "($B, $V)" $((B * V * 4))
mknpy bigend.npy '>f4' False "($B, $V)" $((B * V * 4))
mknpy f64.npy '<f8' False "($B, $V)" $((B * V * 8))
mknpy rank3.npy '<f4' False "(2, 3, $V)" $((6 * V * 4))
mknpy rank0.npy '<f4' False "()" 4
mknpy badver.npy '<f4' False "($B, $V)" $((B * V * 4)) 9
mknpy trailing.npy '<f4' False "($B, $V)" $((B * V * 4 + 3))
mkhdr garbage.npy '{"descr": garbage}'
mknpy t2d.npy '<i4' False "(2, 3)" 24
mknpy v0.npy '<f4' False "(2, 0)" 0
ok gen_v38 gen --rows $B --vocab 38 --out-base z38.npy --out-principle y38.npy
ok gen_b5 gen --rows 5 --vocab $V --out-base z5.npy --out-principle y5.npy
Y=(--principle y.npy)
bad missing_file 1 "--base: .*nothere.npy: no such file" align --base nothere.npy "${Y[@]}"
bad dir_input 1 "is a directory" align --base adir "${Y[@]}"
bad bad_magic 1 "bad magic" align --base text.npy "${Y[@]}"
: >empty.npy
bad empty_file 1 "bad magic" align --base empty.npy "${Y[@]}"
bad devnull 1 "not a regular file" align --base /dev/null "${Y[@]}"
bad truncated 1 "truncated data" align --base trunc.npy "${Y[@]}"
bad fortran 1 "Fortran" align --base fortran.npy "${Y[@]}"
# Bytes of the file that a message repeats are quoted: an escape sequence, a
# carriage return and invalid UTF-8 in a descr and a key print as \xNN.
LC_ALL=C mknpy ctrl_descr.npy "$(printf '<f4\033[2J\r\xff')" False "($B, $V)" $((B * V * 4))
bad ctrl_descr 1 "unsupported dtype '<f4\\\\x1b\\[2J\\\\x0d\\\\xff'" align --base ctrl_descr.npy "${Y[@]}"
mkhdr ctrl_key.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '$(printf '\x7f\x0b')': 1}"
bad ctrl_key 1 "unexpected key '\\\\x7f\\\\x0b'" align --base ctrl_key.npy "${Y[@]}"
for f in ctrl_descr ctrl_key; do
  if LC_ALL=C grep -q '[^[:print:]]' "$f.err"; then fail "$f: the message holds raw control bytes"; else pass; fi
done
bad big_endian 1 "big-endian" align --base bigend.npy "${Y[@]}"
bad float64 1 "unsupported dtype '<f8'" align --base f64.npy "${Y[@]}"
bad rank3 1 "wrong rank" align --base rank3.npy "${Y[@]}"
bad rank0 1 "wrong rank" align --base rank0.npy "${Y[@]}"
bad version 1 "version 9.0" align --base badver.npy "${Y[@]}"
bad trailing 1 "unexpected bytes" align --base trailing.npy "${Y[@]}"
bad garbage 1 "malformed header" align --base garbage.npy "${Y[@]}"
bad vocab_mismatch 1 "mismatched shapes: --base is \[$B,38\] but --principle is \[$B,$V\]" align --base z38.npy "${Y[@]}"
bad rows_mismatch 1 "mismatched shapes" sample --base z5.npy "${Y[@]}"
bad dtype_mismatch 1 "mismatched dtypes" align --base z16.npy "${Y[@]}"
bad int_logits 1 "not supported" align --base t.npy --principle t.npy
bad info_bad 1 "bad magic" info text.npy
bad info_missing 1 "no file given" info
# Targets and offsets.
S=(score --base z.npy --principle y.npy "${RT[@]}")
bad targets_float 1 "--targets.*float32.*not supported" "${S[@]}" --targets ra.npy
mkint32 t5.npy 0 1 2 3 4
bad targets_len5 1 "--targets has 5 entries but the logits have $B rows" "${S[@]}" --targets t5.npy
bad targets_rank 1 "wrong rank" "${S[@]}" --targets t2d.npy
mkint32 trange.npy 0 1 2 99 4 5
bad targets_range 2 "invalid argument" "${S[@]}" --targets trange.npy
mkint32 tneg.npy 0 1 -5 3 4 5
bad targets_negative 2 "invalid argument" "${S[@]}" --targets tneg.npy
mkint64 tbig.npy 0 1 2 3 4 5
ok targets_i64 "${S[@]}" --targets tbig.npy
mkint64 odec.npy 0 4 2 6
bad offsets_decreasing 2 "invalid argument" "${S[@]}" --targets t.npy --offsets odec.npy --out-seq x.npy
mkint64 obig.npy 0 3 9
bad offsets_beyond 2 "invalid argument" "${S[@]}" --targets t.npy --offsets obig.npy
mkint64 onone.npy 0
ok offsets_zero_seq "${S[@]}" --targets t.npy --offsets onone.npy --out-seq q0.npy
has q0.npy '<f4' "[0]"
bad outseq_needs_offsets 1 "--out-seq requires --offsets" "${S[@]}" --targets t.npy --out-seq x.npy
bad targets_missing 1 "missing required flag --targets" "${S[@]}"

# ---------------------------------------------------------------- bad flags
A=(align --base z.npy --principle y.npy "${RT[@]}")
bad unknown_flag 1 "unknown flag --frobnicate" "${A[@]}" --frobnicate 1
bad other_cmd_flag 1 "--top-p does not apply to 'align'" "${A[@]}" --top-p 0.5
bad bad_float 1 "--temperature: '1.5x': not a number" "${A[@]}" --temperature 1.5x
bad empty_float 1 "--ratio: '': empty value" "${A[@]}" --ratio ""
bad huge_float 1 "--temperature: '1e999': out of range" "${A[@]}" --temperature 1e999
bad f32_range 1 "--epsilon: '1e39': out of range for float32" "${A[@]}" --epsilon 1e39
bad int_range 1 "--top-k: '3000000000': out of range" sample --base z.npy --principle y.npy --top-k 3000000000
bad int_float 1 "--top-k: '2.5': not an integer" sample --base z.npy --principle y.npy --top-k 2.5
bad seed_negative 1 "--seed: '-1': must not be negative" sample --base z.npy --principle y.npy --seed -1
bad seed_range 1 "--seed: .*out of range" sample --base z.npy --principle y.npy --seed 18446744073709551616
bad threads_range 1 "--threads" "${A[@]}" --threads -2
bad bad_rule 1 "--rule: 'foo' is not one of fixed, trust_region, exact_kl" "${A[@]}" --rule foo
bad bad_update 1 "--update" "${A[@]}" --update quadratic
bad bad_backend 1 "--backend" "${A[@]}" --backend tpu
bad missing_base 1 "missing required flag --base" align --principle y.npy
bad twice 1 "--ratio is given twice" "${A[@]}" --ratio 1 --ratio 2
bad positional 1 "unexpected argument 'extra'" "${A[@]}" extra
bad no_value 1 "--ratio: 1 required R missing" "${A[@]}" --ratio
bad bool_value 1 "greedy was given a disallowed flag override" sample --base z.npy --principle y.npy --greedy=yes
bad single_dash 1 "unknown option '-x'" "${A[@]}" -x
bad diag_both 1 "--(no-)?diagnostics excludes --(no-)?diagnostics" "${A[@]}" --diagnostics d2.jsonl --no-diagnostics
ok eq_syntax "${A[@]}" --ratio=3 --temperature=0.5 --no-diagnostics
bad out_unwritable 1 "--out: .*cannot create" "${A[@]}" --out "$T/no/such/dir/l.npy"
bad out_dir 1 "--out: .*cannot create" "${A[@]}" --out adir
bad gen_rows 1 "--rows: '-1': out of range" gen --rows -1 --vocab 5 --out-base a.npy --out-principle b.npy
bad gen_nanrow 1 "--nan-row: '9': out of range" gen --rows 2 --vocab 5 --nan-row 9 --out-base a.npy --out-principle b.npy
bad gen_flat 1 "--flat .* needs --rows 1" gen --rows 2 --vocab 5 --flat --out-base a.npy --out-principle b.npy
bad gen_missing 1 "missing required flag --vocab" gen --rows 2 --out-base a.npy --out-principle b.npy

# ------------------------------------------ library parameter errors (exit 2)
bad temp0_align 2 "invalid argument.*temperature" "${A[@]}" --temperature 0
bad temp_neg 2 "invalid argument.*temperature" "${A[@]}" --temperature -1
bad temp_nan 2 "invalid argument.*temperature" "${A[@]}" --temperature nan
bad ratio_nan 2 "invalid argument.*ratio" "${A[@]}" --ratio nan
bad eps_zero 2 "invalid argument.*eps" "${A[@]}" --rule trust_region --epsilon 0
bad etamax_neg 2 "invalid argument.*eta" "${A[@]}" --rule exact_kl --eta-max -1
bad top_p 2 "invalid argument.*top.?p" sample --base z.npy --principle y.npy --top-p 1.5 "${RT[@]}"
bad top_p0 2 "invalid argument.*top.?p" sample --base z.npy --principle y.npy --top-p 0 "${RT[@]}"
bad top_k 2 "invalid argument.*top.?k" sample --base z.npy --principle y.npy --top-k -1 "${RT[@]}"
bad min_p 2 "invalid argument.*min.?p" sample --base z.npy --principle y.npy --min-p 2 "${RT[@]}"
bad keep0 2 "invalid argument.*min.?tokens" sample --base z.npy --principle y.npy --min-tokens-to-keep 0 "${RT[@]}"
bad vocab_zero 2 "invalid argument.*vocab" align --base v0.npy --principle v0.npy "${RT[@]}"
# An explicit CUDA backend either works (CUDA build with a device) or fails cleanly.
"$BIN" align --base z.npy --principle y.npy --backend cuda --out lcuda.npy >cuda.out 2>cuda.err
rc=$?
if [ $rc -eq 0 ]; then
  values lcuda.npy >lcuda.txt
  close l.txt lcuda.txt 1e-3 "CUDA backend vs CPU backend l*"
  [ -n "$CUDA_BIN" ] || CUDA_BIN=$BIN
elif [ $rc -eq 2 ] && [ -s cuda.err ]; then
  pass
else
  fail "--backend cuda: exit $rc"
  cat cuda.err >&2
fi
ok backend_auto align --base z.npy --principle y.npy --backend auto --no-diagnostics

# ------------------------------------- bad score input: the same on every backend
# The tool checks score targets and sequence offsets in host memory, before
# any upload, with the library's call-level checks (host/validate.cpp), so a
# target outside [0, V) or decreasing / out-of-range offsets fail with exit 2
# and the CPU backend's message on --backend cuda too (docs/SEMANTICS.md 14),
# even where no CUDA device is present. same_failure NAME PATTERN ARGS...:
# ARGS fail with exit 2 and PATTERN on --backend cpu, and --backend cuda
# (this tool, and the CUDA tool when there is one) prints the same stderr.
same_failure() {
  local name=$1 pattern=$2
  shift 2
  bad "${name}_cpu" 2 "$pattern" "$@" --backend cpu || return 1
  bad "${name}_cuda" 2 "$pattern" "$@" --backend cuda &&
    expect_same "${name}_cpu.err" "${name}_cuda.err" "$name: --backend cuda message"
  if [ -n "$CUDA_BIN" ]; then
    RUN_BIN=$CUDA_BIN bad "${name}_cudadev" 2 "$pattern" "$@" --backend cuda &&
      expect_same "${name}_cpu.err" "${name}_cudadev.err" "$name: CUDA tool's message"
  fi
}
SC=(score --base z.npy --principle y.npy --no-diagnostics)
same_failure score_target_range \
  "invalid argument: score: targets\[3\] = 99 is outside \[0, vocab = $V\) and is not ignore_index \(-100\)" \
  "${SC[@]}" --targets trange.npy
same_failure score_target_negative "invalid argument: score: targets\[2\] = -5 is outside" \
  "${SC[@]}" --targets tneg.npy
mkint32 tv.npy 0 1 2 $V 4 5
same_failure score_target_vocab "invalid argument: score: targets\[3\] = $V is outside" \
  "${SC[@]}" --targets tv.npy --ignore-index -1
same_failure score_offsets_decreasing \
  "invalid argument: score: out.seq_offsets must be non-decreasing \(offset 2\)" \
  "${SC[@]}" --targets t.npy --offsets odec.npy --out-seq x.npy
same_failure score_offsets_beyond "invalid argument: score: out.seq_offsets\[2\] = 9 is outside \[0, rows = $B\]" \
  "${SC[@]}" --targets t.npy --offsets obig.npy
if [ -e x.npy ]; then fail "a failed score wrote x.npy"; else pass; fi
# The CUDA tool on good input: scores and sums agree with the CPU backend,
# invalid rows score NaN, ignored rows 0.
if [ -n "$CUDA_BIN" ]; then
  RUN_BIN=$CUDA_BIN ok score_cuda score --base z.npy --principle y.npy --targets t.npy \
    --offsets o.npy --out rac.npy --out-seq qc.npy --backend cuda
  values rac.npy >rac.txt
  values qc.npy >qc.txt
  close ra.txt rac.txt 1e-4 "CUDA score vs CPU score"
  close q.txt qc.txt 1e-3 "CUDA sequence sums vs CPU"
  ok score_rowerr_i score --base zr.npy --principle yr.npy --targets ti.npy --out sri.npy \
    --backend cpu
  RUN_BIN=$CUDA_BIN ok score_rowerr_cuda score --base zr.npy --principle yr.npy --targets ti.npy \
    --out sric.npy --backend cuda
  values sri.npy >sri.txt
  values sric.npy >sric.txt
  expect_eq "$(sed -n '2,4p' sric.txt | tr '\n' ' ')" "0 nan 0 " \
    "CUDA score: ignored rows 0, invalid row NaN"
  close sri.txt sric.txt 1e-4 "CUDA score with row errors and ignored rows vs CPU"
  RUN_BIN=$CUDA_BIN ok align_cuda align --base z.npy --principle y.npy --out lc2.npy --backend cuda
  values lc2.npy >lc2.txt
  close l.txt lc2.txt 1e-3 "CUDA tool's l* vs CPU backend l*"
else
  echo "cli_test: no CUDA tool (second argument) and no CUDA device: --backend cuda ran only up to its checks"
fi

# ------------------------------------------------------------------------- demo
ok demo demo --rows 3 --vocab 500 --iters 2 "${RT[@]}"
contains demo.out "check: .*: ok" "demo consistency check"
contains demo.out "rows/s" "demo throughput"
ok demo_opts demo --rows 4 --vocab 1000 --iters 1 --dtype bf16 --rule exact_kl --epsilon 0.2 \
  --top-p 0.8 --greedy --diagnostics demo.jsonl "${RT[@]}"
expect_eq "$(line_count demo.jsonl)" 4 "demo --diagnostics"

echo "cli_test: $CHECKS checks passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
