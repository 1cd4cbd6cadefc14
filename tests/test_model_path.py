"""The real-weights path: a saved V-JEPA 2 folder named by MOTIONMATCH_MODEL or --model is what runs.

The test model is a tiny V-JEPA 2 written with ``save_pretrained`` (a real checkpoint folder, random
weights). It must reach notebook 01's recorded ``encoder_id`` through the environment and through
``motionmatch report --model``; a broken folder that was asked for must stop the run with the reason;
only with nothing configured may ``auto`` fall back to FlowEncoder, and then it says why.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motionmatch.encoders.auto import choose_encoder, encoder_from_id
from motionmatch.encoders.vjepa2 import VJEPA2Encoder, tiny_model
from motionmatch.errors import WeightsUnavailableError
from motionmatch.report.records import RECORD_MIME, read_records
from motionmatch.config import absolute_environment
from motionmatch.report.notebooks import NOTEBOOKS_DIR, format_timings, notebook_timings, run_notebook

PROJECT_ROOT = NOTEBOOKS_DIR.parent
NOTEBOOK_01 = NOTEBOOKS_DIR / "01-extract-embeddings.ipynb"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A tiny V-JEPA 2 saved as a checkpoint folder (config.json + model.safetensors)."""
    folder = tmp_path_factory.mktemp("weights") / "tiny-vjepa2"
    tiny_model(seed=5).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    from motionmatch.data.synthetic import generate_sample_dataset

    folder = tmp_path_factory.mktemp("videos") / "sample"
    generate_sample_dataset(folder, seed=2, videos_per_class_per_domain=1, groups_per_class_per_domain=1,
                            num_frames=16, size=(64, 48))
    return folder


@pytest.fixture
def no_configured_model(monkeypatch):
    monkeypatch.delenv("MOTIONMATCH_MODEL", raising=False)


def _clips(count: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (4, 40, 56, 3), dtype=np.uint8) for _ in range(count)]


# ----------------------------------------------------------------------------- loading a folder
def test_a_saved_folder_is_named_by_its_absolute_path_and_rebuilds_from_its_id(saved_model, monkeypatch):
    monkeypatch.chdir(saved_model.parent)
    encoder = VJEPA2Encoder.from_pretrained(saved_model.name, device="cpu")  # relative to the working directory
    assert encoder.encoder_id == f"vjepa2:{saved_model}"
    monkeypatch.chdir(PROJECT_ROOT)  # elsewhere, as notebook 03 and `motionmatch search` are
    rebuilt = encoder_from_id(encoder.encoder_id)
    assert rebuilt.encoder_id == encoder.encoder_id
    np.testing.assert_allclose(rebuilt.encode(_clips()), encoder.encode(_clips()), atol=1e-6)
    assert rebuilt.preprocessing() == encoder.preprocessing()


def test_auto_loads_the_folder_in_motionmatch_model(saved_model, monkeypatch):
    monkeypatch.setenv("MOTIONMATCH_MODEL", str(saved_model))
    encoder, note = choose_encoder("auto", device="cpu")
    assert encoder.encoder_id == f"vjepa2:{saved_model}"
    assert str(saved_model) in note and "NOT V-JEPA 2" not in note
    explicit, _ = choose_encoder("auto", model_id=str(saved_model), device="cpu")
    assert explicit.encoder_id == encoder.encoder_id


def _broken_copies(saved_model: Path, root: Path) -> dict[str, Path]:
    """Folders that exist but hold no usable V-JEPA 2, each with the words its error must contain."""
    from safetensors.torch import load_file, save_file
    from transformers import CLIPVisionConfig, CLIPVisionModel

    corrupt = root / "corrupt"
    shutil.copytree(saved_model, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file" * 4)
    no_weights = root / "no-weights"
    no_weights.mkdir()
    shutil.copy(saved_model / "config.json", no_weights)
    partial = root / "partial"
    shutil.copytree(saved_model, partial)
    weights = load_file(partial / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("encoder.layer.1.")},
              partial / "model.safetensors", metadata={"format": "pt"})
    other = root / "clip"
    CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                                     image_size=32, patch_size=8)).save_pretrained(other)
    return {"could not be loaded": corrupt, "model.safetensors": no_weights, "lacks": partial,
            "'clip_vision_model' model": other, "does not exist": root / "missing"}


def test_a_configured_folder_that_does_not_load_stops_auto_with_the_reason(saved_model, tmp_path, monkeypatch):
    for words, folder in _broken_copies(saved_model, tmp_path).items():
        monkeypatch.setenv("MOTIONMATCH_MODEL", str(folder))
        for name in ("auto", "vjepa2"):  # never a silent FlowEncoder, never random weights
            with pytest.raises(WeightsUnavailableError) as caught:
                choose_encoder(name, device="cpu")
            assert str(folder) in str(caught.value) and words in str(caught.value), (name, str(caught.value))
        monkeypatch.delenv("MOTIONMATCH_MODEL")
        with pytest.raises(WeightsUnavailableError, match=words):  # the same given as model_id
            choose_encoder("auto", model_id=str(folder), device="cpu")


def _real_weights_cached() -> bool:
    from motionmatch.config import HUB_MODEL_ID
    from motionmatch.encoders.weights import _cached_snapshot

    return _cached_snapshot(HUB_MODEL_ID) is not None


def test_with_nothing_configured_auto_falls_back_and_says_why(no_configured_model, monkeypatch):
    if _real_weights_cached():
        pytest.skip("the real V-JEPA 2 weights are cached here, so auto loads them")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder, note = choose_encoder("auto")
    assert encoder.encoder_id == "flow:v1"
    # what was tried, why it failed, and how to point at weights: in the note reports open with
    for words in ("NOT V-JEPA 2", "tried the V-JEPA 2 checkpoint `facebook/vjepa2-vitl-fpc64-256`",
                  "HF_HUB_OFFLINE=1 is set", "hf download facebook/vjepa2-vitl-fpc64-256",
                  "MOTIONMATCH_MODEL=/path/to/vjepa2-vitl-fpc64-256", "--model"):
        assert words in note, words
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE"):  # asking for vjepa2 by name is strict
        choose_encoder("vjepa2")


def test_relative_motionmatch_folders_are_made_absolute_for_the_kernel(saved_model, tmp_path, monkeypatch):
    monkeypatch.chdir(saved_model.parent)
    environ = {"MOTIONMATCH_MODEL": saved_model.name, "MOTIONMATCH_EMBEDDINGS_DIR": "out/embeddings",
               "MOTIONMATCH_MILVUS_URI": "http://localhost:19530", "MOTIONMATCH_COLLECTION": "clips",
               "MOTIONMATCH_SAMPLE_DIR": str(tmp_path), "MOTIONMATCH_CLIP_MODEL": "openai/clip-vit-base-patch32"}
    changed = absolute_environment(environ)
    assert changed == {"MOTIONMATCH_MODEL": str(saved_model),
                       "MOTIONMATCH_EMBEDDINGS_DIR": str(saved_model.parent / "out" / "embeddings")}


# ----------------------------------------------------------------------------- notebook 01 and the CLI
def _outputs(executed: Path) -> list[dict]:
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
            if RECORD_MIME not in output.get("data", {})]


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output["text"]
    data = output.get("data", {})
    return "".join(data.get("text/markdown") or data.get("text/plain") or "")


def test_notebook_01_records_the_folder_in_motionmatch_model(saved_model, sample, tmp_path, monkeypatch, capsys):
    """MOTIONMATCH_MODEL (relative to where it was set) reaches the kernel; auto loads that folder."""
    monkeypatch.chdir(saved_model.parent)
    monkeypatch.setenv("MOTIONMATCH_MODEL", saved_model.name)
    embeddings = tmp_path / "embeddings"
    executed = run_notebook(NOTEBOOK_01, tmp_path / "reports", {
        "source": str(sample / "manifest.csv"), "embeddings_dir": str(embeddings), "encoder": "auto",
        "clips_per_video": 2, "workers": "0"}, html=False)
    records = read_records(executed)
    assert records["encoder_id"] == f"vjepa2:{saved_model}"
    assert records["videos_failed"] == 0 and records["n_clips"] == 2 * records["videos_total"]
    meta = json.loads((embeddings / "extract_meta.json").read_text())
    assert meta["encoder_id"] == records["encoder_id"]
    assert meta["encoder_note"] == records["encoder_note"] and str(saved_model) in meta["encoder_note"]
    outputs = _outputs(executed)
    assert _text(outputs[0]).startswith("**Encoder:**") and str(saved_model) in _text(outputs[0])  # shown first
    assert any("estimate: the first 2 clip(s)" in _text(output) for output in outputs)  # the time estimate shows
    # ...and reaches the terminal while the notebook runs, not only the executed copy
    assert "[report] 01-extract-embeddings.ipynb: estimate: the first 2 clip(s)" in capsys.readouterr().out
    # the timings the demo summary prints come from papermill's per-cell durations
    cells = [cell for cell in json.loads(executed.read_text())["cells"] if cell["cell_type"] == "code"]
    durations = [cell["metadata"]["papermill"]["duration"] for cell in cells]
    timing = notebook_timings(executed)
    assert timing["slowest_seconds"] == max(durations) and sum(durations) <= timing["seconds"]
    slowest = cells[durations.index(max(durations))]
    assert timing["slowest_cell"] == slowest["execution_count"]
    assert timing["slowest_source"] in "".join(slowest["source"])
    table = format_timings([executed])
    assert executed.name in table and f"In [{slowest['execution_count']}]" in table


@pytest.mark.parametrize("how", ["MOTIONMATCH_MODEL", "--model"])
def test_motionmatch_report_reaches_notebook_01_with_the_folder(how, saved_model, sample, tmp_path):
    """The issue's reproduction: `MOTIONMATCH_MODEL=folder motionmatch report --only 01` recorded flow:v1."""
    env = {k: v for k, v in os.environ.items() if k != "MOTIONMATCH_MODEL"}
    env["MOTIONMATCH_EMBEDDINGS_DIR"] = str(tmp_path / "embeddings")  # never the project's own data folder
    command = [sys.executable, "-m", "motionmatch.cli", "report", "--only", "01", "--source", str(sample),
               "--out", str(tmp_path / "reports"), "--param", "clips_per_video=2", "--param", "workers=0"]
    if how == "--model":
        command += ["--model", str(saved_model)]
        cwd = PROJECT_ROOT
    else:
        env["MOTIONMATCH_MODEL"] = saved_model.name  # relative to where the command is typed
        cwd = saved_model.parent
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = read_records(tmp_path / "reports" / NOTEBOOK_01.name)
    assert records["encoder_id"] == f"vjepa2:{saved_model}"
    meta = json.loads((tmp_path / "embeddings" / "extract_meta.json").read_text())
    assert meta["encoder_id"] == records["encoder_id"]
    assert "estimate: the first 2 clip(s)" in result.stdout  # said while the notebook ran


def test_notebook_01_opens_with_why_auto_fell_back(no_configured_model, sample, tmp_path, monkeypatch):
    """With nothing configured and no weights, the report's first output says what was tried and why it failed."""
    if _real_weights_cached():
        pytest.skip("the real V-JEPA 2 weights are cached here, so auto loads them")
    from motionmatch.extract import load_run

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embeddings = tmp_path / "embeddings"
    executed = run_notebook(NOTEBOOK_01, tmp_path / "reports", {
        "source": str(sample / "manifest.csv"), "embeddings_dir": str(embeddings), "encoder": "auto",
        "frames_per_clip": 8, "clips_per_video": 1, "workers": "0"}, html=False)
    assert read_records(executed)["encoder_id"] == "flow:v1"
    first = _text(_outputs(executed)[0])
    assert first.startswith("**Encoder:** FlowEncoder") and "HF_HUB_OFFLINE=1 is set" in first
    assert "MOTIONMATCH_MODEL=" in first
    banner = load_run(embeddings).banner  # what notebooks 02-06 open with
    assert banner == first.strip()


@pytest.mark.parametrize("variable, module, cls", [("MOTIONMATCH_MODEL", "vjepa2", "VJEPA2Encoder"),
                                                   ("MOTIONMATCH_CLIP_MODEL", "clip", "CLIPVisualEncoder")])
def test_a_model_variable_set_after_import_is_the_one_loaded(variable, module, cls, tmp_path, monkeypatch):
    """Defaults are read from config when used, not frozen at import (a notebook or a test sets them later)."""
    import importlib

    encoders = importlib.import_module(f"motionmatch.encoders.{module}")
    late = tmp_path / "set-after-import"
    monkeypatch.setenv(variable, str(late))
    settings_cls = encoders.VJEPA2Settings if module == "vjepa2" else encoders.CLIPSettings
    assert settings_cls().model_id == str(late)
    with pytest.raises(WeightsUnavailableError, match="set-after-import"):
        getattr(encoders, cls).from_pretrained()
