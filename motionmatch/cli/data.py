"""``motionmatch generate-sample``: the generated samples (short labelled clips, or long videos with ground truth)."""
from __future__ import annotations

from pathlib import Path

from .. import config
from .args import Command, non_negative_int, positive_float, positive_int


class GenerateSample(Command):
    name = "generate-sample"
    help = "write the synthetic labelled motion videos + manifest.csv (--long: long videos + ground_truth.csv)"

    @staticmethod
    def setup(parser):
        parser.add_argument("--out", default="", help=f"sample folder (default: $MOTIONMATCH_SAMPLE_DIR, else "
                                                      f"{config.SETTINGS['sample_dir'].default})")
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

    @staticmethod
    def execute(args):
        from ..data.samples import ensure_long_sample, ensure_sample

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
