from __future__ import annotations

import json
import shutil

import pytest

from slimport.errors import InputError
from slimport.models import load_model
from slimport.models.tasks import infer_task

from .conftest import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_loads(tiny, family):
    source = load_model(tiny(family, "text-classification"))
    assert source.family == family
    assert source.task == "text-classification"
    assert source.parameter_count() > 0
    assert source.weight_files[0].suffix == ".safetensors"


def test_default_model_is_real_minilm():
    source = load_model(None)
    assert source.name == "all-MiniLM-L6-v2"
    assert source.task == "feature-extraction"
    assert source.config.hidden_size == 384


@pytest.mark.parametrize(
    ("arch", "task"),
    [("BertModel", "feature-extraction"), ("DistilBertForSequenceClassification", "text-classification"),
     ("ElectraForTokenClassification", "token-classification"), ("AlbertForQuestionAnswering", "question-answering"),
     ("RobertaForMaskedLM", "fill-mask")],
)
def test_task_inference(arch, task):
    assert infer_task([arch]) == task


def test_task_override(tiny):
    assert load_model(tiny("bert", "text-classification"), task="feature-extraction").task == "feature-extraction"
    with pytest.raises(InputError, match="unknown task 'translation'"):
        load_model(tiny("bert", "text-classification"), task="translation")


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_folder_without_config(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        load_model(tmp_path)


def test_corrupt_safetensors(tiny, tmp_path):
    bad = shutil.copytree(tiny("bert"), tmp_path / "bad")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt safetensors"):
        load_model(bad)
    (bad / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="corrupt safetensors"):
        load_model(bad)


def test_pickle_only_checkpoint_refused_unless_allowed(tiny, tmp_path):
    import torch
    from safetensors.torch import load_file

    ckpt = shutil.copytree(tiny("bert"), tmp_path / "pickled")
    state = load_file(ckpt / "model.safetensors")
    (ckpt / "model.safetensors").unlink()
    torch.save(state, ckpt / "pytorch_model.bin")
    with pytest.raises(InputError, match="only pickle weights.*--allow-pickle"):
        load_model(ckpt)
    source = load_model(ckpt, allow_pickle=True)
    assert source.parameter_count() > 0


def test_unsupported_architecture_lists_supported(tiny, tmp_path):
    ckpt = shutil.copytree(tiny("bert"), tmp_path / "t5")
    config = json.loads((ckpt / "config.json").read_text())
    config["model_type"] = "t5"
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="unsupported architecture 't5'; supported: encoders bert"):
        load_model(ckpt)


def test_missing_tokenizer(tiny, tmp_path):
    ckpt = tmp_path / "notok"
    ckpt.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny("bert") / name, ckpt / name)
    with pytest.raises(InputError, match="tokenizer"):
        load_model(ckpt)


def test_tokenizer_larger_than_embedding_is_refused(tiny, tmp_path):
    ckpt = shutil.copytree(tiny("bert"), tmp_path / "smallvocab")
    config = json.loads((ckpt / "config.json").read_text())
    config["vocab_size"] = 1000
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="tokens but the model's embedding has 1000"):
        load_model(ckpt)


def test_max_length_capped_by_position_embeddings(tiny):
    assert load_model(tiny("bert")).tokenizer.model_max_length == 512
    assert load_model(tiny("roberta")).tokenizer.model_max_length == 512  # 520 positions, offset 1 (pad 0)


def test_corrupt_config(tiny, tmp_path):
    ckpt = shutil.copytree(tiny("bert"), tmp_path / "badconfig")
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        load_model(ckpt)
