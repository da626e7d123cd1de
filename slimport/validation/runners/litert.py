"""LiteRT runner for ``.tflite`` artifacts: ai-edge-litert's interpreter with its default XNNPACK delegate.

The old ``tflite-runtime`` 2.14 wheel is deliberately not used: it returned wrong outputs for
dynamic-range int8 models and could not load newer op versions (shared/design TFLite trial).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import InputError


def open_interpreter(model_path: Path, threads: int) -> tuple[Any, dict[str, Any]]:
    """ai-edge-litert's interpreter for ``model_path`` and its signature list; one-line error if it cannot load."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
        signatures = interpreter.get_signature_list()
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise InputError(f"ai-edge-litert cannot load {model_path}: {first}") from exc
    if not signatures:
        raise InputError(f"{model_path} has no signature; slimport artifacts are called through one")
    return interpreter, signatures


def litert_versions() -> dict[str, str]:
    """ai-edge-litert version."""
    from importlib.metadata import version

    return {"ai-edge-litert": version("ai-edge-litert")}


class LiteRtRunner:
    """Runs one signature of a ``.tflite`` model at a fixed thread count; int outputs are dequantized."""

    name = "ai-edge-litert"

    def __init__(self, model_path: Path, threads: int, signature: str | None = None) -> None:
        interpreter, signatures = open_interpreter(model_path, threads)
        self.signature = signature or ("serving_default" if "serving_default" in signatures else sorted(signatures)[0])
        if self.signature not in signatures:
            raise InputError(f"{model_path} has no signature '{self.signature}' (has: {', '.join(signatures)})")
        self._runner = interpreter.get_signature_runner(self.signature)
        inputs = self._runner.get_input_details()
        self.input_names = sorted(inputs, key=lambda k: inputs[k]["index"])
        self._dtypes = {name: inputs[name]["dtype"] for name in self.input_names}
        self._outputs = self._runner.get_output_details()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; feeds the model does not take are dropped, dtypes cast to the model's."""
        inputs = {name: np.ascontiguousarray(feeds[name], dtype=self._dtypes[name]) for name in self.input_names}
        values = self._runner(**inputs)
        return {name: self._dequantize(name, value) for name, value in values.items()}

    def _dequantize(self, name: str, value: np.ndarray) -> np.ndarray:
        """Integer outputs of a fully quantized graph back to float with their scale and zero point."""
        if not np.issubdtype(value.dtype, np.integer):
            return value
        scale, zero_point = self._outputs[name]["quantization"]
        return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32) if scale else value

    def versions(self) -> dict[str, str]:
        """ai-edge-litert version."""
        return litert_versions()
