"""Extraction and indexing end to end on real generated videos, the flow encoder and Milvus Lite."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motionmatch.index.sync import index_embeddings
from motionmatch.data import sources as datasets
from motionmatch.extract import local as pipeline
from motionmatch import table as table_module
from motionmatch.video.clips import ClipSpec
from motionmatch.encoders import build_encoder
from motionmatch.errors import EncoderMismatchError, ParameterError
from motionmatch.index.store import MotionStore
from motionmatch.data.synthetic import generate_sample_dataset
from motionmatch.video import write_video

SPEC = ClipSpec(frames_per_clip=8, frame_stride=2, clips_per_video=2)


@pytest.fixture(scope="module")
def sample_manifest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    return generate_sample_dataset(root, seed=3, videos_per_class_per_domain=1, groups_per_class_per_domain=1,
                                   num_frames=24, size=(96, 64))


@pytest.fixture(scope="module")
def flow():
    return build_encoder("flow")


def _copy_sample(manifest: Path, target: Path) -> Path:
    shutil.copytree(manifest.parent, target)
    return target / "manifest.csv"


def test_corrupt_file_among_videos_is_reported_and_the_run_finishes(tmp_path, sample_manifest, flow):
    manifest_path = _copy_sample(sample_manifest, tmp_path / "videos")
    manifest = datasets.load_source(manifest_path)[0]
    corrupt = tmp_path / "videos" / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    manifest = pd.concat([manifest, pd.DataFrame([{"path": str(corrupt), "label": "x", "domain": "studio",
                                                   "group": "bad", "split": ""}])], ignore_index=True)
    summary = pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, progress=False)

    assert summary.failed == 1
    assert summary.embedded == len(manifest) - 1
    failures = pd.read_csv(tmp_path / "emb" / "failures.csv")
    assert failures.path.tolist() == [str(corrupt)]
    assert failures.reason.iloc[0]
    assert "corrupt.mp4" in str(summary)
    table = table_module.load_embeddings(tmp_path / "emb")
    assert table.video_path.nunique() == len(manifest) - 1
    assert len(table) == (len(manifest) - 1) * SPEC.clips_per_video


def test_rerun_skips_finished_videos_and_writes_no_duplicates(tmp_path, sample_manifest, flow):
    manifest = datasets.load_source(sample_manifest)[0]
    first = pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, progress=False)
    second = pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, progress=False)
    assert first.embedded == len(manifest)
    assert second.embedded == 0 and second.skipped_done == len(manifest)
    table = table_module.load_embeddings(tmp_path / "emb")
    assert table.clip_id.is_unique
    assert len(table) == len(manifest) * SPEC.clips_per_video


def test_changed_settings_in_the_same_folder_are_refused(tmp_path, sample_manifest, flow):
    manifest = datasets.load_source(sample_manifest)[0].head(2)
    pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, progress=False)
    with pytest.raises(ParameterError, match="different settings") as refused:
        pipeline.extract_embeddings(manifest, flow, tmp_path / "emb",
                                    clip_spec=ClipSpec(frames_per_clip=8, frame_stride=1, clips_per_video=2), progress=False)
    assert "What differs: clip_spec.frame_stride: 2 -> 1" in str(refused.value)  # names the setting, old -> new
    from dataclasses import replace

    from motionmatch.encoders.flow import FlowEncoder

    other = FlowEncoder(replace(flow.settings, grid=flow.settings.grid + 1))  # same encoder id, other preprocessing
    assert other.encoder_id == flow.encoder_id
    with pytest.raises(ParameterError, match=r"What differs: .*preprocessing\.grid: "):
        pipeline.extract_embeddings(manifest, other, tmp_path / "emb", clip_spec=SPEC, progress=False)


def test_parameters_are_checked_before_work(tmp_path, sample_manifest, flow):
    manifest = datasets.load_source(sample_manifest)[0]
    with pytest.raises(ParameterError, match="batch_size"):
        pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, batch_size=0)
    with pytest.raises(ParameterError, match="does not exist"):
        datasets.load_source(tmp_path / "missing-folder")
    tiny = build_encoder("vjepa2-tiny")
    with pytest.raises(ParameterError, match="tubelet"):
        pipeline.extract_embeddings(manifest, tiny, tmp_path / "emb2",
                                    clip_spec=ClipSpec(frames_per_clip=5, frame_stride=1, clips_per_video=1))
    assert not (tmp_path / "emb").exists() or not any((tmp_path / "emb").rglob("*.parquet"))


def test_index_is_idempotent_and_replaces_changed_videos(tmp_path, sample_manifest, flow):
    videos = _copy_sample(sample_manifest, tmp_path / "videos")
    manifest = datasets.load_source(videos)[0]
    pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, progress=False)
    table = table_module.load_embeddings(tmp_path / "emb")
    with MotionStore(str(tmp_path / "mm.db"), "clips") as store:
        first = index_embeddings(table, store, flow.encoder_id, flow.preprocessing())
        second = index_embeddings(table, store, flow.encoder_id, flow.preprocessing())
        assert first.rows_after == len(table) == second.rows_after
        assert second.videos_upserted == 0 and second.videos_unchanged == table.video_path.nunique()

        # change one file's content: its fingerprint changes, it is re-embedded and replaced
        changed = manifest.path.iloc[0]
        frames = np.random.default_rng(0).integers(0, 255, size=(20, 64, 96, 3), dtype=np.uint8)
        write_video(changed, frames, fps=12)
        again = pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, progress=False)
        assert again.embedded == 1
        table = table_module.load_embeddings(tmp_path / "emb")
        third = index_embeddings(table, store, flow.encoder_id, flow.preprocessing())
        assert third.videos_replaced == 1 and third.rows_after == len(table)

        # remove a file and re-sync with remove_missing: its rows go
        removed = manifest.path.iloc[1]
        kept = manifest[manifest.path != removed]
        pipeline.extract_embeddings(kept, flow, tmp_path / "emb", clip_spec=SPEC, prune=True, progress=False)
        table = table_module.load_embeddings(tmp_path / "emb")
        fourth = index_embeddings(table, store, flow.encoder_id, flow.preprocessing(), remove_missing=True)
        assert fourth.videos_removed == 1
        assert fourth.rows_after == len(table) == (len(manifest) - 1) * SPEC.clips_per_video


def test_index_refuses_a_table_from_another_encoder(tmp_path, sample_manifest, flow):
    manifest = datasets.load_source(sample_manifest)[0].head(2)
    pipeline.extract_embeddings(manifest, flow, tmp_path / "emb", clip_spec=SPEC, progress=False)
    table = table_module.load_embeddings(tmp_path / "emb")
    with MotionStore(str(tmp_path / "mm.db"), "clips") as store:
        with pytest.raises(EncoderMismatchError):
            index_embeddings(table, store, "vjepa2:tiny-seed0", {"kind": "vjepa2"})


def test_discovery_reports_odd_entries(tmp_path, sample_manifest):
    root = tmp_path / "folder"
    (root / "walk").mkdir(parents=True)
    src = datasets.load_source(sample_manifest)[0].path.iloc[0]
    shutil.copy(src, root / "walk" / "a video with spaces é.mp4")
    (root / "walk" / "fake_dir.mp4").mkdir()
    (root / "walk" / "loop").symlink_to(root, target_is_directory=True)
    manifest, failures = datasets.discover_videos(root)
    assert manifest.path.tolist() == [str(root / "walk" / "a video with spaces é.mp4")]
    assert manifest.label.tolist() == ["walk"]
    reasons = {Path(f.path).name: f.reason for f in failures}
    assert "directory named like a video" in reasons["fake_dir.mp4"]
    assert any("symlink loop" in r for r in reasons.values())
