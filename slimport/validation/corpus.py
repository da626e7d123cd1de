"""Validation and calibration texts: the built-in corpora and the user's own files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from slimport.errors import InputError
from slimport.models.tasks import DECODER_TASKS

MAX_TEXTS = 10_000
#: one model input: a text, or a (text, text_pair) such as (question, context) for question answering
TextInput = str | tuple[str, str]
PAIR_TASKS = ("question-answering",)


@dataclass(frozen=True)
class Corpus:
    """A list of texts (or text pairs) plus where they came from and a content hash (for manifests and caches)."""

    texts: tuple[TextInput, ...]
    source: str
    sha256: str
    #: how pairs were formed: "data" (the file gives them) or "consecutive" (text i with text i + 1)
    pairs: str | None = None

    def describe(self) -> dict[str, object]:
        """JSON-able summary."""
        return {"source": self.source, "texts": len(self.texts), "sha256": self.sha256,
                **({"pairs": self.pairs} if self.pairs else {})}

    def for_task(self, task: str) -> Corpus:
        """The corpus as ``task`` is fed: question answering takes (question, context) pairs, so a
        corpus of single texts pairs each text with the next one (the last with the first); pairs
        from the data are kept for every encoder task (cross-encoders classify pairs too)."""
        if self.pairs == "data" and task in DECODER_TASKS:
            raise InputError(f"{self.source} holds text pairs; {task} takes single prompts")
        if self.pairs or task not in PAIR_TASKS:
            return self
        n = len(self.texts)
        paired = tuple((str(self.texts[i]), str(self.texts[(i + 1) % n])) for i in range(n))
        return Corpus(paired, self.source, _hash(list(paired)), "consecutive")


def show(item: TextInput) -> str:
    """One line for reports and messages: the text, or the pair joined by " || "."""
    return item if isinstance(item, str) else f"{item[0]} || {item[1]}"


def text_length(item: TextInput) -> int:
    """Characters of the text, or of both texts of a pair."""
    return len(item) if isinstance(item, str) else len(item[0]) + len(item[1])


def _hash(texts: list[TextInput]) -> str:
    flat = [t if isinstance(t, str) else f"{t[0]}\x1f{t[1]}" for t in texts]
    return hashlib.sha256("\n".join(flat).encode("utf-8")).hexdigest()


def builtin_corpus(kind: str = "validation") -> Corpus:
    """The built-in ``validation`` (held out) or ``calibration`` corpus shipped with the package."""
    if kind not in ("validation", "calibration"):
        raise ValueError(f"unknown built-in corpus '{kind}'")
    text = (resources.files("slimport.validation") / "data" / f"{kind}.txt").read_text(encoding="utf-8")
    texts = [line for line in text.splitlines() if line.strip()]
    return Corpus(tuple(texts), f"builtin:{kind}", _hash(texts))


#: JSONL object keys of a pair: first and second text
PAIR_KEYS = (("question", "context"), ("text", "text_pair"))


def _parse_jsonl_line(line: str, number: int, path: Path) -> TextInput:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    if isinstance(value, dict):
        for first, second in PAIR_KEYS:
            if first in value and second in value:
                pair = (value[first], value[second])
                if not all(isinstance(t, str) for t in pair):
                    raise InputError(f"{path}:{number}: \"{first}\" and \"{second}\" must be strings")
                return pair
        value = value.get("text")
    if not isinstance(value, str):
        raise InputError(f"{path}:{number}: expected a JSON string, an object with a \"text\" string, or a pair "
                         "(\"question\" and \"context\", or \"text\" and \"text_pair\")")
    return value


def load_corpus(path: str | Path) -> Corpus:
    """Read texts from ``path``: one text per line, or JSONL (``.jsonl``) with a ``text`` field, or text
    pairs (``question``/``context`` or ``text``/``text_pair``; all rows pairs, or none).

    Raises :class:`InputError` when the file is missing, unreadable, not UTF-8, malformed or empty.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"data file {file} does not exist or is not a file")
    try:
        raw = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"data file {file} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"cannot read data file {file}: {exc.strerror or exc}") from exc
    is_jsonl = file.suffix in (".jsonl", ".ndjson")
    texts: list[TextInput] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        texts.append(_parse_jsonl_line(line, number, file) if is_jsonl else line)
        if len(texts) > MAX_TEXTS:
            raise InputError(f"data file {file} has more than {MAX_TEXTS} texts; pass a sample")
    texts = [t for t in texts if (t.strip() if isinstance(t, str) else "".join(t).strip())]
    if not texts:
        raise InputError(f"data file {file} holds no texts (one text per line, or JSONL with \"text\")")
    kinds = {isinstance(t, tuple) for t in texts}
    if len(kinds) > 1:
        raise InputError(f"data file {file} mixes single texts and pairs; give every row as a pair, or none")
    return Corpus(tuple(texts), str(file), _hash(texts), "data" if kinds == {True} else None)
