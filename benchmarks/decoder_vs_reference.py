"""Decoder targets side by side: tokens/s and generation agreement against PyTorch eager.

For a random decoder checkpoint (default: Phi layout, hidden 1024, 8 layers, 32k vocab, the
size the decoder issue asks for), the script runs:

- each slimport decoder target, exported and validated by `slimport.export`: ONNX (`onnx-fp32`,
  `onnx-int8`, `onnx-int4`), LiteRT (`android-fp32`, `android-int8`, `android-int4`: prefill/decode
  signatures over a fixed KV cache) and Core ML (`ios-fp16`, `ios-int8`, `ios-int4`; agreement only:
  Core ML runs on the Linux evaluator here, whose speed is not Apple's);
- PyTorch eager with its own cache, the reference;
- the anchor a user would build today: optimum `main_export` (`text-generation-with-past`), then
  ORT's `MatMulNBitsQuantizer` with its defaults (4 bits, block 128, asymmetric).

It reports time to first token for a 128-token prompt, decode tokens/s over 32 steps (median of
rounds, runners alternating) and agreement on the same prompts. It prints a table and writes
benchmarks/results/decoder_vs_reference.json.

    python benchmarks/decoder_vs_reference.py                       # Phi 1024x8
    python benchmarks/decoder_vs_reference.py --family llama --hidden 512 --layers 4 --prompts 16
    python benchmarks/decoder_vs_reference.py --targets onnx-fp32,onnx-int8,onnx-int4   # ONNX rows only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import write_results

from slimport import export
from slimport.errors import GateFailed
from slimport.targets import load_target
from slimport.validation.corpus import builtin_corpus
from slimport.validation.generation import TorchDecoder, artifact_decoder, generation_parity, prompts
from slimport.validation.runners.ort_decoder import OrtDecoder

TARGETS = ("onnx-fp32", "onnx-int8", "onnx-int4", "android-fp32", "android-int8", "android-int4", "ios-fp16",
           "ios-int8", "ios-int4")
RESULTS = "decoder_vs_reference"
PROMPT_TOKENS = 128
NEW_TOKENS = 32


def build(folder: Path, family: str, hidden: int, layers: int, vocab: int) -> Path:
    """A random checkpoint with a byte-level BPE tokenizer trained on the corpus."""
    import torch
    import transformers as tf

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.test_decoders import byte_bpe_tokenizer

    heads = max(1, hidden // 64)
    common = {"vocab_size": vocab, "max_position_embeddings": 2048, "bos_token_id": 0, "eos_token_id": 0}
    config = {
        "phi": lambda: tf.PhiConfig(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                                    num_attention_heads=heads, **common),
        "llama": lambda: tf.LlamaConfig(hidden_size=hidden, intermediate_size=int(2.75 * hidden),
                                        num_hidden_layers=layers, num_attention_heads=heads,
                                        num_key_value_heads=max(1, heads // 4), **common),
    }[family]()
    torch.manual_seed(0)
    tf.AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    byte_bpe_tokenizer(folder, min(vocab, 4096))
    return folder


def anchor(ckpt: Path, work: Path) -> Path:
    """optimum export + ORT MatMulNBits with its defaults: what a user does today."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    from optimum.exporters.onnx import main_export

    main_export(str(ckpt), output=str(work / "anchor-fp32"), task="text-generation-with-past", do_validation=False)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(work / "anchor-fp32" / "model.onnx")))
    quantizer.process()
    out = work / "anchor-int4" / "model.onnx"
    out.parent.mkdir()
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)
    return out


def speed(decoders: dict[str, Any], prompt: list[int], rounds: int) -> dict[str, dict[str, float]]:
    """Median time to first token (ms) and decode tokens/s per decoder, alternating every round."""
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in decoders}
    for index in range(rounds + 1):
        for name, decoder in decoders.items():
            start = time.perf_counter()
            logits, cache = decoder.prefill(prompt)
            first = time.perf_counter()
            token = int(logits[-1].argmax())
            for _ in range(NEW_TOKENS):
                logits, cache = decoder.step(token, cache)
                token = int(logits[-1].argmax())
            if index:  # the first round warms up
                times[name][0].append((first - start) * 1000)
                times[name][1].append(NEW_TOKENS / (time.perf_counter() - first))
    return {k: {"ttft_ms": statistics.median(v[0]), "decode_tok_s": statistics.median(v[1])} for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="phi", choices=("phi", "llama"))
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--prompts", type=int, default=24, help="corpus prompts for agreement (default 24)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset (default: all)")
    args = parser.parse_args(argv)
    import torch
    import transformers as tf

    torch.set_num_threads(2)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="slimport-decoder-bench-") as tmp:
        work = Path(tmp)
        ckpt = build(work / "ckpt", args.family, args.hidden, args.layers, args.vocab)
        texts = builtin_corpus("validation").texts[: args.prompts]
        (work / "prompts.txt").write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
        model = tf.AutoModelForCausalLM.from_pretrained(ckpt, attn_implementation="eager").eval()
        tokenizer = tf.AutoTokenizer.from_pretrained(ckpt)
        reference = TorchDecoder(model)
        decoders: dict[str, Any] = {"pytorch-eager": reference}
        for target in args.targets.split(","):
            start = time.perf_counter()
            try:
                report = export(model=ckpt, target=target, out=work / "out", validation_data=work / "prompts.txt",
                                calibration_data=work / "prompts.txt", latency_runs=0)
            except GateFailed as failed:
                report = failed.report
            folder = work / "out" / f"ckpt-{target}{'' if report.passed else '.FAILED'}"
            decoder = artifact_decoder(load_target(target).format, folder / report.artifact["model_file"], 2)
            if not getattr(decoder, "reference_only", False):
                decoders[target] = decoder
            rows[target] = {"verdict": "PASS" if report.passed else "FAIL", "size_mb": report.artifact["size_mb"],
                            "export_and_validate_s": time.perf_counter() - start,
                            "failed": [c["name"] for c in report.checks if not c["passed"]],
                            **{k: v for k, v in report.parity["task"].items() if k != "worst_texts"}}
            write_results(RESULTS, {"family": args.family, "hidden": args.hidden, "layers": args.layers,
                                    "vocab": args.vocab, "rows": rows, "complete": False})
        anchor_path = anchor(ckpt, work)
        decoders["optimum+ort-int4-default"] = OrtDecoder(anchor_path, 2)
        ids = prompts(tokenizer, texts, PROMPT_TOKENS)
        parity = generation_parity(reference, decoders["optimum+ort-int4-default"], ids, NEW_TOKENS)["task"]
        rows["optimum+ort-int4-default"] = {"verdict": "-", "size_mb": anchor_path.stat().st_size / 1e6,
                                            **{k: v for k, v in parity.items() if k != "worst_texts"}}
        rows["pytorch-eager"] = {"verdict": "-", "size_mb": sum(p.stat().st_size for p in ckpt.glob("*.safetensors"))
                                 / 1e6, "generation_agreement": 1.0, "task_agreement": 1.0}
        long_prompt = prompts(tokenizer, [" ".join(texts)], PROMPT_TOKENS)[0]
        for name, figures in speed(decoders, long_prompt, args.rounds).items():
            rows[name].update(figures)
    print(f"{args.family} hidden {args.hidden} x {args.layers} layers, vocab {args.vocab}; prompt {PROMPT_TOKENS} "
          f"tokens, {NEW_TOKENS} new; {args.prompts} prompts for agreement")
    print(f"{'runner':<26} {'verdict':<7} {'size MB':>8} {'TTFT ms':>8} {'decode tok/s':>12} {'top-1':>6} "
          f"{'gen. agree':>10}")
    for name, r in rows.items():
        print(f"{name:<26} {r['verdict']:<7} {r['size_mb']:>8.1f} {r.get('ttft_ms', float('nan')):>8.1f} "
              f"{r.get('decode_tok_s', float('nan')):>12.1f} {r.get('task_agreement', float('nan')):>6.3f} "
              f"{r.get('generation_agreement', float('nan')):>10.3f}  {' '.join(r.get('failed', []))}")
    write_results(RESULTS, {"family": args.family, "hidden": args.hidden, "layers": args.layers,
                            "vocab": args.vocab, "rows": rows, "complete": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
