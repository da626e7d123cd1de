"""``summary.md``: the release in a few Markdown lines, for a CI job summary or a pull-request comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.md"


def _parity(entry: dict[str, Any]) -> str:
    task = entry["parity"]["task"]
    if "pooled_cosine_mean" in task:
        return f"cos {task['pooled_cosine_mean']:.4f} / {task['pooled_cosine_min']:.4f}"
    if "task_agreement" in task:
        return f"agreement {task['task_agreement']:.3f}"
    return "-"


def render_summary(data: dict[str, Any]) -> str:
    """Markdown: verdict line and one table row per artifact."""
    release = data["release"]
    failed = [e for e in data["artifacts"] if not e["passed"]]
    lines = [f"## {release['name']} {release['version']}: {'PASS' if data['passed'] else 'FAIL'}", ""]
    if failed:
        lines += [f"- **{e['model']} / {e['target']}**: {e['failed_checks'][0]}" for e in failed] + [""]
    lines += ["| model | target | format | size MB | parity | p50 ms | verdict |", "|---|---|---|---|---|---|---|"]
    for e in data["artifacts"]:
        p50 = f"{e['latency']['p50_ms']:.1f}" if e["latency"] else "-"
        lines.append(f"| {e['model']} | {e['target']} | {e['format']} | {e['size_mb']:.1f} | {_parity(e)} | {p50} "
                     f"| {'PASS' if e['passed'] else 'FAIL'} |")
    lines += _baseline_lines(data.get("baseline"))
    return "\n".join(lines) + "\n"


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _baseline_lines(baseline: dict[str, Any] | None) -> list[str]:
    """Deltas against the previous bundle, regressions first."""
    if not baseline:
        return []
    lines = ["", f"### Against {baseline['version']} (parity margin {baseline['margin']:g})", ""]
    lines += [f"- **regression** {r}" for r in baseline["regressions"]]
    lines += ["| model | target | Δ parity | Δ size MB | Δ p50 ms |", "|---|---|---|---|---|"]
    for d in baseline["deltas"]:
        lines.append(f"| {d['model']} | {d['target']} | {_number(d['parity'], '+.4f')} | "
                     f"{_number(d['size_mb'], '+.2f')} | {_number(d['latency_p50_ms'], '+.1f')} |")
    return lines


def write_summary(bundle: Path, data: dict[str, Any]) -> Path:
    """Write ``summary.md`` at the top of ``bundle``."""
    path = bundle / SUMMARY_FILE
    path.write_text(render_summary(data), encoding="utf-8")
    return path
