"""Metrics, corpora and the accuracy-aware selection, on synthetic data."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from slimport.errors import InputError
from slimport.precision.selection import Candidate, select_recipe
from slimport.validation.corpus import builtin_corpus, load_corpus
from slimport.validation.metrics import ParityAccumulator, row_view


def test_builtin_corpora_are_varied_and_disjoint():
    validation, calibration = builtin_corpus("validation"), builtin_corpus("calibration")
    assert len(validation.texts) >= 64 and len(calibration.texts) >= 64
    assert not set(validation.texts) & set(calibration.texts)
    joined = "".join(validation.texts)
    assert any(ord(c) > 0x1F000 for c in joined), "emoji"
    for script in ("ж", "日", "ع", "서", "ह"):
        assert script in joined
    from transformers import AutoTokenizer

    from slimport.models.loader import default_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    longest = max(len(tokenizer(t)["input_ids"]) for t in validation.texts)
    assert longest > 512, "a text past the model maximum (truncation is exercised)"
    # calibration reaches every position a dynamic-shape artifact takes (smoothing scales calibrated on
    # short texts only blew up on long ones), and a prefix of 13 texts (calibration_samples) already does
    long = [i for i, t in enumerate(calibration.texts) if len(tokenizer(t)["input_ids"]) >= 350]
    assert len(long) >= 6 and long[0] < 13 and all(b - a <= 13 for a, b in zip(long[:-1], long[1:], strict=True))
    assert sum(len(tokenizer(calibration.texts[i])["input_ids"]) >= 512 for i in long) >= 4


def test_load_corpus_txt_and_jsonl(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("one\n\ntwo 😀\n", encoding="utf-8")
    assert load_corpus(txt).texts == ("one", "two 😀")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(json.dumps({"text": "x"}) + "\n" + json.dumps("y") + "\n")
    assert load_corpus(jsonl).texts == ("x", "y")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_corpus(latin)
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"label": 1}\n')
    with pytest.raises(InputError, match="b.jsonl:1"):
        load_corpus(bad)


def test_text_pairs_from_data_and_for_question_answering(tmp_path):
    from transformers import AutoTokenizer

    from slimport.models.loader import default_model_path
    from slimport.targets import load_target
    from slimport.validation.inputs import batches, encode

    pairs = tmp_path / "qa.jsonl"
    pairs.write_text(json.dumps({"question": "Who?", "context": "Ada wrote it."}) + "\n"
                     + json.dumps({"text": "a premise", "text_pair": "a hypothesis"}) + "\n", encoding="utf-8")
    corpus = load_corpus(pairs)
    assert corpus.texts == (("Who?", "Ada wrote it."), ("a premise", "a hypothesis"))
    assert corpus.describe()["pairs"] == "data"
    assert corpus.for_task("question-answering") is corpus and corpus.for_task("text-classification") is corpus
    with pytest.raises(InputError, match="single prompts"):
        corpus.for_task("text-generation")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps({"question": "q", "context": "c"}) + "\n" + json.dumps("single") + "\n")
    with pytest.raises(InputError, match="mixes single texts and pairs"):
        load_corpus(mixed)
    half = tmp_path / "half.jsonl"
    half.write_text(json.dumps({"question": "q", "context": 3}) + "\n")
    with pytest.raises(InputError, match="half.jsonl:1"):
        load_corpus(half)

    singles = builtin_corpus("validation")
    qa = singles.for_task("question-answering")
    assert singles.for_task("feature-extraction") is singles
    assert qa.pairs == "consecutive" and len(qa.texts) == len(singles.texts)
    assert qa.texts[0] == (singles.texts[0], singles.texts[1]) and qa.texts[-1] == (singles.texts[-1], singles.texts[0])
    assert qa.sha256 != singles.sha256

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    profile = load_target("onnx-int8").profile
    feeds = encode(tokenizer, list(qa.texts[:4]), profile)
    assert feeds["token_type_ids"].max() == 1, "the context is the second segment"
    assert feeds["input_ids"].shape[1] <= 512
    first = tokenizer(*qa.texts[0], truncation="longest_first", max_length=512)["input_ids"]
    assert feeds["input_ids"][0, : len(first)].tolist() == first
    batch = next(batches(tokenizer, list(qa.texts[:2]), profile))
    context = batch.answer_context
    assert context is not None and context.shape == batch.mask.shape
    # the context is the second text's own tokens: type 1, but not its closing [SEP]
    types, ids = batch.feeds["token_type_ids"][:2].astype(bool), batch.feeds["input_ids"][:2]
    assert (context == (types & (ids != tokenizer.sep_token_id))).all()
    assert next(batches(tokenizer, list(singles.texts[:2]), profile)).answer_context is None


def test_row_view_drops_padding():
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    hidden = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    blocks = row_view(hidden, mask)
    assert [b.shape for b in blocks] == [(2, 4), (1, 4)]
    assert [b.shape for b in row_view(np.zeros((2, 5)), mask)] == [(1, 5), (1, 5)]


def test_parity_identical_perturbed_and_nan():
    rng = np.random.default_rng(0)
    mask = np.ones((2, 4), dtype=bool)
    ref = {"last_hidden_state": rng.normal(size=(2, 4, 8)).astype(np.float32)}
    acc = ParityAccumulator("feature-extraction", ("last_hidden_state",))
    acc.update(ref, {"last_hidden_state": ref["last_hidden_state"].copy()}, mask)
    s = acc.summary()
    assert s["outputs"]["last_hidden_state"]["max_abs_error"] == 0
    assert s["task"]["pooled_cosine_min"] == pytest.approx(1.0)

    noisy = ref["last_hidden_state"] + 0.5 * rng.normal(size=(2, 4, 8)).astype(np.float32)
    acc = ParityAccumulator("feature-extraction", ("last_hidden_state",))
    acc.update(ref, {"last_hidden_state": noisy}, mask)
    s = acc.summary()["outputs"]["last_hidden_state"]
    assert 0.5 < s["cosine_mean"] < 0.99 and s["max_abs_error"] > 0.1 and s["psnr_db"] < 40

    broken = ref["last_hidden_state"].copy()
    broken[0, 0, 0] = np.nan
    acc = ParityAccumulator("feature-extraction", ("last_hidden_state",))
    acc.update(ref, {"last_hidden_state": broken}, mask)
    s = acc.summary()
    assert s["outputs"]["last_hidden_state"]["nonfinite"] == 1
    assert s["task"]["pooled_cosine_min"] == -1.0


def test_task_agreement_classification_and_qa():
    mask = np.ones((2, 3), dtype=bool)
    acc = ParityAccumulator("text-classification", ("logits",))
    acc.update({"logits": np.array([[1.0, 0.0], [0.0, 1.0]])}, {"logits": np.array([[1.0, 0.0], [1.0, 0.0]])}, mask)
    assert acc.summary()["task"]["task_agreement"] == 0.5
    assert acc.summary()["task"]["worst_texts"] == [{"index": 1, "score": 0.0}]
    acc = ParityAccumulator("question-answering", ("start_logits", "end_logits"))
    ref = {"start_logits": np.array([[0, 5.0, 0], [5.0, 0, 0]]), "end_logits": np.array([[0, 0, 5.0], [0, 5.0, 0]])}
    got = {"start_logits": ref["start_logits"], "end_logits": np.array([[0, 0, 5.0], [0, 0, 5.0]])}
    acc.update(ref, got, mask)
    assert acc.summary()["task"]["task_agreement"] == 0.5
    assert acc.summary()["task"]["positions"] == "all"
    # with the context known, only its tokens count: row 1's ends differ at positions 1 and 2, both in
    # its context, so it still disagrees; row 0's peaks agree wherever they are
    context = np.array([[False, True, True], [False, True, True]])
    in_context = ParityAccumulator("question-answering", ("start_logits", "end_logits"))
    in_context.update(ref, got, mask, context)
    assert in_context.summary()["task"]["task_agreement"] == 0.5
    assert in_context.summary()["task"]["positions"] == "context"
    # a divergence on a question token (position 0) is not an answer the app could give
    question = {"start_logits": np.array([[9.0, 5.0, 0], [9.0, 5.0, 0]]), "end_logits": ref["end_logits"]}
    base = ParityAccumulator("question-answering", ("start_logits", "end_logits"))
    base.update(ref, question, mask)
    assert base.summary()["task"]["task_agreement"] == 0.5
    scoped = ParityAccumulator("question-answering", ("start_logits", "end_logits"))
    scoped.update({**ref, "start_logits": np.array([[0, 5.0, 0], [0, 5.0, 0]])}, question, mask, context)
    assert scoped.summary()["task"]["task_agreement"] == 1.0


@dataclass
class _Check:
    passed: bool
    measured: float = 0.0
    limit: float = 1.0
    op: str = ">="

    def line(self) -> str:
        return "x"


def test_selection_tries_variants_then_grows_float_layers_on_the_closest():
    candidates = [Candidate(f"l{i}", 10 - i, "r") for i in range(10)]
    built = []

    def build(variant, kept):
        built.append((variant, len(kept)))
        return (variant, len(kept))

    def evaluate(art):
        variant, k = art
        return [_Check(variant == "b" and k >= 3, measured={"a": 0.5, "b": 0.9}[variant])]

    result = select_recipe([("A", "a"), ("B", "b")], candidates, build, evaluate, max_keep=8)
    assert built == [("a", 0), ("b", 0), ("b", 1), ("b", 2), ("b", 4)]
    assert result.passed and result.variant == "B" and [c.name for c in result.kept] == ["l0", "l1", "l2", "l3"]

    built.clear()
    result = select_recipe([("A", "a")], candidates, build, lambda art: [_Check(art[1] == 0 and False)], max_keep=5)
    assert not result.passed and len(result.kept) == 5 and len(result.attempts) == 5
    result = select_recipe([("B", "b")], candidates, build, lambda art: [_Check(True)], max_keep=5)
    assert result.passed and result.kept == [] and len(result.attempts) == 1


def test_selection_tries_the_other_variants_with_the_most_layers_kept_before_failing():
    """The variant closest fully quantized is not always closest with layers kept (LiteRT static int8
    on MiniLM: 'no smoothing' led by a hair at 0 layers, then failed with 8 kept where smoothing 0.7
    passed). Before failing, each other variant gets the largest kept set, closest first; one that
    passes there is tried with fewer kept layers too."""
    candidates = [Candidate(f"l{i}", 10 - i, "r") for i in range(10)]
    built = []
    measured = {("a", 0): 0.90, ("b", 0): 0.89, ("c", 0): 0.85}

    def build(variant, kept):
        built.append((variant, len(kept)))
        return (variant, len(kept))

    def evaluate(art):
        value = measured.get(art, 0.95)
        return [_Check(value >= 0.99, measured=value, limit=0.99)]

    measured.update({("b", 4): 0.995, ("c", 4): 0.999})
    result = select_recipe([("A", "a"), ("B", "b"), ("C", "c")], candidates, build, evaluate, max_keep=4)
    # B passes with 4 kept, so it gets the schedule's smaller kept sets too (none passes here)
    assert built == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("a", 2), ("a", 4), ("b", 4), ("b", 1), ("b", 2)]
    assert result.passed and result.variant == "B" and len(result.kept) == 4

    built.clear()
    measured[("b", 2)] = 0.992  # B also passes with 2 kept: the fewest that pass win
    result = select_recipe([("A", "a"), ("B", "b"), ("C", "c")], candidates, build, evaluate, max_keep=4)
    assert built[-3:] == [("b", 4), ("b", 1), ("b", 2)]
    assert result.passed and result.variant == "B" and result.artifact == ("b", 2) and len(result.kept) == 2
    del measured[("b", 2)]

    built.clear()
    measured.update({("a", 4): 0.97, ("b", 4): 0.98, ("c", 4): 0.96})
    result = select_recipe([("A", "a"), ("B", "b"), ("C", "c")], candidates, build, evaluate, max_keep=4)
    assert built[-3:] == [("a", 4), ("b", 4), ("c", 4)]
    assert not result.passed and result.variant == "B", "none passes: the closest at the most layers kept"
    assert result.artifact == ("b", 4)
    result = select_recipe([("B", "b"), ("A", "a")], [], build, evaluate, max_keep=4)
    assert not result.passed and result.variant == "A" and result.artifact == ("a", 0), "nothing to keep"


def test_selection_takes_the_cheapest_comfortable_variant_else_the_most_headroom():
    """Variants come cheapest first; a tight pass (headroom < 0.5) buys margin with a costlier variant."""
    def run(measured):
        def evaluate(art):
            return [_Check(True, measured=measured[art[0]], limit=0.98),
                    _Check(True, measured=0.001, limit=0.01, op="<="), _Check(True, measured=0, limit=0, op="<=")]

        return select_recipe([(k, k) for k in measured], [], lambda v, kept: (v, len(kept)), evaluate, max_keep=4)

    tight = run({"plain": 0.982, "smooth-0.7": 0.994, "smooth-0.5": 0.991})
    assert tight.variant == "smooth-0.7" and tight.passed and tight.kept == []
    assert [a.headroom for a in tight.attempts] == [pytest.approx(0.1), pytest.approx(0.7), pytest.approx(0.55)]
    comfortable = run({"plain": 0.995, "smooth-0.7": 0.999, "smooth-0.5": 0.998})
    assert comfortable.variant == "plain", "no smoothing Muls when plain int8 already has margin"


def test_static_selection_buys_headroom_with_float_layers_when_every_pass_is_tight():
    """Static recipes fix activation ranges on the calibration texts: a tight pass also gets the float
    fallback, and the first fallback with comfortable headroom (>= 0.5) wins; none: the most headroom."""
    candidates = [Candidate(f"l{i}", 10 - i, "r") for i in range(10)]
    margin = {0: 0.983, 1: 0.985, 2: 0.9885, 4: 0.992}  # headroom 0.15, 0.25, 0.425, 0.6

    def evaluate(art):
        return [_Check(True, measured=margin[art[1]], limit=0.98)]

    def run(**kwargs):
        return select_recipe([("smooth", "s")], candidates, lambda v, kept: (v, len(kept)), evaluate, max_keep=4,
                             **kwargs)

    assert run().kept == [], "dynamic recipes keep the tight pass"
    bought = run(buy_headroom=True)
    assert bought.passed and [c.name for c in bought.kept] == ["l0", "l1", "l2", "l3"]
    assert [len(a.kept) for a in bought.attempts] == [0, 1, 2, 4]
    margin[4] = 0.984  # never comfortable: the passing attempt with the most headroom
    assert [c.name for c in run(buy_headroom=True).kept] == ["l0", "l1"]


def test_weight_error_ranking_follows_the_weight_quantization_damage():
    """An outlier per block squeezes the other 31 values of the block; it hurts most when the outlier
    columns see no input (then the output depends only on the squeezed values), and least without
    outliers."""
    import numpy as np

    from slimport.precision.selection import fake_quant_blockwise, rank_by_weight_error
    from slimport.precision.stats import LinearInputStats

    rng = np.random.default_rng(0)
    smooth = rng.standard_normal((8, 64)).astype(np.float32)
    spiky = smooth.copy()
    spiky[:, ::32] *= 50  # one outlier per block of 32 squeezes the other 31 values
    silent = spiky.copy()

    def stats(moment):
        return LinearInputStats(-1.0, 1.0, 64.0, 64, np.ones(64), channel_sq_sum=moment)

    on = np.ones(64)
    off = np.ones(64)
    off[::32] = 0  # the outlier columns only ever see zeros
    ranked = rank_by_weight_error({"smooth": smooth, "spiky": spiky, "silent": silent},
                                  {"smooth": stats(on), "spiky": stats(on), "silent": stats(off)},
                                  lambda w: fake_quant_blockwise(w, 4, 32))
    assert [c.name for c in ranked] == ["silent", "spiky", "smooth"]
    assert np.allclose(fake_quant_blockwise(np.full((2, 32), 0.5), 4, 32), 0.5)


class _TableDecoder:
    """A stand-in decoder: the logits of a step depend only on the number of tokens seen so far."""

    name = "table"

    def __init__(self, table):
        self.table = table

    def prefill(self, ids):
        return np.stack([self.table(i + 1) for i in range(len(ids))]), len(ids)

    def step(self, token, cache):
        return self.table(cache + 1)[None, :], cache + 1


def _peaked(best: int, second: int | None = None, gap: float = 5.0, vocab: int = 16):
    def table(seen: int):
        row = np.linspace(-1.0, 0.0, vocab).astype(np.float32)[::-1].copy()  # descending, token 0 highest
        row[best], row[0] = row[0] + 10.0, row[best]
        if second is not None:
            row[second] = row[best] - gap
        return row
    return table


def test_generation_agreement_counts_a_divergence_at_a_near_tie_and_not_a_real_one():
    from slimport.validation.generation import generation_parity

    reference = _TableDecoder(_peaked(3, second=7, gap=1e-6))  # 3 and 7 tie at every step
    tie = generation_parity(reference, _TableDecoder(_peaked(7)), [[1, 2, 3]], new_tokens=8)["task"]
    assert tie["generation_agreement_strict"] == 0.0 and tie["generation_agreement"] == 1.0
    assert tie["tied_divergences"] == 1 and tie["first_divergence_min"] == 0
    assert tie["task_agreement"] == 1.0 and tie["near_tie_positions"] > 0
    real = generation_parity(_TableDecoder(_peaked(3, second=7, gap=2.0)), _TableDecoder(_peaked(7)), [[1, 2, 3]],
                             new_tokens=8)["task"]
    assert real["generation_agreement"] == 0.0 and real["tied_divergences"] == 0 and real["task_agreement"] == 0.0


def test_latency_reports_and_gates_the_slower_input():
    """A runner that is slow on padding (like ORT's softmax over masked keys on x86) is judged by its
    padded input, and the report keeps both inputs' figures."""
    import time

    from slimport.validation.latency import worst_case_latency

    class PaddingIsSlow:
        def run(self, feeds):
            time.sleep(0.004 if feeds["attention_mask"].mean() < 0.5 else 0.001)
            return {}

    full = {"attention_mask": np.ones((1, 8), np.int64)}
    padded = {"attention_mask": np.array([[1, 1, 0, 0, 0, 0, 0, 0]])}
    latency = worst_case_latency(PaddingIsSlow(), {"longest text": full, "shortest text, padded": padded},
                                 runs=5, warmup=1)
    assert latency["input"] == "shortest text, padded"
    assert latency["p50_ms"] == latency["by_input"]["shortest text, padded"]["p50_ms"] >= 4
    assert latency["by_input"]["longest text"]["p50_ms"] < 4
