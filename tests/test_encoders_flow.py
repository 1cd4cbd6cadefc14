"""FlowEncoder on small clips generated here with numpy: motions are told apart, camera pans are ignored."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from motionmatch.encoders import build_encoder
from motionmatch.encoders.flow import GLOBAL_TERMS, FlowEncoder, FlowSettings, flow_threads
from motionmatch.errors import ParameterError

HEIGHT, WIDTH, FRAMES, MARGIN = 90, 120, 12, 30


def texture(rng: np.random.Generator, height: int, width: int, cell: int = 6) -> np.ndarray:
    """Blocky random RGB texture (uint8) that optical flow can lock onto."""
    coarse = rng.integers(30, 226, (height // cell + 2, width // cell + 2, 3))
    return np.kron(coarse, np.ones((cell, cell, 1)))[:height, :width].astype(np.uint8)


def sprite_clip(seed: int, velocity: tuple[int, int] = (0, 0), pan: tuple[int, int] = (0, 0),
                zoom: float = 1.0) -> np.ndarray:
    """A textured square over a textured background; the sprite moves by ``velocity`` px/frame (or scales by
    ``zoom`` per frame about its centre) while the camera pans by ``pan`` px/frame."""
    rng = np.random.default_rng(seed)
    background = texture(rng, HEIGHT + 2 * MARGIN, WIDTH + 2 * MARGIN, cell=8)
    pattern = texture(rng, 48, 48, cell=4)
    frames = np.empty((FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    centre_x = MARGIN + WIDTH / 2 - velocity[0] * FRAMES / 2 + rng.integers(-4, 5)
    centre_y = MARGIN + HEIGHT / 2 - velocity[1] * FRAMES / 2 + rng.integers(-4, 5)
    for t in range(FRAMES):
        canvas = background.copy()
        half = int(round(14 * zoom ** (t - FRAMES / 2)))
        rows = np.linspace(0, 47, 2 * half).astype(int)
        patch = pattern[rows][:, rows]
        top, left = int(centre_y + velocity[1] * t) - half, int(centre_x + velocity[0] * t) - half
        canvas[top:top + 2 * half, left:left + 2 * half] = patch
        camera_y, camera_x = MARGIN + pan[1] * (t - FRAMES // 2), MARGIN + pan[0] * (t - FRAMES // 2)
        frames[t] = canvas[camera_y:camera_y + HEIGHT, camera_x:camera_x + WIDTH]
    return frames


@pytest.fixture(scope="module")
def flow() -> FlowEncoder:
    return FlowEncoder()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_threads_follow_the_cpus_allowed_and_describe_each_clip_as_alone(flow):
    """encode() describes clips in one thread per allowed CPU (at most 4); the vectors never depend on it."""
    clips = [sprite_clip(seed, (2, 0) if seed % 2 else (0, -2), pan=(seed % 3, 0)) for seed in range(6)]
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert flow_threads() == 1
        alone = flow.encode(clips)
    finally:
        os.sched_setaffinity(0, allowed)
    assert flow_threads() == min(4, len(allowed))
    np.testing.assert_array_equal(flow.encode(clips), alone)
    single = np.stack([flow.encode([clip])[0] for clip in clips])
    np.testing.assert_array_equal(single, alone)


def test_contract_shape_norm_determinism(flow):
    clips = [sprite_clip(1, (2, 0)), sprite_clip(2, (0, 2), pan=(1, 0)), sprite_clip(3)]
    vectors = flow.encode(clips)
    assert vectors.shape == (3, flow.dim) == (3, FlowSettings().dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(flow.encode(clips), vectors)
    np.testing.assert_allclose(flow.encode(clips, batch_size=1), vectors)
    assert flow.encode([]).shape == (0, flow.dim)
    assert flow.encoder_id == "flow:v1" and flow.frames_per_clip == 16
    description = flow.preprocessing()
    assert json.loads(json.dumps(description)) == description
    assert description["camera_model"] == "affine" and description["global_terms"] == list(GLOBAL_TERMS)
    assert build_encoder("flow", short_side=64).preprocessing()["short_side"] == 64


def test_still_clips_get_a_unit_vector(flow):
    still = np.repeat(texture(np.random.default_rng(0), HEIGHT, WIDTH)[None], 6, axis=0)
    vector = flow.encode([still, still[:1]])
    np.testing.assert_allclose(np.linalg.norm(vector, axis=1), 1.0, atol=1e-5)
    assert cosine(vector[0], flow.encode([sprite_clip(4, (2, 0))])[0]) < 0.5


@pytest.mark.parametrize("pan", [(0, 0), (2, 1)], ids=["static-camera", "panning-camera"])
def test_same_motion_is_closer_than_other_motion(flow, pan):
    motions = {"left": (-2, 0), "right": (2, 0), "up": (0, -2), "down": (0, 2)}
    first = {name: flow.encode([sprite_clip(10 + i, v, pan=pan)])[0] for i, (name, v) in enumerate(motions.items())}
    second = {name: flow.encode([sprite_clip(20 + i, v, pan=pan)])[0] for i, (name, v) in enumerate(motions.items())}
    for name in motions:
        same = cosine(first[name], second[name])
        for other in motions:
            if other != name:
                assert same > cosine(first[name], second[other]) + 0.1, (name, other, pan)


def test_camera_pan_is_compensated(flow):
    # the same sprite motion filmed with a still and with a panning camera stays alike...
    still, panned = flow.encode([sprite_clip(30, (2, 0)), sprite_clip(31, (2, 0), pan=(-2, 1))])
    # ...and much more alike than a pan alone makes it look like the opposite motion
    opposite = flow.encode([sprite_clip(32, (-2, 0), pan=(-2, 1))])[0]
    assert cosine(still, panned) > 0.9 and cosine(still, panned) > cosine(panned, opposite) + 0.05
    without = FlowEncoder(FlowSettings(camera_model="none"))
    assert cosine(*without.encode([sprite_clip(30, (2, 0)), sprite_clip(31, (2, 0), pan=(-2, 1))])) < cosine(still, panned)


def test_zoom_in_and_out_separate(flow):
    grow = flow.encode([sprite_clip(40, zoom=1.06), sprite_clip(41, zoom=1.06)])
    shrink = flow.encode([sprite_clip(42, zoom=1 / 1.06), sprite_clip(43, zoom=1 / 1.06)])
    translate = flow.encode([sprite_clip(44, (2, 0))])[0]
    assert cosine(grow[0], grow[1]) > cosine(grow[0], shrink[0]) + 0.1
    assert cosine(shrink[0], shrink[1]) > cosine(shrink[0], grow[1]) + 0.1
    assert cosine(grow[0], grow[1]) > cosine(grow[0], translate) + 0.1
    divergence = GLOBAL_TERMS.index("divergence") - len(GLOBAL_TERMS)
    assert flow.describe(sprite_clip(40, zoom=1.06))[divergence] > 0 > flow.describe(sprite_clip(42, zoom=1 / 1.06))[divergence]


def test_bad_settings_and_inputs_are_parameter_errors(flow):
    with pytest.raises(ParameterError, match="camera_model"):
        FlowSettings(camera_model="homography")
    with pytest.raises(ParameterError, match="magnitude_edges"):
        FlowSettings(magnitude_edges=(2.0, 1.0))
    with pytest.raises(ParameterError, match="uint8"):
        flow.encode([np.zeros((4, 10, 10, 3), dtype=np.float32)])
