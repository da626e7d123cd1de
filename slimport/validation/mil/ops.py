"""One small class per ML Program op, in a registry -- the shape of ONNX's reference evaluator.

Each class computes with NumPy on fp32 (fp16 inputs are widened); the interpreter then stores the
result in the op's declared output dtype, so an fp16 program keeps fp16 storage between ops and
an overflow (``inf``) or ``0 * -inf`` shows up exactly where the program would produce it.
Parameter names follow the MIL op definitions in ``coremltools.converters.mil.mil.ops.defs``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

#: op type -> class
REGISTRY: dict[str, type[MilOp]] = {}


def register(*names: str):
    """Class decorator: register an op class under one or more MIL op types."""

    def wrap(cls: type[MilOp]) -> type[MilOp]:
        for name in names:
            REGISTRY[name] = cls
        return cls

    return wrap


class MilOp:
    """Base: ``run(**params)`` gets the op's parameters as NumPy values (or None when omitted)."""

    op_type: ClassVar[str] = ""

    def __init__(self, op_type: str) -> None:
        self.op_type = op_type

    def run(self, **params: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


def _f(x: Any) -> Any:
    """Widen fp16 to fp32 for computing (storage precision is applied by the interpreter)."""
    arr = np.asarray(x)
    return arr.astype(np.float32) if arr.dtype == np.float16 else arr


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "floor_div": np.floor_divide, "mod": np.mod,
    "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "less": np.less, "less_equal": np.less_equal, "logical_and": np.logical_and,
    "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}


@register(*_BINARY)
class Binary(MilOp):
    """Elementwise binary ops with NumPy broadcasting."""

    def run(self, x: Any, y: Any, **_: Any) -> Any:
        with np.errstate(all="ignore"):  # inf/nan are results to report, not Python warnings
            return _BINARY[self.op_type](_f(x), _f(y))


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(np.float32)


_UNARY = {
    "relu": lambda x: np.maximum(x, 0), "tanh": np.tanh, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "erf": _erf, "square": np.square, "sign": np.sign,
    "floor": np.floor, "ceil": np.ceil, "round": np.round, "sin": np.sin, "cos": np.cos,
    "silu": lambda x: x / (1 + np.exp(-x)), "logical_not": np.logical_not, "identity": lambda x: x,
}


@register(*_UNARY)
class Unary(MilOp):
    """Elementwise unary ops."""

    def run(self, x: Any, **_: Any) -> Any:
        with np.errstate(all="ignore"):
            return _UNARY[self.op_type](_f(x))


@register("rsqrt", "inverse", "log")
class UnaryWithEpsilon(MilOp):
    """``rsqrt``/``inverse``/``log`` add ``epsilon`` to the input first."""

    def run(self, x: Any, epsilon: Any = None, **_: Any) -> Any:
        eps = 1e-12 if epsilon is None else float(epsilon)
        x = _f(x) + np.float32(eps) if self.op_type != "inverse" else _f(x)
        with np.errstate(all="ignore"):
            if self.op_type == "rsqrt":
                return 1 / np.sqrt(x)
            if self.op_type == "log":
                return np.log(x)
            return 1 / (x + np.float32(eps))


@register("gelu")
class Gelu(MilOp):
    """``gelu`` with modes EXACT, TANH_APPROXIMATION and SIGMOID_APPROXIMATION."""

    def run(self, x: Any, mode: Any = "EXACT", **_: Any) -> Any:
        x = _f(x)
        mode = str(mode)
        if mode == "TANH_APPROXIMATION":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        if mode == "SIGMOID_APPROXIMATION":
            return x / (1 + np.exp(-1.702 * x))
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


@register("clip")
class Clip(MilOp):
    """``clip(x, alpha, beta)``."""

    def run(self, x: Any, alpha: Any, beta: Any, **_: Any) -> Any:
        return np.clip(_f(x), _f(alpha), _f(beta))


@register("cast")
class Cast(MilOp):
    """``cast(x, dtype)``; the interpreter applies the declared output dtype."""

    def run(self, x: Any, dtype: Any = None, **_: Any) -> Any:
        return np.asarray(x)


@register("linear")
class Linear(MilOp):
    """``linear(x, weight[out, in], bias)``."""

    def run(self, x: Any, weight: Any, bias: Any = None, **_: Any) -> Any:
        out = _f(x) @ _f(weight).T
        return out + _f(bias) if bias is not None else out


@register("matmul")
class MatMul(MilOp):
    """``matmul(x, y, transpose_x, transpose_y)`` over the last two axes."""

    def run(self, x: Any, y: Any, transpose_x: Any = False, transpose_y: Any = False, **_: Any) -> Any:
        x, y = _f(x), _f(y)
        if transpose_x:
            x = np.swapaxes(x, -1, -2)
        if transpose_y:
            y = np.swapaxes(y, -1, -2)
        return np.matmul(x, y)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


@register("softmax")
class Softmax(MilOp):
    """``softmax(x, axis)``."""

    def run(self, x: Any, axis: Any = -1, **_: Any) -> Any:
        return _softmax(_f(x), int(axis))


@register("layer_norm")
class LayerNorm(MilOp):
    """``layer_norm(x, axes, gamma, beta, epsilon)``."""

    def run(self, x: Any, axes: Any = None, gamma: Any = None, beta: Any = None, epsilon: Any = 1e-5,
            **_: Any) -> Any:
        x = _f(x)
        axes_t = tuple(int(a) for a in np.atleast_1d(axes)) if axes is not None else (-1,)
        mean = x.mean(axis=axes_t, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes_t, keepdims=True)
        out = (x - mean) / np.sqrt(var + np.float32(epsilon))
        if gamma is not None:
            out = out * _f(gamma)
        if beta is not None:
            out = out + _f(beta)
        return out


@register("scaled_dot_product_attention")
class ScaledDotProductAttention(MilOp):
    """``softmax(Q K^T / sqrt(d) + mask) V``; a bool mask means keep where true."""

    def run(self, query: Any, key: Any, value: Any, attn_mask: Any = None, **_: Any) -> Any:
        q, k, v = _f(query), _f(key), _f(value)
        scores = np.matmul(q, np.swapaxes(k, -1, -2)) / np.float32(math.sqrt(q.shape[-1]))
        if attn_mask is not None:
            mask = np.asarray(attn_mask)
            scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + _f(mask)
        return np.matmul(_softmax(scores, -1), v)


@register("reshape")
class Reshape(MilOp):
    """``reshape(x, shape)``; -1 is inferred, 0 copies the input's dimension."""

    def run(self, x: Any, shape: Any, **_: Any) -> Any:
        x = np.asarray(x)
        dims = [int(x.shape[i]) if int(d) == 0 else int(d) for i, d in enumerate(np.asarray(shape))]
        return x.reshape(dims)


@register("transpose")
class Transpose(MilOp):
    """``transpose(x, perm)``."""

    def run(self, x: Any, perm: Any, **_: Any) -> Any:
        return np.transpose(np.asarray(x), [int(p) for p in np.asarray(perm)])


@register("expand_dims")
class ExpandDims(MilOp):
    """``expand_dims(x, axes)``, axes in order."""

    def run(self, x: Any, axes: Any, **_: Any) -> Any:
        out = np.asarray(x)
        rank = out.ndim + len(np.atleast_1d(axes))
        for axis in sorted(int(a) % rank for a in np.atleast_1d(axes)):
            out = np.expand_dims(out, axis)
        return out


@register("squeeze")
class Squeeze(MilOp):
    """``squeeze(x, axes)``; all size-1 axes when ``axes`` is omitted."""

    def run(self, x: Any, axes: Any = None, **_: Any) -> Any:
        x = np.asarray(x)
        return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(int(a) for a in np.atleast_1d(axes)))


@register("gather")
class Gather(MilOp):
    """``gather(x, indices, axis, batch_dims)``; negative indices count from the end."""

    def run(self, x: Any, indices: Any, axis: Any = 0, batch_dims: Any = 0, **_: Any) -> Any:
        if int(batch_dims or 0) != 0:
            raise NotImplementedError("gather with batch_dims != 0")
        x = np.asarray(x)
        idx = np.asarray(indices).astype(np.int64)
        axis = int(axis)
        idx = np.where(idx < 0, idx + x.shape[axis], idx)
        return np.take(x, idx, axis=axis)


@register("gather_along_axis")
class GatherAlongAxis(MilOp):
    """``gather_along_axis(x, indices, axis)``."""

    def run(self, x: Any, indices: Any, axis: Any = 0, **_: Any) -> Any:
        return np.take_along_axis(np.asarray(x), np.asarray(indices).astype(np.int64), axis=int(axis))


@register("shape")
class Shape(MilOp):
    """``shape(x)`` of the actual value (PyMIL's value_inference reads the symbolic type instead)."""

    def run(self, x: Any, **_: Any) -> Any:
        return np.array(np.asarray(x).shape, dtype=np.int32)


@register("concat")
class Concat(MilOp):
    """``concat(values, axis, interleave)``; 0-d shape scalars are joined as 1-d."""

    def run(self, values: Any, axis: Any = 0, interleave: Any = False, **_: Any) -> Any:
        if interleave:
            raise NotImplementedError("concat with interleave")
        arrays = [np.atleast_1d(np.asarray(v)) for v in values]
        return np.concatenate(arrays, axis=int(axis))


@register("stack")
class Stack(MilOp):
    """``stack(values, axis)``."""

    def run(self, values: Any, axis: Any = 0, **_: Any) -> Any:
        return np.stack([np.asarray(v) for v in values], axis=int(axis))


@register("split")
class Split(MilOp):
    """``split(x, num_splits | split_sizes, axis)`` -> several outputs."""

    def run(self, x: Any, num_splits: Any = None, split_sizes: Any = None, axis: Any = 0, **_: Any) -> Any:
        x = np.asarray(x)
        if split_sizes is not None:
            return np.split(x, np.cumsum(np.asarray(split_sizes))[:-1], axis=int(axis))
        return np.split(x, int(num_splits), axis=int(axis))


@register("slice_by_index")
class SliceByIndex(MilOp):
    """``slice_by_index(x, begin, end, stride, begin_mask, end_mask, squeeze_mask)``."""

    def run(self, x: Any, begin: Any, end: Any, stride: Any = None, begin_mask: Any = None, end_mask: Any = None,
            squeeze_mask: Any = None, **_: Any) -> Any:
        x = np.asarray(x)
        n = x.ndim
        stride = np.ones(n, int) if stride is None else np.asarray(stride)
        begin_mask = np.zeros(n, bool) if begin_mask is None else np.asarray(begin_mask)
        end_mask = np.zeros(n, bool) if end_mask is None else np.asarray(end_mask)
        squeeze_mask = np.zeros(n, bool) if squeeze_mask is None else np.asarray(squeeze_mask)
        slices = []
        for i in range(n):
            b = None if begin_mask[i] else int(np.asarray(begin)[i])
            e = None if end_mask[i] else int(np.asarray(end)[i])
            slices.append(int(b) if squeeze_mask[i] else slice(b, e, int(stride[i])))
        return x[tuple(slices)]


@register("slice_by_size")
class SliceBySize(MilOp):
    """``slice_by_size(x, begin, size)``; size -1 runs to the end."""

    def run(self, x: Any, begin: Any, size: Any, **_: Any) -> Any:
        x = np.asarray(x)
        index = tuple(slice(int(b), None if int(s) == -1 else int(b) + int(s))
                      for b, s in zip(np.asarray(begin), np.asarray(size), strict=True))
        return x[index]


@register("select")
class Select(MilOp):
    """``select(cond, a, b)``."""

    def run(self, cond: Any, a: Any, b: Any, **_: Any) -> Any:
        return np.where(np.asarray(cond).astype(bool), _f(a), _f(b))


@register("tile")
class Tile(MilOp):
    """``tile(x, reps)``."""

    def run(self, x: Any, reps: Any, **_: Any) -> Any:
        return np.tile(np.asarray(x), [int(r) for r in np.asarray(reps)])


@register("pad")
class Pad(MilOp):
    """``pad(x, pad, mode, constant_val)``; ``pad`` pairs cover the last axes."""

    def run(self, x: Any, pad: Any, mode: Any = "constant", constant_val: Any = 0.0, **_: Any) -> Any:
        x = _f(x)
        pairs = np.asarray(pad).reshape(-1, 2).astype(int)
        widths = [(0, 0)] * (x.ndim - len(pairs)) + [tuple(p) for p in pairs]
        if str(mode) == "constant":
            return np.pad(x, widths, mode="constant", constant_values=float(constant_val))
        return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[str(mode)])


@register("fill")
class Fill(MilOp):
    """``fill(shape, value)``."""

    def run(self, shape: Any, value: Any = 0.0, **_: Any) -> Any:
        return np.full([int(s) for s in np.asarray(shape)], value)


@register("range_1d")
class Range1d(MilOp):
    """``range_1d(start, end, step)``."""

    def run(self, start: Any, end: Any, step: Any, **_: Any) -> Any:
        return np.arange(start, end, step)


@register("cumsum")
class CumSum(MilOp):
    """``cumsum(x, axis, exclusive, reverse)`` (RoBERTa builds position ids with it)."""

    def run(self, x: Any, axis: Any = 0, exclusive: Any = False, reverse: Any = False, **_: Any) -> Any:
        x = np.asarray(x)
        axis = int(axis)
        if reverse:
            x = np.flip(x, axis)
        out = np.cumsum(x, axis=axis)
        if exclusive:
            out = out - x
        return np.flip(out, axis) if reverse else out


_REDUCE = {"reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min,
           "reduce_prod": np.prod}


@register(*_REDUCE)
class Reduce(MilOp):
    """``reduce_*(x, axes, keep_dims)``; all axes when ``axes`` is omitted."""

    def run(self, x: Any, axes: Any = None, keep_dims: Any = False, **_: Any) -> Any:
        axis = None if axes is None else tuple(int(a) for a in np.atleast_1d(axes))
        return _REDUCE[self.op_type](_f(x), axis=axis, keepdims=bool(keep_dims))


@register("argmax", "argmin")
class ArgReduce(MilOp):
    """``argmax``/``argmin(x, axis, keep_dims)``."""

    def run(self, x: Any, axis: Any = -1, keep_dims: Any = False, **_: Any) -> Any:
        fn = np.argmax if self.op_type == "argmax" else np.argmin
        out = fn(_f(x), axis=int(axis))
        return np.expand_dims(out, int(axis)) if keep_dims else out
