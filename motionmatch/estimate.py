"""How long an extraction will take, said after the first batch and before the rest.

On a machine without CUDA the real V-JEPA 2 ViT-L costs about a minute per 64-frame clip,
so a run that looks small can take days. :class:`ExtractionEstimate` times the first encoded
video, multiplies out, and prints the estimated total before going on. Past
``LONG_RUN_S`` it says plainly how to shrink the run, or where a GPU helps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

LONG_RUN_S = 30 * 60  # past this, the estimate says how to shrink the run


def format_duration(seconds: float) -> str:
    """``95`` -> ``'1 min 35 s'``; ``90000`` -> ``'1 d 1 h'``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"


@dataclass
class ExtractionEstimate:
    """Estimate an extraction's total time from its first timed batch; print it once.

    ``total_clips`` is what the run will embed; ``device`` is where the encoder runs (``cpu``
    or ``cuda``). ``observe(clips, seconds)`` is called after every encoder call; the first call
    prints (and returns) the estimate, later calls return None.
    """

    total_clips: int
    encoder_id: str
    device: str = "cpu"
    frames_per_clip: int = 0
    clips_per_video: int = 0
    videos: int = 0
    long_run_s: float = LONG_RUN_S
    print_fn: Callable[[str], None] = print
    started: float = field(default_factory=time.perf_counter)
    message: str | None = None
    seconds_per_clip: float | None = None
    estimated_total_s: float | None = None

    def observe(self, clips: int, seconds: float) -> str | None:
        if self.message is not None or clips <= 0 or self.total_clips <= 0:
            return None
        self.seconds_per_clip = seconds / clips
        self.estimated_total_s = self.seconds_per_clip * self.total_clips
        text = (f"estimate: the first {clips} clip(s) took {seconds:.2f} s ({self.seconds_per_clip:.3f} s/clip on "
                f"{self.device}, {self.encoder_id}); {self.total_clips} clips in all -> about "
                f"{format_duration(self.estimated_total_s)}")
        if self.estimated_total_s > self.long_run_s:
            text += "\n" + self.advice()
        self.message = text
        self.print_fn(text)
        return text

    def advice(self) -> str:
        """What to change when the run is too long: fewer videos, fewer clips, fewer frames, or a GPU."""
        lines = [f"this run is long (more than {format_duration(self.long_run_s)}). To shrink it:"]
        if self.videos:
            lines.append(f"  - fewer videos: a smaller sample (e.g. `motionmatch generate-sample --videos-per-class 4`) "
                         f"or a smaller manifest ({self.videos} videos now)")
        if self.clips_per_video:
            lines.append(f"  - fewer clips per video: --clips-per-video 1 (now {self.clips_per_video}; the time "
                         "scales with it)")
        if self.frames_per_clip:
            lines.append(f"  - fewer frames per clip: --frames-per-clip 16 (now {self.frames_per_clip}; V-JEPA 2's "
                         "cost grows with the frames)")
        if self.device != "cuda":
            lines.append("  - a CUDA GPU: the encoder runs there automatically (bf16, SDPA); install a CUDA build of "
                         "torch (README, 'GPU') — a GPU is tens to hundreds of times faster than this CPU")
        lines.append("  finished videos are kept: stop now (Ctrl-C) and rerun with smaller settings in a new --out, "
                     "or let it run and resume later")
        return "\n".join(lines)
