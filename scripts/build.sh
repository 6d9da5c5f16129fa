#!/usr/bin/env bash
# Builds linalign (CUDA backend too when nvcc is found), fetches the
# stories15M model (scripts/fetch_model.sh, cached) and runs the main job:
# `linalign story`, a real language model decoding with base, principle-only
# and Linear Alignment (fixed ratio, trust region) side by side, with each
# step's eta and KL and tokens/s (the CUDA backend when a GPU is present).
#   BUILD_DIR (default build), extra cmake arguments as "$@".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
MODEL_DIR=$(bash scripts/fetch_model.sh)
"$BUILD_DIR"/host/linalign story --model-dir "$MODEL_DIR"
