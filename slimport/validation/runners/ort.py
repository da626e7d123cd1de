"""ONNX Runtime runner for ``.onnx`` and ``.ort`` artifacts (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import InputError

ORT_TO_NUMPY = {
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
}


def open_session(model_path: Path | bytes, threads: int) -> Any:
    """A CPU ``InferenceSession`` at ``threads`` intra-op threads, all graph optimizations, sequential
    execution, from a file or from a serialized model's bytes; a model ONNX Runtime cannot load is a
    one-line :class:`InputError`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        source = model_path if isinstance(model_path, bytes) else str(model_path)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        what = "the model" if isinstance(model_path, bytes) else model_path
        raise InputError(f"onnxruntime cannot load {what}: {first}") from exc


class OrtRunner:
    """Runs an ONNX/ORT model with the CPU EP at a fixed intra-op thread count."""

    name = "onnxruntime-cpu"

    def __init__(self, model_path: Path, threads: int) -> None:
        self.session = open_session(model_path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._dtypes = {i.name: ORT_TO_NUMPY.get(i.type, np.int64) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; feeds the runner does not know are dropped, dtypes cast to the model's."""
        inputs = {name: np.ascontiguousarray(feeds[name], dtype=self._dtypes[name]) for name in self.input_names}
        values = self.session.run(None, inputs)
        return dict(zip(self.output_names, values, strict=True))

    def versions(self) -> dict[str, str]:
        """onnxruntime version."""
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__}
