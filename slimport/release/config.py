"""``release.toml``: which models go out for which targets, parsed with line-numbered errors.

    [release]
    name = "my-app-models"
    version = "1.4.0"
    targets = ["onnx-int8", "android-int8", "ios-fp16", "./targets/custom.toml"]
    workers = 2                              # optional, parallel export processes
    regression_margin = 0.002                # optional, allowed parity drop against --baseline
    validation_data = "./data/val.jsonl"     # optional, as for `slimport export`
    calibration_data = "./data/calib.txt"    # optional

    [[model]]
    name = "search-embedder"                 # folder name in the bundle
    path = "./checkpoints/minilm-finetuned"  # omit for the embedded all-MiniLM-L6-v2
    task = "feature-extraction"              # optional, inferred from the config
    targets = ["android-int8"]               # optional, overrides [release].targets

Paths are relative to the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimport.errors import InputError

_RELEASE_KEYS: dict[str, Any] = {"name": str, "version": str, "targets": list, "workers": int, "validation_data": str,
                 "calibration_data": str, "regression_margin": (int, float)}
_MODEL_KEYS: dict[str, Any] = {"name": str, "path": str, "task": str, "targets": list}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ModelEntry:
    """One model of the release."""

    name: str
    path: Path | None
    task: str | None
    targets: tuple[str, ...]


@dataclass(frozen=True)
class ReleaseConfig:
    """A parsed ``release.toml``."""

    file: Path
    name: str
    version: str
    models: tuple[ModelEntry, ...]
    workers: int = 1
    regression_margin: float = 0.002
    validation_data: Path | None = None
    calibration_data: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def pairs(self) -> list[tuple[ModelEntry, str]]:
        """Every (model, target) pair, in file order."""
        return [(m, t) for m in self.models for t in m.targets]


def _line_of(text: str, pattern: str, start: int = 1) -> int:
    """1-based number of the first line at or after ``start`` matching ``pattern`` (1 when absent)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= start and re.search(pattern, line):
            return number
    return 1


class _Errors:
    """Raises ``file:line: message`` errors pointing at the key they are about."""

    def __init__(self, file: Path, text: str) -> None:
        self.file, self.text = file, text

    def fail(self, message: str, key: str | None = None, start: int = 1) -> None:
        line = _line_of(self.text, rf"^\s*{re.escape(key)}\s*=", start) if key else start
        raise InputError(f"{self.file}:{line}: {message}")

    def check_table(self, table: dict[str, Any], allowed: dict[str, Any], where: str, start: int) -> None:
        for key, value in table.items():
            if key not in allowed:
                self.fail(f"unknown key '{key}' in {where}; allowed: {', '.join(allowed)}", key, start)
            expected = allowed[key]
            if not isinstance(value, expected) or isinstance(value, bool):
                name = getattr(expected, "__name__", "a number")
                self.fail(f"'{key}' in {where} must be {name}, not {type(value).__name__}", key, start)


def _relative(base: Path, value: str | None) -> Path | None:
    return None if value is None else (base / value).expanduser() if not Path(value).is_absolute() else Path(value)


def load_release(path: str | Path) -> ReleaseConfig:
    """Parse and check ``release.toml``; every error names the file and line."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise InputError(f"{file}:{match.group(1) if match else 1}: not valid TOML ({exc})") from exc
    errors = _Errors(file, text)
    for key in data:
        if key not in ("release", "model"):
            errors.fail(f"unknown top-level key '{key}'; a release file has [release] and [[model]] tables", key)
    release = data.get("release")
    if not isinstance(release, dict):
        raise InputError(f"{file}:1: missing [release] table (name, version, targets)")
    release_line = _line_of(text, r"^\s*\[release\]")
    errors.check_table(release, _RELEASE_KEYS, "[release]", release_line)
    for key in ("name", "version"):
        if key not in release:
            raise InputError(f"{file}:{release_line}: [release] needs '{key}'")
    if not _NAME.match(release["name"]):
        errors.fail(f"release name '{release['name']}' must be letters, digits, '.', '_' or '-'", "name", release_line)
    default_targets = release.get("targets", [])
    models_raw = data.get("model", [])
    if not isinstance(models_raw, list) or not models_raw:
        raise InputError(f"{file}:1: no [[model]] tables; a release needs at least one model")
    base = file.parent
    models, seen = [], set()
    for index, entry in enumerate(models_raw, start=1):
        start = [n for n, line in enumerate(text.splitlines(), start=1) if re.match(r"^\s*\[\[model\]\]", line)]
        start_line = start[index - 1] if index - 1 < len(start) else 1
        where = f"[[model]] #{index}"
        errors.check_table(entry, _MODEL_KEYS, where, start_line)
        path = _relative(base, entry.get("path"))
        name = entry.get("name") or (path.name if path else "all-MiniLM-L6-v2")
        if not _NAME.match(name):
            errors.fail(f"model name '{name}' in {where} must be letters, digits, '.', '_' or '-'", "name", start_line)
        if name in seen:
            errors.fail(f"two models are named '{name}'; names must be unique (they name bundle folders)", "name",
                        start_line)
        seen.add(name)
        if path is not None and not path.is_dir():
            errors.fail(f"{where}: checkpoint folder {path} does not exist", "path", start_line)
        targets = entry.get("targets", default_targets)
        if not targets or not all(isinstance(t, str) for t in targets):
            errors.fail(f"{where} has no targets: list target names or files in [release].targets or here",
                        "targets" if "targets" in entry else None, start_line)
        resolved = tuple(str(_relative(base, t)) if t.endswith(".toml") else t for t in targets)
        models.append(ModelEntry(name, path, entry.get("task"), resolved))
    workers = release.get("workers", 1)
    if workers < 1:
        errors.fail("workers must be at least 1", "workers", release_line)
    margin = release.get("regression_margin", 0.002)
    if margin < 0:
        errors.fail("regression_margin must be >= 0", "regression_margin", release_line)
    return ReleaseConfig(file=file, name=release["name"], version=release["version"], models=tuple(models),
                         workers=workers, regression_margin=float(margin),
                         validation_data=_relative(base, release.get("validation_data")),
                         calibration_data=_relative(base, release.get("calibration_data")))
