"""Embedding throughput: the model-card way against MotionMatch's pipeline, same model, one run.

Both paths embed the same locally generated videos (``motionmatch.data.synthetic``) with the same
randomly initialised V-JEPA 2 weights (same seed), so their clips/s are directly comparable and
their embeddings must agree:

* **naive** (the model card): per video, decode its clips; per clip, preprocess on the CPU with
  transformers' ``VJEPA2VideoProcessor`` when it works here, else a numpy/PIL re-implementation of
  its steps (PIL bilinear shortest-edge resize, centre crop, ``(x/255 - mean) / std``; which one ran
  is reported), then ``model(pixel_values_videos=...)`` with the predictor running, batch 1, fp32,
  ``attn_implementation="eager"``, under ``torch.no_grad()``.
* **pipeline**: ``motionmatch.extract.extract_embeddings`` with ``VJEPA2Encoder`` wrapping the same
  weights (SDPA, predictor skipped, clips of a video batched, preprocessing in torch, decoding inline or in
  spawned worker processes, ``default_decode_workers()``), parquet parts written as in production. Its time is
  split by stage, measured inside the pipeline's own functions: decoding (fingerprint included), preprocessing,
  the model, writing the parts, and the rest (bookkeeping).
* **encoder alone** on pre-decoded clips (preprocess and model only, no decoding, no parts).
* **torch.compile** of the encoder, in a child process with a time limit (reported as skipped when the
  compile does not finish in time, or in ``--quick`` mode).

The two paths run alternately ``--rounds`` times (the machine may be shared; the load average at the start is
printed); the tables show the fastest round of each. Target: pipeline >= 2x naive clips/s, judged on the median
of the rounds' paired ratios (each round runs both paths back to back, so a load spike hits both; the fastest
rounds of the two paths can come from different moments). A quick run (8 videos, one round) does not judge it:
on 2 shared cores one round read 1.37x and 1.87x in two quick runs, and three rounds of one full run 1.55x,
3.12x and 1.75x. The agreement check compares, per clip,
the mean-pooled encoder output of the naive path (``last_hidden_state``, the encoder's tensor even when
the predictor runs) with the pipeline's stored embedding, next to the cosine between *different* clips
(a random-weight model maps everything close together, so that baseline shows what the agreement means).

Accelerator section (``--gpu``, or automatically when CUDA is available): the real ViT-L fpc64-256
architecture (``VJEPA2Config()`` defaults, random weights) in bf16: clips/s of the pipeline, the encoder
alone at batch sizes 1-16 with peak memory, MFU against the encoder's FLOPs per clip (11.6 TFLOP for
ViT-L fpc64-256) and the GPU's dense bf16 peak, decode / preprocess / model split, the naive path on
the GPU, and the cosine between bf16 and fp32 embeddings.

Usage::

    python -m bench.bench_embed --quick   # 8 videos, one round, < 1 minute on 2 cores (not judged)
    python -m bench.bench_embed           # 24 videos, three rounds, torch.compile attempt, < 5 minutes
    python -m bench.bench_embed --gpu     # adds the ViT-L section (needs CUDA)

The paths, the model and the compile child are in ``bench/embed_paths.py``. Prints markdown tables and writes
``bench/out/embed.json``. ``main(argv) -> dict`` for notebooks.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.embed_paths import (MODELS, VITL_TFLOP_PER_CLIP, ModelCardPreprocessor, build_model, compile_child,
                               cosine_rows, decode_all, encoder_tflop_per_clip, mean_offdiagonal_cosine,
                               model_ablation, peak_bf16_tflops, run_compile_variant, run_encoder_alone, run_naive,
                               run_pipeline, run_row, synchronize, wrap_encoder)
from bench.harness import BenchRun, child_main, load_average_text, motion_videos


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
    paths = motion_videos(folder / "videos", videos, size=video_size, num_frames=num_frames)

    def mfu(clips_per_s: float) -> float | None:
        return clips_per_s * tflop_per_clip / peak if peak else None

    # warm-up (kernel selection, allocator) on one batch
    clips, decode_s = decode_all(paths, spec)
    encoder.encode([c.frames for c in clips[:max(batch_sizes)]], batch_size=max(batch_sizes), progress=False)

    pipeline = run_pipeline(paths, spec, encoder, folder / "pipeline", batch_size=max(batch_sizes), workers=workers)
    alone = run_encoder_alone(clips, decode_s, encoder, batch_size=min(max(batch_sizes), clips_per_video))
    rows = [run_row(pipeline, None, mfu), run_row(alone, None, mfu)]

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
            naive_row = run_row(naive, None, mfu)
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


# ----------------------------------------------------------------------------- tables
def _number(value, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, fmt)


def paths_table(rows: list[dict]) -> str:
    with_mfu = any("mfu" in row for row in rows)
    lines = ["| path | clips | wall s | clips/s | vs naive | decode s | preprocess s | model s | write s | rest s |"
             + (" MFU |" if with_mfu else "") + " note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if with_mfu else "") + "---|"]
    for row in rows:
        mfu_cell = f" {_number(row.get('mfu'), '.1%')} |" if with_mfu else ""
        lines.append(f"| {row['path']} | {row.get('clips', '')} | {_number(row.get('wall_s'), '.2f')} | "
                     f"{_number(row.get('clips_per_s'), '.2f')} | "
                     f"{_number(row.get('vs_naive'), '.2f') + 'x' if row.get('vs_naive') else '–'} | "
                     f"{_number(row.get('decode_s'), '.2f')} | {_number(row.get('preprocess_s'), '.2f')} | "
                     f"{_number(row.get('model_s'), '.2f')} | {_number(row.get('write_s'), '.2f')} | "
                     f"{_number(row.get('other_s'), '.2f')} |{mfu_cell} {row.get('note', '')} |")
    return "\n".join(lines)


def per_video_table(pipeline: dict, alone: dict) -> str:
    """Milliseconds per video in each stage: the pipeline (measured inside its own functions) and the encoder alone."""
    def ms(row: dict, key: str) -> str:
        value = row.get(key)
        return "–" if value is None else f"{1000 * value / max(1, row['videos']):.1f}"

    stages = (("decode (fingerprint included)", "decode_s"), ("preprocess (torch)", "preprocess_s"),
              ("model", "model_s"), ("write the part (DataFrame, parquet, fsync)", "write_s"),
              ("rest (pooling, bookkeeping, estimate)", "other_s"), ("**wall**", "wall_s"))
    lines = ["| stage | pipeline ms/video | encoder alone ms/video |", "|---|---:|---:|"]
    for label, key in stages:
        lines.append(f"| {label} | {ms(pipeline, key)} | "
                     f"{'(decoded beforehand: ' + ms(alone, key) + ')' if key == 'decode_s' else ms(alone, key)} |")
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
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds of naive/pipeline (3; quick 1)")
    parser.add_argument("--model", choices=sorted(MODELS), default="cpu", help="the CPU run's model size")
    parser.add_argument("--workers", type=int, default=None,
                        help="decode worker processes of the pipeline (default: the package's, default_decode_workers())")
    parser.add_argument("--compile-timeout-s", type=float, default=None,
                        help="time limit of the torch.compile child (100; 0 or --quick skips it)")
    parser.add_argument("--gpu", action="store_true", help="run the accelerator section (default: when CUDA is there)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the accelerator section even when CUDA is there")
    parser.add_argument("--gpu-device", default="cuda", help=argparse.SUPPRESS)  # "cpu" lets the smoke test run it
    parser.add_argument("--gpu-model", choices=sorted(MODELS), default="vitl", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/embed.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the torch.compile child
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print markdown tables; write bench/out/embed.json; return the results."""
    import torch

    from motionmatch.video import ClipSpec

    args = parse_args(argv)
    if args.child:
        return child_main(args.child, compile_child)
    run = BenchRun("embed", argv, quick=args.quick, out=args.out)
    load = load_average_text()
    print(f"[embed] {load}", file=sys.stderr, flush=True)
    quick = args.quick
    n_videos = args.videos or (8 if quick else 24)
    rounds = args.rounds or (1 if quick else 3)
    compile_timeout = 0.0 if quick else (100.0 if args.compile_timeout_s is None else args.compile_timeout_s)
    model_kwargs = MODELS[args.model]
    run_gpu = args.gpu or (torch.cuda.is_available() and not args.no_gpu)

    with tempfile.TemporaryDirectory(prefix="bench_embed_") as tmp:
        folder = Path(tmp)
        num_frames = max(48, (model_kwargs.get("frames_per_clip", 16) - 1) * 2 + 8)
        paths = motion_videos(folder / "videos", n_videos, num_frames=num_frames)
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
                  f"{pipeline_runs[-1].clips_per_s:.2f} clips/s ({load_average_text()})", file=sys.stderr, flush=True)
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

    rows = [run_row(naive, None), run_row(pipeline, naive), run_row(alone, naive)]
    # judged on the rounds' paired ratios (each round runs both paths back to back, so a load spike from another
    # job hits both), their median: the best rounds of each path may come from different moments of the load
    paired = [p.clips_per_s / n.clips_per_s for n, p in zip(naive_runs, pipeline_runs)]
    ratio = float(np.median(paired))
    run.target("pipeline_vs_naive", ratio, "x", "CPU: pipeline >= 2x naive clips/s (same model)", passed=ratio >= 2.0,
               detail=f"median of {rounds} paired round(s) ({', '.join(f'{r:.2f}x' for r in paired)}); best rounds "
                      f"{pipeline.clips_per_s:.2f} vs {naive.clips_per_s:.2f} clips/s; {n_videos} videos")
    gpu_targets(run, accelerator)
    config = build_model(model_kwargs, "sdpa").config
    model_text = (f"V-JEPA 2, random weights: hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
                  f"crop {config.crop_size}, patch {config.patch_size}, {config.frames_per_clip} frames, predictor "
                  f"{config.pred_num_hidden_layers} x {config.pred_hidden_size}; "
                  f"{encoder_tflop_per_clip(config) * 1000:.2f} GFLOP per clip (encoder)")
    compile_text = compile_result["status"]
    if "compiled_clips_per_s" in compile_result:
        compile_text += (f"; encoder alone {compile_result['plain_clips_per_s']:.2f} -> "
                         f"{compile_result['compiled_clips_per_s']:.2f} clips/s "
                         f"({compile_result['compiled_clips_per_s'] / compile_result['plain_clips_per_s']:.2f}x), "
                         f"cosine min {compile_result['cosine_min']:.5f}")
    beyond_ms = 1000 * (pipeline.decode_s + pipeline.write_s + pipeline.other_s) / n_videos
    summary = "\n\n".join([
        f"Machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads; {load} at the start.",
        f"Model: {model_text}. Videos: {n_videos} x 160x120, {num_frames} frames; clips {asdict(spec)}; "
        f"best of {rounds} alternating round(s).",
        paths_table(rows),
        f"**pipeline / naive = {ratio:.2f}x**, the median of the rounds' paired ratios "
        f"({', '.join(f'{r:.2f}x' for r in paired)}; target >= 2x).",
        f"Where a video's time goes, measured inside the pipeline's own functions in its best round: beyond the "
        f"encoder's calls it spends {beyond_ms:.0f} ms per video decoding, writing its part and keeping its books "
        "(the encoder alone, on clips decoded beforehand, does none of that; it runs at another moment of the "
        "machine's load, so compare its rows with care):",
        per_video_table(rows[1], rows[2]),
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
    return run.finish(summary, load_average_at_start=load, model=model_kwargs, videos=n_videos, rounds=rounds,
                      clip_spec=asdict(spec), naive_preprocessing=preprocessor.kind, rows=rows,
                      rounds_clips_per_s={"naive": [r.clips_per_s for r in naive_runs],
                                          "pipeline": [r.clips_per_s for r in pipeline_runs]},
                      pipeline_vs_naive=ratio, paired_ratios=paired, ablation=ablation, cosine=cosine,
                      compile=compile_result,
                      accelerator=accelerator)


def gpu_targets(run: BenchRun, accelerator: dict | None) -> None:
    """The issue's GPU targets, judged on the accelerator section (not measured when it did not run ViT-L on CUDA)."""
    rule_rate = "GPU (ViT-L fpc64-256): end to end, decoding included, >= 30 clips/s"
    rule_ratio = "GPU (ViT-L fpc64-256): pipeline >= 3x the naive path"
    if not accelerator or accelerator.get("model") != "vitl":
        why = "no CUDA device in this run (`python -m bench.bench_embed --gpu` on a GPU machine)"
        run.not_measured("gpu_clips_per_s", rule_rate, why)
        run.not_measured("gpu_vs_naive", rule_ratio, why)
        return
    pipeline = next(row for row in accelerator["rows"] if row["path"] == "pipeline")
    rate, mfu, ratio = pipeline["clips_per_s"], pipeline.get("mfu"), pipeline.get("vs_naive")
    run.target("gpu_clips_per_s", rate, "clips/s", rule_rate, passed=rate >= 30,
               detail=f"MFU {mfu:.0%}" if mfu else "")
    run.target("gpu_vs_naive", ratio, "x", rule_ratio, passed=None if ratio is None else ratio >= 3,
               detail="" if ratio else "the naive path did not run")


if __name__ == "__main__":
    main()
