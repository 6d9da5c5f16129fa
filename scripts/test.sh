#!/usr/bin/env bash
# Configures, builds and runs the whole test suite (ctest), after fetching
# the stories15M model the model tests use (scripts/fetch_model.sh, cached).
# GPU tests skip themselves without a device.
#   BUILD_DIR (default build), extra cmake arguments as "$@".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
bash scripts/fetch_model.sh >/dev/null  # the stories15M tests (label "model")
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
