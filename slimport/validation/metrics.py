"""Parity metrics between reference (PyTorch) and artifact outputs, accumulated batch by batch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PSNR_CAP_DB = 200.0


def row_view(array: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Split a batch output into per-text 2-D row blocks, dropping padding positions.

    ``[B, S, H]`` -> the valid token rows of each text; ``[B, S]`` -> one row of valid positions;
    ``[B, C]`` -> one row per text.
    """
    rows = mask.shape[0]
    seq = mask.shape[1]
    blocks = []
    for i in range(rows):
        item = array[i]
        if item.ndim >= 1 and item.shape[0] == seq:
            item = item[mask[i]]
            blocks.append(item.reshape(item.shape[0], -1) if item.ndim > 1 else item[None, :])
        else:
            blocks.append(item.reshape(1, -1))
    return blocks


def _cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    ref64 = ref.astype(np.float64)
    got64 = got.astype(np.float64)
    dot = (ref64 * got64).sum(axis=1)
    norms = np.linalg.norm(ref64, axis=1) * np.linalg.norm(got64, axis=1)
    both_zero = (np.linalg.norm(ref64, axis=1) == 0) & (np.linalg.norm(got64, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    cos = np.where(both_zero, 1.0, cos)
    return np.where(np.isfinite(cos), cos, -1.0)


@dataclass
class OutputStats:
    """Streaming error statistics for one output tensor."""

    rows: int = 0
    values: int = 0
    nonfinite: int = 0
    abs_max: float = 0.0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    ref_peak: float = 0.0
    cos_sum: float = 0.0
    cos_min: float = 1.0

    def update(self, ref: np.ndarray, got: np.ndarray) -> None:
        """Add one block of rows (2-D, same shape in ``ref`` and ``got``)."""
        if ref.size == 0:
            return
        bad = ~np.isfinite(got)
        self.nonfinite += int(bad.sum())
        diff = np.abs(ref.astype(np.float64) - np.where(bad, 0.0, got).astype(np.float64))
        if bad.any():
            diff[bad] = np.inf
        self.abs_max = max(self.abs_max, float(diff.max()))
        self.abs_sum += float(diff.sum())
        self.sq_sum += float((diff**2).sum())
        self.values += int(diff.size)
        self.ref_peak = max(self.ref_peak, float(np.abs(ref).max()))
        cos = _cosines(ref, got)
        self.rows += int(cos.size)
        self.cos_sum += float(cos.sum())
        self.cos_min = min(self.cos_min, float(cos.min()))

    def summary(self) -> dict[str, float | int]:
        """Max/mean abs error, cosine mean/min over rows, PSNR (dB) and the NaN/Inf count."""
        mse = self.sq_sum / max(self.values, 1)
        if mse == 0:
            psnr = PSNR_CAP_DB
        elif math.isinf(mse) or self.ref_peak == 0:
            psnr = -math.inf
        else:
            psnr = min(PSNR_CAP_DB, 10 * math.log10(self.ref_peak**2 / mse))
        return {
            "max_abs_error": self.abs_max,
            "mean_abs_error": self.abs_sum / max(self.values, 1),
            "cosine_mean": self.cos_sum / max(self.rows, 1),
            "cosine_min": self.cos_min,
            "psnr_db": psnr,
            "nonfinite": self.nonfinite,
            "rows": self.rows,
        }


WORST_TEXTS = 5


@dataclass
class TaskStats:
    """Streaming task-level agreement: top-1, QA start/end, or pooled-embedding cosine.

    ``per_text`` keeps one score per text in corpus order (pooled cosine, or the share of the text's
    predictions that agree) so the report can name the texts that diverge most.

    Question answering compares the best start and the best end token among the context's tokens
    (``context``, the second text of each pair), where an answer can lie, as a QA app searches them;
    without a context mask (single texts, slow tokenizers), among every real token.
    """

    task: str
    agree: int = 0
    total: int = 0
    per_text: list[float] = field(default_factory=list)
    in_context: bool = False

    def update(self, ref: dict[str, np.ndarray], got: dict[str, np.ndarray], mask: np.ndarray,
               context: np.ndarray | None = None) -> None:
        """Add one batch (``mask`` and ``context`` cover the real rows only)."""
        rows = mask.shape[0]
        if self.task == "feature-extraction":
            hidden = "last_hidden_state"
            self.per_text.extend(_pooled_cosines(ref[hidden][:rows], got[hidden][:rows], mask))
            return
        if self.task == "question-answering":
            use = [context is not None and bool((mask[i] & context[i]).any()) for i in range(rows)]
            spans = [mask[i] & context[i] if use[i] else mask[i] for i in range(rows)]
            self.in_context = self.in_context or any(use)
            same = np.array([[all(np.argmax(ref[k][i][spans[i]]) == np.argmax(got[k][i][spans[i]])
                                  for k in ("start_logits", "end_logits"))] for i in range(rows)])
            valid = np.ones_like(same, dtype=bool)
        elif self.task == "text-classification":
            same = (ref["logits"][:rows].argmax(-1) == got["logits"][:rows].argmax(-1))[:, None]
            valid = np.ones_like(same, dtype=bool)
        else:  # token-classification, fill-mask: every real token position
            same = ref["logits"][:rows].argmax(-1) == got["logits"][:rows].argmax(-1)
            valid = mask
        self.agree += int(same[valid].sum())
        self.total += int(valid.sum())
        self.per_text.extend(float(same[i][valid[i]].mean()) for i in range(rows))

    def worst(self) -> list[dict[str, float | int]]:
        """The texts with the lowest scores (below 1), worst first: ``[{"index", "score"}]``."""
        order = np.argsort(np.asarray(self.per_text), kind="stable")[:WORST_TEXTS]
        return [{"index": int(i), "score": float(self.per_text[i])} for i in order if self.per_text[i] < 1.0]

    def summary(self) -> dict[str, object]:
        """``pooled_cosine_mean/min`` for feature extraction, else ``task_agreement``; plus the worst texts."""
        if self.task == "feature-extraction":
            values = np.asarray(self.per_text) if self.per_text else np.asarray([float("nan")])
            return {"metric": "pooled_cosine", "pooled_cosine_mean": float(values.mean()),
                    "pooled_cosine_min": float(values.min()), "texts": len(self.per_text), "worst_texts": self.worst()}
        metric = "start_end_agreement" if self.task == "question-answering" else "top1_agreement"
        where = {"positions": "context" if self.in_context else "all"} if self.task == "question-answering" else {}
        return {"metric": metric, "task_agreement": self.agree / max(self.total, 1), "count": self.total,
                **where, "worst_texts": self.worst()}


def _pooled_cosines(ref: np.ndarray, got: np.ndarray, mask: np.ndarray) -> list[float]:
    weights = mask[..., None].astype(np.float64)
    denom = np.clip(weights.sum(axis=1), 1e-9, None)
    ref_pool = (ref.astype(np.float64) * weights).sum(axis=1) / denom
    got_pool = (np.nan_to_num(got.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0) * weights).sum(axis=1) / denom
    cos = _cosines(ref_pool, got_pool)
    bad = ~np.isfinite(got).reshape(got.shape[0], -1).all(axis=1)
    return [float(c) if not b else -1.0 for c, b in zip(cos, bad, strict=True)]


class ParityAccumulator:
    """Collects per-output and task statistics over many batches."""

    def __init__(self, task: str, output_names: tuple[str, ...]) -> None:
        self.outputs = {name: OutputStats() for name in output_names}
        self.task = TaskStats(task)

    def update(self, ref: dict[str, np.ndarray], got: dict[str, np.ndarray], mask: np.ndarray,
               context: np.ndarray | None = None) -> None:
        """Add one batch of reference and artifact outputs (``context``: see :class:`TaskStats`)."""
        for name, stats in self.outputs.items():
            if name not in got:
                raise KeyError(f"artifact did not return output '{name}' (it returned {sorted(got)})")
            ref_blocks = row_view(ref[name], mask)
            got_blocks = row_view(got[name], mask)
            for r, g in zip(ref_blocks, got_blocks, strict=True):
                stats.update(r, g.astype(np.float32))
        self.task.update(ref, got, mask, context)

    def summary(self) -> dict[str, object]:
        """``{"outputs": {name: stats}, "task": stats}``."""
        return {"outputs": {n: s.summary() for n, s in self.outputs.items()}, "task": self.task.summary()}
