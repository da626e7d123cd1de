"""Core ML runner: the Linux ML Program evaluator (:mod:`slimport.validation.mil`).

It reproduces the converted program's arithmetic (fp16 storage where the program is fp16), not the
speed of Apple's runtimes, so it reports no latency or memory figures (``reference_only``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class CoremlRunner:
    """Runs a ``.mlpackage`` with the NumPy ML Program evaluator; outputs are returned as fp32."""

    name = "slimport-mil-evaluator"
    reference_only = True

    def __init__(self, model_path: Path, threads: int) -> None:
        from slimport.validation.mil import MilInterpreter

        self._interpreter = MilInterpreter(model_path)
        self.input_names = list(self._interpreter.input_names)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; feeds the program does not take are dropped."""
        outputs = self._interpreter.run({k: feeds[k] for k in self.input_names})
        return {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}

    def versions(self) -> dict[str, str]:
        """coremltools version (its proto loader and constexpr decoders are used)."""
        from importlib.metadata import version

        return {"coremltools": version("coremltools")}
