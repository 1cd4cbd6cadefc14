"""``motionmatch generate-sample``: the generated samples (short labelled clips, or long videos with ground truth),
and the real cross-camera sample (``--real pose2sim``)."""
from __future__ import annotations

from pathlib import Path

from .. import config
from ..errors import ParameterError
from .args import Command, non_negative_int, positive_float, positive_int

REAL_SAMPLES = ("pose2sim",)


class GenerateSample(Command):
    name = "generate-sample"
    help = ("write the synthetic labelled motion videos + manifest.csv (--long: long videos + ground_truth.csv; "
            "--real pose2sim: people filmed by 4 cameras)")

    @staticmethod
    def setup(parser):
        parser.add_argument("--out", default="", help=f"sample folder (default: $MOTIONMATCH_SAMPLE_DIR, else "
                                                      f"{config.SETTINGS['sample_dir'].default}; --long and --real "
                                                      "have their own, below)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--videos-per-class", type=positive_int("--videos-per-class"), default=32,
                            help="videos per motion class and domain (default 32)")
        parser.add_argument("--groups-per-class", type=positive_int("--groups-per-class"), default=16,
                            help="groups (same look, like one UCF101 gGG) per class and domain (default 16); "
                                 "metric learning needs many groups to train on")
        long = parser.add_argument_group("long videos (--long)")
        long.add_argument("--long", action="store_true",
                          help="write long untrimmed videos of motion segments with ground_truth.csv and cuts.csv "
                               "and manifest.csv (default folder: MOTIONMATCH_LONG_SAMPLE_DIR, else data/raw/sample_long)")
        long.add_argument("--n-videos", type=positive_int("--n-videos"), default=4, help="long videos (default 4)")
        long.add_argument("--duration-s", type=positive_float("--duration-s"), default=180.0,
                          help="seconds per long video (default 180)")
        long.add_argument("--copy-queries", type=non_negative_int("--copy-queries"), default=20,
                          help="copy queries cut from the long videos, with relevant.csv (default 20; 0 = none)")
        long.add_argument("--query-s", type=positive_float("--query-s"), default=4.0,
                          help="seconds per copy query (default 4)")
        real = parser.add_argument_group("real footage (--real)")
        real.add_argument("--real", default=None, choices=REAL_SAMPLES,
                          help="pose2sim: Pose2Sim's demo (2 trials x 4 synchronised cameras, BSD-3-Clause), cut into "
                               "labelled windows (label trial:window, domain camera); the 51 MB pose2sim wheel is "
                               "fetched once from PyPI into the cache (default folder: $MOTIONMATCH_POSE2SIM_DIR, else "
                               f"{config.SETTINGS['pose2sim_dir'].default})")
        real.add_argument("--window-s", type=positive_float("--window-s"), default=None,
                          help="with --real pose2sim: seconds per window (default 0.55: 3 windows of 33 frames)")
        real.add_argument("--wheel", default="", help="with --real pose2sim: a local pose2sim-0.10.49 wheel "
                                                      "(default: fetched into the cache)")

    @staticmethod
    def execute(args):
        from ..data.samples import ensure_long_sample, ensure_sample

        if args.real is None and (args.window_s is not None or args.wheel):
            raise ParameterError("--window-s and --wheel apply to the real sample: add --real pose2sim")
        if args.real and args.long:
            raise ParameterError("--real and --long are two different samples: give one of them")
        if args.real == "pose2sim":
            from ..data.pose2sim import DEFAULT_WINDOW_S, write_pose2sim_sample

            manifest = write_pose2sim_sample(config.setting("pose2sim_dir", args.out),
                                             window_s=args.window_s or DEFAULT_WINDOW_S, wheel=args.wheel or None)
            print(f"embed it with: motionmatch extract {manifest} --encoder pose --frames-per-clip 16 "
                  "--frame-stride 1; then open notebook 08")
            return 0
        if args.long:
            manifest = ensure_long_sample(Path(config.setting("long_sample_dir", args.out)), n_videos=args.n_videos,
                                          duration_s=args.duration_s, seed=args.seed, copy_queries=args.copy_queries,
                                          query_s=args.query_s)
            print(f"index the long videos with: motionmatch extract {manifest} --stride-s")
            return 0
        ensure_sample(config.setting("sample_dir", args.out), seed=args.seed, videos_per_class=args.videos_per_class,
                      groups_per_class=args.groups_per_class)
        return 0


DATA_COMMANDS = [GenerateSample]
