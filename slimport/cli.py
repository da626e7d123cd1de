"""The ``slimport`` command: a thin layer over :mod:`slimport.pipeline` and friends."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from slimport import __version__, interrupts
from slimport.errors import (
    EXIT_GATE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    GateFailed,
    SlimportError,
)
from slimport.quiet import quiet_libraries

EPILOG = """exit codes:
  0    success: every gate passed
  1    internal error (run with --debug for the traceback)
  2    usage or input error (bad checkpoint, unknown target, unreadable data, existing output, full disk)
  3    a validation gate failed (report written to <out>/<model>-<target>.FAILED/report.json);
       for `release`, a pair failed its gate; for `verify`, a file or golden vector does not match
  130  interrupted (Ctrl-C); no partial output is left behind
with --json, stdout holds one JSON document once the arguments parse: the report (a failed gate
included), or {"ok": false, "exit_code": N, "error": "<the stderr line>"}

examples:
  slimport export --target onnx-int8 --model ./my-finetuned-distilbert --out dist/
  slimport targets
  slimport validate dist/my-finetuned-distilbert-onnx-int8
  slimport inspect dist/my-finetuned-distilbert-onnx-int8 --json
  slimport release release.toml --out dist/release-1.4.0/
  slimport verify dist/release-1.4.0/
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slimport", description="Export small language models for phones and edge boards, with a parity gate.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"slimport {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ex = sub.add_parser("export", parents=[common], help="export, quantize and validate a checkpoint",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--model", help="local Hugging Face checkpoint folder (default: embedded all-MiniLM-L6-v2)")
    ex.add_argument("--target", default="onnx-int8", help="target name (see `slimport targets`) or a .toml file")
    ex.add_argument("--out", default="dist", help="output folder (default: dist)")
    ex.add_argument("--task", help="override the task inferred from config.architectures")
    ex.add_argument("--validation-data", help="texts to validate on: one per line, or .jsonl with a text field "
                    "(or question/context pairs)")
    ex.add_argument("--calibration-data", help="texts for calibration and recipe selection (same formats)")
    ex.add_argument("--force", action="store_true", help="replace an existing artifact folder")
    ex.add_argument("--allow-pickle", action="store_true", help="allow pickle weights (.bin); only for trusted files")
    ex.add_argument("--latency-runs", type=int, default=30,
                    help="timed runs after warm-up on each of two inputs, the longest text and the shortest "
                         "padded to the same shape; the slower is gated (default 30)")
    ex.add_argument("--emit-app-snippet", choices=("kotlin", "swift"),
                    help="after a PASS, print the app integration code for the artifact on stdout "
                         "(kotlin: tflite/onnx targets, swift: coreml targets); the report goes to stderr")

    va = sub.add_parser("validate", parents=[common], help="re-run the validation of an artifact folder")
    va.add_argument("artifact", help="artifact folder made by `slimport export`")
    va.add_argument("--model", help="checkpoint folder (default: the one recorded in report.json)")
    va.add_argument("--validation-data", help="texts to validate on (default: the built-in corpus)")
    va.add_argument("--latency-runs", type=int, default=30, help="as for export")

    sub.add_parser("targets", parents=[common], help="list targets and device profiles")
    ins = sub.add_parser("inspect", parents=[common], help="inputs, outputs, operators, size and precision")
    ins.add_argument("artifact", help="artifact folder or model file")

    rel = sub.add_parser("release", parents=[common], help="build a bundle for every (model, target) in release.toml")
    rel.add_argument("config", help="release.toml")
    rel.add_argument("--out", required=True, help="bundle folder to create (replaced when it exists)")
    rel.add_argument("--workers", type=int, help="parallel export processes (default: [release].workers or 1)")
    rel.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: a process pool here (default); ray: one Ray task per pair (pip install "
                          "'slimport[ray]')")
    rel.add_argument("--address", help="Ray cluster address for --executor ray (e.g. auto, 10.0.0.5:6379; "
                                       "default: start a local Ray instance)")
    rel.add_argument("--cache-dir", help="build cache; unchanged pairs are not rebuilt (default ~/.cache/slimport)")
    rel.add_argument("--latency-runs", type=int, default=10, help="timed runs per artifact and input (default 10)")
    rel.add_argument("--baseline", help="previous bundle: show deltas, fail on a parity drop beyond the margin")
    ver = sub.add_parser("verify", parents=[common], help="re-hash a bundle and re-run its golden vectors")
    ver.add_argument("bundle", help="bundle folder made by `slimport release`")
    return parser


def _cmd_release(args: argparse.Namespace) -> int:
    from slimport.release import release

    def log(message: str) -> None:
        if not args.quiet:
            print(f"slimport: {message}", file=sys.stderr)

    data = release(args.config, args.out, workers=args.workers, cache_dir=args.cache_dir,
                   latency_runs=args.latency_runs, baseline=args.baseline, log=log, executor=args.executor,
                   address=args.address)
    if args.json:
        _print_json(data)
    else:
        from slimport.release.summary import render_summary

        print(render_summary(data))
    for entry in data["artifacts"]:
        if not entry["passed"]:
            print(f"slimport: FAIL {entry['model']}/{entry['target']}: {entry['failed_checks'][0]}", file=sys.stderr)
    for line in data.get("baseline", {}).get("regressions", []):
        print(f"slimport: regression {line}", file=sys.stderr)
    return EXIT_OK if data["passed"] else EXIT_GATE


def _cmd_verify(args: argparse.Namespace) -> int:
    from slimport.release import verify

    problems = verify(args.bundle)
    if args.json:
        _print_json({"bundle": args.bundle, "ok": not problems, "problems": problems})
    for line in problems:
        print(f"slimport: verify: {line}", file=sys.stderr)
    if not problems and not args.json:
        print(f"verified {args.bundle}: every file matches the manifest and every golden vector holds")
    return EXIT_GATE if problems else EXIT_OK


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from slimport.validation.gate import Check

    table = Table(title=f"{report.model['name']} -> {report.target['name']}", show_lines=False)
    for col in ("check", "measured", "limit", "result"):
        table.add_column(col)
    for data in report.checks:
        check = Check(**data)
        measured = "n/a" if check.measured is None else f"{check.measured:.6g}"
        table.add_row(check.name, f"{measured} {check.unit}".strip(), f"{check.op} {check.limit:g}",
                      "[green]pass[/green]" if check.passed else "[red]FAIL[/red]")
    console = Console()
    console.print(table)
    perf = report.performance
    console.print(f"[dim]{perf['note']} Host: {perf['host']['cpu']}, {perf['threads_used']} thread(s).[/dim]")
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
    print(report.verdict_line())


def _cmd_targets(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from slimport.targets import GATE_KEYS, list_profiles, list_targets, load_profile, load_target

    targets = [load_target(n) for n in list_targets()]
    profiles = [load_profile(n) for n in list_profiles()]
    if args.json:
        _print_json({"targets": [t.to_dict() for t in targets], "profiles": [p.to_dict() for p in profiles]})
        return EXIT_OK
    table = Table(title="targets")
    for col in ("name", "format", "precision", "profile", "gates"):
        table.add_column(col)
    for t in targets:
        gates = ", ".join(f"{k} {'>=' if GATE_KEYS[k][0] == 'min' else '<='} {v:g}" for k, v in t.gate.limits.items())
        table.add_row(t.name, t.format, t.precision.label, t.profile.name, gates)
    ptable = Table(title="device profiles")
    for col in ("name", "threads", "shape", "ids", "size MB", "memory MB", "p50/p90 ms"):
        ptable.add_column(col)
    for p in profiles:
        shape = f"{p.batch}x{p.seq_len} {'static' if p.static_shape else 'dynamic'}"
        ptable.add_row(p.name, str(p.threads), shape, p.input_dtype, f"{p.size_budget_mb:g}",
                       f"{p.memory_budget_mb:g}", f"{p.latency_p50_ms:g}/{p.latency_p90_ms:g}")
    console = Console()
    console.print(table)
    console.print(ptable)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from slimport.progress import Reporter

    reporter = Reporter(enabled=not args.quiet)
    if args.command == "targets":
        return _cmd_targets(args)
    if args.command == "release":
        return _cmd_release(args)
    if args.command == "verify":
        return _cmd_verify(args)
    if args.command == "inspect":
        from slimport.inspection import inspect_artifact

        info = inspect_artifact(args.artifact)
        if args.json:
            _print_json(info)
        else:
            for key, value in info.items():
                print(f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value}")
        return EXIT_OK
    from slimport.pipeline import export, validate_artifact

    snippet = getattr(args, "emit_app_snippet", None)
    if snippet:  # refuse before exporting
        from slimport.models.loader import declared_task
        from slimport.snippets import check_language
        from slimport.targets import load_target

        task = declared_task(args.model, args.task) if args.command == "export" else None
        check_language(snippet, load_target(args.target).format, task)
    if args.command == "export":
        report = export(model=args.model, target=args.target, out=args.out, task=args.task,
                        validation_data=args.validation_data, calibration_data=args.calibration_data,
                        force=args.force, allow_pickle=args.allow_pickle, latency_runs=args.latency_runs,
                        reporter=reporter)
    else:
        report = validate_artifact(args.artifact, model=args.model, validation_data=args.validation_data,
                                   latency_runs=args.latency_runs, reporter=reporter)
    code = None
    if snippet:
        from slimport.snippets import app_snippet

        code = app_snippet(report, Path(args.out) / f"{report.model['name']}-{report.target['name']}", snippet)
    if args.json:
        _print_json({**report.to_dict(), **({"app_snippet": code} if code else {})})
    elif code:
        print(report.verdict_line(), file=sys.stderr)
        print(code, end="")
    else:
        _print_report(report)
    if not report.passed:  # `validate` returns a failing report instead of raising
        print(f"slimport: {report.verdict_line()}", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slimport`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    quiet_libraries(getattr(args, "debug", False))
    if getattr(args, "latency_runs", 1) < 0:
        parser.error("--latency-runs must be >= 0")
    try:
        with interrupts.handling():
            return _run(args)
    except SlimportError as exc:
        if args.debug:
            traceback.print_exc()
        gate = isinstance(exc, GateFailed)
        report = exc.report if gate else None
        if report is not None and args.json:  # a failed gate's JSON is its report
            _print_json(report.to_dict())
        return _fail(args, exc.exit_code, f"{'' if gate else 'error: '}{exc}", json_error=report is None)
    except KeyboardInterrupt:
        return _fail(args, EXIT_INTERRUPTED, "interrupted; no partial output was left behind")
    except Exception as exc:  # a bug: one line, traceback with --debug
        if args.debug:
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return _fail(args, EXIT_INTERNAL,
                     f"internal error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)")


def _fail(args: argparse.Namespace, code: int, line: str, json_error: bool = True) -> int:
    """Print the one-line error on stderr and, with ``--json``, ``{"ok": false, "exit_code", "error"}``
    on stdout, so a CI step that parses stdout gets JSON on every outcome; returns ``code``."""
    print(f"slimport: {line}", file=sys.stderr)
    if getattr(args, "json", False) and json_error:
        _print_json({"ok": False, "exit_code": code, "error": line})
    return code


if __name__ == "__main__":
    sys.exit(main())
