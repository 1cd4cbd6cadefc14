"""The real cross-camera sample (motionmatch.data.pose2sim): the wheel fetched once through the cache, cut into
windows that are the same moment in every camera, labelled for cross-camera retrieval, and cached.

The wheel (51 MB, pose2sim 0.10.49 from PyPI) is fetched once into ``<cache_dir>/pose2sim``; without network or
PyPI the tests skip and say why.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from motionmatch.data.pose2sim import (POSE2SIM_VERSION, SampleUnavailableError, fetch_pose2sim_wheel,
                                       write_pose2sim_sample)
from motionmatch.errors import ParameterError
from motionmatch.table import MANIFEST_COLUMNS
from motionmatch.video import probe_video

CAMERAS = ["cam01", "cam02", "cam03", "cam04"]


@pytest.fixture(scope="session")
def pose2sim_wheel() -> Path:
    try:
        return fetch_pose2sim_wheel(print_fn=lambda _: None)
    except SampleUnavailableError as error:
        pytest.skip(f"the pose2sim {POSE2SIM_VERSION} wheel cannot be fetched here: {error}")


@pytest.fixture(scope="session")
def sample(pose2sim_wheel, tmp_path_factory) -> tuple[Path, pd.DataFrame, dict]:
    folder = tmp_path_factory.mktemp("pose2sim") / "sample"
    manifest = write_pose2sim_sample(folder, wheel=pose2sim_wheel, print_fn=lambda _: None)
    return folder, pd.read_csv(manifest, keep_default_na=False), json.loads((folder / "pose2sim_sample.json").read_text())


def test_manifest_has_the_columns_and_one_row_per_trial_camera_window(sample):
    folder, manifest, meta = sample
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert len(manifest) == 2 * 4 * 3  # 2 distinct trials, 4 cameras, 3 windows of 0.55 s in 1.67 s
    assert set(manifest["split"]) == {""}
    assert sorted(manifest["domain"].unique()) == CAMERAS
    assert all((folder / path).is_file() for path in manifest["path"])
    assert sorted(manifest["label"].unique()) == [f"Trial_{t}:w{k:02d}" for t in (1, 2) for k in range(3)]
    # the group is the window alone: Trial_2's man replays Trial_1's, so a split must keep Trial_1:wK with Trial_2:wK
    assert (manifest["group"] == manifest["label"].str.split(":").str[1]).all()
    assert meta["source"]["sha256"] == "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
    assert meta["source"]["licence"] == "BSD-3-Clause" and (folder / "LICENSE-pose2sim.txt").is_file()


def test_every_label_is_the_same_moment_in_every_camera(sample):
    folder, manifest, meta = sample
    for label, rows in manifest.groupby("label"):
        assert sorted(rows["domain"]) == CAMERAS, f"{label} is not cut in every camera"
    frames_by_label: dict[str, set] = {}
    for clip in meta["clips"]:
        frames_by_label.setdefault(f"{clip['trial']}:w{clip['window']:02d}", set()).add(
            (clip["start_frame"], clip["end_frame"]))
    assert all(len(spans) == 1 for spans in frames_by_label.values()), frames_by_label  # same frames in all cameras
    assert sorted(next(iter(s)) for s in frames_by_label.values())[:3] == [(0, 33), (0, 33), (33, 66)]
    assert all(meta["sync"][trial]["agree"] for trial in ("Trial_1", "Trial_2"))
    info = probe_video(folder / manifest["path"].iloc[0])
    assert info.num_frames == 33 and abs(info.fps - 60) < 1e-6 and max(info.width, info.height) == 960


def test_byte_identical_demo_folders_are_dropped(sample):
    _, _, meta = sample
    assert meta["trials"] == {"Trial_1": CAMERAS, "Trial_2": CAMERAS}
    kept_for = {(d["member"].split("/")[1], d["same_bytes_as"].split("/")[2]) for d in meta["duplicates_dropped"]}
    assert kept_for == {("Demo_SinglePerson", "Trial_1"), ("Demo_MultiPerson", "Trial_2")}
    assert len(meta["duplicates_dropped"]) == 8


def test_a_second_call_with_the_same_settings_does_nothing(sample, pose2sim_wheel):
    folder, manifest, _ = sample
    before = {path: (folder / path).stat().st_mtime_ns for path in manifest["path"]}
    messages: list[str] = []
    write_pose2sim_sample(folder, wheel=pose2sim_wheel, print_fn=messages.append)
    assert len(messages) == 1 and "nothing to do" in messages[0]
    assert before == {path: (folder / path).stat().st_mtime_ns for path in manifest["path"]}


def test_a_wheel_with_another_checksum_is_refused(tmp_path):
    fake = tmp_path / f"pose2sim-{POSE2SIM_VERSION}-py3-none-any.whl"
    fake.write_bytes(b"PK\x03\x04 not the real wheel")
    with pytest.raises(SampleUnavailableError, match="sha256"):
        write_pose2sim_sample(tmp_path / "out", wheel=fake, print_fn=lambda _: None)


def test_a_window_longer_than_the_videos_says_what_fits(pose2sim_wheel, tmp_path):
    with pytest.raises(ParameterError, match=r"window_s=2 is longer than Trial_1's videos \(1.667 s\)"):
        write_pose2sim_sample(tmp_path / "out", window_s=2.0, long_side=128, wheel=pose2sim_wheel,
                              print_fn=lambda _: None)
    with pytest.raises(ParameterError, match="long_side"):
        write_pose2sim_sample(tmp_path / "out", long_side=10, wheel=pose2sim_wheel)
