"""Section 5 (FHIR import): `python -m bot import-fhir` on a Synthea-shaped bundle.

The bundle is made from a fixed seed by benchmarks/synthea.py (10 patients, ~14 MB, the
size issue #18 measured: 11 s and 274 MB then). Each import runs as the operator runs it,
a subprocess on a fresh database, and is timed from launch to exit; its peak RSS is the
child's ru_maxrss from wait4. A small bundle is imported first, so that neither run pays
for compiling the bot's modules or for a cold disk cache.
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
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "import-fhir", str(bundle)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak RSS, not ours
        took = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        printed, complaints = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"import-fhir exited {proc.returncode}: {complaints[-2000:]}")
    lines = printed.strip().splitlines()
    return Run(took, usage.ru_maxrss / 1024, lines[-1] if lines else "")
