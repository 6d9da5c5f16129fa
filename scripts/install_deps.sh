#!/usr/bin/env bash
# Installs, from Debian's packages, whatever the build and the tests need and
# the machine lacks. Safe to run again: it installs nothing that is present.
set -euo pipefail
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd cmake || need+=(cmake)
have_cmd ninja || need+=(ninja-build)
have_cmd g++ || need+=(g++)
have_cmd clang-format || need+=(clang-format)
[ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
[ -f /usr/include/gmock/gmock.h ] || need+=(libgmock-dev)
[ -f /usr/include/benchmark/benchmark.h ] || need+=(libbenchmark-dev)
[ -f /usr/include/CLI/CLI.hpp ] || need+=(libcli11-dev)  # the CLI's flag parsing
[ -f /usr/include/fmt/format.h ] || need+=(libfmt-dev)   # the CLI's number printing
have_cmd npm || need+=(npm)  # scripts/fetch_model.sh: the stories15M model (npm pack)
# The Python binding (python/, docs/PYTHON.md) and its tests, on Debian's python3.
[ -f /usr/include/pybind11/pybind11.h ] || need+=(pybind11-dev)
[ -f /usr/include/dlpack/dlpack.h ] || need+=(libdlpack-dev)
py_has() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }
ls /usr/include/python3*/Python.h >/dev/null 2>&1 || need+=(python3-dev)
py_has pybind11 || need+=(python3-pybind11)
py_has numpy || need+=(python3-numpy)
py_has torch || need+=(python3-torch)
py_has pytest || need+=(python3-pytest)
py_has hypothesis || need+=(python3-hypothesis)  # tests/python/test_fuzz_properties.py
# The fuzz targets (tests/fuzz, scripts/fuzz.sh): clang and its libFuzzer.
have_cmd clang++ || need+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
  need+=(libclang-rt-14-dev)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "install_deps: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
