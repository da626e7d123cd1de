"""``manifest.json``: what a release bundle holds, checked against a JSON Schema on write and read."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from slimport.errors import InputError
from slimport.release.golden import GOLDEN_FILE
from slimport.release.jobs import sha256_file
from slimport.validation.gate import Check
from slimport.validation.report import Report

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


def schema() -> dict[str, Any]:
    """The manifest's JSON Schema (shipped in the package)."""
    return json.loads((resources.files("slimport.release") / "manifest.schema.json").read_text(encoding="utf-8"))


def check(data: dict[str, Any], where: str) -> None:
    """Raise a one-line InputError when ``data`` does not follow the schema."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        path = "/".join(str(p) for p in first.path) or "(top)"
        raise InputError(f"{where}: manifest does not follow its schema at {path}: {first.message[:200]}")


def file_entries(bundle: Path, folder: Path) -> list[dict[str, Any]]:
    """sha256 and size of every file under ``folder``, paths relative to the bundle."""
    return [{"path": p.relative_to(bundle).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file()]


def artifact_entry(bundle: Path, folder: Path, cache_key: str) -> dict[str, Any]:
    """The manifest entry of one artifact folder inside the bundle."""
    report = Report.read(folder)
    files = file_entries(bundle, folder)
    tokenizer_dir = (folder / report.artifact.get("tokenizer_dir", "tokenizer")).relative_to(bundle).as_posix()
    profile = report.target["profile"]
    parity = {"task": {k: v for k, v in report.parity["task"].items() if k != "worst_texts"},
              "outputs": {k: {m: v[m] for m in ("cosine_mean", "cosine_min", "max_abs_error") if m in v}
                          for k, v in report.parity["outputs"].items()}}
    latency = report.performance.get("latency")
    return {
        "model": folder.parent.name,
        "task": report.model["task"],
        "labels": report.model.get("labels"),
        "target": report.target["name"],
        "format": report.artifact["format"],
        "folder": folder.relative_to(bundle).as_posix(),
        "model_file": report.artifact["model_file"],
        "files": files,
        "precision": report.artifact["precision"],
        "profile": profile,
        "budgets": {"size_mb": profile["size_budget_mb"], "memory_mb": profile["memory_budget_mb"],
                    "latency_p50_ms": profile["latency_p50_ms"], "latency_p90_ms": profile["latency_p90_ms"]},
        "gate": report.target["gate"],
        "inputs": report.artifact["inputs"],
        "outputs": report.artifact["outputs"],
        "tokenizer_files": [f for f in files if f["path"].startswith(tokenizer_dir + "/")],
        "validation_sha256": report.parity["validation_data"]["sha256"],
        "calibration_sha256": report.parity["calibration_data"]["sha256"],
        "parity": parity,
        "latency": {k: latency[k] for k in ("p50_ms", "p90_ms")} if latency else None,
        "size_mb": report.artifact["size_mb"],
        "passed": report.passed,
        "failed_checks": [Check(**c).line() for c in report.failed_checks],
        "tool_versions": report.tool_versions,
        "cache_key": cache_key,
        "golden": (folder / GOLDEN_FILE).relative_to(bundle).as_posix(),
    }


def write(bundle: Path, name: str, version: str, created: str, entries: list[dict[str, Any]],
          baseline: dict[str, Any] | None = None, margin: float = 0.0) -> Path:
    """Write ``manifest.json`` (schema-checked) at the top of ``bundle``; with a ``baseline`` manifest
    it records the deltas, and a regression beyond ``margin`` makes the release fail."""
    from slimport.release.baseline import compare

    tools: dict[str, str] = {}
    for entry in entries:
        tools.update(entry["tool_versions"])
    data: dict[str, Any] = {"schema_version": SCHEMA_VERSION,
                            "release": {"name": name, "version": version, "created": created},
                            "passed": all(e["passed"] for e in entries), "tools": tools, "artifacts": entries}
    if baseline is not None:
        data["baseline"] = compare(data, baseline, margin)
        data["passed"] = data["passed"] and not data["baseline"]["regressions"]
    check(data, str(bundle / MANIFEST_FILE))
    path = bundle / MANIFEST_FILE
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def read(bundle: Path) -> dict[str, Any]:
    """Read and schema-check ``manifest.json`` of ``bundle``."""
    path = Path(bundle) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno})") from exc
    check(data, str(path))
    return data
