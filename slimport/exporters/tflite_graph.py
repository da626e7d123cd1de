"""Reading a ``.tflite`` flatbuffer: tensor contract, operators, weight dtypes, XNNPACK coverage.

Parsing uses ai-edge-quantizer's flatbuffer utilities (the object API of LiteRT's schema); the
delegation figures come from loading the model in ai-edge-litert's interpreter with XNNPACK.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from slimport.exporters.base import TensorSpec
from slimport.precision.context_range import Op
from slimport.precision.search import fingerprint, fingerprints_match

#: Builtin op names LiteRT calls "custom"; Flex ops are custom ops whose code starts with "Flex".
CUSTOM = "CUSTOM"


def read(path: Path) -> Any:
    """The flatbuffer object model (``ModelT``) of a ``.tflite`` file."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils

    return tfl_flatbuffer_utils.read_model(Path(path))


@cache
def _op_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


@cache
def _type_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def opcode_name(model: Any, index: int) -> str:
    """Name of opcode ``index``: the builtin name, or ``custom:<code>`` for custom/Flex ops."""
    code = model.operatorCodes[index]
    builtin = _op_names().get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")
    if builtin == CUSTOM:
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
        return f"custom:{custom}"
    return builtin


def op_counts(model: Any) -> dict[str, int]:
    """Operator type -> count over all subgraphs, most frequent first."""
    counts: Counter[str] = Counter()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            counts[opcode_name(model, op.opcodeIndex)] += 1
    return dict(counts.most_common())


def non_builtin_ops(counts: dict[str, int]) -> list[str]:
    """Ops a stock LiteRT runtime cannot run without extra kernels (custom and Flex/select-TF ops)."""
    return sorted(name for name in counts if name.startswith("custom:") or name == "UNKNOWN")


def hybrid_ops(model: Any) -> dict[str, int]:
    """Ops that take integer constant weights but produce float outputs (dynamic-range "hybrid" kernels).

    XNNPACK runs them well on CPU, but NNAPI, GPU and vendor NPU delegates do not take them, so the
    whole op falls back to the CPU. DEQUANTIZE (weight-only storage, folded at load) does not count.
    """
    from ai_edge_litert.schema_py_generated import TensorType as T

    weights = {T.INT8, T.UINT8, T.INT16, T.INT4}  # not INT32: constant shapes and indices are int32
    floats = {T.FLOAT32, T.FLOAT16}
    counts: Counter[str] = Counter()
    for subgraph in model.subgraphs:
        tensors = subgraph.tensors
        for op in subgraph.operators:
            name = opcode_name(model, op.opcodeIndex)
            if name == "DEQUANTIZE" or not len(op.outputs):
                continue
            const_int = any(i >= 0 and tensors[i].type in weights and _has_data(model, tensors[i]) for i in op.inputs)
            if const_int and tensors[op.outputs[0]].type in floats:
                counts[name] += 1
    return dict(counts.most_common())


def _has_data(model: Any, tensor: Any) -> bool:
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    return data is not None and len(data) > 0


def weight_dtypes(model: Any) -> dict[str, int]:
    """Element count of constant tensors by dtype (int8 weights, fp16 weights, ...)."""
    types = _type_names()
    totals: Counter[str] = Counter()
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            if _has_data(model, tensor) and tensor.shape is not None and len(tensor.shape):
                totals[types.get(tensor.type, str(tensor.type))] += int(np.prod(tensor.shape))
    return dict(totals)


def signatures(path: Path) -> dict[str, dict[str, list[str]]]:
    """Signature name -> input and output names, as the interpreter lists them."""
    from ai_edge_litert.interpreter import Interpreter

    return dict(Interpreter(model_path=str(path)).get_signature_list())


def signature_specs(path: Path, signature: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of ``signature`` as tensor specs (names are the signature's keys)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(signature)

    def specs(details: dict[str, Any]) -> list[TensorSpec]:
        return [TensorSpec(name, np.dtype(d["dtype"]).name, [int(x) for x in d["shape"]])
                for name, d in sorted(details.items(), key=lambda kv: kv[1]["index"])]

    return specs(runner.get_input_details()), specs(runner.get_output_details())


def map_linear_to_ops(model: Any, weights: dict[str, np.ndarray]) -> dict[str, str]:
    """Map torch Linear names to the scope of the FULLY_CONNECTED op that applies their weight.

    The scope is what ai-edge-quantizer matches recipe regexes against (the op's output tensor
    names). Matching is by weight content, so it survives the converter's renaming.
    """
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    prints: list[tuple[str, tuple[int, float, float]]] = []
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if opcode_name(model, op.opcodeIndex) != "FULLY_CONNECTED" or len(op.inputs) < 2:
                continue
            weight = fb.get_tensor_data(subgraph.tensors[op.inputs[1]], model.buffers)
            if weight is not None and weight.dtype == np.float32:
                prints.append((fb.get_op_scope(op, subgraph.tensors), fingerprint(weight)))
    mapping = {}
    for name, weight in weights.items():
        wp = fingerprint(weight)
        scope = next((scope for scope, fp in prints if fingerprints_match(wp, fp)), None)
        if scope is not None:
            mapping[name] = scope
    return mapping


_KINDS = {"SOFTMAX": "softmax", "BATCH_MATMUL": "matmul", "FULLY_CONNECTED": "linear", "CAST": "pass",
          **dict.fromkeys(("RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS"), "move")}


def graph_ops(model: Any) -> list[Op]:
    """The main subgraph's operators as :class:`~slimport.precision.context_range.Op` over tensor names
    (``FULLY_CONNECTED`` is ``linear``, ``BATCH_MATMUL`` ``matmul``)."""
    subgraph = model.subgraphs[0]

    def name(index: int) -> str:
        raw = subgraph.tensors[index].name
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    return [Op(_KINDS.get(opcode_name(model, op.opcodeIndex), "other"),
               tuple(name(i) for i in op.inputs if i >= 0), tuple(name(i) for i in op.outputs if i >= 0))
            for op in subgraph.operators]


def delegation(path: Path, threads: int = 1) -> dict[str, Any]:
    """How much of the graph ai-edge-litert's default XNNPACK delegate takes over.

    Each DELEGATE node the interpreter creates replaces a partition of original ops; the partition
    is recovered by walking producers back from the delegate's outputs to its inputs.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # noqa: SLF001 - the only per-node view the Python API offers
    original = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {int(t): o["index"] for o in original for t in o["outputs"]}
    by_index = {o["index"]: o for o in original}
    delegated: set[int] = set()
    partitions = 0
    for node in ops:
        if node["op_name"] != "DELEGATE":
            continue
        partitions += 1
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            index = producer.get(tensor)
            if tensor in boundary or index is None or index in delegated:
                continue
            delegated.add(index)
            stack.extend(int(t) for t in by_index[index]["inputs"] if t >= 0)
    left = Counter(o["op_name"] for o in original if o["index"] not in delegated)
    total = len(original)
    return {
        "delegate": "XNNPACK",
        "ops": total,
        "delegated_ops": len(delegated),
        "delegated_share": round(len(delegated) / total, 4) if total else 0.0,
        "partitions": partitions,
        "not_delegated": dict(left.most_common()),
    }
