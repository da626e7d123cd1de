"""The validation report: one dataclass, serialised to ``report.json``; everyone else reads it."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimport.errors import InputError

REPORT_FILE = "report.json"
SCHEMA_VERSION = 1


def _finite(value: Any) -> Any:
    """Replace NaN/Inf floats (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass
class Report:
    """Everything known about one artifact: model, target, artifact, figures, checks, verdict."""

    model: dict[str, Any]
    target: dict[str, Any]
    artifact: dict[str, Any]
    parity: dict[str, Any]
    performance: dict[str, Any]
    checks: list[dict[str, Any]]
    passed: bool
    tool_versions: dict[str, str]
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c["passed"]]

    def verdict_line(self) -> str:
        """``PASS onnx-int8 ...`` or ``FAIL onnx-int8: <first failed check> (+N more)``."""
        from slimport.validation.gate import Check

        name = f"{self.model.get('name')} -> {self.target.get('name')}"
        if self.passed:
            return f"PASS {name}: {len(self.checks)} checks passed"
        failed = [Check(**c) for c in self.failed_checks]
        more = f" (+{len(failed) - 1} more failed)" if len(failed) > 1 else ""
        worst = self.parity.get("task", {}).get("worst_texts") or []
        where = f"; worst text: {worst[0].get('text', '')!r}" if worst and failed[0].name.startswith("parity") else ""
        return f"FAIL {name}: {failed[0].line()}{more}{where}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (non-finite floats become null)."""
        return _finite(asdict(self))

    def write(self, folder: Path) -> Path:
        """Write ``report.json`` atomically into ``folder``."""
        path = folder / REPORT_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, folder: Path) -> Report:
        """Read ``report.json`` from an artifact folder."""
        path = Path(folder) / REPORT_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InputError(f"{folder} is not a slimport artifact folder: no {REPORT_FILE}") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise InputError(f"{path} is not a slimport report: {exc}") from exc
