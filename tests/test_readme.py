"""The README's Python quick start, run as written, in a fresh folder of its own.

The block is read from README.md (the first ```python fence under "Quick start"), so the README cannot drift
from the package. It runs in a subprocess whose working directory holds the two samples it names, generated
small (the same generators as ``motionmatch generate-sample [--long]``), with every configured location
(MOTIONMATCH_*: embeddings, Milvus Lite file) pointed inside that folder; the encoder is the README's own
(``auto``: FlowEncoder here, since no V-JEPA 2 weights load offline).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
README = PROJECT_ROOT / "README.md"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def quick_start() -> str:
    text = README.read_text()
    section = text[text.index("## Quick start"):]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "README.md: no ```python block under '## Quick start'"
    return found.group(1)


def test_the_quick_start_block_names_only_what_the_package_has():
    import motionmatch as mm

    used = set(re.findall(r"\bmm\.([A-Za-z_]+)", quick_start()))
    assert used >= {"extract", "index", "search"}
    for name in used:
        assert getattr(mm, name, None) is not None, f"README quick start calls mm.{name}, which the package lacks"


def test_the_quick_start_runs_as_written(tmp_path):
    from motionmatch.data import generate_long_videos, generate_sample_dataset, write_long_manifest

    code = quick_start()
    generate_sample_dataset(tmp_path / "data/raw/sample", seed=0, videos_per_class_per_domain=1,
                            groups_per_class_per_domain=1, num_frames=24, progress=False)
    long_dir = tmp_path / "data/raw/sample_long"
    generate_long_videos(long_dir, n_videos=2, duration_s=24.0, seed=0, size=(128, 96), min_segment_s=4.0,
                         max_segment_s=8.0, progress=False)
    write_long_manifest(long_dir)
    for path in re.findall(r'"(data/raw/[^"]+\.mp4)"', code):
        assert (tmp_path / path).exists(), f"the README's example file {path} is not what the generator writes"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONMATCH_")}
    env.update(MOTIONMATCH_MILVUS_URI=str(tmp_path / "data/interim/motionmatch.db"),
               MOTIONMATCH_EMBEDDINGS_DIR=str(tmp_path / "data/interim/embeddings"),
               TQDM_DISABLE="1", PYTHONPATH=str(PROJECT_ROOT))  # the default model: offline, `auto` falls back
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith(str(tmp_path)) or
             line.startswith("data/")]
    hits = [line for line in lines if "sample_long" not in line[0]]
    segments = [line for line in lines if "sample_long" in line[0]]
    assert 1 <= len(hits) <= 5 and len({h[0] for h in hits}) == len(hits), done.stdout  # one per video
    assert segments and all(s[3] in ("copy", "same_motion") for s in segments), done.stdout
    assert all(not s[0].endswith("long_000.mp4") for s in segments), done.stdout  # its own video left out


def test_the_configuration_table_lists_every_setting_config_owns():
    from motionmatch.config import SETTINGS

    text = README.read_text()
    section = text[text.index("## Configuration"):]
    section = section[:section.index("\n## ", 1)]
    missing = [f"{name} ({entry.variable})" for name, entry in SETTINGS.items() if f"`{entry.variable}`" not in section]
    assert not missing, f"README.md's configuration table lacks: {', '.join(missing)}"
