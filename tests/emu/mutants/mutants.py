#!/usr/bin/env python3
"""Mutation testing of the CUDA kernels against the SIMT emulator's tests.

Plants realistic bugs, one at a time, in a scratch copy of the source tree,
rebuilds only the emulated test executables each bug needs, runs a few tests
with a timeout, and reports which bugs the suite catches. A mutant is caught
when the selected tests fail, the emulator aborts with a report, or the run
hangs past the timeout; it is missed when they all pass.

  python3 tests/emu/mutants/mutants.py [--build-dir DIR] [--only NAME...]
                                       [--list] [--check] [--jobs N]
                                       [--timeout S]

--list prints the table and whether each mutant's `old` text still occurs
exactly once (nothing is built). --check also configures the scratch build
and compiles every mutated translation unit with -fsyntax-only (no tests).
Without either, the unmutated tree is built and run with the same filters
first (the baseline); if that fails nothing is judged (exit 2). The last line
is `N passed, M failed` (passed = caught mutants, failed = missed ones, or
ones that no longer apply or build); the exit status is 1 when any failed.

Standard library only. See README.md next to this file.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BUILD_DIR = ROOT / "build-mutants"  # ignored by .gitignore (/build*/)

EMU = "test_cuda_backend_emulated"

# The emulated translation units a mutated file is compiled in (for --check).
KERNEL_TU = "tests/emu/kernels_f32.cpp"
BACKEND_TU = "tests/emu/cuda_backend.cpp"


@dataclass
class Mutant:
    name: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in `file`
    new: str
    tests: List[Tuple[str, str]]  # (emulated test executable, gtest filter)
    what: str  # one line: the bug, and where it is planted among several places
    tus: List[str] = field(default_factory=lambda: [KERNEL_TU])


# Where several places match a bug, it is planted in the one most likely to be
# hit; `what` names it. Filters are a few tests each: the whole emulated suite
# is several minutes on one core.
MUTANTS: List[Mutant] = [
    Mutant(
        name="block_reduce_no_sync",
        file="kernels/device.cuh",
        what="block_reduce: no __syncthreads() between the warps' partials and warp 0 reading "
        "them (every kernel's block reduction)",
        old="  if (lane == 0) part[warp] = v;\n"
        "  __syncthreads();\n"
        "  if (warp == 0) {\n",
        new="  if (lane == 0) part[warp] = v;\n"
        "  if (warp == 0) {\n",
        tests=[(EMU, "CudaVsCpu.StridedMisalignedPadded:CudaVsCpu.VocabularyShards:"
                "CudaVsCpu.MasksDecideTheDraw")],
    ),
    Mutant(
        name="select_hist_not_zeroed",
        file="kernels/select_kernel.cuh",
        what="SelectPassKernel: the shared histograms (mass, counts) are never zeroed",
        old="  for (int i = t; i < math::kRadixBins; i += kT) {\n"
        "    sh.mass[i] = 0;\n"
        "    sh.count[0][i] = 0;\n"
        "    sh.count[1][i] = 0;\n"
        "  }\n"
        "  if (t < 2) sh.inv_min_key[t] = 0;\n",
        new="  if (t < 2) sh.inv_min_key[t] = 0;\n",
        tests=[(EMU, "CudaVsCpu.MasksDecideTheDraw")],
    ),
    Mutant(
        name="shuffle_partial_mask",
        file="kernels/device.cuh",
        what="shfl_words: __shfl_down_sync with mask 0x7fffffff (lane 31 left out) — the "
        "shuffle under every warp_reduce, so every block_reduce of every kernel",
        old="      w[i] = __shfl_down_sync(kFullMask, w[i], delta);\n",
        new="      w[i] = __shfl_down_sync(0x7fffffffu, w[i], delta);\n",
        tests=[(EMU, "CudaVsCpu.ScoreBadTargetsAndOffsets")],
    ),
    Mutant(
        name="scalar_tail_dropped",
        file="kernels/device.cuh",
        what="walk_scalars (walk_row and the fused kernels' held slice): one scalar head/tail "
        "element fewer (the last one: element n - 1 when the row has a tail, else the last head "
        "element is never visited). Planted in the kernels' walk, not in math::split_scalars, "
        "which the CPU backend's tests share",
        old="  return with_scalars ? math::split_scalars(row.split) : 0;\n",
        new="  return with_scalars ? math::split_scalars(row.split) - 1 : 0;\n",
        tests=[(EMU, "CudaVsCpu.StridedMisalignedPadded:CudaVsCpu.AlignBf16Output")],
    ),
    Mutant(
        name="last_slice_rounded_down",
        file="kernels/plan_kernels.cuh",
        what="slice_stats_partial (the first sweep of StatsKernel and the fused kernels): "
        "slice bounds over the row's vectors rounded down to whole granules, so the last slice "
        "misses its tail. Not planted in math::slice_span, which the CPU backend uses too "
        "(both would move alike)",
        old="  const math::Span span = vocab_slice(row, a.slices, s);\n"
        "  h.load(",
        new="  const math::Span span = math::slice_span(\n"
        "      row.split.vectors / kSliceGranuleVectors * kSliceGranuleVectors,\n"
        "      a.slices, s, kSliceGranuleVectors);\n"
        "  h.load(",
        tests=[(EMU, "CudaVsCpu.StridedMisalignedPadded:CudaVsCpu.VocabularyShards")],
    ),
    Mutant(
        name="select_flush_no_barrier",
        file="kernels/select_kernel.cuh",
        what="SelectPassKernel: no barrier between the shared-memory atomics and the flush "
        "of the shared histograms to the row's global ones",
        old="  __syncthreads();  // the block's histograms are complete\n",
        new="",
        tests=[(EMU, "CudaVsCpu.MasksDecideTheDraw:CudaVsCpu.PerRowDeviceParameters")],
    ),
    Mutant(
        name="last_block_highest_index",
        file="kernels/device.cuh",
        what="last_block_of_row: 'the last block of the row' is the highest blockIdx.x, not "
        "the ticket counter (every kernel that merges its blocks in-grid: StatsKernel, "
        "SelectPassKernel, SampleKernel, KlPassKernel)",
        old="  if (threadIdx.x == 0) last = atomicAdd(count, 1u) == before + blocks - 1u;\n",
        new="  if (threadIdx.x == 0) {\n"
        "    (void)atomicAdd(count, 1u);\n"
        "    last = blockIdx.x == blocks - 1u;\n"
        "  }\n",
        tests=[(EMU, "CudaVsCpu.MasksDecideTheDraw:CudaVsCpu.PerRowDeviceParameters")],
    ),
    Mutant(
        name="select_zero_no_barrier",
        file="kernels/select_kernel.cuh",
        what="SelectPassKernel: no barrier after zeroing the shared histograms (threads add "
        "to bins another thread has not zeroed yet)",
        old="  clear_histograms<kT>(sh);\n"
        "  __syncthreads();\n\n"
        "  const bool from_principle",
        new="  clear_histograms<kT>(sh);\n\n"
        "  const bool from_principle",
        tests=[(EMU, "CudaVsCpu.MasksDecideTheDraw")],
    ),
    Mutant(
        name="ticket_no_threadfence",
        file="kernels/device.cuh",
        what="last_block_of_row: no __threadfence() between a block's partials and the "
        "atomicAdd on the row's counter (every kernel that merges its blocks in-grid)",
        old="  __threadfence();  // this thread's partial stores / atomics are visible device-wide ...\n",
        new="",
        tests=[(EMU, "CudaVsCpu.MasksDecideTheDraw:CudaVsCpu.PerRowDeviceParameters")],
    ),
    Mutant(
        name="global_hist_plain_add",
        file="kernels/select_kernel.cuh",
        what="SelectPassKernel: the global top-p mass histogram gets a plain += instead of "
        "atomicAdd (mass: the top-p histogram, on in most masked calls; the counts are "
        "the same pattern)",
        old="      atomicAdd(reinterpret_cast<unsigned long long*>(&g.mass[i]), sh.mass[i]);\n",
        new="      g.mass[i] += sh.mass[i];\n",
        tests=[(EMU, "CudaVsCpu.MasksDecideTheDraw")],
    ),
    Mutant(
        name="score_rows_overrun",
        file="kernels/token_kernels.cuh",
        what="ScoreKernel: the grid-stride loop runs r <= B (row B is read and written)",
        old="  for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < B;\n",
        new="  for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r <= B;\n",
        tests=[(EMU, "CudaVsCpu.ScoreBadTargetsAndOffsets")],
    ),
    Mutant(
        name="principle_row_base_stride",
        file="include/linalign/math/layout.hpp",
        what="row_address, strided layout: the principle row addressed with the base stride "
        "(the one rule of both backends, so the CPU-vs-GPU comparison cannot see it: the "
        "dense-copy test of the CPU backend must)",
        old="                      static_cast<const char*>(v.principle) + r * v.principle_stride * eb};\n",
        new="                      static_cast<const char*>(v.principle) + r * v.base_stride * eb};\n",
        tests=[("test_layouts", "Layouts.*"), (EMU, "CudaVsCpu.*Stride*")],
    ),
    Mutant(
        name="host_pointer_reaches_kernel",
        file="host/cuda_backend.cu",
        # The refusal of CudaBackendImpl::run: cudaPointerGetAttributes on
        # every pointer the kernels dereference, plain host memory
        # (cudaMemoryTypeUnregistered) refused with kInvalidArgument. The
        # mutant keeps only the error branch, so a host array reaches a kernel.
        # (Re-targeted from the alignment check once the refusal landed.)
        what="CudaBackendImpl::run: the host-pointer refusal removed (cudaMemoryTypeUnregistered "
        "accepted), so a host array reaches a kernel",
        old="    if (e != cudaSuccess || attr.type == cudaMemoryTypeUnregistered) {\n",
        new="    if (e != cudaSuccess) {\n",
        tests=[(EMU, "CudaVsCpu.HostPointersAreRefused")],
        tus=[BACKEND_TU],
    ),
    Mutant(
        name="fused_plan_read_early",
        file="kernels/fused_kernels.cuh",
        what="FusedAlignKernel: the blocks of a row wait for the statistics tickets only "
        "(count ≥ slices), not for the last block's publish (slices + 1), and read the plan "
        "before it is written",
        old="  *rounds_end = blocks + 1u;\n",
        new="  *rounds_end = blocks;\n",
        tests=[(EMU, "CudaVsCpu.StridedMisalignedPadded:CudaVsCpu.TemperaturesAndRatios")],
    ),
    Mutant(
        name="launch_bounds_below_block",
        file="kernels/plan_kernels.cuh",
        what="PlanKernel (align_shard) declares __launch_bounds__ of 256 threads but is "
        "launched with kRowThreads (512): a launch error on a GPU",
        old="__global__ void __launch_bounds__(kRowThreads) PlanKernel(",
        new="__global__ void __launch_bounds__(256) PlanKernel(",
        tests=[(EMU, "CudaVsCpu.VocabularyShards")],
    ),
]


# ----------------------------------------------------------------- helpers ---


def say(msg: str = "") -> None:
    print(msg, flush=True)


def occurrences(m: Mutant, root: Path) -> int:
    path = root / m.file
    if not path.is_file():
        return -1
    return path.read_text(encoding="utf-8").count(m.old)


def drift_text(n: int) -> str:
    if n == -1:
        return "file missing"
    return "old text occurs %d times (source drifted?)" % n


def tracked_files(root: Path) -> List[str]:
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    files = []
    for raw in out.split(b"\0"):
        if not raw:
            continue
        rel = os.fsdecode(raw)
        p = root / rel
        if p.is_file() or p.is_symlink():  # deleted files and submodules are skipped
            files.append(rel)
    return sorted(set(files))


def same_content(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def sync_tree(root: Path, dest: Path) -> Tuple[int, int]:
    """Mirrors the git-visible tree into dest. Unchanged files keep their
    mtime (incremental builds); changed ones get a fresh mtime (never an older
    one than the objects built from a previous content)."""
    files = tracked_files(root)
    wanted = set(files)
    copied = 0
    for rel in files:
        src, dst = root / rel, dest / rel
        if src.is_symlink():
            target = os.readlink(src)
            if dst.is_symlink() and os.readlink(dst) == target:
                continue
            if dst.exists() or dst.is_symlink():
                dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, dst)
            copied += 1
            continue
        if dst.is_file() and not dst.is_symlink() and same_content(src, dst):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink():
            dst.unlink()
        shutil.copyfile(src, dst)
        shutil.copymode(src, dst)
        copied += 1
    removed = 0
    for dirpath, dirnames, filenames in os.walk(dest, topdown=False):
        for f in filenames:
            p = Path(dirpath) / f
            if p.relative_to(dest).as_posix() not in wanted:
                p.unlink()
                removed += 1
        if dirpath != str(dest) and not os.listdir(dirpath):
            os.rmdir(dirpath)
    return copied, removed


def run_logged(cmd: Sequence[str], log: Path, cwd: Optional[Path] = None,
               timeout: Optional[float] = None, env: Optional[Dict[str, str]] = None):
    """Runs cmd in its own process group, stdout+stderr to `log`. Returns
    (returncode or None on timeout, seconds)."""
    t0 = time.monotonic()
    with open(log, "wb") as f:
        f.write(("$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group this call started
            except ProcessLookupError:
                pass
            proc.wait()
            rc = None
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    return rc, time.monotonic() - t0


def tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


SIMT_REPORT = re.compile(r"\[simt emulator\]\s*(.*)")
FAILED_TEST = re.compile(r"^\[  FAILED  \] (\S+)(?: \(\d+ ms\))?\s*$", re.M)
RAN_TESTS = re.compile(r"^\[==========\] (\d+) tests? from .* ran\.", re.M)
RUNNING_TEST = re.compile(r"^\[ RUN      \] (\S+)", re.M)


def evidence(output: str, rc: Optional[int], timeout: float) -> Tuple[bool, str]:
    """(caught, one line of evidence) for one test run's output."""
    if rc is None:
        running = RUNNING_TEST.findall(output)
        where = " in " + running[-1] if running else ""
        return True, "hang: no exit within %g s%s" % (timeout, where)
    m = SIMT_REPORT.search(output)
    if m:
        return True, "emulator: " + m.group(1).strip()
    failed = FAILED_TEST.findall(output)
    if failed:
        msg = first_failure_message(output)
        return True, "failed " + ", ".join(dict.fromkeys(failed)) + (": " + msg if msg else "")
    if rc != 0:
        if rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = "signal %d" % -rc
            running = RUNNING_TEST.findall(output)
            where = " in " + running[-1] if running else ""
            return True, "killed by %s%s" % (sig, where)
        return True, "exit status %d" % rc
    return False, "all selected tests pass"


def first_failure_message(output: str) -> str:
    """The first informative line of gtest's first failure message."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(": Failure"):
            for m in lines[i + 1: i + 6]:
                m = m.strip()
                if m and m != "Failed":
                    return m
            return ""
    return ""


def tests_ran(output: str) -> int:
    m = RAN_TESTS.search(output)
    return int(m.group(1)) if m else 0


def first_error(log: Path) -> str:
    text = log.read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        if "error" in line and not line.startswith("$ "):
            return short(line, 200)
    return short(tail(log, 3), 200)


def short(s: str, n: int = 110) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


# ------------------------------------------------------------------ runner ---


class Scratch:
    def __init__(self, build_dir: Path, jobs: int):
        self.dir = build_dir.resolve()
        self.src = self.dir / "src"
        self.build = self.dir / "build"
        self.logs = self.dir / "logs"
        self.jobs = jobs
        self.exe_paths: Dict[str, Path] = {}

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.src.mkdir(exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        copied, removed = sync_tree(ROOT, self.src)
        say("scratch tree %s: %d files copied, %d removed" % (self.src, copied, removed))

    def configure(self) -> None:
        cml = (self.src / "CMakeLists.txt").read_text(encoding="utf-8")
        opts = {
            "LINALIGN_ENABLE_CUDA": "OFF",
            "LINALIGN_BUILD_TESTS": "ON",
            "LINALIGN_BUILD_BENCH": "OFF",
            "LINALIGN_BUILD_CLI": "OFF",
            "LINALIGN_BUILD_EXAMPLES": "OFF",
            "LINALIGN_SANITIZE": "OFF",
        }
        cmd = ["cmake", "-S", str(self.src), "-B", str(self.build), "-G", "Ninja",
               "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
        for k, v in opts.items():
            if re.search(r"option\(\s*%s\b" % k, cml):
                cmd.append("-D%s=%s" % (k, v))
        log = self.logs / "configure.log"
        rc, secs = run_logged(cmd, log)
        if rc != 0:
            say(tail(log))
            raise SystemExit("configure failed (log: %s)" % log)
        say("configured %s (%.0f s)" % (self.build, secs))

    def build_targets(self, targets: Sequence[str], log: Path) -> bool:
        cmd = ["cmake", "--build", str(self.build), "-j", str(self.jobs), "--target"]
        cmd += sorted(set(targets))
        rc, _ = run_logged(cmd, log)
        return rc == 0

    def exe(self, name: str) -> Path:
        if name not in self.exe_paths:
            for dirpath, _, filenames in os.walk(self.build):
                if name in filenames:
                    p = Path(dirpath) / name
                    if os.access(p, os.X_OK):
                        self.exe_paths[name] = p
                        break
            else:
                raise SystemExit("built, but no executable %s under %s" % (name, self.build))
        return self.exe_paths[name]

    def run_test(self, exe: str, flt: str, log: Path, timeout: float):
        env = dict(os.environ)
        env["GTEST_COLOR"] = "no"
        cmd = [str(self.exe(exe)), "--gtest_filter=" + flt, "--gtest_color=no"]
        rc, secs = run_logged(cmd, log, cwd=self.build, timeout=timeout, env=env)
        out = log.read_text(encoding="utf-8", errors="replace")
        return rc, secs, out


def apply_mutant(m: Mutant, root: Path) -> str:
    """Plants m under root; returns the original text (to restore)."""
    path = root / m.file
    text = path.read_text(encoding="utf-8")
    n = text.count(m.old)
    if n != 1:
        raise ValueError(drift_text(n))
    path.write_text(text.replace(m.old, m.new, 1), encoding="utf-8")
    return text


def restore(m: Mutant, root: Path, text: str) -> None:
    (root / m.file).write_text(text, encoding="utf-8")


def list_mutants(selected: Sequence[Mutant]) -> int:
    bad = 0
    for i, m in enumerate(selected, 1):
        n = occurrences(m, ROOT)
        status = "ok" if n == 1 else "STALE: " + drift_text(n)
        bad += n != 1
        say("%2d. %s  [%s]" % (i, m.name, status))
        say("    file:  %s" % m.file)
        say("    bug:   %s" % m.what)
        for exe, flt in m.tests:
            say("    tests: %s --gtest_filter=%s" % (exe, flt))
    say()
    say("%d mutants, %d whose old text does not occur exactly once" % (len(selected), bad))
    return 1 if bad else 0


def syntax_check(scratch: Scratch, selected: Sequence[Mutant]) -> int:
    """-fsyntax-only of each mutated translation unit, with the flags of the
    scratch build's compile_commands.json."""
    import json
    import shlex

    db = json.loads((scratch.build / "compile_commands.json").read_text(encoding="utf-8"))
    commands = {}
    for e in db:
        f = Path(e["directory"], e["file"]).resolve()
        commands[f] = (e["directory"], e.get("arguments") or shlex.split(e["command"]))

    def syntax_cmd(tu: str) -> Tuple[str, List[str]]:
        key = (scratch.src / tu).resolve()
        if key not in commands:
            raise SystemExit("no compile command for %s in compile_commands.json" % tu)
        d, args = commands[key]
        out, skip = [], False
        for a in args:  # drop the output and dependency-file options
            if skip:
                skip = False
                continue
            if a in ("-o", "-MF", "-MT", "-MQ"):
                skip = True
                continue
            if a in ("-c", "-MD", "-MMD"):
                continue
            out.append(a)
        return d, out + ["-fsyntax-only"]

    rows, failed = [], 0
    for m in selected:
        try:
            text = apply_mutant(m, scratch.src)
        except ValueError as e:
            rows.append((m.name, "STALE", str(e)))
            failed += 1
            continue
        try:
            for tu in m.tus:
                d, cmd = syntax_cmd(tu)
                log = scratch.logs / ("syntax-%s.log" % m.name)
                rc, secs = run_logged(cmd, log, cwd=Path(d))
                if rc != 0:
                    rows.append((m.name, "NO BUILD", "%s: %s" % (tu, first_error(log))))
                    failed += 1
                    break
            else:
                rows.append((m.name, "compiles", ", ".join(m.tus)))
        finally:
            restore(m, scratch.src, text)
    print_table(rows)
    say("%d compile, %d do not" % (len(rows) - failed, failed))
    return 1 if failed else 0


def print_table(rows: Sequence[Tuple[str, str, str]]) -> None:
    w0 = max([len("mutant")] + [len(r[0]) for r in rows])
    w1 = max([len("result")] + [len(r[1]) for r in rows])
    say()
    say("%-*s  %-*s  %s" % (w0, "mutant", w1, "result", "evidence"))
    say("%s  %s  %s" % ("-" * w0, "-" * w1, "-" * 8))
    for r in rows:
        say("%-*s  %-*s  %s" % (w0, r[0], w1, r[1], r[2]))
    say()


def run_all(scratch: Scratch, selected: Sequence[Mutant], timeout: float) -> int:
    # Mutants whose old text has drifted are reported, not planted.
    stale = {}
    for m in selected:
        n = occurrences(m, scratch.src)
        if n != 1:
            stale[m.name] = drift_text(n)
    live = [m for m in selected if m.name not in stale]

    # Baseline: the unmutated tree, every (executable, filter) the mutants use.
    pairs = list(dict.fromkeys(p for m in live for p in m.tests))
    targets = sorted({exe for exe, _ in pairs})
    if live:
        say("baseline: building %s" % ", ".join(targets))
        log = scratch.logs / "baseline-build.log"
        t0 = time.monotonic()
        if not scratch.build_targets(targets, log):
            say(tail(log))
            say("the unmutated tree does not build (log: %s): nothing judged" % log)
            return 2
        say("  built (%.0f s)" % (time.monotonic() - t0))
        for i, (exe, flt) in enumerate(pairs):
            log = scratch.logs / ("baseline-%d.log" % i)
            rc, secs, out = scratch.run_test(exe, flt, log, timeout)
            caught, why = evidence(out, rc, timeout)
            ran = tests_ran(out)
            say("  %s --gtest_filter=%s: %s, %d tests, %.1f s" %
                (exe, flt, "FAILS" if caught else "passes", ran, secs))
            if caught:
                say(tail(log))
                say("the baseline fails (%s; log: %s): nothing judged" % (why, log))
                return 2
            if ran == 0:
                say("the filter %s matches no test of %s: nothing judged" % (flt, exe))
                return 2

    rows = []
    caught_n = failed_n = 0
    for m in selected:
        if m.name in stale:
            rows.append((m.name, "STALE", stale[m.name]))
            failed_n += 1
            continue
        say("mutant %s (%s)" % (m.name, m.file))
        text = apply_mutant(m, scratch.src)
        try:
            log = scratch.logs / ("%s-build.log" % m.name)
            t0 = time.monotonic()
            if not scratch.build_targets({exe for exe, _ in m.tests}, log):
                rows.append((m.name, "NO BUILD", "the mutant does not compile: " + str(log)))
                failed_n += 1
                say("  does not build (log: %s)" % log)
                continue
            say("  built (%.0f s)" % (time.monotonic() - t0))
            result, why = False, ""
            for i, (exe, flt) in enumerate(m.tests):
                log = scratch.logs / ("%s-%d.log" % (m.name, i))
                rc, secs, out = scratch.run_test(exe, flt, log, timeout)
                result, why = evidence(out, rc, timeout)
                say("  %s --gtest_filter=%s: %s (%.1f s)" %
                    (exe, flt, short(why), secs))
                if result:
                    break
            if result:
                caught_n += 1
                rows.append((m.name, "caught", short(why)))
            else:
                failed_n += 1
                rows.append((m.name, "MISSED", why))
        finally:
            restore(m, scratch.src, text)  # the next build is incremental
    print_table(rows)
    say("logs: %s" % scratch.logs)
    say("%d passed, %d failed" % (caught_n, failed_n))
    return 1 if failed_n else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR,
                    help="scratch folder: src/ (the copy), build/, logs/ (default %(default)s)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these mutants only")
    ap.add_argument("--list", action="store_true",
                    help="print the mutants and check their old text; build nothing")
    ap.add_argument("--check", action="store_true",
                    help="configure, then compile each mutated translation unit with "
                    "-fsyntax-only; run no test")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="build parallelism (default %(default)s); tests run one at a time")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per test run; a run past it is a hang, counted as caught "
                    "(default %(default)s)")
    args = ap.parse_args(argv)

    names = [m.name for m in MUTANTS]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit("duplicate mutant names: %s" % ", ".join(sorted(dup)))
    selected = list(MUTANTS)
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            raise SystemExit("unknown mutant(s): %s (see --list)" % ", ".join(unknown))
        selected = [m for m in MUTANTS if m.name in args.only]

    if args.list:
        return list_mutants(selected)

    scratch = Scratch(args.build_dir, max(1, args.jobs))
    scratch.prepare()
    scratch.configure()
    if args.check:
        return syntax_check(scratch, selected)
    return run_all(scratch, selected, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
