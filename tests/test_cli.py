"""The CLI's exit codes, one-line errors, --json output and atomic output folder."""

from __future__ import annotations

import errno
import json

import pytest

from slimport.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_json_then_validate_and_inspect(tiny, tmp_path, capsys):
    ckpt = tiny("distilbert", "text-classification")
    code, out, err = _run(capsys, "export", "--model", str(ckpt), "--target", "onnx-int8", "--out", str(tmp_path),
                          "--json", "--latency-runs", "2")
    assert code == 0, err
    report = json.loads(out)
    assert report["passed"] is True
    folder = tmp_path / f"{ckpt.name}-onnx-int8"
    code, out, err = _run(capsys, "validate", str(folder), "--json", "--latency-runs", "2")
    assert code == 0, err
    assert json.loads(out)["parity"]["task"]["task_agreement"] == report["parity"]["task"]["task_agreement"]
    code, out, _ = _run(capsys, "inspect", str(folder), "--json")
    info = json.loads(out)
    assert code == 0 and info["verdict"] == "PASS"
    assert "com.microsoft:DynamicQuantizeLinear" in info["operators"] or "DynamicQuantizeLinear" in info["operators"]
    assert [i["name"] for i in info["inputs"]] == ["input_ids", "attention_mask"]


def test_existing_output_refused_then_forced(tiny, tmp_path, capsys):
    ckpt = tiny("bert", "feature-extraction")
    args = ["export", "--model", str(ckpt), "--target", "onnx-fp32", "--out", str(tmp_path), "--latency-runs", "0",
            "--quiet"]
    assert _run(capsys, *args)[0] == 0
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert "already exists; pass --force" in err and len(err.strip().splitlines()) == 1
    assert _run(capsys, *args, "--force")[0] == 0


def test_gate_failure_exits_3_with_one_line(tiny, tmp_path, capsys, impossible_target):
    ckpt = tiny("bert", "feature-extraction")
    code, _, err = _run(capsys, "export", "--model", str(ckpt), "--target", str(impossible_target), "--out",
                        str(tmp_path), "--latency-runs", "0", "--quiet")
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "FAIL" in lines[0] and "max_abs_error" in lines[0] and "report.json" in lines[0]
    assert "worst text:" in lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--target", "onnx-int9"], "did you mean onnx-int8"),
        (["export", "--model", "/nonexistent/ckpt"], "does not exist"),
        (["inspect", "/nonexistent/artifact"], "does not exist"),
        (["validate", "/tmp"], "no report.json"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, _, err = _run(capsys, *argv, "--quiet")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_json_errors_are_json_on_stdout(tiny, tmp_path, capsys, impossible_target):
    """With --json a CI step can parse stdout whatever happened: an error object, or the failed report."""
    code, out, err = _run(capsys, "export", "--target", "onnx-int9", "--json", "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert json.loads(out) == {"ok": False, "exit_code": 2, "error": err.strip().removeprefix("slimport: ")}
    code, out, _ = _run(capsys, "inspect", "/nonexistent/artifact", "--json")
    assert code == 2 and "does not exist" in json.loads(out)["error"]
    ckpt = tiny("bert", "feature-extraction")
    code, out, _ = _run(capsys, "export", "--model", str(ckpt), "--target", str(impossible_target), "--out",
                        str(tmp_path), "--latency-runs", "0", "--quiet", "--json")
    assert code == 3 and json.loads(out)["passed"] is False  # the report, and nothing after it


def test_bad_validation_files(tiny, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{oops\n')
    ckpt = tiny("bert", "feature-extraction")
    for path, message in ((empty, "holds no texts"), (bad, "bad.jsonl:2: not valid JSON"),
                          (tmp_path / "missing.txt", "does not exist")):
        code, _, err = _run(capsys, "export", "--model", str(ckpt), "--out", str(tmp_path / "o"),
                            "--validation-data", str(path), "--quiet")
        assert code == 2 and message in err, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize("failure", ["interrupt", "swallowed-interrupt", "disk-full"])
def test_no_half_written_artifact(tiny, tmp_path, capsys, monkeypatch, failure):
    """A Ctrl-C or a full disk mid-export leaves nothing. "swallowed-interrupt" is a SIGINT that lands
    in a finalizer, where Python only prints the KeyboardInterrupt and carries on: the export must
    still stop and publish nothing."""
    import signal

    from slimport import interrupts
    from slimport.exporters.onnx import OnnxExporter

    real = OnnxExporter._to_fp16

    def boom(*args, **kwargs):
        if failure == "interrupt":
            raise KeyboardInterrupt
        if failure == "swallowed-interrupt":
            try:
                interrupts.handler(signal.SIGINT, None)  # what the CLI installs for SIGINT
            except KeyboardInterrupt:
                pass  # as in a __del__: "Exception ignored in ..."
            return real(*args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(OnnxExporter, "_to_fp16", boom)
    ckpt = tiny("bert", "feature-extraction")
    code, _, err = _run(capsys, "export", "--model", str(ckpt), "--target", "onnx-fp16", "--out", str(tmp_path),
                        "--quiet")
    assert code == (2 if failure == "disk-full" else 130), err
    assert ("no space left" if failure == "disk-full" else "interrupted") in err
    assert list(tmp_path.iterdir()) == []
    interrupts.check()  # the CLI forgets the request when it returns


def test_targets_lists_everything(capsys):
    code, out, _ = _run(capsys, "targets", "--json")
    data = json.loads(out)
    assert code == 0
    names = {t["name"] for t in data["targets"]}
    assert {"onnx-fp32", "onnx-fp16", "onnx-int8", "onnx-int8-static", "ort-mobile-int8"} <= names
    assert {"android-midrange", "android-flagship", "iphone", "rpi5"} <= {p["name"] for p in data["profiles"]}


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert code in out


def test_real_ctrl_c_leaves_nothing(tiny, tmp_path):
    """SIGINT to a real `slimport export` process mid-export: exit 130 and an empty output folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    ckpt = tiny("mobilebert", "text-classification")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "slimport", "export", "--model", str(ckpt), "--target",
                             "onnx-int8-static", "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(out.iterdir())):
        time.sleep(0.05)
    assert out.exists() and any(out.iterdir()), "the export never started writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the export finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert list(out.iterdir()) == []


def test_static_length_longer_than_the_model_is_an_input_error(tmp_path, capsys):
    import transformers as tf

    from slimport.models.loader import default_model_path

    from .conftest import tiny_config

    tokenizer = tf.AutoTokenizer.from_pretrained(default_model_path())
    config = tiny_config("bert", tokenizer.vocab_size)
    config.max_position_embeddings = 64
    ckpt = tmp_path / "short"
    tf.BertModel(config).save_pretrained(ckpt)
    tokenizer.save_pretrained(ckpt)
    code, _, err = _run(capsys, "export", "--model", str(ckpt), "--target", "ort-mobile-int8", "--out",
                        str(tmp_path / "o"), "--quiet")
    assert code == 2 and "fixes the sequence length at 128 but short takes at most 64 tokens" in err
    code, _, err = _run(capsys, "export", "--model", str(ckpt), "--target", "onnx-fp32", "--out", str(tmp_path / "o"),
                        "--quiet", "--latency-runs", "2")
    assert code == 0, err  # dynamic shapes validate up to the model's 64 positions


def test_pairs_the_model_has_no_token_type_for_are_an_input_error(tiny, tmp_path, capsys):
    """The tiny RoBERTa carries the BERT tokenizer: pairs get token type 1, and RoBERTa has one type."""
    ckpt = tiny("roberta", "question-answering")
    code, _, err = _run(capsys, "export", "--model", str(ckpt), "--target", "onnx-fp32", "--out",
                        str(tmp_path / "o"), "--quiet")
    assert code == 2, err
    line = next(x for x in err.splitlines() if "type_vocab_size" in x)
    assert line.startswith("slimport") and "token type 1, but the model has type_vocab_size = 1" in line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
