#!/usr/bin/env bash
# Builds linalign (CUDA backend too when nvcc is found) and runs the main job:
# `linalign demo`, which generates a batch of rows, aligns them, samples and
# scores, and prints per-row diagnostics and throughput.
#   BUILD_DIR (default build), extra cmake arguments as "$@".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
"$BUILD_DIR"/host/linalign demo
