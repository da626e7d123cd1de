"""The sample apps' platform-free cores against a real bundle.

Kotlin (sample_apps/android/core): compiled with Debian's `kotlinc` and run with JUnit 4 on the
JVM; its WordPiece tokenizer must give exactly the Python tokenizer's ids on the whole corpus, and
its input building must reproduce the golden inputs. Swift (sample_apps/ios/SlimportCore) cannot be
compiled here; its manifest fields are checked statically against the schema.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slimport.release import release
from slimport.validation.corpus import builtin_corpus

ROOT = Path(__file__).resolve().parents[1]
KOTLIN_CORE = ROOT / "sample_apps" / "android" / "core"
JAVA_LIBS = Path("/usr/share/java")

#: beyond the corpus: what trips hand-written BERT tokenizers
EXTRA_TEXTS = [
    "", " ", "[CLS] already [SEP] has [MASK] special tokens [PAD]",
    "İstanbul'da ΟΔΟΣ ΣΟΦΟΣ Straße ǅemal ﬁne ＡＢＣ１２３",
    "zero\u200bwidth soft\u00adhyphen nbsp\u00a0here figure\u2007space line\u2028sep x\u0085y tab\tnew\nline\r\n",
    "emoji 🫠🥰👩🏽‍🚀🏳️‍🌈 flags 🇯🇵 keycap 1️⃣ and 🍺" * 3,
    "𠀋𠀍 CJK ext-B, 〈brackets〉 「quotes」 ¿qué? ¡sí! «guillemets» — dash … ellipsis",
    "a" * 99 + " " + "b" * 100 + " " + "c" * 101,
    "naïve café résumé coöperate Ångström ﬀ ‰ ™ © ½ ² ∑ ∞ → ≠",
    "tab\x00nul\ufffdreplacement\x07bell\x1bescape\ue000private",
    "def f(x):\n    return {'k': [x**2, x // 3]}  # ok?!",
    "The same sentence. " * 150,
]


def _pair_cases(tokenizer, texts: list[str]) -> list[dict]:
    """Each text paired with the next, at a length that truncates (of a pair, the longer text first) and at
    512: ids and token types as validation encodes pairs (a batch call, truncation=True)."""
    firsts, seconds = texts[:-1], texts[1:]
    cases = []
    for length in (24, 512):
        rows = tokenizer(firsts, seconds, truncation=True, max_length=length, return_token_type_ids=True)
        cases += [{"text": a, "pair": b, "max_length": length, "ids": ids, "type_ids": types}
                  for a, b, ids, types in zip(firsts, seconds, rows["input_ids"], rows["token_type_ids"], strict=True)]
    return cases


def _java(*parts: str) -> str:
    return ":".join(str(JAVA_LIBS / p) for p in parts)


def _junit(jar: Path, test_class: str, **properties: Path) -> subprocess.CompletedProcess:
    """Run one JUnit 4 class of the compiled core with ``-Dslimport.<name>=<path>`` properties; must pass."""
    classpath = f"{jar}:{JAVA_LIBS / 'kotlin-stdlib.jar'}:{_java('junit4.jar', 'hamcrest-core.jar')}"
    flags = [f"-Dslimport.{name}={path}" for name, path in properties.items()]
    proc = subprocess.run(["java", *flags, "-cp", classpath, "org.junit.runner.JUnitCore",
                           f"dev.slimport.core.{test_class}"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc


@pytest.fixture(scope="module")
def bundle(tiny, tmp_path_factory):
    """A release with a feature-extraction model (static and flexible shapes), a classifier (an ALBERT
    with a SentencePiece Unigram tokenizer, as a real ALBERT checkpoint ships) and a question-answering
    model (golden vectors are (question, context) pairs)."""
    root = tmp_path_factory.mktemp("apps")
    albert = root / "albert-unigram"
    shutil.copytree(tiny("albert", "text-classification"), albert)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (albert / name).unlink(missing_ok=True)
    unigram = _sentencepiece_unigram(root / "albert-tokenizer", "albert")
    for name in ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(unigram / name, albert / name)
    (root / "release.toml").write_text(
        '[release]\nname = "apps"\nversion = "0.1.0"\nworkers = 2\n\n'
        f'[[model]]\nname = "embedder"\npath = "{tiny("bert", "feature-extraction")}"\n'
        'targets = ["android-fp32", "ios-fp16"]\n\n'
        f'[[model]]\nname = "classifier"\npath = "{albert}"\n'
        'targets = ["android-fp32"]\n\n'
        f'[[model]]\nname = "reader"\npath = "{tiny("bert", "question-answering")}"\n'
        'targets = ["android-fp32"]\n', encoding="utf-8")
    release(root / "release.toml", root / "bundle", cache_dir=root / "cache", latency_runs=0)
    return root / "bundle"


@pytest.fixture(scope="module")
def kotlin_core(tmp_path_factory):
    """The Kotlin core and its tests compiled into one jar."""
    if not shutil.which("kotlinc") or not (JAVA_LIBS / "junit4.jar").is_file():
        pytest.fail("kotlinc and JUnit 4 are needed: apt-get install kotlin junit4 (make test does it)")
    jar = tmp_path_factory.mktemp("kotlin") / "core-tests.jar"
    proc = subprocess.run(["kotlinc", str(KOTLIN_CORE / "src" / "main" / "kotlin"),
                           str(KOTLIN_CORE / "src" / "test" / "kotlin"), "-cp", _java("junit4.jar"),
                           "-d", str(jar)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return jar


def test_kotlin_core_matches_python_tokenizer_and_golden_inputs(bundle, kotlin_core, tmp_path):
    from transformers import AutoTokenizer

    data = json.loads((bundle / "manifest.json").read_text())
    entry = data["artifacts"][0]
    tokenizer = AutoTokenizer.from_pretrained(bundle / entry["folder"] / "tokenizer")
    texts = [*builtin_corpus("validation").texts, *builtin_corpus("calibration").texts, *EXTRA_TEXTS]
    max_length = 512
    cases = [{"text": t, "ids": tokenizer(t, truncation=True, max_length=max_length)["input_ids"]} for t in texts]
    cases += _pair_cases(tokenizer, texts)
    parity = tmp_path / "parity.json"
    parity.write_text(json.dumps({"max_length": max_length, "cases": cases}, ensure_ascii=False), encoding="utf-8")
    models = {json.loads((bundle / a["folder"] / "tokenizer" / "tokenizer.json").read_text())["model"]["type"]
              for a in data["artifacts"]}
    assert models == {"WordPiece", "Unigram"}, "golden inputs are rebuilt with both tokenizer models"
    qa = next(a for a in data["artifacts"] if a["task"] == "question-answering")
    golden = json.loads((bundle / qa["folder"] / "golden.json").read_text())
    assert all(v["text_pair"] for v in golden["vectors"]), "question answering's golden vectors are pairs"
    assert 1 in golden["vectors"][0]["inputs"]["token_type_ids"][0], "the context is token type 1"
    proc = _junit(kotlin_core, "CoreTest", bundle=bundle, parity=parity)
    assert f"tokenizer parity: {len(cases)}/{len(cases)} texts identical" in proc.stdout
    assert re.search(r"OK \(6 tests\)", proc.stdout), proc.stdout[-2000:]


@pytest.fixture(scope="module")
def decoder_bundle(tmp_path_factory):
    """A release of a tiny GPT-2 (byte-level BPE) for LiteRT and Core ML."""
    from tests.test_decoders import PROMPTS, tiny_decoder

    root = tmp_path_factory.mktemp("decoder-apps")
    (root / "prompts.txt").write_text("\n".join(t.replace("\n", " ") for t in PROMPTS) + "\n", encoding="utf-8")
    (root / "release.toml").write_text(
        '[release]\nname = "lm-apps"\nversion = "0.1.0"\ntargets = ["android-fp32", "ios-fp32"]\n'
        f'validation_data = "{root / "prompts.txt"}"\ncalibration_data = "{root / "prompts.txt"}"\n\n'
        f'[[model]]\nname = "gpt2"\npath = "{tiny_decoder(root / "gpt2", "gpt2")}"\n', encoding="utf-8")
    release(root / "release.toml", root / "bundle", cache_dir=root / "cache", latency_runs=0)
    return root / "bundle"


def _roberta_style_bpe(folder: Path) -> Path:
    """A RoBERTa-layout byte-level BPE (prefix space, <s> ... </s> post-processor) trained on the corpus."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    tok = ByteLevelBPETokenizer(add_prefix_space=True)
    texts = builtin_corpus("validation").texts + builtin_corpus("calibration").texts
    tok.train_from_iterator(texts, vocab_size=700, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                      ("<s>", tok.token_to_id("<s>")), add_prefix_space=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=512, add_prefix_space=True)
    fast.save_pretrained(folder)
    return folder


def _llama_style_bpe(folder: Path) -> Path:
    """A Llama-layout SentencePiece-style BPE (Metaspace "first", byte fallback, `<s> $A`) trained on the
    corpus; the byte tokens are plain vocabulary, as in Llama's tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens],
                                  limit_alphabet=300)
    tok.train_from_iterator(builtin_corpus("validation").texts + builtin_corpus("calibration").texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            model_max_length=2048).save_pretrained(folder)
    for name, key in (("tokenizer.json", "added_tokens"), ("tokenizer_config.json", "added_tokens_decoder")):
        data = json.loads((folder / name).read_text(encoding="utf-8"))
        added = data[key]
        data[key] = ([a for a in added if not a["content"].startswith("<0x")] if isinstance(added, list)
                     else {k: v for k, v in added.items() if not v["content"].startswith("<0x")})
        (folder / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


def _sentencepiece_unigram(folder: Path, layout: str, byte_fallback: bool = False) -> Path:
    """A SentencePiece Unigram model trained on the corpus (NFKC rules compiled into its charsmap), converted
    by transformers as for a real checkpoint: ALBERT's layout (quote Replaces, NFKD, StripAccents,
    Lowercase, Precompiled, Metaspace, `[CLS] $A [SEP]`, `[MASK]` taking the space before it) or
    XLM-R's (Precompiled, WhitespaceSplit + Metaspace, `<s> $A </s>`).

    With ``byte_fallback`` the model is trained with SentencePiece's byte pieces (`<0x00>`..`<0xFF>`) and
    its `tokenizer.json` says `byte_fallback` (transformers' XLM-R converter leaves it off): characters
    outside the vocabulary become their UTF-8 bytes, as SentencePiece itself encodes them."""
    import io

    import sentencepiece as spm
    from transformers import AlbertTokenizerFast, XLMRobertaTokenizerFast

    texts = builtin_corpus("validation").texts + builtin_corpus("calibration").texts
    specials = {"albert": ("<pad>", "<unk>", "[CLS]", "[SEP]"), "xlmr": ("<pad>", "<unk>", "<s>", "</s>")}[layout]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type="unigram", vocab_size=2000,
        hard_vocab_limit=False, normalization_rule_name="nmt_nfkc", character_coverage=0.995,
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece=specials[0], unk_piece=specials[1],
        bos_piece=specials[2], eos_piece=specials[3], byte_fallback=byte_fallback, minloglevel=2)
    folder.mkdir(parents=True)
    (folder / "spiece.model").write_bytes(model.getvalue())
    fast = AlbertTokenizerFast if layout == "albert" else XLMRobertaTokenizerFast
    fast(vocab_file=str(folder / "spiece.model"), model_max_length=512).save_pretrained(folder)
    if byte_fallback:
        data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        data["model"]["byte_fallback"] = True
        (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


def _whitespace_first_unigram(source: Path, folder: Path) -> Path:
    """``source``'s Unigram tokenizer with T5-style pre-tokenization: WhitespaceSplit, then Metaspace
    prepending "▁" to the text's first word only (``prepend_scheme="first"``)."""
    from tokenizers import Tokenizer, pre_tokenizers

    shutil.copytree(source, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Metaspace(prepend_scheme="first")])
    tok.save(str(folder / "tokenizer.json"))
    return folder


#: beyond EXTRA_TEXTS: what trips the SentencePiece normalizers and the added-token splitter
SENTENCEPIECE_TEXTS = [
    "x ``quoted'' y and ''this''", "hello [MASK] world  [MASK]end", "  leading and trailing spaces  ",
    "ｶﾞｷﾞ half-width kana, ﾊﾟ", "ＡＢＣ full-width Ｚ", "e\u0301 combining, a\u0308\u0301 two marks",
    "\u2460 \u2163 \u3392",
    "line\r\nnext\rcr\nlf", "tab\there\u3000ideographic", "▁ already ▁▁ metaspace", "<s>starts with a special token",
]


def test_kotlin_core_tokenizers_match_python(decoder_bundle, kotlin_core, tmp_path):
    """Every tokenizer layout the core reads, on the corpus and the awkward texts: ids (and decoded text for
    the BPE ones decoders use) identical to Python's."""
    from transformers import AutoTokenizer

    data = json.loads((decoder_bundle / "manifest.json").read_text())
    texts = [*builtin_corpus("validation").texts, *builtin_corpus("calibration").texts, *EXTRA_TEXTS,
             *SENTENCEPIECE_TEXTS, "<|endoftext|>inside<|endoftext|> text", "Hello\n\n\nworld's it'll",
             "hello <s> world</s>end"]
    gpt2 = decoder_bundle / data["artifacts"][0]["folder"] / "tokenizer"
    layouts = (("gpt2-style", gpt2, True), ("roberta-style", _roberta_style_bpe(tmp_path / "roberta"), True),
               ("llama-style", _llama_style_bpe(tmp_path / "llama"), True),
               ("albert-unigram", _sentencepiece_unigram(tmp_path / "albert", "albert"), False),
               ("xlmr-unigram", _sentencepiece_unigram(tmp_path / "xlmr", "xlmr"), False))
    layouts += (("t5-style-unigram", _whitespace_first_unigram(layouts[-1][1], tmp_path / "t5"), False),
                ("unigram-byte-fallback", _sentencepiece_unigram(tmp_path / "bytes", "xlmr", byte_fallback=True),
                 False))
    sets = []
    for name, folder, decodes in layouts:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        cases = []
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=512)["input_ids"]
            cases.append({"text": text, "ids": ids,
                          **({"decoded": tokenizer.decode(ids, skip_special_tokens=True)} if decodes else {})})
        if name == "unigram-byte-fallback":  # the layout is only a test if some text falls back to bytes
            assert sum(any(t.startswith("<0x") for t in tokenizer.tokenize(text)) for text in texts) >= 5
        cases += _pair_cases(tokenizer, texts)
        sets.append({"name": name, "tokenizer": str(folder / "tokenizer.json"),
                     "config": str(folder / "tokenizer_config.json"), "max_length": 512, "cases": cases})
    parity = tmp_path / "tokenizers.json"
    parity.write_text(json.dumps({"sets": sets}, ensure_ascii=False), encoding="utf-8")
    proc = _junit(kotlin_core, "TokenizerTest", tokenizers=parity)
    count = len(texts) + 2 * (len(texts) - 1)  # the texts, then the pairs at two lengths
    for name, _, _ in layouts:
        assert f"parity {name}: {count}/{count} texts identical" in proc.stdout
    assert re.search(r"OK \(1 test\)", proc.stdout), proc.stdout[-2000:]


def test_kotlin_core_reads_decoder_bundles(decoder_bundle, kotlin_core):
    proc = _junit(kotlin_core, "DecoderTest", decoder_bundle=decoder_bundle)
    assert re.search(r"OK \(3 tests\)", proc.stdout), proc.stdout[-2000:]


def test_swift_core_reads_the_fields_the_schema_defines():
    """The Swift package cannot be compiled on Linux: check that every manifest field it decodes exists
    in the schema (so a renamed or removed field fails here), and that Kotlin and Swift read the same."""
    schema = json.loads((ROOT / "slimport" / "release" / "manifest.schema.json").read_text())
    artifact = schema["$defs"]["artifact"]["properties"]
    profile_fields = set(artifact["profile"]["required"])
    swift = (ROOT / "sample_apps" / "ios" / "SlimportCore" / "Sources" / "SlimportCore" / "Manifest.swift").read_text()
    kotlin = (KOTLIN_CORE / "src" / "main" / "kotlin" / "dev" / "slimport" / "core" / "Manifest.kt").read_text()

    def swift_keys(type_name: str) -> set[str]:
        block = re.search(rf"struct {type_name}\b.*?enum CodingKeys: String, CodingKey \{{(.*?)\}}", swift, re.S)
        assert block, f"Manifest.swift has no CodingKeys for {type_name}"
        keys = set()
        for case in re.findall(r"case (.+)", block.group(1)):
            for item in case.split(","):
                name, _, raw = item.strip().partition("=")
                keys.add(raw.strip().strip('"') if raw else name.strip())
        return keys

    def kotlin_list(name: str) -> set[str]:
        block = re.search(rf"val {name} = listOf\((.*?)\)", kotlin, re.S)
        assert block, f"Manifest.kt has no {name}"
        return set(re.findall(r'"([a-z_0-9]+)"', block.group(1)))

    swift_artifact, kotlin_artifact = swift_keys("ArtifactEntry"), kotlin_list("ARTIFACT_FIELDS")
    assert swift_artifact <= set(artifact), f"Swift reads fields the schema lacks: {swift_artifact - set(artifact)}"
    assert kotlin_artifact <= set(artifact), f"Kotlin reads fields the schema lacks: {kotlin_artifact - set(artifact)}"
    assert swift_artifact == kotlin_artifact
    swift_profile, kotlin_profile = swift_keys("Profile"), kotlin_list("PROFILE_FIELDS")
    assert swift_profile == kotlin_profile
    assert swift_profile <= profile_fields, f"not in the schema: {swift_profile - profile_fields}"
    for needed in ("inputs", "outputs", "tokenizer_files", "golden", "labels", "profile", "model_file"):
        assert needed in swift_artifact


@pytest.mark.parametrize(("target", "language", "runtime"), [
    ("android-fp32", "kotlin", "org.tensorflow.lite.Interpreter"),
    ("onnx-fp32", "kotlin", "ai.onnxruntime.OrtEnvironment"),
    ("ios-fp16", "swift", "import CoreML"),
])
def test_emit_app_snippet_fills_in_the_artifacts_contract(tiny, tmp_path, capsys, target, language, runtime):
    from slimport.cli import main

    ckpt = tiny("distilbert", "text-classification")
    code = main(["export", "--model", str(ckpt), "--target", target, "--out", str(tmp_path), "--latency-runs", "0",
                 "--quiet", "--emit-app-snippet", language])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "PASS" in err and runtime in out
    assert ("Tokenizers.fromJson(" if language == "kotlin" else "Tokenizers.text(") in out
    folder = f"{ckpt.name}-{target}"
    report = json.loads((tmp_path / folder / "report.json").read_text())
    assert f'"{folder}' in out and report["artifact"]["model_file"] in out
    for tensor in report["artifact"]["inputs"] + report["artifact"]["outputs"]:
        assert tensor["name"] in out
    assert all(f'"{label}"' in out for label in report["model"]["labels"])
    if language == "kotlin":  # the embedded manifest entry is what Manifest.parse reads
        embedded = json.loads(re.search(r'MANIFEST = """(.*?)"""', out, re.S).group(1))
        assert embedded["artifacts"][0]["model_file"] == report["artifact"]["model_file"]
        assert embedded["artifacts"][0]["profile"]["seq_len"] == report["target"]["profile"]["seq_len"]


@pytest.mark.parametrize(("target", "language", "pair_call"), [
    ("android-fp32", "kotlin", "fun run(question: String, context: String)"),
    ("ios-fp32", "swift", "func run(_ question: String, context: String)"),
])
def test_question_answering_snippet_feeds_question_and_context_as_a_pair(tiny, tmp_path, capsys, target, language,
                                                                         pair_call):
    """A QA artifact was validated on (question, context) pairs; its snippet builds the same pair inputs."""
    from slimport.cli import main

    ckpt = tiny("bert", "question-answering")
    code = main(["export", "--model", str(ckpt), "--target", target, "--out", str(tmp_path), "--latency-runs", "0",
                 "--quiet", "--emit-app-snippet", language])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert pair_call in out and "run(text: String)" not in out and "run(_ text: String)" not in out
    if language == "kotlin":
        assert out.count("builder.buildPairs(listOf(question to context))") == 1
    else:
        assert "tokenizer.encodePair(question, context," in out and 'case "token_type_ids"' in out


@pytest.mark.parametrize(("target", "language", "geometry"), [
    ("android-fp32", "kotlin", "CacheGeometry(2, 2, 256, 16, 128), VOCAB"),
    ("ios-fp32", "swift", "CacheGeometry(layers: 2, kvHeads: 2, context: 256,"),
])
def test_decoder_snippet_drives_the_cores_generator(tmp_path, capsys, target, language, geometry):
    from slimport.cli import main
    from tests.test_decoders import tiny_decoder

    ckpt = tiny_decoder(tmp_path / "gpt2", "gpt2")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("The quick brown fox.\nOù est la gare ?\n", encoding="utf-8")
    code = main(["export", "--model", str(ckpt), "--target", target, "--out", str(tmp_path / "out"),
                 "--validation-data", str(prompts), "--latency-runs", "0", "--quiet", "--emit-app-snippet", language])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert geometry in out and "Generator" in out and "Tokenizers." in out
    assert "512" in out  # the vocabulary, from the logits contract (Core ML programs carry no output shapes)
    assert "WordPieceTokenizer" not in out and "serving_default" not in out


def test_decoder_snippet_is_refused_for_onnx_before_exporting(tmp_path, capsys):
    from slimport.cli import main
    from slimport.errors import EXIT_INPUT
    from tests.test_decoders import tiny_decoder

    code = main(["export", "--model", str(tiny_decoder(tmp_path / "gpt2", "gpt2")), "--target", "onnx-fp32",
                 "--out", str(tmp_path / "out"), "--emit-app-snippet", "kotlin"])
    assert code == EXIT_INPUT
    assert "ONNX Runtime GenAI" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_emit_app_snippet_refuses_a_language_that_cannot_run_the_format(tiny, tmp_path, capsys):
    from slimport.cli import main
    from slimport.errors import EXIT_INPUT

    code = main(["export", "--model", str(tiny("bert", "feature-extraction")), "--target", "ios-fp16",
                 "--out", str(tmp_path), "--emit-app-snippet", "kotlin"])
    assert code == EXIT_INPUT
    assert "use swift" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "refused before exporting"
