"""A decoder LM as a pure function of an explicit, fixed-size KV cache, for converters that trace PyTorch.

LiteRT and Core ML programs have no growing tensors, so the cache is an input of fixed shape
``[layers, 1, kv_heads, context, head_dim]`` (``k_cache``, ``v_cache``) that the app owns. One call
takes ``T`` new tokens at positions ``input_pos`` (``T`` = the prefill length, or 1 for a decode
step) and returns their ``logits`` ``[1, T, vocab]`` and their keys/values ``k_new``/``v_new``
``[layers, 1, kv_heads, T, head_dim]``. The app writes ``k_new[..., t, :]`` into cache slot
``input_pos[t]``: only ``T`` rows move per step, never the whole cache.

Inside, each layer attends over ``concat(cache, new)`` with a 4-D additive mask built here (not by
``transformers``' mask builder, which does not trace under torch 2.13): cache slot ``j`` is
visible when ``j < input_pos[0]`` (slots at or past the first new position hold stale or padded
rows), new token ``i`` is visible to new token ``t`` when ``i <= t``. Prefill may therefore be padded
at the end and run in chunks: padded rows land in slots that later tokens overwrite before they
become visible.
"""

from __future__ import annotations

from typing import Any

#: added to masked attention scores; fp16-representable, far below any real score
MASKED = -30000.0

#: attention as traced: ``sdpa`` takes the 4-D mask alone (GPT-2's eager path also slices a causal
#: buffer of ``n_positions`` rows, which cache + new keys outgrow)
ATTENTION = "sdpa"

INPUTS = ("input_ids", "input_pos", "k_cache", "v_cache")
OUTPUTS = ("logits", "k_new", "v_new")


def cache_geometry(config: Any) -> dict[str, int]:
    """layers, heads, kv_heads, head_dim and hidden size of a decoder config (GPT-2, Llama, Phi, Phi-3
    naming)."""
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return {"layers": int(layers), "heads": int(heads), "kv_heads": int(kv_heads), "head_dim": int(head_dim),
            "hidden": int(hidden)}


def model_positions(config: Any, default: int) -> int:
    """The longest sequence the decoder's position handling covers (``max_position_embeddings``, GPT-2's
    ``n_positions``), or ``default`` when the config names none."""
    return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or default)


def cache_shape(config: Any, context: int) -> tuple[int, int, int, int, int]:
    """Shape of ``k_cache``/``v_cache`` for ``context`` slots."""
    g = cache_geometry(config)
    return (g["layers"], 1, g["kv_heads"], context, g["head_dim"])


def cached_module(model: Any, context: int) -> Any:
    """Wrap a ``transformers`` causal LM as ``forward(input_ids, input_pos, k_cache, v_cache) ->
    {logits, k_new, v_new}`` (int32 ids and positions ``[1, T]``, fp32 caches)."""
    import torch
    from transformers.cache_utils import Cache, CacheLayerMixin

    class ConcatLayer(CacheLayerMixin):
        """One layer: the fixed cache with the new rows appended; keeps the new rows for the output."""

        def __init__(self, keys: Any, values: Any) -> None:
            super().__init__()
            self.keys, self.values = keys, values
            self.is_initialized = True
            self.new: tuple[Any, Any] | None = None

        def lazy_initialization(self, key_states: Any) -> None:  # the cache always exists
            return None

        def update(self, key_states: Any, value_states: Any, cache_kwargs: Any = None) -> tuple[Any, Any]:
            self.new = (key_states, value_states)
            return torch.cat([self.keys, key_states], dim=2), torch.cat([self.values, value_states], dim=2)

        def get_mask_sizes(self, cache_position: Any) -> tuple[int, int]:
            return context + int(cache_position.shape[0]), 0

        def get_seq_length(self) -> int:
            return 0

        def get_max_cache_shape(self) -> int:
            return context

    class CachedDecoder(torch.nn.Module):
        """See the module docstring."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, input_pos: Any, k_cache: Any, v_cache: Any) -> dict[str, Any]:
            positions = input_pos.long()
            # built from ranks and broadcasts only, so converters keep T dynamic (Core ML RangeDim)
            order = torch.cumsum(torch.ones_like(positions), dim=1) - 1  # [1, T]: 0 .. T-1
            slots = torch.arange(context, device=positions.device)[None, None, None, :]
            cache_visible = (slots < positions[:, :1, None, None]).to(k_cache.dtype)  # [1, 1, 1, context]
            rows = (order[:, None, :, None] * 0).to(k_cache.dtype)  # [1, 1, T, 1] zeros
            new_visible = (order[:, None, None, :] <= order[:, None, :, None]).to(k_cache.dtype)  # [1, 1, T, T]
            visible = torch.cat([cache_visible + rows, new_visible + rows], dim=3)  # [1, 1, T, context + T]
            mask = (1.0 - visible) * MASKED
            layers = [ConcatLayer(k_cache[i], v_cache[i]) for i in range(k_cache.shape[0])]
            config = self.model.config
            saved, config._attn_implementation = config._attn_implementation, ATTENTION  # noqa: SLF001
            try:
                out = self.model(input_ids=input_ids.long(), attention_mask=mask, position_ids=positions,
                                 cache_position=positions[0], past_key_values=Cache(layers=layers), use_cache=True,
                                 return_dict=True)
            finally:
                config._attn_implementation = saved  # noqa: SLF001
            k_new = torch.stack([layer.new[0] for layer in layers])
            v_new = torch.stack([layer.new[1] for layer in layers])
            return {"logits": out.logits, "k_new": k_new, "v_new": v_new}

    return CachedDecoder().eval()


def sample_call(config: Any, tokens: int, context: int) -> dict[str, Any]:
    """Example inputs for tracing one signature: ``tokens`` new tokens over a ``context``-slot cache."""
    import torch

    shape = cache_shape(config, context)
    return {"input_ids": torch.zeros((1, tokens), dtype=torch.int32),
            "input_pos": torch.arange(tokens, dtype=torch.int32)[None, :],
            "k_cache": torch.zeros(shape), "v_cache": torch.zeros(shape)}


def fixed_shape(config: Any, profile: Any) -> tuple[int, int]:
    """(prefill length, cache slots) for ``profile``: slots = the profile's ``context`` capped at the
    model's position limit; prefill = the profile's ``seq_len``, less than the slots."""
    slots = min(int(profile.context), model_positions(config, profile.context))
    return max(1, min(int(profile.seq_len), slots - 1)), slots


def kv_cache_contract(config: Any, prefill_len: int, slots: int) -> dict[str, Any]:
    """What an app must know to drive the cache; goes into the artifact's precision description."""
    return {"layout": "k_cache/v_cache [layers, 1, kv_heads, context, head_dim]; write k_new/v_new rows "
                      "[layers, 1, kv_heads, T, head_dim] into slots input_pos",
            "context": slots, "prefill_len": prefill_len, "shape": list(cache_shape(config, slots)),
            "inputs": list(INPUTS), "outputs": list(OUTPUTS)}


def save_generation_config(model: Any, folder: Any) -> list[str]:
    """Write the model's ``generation_config.json`` into ``folder``; returns the file names written."""
    config = getattr(model, "generation_config", None)
    if config is None:
        return []
    config.save_pretrained(folder)
    return ["generation_config.json"]


def describe_fixed_cache(artifact: Any, source: Any, target: Any, prefill_len: int, slots: int, calls: str) -> None:
    """What every fixed-cache exporter adds to its artifact: ``generation_config.json`` beside the model,
    the cache contract in ``precision.kv_cache``, and notes on how to ``calls`` the model."""
    artifact.extra_files = save_generation_config(source.torch_model, artifact.directory)
    artifact.precision["kv_cache"] = kv_cache_contract(source.config, prefill_len, slots)
    if target.precision.keep_float or target.precision.smoothing:
        artifact.notes.append("decoder: keep_float and smoothing are encoder searches; not applied")
    artifact.notes.append(f"decoder: {calls}; the app keeps the {slots}-slot KV cache and writes k_new/v_new into it")
