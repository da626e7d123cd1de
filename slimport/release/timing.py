"""Latency and memory for a parallel release, measured one artifact at a time.

Workers that export side by side would time each other's conversions, so with more than one
worker the builds skip latency, and the parent measures each new artifact afterwards, alone, then
rewrites its budget checks and verdict. The parity checks stay as the worker computed them.
"""

from __future__ import annotations

from pathlib import Path

from slimport.models.loader import load_model
from slimport.targets import load_target
from slimport.validation.corpus import Corpus
from slimport.validation.gate import budget_checks
from slimport.validation.report import Report
from slimport.validation.validate import measure_performance


def measure_alone(folder: Path, model_path: str | None, task: str | None, target_ref: str, validation: Corpus,
                  runs: int) -> bool:
    """Measure the artifact in ``folder`` and rewrite its report's performance, budgets and verdict."""
    report = Report.read(folder)
    target = load_target(target_ref)
    source = load_model(model_path, task=task)
    model_file = folder / report.artifact["model_file"]
    performance, _runner, _native = measure_performance(report.artifact["format"], model_file, source, target,
                                                        validation.for_task(source.task).texts, runs=runs,
                                                        warmup=3)
    memory = performance["memory"]["peak_rss_mb"] if performance["memory"] else None
    budgets = [c.to_dict() for c in budget_checks(target.profile, report.artifact["size_mb"], memory,
                                                  performance["latency"])]
    report.checks = [c for c in report.checks if not c["name"].startswith("budget.")] + budgets
    report.performance = performance
    report.passed = all(c["passed"] for c in report.checks)
    report.notes = [*report.notes, "latency and memory measured after the parallel build, one artifact at a time"]
    report.write(folder)
    return report.passed
