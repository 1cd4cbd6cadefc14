"""A folder of hostile and odd inputs, generated in code, with what extraction must do with each.

``write_hostile_folder(root)`` writes real files (real H.264 videos written with PyAV, real
broken files) and returns one :class:`HostileCase` per entry. ``expect`` is:

* ``"embedded"``: a valid but unusual video (1 frame, 4K, 16x1000, rotation, VFR, unicode
  path) that must be embedded like any other;
* ``"failed"``: a file that reaches the decoder and must be skipped with a reason
  (``failures.csv`` stage ``decode``), without stopping the run;
* ``"discover"``: an entry that discovery itself reports and skips (stage ``discover``).

``reason`` is a lower-case fragment the recorded reason must contain.
Only the Python standard library, numpy, PyAV and ``motionmatch.data.synthetic`` are used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from motionmatch.data.synthetic import render_motion_clip
from motionmatch.video import write_video

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
ROOT_SKIP_REASON = ("running as root: root ignores file permissions, so a chmod 000 file stays readable; "
                    "the unreadable-input case is covered by a FIFO named .mp4 and a dangling symlink instead")


@dataclass(frozen=True)
class HostileCase:
    """One entry of the hostile folder and the outcome extraction must give it."""

    name: str  # short id used in test ids and the tally
    path: str  # the entry on disk (a file, link, FIFO or directory)
    expect: str  # "embedded" | "failed" | "discover"
    reason: str = ""  # lower-case fragment the recorded reason must contain (failed / discover)
    description: str = ""  # what the entry is, for the tally


def _motion(num_frames: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A real moving sprite, ``size`` = (width, height)."""
    return render_motion_clip("translate_right", "studio", np.random.default_rng(seed), num_frames=num_frames, size=size)


def _noise(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smoothly drifting bars: cheap to render at any size (render_motion_clip is slow at 4K)."""
    columns = np.arange(width, dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        wave = 127 + 120 * np.sin((columns[None, :] + 6 * t + 0.5 * rows) / max(8.0, width / 40))
        out[t] = wave.astype(np.uint8)[..., None]
    return out


def write_audio_only(path: str | Path, seconds: float = 0.5, sample_rate: int = 16000) -> Path:
    """An ``.mp4`` holding one AAC audio stream (a sine tone) and no video stream."""
    import av

    path = Path(path)
    samples = int(seconds * sample_rate)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / sample_rate)).astype(np.float32)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, samples, frame_size):
            chunk = tone[start:start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts, frame.time_base = start, Fraction(1, sample_rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_hostile_folder(root: str | Path, fps: float = 12) -> list[HostileCase]:
    """Write every hostile / odd entry under ``root`` (labels = sub-folder names); return the cases."""
    root = Path(root)
    valid, bad, odd = root / "valid", root / "broken", root / "odd"
    for folder in (valid, bad, odd):
        folder.mkdir(parents=True, exist_ok=True)
    cases: list[HostileCase] = []

    def add(name, path, expect, reason="", description=""):
        cases.append(HostileCase(name, str(path), expect, reason, description))

    # --- ordinary videos the run must still finish
    for index in range(2):
        path = write_video(valid / f"plain_{index}.mp4", _motion(24, (64, 48), seed=index), fps)
        add(f"plain_{index}", path, "embedded", description="ordinary 64x48 H.264 video, 24 frames")

    # --- valid but odd: all must be embedded
    add("one_frame", write_video(odd / "one_frame.mp4", _motion(1, (64, 48)), fps), "embedded",
        description="a 1-frame video (padded to a clip)")
    add("uhd_4k", write_video(odd / "uhd_4k.mp4", _noise(3, 2160, 3840), fps, preset="ultrafast"), "embedded",
        description="3840x2160, 3 frames")
    add("tall_16x1000", write_video(odd / "tall_16x1000.mp4", _noise(12, 1000, 16), fps), "embedded",
        description="16 wide x 1000 high")
    add("wide_1000x16", write_video(odd / "wide_1000x16.mp4", _noise(12, 16, 1000), fps), "embedded",
        description="1000 wide x 16 high")
    add("rotated_90", write_video(odd / "rotated_90.mp4", _motion(24, (64, 48)), fps, display_rotation=90),
        "embedded", description="display rotation 90 degrees (phone video)")
    vfr_times = np.cumsum(np.r_[0.0, np.tile([0.02, 0.1, 0.05], 10)[:23]])
    add("variable_frame_rate", write_video(odd / "variable_frame_rate.mp4", _motion(24, (64, 48)), fps,
                                           timestamps_s=vfr_times), "embedded",
        description="variable frame rate (frame gaps 20/100/50 ms)")
    unicode_dir = root / "ünïcödé labels 日本"
    unicode_dir.mkdir(exist_ok=True)
    add("unicode_spaces", write_video(unicode_dir / "vidéo avec espaces 動き.mp4", _motion(24, (64, 48), seed=5), fps),
        "embedded", description="unicode and spaces in folder and file name")

    # --- broken files: each must be skipped with its reason, the run goes on
    zero = bad / "zero_bytes.mp4"
    zero.write_bytes(b"")
    add("zero_bytes", zero, "failed", "empty (0 bytes)", "a zero-byte file")
    source = write_video(bad / "_source.tmp.mp4", _motion(24, (64, 48), seed=9), fps)
    data = source.read_bytes()
    truncated = bad / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # the moov atom (written last) is cut off
    source.unlink()
    add("truncated", truncated, "failed", "truncated", "the first half of a valid mp4")
    text = bad / "text_file.mp4"
    text.write_text("<html><body>404 Not Found</body></html>\n" * 20)
    add("text_as_mp4", text, "failed", "holds text", "an HTML error page saved as .mp4")
    add("audio_only", write_audio_only(bad / "audio_only.mp4"), "failed", "audio only",
        "an .mp4 with one AAC audio stream, no video")
    fifo = bad / "named_pipe.mp4"
    os.mkfifo(fifo)
    add("fifo_as_mp4", fifo, "failed", "not a regular file",
        "a FIFO named .mp4 (opening it for reading would block forever)")
    if not IS_ROOT:
        locked = write_video(bad / "no_permission.mp4", _motion(8, (64, 48)), fps)
        locked.chmod(0)
        add("permission_denied", locked, "failed", "permission denied", "chmod 000 file")

    # --- entries discovery reports
    (odd / "folder_named_like.mp4").mkdir(exist_ok=True)
    add("directory_named_mp4", odd / "folder_named_like.mp4", "discover", "directory named like a video",
        "a directory called folder_named_like.mp4")
    (odd / "loop").symlink_to(root, target_is_directory=True)
    add("symlink_loop_dir", odd / "loop", "discover", "symlink loop", "a folder symlink pointing at the root")
    (bad / "loop_a.mp4").symlink_to(bad / "loop_b.mp4")
    (bad / "loop_b.mp4").symlink_to(bad / "loop_a.mp4")
    add("symlink_loop_file", bad / "loop_a.mp4", "discover", "symlink loop", "two .mp4 symlinks pointing at each other")
    add("symlink_loop_file_2", bad / "loop_b.mp4", "discover", "symlink loop", "the other link of that pair")
    (bad / "dangling.mp4").symlink_to(bad / "deleted_long_ago.mp4")
    add("dangling_symlink", bad / "dangling.mp4", "discover", "no such file", "a symlink to a file that is gone")
    return cases


# ----------------------------------------------------------------------------- the CLI, as a user runs it
CLI_TIMEOUT_S = 180


def cli(*args: str, timeout: float = CLI_TIMEOUT_S):
    """Run ``python -m motionmatch.cli ARGS`` in a subprocess, with a timeout (nothing may hang the suite)
    and without progress bars; returns the ``subprocess.CompletedProcess``."""
    import subprocess
    import sys

    from motionmatch.config import PROJECT_ROOT

    env = dict(os.environ, TQDM_DISABLE="1")
    return subprocess.run([sys.executable, "-m", "motionmatch.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT_ROOT, env=env)


def cli_ok(*args: str) -> str:
    """``cli`` that must succeed; returns its stdout (the failure message shows both streams)."""
    done = cli(*args)
    assert done.returncode == 0, f"motionmatch {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


# ----------------------------------------------------------------------------- the robustness tally
TALLY_ENV_VAR = "MOTIONMATCH_TALLY"  # a JSON-lines file; the robustness tests append one line per check


def record_tally(section: str, case: str, outcome: str, rows: str = "") -> None:
    """Append one measured outcome to ``$MOTIONMATCH_TALLY`` (no-op when the variable is unset).

    ``section`` groups lines in the table (e.g. "input", "fault"); ``outcome`` and ``rows`` are
    written from values the test measured, never from constants.
    """
    import json

    target = os.environ.get(TALLY_ENV_VAR)
    if not target:
        return
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"section": section, "case": case, "outcome": outcome, "rows": rows},
                                ensure_ascii=False) + "\n")


def format_tally(path: str | Path) -> str:
    """The tally file as Markdown tables, one per section, in the order lines were written."""
    import json

    lines = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    sections: dict[str, list[dict]] = {}
    for line in lines:
        sections.setdefault(line["section"], []).append(line)
    out = []
    for section, entries in sections.items():
        out += [f"### {section}", "", "| case | outcome | rows checked |", "|---|---|---|"]
        for entry in entries:
            cells = [str(entry[key]).replace("|", "\\|").replace("\n", "\\n") for key in ("case", "outcome", "rows")]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # python tests/hostile.py TALLY.jsonl -> Markdown tables
    import sys

    print(format_tally(sys.argv[1]))


def decode_or_die(path: str, spec):
    """A decode job for ``motionmatch.extract.workers.iter_decoded`` whose worker process dies on files named
    ``*crash*`` (as a decoder segfault or the OOM killer would kill it) and decodes all others for real."""
    from motionmatch.extract.workers import decode_job

    if "crash" in Path(path).name:
        os._exit(139)
    return decode_job(path, spec)
