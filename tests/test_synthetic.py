"""synthetic.py: the rendered motions move as labelled; the dataset is real, deterministic and well formed."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from motionmatch.video.decode import probe_video, read_frames
from motionmatch.errors import ParameterError
from motionmatch.data.synthetic import DOMAINS, MANIFEST_COLUMNS, MOTION_CLASSES, draw_group_style, generate_sample_dataset, render_motion_clip
from motionmatch.video import write_video

SIZE = (96, 72)  # (width, height): small, fast to render


def sprite_masks(frames: np.ndarray) -> np.ndarray:
    """Pixels that differ from the (plain studio) background, per frame."""
    background = np.median(frames.reshape(len(frames), -1, 3), axis=1)[:, None, None, :]
    return np.abs(frames.astype(int) - background).sum(axis=-1) > 60


def centroids(frames: np.ndarray) -> np.ndarray:
    masks = sprite_masks(frames)
    ys, xs = np.mgrid[0:frames.shape[1], 0:frames.shape[2]]
    return np.array([[xs[m].mean(), ys[m].mean()] for m in masks])


def studio_clip(motion: str, seed: int = 3, num_frames: int = 24) -> np.ndarray:
    return render_motion_clip(motion, "studio", np.random.default_rng(seed), num_frames=num_frames, size=SIZE)


def test_classes_and_domains():
    assert len(MOTION_CLASSES) >= 10 and len(set(MOTION_CLASSES)) == len(MOTION_CLASSES)
    for name in ("translate_left", "translate_right", "translate_up", "translate_down", "orbit_cw", "orbit_ccw",
                 "zoom_in", "zoom_out", "rotate", "oscillate"):
        assert name in MOTION_CLASSES
    assert DOMAINS == ("studio", "field")


def test_render_shape_and_determinism():
    first = render_motion_clip("orbit_cw", "field", np.random.default_rng(7), num_frames=10, size=SIZE)
    again = render_motion_clip("orbit_cw", "field", np.random.default_rng(7), num_frames=10, size=SIZE)
    other = render_motion_clip("orbit_cw", "field", np.random.default_rng(8), num_frames=10, size=SIZE)
    assert first.shape == (10, 72, 96, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("motion, axis, sign", [
    ("translate_left", 0, -1), ("translate_right", 0, 1), ("translate_up", 1, -1), ("translate_down", 1, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_translations_move_the_sprite_the_labelled_way(motion, axis, sign, seed):
    path = centroids(studio_clip(motion, seed))
    travel = path[-1, axis] - path[0, axis]
    assert sign * travel > 0.2 * SIZE[axis]
    assert abs(path[-1, 1 - axis] - path[0, 1 - axis]) < 3


@pytest.mark.parametrize("motion, sign", [("orbit_cw", 1), ("orbit_ccw", -1)])
def test_orbits_turn_the_labelled_way(motion, sign):
    """On screen (y down), clockwise motion has a positive signed area."""
    path = centroids(studio_clip(motion))
    relative = path - path.mean(axis=0)
    signed_area = np.sum(relative[:-1, 0] * relative[1:, 1] - relative[:-1, 1] * relative[1:, 0])
    assert sign * signed_area > 0


def test_zooms_grow_and_shrink_the_sprite():
    grow = sprite_masks(studio_clip("zoom_in")).sum(axis=(1, 2))
    shrink = sprite_masks(studio_clip("zoom_out")).sum(axis=(1, 2))
    assert grow[-1] > 2.5 * grow[0]
    assert shrink[0] > 2.5 * shrink[-1]


def test_rotate_spins_in_place():
    frames = studio_clip("rotate")
    path = centroids(frames)
    assert np.ptp(path, axis=0).max() < 4  # the sprite stays put ...
    dark = frames.astype(int).sum(axis=-1) < np.median(frames.astype(int).sum(axis=-1)) * 0.45
    ys, xs = np.mgrid[0:frames.shape[1], 0:frames.shape[2]]
    hand_angles = np.unwrap([math.atan2(ys[d].mean() - c[1], xs[d].mean() - c[0]) for d, c in zip(dark, path)])
    assert abs(hand_angles[-1] - hand_angles[0]) > math.pi  # ... while its hand turns > half a turn


def test_oscillate_goes_back_and_forth():
    path = centroids(studio_clip("oscillate", num_frames=48))
    centred = path - path.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    along = centred @ axis
    reversals = np.sum(np.diff(np.sign(np.diff(along))) != 0)
    assert reversals >= 2
    assert np.ptp(along) > 0.2 * min(SIZE)


def test_field_has_texture_and_distractors_studio_is_plain():
    studio = studio_clip("translate_right")
    field = render_motion_clip("translate_right", "field", np.random.default_rng(3), num_frames=24, size=SIZE)
    assert np.median(np.std(studio[0].reshape(-1, 3), axis=0)) < 30
    corner_studio = studio[:, :10, :10].astype(int)
    assert np.ptp(corner_studio) == 0  # plain background, static camera
    assert np.ptp(field[0, :20, :20].astype(int)) > 20  # textured background


def test_group_style_is_shared_by_its_videos():
    style = draw_group_style("studio", np.random.default_rng(5))
    first = render_motion_clip("zoom_in", "studio", np.random.default_rng(1), 4, SIZE, style=style)
    second = render_motion_clip("zoom_in", "studio", np.random.default_rng(2), 4, SIZE, style=style)
    np.testing.assert_array_equal(first[0, 0, 0], second[0, 0, 0])  # same background
    assert not np.array_equal(first, second)  # different magnitude / jitter


def test_write_video_pads_odd_sizes_and_validates(tmp_path):
    frames = np.full((3, 61, 97, 3), 128, dtype=np.uint8)
    info = probe_video(write_video(tmp_path / "odd.mp4", frames, fps=5))
    assert (info.width, info.height, info.num_frames) == (98, 62, 3)
    with pytest.raises(ParameterError, match="uint8"):
        write_video(tmp_path / "bad.mp4", frames.astype(np.float32), fps=5)
    with pytest.raises(ParameterError, match="fps"):
        write_video(tmp_path / "bad.mp4", frames, fps=0)
    with pytest.raises(ParameterError, match="timestamps"):
        write_video(tmp_path / "bad.mp4", frames, fps=5, timestamps_s=[0.0, 0.2, 0.1])


def test_unknown_motion_or_domain_is_a_parameter_error():
    with pytest.raises(ParameterError, match="jump"):
        render_motion_clip("jump", "studio", np.random.default_rng(0))
    with pytest.raises(ParameterError, match="street"):
        render_motion_clip("rotate", "street", np.random.default_rng(0))
    with pytest.raises(ParameterError, match="videos_per_class_per_domain"):
        generate_sample_dataset("/tmp/unused", videos_per_class_per_domain=0)


# ----------------------------------------------------------------------------- the sample dataset
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    manifest = generate_sample_dataset(out, seed=0, videos_per_class_per_domain=2, num_frames=8, size=(64, 48),
                                       progress=False)
    return manifest


def test_manifest_columns_counts_and_files(tiny_dataset):
    table = pd.read_csv(tiny_dataset)
    assert tuple(table.columns) == MANIFEST_COLUMNS
    assert len(table) == len(MOTION_CLASSES) * len(DOMAINS) * 2
    counts = table.groupby(["label", "domain"]).size()
    assert set(counts.index) == {(label, domain) for label in MOTION_CLASSES for domain in DOMAINS}
    assert (counts == 2).all()
    for relative in table.path:
        assert not relative.startswith("/")
        assert (tiny_dataset.parent / relative).is_file()
    info = probe_video(tiny_dataset.parent / table.path.iloc[0])
    assert (info.num_frames, info.width, info.height) == (8, 64, 48)
    assert info.fps == pytest.approx(24.0)


def test_groups_stay_within_a_class_and_domain_and_split_by_group(tiny_dataset):
    table = pd.read_csv(tiny_dataset)
    per_group = table.groupby("group").agg(labels=("label", "nunique"), domains=("domain", "nunique"),
                                           splits=("split", "nunique"))
    assert (per_group[["labels", "domains", "splits"]] == 1).all().all()
    splits = table.groupby(["label", "domain"]).split.agg(set)
    assert all(found == {"train", "test"} for found in splits)


def test_same_seed_gives_identical_frames(tiny_dataset, tmp_path):
    again = generate_sample_dataset(tmp_path / "again", seed=0, videos_per_class_per_domain=2, num_frames=8,
                                    size=(64, 48), progress=False)
    other = generate_sample_dataset(tmp_path / "other", seed=1, videos_per_class_per_domain=2, num_frames=8,
                                    size=(64, 48), progress=False)
    table = pd.read_csv(tiny_dataset)
    assert table.equals(pd.read_csv(again))
    for relative in table.path.iloc[[0, 17, 39]]:
        original = read_frames(tiny_dataset.parent / relative, range(8))
        np.testing.assert_array_equal(original, read_frames(again.parent / relative, range(8)))
        assert not np.array_equal(original, read_frames(other.parent / relative, range(8)))


def test_ensure_sample_generates_once_and_again_only_when_the_size_changes(tmp_path):
    from motionmatch.data import ensure_sample

    said = []
    manifest = ensure_sample(tmp_path, videos_per_class=1, groups_per_class=1, print_fn=said.append)
    table = pd.read_csv(manifest)
    assert len(table) == len(MOTION_CLASSES) * len(DOMAINS) and said[-1].startswith("wrote")
    first = (manifest.parent / table.path.iloc[0]).stat().st_mtime_ns
    assert ensure_sample(tmp_path, videos_per_class=1, groups_per_class=1, print_fn=said.append) == manifest
    assert "already present" in said[-1] and (manifest.parent / table.path.iloc[0]).stat().st_mtime_ns == first
    (manifest.parent / table.path.iloc[3]).unlink()  # a video gone: made again
    ensure_sample(tmp_path, videos_per_class=1, groups_per_class=1, print_fn=said.append)
    assert "generating the sample set again" in said[-2] and (manifest.parent / table.path.iloc[3]).is_file()
    bigger = ensure_sample(tmp_path, videos_per_class=2, groups_per_class=1, print_fn=said.append)
    assert len(pd.read_csv(bigger)) == 2 * len(table)
