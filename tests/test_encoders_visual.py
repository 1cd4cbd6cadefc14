"""CLIPVisualEncoder on a tiny random CLIP vision tower: same numbers as transformers, frame pooling, loading."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from motionmatch.encoders import build_encoder
from motionmatch.encoders.weights import _cached_snapshot
from motionmatch.encoders.clip import CLIPVisualEncoder, tiny_config
from motionmatch.errors import ParameterError, WeightsUnavailableError

REAL_CLIP_ID = "openai/clip-vit-base-patch32"


def random_clip(seed: int, frames: int = 8, height: int = 40, width: int = 60) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny() -> CLIPVisualEncoder:
    return CLIPVisualEncoder.tiny(seed=0)


def test_embeddings_equal_a_direct_transformers_call(tiny):
    from transformers import CLIPVisionModelWithProjection

    clips = [random_clip(1), random_clip(2, height=64, width=48)]
    torch.manual_seed(0)
    reference = CLIPVisionModelWithProjection(tiny_config()).eval()
    with torch.no_grad():
        pixel_values = tiny.preprocess(clips)
        frames = torch.nn.functional.normalize(reference(pixel_values=pixel_values).image_embeds, dim=-1)
        expected = torch.nn.functional.normalize(frames.reshape(2, 4, -1).mean(dim=1), dim=-1).numpy()
    assert pixel_values.shape == (2 * 4, 3, 32, 32)
    np.testing.assert_allclose(tiny.encode(clips), expected, atol=1e-5)


def test_shape_norm_determinism_and_contract(tiny):
    clips = [random_clip(seed) for seed in range(3)]
    vectors = tiny.encode(clips, batch_size=2)
    assert vectors.shape == (3, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(CLIPVisualEncoder.tiny(seed=0).encode(clips), vectors, atol=1e-6)
    assert (CLIPVisualEncoder.tiny(seed=1).encode(clips[:1]) @ vectors[:1].T).item() < 0.999
    assert tiny.encode([]).shape == (0, 16)
    assert tiny.encoder_id == "clip:tiny-seed0" and build_encoder("clip-tiny", seed=3).encoder_id == "clip:tiny-seed3"
    description = tiny.preprocessing()
    assert json.loads(json.dumps(description)) == description and description["frames_sampled"] == 4


def test_only_the_sampled_frames_count(tiny):
    clip = random_clip(4, frames=7)  # frames 0, 2, 4, 6 are sampled
    changed = clip.copy()
    changed[[1, 3, 5]] = 255 - changed[[1, 3, 5]]
    np.testing.assert_allclose(tiny.encode([changed]), tiny.encode([clip]), atol=1e-6)
    changed[2] = 255 - changed[2]
    assert (tiny.encode([changed]) @ tiny.encode([clip]).T).item() < 0.99999


def test_preprocessing_matches_the_official_image_processor(tiny):
    pytest.importorskip("torchvision")
    from transformers.models.clip.image_processing_clip import CLIPImageProcessor

    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    clip = random_clip(9, frames=4, height=75, width=41)
    official = processor(images=list(clip), return_tensors="pt")["pixel_values"].float()
    ours = tiny.preprocess([clip]).cpu()
    assert ours.shape == official.shape
    assert float((ours - official).abs().max()) <= 1 / (255 * min(tiny.processor_values.std)) + 1e-4
    assert float((ours - official).abs().mean()) < 1e-3


def test_a_saved_folder_loads_with_its_preprocessor_config(tmp_path, tiny):
    folder = tmp_path / "tiny-clip"
    tiny.model.save_pretrained(folder)
    stored = {"size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}, "resample": 2,
              "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    (folder / "preprocessor_config.json").write_text(json.dumps(stored))
    loaded = CLIPVisualEncoder.from_pretrained(str(folder), device="cpu")
    described = loaded.preprocessing()
    assert (described["resize_shortest_edge"], described["resample"], described["mean"]) == (40, "bilinear", [0.5] * 3)
    np.testing.assert_allclose(np.linalg.norm(loaded.encode([random_clip(1)]), axis=1), 1.0, atol=1e-5)


def test_a_folder_of_another_model_is_refused_not_loaded_with_random_weights(tmp_path):
    from motionmatch.encoders.vjepa2 import tiny_model as tiny_vjepa2

    folder = tmp_path / "tiny-vjepa2"
    tiny_vjepa2(0).save_pretrained(folder)
    with pytest.raises(WeightsUnavailableError, match="'vjepa2' model") as caught:
        CLIPVisualEncoder.from_pretrained(str(folder), device="cpu")
    assert str(folder) in str(caught.value)


def test_parameters_and_fail_fast_loading(tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="frames_sampled"):
        CLIPVisualEncoder.tiny(frames_sampled=0)
    with pytest.raises(ParameterError, match="unknown CLIP setting"):
        CLIPVisualEncoder.tiny(colour="red")
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        CLIPVisualEncoder.from_pretrained(str(tmp_path / "missing"))
    if _cached_snapshot(REAL_CLIP_ID):
        pytest.skip("the real CLIP weights are cached here")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE=1"):
        build_encoder("clip", model_id=REAL_CLIP_ID)
    assert time.monotonic() - started < 30
