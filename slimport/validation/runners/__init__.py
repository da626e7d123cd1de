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

#: format name -> "module:Class" of the platform's own runtime, used *as well* where it is available
#: (the class's static ``available()`` says so); e.g. Core ML's ``MLModel.predict`` on macOS.
NATIVE_RUNNERS: dict[str, str] = {
    "coreml": "slimport.validation.runners.coreml:CoremlNativeRunner",
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


def load_runner_class(spec: str) -> type:
    """The class a ``"module:Class"`` spec names."""
    module_name, cls_name = spec.split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def get_runner(fmt: str, model_path: Path, threads: int) -> Runner:
    """Instantiate the runner registered for ``fmt``."""
    if fmt not in RUNNERS:
        raise InputError(f"no runner for format '{fmt}'; available: {', '.join(RUNNERS)}")
    return load_runner_class(RUNNERS[fmt])(model_path, threads)


def get_native_runner(fmt: str, model_path: Path, threads: int) -> Runner | None:
    """The platform runtime's runner for ``fmt`` when this host has it (see :data:`NATIVE_RUNNERS`), else None."""
    if fmt not in NATIVE_RUNNERS:
        return None
    cls = load_runner_class(NATIVE_RUNNERS[fmt])
    return cls(model_path, threads) if cls.available() else None
