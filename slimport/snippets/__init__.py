"""``slimport export --emit-app-snippet kotlin|swift``: the integration code for one artifact.

The snippet uses the sample apps' platform-free cores (``sample_apps/android/core`` for Kotlin,
``sample_apps/ios/SlimportCore`` for Swift) and the format's runtime, with this artifact's file
names, tensor contract, maximum length and labels filled in from its report. Decoders get the
generation snippets (``*_decoder.j2``: the core's tokenizer and ``Generator`` over the fixed KV cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimport.errors import InputError
from slimport.models.tasks import DECODER_TASKS

#: language -> formats whose runtime the snippet uses
LANGUAGES = {"kotlin": ("tflite", "onnx"), "swift": ("coreml",)}


def class_name(model: str) -> str:
    """``all-MiniLM-L6-v2`` -> ``AllMiniLML6V2Model``: a type name for the model's wrapper class."""
    import re

    words = [w for w in re.split(r"[^0-9A-Za-z]+", model) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Exported"
    return ("M" + name if name[0].isdigit() else name) + "Model"


def _shape(spec: dict[str, Any]) -> str:
    return "[" + ", ".join(str(d) for d in spec["shape"]) + "]"


#: formats whose decoders have a fixed KV cache the cores' Generator drives
DECODER_FORMATS = ("tflite", "coreml")


def check_language(language: str, fmt: str, task: str | None = None) -> None:
    """Refuse, in one line, a snippet ``language`` that does not run ``fmt`` artifacts (of ``task``)."""
    if language not in LANGUAGES:
        raise InputError(f"--emit-app-snippet takes {' or '.join(LANGUAGES)}, not '{language}'")
    if fmt not in LANGUAGES[language]:
        wanted = next((lang for lang, formats in LANGUAGES.items() if fmt in formats), None)
        hint = f"; use {wanted}" if wanted else ""
        raise InputError(f"--emit-app-snippet {language} does not run {fmt} artifacts{hint}")
    if task in DECODER_TASKS and fmt not in DECODER_FORMATS:
        raise InputError(f"--emit-app-snippet: {fmt} decoders grow their cache; snippets drive the fixed-cache "
                         "decoders of tflite (kotlin) and coreml (swift) targets. For ONNX, load the folder with "
                         "ONNX Runtime GenAI (its genai_config.json)")


def app_snippet(report: Any, folder: Path, language: str) -> str:
    """The ``language`` integration code for the artifact in ``folder`` described by ``report``."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    artifact = report.artifact
    check_language(language, artifact["format"], report.model["task"])
    env = Environment(loader=PackageLoader("slimport.snippets", "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    profile = report.target["profile"]
    kv = artifact["precision"].get("kv_cache")
    template = f"{language}.j2"
    if report.model["task"] in DECODER_TASKS:
        template = f"{language}_decoder.j2"
    logits = next((o for o in artifact["outputs"] if o["name"] == "logits"), None)
    return env.get_template(template).render(
        kv=kv, vocab=logits["shape"][-1] if logits else 0,
        model=report.model["name"], class_name=class_name(report.model["name"]), task=report.model["task"],
        target=report.target["name"],
        format=artifact["format"], recipe=artifact["precision"].get("recipe", ""), folder=folder.name,
        model_file=artifact["model_file"], tokenizer_dir=artifact.get("tokenizer_dir", "tokenizer"),
        inputs=[{**i, "shape_text": _shape(i)} for i in artifact["inputs"]],
        outputs=[{**o, "shape_text": _shape(o)} for o in artifact["outputs"]],
        static=profile["static_shape"], seq_len=profile["seq_len"], threads=profile["threads"],
        labels=report.model.get("labels"), passed=report.passed)
