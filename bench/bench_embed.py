"""Embedding throughput: the model-card way against MotionMatch's pipeline, same model, one run.

Both paths embed the same locally generated videos (``motionmatch.data.synthetic``) with the same
randomly initialised V-JEPA 2 weights (same seed), so their clips/s are directly comparable and
their embeddings must agree:

* **naive** (the model card): per video, decode its clips; per clip, preprocess on the CPU with
  transformers' ``VJEPA2VideoProcessor`` when it works here, else a numpy/PIL re-implementation of
  its steps (PIL bilinear shortest-edge resize, centre crop, ``(x/255 - mean) / std``; which one ran
  is reported), then ``model(pixel_values_videos=...)`` with the predictor running, batch 1, fp32,
  ``attn_implementation="eager"``, under ``torch.no_grad()``.
* **pipeline**: ``motionmatch.extract.local.extract_embeddings`` with ``VJEPA2Encoder`` wrapping the same
  weights (SDPA, predictor skipped, clips of a video batched, preprocessing in torch, decoding in a
  spawned worker process ahead of the encoder), parquet parts written as in production.
* **encoder alone** on pre-decoded clips, to split the pipeline's time into decode / preprocess / model.
* **torch.compile** of the encoder, in a child process with a time limit (reported as skipped when the
  compile does not finish in time, or in ``--quick`` mode).

The two paths run alternately ``--rounds`` times and the fastest round of each is kept (the machine
may be shared; the load average at the start is printed). The agreement check compares, per clip,
the mean-pooled encoder output of the naive path (``last_hidden_state``, the encoder's tensor even when
the predictor runs) with the pipeline's stored embedding, next to the cosine between *different* clips
(a random-weight model maps everything close together, so that baseline shows what the agreement means).

Accelerator section (``--gpu``, or automatically when CUDA is available): the real ViT-L fpc64-256
architecture (``VJEPA2Config()`` defaults, random weights) in bf16: clips/s of the pipeline, the encoder
alone at batch sizes 1-16 with peak memory, MFU against the encoder's FLOPs per clip (11.6 TFLOP for
ViT-L fpc64-256) and the GPU's dense bf16 peak, decode / preprocess / model split, the naive path on
the GPU, and the cosine between bf16 and fp32 embeddings.

Usage::

    python -m bench.bench_embed --quick   # 8 videos, one round, < 1 minute on 2 cores
    python -m bench.bench_embed           # 24 videos, two rounds, torch.compile attempt, < 4 minutes
    python -m bench.bench_embed --gpu     # adds the ViT-L section (needs CUDA)

Prints markdown tables and writes ``bench/out/embed.json``. ``main(argv) -> dict`` for notebooks.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
PROJECT_ROOT = BENCH_DIR.parent

# A small V-JEPA 2 for the CPU run. The predictor keeps the real checkpoint's proportions
# (ViT-L: 24 encoder layers of width 1024, 12 predictor layers of width 384).
CPU_MODEL = dict(crop_size=128, patch_size=16, frames_per_clip=16, tubelet_size=2, hidden_size=256,
                 num_hidden_layers=6, num_attention_heads=4, mlp_ratio=4.0, pred_hidden_size=96,
                 pred_num_hidden_layers=3, pred_num_attention_heads=4, pred_num_mask_tokens=10)
# Microscopic, for the smoke test (structure only).
TINY_MODEL = dict(crop_size=32, patch_size=16, frames_per_clip=4, tubelet_size=2, hidden_size=32,
                  num_hidden_layers=1, num_attention_heads=2, mlp_ratio=1.0, pred_hidden_size=16,
                  pred_num_hidden_layers=1, pred_num_attention_heads=2, pred_num_mask_tokens=2)
GPU_MODEL: dict = {}  # VJEPA2Config() defaults: ViT-L, patch 16, tubelet 2, 64 frames, crop 256
MODELS = {"cpu": CPU_MODEL, "tiny": TINY_MODEL, "vitl": GPU_MODEL}
VITL_TFLOP_PER_CLIP = 11.6  # encoder forward, ViT-L fpc64-256 (encoder_tflop_per_clip(VJEPA2Config()) agrees)
# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), matched against torch.cuda.get_device_name(); first match wins.
GPU_PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
                        ("GH200", 989.0), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0),
                        ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0))
SEED = 0
VIDEO_FPS = 24


# ----------------------------------------------------------------------------- shared helpers
def load_average() -> str:
    """The 1/5/15-minute load averages and the core count, so readers can judge timing noise."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def generate_videos(folder: Path, count: int, size: tuple[int, int] = (160, 120), num_frames: int = 48,
                    seed: int = SEED) -> list[Path]:
    """``count`` labelled synthetic H.264 videos (motion classes and domains in turn) in ``folder``."""
    from motionmatch.data.synthetic import DOMAINS, MOTION_CLASSES, render_motion_clip
    from motionmatch.video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        motion = MOTION_CLASSES[index % len(MOTION_CLASSES)]
        domain = DOMAINS[(index // len(MOTION_CLASSES)) % len(DOMAINS)]
        path = folder / f"{index:04d}_{motion}_{domain}.mp4"
        write_video(path, render_motion_clip(motion, domain, rng, num_frames=num_frames, size=size), fps=VIDEO_FPS)
        paths.append(path)
    return paths


def manifest_for(paths: Sequence[Path]):
    """A manifest DataFrame for generated videos (label = the motion in the file name)."""
    import pandas as pd

    return pd.DataFrame({"path": [str(p) for p in paths], "label": [p.stem.split("_", 1)[1] for p in paths],
                         "domain": "bench", "group": [p.stem for p in paths], "split": ""})


def build_model(model_kwargs: dict, attn_implementation: str, seed: int = SEED):
    """A randomly initialised VJEPA2Model; the same seed gives the same weights whatever the attention kernel."""
    import torch
    from transformers import VJEPA2Config, VJEPA2Model

    config = VJEPA2Config(**model_kwargs)
    config._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VJEPA2Model(config).eval()


def wrap_encoder(model, device: str, precision: str, attn_implementation: str, compile_model: bool = False):
    """MotionMatch's VJEPA2Encoder around an already built model."""
    from motionmatch.encoders.vjepa2 import VJEPA2Encoder, VJEPA2Settings

    settings = VJEPA2Settings(model_id=f"bench-random-seed{SEED}", device=device, precision=precision,
                              attn_implementation=attn_implementation, compile=compile_model)
    return VJEPA2Encoder(model, settings)


def encoder_tflop_per_clip(config) -> float:
    """Forward FLOPs of the V-JEPA 2 encoder for one clip (multiply-add = 2 FLOPs), in TFLOP.

    Per layer and token: 2 * (4 d^2 attention projections + 2 * mlp_ratio * d^2 MLP), plus 4 * N * d
    for the attention scores and their weighted sum; plus the tubelet patch embedding.
    """
    tokens = (config.frames_per_clip // config.tubelet_size) * (config.crop_size // config.patch_size) ** 2
    width, mlp = config.hidden_size, config.mlp_ratio
    per_layer = tokens * 2 * (4 + 2 * mlp) * width ** 2 + 4 * tokens ** 2 * width
    patch = 2 * tokens * width * 3 * config.tubelet_size * config.patch_size ** 2
    return (config.num_hidden_layers * per_layer + patch) / 1e12


def peak_bf16_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by name (None when unknown: MFU is then not computed)."""
    for key, tflops in GPU_PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops
    return None


def synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) matrices."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def mean_offdiagonal_cosine(vectors: np.ndarray) -> float:
    """Mean cosine between different rows: the baseline an agreement cosine must beat."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    n = len(unit)
    return float((similarity.sum() - np.trace(similarity)) / max(1, n * (n - 1)))


# ----------------------------------------------------------------------------- the naive path
class ModelCardPreprocessor:
    """The model card's CPU preprocessing of one clip -> ``{"pixel_values_videos": (1, T, 3, S, S) float32}``.

    Uses transformers' ``VJEPA2VideoProcessor`` when it runs here (it needs torchvision); otherwise a
    numpy/PIL re-implementation of its steps with its default values. ``kind`` says which one ran.
    """

    def __init__(self, crop_size: int):
        from motionmatch.encoders.vjepa2 import default_processor_values

        self.values = default_processor_values(crop_size)
        self.processor = None
        try:
            from transformers.models.vjepa2.video_processing_vjepa2 import VJEPA2VideoProcessor

            processor = VJEPA2VideoProcessor(crop_size=crop_size)
            processor(np.zeros((2, 32, 32, 3), dtype=np.uint8), return_tensors="pt")
            self.processor = processor
            self.kind = "transformers VJEPA2VideoProcessor"
        except Exception as err:  # noqa: BLE001 - any failure means: use the re-implementation
            self.kind = (f"numpy/PIL re-implementation (transformers' VJEPA2VideoProcessor does not run here: "
                         f"{type(err).__name__}: {str(err)[:80]})")

    def __call__(self, clip: np.ndarray) -> dict:
        import torch

        if self.processor is not None:
            return dict(self.processor(clip, return_tensors="pt"))
        return {"pixel_values_videos": torch.from_numpy(self._pil(clip))[None]}

    def _pil(self, clip: np.ndarray) -> np.ndarray:
        from PIL import Image

        from motionmatch.encoders.preprocessing import shortest_edge_size

        values = self.values
        height, width = clip.shape[1:3]
        new_height, new_width = shortest_edge_size(height, width, values.resize_shortest_edge)
        crop = values.crop_size
        top, left = int((new_height - crop) / 2.0), int((new_width - crop) / 2.0)
        mean = np.asarray(values.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(values.std, dtype=np.float32)[:, None, None]
        frames = []
        for frame in clip:
            resized = np.asarray(Image.fromarray(frame).resize((new_width, new_height), Image.BILINEAR))
            cropped = resized[top:top + crop, left:left + crop].transpose(2, 0, 1).astype(np.float32)
            frames.append((cropped * values.rescale_factor - mean) / std)
        return np.stack(frames)


@dataclass
class PathRun:
    """One timed pass of one path over the videos."""

    path: str
    clips: int
    wall_s: float
    decode_s: float | None = None
    preprocess_s: float | None = None
    model_s: float | None = None
    note: str = ""
    embeddings: dict = field(default_factory=dict, repr=False)  # (video_path, clip_index) -> pooled vector

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.wall_s if self.wall_s > 0 else float("nan")


def run_naive(paths: Sequence[Path], spec, model, preprocessor: ModelCardPreprocessor, device: str = "cpu") -> PathRun:
    """The model card: per clip, CPU preprocessing then ``model(**inputs)`` (predictor on), batch 1."""
    import torch

    from motionmatch.video.clips import sample_clips

    run = PathRun("naive", 0, 0.0, 0.0, 0.0, 0.0, note=preprocessor.kind)
    started = time.perf_counter()
    for path in paths:
        tick = time.perf_counter()
        clips = sample_clips(path, spec)
        run.decode_s += time.perf_counter() - tick
        for clip in clips:
            tick = time.perf_counter()
            inputs = {k: v.to(device) for k, v in preprocessor(clip.frames).items()}
            synchronize(device)
            run.preprocess_s += time.perf_counter() - tick
            tick = time.perf_counter()
            with torch.no_grad():
                outputs = model(**inputs)
                pooled = outputs.last_hidden_state.mean(dim=1)[0].float().cpu().numpy()
            run.model_s += time.perf_counter() - tick
            run.embeddings[(str(path), clip.window.clip_index)] = pooled
            run.clips += 1
    run.wall_s = time.perf_counter() - started
    return run


# ----------------------------------------------------------------------------- the MotionMatch paths
def run_pipeline(paths: Sequence[Path], spec, encoder, out_dir: Path, batch_size: int, workers: int | None) -> PathRun:
    """``extract_embeddings`` end to end (decode worker, preprocessing, encoder, parquet parts)."""
    from motionmatch.extract.local import default_decode_workers, extract_embeddings
    from motionmatch.table import load_embeddings

    workers = default_decode_workers() if workers is None else workers
    started = time.perf_counter()
    summary = extract_embeddings(manifest_for(paths), encoder, out_dir, clip_spec=spec, batch_size=batch_size,
                                 workers=workers, overwrite=True, progress=False)
    wall = time.perf_counter() - started
    if summary.failed:
        raise RuntimeError(f"the pipeline failed on {summary.failed} video(s): {summary.failures[:3]}")
    table = load_embeddings(out_dir)
    run = PathRun("pipeline", int(summary.clips_embedded), wall,
                  note=f"extract_embeddings, workers={workers}, batch_size={batch_size} (one video per call: "
                       f"{min(batch_size, spec.clips_per_video)} clips)")
    run.embeddings = {(row.video_path, int(row.clip_index)): np.asarray(row.embedding)
                      for row in table.itertuples(index=False)}
    return run


def decode_all(paths: Sequence[Path], spec) -> tuple[list, float]:
    """All clips of all videos, decoded serially in this process, and the seconds it took."""
    from motionmatch.video.clips import sample_clips

    started = time.perf_counter()
    clips = [clip for path in paths for clip in sample_clips(path, spec)]
    return clips, time.perf_counter() - started


def run_encoder_alone(clips: list, decode_s: float, encoder, batch_size: int) -> PathRun:
    """The encoder on pre-decoded clips, batch by batch, timing preprocessing and the model apart."""
    import torch

    run = PathRun("encoder alone", len(clips), 0.0, decode_s, 0.0, 0.0,
                  note=f"pre-decoded clips, batch_size={batch_size}; wall excludes decode")
    frames = [clip.frames for clip in clips]
    pooled = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            tick = time.perf_counter()
            pixel_values = encoder.preprocess(frames[start:start + batch_size]).to(encoder.dtype)
            synchronize(encoder.device)
            run.preprocess_s += time.perf_counter() - tick
            tick = time.perf_counter()
            hidden = encoder._forward(pixel_values_videos=pixel_values, skip_predictor=True).last_hidden_state
            pooled.append(hidden.float().mean(dim=1).cpu().numpy())
            run.model_s += time.perf_counter() - tick
    run.wall_s = run.preprocess_s + run.model_s
    vectors = np.concatenate(pooled) if pooled else np.zeros((0, encoder.dim), np.float32)
    run.embeddings = {(clip.video_path, clip.window.clip_index): vector for clip, vector in zip(clips, vectors)}
    return run


def model_ablation(model_eager, model_sdpa, pixel_values, batch_size: int, device: str = "cpu") -> list[dict]:
    """Model-only seconds per clip for each change between the naive and the pipeline call."""
    import torch

    def per_clip(model, batch: int, skip_predictor: bool) -> float:
        with torch.inference_mode():
            model(pixel_values_videos=pixel_values[:batch], skip_predictor=skip_predictor)  # warm-up
            synchronize(device)
            tick = time.perf_counter()
            for start in range(0, len(pixel_values), batch):
                model(pixel_values_videos=pixel_values[start:start + batch], skip_predictor=skip_predictor)
            synchronize(device)
        return (time.perf_counter() - tick) / len(pixel_values)

    steps = [("eager, predictor on, batch 1 (naive)", model_eager, 1, False),
             ("eager, predictor skipped, batch 1", model_eager, 1, True),
             ("sdpa, predictor skipped, batch 1", model_sdpa, 1, True),
             (f"sdpa, predictor skipped, batch {batch_size} (pipeline)", model_sdpa, batch_size, True)]
    rows = []
    for label, model, batch, skip in steps:
        seconds = per_clip(model, batch, skip)
        rows.append({"model call": label, "ms_per_clip": 1000 * seconds})
    for row in rows:
        row["speedup_vs_naive"] = rows[0]["ms_per_clip"] / row["ms_per_clip"]
    return rows


# ----------------------------------------------------------------------------- torch.compile, in a child
def _compile_child(spec: dict) -> dict:
    """Runs in a subprocess: compile the encoder, time the compile and the compiled throughput."""
    from motionmatch.video.clips import ClipSpec

    clip_spec = ClipSpec(**spec["clip_spec"])
    clips, _ = decode_all([Path(p) for p in spec["paths"]], clip_spec)
    frames = [clip.frames for clip in clips]
    batch = spec["batch_size"]
    plain = wrap_encoder(build_model(spec["model"], "sdpa"), "cpu", "fp32", "sdpa")
    compiled = wrap_encoder(build_model(spec["model"], "sdpa"), "cpu", "fp32", "sdpa", compile_model=True)
    tick = time.perf_counter()
    compiled.encode(frames[:batch], batch_size=batch, progress=False)
    compile_s = time.perf_counter() - tick
    timings = {}
    for name, encoder in (("plain", plain), ("compiled", compiled)):
        encoder.encode(frames[:batch], batch_size=batch, progress=False)  # warm-up
        tick = time.perf_counter()
        vectors = encoder.encode(frames, batch_size=batch, progress=False)
        timings[name] = {"seconds": time.perf_counter() - tick, "vectors": vectors}
    return {"compile_s": compile_s, "clips": len(frames),
            "plain_clips_per_s": len(frames) / timings["plain"]["seconds"],
            "compiled_clips_per_s": len(frames) / timings["compiled"]["seconds"],
            "cosine_min": float(cosine_rows(timings["plain"]["vectors"], timings["compiled"]["vectors"]).min())}


def run_compile_variant(paths: Sequence[Path], spec, model_kwargs: dict, batch_size: int, timeout_s: float) -> dict:
    """torch.compile in a child process, killed after ``timeout_s`` (then reported as skipped)."""
    payload = json.dumps({"paths": [str(p) for p in paths], "clip_spec": asdict(spec), "model": model_kwargs,
                          "batch_size": batch_size})
    command = [sys.executable, "-m", "bench.bench_embed", "--compile-child", payload]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT)] + (
        [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=PROJECT_ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"skipped: compile + timing did not finish within {timeout_s:.0f} s "
                          f"(compile time > {timeout_s:.0f} s on this machine)"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return {"status": f"skipped: torch.compile failed after {time.perf_counter() - started:.0f} s: {last[:200]}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["status"] = f"ran: compile time {result['compile_s']:.1f} s"
    return result


# ----------------------------------------------------------------------------- the accelerator section
def accelerator_section(device: str, model_name: str, videos: int, video_size: tuple[int, int], num_frames: int,
                        clips_per_video: int, batch_sizes: Sequence[int], naive_clips: int, workers: int,
                        folder: Path) -> dict:
    """ViT-L on a GPU (or any model on any device, for the smoke test): throughput, MFU, memory, bf16 agreement."""
    import torch

    from motionmatch.video.clips import ClipSpec

    model_kwargs = MODELS[model_name]
    on_cuda = torch.device(device).type == "cuda"
    device_name = torch.cuda.get_device_name(torch.device(device)) if on_cuda else platform.processor() or "cpu"
    peak = peak_bf16_tflops(device_name) if on_cuda else None
    precision = "bf16" if on_cuda else "fp32"
    model = build_model(model_kwargs, "sdpa")
    tflop_per_clip = encoder_tflop_per_clip(model.config)
    if model_name == "vitl":
        tflop_per_clip = VITL_TFLOP_PER_CLIP
    encoder = wrap_encoder(model, device, precision, "sdpa")
    spec = ClipSpec(frames_per_clip=encoder.frames_per_clip, frame_stride=2, clips_per_video=clips_per_video)
    paths = generate_videos(folder / "videos", videos, size=video_size, num_frames=num_frames)

    def mfu(clips_per_s: float) -> float | None:
        return clips_per_s * tflop_per_clip / peak if peak else None

    # warm-up (kernel selection, allocator) on one batch
    clips, decode_s = decode_all(paths, spec)
    encoder.encode([c.frames for c in clips[:max(batch_sizes)]], batch_size=max(batch_sizes), progress=False)

    pipeline = run_pipeline(paths, spec, encoder, folder / "pipeline", batch_size=max(batch_sizes), workers=workers)
    alone = run_encoder_alone(clips, decode_s, encoder, batch_size=min(max(batch_sizes), clips_per_video))
    rows = [_run_row(pipeline, None, mfu), _run_row(alone, None, mfu)]

    by_batch = []
    frames = [c.frames for c in clips]
    with torch.inference_mode():
        for batch in batch_sizes:
            chosen = (frames * (-(-batch // len(frames))))[:batch]
            pixel_values = encoder.preprocess(chosen).to(encoder.dtype)
            if on_cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            encoder._forward(pixel_values_videos=pixel_values, skip_predictor=True)  # warm-up at this shape
            synchronize(device)
            repeats = max(1, 16 // batch)
            tick = time.perf_counter()
            for _ in range(repeats):
                encoder._forward(pixel_values_videos=pixel_values, skip_predictor=True)
            synchronize(device)
            clips_per_s = batch * repeats / (time.perf_counter() - tick)
            by_batch.append({"batch": batch, "clips_per_s": clips_per_s, "mfu": mfu(clips_per_s),
                             "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda else None})
            del pixel_values

    # bf16 vs fp32 on the same weights
    check = frames[:min(8, len(frames))]
    reference = wrap_encoder(copy.deepcopy(encoder.model).float(), device, "fp32", "sdpa")
    agreement = cosine_rows(encoder.encode(check, batch_size=4, progress=False),
                            reference.encode(check, batch_size=4, progress=False))
    del reference

    naive_row = None
    if naive_clips > 0:
        try:
            naive_model = build_model(model_kwargs, "eager").to(device)
            naive = run_naive(paths[:max(1, -(-naive_clips // clips_per_video))], spec, naive_model,
                              ModelCardPreprocessor(model.config.crop_size), device=device)
            naive_row = _run_row(naive, None, mfu)
            del naive_model
        except torch.cuda.OutOfMemoryError as err:
            naive_row = {"path": "naive", "note": f"out of memory: {str(err)[:120]}"}
        if on_cuda:
            torch.cuda.empty_cache()
    if naive_row is not None:
        rows.insert(0, naive_row)
        for row in rows[1:]:
            if naive_row.get("clips_per_s"):
                row["vs_naive"] = row["clips_per_s"] / naive_row["clips_per_s"]
    return {"device": device_name, "model": model_name, "precision": precision, "tflop_per_clip": tflop_per_clip,
            "peak_bf16_tflops": peak, "clip_spec": asdict(spec), "videos": len(paths), "workers": workers,
            "rows": rows, "by_batch": by_batch,
            "bf16_vs_fp32_cosine": {"min": float(agreement.min()), "mean": float(agreement.mean())}}


def gpu_targets(accelerator: dict | None) -> dict:
    """The issue's GPU targets, judged on the accelerator section (not measured when it did not run)."""
    rule_rate = "GPU (ViT-L fpc64-256): end to end, decoding included, >= 30 clips/s"
    rule_ratio = "GPU (ViT-L fpc64-256): pipeline >= 3x the naive path"
    if not accelerator or accelerator.get("model") != "vitl":
        note = "not measured: no CUDA device in this run (`python -m bench.bench_embed --gpu` on a GPU machine)"
        return {"gpu_clips_per_s": {"target": rule_rate, "measured": note, "passed": None},
                "gpu_vs_naive": {"target": rule_ratio, "measured": note, "passed": None}}
    pipeline = next(row for row in accelerator["rows"] if row["path"] == "pipeline")
    rate, mfu = pipeline["clips_per_s"], pipeline.get("mfu")
    ratio = pipeline.get("vs_naive")
    return {"gpu_clips_per_s": {"target": rule_rate,
                                "measured": f"{rate:.1f} clips/s" + (f", MFU {mfu:.0%}" if mfu else ""),
                                "passed": bool(rate >= 30)},
            "gpu_vs_naive": {"target": rule_ratio, "measured": f"{ratio:.2f}x" if ratio else "naive path did not run",
                             "passed": bool(ratio >= 3) if ratio else None}}


def _run_row(run: PathRun, naive: PathRun | None, mfu=None) -> dict:
    row = {"path": run.path, "clips": run.clips, "wall_s": run.wall_s, "clips_per_s": run.clips_per_s,
           "decode_s": run.decode_s, "preprocess_s": run.preprocess_s, "model_s": run.model_s, "note": run.note}
    if naive is not None:
        row["vs_naive"] = run.clips_per_s / naive.clips_per_s
    if mfu is not None:
        row["mfu"] = mfu(run.clips_per_s)
    return row


# ----------------------------------------------------------------------------- tables
def _number(value, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, fmt)


def paths_table(rows: list[dict]) -> str:
    with_mfu = any("mfu" in row for row in rows)
    lines = ["| path | clips | wall s | clips/s | vs naive | decode s | preprocess s | model s |"
             + (" MFU |" if with_mfu else "") + " note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if with_mfu else "") + "---|"]
    for row in rows:
        mfu_cell = f" {_number(row.get('mfu'), '.1%')} |" if with_mfu else ""
        lines.append(f"| {row['path']} | {row.get('clips', '')} | {_number(row.get('wall_s'), '.2f')} | "
                     f"{_number(row.get('clips_per_s'), '.2f')} | "
                     f"{_number(row.get('vs_naive'), '.2f') + 'x' if row.get('vs_naive') else '–'} | "
                     f"{_number(row.get('decode_s'), '.2f')} | {_number(row.get('preprocess_s'), '.2f')} | "
                     f"{_number(row.get('model_s'), '.2f')} |{mfu_cell} {row.get('note', '')} |")
    return "\n".join(lines)


def ablation_table(rows: list[dict]) -> str:
    lines = ["| model call (same weights, same inputs) | ms/clip | speed-up vs naive call |", "|---|---:|---:|"]
    lines += [f"| {r['model call']} | {r['ms_per_clip']:.1f} | {r['speedup_vs_naive']:.2f}x |" for r in rows]
    return "\n".join(lines)


def accelerator_tables(section: dict) -> str:
    head = (f"Device: {section['device']}; model {section['model']} ({section['precision']}), "
            f"{section['tflop_per_clip']:.3g} TFLOP per clip, peak {_number(section['peak_bf16_tflops'], '.0f')} "
            f"TFLOP/s bf16 dense; {section['videos']} videos, clips {section['clip_spec']}, workers={section['workers']}.")
    batch = ["| batch | clips/s | MFU | peak memory GiB |", "|---:|---:|---:|---:|"]
    batch += [f"| {r['batch']} | {r['clips_per_s']:.2f} | {_number(r['mfu'], '.1%')} | "
              f"{_number(r['peak_memory_gib'], '.2f')} |" for r in section["by_batch"]]
    cosine = section["bf16_vs_fp32_cosine"]
    return "\n\n".join([head, paths_table(section["rows"]), "\n".join(batch),
                        f"bf16 vs fp32 embeddings (same weights): cosine min {cosine['min']:.4f}, "
                        f"mean {cosine['mean']:.4f}"])


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_embed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 videos, one round, no torch.compile (< 1 minute)")
    parser.add_argument("--videos", type=int, default=None, help="generated videos for the CPU run (24; quick 8)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds of naive/pipeline (2; quick 1)")
    parser.add_argument("--model", choices=sorted(MODELS), default="cpu", help="the CPU run's model size")
    parser.add_argument("--workers", type=int, default=None,
                        help="decode worker processes of the pipeline (default: the package's, default_decode_workers())")
    parser.add_argument("--compile-timeout-s", type=float, default=None,
                        help="time limit of the torch.compile child (100; 0 or --quick skips it)")
    parser.add_argument("--gpu", action="store_true", help="run the accelerator section (default: when CUDA is there)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the accelerator section even when CUDA is there")
    parser.add_argument("--gpu-device", default="cuda", help=argparse.SUPPRESS)  # "cpu" lets the smoke test run it
    parser.add_argument("--gpu-model", choices=sorted(MODELS), default="vitl", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "embed.json", help="where to write the JSON results")
    parser.add_argument("--compile-child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print markdown tables; write bench/out/embed.json; return the results."""
    import torch

    from motionmatch.video.clips import ClipSpec

    args = parse_args(argv)
    if args.compile_child:
        result = _compile_child(json.loads(args.compile_child))
        print(json.dumps(result))
        return result
    started = time.perf_counter()
    load = load_average()
    print(f"[embed] {load}", file=sys.stderr, flush=True)
    quick = args.quick
    n_videos = args.videos or (8 if quick else 24)
    rounds = args.rounds or (1 if quick else 2)
    compile_timeout = 0.0 if quick else (100.0 if args.compile_timeout_s is None else args.compile_timeout_s)
    model_kwargs = MODELS[args.model]
    run_gpu = args.gpu or (torch.cuda.is_available() and not args.no_gpu)

    with tempfile.TemporaryDirectory(prefix="bench_embed_") as tmp:
        folder = Path(tmp)
        num_frames = max(48, (model_kwargs.get("frames_per_clip", 16) - 1) * 2 + 8)
        paths = generate_videos(folder / "videos", n_videos, num_frames=num_frames)
        model_eager = build_model(model_kwargs, "eager")
        model_sdpa = build_model(model_kwargs, "sdpa")
        same = all(torch.equal(a, b) for a, b in zip(model_eager.state_dict().values(), model_sdpa.state_dict().values()))
        if not same:
            raise RuntimeError("the eager and sdpa models do not hold the same weights; the comparison would be unfair")
        encoder = wrap_encoder(model_sdpa, "cpu", "fp32", "sdpa")
        spec = ClipSpec(frames_per_clip=encoder.frames_per_clip, frame_stride=2, clips_per_video=4)
        batch_size = 8
        preprocessor = ModelCardPreprocessor(model_sdpa.config.crop_size)
        print(f"[embed] {n_videos} videos, {rounds} round(s); naive preprocessing: {preprocessor.kind}",
              file=sys.stderr, flush=True)

        naive_runs, pipeline_runs = [], []
        for round_index in range(rounds):
            naive_runs.append(run_naive(paths, spec, model_eager, preprocessor))
            pipeline_runs.append(run_pipeline(paths, spec, encoder, folder / "pipeline", batch_size, args.workers))
            print(f"[embed] round {round_index + 1}: naive {naive_runs[-1].clips_per_s:.2f} clips/s, pipeline "
                  f"{pipeline_runs[-1].clips_per_s:.2f} clips/s ({load_average()})", file=sys.stderr, flush=True)
        naive = min(naive_runs, key=lambda r: r.wall_s)
        pipeline = min(pipeline_runs, key=lambda r: r.wall_s)
        clips, decode_s = decode_all(paths, spec)
        alone = run_encoder_alone(clips, decode_s, encoder, batch_size=min(batch_size, spec.clips_per_video))

        pixel_values = encoder.preprocess([c.frames for c in clips[:8 if quick else 16]])
        ablation = model_ablation(model_eager, model_sdpa, pixel_values, min(batch_size, spec.clips_per_video))

        keys = sorted(naive.embeddings)
        naive_vectors = np.stack([naive.embeddings[k] for k in keys])
        agreement = cosine_rows(naive_vectors, np.stack([pipeline.embeddings[k] for k in keys]))
        alone_agreement = cosine_rows(np.stack([alone.embeddings[k] for k in keys]),
                                      np.stack([pipeline.embeddings[k] for k in keys]))
        cosine = {"naive_vs_pipeline_min": float(agreement.min()), "naive_vs_pipeline_mean": float(agreement.mean()),
                  "encoder_alone_vs_pipeline_min": float(alone_agreement.min()),
                  "different_clips_mean": mean_offdiagonal_cosine(naive_vectors), "clips_compared": len(keys)}

        compile_result = ({"status": "skipped in --quick mode" if quick else "skipped: --compile-timeout-s 0"}
                          if compile_timeout <= 0 else
                          run_compile_variant(paths, spec, model_kwargs, min(batch_size, spec.clips_per_video),
                                              compile_timeout))
        accelerator = None
        if run_gpu:
            accelerator = accelerator_section(
                args.gpu_device, args.gpu_model, videos=4 if args.gpu_model == "tiny" else 16,
                video_size=(160, 120) if args.gpu_model == "tiny" else (320, 240),
                num_frames=48 if args.gpu_model == "tiny" else 192, clips_per_video=2 if args.gpu_model == "tiny" else 8,
                batch_sizes=(1, 2) if args.gpu_model == "tiny" else (1, 2, 4, 8, 16),
                naive_clips=2 if args.gpu_model == "tiny" else 8,
                workers=1 if args.gpu_model == "tiny" else max(1, min(4, (os.cpu_count() or 2) - 1)), folder=folder / "gpu")

    rows = [_run_row(naive, None), _run_row(pipeline, naive), _run_row(alone, naive)]
    ratio = pipeline.clips_per_s / naive.clips_per_s
    config = build_model(model_kwargs, "sdpa").config
    model_text = (f"V-JEPA 2, random weights: hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
                  f"crop {config.crop_size}, patch {config.patch_size}, {config.frames_per_clip} frames, predictor "
                  f"{config.pred_num_hidden_layers} x {config.pred_hidden_size}; "
                  f"{encoder_tflop_per_clip(config) * 1000:.2f} GFLOP per clip (encoder)")
    targets = {"pipeline_vs_naive": {
        "target": "CPU: pipeline >= 2x naive clips/s (same model)", "measured": f"{ratio:.2f}x",
        "passed": bool(ratio >= 2.0)}}
    targets.update(gpu_targets(accelerator))
    compile_text = compile_result["status"]
    if "compiled_clips_per_s" in compile_result:
        compile_text += (f"; encoder alone {compile_result['plain_clips_per_s']:.2f} -> "
                         f"{compile_result['compiled_clips_per_s']:.2f} clips/s "
                         f"({compile_result['compiled_clips_per_s'] / compile_result['plain_clips_per_s']:.2f}x), "
                         f"cosine min {compile_result['cosine_min']:.5f}")
    summary = "\n\n".join([
        f"Machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads; {load} at the start.",
        f"Model: {model_text}. Videos: {n_videos} x 160x120, {num_frames} frames; clips {asdict(spec)}; "
        f"best of {rounds} alternating round(s).",
        paths_table(rows),
        f"**pipeline / naive = {ratio:.2f}x** (target >= 2x: {'PASS' if ratio >= 2 else 'FAIL'}).",
        "Model call alone (what each change buys, on the same preprocessed clips):",
        ablation_table(ablation),
        f"Agreement over {len(keys)} clips: naive (PIL preprocessing, eager) vs pipeline embeddings cosine min "
        f"{cosine['naive_vs_pipeline_min']:.4f}, mean {cosine['naive_vs_pipeline_mean']:.4f}; encoder alone vs "
        f"pipeline min {cosine['encoder_alone_vs_pipeline_min']:.6f}; different clips mean "
        f"{cosine['different_clips_mean']:.4f} (baseline).",
        f"torch.compile: {compile_text}.",
        (accelerator_tables(accelerator) if accelerator else
         "Accelerator section: not run (no CUDA device here; run `python -m bench.bench_embed --gpu` on a CUDA machine)."),
    ])
    result = {
        "mode": "quick" if quick else "full",
        "command": "python -m bench.bench_embed " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                      else sys.argv[1:])),
        "load_average_at_start": load, "model": model_kwargs, "videos": n_videos, "rounds": rounds,
        "clip_spec": asdict(spec), "naive_preprocessing": preprocessor.kind, "rows": rows,
        "rounds_clips_per_s": {"naive": [r.clips_per_s for r in naive_runs],
                               "pipeline": [r.clips_per_s for r in pipeline_runs]},
        "pipeline_vs_naive": ratio, "ablation": ablation, "cosine": cosine, "compile": compile_result,
        "accelerator": accelerator, "targets": targets, "summary": summary,
    }
    result["seconds_total"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(summary)
    print(f"\n(embed bench: {result['seconds_total']:.0f} s; JSON: {args.out})")
    return result


if __name__ == "__main__":
    main()
