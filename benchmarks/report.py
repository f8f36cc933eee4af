"""Figures, percentiles and the one markdown table (or JSON) they are printed as."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SECTIONS = {
    "per_update": "1. Per-update cost",
    "database": "2. Database at scale",
    "memory_startup": "3. Memory and start-up",
    "taps": "4. Taps",
    "fhir_import": "5. FHIR import",
    "reminders": "6. Reminders at scale",
    "postgresql": "7. PostgreSQL",
}


@dataclass
class Figure:
    """One measured number, with how it was measured and, if there is one, its target."""

    section: str
    key: str
    label: str
    value: float
    unit: str
    how: str
    target_op: str | None = None  # "<", "<=", ">=" or None (information only)
    target: float | None = None

    @property
    def met(self) -> bool | None:
        if self.target_op is None or self.target is None or math.isnan(self.value):
            return None
        return {
            "<": self.value < self.target,
            "<=": self.value <= self.target,
            ">=": self.value >= self.target,
        }[self.target_op]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["value"] = _finite(self.value)  # NaN (not measured) is null in JSON
        data["met"] = self.met
        return data


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # per section: plans, counts...
    options: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def as_json(self) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for key in SECTIONS:
            sections[key] = {
                "title": SECTIONS[key],
                "figures": {f.key: f.as_json() for f in self.figures if f.section == key},
                "details": self.details.get(key, {}),
            }
        return {"machine": machine(), "options": self.options, "sections": sections}

    def json_text(self) -> str:
        return json.dumps(self.as_json(), indent=2, allow_nan=False)

    def markdown(self) -> str:
        lines = [
            "| Section | Figure | Value | Target | Met | How it was measured |",
            "|---|---|---:|---|:-:|---|",
        ]
        previous = ""
        for f in sorted(self.figures, key=lambda f: list(SECTIONS).index(f.section)):
            target = f"{f.target_op} {_number(f.target)} {f.unit}".strip() if f.target_op else ""
            met = {True: "yes", False: "**no**", None: ""}[f.met]
            # p50/p95/p99 rows share one description: say it once.
            how = "as above" if f.how == previous else _cell(f.how)
            previous = f.how
            value = f"{_number(f.value)} {f.unit}".strip()
            lines.append(
                f"| {SECTIONS[f.section]} | {f.label} | {value} | {target} | {met} | {how} |"
            )
        m = machine()
        system = f"{_cell(m['cpu'])}; {m['python']}; {m['system']}"
        system += f"; load average {m['load_average']} at the end"
        lines.append(f"| | Machine | {m['cpus']} CPUs | | | {system} |")
        return "\n".join(lines)


def _finite(value: float) -> float | None:
    return None if not math.isfinite(value) else value


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu or "unknown CPU",
        "python": f"Python {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()}",
        # Other work on the machine slows every figure: the 1-minute load average at the end.
        "load_average": round(os.getloadavg()[0], 2),
    }
