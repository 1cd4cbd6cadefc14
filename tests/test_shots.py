"""shots.py: planted hard cuts are found, cut-free motion changes are not cuts, scoring and windows are exact."""
from __future__ import annotations

import itertools
import random
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from motionmatch.video import shots
from motionmatch.errors import ParameterError, VideoError
from motionmatch.data.long_synthetic import generate_long_videos
from motionmatch.metrics import boundary_f1
from motionmatch.video.shots import METHODS, MissingPackageError, Shot, cuts_from_probabilities, detect_shots, shots_from_cuts

# 8 s, 24 fps, 96x72, segments of 1.5-3 s: each video renders and encodes in about a second.
TINY = {"duration_s": 8.0, "fps": 24.0, "size": (96, 72), "min_segment_s": 1.5, "max_segment_s": 3.0,
        "progress": False}
TOLERANCE_S = 0.5
# seed 8: hard cuts at 4.58 and 6.17 s, a cut-free motion change at 2.58 s;
# seed 2: hard cuts at 2.75, 4.63 and 6.17 s.
MIXED_SEEDS = (8, 2)
# Recall each method must reach on the 5 planted cuts of MIXED_SEEDS (measured: content 4/5 with its
# default threshold 27, which misses the 2.75 s cut of seed 2; adaptive 5/5).
REQUIRED_RECALL = {"content": 0.8, "adaptive": 1.0}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """{name: (path, true cut times, cut-free motion-change times)} for the mixed videos and a cut-free one."""
    import pandas as pd

    root = tmp_path_factory.mktemp("shots")
    made = {}
    for name, seed, cut_probability in [*((f"mixed{s}", s, 0.5) for s in MIXED_SEEDS), ("nocut", 9, 0.0)]:
        folder = root / name
        generate_long_videos(folder, n_videos=1, seed=seed, cut_probability=cut_probability, **TINY)
        truth = pd.read_csv(folder / "ground_truth.csv")
        cuts = pd.read_csv(folder / "cuts.csv")["time_s"].tolist()
        changes = truth.loc[truth["transition"] == "continuous", "start_s"].tolist()
        made[name] = (folder / "long_000.mp4", cuts, changes)
    assert len(made["mixed8"][1]) == 2 and len(made["mixed8"][2]) == 1 and len(made["mixed2"][1]) == 3
    assert made["nocut"][1] == [] and len(made["nocut"][2]) >= 2
    return made


def _check_tiling(found: list[Shot], duration_s: float) -> None:
    assert found[0].start_s == 0.0 and found[0].start_frame == 0
    assert found[-1].end_s == pytest.approx(duration_s, abs=1e-3)
    assert all(a.end_s == b.start_s and a.end_frame == b.start_frame for a, b in zip(found, found[1:]))
    assert all(shot.duration_s > 0 for shot in found)


def _near(times, targets, tolerance_s=TOLERANCE_S) -> int:
    return sum(any(abs(t - g) <= tolerance_s for g in targets) for t in times)


# ----------------------------------------------------------------------------- cuts on frames decoded once
@pytest.mark.parametrize("method", ["content", "adaptive"])
def test_cuts_on_decoded_frames_are_pyscenedetects_own(videos, method):
    """The detector fed our decode frame by frame finds what its SceneManager finds on its own decode, on the
    whole file (detect_shots) and on a range (the library's seek and end_time)."""
    from motionmatch.video.decode import open_video

    for name in (f"mixed{s}" for s in MIXED_SEEDS):
        path, _, _ = videos[name]
        whole = [shot.start_s for shot in detect_shots(path, method)[1:]]
        assert whole and shots.cuts_in_range(path, 0.0, 8.0, method) == pytest.approx(whole, abs=1e-6)
        stamps = np.asarray(open_video(path).timestamps())
        checked = shots.check_options(method, {})
        library = [float(stamps[f]) for f in shots._scenedetect_cuts(str(path), stamps, method, checked, 2.0, 7.5)]
        expected = [t for t in library if 2.0 + checked["min_shot_s"] - 1e-9 <= t < 7.5]
        assert shots.cuts_in_range(path, 2.0, 7.5, method) == pytest.approx(expected, abs=1e-6), name


def test_transnet_frames_from_the_one_decode_are_the_reference_ones(videos):
    """iter_frames(small_size=TRANSNET_SIZE) gives the very 48x27 frames detect_shots feeds TransNetV2, so a query
    range decoded once for its windows gives its cuts as well; cuts_in_chunks finds detect_shots' cuts."""
    from motionmatch.video.decode import iter_frames, open_video

    path, cuts, _ = videos["mixed8"]
    small = np.stack(list(shots._small_frames(str(path))))
    chunks = list(iter_frames(path, chunk_frames=50, small_size=shots.TRANSNET_SIZE))
    np.testing.assert_array_equal(np.concatenate([c.small for c in chunks]), small)
    assert chunks[0].frames.shape[1:] == (72, 96, 3)  # the full frames are there too
    whole = [shot.start_s for shot in detect_shots(path, "transnetv2", device="cpu")[1:]]
    found = shots.cuts_in_chunks(chunks, 0.0, 8.0, open_video(path).info().fps, "transnetv2", device="cpu")
    assert found == pytest.approx(whole, abs=1e-6) and len(found) == len(cuts)
    with pytest.raises(ParameterError, match="small_size"):
        shots.cuts_in_chunks(iter_frames(path), 0.0, 8.0, 24.0, "transnetv2")


# ----------------------------------------------------------------------------- detection on generated videos
@pytest.mark.parametrize("method", ["content", "adaptive"])
def test_scenedetect_finds_planted_cuts_and_not_motion_changes(videos, method):
    matched = n_true = 0
    for name in (f"mixed{s}" for s in MIXED_SEEDS):
        path, cuts, changes = videos[name]
        found = detect_shots(path, method)
        _check_tiling(found, 8.0)
        predicted = [shot.start_s for shot in found[1:]]
        score = boundary_f1(predicted, cuts, TOLERANCE_S)
        assert score["precision"] == 1.0, (name, predicted, cuts)
        assert _near(predicted, changes) == 0, (name, predicted, changes)
        matched, n_true = matched + score["matched"], n_true + score["n_true"]
        for shot in found[1:]:  # a found cut starts exactly on the frame of the planted one
            if any(abs(shot.start_s - c) <= TOLERANCE_S for c in cuts):
                assert min(abs(shot.start_s - c) for c in cuts) < 1e-3
    assert matched / n_true >= REQUIRED_RECALL[method]


@pytest.mark.parametrize("method", ["content", "adaptive"])
def test_motion_changes_without_a_cut_are_one_shot(videos, method):
    path, _, changes = videos["nocut"]
    found = detect_shots(path, method)
    assert len(found) == 1, (found, changes)
    _check_tiling(found, 8.0)
    assert found[0].end_frame == 192


def test_transnetv2_finds_planted_cuts_and_leaves_global_state_alone(videos):
    """One tiny video (TransNetV2 is slow on CPU); its constructor's global side effects are undone."""
    import torch

    path, cuts, changes = videos["mixed8"]
    shots._transnet_model.cache_clear()
    deterministic = torch.are_deterministic_algorithms_enabled()
    np_state, py_state, torch_state = np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state()
    found = detect_shots(path, "transnetv2", device="cpu")
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
    _check_tiling(found, 8.0)
    predicted = [shot.start_s for shot in found[1:]]
    assert boundary_f1(predicted, cuts, TOLERANCE_S)["f1"] == 1.0, (predicted, cuts)
    assert _near(predicted, changes) == 0
    assert max(min(abs(p - c) for c in cuts) for p in predicted) < 1e-3  # on the planted frame


def test_streamed_transnet_windows_match_the_reference_predict_frames():
    """The streamed windowing gives the package's own predict_frames probabilities (the oracle)."""
    import torch

    frames = np.random.default_rng(0).integers(0, 256, size=(123, 27, 48, 3), dtype=np.uint8)
    streamed = shots.transnet_probabilities(iter(frames), device="cpu", batch_windows=2)
    reference, _ = shots._transnet_model("cpu").predict_frames(torch.from_numpy(frames), quiet=True)
    assert len(streamed) >= len(frames)
    np.testing.assert_allclose(streamed[:len(frames)], reference.numpy(), atol=1e-5)


@pytest.mark.parametrize("n_frames", [1, 49, 50, 51, 100, 137])
def test_padded_windows_cover_each_frame_once_in_their_middles(n_frames):
    frames = [np.full((27, 48, 3), i % 256, dtype=np.uint8) for i in range(n_frames)]
    windows = list(shots._padded_windows(iter(frames)))
    assert all(w.shape == (100, 27, 48, 3) for w in windows)
    middles = np.concatenate([w[25:75, 0, 0, 0] for w in windows])
    expected = [i % 256 for i in range(n_frames)]
    assert middles[:n_frames].tolist() == expected
    assert (middles[n_frames:] == expected[-1]).all() and len(middles) - n_frames < 50
    assert (windows[0][:25, 0, 0, 0] == 0).all()


# ----------------------------------------------------------------------------- pure helpers
def test_cuts_from_probabilities_one_cut_per_run_after_its_peak():
    p = np.array([0.1, 0.9, 0.2, 0.1, 0.6, 0.8, 0.7, 0.1, 0.95])
    assert cuts_from_probabilities(p, 0.5) == [2, 6, 9]
    assert cuts_from_probabilities(p, 0.99) == []


def test_shots_from_cuts_tiles_and_respects_min_shot():
    stamps = np.arange(48) / 12.0
    found = shots_from_cuts([12, 14, 30, 0, 99], stamps, 4.0, min_shot_s=0.5)
    assert [(s.start_frame, s.end_frame) for s in found] == [(0, 12), (12, 30), (30, 48)]
    assert [(s.start_s, s.end_s) for s in found] == [(0.0, 1.0), (1.0, 2.5), (2.5, 4.0)]
    assert shots_from_cuts([], stamps, 4.0) == [Shot(0.0, 4.0, 0, 48)]


def test_boundary_f1_hand_cases():
    assert boundary_f1([1.0, 5.0], [1.2, 5.5], 0.5)["f1"] == 1.0
    assert boundary_f1([1.0, 5.0], [1.2, 5.6], 0.5) == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "matched": 1, "n_predicted": 2, "n_true": 2})
    one_to_one = boundary_f1([1.0, 1.1, 1.2], [1.05], 0.5)  # three guesses near one cut: one match
    assert (one_to_one["matched"], one_to_one["precision"], one_to_one["recall"]) == (1, pytest.approx(1 / 3), 1.0)
    # a greedy nearest-first matcher would pair 1.6 with 1.5 and lose 2.0; the maximum matching keeps both
    assert boundary_f1([1.0, 1.6], [1.5, 2.0], 0.5)["matched"] == 2
    assert boundary_f1([], [], 0.5)["f1"] == 1.0
    assert boundary_f1([], [3.0], 0.5) == pytest.approx(
        {"precision": 1.0, "recall": 0.0, "f1": 0.0, "matched": 0, "n_predicted": 0, "n_true": 1})
    assert boundary_f1([3.0], [], 0.5)["precision"] == 0.0
    with pytest.raises(ParameterError, match="tolerance_s"):
        boundary_f1([1.0], [1.0], -0.1)
    with pytest.raises(ParameterError, match="finite"):
        boundary_f1([float("nan")], [1.0], 0.5)


def _brute_force_matches(predicted, truth, tolerance):
    """Largest one-to-one matching by trying every assignment (tiny inputs only)."""
    best = 0
    for k in range(min(len(predicted), len(truth)), 0, -1):
        for chosen in itertools.combinations(range(len(predicted)), k):
            for targets in itertools.permutations(range(len(truth)), k):
                if all(abs(predicted[i] - truth[j]) <= tolerance for i, j in zip(chosen, targets)):
                    return k
    return best


@pytest.mark.parametrize("seed", range(40))
def test_boundary_f1_is_a_maximum_matching(seed):
    rng = np.random.default_rng(seed)
    predicted = np.round(rng.uniform(0, 6, size=rng.integers(0, 6)), 2)
    truth = np.round(rng.uniform(0, 6, size=rng.integers(0, 6)), 2)
    tolerance = float(rng.choice([0.25, 0.5, 1.0]))
    got = boundary_f1(predicted, truth, tolerance)["matched"]
    assert got == _brute_force_matches(predicted.tolist(), truth.tolist(), tolerance)
    if len(predicted) and len(truth):  # scipy's assignment as a second oracle
        reach = np.abs(predicted[:, None] - truth[None, :]) <= tolerance + 1e-9
        rows, cols = linear_sum_assignment(-reach.astype(float))
        assert got == int(reach[rows, cols].sum())


# ----------------------------------------------------------------------------- errors
def test_bad_method_and_options_are_parameter_errors(videos):
    path = videos["nocut"][0]
    with pytest.raises(ParameterError, match="method must be one of"):
        detect_shots(path, "histogram")
    with pytest.raises(ParameterError, match="unknown option.*treshold.*takes"):
        detect_shots(path, "content", treshold=20)
    with pytest.raises(ParameterError, match="threshold"):
        detect_shots(path, "content", threshold="high")
    with pytest.raises(ParameterError, match="window_width"):
        detect_shots(path, "adaptive", window_width=True)
    with pytest.raises(ParameterError, match="threshold"):
        detect_shots(path, "transnetv2", threshold=1.5)
    with pytest.raises(ParameterError, match="min_shot_s"):
        detect_shots(path, "adaptive", min_shot_s=-1.0)


@pytest.mark.parametrize("method", METHODS)
def test_unreadable_files_are_video_errors_naming_the_file(tmp_path, method):
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(VideoError, match="nowhere.mp4: file not found"):
        detect_shots(missing, method)
    text = tmp_path / "page.mp4"
    text.write_text("<html>404 not found</html>")
    with pytest.raises(VideoError, match="page.mp4: not a video") as caught:
        detect_shots(text, method)
    assert "fetch the real video" in str(caught.value)


@pytest.mark.parametrize("method", METHODS)
def test_missing_package_says_what_to_install(monkeypatch, videos, method):
    monkeypatch.setitem(sys.modules, shots.IMPORT_NAMES[method], None)  # what an absent package looks like
    with pytest.raises(MissingPackageError, match=f"pip install {shots.PIP_PACKAGES[method]}"):
        detect_shots(videos["nocut"][0], method)
