"""Decoder LMs (GPT-2, Llama, Phi, Phi-3) exported to ONNX with a KV cache, validated by generation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from slimport import export
from slimport.errors import GateFailed, InputError
from slimport.validation.corpus import builtin_corpus

DECODER_FAMILIES = ("gpt2", "llama", "phi", "phi3")


def byte_bpe_tokenizer(folder: Path, vocab_size: int = 512) -> None:
    """A byte-level BPE tokenizer trained on the built-in corpus (any text encodes, no [UNK])."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = builtin_corpus("validation").texts + builtin_corpus("calibration").texts
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   model_max_length=256)
    fast.save_pretrained(folder)


def tiny_decoder(folder: Path, family: str, vocab_size: int = 512, hidden: int = 32, layers: int = 2) -> Path:
    """A random decoder checkpoint of ``family`` with peaked logits (so greedy choices are not ties)."""
    import transformers as tf

    common = {"vocab_size": vocab_size, "max_position_embeddings": 256, "initializer_range": 0.2,
              "bos_token_id": 0, "eos_token_id": 0}
    config = {
        "gpt2": lambda: tf.GPT2Config(n_embd=hidden, n_layer=layers, n_head=2, n_positions=256,
                                      **{k: v for k, v in common.items() if k != "max_position_embeddings"}),
        "llama": lambda: tf.LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                        num_attention_heads=4, num_key_value_heads=2, **common),
        "phi": lambda: tf.PhiConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                    num_attention_heads=4, **common),
        "phi3": lambda: tf.Phi3Config(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, **common),
    }[family]()
    torch.manual_seed(0)
    tf.AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    byte_bpe_tokenizer(folder, vocab_size)
    return folder


#: a short prompt set keeps the suite fast; the full corpus runs in benchmarks/decoder_vs_reference.py
PROMPTS = ["The quick brown fox jumps over the lazy dog.", "Où est la gare ? 🚉", "东京駅から新宿駅まで",
           "def add(a, b):\n    return a + b", "Привет! Как дела?", "🙂🙃😉 emoji only", "x" * 300,
           "The meeting moved from 3:30 PM to 4:15 PM."]


@pytest.fixture(scope="module")
def decoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    (root / "prompts.txt").write_text("\n".join(t.replace("\n", " ") for t in PROMPTS) + "\n", encoding="utf-8")
    checkpoints = {family: tiny_decoder(root / family, family) for family in DECODER_FAMILIES}
    return {**checkpoints, "prompts": root / "prompts.txt"}


def _export(decoders, family, target, out, **kw):
    return export(model=decoders[family], target=target, out=out, validation_data=decoders["prompts"],
                  calibration_data=decoders["prompts"], **kw)


def _export_any_verdict(decoders, family, target, out, **kw):
    """The report whether the gate passed or not (4-bit weights on a hidden-32 model are coarse; the
    tests check the recipe and that the figures are reported)."""
    try:
        return _export(decoders, family, target, out, **kw)
    except GateFailed as failed:
        return failed.report


def _generates_exactly(report, runner: str) -> None:
    """PASS with every prompt generated as PyTorch does, logits matching, through ``runner``."""
    assert report.passed, report.verdict_line()
    task = report.parity["task"]
    assert task["generation_agreement"] == 1.0 and task["task_agreement"] == 1.0 and task["prompts"] == len(PROMPTS)
    assert report.parity["outputs"]["logits"]["cosine_min"] > 0.9999
    assert report.parity["runner"] == runner


@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_decoder_exports_to_onnx_and_generates_like_pytorch(decoders, tmp_path, family):
    report = _export(decoders, family, "onnx-fp32", tmp_path, latency_runs=2)
    assert report.passed, report.verdict_line()
    assert report.model["task"] == "text-generation"
    task = report.parity["task"]
    assert task["metric"] == "generation" and task["prompts"] == len(PROMPTS) and task["new_tokens"] == 32
    assert task["generation_agreement"] == 1.0 and task["first_divergence_min"] == 32
    assert task["task_agreement"] == 1.0
    assert report.parity["outputs"]["logits"]["cosine_min"] > 0.9999
    latency = report.performance["latency"]
    assert latency["p50_ms"] > 0 and latency["decode_tokens_per_s"] > 0
    folder = tmp_path / f"{family}-onnx-fp32"
    assert (folder / "generation_config.json").is_file() and (folder / "tokenizer" / "tokenizer.json").is_file()
    names = [i["name"] for i in report.artifact["inputs"]]
    assert "input_ids" in names and "past_key_values.0.key" in names
    fused = report.artifact["precision"]["fused_ops"]  # GELU, rotary embeddings; norms stay apart from residuals
    assert not any(op.startswith("Skip") for op in fused), fused
    assert fused.get("RotaryEmbedding" if family != "gpt2" else "FastGelu", 0) >= 2, fused
    _generates_the_same_in_onnxruntime_genai(folder)


def _generates_the_same_in_onnxruntime_genai(folder: Path) -> None:
    """The folder loads as an ONNX Runtime GenAI model (genai_config.json) and its greedy search gives
    the tokens slimport's own runner gives."""
    import onnxruntime_genai as og

    from slimport.validation.generation import greedy
    from slimport.validation.runners.ort_decoder import OrtDecoder

    prompt = [5, 17, 42, 7, 99, 3, 250]
    ours, _ = greedy(OrtDecoder(folder / "model.onnx", 1), prompt, 12)
    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + 12, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(np.asarray([prompt], dtype=np.int32))
    theirs = []
    while not generator.is_done():
        generator.generate_next_token()
        theirs.append(int(generator.get_next_tokens()[0]))
    assert theirs == ours


def test_int4_uses_matmulnbits_and_reports_agreement(decoders, tmp_path):
    target = tmp_path / "int4.toml"
    target.write_text('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "int4"\nblock_size = 16\n'
                      "[gate]\nnonfinite = 0\n", encoding="utf-8")
    report = _export(decoders, "llama", str(target), tmp_path / "out", latency_runs=0)
    precision = report.artifact["precision"]
    assert precision["operators"].get("com.microsoft:MatMulNBits", 0) >= 2 * 7  # q,k,v,o,gate,up,down per layer
    assert precision["operators"].get("com.microsoft:GatherBlockQuantized", 0) == 1  # the token embedding
    task = report.parity["task"]
    assert 0.0 <= task["generation_agreement"] <= 1.0 and 0 <= task["first_divergence_min"] <= 32
    assert report.parity["outputs"]["logits"]["cosine_mean"] > 0.9
    fp32 = _export(decoders, "llama", "onnx-fp32", tmp_path / "fp32", latency_runs=0)
    assert report.artifact["size_mb"] < fp32.artifact["size_mb"]


def test_generation_gate_fails_with_the_figure(decoders, tmp_path):
    target = tmp_path / "strict.toml"
    target.write_text('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "int8"\n'
                      "[gate]\ngeneration_agreement = 1.0\noutput_cosine_min = 0.999999\n", encoding="utf-8")
    with pytest.raises(GateFailed, match="parity"):
        _export(decoders, "gpt2", str(target), tmp_path, latency_runs=0)


def test_decoders_are_refused_by_an_exporter_that_does_not_build_them(decoders, tmp_path, monkeypatch):
    from slimport.exporters.tflite import TfliteExporter

    monkeypatch.setattr(TfliteExporter, "decoders", False)  # e.g. a plugin exporter for encoders only
    with pytest.raises(InputError, match="text-generation model and the tflite exporter does not build"):
        _export(decoders, "gpt2", "android-fp32", tmp_path, latency_runs=0)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_decoder_exports_to_coreml_with_one_program_for_prefill_and_decode(decoders, tmp_path, family):
    from slimport.validation.mil import program_info

    report = _export(decoders, family, "ios-fp32", tmp_path, latency_runs=2)
    _generates_exactly(report, "slimport-mil-evaluator-decoder")
    assert report.performance["latency"] is None  # the evaluator is not Apple's speed
    info = program_info(tmp_path / f"{family}-ios-fp32" / "model.mlpackage")
    shapes = {t["name"]: t["shape"] for t in info["inputs"]}
    assert isinstance(shapes["input_ids"][1], str) and shapes["k_cache"] == report.artifact["precision"]["kv_cache"][
        "shape"]
    assert info["metadata"]["slimport.prefill_len"] == "128" and info["metadata"]["slimport.context"] == "256"
    assert (tmp_path / f"{family}-ios-fp32" / "generation_config.json").is_file()


def test_coreml_decoder_fp16_passes_and_int4_holds_4_bit_weights(decoders, tmp_path):
    fp16 = _export(decoders, "llama", "ios-fp16", tmp_path / "fp16", latency_runs=0)
    assert fp16.passed, fp16.verdict_line()
    assert fp16.parity["task"]["task_agreement"] >= 0.99
    int4 = _export_any_verdict(decoders, "llama", "ios-int4", tmp_path / "int4", latency_runs=0)
    assert int4.artifact["precision"]["weights"].get("int4 (compressed)", 0) > 0
    assert int4.artifact["size_mb"] < fp16.artifact["size_mb"]
    assert 0.0 <= int4.parity["task"]["generation_agreement"] <= 1.0


@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_decoder_exports_to_tflite_with_prefill_and_decode_signatures(decoders, tmp_path, family):
    from ai_edge_litert.interpreter import Interpreter

    report = _export(decoders, family, "android-fp32", tmp_path, latency_runs=2)
    _generates_exactly(report, "ai-edge-litert-decoder")
    assert report.performance["latency"]["decode_tokens_per_s"] > 0
    kv = report.artifact["precision"]["kv_cache"]
    assert kv["context"] == 256 and kv["prefill_len"] == 128  # the profile's 512 slots, capped at n_positions
    folder = tmp_path / f"{family}-android-fp32"
    signatures = Interpreter(model_path=str(folder / "model.tflite")).get_signature_list()
    assert set(signatures) == {"prefill", "decode"}
    assert signatures["decode"]["inputs"] == ["input_ids", "input_pos", "k_cache", "v_cache"]
    assert sorted(signatures["decode"]["outputs"]) == ["k_new", "logits", "v_new"]
    assert (folder / "generation_config.json").is_file()


def test_tflite_decoder_prefills_long_prompts_in_chunks_and_refuses_a_full_cache(decoders, tmp_path):
    """A profile with an 8-token prefill: every longer prompt is fed in padded chunks, still exact."""
    from slimport.validation.runners.litert_decoder import LiteRtDecoder

    profile = (tmp_path / "small.toml")
    profile.write_text('name = "small"\ndevice = "android"\nthreads = 1\nbatch = 1\nseq_len = 8\ncontext = 64\n'
                       'static_shape = true\ninput_dtype = "int32"\nsize_budget_mb = 10\nmemory_budget_mb = 500\n'
                       "latency_p50_ms = 1000\nlatency_p90_ms = 2000\n", encoding="utf-8")
    target = tmp_path / "chunks.toml"
    target.write_text(f'format = "tflite"\nprofile = "{profile}"\n[precision]\ndtype = "fp32"\n'
                      "[gate]\ngeneration_agreement = 1.0\ntask_agreement = 1.0\n", encoding="utf-8")
    _export(decoders, "llama", str(target), tmp_path / "out", latency_runs=0)
    runner = LiteRtDecoder(tmp_path / "out" / "llama-chunks" / "model.tflite", 1)
    assert (runner.prefill_len, runner.context) == (8, 64)
    ids = list(range(5, 26))  # 21 tokens: chunks of 8, 8 and 5 (padded)
    chunked, cache = runner.prefill(ids)
    assert chunked.shape[0] == 21
    stepped, cache = runner.step(3, cache)
    full, _ = runner.prefill([*ids, 3])
    assert np.allclose(stepped[-1], full[-1], atol=1e-4) and np.allclose(chunked, full[:21], atol=1e-4)
    with pytest.raises(InputError, match="KV cache holds 64 tokens"):
        runner.prefill(list(range(65)))


def test_tflite_decoder_int4_and_int8_shrink_the_weights(decoders, tmp_path):
    fp32 = _export(decoders, "phi3", "android-fp32", tmp_path / "fp32", latency_runs=0)
    sizes = {}
    for name in ("android-int8", "android-int4"):
        report = _export_any_verdict(decoders, "phi3", name, tmp_path / name, latency_runs=0)
        task = report.parity["task"]
        assert 0.0 <= task["generation_agreement"] <= 1.0 and task["count"] > 0
        assert report.parity["outputs"]["logits"]["cosine_mean"] > 0.9
        sizes[name] = report.artifact["size_mb"]
        weights = report.artifact["precision"]["weights"]
        assert weights.get("int4" if name == "android-int4" else "int8", 0) > 0, weights
        assert report.artifact["runtime"]["hybrid_ops"].get("FULLY_CONNECTED", 0) >= 2 * 4
    assert sizes["android-int4"] < sizes["android-int8"] < fp32.artifact["size_mb"]


def test_ort_decoder_cache_matches_a_full_recompute(decoders, tmp_path):
    """Decode steps with the cache give the logits of running the whole sequence again."""
    from slimport.validation.runners.ort_decoder import OrtDecoder

    _export(decoders, "phi3", "onnx-fp32", tmp_path, latency_runs=0)
    runner = OrtDecoder(tmp_path / "phi3-onnx-fp32" / "model.onnx", 1)
    ids = [5, 17, 42, 7, 99]
    _, cache = runner.prefill(ids[:3])
    stepped = None
    for token in ids[3:]:
        stepped, cache = runner.step(token, cache)
    full, _ = runner.prefill(ids)
    assert np.allclose(stepped[-1], full[-1], atol=1e-4)
    json.dumps(runner.versions())


def test_decoder_release_has_generation_golden_vectors_that_verify_checks(decoders, tmp_path):
    from slimport.release import release, verify

    (tmp_path / "release.toml").write_text(
        f'[release]\nname = "lm"\nversion = "0.1.0"\ntargets = ["onnx-fp32", "onnx-int4"]\n'
        f'validation_data = "{decoders["prompts"]}"\ncalibration_data = "{decoders["prompts"]}"\n\n'
        f'[[model]]\nname = "gpt2"\npath = "{decoders["gpt2"]}"\n', encoding="utf-8")
    data = release(tmp_path / "release.toml", tmp_path / "bundle", cache_dir=tmp_path / "cache", latency_runs=0)
    assert {a["target"] for a in data["artifacts"]} == {"onnx-fp32", "onnx-int4"}
    golden = json.loads((tmp_path / "bundle" / data["artifacts"][0]["golden"]).read_text())
    assert golden["kind"] == "generation" and len(golden["vectors"]) == 3
    assert all(len(v["artifact_tokens"]) == golden["new_tokens"] for v in golden["vectors"])
    assert verify(tmp_path / "bundle") == []
    vector = golden["vectors"][0]  # a changed expectation is caught even with intact hashes elsewhere
    vector["artifact_tokens"] = [(t + 1) % 512 for t in vector["artifact_tokens"]]
    path = tmp_path / "bundle" / data["artifacts"][0]["golden"]
    path.write_text(json.dumps(golden), encoding="utf-8")
    from slimport.release.golden import check_golden

    entry = data["artifacts"][0]
    problems = check_golden(tmp_path / "bundle" / entry["folder"], entry["format"], entry["model_file"])
    assert problems and "released artifact generated" in problems[0]


def test_family_and_task_must_fit(decoders, tiny, tmp_path):
    with pytest.raises(InputError, match="export for text-generation, not feature-extraction"):
        export(model=decoders["llama"], target="onnx-fp32", out=tmp_path, task="feature-extraction")
    with pytest.raises(InputError, match="bert is an encoder family"):
        export(model=tiny("bert", "feature-extraction"), target="onnx-fp32", out=tmp_path, task="text-generation")
