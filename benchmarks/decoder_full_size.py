"""What exporting a full-size decoder costs on this machine: a random phi-1.5-size checkpoint
(PhiForCausalLM, hidden 2048, 24 layers, 32 heads, MLP 8192, vocabulary 51200: 1.42B parameters).

Each target runs as its own `slimport export` process (a few prompts, no latency runs); the table
gives wall time, the process's peak RSS (ru_maxrss of the child), the artifact size and the verdict
or the error line. Results are written after every target, so a stopped run keeps what it measured.

    python benchmarks/decoder_full_size.py                         # onnx-int4, onnx-fp32
    python benchmarks/decoder_full_size.py --targets android-int4 ios-int4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

RESULTS = "decoder_full_size"
PROMPTS = ["The quick brown fox jumps over the lazy dog.", "Où est la gare ? 🚉", "def add(a, b): return a + b"]


def build(folder: Path) -> tuple[Path, int, float]:
    """The random phi-1.5-size checkpoint (fp32 safetensors) with the tests' byte-level tokenizer."""
    import torch
    import transformers as tf

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.test_decoders import byte_bpe_tokenizer

    start = time.perf_counter()
    config = tf.PhiConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                          vocab_size=51200, max_position_embeddings=2048, partial_rotary_factor=0.5,
                          bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    del model
    byte_bpe_tokenizer(folder, 4096)
    return folder, params, time.perf_counter() - start


def export(ckpt: Path, target: str, out: Path, prompts: Path) -> dict:
    """One `slimport export` child process: wall time, its peak RSS, and the report's figures."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "slimport", "export", "--model", str(ckpt), "--target", target,
                                 "--out", str(out), "--validation-data", str(prompts), "--calibration-data",
                                 str(prompts), "--latency-runs", "0", "--json"], stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB)
        stdout.seek(0)
        stderr.seek(0)
        out_text, err_text = stdout.read(), stderr.read()
    row = {"target": target, "exit_code": os.waitstatus_to_exitcode(status), "wall_s": time.perf_counter() - start,
           "peak_rss_gb": usage.ru_maxrss / 2**20}
    try:
        report = json.loads(out_text)
        row.update({"size_mb": report["artifact"]["size_mb"], "passed": report["passed"],
                    "failed": [c["name"] for c in report["checks"] if not c["passed"]],
                    "task": {k: v for k, v in report["parity"]["task"].items() if k != "worst_texts"},
                    "timings_s": report.get("timings")})
    except (json.JSONDecodeError, KeyError):
        row["error"] = (err_text.strip().splitlines() or ["no output"])[-1][:400]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=["onnx-int4", "onnx-fp32"])
    args = parser.parse_args(argv)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="slimport-full-size-") as tmp:
        work = Path(tmp)
        ckpt, params, build_s = build(work / "phi-1_5-size")
        (work / "prompts.txt").write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
        head = {"model": "random phi-1.5 layout", "parameters": params, "checkpoint_build_s": build_s,
                "checkpoint_gb": sum(f.stat().st_size for f in ckpt.glob("*.safetensors")) / 1e9}
        print(f"{params / 1e9:.2f}B parameters, checkpoint {head['checkpoint_gb']:.1f} GB built in {build_s:.0f} s")
        for target in args.targets:
            row = export(ckpt, target, work / "out", work / "prompts.txt")
            rows.append(row)
            print(f"{target:<14} exit {row['exit_code']} {row['wall_s']:>7.0f} s  peak RSS "
                  f"{row['peak_rss_gb']:5.1f} GB  {row.get('size_mb', float('nan')):>8.0f} MB  "
                  f"{row.get('error') or row.get('failed')}", flush=True)
            write_results(RESULTS, {**head, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
