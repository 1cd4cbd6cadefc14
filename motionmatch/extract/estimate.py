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
PREFIX = "estimate: "  # the estimate's first line starts with this; its advice lines are indented by two spaces
# (motionmatch.report.notebooks.EstimateEcho relies on both to pass the estimate from a notebook to the terminal)


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
    """Estimate an extraction's total time from its first encoded video; print it once.

    ``total_clips`` is what the run will embed; ``device`` is where the encoder runs (``cpu``
    or ``cuda``). ``observe(clips, seconds)`` is called after every encoder call with the clips
    just embedded and the encoder's time; the first call prints (and returns) the estimate, later
    calls return None. The estimate uses the wall time since the estimate was created (the start
    of the loop), so decoding the first video counts too; ``seconds`` is shown as the encoder's
    share. The first video also pays warm-up (first kernels, ``torch.compile``), so it errs high.
    """

    total_clips: int
    encoder_id: str
    device: str = "cpu"
    frames_per_clip: int = 0
    clips_per_video: int = 0
    videos: int = 0
    long_run_s: float | None = None  # past this many seconds, print advice; None = LONG_RUN_S (read when used)
    print_fn: Callable[[str], None] = print
    started: float = field(default_factory=time.perf_counter)
    message: str | None = None
    seconds_per_clip: float | None = None
    estimated_total_s: float | None = None
    setup_s: float = 0.0  # per-video work before the first clip (dense mode: shot detection), spread over its clips
    setup_clips: int = 0

    def note_setup(self, seconds: float, clips: int) -> None:
        """The first video spent ``seconds`` before any clip (planning its ``clips`` windows: shot detection).

        That cost grows with the video, not with each clip of the first batch, so the estimate spreads it
        over the video's ``clips`` instead of charging it to the first batch. Ignored once the estimate is out.
        """
        if self.message is None and clips > 0:
            self.setup_s, self.setup_clips = float(seconds), int(clips)

    def observe(self, clips: int, seconds: float) -> str | None:
        """Print the estimate after the first encoder call (``clips`` embedded in ``seconds``); None afterwards."""
        if self.message is not None or clips <= 0 or self.total_clips <= 0:
            return None
        elapsed = max(float(seconds), time.perf_counter() - self.started - self.setup_s)  # decode + encode
        setup_per_clip = self.setup_s / self.setup_clips if self.setup_clips else 0.0
        self.seconds_per_clip = elapsed / clips + setup_per_clip
        self.estimated_total_s = self.seconds_per_clip * self.total_clips
        text = (f"{PREFIX}the first {clips} clip(s) took {elapsed:.2f} s, {seconds:.2f} s of it in the encoder "
                f"({self.seconds_per_clip:.3f} s/clip on {self.device}, {self.encoder_id}); {self.total_clips} clips "
                f"in all -> about {format_duration(self.estimated_total_s)}")
        if self.setup_clips:
            text += (f" (planning the first video took {self.setup_s:.2f} s for its {self.setup_clips} windows: "
                     f"{setup_per_clip:.3f} s/clip of the above)")
        if self.estimated_total_s > self.threshold_s:
            text += "\n" + self.advice()
        self.message = text
        self.print_fn(text)
        return text

    @property
    def threshold_s(self) -> float:
        """Seconds past which the run counts as long: ``long_run_s``, else the module's LONG_RUN_S."""
        return float(LONG_RUN_S if self.long_run_s is None else self.long_run_s)

    def advice(self) -> str:
        """What to change when the run is too long: fewer videos, fewer clips, fewer frames, or a GPU.

        Each line names the notebook / ``motionmatch report --param`` parameter and the
        ``motionmatch extract`` option, since either may have started the run.
        """
        lines = [f"  this run is long (more than {format_duration(self.threshold_s)}). To shrink it:"]
        if self.videos:
            lines.append(f"    - fewer videos ({self.videos} now): a smaller sample "
                         "(`--param sample_videos_per_class=4`, or `motionmatch generate-sample --videos-per-class 4`) "
                         "or a smaller manifest")
        if self.clips_per_video:
            lines.append(f"    - fewer clips per video ({self.clips_per_video} now; the time scales with it): "
                         "`--param clips_per_video=1` (`motionmatch extract --clips-per-video 1`)")
        if self.frames_per_clip:
            lines.append(f"    - fewer frames per clip ({self.frames_per_clip} now; V-JEPA 2's cost grows with the "
                         "frames): `--param frames_per_clip=16` (`motionmatch extract --frames-per-clip 16`)")
        if not str(self.device).startswith("cuda"):
            lines.append("    - a CUDA GPU: the encoder runs there automatically (bf16, SDPA); install a CUDA build of "
                         "torch (README, 'GPU') — a GPU is tens to hundreds of times faster than this CPU")
        lines.append("    finished videos are kept: stop now (Ctrl-C) and rerun with smaller settings in a new output "
                     "folder, or let it run and resume later")
        return "\n".join(lines)
