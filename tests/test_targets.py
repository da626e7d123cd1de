from __future__ import annotations

import pytest

from slimport.errors import InputError
from slimport.exporters import registered_formats
from slimport.targets import list_profiles, list_targets, load_profile, load_target


@pytest.mark.parametrize("name", list_targets())
def test_builtin_targets_load(name):
    target = load_target(name)
    assert target.format in registered_formats()
    assert target.gate.limits["nonfinite"] == 0
    assert target.profile.latency_p90_ms >= target.profile.latency_p50_ms


@pytest.mark.parametrize("name", list_profiles())
def test_builtin_profiles_have_a_budget_source(name):
    assert load_profile(name).budget_source.startswith("docs/profiles.md#")


def test_custom_target_with_inline_profile(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\nformat = "onnx"\n[profile]\nname = "p"\ndevice = "x"\nthreads = 1\nbatch = 2\nseq_len = 32\n'
        'static_shape = true\ninput_dtype = "int64"\nsize_budget_mb = 5\nmemory_budget_mb = 50\n'
        'latency_p50_ms = 5\nlatency_p90_ms = 9\n[precision]\ndtype = "fp16"\n[gate]\npooled_cosine_min = 0.999\n'
    )
    target = load_target(str(path))
    assert target.name == "mine" and target.profile.batch == 2 and target.precision.dtype == "fp16"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "int2"\n[gate]\n', "dtype must be one of"),
        ('format = "coreml"\nprofile = "iphone"\n[precision]\ndtype = "int4"\nmode = "static"\n[gate]\n',
         "int4 needs weight-only or dynamic"),
        ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "fp32"\n[gate]\ncosine = 1\n',
         "unknown gate 'cosine'"),
        ('format = "onnx"\nprofile = "rpi9"\n[precision]\ndtype = "fp32"\n[gate]\n', "did you mean rpi5"),
        ('format = "gguf"\nprofile = "rpi5"\n[precision]\ndtype = "fp32"\n[gate]\n', "no exporter"),
        ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "fp32"\n', "missing required key 'gate'"),
        ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "fp32"\nmode = "static"\n[gate]\n', "does not fit"),
        ("format = [", "not valid TOML"),
        ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "int4"\nblock_size = 24\n[gate]\n', "block_size"),
        ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "int8"\nblock_size = 32\n[gate]\n',
         "block_size applies to int4"),
    ],
)
def test_bad_target_files(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        load_target(str(path))


def test_gate_tightening_moves_similarities_toward_one():
    gate = load_target("onnx-int8").gate.tightened(0.5)
    assert gate.limits["pooled_cosine_mean"] == pytest.approx(0.995)
    assert gate.limits["nonfinite"] == 0


@pytest.mark.parametrize(("body", "message"), [
    ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "int8"\nmode = "weight-only"\n[gate]\n',
     "do not build int8"),
    ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "fp32"\n[gate]\n[options]\nfusion = 1\n',
     "unknown onnx option"),
])
def test_exporters_refuse_recipes_and_options_they_do_not_build(tmp_path, body, message):
    from slimport.exporters import get_exporter

    path = tmp_path / "t.toml"
    path.write_text(body)
    target = load_target(str(path))
    with pytest.raises(InputError, match=message):
        get_exporter(target.format).check_target(target)
