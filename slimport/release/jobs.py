"""The release matrix: one job per (model, target) pair, keyed by the hash of everything it depends on.

A job's cache key covers the checkpoint's files, the resolved target (recipe, profile, gate, options),
the validation and calibration texts, and the versions of slimport, torch, transformers and the
format's converters and runtime. Same key = same artifact, so the build is skipped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from slimport.errors import InputError
from slimport.exporters import get_exporter
from slimport.models.loader import default_model_path
from slimport.release.config import ModelEntry, ReleaseConfig
from slimport.targets import load_target
from slimport.targets.schema import Target
from slimport.validation.corpus import Corpus, builtin_corpus, load_corpus
from slimport.versions import package_versions


@dataclass(frozen=True)
class Job:
    """One (model, target) pair to build."""

    model: ModelEntry
    target: Target
    target_ref: str
    key: str

    @property
    def label(self) -> str:
        """``model/target`` for log lines."""
        return f"{self.model.name}/{self.target.name}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@cache
def _folder_hash(folder: Path) -> str:
    """One hash over every file of a checkpoint folder (relative path + content hash)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(folder)}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def corpora(config: ReleaseConfig) -> tuple[Corpus, Corpus]:
    """The release's validation and calibration corpora (the built-in ones unless configured)."""
    validation = load_corpus(config.validation_data) if config.validation_data else builtin_corpus("validation")
    calibration = load_corpus(config.calibration_data) if config.calibration_data else builtin_corpus("calibration")
    return validation, calibration


def tool_versions(fmt: str) -> dict[str, str]:
    """Versions that decide what a build produces: base packages plus the format's converters."""
    return {**package_versions(), **get_exporter(fmt).tool_versions()}


def plan(config: ReleaseConfig) -> list[Job]:
    """Every job of the release with its cache key."""
    validation, calibration = corpora(config)
    jobs = []
    for model, ref in config.pairs():
        target = load_target(ref)
        inputs: dict[str, Any] = {
            "model": _folder_hash(model.path or default_model_path()),
            "task": model.task,
            "target": target.to_dict(),
            "validation": validation.sha256,
            "calibration": calibration.sha256,
            "tools": tool_versions(target.format),
        }
        key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:32]
        jobs.append(Job(model, target, ref, key))
    names = [(j.model.name, j.target.name) for j in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        model, target = sorted(duplicates)[0]
        raise InputError(f"{config.file}: model '{model}' lists target '{target}' twice")
    return jobs
