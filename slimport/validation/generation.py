"""Validation of decoder language models: prefill logits, decode steps with the KV cache, generation.

For every prompt (a corpus text, tokenized and cut to the profile's prompt length):

1. PyTorch runs the prompt (prefill) and then generates ``new_tokens`` tokens greedily with its
   cache, recording the logits at every prompt position and every decode step.
2. The artifact runs the same prompt and is then fed PyTorch's tokens one at a time (teacher
   forcing), so each decode step sees the same history. Its logits are compared position by
   position: cosine, errors and top-1 agreement (``task_agreement``; where PyTorch's top two logits
   are a near tie, either token counts, see :func:`top1_agreement`). This checks the cache
   plumbing without letting one early divergence spoil every later step.
3. Greedy agreement: if the artifact's own greedy choice ever differs from PyTorch's, it
   generates freely from the prompt. The report gives the share of tokens identical at the same
   position (``generation_agreement_strict``, mean over prompts), the first divergence position, and
   the share of prompts generated identically. ``generation_agreement`` (the gate key) counts a
   prompt whose first divergence is a near tie of PyTorch's own step (``tied_divergences``) as
   agreeing: the artifact took the other of two equally likely greedy continuations.

Generation runs the full ``new_tokens`` steps regardless of end-of-sequence tokens, so every prompt
compares the same number of positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from slimport.validation.metrics import WORST_TEXTS, OutputStats

DEFAULT_NEW_TOKENS = 32
#: top-1 ties: reference logits closer than this x the row's standard deviation (fp32 noise is ~1e-6)
TIE_TOLERANCE = 1e-3


class Decoder(Protocol):
    """A model with an explicit KV cache: logits are fp32 ``[positions, vocab]``."""

    name: str

    def prefill(self, ids: Sequence[int]) -> tuple[np.ndarray, Any]:
        """Run the prompt; returns the logits of every position and the cache."""
        ...

    def step(self, token: int, cache: Any) -> tuple[np.ndarray, Any]:
        """Append one token; returns its logits ``[1, vocab]`` and the grown cache."""
        ...


class TorchDecoder:
    """The PyTorch reference through ``transformers``' own cache (``use_cache=True``)."""

    name = "pytorch-eager-fp32"

    def __init__(self, model: Any) -> None:
        self.model = model

    def _run(self, ids: Sequence[int], cache: Any, past: int) -> tuple[np.ndarray, Any]:
        import torch

        input_ids = torch.tensor([list(ids)], dtype=torch.long)
        mask = torch.ones((1, past + len(ids)), dtype=torch.long)
        positions = torch.arange(past, past + len(ids), dtype=torch.long)[None, :]
        with torch.no_grad():
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                             use_cache=True)
        return out.logits[0].float().numpy(), (out.past_key_values, past + len(ids))

    def prefill(self, ids: Sequence[int]) -> tuple[np.ndarray, Any]:
        """Run the prompt with an empty cache."""
        return self._run(ids, None, 0)

    def step(self, token: int, cache: Any) -> tuple[np.ndarray, Any]:
        """One decode step."""
        past, length = cache
        return self._run([token], past, length)


def greedy(decoder: Decoder, prompt: Sequence[int], new_tokens: int,
           forced: Sequence[int] | None = None) -> tuple[list[int], list[np.ndarray]]:
    """Greedy tokens after ``prompt`` and the logits of every position (prompt rows, then one row per
    step). With ``forced``, those tokens are fed instead of the decoder's own choices; the returned
    tokens are still the decoder's own argmax at each step."""
    logits, cache = decoder.prefill(prompt)
    rows = [logits]
    tokens = [int(np.argmax(logits[-1]))]
    for k in range(new_tokens - 1):
        feed = forced[k] if forced is not None else tokens[-1]
        logits, cache = decoder.step(feed, cache)
        rows.append(logits)
        tokens.append(int(np.argmax(logits[-1])))
    return tokens, rows


def prompt_limit(config: Any, seq_len: int, new_tokens: int, slots: int | None = None) -> int:
    """The longest prompt: the profile's ``seq_len``, leaving room for ``new_tokens`` in the model's context
    (and in the artifact's ``slots`` when its KV cache has a fixed size)."""
    from slimport.models.cached_decoder import model_positions

    context = model_positions(config, 2048)
    context = min(context, slots) if slots else context
    if context <= new_tokens:
        from slimport.errors import InputError

        raise InputError(f"the model's context ({context} tokens) leaves no room for a prompt and {new_tokens} "
                         "generated tokens")
    return max(1, min(seq_len, context - new_tokens))


def prompts(tokenizer: Any, texts: Sequence[str], max_prompt: int) -> list[list[int]]:
    """Token ids of each text (with the tokenizer's own BOS handling), cut to ``max_prompt`` tokens."""
    out = []
    for text in texts:
        ids = list(tokenizer(text, truncation=True, max_length=max_prompt)["input_ids"])
        if not ids:  # an empty text: start from BOS/EOS so there is something to continue
            ids = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id or 0]
        out.append(ids)
    return out


def top1_agreement(ref: np.ndarray, got: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: does the artifact's argmax agree with the reference's, and is the reference's top pair a
    near tie? A row agrees when the artifact picks a token whose *reference* logit is within
    :data:`TIE_TOLERANCE` x the row's standard deviation of the reference's best: two tokens that close
    are a tie any rounding flips (repeated-token prompts give such rows at every position)."""
    chosen = np.nan_to_num(got, nan=-np.inf).argmax(-1)
    finite = np.isfinite(got).all(-1)
    if ref.shape[-1] < 2:
        return near_tie(ref, chosen) & finite, np.zeros(len(ref), dtype=bool)
    runner_up = np.argsort(ref, axis=-1, kind="stable")[:, -2]
    return near_tie(ref, chosen) & finite, near_tie(ref, runner_up)


def near_tie(ref: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Per row of the reference logits ``ref``: is ``tokens[row]``'s logit within :data:`TIE_TOLERANCE` x
    the row's standard deviation of the row's best?"""
    picked = np.take_along_axis(ref, np.asarray(tokens)[:, None], axis=-1)[:, 0]
    return picked >= ref.max(-1) - TIE_TOLERANCE * ref.std(-1)


def generation_parity(reference: Decoder, artifact: Decoder, prompt_ids: list[list[int]],
                      new_tokens: int = DEFAULT_NEW_TOKENS,
                      on_prompt: Callable[[], None] | None = None) -> dict[str, Any]:
    """Compare ``artifact`` with ``reference`` on every prompt (see the module docstring)."""
    logits = OutputStats()
    agree = total = ties = tied_divergences = 0
    shares: list[float] = []
    strict: list[float] = []
    divergence: list[int] = []
    for prompt in prompt_ids:
        ref_tokens, ref_rows = greedy(reference, prompt, new_tokens)
        got_forced, got_rows = greedy(artifact, prompt, new_tokens, forced=ref_tokens)
        for ref, got in zip(ref_rows, got_rows, strict=True):
            logits.update(ref, got.astype(np.float32))
            same, tied = top1_agreement(ref, got)
            agree += int(same.sum())
            total += int(same.size)
            ties += int(tied.sum())
        got_free = ref_tokens if got_forced == ref_tokens else greedy(artifact, prompt, new_tokens)[0]
        matches = [a == b for a, b in zip(ref_tokens, got_free, strict=True)]
        first = matches.index(False) if False in matches else new_tokens
        strict.append(sum(matches) / len(matches))
        # a divergence at a near tie of PyTorch's own step is a second valid greedy continuation
        tied = first < new_tokens and bool(near_tie(ref_rows[first][-1:], [got_free[first]])[0])
        tied_divergences += int(tied)
        shares.append(1.0 if tied else strict[-1])
        divergence.append(first)
        if on_prompt:
            on_prompt()
    order = np.argsort(np.asarray(shares), kind="stable")[:WORST_TEXTS]
    task = {
        "metric": "generation",
        "task_agreement": agree / max(total, 1),
        "generation_agreement": float(np.mean(shares)) if shares else float("nan"),
        "generation_agreement_strict": float(np.mean(strict)) if strict else float("nan"),
        "tied_divergences": tied_divergences,
        "identical_generations": sum(s == 1.0 for s in strict) / max(len(strict), 1),
        "first_divergence_mean": float(np.mean(divergence)) if divergence else float("nan"),
        "first_divergence_min": int(min(divergence)) if divergence else 0,
        "new_tokens": new_tokens,
        "prompts": len(prompt_ids),
        "count": total,
        "near_tie_positions": ties,
        "worst_texts": [{"index": int(i), "score": float(shares[i])} for i in order if shares[i] < 1.0],
    }
    return {"outputs": {"logits": logits.summary()}, "task": task}


def decoder_latency(decoder: Decoder, prompt: Sequence[int], new_tokens: int, runs: int,
                    warmup: int = 2) -> dict[str, float]:
    """Time to first token (prefill of ``prompt``) p50/p90 in ms, and decode tokens/s after it."""
    import time

    prefill_ms, decode_s = [], []
    for index in range(warmup + runs):
        start = time.perf_counter()
        logits, cache = decoder.prefill(prompt)
        first = time.perf_counter()
        token = int(np.argmax(logits[-1]))
        for _ in range(new_tokens):
            logits, cache = decoder.step(token, cache)
            token = int(np.argmax(logits[-1]))
        if index >= warmup:
            prefill_ms.append((first - start) * 1000)
            decode_s.append(time.perf_counter() - first)
    return {"p50_ms": float(np.percentile(prefill_ms, 50)), "p90_ms": float(np.percentile(prefill_ms, 90)),
            "decode_tokens_per_s": float(new_tokens / np.median(decode_s)), "prompt_tokens": len(prompt),
            "decode_tokens": new_tokens, "runs": runs, "metric": "time to first token"}


DECODER_NOTE = ("Decoder latency: p50/p90 are the time to first token (prefill of the profile's prompt length), "
                "with decode tokens/s after it, on this host's CPU with the profile's thread count (capped at "
                "the host's cores); not phone measurements. Peak memory is that of a fresh process loading the "
                "artifact, prefilling the longest prompt and generating the new tokens.")


def validate_decoder(fmt: str, model_path: Path, size_mb: float, source: Any, target: Any, texts: Sequence[str],
                     runs: int, on_prompt: Callable[[], None] | None = None,
                     new_tokens: int = DEFAULT_NEW_TOKENS) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """Full validation of a decoder artifact: returns (parity, performance, checks) like
    :func:`slimport.validation.validate.validate`. Prompts are cut to the profile's ``seq_len`` (less
    when the model's context could not hold the prompt and ``new_tokens``)."""
    from slimport.validation.gate import budget_checks, parity_checks
    from slimport.validation.latency import effective_threads, measure_decoder_peak_memory, performance_record
    from slimport.validation.validate import REFERENCE_NOTE

    profile = target.profile
    threads = effective_threads(profile.threads)
    artifact = artifact_decoder(fmt, model_path, threads)
    reference = TorchDecoder(source.torch_model)
    limit = prompt_limit(source.config, profile.seq_len, new_tokens, getattr(artifact, "context", None))
    prompt_ids = prompts(source.tokenizer, texts, limit)
    parity = generation_parity(reference, artifact, prompt_ids, new_tokens, on_prompt)
    parity["reference"] = reference.name
    parity["runner"] = artifact.name
    longest = max(prompt_ids, key=len)
    timed = runs > 0 and not getattr(artifact, "reference_only", False)
    latency = decoder_latency(artifact, longest, new_tokens, runs) if timed else None
    memory = measure_decoder_peak_memory(DECODER_RUNNERS[fmt], model_path, threads, longest,
                                         new_tokens) if timed else None
    note = REFERENCE_NOTE if getattr(artifact, "reference_only", False) else DECODER_NOTE
    performance = performance_record(artifact.name, artifact.versions(), profile.threads, threads, [1, len(longest)],
                                      latency, memory, note)
    peak = memory["peak_rss_mb"] if memory else None
    checks = parity_checks(parity, target.gate) + budget_checks(profile, size_mb, peak, latency)
    return parity, performance, checks


def artifact_decoder(fmt: str, model_path: Path, threads: int) -> Decoder:
    """The decoder runner registered for ``fmt`` (see :data:`DECODER_RUNNERS`)."""
    from slimport.errors import InputError
    from slimport.validation.runners import load_runner_class

    if fmt not in DECODER_RUNNERS:
        raise InputError(f"decoder artifacts in {fmt} cannot be validated yet; available: {', '.join(DECODER_RUNNERS)}")
    return load_runner_class(DECODER_RUNNERS[fmt])(model_path, threads)


#: format -> "module:Class" of its decoder runner
DECODER_RUNNERS: dict[str, str] = {
    "onnx": "slimport.validation.runners.ort_decoder:OrtDecoder",
    "tflite": "slimport.validation.runners.litert_decoder:LiteRtDecoder",
    "coreml": "slimport.validation.runners.coreml_decoder:CoremlDecoder",
}
