"""The Python API behind the CLI: load -> export -> quantize -> validate -> package.

>>> from slimport import export
>>> report = export(model="./my-finetuned-distilbert", target="onnx-int8", out="dist")
>>> report.passed, report.verdict_line()
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from slimport import interrupts
from slimport.errors import GateFailed, InputError
from slimport.exporters import ExportContext, get_exporter
from slimport.exporters.base import tool_temp_files
from slimport.models.loader import ModelSource, load_model
from slimport.models.tasks import DECODER_TASKS
from slimport.progress import Reporter
from slimport.targets.loader import load_target
from slimport.targets.schema import Target
from slimport.validation.corpus import Corpus, builtin_corpus, load_corpus, show
from slimport.validation.gate import parity_checks
from slimport.validation.inputs import check_pair_token_types
from slimport.validation.report import Report
from slimport.validation.runners import get_runner
from slimport.validation.validate import ReferenceOutputs, compute_parity, validate
from slimport.versions import package_versions

TOKENIZER_DIR = "tokenizer"
#: recipe choice on calibration texts must clear the gate with this share of the way to 1 as margin
SELECTION_MARGIN = 0.25
FAILED_SUFFIX = ".FAILED"


def _validation_stage(reporter: Reporter, corpus: Corpus):
    unit = "pairs" if corpus.pairs else "texts"
    return reporter.stage("validate", f"Validating on {len(corpus.texts)} {unit}", total=len(corpus.texts))


def _corpus(path: str | Path | None, kind: str) -> Corpus:
    return load_corpus(path) if path else builtin_corpus(kind)


def _no_space(where: Path) -> InputError:
    return InputError(f"no space left on the device while writing {where}; free some space or choose another --out")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def partial_dir(parent: Path, name: str) -> Path:
    """A hidden temp folder ``.<name>.XXXX.partial`` in ``parent`` (created if needed) with ordinary
    folder permissions, to be renamed into place when complete; one-line errors for a full disk."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _no_space(parent) from exc
        raise InputError(f"cannot create the output folder {parent}: {exc.strerror or exc}") from exc
    return tmp


def swap_into_place(new: Path, dest: Path) -> None:
    """Rename ``new`` to ``dest``; an existing ``dest`` is moved aside first and deleted after. A Ctrl-C
    that was swallowed on the way (:mod:`slimport.interrupts`) stops it here, before anything is
    published."""
    interrupts.check()
    if not dest.exists():
        new.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.replaced-{os.getpid()}")
    dest.rename(old)
    new.rename(dest)
    _remove(old)


def _build_report(source: ModelSource, target: Target, artifact: dict, parity: dict, performance: dict,
                  checks: list, versions: dict, timings: dict, notes: list[str],
                  validation: Corpus, calibration: Corpus | None) -> Report:
    for item in parity["task"].get("worst_texts", []):
        text = show(validation.texts[item["index"]])
        item["text"] = text if len(text) <= 80 else text[:77] + "..."
    parity = {**parity, "validation_data": validation.describe(),
              "calibration_data": calibration.describe() if calibration else None}
    return Report(
        model=source.describe(),
        target=target.to_dict(),
        artifact=artifact,
        parity=parity,
        performance=performance,
        checks=[c.to_dict() for c in checks],
        passed=all(c.passed for c in checks),
        tool_versions=versions,
        timings_s=timings,
        notes=notes,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def export(
    model: str | Path | None = None,
    target: str | Path | Target = "onnx-int8",
    out: str | Path = "dist",
    task: str | None = None,
    validation_data: str | Path | None = None,
    calibration_data: str | Path | None = None,
    force: bool = False,
    allow_pickle: bool = False,
    latency_runs: int = 30,
    reporter: Reporter | None = None,
) -> Report:
    """Export ``model`` for ``target``, validate it, and place ``<out>/<model>-<target>/``.

    The folder holds the model file(s), ``tokenizer/`` and ``report.json``. It is built in a hidden
    temporary folder beside it and renamed into place at the end; nothing half-written is left on
    any error or Ctrl-C. When a gate fails the folder is named ``<model>-<target>.FAILED`` and
    :class:`GateFailed` is raised with the report attached.
    """
    reporter = reporter or Reporter(enabled=False)
    tgt = target if isinstance(target, Target) else load_target(target)
    validation = _corpus(validation_data, "validation")
    calibration = _corpus(calibration_data, "calibration")
    with reporter.stage("load", "Loading checkpoint"):
        source = load_model(model, task=task, allow_pickle=allow_pickle)
        source.torch_model  # noqa: B018 - load now so weight errors surface before any output is made
    limit = source.tokenizer.model_max_length
    if tgt.profile.static_shape and tgt.profile.seq_len > limit:
        raise InputError(f"target {tgt.name} fixes the sequence length at {tgt.profile.seq_len} but {source.name} "
                         f"takes at most {limit} tokens; use a target file with seq_len <= {limit}")
    out_root = Path(out).expanduser()
    final = out_root / f"{source.name}-{tgt.name}"
    failed = final.with_name(final.name + FAILED_SUFFIX)
    if final.exists() and not force:
        raise InputError(f"{final} already exists; pass --force to replace it")
    tmp = partial_dir(out_root, final.name)
    try:
        report = _export_into(source, tgt, tmp, validation, calibration, latency_runs, reporter)
        dest = final if report.passed else failed
        if report.passed and failed.exists():
            _remove(failed)
        swap_into_place(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise _no_space(out_root) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not report.passed:
        raise GateFailed(f"{report.verdict_line()} (report: {dest / 'report.json'})", report)
    return report


def _export_into(source: ModelSource, target: Target, folder: Path, validation: Corpus, calibration: Corpus,
                 latency_runs: int, reporter: Reporter) -> Report:
    """Export, package the tokenizer, validate and write the report inside ``folder``."""
    exporter = get_exporter(target.format)
    if source.task in DECODER_TASKS and not exporter.decoders:
        raise InputError(f"{source.name} is a text-generation model and the {target.format} exporter does not build "
                         "decoders; pick a target of a format that does (onnx, tflite, coreml)")
    validation, calibration = validation.for_task(source.task), calibration.for_task(source.task)
    for corpus in (validation, calibration):
        check_pair_token_types(source.tokenizer, source.config, corpus.texts, target.profile, source.name)
    references = ReferenceOutputs(source)
    workdir = folder / ".work"
    workdir.mkdir()

    strict_gate = target.gate.tightened(SELECTION_MARGIN)

    def evaluate(artifact):  # parity of a candidate on the calibration texts (held out from validation)
        runner = get_runner(target.format, artifact.model_path, 1)
        return parity_checks(compute_parity(runner, references.get(calibration.texts, target), source), strict_gate)

    context = ExportContext(workdir=workdir, output_dir=folder, calibration_texts=calibration.texts,
                            evaluate=evaluate, log=reporter.log)
    with reporter.stage("export", f"Exporting to {target.format} ({target.precision.label})"), \
            tool_temp_files(workdir / "tmp"):
        artifact = exporter.export(source, target, context)
    shutil.rmtree(workdir)
    source.tokenizer.save_pretrained(folder / TOKENIZER_DIR)
    with _validation_stage(reporter, validation) as tick:
        parity, performance, checks = validate(
            target.format, artifact.model_path, artifact.size_mb(), source, target, validation.texts,
            references=references, runs=latency_runs, on_batch=tick)
    checks = [*artifact.checks, *checks]
    versions = {**package_versions(), **exporter.tool_versions(), **performance["runner_versions"]}
    notes = list(artifact.notes)
    if performance["threads_used"] != performance["threads_requested"]:
        notes.append(f"profile asks for {performance['threads_requested']} threads; this host has "
                     f"{performance['threads_used']} cores, so latency was measured with {performance['threads_used']}")
    report = _build_report(source, target, {**artifact.describe(), "tokenizer_dir": TOKENIZER_DIR}, parity,
                           performance, checks, versions, dict(reporter.timings), notes, validation, calibration)
    report.write(folder)
    return report


def validate_artifact(
    artifact_dir: str | Path,
    model: str | Path | None = None,
    validation_data: str | Path | None = None,
    latency_runs: int = 30,
    reporter: Reporter | None = None,
) -> Report:
    """Re-run the validation of an existing artifact folder; returns a fresh report (not written).

    The checkpoint is the one recorded in ``report.json`` unless ``model`` is given; the target
    (profile, recipe, gate) is the recorded one.
    """
    reporter = reporter or Reporter(enabled=False)
    folder = Path(artifact_dir).expanduser()
    old = Report.read(folder)
    tgt = _target_from_report(old)
    validation = _corpus(validation_data, "validation")
    with reporter.stage("load", "Loading checkpoint"):
        source = load_model(model or old.model["path"], task=old.model["task"])
    validation = validation.for_task(source.task)
    check_pair_token_types(source.tokenizer, source.config, validation.texts, tgt.profile, source.name)
    model_path = folder / old.artifact["model_file"]
    if not model_path.is_file():
        raise InputError(f"{model_path} is missing from the artifact folder")
    size = sum((folder / f).stat().st_size for f in [old.artifact["model_file"], *old.artifact.get("extra_files", [])]
               if (folder / f).is_file()) / 1e6
    with _validation_stage(reporter, validation) as tick:
        parity, performance, checks = validate(tgt.format, model_path, size, source, tgt, validation.texts,
                                               runs=latency_runs, on_batch=tick)
    versions = {**package_versions(), **performance["runner_versions"]}
    return _build_report(source, tgt, old.artifact, parity, performance, checks, versions,
                         dict(reporter.timings), ["re-validated by `slimport validate`"], validation, None)


def _target_from_report(report: Report) -> Target:
    from slimport.targets.loader import parse_gate, parse_precision, parse_profile

    data = report.target
    return Target(name=data["name"], description=data.get("description", ""), format=data["format"],
                  profile=parse_profile(dict(data["profile"]), "report.json [profile]"),
                  precision=parse_precision(dict(data["precision"]), "report.json [precision]"),
                  gate=parse_gate(dict(data["gate"]), "report.json [gate]"), options=data.get("options", {}))
