"""Extraction on Ray Data (issue 12): ``motionmatch extract SOURCE --ray [--ray-address ADDR]``.

The local path (:func:`motionmatch.extract.local.extract_embeddings`) stays the default; this one spreads the
same work over a Ray cluster, one machine or many:

1. The driver works out what is not done yet exactly as the local path does (same parts, fingerprints,
   ``--prune``, ``extract_meta.json``). Dense windows (``--stride-s``) get their plans (shots, windows)
   from Ray CPU tasks; the driver stores them.
2. Ray Data CPU tasks decode each unit of work (a video's clips, or one chunk of a video's dense windows)
   into uint8 clips already at the encoder's input size (:func:`fit_to_encoder`), so less data moves.
   CUDA is kept out of them (``CUDA_VISIBLE_DEVICES=""``: recent Ray no longer blanks it for CPU tasks).
3. The encoder runs in an actor pool (``map_batches`` with a class and ``compute=ActorPoolStrategy``),
   one GPU per actor where the cluster has GPUs, CPU actors otherwise.
4. The driver collects each unit's vectors and writes the same parquet part the local path writes, so
   resume, ``--prune``, ``failures.csv`` and ``motionmatch index`` work unchanged, and a killed driver
   loses only the units in flight.

A video that cannot be decoded or encoded fails only itself, with its reason in ``failures.csv``.
``extract_meta.json`` records ``"ray": {"actors", "gpus_per_actor", "address"}`` (a note: a local run can
resume a Ray run's folder and the other way round). ``ray`` is an optional extra: ``pip install -e .[ray]``.

Limits: workers must see the videos at the same paths as the driver (a shared filesystem on a multi-node
cluster) and have ``motionmatch`` installed; a decoder that crashes its worker process (not a Python
exception) ends the Ray run after Ray's retries, with the finished parts kept.
"""
from __future__ import annotations

import functools
import json
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..video.clips import ClipSpec, ClipWindow, FrameBlock, iter_window_clips, sample_clips
from ..video.fingerprint import pack, unpack
from ..video.windows import WindowSpec
from ..data.sources import Failure
from ..video.decode import fingerprint_file
from .. import errors
from ..errors import MissingPackageError, MotionMatchError, ParameterError, VideoError
from .parts import (ENCODE_HINT, ExtractSummary, encode_clips, chunk_path, compute_plan, decode_failure, failure_from, finish,
                    load_plan, missing_chunks, plan_todo, prune_dense, start_extraction, store_plan, write_part)

RAY_EXTRA = "pip install -e .[ray]"
DECODE_ENV = {"CUDA_VISIBLE_DEVICES": ""}  # decode tasks never touch a GPU
DECODE_TASK = {"num_cpus": 1, "runtime_env": {"env_vars": DECODE_ENV}}  # Ray options of decode and plan tasks
MAX_BLOCKS = 4096  # one unit of work per Ray Data block up to this many (finer blocks balance better)


def import_ray():
    """``ray`` (with ``ray.data``), or a MissingPackageError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise MissingPackageError(f"extraction with --ray needs Ray Data, which is not installed ({err}); "
                                  f"install it with `{RAY_EXTRA}` (or `pip install 'ray[data]'`)") from err
    return ray


# ----------------------------------------------------------------------------- the cluster
def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, with what to do, when ``host:port`` (or ``ray://host:port``) does not accept connections."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ParameterError(f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the address "
                             "`ray start --head` prints), ray://HOST:10001, or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except OSError as err:
        raise ParameterError(f"cannot reach the Ray cluster at {address} ({err}). Start one there with "
                             "`ray start --head` and pass the address it prints, or leave out --ray-address to "
                             "run Ray on this machine") from err


# How long ``ray.init`` waits for a new head node's GCS server to write its port file into the session folder
# (Ray 2.60: the environment variable below, read when the head starts; 30 s by default). On a loaded machine the
# GCS can take longer (ray-project/ray#62883: "Timed out waiting for file .../gcs_server_port_..." after 33 s), so a
# local start that times out is retried once with this much longer wait.
GCS_WAIT_ENV = "RAY_gcs_server_port_wait_time_s"
RETRY_GCS_WAIT_S = 120
RAYLET_TIMEOUT = "timed out during startup"  # Ray's message when the raylet misses its (unconfigurable) 30 s


def _ray_temp_dir() -> str:
    """Where a local Ray writes its sessions: ``$RAY_TMPDIR/ray``, else ``$TMPDIR/ray``, else ``/tmp/ray``."""
    return os.path.join(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp", "ray")


def _start_failed(err: BaseException, waited_s: int | None) -> ParameterError:
    tried = (f" (twice: the second time ray.init waited {waited_s} s for the head node, {GCS_WAIT_ENV})"
             if waited_s else "")
    return ParameterError(
        f"could not start a local Ray instance{tried}: {type(err).__name__}: {err}. Ray starts its head node's "
        f"processes and waits for them to write their session files into {_ray_temp_dir()}. Try: `ray stop` (a "
        "session left from an earlier run still holds its processes and ports); free space in that folder, or point "
        "RAY_TMPDIR at a writable folder with space; fewer CPUs for Ray on a loaded machine (--ray-actors 1; "
        "num_cpus= in extract_embeddings_ray); or run without --ray")


def connect(address: str = "", num_cpus: int | None = None, print_fn=print) -> bool:
    """Join the Ray session already running in this process, the cluster at ``address``, or a new local one.

    A new local head node that does not start in time (its GCS, or its raylet) is started once more, waiting
    ``RETRY_GCS_WAIT_S`` for the GCS
    (:data:`GCS_WAIT_ENV`; the retry is printed with ``print_fn``); when that fails too, or the session folder
    cannot be written, a ParameterError names the cause and what to try. Returns True when this call started Ray
    (the caller shuts it down), False when a session existed.
    """
    ray = import_ray()
    if address and address not in ("auto", "local"):
        _probe(address)
    if ray.is_initialized():
        return False
    options = dict(address=address or None, num_cpus=None if address else num_cpus, log_to_driver=False,
                   include_dashboard=False, configure_logging=True, logging_level="warning")
    try:
        ray.init(**options)
        return True
    except (ConnectionError, RuntimeError, TimeoutError) as err:  # a start or join that did not answer in time
        if address:
            raise ParameterError(f"could not join the Ray cluster at {address}: {err}. Check `ray status` there, or "
                                 "run without --ray") from err
        first = err
    except OSError as err:  # the session folder cannot be made or written: waiting longer would not help
        ray.shutdown()
        raise _start_failed(err, None) from err
    except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception when the raylet does not register
        if address or RAYLET_TIMEOUT not in str(err):  # with the GCS within its fixed 30 s (seen in a CI run)
            raise
        first = err
    ray.shutdown()  # whatever the first attempt started
    given = os.environ.get(GCS_WAIT_ENV, "30")
    wait_s = max(RETRY_GCS_WAIT_S, 4 * int(given) if given.strip().isdigit() else 0)
    print_fn(f"ray: the local head node did not start in time ({type(first).__name__}: {str(first)[:160]}); "
             f"retrying once, waiting up to {wait_s} s")
    previous = os.environ.get(GCS_WAIT_ENV)
    os.environ[GCS_WAIT_ENV] = str(wait_s)
    try:
        ray.init(**options)
    except Exception as err:  # noqa: BLE001 - OSError (ConnectionError, TimeoutError), RuntimeError, a raylet timeout
        ray.shutdown()
        raise _start_failed(err, wait_s) from err
    finally:
        if previous is None:
            os.environ.pop(GCS_WAIT_ENV, None)
        else:
            os.environ[GCS_WAIT_ENV] = previous
    return True


# ----------------------------------------------------------------------------- decode tasks
def fit_to_encoder(frames: np.ndarray, preprocessing: dict) -> np.ndarray:
    """One clip shrunk to the encoder's input size in the encoder's own way, so the vectors stay the same.

    * ``flow``: grey at ``short_side`` (what FlowEncoder computes first), returned as (T, h, w, 1): the actor
      repeats it to 3 channels, and RGB->grey of three equal channels gives the grey back exactly;
    * ``vjepa2`` / ``clip``: the shortest-edge resize in uint8 (the encoder's first step, which then finds the
      size already right and does nothing); not the crop, which would make that resize enlarge again;
    * anything else: unchanged.
    """
    kind = preprocessing.get("kind")
    if kind == "flow":
        import cv2

        height, width = frames.shape[1:3]
        scale = preprocessing["short_side"] / min(height, width)
        size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        grey = []
        for frame in frames:
            one = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if scale < 1:  # never enlarge here: the encoder does that itself
                one = cv2.resize(one, size, interpolation=cv2.INTER_AREA)
            grey.append(one)
        return np.stack(grey)[..., None]
    if kind in ("vjepa2", "clip") and "resize_shortest_edge" in preprocessing and "crop_size" in preprocessing:
        import torch

        from ..encoders.preprocessing import resize_shortest_edge_uint8

        tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        tensor = resize_shortest_edge_uint8(tensor, int(preprocessing["resize_shortest_edge"]),
                                            preprocessing.get("resample", "bilinear"))
        return tensor.permute(0, 2, 3, 1).contiguous().numpy()
    return frames


def _clip_row(unit: dict, size: int, window: ClipWindow, frames: np.ndarray, fingerprint: str, block=None) -> dict:
    """One clip as a Ray row; a dense window also carries its FrameBlock (times as JSON, packed thumbnails)."""
    return {"unit": unit["unit"], "unit_size": size, "video_path": unit["video_path"], "chunk": unit["chunk"],
            "fingerprint": fingerprint, "clip_index": int(window.clip_index), "start_s": float(window.start_s),
            "end_s": float(window.end_s), "padded_frames": int(window.padded_frames), "shape": list(frames.shape),
            "frames": frames.tobytes(), "error": "",
            "block_first": -1 if block is None else int(block.first_frame),
            "block_times": "" if block is None else json.dumps(block.times.tolist()),
            "block_thumbs": b"" if block is None else pack(block.thumbs)}


def _error_row(unit: dict, error: str) -> dict:
    """The one row of a unit that failed to decode (``error`` is ``"reason|hint"``)."""
    return {"unit": unit["unit"], "unit_size": 1, "video_path": unit["video_path"], "chunk": unit["chunk"],
            "fingerprint": "", "clip_index": -1, "start_s": 0.0, "end_s": 0.0, "padded_frames": 0,
            "shape": [0, 0, 0, 0], "frames": b"", "error": "decode|" + error, "block_first": -1,
            "block_times": "", "block_thumbs": b""}


def decode_unit(unit: dict, clip_spec: ClipSpec, preprocessing: dict) -> list[dict]:
    """Ray Data ``flat_map``: one unit of work -> one row per clip (uint8 bytes at the encoder's input size).

    A unit is a whole video (``chunk == -1``, clips per video) or one chunk of a video's dense windows.
    Decoding errors become one error row, so a bad video fails only itself.
    """
    os.environ.update(DECODE_ENV)  # also set by the task's runtime_env; never let a decode task take a GPU
    try:
        if unit["chunk"] < 0:
            fingerprint = fingerprint_file(unit["video_path"])
            clips = sample_clips(unit["video_path"], clip_spec)
        else:
            fingerprint = unit["fingerprint"]
            windows = [ClipWindow(w[0], tuple(w[1]), w[2], w[3], w[4]) for w in json.loads(unit["windows"])]
            # the previous chunk's last window comes first, so the frame blocks are cut as the local path cuts them
            start = 1 if unit.get("has_previous") else 0
            clips = list(iter_window_clips(unit["video_path"], windows, start_window=start, thumbnails=True))
        return [_clip_row(unit, len(clips), c.window, fit_to_encoder(c.frames, preprocessing), fingerprint, c.block)
                for c in clips]
    except Exception as err:  # a decoder error must not stop the run
        return [_error_row(unit, decode_failure(err))]


def plan_video(path: str, fingerprint: str, clip_spec: ClipSpec, window_spec: WindowSpec) -> dict:
    """Ray task: a dense video's plan (shots, windows), or ``{"error": "reason|hint"}``."""
    os.environ.update(DECODE_ENV)
    try:
        return compute_plan(path, fingerprint, clip_spec, window_spec)
    except Exception as err:  # a decoder error fails only this video
        return {"video_path": path, "error": decode_failure(err)}


# ----------------------------------------------------------------------------- encoder actors
def rebuild_encoder(encoder_id: str):
    """The default encoder factory of the actors: the encoder that ``encoder_id`` names (on the actor's device)."""
    from ..encoders.auto import encoder_from_id

    return encoder_from_id(encoder_id)


class EncodeActor:
    """The encoder in a Ray actor: batches of clip rows in, the same rows with ``embedding`` out (no frames)."""

    def __init__(self, factory: Callable, encoder_id: str, preprocessing: dict, batch_size: int):
        self.encoder = factory()
        built = (self.encoder.encoder_id, json.loads(json.dumps(self.encoder.preprocessing())))
        if built != (encoder_id, preprocessing):
            raise ParameterError(f"the Ray actors built encoder {built[0]} with preprocessing {built[1]}, but the run "
                                 f"is for {encoder_id} with {preprocessing}; pass encoder_factory= to "
                                 "extract_embeddings_ray so the actors build the same encoder")
        self.batch_size = batch_size

    def __call__(self, batch: dict) -> dict:
        n = len(batch["unit"])
        errors = [str(e) for e in batch["error"]]
        vectors = np.zeros((n, self.encoder.dim), dtype=np.float32)
        coverage = np.ones(n, dtype=np.float32)
        good = [i for i in range(n) if not errors[i]]
        clips = [self._clip(batch["frames"][i], batch["shape"][i]) for i in good]
        try:
            if clips:
                vectors[good], coverage[good] = encode_clips(self.encoder, clips, self.batch_size)
        except MotionMatchError:
            raise  # a configuration problem: it would fail for every video
        except Exception:  # find the clip(s) at fault, one by one; the others keep their vectors
            for i, clip in zip(good, clips):
                try:
                    one, share = encode_clips(self.encoder, [clip], 1)
                    vectors[i], coverage[i] = one[0], share[0]
                except MotionMatchError:
                    raise
                except Exception as err:
                    errors[i] = f"encode|{type(err).__name__}: {err}|{ENCODE_HINT}"
        out = {key: value for key, value in batch.items() if key not in ("frames", "shape", "error")}
        out["error"] = np.asarray(errors, dtype=object)
        out["embedding"] = vectors
        out["coverage"] = coverage
        return out

    @staticmethod
    def _clip(data, shape) -> np.ndarray:
        clip = np.frombuffer(data, dtype=np.uint8).reshape([int(s) for s in shape])
        return np.repeat(clip, 3, axis=-1) if clip.shape[-1] == 1 else clip  # fit_to_encoder's grey


# ----------------------------------------------------------------------------- the driver
@dataclass
class _Unit:
    """A unit's clips as they come back from the actors."""

    video_path: str
    chunk: int
    size: int = -1
    rows: list = field(default_factory=list)


def _cluster_plan(ray, actors: int | None, gpus: bool | None) -> tuple[int, bool]:
    resources = ray.cluster_resources()
    cpus, cluster_gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
    use_gpus = cluster_gpus > 0 if gpus is None else gpus
    if use_gpus and cluster_gpus == 0:
        raise ParameterError("GPU encoder actors were asked for, but the Ray cluster has no GPU")
    if actors is None:
        actors = cluster_gpus if use_gpus else max(1, cpus // 2)
    if actors < 1:
        raise ParameterError(f"the number of encoder actors must be >= 1, got {actors}")
    if not use_gpus and actors >= cpus:
        raise ParameterError(f"{actors} CPU encoder actors leave none of the cluster's {cpus} CPUs to decode; "
                             + (f"use at most {cpus - 1} actors" if cpus > 1 else
                                "CPU extraction on Ray needs at least 2 CPUs (or use the local path)"))
    return actors, use_gpus


def extract_embeddings_ray(manifest: pd.DataFrame, encoder, out_dir: str | Path, clip_spec: ClipSpec | None = None,
                           batch_size: int = 8, overwrite: bool = False, prune: bool = False,
                           discovery_failures=(), progress: bool = True, encoder_note: str = "",
                           print_fn=print, window_spec: WindowSpec | None = None, address: str = "",
                           actors: int | None = None, gpus: bool | None = None, num_cpus: int | None = None,
                           encoder_factory: Callable | None = None) -> ExtractSummary:
    """:func:`~motionmatch.extract.local.extract_embeddings` on Ray Data: same arguments, same output folder.

    ``encoder`` (on the driver) gives the id and preprocessing; the actors build theirs with
    ``encoder_factory`` (a picklable no-argument callable; default: :func:`rebuild_encoder` of its id) and
    must get the same id and preprocessing. ``address``: a Ray cluster (``HOST:PORT``, ``ray://HOST:10001``,
    ``auto``); empty = the session already running in this process, else a new local one with ``num_cpus``.
    ``actors``: encoder actors (default: one per GPU, or half the CPUs); ``gpus``: one GPU per actor
    (default: when the cluster has GPUs).
    """
    ray = import_ray()
    started_ray = connect(address, num_cpus, print_fn)
    try:
        actors, use_gpus = _cluster_plan(ray, actors, gpus)
        ray_meta = {"ray": {"actors": actors, "gpus_per_actor": int(use_gpus), "address": address or "local"}}
        out_dir = Path(out_dir)
        clip_spec, manifest, summary, started = start_extraction(
            manifest, encoder, out_dir, clip_spec, window_spec, batch_size, overwrite, encoder_note,
            discovery_failures, extra_meta=ray_meta)
        rows = {row.path: row for row in manifest.itertuples(index=False)}
        if window_spec is None:
            _, todo = plan_todo(manifest, out_dir, prune, summary)
            units = [{"unit": f"{path}\n-1", "video_path": path, "chunk": -1, "fingerprint": "", "windows": ""}
                     for path in todo]
            videos_todo = {path: 1 for path in todo}
        else:
            units, videos_todo = _dense_units(ray, rows, out_dir, clip_spec, window_spec, summary, prune, print_fn)
        if units:
            factory = encoder_factory or functools.partial(rebuild_encoder, encoder.encoder_id)
            _run(ray, units, rows, videos_todo, encoder, factory, out_dir, clip_spec, summary, batch_size,
                 actors, use_gpus, progress)
        print_fn(f"ray: {actors} encoder actor(s){' with one GPU each' if use_gpus else ' on CPU'}, "
                 f"{len(units)} unit(s) of work")
        return finish(out_dir, summary, started)
    finally:
        if started_ray:
            ray.shutdown()


def _dense_units(ray, rows: dict, out_dir: Path, clip_spec: ClipSpec, window_spec: WindowSpec,
                 summary: ExtractSummary, prune: bool, print_fn) -> tuple[list[dict], dict]:
    """Plans (reused, or made by Ray tasks and stored here) -> one unit per missing chunk of dense windows."""
    if prune:
        prune_dense(out_dir, rows)
    plans, to_plan = {}, []
    for path in rows:
        try:
            fingerprint = fingerprint_file(path)
        except VideoError as err:
            summary.failures.append(Failure(path, "decode", err.reason, err.hint))
            continue
        plan = load_plan(out_dir, path, fingerprint)
        if plan is None:
            to_plan.append((path, fingerprint))
        else:
            plans[path] = plan
    task = ray.remote(**DECODE_TASK)(plan_video)
    pending = [task.remote(path, fingerprint, clip_spec, window_spec) for path, fingerprint in to_plan]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        plan = ray.get(done[0])
        if "error" in plan:
            summary.failures.append(failure_from(plan["video_path"], "decode", plan["error"]))
        else:
            plans[plan["video_path"]] = store_plan(out_dir, plan)
    per_chunk = window_spec.windows_per_chunk
    units, videos_todo = [], {}
    for path in rows:
        if path not in plans:
            continue
        plan, windows = plans[path], plans[path]["windows"]
        missing = missing_chunks(out_dir, path, plan, per_chunk, summary, print_fn)
        if not missing:
            continue
        videos_todo[path] = len(missing)
        for chunk in missing:
            chosen = windows[max(0, chunk * per_chunk - 1):(chunk + 1) * per_chunk]  # and the window before
            units.append({"unit": f"{path}\n{chunk}", "video_path": path, "chunk": chunk,
                          "fingerprint": plan["video_fingerprint"], "has_previous": chunk > 0,
                          "windows": json.dumps([[w.clip_index, list(w.frame_indices), w.start_s, w.end_s,
                                                  w.padded_frames] for w in chosen])})
    return units, videos_todo


def _run(ray, units: list[dict], rows: dict, videos_todo: dict, encoder, factory, out_dir: Path,
         clip_spec: ClipSpec, summary: ExtractSummary, batch_size: int, actors: int, use_gpus: bool,
         progress: bool) -> None:
    """Decode tasks -> encoder actors -> parts written here as each unit completes."""
    from ray.data import ActorPoolStrategy, DataContext

    DataContext.get_current().enable_progress_bars = progress
    preprocessing = json.loads(json.dumps(encoder.preprocessing()))
    dataset = (ray.data.from_items(units, override_num_blocks=min(len(units), MAX_BLOCKS))
               .flat_map(decode_unit, fn_kwargs={"clip_spec": clip_spec, "preprocessing": preprocessing},
                         **DECODE_TASK)
               .map_batches(EncodeActor, batch_size=batch_size, batch_format="numpy",
                            fn_constructor_kwargs={"factory": factory, "encoder_id": encoder.encoder_id,
                                                   "preprocessing": preprocessing, "batch_size": batch_size},
                            compute=ActorPoolStrategy(size=actors), num_gpus=1 if use_gpus else 0, num_cpus=1))
    open_units: dict[str, _Unit] = {}
    failed: set[str] = set()
    bar = tqdm(total=len(units), desc=f"extract --ray [{encoder.encoder_id}]", unit="part", disable=not progress)
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for i in range(len(batch["unit"])):
                key = str(batch["unit"][i])
                unit = open_units.setdefault(key, _Unit(str(batch["video_path"][i]), int(batch["chunk"][i])))
                unit.size = int(batch["unit_size"][i])
                unit.rows.append({name: batch[name][i] for name in batch})
                if len(unit.rows) == unit.size:
                    del open_units[key]
                    bar.update(1)
                    _complete(unit, rows, videos_todo, failed, encoder.encoder_id, out_dir, summary)
    except MotionMatchError:
        raise
    except Exception as err:
        user_error = _motionmatch_error(err)
        if user_error is not None:  # e.g. the actors could not build the encoder: the message, not Ray's traceback
            raise user_error from err
        raise
    finally:
        bar.close()
    for unit in open_units.values():  # cannot happen unless Ray dropped rows; say so rather than lose them quietly
        _fail(unit.video_path, "decode", "incomplete: not every clip came back from the Ray workers",
              "run again to retry this video", failed, summary)


def _motionmatch_error(err: BaseException) -> MotionMatchError | None:
    """The MotionMatchError raised in a Ray worker, from the error Ray hands the driver (it may keep only the text)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, MotionMatchError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = re.findall(r"motionmatch\.errors\.(\w+): (.+)", str(err))
    if not found:
        return None
    name, message = found[-1]
    kind = getattr(errors, name, MotionMatchError)
    try:
        return kind(message) if isinstance(kind, type) and issubclass(kind, MotionMatchError) else MotionMatchError(message)
    except TypeError:  # an error class with other constructor arguments
        return MotionMatchError(message)


def _fail(path: str, stage: str, reason: str, hint: str, failed: set, summary: ExtractSummary) -> None:
    if path not in failed:  # one failure per video, like the local path
        failed.add(path)
        summary.failures.append(Failure(path, stage, reason, hint))


def _complete(unit: _Unit, rows: dict, videos_todo: dict, failed: set, encoder_id: str, out_dir: Path,
              summary: ExtractSummary) -> None:
    """Write a unit's part (or record why its video failed); count the video once all its units are in."""
    errors = [str(r["error"]) for r in unit.rows if str(r["error"])]
    if errors:
        stage, reason, hint = (errors[0].split("|", 2) + ["", ""])[:3]
        _fail(unit.video_path, stage, reason, hint, failed, summary)
    else:
        clips = sorted(unit.rows, key=lambda r: int(r["clip_index"]))
        windows = [ClipWindow(int(r["clip_index"]), (), float(r["start_s"]), float(r["end_s"]), int(r["padded_frames"]))
                   for r in clips]
        target = None if unit.chunk < 0 else chunk_path(out_dir, unit.video_path, unit.chunk)
        blocks = None if unit.chunk < 0 else [
            FrameBlock(int(r["block_first"]), np.asarray(json.loads(str(r["block_times"])), dtype=np.float64),
                       unpack(bytes(r["block_thumbs"]))) if int(r["block_first"]) >= 0 else None for r in clips]
        write_part(out_dir, rows[unit.video_path], str(clips[0]["fingerprint"]), windows,
                   np.stack([r["embedding"] for r in clips]), encoder_id, target=target, blocks=blocks,
                   coverage=np.asarray([float(r["coverage"]) for r in clips], dtype=np.float32))
        summary.clips_no_person += sum(float(r["coverage"]) <= 0 for r in clips)
        summary.clips_embedded += len(windows)
    videos_todo[unit.video_path] -= 1
    if videos_todo[unit.video_path] == 0 and unit.video_path not in failed:
        summary.embedded += 1


__all__ = ["extract_embeddings_ray", "connect", "fit_to_encoder", "decode_unit", "EncodeActor", "import_ray",
           "rebuild_encoder", "RAY_EXTRA"]
