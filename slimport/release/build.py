"""Build the release's jobs with an executor (:mod:`.executors`: local processes or Ray tasks), each
result cached by the job's key.

A cache entry ``<cache>/<key>/`` is the exported folder (model, tokenizer, report.json, even for a
failed gate) plus ``golden.json``; it is written under a temp name and renamed, so an interrupted
build never leaves an entry that looks complete.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slimport.errors import GateFailed, SlimportError, first_line
from slimport.release.executors import BuildSettings, Executor, LocalExecutor
from slimport.release.golden import write_golden
from slimport.validation.report import REPORT_FILE

COMPLETE = ".complete"


@dataclass
class Built:
    """Where a job's artifact folder is, whether it came from the cache, and its verdict."""

    key: str
    folder: Path
    cached: bool
    passed: bool


def _entry(cache_dir: Path, key: str) -> Path:
    return cache_dir / key


def cached(cache_dir: Path, key: str) -> Path | None:
    """The cache entry for ``key`` when it is complete."""
    folder = _entry(cache_dir, key)
    return folder if (folder / COMPLETE).is_file() and (folder / REPORT_FILE).is_file() else None


def build_one(job_args: tuple[str, str | None, str | None, str], cache_dir: Path, validation: Path | None,
              calibration: Path | None, latency_runs: int, complete: bool = True) -> tuple[str, bool]:
    """Export one job, given as (key, checkpoint path, task, target), into the cache; runs in a worker
    process. The entry is marked complete unless ``complete`` is False (the caller still has to time
    it). Returns (key, passed)."""
    from slimport import export
    from slimport.quiet import quiet_libraries

    quiet_libraries()  # a spawned worker starts without the CLI's settings
    key, model_path, task, target = job_args
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".partial", dir=cache_dir))
    try:
        try:
            report = export(model=model_path, target=target, out=staging, task=task, validation_data=validation,
                            calibration_data=calibration, latency_runs=latency_runs)
        except GateFailed as failed:
            report = failed.report
        folder = next(p for p in staging.iterdir() if p.is_dir() and (p / REPORT_FILE).is_file())
        write_golden(folder, model_path, task, target)
        if complete:
            (folder / COMPLETE).write_text(key, encoding="utf-8")
        install_entry(folder, cache_dir, key, staging)
        return key, bool(report.passed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_entry(folder: Path, cache_dir: Path, key: str, staging: Path) -> Path:
    """Rename the finished ``folder`` to the cache entry for ``key`` (replacing an incomplete one left
    by an interrupted build), then remove the ``staging`` folder it was built in."""
    final = _entry(cache_dir, key)
    try:
        if final.exists():
            shutil.rmtree(final)
        folder.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def build_all(jobs: list, cache_dir: Path, workers: int, validation: Path | None, calibration: Path | None,
              latency_runs: int = 10, log: Callable[[str], None] = lambda _m: None,
              executor: Callable[[], Executor] | None = None) -> dict[str, Built]:
    """Build every job not already in the cache with the executor ``executor()`` makes (default:
    ``workers`` local processes); it is made only when something needs building, so a full cache
    hit never starts or joins a Ray cluster. Returns results by key."""
    from slimport.validation.report import Report

    cache_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Built] = {}
    todo = []
    for job in jobs:
        hit = cached(cache_dir, job.key)
        if hit is not None:
            results[job.key] = Built(job.key, hit, True, Report.read(hit).passed)
            log(f"{job.label}: cached ({job.key[:12]})")
        else:
            todo.append((job, (job.key, str(job.model.path) if job.model.path else None, job.model.task,
                               job.target_ref)))
    if not todo:
        return results
    runner = executor() if executor else LocalExecutor(workers)
    parallel = runner.name != "local" or min(runner.workers, len(todo)) > 1
    timed_later = parallel and latency_runs > 0
    settings = BuildSettings(cache_dir, validation, calibration, 0 if parallel else latency_runs, not timed_later)
    labels = {args: job.label for job, args in todo}
    for task, outcome in runner.run([args for _job, args in todo], settings):
        if isinstance(outcome, BaseException):
            raise SlimportError(f"{labels[task]}: {first_line(outcome)}") from outcome
        results[task[0]] = Built(task[0], _entry(cache_dir, task[0]), False, outcome)
        log(f"{labels[task]}: built{f' on {runner.name}' if runner.name != 'local' else ''}, "
            f"{'PASS' if outcome else 'FAIL'}")
    if timed_later:  # time each new artifact alone, not beside another build
        from slimport.release.timing import measure_alone
        from slimport.validation.corpus import builtin_corpus, load_corpus

        corpus = load_corpus(validation) if validation else builtin_corpus("validation")
        for job, (key, model_path, task, target_ref) in todo:
            passed = measure_alone(results[key].folder, model_path, task, target_ref, corpus, latency_runs)
            (results[key].folder / COMPLETE).write_text(key, encoding="utf-8")
            results[key].passed = passed
            log(f"{job.label}: latency measured alone, {'PASS' if passed else 'FAIL'}")
    return results
