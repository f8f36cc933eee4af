"""`python -m benchmarks --quick --json` runs and reports every section with numbers.

Figures are printed, never asserted: timing targets depend on the machine, so this test
only checks that the benchmark works end to end and that its report has the right shape.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "per_update",
    "database",
    "memory_startup",
    "taps",
    "fhir_import",
    "reminders",
    "postgresql",
)
EXPECTED = {
    "per_update": {
        "updates_per_s",
        "latency_p99_ms",
        "echo_updates_per_s",
        "cost_ratio_cpu",
        "cost_ratio_cpu_same_transport",
        "api_calls_per_update",
    },
    "database": {"permission_p99_ms", "switch_list_p99_ms", "decide_p99_ms", "access_log_p99_ms"},
    "memory_startup": {"rss_mb", "startup_s"},
    "taps": {"link_dependent", "approve", "switch_view"},
    "fhir_import": {"import_s", "import_peak_mb", "reimport_s"},
    "reminders": {
        "reminders_queued",
        "queue_db_s",
        "queue_wall_s",
        "requeue_db_ms",
        "queued_twice",
        "cpu_ms_per_reminder",
        "send_rate_paced",
        "drain_min_at_30",
    },
    "postgresql": {
        "sqlite_1_updates_per_s",
        "pg_1_updates_per_s",
        "pg_4_latency_p99_ms",
        "pg_1_cpu_ms",
        "pg_1_server_cpu_ms",
        "pg_1_vs_sqlite",
        "pg_1_cost_ratio_cpu",
        "db_permission_p99_ms",
        "scanning_statements",
    },
}


def test_quick_run_reports_every_section_with_numbers(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["options"]["quick"] is True
    assert report["machine"]["cpus"] >= 1
    for name in SECTIONS:
        figures = report["sections"][name]["figures"]
        skipped = report["sections"][name]["details"].get("skipped")
        if skipped:  # PostgreSQL not installed: one row saying why, no figures
            assert name == "postgresql" and set(figures) == {"skipped"}, (name, figures)
            continue
        assert EXPECTED[name] <= set(figures), (name, sorted(figures))
        for key, figure in figures.items():
            value = figure["value"]
            assert isinstance(value, int | float) and math.isfinite(value), (name, key, figure)
            assert figure["how"], (name, key)
            assert figure["met"] in (True, False, None), (name, key)
