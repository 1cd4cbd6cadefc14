"""VJEPA2Encoder on a tiny random V-JEPA 2: same numbers as transformers, preprocessing, checks, fail-fast loading.

Also covers motionmatch.devices and build_encoder. The real-checkpoint test runs only where the
weights are in the local Hugging Face cache or MOTIONMATCH_MODEL names a local folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from motionmatch.devices import dtype_for, pick_device
from motionmatch.encoders import ENCODER_NAMES, build_encoder
from motionmatch.encoders.base import l2_normalize
from motionmatch.encoders.preprocessing import shortest_edge_size
from motionmatch.encoders.weights import hub_is_reachable, resolve_pretrained
from motionmatch.encoders.vjepa2 import VJEPA2Encoder, tiny_config
from motionmatch.errors import ParameterError, WeightsUnavailableError

REAL_MODEL_ID = "facebook/vjepa2-vitl-fpc64-256"


def random_clip(seed: int, frames: int = 4, height: int = 40, width: int = 60) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny() -> VJEPA2Encoder:
    return VJEPA2Encoder.tiny(seed=0)


def test_embeddings_equal_a_direct_transformers_call(tiny):
    from transformers import VJEPA2Model

    clips = [random_clip(1), random_clip(2)]
    torch.manual_seed(0)
    reference_model = VJEPA2Model(tiny_config()).eval()
    with torch.no_grad():
        pixel_values_videos = tiny.preprocess(clips)
        hidden = reference_model(pixel_values_videos=pixel_values_videos, skip_predictor=True).last_hidden_state
        expected = torch.nn.functional.normalize(hidden.mean(dim=1), dim=-1).numpy()
    assert pixel_values_videos.shape == (2, 4, 3, 32, 32)
    np.testing.assert_allclose(tiny.encode(clips), expected, atol=1e-5)


def test_shape_dtype_norm_and_contract(tiny):
    vectors = tiny.encode([random_clip(seed) for seed in range(3)])
    assert vectors.shape == (3, tiny.dim) == (3, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert tiny.encode([]).shape == (0, 32)
    assert tiny.encoder_id == "vjepa2:tiny-seed0" and tiny.frames_per_clip == 4
    description = tiny.preprocessing()
    assert json.loads(json.dumps(description)) == description
    assert description["kind"] == "vjepa2" and description["pooling"] == "mean"
    assert description["crop_size"] == 32 and description["tubelet_size"] == 2
    assert description["resize_shortest_edge"] == int(32 * 256 / 224)  # VJEPA2VideoProcessor's rule


def test_tiny_is_deterministic_per_seed(tiny):
    clips = [random_clip(5)]
    np.testing.assert_array_equal(VJEPA2Encoder.tiny(seed=0).encode(clips), tiny.encode(clips))
    other = VJEPA2Encoder.tiny(seed=1)
    assert other.encoder_id == "vjepa2:tiny-seed1"
    assert (other.encode(clips) @ tiny.encode(clips).T).item() < 0.999


def test_clips_of_different_sizes_share_a_batch_and_batch_size_does_not_matter(tiny):
    clips = [random_clip(1, height=40, width=60), random_clip(2, height=72, width=48),
             random_clip(3, height=36, width=36), random_clip(4, height=20, width=90)]
    together = tiny.encode(clips, batch_size=4)
    one_by_one = np.concatenate([tiny.encode([clip]) for clip in clips])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(tiny.encode(clips, batch_size=3), together, atol=1e-5)


def test_preprocessing_follows_the_processor_rules(tiny):
    # a frame already at the resize size is not resized: the output is its centred crop, normalised
    edge = tiny.processor_values.resize_shortest_edge
    clip = random_clip(7, height=edge, width=edge)
    top = int((edge - 32) / 2)
    crop = clip[:, top:top + 32, top:top + 32].astype(np.float32) / 255.0
    mean, std = np.array(tiny.processor_values.mean), np.array(tiny.processor_values.std)
    expected = ((crop - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(tiny.preprocess([clip])[0].numpy(), expected, atol=1e-5)
    # shortest-edge sizes: transformers' get_resize_output_image_size (int() of the long side)
    assert shortest_edge_size(40, 60, 36) == (36, 54)
    assert shortest_edge_size(61, 40, 36) == (54, 36)
    # a uniform grey frame stays uniform through resize and crop
    grey = np.full((4, 50, 70, 3), 128, dtype=np.uint8)
    values = tiny.preprocess([grey])[0, 0]
    np.testing.assert_allclose(values.numpy(), ((128 / 255 - mean) / std)[:, None, None] * np.ones((3, 32, 32)),
                               atol=1e-5)


def test_preprocessing_matches_the_official_video_processor(tiny):
    pytest.importorskip("torchvision")
    from transformers.models.vjepa2.video_processing_vjepa2 import VJEPA2VideoProcessor

    processor = VJEPA2VideoProcessor(crop_size=32)
    for height, width in ((40, 60), (97, 53), (36, 36)):
        clip = random_clip(height, height=height, width=width)
        official = processor(videos=[clip], do_sample_frames=False, return_tensors="pt")["pixel_values_videos"][0].float()
        ours = tiny.preprocess([clip])[0].cpu()
        assert ours.shape == official.shape
        one_level = 1 / (255 * min(tiny.processor_values.std)) + 1e-4  # at most one uint8 step apart
        assert float((ours - official).abs().max()) <= one_level
        assert float((ours - official).abs().mean()) < 1e-3


def test_wrong_frame_counts_and_inputs_are_parameter_errors(tiny):
    with pytest.raises(ParameterError, match="tubelet size 2"):
        tiny.encode([random_clip(1, frames=5)])
    with pytest.raises(ParameterError, match="frames_per_clip"):
        VJEPA2Encoder.tiny(frames_per_clip=3)
    with pytest.raises(ParameterError, match="same number of frames"):
        tiny.encode([random_clip(1, frames=4), random_clip(2, frames=6)])
    with pytest.raises(ParameterError, match="uint8"):
        tiny.encode([random_clip(1).astype(np.float32)])
    with pytest.raises(ParameterError, match="sequence of clips"):
        tiny.encode(random_clip(1))
    for bad_batch_size in (0, True, 2.0, "2"):  # a bool is not a count, nor is a float or a string
        with pytest.raises(ParameterError, match="batch_size"):
            tiny.encode([random_clip(1)], batch_size=bad_batch_size)
    with pytest.raises(ParameterError, match="unknown V-JEPA 2 setting"):
        VJEPA2Encoder.tiny(colour="blue")


def test_a_saved_checkpoint_folder_loads_with_its_preprocessor_config(tmp_path, tiny):
    folder = tmp_path / "tiny-vjepa2"
    tiny.model.save_pretrained(folder)
    custom = {"crop_size": 32, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "resample": 2}
    (folder / "video_preprocessor_config.json").write_text(json.dumps(custom))
    loaded = VJEPA2Encoder.from_pretrained(str(folder), device="cpu")
    assert loaded.encoder_id == f"vjepa2:{folder}"
    assert loaded.preprocessing()["mean"] == [0.5, 0.5, 0.5] and loaded.preprocessing()["std"] == [0.25, 0.25, 0.25]
    clips = [random_clip(3)]
    expected = VJEPA2Encoder(tiny.model, tiny.settings, loaded.processor_values).encode(clips)
    np.testing.assert_allclose(loaded.encode(clips), expected, atol=1e-5)
    assert (loaded.encode(clips) @ tiny.encode(clips).T).item() < 0.99999  # other mean/std, other input


def test_missing_or_incomplete_folders_fail_with_advice(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        VJEPA2Encoder.from_pretrained(str(tmp_path / "no-such-folder"))
    with pytest.raises(WeightsUnavailableError, match="no config.json"):
        VJEPA2Encoder.from_pretrained(str(tmp_path))


def _real_weights_location() -> str | None:
    folder = os.environ.get("MOTIONMATCH_MODEL")
    if folder and Path(folder).is_dir():
        return folder
    from motionmatch.encoders.weights import _cached_snapshot

    return _cached_snapshot(REAL_MODEL_ID)


def test_default_checkpoint_fails_fast_when_offline(monkeypatch):
    if _real_weights_location():
        pytest.skip("the real V-JEPA 2 weights are available here, so loading would succeed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as caught:
        build_encoder("vjepa2", model_id=REAL_MODEL_ID)
    assert time.monotonic() - started < 30  # generous hang guard; it takes milliseconds
    message = str(caught.value)
    for advice in ("HF_HUB_OFFLINE=1", f"download {REAL_MODEL_ID}", "--model", "--encoder flow"):
        assert advice in message


def test_unreachable_hub_is_detected_within_seconds(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens on the discard port
    if _real_weights_location():
        pytest.skip("the real V-JEPA 2 weights are cached here")
    started = time.monotonic()
    assert not hub_is_reachable()
    with pytest.raises(WeightsUnavailableError, match="cannot be reached"):
        resolve_pretrained(REAL_MODEL_ID, what="V-JEPA 2")
    assert time.monotonic() - started < 30


@pytest.mark.real_weights
def test_real_checkpoint_embeds_a_clip():
    location = _real_weights_location()
    if location is None:
        pytest.skip(f"{REAL_MODEL_ID} is not in the local Hugging Face cache and MOTIONMATCH_MODEL names no folder")
    encoder = VJEPA2Encoder.from_pretrained(location, frames_per_clip=16)
    assert encoder.preprocessing()["crop_size"] == encoder.model.config.crop_size
    clips = [random_clip(1, frames=16, height=120, width=160), random_clip(2, frames=16, height=90, width=90)]
    vectors = encoder.encode(clips, batch_size=2)
    assert vectors.shape == (2, encoder.model.config.hidden_size) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.isfinite(vectors).all()


# ----------------------------------------------------------------------------- devices and build_encoder
def test_devices_and_precisions():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert dtype_for("auto", "cpu") == torch.float32
    assert dtype_for("bf16", "cpu") == torch.bfloat16 and dtype_for("fp16", "cpu") == torch.float16
    assert dtype_for("fp32", "cpu") == torch.float32
    with pytest.raises(ParameterError, match="precision"):
        dtype_for("fp8", "cpu")
    with pytest.raises(ParameterError, match="unknown device"):
        pick_device("tpu")
    if torch.cuda.is_available():
        assert dtype_for("auto", "cuda") in (torch.bfloat16, torch.float16)
    else:
        with pytest.raises(ParameterError, match="CUDA is not available"):
            pick_device("cuda")


def test_build_encoder_names_and_cheap_import():
    with pytest.raises(ParameterError) as caught:
        build_encoder("resnet")
    assert all(name in str(caught.value) for name in ENCODER_NAMES)
    assert build_encoder("vjepa2-tiny", seed=2).encoder_id == "vjepa2:tiny-seed2"
    with pytest.raises(ParameterError, match="unknown setting"):
        build_encoder("flow", colour="blue")
    probe = ("import sys, motionmatch.encoders; "
             "print(sorted(m for m in ('torch', 'transformers', 'cv2') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_l2_normalize_keeps_zero_rows_finite():
    from motionmatch import encoders, table

    assert encoders.l2_normalize is table.l2_normalize is l2_normalize  # one implementation, re-exported
    vectors = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.0, 0.0]])
    assert vectors.dtype == np.float32
