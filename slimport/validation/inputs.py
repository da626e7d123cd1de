"""Turn texts into model feeds shaped by a device profile."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimport.errors import InputError
from slimport.targets.schema import Profile
from slimport.validation.corpus import TextInput


@dataclass
class Batch:
    """One batch of int64 feeds; ``rows`` real texts (the rest repeat the last one to fill a static batch).

    ``context`` (text pairs only) marks the second text's tokens, where an answer span can lie.
    """

    feeds: dict[str, np.ndarray]
    rows: int
    context: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """Attention mask of the real rows, as bool."""
        return self.feeds["attention_mask"][: self.rows].astype(bool)

    @property
    def answer_context(self) -> np.ndarray | None:
        """``context`` of the real rows (None for single texts)."""
        return None if self.context is None else self.context[: self.rows]


def max_length(tokenizer: Any, profile: Profile) -> int:
    """Longest sequence fed to the artifact.

    Static shapes: the profile's ``seq_len`` (capped by the tokenizer). Dynamic shapes accept any
    length the model takes, so they are validated up to the tokenizer's maximum (e.g. 512), not
    only up to the profile's ``seq_len``, which sets the latency shape.
    """
    limit = getattr(tokenizer, "model_max_length", None)
    limit = int(limit) if limit and limit < 1_000_000 else profile.seq_len
    return min(profile.seq_len, limit) if profile.static_shape else limit


def encode(tokenizer: Any, texts: Sequence[TextInput], profile: Profile, length: int | None = None
           ) -> dict[str, np.ndarray]:
    """Tokenize ``texts`` with truncation; pad to the profile length (static) or to the longest text (with
    id 0 and attention 0 when the tokenizer has no pad token). Text pairs (question, context) are
    encoded as the tokenizer's pair template (second segment with token type 1), the longer text
    truncated first."""
    return _encode(tokenizer, texts, profile, length)[0]


def _second_segment(encoded: Any, rows: int, width: int) -> np.ndarray | None:
    """Bool ``[rows, width]``: True on the tokens of each pair's second text (``sequence_ids`` of a fast
    tokenizer's encoding); None when the tokenizer does not tell."""
    try:
        ids = [encoded.sequence_ids(i) for i in range(rows)]
    except (ValueError, AttributeError):  # slow tokenizers keep no encodings
        return None
    return np.asarray([[s == 1 for s in row] + [False] * (width - len(row)) for row in ids], dtype=bool)


def _encode(tokenizer: Any, texts: Sequence[TextInput], profile: Profile, length: int | None = None
            ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """:func:`encode`, plus the second-text mask of text pairs (:func:`_second_segment`)."""
    seq = length or max_length(tokenizer, profile)
    context = None
    pairs = bool(texts) and isinstance(texts[0], tuple)
    segments = ([t[0] for t in texts], [t[1] for t in texts]) if pairs else (list(texts),)
    if not pairs and getattr(tokenizer, "pad_token_id", None) is None:  # decoder tokenizers often have none
        rows = tokenizer(list(texts), truncation=True, max_length=seq)
        width = seq if profile.static_shape else max(len(ids) for ids in rows["input_ids"])
        feeds = {k: np.asarray([list(r) + [0] * (width - len(r)) for r in v], dtype=np.int64)
                 for k, v in rows.items()}
    else:  # truncation=True is "longest_first": of a pair, the longer text loses tokens first
        encoded = tokenizer(
            *segments,
            padding="max_length" if profile.static_shape else "longest",
            truncation=True,
            max_length=seq,
            return_tensors="np",
        )
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in encoded.items()}
        if pairs:
            context = _second_segment(encoded, *feeds["input_ids"].shape)
    feeds.setdefault("token_type_ids", np.zeros_like(feeds["input_ids"]))
    return feeds, context


def check_pair_token_types(tokenizer: Any, config: Any, texts: Sequence[TextInput], profile: Profile,
                           name: str) -> None:
    """Refuse text pairs whose second text the tokenizer marks with a token type the model has no
    embedding for (a BERT tokenizer beside a RoBERTa model: ``type_vocab_size = 1``), in one line,
    before anything runs."""
    limit = getattr(config, "type_vocab_size", None)
    if not texts or not isinstance(texts[0], tuple) or not limit:
        return
    highest = int(encode(tokenizer, [texts[0]], profile)["token_type_ids"].max())
    if highest >= limit:
        raise InputError(f"{name}'s tokenizer gives the second text of a pair token type {highest}, but the model "
                         f"has type_vocab_size = {limit}; ship the model's own tokenizer with the checkpoint")


def batches(tokenizer: Any, texts: Sequence[TextInput], profile: Profile) -> Iterator[Batch]:
    """Yield feeds batch by batch at the profile's batch size (the last batch filled by repetition)."""
    size = profile.batch
    for start in range(0, len(texts), size):
        chunk = list(texts[start : start + size])
        rows = len(chunk)
        chunk += [chunk[-1]] * (size - rows)
        feeds, context = _encode(tokenizer, chunk, profile)
        yield Batch(feeds, rows, context)


def latency_feeds(tokenizer: Any, text: TextInput, profile: Profile) -> dict[str, np.ndarray]:
    """Feeds at the profile's full shape (batch x seq_len, capped by the model), for latency and memory."""
    static = Profile(**{**profile.to_dict(), "static_shape": True})
    return encode(tokenizer, [text] * profile.batch, static, length=max_length(tokenizer, static))
