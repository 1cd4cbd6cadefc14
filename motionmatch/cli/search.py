"""``motionmatch search`` and ``motionmatch evaluate``: find motion like a query's, and measure how well it is found."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import config
from ..errors import ParameterError
from ..search.config import DEFAULT_COPY_THRESHOLD
from .args import Command, add_encoder_args, add_store_args, parse_pairs, positive_int
from .extract import DATASET_CHOICES


def add_scoring_args(parser) -> None:
    """The options of a segment search that ``search`` and ``evaluate --segments`` share
    (:meth:`motionmatch.search.SegmentSearchConfig.from_args` reads them)."""
    parser.add_argument("--calibration", default="gallery", metavar="gallery|none|FILE.npz",
                        help="segment scores: z-scores against the gallery (default; fitted on a sample of the "
                             "collection, or a whitening .npz from `motionmatch calibrate --mode whiten`), or raw cosine")
    parser.add_argument("--threshold", type=float, default=None,
                        help="lowest window score a segment keeps (default 0 z-score: above the query window's "
                             "gallery mean; 0.5 raw cosine)")
    parser.add_argument("--candidates", type=positive_int("--candidates"), default=10,
                        help="videos (most votes over the query windows' top-k) aligned into segments")
    parser.add_argument("--hits-only", action="store_true",
                        help="align the Milvus hits alone, without fetching the candidates' windows (faster)")
    parser.add_argument("--as-aligned", action="store_true",
                        help="keep segments as aligned: do not grow them over the windows where the query's motion "
                             "goes on (growth finds whole same-motion moments; copies are never grown)")
    parser.add_argument("--no-fine", action="store_true",
                        help="skip the fine stage (frame-level copy alignment and verification, boundaries snapped to "
                             "the reference's changes); segments keep their window boundaries")
    parser.add_argument("--copy-threshold", type=float, default=DEFAULT_COPY_THRESHOLD, metavar="P",
                        help="probability from which a range is reported as a copy (kind: copy) rather than the "
                             "same motion (default %(default)s)")
    parser.add_argument("--ignore-cuts", action="store_true",
                        help="do not restart the query's windows at shot cuts inside the range (by default they "
                             "do, with the index's shot detector, when the index's windows are bounded by shots)")


class Search(Command):
    name = "search"
    help = "find clips (or, with --segments, time ranges) whose motion is like a query video's"

    @staticmethod
    def setup(parser):
        parser.add_argument("query", help="query video file")
        add_store_args(parser)
        parser.add_argument("-k", type=positive_int("-k"), default=10, help="hits (or segments) to return")
        parser.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                            help="scalar filter, repeatable (e.g. --filter domain=studio)")
        parser.add_argument("--one-per-video", action="store_true", help="at most one hit per video (group_by)")
        parser.add_argument("--json", action="store_true", help="print hits (or segments) as JSON")
        parser.add_argument("--start", type=float, default=None, help="start of the query range, seconds (default 0)")
        parser.add_argument("--end", type=float, default=None, help="end of the query range, seconds (default: file end)")
        own = parser.add_mutually_exclusive_group()
        own.add_argument("--exclude-video", dest="exclude_video", action="store_const", const=True, default=None,
                         help="drop the query's own file from the results (the default when it is indexed)")
        own.add_argument("--include-video", dest="exclude_video", action="store_const", const=False,
                         help="keep the query's own file even when it is indexed")
        parser.add_argument("--segments", action="store_true",
                            help="return segments (time ranges aligned to the query's windows) instead of window hits")
        add_scoring_args(parser)

    @staticmethod
    def execute(args):
        from ..search import SegmentSearchConfig, search

        filters: dict[str, list[str]] = {}
        for field, value in parse_pairs(args.filter, "--filter", "FIELD=VALUE"):
            filters.setdefault(field, []).append(value)
        filters = {k: v[0] if len(v) == 1 else v for k, v in filters.items()}
        result = search(args.query, args.start, args.end, SegmentSearchConfig.from_args(args), args.milvus_uri,
                        args.collection, exclude_video=args.exclude_video, filters=filters or None)
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        plan = result.query
        if args.segments:
            records = result.segment_records()
            if args.json:
                print(json.dumps(records, indent=2))
                return 0
            print(f"query: {plan.path} [{plan.start_s:.2f}-{plan.end_s:.2f} s, {len(plan.windows)} windows]; "
                  f"scores: {result.scores}")
            for rank, seg in enumerate(records, 1):
                print(f"{rank:3d}  {seg['score']:7.3f}  {seg['video_path']} [{seg['start_s']:.2f}-{seg['end_s']:.2f} s]"
                      f"  <- query [{seg['query_start_s']:.2f}-{seg['query_end_s']:.2f} s], {len(seg['hits'])} hits")
            print(f"{len(records)} segments")
            return 0
        hits = result.hit_records(args.k, one_per_video=args.one_per_video)
        if args.json:
            print(json.dumps(hits, indent=2))
            return 0
        print(f"query: {plan.path} [{plan.start_s:.2f}-{plan.end_s:.2f} s, {len(plan.windows)} windows]")
        for rank, hit in enumerate(hits, 1):
            print(f"{rank:3d}  {hit['score']:.4f}  {hit['label']:<18} {hit['domain']:<10} {hit['video_path']} "
                  f"[{hit['start_s']:.2f}-{hit['end_s']:.2f} s]  <- query [{hit['query_start_s']:.2f}-"
                  f"{hit['query_end_s']:.2f} s]")
        print(f"{len(hits)} hits")
        return 0


class Evaluate(Command):
    name = "evaluate"
    help = "retrieval metrics with bootstrap CIs; writes CSV and JSON"

    @staticmethod
    def setup(parser):
        parser.add_argument("--embeddings", default=None, help="an embeddings folder (skip extraction)")
        parser.add_argument("--dataset", default=None, choices=DATASET_CHOICES)
        parser.add_argument("--root", default=None, help="dataset root (with --dataset)")
        parser.add_argument("--split", type=positive_int("--split"), default=1, help="official split number")
        parser.add_argument("--protocol", default="all", choices=["all", "leave-one-out", "domains", "train-test"],
                            help="all = every protocol the data supports")
        parser.add_argument("--out", default="", help=f"output folder (default: $MOTIONMATCH_EVALUATION_DIR, else "
                                                      f"{config.SETTINGS['evaluation_dir'].default})")
        parser.add_argument("--n-boot", type=positive_int("--n-boot"), default=1000)
        add_encoder_args(parser)
        parser.add_argument("--clips-per-video", type=positive_int("--clips-per-video"), default=4)
        parser.add_argument("--segments", default="", metavar="GT.csv",
                            help="localisation: search each query of --queries in the collection and score the "
                                 "segments against these relevant moments (relevant.csv of "
                                 "motionmatch.data.write_copy_queries)")
        parser.add_argument("--queries", default="", help="with --segments: the query list (default: queries.csv "
                                                          "beside GT.csv): query_id, path[, kind, query_start_s, query_end_s]")
        parser.add_argument("-k", type=positive_int("-k"), default=10, help="with --segments: hits per query window "
                                                                             "and segments per query")
        add_store_args(parser)
        add_scoring_args(parser)

    @staticmethod
    def execute(args):
        from ..encoders.auto import describe_encoder
        from ..evaluation.findings import evaluate, format_headline
        from ..extract.run import extract

        out = config.setting("evaluation_dir", args.out)
        if args.segments:
            return Evaluate.localisation(args, Path(out))
        if args.embeddings:
            folder = Path(args.embeddings)
        elif args.dataset and args.root:
            from ..encoders.auto import choose_encoder

            encoder, _ = choose_encoder(args.encoder, model_id=config.setting("model_id", args.model),
                                        device=args.device)
            slug = encoder.encoder_id.replace(":", "_").replace("/", "_")
            folder = Path(config.setting("embeddings_dir")) / f"{args.dataset}-split{args.split}-{slug}"
            kwargs = {"split": args.split} if args.dataset in ("ucf101", "hmdb51") else {}
            print(extract(args.root, folder, encoder=encoder, dataset=args.dataset, clips_per_video=args.clips_per_video,
                          dataset_options=kwargs))
        else:
            raise ParameterError("evaluate needs --embeddings DIR, or --dataset NAME with --root PATH")
        found = evaluate(folder, protocol=args.protocol, n_boot=args.n_boot, out_dir=out)
        print(f"encoder: {describe_encoder(found.encoder_id)}")
        print(f"{found.n_clips} clips from {found.n_videos} videos; means with 95% bootstrap CIs over queries")
        print(format_headline(found))
        print(f"wrote the findings to {out}")
        return 0

    @staticmethod
    def localisation(args, out: Path) -> int:
        """``evaluate --segments GT.csv``: segment search over a query list, metrics with 95% bootstrap CIs."""
        from ..data.queries import read_query_list
        from ..encoders.auto import describe_encoder
        from ..evaluation.segments import evaluate_search, format_metrics
        from ..index.store import MotionStore
        from ..search.config import SegmentSearchConfig

        queries, relevant = read_query_list(args.segments, args.queries or None)  # files checked before any work
        search_config = SegmentSearchConfig.from_args(args)
        with MotionStore(args.milvus_uri, args.collection) as store:
            encoder_id = store.encoder_info()["encoder_id"]
            metrics, predictions, notes = evaluate_search(store, queries, relevant, search_config, n_boot=args.n_boot)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        out.mkdir(parents=True, exist_ok=True)
        metrics.to_csv(out / "localization.csv", index=False)
        predictions.to_csv(out / "localization_predictions.csv", index=False)
        (out / "localization.json").write_text(json.dumps(
            {"encoder_id": encoder_id, "segments": str(args.segments), "calibration": args.calibration,
             "metrics": metrics.to_dict(orient="records")}, indent=2))
        print(f"encoder: {describe_encoder(encoder_id)}")
        print(f"{len(queries)} queries, {len(predictions)} segments; means with 95% bootstrap CIs over queries")
        print(format_metrics(metrics))
        print(f"wrote localization.csv, localization_predictions.csv, localization.json to {out}")
        return 0


SEARCH_COMMANDS = [Search, Evaluate]
