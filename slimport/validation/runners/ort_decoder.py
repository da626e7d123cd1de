"""ONNX Runtime runner for decoders exported with a KV cache (optimum ``text-generation-with-past``).

The model takes ``input_ids``, ``attention_mask``, ``position_ids`` and ``past_key_values.<i>.key /
.value`` ``[batch, kv_heads, past, head_dim]`` and returns ``logits`` and ``present.<i>.key/.value``.
Prefill runs with an empty cache (past length 0); each step feeds one token with the presents of
the previous call as the past. Names and cache shapes are read from the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import InputError
from slimport.validation.runners.ort import ORT_TO_NUMPY, open_session


class OrtDecoder:
    """Runs a decoder ``.onnx`` with its cache on the CPU; logits are returned as fp32."""

    name = "onnxruntime-decoder"

    def __init__(self, model_path: Path, threads: int) -> None:
        self.session = open_session(model_path, threads)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.past_names = [n for n in self.inputs if n.startswith("past_key_values.")]
        if "input_ids" not in self.inputs or not self.past_names:
            raise InputError(f"{model_path.name} is not a decoder with a KV cache (no input_ids/past_key_values "
                             "inputs)")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.present_for = {p: p.replace("past_key_values.", "present.") for p in self.past_names}

    def _empty_cache(self) -> dict[str, np.ndarray]:
        cache = {}
        for name in self.past_names:
            spec = self.inputs[name]
            heads, dim = spec.shape[1], spec.shape[3]
            if not isinstance(heads, int) or not isinstance(dim, int):
                raise InputError(f"cannot size the KV cache from input {name} with shape {spec.shape}")
            cache[name] = np.zeros((1, heads, 0, dim), dtype=ORT_TO_NUMPY.get(spec.type, np.float32))
        return cache

    def _feed(self, name: str, values: np.ndarray) -> np.ndarray:
        return values.astype(ORT_TO_NUMPY.get(self.inputs[name].type, np.int64))

    def _run(self, ids: Sequence[int], past: dict[str, np.ndarray], length: int) -> tuple[np.ndarray, Any]:
        feeds = dict(past)
        feeds["input_ids"] = self._feed("input_ids", np.asarray([list(ids)]))
        if "attention_mask" in self.inputs:
            feeds["attention_mask"] = self._feed("attention_mask", np.ones((1, length + len(ids))))
        if "position_ids" in self.inputs:
            feeds["position_ids"] = self._feed("position_ids", np.arange(length, length + len(ids))[None, :])
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))
        present = {name: outputs[self.present_for[name]] for name in self.past_names}
        return outputs["logits"][0].astype(np.float32), (present, length + len(ids))

    def prefill(self, ids: Sequence[int]) -> tuple[np.ndarray, Any]:
        """Run the prompt with an empty cache."""
        return self._run(ids, self._empty_cache(), 0)

    def step(self, token: int, cache: Any) -> tuple[np.ndarray, Any]:
        """One decode step."""
        past, length = cache
        return self._run([token], past, length)

    def versions(self) -> dict[str, str]:
        """onnxruntime version."""
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__}
