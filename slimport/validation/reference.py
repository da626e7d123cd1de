"""The reference runner: PyTorch eager fp32 on the same feeds as the artifact."""

from __future__ import annotations

import numpy as np

from slimport.models.loader import ModelSource


class TorchReference:
    """Runs the checkpoint's torch module and returns outputs named like the exported ones."""

    name = "pytorch-eager-fp32"

    def __init__(self, source: ModelSource) -> None:
        import inspect

        self.source = source
        self.model = source.torch_model
        accepted = inspect.signature(self.model.forward).parameters
        self.input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once under ``inference_mode``; outputs keyed by the task's output names."""
        import torch

        tensors = {n: torch.from_numpy(np.asarray(feeds[n], dtype=np.int64)) for n in self.input_names if n in feeds}
        with torch.inference_mode():
            out = self.model(**tensors)
        return {name: getattr(out, name).float().numpy() for name in self.source.output_names}

    def versions(self) -> dict[str, str]:
        """torch version."""
        import torch

        return {"torch": torch.__version__}
