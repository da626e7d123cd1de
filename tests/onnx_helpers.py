"""Helpers shared by the tests of the ONNX graph rewrites: catch the graph a rewrite is handed, run a
graph (with extra intermediate outputs), and build padded feeds."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import onnx
from onnx import helper

from slimport import export
from slimport.targets import load_target
from slimport.validation.runners.ort import ORT_TO_NUMPY, open_session


def graph_handed_to(module: Any, function: str, ckpt, out, monkeypatch) -> onnx.ModelProto:
    """The float graph ``module.function`` is handed during an ``onnx-fp32`` export of ``ckpt`` (the
    function itself is skipped: it returns 0)."""
    seen = []
    monkeypatch.setattr(module, function, lambda model: seen.append(copy.deepcopy(model)) or 0)
    export(model=ckpt, target=load_target("onnx-fp32"), out=out, latency_runs=0)
    monkeypatch.undo()
    return seen[0]


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], extra_outputs: tuple[str, ...] = ()) -> list:
    """The graph's outputs, then the tensors named in ``extra_outputs``, on one thread; each feed is
    cast to its input's type."""
    model = copy.deepcopy(model)
    model.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in extra_outputs)
    session = open_session(model.SerializeToString(), 1)
    return session.run(None, {i.name: feeds[i.name].astype(ORT_TO_NUMPY[i.type]) for i in session.get_inputs()})


def feeds_for(mask: np.ndarray) -> dict[str, np.ndarray]:
    """Encoder inputs for ``mask``: distinct ids where it attends, 0 elsewhere, token types 0."""
    ids = (np.arange(mask.size).reshape(mask.shape) * 11 + 5) % 90 + 2
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}


def right_padded(lengths: list[int], seq: int) -> np.ndarray:
    """An int64 mask, one row per length, attending to the first ``length`` of ``seq`` positions."""
    return (np.arange(seq)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
