"""The paths bench_embed compares, and the model they share (see bench/bench_embed.py's docstring).

* the model: a randomly initialised V-JEPA 2 (:func:`build_model`, the same weights for the same seed whatever the
  attention kernel), MotionMatch's encoder around it (:func:`wrap_encoder`), its FLOPs per clip;
* the **naive** path (the model card: CPU preprocessing per clip, ``model(**inputs)`` with the predictor, batch 1),
  the **pipeline** (``extract_embeddings``, timed by stage: decode, encoder, part write, the rest), the **encoder
  alone** on pre-decoded clips, the model-call ablation and ``torch.compile`` (in a child process).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.harness import ChildFailed, StageTimers, manifest_for, run_child

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



# ----------------------------------------------------------------------------- the model
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
    write_s: float | None = None  # the pipeline's parquet parts (DataFrame, parquet, fsync)
    other_s: float | None = None  # the wall clock in none of the stages above
    videos: int = 0
    note: str = ""
    embeddings: dict = field(default_factory=dict, repr=False)  # (video_path, clip_index) -> pooled vector

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.wall_s if self.wall_s > 0 else float("nan")


def run_naive(paths: Sequence[Path], spec, model, preprocessor: ModelCardPreprocessor, device: str = "cpu") -> PathRun:
    """The model card: per clip, CPU preprocessing then ``model(**inputs)`` (predictor on), batch 1."""
    import torch

    from motionmatch.video.clips import sample_clips

    run = PathRun("naive", 0, 0.0, 0.0, 0.0, 0.0, videos=len(paths), note=preprocessor.kind)
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
    run.other_s = run.wall_s - run.decode_s - run.preprocess_s - run.model_s
    return run


# ----------------------------------------------------------------------------- the MotionMatch paths
def run_pipeline(paths: Sequence[Path], spec, encoder, out_dir: Path, batch_size: int, workers: int | None) -> PathRun:
    """``extract_embeddings`` end to end (decode, preprocessing, encoder, parquet parts), with the time spent
    inside each stage's own function: ``iter_decoded`` (decoding, fingerprint included; with workers, the wait
    for them), the encoder's ``preprocess`` and model call, ``write_part``; ``other_s`` is the rest."""
    import motionmatch.extract.local as local
    from motionmatch.extract import default_decode_workers
    from motionmatch.table import load_embeddings

    workers = default_decode_workers() if workers is None else workers
    timers = StageTimers({stage: time.thread_time for stage in ("decode", "preprocess", "model", "write")})
    restore = [timers.patch(local, "iter_decoded", "decode", iterator=True), timers.patch(local, "write_part", "write")]
    forward = encoder._forward  # noqa: SLF001 - the model call inside encode(), timed with a device sync (which
    # the pooling's .cpu() right after does anyway)

    def forward_synced(*args, **kwargs):
        out = forward(*args, **kwargs)
        synchronize(encoder.device)
        return out

    encoder.preprocess = timers.wrap("preprocess", encoder.preprocess)
    encoder._forward = timers.wrap("model", forward_synced)
    try:
        started = time.perf_counter()
        summary = local.extract_embeddings(manifest_for(paths), encoder, out_dir, clip_spec=spec,
                                           batch_size=batch_size, workers=workers, overwrite=True, progress=False,
                                           print_fn=lambda *_: None)
        wall = time.perf_counter() - started
    finally:
        for undo in restore:
            undo()
        del encoder.preprocess  # the class's method again
        encoder._forward = forward
    if summary.failed:
        raise RuntimeError(f"the pipeline failed on {summary.failed} video(s): {summary.failures[:3]}")
    table = load_embeddings(out_dir)
    stage = timers.wall
    run = PathRun("pipeline", int(summary.clips_embedded), wall, stage["decode"], stage["preprocess"], stage["model"],
                  stage["write"], wall - sum(stage.values()), videos=len(paths),
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

    run = PathRun("encoder alone", len(clips), 0.0, decode_s, 0.0, 0.0, videos=len({c.video_path for c in clips}),
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
def compile_child(spec: dict) -> dict:
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
    """torch.compile in a child process (``bench_embed --child``), killed after ``timeout_s`` (then: skipped)."""
    payload = {"paths": [str(p) for p in paths], "clip_spec": asdict(spec), "model": model_kwargs,
               "batch_size": batch_size}
    started = time.perf_counter()
    try:
        result = run_child("bench.bench_embed", payload, timeout_s, what="torch.compile child")
    except ChildFailed as err:
        if "timed out" in str(err):
            return {"status": f"skipped: compile + timing did not finish within {timeout_s:.0f} s "
                              f"(compile time > {timeout_s:.0f} s on this machine)"}
        last = (str(err).strip().splitlines() or ["?"])[-1]
        return {"status": f"skipped: torch.compile failed after {time.perf_counter() - started:.0f} s: {last[:200]}"}
    result["status"] = f"ran: compile time {result['compile_s']:.1f} s"
    return result


def run_row(run: PathRun, naive: PathRun | None, mfu=None) -> dict:
    row = {"path": run.path, "clips": run.clips, "videos": run.videos, "wall_s": run.wall_s,
           "clips_per_s": run.clips_per_s, "decode_s": run.decode_s, "preprocess_s": run.preprocess_s,
           "model_s": run.model_s, "write_s": run.write_s, "other_s": run.other_s, "note": run.note}
    if naive is not None:
        row["vs_naive"] = run.clips_per_s / naive.clips_per_s
    if mfu is not None:
        row["mfu"] = mfu(run.clips_per_s)
    return row


