"""``motionmatch extract``: embed the clips (or dense windows) of a folder, manifest or dataset."""
from __future__ import annotations

from ..errors import ParameterError
from ..video.shots import DEFAULT_METHOD as SHOT_DEFAULT
from ..video.windows import (DEFAULT_STRIDE_S, DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_WINDOW_FRAMES, SHOT_CHOICES,
                             WindowSpec)
from .args import (Command, add_embeddings_arg, add_encoder_args, non_negative_int, positive_float, positive_int,
                   workers_type)

DATASET_CHOICES = [None, "folder", "manifest", "ucf101", "hmdb51", "kinetics"]


class Extract(Command):
    name = "extract"
    help = "embed the clips of a folder / manifest / dataset (resumable)"

    @staticmethod
    def setup(parser):
        parser.add_argument("source", help="folder of videos, manifest CSV, or dataset root (with --dataset)")
        parser.add_argument("--dataset", default=None, choices=DATASET_CHOICES)
        add_embeddings_arg(parser, "--out")
        add_encoder_args(parser)
        parser.add_argument("--frames-per-clip", type=non_negative_int("--frames-per-clip"), default=0,
                            help=f"0 = the encoder's default (with --stride-s: {DEFAULT_WINDOW_FRAMES})")
        parser.add_argument("--frame-stride", type=positive_int("--frame-stride"), default=None,
                            help=f"take every n-th frame (default 2; with --stride-s: {DEFAULT_WINDOW_FRAME_STRIDE})")
        parser.add_argument("--clips-per-video", type=positive_int("--clips-per-video"), default=4,
                            help="clips spread over each video (the default mode, for short clips)")
        dense = parser.add_argument_group("dense windows over whole videos (long untrimmed videos)")
        dense.add_argument("--stride-s", type=positive_float("--stride-s"), nargs="?", const=DEFAULT_STRIDE_S,
                           default=None, metavar="S",
                           help="index a window (one clip: --frames-per-clip frames every --frame-stride frames, "
                                f"by default {DEFAULT_WINDOW_FRAMES} x {DEFAULT_WINDOW_FRAME_STRIDE}, about 2 s) every S "
                                f"seconds over each whole video (no value: the measured default, {DEFAULT_STRIDE_S:g} s; "
                                "see bench/bench_windows.py); recorded in extract_meta.json")
        dense.add_argument("--shots", default=None, choices=SHOT_CHOICES,
                           help="shot detection, so no window straddles a hard cut; none = the video is one shot "
                                f"(default: {SHOT_DEFAULT}, the measured best; content is ~20x faster on CPU)")
        dense.add_argument("--windows-per-chunk", type=positive_int("--windows-per-chunk"), default=None,
                           help="windows per saved part: a killed run resumes at the last finished part (default 32)")
        parser.add_argument("--batch-size", type=positive_int("--batch-size"), default=8)
        parser.add_argument("--workers", type=workers_type("--workers"), default=None, metavar="auto|N",
                            help="decoding processes ahead of the encoder; 0 decodes inline (default: auto, CPU cores "
                                 "- 2, at most 4; 0 on 2 cores)")
        parser.add_argument("--overwrite", action="store_true", help="discard earlier results in --out")
        parser.add_argument("--prune", action="store_true", help="drop results of videos no longer in the source")
        scale = parser.add_argument_group("Ray: decode in Ray tasks, encode in a pool of actors (same output folder)")
        scale.add_argument("--ray", action="store_true", help="run on Ray Data (pip install -e .[ray])")
        scale.add_argument("--ray-address", default="", metavar="ADDR",
                           help="a Ray cluster (HOST:PORT from `ray start --head`, ray://HOST:10001, auto); "
                                "default: a local Ray on this machine")
        scale.add_argument("--ray-actors", type=positive_int("--ray-actors"), default=None, metavar="N",
                           help="encoder actors (default: one per GPU of the cluster, else half its CPUs)")

    @staticmethod
    def execute(args):
        from ..extract.run import extract

        if args.stride_s is None and (args.shots is not None or args.windows_per_chunk is not None):
            raise ParameterError("--shots and --windows-per-chunk apply to dense windows: add --stride-s [S]")
        windows = None
        if args.stride_s is not None:
            given = {"shots": args.shots, "windows_per_chunk": args.windows_per_chunk}
            windows = WindowSpec(stride_s=args.stride_s, **{k: v for k, v in given.items() if v is not None})
        summary = extract(args.source, args.out, encoder=args.encoder, model_id=args.model, device=args.device,
                          dataset=args.dataset, frames_per_clip=args.frames_per_clip, frame_stride=args.frame_stride,
                          clips_per_video=args.clips_per_video, windows=windows, batch_size=args.batch_size,
                          workers=args.workers, overwrite=args.overwrite, prune=args.prune, ray=args.ray,
                          ray_address=args.ray_address, ray_actors=args.ray_actors)
        print(summary)
        return 0


EXTRACT_COMMANDS = [Extract]
