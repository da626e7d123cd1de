"""Tasks and model families slimport supports, and how a task is read from a config."""

from __future__ import annotations

from slimport.errors import InputError

#: task name -> (transformers Auto class name, output names in order)
TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "feature-extraction": ("AutoModel", ("last_hidden_state",)),
    "text-classification": ("AutoModelForSequenceClassification", ("logits",)),
    "token-classification": ("AutoModelForTokenClassification", ("logits",)),
    "question-answering": ("AutoModelForQuestionAnswering", ("start_logits", "end_logits")),
    "fill-mask": ("AutoModelForMaskedLM", ("logits",)),
    "text-generation": ("AutoModelForCausalLM", ("logits",)),
}

#: tasks validated by generation with a KV cache (:mod:`slimport.validation.generation`)
DECODER_TASKS: tuple[str, ...] = ("text-generation",)
ENCODER_TASKS: tuple[str, ...] = tuple(t for t in TASKS if t not in DECODER_TASKS)

#: config.model_type values with a tested export path.
ENCODER_FAMILIES: tuple[str, ...] = ("bert", "distilbert", "mobilebert", "albert", "electra", "roberta")
DECODER_FAMILIES: tuple[str, ...] = ("gpt2", "llama", "phi", "phi3")
SUPPORTED_FAMILIES: tuple[str, ...] = ENCODER_FAMILIES + DECODER_FAMILIES

_ARCH_SUFFIX_TO_TASK = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForPreTraining", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("Model", "feature-extraction"),
)


def infer_task(architectures: list[str] | None) -> str:
    """Infer the task from ``config.architectures`` (first entry); feature-extraction when absent."""
    if not architectures:
        return "feature-extraction"
    arch = architectures[0]
    for suffix, task in _ARCH_SUFFIX_TO_TASK:
        if arch.endswith(suffix):
            return task
    raise InputError(
        f"cannot infer the task from architecture '{arch}'; pass --task with one of: {', '.join(TASKS)}"
    )


def check_task(task: str) -> str:
    """Return ``task`` if supported, else raise an InputError listing the supported tasks."""
    if task not in TASKS:
        raise InputError(f"unknown task '{task}'; supported tasks: {', '.join(TASKS)}")
    return task


def check_family(model_type: str | None) -> str:
    """Return the family if slimport supports it, else raise an InputError listing supported ones."""
    if model_type not in SUPPORTED_FAMILIES:
        raise InputError(
            f"unsupported architecture '{model_type}'; supported: encoders {', '.join(ENCODER_FAMILIES)}; "
            f"decoders {', '.join(DECODER_FAMILIES)}"
        )
    return model_type


def check_family_task(family: str, task: str) -> None:
    """Decoder families export only as ``text-generation``, encoder families never do."""
    if family in DECODER_FAMILIES and task not in DECODER_TASKS:
        raise InputError(f"{family} checkpoints export for text-generation, not {task}; drop --task or pass "
                         "--task text-generation")
    if family in ENCODER_FAMILIES and task in DECODER_TASKS:
        raise InputError(f"{family} is an encoder family; text-generation needs a decoder "
                         f"({', '.join(DECODER_FAMILIES)})")
