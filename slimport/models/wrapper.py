"""A torch module with the app-facing tensor contract, for converters that trace PyTorch directly.

Converters such as litert-torch and coremltools trace whatever ``forward`` they are given. The
wrapper fixes what an app sees: integer inputs named like the tokenizer's outputs (``input_ids``,
``attention_mask`` and, where the model takes it, ``token_type_ids``), cast to int64 inside the
graph, and outputs named for the task (``last_hidden_state``, ``logits``, ``start_logits`` ...).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from slimport.models.loader import ModelSource

ID_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(source: ModelSource, model: Any = None) -> list[str]:
    """Inputs the model's ``forward`` takes and its tokenizer produces, in :data:`ID_INPUTS` order."""
    model = model if model is not None else source.torch_model
    accepted = inspect.signature(model.forward).parameters
    produced = set(getattr(source.tokenizer, "model_input_names", ID_INPUTS)) | {"input_ids", "attention_mask"}
    return [name for name in ID_INPUTS if name in accepted and name in produced]


def task_module(source: ModelSource, model: Any = None) -> Any:
    """Wrap ``model`` (default: the checkpoint's fp32 module) with the named-tensor contract."""
    import torch

    model = model if model is not None else source.torch_model
    names = tuple(model_inputs(source, model))
    outputs = source.output_names

    class TaskModule(torch.nn.Module):
        """``forward(input_ids, attention_mask[, token_type_ids]) -> {output name: tensor}``."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> dict[str, Any]:
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            result = self.model(**{k: given[k].long() for k in names if given[k] is not None}, return_dict=True)
            return {name: result[name] for name in outputs}

    return TaskModule().eval()


def sample_inputs(source: ModelSource, batch: int, seq_len: int, model: Any = None) -> dict[str, Any]:
    """int32 example inputs of shape ``[batch, seq_len]`` for tracing, keyed by input name."""
    import torch

    encoded = source.tokenizer(["sample text for tracing"] * batch, padding="max_length", truncation=True,
                               max_length=seq_len, return_tensors="np")
    feeds = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
             "token_type_ids": np.zeros_like(encoded["input_ids"])}
    return {k: torch.from_numpy(np.ascontiguousarray(feeds[k], dtype=np.int32)) for k in model_inputs(source, model)}
