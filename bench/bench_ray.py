"""Extraction on Ray Data against the local path: same videos, same encoder, one run, side by side (issue 12).

* **local**: ``motionmatch.extract.extract_embeddings`` (decode workers at their default: 0 on 2 cores).
* **ray, 1 actor**: ``motionmatch.extract.ray_data.extract_embeddings_ray`` in a Ray session started once, the
  way the package starts one (``ray_data.connect(num_cpus=<CPUs>)``, which retries a head node that does not
  start in time), and a 2-video warm-up run, their time reported apart, as a cluster that is already up: decode
  tasks, one encoder actor; each run pays for starting its actor pool, as a user's run does.
* **ray, 2 actors vs 1** (scaling): judged only when cores allow (CPU actors need 2 x 2 + 1 CPUs for two
  actors and a decode task each; or 2 GPUs). On fewer cores it is measured in a separate session with
  3 logical CPUs (oversubscribed) and shown as information, with the target NOT MEASURED.

Videos are generated (``motionmatch.data.synthetic``: 160x120, 48 frames); the encoder is FlowEncoder (weight-free,
CPU). The paths alternate ``--rounds`` times and the best round of each is kept (the machine may be shared).
Every path must give the same clip ids and vectors (checked, reported as the max |difference|).

Usage::

    python -m bench.bench_ray --quick   # 20 videos, one round, no scaling run (about 1.5 minutes; not judged)
    python -m bench.bench_ray           # 60 videos, two rounds, the scaling run

Prints markdown and writes ``bench/out/ray.json``. ``main(argv) -> dict``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import BenchRun
from motionmatch import table as table_module
from motionmatch.data import generate_sample_dataset, load_source
from motionmatch.encoders import build_encoder
from motionmatch.extract import extract_embeddings
from motionmatch.video import ClipSpec

SPEC = ClipSpec(frames_per_clip=16, frame_stride=2, clips_per_video=4)
RAY_VS_LOCAL_MIN = 0.8
TWO_VS_ONE_MIN = 1.7
QUIET = dict(progress=False, print_fn=lambda *_: None)


def _timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    summary = run()
    return time.perf_counter() - started, summary


def _vectors(out: Path):
    table = table_module.load_embeddings(out).sort_values("clip_id")
    return table.clip_id.tolist(), np.stack(table.embedding)


def _ray_session(num_cpus: int, warm_up=None) -> float:
    """Start Ray as the package does and run ``warm_up`` (a tiny extraction: starts the worker processes); the
    seconds it took."""
    from motionmatch.extract.ray_data import connect

    started = time.perf_counter()
    connect(num_cpus=num_cpus)
    if warm_up is not None:
        warm_up()
    return time.perf_counter() - started


def _cores_allow_two(cpus: int, gpus: int) -> bool:
    return gpus >= 2 or cpus >= 5


def measure(n_videos: int, rounds: int, scaling: bool, folder: Path) -> dict:
    import ray

    from motionmatch.extract.ray_data import extract_embeddings_ray

    videos = generate_sample_dataset(folder / "videos", seed=0, videos_per_class_per_domain=max(1, n_videos // 20),
                                     groups_per_class_per_domain=1, num_frames=48, size=(160, 120), progress=False)
    manifest = load_source(videos)[0]
    encoder = build_encoder("flow")
    cpus = os.cpu_count() or 1
    clips = len(manifest) * SPEC.clips_per_video
    runs: dict[str, list[float]] = {"local": [], "ray_1_actor": []}
    outs: dict[str, Path] = {}

    def local() -> float:
        out = outs.setdefault("local", folder / "local")
        seconds, summary = _timed(lambda: extract_embeddings(manifest, encoder, out, clip_spec=SPEC, overwrite=True,
                                                             **QUIET))
        assert summary.clips_embedded == clips, summary
        return seconds

    def on_ray(name: str, actors: int) -> float:
        out = outs.setdefault(name, folder / name)
        seconds, summary = _timed(lambda: extract_embeddings_ray(manifest, encoder, out, clip_spec=SPEC,
                                                                 overwrite=True, actors=actors, **QUIET))
        assert summary.clips_embedded == clips, summary
        return seconds

    def warm_up() -> None:  # 2 videos into a folder of its own: worker processes and runtime env started
        extract_embeddings_ray(manifest.head(2), encoder, folder / "warm_up", clip_spec=SPEC, overwrite=True, **QUIET)

    startup_s = _ray_session(cpus, warm_up)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    try:
        for _ in range(rounds):
            runs["local"].append(local())
            runs["ray_1_actor"].append(on_ray("ray_1_actor", 1))
        allowed = _cores_allow_two(cpus, gpus)
        if scaling and allowed:
            runs["ray_2_actors"] = [on_ray("ray_2_actors", 2) for _ in range(rounds)]
            runs["ray_1_actor_scaling"] = list(runs["ray_1_actor"])
    finally:
        ray.shutdown()
    scaling_session = None
    if scaling and not allowed:  # information only: 3 logical CPUs on fewer real cores
        scaling_session = {"num_cpus": 3, "startup_s": _ray_session(3, warm_up)}
        try:
            runs["ray_1_actor_scaling"] = [on_ray("ray_1_actor_scaling", 1) for _ in range(rounds)]
            runs["ray_2_actors"] = [on_ray("ray_2_actors", 2) for _ in range(rounds)]
        finally:
            ray.shutdown()

    reference_ids, reference = _vectors(outs["local"])
    agreement = {}
    for name, out in outs.items():
        ids, vectors = _vectors(out)
        agreement[name] = {"same_clip_ids": ids == reference_ids,
                           "max_abs_diff": float(np.abs(vectors - reference).max()) if ids == reference_ids else None}
    rates = {name: clips / min(times) for name, times in runs.items()}
    return {"videos": len(manifest), "clips": clips, "clip_spec": SPEC.__dict__, "cpus": cpus, "gpus": gpus,
            "ray_startup_s": startup_s, "scaling_session": scaling_session, "rounds_s": runs,
            "clips_per_s": rates, "agreement": agreement, "cores_allow_two_actors": _cores_allow_two(cpus, gpus)}


def judge_targets(run: BenchRun, result: dict, scaling: bool) -> None:
    rates = result["clips_per_s"]
    ratio = rates["ray_1_actor"] / rates["local"]
    same = all(a["same_clip_ids"] and a["max_abs_diff"] is not None and a["max_abs_diff"] <= 1e-6
               for a in result["agreement"].values())
    run.target("ray_vs_local", ratio, "x",
               f"Ray path >= {RAY_VS_LOCAL_MIN}x the local path's clips/s (same videos and encoder, this machine)",
               passed=bool(ratio >= RAY_VS_LOCAL_MIN and same),
               detail=f"{rates['ray_1_actor']:.1f} vs {rates['local']:.1f} clips/s" + ("" if same else "; ROWS DIFFER"))
    rule = f"2 encoder actors vs 1: >= {TWO_VS_ONE_MIN}x when cores allow"
    if "ray_2_actors" not in rates:
        run.not_measured("two_vs_one_actor", rule, "skipped in --quick mode" if not scaling else "did not run")
        return
    two = rates["ray_2_actors"] / rates["ray_1_actor_scaling"]
    if result["cores_allow_two_actors"]:
        run.target("two_vs_one_actor", two, "x", rule, passed=bool(two >= TWO_VS_ONE_MIN))
    else:
        run.not_measured("two_vs_one_actor", rule,
                         f"{result['cpus']} CPU cores, no GPU (needs >= 5 cores or 2 GPUs); information only, "
                         f"3 logical CPUs on {result['cpus']} cores: {two:.2f}x")


def summary_markdown(result: dict) -> str:
    rates, rounds = result["clips_per_s"], result["rounds_s"]
    lines = ["| path | best wall s | clips/s | vs local | same ids | max abs diff vs local |",
             "|---|---:|---:|---:|---|---:|"]
    for name in rates:
        agreement = result["agreement"].get(name, result["agreement"].get(name.removesuffix("_scaling"), {}))
        diff = agreement.get("max_abs_diff")
        lines.append(f"| {name} | {min(rounds[name]):.2f} | {rates[name]:.2f} | {rates[name] / rates['local']:.2f}x | "
                     f"{agreement.get('same_clip_ids', '–')} | {'–' if diff is None else format(diff, '.1e')} |")
    session = result["scaling_session"]
    notes = [f"{result['videos']} generated videos (160x120, 48 frames), {result['clips']} clips "
             f"{result['clip_spec']}, FlowEncoder; {result['cpus']} CPUs, {result['gpus']} GPUs. "
             f"Ray session start, with a 2-video warm-up run that starts the worker processes: "
             f"{result['ray_startup_s']:.1f} s (not in the rates; each measured Ray run still starts its own actor pool).",
             "\n".join(lines)]
    if session:
        notes.append(f"Scaling rows (`*_scaling`, `ray_2_actors`) ran in a second session with "
                     f"{session['num_cpus']} logical CPUs on {result['cpus']} cores (start {session['startup_s']:.1f} s): "
                     "information only.")
    return "\n\n".join(notes)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ray", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 videos, one round, no scaling run")
    parser.add_argument("--videos", type=int, default=None, help="generated videos (60; quick 20)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (2; quick 1)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/ray.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print markdown; write bench/out/ray.json; return the results."""
    args = parse_args(argv)
    run = BenchRun("ray", argv, quick=args.quick, out=args.out)
    try:
        import ray  # noqa: F401
    except ImportError:
        run.not_measured("ray_vs_local", f"Ray path >= {RAY_VS_LOCAL_MIN}x the local path's clips/s",
                         "Ray is not installed (pip install -e .[ray])")
        return run.finish("not run: Ray is not installed (pip install -e .[ray])")
    n_videos = args.videos or (20 if args.quick else 60)
    rounds = args.rounds or (1 if args.quick else 2)
    with tempfile.TemporaryDirectory(prefix="bench_ray_") as tmp:
        result = measure(n_videos, rounds, scaling=not args.quick, folder=Path(tmp))
    result["load_average_at_end"] = os.getloadavg()
    judge_targets(run, result, scaling=not args.quick)
    return run.finish(summary_markdown(result), **result)


if __name__ == "__main__":
    main()
