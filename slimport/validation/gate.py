"""Compare measured figures with a target's parity gate and its device profile's budgets."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from slimport.targets.schema import GATE_KEYS, Gate, Profile

_OUTPUT_METRIC = {
    "output_cosine_mean": "cosine_mean",
    "output_cosine_min": "cosine_min",
    "max_abs_error": "max_abs_error",
    "min_psnr_db": "psnr_db",
    "nonfinite": "nonfinite",
}


@dataclass
class Check:
    """One gate or budget check with its measured value and limit."""

    name: str
    measured: float | None
    limit: float
    op: str  # ">=" or "<="
    passed: bool
    unit: str = ""

    def line(self) -> str:
        """One human line, e.g. ``parity.task.pooled_cosine_mean 0.9812 < 0.99 (short by 0.0088)``."""
        value = "n/a" if self.measured is None else f"{self.measured:.6g}"
        unit = f" {self.unit}" if self.unit else ""
        if self.passed:
            return f"{self.name} {value}{unit} {self.op} {self.limit:g}{unit}"
        broken = "<" if self.op == ">=" else ">"
        gap = "" if self.measured is None else f" (off by {abs(self.measured - self.limit):.4g}{unit})"
        return f"{self.name} {value}{unit} {broken} {self.limit:g}{unit}{gap}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _check(name: str, measured: Any, limit: float, direction: str, unit: str = "") -> Check:
    value = None if measured is None or (isinstance(measured, float) and math.isnan(measured)) else float(measured)
    if value is None:
        passed = False
    elif direction == "min":
        passed = value >= limit
    else:
        passed = value <= limit
    return Check(name, value, limit, ">=" if direction == "min" else "<=", passed, unit)


def parity_checks(parity: dict[str, Any], gate: Gate, prefix: str = "parity") -> list[Check]:
    """Checks of every applicable gate key against a parity summary (see ``ParityAccumulator``),
    named ``<prefix>.<output or task>.<metric>``."""
    checks: list[Check] = []
    for key, limit in gate.limits.items():
        direction = GATE_KEYS[key][0]
        if key in _OUTPUT_METRIC:
            for name, stats in parity["outputs"].items():
                unit = "dB" if key == "min_psnr_db" else ""
                checks.append(_check(f"{prefix}.{name}.{_OUTPUT_METRIC[key]}", stats[_OUTPUT_METRIC[key]],
                                     limit, direction, unit))
        elif key in parity["task"]:
            checks.append(_check(f"{prefix}.task.{key}", parity["task"][key], limit, direction))
    return checks


def budget_checks(profile: Profile, size_mb: float, peak_memory_mb: float | None,
                  latency: dict[str, float] | None) -> list[Check]:
    """Size, peak-memory and latency checks against the device profile's budgets."""
    checks = [_check("budget.size_mb", size_mb, profile.size_budget_mb, "max", "MB")]
    if peak_memory_mb is not None:
        checks.append(_check("budget.peak_memory_mb", peak_memory_mb, profile.memory_budget_mb, "max", "MB"))
    if latency is not None:
        checks.append(_check("budget.latency_p50_ms", latency["p50_ms"], profile.latency_p50_ms, "max", "ms"))
        checks.append(_check("budget.latency_p90_ms", latency["p90_ms"], profile.latency_p90_ms, "max", "ms"))
    return checks
