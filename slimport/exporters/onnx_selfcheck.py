"""The self-check of the speed rewrites that change which values a graph computes (the key trim, the
head-row trim): run the graph before and after on a padded batch and compare every output.

Both rewrites are exact up to float rounding of shorter sums; the tolerance says how much rounding is
allowed, relative to each output's scale. Anything that fails the check, or cannot run, is left as it
was: an optional speed rewrite must never fail an export.
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
from onnx import TensorProto, helper

MASK_INPUT = "attention_mask"
#: outputs of the rewritten graph may differ from the original's by float rounding of shorter sums only:
#: relative to the output's scale, in fp32 graphs and in graphs that compute in fp16 (2 fp16 ulps)
_TOLERANCE = {"fp32": 1e-4, "fp16": 2 * 2.0 ** -10}
#: how many graphs' outputs :func:`_outputs` keeps (outputs of small padded batches: kilobytes)
_REMEMBERED = 4
_RECENT: dict[str, list[np.ndarray]] = {}


def same_outputs(before: onnx.ModelProto, after: onnx.ModelProto) -> bool:
    """Run both graphs on a padded batch (rows of different lengths, the longest padded too) and
    compare every output; False when either cannot run."""
    try:
        feeds = padded_feeds(before)
        results = [_outputs(model, feeds) for model in (before, after)]
    except Exception:  # noqa: BLE001 - an optional speed rewrite must never fail an export
        return False
    fp16 = any(t.data_type == TensorProto.FLOAT16 for t in before.graph.initializer)
    tolerance = _TOLERANCE["fp16" if fp16 else "fp32"]
    for ref, got in zip(*results, strict=True):
        ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
        if ref.shape != got.shape or not np.all(np.isfinite(got) == np.isfinite(ref)):
            return False
        finite = np.isfinite(ref)
        scale = max(1.0, float(np.abs(ref[finite]).max(initial=0.0)))
        if float(np.abs(ref[finite] - got[finite]).max(initial=0.0)) > tolerance * scale:
            return False
    return True


def _outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs on ``feeds``, remembered for the last few graphs: a rewrite that tries a
    second variant (the sequence trim's ``L + 1``) checks it against the same original, and building a
    session for a DistilBERT-size float graph takes seconds."""
    from slimport.validation.runners.ort import open_session

    data = model.SerializeToString()
    digest = hashlib.sha256(data)
    for name, array in sorted(feeds.items()):
        digest.update(f"{name}{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.hexdigest()
    if key not in _RECENT:
        _RECENT[key] = open_session(data, 1).run(None, feeds)
        while len(_RECENT) > _REMEMBERED:
            _RECENT.pop(next(iter(_RECENT)))
    return _RECENT[key]


def padded_feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Inputs for the self-check: batch 2 (or the static batch), 16 positions (or the static length),
    the last row attending to two thirds of them and the others to fewer."""
    dims = {i.name: [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input}
    batch, seq = (dims[MASK_INPUT] + [None, None])[:2]
    batch, seq = batch or 2, seq or 16
    lengths = np.array([max(1, seq * (row + 1) * 2 // (3 * batch)) for row in range(batch)])
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    feeds = {}
    for value in model.graph.input:
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        if value.name == MASK_INPUT:
            array = mask
        elif "ids" in value.name and "type" not in value.name and "position" not in value.name:
            array = (np.arange(batch * seq).reshape(batch, seq) * 7 + 3) % 97 + 1
        elif "position" in value.name:
            array = np.broadcast_to(np.arange(seq), (batch, seq))
        else:
            array = np.zeros((batch, seq))
        feeds[value.name] = np.ascontiguousarray(array).astype(dtype)
    return feeds
