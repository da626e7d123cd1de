"""``report.html``: one self-contained page per release (Jinja2 template, matplotlib plots as inline SVG).

Nothing is loaded from the network: styles are inline and plots are SVG markup in the page.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

REPORT_FILE = "report.html"


def _parity(entry: dict[str, Any]) -> tuple[str, float | None]:
    task = entry["parity"]["task"]
    if "pooled_cosine_mean" in task:
        return f"cos {task['pooled_cosine_mean']:.4f} / {task['pooled_cosine_min']:.4f}", task["pooled_cosine_min"]
    if "task_agreement" in task:
        return f"agreement {task['task_agreement']:.3f}", task["task_agreement"]
    return "-", None


def _max_abs(entry: dict[str, Any]) -> float:
    return max((o.get("max_abs_error", 0.0) for o in entry["parity"]["outputs"].values()), default=0.0)


def _svg(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG sits inside HTML


def _plots(entries: list[dict[str, Any]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{e['model']}/{e['target']}" for e in entries]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [e["size_mb"] for e in entries]
    ys = [e["latency"]["p50_ms"] if e["latency"] else 0.0 for e in entries]
    colours = [(_parity(e)[1] if _parity(e)[1] is not None else 0.0) for e in entries]
    points = ax.scatter(xs, ys, c=colours, cmap="viridis", vmin=min(colours + [0.9]), vmax=1.0, s=60)
    for x, y, label in zip(xs, ys, labels, strict=True):
        ax.annotate(label, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("size (MB)")
    ax.set_ylabel("latency p50 (ms, host CPU; 0 = not measured)")
    fig.colorbar(points, ax=ax, label="parity")
    size_latency = _svg(fig)
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.35 * len(entries) + 1)))
    errors = [max(_max_abs(e), 1e-9) for e in entries]
    ax.barh(labels, errors, color=["#2e7d32" if e["passed"] else "#c62828" for e in entries])
    ax.set_xscale("log")
    ax.set_xlabel("max abs error vs PyTorch")
    ax.invert_yaxis()
    return {"size_latency": size_latency, "errors": _svg(fig)}


def render_html(data: dict[str, Any]) -> str:
    """The report page for a manifest ``data``."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("slimport.release", "templates"), autoescape=select_autoescape(["html"]))
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in data["artifacts"]:
        latency = entry["latency"]
        by_model[entry["model"]].append({
            **entry, "parity_text": _parity(entry)[0], "max_abs": _max_abs(entry),
            "latency_text": f"{latency['p50_ms']:.1f} / {latency['p90_ms']:.1f}" if latency else "not measured"})
    return env.get_template("report.html.j2").render(
        release=data["release"], passed=data["passed"], tools=data["tools"], artifacts=data["artifacts"],
        failed=[e for e in data["artifacts"] if not e["passed"]], by_model=dict(by_model),
        baseline=data.get("baseline"),
        plots=_plots(data["artifacts"]))


def write_html(bundle: Path, data: dict[str, Any]) -> Path:
    """Write ``report.html`` at the top of ``bundle``."""
    path = bundle / REPORT_FILE
    path.write_text(render_html(data), encoding="utf-8")
    return path
