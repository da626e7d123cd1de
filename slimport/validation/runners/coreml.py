"""Core ML runners: the Linux ML Program evaluator (:mod:`slimport.validation.mil`), and on macOS
Core ML itself through ``coremltools.models.MLModel.predict``.

The evaluator reproduces the converted program's arithmetic (fp16 storage where the program is fp16),
not the speed of Apple's runtimes, so it reports no latency or memory figures (``reference_only``).
Where the native runner is available, validation runs both and reports and gates both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def evaluator_versions() -> dict[str, str]:
    """coremltools version: the evaluator uses its proto loader and constexpr decoders."""
    from importlib.metadata import version

    return {"coremltools": version("coremltools")}


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
        return evaluator_versions()


class CoremlNativeRunner:
    """Runs a ``.mlpackage`` with Core ML (``MLModel.predict``); macOS only. Compute units come from
    the package's ``slimport.compute_units`` metadata (the target's), so parity and latency are
    those of the units the app will ask for."""

    name = "coreml-mlmodel-predict"
    reference_only = False

    @staticmethod
    def available() -> bool:
        """True on macOS with coremltools' native bindings (``libcoremlpython``) importable."""
        if sys.platform != "darwin":
            return False
        try:
            import coremltools.libcoremlpython  # noqa: F401
        except ImportError:
            return False
        return True

    def __init__(self, model_path: Path, threads: int) -> None:
        import coremltools as ct

        from slimport.validation.mil import program_info

        info = program_info(model_path)
        units = info["metadata"].get("slimport.compute_units", "ALL")
        self._model = ct.models.MLModel(str(model_path), compute_units=getattr(ct.ComputeUnit, units))
        self.input_names = [t["name"] for t in info["inputs"]]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; ids are fed as int32, outputs returned as fp32."""
        outputs = self._model.predict({k: np.asarray(feeds[k], dtype=np.int32) for k in self.input_names})
        return {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}

    def versions(self) -> dict[str, str]:
        """coremltools and macOS versions."""
        import platform
        from importlib.metadata import version

        return {"coremltools": version("coremltools"), "macos": platform.mac_ver()[0]}
