"""Dataset adapters on look-alike datasets: real tiny videos, laid out and named like the real ones."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from motionmatch.data.sources import (hmdb51_group, kinetics_filename, load_dataset, load_folder, load_hmdb51,
                                  load_kinetics_csv, load_manifest, load_ucf101, read_ucf101_class_index)
from motionmatch.errors import ParameterError


def write_tiny_video(path: Path, frames: int = 8, size: int = 32) -> Path:
    """A real, decodable video: mpeg4 in .avi, H.264 in .mp4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4" if path.suffix == ".avi" else "libx264", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), (i * 30) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# ----------------------------------------------------------------------------- UCF101
UCF_CLASSES = {1: ("ApplyEyeMakeup", "ApplyEyeMakeup"), 2: ("Basketball", "Basketball"),
               3: ("HandstandPushups", "HandStandPushups")}  # folder name, name used in file names (real quirk)


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ucf")
    train, test = [], []
    for index, (folder, stem_class) in UCF_CLASSES.items():
        for group in (1, 2, 8, 9):  # split 1: groups 1-7 test, 8-25 train
            for clip in (1, 2):
                name = f"v_{stem_class}_g{group:02d}_c{clip:02d}.avi"
                write_tiny_video(root / "UCF-101" / folder / name)
                (test if group <= 7 else train).append((f"{folder}/{name}", index))
    write_tiny_video(root / "UCF-101" / "Basketball" / "v_Basketball_g30_c01.avi")  # in no list
    train.append(("Basketball/v_Basketball_g10_c01.avi", 2))  # listed, never downloaded
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i} {folder}\n" for i, (folder, _) in UCF_CLASSES.items()))
    (lists / "trainlist01.txt").write_text("".join(f"{rel} {i}\r\n" for rel, i in train))
    # the real lists spell HandstandPushups as HandStandPushups in the folder part too
    (lists / "testlist01.txt").write_text("".join(f"{rel.replace('HandstandPushups/', 'HandStandPushups/')}\n"
                                                  for rel, _ in test))
    return root


def test_ucf101_split_and_groups(ucf_root):
    with pytest.warns(UserWarning) as caught:
        manifest = load_ucf101(ucf_root, split=1)
    messages = " ".join(str(w.message) for w in caught)
    assert "no file" in messages and "no split file" in messages
    assert list(manifest.columns) == ["path", "label", "domain", "group", "split"]
    assert len(manifest) == 3 * 8 + 1
    assert (manifest["split"] == "train").sum() == 12 and (manifest["split"] == "test").sum() == 12
    assert manifest.attrs["missing"] == ["basketball/v_basketball_g10_c01.avi"]
    unlisted = manifest[manifest["split"] == ""]
    assert unlisted["path"].str.endswith("v_Basketball_g30_c01.avi").all() and len(unlisted) == 1
    assert set(manifest["label"]) == {"ApplyEyeMakeup", "Basketball", "HandstandPushups"}
    assert (manifest["domain"] == "ucf101").all()
    row = manifest[manifest["path"].str.endswith("v_HandStandPushups_g08_c02.avi")].iloc[0]
    assert (row["label"], row["group"], row["split"]) == ("HandstandPushups", "HandstandPushups_g08", "train")
    assert manifest.groupby("group").size().max() == 2  # two clips per group
    assert not set(manifest.loc[manifest.split == "train", "group"]) & set(manifest.loc[manifest.split == "test", "group"])
    assert all(Path(p).is_file() for p in manifest["path"])
    assert decoded_frames(Path(manifest["path"].iloc[0])) == 8


def test_ucf101_accepts_the_ucf101_folder_and_reads_class_index(ucf_root):
    with pytest.warns(UserWarning):
        direct = load_ucf101(ucf_root / "UCF-101", split=1, domain="lab")
    assert len(direct) == 25 and (direct["domain"] == "lab").all()
    assert read_ucf101_class_index(ucf_root / "ucfTrainTestlist" / "classInd.txt") == {
        1: "ApplyEyeMakeup", 2: "Basketball", 3: "HandstandPushups"}


def test_ucf101_errors(ucf_root, tmp_path):
    with pytest.raises(ParameterError, match="testlist02.txt"):
        load_ucf101(ucf_root, split=2)
    with pytest.raises(ParameterError, match="split must be one of"):
        load_ucf101(ucf_root, split=4)
    with pytest.raises(ParameterError, match="UCF-101"):
        load_ucf101(tmp_path)


# ----------------------------------------------------------------------------- HMDB51
HMDB_VIDEOS = {
    "brush_hair": [("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "1"), ("April_09_brush_hair_u_nm_np1_ba_goo_1.avi", "1"),
                   ("Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi", "2"),
                   ("odd_name_3.avi", "0")],
    "cartwheel": [("Aerial_Cartwheel_Tutorial_By_Jujimufu_cartwheel_f_nm_np1_ri_med_0.avi", "2"),
                  ("lady_cartwheel_f_cm_np1_fr_bad_2.avi", "1")],
}


@pytest.fixture(scope="module")
def hmdb_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hmdb")
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir()
    for label, videos in HMDB_VIDEOS.items():
        for name, _ in videos:
            write_tiny_video(root / label / name)
        for number in (1, 2, 3):  # split 2 marks everything train, to show the split number matters
            ids = [split_id if number == 1 else "1" for _, split_id in videos]
            (splits / f"{label}_test_split{number}.txt").write_text(
                "".join(f"{name} {i} \n" for (name, _), i in zip(videos, ids)))
    return root


def test_hmdb51_split_ids_and_groups(hmdb_root):
    manifest = load_hmdb51(hmdb_root, split=1)
    assert len(manifest) == 6
    by_name = manifest.assign(name=manifest["path"].map(lambda p: Path(p).name)).set_index("name")
    assert by_name.loc["April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "split"] == "train"
    assert by_name.loc["Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi", "split"] == "test"
    assert by_name.loc["odd_name_3.avi", "split"] == "unused"
    assert manifest["split"].value_counts().to_dict() == {"train": 3, "test": 2, "unused": 1}
    assert by_name.loc["April_09_brush_hair_u_nm_np1_ba_goo_1.avi", "group"] == "April_09"
    assert by_name.loc["Aerial_Cartwheel_Tutorial_By_Jujimufu_cartwheel_f_nm_np1_ri_med_0.avi", "group"] == \
        "Aerial_Cartwheel_Tutorial_By_Jujimufu"
    assert by_name.loc["odd_name_3.avi", "group"] == "odd_name"
    assert by_name.loc["lady_cartwheel_f_cm_np1_fr_bad_2.avi", "label"] == "cartwheel"
    assert (manifest["domain"] == "hmdb51").all()
    assert set(load_hmdb51(hmdb_root, split=2)["split"]) == {"train"}


def test_hmdb51_group_heuristic_and_errors(hmdb_root, tmp_path):
    assert hmdb51_group("20060723sfjffbartsinger_wave_f_cm_np1_ba_med_0", "wave") == "20060723sfjffbartsinger"
    assert hmdb51_group("Pirates_kiss_h_nm_np2_fr_goo_12", "kiss") == "Pirates"
    (tmp_path / "wave").mkdir()
    with pytest.raises(ParameterError, match="testTrainMulti_7030_splits"):
        load_hmdb51(tmp_path)
    bad = tmp_path / "testTrainMulti_7030_splits"
    bad.mkdir()
    (bad / "wave_test_split1.txt").write_text("clip.avi 7\n")
    with pytest.raises(ParameterError, match="wave_test_split1.txt:1"):
        load_hmdb51(tmp_path)


# ----------------------------------------------------------------------------- Kinetics
def test_kinetics_naming_layouts_and_missing(tmp_path):
    videos = tmp_path / "k400"
    write_tiny_video(videos / "air drumming" / f"{kinetics_filename('--nQbRBEz2s', 104, 114)}")
    write_tiny_video(videos / "air drumming" / f"{kinetics_filename('--nQbRBEz2s', 200, 210)}")
    write_tiny_video(videos / f"{kinetics_filename('0aBcD-xyz_1', 5, 15)}")  # flat layout
    csv = tmp_path / "train.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   "air drumming,--nQbRBEz2s,104,114,train\n"
                   "air drumming,--nQbRBEz2s,200,210,train\n"
                   "abseiling,0aBcD-xyz_1,5,15,train\n"
                   "abseiling,neverdownloaded,0,10,train\n")
    assert kinetics_filename("--nQbRBEz2s", 104, 114) == "--nQbRBEz2s_000104_000114.mp4"
    with pytest.warns(UserWarning, match="no file"):
        manifest = load_kinetics_csv(csv, videos)
    assert manifest.attrs["missing"] == ["neverdownloaded_000000_000010.mp4"]
    assert len(manifest) == 3 and (manifest["split"] == "train").all()
    assert manifest.groupby("group").size().to_dict() == {"--nQbRBEz2s": 2, "0aBcD-xyz_1": 1}
    assert set(manifest["label"]) == {"air drumming", "abseiling"}
    with pytest.warns(UserWarning):
        overridden = load_dataset("kinetics", csv, videos_root=videos, split="val")
    assert (overridden["split"] == "val").all()
    with pytest.raises(ParameterError, match="none of the"):
        load_kinetics_csv(csv, _empty_dir(tmp_path / "empty"))


def _empty_dir(path: Path) -> Path:
    path.mkdir()
    return path


def test_kinetics_bad_columns(tmp_path):
    csv = tmp_path / "val.csv"
    csv.write_text("label,youtube_id,start\nx,y,1\n")
    with pytest.raises(ParameterError, match="time_start"):
        load_kinetics_csv(csv)


# ----------------------------------------------------------------------------- folder and manifest
def test_load_folder_labels_groups_and_domain(tmp_path):
    root = tmp_path / "studio"
    write_tiny_video(root / "walk" / "walk_a.mp4")
    write_tiny_video(root / "walk" / "walk_b.mp4")
    write_tiny_video(root / "run" / "v_Run_g03_c01.avi")
    write_tiny_video(root / "run" / "v_Run_g03_c02.avi")
    write_tiny_video(root / "loose.mp4")
    (root / "walk" / "notes.txt").write_text("not a video")
    manifest = load_folder(root)
    assert len(manifest) == 5 and (manifest["domain"] == "studio").all()
    by_name = manifest.assign(name=manifest["path"].map(lambda p: Path(p).name)).set_index("name")
    assert by_name.loc["walk_a.mp4", "group"] == "walk_a" and by_name.loc["walk_a.mp4", "label"] == "walk"
    assert by_name.loc["v_Run_g03_c01.avi", "group"] == by_name.loc["v_Run_g03_c02.avi", "group"] == "Run_g03"
    assert by_name.loc["loose.mp4", "label"] == "unlabelled"
    assert (load_folder(root, domain="lab")["domain"] == "lab").all()
    with pytest.raises(ParameterError, match="no videos found"):
        load_folder(_empty_dir(tmp_path / "empty"))


def test_load_manifest_resolves_relative_paths(tmp_path):
    data = tmp_path / "data"
    relative_video = write_tiny_video(data / "videos" / "a.mp4")
    absolute_video = write_tiny_video(tmp_path / "elsewhere" / "b.avi")
    csv = data / "manifest.csv"
    pd.DataFrame({"path": ["videos/a.mp4", str(absolute_video)], "label": ["walk", "run"],
                  "domain": ["studio", "street"], "group": ["g1", ""]}).to_csv(csv, index=False)
    manifest = load_dataset("manifest", csv)
    assert manifest["path"].tolist() == [str(relative_video.resolve()), str(absolute_video)]
    assert manifest["split"].tolist() == ["", ""] and manifest["group"].tolist() == ["g1", ""]
    assert manifest.attrs["missing"] == []
    pd.DataFrame({"path": ["a.mp4"], "label": ["walk"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ParameterError, match=r"\['domain', 'group'\]"):
        load_manifest(tmp_path / "bad.csv")


def test_load_dataset_dispatch_errors(tmp_path):
    with pytest.raises(ParameterError, match="unknown dataset 'ucf'"):
        load_dataset("ucf", tmp_path)
    with pytest.raises(ParameterError, match="takes no option"):
        load_dataset("folder", tmp_path, split=1)
