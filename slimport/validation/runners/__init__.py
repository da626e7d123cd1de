"""Runners execute an artifact on this host; one module per format, found through a registry."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

from slimport.errors import InputError

#: format name -> "module:Class"
RUNNERS: dict[str, str] = {
    "onnx": "slimport.validation.runners.ort:OrtRunner",
    "tflite": "slimport.validation.runners.litert:LiteRtRunner",
    "coreml": "slimport.validation.runners.coreml:CoremlRunner",
}


class Runner(Protocol):
    """Runs one artifact file. Feeds are int64 arrays keyed by input name; the runner casts them."""

    name: str
    input_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once and return outputs keyed by name."""
        ...

    def versions(self) -> dict[str, str]:
        """Versions of the runtime packages used."""
        ...


def get_runner(fmt: str, model_path: Path, threads: int) -> Runner:
    """Instantiate the runner registered for ``fmt``."""
    if fmt not in RUNNERS:
        raise InputError(f"no runner for format '{fmt}'; available: {', '.join(RUNNERS)}")
    module_name, cls_name = RUNNERS[fmt].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(model_path, threads)
