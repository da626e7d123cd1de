"""`slimport release` / `slimport verify` on tiny checkpoints: bundle, cache, rebuilds, tampering, errors."""

from __future__ import annotations

import json
import shutil

import pytest

from slimport.cli import main
from slimport.errors import EXIT_GATE, EXIT_INPUT, EXIT_OK, InputError
from slimport.release import load_release, release, verify
from slimport.release.manifest import MANIFEST_FILE, read

CUSTOM = ('format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "fp32"\n'
          "[gate]\noutput_cosine_min = 0.9999\nnonfinite = 0\n")


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory):
    """A 2-model release: model A for onnx-fp32, android-fp32 and a custom target file; model B for onnx-fp32."""
    root = tmp_path_factory.mktemp("release")
    (root / "custom.toml").write_text(CUSTOM, encoding="utf-8")
    (root / "release.toml").write_text(
        '[release]\nname = "demo"\nversion = "1.0.0"\ntargets = ["onnx-fp32"]\nworkers = 2\n\n'
        f'[[model]]\nname = "embedder"\npath = "{tiny("bert", "feature-extraction")}"\n'
        'targets = ["onnx-fp32", "android-fp32", "./custom.toml"]\n\n'
        f'[[model]]\nname = "classifier"\npath = "{tiny("distilbert", "text-classification")}"\n',
        encoding="utf-8")
    logs: list[str] = []
    data = release(root / "release.toml", root / "bundle", cache_dir=root / "cache", latency_runs=2, log=logs.append)
    return root, data, logs


def test_bundle_has_every_pair_with_manifest_golden_and_summary(built):
    root, data, logs = built
    bundle = root / "bundle"
    assert data["passed"] and len(data["artifacts"]) == 4
    assert sum("built" in line for line in logs) == 4
    assert sum("latency measured alone" in line for line in logs) == 4, "parallel builds are timed one by one"
    assert all(a["latency"] and a["latency"]["p50_ms"] > 0 for a in data["artifacts"])
    assert {(a["model"], a["target"]) for a in data["artifacts"]} == {
        ("embedder", "onnx-fp32"), ("embedder", "android-fp32"), ("embedder", "custom"), ("classifier", "onnx-fp32")}
    for entry in data["artifacts"]:
        assert (bundle / entry["folder"] / entry["model_file"]).exists()
        assert entry["tokenizer_files"] and entry["inputs"] and entry["golden"].endswith("golden.json")
        assert entry["tool_versions"]["torch"] and entry["validation_sha256"] and entry["calibration_sha256"]
        golden = json.loads((bundle / entry["golden"]).read_text())
        assert len(golden["vectors"]) == 3 and golden["atol"]
    assert read(bundle) == data, "the manifest reads back and follows its schema"
    assert "| embedder | android-fp32 | tflite |" in (bundle / "summary.md").read_text()
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "no temp folder left"
    assert verify(bundle) == []


def test_second_run_is_a_full_cache_hit_and_a_changed_recipe_rebuilds_only_its_pair(built):
    root, first, _ = built
    logs: list[str] = []
    again = release(root / "release.toml", root / "bundle2", cache_dir=root / "cache", latency_runs=2, log=logs.append)
    assert all("cached" in line for line in logs) and len(logs) == 4
    assert [a["files"] for a in again["artifacts"]] == [a["files"] for a in first["artifacts"]]
    (root / "custom.toml").write_text(CUSTOM.replace("0.9999", "0.999"), encoding="utf-8")
    logs.clear()
    release(root / "release.toml", root / "bundle3", cache_dir=root / "cache", latency_runs=2, log=logs.append)
    rebuilt = [line for line in logs if "built" in line]
    assert rebuilt == ["embedder/custom: built, PASS"], logs


def test_verify_catches_a_flipped_byte_and_a_deleted_file(built, capsys):
    root, data, _ = built
    copy = root / "tampered"
    shutil.copytree(root / "bundle", copy)
    entry = next(a for a in data["artifacts"] if a["target"] == "android-fp32")
    model = copy / entry["folder"] / entry["model_file"]
    raw = bytearray(model.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    model.write_bytes(bytes(raw))
    (copy / entry["tokenizer_files"][0]["path"]).unlink()
    problems = verify(copy)
    assert any("model.tflite does not match its sha256" in p for p in problems)
    assert any("missing file" in p and "tokenizer" in p for p in problems)
    assert main(["verify", str(copy)]) == EXIT_GATE
    assert main(["verify", str(root / "bundle")]) == EXIT_OK
    assert "every golden vector holds" in capsys.readouterr().out


def test_verify_catches_a_changed_output_with_intact_hashes(built):
    """Golden vectors catch a changed output even when the manifest was rewritten to match the files."""
    root, data, _ = built
    copy = root / "rewritten"
    shutil.copytree(root / "bundle", copy)
    entry = next(a for a in data["artifacts"] if a["target"] == "onnx-fp32" and a["model"] == "classifier")
    golden = copy / entry["golden"]
    payload = json.loads(golden.read_text())
    payload["vectors"][0]["outputs"]["logits"][0][0] += 1.0
    golden.write_text(json.dumps(payload))
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    from slimport.release.jobs import sha256_file

    for item in next(a for a in manifest["artifacts"] if a["golden"] == entry["golden"])["files"]:
        if item["path"] == entry["golden"]:
            item["sha256"], item["bytes"] = sha256_file(golden), golden.stat().st_size
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert any("golden vector 0" in p and "logits differs" in p for p in verify(copy))


@pytest.mark.parametrize(("body", "message"), [
    ('[release]\nname = "x"\nversion = "1"\ntargets = ["onnx-fp32"]\n\n[[model]]\nname = "a"\nmodles = 1\n',
     r"release.toml:8: unknown key 'modles' in \[\[model\]\] #1"),
    ('[release]\nname = "x"\nversion = 1\n', r"release.toml:3: 'version' in \[release\] must be str"),
    ('[release]\nname = "x"\nversion = "1"\n[[model]]\nname = "a"\ntargets = [\n', r"release.toml:\d+: not valid TOML"),
    ('[release]\nname = "x"\nversion = "1"\n', r"release.toml:1: no \[\[model\]\] tables"),
    ('[release]\nname = "x"\nversion = "1"\n[[model]]\nname = "a"\n',
     r"release.toml:4: \[\[model\]\] #1 has no targets"),
])
def test_malformed_release_files_give_line_numbered_errors(tmp_path, body, message):
    path = tmp_path / "release.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_release(path)
    assert main(["release", str(path), "--out", str(tmp_path / "b")]) == EXIT_INPUT


def test_report_page_renders_in_headless_chromium(built, tmp_path):
    """The self-contained report.html: tables and SVG plots render, no console errors, no network."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By

    root, data, _ = built
    page = root / "bundle" / "report.html"
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(page.as_uri())
        assert driver.find_element(By.ID, "verdict").text == "PASS"
        rows = driver.find_elements(By.CSS_SELECTOR, "table.artifacts tbody tr")
        assert len(rows) == len(data["artifacts"])
        for plot in ("plot-size-latency", "plot-errors"):
            svg = driver.find_element(By.CSS_SELECTOR, f"#{plot} svg")
            assert svg.size["width"] > 200 and svg.size["height"] > 100, plot
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
    import re

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.read_text()), "nothing loaded from the network"


def test_baseline_shows_deltas_and_fails_on_a_parity_regression(built):
    root, data, _ = built
    same = release(root / "release.toml", root / "vs-same", cache_dir=root / "cache", latency_runs=2,
                   baseline=root / "bundle")
    assert same["passed"] and same["baseline"]["regressions"] == []
    assert len(same["baseline"]["deltas"]) == 4 and all(d["parity"] == 0 for d in same["baseline"]["deltas"])
    better = root / "better-baseline"
    shutil.copytree(root / "bundle", better)
    manifest = json.loads((better / MANIFEST_FILE).read_text())
    manifest["release"]["version"] = "0.9.0"
    for entry in manifest["artifacts"]:
        task = entry["parity"]["task"]
        for key in ("pooled_cosine_min", "task_agreement"):
            if key in task:
                task[key] += 0.01  # the previous release claims more than this one delivers
    (better / MANIFEST_FILE).write_text(json.dumps(manifest))
    code = main(["release", str(root / "release.toml"), "--out", str(root / "vs-better"), "--cache-dir",
                 str(root / "cache"), "--baseline", str(better), "--quiet", "--latency-runs", "2"])
    assert code == EXIT_GATE
    summary = (root / "vs-better" / "summary.md").read_text()
    assert "Against 0.9.0" in summary and "**regression**" in summary
    assert 'id="regressions"' in (root / "vs-better" / "report.html").read_text()


@pytest.fixture()
def ray_cluster():
    """A local Ray head node (2 CPUs) started the way a cluster is, with `ray start`; stopped afterwards.
    Its temp folder is short: Ray's unix socket paths must fit in 107 bytes."""
    import socket
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    subprocess.run([ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats", "--object-store-memory=200000000",
                    f"--temp-dir={temp}"], check=True, capture_output=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120, check=False)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_executor_builds_each_pair_as_a_task_with_the_same_artifacts(built, ray_cluster):
    """The same release on a Ray cluster: every pair is a Ray task, the entries come back through the
    object store into a fresh cache, and the artifacts are byte-identical to the local build's."""
    root, local, _ = built
    logs: list[str] = []
    data = release(root / "release.toml", root / "bundle-ray", cache_dir=root / "cache-ray", latency_runs=2,
                   log=logs.append, executor="ray", address=ray_cluster)
    assert sum("built on ray" in line for line in logs) == 4, logs
    assert sum("latency measured alone" in line for line in logs) == 4
    assert data["passed"] and verify(root / "bundle-ray") == []

    def model_hashes(manifest):
        return {(a["model"], a["target"]): next(f["sha256"] for f in a["files"]
                                                 if f["path"] == f"{a['folder']}/{a['model_file']}")
                for a in manifest["artifacts"]}

    assert model_hashes(data) == model_hashes(local)


def test_unknown_executor_and_missing_ray_address_are_clear_errors(built):
    root, _, _ = built
    with pytest.raises(InputError, match="unknown executor 'dask'"):
        release(root / "release.toml", root / "b", cache_dir=root / "cache", executor="dask")
    with pytest.raises(InputError, match="cannot connect to Ray at 127.0.0.1:1"):  # a fresh cache: work to do
        release(root / "release.toml", root / "b", cache_dir=root / "cache-new", executor="ray", address="127.0.0.1:1")
    logs: list[str] = []  # a full cache hit does not need (or reach for) the cluster at all
    release(root / "release.toml", root / "b", cache_dir=root / "cache", executor="ray", address="127.0.0.1:1",
            log=logs.append)
    assert logs and all("cached" in line for line in logs)


@pytest.mark.parametrize("filters", [True, False], ids=["tarfile-filters", "python-3.11.2-without-filters"])
def test_unpack_restores_a_packed_entry_and_refuses_escaping_members(tmp_path, monkeypatch, filters):
    import io
    import tarfile

    from slimport.errors import SlimportError
    from slimport.release.executors import pack, unpack

    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    entry = tmp_path / "entry"
    (entry / "model").mkdir(parents=True)
    (entry / "model" / "report.json").write_text("{}", encoding="utf-8")
    unpack(pack(entry), tmp_path / "copy")
    assert (tmp_path / "copy" / "model" / "report.json").read_text(encoding="utf-8") == "{}"

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises((SlimportError, tarfile.TarError)):
        unpack(buffer.getvalue(), tmp_path / "evil")
    assert not (tmp_path / "escaped.txt").exists()
