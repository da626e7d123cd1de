"""Compare a release with a previous bundle: per-pair deltas, and regressions beyond the margin.

The parity figure compared is the one the task's gate leans on: the worst-text pooled cosine for
embeddings, top-1 agreement otherwise. A drop larger than the release's ``regression_margin``
fails the release even when every gate passes.
"""

from __future__ import annotations

from typing import Any


def parity_figure(entry: dict[str, Any]) -> tuple[str, float | None]:
    """(name, value) of the parity figure compared across releases."""
    task = entry["parity"]["task"]
    for key in ("pooled_cosine_min", "task_agreement"):
        if key in task:
            return key, float(task[key])
    return "none", None


def compare(current: dict[str, Any], baseline: dict[str, Any], margin: float) -> dict[str, Any]:
    """Deltas per (model, target) present in both manifests, and the regressions beyond ``margin``."""
    before = {(a["model"], a["target"]): a for a in baseline["artifacts"]}
    deltas, regressions = [], []
    for entry in current["artifacts"]:
        old = before.get((entry["model"], entry["target"]))
        if old is None:
            continue
        name, now = parity_figure(entry)
        _, was = parity_figure(old)
        delta = {
            "model": entry["model"], "target": entry["target"], "parity_metric": name,
            "parity": None if now is None or was is None else now - was,
            "size_mb": entry["size_mb"] - old["size_mb"],
            "latency_p50_ms": (entry["latency"]["p50_ms"] - old["latency"]["p50_ms"]
                               if entry["latency"] and old["latency"] else None),
        }
        deltas.append(delta)
        if delta["parity"] is not None and delta["parity"] < -margin:
            regressions.append(f"{entry['model']}/{entry['target']}: {name} fell from {was:.4f} to {now:.4f} "
                               f"(margin {margin:g})")
    return {"version": baseline["release"]["version"], "margin": margin, "deltas": deltas,
            "regressions": regressions}
