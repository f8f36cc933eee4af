"""Section 5 (FHIR import): `python -m bot import-fhir` on a Synthea-shaped bundle.

The bundle is made from a fixed seed by benchmarks/synthea.py (10 patients, ~14 MB, the
size issue #18 measured: 11 s and 274 MB then). Each import runs as the operator runs it,
a subprocess on a fresh database, and is timed from launch to exit; its peak RSS is the
process's own VmHWM as it exits (`_MEASURED`). A small bundle is imported first, so that
neither run pays for compiling the bot's modules or for a cold disk cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.synthea import write_bundle

ROOT = Path(__file__).resolve().parent.parent
SEED = 18
TARGET_SECONDS = 5.0
TARGET_MB = 150.0


# `python -m bot ARGS`, writing its own peak RSS (VmHWM: this process's memory since its
# exec) to the file named first, as it exits. Not wait4's ru_maxrss: on Linux that also
# counts the memory of the process that started it, carried over through fork and exec (in
# a full run the benchmark's own ~550 MB, after the sections before; 57 MB alone).
_MEASURED = """
import runpy, sys
peak_file = sys.argv.pop(1)
try:
    runpy.run_module("bot", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status, open(peak_file, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")))
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    summary: str  # the command's own last line


@dataclass(frozen=True)
class Measured:
    size_bytes: int
    patients: int
    first: Run  # into a fresh database
    again: Run  # the same file again: every row already there


def measure(workdir: Path, *, patients: int = 10, target_bytes: int = 14_000_000) -> Measured:
    folder = workdir / "fhir"
    folder.mkdir(parents=True, exist_ok=True)
    warm = folder / "warm-up.json"
    write_bundle(warm, patients=1, target_bytes=50_000, seed=SEED + 1)
    _import(warm, _fresh(folder / "warm-up.db"))
    bundle = folder / "synthea-shaped.json"
    size = write_bundle(bundle, patients=patients, target_bytes=target_bytes, seed=SEED)
    db = _fresh(folder / "fhir.db")
    first = _import(bundle, db)
    again = _import(bundle, db)
    return Measured(size, patients, first, again)


def _fresh(db: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


def _import(bundle: Path, db: Path) -> Run:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PORTAL_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PORTAL_DB_PATH"] = str(db)
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURED, peak.name, "import-fhir", str(bundle)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            check=False,
        )
        took = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        printed, complaints = out.read().decode(), err.read().decode(errors="replace")
        hwm = peak.read().split()  # "VmHWM:", the number, "kB"
    if proc.returncode != 0:
        raise RuntimeError(f"import-fhir exited {proc.returncode}: {complaints[-2000:]}")
    lines = printed.strip().splitlines()
    return Run(took, int(hwm[1]) / 1024, lines[-1] if lines else "")
